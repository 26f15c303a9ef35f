//! LeNet-5 as LeCun et al. (1998) built it, the table every CNN book starts with (Géron's
//! table 14-1): 32×32 input, C1 6 maps 5×5, S2 *trainable* subsampling, C3 16 maps connected to
//! S2 through the paper's partial connection table (Table I), S4, C5 120 maps 5×5, F6 84 units,
//! all squashed by tanh, and a Euclidean RBF output layer of 10 units — 60,840 parameters:
//! 156 + 12 + 1,516 + 32 + 48,120 + 10,164 + 840.
//!
//! Each layer's arithmetic is a small function of tensors (`subsample`, `c3_kernel`, `rbf`),
//! checked with finite differences; the layers only hold the weights.

use fovea_core::ops::padding::Padding;
use fovea_core::{Device, Tensor, Variable};
use fovea_nn::activations::Activation as Act;
use fovea_nn::initializers::Initializer;
use fovea_nn::layer::{format_shape, single_input, single_shape, Layer, LayerBase, LayerRef, ShapeSpec};
use fovea_nn::layers::{Activation, Conv2D, Dense, Flatten};
use fovea_nn::model::Sequential;
use fovea_nn::{Error, Result};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

/// Table I of the paper: the S2 maps (0–5) each C3 map (0–15) reads — six maps of three
/// contiguous inputs, six of four contiguous, three of four discontinuous, one of all six.
pub const C3_CONNECTIONS: [&[usize]; 16] = [
    &[0, 1, 2],
    &[1, 2, 3],
    &[2, 3, 4],
    &[3, 4, 5],
    &[0, 4, 5],
    &[0, 1, 5],
    &[0, 1, 2, 3],
    &[1, 2, 3, 4],
    &[2, 3, 4, 5],
    &[0, 3, 4, 5],
    &[0, 1, 4, 5],
    &[0, 1, 2, 5],
    &[0, 1, 3, 4],
    &[1, 2, 4, 5],
    &[0, 2, 3, 5],
    &[0, 1, 2, 3, 4, 5],
];

/// S2/S4: each output is `coefficient_c · (sum of a 2×2 window) + bias_c`, one trainable pair
/// per map (`x` is NHWC; `coefficient` and `bias` are `[C]`).
///
/// # Errors
/// As the pooling and arithmetic ops (a rank other than 4, mismatched channels).
pub fn subsample(x: &Tensor, coefficient: &Tensor, bias: &Tensor) -> fovea_core::Result<Tensor> {
    x.avg_pool2d((2, 2), (2, 2), Padding::Valid)?.mul_scalar(4.0)?.mul(coefficient)?.add(bias)
}

/// The index, into `[connected weights..., 0]`, of every element of C3's full `[5, 5, 6, 16]`
/// kernel: unconnected (input, output) pairs point at the trailing zero.
fn c3_index() -> Vec<i64> {
    let connected: usize = C3_CONNECTIONS.iter().map(|c| c.len()).sum::<usize>() * 25;
    let mut offset = vec![None; 6 * 16];
    let mut next = 0;
    for (out, inputs) in C3_CONNECTIONS.iter().enumerate() {
        for &i in inputs.iter() {
            offset[i * 16 + out] = Some(next);
            next += 25;
        }
    }
    let mut index = Vec::with_capacity(25 * 96);
    for tap in 0..25 {
        for i in 0..6 {
            for out in 0..16 {
                index.push(offset[i * 16 + out].map_or(connected, |o| o + tap) as i64);
            }
        }
    }
    index
}

/// C3's full HWIO kernel `[5, 5, 6, 16]` from its 1,500 connected weights (60 connections of
/// 5×5), zeros where Table I has no connection; gradients flow only to the connected weights.
///
/// # Errors
/// `weights` not of 1,500 values.
pub fn c3_kernel(weights: &Tensor) -> fovea_core::Result<Tensor> {
    let padded = Tensor::concat(&[weights, &Tensor::zeros([1], weights.dtype(), weights.device())?], 0)?;
    let index = Tensor::from_vec(c3_index(), [25 * 6 * 16], weights.device())?;
    padded.gather(&index, 0)?.reshape(&[5, 5, 6, 16])
}

