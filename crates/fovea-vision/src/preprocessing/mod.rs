//! Keras preprocessing layers (`keras.layers.Rescaling`, `Normalization`, `Resizing`,
//! `CenterCrop` and the random augmentation layers), usable inside models and on their own.
//!
//! They implement fovea-nn's [`Layer`](fovea_nn::layer::Layer) trait with Keras's argument
//! names and defaults and write Keras 3 configs (the keys and defaults of `get_config`).
//! The eleven classes register themselves with fovea-nn's layer registry
//! (`fovea_nn::register_layer_class!`), so configs, model files
//! (`fovea_nn::model::io::load_model`) and Keras imports rebuild them like built-in layers in
//! any program that links this crate, with no set-up call.
//!
//! The random layers act only when called with
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
//! // Configs rebuild through fovea-nn's registry (as model files do).
//! let back = fovea_nn::model::registry::layer_from_config("RandomFlip", &flip.config())?;
//! assert_eq!(back.config(), flip.config());
//! # Ok(())
//! # }
//! ```

mod basic;
mod config;
mod normalization;
mod random_layers;

pub use basic::{CenterCrop, Coefficient, Rescaling, Resizing};
pub use config::CLASS_NAMES;
pub use normalization::Normalization;
pub use random_layers::{RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom};

use crate::image::{crop_to_bounding_box, resize, ResizeMethod};
use fovea_core::{DType, Tensor};
use fovea_nn::layer::{format_shape, LayerBase, ShapeSpec};
use fovea_nn::{Error, Result};
use serde_json::Value;

/// Keras 3's float32 dtype policy, which every Keras layer config carries under `"dtype"`.
pub(crate) fn dtype_policy() -> Value {
    serde_json::json!({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null})
}

/// Implements [`Layer`] for a preprocessing layer from its inherent `output_shape`, `forward`
/// and `keras_config`, adding the name, trainable flag and dtype policy every Keras config
/// carries.
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
                c["dtype"] = $crate::preprocessing::dtype_policy();
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

/// Keras's `pad_to_aspect_ratio`: pads the height or the width by the same amount on both
/// sides, with `fill`, towards the target's aspect ratio (the total is even, so an odd
/// shortfall leaves the ratio one pixel short, as in Keras). `x` is a batch.
fn pad_to_aspect(x: &Tensor, h: usize, w: usize, fill: f32) -> Result<Tensor> {
    let (n, ih, iw, c) = (x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]);
    // f32 arithmetic and truncation as Keras's `tf.cast(tf.cast(.., "float32") / .., "int32")`.
    let pad_h = (((iw * h) as f32 / w as f32) as usize).max(ih);
    let pad_w = (((ih * w) as f32 / h as f32) as usize).max(iw);
    let (top, left) = ((pad_h - ih) / 2, (pad_w - iw) / 2);
    let band = |shape: Vec<usize>| Tensor::full(shape, f64::from(fill), DType::F32, x.device());
    let mut y = x.clone();
    if top > 0 {
        let b = band(vec![n, top, iw, c])?;
        y = Tensor::concat(&[&b, &y, &b], 1)?;
    }
    if left > 0 {
        let b = band(vec![n, y.dims()[1], left, c])?;
        y = Tensor::concat(&[&b, &y, &b], 2)?;
    }
    Ok(y)
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

    /// As the user gave it (`RandomZoom` and `RandomTranslation` keep the form in their config).
    fn to_json(self) -> Value {
        match self {
            Factor::Symmetric(f) => serde_json::json!(f),
            Factor::Range(a, b) => serde_json::json!([a, b]),
        }
    }

    /// Reads a number or a two-number list.
    fn from_json(class: &str, key: &str, v: &Value) -> Result<Self> {
        match v {
            Value::Number(n) => Ok(Factor::Symmetric(n.as_f64().unwrap_or(f64::NAN) as f32)),
            Value::Array(a) if a.len() == 2 && a.iter().all(Value::is_number) => {
                Ok(Factor::Range(a[0].as_f64().unwrap_or(f64::NAN) as f32, a[1].as_f64().unwrap_or(f64::NAN) as f32))
            }
            other => Err(Error::Config(format!("{class} config: expected {key:?} to be a number or a pair of numbers, got {other}"))),
        }
    }
}
