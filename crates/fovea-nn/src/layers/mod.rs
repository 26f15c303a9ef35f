//! The built-in layers.

pub mod common;
mod conv;
mod dense;
mod pooling;
#[cfg(test)]
pub(crate) mod testing;

pub use conv::{Conv1D, Conv2D, Conv2DTranspose, ConvLayer, DepthwiseConv2D, SeparableConv2D};
pub use dense::Dense;
pub use pooling::{AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, GlobalPooling2D, MaxPooling2D, Pooling2D};
