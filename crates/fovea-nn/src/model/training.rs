//! The training loop: `compile`, `fit`, `evaluate`, `predict` and `train_on_batch`, shared by
//! every model through the [`Model`] trait.

use crate::callbacks::{Callback, CallbackContext};
use crate::layer::Layer;
use crate::losses::Loss;
use crate::metrics::{Metric, MetricKind};
use crate::model::progress::Progress;
use crate::optimizers::Optimizer;
use crate::{Error, Result};
use fovea_core::{no_grad, random::Rng, DType, Tensor};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Named numbers reported for a batch or an epoch (`loss`, `accuracy`, `val_loss`, ...).
pub type Logs = BTreeMap<String, f64>;

/// What `compile` fixed: the optimizer, the loss and the metrics.
pub struct Compiled {
    /// The optimizer and its state.
    pub optimizer: Optimizer,
    /// The training loss.
    pub loss: Loss,
    /// The metrics, already resolved for the loss.
    pub metrics: Vec<Metric>,
}

/// Options of [`Model::fit`], with Keras's defaults.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Passes over the data (default 1).
    pub epochs: usize,
    /// Samples per gradient step (default 32).
    pub batch_size: usize,
    /// Fraction of the data, taken from the end before shuffling, held out for validation.
    pub validation_split: f64,
    /// Explicit validation inputs and targets (used instead of `validation_split`).
    pub validation_data: Option<(Tensor, Tensor)>,
    /// Reshuffle the training samples before each epoch (default true).
    pub shuffle: bool,
    /// 0 silent, 1 a progress bar (one line per epoch when not on a terminal), 2 one line per
    /// epoch.
    pub verbose: u8,
    /// Seed of the shuffling (`None`: from the global seed).
    pub seed: Option<u64>,
    /// Per-sample loss weights `[N]` for the training samples.
    pub sample_weight: Option<Tensor>,
    /// Loss weight per class index (`{0: 1.0, 1: 0.3, ...}`), multiplied into the sample weights
    /// by each sample's label (its argmax for one-hot labels).
    pub class_weight: Option<BTreeMap<i64, f64>>,
    /// The epoch to start from (Keras's `initial_epoch`, for resuming).
    pub initial_epoch: usize,
    /// Gradient steps per epoch (default: enough to see every sample once).
    pub steps_per_epoch: Option<usize>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            validation_split: 0.0,
            validation_data: None,
            shuffle: true,
            verbose: 1,
            seed: None,
            sample_weight: None,
            class_weight: None,
            initial_epoch: 0,
            steps_per_epoch: None,
        }
    }
}

/// The per-epoch logs of a `fit` (`history.history["loss"]` in Keras).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Each log's value at the end of every epoch.
    pub history: BTreeMap<String, Vec<f64>>,
}

impl History {
    fn push(&mut self, logs: &Logs) {
        for (k, v) in logs {
            self.history.entry(k.clone()).or_default().push(*v);
        }
    }
}

/// Rows `idx` of a batch-first tensor.
fn take_rows(t: &Tensor, idx: &[i64]) -> Result<Tensor> {
    let index = Tensor::from_vec(idx.to_vec(), [idx.len()], t.device())?;
    Ok(t.gather(&index, 0)?)
}

fn check_pair(x: &Tensor, y: &Tensor) -> Result<usize> {
    let n = x.dims().first().copied().ok_or_else(|| Error::Config(format!("inputs need a batch axis, got shape {}", x.shape())))?;
    if y.dims().first() != Some(&n) {
        return Err(Error::Config(format!("inputs have {n} samples but targets have shape {} (the first axis must match)", y.shape())));
    }
    Ok(n)
}

/// A layer that can be trained: compile, fit, evaluate, predict.
pub trait Model: Layer {
    /// Where the compile state lives.
    fn compiled(&self) -> &Mutex<Option<Compiled>>;

    /// Configures training (`model.compile(optimizer, loss, metrics)`).
    ///
    /// # Errors
    /// `Config` for unknown metric names.
    fn compile(&self, optimizer: Optimizer, loss: Loss, metrics: &[&str]) -> Result<()> {
        let metrics = metrics.iter().map(|m| Ok(Metric::from_name(m)?.resolved_for(&loss))).collect::<Result<Vec<_>>>()?;
        *self.compiled().lock().expect("compile lock") = Some(Compiled { optimizer, loss, metrics });
        Ok(())
    }

