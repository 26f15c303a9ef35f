//! Affine and projective resampling (`keras.ops.image.affine_transform`, TensorFlow's
//! `ImageProjectiveTransformV3`) and the transform matrices of Keras's `RandomRotation`,
//! `RandomZoom` and `RandomTranslation` layers.
//!
//! A transform is Keras's eight numbers `[a0, a1, a2, b0, b1, b2, c0, c1]`: the output pixel
//! `(x, y)` (column, row; integer pixel indices, no half-pixel offset) samples the input at
//! `((a0·x + a1·y + a2) / k, (b0·x + b1·y + b2) / k)` with `k = c0·x + c1·y + 1`. It maps
//! *output to input*, so a matrix that rotates coordinates by +θ turns the picture by −θ.

use super::{as_batch, require_f32, unbatch};
use fovea_core::{Error, Result, Tensor};

/// How a sample between pixels is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// The nearest pixel (`round`, halves away from zero).
    Nearest,
    /// Bilinear interpolation between the four surrounding pixels.
    Bilinear,
}

impl Interpolation {
    /// The Keras name (`"nearest"`, `"bilinear"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interpolation::Nearest => "nearest",
            Interpolation::Bilinear => "bilinear",
        }
    }

    /// Parses a Keras name.
    ///
    /// # Errors
    /// `InvalidArgument` naming `op` for any other name.
    pub fn parse(op: &'static str, name: &str) -> Result<Self> {
        match name {
            "nearest" => Ok(Interpolation::Nearest),
            "bilinear" => Ok(Interpolation::Bilinear),
            _ => Err(Error::invalid(op, format!("expected interpolation \"nearest\" or \"bilinear\", got {name:?}"))),
        }
    }
}

/// What a sample outside the image reads (Keras's `fill_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillMode {
    /// `(d c b a | a b c d | d c b a)`: mirrored about the edge of the last pixel.
    Reflect,
    /// `(a b c d | a b c d | a b c d)`: the opposite edge (with TF's quirk, see [`affine_transform`]).
    Wrap,
    /// `(k k k k | a b c d | k k k k)`: the constant `fill_value`.
    Constant,
    /// `(a a a a | a b c d | d d d d)`: the nearest edge pixel.
    Nearest,
}

impl FillMode {
    /// The Keras name (`"reflect"`, `"wrap"`, `"constant"`, `"nearest"`).
    pub fn as_str(self) -> &'static str {
        match self {
            FillMode::Reflect => "reflect",
            FillMode::Wrap => "wrap",
            FillMode::Constant => "constant",
            FillMode::Nearest => "nearest",
        }
    }

    /// Parses a Keras name.
    ///
    /// # Errors
    /// `InvalidArgument` naming `op` for any other name.
    pub fn parse(op: &'static str, name: &str) -> Result<Self> {
        match name {
            "reflect" => Ok(FillMode::Reflect),
            "wrap" => Ok(FillMode::Wrap),
            "constant" => Ok(FillMode::Constant),
            "nearest" => Ok(FillMode::Nearest),
            _ => Err(Error::invalid(op, format!("expected fill_mode \"reflect\", \"wrap\", \"constant\" or \"nearest\", got {name:?}"))),
        }
    }

    /// Maps a coordinate along an axis of `len` pixels into the image, exactly as TF's
    /// `MapCoordinate` does in f32 (including its truncating integer casts). `Constant` leaves
    /// the coordinate alone: the read itself then returns the fill value.
    fn map(self, coord: f32, len: usize) -> f32 {
        let lenf = len as f32;
        let clamp = |c: f32| c.clamp(0.0, lenf - 1.0);
        match self {
            FillMode::Constant => coord,
            FillMode::Nearest => clamp(coord),
            FillMode::Reflect => {
                let mut c = coord;
                if c < 0.0 {
                    if len <= 1 {
                        c = 0.0;
                    } else {
                        let sz2 = 2.0 * lenf;
                        if c < sz2 {
                            c += sz2 * ((-c / sz2) as i64) as f32;
                        }
                        c = if c < -lenf { c + sz2 } else { -c - 1.0 };
                    }
                } else if c > lenf - 1.0 {
                    if len <= 1 {
                        c = 0.0;
                    } else {
                        let sz2 = 2.0 * lenf;
                        c -= sz2 * ((c / sz2) as i64) as f32;
                        if c >= lenf {
                            c = sz2 - c - 1.0;
                        }
                    }
                }
                clamp(c)
            }
            FillMode::Wrap => {
                let mut c = coord;
                // TF divides by len − 1 where the period is len; kept so results match TF.
                if c < 0.0 {
                    if len <= 1 {
                        c = 0.0;
                    } else {
                        let sz = lenf - 1.0;
                        c += lenf * (((-c / sz) as i64) + 1) as f32;
                    }
                } else if c > lenf - 1.0 {
                    if len <= 1 {
                        c = 0.0;
                    } else {
                        let sz = lenf - 1.0;
                        c -= lenf * ((c / sz) as i64) as f32;
                    }
                }
                clamp(c)
            }
        }
    }
}

