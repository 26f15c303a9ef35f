//! One Fovea layer call → ONNX nodes. Layers are read through what every layer exposes — its
//! Keras class name, its `config()` JSON and its named weights — so the exporter needs no access
//! to layer internals and covers the preprocessing layers of crates above fovea-nn too.

use super::graph::{float, int, ints, string, Graph, Layout, Val};
use crate::activations::Activation;
use crate::layer::Layer;
use crate::{Error, Result};
use fovea_core::ops::padding::Padding;
use fovea_core::Tensor;
use serde_json::Value;

/// The layer classes [`convert`] exports (besides the identity-at-inference ones in
/// [`IDENTITY_CLASSES`]); named in the error for any other class.
pub const SUPPORTED_CLASSES: &[&str] = &[
    "Conv2D",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "Conv2DTranspose",
    "Dense",
    "BatchNormalization",
    "LayerNormalization",
    "MaxPooling2D",
    "AveragePooling2D",
    "MaxUnpooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Flatten",
    "Reshape",
    "Permute",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "PReLU",
    "Softmax",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "UpSampling2D",
    "ZeroPadding2D",
    "Cropping2D",
    "LocalResponseNormalization",
    "Rescaling",
    "Normalization",
    "Conv1D",
    "CenterCrop",
    "Resizing",
];

/// Classes that compute the identity at inference (dropout, noise and random augmentation).
pub const IDENTITY_CLASSES: &[&str] = &[
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
];

/// What a conversion needs to know about the layer it converts.
pub(super) struct Ctx<'a> {
    layer: &'a dyn Layer,
    config: Value,
}

impl Ctx<'_> {
    pub(super) fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::Config(format!("ONNX export of layer {:?} ({}): {what}", self.layer.name(), self.layer.class_name()))
    }

    pub(super) fn get(&self, key: &str) -> Result<&Value> {
        self.config.get(key).ok_or_else(|| self.err(format!("its config has no {key:?}")))
    }

    pub(super) fn pair(&self, key: &str) -> Result<(usize, usize)> {
        let v: Vec<usize> = serde_json::from_value(self.get(key)?.clone()).map_err(|e| self.err(format!("{key:?}: {e}")))?;
        match v.as_slice() {
            [a, b] => Ok((*a, *b)),
            [a] => Ok((*a, *a)),
            _ => Err(self.err(format!("{key:?} must have 1 or 2 entries, got {v:?}"))),
        }
    }

    pub(super) fn pairs(&self, key: &str) -> Result<[(usize, usize); 2]> {
        let v: Vec<(usize, usize)> = serde_json::from_value(self.get(key)?.clone()).map_err(|e| self.err(format!("{key:?}: {e}")))?;
        match v.as_slice() {
            [a, b] => Ok([*a, *b]),
            _ => Err(self.err(format!("{key:?} must hold two (before, after) pairs, got {v:?}"))),
        }
    }

    pub(super) fn usize_of(&self, key: &str) -> Result<usize> {
        self.get(key)?.as_u64().map(|v| v as usize).ok_or_else(|| self.err(format!("{key:?} must be a non-negative integer")))
    }

    pub(super) fn f32_of(&self, key: &str) -> Result<f32> {
        self.get(key)?.as_f64().map(|v| v as f32).ok_or_else(|| self.err(format!("{key:?} must be a number")))
    }

    pub(super) fn padding(&self) -> Result<Padding> {
        match self.get("padding")? {
            Value::String(s) if s == "same" => Ok(Padding::Same),
            Value::String(s) if s == "valid" => Ok(Padding::Valid),
            other => Ok(Padding::Explicit(serde_json::from_value(other.clone()).map_err(|e| self.err(format!("padding {other}: {e}")))?)),
        }
    }

    pub(super) fn activation(&self) -> Result<Activation> {
        match self.config.get("activation") {
            None => Ok(Activation::Linear),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| self.err(e)),
        }
    }

    /// The weight whose name ends in `suffix` (`kernel`, `moving_mean`).
    pub(super) fn weight(&self, suffix: &str) -> Result<Option<Tensor>> {
        let w = self.layer.weights();
        Ok(w.iter().find(|v| v.name() == suffix || v.name().ends_with(&format!("/{suffix}"))).map(|v| v.value()))
    }

    pub(super) fn required(&self, suffix: &str) -> Result<Tensor> {
        self.weight(suffix)?.ok_or_else(|| {
            let names: Vec<String> = self.layer.weights().iter().map(|v| v.name().to_string()).collect();
            self.err(format!("expected a weight named .../{suffix}, found {names:?} (is the layer built?)"))
        })
    }

    pub(super) fn name(&self) -> &str {
        self.layer.name()
    }

    pub(super) fn class(&self) -> &'static str {
        self.layer.class_name()
    }

    /// The weight whose name ends in `/suffix` as an initializer, permuted by `perm`, with its
    /// ONNX dims; `None` when the layer has no such weight (no bias).
    ///
    /// A layer called more than once (shared in a functional model) gets one initializer per
    /// weight, not one per call: layer names are unique within a model.
    pub(super) fn init(&self, g: &mut Graph, suffix: &str, perm: Option<&[usize]>) -> Result<Option<(String, Vec<usize>)>> {
        let key = format!("{}/{suffix}/{perm:?}", self.name());
        if let Some(hit) = g.weights.get(&key) {
            return Ok(Some(hit.clone()));
        }
        match self.weight(suffix)? {
            None => Ok(None),
            Some(t) => {
                let (dims, values) = data(&t, perm)?;
                let made = (g.f32_const(&format!("{}/{suffix}", self.name()), &dims, &values), dims);
                g.weights.insert(key, made.clone());
                Ok(Some(made))
            }
        }
    }
}

