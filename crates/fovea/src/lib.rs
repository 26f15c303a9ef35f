//! Fovea: a deep-learning framework for computer vision.
//!
//! This facade re-exports the workspace crates; most programs need only
//! `use fovea::prelude::*;`.
//!
//! ```
//! use fovea::prelude::*;
//! # fn main() -> fovea::core::Result<()> {
//! let x = Tensor::ones([2, 3], DType::F32, Device::Cpu)?;
//! assert_eq!(x.sum_all()?.to_scalar::<f32>()?, 6.0);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub use fovea_core as core;
pub use fovea_data as data;
pub use fovea_nn as nn;
pub use fovea_vision as vision;

/// The names most programs use.
pub mod prelude {
    pub use fovea_core::{no_grad, set_seed, DType, Device, Error, GradientTape, Result, Shape, Tensor, Variable};
}
