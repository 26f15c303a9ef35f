//! Layers without weights that apply one function to one input — `Activation`, `ReLU`,
//! `LeakyReLU`, `ELU`, `Softmax`, `Flatten`, `Reshape`, `Permute`, `Dropout`,
//! `SpatialDropout2D`, `ZeroPadding2D`, `Cropping2D`, `UpSampling2D`, `Lambda` and
//! `LocalResponseNormalization` — all one type, [`FnLayer`], built by each constructor.

use crate::activations::Activation as ActivationFn;
use crate::layer::{format_shape, single_input, single_shape, Layer, LayerBase, ShapeSpec};
use crate::{Error, Result};
use fovea_core::backend::PadMode;
use fovea_core::random::Rng;
use fovea_core::{DType, Tensor};
use serde_json::json;
use std::sync::{Arc, Mutex};

type ShapeFn = Arc<dyn Fn(&LayerBase, &ShapeSpec) -> Result<ShapeSpec> + Send + Sync>;
type CallFn = Arc<dyn Fn(&LayerBase, &Tensor, bool) -> Result<Tensor> + Send + Sync>;

/// A weightless single-input layer defined by an output-shape rule and a call function.
pub struct FnLayer {
    base: LayerBase,
    class_name: &'static str,
    config: serde_json::Value,
    shape_fn: ShapeFn,
    call_fn: CallFn,
}

impl FnLayer {
    fn new(class_name: &'static str, config: serde_json::Value, shape_fn: ShapeFn, call_fn: CallFn) -> Self {
        FnLayer { base: LayerBase::new(class_name), class_name, config, shape_fn, call_fn }
    }

    /// Names the layer.
    ///
    /// # Errors
    /// As [`LayerBase::set_name`].
    pub fn named(self, name: &str) -> Result<Self> {
        self.base.set_name(name)?;
        Ok(self)
    }
}

impl Layer for FnLayer {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        self.class_name
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        (self.shape_fn)(&self.base, single_shape(&self.base, input_shapes)?)
    }

    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        (self.call_fn)(&self.base, single_input(&self.base, inputs)?, training).map_err(|e| match e {
            Error::Core(c) => self.base.error(c.to_string()),
            other => other,
        })
    }

    fn config(&self) -> serde_json::Value {
        let mut c = self.config.clone();
        c["name"] = json!(self.name());
        c["trainable"] = json!(self.trainable());
        c
    }
}

fn same_shape() -> ShapeFn {
    Arc::new(|_, s| Ok(s.clone()))
}

