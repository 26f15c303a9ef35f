//! Crops, pads, `crop_and_resize`, flips and rotations.

use super::{as_batch, require_f32, unbatch};
use fovea_core::backend::PadMode;
use fovea_core::{DType, Error, Result, Tensor};

/// Sampling method of [`crop_and_resize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropMethod {
    /// Bilinear interpolation between the four surrounding pixels.
    Bilinear,
    /// The nearest pixel (ties rounded away from zero, as C's `roundf`).
    Nearest,
}

/// One axis of one box: the `[crop, size]` weights and which crop positions fall inside.
fn box_axis(method: CropMethod, lo: f32, hi: f32, size: usize, crop: usize) -> (Vec<f32>, Vec<bool>) {
    let mut w = vec![0.0f32; crop * size];
    let mut valid = vec![false; crop];
    let last = (size - 1) as f32;
    let step = if crop > 1 { (hi - lo) * last / (crop - 1) as f32 } else { 0.0 };
    for (i, ok) in valid.iter_mut().enumerate() {
        let p = if crop > 1 { lo * last + i as f32 * step } else { (0.5 * (lo as f64 + hi as f64) * last as f64) as f32 };
        // Written so a NaN coordinate counts as outside rather than indexing pixel 0.
        if !(p >= 0.0 && p <= last) {
            continue;
        }
        *ok = true;
        match method {
            CropMethod::Bilinear => {
                let (a, b) = (p.floor(), p.ceil());
                let lerp = p - a;
                w[i * size + a as usize] += 1.0 - lerp;
                w[i * size + b as usize] += lerp;
            }
            CropMethod::Nearest => w[i * size + p.round() as usize] = 1.0,
        }
    }
    (w, valid)
}