/// A weight's values as f32, permuted by `perm` when given.
fn data(t: &Tensor, perm: Option<&[usize]>) -> Result<(Vec<usize>, Vec<f32>)> {
    let t = match perm {
        Some(p) => t.permute(p)?,
        None => t.clone(),
    };
    Ok((t.dims().to_vec(), t.to_vec::<f32>()?))
}

/// The layer's weight `what` (which must exist) as an initializer, permuted by `perm`.
fn init(g: &mut Graph, ctx: &Ctx, what: &str, perm: Option<&[usize]>) -> Result<String> {
    let (name, _) = ctx.init(g, what, perm)?.ok_or_else(|| ctx.err(format!("expected a weight named .../{what} (is the layer built?)")))?;
    Ok(name)
}

/// Converts one call of `layer` on `inputs` whose output has Fovea shape `out_shape` (batch
/// excluded).
///
/// # Errors
/// `Config` naming the layer and its class for a class without an ONNX counterpart here or an
/// unsupported configuration of a supported one.
pub fn convert(g: &mut Graph, layer: &dyn Layer, inputs: &[Val], out_shape: &[usize]) -> Result<Val> {
    let class = layer.class_name();
    let ctx = Ctx { layer, config: layer.config() };
    let out = |name: String, layout: Layout| Val { name, layout, shape: out_shape.to_vec() };
    let one = || -> Result<&Val> {
        match inputs {
            [x] => Ok(x),
            _ => Err(ctx.err(format!("expected 1 input, got {}", inputs.len()))),
        }
    };
    if IDENTITY_CLASSES.contains(&class) {
        return Ok(one()?.clone());
    }
    let base = ctx.name().to_string();
    Ok(match class {
        "Conv2D" | "DepthwiseConv2D" | "SeparableConv2D" => {
            let y = super::conv::conv(g, &ctx, one()?, out_shape)?;
            return apply_activation(g, &ctx, y, ctx.activation()?);
        }
        "Conv2DTranspose" => {
            let y = super::conv::conv_transpose(g, &ctx, one()?, out_shape)?;
            return apply_activation(g, &ctx, y, ctx.activation()?);
        }
        "Dense" => {
            let x = g.in_layout(one()?, Layout::Keras);
            let w = init(g, &ctx, "kernel", None)?;
            let mut y = g.node("MatMul", &[&x.name, &w], &format!("{base}/matmul"), vec![]);
            if let Some((b, _)) = ctx.init(g, "bias", None)? {
                y = g.node("Add", &[&y, &b], &format!("{base}/bias_add"), vec![]);
            }
            return apply_activation(g, &ctx, out(y, Layout::Keras), ctx.activation()?);
        }
        "BatchNormalization" => batch_norm(g, &ctx, one()?, out_shape)?,
        "LayerNormalization" => {
            let x = g.in_layout(one()?, Layout::Keras);
            let c = *x.shape.last().ok_or_else(|| ctx.err("needs an input with a feature axis"))?;
            let gamma = match ctx.init(g, "gamma", None)? {
                Some((t, _)) => t,
                None => g.f32_const(&format!("{base}/gamma"), &[c], &vec![1.0; c]),
            };
            let mut inputs = vec![x.name.clone(), gamma];
            if let Some((t, _)) = ctx.init(g, "beta", None)? {
                inputs.push(t);
            }
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            let attrs = vec![int("axis", -1), float("epsilon", ctx.f32_of("epsilon")?)];
            out(g.node("LayerNormalization", &refs, &base, attrs), Layout::Keras)
        }
        "MaxPooling2D" | "AveragePooling2D" => {
            let x = g.in_layout(one()?, Layout::Nchw);
            let (k, s) = (ctx.pair("pool_size")?, ctx.pair("strides")?);
            let pads = super::conv::pads(&ctx, &ctx.padding()?, &x, k, s, (1, 1))?;
            let mut attrs =
                vec![ints("kernel_shape", &[k.0 as i64, k.1 as i64]), ints("strides", &[s.0 as i64, s.1 as i64]), ints("pads", &pads)];
            let op = if class == "MaxPooling2D" {
                "MaxPool"
            } else {
                // TensorFlow's SAME average divides by the count of real inputs.
                attrs.push(int("count_include_pad", 0));
                "AveragePool"
            };
            out(g.node(op, &[&x.name], &base, attrs), Layout::Nchw)
        }
        "MaxUnpooling2D" => {
            // SegNet's unpooling takes [x, features] and recomputes the pooling's argmax from
            // the features: ONNX's MaxPool gives those indices (flattened NCHW positions) and
            // MaxUnpool scatters x back to them, at the features' size.
            let [x, f] = inputs else { return Err(ctx.err(format!("expected 2 inputs [x, features], got {}", inputs.len()))) };
            let (x, f) = (g.in_layout(x, Layout::Nchw), g.in_layout(f, Layout::Nchw));
            let k = ctx.pair("pool_size")?;
            let window = || vec![ints("kernel_shape", &[k.0 as i64, k.1 as i64]), ints("strides", &[k.0 as i64, k.1 as i64])];
            let pooled = g.node_outputs("MaxPool", &[&f.name], &[&format!("{base}/pooled"), &format!("{base}/argmax")], window());
            let shape = g.node("Shape", &[&f.name], &format!("{base}/shape"), vec![]);
            out(g.node("MaxUnpool", &[&x.name, &pooled[1], &shape], &base, window()), Layout::Nchw)
        }
        "GlobalAveragePooling2D" | "GlobalMaxPooling2D" => {
            let x = g.in_layout(one()?, Layout::Nchw);
            let op = if class == "GlobalAveragePooling2D" { "GlobalAveragePool" } else { "GlobalMaxPool" };
            let keepdims = ctx.config.get("keepdims").and_then(Value::as_bool).unwrap_or(false);
            if keepdims {
                out(g.node(op, &[&x.name], &base, vec![]), Layout::Nchw)
            } else {
                let p = g.node(op, &[&x.name], &format!("{base}/pool"), vec![]);
                out(g.node("Flatten", &[&p], &base, vec![int("axis", 1)]), Layout::Keras)
            }
        }
        // Keras flattens channels-last: back to NHWC first so the order of features matches.
        "Flatten" => {
            let x = g.in_layout(one()?, Layout::Keras);
            out(g.node("Flatten", &[&x.name], &base, vec![int("axis", 1)]), Layout::Keras)
        }
        "Reshape" => {
            let x = g.in_layout(one()?, Layout::Keras);
            let target: Vec<i64> = serde_json::from_value(ctx.get("target_shape")?.clone()).map_err(|e| ctx.err(e))?;
            // 0 copies the batch size from the input.
            let shape = g.i64_const(&format!("{base}/shape"), &std::iter::once(0).chain(target).collect::<Vec<_>>());
            out(g.node("Reshape", &[&x.name, &shape], &base, vec![]), Layout::Keras)
        }
        "Permute" => {
            let x = g.in_layout(one()?, Layout::Keras);
            let dims: Vec<i64> = serde_json::from_value(ctx.get("dims")?.clone()).map_err(|e| ctx.err(e))?;
            let perm: Vec<i64> = std::iter::once(0).chain(dims).collect();
            out(g.node("Transpose", &[&x.name], &base, vec![ints("perm", &perm)]), Layout::Keras)
        }
        "Activation" => return apply_activation(g, &ctx, one()?.clone(), ctx.activation()?),
        "ReLU" => {
            let x = one()?;
            let slope = ctx.config.get("negative_slope").and_then(Value::as_f64).unwrap_or(0.0);
            let threshold = ctx.config.get("threshold").and_then(Value::as_f64).unwrap_or(0.0);
            if slope != 0.0 || threshold != 0.0 {
                return Err(ctx.err(format!("negative_slope {slope} and threshold {threshold} are not exported (expected 0 and 0)")));
            }
            match ctx.config.get("max_value").and_then(Value::as_f64) {
                Some(m) => clip(g, &base, x, 0.0, m as f32),
                None => Val { name: g.node("Relu", &[&x.name], &base, vec![]), ..x.clone() },
            }
        }
        "LeakyReLU" => {
            let x = one()?;
            Val { name: g.node("LeakyRelu", &[&x.name], &base, vec![float("alpha", ctx.f32_of("negative_slope")?)]), ..x.clone() }
        }
        "ELU" => {
            let x = one()?;
            Val { name: g.node("Elu", &[&x.name], &base, vec![float("alpha", ctx.f32_of("alpha")?)]), ..x.clone() }
        }
        "PReLU" => {
            let x = one()?;
            // The slope has the input's shape (batch excluded); channels first for NCHW input.
            let perm: Option<&[usize]> = if x.layout == Layout::Nchw { Some(&[2, 0, 1]) } else { None };
            let a = init(g, &ctx, "alpha", perm)?;
            Val { name: g.node("PRelu", &[&x.name, &a], &base, vec![]), ..x.clone() }
        }
        "Softmax" => {
            let x = one()?;
            let axis = match ctx.get("axis")? {
                Value::Array(a) if a.len() == 1 => a[0].as_i64(),
                v => v.as_i64(),
            }
            .ok_or_else(|| ctx.err(format!("expected one integer axis, got {}", ctx.config["axis"])))?;
            Val { name: g.node("Softmax", &[&x.name], &base, vec![int("axis", x.onnx_axis(axis))]), ..x.clone() }
        }
        "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" | "Concatenate" => merge(g, &ctx, class, inputs, out_shape)?,
        "UpSampling2D" => {
            let x = g.in_layout(one()?, Layout::Nchw);
            let size = ctx.pair("size")?;
            let scales = g.f32_const(&format!("{base}/scales"), &[4], &[1.0, 1.0, size.0 as f32, size.1 as f32]);
            let attrs = match ctx.config.get("interpolation").and_then(Value::as_str).unwrap_or("nearest") {
                // out[i] = in[floor(i / s)]: Keras's repeat.
                "nearest" => {
                    vec![string("mode", "nearest"), string("coordinate_transformation_mode", "asymmetric"), string("nearest_mode", "floor")]
                }
                // tf.image.resize's half-pixel centers, as Fovea's bilinear matrices use.
                "bilinear" => vec![string("mode", "linear"), string("coordinate_transformation_mode", "half_pixel")],
                other => return Err(ctx.err(format!("interpolation {other:?} is not exported (expected nearest or bilinear)"))),
            };
            out(g.node("Resize", &[&x.name, "", &scales], &base, attrs), Layout::Nchw)
        }
        "ZeroPadding2D" => {
            let x = g.in_layout(one()?, Layout::Nchw);
            let [(t, b), (l, r)] = ctx.pairs("padding")?;
            let pads = g.i64_const(&format!("{base}/pads"), &[0, 0, t as i64, l as i64, 0, 0, b as i64, r as i64]);
            out(g.node("Pad", &[&x.name, &pads], &base, vec![string("mode", "constant")]), Layout::Nchw)
        }
        "Cropping2D" => {
            let x = g.in_layout(one()?, Layout::Nchw);
            let [(t, b), (l, r)] = ctx.pairs("cropping")?;
            let (h, w) = (x.shape[0] as i64, x.shape[1] as i64);
            let starts = g.i64_const(&format!("{base}/starts"), &[t as i64, l as i64]);
            let ends = g.i64_const(&format!("{base}/ends"), &[h - b as i64, w - r as i64]);
            let axes = g.i64_const(&format!("{base}/axes"), &[2, 3]);
            out(g.node("Slice", &[&x.name, &starts, &ends, &axes], &base, vec![]), Layout::Nchw)
        }
        "LocalResponseNormalization" => {
            // TF: x / (bias + alpha·Σ_{|d|≤r} x²)^beta; ONNX divides alpha by the window size.
            let x = g.in_layout(one()?, Layout::Nchw);
            let r = ctx.get("depth_radius")?.as_u64().ok_or_else(|| ctx.err("depth_radius must be an integer"))? as i64;
            let size = 2 * r + 1;
            let attrs = vec![
                int("size", size),
                float("alpha", ctx.f32_of("alpha")? * size as f32),
                float("beta", ctx.f32_of("beta")?),
                float("bias", ctx.f32_of("bias")?),
            ];
            out(g.node("LRN", &[&x.name], &base, attrs), Layout::Nchw)
        }
        "Rescaling" => {
            let x = one()?.clone();
            let y = affine_coefficient(g, &ctx, &x, "scale", "Mul")?;
            affine_coefficient(g, &ctx, &y, "offset", "Add")?
        }
        "Normalization" => normalization(g, &ctx, one()?)?,
        "Conv1D" => {
            let y = super::conv::conv1d(g, &ctx, one()?, out_shape)?;
            return apply_activation(g, &ctx, y, ctx.activation()?);
        }
        "CenterCrop" => {
            let x = g.in_layout(one()?, Layout::Nchw);
            let (h, w) = (ctx.usize_of("height")?, ctx.usize_of("width")?);
            if x.rank() != 4 || x.shape[0] < h || x.shape[1] < w {
                return Err(ctx.err(format!(
                    "only cropping is exported: expected an image input of at least {h}×{w}, got shape {:?} (a smaller input is resized)",
                    x.shape
                )));
            }
            let (top, left) = ((x.shape[0] - h) / 2, (x.shape[1] - w) / 2);
            let starts = g.i64_const(&format!("{base}/starts"), &[top as i64, left as i64]);
            let ends = g.i64_const(&format!("{base}/ends"), &[(top + h) as i64, (left + w) as i64]);
            let axes = g.i64_const(&format!("{base}/axes"), &[2, 3]);
            out(g.node("Slice", &[&x.name, &starts, &ends, &axes], &base, vec![]), Layout::Nchw)
        }
        "Resizing" => resizing(g, &ctx, one()?, out_shape)?,
        other => {
            // A custom layer made of other layers exports as the graph it describes.
            let specs: Vec<crate::layer::ShapeSpec> =
                inputs.iter().map(|v| std::iter::once(None).chain(v.shape.iter().map(|&d| Some(d))).collect()).collect();
            if let Some(sub) = layer.as_functional(&specs) {
                let sub = sub.map_err(|e| ctx.err(e))?;
                let mut outs = super::walk(g, &sub, inputs.to_vec())?;
                return match outs.len() {
                    1 => Ok(outs.remove(0)),
                    n => Err(ctx.err(format!("its graph has {n} outputs, expected 1"))),
                };
            }
            return Err(ctx.err(format!(
                "layer type {other} has no ONNX counterpart in Fovea's exporter (supported: {}, and as identity {})",
                SUPPORTED_CLASSES.join(", "),
                IDENTITY_CLASSES.join(", ")
            )));
        }
    })
}

