//! Pictures of a latent space: the histogram of an encoder's codes (a PNG bar chart or a text
//! table), the 2-D latent manifold of a VAE (a decoded grid of codes at Gaussian quantiles,
//! Kingma & Welling 2014, fig. 4), and interpolation strips (images decoded along the line
//! between two codes). Grids are written with [`crate::image::save_image_grid`].

use crate::image::{encode_png, save_image_grid};
use fovea_core::{DType, Device, Error, Result, Tensor};
use fovea_nn::layer::Layer;

/// How a decoder's outputs map to pixel values in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderOutput {
    /// Logits of a Bernoulli decoder (a [`crate::generative::Vae`]'s): `sigmoid(y)`.
    Logits,
    /// A tanh generator's output in `[-1, 1]` (the GANs'): `(y + 1) / 2`.
    Tanh,
    /// Values already in `[0, 1]`.
    Probabilities,
}

/// Decodes latent codes `z` (`[N, latent]`) to images `[N, H, W, C]` in `[0, 1]`, the decoder's
/// outputs (any shape with `H·W·C` values per sample) mapped by `output`.
///
/// # Errors
/// Errors from the decoder (a latent size it does not take); `ShapeMismatch` when its outputs
/// do not hold `H·W·C` values per sample.
pub fn decode_images(decoder: &dyn Layer, z: &Tensor, image_shape: [usize; 3], output: DecoderOutput) -> Result<Tensor> {
    let y = fovea_core::no_grad(|| decoder.apply(std::slice::from_ref(z), false))
        .map_err(|e| Error::invalid("decode_images", e.to_string()))?;
    let [h, w, c] = image_shape;
    let n = z.dims().first().copied().unwrap_or(0);
    if y.numel() != n * h * w * c {
        return Err(Error::shape("decode_images", format!("{n} images of {h}×{w}×{c} values from the decoder"), y.shape()));
    }
    let y = match output {
        DecoderOutput::Logits => y.sigmoid()?,
        DecoderOutput::Tanh => y.add_scalar(1.0)?.mul_scalar(0.5)?,
        DecoderOutput::Probabilities => y,
    };
    y.reshape_to([n, h, w, c])
}

