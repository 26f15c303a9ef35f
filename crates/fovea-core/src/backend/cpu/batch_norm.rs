//! Batch normalization's per-channel primitives on `[rows, channels]` data: one pass for the
//! statistics, one for the normalization, two for the backward pass — instead of the dozen
//! full-tensor passes (and saved intermediates) of the composed formula.
//!
//! Sums run over blocks of rows in f32 (so the inner loop over channels vectorizes) and are
//! carried across blocks in f64, which keeps them as accurate as the reference's f64 sums at
//! ResNet batch sizes (10⁵ rows and more).

use super::{chunked, PARALLEL_THRESHOLD};
use crate::{HostData, Result};
use rayon::prelude::*;

/// Rows summed in f32 before the partial sums move into f64.
const BLOCK_ROWS: usize = 64;

/// Rows per parallel task: about 64 K elements, so a task outweighs its scheduling.
fn rows_per_task(channels: usize) -> usize {
    ((1 << 16) / channels.max(1)).max(BLOCK_ROWS)
}

/// Per-channel sums `Σ f(row)` for two quantities at once, over all rows, in parallel for
/// large inputs. `f` adds one row's contribution into the two f32 accumulators.
fn channel_sums2(len: usize, channels: usize, f: impl Fn(usize, &mut [f32], &mut [f32]) + Sync) -> (Vec<f64>, Vec<f64>) {
    let rows = len / channels.max(1);
    let task = |range: std::ops::Range<usize>| {
        let (mut s1, mut s2) = (vec![0f64; channels], vec![0f64; channels]);
        let (mut b1, mut b2) = (vec![0f32; channels], vec![0f32; channels]);
        for block in range.clone().step_by(BLOCK_ROWS) {
            b1.fill(0.0);
            b2.fill(0.0);
            for r in block..(block + BLOCK_ROWS).min(range.end) {
                f(r, &mut b1, &mut b2);
            }
            for c in 0..channels {
                s1[c] += f64::from(b1[c]);
                s2[c] += f64::from(b2[c]);
            }
        }
        (s1, s2)
    };
    let add = |(mut a1, mut a2): (Vec<f64>, Vec<f64>), (b1, b2): (Vec<f64>, Vec<f64>)| {
        a1.iter_mut().zip(b1).for_each(|(a, b)| *a += b);
        a2.iter_mut().zip(b2).for_each(|(a, b)| *a += b);
        (a1, a2)
    };
    if len < PARALLEL_THRESHOLD {
        return task(0..rows);
    }
    let per = rows_per_task(channels);
    (0..rows.div_ceil(per))
        .into_par_iter()
        .map(|t| task(t * per..((t + 1) * per).min(rows)))
        .reduce(|| (vec![0f64; channels], vec![0f64; channels]), add)
}

/// Runs `f(first_row, rows)` over whole-row pieces of `out` (see [`chunked`]).
fn map_rows(out: &mut [f32], channels: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let c = channels.max(1);
    chunked(out, rows_per_task(channels) * c, |start, piece| f(start / c, piece));
}

/// Per-channel mean and biased variance. The sums are taken around the first row's values, a
/// shift that avoids the cancellation of `E[x²] − E[x]²` when the mean is large.
pub(super) fn batch_norm_stats(x: &HostData, channels: usize) -> Result<(HostData, HostData)> {
    let x = x.as_f32("batch_norm_stats")?;
    let rows = x.len() / channels.max(1);
    if rows == 0 {
        return Ok((HostData::F32(vec![0.0; channels]), HostData::F32(vec![0.0; channels])));
    }
    let shift = &x[..channels];
    let (s1, s2) = channel_sums2(x.len(), channels, |r, b1, b2| {
        let row = &x[r * channels..(r + 1) * channels];
        for (((s1, s2), &v), &k) in b1.iter_mut().zip(b2.iter_mut()).zip(row).zip(shift) {
            let d = v - k;
            *s1 += d;
            *s2 += d * d;
        }
    });
    let n = rows as f64;
    let mean = (0..channels).map(|c| (f64::from(shift[c]) + s1[c] / n) as f32).collect();
    let var = (0..channels).map(|c| (s2[c] / n - (s1[c] / n).powi(2)).max(0.0) as f32).collect();
    Ok((HostData::F32(mean), HostData::F32(var)))
}

