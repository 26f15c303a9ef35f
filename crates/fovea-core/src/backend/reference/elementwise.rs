//! Reference element-wise kernels: unary math in f64, broadcasting binary ops, select, cast.

use crate::backend::{broadcast_rows, broadcast_strides};
use crate::ops::binary::BinaryOp;
use crate::ops::unary::UnaryOp;
use crate::{DType, Error, HostData, Result, Shape};

/// `y = op(x)` computed in f64 and rounded to f32.
pub fn unary(op: UnaryOp, x: &HostData) -> Result<HostData> {
    let x = x.as_f32("unary")?;
    Ok(HostData::F32(x.iter().map(|&v| op.value(v as f64) as f32).collect()))
}

/// `dx = dy · op'(x)` computed in f64.
pub fn unary_grad(op: UnaryOp, x: &HostData, y: &HostData, dy: &HostData) -> Result<HostData> {
    let (x, y, dy) = (x.as_f32("unary_grad")?, y.as_f32("unary_grad")?, dy.as_f32("unary_grad")?);
    Ok(HostData::F32(x.iter().zip(y).zip(dy).map(|((&x, &y), &g)| (g as f64 * op.derivative(x as f64, y as f64)) as f32).collect()))
}

/// Applies `f` over broadcast pairs into a new vector of the output size.
pub(crate) fn broadcast_map<A: Copy, B: Copy, O: Default + Clone>(
    a: &[A],
    a_shape: &Shape,
    b: &[B],
    b_shape: &Shape,
    out_shape: &Shape,
    f: impl Fn(A, B) -> O,
) -> Vec<O> {
    let mut out = vec![O::default(); out_shape.numel()];
    let rows = if out_shape.rank() == 0 { 1 } else { out_shape.numel() / out_shape.dims()[out_shape.rank() - 1].max(1) };
    let rows = if out_shape.numel() == 0 { 0 } else { rows };
    broadcast_rows(a, &broadcast_strides(a_shape, out_shape), b, &broadcast_strides(b_shape, out_shape), out_shape, 0..rows, &mut out, f);
    out
}

/// `op(a, b)` with NumPy broadcasting to `out_shape`.
pub fn binary(op: BinaryOp, a: &HostData, a_shape: &Shape, b: &HostData, b_shape: &Shape, out_shape: &Shape) -> Result<HostData> {
    let pred = op.is_predicate();
    Ok(match (a, b) {
        (HostData::F32(a), HostData::F32(b)) if pred => {
            HostData::Bool(broadcast_map(a, a_shape, b, b_shape, out_shape, |x, y| op.compare(x, y)))
        }
        (HostData::F32(a), HostData::F32(b)) => HostData::F32(broadcast_map(a, a_shape, b, b_shape, out_shape, |x, y| op.value_f32(x, y))),
        (HostData::I64(a), HostData::I64(b)) if pred => {
            HostData::Bool(broadcast_map(a, a_shape, b, b_shape, out_shape, |x, y| op.compare(x, y)))
        }
        (HostData::I64(_), HostData::I64(b)) if op == BinaryOp::Div && b.contains(&0) => {
            return Err(Error::invalid(op.name(), "integer division by zero"));
        }
        (HostData::I64(_), HostData::I64(b)) if op == BinaryOp::Div && b.contains(&0) => {
            return Err(Error::invalid(op.name(), "integer division by zero"));
        }
        (HostData::I64(a), HostData::I64(b)) => HostData::I64(broadcast_map(a, a_shape, b, b_shape, out_shape, |x, y| op.value_i64(x, y))),
        (HostData::U8(a), HostData::U8(b)) if pred => {
            HostData::Bool(broadcast_map(a, a_shape, b, b_shape, out_shape, |x, y| op.compare(x, y)))
        }
        (HostData::Bool(a), HostData::Bool(b)) => HostData::Bool(broadcast_map(a, a_shape, b, b_shape, out_shape, |x, y| match op {
            BinaryOp::And => x && y,
            BinaryOp::Or => x || y,
            _ => op.compare(x, y),
        })),
        _ => return Err(Error::dtype(op.name(), "operands of one supported dtype", b.dtype())),
    })
}

