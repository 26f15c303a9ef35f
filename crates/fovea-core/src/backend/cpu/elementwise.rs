//! Element-wise kernels in f32, split across threads for large tensors.
//!
//! The op is matched once per call, not once per element: each cheap op gets a kernel
//! monomorphised for its closure, and the operand layout (same size, a scalar on either side, a
//! trailing block such as a per-channel bias) is also chosen once, so every inner loop is a
//! branch-free zip over slices that the compiler vectorises. Ops without a dedicated arm still
//! get the hoisted layout, with `UnaryOp::value` / `BinaryOp::value_f32` inside the loop.

use super::chunked;
use crate::backend::{broadcast_rows, broadcast_strides, reference};
use crate::ops::binary::BinaryOp;
use crate::ops::unary::{clip, sign, UnaryOp};
use crate::{HostData, Result, Shape};

const CHUNK: usize = 1 << 14;

/// `1/6` rounded from f64, as `UnaryOp::derivative` writes it for hard sigmoid (an f32 division
/// could round differently).
const ONE_SIXTH: f32 = (1.0f64 / 6.0) as f32;

pub(super) fn unary(op: UnaryOp, x: &HostData) -> Result<HostData> {
    let x = x.as_f32("unary")?;
    let mut y = crate::buffer_pool::for_overwrite(x.len());
    let out = &mut y[..];
    // Each arm is `UnaryOp::value` for f32 with the op fixed; the tests check them bit for bit.
    match op {
        UnaryOp::Neg => map1(x, out, |v| -v),
        UnaryOp::Abs => map1(x, out, f32::abs),
        UnaryOp::Exp => map1(x, out, f32::exp),
        UnaryOp::Sqrt => map1(x, out, f32::sqrt),
        UnaryOp::Rsqrt => map1(x, out, |v| 1.0 / v.sqrt()),
        UnaryOp::Square => map1(x, out, |v| v * v),
        UnaryOp::Reciprocal => map1(x, out, |v| 1.0 / v),
        UnaryOp::Relu => map1(x, out, |v| if v > 0.0 { v } else { 0.0 }),
        UnaryOp::Relu6 => map1(x, out, relu6),
        UnaryOp::LeakyRelu(a) => map1(x, out, |v| if v > 0.0 { v } else { a * v }),
        UnaryOp::HardSigmoid => map1(x, out, |v| clip(v / 6.0 + 0.5, 0.0, 1.0)),
        UnaryOp::Clip(lo, hi) => map1(x, out, |v| clip(v, lo, hi)),
        _ => map1(x, out, |v| op.value(v)),
    }
    Ok(HostData::F32(y))
}

