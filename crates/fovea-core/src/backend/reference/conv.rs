//! Reference 2-D convolution (NHWC × HWIO) and its two gradients.

use crate::backend::Conv2dSpec;
use crate::{Error, Result, Storage};

fn todo(op: &'static str) -> Error {
    Error::Unsupported { op, msg: "not implemented yet".into() }
}

/// Forward convolution.
pub fn conv2d(_x: &Storage, _w: &Storage, _s: &Conv2dSpec) -> Result<Storage> {
    Err(todo("conv2d"))
}

/// Gradient with respect to the input.
pub fn conv2d_grad_input(_dy: &Storage, _w: &Storage, _s: &Conv2dSpec) -> Result<Storage> {
    Err(todo("conv2d_grad_input"))
}

/// Gradient with respect to the filter.
pub fn conv2d_grad_filter(_x: &Storage, _dy: &Storage, _s: &Conv2dSpec) -> Result<Storage> {
    Err(todo("conv2d_grad_filter"))
}