/// Crops boxes out of a batch and resizes each to `crop_size` (`tf.image.crop_and_resize`).
///
/// `boxes` is `[B, 4]` of normalised `[y1, x1, y2, x2]`; a coordinate `y` maps to pixel
/// `y·(H−1)`, so `y2 < y1` flips the crop and coordinates outside `[0, 1]` sample outside the
/// image, where the result is `extrapolation_value`. `box_indices` (`[B]`, int64) picks the image
/// of each box. Returns `[B, crop_h, crop_w, C]`. Differentiable with respect to `images`, and
/// with `Bilinear` also with respect to `boxes` (as TF).
///
/// # Errors
/// `RankMismatch` unless `images` is 4-D, `boxes` 2-D and `box_indices` 1-D; `ShapeMismatch` when
/// `boxes` is not `[B, 4]` or `box_indices` is not `[B]`; `InvalidArgument` for a zero crop size,
/// an empty image, or a box index outside `0..N`; `DTypeMismatch` for non-f32 images/boxes or
/// non-int64 box indices.
pub fn crop_and_resize(
    images: &Tensor,
    boxes: &Tensor,
    box_indices: &Tensor,
    crop_size: (usize, usize),
    method: CropMethod,
    extrapolation_value: f32,
) -> Result<Tensor> {
    const OP: &str = "crop_and_resize";
    if images.rank() != 4 {
        return Err(Error::rank(OP, "4 (N, H, W, C) for images", images.shape()));
    }
    require_f32(OP, images)?;
    if boxes.rank() != 2 || boxes.dims()[1] != 4 {
        return Err(Error::shape(OP, "boxes of shape [num_boxes, 4]", boxes.shape()));
    }
    if boxes.dtype() != DType::F32 {
        return Err(Error::dtype(OP, "float32 boxes", boxes.dtype()));
    }
    let nb = boxes.dims()[0];
    if box_indices.rank() != 1 || box_indices.dims()[0] != nb {
        return Err(Error::shape(OP, format!("box_indices of shape [{nb}] (one per box)"), box_indices.shape()));
    }
    if !matches!(box_indices.dtype(), DType::I64 | DType::I32) {
        return Err(Error::dtype(OP, "int64 or int32 box_indices", box_indices.dtype()));
    }
    let idx: Vec<i64> = box_indices.cast(DType::I64)?.to_vec::<i64>()?;
    let [n, h, w, c] = [images.dims()[0], images.dims()[1], images.dims()[2], images.dims()[3]];
    if let Some(bad) = idx.iter().find(|&&i| i < 0 || i as usize >= n) {
        return Err(Error::invalid(OP, format!("box index {bad} is outside the batch of {n} images (0..{n})")));
    }
    let (ch, cw) = crop_size;
    if ch == 0 || cw == 0 {
        return Err(Error::invalid(OP, format!("expected a positive crop size, got {crop_size:?}")));
    }
    if h == 0 || w == 0 {
        return Err(Error::invalid(OP, format!("expected a non-empty image, got shape {}", images.shape())));
    }
    let bx = boxes.to_vec::<f32>()?;
    let (mut wy, mut wx) = (Vec::with_capacity(nb * ch * h), Vec::with_capacity(nb * cw * w));
    let (mut y_valid, mut x_valid) = (Vec::with_capacity(nb * ch), Vec::with_capacity(nb * cw));
    let mut outside = Vec::with_capacity(nb * ch * cw);
    for b in 0..nb {
        let (y_w, y_ok) = box_axis(method, bx[b * 4], bx[b * 4 + 2], h, ch);
        let (x_w, x_ok) = box_axis(method, bx[b * 4 + 1], bx[b * 4 + 3], w, cw);
        wy.extend(y_w);
        wx.extend(x_w);
        for &yv in &y_ok {
            outside.extend(x_ok.iter().map(|&xv| if yv && xv { 0.0 } else { extrapolation_value }));
        }
        y_valid.extend(y_ok.iter().map(|&v| v as u8 as f32));
        x_valid.extend(x_ok.iter().map(|&v| v as u8 as f32));
    }
    let dev = images.device();
    let (nb_i, h_i, w_i, c_i, ch_i, cw_i) = (nb as isize, h as isize, w as isize, c as isize, ch as isize, cw as isize);
    let (wy, wx) = match method {
        // Bilinear weights as tensor functions of the boxes, so the boxes get TF's gradient too;
        // which samples fall inside is still decided by the exact f32 arithmetic above.
        CropMethod::Bilinear => (
            box_hat_weights(boxes, 0, h, ch, Tensor::from_vec(y_valid, vec![nb, ch, 1], dev)?)?,
            box_hat_weights(boxes, 1, w, cw, Tensor::from_vec(x_valid, vec![nb, cw, 1], dev)?)?,
        ),
        CropMethod::Nearest => (Tensor::from_vec(wy, vec![nb, ch, h], dev)?, Tensor::from_vec(wx, vec![nb, cw, w], dev)?),
    };
    let src = images.index_select(0, &Tensor::from_vec(idx, vec![nb], dev)?)?;
    // Rows first: [B, H, W·C] -> [B, ch, W·C]; then bring W forward for the column weights.
    let rows = wy.matmul(&src.reshape(&[nb_i, h_i, w_i * c_i])?)?;
    let cols_in = rows.reshape(&[nb_i, ch_i, w_i, c_i])?.permute(&[0, 2, 1, 3])?.reshape(&[nb_i, w_i, ch_i * c_i])?;
    let out = wx.matmul(&cols_in)?.reshape(&[nb_i, cw_i, ch_i, c_i])?.permute(&[0, 2, 1, 3])?;
    // Samples outside the image had all-zero weights, so adding the constant there is exact.
    out.add(&Tensor::from_vec(outside, vec![nb, ch, cw, 1], dev)?)
}