/// Resamples each image through its transform (`keras.ops.image.affine_transform` on the
/// TensorFlow backend). See the module docs for what the eight numbers mean.
///
/// `images` is `[N, H, W, C]` or a single `[H, W, C]`; `transforms` holds one transform for the
/// whole batch or one per image. The output has the input's shape. `fill_value` is used by
/// [`FillMode::Constant`] only. As in TF, bilinear reads that fall outside the image count as
/// `fill_value` in constant mode (so edges blend into it), a zero projective denominator gives
/// `fill_value`, and `Wrap` reduces coordinates with a period computed from `len − 1`, which is
/// TF's own (long-standing) arithmetic. Not differentiable.
///
/// # Errors
/// `RankMismatch` unless rank 3 or 4; `DTypeMismatch` unless f32; `InvalidArgument` when
/// `transforms` has neither 1 nor N entries, or holds a non-finite number.
pub fn affine_transform(
    images: &Tensor,
    transforms: &[[f32; 8]],
    interpolation: Interpolation,
    fill_mode: FillMode,
    fill_value: f32,
) -> Result<Tensor> {
    const OP: &str = "affine_transform";
    let (x, single) = as_batch(OP, images)?;
    require_f32(OP, &x)?;
    let [n, h, w, c] = [x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]];
    if transforms.len() != 1 && transforms.len() != n {
        return Err(Error::invalid(
            OP,
            format!("expected 1 transform or one per image ({n}), got {} for images of shape {}", transforms.len(), images.shape()),
        ));
    }
    if let Some(t) = transforms.iter().find(|t| t.iter().any(|v| !v.is_finite())) {
        return Err(Error::invalid(OP, format!("expected finite transform entries, got {t:?}")));
    }
    let src = x.to_vec::<f32>()?;
    let mut out = vec![0.0f32; src.len()];
    let plane = h * w * c;
    for b in 0..n {
        let t = transforms[if transforms.len() == 1 { 0 } else { b }];
        let img = &src[b * plane..(b + 1) * plane];
        // Out-of-image reads give the fill value in constant mode; the other modes have already
        // mapped the coordinate inside, so only bilinear's far neighbour can land outside, and
        // its weight is then zero.
        let read = |yi: f32, xi: f32, ch: usize| -> f32 {
            if yi >= 0.0 && yi < h as f32 && xi >= 0.0 && xi < w as f32 {
                img[(yi as usize * w + xi as usize) * c + ch]
            } else {
                fill_value
            }
        };
        for oy in 0..h {
            for ox in 0..w {
                let dst = &mut out[b * plane + (oy * w + ox) * c..b * plane + (oy * w + ox + 1) * c];
                let (xf, yf) = (ox as f32, oy as f32);
                let k = t[6] * xf + t[7] * yf + 1.0;
                if k == 0.0 {
                    dst.fill(fill_value);
                    continue;
                }
                let in_x = fill_mode.map((t[0] * xf + t[1] * yf + t[2]) / k, w);
                let in_y = fill_mode.map((t[3] * xf + t[4] * yf + t[5]) / k, h);
                match interpolation {
                    Interpolation::Nearest => {
                        let (ry, rx) = (in_y.round(), in_x.round());
                        for (ch, d) in dst.iter_mut().enumerate() {
                            *d = read(ry, rx, ch);
                        }
                    }
                    Interpolation::Bilinear => {
                        let (y0, x0) = (in_y.floor(), in_x.floor());
                        let (y1, x1) = (y0 + 1.0, x0 + 1.0);
                        for (ch, d) in dst.iter_mut().enumerate() {
                            let top = (x1 - in_x) * read(y0, x0, ch) + (in_x - x0) * read(y0, x1, ch);
                            let bottom = (x1 - in_x) * read(y1, x0, ch) + (in_x - x0) * read(y1, x1, ch);
                            *d = (y1 - in_y) * top + (in_y - y0) * bottom;
                        }
                    }
                }
            }
        }
    }
    unbatch(Tensor::from_vec(out, x.shape().clone(), x.device())?, single)
}

