//! Reference 2-D pooling over NHWC and its gradient: one output element at a time.
//!
//! Every max-pool routine goes through [`window_argmax`], so the forward value, the gradient
//! and the returned argmax agree on which element won: the first maximum in row-major window
//! order (TensorFlow's rule), with NaN winning and staying, and padding never taking part.

use crate::backend::{Pool2dSpec, PoolKind};
use crate::{HostData, Result};

/// The real (unpadded) input positions `(iy, ix)` covered by the window of output `(oy, ox)`,
/// in row-major window order.
fn window(s: &Pool2dSpec, oy: usize, ox: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let (sh, sw) = s.stride;
    (0..s.kh).flat_map(move |ky| (0..s.kw).map(move |kx| (ky, kx))).filter_map(move |(ky, kx)| {
        let iy = (oy * sh + ky).checked_sub(s.pad.0)?;
        let ix = (ox * sw + kx).checked_sub(s.pad.2)?;
        (iy < s.h && ix < s.w).then_some((iy, ix))
    })
}

fn flat(s: &Pool2dSpec, b: usize, iy: usize, ix: usize, c: usize) -> usize {
    ((b * s.h + iy) * s.w + ix) * s.c + c
}

/// Flat input index of the winning element of one output's window; `None` for a window of
/// padding only (the ops never build one: they keep padding smaller than the window).
fn window_argmax(x: &[f32], s: &Pool2dSpec, b: usize, oy: usize, ox: usize, c: usize) -> Option<usize> {
    let mut best: Option<(f32, usize)> = None;
    for (iy, ix) in window(s, oy, ox) {
        let i = flat(s, b, iy, ix, c);
        let v = x[i];
        let better = match best {
            None => true,
            Some((bv, _)) => !bv.is_nan() && (v.is_nan() || v > bv),
        };
        if better {
            best = Some((v, i));
        }
    }
    best.map(|(_, i)| i)
}

/// Every output position `(b, oy, ox, c)` in row-major output order.
fn outputs(s: &Pool2dSpec) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
    (0..s.n).flat_map(move |b| (0..s.out_h).flat_map(move |oy| (0..s.out_w).flat_map(move |ox| (0..s.c).map(move |c| (b, oy, ox, c)))))
}

/// Forward pooling: max over the window's real inputs, or their mean (the count excludes
/// padding, as TensorFlow's `avg_pool` with `SAME`).
pub fn pool2d(x: &HostData, s: &Pool2dSpec) -> Result<HostData> {
    let x = x.as_f32("pool2d")?;
    let y = outputs(s)
        .map(|(b, oy, ox, c)| match s.kind {
            PoolKind::Max => window_argmax(x, s, b, oy, ox, c).map_or(f32::NEG_INFINITY, |i| x[i]),
            PoolKind::Avg => {
                let (mut sum, mut count) = (0f64, 0usize);
                for (iy, ix) in window(s, oy, ox) {
                    sum += x[flat(s, b, iy, ix, c)] as f64;
                    count += 1;
                }
                (sum / count.max(1) as f64) as f32
            }
        })
        .collect();
    Ok(HostData::F32(y))
}

/// Gradient of pooling with respect to the input: max sends each output's gradient to the
/// first maximum of its window; average spreads it evenly over the window's real inputs.
/// `_y` (the forward output) is part of the contract for backends that want it.
pub fn pool2d_grad(x: &HostData, _y: &HostData, dy: &HostData, s: &Pool2dSpec) -> Result<HostData> {
    let (x, dy) = (x.as_f32("pool2d_grad")?, dy.as_f32("pool2d_grad")?);
    let mut dx = vec![0f64; x.len()];
    for ((b, oy, ox, c), &g) in outputs(s).zip(dy) {
        match s.kind {
            PoolKind::Max => {
                if let Some(i) = window_argmax(x, s, b, oy, ox, c) {
                    dx[i] += g as f64;
                }
            }
            PoolKind::Avg => {
                let count = window(s, oy, ox).count().max(1) as f64;
                for (iy, ix) in window(s, oy, ox) {
                    dx[flat(s, b, iy, ix, c)] += g as f64 / count;
                }
            }
        }
    }
    Ok(HostData::F32(dx.into_iter().map(|v| v as f32).collect()))
}

/// Max pooling returning the flat input index `((b·H + y)·W + x)·C + c` of each maximum too
/// (TensorFlow's `max_pool_with_argmax` with `include_batch_in_index=True`); a window of
/// padding only gives `-inf` at index -1.
pub fn max_pool2d_argmax(x: &HostData, s: &Pool2dSpec) -> Result<(HostData, HostData)> {
    let x = x.as_f32("max_pool2d_with_argmax")?;
    let idx: Vec<Option<usize>> = outputs(s).map(|(b, oy, ox, c)| window_argmax(x, s, b, oy, ox, c)).collect();
    let y = idx.iter().map(|i| i.map_or(f32::NEG_INFINITY, |i| x[i])).collect();
    Ok((HostData::F32(y), HostData::I64(idx.into_iter().map(|i| i.map_or(-1, |i| i as i64)).collect())))
}
