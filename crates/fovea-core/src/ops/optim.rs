//! Optimizer updates and gradient clipping as device operations.
//!
//! An optimizer (in `fovea-nn`) keeps its per-variable slots (momenta, second moments, ...) as
//! tensors on the variable's device, resolves each step's scalars (learning rate, bias
//! corrections, Nadam's momentum schedule) on the host into an [`UpdateRule`], and calls
//! [`apply_update`], which runs [`crate::backend::Backend::apply_update`] on the variable's
//! backend. Nothing but those scalars crosses between host and device. Clipping
//! ([`clip_by_norm`], [`clip_by_global_norm`], [`clip_by_value`]) is composed from tensor ops, so
//! norms stay on the device too.
//!
//! The update writes into the variable's and the slots' buffers in place when nothing else holds
//! them (the usual case in a training step), and into fresh copies otherwise, so a tensor someone
//! kept (a checkpoint being written, the graph of the last step) never changes under them.

use crate::backend::backend;
use crate::{no_grad, DType, Error, Result, Storage, Tensor, Variable};

/// One optimizer step for one variable, with every per-step scalar resolved (Keras 3's update
/// rules, composed from primitives by [`crate::backend::Backend::apply_update`]'s default).
///
/// Every rule first applies decoupled weight decay (`w -= w·weight_decay·lr`, Keras's
/// `weight_decay`; 0 for none). Slots are the optimizer variables Keras keeps per variable, in
/// Keras's order; [`UpdateRule::slot_count`] says how many a rule takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UpdateRule {
    /// SGD: `w -= lr·g`, or with momentum `m = momentum·m − lr·g; w += m` (Nesterov:
    /// `w += momentum·m − lr·g`). Slots: `[m]` when `momentum != 0`, else none.
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum (0 for plain SGD).
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// Decoupled weight decay rate.
        weight_decay: f64,
    },
    /// Adam (optionally AMSGrad): `m += (g − m)(1 − β₁); v += (g² − v)(1 − β₂);
    /// w -= m·alpha / (√v + ε)`, with `v` replaced by its running maximum for AMSGrad.
    /// Slots: `[m, v]`, plus `[v_hat]` for AMSGrad.
    Adam {
        /// Learning rate (for the weight decay).
        lr: f64,
        /// The bias-corrected step `lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ)`.
        alpha: f64,
        /// First-moment decay.
        beta_1: f64,
        /// Second-moment decay.
        beta_2: f64,
        /// Denominator fuzz.
        epsilon: f64,
        /// Use the running maximum of the second moment.
        amsgrad: bool,
        /// Decoupled weight decay rate.
        weight_decay: f64,
    },
    /// Nadam (Keras's momentum schedule): `m` and `v` as Adam, then
    /// `w -= lr·(m_coef·m + g_coef·g) / (√(v·v_coef) + ε)`. Slots: `[m, v]`.
    Nadam {
        /// Learning rate.
        lr: f64,
        /// First-moment decay.
        beta_1: f64,
        /// Second-moment decay.
        beta_2: f64,
        /// Denominator fuzz.
        epsilon: f64,
        /// `u_{t+1} / (1 − Π_{i≤t+1} u_i)`.
        m_coef: f64,
        /// `(1 − u_t) / (1 − Π_{i≤t} u_i)`.
        g_coef: f64,
        /// `1 / (1 − β₂ᵗ)`.
        v_coef: f64,
        /// Decoupled weight decay rate.
        weight_decay: f64,
    },
    /// RMSprop: `v = ρ·v + (1 − ρ)·g²` (centered: also `a = ρ·a + (1 − ρ)·g` and the
    /// denominator `√(v − a² + ε)`), `inc = lr·g / √(v + ε)`, then `w -= inc` or with momentum
    /// `m = momentum·m + inc; w -= m`. Slots: `[v]`, then `[m]` when `momentum > 0`, then `[a]`
    /// when centered.
    RmsProp {
        /// Learning rate.
        lr: f64,
        /// Decay of the averages.
        rho: f64,
        /// Momentum (0 for none).
        momentum: f64,
        /// Fuzz inside the square root.
        epsilon: f64,
        /// Normalise by the variance instead of the second moment.
        centered: bool,
        /// Decoupled weight decay rate.
        weight_decay: f64,
    },
    /// Adagrad: `acc += g²; w -= lr·g / √(acc + ε)`. Slots: `[acc]`.
    Adagrad {
        /// Learning rate.
        lr: f64,
        /// Fuzz inside the square root.
        epsilon: f64,
        /// Decoupled weight decay rate.
        weight_decay: f64,
    },
    /// Adadelta: `a = ρ·a + (1 − ρ)·g²; δ = −√(d + ε)·g / √(a + ε); d = ρ·d + (1 − ρ)·δ²;
    /// w += lr·δ`. Slots: `[a, d]`.
    Adadelta {
        /// Learning rate.
        lr: f64,
        /// Decay of the averages.
        rho: f64,
        /// Fuzz inside the square roots.
        epsilon: f64,
        /// Decoupled weight decay rate.
        weight_decay: f64,
    },
    /// Adamax: `m += (g − m)(1 − β₁); u = max(β₂·u, |g|); w -= lr·m / (correction·(u + ε))`.
    /// Slots: `[m, u]`.
    Adamax {
        /// Learning rate.
        lr: f64,
        /// First-moment decay.
        beta_1: f64,
        /// Infinity-norm decay.
        beta_2: f64,
        /// Denominator fuzz.
        epsilon: f64,
        /// The bias correction `1 − β₁ᵗ`.
        correction: f64,
        /// Decoupled weight decay rate.
        weight_decay: f64,
    },
}

