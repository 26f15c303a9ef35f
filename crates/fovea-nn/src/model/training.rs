//! The training loop: `compile`, `fit`, `evaluate`, `predict` and `train_on_batch`, shared by
//! every model through the [`Model`] trait.
//!
//! Everything runs on the model's device ([`Layer::device`]): each batch is uploaded there
//! before the forward pass (the data itself may stay on the host), the losses and metrics
//! reduce there, and only scalar logs come back. Predictions stay on the device.

use crate::callbacks::{Callback, CallbackContext};
use crate::layer::Layer;
use crate::losses::Loss;
use crate::metrics::{Metric, MetricKind};
use crate::model::batches::{check_pairs, narrow_all, to_device_all, FirstSteps, TensorBatches};
pub use crate::model::batches::{Batch, BatchSource, Batches};
use crate::model::progress::Progress;
use crate::optimizers::Optimizer;
use crate::{Error, Result};
use fovea_core::{no_grad, DType, Tensor};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Named numbers reported for a batch or an epoch (`loss`, `accuracy`, `val_loss`, ...).
pub type Logs = BTreeMap<String, f64>;

/// What `compile` fixed: the optimizer, one loss (and weight) per output and the metrics.
pub struct Compiled {
    /// The optimizer and its state.
    pub optimizer: Optimizer,
    /// One loss per model output.
    pub losses: Vec<Loss>,
    /// The weight of each output's loss in the total (Keras's `loss_weights`).
    pub loss_weights: Vec<f64>,
    /// The metrics of each output, already resolved for its loss.
    pub metrics: Vec<Vec<Metric>>,
    /// The output names used to prefix logs (`class_output_loss`); empty for one output.
    pub output_names: Vec<String>,
    /// The dynamic loss scale of a model compiled under the `mixed_float16` policy (Keras
    /// wraps its optimizer in a `LossScaleOptimizer` then); `None` otherwise.
    pub loss_scale: Option<crate::mixed_precision::LossScale>,
    /// The other replicas of a data-parallel job ([`super::replicas::distribute`]); `None`
    /// trains alone.
    pub replicas: Option<std::sync::Arc<dyn super::replicas::Collective>>,
}

impl Compiled {
    /// The log-name prefix of output `i`: none for a single-output model, else `name_`.
    fn prefix(&self, i: usize) -> String {
        if self.losses.len() == 1 {
            String::new()
        } else {
            format!("{}_", self.output_names[i])
        }
    }

    fn reset_metrics(&mut self) {
        self.metrics.iter_mut().flatten().for_each(Metric::reset_state);
    }

    fn update_metrics(&mut self, y: &[Tensor], pred: &[Tensor]) -> Result<()> {
        for (i, ms) in self.metrics.iter_mut().enumerate() {
            for m in ms.iter_mut() {
                m.update_state(&y[i], &pred[i])?;
            }
        }
        Ok(())
    }

    fn metric_logs(&self, logs: &mut Logs) {
        for (i, ms) in self.metrics.iter().enumerate() {
            for m in ms {
                logs.insert(format!("{}{}", self.prefix(i), m.name()), m.result());
            }
        }
    }
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
    /// Explicit validation inputs and targets of a model with several inputs or outputs.
    pub validation_data_multi: Option<(Vec<Tensor>, Vec<Tensor>)>,
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
    /// Validation batches drawn at the end of each epoch (Keras's `validation_steps`; default:
    /// the whole validation data).
    pub validation_steps: Option<usize>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            validation_split: 0.0,
            validation_data: None,
            validation_data_multi: None,
            shuffle: true,
            verbose: 1,
            seed: None,
            sample_weight: None,
            class_weight: None,
            initial_epoch: 0,
            steps_per_epoch: None,
            validation_steps: None,
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

/// A layer that can be trained: compile, fit, evaluate, predict.
pub trait Model: Layer {
    /// Where the compile state lives.
    fn compiled(&self) -> &Mutex<Option<Compiled>>;

    /// For a `Sequential`, its input shape if known (`Some(None)` when not yet known); `None`
    /// for models whose config describes their inputs.
    fn sequential_input_shape(&self) -> Option<Option<crate::layer::ShapeSpec>> {
        None
    }