/// `[B, crop, size]` bilinear weights `max(0, 1 − |p − k|)` at the sample positions `p` of each
/// box along one axis (`axis` 0 for y, 1 for x), masked by `valid` (`[B, crop, 1]`).
///
/// The hat function gives exactly the two lerp weights inside the image, and its derivative in
/// `p` is `bottom − top`, which is what TF's `CropAndResizeGradBoxes` propagates.
fn box_hat_weights(boxes: &Tensor, axis: usize, size: usize, crop: usize, valid: Tensor) -> Result<Tensor> {
    let dev = boxes.device();
    let last = (size - 1) as f32;
    let lo = boxes.narrow(1, axis, 1)?;
    let hi = boxes.narrow(1, axis + 2, 1)?;
    let p = if crop > 1 {
        let step = hi.sub(&lo)?.mul_scalar(last)?.div_scalar((crop - 1) as f32)?;
        let t = Tensor::from_vec((0..crop).map(|i| i as f32).collect::<Vec<_>>(), vec![1, crop], dev)?;
        lo.mul_scalar(last)?.add(&t.mul(&step)?)?
    } else {
        lo.add(&hi)?.mul_scalar(0.5 * last)?
    };
    let k = Tensor::from_vec((0..size).map(|i| i as f32).collect::<Vec<_>>(), vec![1, 1, size], dev)?;
    let dist = p.expand_dims(2)?.sub(&k)?.abs()?;
    dist.neg()?.add_scalar(1.0)?.relu()?.mul(&valid)
}

fn dims_hw(x: &Tensor) -> (usize, usize) {
    (x.dims()[1], x.dims()[2])
}

/// Crops `[offset_h, offset_h + target_h) × [offset_w, offset_w + target_w)`
/// (`tf.image.crop_to_bounding_box`). Differentiable.
///
/// # Errors
/// `RankMismatch` for other ranks than 3 or 4; `InvalidArgument` for a zero target or a box that
/// leaves the image.
pub fn crop_to_bounding_box(images: &Tensor, offset_h: usize, offset_w: usize, target_h: usize, target_w: usize) -> Result<Tensor> {
    const OP: &str = "crop_to_bounding_box";
    let (x, single) = as_batch(OP, images)?;
    let (h, w) = dims_hw(&x);
    if target_h == 0 || target_w == 0 {
        return Err(Error::invalid(OP, format!("expected a positive target size, got ({target_h}, {target_w})")));
    }
    if offset_h + target_h > h || offset_w + target_w > w {
        return Err(Error::invalid(
            OP,
            format!(
                "box rows {offset_h}..{} and columns {offset_w}..{} must lie inside the {h}x{w} image (shape {})",
                offset_h + target_h,
                offset_w + target_w,
                images.shape()
            ),
        ));
    }
    // One slice, not two narrows: each would copy the image.
    let out = x.slice(&[0, offset_h, offset_w, 0], &[-1, target_h as isize, target_w as isize, -1])?;
    unbatch(out, single)
}

/// Zero-pads to `(target_h, target_w)` with the image at `(offset_h, offset_w)`
/// (`tf.image.pad_to_bounding_box`). Differentiable.
///
/// # Errors
/// `RankMismatch` for other ranks than 3 or 4; `InvalidArgument` when the image does not fit.
pub fn pad_to_bounding_box(images: &Tensor, offset_h: usize, offset_w: usize, target_h: usize, target_w: usize) -> Result<Tensor> {
    const OP: &str = "pad_to_bounding_box";
    let (x, single) = as_batch(OP, images)?;
    let (h, w) = dims_hw(&x);
    if offset_h + h > target_h || offset_w + w > target_w {
        return Err(Error::invalid(
            OP,
            format!(
                "the {h}x{w} image at offset ({offset_h}, {offset_w}) does not fit in {target_h}x{target_w} (shape {})",
                images.shape()
            ),
        ));
    }
    let pads = [(0, 0), (offset_h, target_h - offset_h - h), (offset_w, target_w - offset_w - w), (0, 0)];
    unbatch(x.pad(&pads, PadMode::Constant(0.0))?, single)
}

