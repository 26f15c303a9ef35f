//! `BatchNormalization` and `LayerNormalization` over the last (channel) axis, and `PReLU`.

use crate::initializers::Initializer;
use crate::layer::{format_shape, single_input, single_shape, Layer, LayerBase, ShapeSpec};
use crate::Result;
use fovea_core::{no_grad, Tensor, Variable};
use serde_json::json;
use std::sync::OnceLock;

/// `keras.layers.BatchNormalization` on the last axis: batch statistics while training (and the
/// moving averages updated), moving statistics in inference or when the layer is frozen.
pub struct BatchNormalization {
    base: LayerBase,
    momentum: f32,
    epsilon: f32,
    center: bool,
    scale: bool,
    synchronized: bool,
    params: OnceLock<BnParams>,
}

struct BnParams {
    gamma: Option<Variable>,
    beta: Option<Variable>,
    moving_mean: Variable,
    moving_variance: Variable,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchNormalization {
    /// Keras defaults: momentum 0.99, epsilon 1e-3, with γ and β.
    pub fn new() -> Self {
        BatchNormalization {
            base: LayerBase::new("BatchNormalization"),
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            synchronized: false,
            params: OnceLock::new(),
        }
    }

    /// Keras's `synchronized`: in a data-parallel job, training uses the mean and variance of
    /// the whole global batch, reduced across replicas (and their gradients too), instead of
    /// each replica's slice; without replicas it changes nothing.
    pub fn synchronized(mut self, synchronized: bool) -> Self {
        self.synchronized = synchronized;
        self
    }

    /// The moving-average momentum (the TF1 book uses 0.9).
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// The variance fuzz.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Whether to learn β (`center`) and γ (`scale`).
    pub fn center_scale(mut self, center: bool, scale: bool) -> Self {
        self.center = center;
        self.scale = scale;
        self
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

fn channels(base: &LayerBase, s: &ShapeSpec) -> Result<usize> {
    match s.last() {
        Some(Some(c)) if s.len() >= 2 => Ok(*c),
        _ => Err(base.error(format!("expected an input of rank >= 2 with a known last (channel) axis, got shape {}", format_shape(s)))),
    }
}

impl BatchNormalization {
    /// Inference: γ/√(var + ε) and β − mean·that fold into one per-channel affine map
    /// (differentiable in γ and β, which fine-tuning a frozen-statistics model still trains).
    fn scale_and_shift(&self, p: &BnParams) -> Result<(Tensor, Tensor)> {
        let mut scale = p.moving_variance.value().add_scalar(self.epsilon)?.rsqrt()?;
        if let Some(g) = &p.gamma {
            scale = scale.mul(&g.value())?;
        }
        let mut shift = p.moving_mean.value().mul(&scale)?.neg()?;
        if let Some(b) = &p.beta {
            shift = shift.add(&b.value())?;
        }
        Ok((scale, shift))
    }
}

impl Layer for BatchNormalization {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }

    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let c = channels(&self.base, single_shape(&self.base, input_shapes)?)?;
        let b = &self.base;
        // Keras order: gamma, beta, moving_mean, moving_variance.
        let gamma = if self.scale { Some(b.add_weight("gamma", &[c], &Initializer::Ones, true, None)?) } else { None };
        let beta = if self.center { Some(b.add_weight("beta", &[c], &Initializer::Zeros, true, None)?) } else { None };
        let moving_mean = b.add_weight("moving_mean", &[c], &Initializer::Zeros, false, None)?;
        let moving_variance = b.add_weight("moving_variance", &[c], &Initializer::Ones, false, None)?;
        let _ = self.params.set(BnParams { gamma, beta, moving_mean, moving_variance });
        Ok(())
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let s = single_shape(&self.base, input_shapes)?;
        channels(&self.base, s)?;
        Ok(s.clone())
    }

    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        let x = single_input(&self.base, inputs)?;
        let p = self.params.get().ok_or_else(|| self.base.error("called before build"))?;
        let c = p.moving_mean.value().numel();
        if x.rank() < 2 || x.dims()[x.rank() - 1] != c {
            return Err(self.base.error(format!("expected {c} channels on the last axis, got shape {}", x.shape())));
        }
        // Keras: a frozen BatchNormalization runs in inference mode even inside fit.
        if training && self.trainable() {
            let (gamma, beta) = (p.gamma.as_ref().map(Variable::value), p.beta.as_ref().map(Variable::value));
            let (y, mean, var) = if self.synchronized && crate::model::replicas::current().is_some() {
                synchronized_batch_norm(x, gamma.as_ref(), beta.as_ref(), self.epsilon)?
            } else {
                x.batch_norm_train(gamma.as_ref(), beta.as_ref(), self.epsilon)?
            };
            let m = self.momentum;
            no_grad(|| -> Result<()> {
                // moving = moving·momentum + batch·(1 − momentum)
                p.moving_mean.assign(&p.moving_mean.value().mul_scalar(m)?.add(&mean.mul_scalar(1.0 - m)?)?)?;
                p.moving_variance.assign(&p.moving_variance.value().mul_scalar(m)?.add(&var.mul_scalar(1.0 - m)?)?)?;
                Ok(())
            })?;
            return Ok(y);
        }
        let (scale, shift) = self.scale_and_shift(p)?;
        Ok(x.channel_affine(&scale, &shift)?)
    }

