//! Reference 2-D pooling and its gradient.

use crate::backend::Pool2dSpec;
use crate::{Error, Result, Storage};

fn todo(op: &'static str) -> Error {
    Error::Unsupported { op, msg: "not implemented yet".into() }
}

/// Forward pooling.
pub fn pool2d(_x: &Storage, _s: &Pool2dSpec) -> Result<Storage> {
    Err(todo("pool2d"))
}

/// Gradient of pooling with respect to the input.
pub fn pool2d_grad(_x: &Storage, _y: &Storage, _dy: &Storage, _s: &Pool2dSpec) -> Result<Storage> {
    Err(todo("pool2d_grad"))
}

/// Max pooling returning flat argmax indices too.
pub fn max_pool2d_argmax(_x: &Storage, _s: &Pool2dSpec) -> Result<(Storage, Storage)> {
    Err(todo("max_pool2d_argmax"))
}
