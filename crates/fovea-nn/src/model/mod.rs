//! Models: `Sequential` and the training loop every model shares.

pub mod analysis;
mod batches;
pub mod checkpoints;
pub mod functional;
mod history;
pub mod io;
mod progress;
pub mod registry;
pub mod replicas;
pub mod saved;
mod sequential;
pub mod summary;
pub mod training;

pub use saved::SavedModel;
pub use sequential::Sequential;
pub use training::{Compiled, FitOptions, History, Logs, Model};
