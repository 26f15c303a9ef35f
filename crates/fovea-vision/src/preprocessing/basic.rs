//! The deterministic preprocessing layers `Rescaling`, `Resizing` and `CenterCrop`
//! (`Normalization` has its own module).

use super::{crop_to_aspect_and_resize, image_input, image_shape, output, pad_to_aspect, preprocessing_layer, resized_shape};
use crate::image::{crop_to_bounding_box, resize, ResizeMethod};
use fovea_core::{DType, Tensor};
use fovea_nn::layer::{format_shape, LayerBase, ShapeSpec};
use fovea_nn::{Error, Result};
use serde_json::{json, Value};

/// A `Rescaling` coefficient: one number for every value, or one per index of the input's
/// last axis (Keras accepts lists and arrays there and broadcasts them, numpy-style).
#[derive(Debug, Clone, PartialEq)]
pub enum Coefficient {
    /// The same factor (or offset) everywhere.
    Scalar(f32),
    /// One entry per channel; a single entry broadcasts like a scalar.
    PerChannel(Vec<f32>),
}

impl From<f32> for Coefficient {
    fn from(v: f32) -> Self {
        Coefficient::Scalar(v)
    }
}

impl From<Vec<f32>> for Coefficient {
    fn from(v: Vec<f32>) -> Self {
        Coefficient::PerChannel(v)
    }
}

impl From<&[f32]> for Coefficient {
    fn from(v: &[f32]) -> Self {
        Coefficient::PerChannel(v.to_vec())
    }
}

impl Coefficient {
    pub(super) fn values(&self) -> &[f32] {
        match self {
            Coefficient::Scalar(v) => std::slice::from_ref(v),
            Coefficient::PerChannel(v) => v,
        }
    }

    /// The number of channels it asks for (`None`: broadcasts against any).
    fn channels(&self) -> Option<usize> {
        match self {
            Coefficient::PerChannel(v) if v.len() != 1 => Some(v.len()),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Coefficient::Scalar(v) => json!(v),
            Coefficient::PerChannel(v) => json!(v),
        }
    }

    /// `x · self` or `x + self`, broadcasting a list against the last axis.
    fn apply(&self, x: &Tensor, mul: bool) -> Result<Tensor> {
        Ok(match self {
            Coefficient::Scalar(v) if mul => x.mul_scalar(*v)?,
            Coefficient::Scalar(v) => x.add_scalar(*v)?,
            Coefficient::PerChannel(v) => {
                let t = Tensor::from_vec(v.clone(), vec![v.len()], x.device())?;
                if mul {
                    x.mul(&t)?
                } else {
                    x.add(&t)?
                }
            }
        })
    }
}

/// `keras.layers.Rescaling`: `x · scale + offset` on inputs of any rank (uint8 is cast to
/// float32 first). `Rescaling::new(1.0 / 255.0, 0.0)` maps `[0, 255]` to `[0, 1]`;
/// `Rescaling::new(1.0 / 127.5, -1.0)` maps it to `[-1, 1]`; [`Rescaling::per_channel`] takes
/// one scale and offset per channel, as Keras does with lists.
pub struct Rescaling {
    base: LayerBase,
    scale: Coefficient,
    offset: Coefficient,
}

impl Rescaling {
    /// `x · scale + offset` (Keras's default offset is 0).
    ///
    /// # Errors
    /// `Config` for a non-finite scale or offset.
    pub fn new(scale: f32, offset: f32) -> Result<Self> {
        Self::per_channel(scale, offset)
    }

    /// `x · scale + offset` where either may be a list, broadcast against the input's last
    /// axis (Keras's `Rescaling(scale=[...], offset=[...])`).
    ///
    /// # Errors
    /// `Config` for an empty list, a non-finite value, or two lists of different lengths
    /// (neither of length 1).
    pub fn per_channel(scale: impl Into<Coefficient>, offset: impl Into<Coefficient>) -> Result<Self> {
        let (scale, offset) = (scale.into(), offset.into());
        for (what, c) in [("scale", &scale), ("offset", &offset)] {
            if c.values().is_empty() || c.values().iter().any(|v| !v.is_finite()) {
                return Err(Error::Config(format!("Rescaling: expected a finite {what} (a number or a non-empty list), got {c:?}")));
            }
        }
        if let (Some(a), Some(b)) = (scale.channels(), offset.channels()) {
            if a != b {
                return Err(Error::Config(format!(
                    "Rescaling: scale and offset lists must have the same length to broadcast, got {a} and {b}"
                )));
            }
        }
        Ok(Rescaling { base: LayerBase::new("Rescaling"), scale, offset })
    }

