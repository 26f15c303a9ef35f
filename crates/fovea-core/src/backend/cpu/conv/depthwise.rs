//! Direct NHWC kernels for depthwise convolution (`groups == c_in`, `c_out = c_in·multiplier`,
//! output channel `c·multiplier + m` reads input channel `c`).
//!
//! Each output pixel is a sum over kernel taps of an element-wise product of a contiguous
//! channel vector of the input with one of the filter, so the inner loops run over channels
//! and vectorise; a gemm per group would have width `multiplier` and waste the gemm.
//! Forward and input gradient are parallel over output (resp. input) rows, which never
//! overlap; the filter gradient sums fixed-size row chunks in order, so every result is
//! independent of the thread count.

use super::common::sum_partials_in_order;
use crate::backend::Conv2dSpec;
use rayon::prelude::*;

/// Output rows per filter-gradient chunk are chosen to cover about this many output pixels.
const PIXELS_PER_CHUNK: usize = 4096;

/// `acc[c·mult + m] += x[c] · w[c·mult + m]`.
#[inline]
fn madd(acc: &mut [f32], x: &[f32], w: &[f32], mult: usize) {
    if mult == 1 {
        acc.iter_mut().zip(x).zip(w).for_each(|((a, &x), &w)| *a += x * w);
    } else {
        for ((a, w), &x) in acc.chunks_exact_mut(mult).zip(w.chunks_exact(mult)).zip(x) {
            a.iter_mut().zip(w).for_each(|(a, &w)| *a += x * w);
        }
    }
}

/// The input coordinate read by output coordinate `o` through tap `k`, if inside the input.
#[inline]
fn input_at(o: usize, k: usize, stride: usize, dilation: usize, pad: usize, size: usize) -> Option<usize> {
    let i = (o * stride + k * dilation).wrapping_sub(pad);
    (i < size).then_some(i)
}

/// The output coordinate that reads input coordinate `i` through tap `k`, if any.
#[inline]
fn output_at(i: usize, k: usize, stride: usize, dilation: usize, pad: usize, size: usize) -> Option<usize> {
    let t = (i + pad).checked_sub(k * dilation)?;
    (t % stride == 0 && t / stride < size).then_some(t / stride)
}

/// Forward pass, one output row `(n, oh)` per task.
pub(super) fn forward(x: &[f32], w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    let mult = s.c_out / s.c_in;
    let row_len = s.out_w * s.c_out;
    let mut y = crate::buffer_pool::zeroed(s.n * s.out_h * row_len);
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(row_len).enumerate().for_each(|(r, y_row)| {
        let (n, oh) = (r / s.out_h, r % s.out_h);
        for i in 0..s.kh {
            let Some(ih) = input_at(oh, i, s.stride.0, s.dilation.0, s.pad.0, s.h) else { continue };
            let x_row = &x[(n * s.h + ih) * s.w * s.c_in..][..s.w * s.c_in];
            for (ow, acc) in y_row.chunks_exact_mut(s.c_out).enumerate() {
                for j in 0..s.kw {
                    let Some(iw) = input_at(ow, j, s.stride.1, s.dilation.1, s.pad.2, s.w) else { continue };
                    madd(acc, &x_row[iw * s.c_in..][..s.c_in], &w[(i * s.kw + j) * s.c_out..][..s.c_out], mult);
                }
            }
        }
    });
    y
}

/// Input gradient, one input row `(n, ih)` per task, gathering from the outputs that read it:
/// `dx[c] = Σ_taps Σ_m dy[c·mult + m] · w[c·mult + m]`.
pub(super) fn grad_input(dy: &[f32], w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    let mult = s.c_out / s.c_in;
    let row_len = s.w * s.c_in;
    let mut dx = crate::buffer_pool::zeroed(s.n * s.h * row_len);
    if dx.is_empty() {
        return dx;
    }
    dx.par_chunks_mut(row_len).enumerate().for_each(|(r, dx_row)| {
        let (n, ih) = (r / s.h, r % s.h);
        for i in 0..s.kh {
            let Some(oh) = output_at(ih, i, s.stride.0, s.dilation.0, s.pad.0, s.out_h) else { continue };
            let dy_row = &dy[(n * s.out_h + oh) * s.out_w * s.c_out..][..s.out_w * s.c_out];
            for (iw, acc) in dx_row.chunks_exact_mut(s.c_in).enumerate() {
                for j in 0..s.kw {
                    let Some(ow) = output_at(iw, j, s.stride.1, s.dilation.1, s.pad.2, s.out_w) else { continue };
                    let (g, wt) = (&dy_row[ow * s.c_out..][..s.c_out], &w[(i * s.kw + j) * s.c_out..][..s.c_out]);
                    if mult == 1 {
                        acc.iter_mut().zip(g).zip(wt).for_each(|((a, &g), &w)| *a += g * w);
                    } else {
                        for ((a, g), wt) in acc.iter_mut().zip(g.chunks_exact(mult)).zip(wt.chunks_exact(mult)) {
                            *a += g.iter().zip(wt).map(|(g, w)| g * w).sum::<f32>();
                        }
                    }
                }
            }
        }
    });
    dx
}

/// Filter gradient `dw[i, j, c·mult + m] = Σ x[c] · dy[c·mult + m]` over every output pixel,
/// in fixed chunks of output rows summed in order.
pub(super) fn grad_filter(x: &[f32], dy: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    let mult = s.c_out / s.c_in;
    let len = s.kh * s.kw * s.c_out;
    let rows = s.n * s.out_h;
    let rows_per_chunk = PIXELS_PER_CHUNK.div_ceil(s.out_w.max(1)).max(1);
    let chunks = if s.out_w == 0 { 0 } else { rows.div_ceil(rows_per_chunk) };
    sum_partials_in_order(chunks, len, |c, _scratch| {
        let mut dw = vec![0f32; len];
        for r in c * rows_per_chunk..((c + 1) * rows_per_chunk).min(rows) {
            let (n, oh) = (r / s.out_h, r % s.out_h);
            let dy_row = &dy[r * s.out_w * s.c_out..][..s.out_w * s.c_out];
            for i in 0..s.kh {
                let Some(ih) = input_at(oh, i, s.stride.0, s.dilation.0, s.pad.0, s.h) else { continue };
                let x_row = &x[(n * s.h + ih) * s.w * s.c_in..][..s.w * s.c_in];
                for j in 0..s.kw {
                    let acc = &mut dw[(i * s.kw + j) * s.c_out..][..s.c_out];
                    for (ow, g) in dy_row.chunks_exact(s.c_out).enumerate() {
                        let Some(iw) = input_at(ow, j, s.stride.1, s.dilation.1, s.pad.2, s.w) else { continue };
                        madd(acc, &x_row[iw * s.c_in..][..s.c_in], g, mult);
                    }
                }
            }
        }
        dw
    })
}
