//! Optimizers with Keras 3's update rules, defaults and gradient clipping.
//!
//! Updates run on each variable's device: the optimizer resolves the step's scalars into a
//! [`UpdateRule`] and [`apply_update`] runs the backend's update (fused on the CPU, in place when
//! nothing else holds the buffers). Slots are tensors on the variable's device, one set per
//! trainable variable by position; clipping is composed from tensor ops, so gradients never
//! come back to the host.

use crate::schedules::LearningRate;
use crate::{Error, Result};
use fovea_core::ops::optim::{apply_update, clip_by_global_norm, clip_by_norm, clip_by_value, UpdateRule};
use fovea_core::{DType, Shape, Tensor, Variable};
use serde::{Deserialize, Serialize};

/// The update rule and its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class_name")]
pub enum Algorithm {
    /// Stochastic gradient descent with optional (Nesterov) momentum.
    #[serde(rename = "SGD")]
    Sgd {
        /// Momentum (Keras default 0).
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Adam (Kingma & Ba), optionally AMSGrad.
    Adam {
        /// First-moment decay (0.9).
        beta_1: f64,
        /// Second-moment decay (0.999).
        beta_2: f64,
        /// Denominator fuzz (1e-7).
        epsilon: f64,
        /// Use the running maximum of the second moment.
        amsgrad: bool,
    },
    /// Adam with Nesterov momentum (Dozat), Keras's momentum schedule.
    Nadam {
        /// First-moment decay (0.9).
        beta_1: f64,
        /// Second-moment decay (0.999).
        beta_2: f64,
        /// Denominator fuzz (1e-7).
        epsilon: f64,
    },
    /// RMSprop, optionally centered and with momentum.
    #[serde(rename = "RMSprop")]
    RmsProp {
        /// Decay of the squared-gradient average (0.9).
        rho: f64,
        /// Momentum (0).
        momentum: f64,
        /// Denominator fuzz (1e-7).
        epsilon: f64,
        /// Normalise by the variance instead of the second moment.
        centered: bool,
    },
    /// Adagrad.
    Adagrad {
        /// Starting accumulator value (0.1).
        initial_accumulator_value: f64,
        /// Denominator fuzz (1e-7).
        epsilon: f64,
    },
    /// Adadelta.
    Adadelta {
        /// Decay rate (0.95).
        rho: f64,
        /// Denominator fuzz (1e-7).
        epsilon: f64,
    },
    /// Adamax (Adam with the infinity norm).
    Adamax {
        /// First-moment decay (0.9).
        beta_1: f64,
        /// Infinity-norm decay (0.999).
        beta_2: f64,
        /// Denominator fuzz (1e-7).
        epsilon: f64,
    },
}

impl Algorithm {
    fn slot_init(&self) -> f32 {
        match self {
            Algorithm::Adagrad { initial_accumulator_value, .. } => *initial_accumulator_value as f32,
            _ => 0.0,
        }
    }
}

/// An optimizer: an update rule, a learning rate (or schedule), clipping and its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Optimizer {
    /// The update rule.
    pub algorithm: Algorithm,
    /// The learning rate or schedule, evaluated at [`Optimizer::iterations`].
    pub learning_rate: LearningRate,
    /// Decoupled weight decay (`w -= lr·wd·w` before the update; AdamW's 0.004).
    pub weight_decay: Option<f64>,
    /// Clip each gradient to this L2 norm.
    pub clipnorm: Option<f64>,
    /// Clip each gradient element to ±this.
    pub clipvalue: Option<f64>,
    /// Scale all gradients together so their joint L2 norm is at most this.
    pub global_clipnorm: Option<f64>,
    /// Keras 2's legacy `decay`: the rate is divided by `1 + decay·iterations`.
    pub decay: f64,
    iterations: u64,
    /// Slot tensors per trainable variable, by its position in the `apply_gradients` call
    /// (as Keras 3 indexes optimizer variables), so state survives re-created layer names. Each
    /// has its variable's shape and device once used; restored state may arrive flat and on the
    /// host, and is conformed at the next update.
    #[serde(skip)]
    slots: Vec<Vec<Tensor>>,
    nadam_u_product: f64,
}

impl Optimizer {
    /// An optimizer from an explicit rule and learning rate (or schedule).
    pub fn new(algorithm: Algorithm, learning_rate: impl Into<LearningRate>) -> Self {
        Self::with(algorithm, learning_rate.into())
    }

    fn with(algorithm: Algorithm, learning_rate: LearningRate) -> Self {
        Optimizer {
            algorithm,
            learning_rate,
            weight_decay: None,
            clipnorm: None,
            clipvalue: None,
            global_clipnorm: None,
            decay: 0.0,
            iterations: 0,
            slots: Vec::new(),
            nadam_u_product: 1.0,
        }
    }