pub(super) fn unary_grad(op: UnaryOp, x: &HostData, y: &HostData, dy: &HostData) -> Result<HostData> {
    let (x, y, dy) = (x.as_f32("unary_grad")?, y.as_f32("unary_grad")?, dy.as_f32("unary_grad")?);
    let mut dx = crate::buffer_pool::for_overwrite(x.len());
    let out = &mut dx[..];
    // Each arm is `dy * UnaryOp::derivative(x, y)` for f32 with the op fixed; the multiply stays
    // even where the factor is 0 or 1 so that NaN and infinite `dy` behave as before.
    match op {
        UnaryOp::Neg => map3(x, y, dy, out, |_, _, g| -g), // = g · -1 up to a NaN's sign
        UnaryOp::Abs => map3(x, y, dy, out, |x, _, g| g * sign(x)),
        UnaryOp::Sign | UnaryOp::Floor | UnaryOp::Round => map3(x, y, dy, out, |_, _, g| g * 0.0),
        UnaryOp::Exp => map3(x, y, dy, out, |_, y, g| g * y),
        UnaryOp::Sqrt => map3(x, y, dy, out, |_, y, g| g * (0.5 / y)),
        UnaryOp::Rsqrt => map3(x, y, dy, out, |_, y, g| g * (-0.5 * y * y * y)),
        UnaryOp::Square => map3(x, y, dy, out, |x, _, g| g * (2.0 * x)),
        UnaryOp::Reciprocal => map3(x, y, dy, out, |_, y, g| g * -(y * y)),
        UnaryOp::Tanh => map3(x, y, dy, out, |_, y, g| g * (1.0 - y * y)),
        UnaryOp::Sigmoid => map3(x, y, dy, out, |_, y, g| g * (y * (1.0 - y))),
        UnaryOp::Relu => map3(x, y, dy, out, |x, _, g| g * if x > 0.0 { 1.0 } else { 0.0 }),
        UnaryOp::Relu6 => map3(x, y, dy, out, |x, _, g| g * if x > 0.0 && x < 6.0 { 1.0 } else { 0.0 }),
        UnaryOp::LeakyRelu(a) => map3(x, y, dy, out, |x, _, g| g * if x > 0.0 { 1.0 } else { a }),
        UnaryOp::Elu(a) => map3(x, y, dy, out, |x, y, g| g * if x > 0.0 { 1.0 } else { y + a }),
        UnaryOp::HardSigmoid => map3(x, y, dy, out, |x, _, g| g * if x > -3.0 && x < 3.0 { ONE_SIXTH } else { 0.0 }),
        UnaryOp::Clip(lo, hi) => map3(x, y, dy, out, |x, _, g| g * if x >= lo && x <= hi { 1.0 } else { 0.0 }),
        _ => map3(x, y, dy, out, |x, y, g| g * op.derivative(x, y)),
    }
    Ok(HostData::F32(dx))
}

pub(super) fn binary(op: BinaryOp, a: &HostData, a_shape: &Shape, b: &HostData, b_shape: &Shape, out_shape: &Shape) -> Result<HostData> {
    let (HostData::F32(av), HostData::F32(bv)) = (a, b) else {
        return reference::elementwise::binary(op, a, a_shape, b, b_shape, out_shape);
    };
    if op.is_predicate() || out_shape.numel() == 0 {
        return reference::elementwise::binary(op, a, a_shape, b, b_shape, out_shape);
    }
    let mut out = crate::buffer_pool::for_overwrite(out_shape.numel());
    let o = &mut out[..];
    let (a, b) = (Operand { data: av, shape: a_shape }, Operand { data: bv, shape: b_shape });
    // Each arm is `BinaryOp::value_f32` with the op fixed, NaN rules included: maximum and
    // minimum return `a` when it is NaN and `b` when only `b` is.
    match op {
        BinaryOp::Add => map2(a, b, out_shape, o, |x, y| x + y),
        BinaryOp::Sub => map2(a, b, out_shape, o, |x, y| x - y),
        BinaryOp::Mul => map2(a, b, out_shape, o, |x, y| x * y),
        BinaryOp::Div => map2(a, b, out_shape, o, |x, y| x / y),
        BinaryOp::Maximum => map2(a, b, out_shape, o, |x, y| if x.is_nan() || x >= y { x } else { y }),
        BinaryOp::Minimum => map2(a, b, out_shape, o, |x, y| if x.is_nan() || x <= y { x } else { y }),
        _ => map2(a, b, out_shape, o, |x, y| op.value_f32(x, y)),
    }
    Ok(HostData::F32(out))
}

/// One side of a binary op.
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [f32],
    shape: &'a Shape,
}