/// `x · c` or `x + c` for a Rescaling coefficient: a number, or one per channel (last axis).
fn affine_coefficient(g: &mut Graph, ctx: &Ctx, x: &Val, key: &str, op: &str) -> Result<Val> {
    let values: Vec<f32> = match ctx.config.get(key) {
        None | Some(Value::Null) => return Ok(x.clone()),
        Some(Value::Number(n)) => vec![n.as_f64().unwrap_or(0.0) as f32],
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| ctx.err(format!("{key:?}: {e}")))?,
    };
    let dims = match (values.len(), x.layout) {
        (1, _) => vec![],
        (c, Layout::Nchw) => vec![c, 1, 1],
        (c, Layout::Keras) => vec![c],
    };
    let c = g.f32_const(&format!("{}/{key}", ctx.name()), &dims, &values);
    Ok(Val { name: g.node(op, &[&x.name, &c], &format!("{}/{key}", ctx.name()), vec![]), ..x.clone() })
}

/// `values` (one, or one per channel of `x`'s last Fovea axis) as a constant broadcasting
/// against `x` in its layout.
fn channel_const(g: &mut Graph, ctx: &Ctx, what: &str, x: &Val, values: &[f32]) -> Result<String> {
    let c = x.shape.last().copied().unwrap_or(1);
    let dims = match (values.len(), x.layout) {
        (1, _) => vec![],
        (n, Layout::Nchw) if n == c => vec![c, 1, 1],
        (n, Layout::Keras) if n == c => vec![c],
        (n, _) => return Err(ctx.err(format!("{what} has {n} values, expected 1 or one per channel ({c})"))),
    };
    Ok(g.f32_const(&format!("{}/{what}", ctx.name()), &dims, values))
}

