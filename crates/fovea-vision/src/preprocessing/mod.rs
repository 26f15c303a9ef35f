//! Keras preprocessing layers (`keras.layers.Rescaling`, `Normalization`, `Resizing`,
//! `CenterCrop` and the random augmentation layers), usable inside models and on their own.
//!
//! They implement fovea-nn's [`Layer`](fovea_nn::layer::Layer) trait with Keras's argument names and defaults and
//! write Keras-style configs; [`layer_from_config`] rebuilds them (and falls back to fovea-nn's
//! registry for every other class). The random layers act only when called with
//! `training = true`, as in Keras; otherwise they pass their input through (cast to float32) —
//! `RandomCrop` included, which like Keras 3's crops only while training. Each random
//! layer owns a generator seeded from its `seed` (or the global seed sequence), so a seeded layer
//! gives the same sequence of augmentations in every run.
//!
//! ```
//! use fovea_core::{Device, Tensor};
//! use fovea_nn::layer::Layer;
//! use fovea_vision::preprocessing::{RandomFlip, Rescaling};
//!
//! # fn main() -> fovea_nn::Result<()> {
//! let x = Tensor::from_vec(vec![0.0f32, 255.0], vec![1, 1, 2, 1], Device::Cpu)?;
//! let y = Rescaling::new(1.0 / 255.0, 0.0)?.apply(&[x.clone()], false)?;
//! assert_eq!(y.to_vec::<f32>()?, vec![0.0, 1.0]);
//! // In inference a random layer is the identity.
//! let flip = RandomFlip::new("horizontal")?.seed(1);
//! assert_eq!(flip.apply(&[x.clone()], false)?.to_vec::<f32>()?, vec![0.0, 255.0]);
//! # Ok(())
//! # }
//! ```

mod basic;
mod random_layers;

pub use basic::{CenterCrop, Normalization, Rescaling, Resizing};
pub use random_layers::{RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom};

use crate::image::{crop_to_bounding_box, resize, ResizeMethod};
use fovea_core::{DType, Tensor};
use fovea_nn::layer::{format_shape, LayerBase, LayerRef, ShapeSpec};
use fovea_nn::{Error, Result};
use serde_json::Value;
use std::sync::Arc;

/// Implements [`Layer`] for a preprocessing layer from its inherent `output_shape`, `forward`
/// and `keras_config`, adding the name and trainable flag every Keras config carries.
macro_rules! preprocessing_layer {
    ($ty:ident, $class:literal) => {
        impl fovea_nn::layer::Layer for $ty {
            fn base(&self) -> &fovea_nn::layer::LayerBase {
                &self.base
            }

            fn class_name(&self) -> &'static str {
                $class
            }

            fn compute_output_shape(&self, shapes: &[fovea_nn::layer::ShapeSpec]) -> fovea_nn::Result<fovea_nn::layer::ShapeSpec> {
                self.output_shape(fovea_nn::layer::single_shape(&self.base, shapes)?)
            }

            fn call(&self, inputs: &[fovea_core::Tensor], training: bool) -> fovea_nn::Result<fovea_core::Tensor> {
                let x = fovea_nn::layer::single_input(&self.base, inputs)?;
                self.forward(x, training).map_err(|e| match e {
                    fovea_nn::Error::Core(c) => self.base.error(c.to_string()),
                    other => other,
                })
            }

            fn config(&self) -> serde_json::Value {
                let mut c = self.keras_config();
                c["name"] = serde_json::json!(fovea_nn::layer::Layer::name(self));
                c["trainable"] = serde_json::json!(fovea_nn::layer::Layer::trainable(self));
                c
            }
        }
    };
}
pub(crate) use preprocessing_layer;

/// Checks an image input (rank 3 or 4), casts uint8 to float32 as Keras does (values kept), and
/// lifts a single image to a batch; the flag says to undo it.
fn image_input(base: &LayerBase, x: &Tensor) -> Result<(Tensor, bool)> {
    let x = match x.dtype() {
        DType::F32 => x.clone(),
        DType::U8 => x.cast(DType::F32)?,
        other => return Err(base.error(format!("expected float32 or uint8 images, got {other}"))),
    };
    match x.rank() {
        4 => Ok((x, false)),
        3 => Ok((x.expand_dims(0)?, true)),
        _ => Err(base.error(format!("expected images of rank 3 (H, W, C) or 4 (N, H, W, C), got shape {}", x.shape()))),
    }
}

fn output(x: Tensor, single: bool) -> Result<Tensor> {
    Ok(if single { x.squeeze(&[0])? } else { x })
}