fn rank4(base: &LayerBase, s: &ShapeSpec) -> Result<()> {
    if s.len() != 4 {
        return Err(base.error(format!("expected an input of rank 4 (batch, height, width, channels), got shape {}", format_shape(s))));
    }
    Ok(())
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        $( $(#[$doc])* pub struct $name; )*
    };
}

constructors! {
    /// `keras.layers.Activation`.
    Activation;
    /// `keras.layers.ReLU`.
    ReLU;
    /// `keras.layers.LeakyReLU`.
    LeakyReLU;
    /// `keras.layers.ELU`.
    ELU;
    /// `keras.layers.Softmax`.
    Softmax;
    /// `keras.layers.Flatten`.
    Flatten;
    /// `keras.layers.Reshape`.
    Reshape;
    /// `keras.layers.Permute`.
    Permute;
    /// `keras.layers.Dropout`.
    Dropout;
    /// `keras.layers.SpatialDropout2D`.
    SpatialDropout2D;
    /// `keras.layers.ZeroPadding2D`.
    ZeroPadding2D;
    /// `keras.layers.Cropping2D`.
    Cropping2D;
    /// `keras.layers.UpSampling2D` (nearest neighbour).
    UpSampling2D;
    /// `keras.layers.Lambda`.
    Lambda;
    /// A layer form of `tf.nn.local_response_normalization`.
    LocalResponseNormalization;
}

#[allow(clippy::new_ret_no_self)] // every weightless layer is an FnLayer
impl Activation {
    /// Applies `activation` element-wise.
    pub fn new(activation: ActivationFn) -> FnLayer {
        FnLayer::new("Activation", json!({"activation": activation}), same_shape(), Arc::new(move |_, x, _| activation.apply(x)))
    }
}

#[allow(clippy::new_ret_no_self)]
impl ReLU {
    /// `max(x, 0)` (Keras defaults: no cap, slope 0, threshold 0).
    pub fn new() -> FnLayer {
        FnLayer::new(
            "ReLU",
            json!({"max_value": null, "negative_slope": 0.0, "threshold": 0.0}),
            same_shape(),
            Arc::new(|_, x, _| Ok(x.relu()?)),
        )
    }

    /// `min(max(x, 0), max_value)`: Keras's `ReLU(max_value)`, e.g. MobileNet's `ReLU(6.0)`.
    pub fn with_max_value(max_value: f32) -> FnLayer {
        FnLayer::new(
            "ReLU",
            json!({"max_value": max_value, "negative_slope": 0.0, "threshold": 0.0}),
            same_shape(),
            Arc::new(move |_, x, _| Ok(x.clip(0.0, max_value)?)),
        )
    }
}

#[allow(clippy::new_ret_no_self)]
impl LeakyReLU {
    /// `x` above 0, `negative_slope·x` below (Keras default slope 0.3).
    pub fn new(negative_slope: f32) -> FnLayer {
        FnLayer::new(
            "LeakyReLU",
            json!({"negative_slope": negative_slope}),
            same_shape(),
            Arc::new(move |_, x, _| Ok(x.leaky_relu(negative_slope)?)),
        )
    }
}

#[allow(clippy::new_ret_no_self)]
impl ELU {
    /// ELU with `alpha` (Keras default 1.0).
    pub fn new(alpha: f32) -> FnLayer {
        FnLayer::new("ELU", json!({"alpha": alpha}), same_shape(), Arc::new(move |_, x, _| Ok(x.elu(alpha)?)))
    }
}

#[allow(clippy::new_ret_no_self)]
impl Softmax {
    /// Softmax over `axis` (Keras default -1).
    pub fn new(axis: isize) -> FnLayer {
        FnLayer::new("Softmax", json!({"axis": axis}), same_shape(), Arc::new(move |_, x, _| Ok(x.softmax(axis)?)))
    }
}

#[allow(clippy::new_ret_no_self)]
impl Flatten {
    /// `[N, ...] → [N, prod(...)]`.
    pub fn new() -> FnLayer {
        FnLayer::new(
            "Flatten",
            json!({"data_format": "channels_last"}),
            Arc::new(|base, s| {
                if s.is_empty() {
                    return Err(base.error("expected an input with a batch axis, got a scalar"));
                }
                // Checked: the dimensions may come from a config read from a file.
                let rest = match s[1..].iter().copied().collect::<Option<Vec<usize>>>() {
                    Some(dims) => Some(
                        fovea_core::checked_numel(&dims).ok_or_else(|| base.error(format!("flattening {} overflows", format_shape(s))))?,
                    ),
                    None => None,
                };
                Ok(vec![s[0], rest])
            }),
            Arc::new(|_, x, _| Ok(x.flatten()?)),
        )
    }
}

#[allow(clippy::new_ret_no_self)]
impl Reshape {
    /// Reshapes each sample to `target_shape` (one entry may be -1).
    pub fn new(target_shape: &[isize]) -> FnLayer {
        let target = target_shape.to_vec();
        let t2 = target.clone();
        FnLayer::new(
            "Reshape",
            json!({"target_shape": target}),
            Arc::new(move |base, s| {
                let overflow = || base.error(format!("reshaping {} to {t2:?} overflows", format_shape(s)));
                let known = match s.get(1..).unwrap_or(&[]).iter().copied().collect::<Option<Vec<usize>>>() {
                    Some(dims) => Some(fovea_core::checked_numel(&dims).ok_or_else(overflow)?),
                    None => None,
                };
                let fixed_dims: Vec<usize> = t2.iter().filter(|&&d| d >= 0).map(|&d| d as usize).collect();
                let fixed = fovea_core::checked_numel(&fixed_dims).ok_or_else(overflow)?;
                let mut out = vec![s.first().copied().flatten()];
                for &d in &t2 {
                    out.push(if d >= 0 {
                        Some(d as usize)
                    } else {
                        known.and_then(|k| if fixed > 0 && k % fixed == 0 { Some(k / fixed) } else { None })
                    });
                }
                if let (Some(k), true) = (known, t2.iter().all(|&d| d >= 0)) {
                    if k != fixed {
                        return Err(base.error(format!(
                            "cannot reshape a sample of shape {} ({k} values) to {t2:?} ({fixed} values)",
                            format_shape(s)
                        )));
                    }
                }
                Ok(out)
            }),
            Arc::new(move |_, x, _| {
                let mut dims = vec![x.dims()[0] as isize];
                dims.extend(&target);
                Ok(x.reshape(&dims)?)
            }),
        )
    }
}

#[allow(clippy::new_ret_no_self)]
impl Permute {
    /// Permutes the non-batch axes; `dims` are 1-based as in Keras (`(2, 1)` swaps them).
    pub fn new(dims: &[usize]) -> FnLayer {
        let d = dims.to_vec();
        let d2 = d.clone();
        FnLayer::new(
            "Permute",
            json!({"dims": d}),
            Arc::new(move |base, s| {
                let mut sorted = d2.clone();
                sorted.sort_unstable();
                if s.len() != d2.len() + 1 || sorted != (1..=d2.len()).collect::<Vec<_>>() {
                    return Err(base.error(format!(
                        "dims {d2:?} must be a permutation of 1..={} for input shape {}",
                        s.len().saturating_sub(1),
                        format_shape(s)
                    )));
                }
                Ok(std::iter::once(s[0]).chain(d2.iter().map(|&i| s[i])).collect())
            }),
            Arc::new(move |_, x, _| {
                let perm: Vec<usize> = std::iter::once(0).chain(d.iter().copied()).collect();
                Ok(x.permute(&perm)?)
            }),
        )
    }
}

fn dropout_layer(class_name: &'static str, rate: f64, seed: Option<u64>, spatial: bool) -> FnLayer {
    let rng = Mutex::new(seed.map(Rng::new).unwrap_or_else(Rng::from_global));
    FnLayer::new(
        class_name,
        json!({"rate": rate, "seed": seed}),
        Arc::new(move |base, s| {
            if spatial {
                rank4(base, s)?;
            }
            Ok(s.clone())
        }),
        Arc::new(move |base, x, training| {
            if !(0.0..1.0).contains(&rate) {
                return Err(base.error(format!("rate must be in [0, 1), got {rate}")));
            }
            if !training || rate == 0.0 {
                return Ok(x.clone());
            }
            // SpatialDropout2D drops whole feature maps: one draw per (sample, channel).
            let mask_shape: Vec<usize> = if spatial { vec![x.dims()[0], 1, 1, x.dims()[3]] } else { x.dims().to_vec() };
            let draw = rng.lock().expect("dropout rng").next_u64();
            let keep = Tensor::random_uniform(mask_shape, 0.0, 1.0, Some(draw), x.device())?
                .ge(&Tensor::scalar(rate as f32, x.device())?)?
                .cast(DType::F32)?;
            Ok(x.mul(&keep)?.mul_scalar(1.0 / (1.0 - rate as f32))?)
        }),
    )
}

#[allow(clippy::new_ret_no_self)]
impl Dropout {
    /// Zeroes each input with probability `rate` while training and scales the rest by
    /// `1/(1 − rate)`; the identity in inference.
    pub fn new(rate: f64) -> FnLayer {
        dropout_layer("Dropout", rate, None, false)
    }

    /// As [`Dropout::new`] with a fixed seed.
    pub fn with_seed(rate: f64, seed: u64) -> FnLayer {
        dropout_layer("Dropout", rate, Some(seed), false)
    }
}

#[allow(clippy::new_ret_no_self)]
impl SpatialDropout2D {
    /// Drops entire channels of NHWC input with probability `rate` while training.
    pub fn new(rate: f64) -> FnLayer {
        dropout_layer("SpatialDropout2D", rate, None, true)
    }
}

#[allow(clippy::new_ret_no_self)]
impl ZeroPadding2D {
    /// Pads rows `(top, bottom)` and columns `(left, right)` with zeros.
    pub fn new(rows: (usize, usize), cols: (usize, usize)) -> FnLayer {
        FnLayer::new(
            "ZeroPadding2D",
            json!({"padding": [[rows.0, rows.1], [cols.0, cols.1]], "data_format": "channels_last"}),
            Arc::new(move |base, s| {
                rank4(base, s)?;
                // Amounts may come from a file: checked, like every size from outside.
                let pad = |n: Option<usize>, (a, b): (usize, usize)| {
                    n.map(|n| {
                        n.checked_add(a)
                            .and_then(|v| v.checked_add(b))
                            .ok_or_else(|| base.error(format!("padding {n} by ({a}, {b}) overflows")))
                    })
                    .transpose()
                };
                Ok(vec![s[0], pad(s[1], rows)?, pad(s[2], cols)?, s[3]])
            }),
            Arc::new(move |_, x, _| Ok(x.pad(&[(0, 0), rows, cols, (0, 0)], PadMode::Constant(0.0))?)),
        )
    }
}

#[allow(clippy::new_ret_no_self)]
impl Cropping2D {
    /// Removes rows `(top, bottom)` and columns `(left, right)`.
    pub fn new(rows: (usize, usize), cols: (usize, usize)) -> FnLayer {
        let crop = |n: usize, (a, b): (usize, usize)| a.checked_add(b).and_then(|c| n.checked_sub(c)).filter(|&v| v > 0);
        FnLayer::new(
            "Cropping2D",
            json!({"cropping": [[rows.0, rows.1], [cols.0, cols.1]], "data_format": "channels_last"}),
            Arc::new(move |base, s| {
                rank4(base, s)?;
                let h = s[1]
                    .map(|h| crop(h, rows).ok_or_else(|| base.error(format!("cropping {rows:?} rows leaves nothing of height {h}"))))
                    .transpose()?;
                let w = s[2]
                    .map(|w| crop(w, cols).ok_or_else(|| base.error(format!("cropping {cols:?} columns leaves nothing of width {w}"))))
                    .transpose()?;
                Ok(vec![s[0], h, w, s[3]])
            }),
            Arc::new(move |base, x, _| {
                let (h, w) = (x.dims()[1], x.dims()[2]);
                let nh = crop(h, rows).ok_or_else(|| base.error(format!("cropping {rows:?} rows leaves nothing of height {h}")))?;
                let nw = crop(w, cols).ok_or_else(|| base.error(format!("cropping {cols:?} columns leaves nothing of width {w}")))?;
                Ok(x.narrow(1, rows.0, nh)?.narrow(2, cols.0, nw)?)
            }),
        )
    }
}

/// `n · factor`, checked: the factor may come from a file.
fn upsampled(base: &LayerBase, n: Option<usize>, factor: usize) -> Result<Option<usize>> {
    n.map(|n| n.checked_mul(factor).ok_or_else(|| base.error(format!("upsampling {n} by {factor} overflows")))).transpose()
}

#[allow(clippy::new_ret_no_self)]
impl UpSampling2D {
    /// Repeats rows and columns `size` times (nearest-neighbour interpolation).
    pub fn new(size: (usize, usize)) -> FnLayer {
        FnLayer::new(
            "UpSampling2D",
            json!({"size": [size.0, size.1], "interpolation": "nearest", "data_format": "channels_last"}),
            Arc::new(move |base, s| {
                rank4(base, s)?;
                Ok(vec![s[0], upsampled(base, s[1], size.0)?, upsampled(base, s[2], size.1)?, s[3]])
            }),
            Arc::new(move |_, x, _| Ok(x.repeat(size.0, 1)?.repeat(size.1, 2)?)),
        )
    }
}

/// TensorFlow's half-pixel bilinear interpolation weights `[out, in]` for one axis.
fn bilinear_matrix(input: usize, output: usize, device: fovea_core::Device) -> fovea_core::Result<Tensor> {
    let scale = input as f64 / output as f64;
    let mut w = vec![0f32; output * input];
    for o in 0..output {
        let src = (o as f64 + 0.5) * scale - 0.5;
        let floor = src.floor();
        let lower = (floor.max(0.0) as usize).min(input - 1);
        let upper = (src.ceil().max(0.0) as usize).min(input - 1);
        let frac = (src - floor) as f32;
        w[o * input + lower] += 1.0 - frac;
        w[o * input + upper] += frac;
    }
    Tensor::from_vec(w, [output, input], device)
}

impl UpSampling2D {
    /// Upsamples by `size` with TensorFlow's half-pixel bilinear interpolation
    /// (`interpolation="bilinear"`), as two interpolation-matrix products (so the gradient is
    /// exact).
    pub fn bilinear(size: (usize, usize)) -> FnLayer {
        FnLayer::new(
            "UpSampling2D",
            json!({"size": [size.0, size.1], "interpolation": "bilinear", "data_format": "channels_last"}),
            Arc::new(move |base, s| {
                rank4(base, s)?;
                Ok(vec![s[0], upsampled(base, s[1], size.0)?, upsampled(base, s[2], size.1)?, s[3]])
            }),
            Arc::new(move |_, x, _| {
                let (h, w) = (x.dims()[1], x.dims()[2]);
                let wh = bilinear_matrix(h, h * size.0, x.device())?;
                let ww = bilinear_matrix(w, w * size.1, x.device())?;
                // [N,H,W,C] → [N,W,C,H]·Whᵀ → [N,oH,C,W]·Wwᵀ → [N,oH,oW,C]
                let a = x.permute(&[0, 2, 3, 1])?.matmul_t(&wh, false, true)?;
                Ok(a.permute(&[0, 3, 2, 1])?.matmul_t(&ww, false, true)?.permute(&[0, 1, 3, 2])?)
            }),
        )
    }
}

#[allow(clippy::new_ret_no_self)]
impl Lambda {
    /// Wraps a closure as a layer; `output_shape` maps the input shape to the output shape.
    pub fn new(
        f: impl Fn(&Tensor) -> fovea_core::Result<Tensor> + Send + Sync + 'static,
        output_shape: impl Fn(&ShapeSpec) -> ShapeSpec + Send + Sync + 'static,
    ) -> FnLayer {
        FnLayer::new(
            "Lambda",
            json!({"function": "<rust closure>"}),
            Arc::new(move |_, s| Ok(output_shape(s))),
            Arc::new(move |_, x, _| Ok(f(x)?)),
        )
    }
}

#[allow(clippy::new_ret_no_self)]
impl LocalResponseNormalization {
    /// `tf.nn.local_response_normalization` over the channel axis.
    pub fn new(depth_radius: usize, bias: f32, alpha: f32, beta: f32) -> FnLayer {
        FnLayer::new(
            "LocalResponseNormalization",
            json!({"depth_radius": depth_radius, "bias": bias, "alpha": alpha, "beta": beta}),
            same_shape(),
            Arc::new(move |_, x, _| Ok(x.local_response_normalization(depth_radius, bias, alpha, beta)?)),
        )
    }
}
