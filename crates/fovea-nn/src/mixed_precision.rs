//! Mixed precision as Keras has it (`keras.mixed_precision`): a dtype policy per layer, taken
//! from a global policy when the layer is created, and a dynamic loss scale for float16.
//!
//! Under `mixed_bfloat16` or `mixed_float16` a layer computes in the 16-bit dtype while its
//! variables (and the optimizer's state) stay float32: its float inputs are cast to the compute
//! dtype and its matrix products and convolutions run inside a [`fovea_core::autocast`] scope,
//! so its float32 kernels are cast on the way in and their gradients come back as float32.
//! Batch normalization normalizes in float32; [`crate::model::training::Model::forward`]
//! returns float32 outputs, so losses and metrics compute in float32 as in Keras.
//!
//! ```
//! use fovea_nn::mixed_precision::{set_global_policy, Policy};
//! set_global_policy("mixed_bfloat16".parse().unwrap());
//! // ... layers and models created from here on compute in bfloat16 ...
//! set_global_policy(Policy::Float32);
//! ```

use crate::{Error, Result};
use fovea_core::{DType, Tensor};
use std::sync::atomic::{AtomicU8, Ordering};

/// A dtype policy: the dtype a layer computes in and the dtype of its variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    /// Everything in float32 (Keras's default policy, `"float32"`).
    #[default]
    Float32,
    /// Compute in bfloat16, variables in float32 (`"mixed_bfloat16"`).
    MixedBFloat16,
    /// Compute in float16, variables in float32 (`"mixed_float16"`); training scales the loss
    /// dynamically ([`LossScale`]) so that small float16 gradients do not flush to zero.
    MixedFloat16,
}