/// Keras's `Normalization` over the last axis (or one statistic for all): `(x − mean) / std`,
/// or `x · std + mean` when inverted, with `std = max(√variance, 1e-7)` as Fovea computes it.
/// The statistics are the adapted weights, else the ones given in the config.
fn normalization(g: &mut Graph, ctx: &Ctx, x: &Val) -> Result<Val> {
    let axis: Vec<i64> = match ctx.config.get("axis") {
        None => vec![-1],
        Some(Value::Null) => vec![],
        Some(Value::Number(n)) => vec![n.as_i64().unwrap_or(i64::MAX)],
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| ctx.err(format!("axis: {e}")))?,
    };
    let r = x.rank() as i64;
    if !(axis.is_empty() || axis == [-1] || axis == [r - 1]) {
        return Err(ctx.err(format!("axis {axis:?} is not exported (expected the last axis, -1, or null)")));
    }
    let stat = |key: &str| -> Result<Vec<f32>> {
        if let Some(t) = ctx.weight(key)? {
            return Ok(t.to_vec::<f32>()?);
        }
        match ctx.config.get(key) {
            Some(Value::Number(n)) => Ok(vec![n.as_f64().unwrap_or(0.0) as f32]),
            Some(v @ Value::Array(_)) => serde_json::from_value(v.clone()).map_err(|e| ctx.err(format!("{key}: {e}"))),
            _ => Err(ctx.err(format!("has no {key} (adapt the layer or give the statistics)"))),
        }
    };
    let (mean, var) = (stat("mean")?, stat("variance")?);
    let std: Vec<f32> = var.iter().map(|v| v.sqrt().max(1e-7)).collect();
    let m = channel_const(g, ctx, "mean", x, &mean)?;
    let sd = channel_const(g, ctx, "std", x, &std)?;
    let base = ctx.name();
    let name = if ctx.config.get("invert").and_then(Value::as_bool).unwrap_or(false) {
        let y = g.node("Mul", &[&x.name, &sd], &format!("{base}/scale"), vec![]);
        g.node("Add", &[&y, &m], base, vec![])
    } else {
        let y = g.node("Sub", &[&x.name, &m], &format!("{base}/center"), vec![]);
        g.node("Div", &[&y, &sd], base, vec![])
    };
    Ok(Val { name, ..x.clone() })
}

