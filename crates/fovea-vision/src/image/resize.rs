//! `tf.image.resize` (TF2 semantics: half-pixel centres) and `resize_with_pad`.
//!
//! Each method is turned into a `[out, in]` weight matrix per axis that reproduces TensorFlow's
//! kernel arithmetic in f32 (including the 1024-entry coefficient table of `ResizeBicubic`), and
//! the image is multiplied by it along H and then W.

use super::separable::AxisWeights;
use super::{apply_cols, apply_rows, as_batch, unbatch};
use fovea_core::{DType, Device, Error, Result, Tensor};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// Interpolation method of [`resize`] (`tf.image.ResizeMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResizeMethod {
    /// Linear interpolation between the two nearest pixels (`ResizeBilinear`).
    Bilinear,
    /// The pixel whose centre is nearest (`ResizeNearestNeighbor`).
    Nearest,
    /// Keys cubic convolution with a = -0.5 (`ResizeBicubic`, half-pixel centres).
    Bicubic,
    /// Area-weighted average of the covered input pixels (`ResizeArea`); ignores `antialias`.
    Area,
    /// Lanczos kernel of radius 3 (`ScaleAndTranslate`).
    Lanczos3,
    /// Lanczos kernel of radius 5 (`ScaleAndTranslate`).
    Lanczos5,
}

/// A 1-D kernel of `ScaleAndTranslate`: its radius and value at distance `x >= 0`.
#[derive(Clone, Copy)]
enum Kernel {
    Triangle,
    KeysCubic,
    Lanczos(f32),
}

impl Kernel {
    fn radius(self) -> f32 {
        match self {
            Kernel::Triangle => 1.0,
            Kernel::KeysCubic => 2.0,
            Kernel::Lanczos(r) => r,
        }
    }

    fn eval(self, x: f32) -> f32 {
        let x = x.abs();
        match self {
            Kernel::Triangle => (1.0 - x).max(0.0),
            Kernel::KeysCubic => {
                if x >= 2.0 {
                    0.0
                } else if x >= 1.0 {
                    ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
                } else {
                    ((1.5 * x - 2.5) * x) * x + 1.0
                }
            }
            Kernel::Lanczos(r) => {
                const PI: f32 = std::f32::consts::PI;
                if x > r {
                    0.0
                } else if x <= 1e-3 {
                    // The limit of sin(x)/x at 0.
                    1.0
                } else {
                    r * (PI * x).sin() * (PI * x / r).sin() / (PI * PI * x * x)
                }
            }
        }
    }
}

/// `ScaleAndTranslate`'s span weights (translation 0), as a dense `[out, in]` matrix.
fn scale_and_translate_weights(kernel: Kernel, antialias: bool, inp: usize, out: usize) -> Vec<f32> {
    let mut w = vec![0.0f32; out * inp];
    let scale = out as f32 / inp as f32;
    let inv_scale = (1.0f64 / scale as f64) as f32;
    // Antialiasing widens the kernel by the downscale factor so every input pixel contributes.
    let kernel_scale = if antialias { inv_scale.max(1.0) } else { 1.0 };
    let radius = kernel.radius() * kernel_scale;
    for x in 0..out {
        let sample = (x as f32 + 0.5) * inv_scale;
        if sample < 0.0 || sample > inp as f32 {
            continue;
        }
        let start = ((sample - radius - 0.5).ceil() as i64).clamp(0, inp as i64 - 1) as usize;
        let end = ((sample + radius - 0.5).floor() as i64).clamp(0, inp as i64 - 1) as usize + 1;
        let vals: Vec<f32> = (start..end).map(|s| kernel.eval((s as f32 + 0.5 - sample) * (1.0 / kernel_scale))).collect();
        let total: f32 = vals.iter().sum();
        if total.abs() >= 1000.0 * f32::MIN_POSITIVE {
            let inv = 1.0 / total;
            for (k, v) in vals.into_iter().enumerate() {
                w[x * inp + start + k] = v * inv;
            }
        }
    }
    w
}

/// `ResizeBilinear` with half-pixel centres.
fn bilinear_weights(inp: usize, out: usize) -> Vec<f32> {
    let mut w = vec![0.0f32; out * inp];
    let scale = inp as f32 / out as f32;
    for i in 0..out {
        let p = (i as f32 + 0.5) * scale - 0.5;
        let pf = p.floor();
        let lo = (pf as i64).max(0) as usize;
        let hi = (p.ceil() as i64).min(inp as i64 - 1) as usize;
        let lerp = p - pf;
        w[i * inp + lo] += 1.0 - lerp;
        w[i * inp + hi] += lerp;
    }
    w
}