/// `y[r, c] = x[r, c]·scale[c] + shift[c]`, then ReLU when `relu` (`UnaryOp::Relu`'s rule).
pub(super) fn channel_affine(x: &HostData, scale: &HostData, shift: &HostData, channels: usize, relu: bool) -> Result<HostData> {
    const OP: &str = "channel_affine";
    let (x, scale, shift) = (x.as_f32(OP)?, scale.as_f32(OP)?, shift.as_f32(OP)?);
    let mut y = crate::buffer_pool::for_overwrite(x.len());
    // `scale` and `shift` repeated over a run of whole rows at least 256 floats long, so the
    // inner loop is long enough to vectorise even for LeNet's 6 channels.
    let run = (256 / channels.max(1)).max(1) * channels;
    let (scale, shift) = (scale.repeat(run / channels.max(1)), shift.repeat(run / channels.max(1)));
    fn rows_with<const RELU: bool>(x: &[f32], scale: &[f32], shift: &[f32], channels: usize, r0: usize, out: &mut [f32]) {
        let xs = &x[r0 * channels..r0 * channels + out.len()];
        for (yr, xr) in out.chunks_mut(scale.len()).zip(xs.chunks(scale.len())) {
            for (((y, &v), &s), &t) in yr.iter_mut().zip(xr).zip(scale).zip(shift) {
                let a = v * s + t;
                // `UnaryOp::Relu`'s rule: only positive values pass.
                *y = if !RELU || a > 0.0 { a } else { 0.0 };
            }
        }
    }
    if relu {
        map_rows(&mut y, channels, |r0, out| rows_with::<true>(x, &scale, &shift, channels, r0, out));
    } else {
        map_rows(&mut y, channels, |r0, out| rows_with::<false>(x, &scale, &shift, channels, r0, out));
    }
    Ok(HostData::F32(y))
}

/// Training-mode batch normalization's backward pass; see the reference implementation for the
/// formula, evaluated here as `dx = a·dy − b·(x − μ) − d` per channel with `a = γσ⁻¹`,
/// `b = a·k₂` and `d = a·k₁`.
pub(super) fn batch_norm_grad(
    x: &HostData,
    dy: &HostData,
    mean: &HostData,
    invstd: &HostData,
    gamma: &HostData,
    channels: usize,
) -> Result<(HostData, HostData, HostData)> {
    const OP: &str = "batch_norm_grad";
    let (x, dy, mean, invstd, gamma) = (x.as_f32(OP)?, dy.as_f32(OP)?, mean.as_f32(OP)?, invstd.as_f32(OP)?, gamma.as_f32(OP)?);
    let (sum_dy, sum_dy_xmu) = channel_sums2(x.len(), channels, |r, b1, b2| {
        let (xr, gr) = (&x[r * channels..(r + 1) * channels], &dy[r * channels..(r + 1) * channels]);
        for ((((s1, s2), &v), &g), &m) in b1.iter_mut().zip(b2.iter_mut()).zip(xr).zip(gr).zip(mean) {
            *s1 += g;
            *s2 += g * (v - m);
        }
    });
    let n = (x.len() / channels.max(1)).max(1) as f64;
    let (mut a, mut b, mut d) = (vec![0f32; channels], vec![0f32; channels], vec![0f32; channels]);
    for c in 0..channels {
        let inv = f64::from(invstd[c]);
        let (k1, k2) = (sum_dy[c] / n, sum_dy_xmu[c] / n * inv * inv);
        let ac = f64::from(gamma[c]) * inv;
        a[c] = ac as f32;
        b[c] = (ac * k2) as f32;
        d[c] = (ac * k1) as f32;
    }
    let mut dx = crate::buffer_pool::for_overwrite(x.len());
    map_rows(&mut dx, channels, |r0, out| {
        let (xs, gs) = (&x[r0 * channels..r0 * channels + out.len()], &dy[r0 * channels..r0 * channels + out.len()]);
        for ((o, xr), gr) in out.chunks_exact_mut(channels).zip(xs.chunks_exact(channels)).zip(gs.chunks_exact(channels)) {
            for (((((o, &v), &g), &m), &a), (&b, &d)) in o.iter_mut().zip(xr).zip(gr).zip(mean).zip(&a).zip(b.iter().zip(&d)) {
                *o = a * g - b * (v - m) - d;
            }
        }
    });
    let to_f32 = |v: Vec<f64>| HostData::F32(v.into_iter().map(|v| v as f32).collect());
    Ok((HostData::F32(dx), to_f32(sum_dy), to_f32(sum_dy_xmu)))
}