    /// The names of the outputs (the layers producing them); one name for a single output.
    fn output_names(&self) -> Vec<String> {
        vec![self.name().to_string()]
    }

    /// The forward pass to every output.
    ///
    /// # Errors
    /// Errors from the layers.
    /// Outputs computed in a 16-bit float (a mixed-precision model) come back as float32, so
    /// that losses and metrics compute in float32, as Keras's do.
    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        Ok(vec![crate::mixed_precision::to_f32(self.apply(inputs, training)?)?])
    }

    /// Configures training (`model.compile(optimizer, loss, metrics)`).
    ///
    /// # Errors
    /// `Config` for unknown metric names.
    fn compile(&self, optimizer: Optimizer, loss: Loss, metrics: &[&str]) -> Result<()> {
        self.compile_outputs(optimizer, &[loss], None, &[metrics])
    }

    /// Configures training of a model with several outputs: one loss for all outputs or one per
    /// output, optional `loss_weights` (default 1 each), and metrics for all outputs or per
    /// output. Logs are then named `loss`, `<output>_loss`, `<output>_<metric>`, as in Keras.
    ///
    /// # Errors
    /// `Config` when the counts do not match the outputs, or for unknown metric names.
    fn compile_outputs(&self, optimizer: Optimizer, losses: &[Loss], loss_weights: Option<&[f64]>, metrics: &[&[&str]]) -> Result<()> {
        let names = self.output_names();
        let n = names.len();
        let per_output = |len: usize, what: &str| -> Result<()> {
            if len == 1 || len == n {
                Ok(())
            } else {
                Err(Error::Config(format!("{what}: expected 1 or {n} (one per output: {names:?}), got {len}")))
            }
        };
        per_output(losses.len(), "losses")?;
        let losses: Vec<Loss> = (0..n).map(|i| losses[if losses.len() == 1 { 0 } else { i }]).collect();
        let loss_weights = match loss_weights {
            None => vec![1.0; n],
            Some(w) if w.len() == n => w.to_vec(),
            Some(w) => return Err(Error::Config(format!("loss_weights: expected {n} (one per output), got {}", w.len()))),
        };
        if !metrics.is_empty() {
            per_output(metrics.len(), "metrics")?;
        }
        let metrics = (0..n)
            .map(|i| {
                let names: &[&str] = match metrics.len() {
                    0 => &[],
                    1 => metrics[0],
                    _ => metrics[i],
                };
                names.iter().map(|m| Ok(Metric::from_name(m)?.resolved_for(&losses[i]))).collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let loss_scale = (self.base().dtype_policy() == crate::mixed_precision::Policy::MixedFloat16).then(Default::default);
        let mut guard = self.compiled().lock().expect("compile lock");
        // Recompiling (to unfreeze a base, say) keeps a distributed model distributed.
        let replicas = guard.as_ref().and_then(|c| c.replicas.clone());
        *guard = Some(Compiled { optimizer, losses, loss_weights, metrics, output_names: names, loss_scale, replicas });
        Ok(())
    }

    /// One gradient step on a batch; returns the batch's loss and metrics.
    ///
    /// # Errors
    /// `Config` when the model is not compiled; errors from the layers and the loss.
    fn train_on_batch(&self, x: &Tensor, y: &Tensor) -> Result<Logs> {
        self.train_on_batch_multi(std::slice::from_ref(x), std::slice::from_ref(y))
    }

    /// [`Model::train_on_batch`] for several inputs or outputs.
    ///
    /// # Errors
    /// As [`Model::train_on_batch`].
    fn train_on_batch_multi(&self, x: &[Tensor], y: &[Tensor]) -> Result<Logs> {
        check_pairs(x, y)?;
        let mut guard = self.compiled().lock().expect("compile lock");
        let c = guard.as_mut().ok_or_else(|| Error::Config(format!("{}: call compile() before training", self.name())))?;
        let batch = Batch { x: x.to_vec(), y: y.to_vec(), sample_weight: None }.on_device(self.device())?;
        let (losses, pred) = fovea_core::on_pool(|| compiled_train_step(self, c, &batch.x, &batch.y, None))?;
        c.reset_metrics();
        c.update_metrics(&batch.y, &pred)?;
        let mut logs = losses;
        c.metric_logs(&mut logs);
        Ok(logs)
    }

    /// One training step on a batch already on the model's device: Keras 3's overridable
    /// `Model.train_step`. `fit` calls it once per batch and shows what it returns in the
    /// progress bar, to callbacks and in the `History`, each log averaged over the epoch's
    /// samples. Every log named `loss` or `*_loss` is checked: a non-finite one stops `fit`
    /// with an error naming it, unless a [`crate::callbacks::TerminateOnNan`] stops it first.
    ///
    /// The default is the compiled step: forward, the compiled losses, backward, one update of
    /// the compiled optimizer, and the compiled metrics. A model with its own logic (a GAN with
    /// two optimizers, a VAE with a KL term) overrides it and needs no `compile`; it takes its
    /// gradients with [`fovea_core::grad`] or [`Optimizer::minimize`] over the variables it
    /// chooses, so sub-models frozen with `set_trainable(false)` between steps stay put.
    ///
    /// # Errors
    /// `Config` when the default step runs on a model that is not compiled; errors from the
    /// layers, losses and optimizer.
    fn train_step(&self, batch: &Batch) -> Result<Logs> {
        let mut guard = self.compiled().lock().expect("compile lock");
        let c = guard.as_mut().ok_or_else(|| Error::Config(format!("{}: call compile() before fit()", self.name())))?;
        let (losses, pred) = compiled_train_step(self, c, &batch.x, &batch.y, batch.sample_weight.as_ref())?;
        c.update_metrics(&batch.y, &pred)?;
        Ok(losses)
    }

    /// One evaluation step on a batch already on the model's device (Keras 3's `test_step`),
    /// for a model that overrides [`Model::train_step`]: `evaluate` and `fit`'s validation
    /// average its logs over the samples. `None` (the default) evaluates the compiled losses
    /// and metrics instead.
    fn test_step(&self, batch: &Batch) -> Option<Result<Logs>> {
        let _ = batch;
        None
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
        self.fit_multi(std::slice::from_ref(x), std::slice::from_ref(y), options, callbacks)
    }

    /// [`Model::fit_with_callbacks`] for models with several inputs or outputs (one target per
    /// output, in output order).
    ///
    /// # Errors
    /// As [`Model::fit_with_callbacks`].
    fn fit_multi(&self, x: &[Tensor], y: &[Tensor], options: FitOptions, callbacks: &mut [&mut dyn Callback]) -> Result<History>
    where
        Self: Sized,
    {
        let n_all = check_pairs(x, y)?;
        if options.batch_size == 0 {
            return Err(Error::Config("batch_size must be >= 1".into()));
        }
        if !(0.0..1.0).contains(&options.validation_split) {
            return Err(Error::Config(format!("validation_split must be in [0, 1), got {}", options.validation_split)));
        }
        let explicit_validation = options.validation_data.is_some() || options.validation_data_multi.is_some();
        // Keras holds out the last fraction of the data, before any shuffling.
        let n_val = if explicit_validation { 0 } else { (n_all as f64 * options.validation_split).floor() as usize };
        let n = n_all - n_val;
        if n == 0 {
            return Err(Error::Config(format!(
                "no training samples left: {n_all} samples with validation_split {}",
                options.validation_split
            )));
        }
        let (train_x, train_y) = (narrow_all(x, 0, n)?, narrow_all(y, 0, n)?);
        let validation: Option<(Vec<Tensor>, Vec<Tensor>)> = match (&options.validation_data, &options.validation_data_multi) {
            (Some((vx, vy)), _) => Some((vec![vx.clone()], vec![vy.clone()])),
            (None, Some(v)) => Some(v.clone()),
            (None, None) if n_val > 0 => Some((narrow_all(x, n, n_val)?, narrow_all(y, n, n_val)?)),
            _ => None,
        };
        // A custom train step may take no targets (an autoencoder, a GAN).
        let weights = match train_y.first() {
            Some(labels) => sample_weights(&options, labels, n_all)?,
            None if options.sample_weight.is_some() || options.class_weight.is_some() => {
                return Err(Error::Config("sample_weight and class_weight need targets, but fit got none".into()))
            }
            None => None,
        };
        let per_epoch = n.div_ceil(options.batch_size);
        let steps = options.steps_per_epoch.unwrap_or(per_epoch);
        if steps == 0 {
            return Err(Error::Config("steps_per_epoch must be >= 1".into()));
        }
        let source = TensorBatches {
            x: train_x,
            y: train_y,
            weights,
            batch_size: options.batch_size,
            shuffle: options.shuffle,
            // Each epoch's shuffle comes from (seed, epoch) alone, so a resumed fit shuffles
            // exactly as an uninterrupted one would.
            seed: super::replicas::shuffle_seed(self, options.seed)?,
            steps,
            cycle: options.steps_per_epoch.is_some(),
        };
        let validation = validation.map(|(vx, vy)| TensorBatches {
            x: vx,
            y: vy,
            weights: None,
            batch_size: options.batch_size,
            shuffle: false,
            seed: 0,
            steps: 0,
            cycle: false,
        });
        self.fit_source(&source, validation.as_ref().map(|v| v as &dyn BatchSource), &options, callbacks)
    }

    /// Trains on batches from any [`BatchSource`] (a `fovea_data` `Dataset` of `(x, y)` or
    /// `(x, y, sample_weight)` batches, or tensors): `options` gives the epochs, verbosity and
    /// initial epoch; its data-splitting fields do not apply.
    ///
    /// # Errors
    /// As [`Model::fit_multi`], and any error the source yields.
    fn fit_source(
        &self,
        source: &dyn BatchSource,
        validation: Option<&dyn BatchSource>,
        options: &FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History>
    where
        Self: Sized,
    {
        for (name, value) in [("steps_per_epoch", options.steps_per_epoch), ("validation_steps", options.validation_steps)] {
            if value == Some(0) {
                return Err(Error::Config(format!("{name} must be at least 1 (or None for all the data), got 0")));
            }
        }
        let mut history = History::default();
        // Build before the callbacks run, so they see (and can restore) every weight.
        if !self.base().is_built() {
            if let Some(specs) = source.input_specs() {
                self.build(&specs)?;
                self.base().mark_built();
            }
        }
        let replicas = super::replicas::replicas_of(self);
        let shard;
        if let Some(r) = &replicas {
            super::replicas::sync_weights(self, source, r.as_ref())?;
        }
        let source = match &replicas {
            Some(r) if !source.per_replica() => {
                shard = super::replicas::ReplicaShard { source, rank: r.rank(), world: r.world_size() };
                &shard as &dyn BatchSource
            }
            _ => source,
        };
        // Only the chief replica prints progress.
        let verbose = if replicas.as_ref().is_some_and(|r| r.rank() != 0) { 0 } else { options.verbose };
        let mut ctx = CallbackContext { model: self, compiled: self.compiled(), stop_training: false, resume_epoch: None };
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(&mut ctx)?;
        }
        let first_epoch = ctx.resume_epoch.unwrap_or(0).max(options.initial_epoch);
        for epoch in first_epoch..options.epochs {
            for cb in callbacks.iter_mut() {
                cb.on_epoch_begin(epoch, &mut ctx)?;
            }
            // steps_per_epoch bounds an epoch of an endless (repeated, resampled) source, as in Keras.
            let steps = options.steps_per_epoch.or(source.steps());
            let mut progress = Progress::new(verbose, epoch, options.epochs, steps.unwrap_or(0));
            let mut sums: Logs = Logs::new();
            let mut seen = 0usize;
            if let Some(c) = self.compiled().lock().expect("compile lock").as_mut() {
                c.reset_metrics();
            }
            for (step, batch) in source.batches(epoch)?.take(options.steps_per_epoch.unwrap_or(usize::MAX)).enumerate() {
                let batch = batch?.on_device(self.device())?;
                let count = batch.y.first().or(batch.x.first()).map_or(0, |t| t.dims().first().copied().unwrap_or(1));
                // Forward, backward and update on the pool: their ops then fork-join there
                // instead of waking the pool from this thread for each one (`fovea_core::threads`).
                let batch_logs = fovea_core::on_pool(|| self.train_step(&batch))?;
                seen += count;
                // Step logs are averaged over samples, weighting each batch by its size (Keras's
                // `Mean` trackers); compiled metrics are stateful and report themselves.
                for (k, v) in &batch_logs {
                    *sums.entry(k.clone()).or_insert(0.0) += v * count as f64;
                }
                let mut logs: Logs = sums.iter().map(|(k, v)| (k.clone(), v / seen.max(1) as f64)).collect();
                if let Some(c) = self.compiled().lock().expect("compile lock").as_ref() {
                    c.metric_logs(&mut logs);
                }
                progress.step(step + 1, &logs);
                for cb in callbacks.iter_mut() {
                    cb.on_batch_end(step, &logs, &mut ctx)?;
                }
                if ctx.stop_training {
                    break;
                }
                if let Some((name, value)) = first_non_finite_loss(&batch_logs) {
                    // Without TerminateOnNan, a NaN loss is an error rather than silent garbage.
                    return Err(Error::Config(format!(
                        "{}: the {name} became {value} at epoch {}, batch {step}; lower the learning rate or check the inputs for NaN",
                        self.name(),
                        epoch + 1
                    )));
                }
            }
            let mut logs: Logs = sums.iter().map(|(k, v)| (k.clone(), v / seen.max(1) as f64)).collect();
            if let Some(c) = self.compiled().lock().expect("compile lock").as_ref() {
                c.metric_logs(&mut logs);
            }
            if let Some(r) = &replicas {
                logs = super::replicas::reduce_logs(r.as_ref(), &logs, seen)?;
            }
            if let Some(v) = validation {
                let first_steps;
                let v = match options.validation_steps {
                    Some(steps) => {
                        first_steps = FirstSteps { source: v, steps };
                        &first_steps as &dyn BatchSource
                    }
                    None => v,
                };
                for (k, val) in self.evaluate_source(v)? {
                    logs.insert(format!("val_{k}"), val);
                }
            }
            // A custom train step has no compiled optimizer whose rate could be reported.
            if self.compiled().lock().expect("compile lock").is_some() {
                logs.insert("learning_rate".into(), ctx.learning_rate());
            }
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
        let n = check_pairs(std::slice::from_ref(x), std::slice::from_ref(y))?;
        self.evaluate(x, y, n.max(1))
    }

    /// The loss and metrics on data, in inference mode.
    ///
    /// # Errors
    /// As [`Model::fit`].
    fn evaluate(&self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Logs> {
        self.evaluate_multi(std::slice::from_ref(x), std::slice::from_ref(y), batch_size)
    }

    /// [`Model::evaluate`] for several inputs or outputs.
    ///
    /// # Errors
    /// As [`Model::evaluate`].
    fn evaluate_multi(&self, x: &[Tensor], y: &[Tensor], batch_size: usize) -> Result<Logs> {
        check_pairs(x, y)?;
        if batch_size == 0 {
            return Err(Error::Config("batch_size must be >= 1".into()));
        }
        let source =
            TensorBatches { x: x.to_vec(), y: y.to_vec(), weights: None, batch_size, shuffle: false, seed: 0, steps: 0, cycle: false };
        self.evaluate_source(&source)
    }

    /// The loss and metrics over every batch of a [`BatchSource`], in inference mode.
    ///
    /// # Errors
    /// `Config` when not compiled; errors from the source, the layers and the losses.
    fn evaluate_source(&self, source: &dyn BatchSource) -> Result<Logs> {
        let _no_grad = fovea_core::NoGradGuard::new();
        let device = self.device();
        let mut batches = source.batches(0)?.map(move |b| b.and_then(|b| b.on_device(device)));
        // The first batch tells whether the model has its own test step; either way it is
        // used, so a pipeline is started once.
        let first = batches.next().transpose()?;
        if let Some(logs) = first.as_ref().and_then(|b| self.test_step(b)) {
            return average_test_steps(self, logs?, first.as_ref().expect("a first batch"), batches);
        }
        let guard = self.compiled().lock().expect("compile lock");
        let c = guard.as_ref().ok_or_else(|| Error::Config(format!("{}: call compile() before evaluate()", self.name())))?;
        let mut metrics: Vec<Vec<Metric>> = c.metrics.clone();
        metrics.iter_mut().flatten().for_each(Metric::reset_state);
        let mut loss_metrics: Vec<Metric> = c.losses.iter().map(|l| Metric::new(MetricKind::MeanLoss(*l), "loss")).collect();
        let (weights, prefixes): (Vec<f64>, Vec<String>) = (c.loss_weights.clone(), (0..c.losses.len()).map(|i| c.prefix(i)).collect());
        drop(guard);
        for batch in first.into_iter().map(Ok).chain(batches) {
            let batch = batch?;
            let pred = self.forward(&batch.x, false)?;
            if pred.len() != batch.y.len() || pred.len() != loss_metrics.len() {
                return Err(Error::Config(format!("{}: {} targets for {} outputs", self.name(), batch.y.len(), pred.len())));
            }
            for (i, p) in pred.iter().enumerate() {
                loss_metrics[i].update_state(&batch.y[i], p)?;
                for m in metrics[i].iter_mut() {
                    m.update_state(&batch.y[i], p)?;
                }
            }
        }
        let mut logs = Logs::new();
        let total: f64 = loss_metrics.iter().zip(&weights).map(|(m, w)| m.result() * w).sum();
        logs.insert("loss".into(), total);
        if loss_metrics.len() > 1 {
            for (m, p) in loss_metrics.iter().zip(&prefixes) {
                logs.insert(format!("{p}loss"), m.result());
            }
        }
        for (ms, p) in metrics.iter().zip(&prefixes) {
            for m in ms {
                logs.insert(format!("{p}{}", m.name()), m.result());
            }
        }
        Ok(logs)
    }

    /// The model's (first) output for `x`, computed in batches in inference mode on the model's
    /// device. The result stays there: `to_vec` reads it from any device, and a caller who feeds
    /// it to further ops on that device saves the round trip.
    ///
    /// # Errors
    /// Errors from the layers; `Config` for batch size 0.
    fn predict(&self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        Ok(self.predict_multi(std::slice::from_ref(x), batch_size)?.remove(0))
    }

    /// Every output for `x`, computed in batches in inference mode.
    ///
    /// # Errors
    /// As [`Model::predict`].
    fn predict_multi(&self, x: &[Tensor], batch_size: usize) -> Result<Vec<Tensor>> {
        if batch_size == 0 {
            return Err(Error::Config("batch_size must be >= 1".into()));
        }
        let n = check_pairs(x, &[])?;
        no_grad(|| {
            let mut outs: Vec<Vec<Tensor>> = Vec::new();
            for start in (0..n).step_by(batch_size) {
                let inputs = to_device_all(&narrow_all(x, start, batch_size.min(n - start))?, self.device())?;
                let pred = self.forward(&inputs, false)?;
                if outs.is_empty() {
                    outs = vec![Vec::new(); pred.len()];
                }
                for (o, p) in outs.iter_mut().zip(pred) {
                    o.push(p);
                }
            }
            outs.iter().map(|parts| Ok(Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)?)).collect()
        })
    }

    /// The variables training updates.
    fn trainable_variables(&self) -> Vec<fovea_core::Variable> {
        self.trainable_weights()
    }

    /// The variables training leaves alone (frozen weights, moving statistics).
    fn non_trainable_variables(&self) -> Vec<fovea_core::Variable> {
        self.non_trainable_weights()
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
/// (`None` when neither is given). Computed once per `fit` on the host from the caller's data
/// (a label lookup in a host map), before any batch goes to the model's device.
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

/// The first log named `loss` or `*_loss` whose value is not finite, for `fit`'s NaN check.
pub fn first_non_finite_loss(logs: &Logs) -> Option<(&str, f64)> {
    logs.iter().find(|(k, v)| (*k == "loss" || k.ends_with("_loss")) && !v.is_finite()).map(|(k, v)| (k.as_str(), *v))
}

/// `evaluate` through the model's own [`Model::test_step`], given the first batch and its logs:
/// every batch's logs averaged over samples, weighting each batch by its size.
fn average_test_steps<M: Model + ?Sized>(
    model: &M,
    first_logs: Logs,
    first: &Batch,
    rest: impl Iterator<Item = Result<Batch>>,
) -> Result<Logs> {
    let count = |b: &Batch| b.y.first().or(b.x.first()).map_or(0, |t| t.dims().first().copied().unwrap_or(1));
    let (mut sums, mut seen) = (Logs::new(), 0usize);
    let mut add = |logs: Logs, n: usize| {
        for (k, v) in logs {
            *sums.entry(k).or_insert(0.0) += v * n as f64;
        }
        seen += n;
    };
    add(first_logs, count(first));
    for batch in rest {
        let batch = batch?;
        let logs = model
            .test_step(&batch)
            .ok_or_else(|| Error::Config(format!("{}: test_step returned None after handling a first batch", model.name())))??;
        add(logs, count(&batch));
    }
    Ok(sums.into_iter().map(|(k, v)| (k, v / seen.max(1) as f64)).collect())
}

/// Forward, losses (weighted, plus regularization), backward and one optimizer update. A
/// non-finite loss skips the update (so the weights stay usable) and is reported to the caller.
/// Returns the batch's loss logs and the detached predictions.
fn compiled_train_step<M: Model + ?Sized>(
    model: &M,
    c: &mut Compiled,
    x: &[Tensor],
    y: &[Tensor],
    sample_weight: Option<&Tensor>,
) -> Result<(Logs, Vec<Tensor>)> {
    let pred = model.forward(x, true)?;
    if pred.len() != y.len() || pred.len() != c.losses.len() {
        return Err(Error::Config(format!(
            "{}: {} targets and {} losses for {} outputs",
            model.name(),
            y.len(),
            c.losses.len(),
            pred.len()
        )));
    }
    let mut logs = Logs::new();
    let mut loss: Option<Tensor> = None;
    for (i, (p, t)) in pred.iter().zip(y).enumerate() {
        let li = c.losses[i].compute(t, p, sample_weight)?;
        if c.losses.len() > 1 {
            logs.insert(format!("{}loss", c.prefix(i)), li.to_scalar::<f32>()? as f64);
        }
        let weighted = if c.loss_weights[i] == 1.0 { li } else { li.mul_scalar(c.loss_weights[i] as f32)? };
        loss = Some(match loss {
            None => weighted,
            Some(acc) => acc.add(&weighted)?,
        });
    }
    let mut loss = loss.expect("at least one output");
    for extra in model.losses()? {
        loss = loss.add(&extra)?;
    }
    let mut value = loss.to_scalar::<f32>()? as f64;
    // A replica's loss is the mean over its slice of the global batch; its gradient counts in
    // proportion to that slice.
    let mut share = 1.0;
    if let Some(r) = &c.replicas {
        let local = y.first().or(x.first()).and_then(|t| t.dims().first().copied()).unwrap_or(0);
        (value, share) = super::replicas::global_loss(r.as_ref(), value, local)?;
    }
    logs.insert("loss".into(), value);
    let detached: Vec<Tensor> = pred.iter().map(|p| p.detach()).collect();
    if !value.is_finite() {
        return Ok((logs, detached));
    }
    let scale = c.loss_scale.as_ref().map(|s| s.scale());
    let seeded = match scale {
        Some(s) => loss.mul_scalar(s)?,
        None => loss.clone(),
    };
    let trainable = model.trainable_weights();
    // Replicas reduce each bucket of gradients while the backward pass computes the rest.
    let mut overlap =
        c.replicas.as_ref().map(|r| super::replicas::OverlappedReduce::new(r.as_ref(), share / scale.map_or(1.0, f64::from), &trainable));
    let grads = match overlap.as_mut() {
        Some(o) => seeded.backward_with_hook(&mut |leaf, g| o.on_leaf(leaf, g))?,
        None => seeded.backward()?,
    };
    // The graph holds every variable's value; letting it go first lets the optimizer update the
    // variables' buffers in place instead of copying each of them every step.
    drop((seeded, loss, pred));
    let mut pairs: Vec<(Tensor, fovea_core::Variable)> = trainable
        .into_iter()
        .map(|v| {
            let value = v.value();
            let g = grads.get(&value).cloned().unwrap_or_else(|| value.zeros_like());
            Ok((if let Some(s) = scale { g.mul_scalar(1.0 / s)? } else { g }, v))
        })
        .collect::<Result<_>>()?;
    drop(grads);
    if let Some(o) = overlap {
        o.finish(&mut pairs)?;
    }
    if let (Some(loss_scale), Some(_)) = (c.loss_scale.as_mut(), scale) {
        if !loss_scale.update(crate::mixed_precision::grads_are_finite(&pairs)?) {
            return Ok((logs, detached));
        }
    }
    fovea_core::profile::span("optimizer", || "apply_gradients".into(), || c.optimizer.apply_gradients(&pairs))?;
    Ok((logs, detached))
}