/// `ResizeNearestNeighbor` with half-pixel centres: a one-hot row per output pixel.
fn nearest_weights(inp: usize, out: usize) -> Vec<f32> {
    let mut w = vec![0.0f32; out * inp];
    let scale = inp as f32 / out as f32;
    for i in 0..out {
        let src = (((i as f32 + 0.5) * scale).floor() as i64).min(inp as i64 - 1).max(0) as usize;
        w[i * inp + src] = 1.0;
    }
    w
}

/// `ResizeBicubic` (half-pixel centres, Keys a = -0.5). TF reads the weights from a table of
/// 1024 steps and drops taps outside the image, renormalising the rest; both are reproduced
/// because the table's rounding alone moves results by more than 1e-4.
fn bicubic_weights(inp: usize, out: usize) -> Vec<f32> {
    const TABLE: usize = 1024;
    const A: f32 = -0.5;
    let table: Vec<f32> = (0..=TABLE)
        .flat_map(|i| {
            let x = (i as f64 / TABLE as f64) as f32;
            let near = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
            let x1 = x + 1.0;
            let far = ((A * x1 - 5.0 * A) * x1 + 8.0 * A) * x1 - 4.0 * A;
            [near, far]
        })
        .collect();
    let mut w = vec![0.0f32; out * inp];
    let scale = inp as f32 / out as f32;
    for i in 0..out {
        let p = (i as f32 + 0.5) * scale - 0.5;
        let base = p.floor() as i64;
        let delta = p - base as f32;
        let off = (delta * TABLE as f32).round_ties_even() as usize;
        let taps = [table[off * 2 + 1], table[off * 2], table[(TABLE - off) * 2], table[(TABLE - off) * 2 + 1]];
        let mut idx = [0usize; 4];
        let mut wt = [0.0f32; 4];
        for k in 0..4 {
            let src = base - 1 + k as i64;
            let bounded = src.clamp(0, inp as i64 - 1);
            idx[k] = bounded as usize;
            wt[k] = if bounded == src { taps[k] } else { 0.0 };
        }
        let sum = wt[0] + wt[1] + wt[2] + wt[3];
        if sum.abs() >= 1000.0 * f32::MIN_POSITIVE {
            let inv = 1.0 / sum;
            wt.iter_mut().for_each(|v| *v *= inv);
        }
        for k in 0..4 {
            w[i * inp + idx[k]] += wt[k];
        }
    }
    w
}

/// `ResizeArea`: each output pixel averages the input interval `[i·s, (i+1)·s)` it covers,
/// partially covered pixels weighted by their overlap.
fn area_weights(inp: usize, out: usize) -> Vec<f32> {
    let mut w = vec![0.0f32; out * inp];
    let scale = inp as f32 / out as f32;
    for i in 0..out {
        let a = i as f32 * scale;
        let b = (i + 1) as f32 * scale;
        let (start, end) = (a.floor() as i64, b.ceil() as i64);
        for s in start..end {
            let sf = s as f32;
            let cover = if sf < a {
                if sf + 1.0 > b {
                    scale
                } else {
                    sf + 1.0 - a
                }
            } else if sf + 1.0 > b {
                b - sf
            } else {
                1.0
            };
            let src = s.clamp(0, inp as i64 - 1) as usize;
            w[i * inp + src] += cover / scale;
        }
    }
    w
}

/// The `[out, in]` resampling matrix of `method` along one axis.
pub(crate) fn resize_weights(method: ResizeMethod, antialias: bool, inp: usize, out: usize) -> Vec<f32> {
    match (method, antialias) {
        (ResizeMethod::Bilinear, false) => bilinear_weights(inp, out),
        (ResizeMethod::Bilinear, true) => scale_and_translate_weights(Kernel::Triangle, true, inp, out),
        (ResizeMethod::Bicubic, false) => bicubic_weights(inp, out),
        (ResizeMethod::Bicubic, true) => scale_and_translate_weights(Kernel::KeysCubic, true, inp, out),
        (ResizeMethod::Nearest, _) => nearest_weights(inp, out),
        (ResizeMethod::Area, _) => area_weights(inp, out),
        (ResizeMethod::Lanczos3, aa) => scale_and_translate_weights(Kernel::Lanczos(3.0), aa, inp, out),
        (ResizeMethod::Lanczos5, aa) => scale_and_translate_weights(Kernel::Lanczos(5.0), aa, inp, out),
    }
}

/// The weights of one axis, built once per (method, antialias, input, output) on the CPU: a
/// pipeline resizes every image with the same few sizes, and building and scanning the dense
/// matrices cost as much as the resampling itself. The cache is cleared when it fills up.
fn axis_weights(method: ResizeMethod, antialias: bool, inp: usize, out: usize, device: Device) -> Result<Arc<AxisWeights>> {
    type Key = (ResizeMethod, bool, usize, usize);
    const CAPACITY: usize = 64;
    static CACHE: LazyLock<Mutex<HashMap<Key, Arc<AxisWeights>>>> = LazyLock::new(Default::default);
    let build = || AxisWeights::new(resize_weights(method, antialias, inp, out), out, inp, device);
    if device != Device::Cpu {
        return build().map(Arc::new);
    }
    let key = (method, antialias, inp, out);
    if let Some(w) = CACHE.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return Ok(w.clone());
    }
    let w = Arc::new(build()?);
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= CAPACITY {
        cache.clear();
    }
    cache.insert(key, w.clone());
    Ok(w)
}