/// Keras's `Resizing` as `Resize` to the target size: bilinear as `tf.image.resize` computes it
/// (half-pixel centers, no antialiasing), nearest with half-pixel centers rounding halves up.
fn resizing(g: &mut Graph, ctx: &Ctx, x: &Val, out_shape: &[usize]) -> Result<Val> {
    let flag = |k: &str| ctx.config.get(k).and_then(Value::as_bool).unwrap_or(false);
    if flag("crop_to_aspect_ratio") || flag("pad_to_aspect_ratio") {
        return Err(ctx.err("crop_to_aspect_ratio and pad_to_aspect_ratio are not exported (expected both false)"));
    }
    let x = g.in_layout(x, Layout::Nchw);
    if x.rank() != 4 {
        return Err(ctx.err(format!("expected an image input (N, H, W, C), got rank {}", x.rank())));
    }
    let (h, w) = (ctx.usize_of("height")?, ctx.usize_of("width")?);
    if flag("antialias") && (h < x.shape[0] || w < x.shape[1]) {
        return Err(ctx.err("antialiased downscaling is not exported (expected antialias false, or upscaling)"));
    }
    let interpolation = ctx.config.get("interpolation").and_then(Value::as_str).unwrap_or("bilinear");
    let attrs = match interpolation {
        "bilinear" => vec![string("mode", "linear"), string("coordinate_transformation_mode", "half_pixel")],
        "nearest" => vec![
            string("mode", "nearest"),
            string("coordinate_transformation_mode", "half_pixel"),
            string("nearest_mode", "round_prefer_ceil"),
        ],
        other => return Err(ctx.err(format!("interpolation {other:?} is not exported (expected bilinear or nearest)"))),
    };
    // The batch is only known at run time: sizes = shape(x)[0:2] ++ [h, w].
    let base = ctx.name().to_string();
    let shape = g.node("Shape", &[&x.name], &format!("{base}/shape"), vec![]);
    let (zero, two) = (g.i64_const(&format!("{base}/zero"), &[0]), g.i64_const(&format!("{base}/two"), &[2]));
    let nc = g.node("Slice", &[&shape, &zero, &two], &format!("{base}/batch_channels"), vec![]);
    let hw = g.i64_const(&format!("{base}/hw"), &[h as i64, w as i64]);
    let sizes = g.node("Concat", &[&nc, &hw], &format!("{base}/sizes"), vec![int("axis", 0)]);
    let y = g.node("Resize", &[&x.name, "", "", &sizes], &base, attrs);
    Ok(Val { name: y, layout: Layout::Nchw, shape: out_shape.to_vec() })
}