impl Policy {
    /// Keras's name of the policy.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Float32 => "float32",
            Policy::MixedBFloat16 => "mixed_bfloat16",
            Policy::MixedFloat16 => "mixed_float16",
        }
    }

    /// The dtype layers compute in.
    pub fn compute_dtype(self) -> DType {
        match self {
            Policy::Float32 => DType::F32,
            Policy::MixedBFloat16 => DType::BF16,
            Policy::MixedFloat16 => DType::F16,
        }
    }

    /// The dtype of variables: float32 under every policy.
    pub fn variable_dtype(self) -> DType {
        DType::F32
    }

    /// Whether the compute dtype is a 16-bit float.
    pub fn is_mixed(self) -> bool {
        self != Policy::Float32
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Policy {
        match code {
            1 => Policy::MixedBFloat16,
            2 => Policy::MixedFloat16,
            _ => Policy::Float32,
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Policy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Policy> {
        match s {
            "float32" => Ok(Policy::Float32),
            "mixed_bfloat16" => Ok(Policy::MixedBFloat16),
            "mixed_float16" => Ok(Policy::MixedFloat16),
            other => Err(Error::Config(format!("unknown dtype policy {other:?}: expected float32, mixed_bfloat16 or mixed_float16"))),
        }
    }
}

static GLOBAL_POLICY: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// A per-thread override set by [`with_policy`].
    static THREAD_POLICY: std::cell::Cell<Option<Policy>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with `policy` as the policy new layers take on this thread (a scoped
/// [`set_global_policy`], like [`crate::layer::with_device`]); the previous one comes back
/// afterwards, also on panic.
pub fn with_policy<R>(policy: Policy, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Policy>);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREAD_POLICY.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(THREAD_POLICY.with(|p| p.replace(Some(policy))));
    f()
}

/// Sets the policy that layers created from now on take (`keras.mixed_precision.set_global_policy`).
/// Layers already created keep theirs.
pub fn set_global_policy(policy: Policy) {
    GLOBAL_POLICY.store(policy.code(), Ordering::SeqCst);
}

/// The policy new layers take (`keras.mixed_precision.global_policy`): the one of an enclosing
/// [`with_policy`] on this thread, else the global one.
pub fn global_policy() -> Policy {
    THREAD_POLICY.with(|p| p.get()).unwrap_or_else(|| Policy::from_code(GLOBAL_POLICY.load(Ordering::SeqCst)))
}

/// Runs a layer's `call` under `policy`: float inputs cast to the compute dtype, and products
/// and convolutions autocast to it (float32 policies turn autocasting off, so a float32 layer
/// inside a mixed model is a float32 island).
pub(crate) fn call_under(policy: Policy, inputs: &[Tensor], call: impl FnOnce(&[Tensor]) -> Result<Tensor>) -> Result<Tensor> {
    let compute = policy.compute_dtype();
    let needs_cast = |t: &Tensor| t.dtype().is_float() && t.dtype() != compute;
    let low = policy.is_mixed().then_some(compute);
    if !inputs.iter().any(needs_cast) && fovea_core::autocast_dtype() == low {
        return call(inputs);
    }
    let cast: Vec<Tensor> =
        inputs.iter().map(|t| if needs_cast(t) { t.cast(compute) } else { Ok(t.clone()) }).collect::<fovea_core::Result<_>>()?;
    let mut result = None;
    fovea_core::autocast(low, || {
        result = Some(call(&cast));
        Ok(())
    })?;
    result.expect("the scope ran the call")
}

/// Casts a 16-bit float tensor to float32 (model outputs, so losses and metrics see float32).
pub(crate) fn to_f32(t: Tensor) -> Result<Tensor> {
    Ok(if t.dtype().is_half() { t.cast(DType::F32)? } else { t })
}

/// A dynamic loss scale (Keras's `LossScaleOptimizer` with `dynamic=True`): the loss is
/// multiplied by the scale before the backward pass and the gradients divided by it after; a
/// step whose gradients are not all finite is skipped and halves the scale, and every
/// `growth_interval` finite steps in a row double it.
#[derive(Debug, Clone, PartialEq)]
pub struct LossScale {
    scale: f32,
    growth_interval: u32,
    good_steps: u32,
}

impl Default for LossScale {
    /// Keras's defaults: an initial scale of 2^15, doubled after 2000 finite steps.
    fn default() -> Self {
        LossScale { scale: 32768.0, growth_interval: 2000, good_steps: 0 }
    }
}

impl LossScale {
    /// A dynamic scale starting at `initial_scale`, growing every `growth_interval` steps.
    ///
    /// # Errors
    /// `Config` unless `initial_scale` is finite and at least 1 and `growth_interval` nonzero.
    pub fn new(initial_scale: f32, growth_interval: u32) -> Result<Self> {
        if !(initial_scale.is_finite() && initial_scale >= 1.0) || growth_interval == 0 {
            return Err(Error::Config(format!(
                "a loss scale needs a finite initial scale >= 1 and a nonzero growth interval, got {initial_scale} and {growth_interval}"
            )));
        }
        Ok(LossScale { scale: initial_scale, growth_interval, good_steps: 0 })
    }

    /// The current scale.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Records one step: `finite` says whether every gradient was finite. Returns whether the
    /// step's update should be applied.
    pub fn update(&mut self, finite: bool) -> bool {
        if !finite {
            self.scale = (self.scale / 2.0).max(1.0);
            self.good_steps = 0;
            return false;
        }
        self.good_steps += 1;
        if self.good_steps >= self.growth_interval {
            self.good_steps = 0;
            if (self.scale * 2.0).is_finite() {
                self.scale *= 2.0;
            }
        }
        true
    }
}

/// Whether every gradient is finite: one reduction per gradient on its device and one scalar
/// copied to the host (the check a dynamic loss scale makes each step).
pub(crate) fn grads_are_finite(pairs: &[(fovea_core::Tensor, fovea_core::Variable)]) -> Result<bool> {
    let grads: Vec<fovea_core::Tensor> = pairs.iter().map(|(g, _)| g.clone()).collect();
    let norm = fovea_core::no_grad(|| -> Result<f32> {
        let mut total: Option<fovea_core::Tensor> = None;
        for g in &grads {
            let s = g.square()?.sum_all()?;
            total = Some(match total {
                None => s,
                Some(t) => t.add(&s)?,
            });
        }
        Ok(match total {
            Some(t) => t.to_scalar::<f32>()?,
            None => 0.0,
        })
    })?;
    Ok(norm.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_by_keras_name_and_say_what_they_compute_in() {
        for p in [Policy::Float32, Policy::MixedBFloat16, Policy::MixedFloat16] {
            assert_eq!(p.name().parse::<Policy>().unwrap(), p);
            assert_eq!(p.variable_dtype(), DType::F32);
        }
        assert_eq!(Policy::MixedBFloat16.compute_dtype(), DType::BF16);
        assert_eq!(Policy::MixedFloat16.compute_dtype(), DType::F16);
        let e = "bfloat16".parse::<Policy>().unwrap_err().to_string();
        assert!(e.contains("\"bfloat16\"") && e.contains("mixed_bfloat16"), "{e}");
    }

    #[test]
    fn loss_scale_halves_on_overflow_and_doubles_after_a_run_of_finite_steps() {
        let mut s = LossScale::new(8.0, 3).unwrap();
        assert!(!s.update(false));
        assert_eq!(s.scale(), 4.0);
        assert!(s.update(true) && s.update(true));
        assert_eq!(s.scale(), 4.0);
        // An overflow resets the run of finite steps.
        assert!(!s.update(false));
        assert_eq!(s.scale(), 2.0);
        for _ in 0..3 {
            assert!(s.update(true));
        }
        assert_eq!(s.scale(), 4.0);
        // The scale never drops below 1.
        for _ in 0..10 {
            s.update(false);
        }
        assert_eq!(s.scale(), 1.0);
        assert_eq!(LossScale::default().scale(), 32768.0);
        assert!(LossScale::new(0.5, 10).is_err() && LossScale::new(2.0, 0).is_err());
    }
}