/// The standard normal quantile `Φ⁻¹(p)` for `p` in `(0, 1)` (Acklam's rational
/// approximation, relative error below 1.2·10⁻⁹); ±∞ at 0 and 1, NaN outside.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383_577_518_672_69e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    const LOW: f64 = 0.02425;
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    // Tails: a rational function of √(−2 ln p); centre: of (p − ½)².
    let tail = |q: f64| {
        let q = (-2.0 * q.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail(p)
    } else if p > 1.0 - LOW {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The `n × n` grid of 2-D codes of a latent manifold plot, `[n·n, 2]` in row-major tile order:
/// with `q_k = Φ⁻¹(0.05 + 0.9·k/(n − 1))` (Kingma & Welling's quantiles; `q = 0` for `n = 1`),
/// tile `(row r, column c)` is `z = (q_c, q_{n−1−r})`, so `z₁` grows to the right and `z₂` upwards.
///
/// # Errors
/// `InvalidArgument` for `n = 0`.
pub fn manifold_codes(n: usize) -> Result<Tensor> {
    if n == 0 {
        return Err(Error::invalid("latent_manifold", "the grid needs at least 1 tile per side, got 0"));
    }
    let q: Vec<f32> = (0..n).map(|k| if n == 1 { 0.0 } else { normal_quantile(0.05 + 0.9 * k as f64 / (n - 1) as f64) as f32 }).collect();
    let z: Vec<f32> = (0..n * n).flat_map(|t| [q[t % n], q[n - 1 - t / n]]).collect();
    Tensor::from_vec(z, [n * n, 2], Device::Cpu)
}

/// Decodes [`manifold_codes`]`(n)` with a VAE's decoder taking 2-D codes and writes the
/// `n × n` grid of images to `path` as PNG; returns the canvas (uint8 `[H, W, 3]`).
///
/// # Errors
/// `InvalidArgument` naming the need for 2-D codes when the decoder does not take them; as
/// [`decode_images`] and [`save_image_grid`] otherwise.
pub fn save_latent_manifold(
    path: impl AsRef<std::path::Path>,
    decoder: &dyn Layer,
    n: usize,
    image_shape: [usize; 3],
    output: DecoderOutput,
) -> Result<Tensor> {
    let z = manifold_codes(n)?.to(decoder.device())?;
    let images = decode_images(decoder, &z, image_shape, output)
        .map_err(|e| Error::invalid("latent_manifold", format!("the decoder must take 2-D latent codes [N, 2]: {e}")))?;
    save_image_grid(path, &images, &[], n)
}

/// `steps` codes evenly spaced on the segment from `z0` to `z1` (both `[latent]` or
/// `[1, latent]`), endpoints included: `z_t = (1 − t)·z0 + t·z1`, `t = k/(steps − 1)`.
///
/// # Errors
/// `ShapeMismatch` when the codes differ in size; `InvalidArgument` for `steps < 2`.
pub fn interpolate_latents(z0: &Tensor, z1: &Tensor, steps: usize) -> Result<Tensor> {
    const OP: &str = "interpolate_latents";
    if steps < 2 {
        return Err(Error::invalid(OP, format!("need at least 2 steps (the two endpoints), got {steps}")));
    }
    if z0.numel() != z1.numel() || z0.numel() == 0 {
        return Err(Error::shape(OP, format!("two codes of one size, the first {}", z0.shape()), z1.shape()));
    }
    let d = z0.numel();
    let (a, b) = (z0.reshape_to([1, d])?.cast(DType::F32)?, z1.reshape_to([1, d])?.cast(DType::F32)?);
    let t: Vec<f32> = (0..steps).map(|k| k as f32 / (steps - 1) as f32).collect();
    let t = Tensor::from_vec(t, [steps, 1], a.device())?;
    // (1 − t)·z0 + t·z1 = z0 + t·(z1 − z0)
    a.add(&t.mul(&b.sub(&a)?)?)
}

/// Decodes [`interpolate_latents`]`(z0, z1, steps)` and writes the images as one row (an
/// interpolation strip) to `path` as PNG; returns the canvas (uint8 `[H, W, 3]`).
///
/// # Errors
/// As [`interpolate_latents`], [`decode_images`] and [`save_image_grid`].
pub fn save_interpolation_strip(
    path: impl AsRef<std::path::Path>,
    decoder: &dyn Layer,
    z0: &Tensor,
    z1: &Tensor,
    steps: usize,
    image_shape: [usize; 3],
    output: DecoderOutput,
) -> Result<Tensor> {
    let z = interpolate_latents(z0, z1, steps)?.to(decoder.device())?;
    save_image_grid(path, &decode_images(decoder, &z, image_shape, output)?, &[], steps)
}

/// A histogram of latent-code values: `counts[k]` values fell in `[lo + k·w, lo + (k+1)·w)`
/// with `w = (hi − lo) / bins` (the last bin includes `hi`; a single bin when `lo = hi`).
#[derive(Debug, Clone, PartialEq)]
pub struct LatentHistogram {
    /// The lowest value (the first edge).
    pub lo: f32,
    /// The highest value (the last edge).
    pub hi: f32,
    /// The count of each bin.
    pub counts: Vec<usize>,
}

/// The histogram of every value in `codes` (an encoder's outputs, any shape) over `bins`
/// equal bins from the smallest to the largest value (one bin when every value is equal), as
/// TensorBoard's histogram summary of the latent bins them
/// ([`fovea_nn::callbacks::summary::histogram_of`], which this reads its counts from).
///
/// # Errors
/// `InvalidArgument` for `bins = 0`, no values, or a NaN or infinite value.
pub fn latent_histogram(codes: &Tensor, bins: usize) -> Result<LatentHistogram> {
    const OP: &str = "latent_histogram";
    if bins == 0 {
        return Err(Error::invalid(OP, "need at least 1 bin, got 0"));
    }
    let v: Vec<f64> = codes.cast(DType::F32)?.to_vec::<f32>()?.into_iter().map(f64::from).collect();
    let h = fovea_nn::callbacks::summary::histogram_of(&v, bins).map_err(|e| Error::invalid(OP, format!("codes: {e}")))?;
    Ok(LatentHistogram { lo: h.min as f32, hi: h.max as f32, counts: h.bucket.iter().map(|&c| c as usize).collect() })
}

impl LatentHistogram {
    /// The `bins + 1` bin edges.
    pub fn edges(&self) -> Vec<f32> {
        let n = self.counts.len();
        (0..=n).map(|k| (self.lo as f64 + (self.hi as f64 - self.lo as f64) * k as f64 / n as f64) as f32).collect()
    }

    /// One line per bin: its range, its count and a bar of `#` (40 for the largest count).
    pub fn to_table(&self) -> String {
        let edges = self.edges();
        let max = self.counts.iter().copied().max().unwrap_or(0).max(1);
        let last = self.counts.len() - 1;
        let mut out = String::from("bin range                  count\n");
        for (k, &count) in self.counts.iter().enumerate() {
            let close = if k == last { ']' } else { ')' };
            let bar = "#".repeat((count * 40).div_ceil(max));
            out.push_str(&format!("[{:>9.4}, {:>9.4}{close}  {count:>7}  {bar}\n", edges[k], edges[k + 1]));
        }
        out
    }

    /// The histogram as a bar chart, uint8 `[height, 8·bins, 3]`: white, one blue bar per bin
    /// (6 pixels wide, centred in its 8), `round(height · count / max count)` pixels tall.
    ///
    /// # Errors
    /// `InvalidArgument` for a height of 0.
    pub fn render(&self, height: usize) -> Result<Tensor> {
        if height == 0 {
            return Err(Error::invalid("latent_histogram", "the chart needs a height of at least 1 pixel"));
        }
        let width = 8 * self.counts.len();
        let max = self.counts.iter().copied().max().unwrap_or(0).max(1);
        let mut canvas = vec![255u8; height * width * 3];
        for (k, &count) in self.counts.iter().enumerate() {
            let bar = (height as f64 * count as f64 / max as f64).round() as usize;
            for y in height - bar..height {
                for x in 8 * k + 1..8 * k + 7 {
                    canvas[(y * width + x) * 3..(y * width + x) * 3 + 3].copy_from_slice(&[31, 119, 180]);
                }
            }
        }
        Tensor::from_vec(canvas, [height, width, 3], Device::Cpu)
    }

    /// Writes [`LatentHistogram::render`]`(height)` to `path` as PNG, or [`LatentHistogram::to_table`]
    /// when `path` ends in `.txt`.
    ///
    /// # Errors
    /// As `render`; `InvalidArgument` for an unwritable path.
    pub fn save(&self, path: impl AsRef<std::path::Path>, height: usize) -> Result<()> {
        let path = path.as_ref();
        let bytes = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("txt")) {
            self.to_table().into_bytes()
        } else {
            encode_png(&self.render(height)?)?
        };
        std::fs::write(path, bytes).map_err(|e| Error::invalid("latent_histogram", format!("cannot write {}: {e}", path.display())))
    }
}

#[cfg(test)]
#[path = "visual_tests.rs"]
mod tests;