    fn inference_affine(&self) -> Option<Result<(Tensor, Tensor)>> {
        self.params.get().map(|p| self.scale_and_shift(p))
    }

    fn config(&self) -> serde_json::Value {
        json!({"name": self.name(), "trainable": self.trainable(), "axis": -1, "momentum": self.momentum, "epsilon": self.epsilon, "center": self.center, "scale": self.scale, "synchronized": self.synchronized})
    }
}

/// Batch norm over the global batch of a data-parallel job: per-channel Σx, Σx² and the
/// count are summed across replicas in one differentiable reduction, so the statistics and
/// their gradients are those of one process holding the whole batch. Returns the output and
/// the (biased) batch mean and variance, as `batch_norm_train` does.
fn synchronized_batch_norm(x: &Tensor, gamma: Option<&Tensor>, beta: Option<&Tensor>, epsilon: f32) -> Result<(Tensor, Tensor, Tensor)> {
    let c = x.dims()[x.rank() - 1];
    let rows = x.reshape(&[-1, c as isize])?;
    let count = Tensor::full([1], rows.dims()[0] as f64, x.dtype(), x.device())?;
    let stats = Tensor::concat(&[&rows.sum(&[0], false)?, &rows.square()?.sum(&[0], false)?, &count], 0)?;
    let total = crate::model::replicas::all_reduce_sum(&stats)?;
    let n = total.narrow(0, 2 * c, 1)?;
    let mean = total.narrow(0, 0, c)?.div(&n)?;
    // var = E[x²] − E[x]²
    let var = total.narrow(0, c, c)?.div(&n)?.sub(&mean.square()?)?;
    let mut y = x.sub(&mean)?.div(&var.add_scalar(epsilon)?.sqrt()?)?;
    if let Some(g) = gamma {
        y = y.mul(g)?;
    }
    if let Some(b) = beta {
        y = y.add(b)?;
    }
    Ok((y, mean.detach(), var.detach()))
}

/// `keras.layers.LayerNormalization` over the last axis (epsilon 1e-3, with γ and β).
pub struct LayerNormalization {
    base: LayerBase,
    epsilon: f32,
    params: OnceLock<(Variable, Variable)>,
}

impl Default for LayerNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerNormalization {
    /// Keras defaults.
    pub fn new() -> Self {
        LayerNormalization { base: LayerBase::new("LayerNormalization"), epsilon: 1e-3, params: OnceLock::new() }
    }

    /// The variance fuzz.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }
}