/// The parameters of Keras's general affine matrix (`_compute_affine_matrix` of its image
/// preprocessing layers), about the image centre. Angles are in degrees; translations in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineParams {
    /// Rotation in degrees; positive turns the picture counter-clockwise on screen, as Keras
    /// documents for `RandomRotation`.
    pub angle: f32,
    /// Shift of the sampling grid along x, in pixels.
    pub translate_x: f32,
    /// Shift of the sampling grid along y, in pixels.
    pub translate_y: f32,
    /// Scale of the sampling grid (above 1 zooms out).
    pub scale: f32,
    /// Shear angle along x, in degrees.
    pub shear_x: f32,
    /// Shear angle along y, in degrees.
    pub shear_y: f32,
}

impl Default for AffineParams {
    /// The identity: no rotation, shift or shear, scale 1.
    fn default() -> Self {
        AffineParams { angle: 0.0, translate_x: 0.0, translate_y: 0.0, scale: 1.0, shear_x: 0.0, shear_y: 0.0 }
    }
}

/// Keras's affine matrix `scale · shear · rotation` about the centre `((W−1)/2, (H−1)/2)` of an
/// `height × width` image, as the eight numbers [`affine_transform`] takes. This is the matrix
/// `RandomRotation` builds from its drawn angle.
pub fn affine_matrix(p: &AffineParams, height: usize, width: usize) -> [f32; 8] {
    let rad = std::f64::consts::PI / 180.0;
    let (angle, shx, shy) = (p.angle as f64 * rad, (p.shear_x as f64 * rad).tan(), (p.shear_y as f64 * rad).tan());
    let (cx, cy) = (0.5 * (width as f64 - 1.0), 0.5 * (height as f64 - 1.0));
    let (cos, sin, s) = (angle.cos(), angle.sin(), p.scale as f64);
    let a0 = s * (cos + shx * sin);
    let a1 = s * (-sin + shx * cos);
    let a2 = p.translate_x as f64 + cx - cx * a0 - cy * a1;
    let b0 = s * (shy * cos + sin);
    let b1 = s * (shy * -sin + cos);
    let b2 = p.translate_y as f64 + cy - cx * b0 - cy * b1;
    [a0, a1, a2, b0, b1, b2, 0.0, 0.0].map(|v| v as f32)
}

/// `RandomZoom`'s matrix: the sampling grid scaled by `width_zoom` and `height_zoom` about the
/// image centre (a zoom above 1 shows more of the image, smaller).
pub fn zoom_matrix(width_zoom: f32, height_zoom: f32, height: usize, width: usize) -> [f32; 8] {
    let x_off = (width as f32 - 1.0) / 2.0 * (1.0 - width_zoom);
    let y_off = (height as f32 - 1.0) / 2.0 * (1.0 - height_zoom);
    [width_zoom, 0.0, x_off, 0.0, height_zoom, y_off, 0.0, 0.0]
}

/// `RandomTranslation`'s matrix: the picture moves by `dx` pixels right and `dy` pixels down.
pub fn translation_matrix(dx: f32, dy: f32) -> [f32; 8] {
    [1.0, 0.0, -dx, 0.0, 1.0, -dy, 0.0, 0.0]
}