    /// One gradient step on a batch; returns the batch's loss and metrics.
    ///
    /// # Errors
    /// `Config` when the model is not compiled; errors from the layers and the loss.
    fn train_on_batch(&self, x: &Tensor, y: &Tensor) -> Result<Logs> {
        let mut guard = self.compiled().lock().expect("compile lock");
        let c = guard.as_mut().ok_or_else(|| Error::Config(format!("{}: call compile() before training", self.name())))?;
        let (loss, pred) = train_step(self, c, x, y, None)?;
        let mut logs = Logs::new();
        logs.insert("loss".into(), loss);
        for m in c.metrics.iter_mut() {
            m.reset_state();
            m.update_state(y, &pred)?;
            logs.insert(m.name().to_string(), m.result());
        }
        Ok(logs)
    }

    /// Trains for `options.epochs` passes and returns the per-epoch logs.
    ///
    /// # Errors
    /// `Config` when not compiled, or for inputs and targets of different lengths or an invalid
    /// option (batch size 0, split outside `[0, 1)`); errors from the layers and the loss.
    fn fit(&self, x: &Tensor, y: &Tensor, options: FitOptions) -> Result<History>
    where
        Self: Sized,
    {
        self.fit_with_callbacks(x, y, options, &mut [])
    }

    /// [`Model::fit`] with callbacks (`EarlyStopping`, `ModelCheckpoint`, ...), which keep
    /// their state afterwards for inspection.
    ///
    /// # Errors
    /// As [`Model::fit`], and any error a callback returns.
    fn fit_with_callbacks(&self, x: &Tensor, y: &Tensor, options: FitOptions, callbacks: &mut [&mut dyn Callback]) -> Result<History>
    where
        Self: Sized,
    {
        let n_all = check_pair(x, y)?;
        if options.batch_size == 0 {
            return Err(Error::Config("batch_size must be >= 1".into()));
        }
        if !(0.0..1.0).contains(&options.validation_split) {
            return Err(Error::Config(format!("validation_split must be in [0, 1), got {}", options.validation_split)));
        }
        // Keras holds out the last fraction of the data, before any shuffling.
        let n_val = if options.validation_data.is_none() { (n_all as f64 * options.validation_split).floor() as usize } else { 0 };
        let n = n_all - n_val;
        if n == 0 {
            return Err(Error::Config(format!(
                "no training samples left: {n_all} samples with validation_split {}",
                options.validation_split
            )));
        }
        let (train_x, train_y) = (x.narrow(0, 0, n)?, y.narrow(0, 0, n)?);
        let weights = sample_weights(&options, &train_y, n_all)?;
        let validation = match &options.validation_data {
            Some((vx, vy)) => Some((vx.clone(), vy.clone())),
            None if n_val > 0 => Some((x.narrow(0, n, n_val)?, y.narrow(0, n, n_val)?)),
            None => None,
        };
        // Each epoch's shuffle comes from (seed, epoch) alone, so a resumed fit shuffles
        // exactly as an uninterrupted one would.
        let base_seed = options.seed.unwrap_or_else(fovea_core::random::next_seed);
        let per_epoch = n.div_ceil(options.batch_size);
        let steps = options.steps_per_epoch.unwrap_or(per_epoch);
        if steps == 0 {
            return Err(Error::Config("steps_per_epoch must be >= 1".into()));
        }
        let mut history = History::default();
        // Build before the callbacks run, so they see (and can restore) every weight.
        if !self.base().is_built() {
            let spec: crate::layer::ShapeSpec = std::iter::once(None).chain(x.dims()[1..].iter().map(|&d| Some(d))).collect();
            self.build(&[spec])?;
            self.base().mark_built();
        }
        let mut ctx = CallbackContext { model: self, compiled: self.compiled(), stop_training: false, resume_epoch: None };
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(&mut ctx)?;
        }
        let first_epoch = ctx.resume_epoch.unwrap_or(0).max(options.initial_epoch);
        for epoch in first_epoch..options.epochs {
            for cb in callbacks.iter_mut() {
                cb.on_epoch_begin(epoch, &mut ctx)?;
            }
            let mut rng = Rng::new(base_seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut order: Vec<i64> = (0..n as i64).collect();
            if options.shuffle {
                rng.shuffle(&mut order);
            }
            // With steps_per_epoch beyond one pass, keep cycling through the order.
            let order: Vec<i64> = order.iter().copied().cycle().take(steps * options.batch_size).collect();
            let total = if options.steps_per_epoch.is_some() { order.len() } else { n };
            let mut progress = Progress::new(options.verbose, epoch, options.epochs, steps);
            let (mut loss_sum, mut seen) = (0.0, 0usize);
            if let Some(c) = self.compiled().lock().expect("compile lock").as_mut() {
                c.metrics.iter_mut().for_each(Metric::reset_state);
            }
            for step in 0..steps {
                let idx = &order[step * options.batch_size..((step + 1) * options.batch_size).min(total)];
                let (xb, yb) = (take_rows(&train_x, idx)?, take_rows(&train_y, idx)?);
                let mut guard = self.compiled().lock().expect("compile lock");
                let c = guard.as_mut().ok_or_else(|| Error::Config(format!("{}: call compile() before fit()", self.name())))?;
                let wb = weights.as_ref().map(|w| take_rows(w, idx)).transpose()?;
                let (loss, pred) = train_step(self, c, &xb, &yb, wb.as_ref())?;
                loss_sum += loss * idx.len() as f64;
                seen += idx.len();
                let mut logs = Logs::new();
                logs.insert("loss".into(), loss_sum / seen as f64);
                for m in c.metrics.iter_mut() {
                    m.update_state(&yb, &pred)?;
                    logs.insert(m.name().to_string(), m.result());
                }
                drop(guard);
                progress.step(step + 1, &logs);
                for cb in callbacks.iter_mut() {
                    cb.on_batch_end(step, &logs, &mut ctx)?;
                }
                if ctx.stop_training {
                    break;
                }
                if !loss.is_finite() {
                    // Without TerminateOnNan, a NaN loss is an error rather than silent garbage.
                    return Err(Error::Config(format!(
                        "{}: the loss became {loss} at epoch {}, batch {step}; lower the learning rate or check the inputs for NaN",
                        self.name(),
                        epoch + 1
                    )));
                }
            }
            let mut logs = Logs::new();
            logs.insert("loss".into(), loss_sum / seen as f64);
            if let Some(c) = self.compiled().lock().expect("compile lock").as_ref() {
                for m in &c.metrics {
                    logs.insert(m.name().to_string(), m.result());
                }
            }
            if let Some((vx, vy)) = &validation {
                for (k, v) in self.evaluate(vx, vy, options.batch_size)? {
                    logs.insert(format!("val_{k}"), v);
                }
            }
            logs.insert("learning_rate".into(), ctx.learning_rate());
            progress.finish(&logs);
            history.push(&logs);
            for cb in callbacks.iter_mut() {
                cb.on_epoch_end(epoch, &logs, &mut ctx)?;
            }
            if ctx.stop_training {
                break;
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_train_end(&mut ctx)?;
        }
        Ok(history)
    }

    /// The loss and metrics of one batch in inference mode (`test_on_batch`).
    ///
    /// # Errors
    /// As [`Model::evaluate`].
    fn test_on_batch(&self, x: &Tensor, y: &Tensor) -> Result<Logs> {
        let n = check_pair(x, y)?;
        self.evaluate(x, y, n.max(1))
    }

    /// The loss and metrics on data, in inference mode.
    ///
    /// # Errors
    /// As [`Model::fit`].
    fn evaluate(&self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Logs> {
        let n = check_pair(x, y)?;
        if batch_size == 0 {
            return Err(Error::Config("batch_size must be >= 1".into()));
        }
        let mut guard = self.compiled().lock().expect("compile lock");
        let c = guard.as_mut().ok_or_else(|| Error::Config(format!("{}: call compile() before evaluate()", self.name())))?;
        let mut metrics: Vec<Metric> = c.metrics.clone();
        metrics.iter_mut().for_each(Metric::reset_state);
        let mut loss_metric = Metric::new(MetricKind::MeanLoss(c.loss), "loss");
        let _no_grad = fovea_core::NoGradGuard::new();
        for start in (0..n).step_by(batch_size) {
            let len = batch_size.min(n - start);
            let (xb, yb) = (x.narrow(0, start, len)?, y.narrow(0, start, len)?);
            let pred = self.apply(&[xb], false)?;
            loss_metric.update_state(&yb, &pred)?;
            for m in metrics.iter_mut() {
                m.update_state(&yb, &pred)?;
            }
        }
        let mut logs = Logs::new();
        logs.insert("loss".into(), loss_metric.result());
        for m in &metrics {
            logs.insert(m.name().to_string(), m.result());
        }
        Ok(logs)
    }

    /// The model's outputs for `x`, computed in batches in inference mode.
    ///
    /// # Errors
    /// Errors from the layers; `Config` for batch size 0.
    fn predict(&self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        if batch_size == 0 {
            return Err(Error::Config("batch_size must be >= 1".into()));
        }
        let n = x.dims().first().copied().ok_or_else(|| Error::Config(format!("inputs need a batch axis, got shape {}", x.shape())))?;
        no_grad(|| {
            let mut outs = Vec::new();
            for start in (0..n).step_by(batch_size) {
                outs.push(self.apply(&[x.narrow(0, start, batch_size.min(n - start))?], false)?);
            }
            let refs: Vec<&Tensor> = outs.iter().collect();
            Ok(Tensor::concat(&refs, 0)?)
        })
    }

    /// The variables training updates.
    fn trainable_variables(&self) -> Vec<fovea_core::Variable> {
        self.trainable_weights()
    }

    /// The values of every weight, in order (`get_weights`).
    fn get_weights(&self) -> Vec<Tensor> {
        self.weights().iter().map(|v| v.value().detach()).collect()
    }

    /// Replaces every weight's value, in order (`set_weights`).
    ///
    /// # Errors
    /// `Config` for a count mismatch; core shape errors naming the variable.
    fn set_weights(&self, values: &[Tensor]) -> Result<()> {
        let weights = self.weights();
        if weights.len() != values.len() {
            return Err(Error::Config(format!("{}: set_weights got {} arrays for {} weights", self.name(), values.len(), weights.len())));
        }
        for (v, t) in weights.iter().zip(values) {
            v.assign(t)?;
        }
        Ok(())
    }
}

/// The per-sample weights of the first `n` samples from `sample_weight` and `class_weight`
/// (`None` when neither is given).
fn sample_weights(options: &FitOptions, labels: &Tensor, n_all: usize) -> Result<Option<Tensor>> {
    let n = labels.dims()[0];
    let mut w: Vec<f32> = match &options.sample_weight {
        None if options.class_weight.is_none() => return Ok(None),
        None => vec![1.0; n],
        Some(sw) => {
            if sw.numel() != n_all {
                return Err(Error::Config(format!("sample_weight has {} values for {n_all} samples", sw.numel())));
            }
            sw.cast(DType::F32)?.reshape(&[-1])?.narrow(0, 0, n)?.to_vec::<f32>()?
        }
    };
    if let Some(cw) = &options.class_weight {
        // One-hot (or soft) labels pick their argmax, integer labels themselves.
        let classes: Vec<i64> = if labels.rank() >= 2 && labels.dims()[labels.rank() - 1] > 1 {
            labels.argmax(-1)?.to_vec::<i64>()?
        } else {
            labels.cast(DType::I64)?.reshape(&[-1])?.to_vec::<i64>()?
        };
        for (wi, c) in w.iter_mut().zip(classes) {
            *wi *= *cw.get(&c).ok_or_else(|| Error::Config(format!("class_weight has no entry for class {c}")))? as f32;
        }
    }
    Ok(Some(Tensor::from_vec(w, [n], labels.device())?))
}

/// Forward, loss (plus regularization), backward and one optimizer update. A non-finite loss
/// skips the update (so the weights stay usable) and is reported to the caller.
fn train_step<M: Model + ?Sized>(
    model: &M,
    c: &mut Compiled,
    x: &Tensor,
    y: &Tensor,
    sample_weight: Option<&Tensor>,
) -> Result<(f64, Tensor)> {
    let pred = model.apply(std::slice::from_ref(x), true)?;
    let mut loss = c.loss.compute(y, &pred, sample_weight)?;
    for extra in model.losses()? {
        loss = loss.add(&extra)?;
    }
    let value = loss.to_scalar::<f32>()? as f64;
    if !value.is_finite() {
        return Ok((value, pred.detach()));
    }
    let grads = loss.backward()?;
    let pairs: Vec<(Tensor, fovea_core::Variable)> = model
        .trainable_weights()
        .into_iter()
        .map(|v| {
            let value = v.value();
            let g = grads.get(&value).cloned().unwrap_or_else(|| value.zeros_like());
            (g, v)
        })
        .collect();
    c.optimizer.apply_gradients(&pairs)?;
    Ok((value, pred.detach().cast(DType::F32)?))
}