/// The Euclidean RBF output: `−Σ_i (x_i − c_ij)²` for each class j (`x` `[N, 84]`, centres
/// `[84, 10]`), negated so that the nearest centre scores highest and the scores can be read
/// as logits.
///
/// # Errors
/// Mismatched shapes.
pub fn rbf(x: &Tensor, centres: &Tensor) -> fovea_core::Result<Tensor> {
    // ‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖²
    let xx = x.square()?.sum(&[1], true)?;
    let cc = centres.square()?.sum(&[0], true)?;
    xx.sub(&x.matmul(centres)?.mul_scalar(2.0)?)?.add(&cc)?.neg()
}

/// S2 / S4: LeCun's trainable subsampling (see [`subsample`]).
pub struct Subsampling2D {
    base: LayerBase,
    weights: OnceLock<(Variable, Variable)>,
}

impl Subsampling2D {
    /// A subsampling layer; coefficients start at ¼ (a plain average) and biases at 0.
    pub fn new() -> Self {
        Subsampling2D { base: LayerBase::new("Subsampling2D"), weights: OnceLock::new() }
    }
}

impl Default for Subsampling2D {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for Subsampling2D {
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn class_name(&self) -> &'static str {
        "Subsampling2D"
    }
    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let s = single_shape(&self.base, input_shapes)?;
        let c = s.get(3).copied().flatten().ok_or_else(|| self.base.error(format!("expected NHWC input, got {}", format_shape(s))))?;
        let coefficient = self.base.add_weight("coefficient", &[c], &Initializer::Constant { value: 0.25 }, true, None)?;
        let bias = self.base.add_weight("bias", &[c], &Initializer::Zeros, true, None)?;
        let _ = self.weights.set((coefficient, bias));
        Ok(())
    }
    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        match single_shape(&self.base, input_shapes)?.as_slice() {
            [n, h, w, c] => Ok(vec![*n, h.map(|h| h / 2), w.map(|w| w / 2), *c]),
            other => Err(self.base.error(format!("expected NHWC input, got {}", format_shape(other)))),
        }
    }
    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let (coefficient, bias) = self.weights.get().ok_or_else(|| self.base.error("called before build"))?;
        Ok(subsample(single_input(&self.base, inputs)?, &coefficient.value(), &bias.value())?)
    }
    fn config(&self) -> serde_json::Value {
        json!({"name": self.name(), "trainable": self.trainable()})
    }
}

/// C3: 16 5×5 maps, each reading only the S2 maps Table I lists ([`C3_CONNECTIONS`]).
pub struct PartialConv2D {
    base: LayerBase,
    weights: OnceLock<(Variable, Variable)>,
}

impl PartialConv2D {
    /// C3 with Glorot-uniform weights over its real fan-in and zero biases.
    pub fn new() -> Self {
        PartialConv2D { base: LayerBase::new("PartialConv2D"), weights: OnceLock::new() }
    }
}

impl Default for PartialConv2D {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for PartialConv2D {
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn class_name(&self) -> &'static str {
        "PartialConv2D"
    }
    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let s = single_shape(&self.base, input_shapes)?;
        if s.len() != 4 || s[3] != Some(6) {
            return Err(self.base.error(format!("expected the 6 maps of S2 (NHWC), got {}", format_shape(s))));
        }
        // Glorot over a C3 map's average fan-in (60 connections / 16 maps) and fan-out.
        let limit = (6.0f64 / (25.0 * 60.0 / 16.0 + 25.0 * 16.0 * 60.0 / 96.0)).sqrt();
        let init = Initializer::RandomUniform { minval: -limit, maxval: limit };
        let kernel = self.base.add_weight("kernel", &[1500], &init, true, None)?;
        let bias = self.base.add_weight("bias", &[16], &Initializer::Zeros, true, None)?;
        let _ = self.weights.set((kernel, bias));
        Ok(())
    }
    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        match single_shape(&self.base, input_shapes)?.as_slice() {
            [n, h, w, Some(6)] => Ok(vec![*n, h.map(|h| h.saturating_sub(4)), w.map(|w| w.saturating_sub(4)), Some(16)]),
            other => Err(self.base.error(format!("expected the 6 maps of S2 (NHWC), got {}", format_shape(other)))),
        }
    }
    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let (kernel, bias) = self.weights.get().ok_or_else(|| self.base.error("called before build"))?;
        let x = single_input(&self.base, inputs)?;
        Ok(x.conv2d(&c3_kernel(&kernel.value())?, &fovea_core::ops::conv::Conv2dOptions::default())?.add(&bias.value())?)
    }
    fn config(&self) -> serde_json::Value {
        json!({"name": self.name(), "trainable": self.trainable(), "connections": C3_CONNECTIONS})
    }
}

