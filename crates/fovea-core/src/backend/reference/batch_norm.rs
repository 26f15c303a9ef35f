//! Per-channel primitives of batch normalization on data viewed as `[rows, channels]`
//! (channels last, every leading axis folded into the rows).

use crate::{HostData, Result};

fn rows(x: &[f32], channels: usize) -> impl Iterator<Item = &[f32]> {
    x.chunks_exact(channels.max(1))
}

/// Per-channel mean and biased variance (what `tf.nn.moments` gives over every axis but the
/// last), accumulated in f64 in two passes.
pub fn batch_norm_stats(x: &HostData, channels: usize) -> Result<(HostData, HostData)> {
    let x = x.as_f32("batch_norm_stats")?;
    let n = (x.len() / channels.max(1)).max(1) as f64;
    let mut mean = vec![0f64; channels];
    for row in rows(x, channels) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; channels];
    for row in rows(x, channels) {
        for ((s, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    let to_f32 = |v: Vec<f64>| HostData::F32(v.into_iter().map(|v| v as f32).collect());
    Ok((to_f32(mean), to_f32(var.into_iter().map(|s| s / n).collect())))
}

/// `y[r, c] = x[r, c]·scale[c] + shift[c]`, then ReLU when `relu` (`UnaryOp::Relu`'s rule:
/// only positive values pass).
pub fn channel_affine(x: &HostData, scale: &HostData, shift: &HostData, channels: usize, relu: bool) -> Result<HostData> {
    const OP: &str = "channel_affine";
    let (x, scale, shift) = (x.as_f32(OP)?, scale.as_f32(OP)?, shift.as_f32(OP)?);
    let mut y = Vec::with_capacity(x.len());
    for row in rows(x, channels) {
        y.extend(row.iter().zip(scale).zip(shift).map(|((&v, &s), &t)| {
            let a = (f64::from(v) * f64::from(s) + f64::from(t)) as f32;
            // `UnaryOp::Relu`'s rule: only positive values pass.
            if !relu || a > 0.0 {
                a
            } else {
                0.0
            }
        }));
    }
    Ok(HostData::F32(y))
}

/// The backward pass of training-mode batch normalization `y = γ·(x − μ)·σ⁻¹ + β`, where the
/// batch statistics μ and σ⁻¹ = 1/√(var + ε) depend on `x`. Returns
/// `(dx, Σ_rows dy, Σ_rows dy·(x − μ))`; the caller turns the sums into dβ and dγ.
///
/// With `k₁ = Σdy / N` and `k₂ = Σdy·(x − μ) / N · σ⁻²`:
/// `dx = γσ⁻¹ · (dy − k₁ − (x − μ)·k₂)` (the mean's and the variance's paths folded in).
pub fn batch_norm_grad(
    x: &HostData,
    dy: &HostData,
    mean: &HostData,
    invstd: &HostData,
    gamma: &HostData,
    channels: usize,
) -> Result<(HostData, HostData, HostData)> {
    const OP: &str = "batch_norm_grad";
    let (x, dy, mean, invstd, gamma) = (x.as_f32(OP)?, dy.as_f32(OP)?, mean.as_f32(OP)?, invstd.as_f32(OP)?, gamma.as_f32(OP)?);
    let n = (x.len() / channels.max(1)).max(1) as f64;
    let (mut sum_dy, mut sum_dy_xmu) = (vec![0f64; channels], vec![0f64; channels]);
    for (xr, gr) in rows(x, channels).zip(rows(dy, channels)) {
        for c in 0..channels {
            sum_dy[c] += f64::from(gr[c]);
            sum_dy_xmu[c] += f64::from(gr[c]) * (f64::from(xr[c]) - f64::from(mean[c]));
        }
    }
    let mut dx = Vec::with_capacity(x.len());
    for (xr, gr) in rows(x, channels).zip(rows(dy, channels)) {
        for c in 0..channels {
            let inv = f64::from(invstd[c]);
            let (k1, k2) = (sum_dy[c] / n, sum_dy_xmu[c] / n * inv * inv);
            let xmu = f64::from(xr[c]) - f64::from(mean[c]);
            dx.push((f64::from(gamma[c]) * inv * (f64::from(gr[c]) - k1 - xmu * k2)) as f32);
        }
    }
    let to_f32 = |v: Vec<f64>| HostData::F32(v.into_iter().map(|v| v as f32).collect());
    Ok((HostData::F32(dx), to_f32(sum_dy), to_f32(sum_dy_xmu)))
}
