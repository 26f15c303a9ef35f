//! Separable resampling without the matrix product: image resizing and cropping weights are
//! `[out, in]` matrices with a few nonzeros per row (2 for bilinear, 4 for bicubic), so a
//! dense product over a channels-last image wastes nearly all of its work (it was 65% of a
//! JPEG augmentation pipeline's time). When no gradient is needed, each output row or column
//! is a short weighted sum of whole input rows or pixels instead.

use fovea_core::{DType, Device, Result, Storage, Tensor};
use rayon::prelude::*;

/// The nonzero run of each row of the dense `[out, inp]` matrix `w`: first input index and
/// weights (zeros inside the run are kept; they cost little).
fn runs(w: &[f32], out: usize, inp: usize) -> Vec<(usize, &[f32])> {
    (0..out)
        .map(|r| {
            let row = &w[r * inp..(r + 1) * inp];
            let first = row.iter().position(|&v| v != 0.0).unwrap_or(0);
            let end = row.iter().rposition(|&v| v != 0.0).map_or(first, |l| l + 1);
            (first, &row[first..end])
        })
        .collect()
}

/// The f32 data of `x` and `w` when the fast path applies: CPU tensors that need no gradient.
fn fast_inputs<'a>(x: &'a Tensor, w: &'a Tensor) -> Option<(&'a [f32], &'a [f32])> {
    if x.requires_grad() || w.requires_grad() || x.device() != Device::Cpu || x.dtype() != DType::F32 {
        return None;
    }
    match (x.storage(), w.storage()) {
        (Storage::F32(x), Storage::F32(w)) => Some((x, w)),
        _ => None,
    }
}

/// `out[n, r, :, :] = Σ_k w[r, k] · x[n, k, :, :]` for `x` `[N, H, W, C]` and `w` `[out, H]`;
/// `None` when a gradient may be needed (the caller then uses the differentiable product).
pub(crate) fn rows(x: &Tensor, w: &Tensor) -> Option<Result<Tensor>> {
    let (xs, weights) = fast_inputs(x, w)?;
    let d = x.dims();
    let (n, h, line) = (d[0], d[1], d[2] * d[3]);
    let out = w.dims()[0];
    let runs = runs(weights, out, h);
    let mut y = vec![0f32; n * out * line];
    let image = |(img, dst): (usize, &mut [f32])| {
        for (r, &(first, ws)) in runs.iter().enumerate() {
            let dst = &mut dst[r * line..(r + 1) * line];
            for (k, &wk) in ws.iter().enumerate() {
                let src = &xs[(img * h + first + k) * line..][..line];
                dst.iter_mut().zip(src).for_each(|(o, v)| *o += wk * v);
            }
        }
    };
    if line * out > 0 {
        y.par_chunks_mut(out * line).enumerate().for_each(image);
    }
    Some(Tensor::from_vec(y, [n, out, d[2], d[3]], Device::Cpu))
}

/// `out[n, h, c, :] = Σ_k w[c, k] · x[n, h, k, :]` for `x` `[N, H, W, C]` and `w` `[out, W]`;
/// `None` when a gradient may be needed.
pub(crate) fn cols(x: &Tensor, w: &Tensor) -> Option<Result<Tensor>> {
    let (xs, weights) = fast_inputs(x, w)?;
    let d = x.dims();
    let (lines, wd, c) = (d[0] * d[1], d[2], d[3]);
    let out = w.dims()[0];
    let runs = runs(weights, out, wd);
    let mut y = vec![0f32; lines * out * c];
    let line = |(l, dst): (usize, &mut [f32])| {
        let src = &xs[l * wd * c..][..wd * c];
        for (oc, &(first, ws)) in runs.iter().enumerate() {
            let px = &mut dst[oc * c..(oc + 1) * c];
            for (k, &wk) in ws.iter().enumerate() {
                px.iter_mut().zip(&src[(first + k) * c..][..c]).for_each(|(o, v)| *o += wk * v);
            }
        }
    };
    if out * c > 0 {
        // Lines in groups, so that small images do not pay a task per line.
        let group = (1usize << 14).div_ceil(out * c).max(1);
        y.par_chunks_mut(group * out * c).enumerate().for_each(|(g, chunk)| {
            for (i, dst) in chunk.chunks_mut(out * c).enumerate() {
                line((g * group + i, dst));
            }
        });
    }
    Some(Tensor::from_vec(y, [d[0], d[1], out, c], Device::Cpu))
}

#[cfg(test)]
mod tests {
    use crate::image::{resize, ResizeMethod};
    use fovea_core::{Device, Tensor};

    /// The fast path (no gradient) and the differentiable product give the same images.
    #[test]
    fn fast_resampling_matches_the_matrix_product() {
        let x = Tensor::random_uniform([2, 7, 9, 3], 0.0, 1.0, Some(5), Device::Cpu).unwrap();
        let tracked = x.with_requires_grad(true).unwrap();
        for method in [ResizeMethod::Bilinear, ResizeMethod::Bicubic, ResizeMethod::Area, ResizeMethod::Lanczos3, ResizeMethod::Nearest] {
            for (size, aa) in [((4, 13), false), ((11, 5), true), ((7, 9), false)] {
                let fast = resize(&x, size, method, aa).unwrap().to_vec::<f32>().unwrap();
                let slow = resize(&tracked, size, method, aa).unwrap().to_vec::<f32>().unwrap();
                assert_eq!(fast.len(), slow.len());
                for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{method:?} {size:?} aa={aa} element {i}: {a} vs {b}");
                }
            }
        }
    }
}
