//! The built-in layers.

pub mod common;
mod conv;
mod conv3d;
mod dense;
pub mod function;
#[cfg(test)]
mod function_tests;
mod merge;
mod normalization;
mod pooling;
#[cfg(test)]
pub(crate) mod testing;

pub use conv::{Conv1D, Conv2D, Conv2DTranspose, ConvLayer, DepthwiseConv2D, SeparableConv2D};
pub use conv3d::Conv3D;
pub use dense::Dense;
pub use function::{
    Activation, Cropping2D, Dropout, Flatten, FnLayer, Lambda, LeakyReLU, LocalResponseNormalization, Permute, ReLU, Reshape, Softmax,
    SpatialDropout2D, UpSampling2D, ZeroPadding2D, ELU,
};
pub use merge::{Add, Average, Concatenate, Maximum, Merge, Minimum, Multiply, Subtract};
pub use normalization::{BatchNormalization, LayerNormalization, PReLU};
pub use pooling::{AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, GlobalPooling2D, MaxPooling2D, Pooling2D};