impl UpdateRule {
    /// How many slot tensors the rule reads and writes.
    pub fn slot_count(&self) -> usize {
        match *self {
            UpdateRule::Sgd { momentum, .. } => usize::from(momentum != 0.0),
            UpdateRule::Adam { amsgrad, .. } => 2 + usize::from(amsgrad),
            UpdateRule::Nadam { .. } | UpdateRule::Adadelta { .. } | UpdateRule::Adamax { .. } => 2,
            UpdateRule::RmsProp { momentum, centered, .. } => 1 + usize::from(momentum > 0.0) + usize::from(centered),
            UpdateRule::Adagrad { .. } => 1,
        }
    }

    /// The learning rate and the decoupled weight-decay rate, which every rule has.
    pub fn lr_and_weight_decay(&self) -> (f64, f64) {
        match *self {
            UpdateRule::Sgd { lr, weight_decay, .. }
            | UpdateRule::Adam { lr, weight_decay, .. }
            | UpdateRule::Nadam { lr, weight_decay, .. }
            | UpdateRule::RmsProp { lr, weight_decay, .. }
            | UpdateRule::Adagrad { lr, weight_decay, .. }
            | UpdateRule::Adadelta { lr, weight_decay, .. }
            | UpdateRule::Adamax { lr, weight_decay, .. } => (lr, weight_decay),
        }
    }

    /// The Keras class name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            UpdateRule::Sgd { .. } => "SGD",
            UpdateRule::Adam { .. } => "Adam",
            UpdateRule::Nadam { .. } => "Nadam",
            UpdateRule::RmsProp { .. } => "RMSprop",
            UpdateRule::Adagrad { .. } => "Adagrad",
            UpdateRule::Adadelta { .. } => "Adadelta",
            UpdateRule::Adamax { .. } => "Adamax",
        }
    }
}

/// Checks the storages a backend's `apply_update` receives: f32 throughout, one length, as many
/// slots as the rule takes. Backends call it before touching anything, so a failed update
/// leaves the variable and its slots as they were.
pub(crate) fn check_update_storages(rule: &UpdateRule, param: &Storage, grad: &Storage, slots: &[&mut Storage]) -> Result<()> {
    const OP: &str = "apply_update";
    if slots.len() != rule.slot_count() {
        return Err(Error::invalid(OP, format!("{} takes {} slots, got {}", rule.name(), rule.slot_count(), slots.len())));
    }
    let n = param.len();
    // Dtypes and lengths only: the storages may live on any device.
    for (what, s) in std::iter::once(("gradient", grad)).chain(slots.iter().map(|s| ("slot", &**s))) {
        if s.dtype() != crate::DType::F32 {
            return Err(Error::dtype(OP, "float32", s.dtype()));
        }
        if s.len() != n {
            return Err(Error::shape(OP, format!("a {what} of {n} elements, as the variable"), format!("{} elements", s.len())));
        }
    }
    if param.dtype() != crate::DType::F32 {
        return Err(Error::dtype(OP, "float32", param.dtype()));
    }
    Ok(())
}