    /// The channels a per-channel coefficient asks for, if any.
    fn channels(&self) -> Option<usize> {
        self.scale.channels().or(self.offset.channels())
    }

    /// A per-channel coefficient needs a last axis of its length (`last` is `None` when that
    /// size is not known yet).
    fn check_channels(&self, rank: usize, last: Option<usize>, shape: &dyn Fn() -> String) -> Result<()> {
        match self.channels() {
            Some(n) if rank == 0 || last.is_some_and(|d| d != n) => Err(self
                .base
                .error(format!("expected inputs whose last axis has {n} entries (one per scale/offset value), got shape {}", shape()))),
            _ => Ok(()),
        }
    }

    fn output_shape(&self, s: &ShapeSpec) -> Result<ShapeSpec> {
        self.check_channels(s.len(), s.last().copied().flatten(), &|| format_shape(s))?;
        Ok(s.clone())
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        self.check_channels(x.rank(), x.dims().last().copied(), &|| x.shape().to_string())?;
        let x = if x.dtype() == DType::F32 { x.clone() } else { x.cast(DType::F32)? };
        self.offset.apply(&self.scale.apply(&x, true)?, false)
    }

    fn keras_config(&self) -> Value {
        json!({"scale": self.scale.to_json(), "offset": self.offset.to_json()})
    }
}
preprocessing_layer!(Rescaling, "Rescaling");

/// The Keras interpolation names `Resizing` accepts.
fn resize_method(layer: &str, name: &str) -> Result<ResizeMethod> {
    Ok(match name {
        "bilinear" => ResizeMethod::Bilinear,
        "nearest" => ResizeMethod::Nearest,
        "bicubic" => ResizeMethod::Bicubic,
        "area" => ResizeMethod::Area,
        "lanczos3" => ResizeMethod::Lanczos3,
        "lanczos5" => ResizeMethod::Lanczos5,
        _ => {
            return Err(Error::Config(format!(
            "{layer}: expected interpolation \"bilinear\", \"nearest\", \"bicubic\", \"area\", \"lanczos3\" or \"lanczos5\", got {name:?}"
        )))
        }
    })
}

fn positive_size(layer: &str, h: usize, w: usize) -> Result<()> {
    if h == 0 || w == 0 {
        return Err(Error::Config(format!("{layer}: expected a positive height and width, got ({h}, {w})")));
    }
    Ok(())
}

/// `keras.layers.Resizing`: resizes images to `height × width` (TF2 half-pixel semantics,
/// see [`resize`]), optionally cropping to the target aspect ratio first so nothing is
/// distorted, or padding it to that ratio (`pad_to_aspect_ratio`, filled with `fill_value`).
/// Keras defaults: bilinear, no crop, no padding, no antialiasing. Like Keras's, it returns
/// uint8 for uint8 input (rounded half to even, saturated) and float32 otherwise; every other
/// layer here returns float32. A float result within an ulp of a .5 tie may round one level
/// away from Keras's. uint8 input that `pad_to_aspect_ratio` must pad works here; Keras 3.15
/// raises a TypeError on it.
pub struct Resizing {
    base: LayerBase,
    height: usize,
    width: usize,
    interpolation: &'static str,
    method: ResizeMethod,
    crop_to_aspect_ratio: bool,
    pad_to_aspect_ratio: bool,
    fill_value: f32,
    antialias: bool,
}

impl Resizing {
    /// Resizes to `height × width`.
    ///
    /// # Errors
    /// `Config` for a zero size.
    pub fn new(height: usize, width: usize) -> Result<Self> {
        positive_size("Resizing", height, width)?;
        Ok(Resizing {
            base: LayerBase::new("Resizing"),
            height,
            width,
            interpolation: "bilinear",
            method: ResizeMethod::Bilinear,
            crop_to_aspect_ratio: false,
            pad_to_aspect_ratio: false,
            fill_value: 0.0,
            antialias: false,
        })
    }

    /// The Keras interpolation name: `bilinear`, `nearest`, `bicubic`, `area`, `lanczos3`,
    /// `lanczos5`.
    ///
    /// # Errors
    /// `Config` for any other name.
    pub fn interpolation(mut self, name: &str) -> Result<Self> {
        self.method = resize_method("Resizing", name)?;
        self.interpolation = ["bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5"]
            .into_iter()
            .find(|n| *n == name)
            .expect("checked by resize_method");
        Ok(self)
    }

    /// Crops the largest centred window of the target aspect ratio before resizing.
    pub fn crop_to_aspect_ratio(mut self, on: bool) -> Self {
        self.crop_to_aspect_ratio = on;
        self
    }