fn clip(g: &mut Graph, base: &str, x: &Val, lo: f32, hi: f32) -> Val {
    let lo = g.f32_const(&format!("{base}/min"), &[], &[lo]);
    let hi = g.f32_const(&format!("{base}/max"), &[], &[hi]);
    Val { name: g.node("Clip", &[&x.name, &lo, &hi], base, vec![]), ..x.clone() }
}

/// Inference batch normalization over the last (channel) axis: ONNX's `BatchNormalization`
/// where the channel axis is ONNX's axis 1 (NCHW images, `[N, C]` features), else the folded
/// per-channel `x·scale + shift`.
fn batch_norm(g: &mut Graph, ctx: &Ctx, x: &Val, out_shape: &[usize]) -> Result<Val> {
    let base = ctx.name().to_string();
    let mean = ctx.required("moving_mean")?.to_vec::<f32>()?;
    let var = ctx.required("moving_variance")?.to_vec::<f32>()?;
    let c = mean.len();
    let gamma = match ctx.weight("gamma")? {
        Some(t) => t.to_vec::<f32>()?,
        None => vec![1.0; c],
    };
    let beta = match ctx.weight("beta")? {
        Some(t) => t.to_vec::<f32>()?,
        None => vec![0.0; c],
    };
    let eps = ctx.f32_of("epsilon")?;
    let x = if x.rank() == 4 { g.in_layout(x, Layout::Nchw) } else { x.clone() };
    if x.rank() == 4 || x.rank() == 2 {
        let names: Vec<String> = [("gamma", &gamma), ("beta", &beta), ("moving_mean", &mean), ("moving_variance", &var)]
            .into_iter()
            .map(|(what, v)| g.f32_const(&format!("{base}/{what}"), &[c], v))
            .collect();
        let y = g.node("BatchNormalization", &[&x.name, &names[0], &names[1], &names[2], &names[3]], &base, vec![float("epsilon", eps)]);
        return Ok(Val { name: y, layout: x.layout, shape: out_shape.to_vec() });
    }
    let scale: Vec<f32> = (0..c).map(|i| (gamma[i] as f64 / (var[i] as f64 + eps as f64).sqrt()) as f32).collect();
    let shift: Vec<f32> = (0..c).map(|i| (beta[i] as f64 - mean[i] as f64 * scale[i] as f64) as f32).collect();
    let s = g.f32_const(&format!("{base}/scale"), &[c], &scale);
    let t = g.f32_const(&format!("{base}/shift"), &[c], &shift);
    let y = g.node("Mul", &[&x.name, &s], &format!("{base}/mul"), vec![]);
    Ok(Val { name: g.node("Add", &[&y, &t], &base, vec![]), layout: x.layout, shape: out_shape.to_vec() })
}