/// Applies one optimizer step to `var` from its gradient `grad`, reading and writing `slots`, on
/// the variable's device (see the module docs for when it writes in place).
///
/// # Errors
/// `DTypeMismatch` unless the variable, gradient and slots are f32; `ShapeMismatch` when the
/// gradient's or a slot's shape differs from the variable's; `InvalidArgument` when one of them
/// lives on another device or the slot count is not [`UpdateRule::slot_count`]. The variable and
/// slots are unchanged after an error.
pub fn apply_update(rule: &UpdateRule, var: &Variable, grad: &Tensor, slots: &mut [Tensor]) -> Result<()> {
    const OP: &str = "apply_update";
    let mut value = var.value_mut();
    let name = var.name();
    if value.dtype() != DType::F32 {
        return Err(Error::dtype(OP, format!("float32 for variable {name}"), value.dtype()));
    }
    if slots.len() != rule.slot_count() {
        return Err(Error::invalid(
            OP,
            format!("{} takes {} slots, got {} for variable {name}", rule.name(), rule.slot_count(), slots.len()),
        ));
    }
    for (what, t) in std::iter::once(("gradient", grad)).chain(slots.iter().map(|s| ("slot", s))) {
        if t.shape() != value.shape() {
            return Err(Error::shape(OP, format!("a {what} of shape {} for variable {name}", value.shape()), t.shape()));
        }
        if t.dtype() != DType::F32 {
            return Err(Error::dtype(OP, format!("a float32 {what} for variable {name}"), t.dtype()));
        }
        if t.device() != value.device() {
            return Err(Error::invalid(OP, format!("variable {name} is on {} but its {what} is on {}", value.device(), t.device())));
        }
    }
    let device = value.device();
    let mut slot_storages: Vec<&mut Storage> = slots.iter_mut().map(Tensor::storage_make_mut).collect();
    backend(device)?.apply_update(rule, value.storage_make_mut(), grad.storage(), &mut slot_storages)
}

/// Keras's `clip_by_norm` over the whole tensor: `g·clip / max(‖g‖₂, clip)`, so a gradient whose
/// L2 norm exceeds `clip` is scaled down to it. The norm never leaves the device.
///
/// # Errors
/// `DTypeMismatch` unless `g` is f32.
pub fn clip_by_norm(g: &Tensor, clip: f64) -> Result<Tensor> {
    no_grad(|| {
        let norm = g.square()?.sum_all()?.sqrt()?;
        let limit = Tensor::scalar(clip as f32, g.device())?;
        g.mul(&limit)?.div(&norm.maximum(&limit)?)
    })
}

/// Keras's `clip_by_global_norm`: every gradient times `clip·min(1/N, 1/clip)`, where `N` is the
/// L2 norm of all of them together. The norm is summed on the first gradient's device and the
/// scale moved explicitly to each gradient's device.
///
/// # Errors
/// `DTypeMismatch` unless all gradients are f32.
pub fn clip_by_global_norm(grads: &[Tensor], clip: f64) -> Result<Vec<Tensor>> {
    let Some(first) = grads.first() else { return Ok(Vec::new()) };
    let device = first.device();
    no_grad(|| {
        let mut sum = Tensor::scalar(0.0, device)?;
        for g in grads {
            sum = sum.add(&g.square()?.sum_all()?.to(device)?)?;
        }
        let inv_clip = Tensor::scalar((1.0 / clip) as f32, device)?;
        let scale = sum.sqrt()?.reciprocal()?.minimum(&inv_clip)?.mul_scalar(clip as f32)?;
        grads.iter().map(|g| g.mul(&scale.to(g.device())?)).collect()
    })
}

/// Keras's `clipvalue`: every element clamped to `[-clip, clip]`.
///
/// # Errors
/// `DTypeMismatch` unless `g` is f32.
pub fn clip_by_value(g: &Tensor, clip: f64) -> Result<Tensor> {
    no_grad(|| g.clip(-clip as f32, clip as f32))
}

#[cfg(test)]
#[path = "optim_tests.rs"]
mod tests;