/// The output layer: one RBF unit per class (see [`rbf`]); its centres are trainable here
/// (the paper fixed them to ±1 bitmaps of stylized digits).
pub struct RbfOutput {
    base: LayerBase,
    units: usize,
    centres: OnceLock<Variable>,
}

impl RbfOutput {
    /// `units` RBF units (10 classes in LeNet-5).
    pub fn new(units: usize) -> Self {
        RbfOutput { base: LayerBase::new("RbfOutput"), units, centres: OnceLock::new() }
    }
}

impl Layer for RbfOutput {
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn class_name(&self) -> &'static str {
        "RbfOutput"
    }
    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let s = single_shape(&self.base, input_shapes)?;
        let features = match s.as_slice() {
            [_, Some(f)] => *f,
            other => return Err(self.base.error(format!("expected [batch, features], got {}", format_shape(other)))),
        };
        // Centres like F6's tanh outputs: in (−1, 1).
        let init = Initializer::RandomUniform { minval: -1.0, maxval: 1.0 };
        let _ = self.centres.set(self.base.add_weight("centres", &[features, self.units], &init, true, None)?);
        Ok(())
    }
    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let s = single_shape(&self.base, input_shapes)?;
        Ok(vec![s[0], Some(self.units)])
    }
    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let centres = self.centres.get().ok_or_else(|| self.base.error("called before build"))?;
        Ok(rbf(single_input(&self.base, inputs)?, &centres.value())?)
    }
    fn config(&self) -> serde_json::Value {
        json!({"name": self.name(), "trainable": self.trainable(), "units": self.units})
    }
}

/// LeCun et al.'s LeNet-5 on 32×32×1 inputs (MNIST digits padded by 2), 10 RBF scores out
/// (read them as logits: `sparse_categorical_crossentropy` with `from_logits`).
///
/// # Errors
/// Layer build errors only.
pub fn lenet5_original() -> Result<Sequential> {
    let m = Sequential::with_input_shape(&[32, 32, 1]).on_device(Device::Cpu)?;
    m.add(Conv2D::new(6, (5, 5)).activation(Act::Tanh).named("C1")?)?;
    m.add(Subsampling2D::new())?;
    m.add(Activation::new(Act::Tanh))?;
    m.add(PartialConv2D::new())?;
    m.add(Activation::new(Act::Tanh))?;
    m.add(Subsampling2D::new())?;
    m.add(Activation::new(Act::Tanh))?;
    m.add(Conv2D::new(120, (5, 5)).activation(Act::Tanh).named("C5")?)?;
    m.add(Flatten::new())?;
    m.add(Dense::new(84).activation(Act::Tanh).named("F6")?)?;
    m.add(RbfOutput::new(10))?;
    m.build_for(&[32, 32, 1])?;
    Ok(m)
}

/// Rebuilds [`Subsampling2D`] from its config (it has no options).
fn subsampling_from_config(_c: &Value) -> Result<LayerRef> {
    Ok(Arc::new(Subsampling2D::new()))
}

/// Rebuilds [`PartialConv2D`]; a config naming another connection table than Table I's is refused
/// (the layer implements that table only).
fn partial_conv_from_config(c: &Value) -> Result<LayerRef> {
    if let Some(table) = c.get("connections") {
        if *table != json!(C3_CONNECTIONS) {
            return Err(Error::Config(format!("PartialConv2D: expected LeNet-5's C3 connection table, got {table}")));
        }
    }
    Ok(Arc::new(PartialConv2D::new()))
}

/// Rebuilds [`RbfOutput`] with its `units`.
fn rbf_from_config(c: &Value) -> Result<LayerRef> {
    match c.get("units").and_then(Value::as_u64) {
        Some(units) if units > 0 => Ok(Arc::new(RbfOutput::new(units as usize))),
        other => Err(Error::Config(format!("RbfOutput config: expected a positive \"units\", got {other:?}"))),
    }
}

// LeNet-5 model files (`fovea create lenet5_original -o FILE`) load wherever fovea-vision is linked.
fovea_nn::register_layer_class!("Subsampling2D", subsampling_from_config);
fovea_nn::register_layer_class!("PartialConv2D", partial_conv_from_config);
fovea_nn::register_layer_class!("RbfOutput", rbf_from_config);