/// Centre-crops or zero-pads each axis to the target (`tf.image.resize_with_crop_or_pad`).
///
/// # Errors
/// `RankMismatch` for other ranks than 3 or 4; `InvalidArgument` for a zero target.
pub fn resize_with_crop_or_pad(images: &Tensor, target_h: usize, target_w: usize) -> Result<Tensor> {
    const OP: &str = "resize_with_crop_or_pad";
    let (x, single) = as_batch(OP, images)?;
    if target_h == 0 || target_w == 0 {
        return Err(Error::invalid(OP, format!("expected a positive target size, got ({target_h}, {target_w})")));
    }
    let (h, w) = dims_hw(&x);
    // Python's floor division on the signed difference, as TF computes the offsets.
    let offsets = |size: usize, target: usize| {
        let diff = target as i64 - size as i64;
        ((-diff).div_euclid(2).max(0) as usize, diff.div_euclid(2).max(0) as usize)
    };
    let (crop_h, pad_h) = offsets(h, target_h);
    let (crop_w, pad_w) = offsets(w, target_w);
    let cropped = crop_to_bounding_box(&x, crop_h, crop_w, target_h.min(h), target_w.min(w))?;
    unbatch(pad_to_bounding_box(&cropped, pad_h, pad_w, target_h, target_w)?, single)
}

/// Keeps the central `fraction` of each spatial axis (`tf.image.central_crop`).
///
/// # Errors
/// `RankMismatch` for other ranks than 3 or 4; `InvalidArgument` unless `0 < fraction <= 1`.
pub fn central_crop(images: &Tensor, fraction: f32) -> Result<Tensor> {
    const OP: &str = "central_crop";
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(Error::invalid(OP, format!("expected central_fraction in (0, 1], got {fraction}")));
    }
    let (x, single) = as_batch(OP, images)?;
    if fraction == 1.0 {
        return unbatch(x, single);
    }
    let (h, w) = dims_hw(&x);
    let start = |s: usize| ((s as f64 - s as f64 * fraction as f64) / 2.0) as usize;
    let (sh, sw) = (start(h), start(w));
    unbatch(x.narrow(1, sh, h - 2 * sh)?.narrow(2, sw, w - 2 * sw)?, single)
}

/// Mirrors the width axis (`tf.image.flip_left_right`).
///
/// # Errors
/// `RankMismatch` for other ranks than 3 or 4.
pub fn flip_left_right(images: &Tensor) -> Result<Tensor> {
    let (x, single) = as_batch("flip_left_right", images)?;
    unbatch(x.flip(&[2])?, single)
}

/// Mirrors the height axis (`tf.image.flip_up_down`).
///
/// # Errors
/// `RankMismatch` for other ranks than 3 or 4.
pub fn flip_up_down(images: &Tensor) -> Result<Tensor> {
    let (x, single) = as_batch("flip_up_down", images)?;
    unbatch(x.flip(&[1])?, single)
}

/// Swaps height and width (`tf.image.transpose`).
///
/// # Errors
/// `RankMismatch` for other ranks than 3 or 4.
pub fn transpose(images: &Tensor) -> Result<Tensor> {
    let (x, single) = as_batch("transpose", images)?;
    unbatch(x.permute(&[0, 2, 1, 3])?, single)
}

/// Rotates counter-clockwise by `k` quarter turns (`tf.image.rot90`); `k` may be negative.
///
/// # Errors
/// `RankMismatch` for other ranks than 3 or 4.
pub fn rot90(images: &Tensor, k: i64) -> Result<Tensor> {
    let (x, single) = as_batch("rot90", images)?;
    let out = match k.rem_euclid(4) {
        0 => x,
        1 => x.flip(&[2])?.permute(&[0, 2, 1, 3])?,
        2 => x.flip(&[1, 2])?,
        _ => x.permute(&[0, 2, 1, 3])?.flip(&[2])?,
    };
    unbatch(out, single)
}
