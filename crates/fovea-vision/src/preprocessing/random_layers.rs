//! The random augmentation layers: `RandomCrop`, `RandomFlip`, `RandomRotation`, `RandomZoom`,
//! `RandomTranslation`, `RandomContrast`, `RandomBrightness`. Each acts only in training.

use super::{check_factor, image_input, image_shape, output, preprocessing_layer, resized_shape, Factor};
use crate::image::{affine_matrix, affine_transform, crop_to_bounding_box, resize, translation_matrix, zoom_matrix};
use crate::image::{AffineParams, FillMode, Interpolation, ResizeMethod};
use fovea_core::random::Rng;
use fovea_core::Tensor;
use fovea_nn::layer::{LayerBase, ShapeSpec};
use fovea_nn::{Error, Result};
use serde_json::{json, Value};
use std::sync::Mutex;

/// A layer's generator and the seed it came from (kept for the config).
struct Seeded {
    seed: Option<u64>,
    rng: Mutex<Rng>,
}

impl Seeded {
    fn new(seed: Option<u64>) -> Self {
        Seeded { seed, rng: Mutex::new(seed.map(Rng::new).unwrap_or_else(Rng::from_global)) }
    }

    /// Like Keras's `RandomCrop`, which draws a seed when given none and writes it to its
    /// config, so a model file reproduces the layer's crops. Kept to 30 bits, as Keras's
    /// default seeds are small (TensorFlow takes them as int32/int64).
    fn recorded(seed: Option<u64>) -> Self {
        Seeded::new(Some(seed.unwrap_or_else(|| fovea_core::random::next_seed() >> 34)))
    }

    /// `n` uniform draws in `[lo, hi)`.
    fn uniform(&self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        let mut rng = self.rng.lock().expect("layer rng");
        (0..n).map(|_| (lo as f64 + (hi as f64 - lo as f64) * rng.uniform()) as f32).collect()
    }

    fn below(&self, n: usize) -> usize {
        self.rng.lock().expect("layer rng").below(n as u64) as usize
    }
}

/// Adds the seed builders every random layer has.
macro_rules! seed_builders {
    ($ty:ident) => {
        impl $ty {
            /// Seeds the layer's generator: the same seed gives the same augmentations.
            pub fn seed(self, seed: u64) -> Self {
                self.maybe_seed(Some(seed))
            }

            /// [`Self::seed`] when `Some`; `None` draws the seed from the global sequence.
            pub fn maybe_seed(mut self, seed: Option<u64>) -> Self {
                self.seeded = Seeded::new(seed);
                self
            }
        }
    };
}

/// `fill_mode`, `interpolation` and `fill_value` of the geometric layers, with Keras's
/// defaults (`reflect`, `bilinear`, 0).
struct Resample {
    fill_mode: FillMode,
    interpolation: Interpolation,
    fill_value: f32,
}

impl Default for Resample {
    fn default() -> Self {
        Resample { fill_mode: FillMode::Reflect, interpolation: Interpolation::Bilinear, fill_value: 0.0 }
    }
}

macro_rules! resample_builders {
    ($ty:ident, $class:literal) => {
        impl $ty {
            /// Keras's `fill_mode`: `reflect` (default), `wrap`, `constant` or `nearest`.
            ///
            /// # Errors
            /// `InvalidArgument` for any other name.
            pub fn fill_mode(mut self, name: &str) -> Result<Self> {
                self.resample.fill_mode = FillMode::parse($class, name)?;
                Ok(self)
            }

            /// Keras's `interpolation`: `bilinear` (default) or `nearest`.
            ///
            /// # Errors
            /// `InvalidArgument` for any other name.
            pub fn interpolation(mut self, name: &str) -> Result<Self> {
                self.resample.interpolation = Interpolation::parse($class, name)?;
                Ok(self)
            }

            /// The value outside the image with `fill_mode` `constant` (default 0).
            pub fn fill_value(mut self, value: f32) -> Self {
                self.resample.fill_value = value;
                self
            }

            fn resample_config(&self) -> Value {
                json!({
                    "fill_mode": self.resample.fill_mode.as_str(), "interpolation": self.resample.interpolation.as_str(),
                    "fill_value": self.resample.fill_value, "seed": self.seeded.seed, "data_format": "channels_last",
                })
            }

            fn output_shape(&self, s: &ShapeSpec) -> Result<ShapeSpec> {
                image_shape(&self.base, s)?;
                Ok(s.clone())
            }

            /// Resamples each image of the batch through its own transform while training.
            fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
                let (x, single) = image_input(&self.base, x)?;
                if !training {
                    return output(x, single);
                }
                let m = self.matrices(x.dims()[0], x.dims()[1], x.dims()[2]);
                let r = &self.resample;
                output(affine_transform(&x, &m, r.interpolation, r.fill_mode, r.fill_value)?, single)
            }
        }
    };
}