/// Checks a layer input shape: rank 4 with the batch, or 3 for a single image.
fn image_shape(base: &LayerBase, s: &ShapeSpec) -> Result<()> {
    if s.len() == 3 || s.len() == 4 {
        Ok(())
    } else {
        Err(base.error(format!("expected images of rank 3 (H, W, C) or 4 (N, H, W, C), got shape {}", format_shape(s))))
    }
}

/// The shape with height and width replaced (the two axes before the channels).
fn resized_shape(s: &ShapeSpec, h: usize, w: usize) -> ShapeSpec {
    let mut out = s.clone();
    let n = out.len();
    out[n - 3] = Some(h);
    out[n - 2] = Some(w);
    out
}

/// Keras's `smart_resize`: the largest centred crop with the target's aspect ratio, then a
/// resize to the target (also `Resizing(crop_to_aspect_ratio=True)` and `RandomCrop` at
/// inference). `x` is a batch.
fn crop_to_aspect_and_resize(x: &Tensor, h: usize, w: usize, method: ResizeMethod, antialias: bool) -> Result<Tensor> {
    let (ih, iw) = (x.dims()[1], x.dims()[2]);
    // f32 arithmetic and truncation as Keras's `int(float(...))`.
    let crop_h = (((iw * h) as f32 / w as f32) as usize).min(ih).max(1);
    let crop_w = (((ih * w) as f32 / h as f32) as usize).min(iw).max(1);
    let top = ((ih - crop_h) as f32 / 2.0) as usize;
    let left = ((iw - crop_w) as f32 / 2.0) as usize;
    let cropped = crop_to_bounding_box(x, top, left, crop_h, crop_w)?;
    if (crop_h, crop_w) == (h, w) {
        return Ok(cropped);
    }
    Ok(resize(&cropped, (h, w), method, antialias)?)
}

/// Checks a factor for NaN and the range `[lo, hi]`; `what` names the argument.
fn check_factor(base_name: &str, what: &str, v: f32, lo: f32, hi: f32) -> Result<()> {
    if v.is_nan() || v < lo || v > hi {
        return Err(Error::Config(format!("{base_name}: expected {what} in [{lo}, {hi}], got {v}")));
    }
    Ok(())
}

/// A Keras factor argument: one number `f` (meaning `(-|f|, |f|)`) or a `(lower, upper)` pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Factor {
    /// `f` stands for the symmetric range `(-|f|, |f|)`.
    Symmetric(f32),
    /// An explicit range; the two ends may come in either order.
    Range(f32, f32),
}

impl From<f32> for Factor {
    fn from(f: f32) -> Self {
        Factor::Symmetric(f)
    }
}

impl From<(f32, f32)> for Factor {
    fn from((a, b): (f32, f32)) -> Self {
        Factor::Range(a, b)
    }
}

impl Factor {
    /// The sorted `(lower, upper)` range, each end checked against `[lo, hi]`.
    fn bounds(self, layer: &str, what: &str, lo: f32, hi: f32) -> Result<(f32, f32)> {
        match self {
            Factor::Symmetric(f) => {
                check_factor(layer, what, f, lo, hi)?;
                Ok((-f.abs(), f.abs()))
            }
            Factor::Range(a, b) => {
                check_factor(layer, what, a, lo, hi)?;
                check_factor(layer, what, b, lo, hi)?;
                Ok((a.min(b), a.max(b)))
            }
        }
    }

    fn to_json(self) -> Value {
        match self {
            Factor::Symmetric(f) => serde_json::json!(f),
            Factor::Range(a, b) => serde_json::json!([a, b]),
        }
    }

    fn from_json(class: &str, c: &Value, key: &str) -> Result<Self> {
        match c.get(key) {
            Some(Value::Number(n)) => Ok(Factor::Symmetric(n.as_f64().unwrap_or(f64::NAN) as f32)),
            Some(Value::Array(v)) if v.len() == 2 => {
                let f = |i: usize| v[i].as_f64().map(|x| x as f32);
                match (f(0), f(1)) {
                    (Some(a), Some(b)) => Ok(Factor::Range(a, b)),
                    _ => Err(Error::Config(format!("{class} config: {key:?} must hold numbers, got {}", c[key]))),
                }
            }
            other => Err(Error::Config(format!("{class} config: {key:?} must be a number or a pair of numbers, got {other:?}"))),
        }
    }
}

fn cfg_f32(class: &str, c: &Value, key: &str) -> Result<f32> {
    c.get(key).and_then(Value::as_f64).map(|v| v as f32).ok_or_else(|| Error::Config(format!("{class} config: {key:?} must be a number")))
}

fn cfg_usize(class: &str, c: &Value, key: &str) -> Result<usize> {
    c.get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| Error::Config(format!("{class} config: {key:?} must be a non-negative integer")))
}