/// `cond ? a : b` with three-way broadcasting.
pub fn select(
    cond: &HostData,
    c_shape: &Shape,
    a: &HostData,
    a_shape: &Shape,
    b: &HostData,
    b_shape: &Shape,
    out_shape: &Shape,
) -> Result<HostData> {
    let cond = cond.as_bool("where")?;
    // Broadcast the condition against each branch by pairing it with element indices.
    let idx_a: Vec<usize> = broadcast_map(cond, c_shape, &(0..a.len()).collect::<Vec<_>>(), a_shape, out_shape, |_, i| i);
    let idx_b: Vec<usize> = broadcast_map(cond, c_shape, &(0..b.len()).collect::<Vec<_>>(), b_shape, out_shape, |_, i| i);
    let c: Vec<bool> = broadcast_map(cond, c_shape, &[()], &Shape::scalar(), out_shape, |c, _| c);
    fn pick<T: Copy>(c: &[bool], a: &[T], ia: &[usize], b: &[T], ib: &[usize]) -> Vec<T> {
        c.iter().zip(ia).zip(ib).map(|((&c, &i), &j)| if c { a[i] } else { b[j] }).collect()
    }
    Ok(match (a, b) {
        (HostData::F32(a), HostData::F32(b)) => HostData::F32(pick(&c, a, &idx_a, b, &idx_b)),
        (HostData::I64(a), HostData::I64(b)) => HostData::I64(pick(&c, a, &idx_a, b, &idx_b)),
        (HostData::I32(a), HostData::I32(b)) => HostData::I32(pick(&c, a, &idx_a, b, &idx_b)),
        (HostData::U8(a), HostData::U8(b)) => HostData::U8(pick(&c, a, &idx_a, b, &idx_b)),
        (HostData::Bool(a), HostData::Bool(b)) => HostData::Bool(pick(&c, a, &idx_a, b, &idx_b)),
        _ => return Err(Error::dtype("where", format!("branches of one dtype ({})", a.dtype()), b.dtype())),
    })
}

/// Converts element types with `tf.cast` semantics (truncation toward zero, saturating).
pub fn cast(x: &HostData, dtype: DType) -> Result<HostData> {
    fn conv<T: Copy, U>(v: &[T], f: impl Fn(T) -> U) -> Vec<U> {
        v.iter().map(|&x| f(x)).collect()
    }
    use half::{bf16, f16};
    Ok(match (x, dtype) {
        // int32 goes through int64 (exact), and comes back from it with TF's wrapping cast.
        (HostData::I32(v), _) => return cast(&HostData::I64(conv(v, i64::from)), dtype),
        (HostData::I64(v), DType::I32) => HostData::I32(conv(v, |x| x as i32)),
        (HostData::F32(v), DType::I32) => HostData::I32(conv(v, |x| x as i32)),
        (HostData::U8(v), DType::I32) => HostData::I32(conv(v, i32::from)),
        (HostData::Bool(v), DType::I32) => HostData::I32(conv(v, i32::from)),
        // Half sources widen exactly to f32, then follow the f32 rules.
        (HostData::F16(v), _) => return cast(&HostData::F32(conv(v, f16::to_f32)), dtype),
        (HostData::BF16(v), _) => return cast(&HostData::F32(conv(v, bf16::to_f32)), dtype),
        // Half targets round once, to nearest even (integers from f64, exact below 2^53).
        (HostData::F32(v), DType::F16) => HostData::F16(conv(v, f16::from_f32)),
        (HostData::F32(v), DType::BF16) => HostData::BF16(conv(v, bf16::from_f32)),
        (HostData::U8(v), DType::F16) => HostData::F16(conv(v, |x| f16::from_f64(x as f64))),
        (HostData::U8(v), DType::BF16) => HostData::BF16(conv(v, |x| bf16::from_f64(x as f64))),
        (HostData::I64(v), DType::F16) => HostData::F16(conv(v, |x| f16::from_f64(x as f64))),
        (HostData::I64(v), DType::BF16) => HostData::BF16(conv(v, |x| bf16::from_f64(x as f64))),
        (HostData::Bool(v), DType::F16) => HostData::F16(conv(v, |x| f16::from_f32(x as u8 as f32))),
        (HostData::Bool(v), DType::BF16) => HostData::BF16(conv(v, |x| bf16::from_f32(x as u8 as f32))),
        (HostData::F32(v), DType::F32) => HostData::F32(v.clone()),
        (HostData::F32(v), DType::U8) => HostData::U8(conv(v, |x| x as u8)),
        (HostData::F32(v), DType::I64) => HostData::I64(conv(v, |x| x as i64)),
        (HostData::F32(v), DType::Bool) => HostData::Bool(conv(v, |x| x != 0.0)),
        (HostData::U8(v), DType::F32) => HostData::F32(conv(v, |x| x as f32)),
        (HostData::U8(v), DType::U8) => HostData::U8(v.clone()),
        (HostData::U8(v), DType::I64) => HostData::I64(conv(v, |x| x as i64)),
        (HostData::U8(v), DType::Bool) => HostData::Bool(conv(v, |x| x != 0)),
        (HostData::I64(v), DType::F32) => HostData::F32(conv(v, |x| x as f32)),
        (HostData::I64(v), DType::U8) => HostData::U8(conv(v, |x| x as u8)),
        (HostData::I64(v), DType::I64) => HostData::I64(v.clone()),
        (HostData::I64(v), DType::Bool) => HostData::Bool(conv(v, |x| x != 0)),
        (HostData::Bool(v), DType::F32) => HostData::F32(conv(v, |x| x as u8 as f32)),
        (HostData::Bool(v), DType::U8) => HostData::U8(conv(v, |x| x as u8)),
        (HostData::Bool(v), DType::I64) => HostData::I64(conv(v, |x| x as i64)),
        (HostData::Bool(v), DType::Bool) => HostData::Bool(v.clone()),
    })
}