/// `keras.layers.RandomCrop`: while training, a random `height × width` window (one position
/// for the whole batch, as Keras draws it). An input not larger than the target along both axes
/// gets Keras's deterministic window at the aspect-ratio crop's offset instead, resized to the
/// target if it came out smaller. In inference the input passes through unchanged, as in Keras 3
/// (whose reported output shape is nonetheless the target's, as here). Without a seed it draws
/// one and records it in its config, as Keras does.
pub struct RandomCrop {
    base: LayerBase,
    height: usize,
    width: usize,
    seeded: Seeded,
}

impl RandomCrop {
    /// Crops `height × width` windows.
    ///
    /// # Errors
    /// `Config` for a zero size.
    pub fn new(height: usize, width: usize) -> Result<Self> {
        if height == 0 || width == 0 {
            return Err(Error::Config(format!("RandomCrop: expected a positive height and width, got ({height}, {width})")));
        }
        Ok(RandomCrop { base: LayerBase::new("RandomCrop"), height, width, seeded: Seeded::recorded(None) })
    }

    /// Seeds the layer's generator: the same seed gives the same crops.
    pub fn seed(self, seed: u64) -> Self {
        self.maybe_seed(Some(seed))
    }

    /// [`Self::seed`] when `Some`; `None` draws a seed from the global sequence and records it
    /// in the config, as Keras does for this layer.
    pub fn maybe_seed(mut self, seed: Option<u64>) -> Self {
        self.seeded = Seeded::recorded(seed);
        self
    }

    fn output_shape(&self, s: &ShapeSpec) -> Result<ShapeSpec> {
        image_shape(&self.base, s)?;
        Ok(resized_shape(s, self.height, self.width))
    }

    fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let (x, single) = image_input(&self.base, x)?;
        if !training {
            return output(x, single);
        }
        let (ih, iw, h, w) = (x.dims()[1], x.dims()[2], self.height, self.width);
        let (top, left) = if ih > h && iw > w {
            (self.seeded.below(ih - h + 1), self.seeded.below(iw - w + 1))
        } else {
            let crop_h = (((iw * h) as f32 / w as f32) as usize).min(ih).max(1);
            let crop_w = (((ih * w) as f32 / h as f32) as usize).min(iw).max(1);
            (((ih - crop_h) as f32 / 2.0) as usize, ((iw - crop_w) as f32 / 2.0) as usize)
        };
        // Python slicing clips a window that runs past the edge; the resize then restores the size.
        let (ch, cw) = (h.min(ih - top), w.min(iw - left));
        let mut y = crop_to_bounding_box(&x, top, left, ch, cw)?;
        if (ch, cw) != (h, w) {
            y = resize(&y, (h, w), ResizeMethod::Bilinear, false)?;
        }
        output(y, single)
    }

    fn keras_config(&self) -> Value {
        json!({"height": self.height, "width": self.width, "seed": self.seeded.seed, "data_format": "channels_last"})
    }
}
preprocessing_layer!(RandomCrop, "RandomCrop");

/// `keras.layers.RandomFlip`: while training, flips each image with probability ½.
///
/// `mode` is `horizontal`, `vertical` or `horizontal_and_vertical` (Keras's default). As in
/// Keras 3, the last draws *one* coin per image for both axes, so an image is either left alone
/// or flipped both ways (a half turn).
pub struct RandomFlip {
    base: LayerBase,
    mode: &'static str,
    seeded: Seeded,
}

impl RandomFlip {
    /// Flips along the axes `mode` names.
    ///
    /// # Errors
    /// `Config` for an unknown mode.
    pub fn new(mode: &str) -> Result<Self> {
        let mode = ["horizontal", "vertical", "horizontal_and_vertical"].into_iter().find(|m| *m == mode).ok_or_else(|| {
            Error::Config(format!("RandomFlip: expected mode \"horizontal\", \"vertical\" or \"horizontal_and_vertical\", got {mode:?}"))
        })?;
        Ok(RandomFlip { base: LayerBase::new("RandomFlip"), mode, seeded: Seeded::new(None) })
    }

    fn output_shape(&self, s: &ShapeSpec) -> Result<ShapeSpec> {
        image_shape(&self.base, s)?;
        Ok(s.clone())
    }

    fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let (x, single) = image_input(&self.base, x)?;
        if !training {
            return output(x, single);
        }
        let axes: &[isize] = match self.mode {
            "horizontal" => &[2],
            "vertical" => &[1],
            _ => &[1, 2],
        };
        let coins = self.seeded.uniform(x.dims()[0], 0.0, 1.0);
        let parts = coins
            .iter()
            .enumerate()
            .map(|(i, &u)| {
                let img = x.narrow(0, i, 1)?;
                if u <= 0.5 {
                    img.flip(axes)
                } else {
                    Ok(img)
                }
            })
            .collect::<fovea_core::Result<Vec<_>>>()?;
        output(Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)?, single)
    }

    fn keras_config(&self) -> Value {
        json!({"mode": self.mode, "seed": self.seeded.seed, "data_format": "channels_last"})
    }
}
seed_builders!(RandomFlip);
preprocessing_layer!(RandomFlip, "RandomFlip");

/// `keras.layers.RandomRotation`: while training, rotates each image by an angle drawn
/// uniformly from `factor · 360°` (a fraction of a full turn; `0.1` means ±36°), about the
/// image centre, filling with `fill_mode`.
pub struct RandomRotation {
    base: LayerBase,
    bounds: (f32, f32),
    resample: Resample,
    seeded: Seeded,
}

impl RandomRotation {
    /// Rotates by up to `factor` turns: a number `f` (±|f|) or a `(lower, upper)` pair, in
    /// `[-1, 1]`.
    ///
    /// # Errors
    /// `Config` for a factor outside `[-1, 1]` or NaN.
    pub fn new(factor: impl Into<Factor>) -> Result<Self> {
        let factor = factor.into();
        let bounds = factor.bounds("RandomRotation", "factor", -1.0, 1.0)?;
        Ok(RandomRotation { base: LayerBase::new("RandomRotation"), bounds, resample: Resample::default(), seeded: Seeded::new(None) })
    }

    fn matrices(&self, n: usize, h: usize, w: usize) -> Vec<[f32; 8]> {
        let angles = self.seeded.uniform(n, self.bounds.0 * 360.0, self.bounds.1 * 360.0);
        angles.iter().map(|&angle| affine_matrix(&AffineParams { angle, ..Default::default() }, h, w)).collect()
    }

    fn keras_config(&self) -> Value {
        let mut c = self.resample_config();
        // Keras stores the sorted range, `0.1` as `[-0.1, 0.1]`.
        c["factor"] = json!([self.bounds.0, self.bounds.1]);
        c
    }
}
seed_builders!(RandomRotation);
resample_builders!(RandomRotation, "RandomRotation");
preprocessing_layer!(RandomRotation, "RandomRotation");

/// Keras's zoom and translation factor check: each end in `(lo, 1]` or `[lo, 1]`.
fn factor_bounds(layer: &str, what: &str, f: Factor, open_low: bool) -> Result<(f32, f32)> {
    let (lo, hi) = f.bounds(layer, what, -1.0, 1.0)?;
    if open_low && lo <= -1.0 {
        return Err(Error::Config(format!("{layer}: expected {what} in (-1, 1], got {f:?}")));
    }
    Ok((lo, hi))
}

/// `keras.layers.RandomZoom`: while training, zooms each image about its centre by
/// `1 + u`, `u` drawn from `height_factor` (and `width_factor`, or the same zoom when `None`).
/// A positive draw zooms *out* (the picture shrinks), a negative one zooms in, as in Keras.
pub struct RandomZoom {
    base: LayerBase,
    height_factor: Factor,
    width_factor: Option<Factor>,
    height_bounds: (f32, f32),
    width_bounds: Option<(f32, f32)>,
    resample: Resample,
    seeded: Seeded,
}

impl RandomZoom {
    /// Zooms by `height_factor` (and `width_factor`; `None` keeps the aspect ratio), each end
    /// in `(-1, 1]`.
    ///
    /// # Errors
    /// `Config` for a factor outside `(-1, 1]` or NaN.
    pub fn new(height_factor: impl Into<Factor>, width_factor: Option<Factor>) -> Result<Self> {
        let height_factor = height_factor.into();
        let height_bounds = factor_bounds("RandomZoom", "height_factor", height_factor, true)?;
        let width_bounds = width_factor.map(|f| factor_bounds("RandomZoom", "width_factor", f, true)).transpose()?;
        Ok(RandomZoom {
            base: LayerBase::new("RandomZoom"),
            height_factor,
            width_factor,
            height_bounds,
            width_bounds,
            resample: Resample::default(),
            seeded: Seeded::new(None),
        })
    }

