//! Colour conversions and adjustments (`tf.image.rgb_to_*`, `adjust_*`, standardisation).

use super::{as_batch, require_f32, unbatch};
use fovea_core::{DType, Error, Result, Tensor};

/// Converts between uint8 `[0, 255]` and float32 `[0, 1]` images (`tf.image.convert_image_dtype`).
///
/// u8 → f32 multiplies by `1/255`. f32 → u8 multiplies by `255.5` and truncates toward zero;
/// with `saturate` the product is first clamped to `[0, 255]`, otherwise out-of-range values wrap
/// as TF's unsaturated cast does on x86. Same dtype in and out returns the input.
///
/// # Errors
/// `Unsupported` for dtypes other than uint8 and float32.
pub fn convert_image_dtype(image: &Tensor, dtype: DType, saturate: bool) -> Result<Tensor> {
    const OP: &str = "convert_image_dtype";
    match (image.dtype(), dtype) {
        (a, b) if a == b => Ok(image.clone()),
        (DType::U8, DType::F32) => image.cast(DType::F32)?.mul_scalar(1.0 / 255.0),
        (DType::F32, DType::U8) => {
            let v: Vec<u8> = image
                .to_vec::<f32>()?
                .into_iter()
                .map(|x| {
                    let s = x * 255.5;
                    if saturate {
                        s.clamp(0.0, 255.0) as u8
                    } else {
                        (s as i32) as u8
                    }
                })
                .collect();
            Tensor::from_vec(v, image.shape().clone(), image.device())
        }
        (a, b) => Err(Error::Unsupported { op: OP, msg: format!("conversion from {a} to {b}; only uint8 <-> float32") }),
    }
}

fn require_channels(op: &'static str, t: &Tensor, c: usize) -> Result<()> {
    if t.rank() == 0 || t.dims()[t.rank() - 1] != c {
        return Err(Error::shape(op, format!("a last (channel) axis of size {c}"), t.shape()));
    }
    Ok(())
}

/// Luma `0.2989 R + 0.5870 G + 0.1140 B` with a kept channel axis of 1 (`tf.image.rgb_to_grayscale`).
/// Any rank whose last axis is 3. Differentiable.
///
/// # Errors
/// `ShapeMismatch` unless the last axis is 3; `DTypeMismatch` unless f32.
pub fn rgb_to_grayscale(images: &Tensor) -> Result<Tensor> {
    const OP: &str = "rgb_to_grayscale";
    require_channels(OP, images, 3)?;
    require_f32(OP, images)?;
    let weights = Tensor::from_vec(vec![0.2989f32, 0.5870, 0.1140], vec![3, 1], images.device())?;
    let mut dims = images.dims().to_vec();
    *dims.last_mut().expect("rank >= 1") = 1;
    images.reshape(&[-1, 3])?.matmul(&weights)?.reshape_to(dims)
}

/// Repeats the single channel three times (`tf.image.grayscale_to_rgb`). Differentiable.
///
/// # Errors
/// `ShapeMismatch` unless the last axis is 1.
pub fn grayscale_to_rgb(images: &Tensor) -> Result<Tensor> {
    require_channels("grayscale_to_rgb", images, 1)?;
    let mut reps = vec![1; images.rank()];
    *reps.last_mut().expect("rank >= 1") = 3;
    images.tile(&reps)
}

/// Splits the last axis into its three channels, each keeping a size-1 axis.
fn channels3(op: &'static str, images: &Tensor) -> Result<[Tensor; 3]> {
    require_channels(op, images, 3)?;
    require_f32(op, images)?;
    Ok([images.narrow(-1, 0, 1)?, images.narrow(-1, 1, 1)?, images.narrow(-1, 2, 1)?])
}

/// Composed from core ops so the gradient is automatic. Divisions use a denominator of 1 where
/// the branch is masked out anyway: a masked 0/0 would still poison the gradient with NaN.
fn hsv_from_channels(op: &'static str, images: &Tensor) -> Result<Tensor> {
    let [r, g, b] = channels3(op, images)?;
    let dev = images.device();
    let (zero, one) = (Tensor::scalar(0.0, dev)?, Tensor::scalar(1.0, dev)?);
    let v = images.max(&[-1], true)?;
    let range = v.sub(&images.min(&[-1], true)?)?;
    let has_range = range.gt(&zero)?;
    let has_value = v.gt(&zero)?;
    let s = has_value.select(&range.div(&has_value.select(&v, &one)?)?, &zero)?;
    let six_range = has_range.select(&range, &one)?.mul_scalar(6.0)?;
    let h_r = g.sub(&b)?.div(&six_range)?;
    let h_g = b.sub(&r)?.div(&six_range)?.add_scalar(2.0 / 6.0)?;
    let h_b = r.sub(&g)?.div(&six_range)?.add_scalar(4.0 / 6.0)?;
    let h = r.eq(&v)?.select(&h_r, &g.eq(&v)?.select(&h_g, &h_b)?)?;
    let h = has_range.select(&h, &zero)?;
    let h = h.lt(&zero)?.select(&h.add_scalar(1.0)?, &h)?;
    Tensor::concat(&[&h, &s, &v], -1)
}

/// The inverse of [`hsv_from_channels`], with TF's piecewise-linear hue ramps.
fn rgb_from_hsv(h: &Tensor, s: &Tensor, v: &Tensor) -> Result<Tensor> {
    let dh = h.mul_scalar(6.0)?;
    let dr = dh.sub_scalar(3.0)?.abs()?.sub_scalar(1.0)?.clip(0.0, 1.0)?;
    let dg = dh.sub_scalar(2.0)?.abs()?.neg()?.add_scalar(2.0)?.clip(0.0, 1.0)?;
    let db = dh.sub_scalar(4.0)?.abs()?.neg()?.add_scalar(2.0)?.clip(0.0, 1.0)?;
    let one_minus_s = s.neg()?.add_scalar(1.0)?;
    let ch = |d: &Tensor| one_minus_s.add(&s.mul(d)?)?.mul(v);
    Tensor::concat(&[&ch(&dr)?, &ch(&dg)?, &ch(&db)?], -1)
}