/// The merge layers: every input in one layout (NCHW when any image input already is, so a
/// residual sum transposes nothing), then one variadic op.
fn merge(g: &mut Graph, ctx: &Ctx, class: &str, inputs: &[Val], out_shape: &[usize]) -> Result<Val> {
    if inputs.len() < 2 {
        return Err(ctx.err(format!("expected at least 2 inputs, got {}", inputs.len())));
    }
    let base = ctx.name().to_string();
    let layout = if inputs.iter().any(|v| v.layout == Layout::Nchw) { Layout::Nchw } else { Layout::Keras };
    let xs: Vec<Val> = inputs.iter().map(|v| g.in_layout(v, layout)).collect();
    let names: Vec<&str> = xs.iter().map(|v| v.name.as_str()).collect();
    let layout = if xs.iter().any(|v| v.layout == Layout::Nchw) { Layout::Nchw } else { Layout::Keras };
    let name = match class {
        "Subtract" if names.len() == 2 => g.node("Sub", &names, &base, vec![]),
        "Subtract" => return Err(ctx.err(format!("expected 2 inputs, got {}", names.len()))),
        "Add" if names.len() == 2 => g.node("Add", &names, &base, vec![]),
        "Add" => g.node("Sum", &names, &base, vec![]),
        "Multiply" => {
            let mut y = names[0].to_string();
            for (i, n) in names[1..].iter().enumerate() {
                let b = if i + 2 == names.len() { base.clone() } else { format!("{base}/mul{i}") };
                y = g.node("Mul", &[&y, n], &b, vec![]);
            }
            y
        }
        "Average" => g.node("Mean", &names, &base, vec![]),
        "Maximum" => g.node("Max", &names, &base, vec![]),
        "Minimum" => g.node("Min", &names, &base, vec![]),
        _ => {
            let axis = ctx.get("axis")?.as_i64().ok_or_else(|| ctx.err("axis must be an integer"))?;
            g.node("Concat", &names, &base, vec![int("axis", xs[0].onnx_axis(axis))])
        }
    };
    Ok(Val { name, layout, shape: out_shape.to_vec() })
}

