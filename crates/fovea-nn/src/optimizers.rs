//! Optimizers with Keras 3's update rules, defaults and gradient clipping.
//!
//! Updates run as plain f32 loops over each variable's storage (in place when the variable is
//! not shared), with one set of slot buffers per variable keyed by its name.

use crate::schedules::LearningRate;
use crate::{Error, Result};
use fovea_core::{Tensor, Variable};
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
    fn slot_count(&self) -> usize {
        match self {
            Algorithm::Sgd { momentum, .. } => usize::from(*momentum != 0.0),
            Algorithm::Adam { amsgrad, .. } => 2 + usize::from(*amsgrad),
            Algorithm::Nadam { .. } | Algorithm::Adadelta { .. } | Algorithm::Adamax { .. } => 2,
            Algorithm::RmsProp { momentum, centered, .. } => 1 + usize::from(*momentum > 0.0) + usize::from(*centered),
            Algorithm::Adagrad { .. } => 1,
        }
    }

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
    /// Slot buffers per trainable variable, by its position in the `apply_gradients` call
    /// (as Keras 3 indexes optimizer variables), so state survives re-created layer names.
    #[serde(skip)]
    slots: Vec<Vec<Vec<f32>>>,
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

    /// Applies one update to each variable from its gradient (`apply_gradients`), then counts
    /// one iteration. Variables that are not trainable are skipped.
    ///
    /// # Errors
    /// `Config` when a gradient's shape differs from its variable's or a gradient is not f32.
    pub fn apply_gradients(&mut self, grads_and_vars: &[(Tensor, Variable)]) -> Result<()> {
        let mut grads: Vec<Vec<f32>> = Vec::with_capacity(grads_and_vars.len());
        for (g, v) in grads_and_vars {
            if g.shape() != v.value().shape() {
                return Err(Error::Config(format!(
                    "gradient of shape {} for variable {} of shape {}",
                    g.shape(),
                    v.name(),
                    v.value().shape()
                )));
            }
            grads.push(g.to_vec::<f32>()?);
        }
        self.clip(&mut grads);
        let lr = self.current_learning_rate();
        if let Algorithm::Nadam { beta_1, .. } = self.algorithm {
            self.nadam_u_product *= beta_1 * (1.0 - 0.5 * 0.96f64.powf((self.iterations + 1) as f64));
        }
        let trainable = grads_and_vars.iter().zip(&grads).filter(|((_, v), _)| v.trainable());
        for (pos, ((_, var), g)) in trainable.enumerate() {
            let n = g.len();
            let (count, init) = (self.algorithm.slot_count(), self.algorithm.slot_init());
            if pos == self.slots.len() {
                self.slots.push(vec![vec![init; n]; count]);
            }
            let slots = &mut self.slots[pos];
            if slots.first().is_some_and(|s| s.len() != n) {
                return Err(Error::Config(format!(
                    "the optimizer's state was built for {} values at position {pos}, but variable {} has {n}; compile again after changing the model or which layers are trainable",
                    slots[0].len(),
                    var.name()
                )));
            }
            let step = StepContext { lr, iterations: self.iterations, u_product: self.nadam_u_product, weight_decay: self.weight_decay };
            let algorithm = &self.algorithm;
            var.update_f32(|w| update(algorithm, &step, w, g, slots))?;
        }
        self.iterations += 1;
        Ok(())
    }

    fn clip(&self, grads: &mut [Vec<f32>]) {
        // Keras applies at most one kind of clipping, in this order of precedence.
        if let Some(c) = self.clipnorm.filter(|c| *c > 0.0) {
            for g in grads.iter_mut() {
                let norm = g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
                if norm > c {
                    g.iter_mut().for_each(|x| *x = (*x as f64 * c / norm) as f32);
                }
            }
        } else if let Some(c) = self.global_clipnorm.filter(|c| *c > 0.0) {
            let norm = grads.iter().flatten().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            let scale = c * (1.0 / norm).min(1.0 / c);
            grads.iter_mut().flatten().for_each(|x| *x = (*x as f64 * scale) as f32);
        } else if let Some(c) = self.clipvalue.filter(|c| *c > 0.0) {
            grads.iter_mut().flatten().for_each(|x| *x = x.clamp(-c as f32, c as f32));
        }
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
        for (pos, slots) in self.slots.iter().enumerate() {
            for (i, s) in slots.iter().enumerate() {
                out.push((format!("optimizer/var{pos}/slot{i}"), Tensor::from_vec(s.clone(), [s.len()], dev)?));
            }
        }
        Ok(out)
    }

    /// Restores state written by [`Optimizer::state`].
    ///
    /// # Errors
    /// `Config` for a missing `iterations` entry or a malformed slot name.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut slots: std::collections::BTreeMap<usize, Vec<(usize, Vec<f32>)>> = std::collections::BTreeMap::new();
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
                    slots.entry(pos).or_default().push((i, t.to_vec::<f32>()?));
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

