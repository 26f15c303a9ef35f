//! Element-wise kernels in f32, split across threads for large tensors.

use super::PARALLEL_THRESHOLD;
use crate::backend::{broadcast_rows, broadcast_strides, reference};
use crate::ops::binary::BinaryOp;
use crate::ops::unary::UnaryOp;
use crate::{Result, Shape, Storage};
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

pub(super) fn unary(op: UnaryOp, x: &Storage) -> Result<Storage> {
    let x = x.as_f32("unary")?;
    let mut y = crate::buffer_pool::for_overwrite(x.len());
    let kernel = |(yc, xc): (&mut [f32], &[f32])| {
        for (o, &v) in yc.iter_mut().zip(xc) {
            *o = op.value(v);
        }
    };
    if x.len() >= PARALLEL_THRESHOLD {
        y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(kernel);
    } else {
        kernel((&mut y, x));
    }
    Ok(Storage::F32(y))
}

pub(super) fn unary_grad(op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage> {
    let (x, y, dy) = (x.as_f32("unary_grad")?, y.as_f32("unary_grad")?, dy.as_f32("unary_grad")?);
    let mut dx = crate::buffer_pool::for_overwrite(x.len());
    let kernel = |(start, out): (usize, &mut [f32])| {
        let s = start * CHUNK;
        for (i, o) in out.iter_mut().enumerate() {
            *o = dy[s + i] * op.derivative(x[s + i], y[s + i]);
        }
    };
    if x.len() >= PARALLEL_THRESHOLD {
        dx.par_chunks_mut(CHUNK).enumerate().for_each(kernel);
    } else {
        dx.chunks_mut(CHUNK).enumerate().for_each(kernel);
    }
    Ok(Storage::F32(dx))
}

pub(super) fn binary(op: BinaryOp, a: &Storage, a_shape: &Shape, b: &Storage, b_shape: &Shape, out_shape: &Shape) -> Result<Storage> {
    let (Storage::F32(av), Storage::F32(bv)) = (a, b) else {
        return reference::elementwise::binary(op, a, a_shape, b, b_shape, out_shape);
    };
    if op.is_predicate() || out_shape.numel() == 0 {
        return reference::elementwise::binary(op, a, a_shape, b, b_shape, out_shape);
    }
    let n = out_shape.numel();
    let mut out = crate::buffer_pool::for_overwrite(n);
    // Fast paths: equal shapes, and a scalar on either side.
    if a_shape == b_shape || av.len() == 1 || bv.len() == 1 {
        let kernel = |(ci, oc): (usize, &mut [f32])| {
            let s = ci * CHUNK;
            for (i, o) in oc.iter_mut().enumerate() {
                let x = if av.len() == 1 { av[0] } else { av[s + i] };
                let y = if bv.len() == 1 { bv[0] } else { bv[s + i] };
                *o = op.value_f32(x, y);
            }
        };
        if n >= PARALLEL_THRESHOLD {
            out.par_chunks_mut(CHUNK).enumerate().for_each(kernel);
        } else {
            out.chunks_mut(CHUNK).enumerate().for_each(kernel);
        }
        return Ok(Storage::F32(out));
    }
    let (sa, sb) = (broadcast_strides(a_shape, out_shape), broadcast_strides(b_shape, out_shape));
    let row = out_shape.dims()[out_shape.rank() - 1].max(1);
    let rows = n / row;
    let rows_per_chunk = (CHUNK / row).max(1);
    let kernel = |(ci, oc): (usize, &mut [f32])| {
        let r0 = ci * rows_per_chunk;
        let r1 = (r0 + rows_per_chunk).min(rows);
        broadcast_rows(av, &sa, bv, &sb, out_shape, r0..r1, oc, |x, y| op.value_f32(x, y));
    };
    if n >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(rows_per_chunk * row).enumerate().for_each(kernel);
    } else {
        out.chunks_mut(rows_per_chunk * row).enumerate().for_each(kernel);
    }
    Ok(Storage::F32(out))
}
