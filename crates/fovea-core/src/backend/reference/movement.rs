//! Reference data movement: permute, strided slice, concat, pad, gather, scatter-add.

use crate::backend::{PadMode, SliceAxis};
use crate::{Error, Result, Shape, Storage};

fn todo(op: &'static str) -> Error {
    Error::Unsupported { op, msg: "not implemented yet".into() }
}

/// Permutes axes.
pub fn permute(_x: &Storage, _shape: &Shape, _perm: &[usize]) -> Result<Storage> {
    Err(todo("permute"))
}

/// Strided slice.
pub fn strided_slice(_x: &Storage, _shape: &Shape, _axes: &[SliceAxis]) -> Result<Storage> {
    Err(todo("strided_slice"))
}

/// Concatenation along an axis.
pub fn concat(_xs: &[(&Storage, &Shape)], _axis: usize) -> Result<Storage> {
    Err(todo("concat"))
}

/// Padding.
pub fn pad(_x: &Storage, _shape: &Shape, _pads: &[(usize, usize)], _mode: PadMode) -> Result<Storage> {
    Err(todo("pad"))
}

/// Gather along an axis.
pub fn gather(_x: &Storage, _shape: &Shape, _axis: usize, _indices: &[i64]) -> Result<Storage> {
    Err(todo("gather"))
}

/// Scatter-add along an axis.
pub fn scatter_add(_src: &Storage, _src_shape: &Shape, _axis: usize, _indices: &[i64], _out_dim: usize) -> Result<Storage> {
    Err(todo("scatter_add"))
}
