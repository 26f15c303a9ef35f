//! Models: `Sequential` and the training loop every model shares.

mod progress;
mod sequential;
pub mod training;

pub use sequential::Sequential;
pub use training::{Compiled, FitOptions, History, Logs, Model};
