//! Image ops with TensorFlow's `tf.image` semantics on NHWC f32 tensors.
//!
//! Every op accepts a batch `[N, H, W, C]` or a single image `[H, W, C]` (returned with the same
//! rank) unless its docs say otherwise. Geometric resampling (resize, crop-and-resize) is written
//! as two small dense weight matrices applied with `matmul` along H and then W: every TF
//! method (bilinear, nearest, bicubic, area, Lanczos, antialiased kernels) is a separable linear
//! map, so one code path serves them all and the gradient comes from `matmul`'s for free.
//! Colour ops compose core ops too (HSV conversions included), so they are all differentiable;
//! only the dtype conversion to uint8 and the codecs are not.
//!
//! ```
//! use fovea_core::{DType, Device, Tensor};
//! use fovea_vision::image::{convert_image_dtype, crop_and_resize, resize, CropMethod, ResizeMethod};
//!
//! # fn main() -> fovea_core::Result<()> {
//! // A 2×2 uint8 grey image: [[0, 255], [255, 0]].
//! let img = Tensor::from_vec(vec![0u8, 255, 255, 0], vec![2, 2, 1], Device::Cpu)?;
//! let x = convert_image_dtype(&img, DType::F32, false)?;
//! // Half-pixel centres: a 1×1 bilinear resize samples the middle, the mean of all four.
//! let y = resize(&x, (1, 1), ResizeMethod::Bilinear, false)?;
//! assert_eq!(y.to_vec::<f32>()?, vec![0.5]);
//! // crop_and_resize maps y to y·(H−1): the box [0, 0, 1, 1] at 2×2 gives the corners back.
//! let boxes = Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 1.0], vec![1, 4], Device::Cpu)?;
//! let ind = Tensor::from_vec(vec![0i64], vec![1], Device::Cpu)?;
//! let c = crop_and_resize(&x.expand_dims(0)?, &boxes, &ind, (2, 2), CropMethod::Bilinear, 0.0)?;
//! assert_eq!(c.to_vec::<f32>()?, vec![0.0, 1.0, 1.0, 0.0]);
//! # Ok(())
//! # }
//! ```

mod affine;
mod codec;
mod color;
mod crop;
mod draw;
mod jitter;
mod jpeg_markers;
mod patches;
mod random;
mod resize;
mod separable;

pub use affine::{affine_matrix, affine_transform, translation_matrix, zoom_matrix, AffineParams, FillMode, Interpolation};
pub use codec::{decode_image, decode_image_with_limit, decode_jpeg, decode_png, encode_jpeg, encode_png};
pub use color::{
    adjust_brightness, adjust_contrast, adjust_gamma, adjust_hue, adjust_saturation, convert_image_dtype, grayscale_to_rgb, hsv_to_rgb,
    per_image_standardization, rgb_to_grayscale, rgb_to_hsv,
};
pub use crop::{
    central_crop, crop_and_resize, crop_to_bounding_box, flip_left_right, flip_up_down, pad_to_bounding_box, resize_with_crop_or_pad,
    rot90, transpose, CropMethod,
};
pub use draw::{draw_bounding_boxes, image_grid, save_image_grid};
pub use jitter::{random_channel_swap, random_gaussian_noise, random_grayscale, random_scale_jitter};
pub use patches::extract_patches;
pub use random::{
    adjust_jpeg_quality, random_brightness, random_contrast, random_crop, random_flip_left_right, random_flip_up_down, random_hue,
    random_jpeg_quality, random_saturation, Seed,
};
pub use resize::{resize, resize_with_pad, ResizeMethod};

use fovea_core::{DType, Error, Result, Tensor};

/// Lifts a single `[H, W, C]` image to a batch of one; the flag says to undo it on the way out.
pub(crate) fn as_batch(op: &'static str, images: &Tensor) -> Result<(Tensor, bool)> {
    match images.rank() {
        4 => Ok((images.clone(), false)),
        3 => Ok((images.expand_dims(0)?, true)),
        _ => Err(Error::rank(op, "3 (H, W, C) or 4 (N, H, W, C)", images.shape())),
    }
}

/// The inverse of [`as_batch`].
pub(crate) fn unbatch(t: Tensor, single: bool) -> Result<Tensor> {
    if single {
        t.squeeze(&[0])
    } else {
        Ok(t)
    }
}

/// Rejects anything but f32 images, pointing at [`convert_image_dtype`].
pub(crate) fn require_f32(op: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::dtype(op, "float32 (use convert_image_dtype on uint8 images)", t.dtype()));
    }
    Ok(())
}

/// Applies `w` (`[out, H]`) along the height axis of `x` (`[N, H, W, C]`).
pub(crate) fn apply_rows(x: &Tensor, weights: &separable::AxisWeights) -> Result<Tensor> {
    let w = &weights.dense;
    let d = x.dims().to_vec();
    let out = w.dims()[0];
    let flat = x.reshape(&[d[0] as isize, d[1] as isize, (d[2] * d[3]) as isize])?;
    w.matmul(&flat)?.reshape(&[d[0] as isize, out as isize, d[2] as isize, d[3] as isize])
}

/// Applies `w` (`[out, W]`) along the width axis of `x` (`[N, H, W, C]`).
pub(crate) fn apply_cols(x: &Tensor, weights: &separable::AxisWeights) -> Result<Tensor> {
    let w = &weights.dense;
    let d = x.dims().to_vec();
    let out = w.dims()[0];
    let flat = x.reshape(&[(d[0] * d[1]) as isize, d[2] as isize, d[3] as isize])?;
    w.matmul(&flat)?.reshape(&[d[0] as isize, d[1] as isize, out as isize, d[3] as isize])
}