    fn matrices(&self, n: usize, h: usize, w: usize) -> Vec<[f32; 8]> {
        let hz = self.seeded.uniform(n, 1.0 + self.height_bounds.0, 1.0 + self.height_bounds.1);
        let wz = match self.width_bounds {
            Some((lo, hi)) => self.seeded.uniform(n, 1.0 + lo, 1.0 + hi),
            None => hz.clone(),
        };
        (0..n).map(|i| zoom_matrix(wz[i], hz[i], h, w)).collect()
    }

    fn keras_config(&self) -> Value {
        let mut c = self.resample_config();
        c["height_factor"] = self.height_factor.to_json();
        c["width_factor"] = self.width_factor.map_or(Value::Null, Factor::to_json);
        c
    }
}
seed_builders!(RandomZoom);
resample_builders!(RandomZoom, "RandomZoom");
preprocessing_layer!(RandomZoom, "RandomZoom");

/// `keras.layers.RandomTranslation`: while training, shifts each image by a fraction of its
/// height and width drawn from `height_factor` and `width_factor` (positive: down and right).
pub struct RandomTranslation {
    base: LayerBase,
    height_factor: Factor,
    width_factor: Factor,
    height_bounds: (f32, f32),
    width_bounds: (f32, f32),
    resample: Resample,
    seeded: Seeded,
}

impl RandomTranslation {
    /// Shifts by up to the given fractions of the image size, each end in `[-1, 1]`.
    ///
    /// # Errors
    /// `Config` for a factor outside `[-1, 1]` or NaN.
    pub fn new(height_factor: impl Into<Factor>, width_factor: impl Into<Factor>) -> Result<Self> {
        let (height_factor, width_factor) = (height_factor.into(), width_factor.into());
        Ok(RandomTranslation {
            base: LayerBase::new("RandomTranslation"),
            height_factor,
            width_factor,
            height_bounds: factor_bounds("RandomTranslation", "height_factor", height_factor, false)?,
            width_bounds: factor_bounds("RandomTranslation", "width_factor", width_factor, false)?,
            resample: Resample::default(),
            seeded: Seeded::new(None),
        })
    }

    fn matrices(&self, n: usize, h: usize, w: usize) -> Vec<[f32; 8]> {
        let dy = self.seeded.uniform(n, self.height_bounds.0, self.height_bounds.1);
        let dx = self.seeded.uniform(n, self.width_bounds.0, self.width_bounds.1);
        (0..n).map(|i| translation_matrix(dx[i] * w as f32, dy[i] * h as f32)).collect()
    }

    fn keras_config(&self) -> Value {
        let mut c = self.resample_config();
        c["height_factor"] = self.height_factor.to_json();
        c["width_factor"] = self.width_factor.to_json();
        c
    }
}
seed_builders!(RandomTranslation);
resample_builders!(RandomTranslation, "RandomTranslation");
preprocessing_layer!(RandomTranslation, "RandomTranslation");

/// Checks and sorts a `value_range`.
fn value_range(layer: &str, (a, b): (f32, f32)) -> Result<(f32, f32)> {
    if !a.is_finite() || !b.is_finite() {
        return Err(Error::Config(format!("{layer}: expected a finite value_range, got ({a}, {b})")));
    }
    Ok((a.min(b), a.max(b)))
}

/// One value per image as a `[N, 1, 1, 1]` tensor.
fn per_image(values: Vec<f32>, x: &Tensor) -> Result<Tensor> {
    let n = values.len();
    Ok(Tensor::from_vec(values, vec![n, 1, 1, 1], x.device())?)
}

/// `keras.layers.RandomContrast`: while training, `(x − mean) · c + mean` per image and
/// channel (mean over H and W), `c` drawn per image from `[1 − lower, 1 + upper]`, then clipped
/// to `value_range` (Keras default `(0, 255)`).
///
/// A single factor `f` means `lower = upper = f`, the range Keras documents. (Keras 3.15's own
/// code clamps the lower end to 0 there, so it only ever raises contrast; this layer follows
/// the documented behaviour.)
pub struct RandomContrast {
    base: LayerBase,
    factor: Factor,
    range: (f32, f32),
    value_range: (f32, f32),
    seeded: Seeded,
}