    /// `keras.optimizers.SGD(learning_rate, momentum, nesterov)` (defaults 0.01, 0, false).
    pub fn sgd(learning_rate: f64, momentum: f64, nesterov: bool) -> Self {
        Self::with(Algorithm::Sgd { momentum, nesterov }, learning_rate.into())
    }

    /// `keras.optimizers.Adam(learning_rate)` with β₁ 0.9, β₂ 0.999, ε 1e-7.
    pub fn adam(learning_rate: f64) -> Self {
        Self::with(Algorithm::Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false }, learning_rate.into())
    }

    /// `keras.optimizers.AdamW(learning_rate)`: Adam with weight decay 0.004.
    pub fn adamw(learning_rate: f64) -> Self {
        Optimizer { weight_decay: Some(0.004), ..Self::adam(learning_rate) }
    }

    /// `keras.optimizers.Nadam(learning_rate)` with β₁ 0.9, β₂ 0.999, ε 1e-7.
    pub fn nadam(learning_rate: f64) -> Self {
        Self::with(Algorithm::Nadam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }, learning_rate.into())
    }

    /// `keras.optimizers.RMSprop(learning_rate)` with ρ 0.9, no momentum, ε 1e-7.
    pub fn rmsprop(learning_rate: f64) -> Self {
        Self::with(Algorithm::RmsProp { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false }, learning_rate.into())
    }

    /// `keras.optimizers.Adagrad(learning_rate)` with accumulators starting at 0.1.
    pub fn adagrad(learning_rate: f64) -> Self {
        Self::with(Algorithm::Adagrad { initial_accumulator_value: 0.1, epsilon: 1e-7 }, learning_rate.into())
    }

    /// `keras.optimizers.Adadelta(learning_rate)` with ρ 0.95, ε 1e-7.
    pub fn adadelta(learning_rate: f64) -> Self {
        Self::with(Algorithm::Adadelta { rho: 0.95, epsilon: 1e-7 }, learning_rate.into())
    }

    /// `keras.optimizers.Adamax(learning_rate)` with β₁ 0.9, β₂ 0.999, ε 1e-7.
    pub fn adamax(learning_rate: f64) -> Self {
        Self::with(Algorithm::Adamax { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }, learning_rate.into())
    }

    /// Looks an optimizer up by Keras name with Keras's default learning rate.
    ///
    /// # Errors
    /// `Config` for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "sgd" => Self::sgd(0.01, 0.0, false),
            "adam" => Self::adam(0.001),
            "adamw" => Self::adamw(0.001),
            "nadam" => Self::nadam(0.001),
            "rmsprop" => Self::rmsprop(0.001),
            "adagrad" => Self::adagrad(0.001),
            "adadelta" => Self::adadelta(0.001),
            "adamax" => Self::adamax(0.001),
            other => {
                return Err(Error::Config(format!(
                    "unknown optimizer {other:?}; known: sgd, adam, adamw, nadam, rmsprop, adagrad, adadelta, adamax"
                )))
            }
        })
    }

    /// Clips each gradient to this L2 norm (`clipnorm`).
    pub fn with_clipnorm(mut self, c: f64) -> Self {
        self.clipnorm = Some(c);
        self
    }

    /// Clips gradient elements to ±`c` (`clipvalue`).
    pub fn with_clipvalue(mut self, c: f64) -> Self {
        self.clipvalue = Some(c);
        self
    }

    /// Scales all gradients so their joint norm is at most `c` (`global_clipnorm`).
    pub fn with_global_clipnorm(mut self, c: f64) -> Self {
        self.global_clipnorm = Some(c);
        self
    }

    /// Decoupled weight decay (`weight_decay`).
    pub fn with_weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = Some(wd);
        self
    }

    /// Replaces the learning rate with a schedule.
    pub fn with_schedule(mut self, schedule: LearningRate) -> Self {
        self.learning_rate = schedule;
        self
    }

    /// Updates applied so far.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// The learning rate the next update will use.
    pub fn current_learning_rate(&self) -> f64 {
        self.learning_rate.at(self.iterations) / (1.0 + self.decay * self.iterations as f64)
    }

    /// Keras's `optimizer.minimize(loss, var_list)`: evaluates `loss` (recording the graph),
    /// takes its gradient with respect to each variable of `var_list` (zero for one the loss
    /// does not use) and applies one update. Returns the loss value, detached.
    ///
    /// # Errors
    /// The loss function's error; `Config` unless the loss is a scalar; as
    /// [`Optimizer::apply_gradients`].
    pub fn minimize(&mut self, loss: impl FnOnce() -> Result<Tensor>, var_list: &[Variable]) -> Result<Tensor> {
        let value = loss()?;
        if value.numel() != 1 {
            return Err(Error::Config(format!("minimize: the loss must be a scalar, got shape {}", value.shape())));
        }
        let grads = value.backward()?;
        let pairs: Vec<(Tensor, Variable)> = var_list
            .iter()
            .map(|v| {
                let current = v.value();
                (grads.get(&current).cloned().unwrap_or_else(|| current.zeros_like()), v.clone())
            })
            .collect();
        drop(grads);
        self.apply_gradients(&pairs)?;
        Ok(value.detach())
    }

    /// Applies one update to each variable from its gradient (`apply_gradients`), then counts
    /// one iteration. Variables that are not trainable are skipped.
    ///
    /// # Errors
    /// `Config` when a gradient's shape differs from its variable's or restored state does not
    /// fit the variables; core errors for a gradient that is not f32.
    pub fn apply_gradients(&mut self, grads_and_vars: &[(Tensor, Variable)]) -> Result<()> {
        let mut grads: Vec<Tensor> = Vec::with_capacity(grads_and_vars.len());
        for (g, v) in grads_and_vars {
            let value = v.value();
            if g.shape() != value.shape() {
                return Err(Error::Config(format!("gradient of shape {} for variable {} of shape {}", g.shape(), v.name(), value.shape())));
            }
            // A gradient computed elsewhere moves explicitly to its variable's device.
            grads.push(g.to(value.device())?);
        }
        let grads = self.clip(grads)?;
        let lr = self.current_learning_rate();
        if let Algorithm::Nadam { beta_1, .. } = self.algorithm {
            self.nadam_u_product *= beta_1 * (1.0 - 0.5 * 0.96f64.powf((self.iterations + 1) as f64));
        }
        let rule = self.rule(lr);
        let (count, init) = (rule.slot_count(), self.algorithm.slot_init());
        let trainable = grads_and_vars.iter().zip(&grads).filter(|((_, v), _)| v.trainable());
        for (pos, ((_, var), g)) in trainable.enumerate() {
            let (shape, device) = {
                let value = var.value();
                (value.shape().clone(), value.device())
            };
            if pos == self.slots.len() {
                let fresh = (0..count).map(|_| Tensor::full(shape.clone(), init as f64, DType::F32, device));
                self.slots.push(fresh.collect::<fovea_core::Result<_>>()?);
            }
            let slots = &mut self.slots[pos];
            if slots.len() != count || slots.iter().any(|s| s.numel() != shape.numel()) {
                return Err(Error::Config(format!(
                    "the optimizer's state was built for {} slots of {} values at position {pos}, but variable {} needs {count} of {}; compile again after changing the model or which layers are trainable",
                    slots.len(),
                    slots.first().map_or(0, Tensor::numel),
                    var.name(),
                    shape.numel()
                )));
            }
            for s in slots.iter_mut() {
                // Restored state is flat and on the host; give it the variable's shape and device.
                if s.shape() != &shape {
                    *s = s.reshape_to(shape.clone())?;
                }
                if s.device() != device {
                    *s = s.to(device)?;
                }
            }
            apply_update(&rule, var, g, slots)?;
            if let Some(constraint) = var.constraint() {
                var.assign(&constraint(&var.value())?)?;
            }
        }
        self.iterations += 1;
        Ok(())
    }

    /// This step's rule: the learning rate and every bias correction resolved for step
    /// `iterations + 1` (Nadam's running momentum product already advanced).
    fn rule(&self, lr: f64) -> UpdateRule {
        let weight_decay = self.weight_decay.unwrap_or(0.0);
        let t = (self.iterations + 1) as f64;
        match self.algorithm {
            Algorithm::Sgd { momentum, nesterov } => UpdateRule::Sgd { lr, momentum, nesterov, weight_decay },
            Algorithm::Adam { beta_1, beta_2, epsilon, amsgrad } => {
                let alpha = lr * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
                UpdateRule::Adam { lr, alpha, beta_1, beta_2, epsilon, amsgrad, weight_decay }
            }
            Algorithm::Nadam { beta_1, beta_2, epsilon } => {
                // Keras's momentum schedule u_t = β₁(1 − ½·0.96ᵗ) and its running product.
                let u_t = beta_1 * (1.0 - 0.5 * 0.96f64.powf(t));
                let u_t1 = beta_1 * (1.0 - 0.5 * 0.96f64.powf(t + 1.0));
                let (up_t, up_t1) = (self.nadam_u_product, self.nadam_u_product * u_t1);
                UpdateRule::Nadam {
                    lr,
                    beta_1,
                    beta_2,
                    epsilon,
                    m_coef: u_t1 / (1.0 - up_t1),
                    g_coef: (1.0 - u_t) / (1.0 - up_t),
                    v_coef: 1.0 / (1.0 - beta_2.powf(t)),
                    weight_decay,
                }
            }
            Algorithm::RmsProp { rho, momentum, epsilon, centered } => {
                UpdateRule::RmsProp { lr, rho, momentum, epsilon, centered, weight_decay }
            }
            Algorithm::Adagrad { epsilon, .. } => UpdateRule::Adagrad { lr, epsilon, weight_decay },
            Algorithm::Adadelta { rho, epsilon } => UpdateRule::Adadelta { lr, rho, epsilon, weight_decay },
            Algorithm::Adamax { beta_1, beta_2, epsilon } => {
                UpdateRule::Adamax { lr, beta_1, beta_2, epsilon, correction: 1.0 - beta_1.powf(t), weight_decay }
            }
        }
    }

    /// Keras's clipping, at most one kind in this order of precedence, as tensor ops on each
    /// gradient's device.
    fn clip(&self, grads: Vec<Tensor>) -> Result<Vec<Tensor>> {
        Ok(if let Some(c) = self.clipnorm.filter(|c| *c > 0.0) {
            grads.iter().map(|g| clip_by_norm(g, c)).collect::<fovea_core::Result<_>>()?
        } else if let Some(c) = self.global_clipnorm.filter(|c| *c > 0.0) {
            clip_by_global_norm(&grads, c)?
        } else if let Some(c) = self.clipvalue.filter(|c| *c > 0.0) {
            grads.iter().map(|g| clip_by_value(g, c)).collect::<fovea_core::Result<_>>()?
        } else {
            grads
        })
    }

    /// The optimizer's state as named tensors (`iterations` and each slot), for checkpoints.
    ///
    /// # Errors
    /// Never in practice (shapes are consistent); core errors otherwise.
    pub fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let dev = fovea_core::Device::Cpu;
        let mut out = vec![
            ("optimizer/iterations".to_string(), Tensor::from_vec(vec![self.iterations as i64], [1], dev)?),
            // The f64 bits, so a restored Nadam continues exactly.
            ("optimizer/nadam_u_product".to_string(), Tensor::from_vec(vec![self.nadam_u_product.to_bits() as i64], [1], dev)?),
        ];
        // Slots are written flat, `[n]`, as files have always held them; the tensors share the
        // optimizer's buffers, which the next update then copies instead of writing in place.
        for (pos, slots) in self.slots.iter().enumerate() {
            for (i, s) in slots.iter().enumerate() {
                out.push((format!("optimizer/var{pos}/slot{i}"), s.reshape_to(Shape::from(vec![s.numel()]))?));
            }
        }
        Ok(out)
    }

    /// Restores state written by [`Optimizer::state`].
    ///
    /// # Errors
    /// `Config` for a missing `iterations` entry or a malformed slot name.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut slots: std::collections::BTreeMap<usize, Vec<(usize, Tensor)>> = std::collections::BTreeMap::new();
        let mut iterations = None;
        for (key, t) in state {
            match key.as_str() {
                "optimizer/iterations" => iterations = Some(t.to_vec::<i64>()?[0] as u64),
                "optimizer/nadam_u_product" => self.nadam_u_product = f64::from_bits(t.to_vec::<i64>()?[0] as u64),
                k => {
                    let rest =
                        k.strip_prefix("optimizer/").ok_or_else(|| Error::Config(format!("unexpected optimizer state entry {k:?}")))?;
                    let (var, slot) =
                        rest.rsplit_once("/slot").ok_or_else(|| Error::Config(format!("unexpected optimizer state entry {k:?}")))?;
                    let i: usize = slot.parse().map_err(|_| Error::Config(format!("bad slot index in {k:?}")))?;
                    let pos: usize = var
                        .strip_prefix("var")
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| Error::Config(format!("bad variable position in {k:?}")))?;
                    if t.dtype() != DType::F32 {
                        return Err(Error::Config(format!("optimizer state entry {k:?} is {}, not float32", t.dtype())));
                    }
                    // Any shape and device: the next update conforms it to its variable.
                    slots.entry(pos).or_default().push((i, t.detach()));
                }
            }
        }
        self.iterations = iterations.ok_or_else(|| Error::Config("optimizer state has no 'optimizer/iterations' entry".into()))?;
        if slots.keys().enumerate().any(|(i, &p)| i != p) {
            return Err(Error::Config("optimizer state has gaps in its variable positions".into()));
        }
        self.slots = slots
            .into_values()
            .map(|mut v| {
                v.sort_by_key(|(i, _)| *i);
                v.into_iter().map(|(_, s)| s).collect()
            })
            .collect();
        Ok(())
    }
}