fn cfg_str<'a>(class: &str, c: &'a Value, key: &str, default: &'a str) -> Result<&'a str> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Error::Config(format!("{class} config: {key:?} must be a string, got {other}"))),
    }
}

fn cfg_pair(class: &str, c: &Value, key: &str, default: (f32, f32)) -> Result<(f32, f32)> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Array(v)) if v.len() == 2 && v.iter().all(Value::is_number) => {
            Ok((v[0].as_f64().unwrap_or(0.0) as f32, v[1].as_f64().unwrap_or(0.0) as f32))
        }
        Some(other) => Err(Error::Config(format!("{class} config: {key:?} must be a pair of numbers, got {other}"))),
    }
}

/// Rebuilds a layer from its Keras class name and config: the preprocessing layers of this
/// module, and every class fovea-nn's registry knows otherwise.
///
/// # Errors
/// `Config` naming the class for a malformed entry or an unknown class.
pub fn layer_from_config(class: &str, c: &Value) -> Result<LayerRef> {
    let seed = c.get("seed").and_then(Value::as_u64);
    let layer: LayerRef = match class {
        "Rescaling" => Arc::new(Rescaling::new(cfg_f32(class, c, "scale")?, cfg_f32(class, c, "offset").unwrap_or(0.0))?),
        "Normalization" => Arc::new(Normalization::from_config(c)?),
        "Resizing" => Arc::new(
            Resizing::new(cfg_usize(class, c, "height")?, cfg_usize(class, c, "width")?)?
                .interpolation(cfg_str(class, c, "interpolation", "bilinear")?)?
                .crop_to_aspect_ratio(c.get("crop_to_aspect_ratio").and_then(Value::as_bool).unwrap_or(false))
                .antialias(c.get("antialias").and_then(Value::as_bool).unwrap_or(false)),
        ),
        "CenterCrop" => Arc::new(CenterCrop::new(cfg_usize(class, c, "height")?, cfg_usize(class, c, "width")?)?),
        "RandomCrop" => Arc::new(RandomCrop::new(cfg_usize(class, c, "height")?, cfg_usize(class, c, "width")?)?.maybe_seed(seed)),
        "RandomFlip" => Arc::new(RandomFlip::new(cfg_str(class, c, "mode", "horizontal_and_vertical")?)?.maybe_seed(seed)),
        "RandomRotation" => Arc::new(
            RandomRotation::new(Factor::from_json(class, c, "factor")?)?
                .fill_mode(cfg_str(class, c, "fill_mode", "reflect")?)?
                .interpolation(cfg_str(class, c, "interpolation", "bilinear")?)?
                .fill_value(cfg_f32(class, c, "fill_value").unwrap_or(0.0))
                .maybe_seed(seed),
        ),
        "RandomZoom" => {
            let width = match c.get("width_factor") {
                None | Some(Value::Null) => None,
                Some(_) => Some(Factor::from_json(class, c, "width_factor")?),
            };
            Arc::new(
                RandomZoom::new(Factor::from_json(class, c, "height_factor")?, width)?
                    .fill_mode(cfg_str(class, c, "fill_mode", "reflect")?)?
                    .interpolation(cfg_str(class, c, "interpolation", "bilinear")?)?
                    .fill_value(cfg_f32(class, c, "fill_value").unwrap_or(0.0))
                    .maybe_seed(seed),
            )
        }
        "RandomTranslation" => Arc::new(
            RandomTranslation::new(Factor::from_json(class, c, "height_factor")?, Factor::from_json(class, c, "width_factor")?)?
                .fill_mode(cfg_str(class, c, "fill_mode", "reflect")?)?
                .interpolation(cfg_str(class, c, "interpolation", "bilinear")?)?
                .fill_value(cfg_f32(class, c, "fill_value").unwrap_or(0.0))
                .maybe_seed(seed),
        ),
        "RandomContrast" => Arc::new(
            RandomContrast::new(Factor::from_json(class, c, "factor")?)?
                .value_range(cfg_pair(class, c, "value_range", (0.0, 255.0))?)?
                .maybe_seed(seed),
        ),
        "RandomBrightness" => Arc::new(
            RandomBrightness::new(Factor::from_json(class, c, "factor")?)?
                .value_range(cfg_pair(class, c, "value_range", (0.0, 255.0))?)?
                .maybe_seed(seed),
        ),
        _ => return fovea_nn::model::registry::layer_from_config(class, c),
    };
    if let Some(name) = c.get("name").and_then(Value::as_str) {
        layer.base().set_name(name)?;
    }
    Ok(layer)
}