/// RGB in `[0, 1]` to HSV with hue in `[0, 1)` (`tf.image.rgb_to_hsv`). Differentiable (as TF's
/// `RGBToHSV` gradient: piecewise, away from ties between channels).
///
/// # Errors
/// `ShapeMismatch` unless the last axis is 3; `DTypeMismatch` unless f32.
pub fn rgb_to_hsv(images: &Tensor) -> Result<Tensor> {
    hsv_from_channels("rgb_to_hsv", images)
}

/// HSV to RGB (`tf.image.hsv_to_rgb`). Differentiable (TF registers no gradient here).
///
/// # Errors
/// `ShapeMismatch` unless the last axis is 3; `DTypeMismatch` unless f32.
pub fn hsv_to_rgb(images: &Tensor) -> Result<Tensor> {
    let [h, s, v] = channels3("hsv_to_rgb", images)?;
    rgb_from_hsv(&h, &s, &v)
}

/// Adds `delta` to every value (`tf.image.adjust_brightness`). Differentiable.
///
/// # Errors
/// `DTypeMismatch` unless f32.
pub fn adjust_brightness(images: &Tensor, delta: f32) -> Result<Tensor> {
    require_f32("adjust_brightness", images)?;
    images.add_scalar(delta)
}

/// `(x − mean) · factor + mean`, the mean taken per image and channel over H and W
/// (`tf.image.adjust_contrast`). Differentiable.
///
/// # Errors
/// `RankMismatch` unless rank 3 or 4; `DTypeMismatch` unless f32.
pub fn adjust_contrast(images: &Tensor, factor: f32) -> Result<Tensor> {
    const OP: &str = "adjust_contrast";
    let (x, single) = as_batch(OP, images)?;
    require_f32(OP, &x)?;
    let mean = x.mean(&[1, 2], true)?;
    unbatch(x.sub(&mean)?.mul_scalar(factor)?.add(&mean)?, single)
}

/// `gain · x^gamma` (`tf.image.adjust_gamma`). Differentiable.
///
/// # Errors
/// `InvalidArgument` for a negative `gamma`; `DTypeMismatch` unless f32.
pub fn adjust_gamma(images: &Tensor, gamma: f32, gain: f32) -> Result<Tensor> {
    const OP: &str = "adjust_gamma";
    require_f32(OP, images)?;
    if gamma < 0.0 || gamma.is_nan() {
        return Err(Error::invalid(OP, format!("expected a non-negative gamma, got {gamma}")));
    }
    images.powf(gamma)?.mul_scalar(gain)
}

/// Scales saturation by `factor` in HSV space, clamped to `[0, 1]` (`tf.image.adjust_saturation`).
/// Differentiable here, though TF's fused kernel has no gradient.
///
/// # Errors
/// `ShapeMismatch` unless the last axis is 3; `DTypeMismatch` unless f32.
pub fn adjust_saturation(images: &Tensor, factor: f32) -> Result<Tensor> {
    let [h, s, v] = channels3("adjust_saturation", &hsv_from_channels("adjust_saturation", images)?)?;
    rgb_from_hsv(&h, &s.mul_scalar(factor)?.clip(0.0, 1.0)?, &v)
}

/// Rotates hue by `delta` (a fraction of a turn, in `[-1, 1]`) (`tf.image.adjust_hue`).
/// Differentiable here, though TF's fused kernel has no gradient.
///
/// # Errors
/// `InvalidArgument` for `|delta| > 1`; `ShapeMismatch` unless the last axis is 3;
/// `DTypeMismatch` unless f32.
pub fn adjust_hue(images: &Tensor, delta: f32) -> Result<Tensor> {
    const OP: &str = "adjust_hue";
    if !(-1.0..=1.0).contains(&delta) {
        return Err(Error::invalid(OP, format!("expected delta in [-1, 1], got {delta}")));
    }
    let [h, s, v] = channels3(OP, &hsv_from_channels(OP, images)?)?;
    let shifted = h.add_scalar(delta)?;
    rgb_from_hsv(&shifted.sub(&shifted.floor()?)?, &s, &v)
}

/// `(x − mean) / max(std, 1/√N)` per image over H, W and C (`tf.image.per_image_standardization`).
/// Differentiable.
///
/// # Errors
/// `RankMismatch` unless rank 3 or 4; `DTypeMismatch` unless f32; `InvalidArgument` for an
/// empty image.
pub fn per_image_standardization(images: &Tensor) -> Result<Tensor> {
    const OP: &str = "per_image_standardization";
    let (x, single) = as_batch(OP, images)?;
    require_f32(OP, &x)?;
    let n: usize = x.dims()[1..].iter().product();
    if n == 0 {
        return Err(Error::invalid(OP, format!("expected a non-empty image, got shape {}", images.shape())));
    }
    let mean = x.mean(&[1, 2, 3], true)?;
    let centred = x.sub(&mean)?;
    let std = centred.square()?.mean(&[1, 2, 3], true)?.sqrt()?;
    // The floor keeps a constant image finite (it maps to zeros), as in TF.
    let floor = Tensor::scalar(1.0 / (n as f32).sqrt(), x.device())?;
    unbatch(centred.div(&std.maximum(&floor)?)?, single)
}