/// `out = f(a, b)` with NumPy broadcasting to `out_shape` (which has `out.len() > 0` elements).
fn map2(a: Operand, b: Operand, out_shape: &Shape, out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    let (av, bv, n) = (a.data, b.data, out.len());
    // A side with n elements is laid out exactly like the output (broadcasting can only have
    // prepended unit axes to it), so it is indexed directly.
    if av.len() == n && bv.len() == n {
        chunked(out, CHUNK, |s, o| zip2(&av[s..s + o.len()], &bv[s..s + o.len()], o, &f));
    } else if av.len() == 1 && bv.len() == n {
        let x = av[0];
        chunked(out, CHUNK, |s, o| {
            let e = s + o.len();
            for (o, &y) in o.iter_mut().zip(&bv[s..e]) {
                *o = f(x, y);
            }
        });
    } else if bv.len() == 1 && av.len() == n {
        let y = bv[0];
        chunked(out, CHUNK, |s, o| {
            let e = s + o.len();
            for (o, &x) in o.iter_mut().zip(&av[s..e]) {
                *o = f(x, y);
            }
        });
    } else if av.len() == n && is_trailing_block(b.shape, out_shape) {
        // E.g. [N, H, W, C] + [C]: the output is a run of blocks, each zipped with all of b.
        let k = bv.len();
        chunked(out, block_chunk(k), |s, o| {
            let e = s + o.len();
            for (oc, ac) in o.chunks_mut(k).zip(av[s..e].chunks(k)) {
                zip2(ac, bv, oc, &f);
            }
        });
    } else if bv.len() == n && is_trailing_block(a.shape, out_shape) {
        let k = av.len();
        chunked(out, block_chunk(k), |s, o| {
            let e = s + o.len();
            for (oc, bc) in o.chunks_mut(k).zip(bv[s..e].chunks(k)) {
                zip2(av, bc, oc, &f);
            }
        });
    } else {
        let (sa, sb) = (broadcast_strides(a.shape, out_shape), broadcast_strides(b.shape, out_shape));
        let row = out_shape.dims()[out_shape.rank() - 1].max(1);
        let rows_per_chunk = (CHUNK / row).max(1);
        chunked(out, rows_per_chunk * row, |s, o| {
            let r0 = s / row;
            broadcast_rows(av, &sa, bv, &sb, out_shape, r0..r0 + o.len() / row, o, &f);
        });
    }
}

/// Whether `shape`, broadcast to `out`, is a block that repeats along the output's leading axes:
/// without its leading unit axes it equals the trailing axes of `out` (`[C]` or `[1, 1, 1, C]`
/// against `[N, H, W, C]`; `[D]` against `[N, D]`).
fn is_trailing_block(shape: &Shape, out: &Shape) -> bool {
    let dims = shape.dims();
    let first = dims.iter().position(|&d| d != 1).unwrap_or(dims.len());
    out.dims().ends_with(&dims[first..])
}

/// The largest multiple of the block length `k` that fits in `CHUNK` (at least one block), so
/// that no parallel chunk splits a block.
fn block_chunk(k: usize) -> usize {
    k * (CHUNK / k).max(1)
}

#[inline(always)]
fn zip2(a: &[f32], b: &[f32], out: &mut [f32], f: &impl Fn(f32, f32) -> f32) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = f(x, y);
    }
}

fn map1(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    chunked(out, CHUNK, |s, o| {
        let e = s + o.len();
        for (o, &v) in o.iter_mut().zip(&x[s..e]) {
            *o = f(v);
        }
    });
}

fn map3(x: &[f32], y: &[f32], dy: &[f32], out: &mut [f32], f: impl Fn(f32, f32, f32) -> f32 + Sync) {
    chunked(out, CHUNK, |s, o| {
        let e = s + o.len();
        for (o, ((&x, &y), &g)) in o.iter_mut().zip(x[s..e].iter().zip(&y[s..e]).zip(&dy[s..e])) {
            *o = f(x, y, g);
        }
    });
}

// Not `f32::clamp`: that keeps -0 as -0, where `UnaryOp::value` returns +0.
#[allow(clippy::manual_clamp)]
fn relu6(v: f32) -> f32 {
    if v <= 0.0 {
        0.0
    } else if v >= 6.0 {
        6.0
    } else {
        v
    }
}

#[cfg(test)]
#[path = "elementwise_tests.rs"]
mod tests;
