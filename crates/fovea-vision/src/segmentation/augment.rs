//! Paired augmentation for segmentation: each image and its mask go through the same geometric
//! transform (the image bilinear, the mask nearest-neighbour, so no label is ever blended into
//! a class that is not there); photometric changes touch the image only.

use crate::image::{affine_matrix, affine_transform, AffineParams, FillMode, Interpolation};
use fovea_core::random::Rng;
use fovea_core::{DType, Tensor};
use fovea_nn::{Error, Result};

/// The ranges random paired transforms are drawn from (each uniform, independently per image).
#[derive(Debug, Clone, PartialEq)]
pub struct PairedAugment {
    /// Flip left–right with probability ½.
    pub horizontal_flip: bool,
    /// Largest rotation either way, in degrees.
    pub max_angle: f32,
    /// Largest shift either way, as a fraction of the height and width.
    pub max_shift: f32,
    /// Scale drawn from `[1 − max_zoom, 1 + max_zoom]` (above 1 zooms out).
    pub max_zoom: f32,
    /// Brightness change drawn from `[−max_brightness, max_brightness]`, added to the image
    /// only (images in `[0, 1]`).
    pub max_brightness: f32,
    /// The mask value of pixels that come from outside the image (background 0, or an ignore
    /// label such as 255); images are filled with 0 there.
    pub mask_fill: f32,
}

impl Default for PairedAugment {
    /// Small geometric jitter and no photometric change: flips, ±10°, ±10 % shifts, ±10 % zoom.
    fn default() -> Self {
        PairedAugment { horizontal_flip: true, max_angle: 10.0, max_shift: 0.1, max_zoom: 0.1, max_brightness: 0.0, mask_fill: 0.0 }
    }
}

/// Applies one transform per image to `(N, H, W, C)` f32 images and the same one to their
/// `(N, H, W)` masks (any integer or float dtype; returned in the masks' dtype).
///
/// # Errors
/// `Config` naming both shapes when the masks do not fit the images, or when the number of
/// transforms is neither 1 nor N; core errors for non-f32 images.
pub fn paired_affine(images: &Tensor, masks: &Tensor, transforms: &[[f32; 8]], mask_fill: f32) -> Result<(Tensor, Tensor)> {
    if images.rank() != 4 || masks.dims() != &images.dims()[..3] {
        return Err(Error::Config(format!(
            "paired_affine: expected images (N, H, W, C) and masks (N, H, W) of the same N, H, W, got {} and {}",
            images.shape(),
            masks.shape()
        )));
    }
    let n = images.dims()[0];
    if transforms.len() != 1 && transforms.len() != n {
        return Err(Error::Config(format!("paired_affine: expected 1 transform or one per image ({n}), got {}", transforms.len())));
    }
    let x = affine_transform(images, transforms, Interpolation::Bilinear, FillMode::Constant, 0.0)?;
    let m = masks.cast(DType::F32)?.expand_dims(-1)?;
    let m = affine_transform(&m, transforms, Interpolation::Nearest, FillMode::Constant, mask_fill)?;
    Ok((x, m.squeeze(&[-1])?.cast(masks.dtype())?))
}

impl PairedAugment {
    /// Draws one transform per image from `rng` and applies it to the pair (see
    /// [`paired_affine`]); the brightness change goes to the images only.
    ///
    /// # Errors
    /// As [`paired_affine`].
    pub fn apply(&self, images: &Tensor, masks: &Tensor, rng: &mut Rng) -> Result<(Tensor, Tensor)> {
        if images.rank() != 4 {
            return Err(Error::Config(format!("PairedAugment: expected images (N, H, W, C), got {}", images.shape())));
        }
        let [n, h, w] = [images.dims()[0], images.dims()[1], images.dims()[2]];
        let mut sym = |range: f32| ((rng.uniform() * 2.0 - 1.0) as f32) * range;
        let mut transforms = Vec::with_capacity(n);
        for _ in 0..n {
            let p = AffineParams {
                angle: sym(self.max_angle),
                translate_x: sym(self.max_shift) * w as f32,
                translate_y: sym(self.max_shift) * h as f32,
                scale: 1.0 + sym(self.max_zoom),
                ..Default::default()
            };
            let mut t = affine_matrix(&p, h, w);
            if self.horizontal_flip && sym(1.0) > 0.0 {
                // Output column x reads input column W − 1 − x first: compose the flip into the
                // x row of the map (x' = a0·(W−1−x) + a1·y + a2).
                t[2] += t[0] * (w as f32 - 1.0);
                t[0] = -t[0];
                t[5] += t[3] * (w as f32 - 1.0);
                t[3] = -t[3];
            }
            transforms.push(t);
        }
        let (mut x, m) = paired_affine(images, masks, &transforms, self.mask_fill)?;
        if self.max_brightness > 0.0 {
            let deltas: Vec<f32> = (0..n).map(|_| sym(self.max_brightness)).collect();
            x = x.add(&Tensor::from_vec(deltas, [n, 1, 1, 1], x.device())?)?;
        }
        Ok((x, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::Device;

    #[test]
    fn masks_follow_their_images_and_keep_their_labels() {
        let d = Device::Cpu;
        // Images whose grey level equals the mask's class (a few blocks of classes 1–3), so a
        // pair transformed alike stays equal wherever the image is not blended.
        let (n, h, w) = (3, 16, 12);
        let classes: Vec<i64> = (0..n * h * w).map(|i| ((i / w % h) / 4 + (i % w) / 6) as i64 % 4).collect();
        let masks = Tensor::from_vec(classes.clone(), [n, h, w], d).unwrap();
        let images = masks.cast(DType::F32).unwrap().expand_dims(-1).unwrap();
        let aug = PairedAugment { max_angle: 30.0, max_shift: 0.2, max_zoom: 0.2, ..Default::default() };
        let (x, m) = aug.apply(&images, &masks, &mut Rng::new(4)).unwrap();
        assert_eq!((x.dims(), m.dims(), m.dtype()), (&[n, h, w, 1][..], &[n, h, w][..], DType::I64));
        let (xv, mv) = (x.to_vec::<f32>().unwrap(), m.to_vec::<i64>().unwrap());
        assert!(mv.iter().all(|v| (0..4).contains(v)), "nearest neighbour invents no class");
        // Where the image's value is a whole class (not blended), the mask holds that class.
        let exact = xv.iter().zip(&mv).filter(|(x, _)| (*x - x.round()).abs() < 1e-6).count();
        let agree = xv.iter().zip(&mv).filter(|(x, m)| (*x - x.round()).abs() < 1e-6 && x.round() as i64 == **m).count();
        assert!(exact > n * h * w / 2 && agree as f64 > 0.95 * exact as f64, "{agree} of {exact}");
        assert_ne!(mv, classes, "something moved");
        // The identity transform changes nothing; a bad mask shape is named.
        let id = [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]];
        let (x0, m0) = paired_affine(&images, &masks, &id, 0.0).unwrap();
        assert_eq!((x0.to_vec::<f32>().unwrap(), m0.to_vec::<i64>().unwrap()), (images.to_vec::<f32>().unwrap(), classes));
        let e = paired_affine(&images, &masks.narrow(1, 0, 8).unwrap(), &id, 0.0).unwrap_err().to_string();
        assert!(e.contains("got [3, 16, 12, 1] and [3, 8, 12]"), "{e}");
    }
}