impl RandomContrast {
    /// Contrast factors in `[1 − lower, 1 + upper]`; each of `lower`, `upper` in `[0, 1]`.
    ///
    /// # Errors
    /// `Config` for a factor outside `[0, 1]` or NaN.
    pub fn new(factor: impl Into<Factor>) -> Result<Self> {
        let factor = factor.into();
        let (lower, upper) = match factor {
            Factor::Symmetric(f) => (f, f),
            Factor::Range(a, b) => (a, b),
        };
        check_factor("RandomContrast", "factor", lower, 0.0, 1.0)?;
        check_factor("RandomContrast", "factor", upper, 0.0, 1.0)?;
        Ok(RandomContrast {
            base: LayerBase::new("RandomContrast"),
            factor,
            range: (1.0 - lower, 1.0 + upper),
            value_range: (0.0, 255.0),
            seeded: Seeded::new(None),
        })
    }

    /// The range outputs are clipped to (Keras default `(0, 255)`; `(0, 1)` for float images).
    ///
    /// # Errors
    /// `Config` for a non-finite end.
    pub fn value_range(mut self, range: (f32, f32)) -> Result<Self> {
        self.value_range = value_range("RandomContrast", range)?;
        Ok(self)
    }

    fn output_shape(&self, s: &ShapeSpec) -> Result<ShapeSpec> {
        image_shape(&self.base, s)?;
        Ok(s.clone())
    }

    fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let (x, single) = image_input(&self.base, x)?;
        if !training {
            return output(x, single);
        }
        let c = per_image(self.seeded.uniform(x.dims()[0], self.range.0, self.range.1), &x)?;
        let mean = x.mean(&[1, 2], true)?;
        let y = x.sub(&mean)?.mul(&c)?.add(&mean)?.clip(self.value_range.0, self.value_range.1)?;
        output(y, single)
    }

    fn keras_config(&self) -> Value {
        // A single factor stays a number: Keras 3.15 writes `f` as `[0, f]` (its clamped lower
        // end, see above), which would read back as a narrower range here.
        json!({
            "factor": self.factor.to_json(), "value_range": [self.value_range.0, self.value_range.1],
            "seed": self.seeded.seed, "data_format": "channels_last",
        })
    }
}
seed_builders!(RandomContrast);
preprocessing_layer!(RandomContrast, "RandomContrast");

/// `keras.layers.RandomBrightness`: while training, adds `u · (max − min)` of `value_range`
/// to each image, `u` drawn per image from the factor's range (`f` means `±|f|`), then clips to
/// `value_range` (Keras default `(0, 255)`).
pub struct RandomBrightness {
    base: LayerBase,
    bounds: (f32, f32),
    value_range: (f32, f32),
    seeded: Seeded,
}

impl RandomBrightness {
    /// Brightness shifts of up to `factor` of the value range, each end in `[-1, 1]`.
    ///
    /// # Errors
    /// `Config` for a factor outside `[-1, 1]` or NaN.
    pub fn new(factor: impl Into<Factor>) -> Result<Self> {
        let factor = factor.into();
        let bounds = factor.bounds("RandomBrightness", "factor", -1.0, 1.0)?;
        Ok(RandomBrightness { base: LayerBase::new("RandomBrightness"), bounds, value_range: (0.0, 255.0), seeded: Seeded::new(None) })
    }

    /// The range the shift is scaled by and outputs are clipped to (default `(0, 255)`).
    ///
    /// # Errors
    /// `Config` for a non-finite end.
    pub fn value_range(mut self, range: (f32, f32)) -> Result<Self> {
        self.value_range = value_range("RandomBrightness", range)?;
        Ok(self)
    }

    fn output_shape(&self, s: &ShapeSpec) -> Result<ShapeSpec> {
        image_shape(&self.base, s)?;
        Ok(s.clone())
    }

    fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let (x, single) = image_input(&self.base, x)?;
        if !training {
            return output(x, single);
        }
        let span = self.value_range.1 - self.value_range.0;
        let deltas = self.seeded.uniform(x.dims()[0], self.bounds.0, self.bounds.1).into_iter().map(|u| u * span).collect();
        let y = x.add(&per_image(deltas, &x)?)?.clip(self.value_range.0, self.value_range.1)?;
        output(y, single)
    }

    fn keras_config(&self) -> Value {
        json!({
            "factor": [self.bounds.0, self.bounds.1], "value_range": [self.value_range.0, self.value_range.1],
            "seed": self.seeded.seed, "data_format": "channels_last",
        })
    }
}
seed_builders!(RandomBrightness);
preprocessing_layer!(RandomBrightness, "RandomBrightness");
