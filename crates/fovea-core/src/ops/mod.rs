//! Tensor operations, one module per op family, each holding the op's forward pass, its
//! backward pass and its tests side by side. Ops are methods on [`crate::Tensor`].

pub mod batch_norm;
pub mod binary;
pub mod concat;
pub mod conv;
pub mod conv_depthwise;
pub mod conv_nd;
pub mod conv_transpose;
pub mod index;
pub mod logic;
pub mod lrn;
pub mod matmul;
pub mod optim;
pub mod pad;
pub mod padding;
pub mod permute;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod slice;
pub mod softmax;
pub mod sort;
pub mod tile;
pub mod unary;
mod unary_grad;

/// What a float-only op expects, in words, for its dtype errors.
pub(crate) const FLOAT_DTYPES: &str = "float32, bfloat16 or float16";

/// Fails unless `t` has a float dtype (f32, bf16 or f16): the dtypes float kernels compute in.
pub(crate) fn check_float(op: &'static str, t: &crate::Tensor) -> crate::Result<()> {
    if !t.dtype().is_float() {
        return Err(crate::Error::dtype(op, FLOAT_DTYPES, t.dtype()));
    }
    Ok(())
}

/// Fails unless `a` and `b` share one float dtype (mixed precision casts before it mixes).
pub(crate) fn check_same_float(op: &'static str, a: &crate::Tensor, b: &crate::Tensor) -> crate::Result<()> {
    check_float(op, a)?;
    if b.dtype() != a.dtype() {
        return Err(crate::Error::dtype(op, format!("{} like the first operand", a.dtype()), b.dtype()));
    }
    Ok(())
}
