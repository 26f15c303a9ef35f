//! Sample quality without Inception weights: the Fréchet distance (the FID formula) between
//! Gaussians fitted to a classifier's penultimate-layer features of real and generated images,
//! and class coverage (the share of each class among confident predictions).
//!
//! Feature dimensions are small (LeNet-5's 84), so the statistics and the matrix square root
//! run on the host in f64: a cyclic Jacobi eigendecomposition is exact enough and simple.

use fovea_core::{no_grad, DType, Tensor};
use fovea_nn::layer::Layer;
use fovea_nn::model::Sequential;
use fovea_nn::{Error, Result};

/// The eigenvalues and eigenvectors of a symmetric `n×n` matrix (row-major) by cyclic Jacobi
/// rotations: `(values, vectors)` with eigenvector `k` in column `k` of `vectors` (row-major).
///
/// # Errors
/// `Config` when `a` is not `n×n`, not finite, or not symmetric (to a relative 1e-9).
pub fn symmetric_eigen(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    if a.len() != n * n {
        return Err(Error::Config(format!("symmetric_eigen: expected {n}×{n} = {} values, got {}", n * n, a.len())));
    }
    let scale = a.iter().fold(0f64, |m, v| m.max(v.abs()));
    if !scale.is_finite() {
        return Err(Error::Config("symmetric_eigen: the matrix has non-finite entries".into()));
    }
    for i in 0..n {
        for j in 0..i {
            if (a[i * n + j] - a[j * n + i]).abs() > 1e-9 * scale.max(1e-300) {
                return Err(Error::Config(format!(
                    "symmetric_eigen: the matrix is not symmetric: a[{i}][{j}] = {} but a[{j}][{i}] = {}",
                    a[i * n + j],
                    a[j * n + i]
                )));
            }
        }
    }
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| m[i * n + j].powi(2)).sum();
        if off <= (1e-30 * scale * scale).max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation angle that zeroes m[p][q] (Golub & Van Loan, Alg. 8.4.1), in the
                // stable form that picks the smaller root for t = tan θ.
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    Ok(((0..n).map(|i| m[i * n + i]).collect(), v))
}

/// The square root of a symmetric positive semi-definite matrix: `V·diag(√λ)·Vᵀ`, with the
/// tiny negative eigenvalues rounding leaves clipped to 0.
///
/// # Errors
/// As [`symmetric_eigen`].
pub fn sqrtm_psd(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let (values, v) = symmetric_eigen(a, n)?;
    let roots: Vec<f64> = values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = (0..n).map(|k| v[i * n + k] * roots[k] * v[j * n + k]).sum();
        }
    }
    Ok(out)
}

/// A Gaussian fitted to feature vectors: the mean and the (unbiased, `N − 1`) covariance.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    /// The feature dimension `D`.
    pub dim: usize,
    /// The mean, `D` values.
    pub mean: Vec<f64>,
    /// The covariance, `D×D` row-major.
    pub cov: Vec<f64>,
}

impl FeatureStats {
    /// The statistics of features `[N, D]` (N ≥ 2).
    ///
    /// # Errors
    /// `Config` for a tensor that is not `[N, D]` with N ≥ 2; core errors reading it.
    pub fn of(features: &Tensor) -> Result<Self> {
        let d = features.dims();
        if d.len() != 2 || d[0] < 2 {
            return Err(Error::Config(format!("feature statistics need features [N, D] with N >= 2, got shape {}", features.shape())));
        }
        let (n, dim) = (d[0], d[1]);
        let x: Vec<f64> = features.cast(DType::F32)?.to_vec::<f32>()?.into_iter().map(f64::from).collect();
        let mut mean = vec![0.0; dim];
        for row in x.chunks(dim) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v / n as f64);
        }
        let mut cov = vec![0.0; dim * dim];
        for row in x.chunks(dim) {
            for i in 0..dim {
                let di = row[i] - mean[i];
                for j in 0..dim {
                    cov[i * dim + j] += di * (row[j] - mean[j]) / (n - 1) as f64;
                }
            }
        }
        Ok(FeatureStats { dim, mean, cov })
    }
}

fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                out[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    out
}