    /// Pads the shorter side evenly (with `fill_value`) to the target aspect ratio before
    /// resizing, so nothing is distorted or cut off. Exclusive with `crop_to_aspect_ratio`.
    pub fn pad_to_aspect_ratio(mut self, on: bool) -> Self {
        self.pad_to_aspect_ratio = on;
        self
    }

    /// How `pad_to_aspect_ratio` fills the padding; Keras 3 supports only `constant`.
    ///
    /// # Errors
    /// `Config` for any other mode.
    pub fn fill_mode(self, mode: &str) -> Result<Self> {
        if mode != "constant" {
            return Err(Error::Config(format!("Resizing: expected fill_mode \"constant\" (the only one Keras supports), got {mode:?}")));
        }
        Ok(self)
    }

    /// The value of the padding added by `pad_to_aspect_ratio` (default 0).
    pub fn fill_value(mut self, value: f32) -> Self {
        self.fill_value = value;
        self
    }

    /// Antialiasing when downscaling (see [`resize`]).
    pub fn antialias(mut self, on: bool) -> Self {
        self.antialias = on;
        self
    }

    /// Keras allows one of the two aspect-ratio options at a time.
    fn check_options(&self) -> Result<()> {
        if self.crop_to_aspect_ratio && self.pad_to_aspect_ratio {
            return Err(self.base.error("only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be true, got both"));
        }
        if !self.fill_value.is_finite() {
            return Err(self.base.error(format!("expected a finite fill_value, got {}", self.fill_value)));
        }
        Ok(())
    }

    fn output_shape(&self, s: &ShapeSpec) -> Result<ShapeSpec> {
        self.check_options()?;
        image_shape(&self.base, s)?;
        Ok(resized_shape(s, self.height, self.width))
    }

    fn forward(&self, input: &Tensor, _training: bool) -> Result<Tensor> {
        self.check_options()?;
        let (x, single) = image_input(&self.base, input)?;
        let y = if self.crop_to_aspect_ratio {
            crop_to_aspect_and_resize(&x, self.height, self.width, self.method, self.antialias)?
        } else if self.pad_to_aspect_ratio {
            let padded = pad_to_aspect(&x, self.height, self.width, self.fill_value)?;
            resize(&padded, (self.height, self.width), self.method, self.antialias)?
        } else {
            resize(&x, (self.height, self.width), self.method, self.antialias)?
        };
        let y = if input.dtype() == DType::U8 {
            // Keras gives uint8 back for uint8 input: rounded half to even, then saturated.
            let bytes: Vec<u8> = y.to_vec::<f32>()?.into_iter().map(|v| v.round_ties_even().clamp(0.0, 255.0) as u8).collect();
            Tensor::from_vec(bytes, y.shape().clone(), y.device())?
        } else {
            y
        };
        output(y, single)
    }

    fn keras_config(&self) -> Value {
        json!({
            "height": self.height, "width": self.width, "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio, "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
            "fill_mode": "constant", "fill_value": self.fill_value, "antialias": self.antialias, "data_format": "channels_last",
        })
    }
}
preprocessing_layer!(Resizing, "Resizing");

/// `keras.layers.CenterCrop`: the central `height × width` window; an image smaller than the
/// target along either axis is instead cropped to the target's aspect ratio and resized
/// (bilinear), as Keras's `smart_resize` does.
pub struct CenterCrop {
    base: LayerBase,
    height: usize,
    width: usize,
}

impl CenterCrop {
    /// Crops to `height × width`.
    ///
    /// # Errors
    /// `Config` for a zero size.
    pub fn new(height: usize, width: usize) -> Result<Self> {
        positive_size("CenterCrop", height, width)?;
        Ok(CenterCrop { base: LayerBase::new("CenterCrop"), height, width })
    }

    fn output_shape(&self, s: &ShapeSpec) -> Result<ShapeSpec> {
        image_shape(&self.base, s)?;
        Ok(resized_shape(s, self.height, self.width))
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        let (x, single) = image_input(&self.base, x)?;
        let (ih, iw) = (x.dims()[1], x.dims()[2]);
        let y = if ih >= self.height && iw >= self.width {
            crop_to_bounding_box(&x, (ih - self.height) / 2, (iw - self.width) / 2, self.height, self.width)?
        } else {
            crop_to_aspect_and_resize(&x, self.height, self.width, ResizeMethod::Bilinear, false)?
        };
        output(y, single)
    }

    fn keras_config(&self) -> Value {
        json!({"height": self.height, "width": self.width, "data_format": "channels_last"})
    }
}
preprocessing_layer!(CenterCrop, "CenterCrop");
