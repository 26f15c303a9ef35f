//! Fovea's Keras contract: layers, models, optimizers, losses, metrics and the training loop.
//!
//! Work in progress: initializers, regularizers, activations and naming are here; layers and
//! models follow (see the Keras-contract issue).

#![warn(missing_docs)]

/// Re-exported for [`register_layer_class!`], so crates that register layers need no dependency of their own.
#[doc(hidden)]
pub use inventory;

pub mod activations;
pub mod budget;
pub mod callbacks;
pub mod confusion;
pub mod constraints;
pub mod diagnosis;
mod error;
pub mod export;
pub mod hdf5;
pub mod import;
pub mod initializers;
pub mod layer;
pub mod layers;
pub mod losses;
pub mod metrics;
pub mod mixed_precision;
pub mod model;
pub mod names;
pub mod optimizers;
pub mod regularizers;
pub mod schedules;

pub use error::{Error, Result};