/// Resizes images to `size = (height, width)` (`tf.image.resize`, TF2 half-pixel centres).
///
/// `antialias` widens the kernel when downscaling (bilinear, bicubic, Lanczos), as TF does by
/// switching to `ScaleAndTranslate`; `Area` and `Nearest` ignore it. Differentiable with
/// respect to `images` for every method.
///
/// # Errors
/// `RankMismatch` unless `images` is `[H, W, C]` or `[N, H, W, C]`; `DTypeMismatch` unless f32
/// or uint8 (resized as float32 values in `[0, 255]`; `Nearest` returns uint8, as TF);
/// `InvalidArgument` for a zero target size or an empty input image.
pub fn resize(images: &Tensor, size: (usize, usize), method: ResizeMethod, antialias: bool) -> Result<Tensor> {
    const OP: &str = "resize";
    let (x, single) = as_batch(OP, images)?;
    // As TF: uint8 images are resized as float32 values in [0, 255]; only nearest keeps uint8.
    let from_u8 = x.dtype() == DType::U8;
    if !matches!(x.dtype(), DType::F32 | DType::U8) {
        return Err(Error::dtype(OP, "float32 or uint8", x.dtype()));
    }
    // The fast path reads uint8 pixels directly; the differentiable one needs f32.
    let x = if from_u8 && !super::separable::reads_u8(&x) { x.cast(DType::F32)? } else { x };
    let (h, w) = (x.dims()[1], x.dims()[2]);
    if size.0 == 0 || size.1 == 0 {
        return Err(Error::invalid(OP, format!("expected a positive target size, got {size:?}")));
    }
    if h == 0 || w == 0 {
        return Err(Error::invalid(OP, format!("expected a non-empty image, got shape {}", images.shape())));
    }
    let dev = x.device();
    let (wy, wx) = (axis_weights(method, antialias, h, size.0, dev)?, axis_weights(method, antialias, w, size.1, dev)?);
    let out = match super::separable::resample(&x, &wy, &wx) {
        Some(fast) => fast?,
        None => apply_cols(&apply_rows(&x, &wy)?, &wx)?,
    };
    let out = if from_u8 && method == ResizeMethod::Nearest { out.cast(DType::U8)? } else { out };
    unbatch(out, single)
}

/// Resizes keeping the aspect ratio, then zero-pads to `(target_height, target_width)`
/// (`tf.image.resize_with_pad`), centring the image.
///
/// # Errors
/// As [`resize`]; `InvalidArgument` for a zero target.
pub fn resize_with_pad(
    images: &Tensor,
    target_height: usize,
    target_width: usize,
    method: ResizeMethod,
    antialias: bool,
) -> Result<Tensor> {
    const OP: &str = "resize_with_pad";
    let (x, single) = as_batch(OP, images)?;
    if target_height == 0 || target_width == 0 {
        return Err(Error::invalid(OP, format!("expected a positive target size, got ({target_height}, {target_width})")));
    }
    let (h, w) = (x.dims()[1] as f32, x.dims()[2] as f32);
    let (th, tw) = (target_height as f32, target_width as f32);
    // The float32 arithmetic of TF's implementation, step by step, so sizes round alike.
    let ratio = (w / tw).max(h / th);
    let (rh, rw) = (h / ratio, w / ratio);
    let (new_h, new_w) = ((rh.floor() as usize).max(1), (rw.floor() as usize).max(1));
    let pad_h = (((th - rh) / 2.0).floor() as i64).max(0) as usize;
    let pad_w = (((tw - rw) / 2.0).floor() as i64).max(0) as usize;
    let resized = resize(&x, (new_h, new_w), method, antialias)?;
    unbatch(super::pad_to_bounding_box(&resized, pad_h, pad_w, target_height, target_width)?, single)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_rows_sum_to_one() {
        for m in [ResizeMethod::Bilinear, ResizeMethod::Nearest, ResizeMethod::Bicubic, ResizeMethod::Area, ResizeMethod::Lanczos3] {
            for aa in [false, true] {
                for (i, o) in [(7, 3), (3, 7), (5, 5), (1, 4), (4, 1)] {
                    let w = resize_weights(m, aa, i, o);
                    for r in 0..o {
                        let s: f32 = w[r * i..(r + 1) * i].iter().sum();
                        assert!((s - 1.0).abs() < 1e-5, "{m:?} aa={aa} {i}->{o} row {r} sums to {s}");
                    }
                }
            }
        }
    }
}
