//! Stateless random image ops (`tf.image.stateless_random_*`): each takes a seed pair and is a
//! pure function of it, so the same seed gives the same output on every run and thread, and a
//! pipeline can derive per-element seeds (e.g. `(epoch, index)`) without shared state.
//!
//! Each op draws its parameter(s) with fovea-core's [`Rng`] and then applies the deterministic
//! op of the same name (`adjust_brightness`, `flip_left_right`, ...) with them. Following TF,
//! crop offsets and colour parameters are drawn once per call (shared by a batch), while the
//! random flips toss one coin per image.

use super::{
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, as_batch, convert_image_dtype, crop_to_bounding_box, decode_jpeg,
    encode_jpeg, require_f32, unbatch,
};
use fovea_core::random::Rng;
use fovea_core::{DType, Error, Result, Tensor};

/// A stateless seed: two integers, as TF's `seed` argument of `stateless_random_*` ops.
pub type Seed = (u64, u64);

/// The generator of one op call: both halves of the seed and the op's own salt, so two ops
/// given the same seed still draw independently.
fn rng(seed: Seed, salt: u64) -> Rng {
    let mut r = Rng::new(seed.0 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mixed = r.next_u64() ^ seed.1;
    Rng::new(mixed)
}

fn uniform(r: &mut Rng, lo: f32, hi: f32) -> f32 {
    (lo as f64 + (hi as f64 - lo as f64) * r.uniform()) as f32
}

fn check_range(op: &'static str, what: &str, lower: f32, upper: f32, min: f32) -> Result<()> {
    if !(lower >= min && lower < upper && upper.is_finite()) {
        return Err(Error::invalid(op, format!("expected {min} <= lower < upper for the {what} range, got lower={lower}, upper={upper}")));
    }
    Ok(())
}

/// A random `size = (height, width)` window, the same position for every image of a batch
/// (`tf.image.stateless_random_crop` with the batch and channel axes kept whole).
///
/// # Errors
/// `RankMismatch` unless rank 3 or 4; `InvalidArgument` for a zero size or one larger than the
/// image.
pub fn random_crop(images: &Tensor, size: (usize, usize), seed: Seed) -> Result<Tensor> {
    const OP: &str = "random_crop";
    let (x, single) = as_batch(OP, images)?;
    let (h, w) = (x.dims()[1], x.dims()[2]);
    if size.0 == 0 || size.1 == 0 || size.0 > h || size.1 > w {
        return Err(Error::invalid(
            OP,
            format!("expected a crop size within 1..={h} x 1..={w}, got {size:?} for shape {}", images.shape()),
        ));
    }
    let mut r = rng(seed, 1);
    let top = r.below((h - size.0 + 1) as u64) as usize;
    let left = r.below((w - size.1 + 1) as u64) as usize;
    unbatch(crop_to_bounding_box(&x, top, left, size.0, size.1)?, single)
}

/// One coin per image; flips those that come up heads along `axis`.
fn random_flip(op: &'static str, images: &Tensor, seed: Seed, axis: isize, salt: u64) -> Result<Tensor> {
    let (x, single) = as_batch(op, images)?;
    let mut r = rng(seed, salt);
    if x.dims()[0] == 1 {
        // A single image (the usual case inside a pipeline's map): no split and concat copies.
        let out = if r.uniform() < 0.5 { x.flip(&[axis])? } else { x };
        return unbatch(out, single);
    }
    let parts = (0..x.dims()[0])
        .map(|i| {
            let img = x.narrow(0, i, 1)?;
            if r.uniform() < 0.5 {
                img.flip(&[axis])
            } else {
                Ok(img)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    unbatch(Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)?, single)
}

/// Mirrors each image left-right with probability ½ (`tf.image.stateless_random_flip_left_right`).
///
/// # Errors
/// `RankMismatch` unless rank 3 or 4.
pub fn random_flip_left_right(images: &Tensor, seed: Seed) -> Result<Tensor> {
    random_flip("random_flip_left_right", images, seed, 2, 2)
}

/// Mirrors each image up-down with probability ½ (`tf.image.stateless_random_flip_up_down`).
///
/// # Errors
/// `RankMismatch` unless rank 3 or 4.
pub fn random_flip_up_down(images: &Tensor, seed: Seed) -> Result<Tensor> {
    random_flip("random_flip_up_down", images, seed, 1, 3)
}

/// [`adjust_brightness`] by a delta drawn uniformly from `[-max_delta, max_delta)`
/// (`tf.image.stateless_random_brightness`).
///
/// # Errors
/// `InvalidArgument` for a negative or non-finite `max_delta`; `DTypeMismatch` unless f32.
pub fn random_brightness(images: &Tensor, max_delta: f32, seed: Seed) -> Result<Tensor> {
    const OP: &str = "random_brightness";
    if !(max_delta >= 0.0 && max_delta.is_finite()) {
        return Err(Error::invalid(OP, format!("expected a finite max_delta >= 0, got {max_delta}")));
    }
    require_f32(OP, images)?;
    adjust_brightness(images, uniform(&mut rng(seed, 4), -max_delta, max_delta))
}

/// [`adjust_contrast`] by a factor drawn uniformly from `[lower, upper)`
/// (`tf.image.stateless_random_contrast`).
///
/// # Errors
/// `InvalidArgument` unless `0 <= lower < upper`; as [`adjust_contrast`] otherwise.
pub fn random_contrast(images: &Tensor, lower: f32, upper: f32, seed: Seed) -> Result<Tensor> {
    check_range("random_contrast", "contrast factor", lower, upper, 0.0)?;
    adjust_contrast(images, uniform(&mut rng(seed, 5), lower, upper))
}

/// [`adjust_saturation`] by a factor drawn uniformly from `[lower, upper)`
/// (`tf.image.stateless_random_saturation`).
///
/// # Errors
/// `InvalidArgument` unless `0 <= lower < upper`; as [`adjust_saturation`] otherwise.
pub fn random_saturation(images: &Tensor, lower: f32, upper: f32, seed: Seed) -> Result<Tensor> {
    check_range("random_saturation", "saturation factor", lower, upper, 0.0)?;
    adjust_saturation(images, uniform(&mut rng(seed, 6), lower, upper))
}

/// [`adjust_hue`] by a delta drawn uniformly from `[-max_delta, max_delta)`, `max_delta` in
/// `[0, 0.5]` (`tf.image.stateless_random_hue`).
///
/// # Errors
/// `InvalidArgument` for `max_delta` outside `[0, 0.5]`; as [`adjust_hue`] otherwise.
pub fn random_hue(images: &Tensor, max_delta: f32, seed: Seed) -> Result<Tensor> {
    const OP: &str = "random_hue";
    if !(0.0..=0.5).contains(&max_delta) {
        return Err(Error::invalid(OP, format!("expected max_delta in [0, 0.5], got {max_delta}")));
    }
    adjust_hue(images, uniform(&mut rng(seed, 7), -max_delta, max_delta))
}

/// Re-encodes float `[0, 1]` images as JPEG at `quality` and decodes them again
/// (`tf.image.adjust_jpeg_quality`): values are saturated to bytes first, and the result is
/// float32 in `[0, 1]`. Channels must be 1 or 3. Not differentiable. Our encoder and decoder are
/// the `image` crate's, not libjpeg's, so pixels may differ from TF's by a few levels.
///
/// # Errors
/// `RankMismatch` unless rank 3 or 4; `DTypeMismatch` unless f32; `InvalidArgument` for a
/// quality outside 1..=100 or a channel count other than 1 or 3.
pub fn adjust_jpeg_quality(images: &Tensor, quality: u8) -> Result<Tensor> {
    const OP: &str = "adjust_jpeg_quality";
    let (x, single) = as_batch(OP, images)?;
    require_f32(OP, &x)?;
    let c = x.dims()[3];
    if c != 1 && c != 3 {
        return Err(Error::invalid(OP, format!("expected 1 or 3 channels, got shape {}", images.shape())));
    }
    let bytes = convert_image_dtype(&x, DType::U8, true)?;
    let parts = (0..x.dims()[0])
        .map(|i| {
            let jpeg = encode_jpeg(&bytes.narrow(0, i, 1)?.squeeze(&[0])?, quality)?;
            convert_image_dtype(&decode_jpeg(&jpeg, c, x.device())?, DType::F32, false)?.expand_dims(0)
        })
        .collect::<Result<Vec<_>>>()?;
    unbatch(Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)?, single)
}

/// [`adjust_jpeg_quality`] with a quality drawn uniformly from `min_quality..max_quality`
/// (`tf.image.stateless_random_jpeg_quality`; the upper end excluded, as in TF).
///
/// # Errors
/// `InvalidArgument` unless `1 <= min_quality < max_quality <= 100`; as
/// [`adjust_jpeg_quality`] otherwise.
pub fn random_jpeg_quality(images: &Tensor, min_quality: u8, max_quality: u8, seed: Seed) -> Result<Tensor> {
    const OP: &str = "random_jpeg_quality";
    if !(1 <= min_quality && min_quality < max_quality && max_quality <= 100) {
        return Err(Error::invalid(
            OP,
            format!("expected 1 <= min_quality < max_quality <= 100, got min_quality={min_quality}, max_quality={max_quality}"),
        ));
    }
    let q = min_quality + rng(seed, 8).below((max_quality - min_quality) as u64) as u8;
    adjust_jpeg_quality(images, q)
}