impl Layer for LayerNormalization {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "LayerNormalization"
    }

    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let c = channels(&self.base, single_shape(&self.base, input_shapes)?)?;
        let gamma = self.base.add_weight("gamma", &[c], &Initializer::Ones, true, None)?;
        let beta = self.base.add_weight("beta", &[c], &Initializer::Zeros, true, None)?;
        let _ = self.params.set((gamma, beta));
        Ok(())
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let s = single_shape(&self.base, input_shapes)?;
        channels(&self.base, s)?;
        Ok(s.clone())
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let x = single_input(&self.base, inputs)?;
        let (g, b) = self.params.get().ok_or_else(|| self.base.error("called before build"))?;
        let mean = x.mean(&[-1], true)?;
        let var = x.variance(&[-1], true)?;
        Ok(x.sub(&mean)?.mul(&var.add_scalar(self.epsilon)?.rsqrt()?)?.mul(&g.value())?.add(&b.value())?)
    }

    fn config(&self) -> serde_json::Value {
        json!({"name": self.name(), "trainable": self.trainable(), "axis": -1, "epsilon": self.epsilon})
    }
}

/// `keras.layers.PReLU`: a leaky ReLU whose slope is learned per element (zeros initially).
pub struct PReLU {
    base: LayerBase,
    alpha_initializer: Initializer,
    alpha: OnceLock<Variable>,
}

impl Default for PReLU {
    fn default() -> Self {
        Self::new()
    }
}

impl PReLU {
    /// A PReLU with zero-initialised slopes.
    pub fn new() -> Self {
        PReLU { base: LayerBase::new("PReLU"), alpha_initializer: Initializer::Zeros, alpha: OnceLock::new() }
    }

    /// The slopes' initializer (Keras default zeros).
    pub fn alpha_initializer(mut self, init: Initializer) -> Self {
        self.alpha_initializer = init;
        self
    }
}