struct StepContext {
    lr: f64,
    iterations: u64,
    u_product: f64,
    weight_decay: Option<f64>,
}

/// One variable's update, in f64 scalars per element to match Keras's f32 math closely.
fn update(algorithm: &Algorithm, c: &StepContext, w: &mut [f32], g: &[f32], slots: &mut [Vec<f32>]) {
    let lr = c.lr;
    if let Some(wd) = c.weight_decay {
        w.iter_mut().for_each(|x| *x -= (*x as f64 * wd * lr) as f32);
    }
    let t = (c.iterations + 1) as f64;
    match *algorithm {
        Algorithm::Sgd { momentum, nesterov } => {
            if momentum == 0.0 {
                w.iter_mut().zip(g).for_each(|(x, &gi)| *x -= (gi as f64 * lr) as f32);
            } else {
                let m = &mut slots[0];
                for i in 0..w.len() {
                    let mi = m[i] as f64 * momentum - g[i] as f64 * lr;
                    m[i] = mi as f32;
                    w[i] += if nesterov { (mi * momentum - g[i] as f64 * lr) as f32 } else { mi as f32 };
                }
            }
        }
        Algorithm::Adam { beta_1, beta_2, epsilon, amsgrad: false } => {
            // Keras's f32 arithmetic, in its order; zipped slices so the loop vectorises (the
            // f64 loop below took 7% of a LeNet-5 training step).
            let alpha = (lr * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t))) as f32;
            let (one_b1, one_b2, eps) = ((1.0 - beta_1) as f32, (1.0 - beta_2) as f32, epsilon as f32);
            let (m, v) = slots.split_at_mut(1);
            for (((x, &gi), mi), vi) in w.iter_mut().zip(g).zip(m[0].iter_mut()).zip(v[0].iter_mut()) {
                *mi += (gi - *mi) * one_b1;
                *vi += (gi * gi - *vi) * one_b2;
                *x -= *mi * alpha / (vi.sqrt() + eps);
            }
        }
        Algorithm::Adam { beta_1, beta_2, epsilon, amsgrad: true } => {
            let alpha = lr * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
            let (m, rest) = slots.split_at_mut(1);
            let (v, vhat) = rest.split_at_mut(1);
            for i in 0..w.len() {
                let gi = g[i] as f64;
                let mi = m[0][i] as f64 + (gi - m[0][i] as f64) * (1.0 - beta_1);
                let mut vi = v[0][i] as f64 + (gi * gi - v[0][i] as f64) * (1.0 - beta_2);
                m[0][i] = mi as f32;
                v[0][i] = vi as f32;
                vi = vi.max(vhat[0][i] as f64);
                vhat[0][i] = vi as f32;
                w[i] -= (mi * alpha / (vi.sqrt() + epsilon)) as f32;
            }
        }
        Algorithm::Nadam { beta_1, beta_2, epsilon } => {
            let u_t = beta_1 * (1.0 - 0.5 * 0.96f64.powf(t));
            let u_t1 = beta_1 * (1.0 - 0.5 * 0.96f64.powf(t + 1.0));
            let (up_t, up_t1) = (c.u_product, c.u_product * u_t1);
            let b2p = beta_2.powf(t);
            // f32 and zipped, as Adam above; the per-step constants stay f64 until here.
            let (cm, cg) = ((u_t1 / (1.0 - up_t1)) as f32, ((1.0 - u_t) / (1.0 - up_t)) as f32);
            let (inv_b2p, lr32, eps) = ((1.0 / (1.0 - b2p)) as f32, lr as f32, epsilon as f32);
            let (one_b1, one_b2) = ((1.0 - beta_1) as f32, (1.0 - beta_2) as f32);
            let (m, v) = slots.split_at_mut(1);
            for (((x, &gi), mi), vi) in w.iter_mut().zip(g).zip(m[0].iter_mut()).zip(v[0].iter_mut()) {
                *mi += (gi - *mi) * one_b1;
                *vi += (gi * gi - *vi) * one_b2;
                let m_hat = cm * *mi + cg * gi;
                *x -= m_hat * lr32 / ((*vi * inv_b2p).sqrt() + eps);
            }
        }
        Algorithm::RmsProp { rho, momentum, epsilon, centered } => {
            let (vel, rest) = slots.split_at_mut(1);
            let (mom, avg) = if momentum > 0.0 {
                let (a, b) = rest.split_at_mut(1);
                (Some(&mut a[0]), b.first_mut())
            } else {
                (None, rest.first_mut())
            };
            let (mut mom, mut avg) = (mom, avg);
            for i in 0..w.len() {
                let gi = g[i] as f64;
                let v = rho * vel[0][i] as f64 + (1.0 - rho) * gi * gi;
                vel[0][i] = v as f32;
                let denom = if centered {
                    let a = avg.as_deref_mut().expect("centered slot");
                    let ai = rho * a[i] as f64 + (1.0 - rho) * gi;
                    a[i] = ai as f32;
                    v - ai * ai + epsilon
                } else {
                    v + epsilon
                };
                let inc = lr * gi / denom.sqrt();
                match mom.as_deref_mut() {
                    Some(m) => {
                        let mi = momentum * m[i] as f64 + inc;
                        m[i] = mi as f32;
                        w[i] -= mi as f32;
                    }
                    None => w[i] -= inc as f32,
                }
            }
        }
        Algorithm::Adagrad { epsilon, .. } => {
            let acc = &mut slots[0];
            for i in 0..w.len() {
                let gi = g[i] as f64;
                let a = acc[i] as f64 + gi * gi;
                acc[i] = a as f32;
                w[i] -= (lr * gi / (a + epsilon).sqrt()) as f32;
            }
        }
        Algorithm::Adadelta { rho, epsilon } => {
            let (ag, ad) = slots.split_at_mut(1);
            for i in 0..w.len() {
                let gi = g[i] as f64;
                let a = rho * ag[0][i] as f64 + (1.0 - rho) * gi * gi;
                ag[0][i] = a as f32;
                let delta = -((ad[0][i] as f64 + epsilon).sqrt() * gi) / (a + epsilon).sqrt();
                ad[0][i] = (rho * ad[0][i] as f64 + (1.0 - rho) * delta * delta) as f32;
                w[i] += (lr * delta) as f32;
            }
        }
        Algorithm::Adamax { beta_1, beta_2, epsilon } => {
            let b1p = beta_1.powf(t);
            let (m, u) = slots.split_at_mut(1);
            for i in 0..w.len() {
                let gi = g[i] as f64;
                let mi = m[0][i] as f64 + (gi - m[0][i] as f64) * (1.0 - beta_1);
                let ui = (beta_2 * u[0][i] as f64).max(gi.abs());
                m[0][i] = mi as f32;
                u[0][i] = ui as f32;
                w[i] -= (lr * mi / ((1.0 - b1p) * (ui + epsilon))) as f32;
            }
        }
    }
}