/// Applies a layer's `activation` to `x` (the identity adds no node).
fn apply_activation(g: &mut Graph, ctx: &Ctx, x: Val, act: Activation) -> Result<Val> {
    activation(g, &format!("{}/{}", ctx.name(), act_name(act)), x, act)
}

fn act_name(act: Activation) -> String {
    serde_json::to_value(act).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "activation".into())
}

/// `act(x)` as ONNX nodes named after `base`.
pub fn activation(g: &mut Graph, base: &str, x: Val, act: Activation) -> Result<Val> {
    let unary = |g: &mut Graph, op: &str, attrs| Val { name: g.node(op, &[&x.name], base, attrs), ..x.clone() };
    Ok(match act {
        Activation::Linear => x,
        Activation::Relu => unary(g, "Relu", vec![]),
        Activation::Relu6 => clip(g, base, &x, 0.0, 6.0),
        Activation::Sigmoid => unary(g, "Sigmoid", vec![]),
        Activation::Tanh => unary(g, "Tanh", vec![]),
        Activation::Elu => unary(g, "Elu", vec![float("alpha", 1.0)]),
        // ONNX's default alpha and gamma are Keras's constants.
        Activation::Selu => unary(g, "Selu", vec![]),
        Activation::Softplus => unary(g, "Softplus", vec![]),
        Activation::Softsign => unary(g, "Softsign", vec![]),
        // Keras 3's hard sigmoid: clip(x/6 + 1/2, 0, 1).
        Activation::HardSigmoid => unary(g, "HardSigmoid", vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)]),
        Activation::LeakyRelu => unary(g, "LeakyRelu", vec![float("alpha", 0.2)]),
        Activation::Exponential => unary(g, "Exp", vec![]),
        Activation::Softmax => unary(g, "Softmax", vec![int("axis", x.onnx_axis(-1))]),
        Activation::LogSoftmax => unary(g, "LogSoftmax", vec![int("axis", x.onnx_axis(-1))]),
        Activation::Swish => {
            let s = g.node("Sigmoid", &[&x.name], &format!("{base}/sigmoid"), vec![]);
            Val { name: g.node("Mul", &[&x.name, &s], base, vec![]), ..x.clone() }
        }
        // The exact form 0.5·x·(1 + erf(x/√2)) with the standard Erf (not Erfc) op.
        Activation::Gelu => {
            let r = g.f32_const(&format!("{base}/inv_sqrt2"), &[], &[std::f32::consts::FRAC_1_SQRT_2]);
            let one = g.f32_const(&format!("{base}/one"), &[], &[1.0]);
            let half = g.f32_const(&format!("{base}/half"), &[], &[0.5]);
            let a = g.node("Mul", &[&x.name, &r], &format!("{base}/scaled"), vec![]);
            let e = g.node("Erf", &[&a], &format!("{base}/erf"), vec![]);
            let p = g.node("Add", &[&e, &one], &format!("{base}/one_plus"), vec![]);
            let h = g.node("Mul", &[&x.name, &half], &format!("{base}/half_x"), vec![]);
            Val { name: g.node("Mul", &[&h, &p], base, vec![]), ..x.clone() }
        }
    })
}