impl Layer for PReLU {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "PReLU"
    }

    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let s = single_shape(&self.base, input_shapes)?;
        let dims: Option<Vec<usize>> = s[1..].iter().copied().collect();
        let dims = dims.ok_or_else(|| self.base.error(format!("needs a fully known input shape, got {}", format_shape(s))))?;
        let _ = self.alpha.set(self.base.add_weight("alpha", &dims, &self.alpha_initializer, true, None)?);
        Ok(())
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        Ok(single_shape(&self.base, input_shapes)?.clone())
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let x = single_input(&self.base, inputs)?;
        let a = self.alpha.get().ok_or_else(|| self.base.error("called before build"))?.value();
        // relu(x) − α·relu(−x)
        Ok(x.relu()?.sub(&a.mul(&x.neg()?.relu()?)?)?)
    }

    fn config(&self) -> serde_json::Value {
        json!({"name": self.name(), "trainable": self.trainable(), "alpha_initializer": self.alpha_initializer})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_layer, LayerExpectations};
    use fovea_core::testing::{assert_close, rand};
    use fovea_core::Device;

    #[test]
    fn normalization_layers_pass_the_harness() {
        // BN has 4 parameters per channel, two of them non-trainable (SPEC §2.2).
        check_layer(
            &BatchNormalization::new(),
            &[&[3, 3, 4]],
            LayerExpectations { output: vec![None, Some(3), Some(3), Some(4)], params: 16, non_trainable: 8 },
        );
        check_layer(&LayerNormalization::new(), &[&[5]], LayerExpectations { output: vec![None, Some(5)], params: 10, non_trainable: 0 });
        // With zero slopes the slope gradient of mean(y²) vanishes, so start from 0.25.
        check_layer(
            &PReLU::new().alpha_initializer(Initializer::Constant { value: 0.25 }),
            &[&[4]],
            LayerExpectations { output: vec![None, Some(4)], params: 4, non_trainable: 0 },
        );
    }

    #[test]
    fn the_synchronized_formula_equals_the_fused_batch_norm_values_and_gradients() {
        // Outside a distributed job the cross-replica sum is the identity, so the composed
        // Σx/Σx² statistics must reproduce the fused kernel (checked against TensorFlow).
        let x = rand(&[2, 3, 3, 4], -2.0, 6.0, 5, Device::Cpu).with_requires_grad(true).unwrap();
        let gamma = rand(&[4], 0.5, 1.5, 6, Device::Cpu).with_requires_grad(true).unwrap();
        let beta = rand(&[4], -1.0, 1.0, 7, Device::Cpu).with_requires_grad(true).unwrap();
        let weights = rand(&[2, 3, 3, 4], -1.0, 1.0, 8, Device::Cpu);
        let (composed, cm, cv) = synchronized_batch_norm(&x, Some(&gamma), Some(&beta), 1e-3).unwrap();
        let (fused, fm, fv) = x.batch_norm_train(Some(&gamma), Some(&beta), 1e-3).unwrap();
        assert_close("output", &composed.to_vec::<f32>().unwrap(), &fused.to_vec::<f32>().unwrap(), 1e-4, 1e-5);
        assert_close("mean", &cm.to_vec::<f32>().unwrap(), &fm.to_vec::<f32>().unwrap(), 1e-5, 1e-6);
        assert_close("variance", &cv.to_vec::<f32>().unwrap(), &fv.to_vec::<f32>().unwrap(), 1e-4, 1e-5);
        let grads = |y: &Tensor| {
            let g = fovea_core::grad(&y.mul(&weights).unwrap().sum_all().unwrap(), &[&x, &gamma, &beta]).unwrap();
            g.into_iter().map(|t| t.unwrap().to_vec::<f32>().unwrap()).collect::<Vec<_>>()
        };
        for (name, (a, b)) in ["x", "gamma", "beta"].iter().zip(grads(&composed).iter().zip(&grads(&fused))) {
            assert_close(name, a, b, 1e-3, 1e-4);
        }
    }

    #[test]
    fn batch_norm_uses_batch_stats_in_training_and_moving_ones_after() {
        let bn = BatchNormalization::new().momentum(0.9);
        let x = rand(&[64, 3], -2.0, 6.0, 3, Device::Cpu);
        let y = bn.apply(std::slice::from_ref(&x), true).unwrap();
        // Training output is normalised per channel.
        let m = y.mean(&[0], false).unwrap().to_vec::<f32>().unwrap();
        let v = y.variance(&[0], false).unwrap().to_vec::<f32>().unwrap();
        assert_close("bn mean", &m, &[0.0; 3], 0.0, 1e-5);
        assert_close("bn var", &v, &[0.999; 3], 1e-3, 1e-3);
        // Moving statistics moved 10% of the way from (0, 1) to the batch's.
        let bm = x.mean(&[0], false).unwrap().mul_scalar(0.1).unwrap().to_vec::<f32>().unwrap();
        let p = bn.params.get().unwrap();
        assert_close("moving mean", &p.moving_mean.value().to_vec::<f32>().unwrap(), &bm, 1e-5, 1e-6);
        // Inference uses the moving statistics: (x − 0.1·μ)/√(σ²_m + ε).
        let inf = bn.apply(std::slice::from_ref(&x), false).unwrap();
        let mv = p.moving_variance.value().to_vec::<f32>().unwrap();
        let xv = x.to_vec::<f32>().unwrap();
        let expected: Vec<f32> = xv.iter().enumerate().map(|(i, &v)| (v - bm[i % 3]) / (mv[i % 3] + 1e-3).sqrt()).collect();
        assert_close("inference", &inf.to_vec::<f32>().unwrap(), &expected, 1e-5, 1e-5);
        // A frozen layer ignores training=true and leaves the statistics alone.
        bn.set_trainable(false).unwrap();
        let before = p.moving_mean.value().to_vec::<f32>().unwrap();
        let frozen = bn.apply(std::slice::from_ref(&x), true).unwrap();
        assert_eq!(frozen.to_vec::<f32>().unwrap(), inf.to_vec::<f32>().unwrap());
        assert_eq!(p.moving_mean.value().to_vec::<f32>().unwrap(), before);
        assert_eq!(bn.trainable_weights().len(), 0);
        assert_eq!(bn.non_trainable_weights().len(), 4);
    }
}