/// The Fréchet distance between two Gaussians, the FID formula:
/// `‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2·(Σ₁Σ₂)^½)`, where `tr((Σ₁Σ₂)^½)` is computed as
/// `tr((Σ₁^½ Σ₂ Σ₁^½)^½)` (the same eigenvalues, but a symmetric matrix).
///
/// # Errors
/// `Config` when the dimensions differ; as [`symmetric_eigen`].
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<f64> {
    if a.dim != b.dim {
        return Err(Error::Config(format!("frechet_distance: features of dimension {} and {}", a.dim, b.dim)));
    }
    let n = a.dim;
    let s1 = sqrtm_psd(&a.cov, n)?;
    let mut inner = matmul(&matmul(&s1, &b.cov, n), &s1, n);
    // Symmetrize what rounding left slightly asymmetric.
    for i in 0..n {
        for j in 0..i {
            let avg = 0.5 * (inner[i * n + j] + inner[j * n + i]);
            inner[i * n + j] = avg;
            inner[j * n + i] = avg;
        }
    }
    let (values, _) = symmetric_eigen(&inner, n)?;
    let tr_sqrt: f64 = values.iter().map(|&l| l.max(0.0).sqrt()).sum();
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y).powi(2)).sum();
    let trace = |c: &[f64]| (0..n).map(|i| c[i * n + i]).sum::<f64>();
    Ok(mean_term + trace(&a.cov) + trace(&b.cov) - 2.0 * tr_sqrt)
}

/// The share of each class among the confident predictions (top probability ≥ `threshold`),
/// and the share of predictions that were confident: `(per_class, confident)`. A generator that
/// covers every class has no share near 0.
///
/// # Errors
/// `Config` for probabilities that are not `[N, C]`; core errors reading them.
pub fn class_coverage(probs: &Tensor, threshold: f32) -> Result<(Vec<f64>, f64)> {
    let d = probs.dims();
    if d.len() != 2 || d[1] == 0 {
        return Err(Error::Config(format!("class_coverage needs probabilities [N, C], got shape {}", probs.shape())));
    }
    let p = probs.cast(DType::F32)?.to_vec::<f32>()?;
    let mut counts = vec![0usize; d[1]];
    for row in p.chunks(d[1]) {
        let (k, &best) = row.iter().enumerate().fold((0, &f32::NEG_INFINITY), |acc, (i, v)| if *v > *acc.1 { (i, v) } else { acc });
        if best >= threshold {
            counts[k] += 1;
        }
    }
    let confident: usize = counts.iter().sum();
    let shares = counts.iter().map(|&c| c as f64 / confident.max(1) as f64).collect();
    Ok((shares, confident as f64 / d[0].max(1) as f64))
}

/// A classifier's penultimate-layer output (every layer but the last) and its predictions,
/// in inference mode, in batches of `batch_size`.
///
/// # Errors
/// `Config` for a classifier with fewer than two layers or batch size 0; errors from the layers.
pub fn features_and_predictions(classifier: &Sequential, x: &Tensor, batch_size: usize) -> Result<(Tensor, Tensor)> {
    let layers = classifier.layers();
    if layers.len() < 2 || batch_size == 0 {
        return Err(Error::Config(format!("{}: a feature extractor needs at least 2 layers and a batch size >= 1", classifier.name())));
    }
    let n = x.dims().first().copied().unwrap_or(0);
    let (mut feats, mut preds) = (Vec::new(), Vec::new());
    no_grad(|| -> Result<()> {
        for start in (0..n).step_by(batch_size) {
            let mut h = x.narrow(0, start, batch_size.min(n - start))?;
            for layer in &layers[..layers.len() - 1] {
                h = layer.apply(&[h], false)?;
            }
            preds.push(layers[layers.len() - 1].apply(std::slice::from_ref(&h), false)?);
            feats.push(h.reshape(&[h.dims()[0] as isize, -1])?);
        }
        Ok(())
    })?;
    let cat = |v: &[Tensor]| -> Result<Tensor> { Ok(Tensor::concat(&v.iter().collect::<Vec<_>>(), 0)?) };
    Ok((cat(&feats)?, cat(&preds)?))
}
