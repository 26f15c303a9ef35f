//! Callbacks with Keras's hooks and names: `EarlyStopping`, `ModelCheckpoint`, `CsvLogger`,
//! `LearningRateScheduler`, `ReduceLrOnPlateau`, `TerminateOnNan`, `LambdaCallback`, and
//! `TensorBoard` with its [`SummaryWriter`].

use crate::layer::Layer;
use crate::model::training::{Compiled, Logs};
use crate::{Error, Result};
use fovea_core::Tensor;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

pub mod proto;
pub mod summary;
pub mod tensorboard;

pub use summary::SummaryWriter;
pub use tensorboard::{TensorBoard, UpdateFreq};

/// What a callback can see and change during `fit`.
pub struct CallbackContext<'a> {
    /// The model being trained.
    pub model: &'a dyn Layer,
    pub(crate) compiled: &'a Mutex<Option<Compiled>>,
    /// Set to stop training after the current epoch (or batch).
    pub stop_training: bool,
    /// Set in `on_train_begin` to resume at this epoch (see [`BackupAndRestore`]).
    pub resume_epoch: Option<usize>,
}

impl CallbackContext<'_> {
    /// The learning rate the next step will use.
    pub fn learning_rate(&self) -> f64 {
        self.compiled.lock().expect("compile lock").as_ref().map_or(0.0, |c| c.optimizer.current_learning_rate())
    }

    /// Replaces the learning rate (schedules are replaced by the constant).
    pub fn set_learning_rate(&self, lr: f64) {
        if let Some(c) = self.compiled.lock().expect("compile lock").as_mut() {
            c.optimizer.learning_rate = lr.into();
        }
    }
}

/// A training callback; every hook defaults to doing nothing.
#[allow(unused_variables)]
pub trait Callback: Send {
    /// Before the first epoch.
    ///
    /// # Errors
    /// Stops `fit` with this error.
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
    /// Before each epoch (0-based).
    ///
    /// # Errors
    /// Stops `fit` with this error.
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
    /// After each batch, with the running logs of the epoch.
    ///
    /// # Errors
    /// Stops `fit` with this error.
    fn on_batch_end(&mut self, batch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
    /// After each epoch, with its logs (validation included).
    ///
    /// # Errors
    /// Stops `fit` with this error.
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
    /// After the last epoch.
    ///
    /// # Errors
    /// Stops `fit` with this error.
    fn on_train_end(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
}

/// Whether a monitored quantity should go down (`min`) or up (`max`); `Auto` picks `max` for
/// accuracy-like names, as Keras does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
    /// `Max` when the name contains "acc" (or "auc", "precision", "recall"), else `Min`.
    Auto,
}

/// Whether `current` beats `best` by more than `min_delta` in `mode`'s direction for the log
/// named `monitor`: the test EarlyStopping and ModelCheckpoint share.
pub fn improved(mode: Mode, monitor: &str, current: f64, best: f64, min_delta: f64) -> bool {
    let max = match mode {
        Mode::Max => true,
        Mode::Min => false,
        Mode::Auto => ["acc", "auc", "precision", "recall"].iter().any(|k| monitor.contains(k)),
    };
    if max {
        current > best + min_delta
    } else {
        current < best - min_delta
    }
}

/// The value of `monitor` in `logs`.
///
/// # Errors
/// `Config` naming the logs there are when `monitor` is not one of them.
pub fn monitored(logs: &Logs, monitor: &str) -> Result<f64> {
    logs.get(monitor).copied().ok_or_else(|| {
        Error::Config(format!("callback monitors {monitor:?}, which is not in the logs (available: {:?})", logs.keys().collect::<Vec<_>>()))
    })
}

/// Stops training when `monitor` stops improving for `patience` epochs.
pub struct EarlyStopping {
    /// The log to watch (default `val_loss`).
    pub monitor: String,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// Direction of improvement.
    pub mode: Mode,
    /// Put back the weights of the best epoch when stopping.
    pub restore_best_weights: bool,
    best: Option<f64>,
    wait: usize,
    best_weights: Option<Vec<Tensor>>,
    /// The epoch training stopped at (0 when it ran to the end).
    pub stopped_epoch: usize,
}

impl EarlyStopping {
    /// Watches `monitor` with the given patience (Keras defaults otherwise).
    pub fn new(monitor: &str, patience: usize) -> Self {
        EarlyStopping {
            monitor: monitor.into(),
            min_delta: 0.0,
            patience,
            mode: Mode::Auto,
            restore_best_weights: false,
            best: None,
            wait: 0,
            best_weights: None,
            stopped_epoch: 0,
        }
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let current = monitored(logs, &self.monitor)?;
        if self.best.is_none_or(|b| improved(self.mode, &self.monitor, current, b, self.min_delta)) {
            self.best = Some(current);
            self.wait = 0;
            if self.restore_best_weights {
                self.best_weights = Some(ctx.model.weights().iter().map(|v| v.value().detach()).collect());
            }
            return Ok(());
        }
        self.wait += 1;
        if self.wait >= self.patience {
            self.stopped_epoch = epoch;
            ctx.stop_training = true;
            if let Some(best) = &self.best_weights {
                for (v, t) in ctx.model.weights().iter().zip(best) {
                    v.assign(t)?;
                }
            }
        }
        Ok(())
    }
}

/// Saves the weights after each epoch (or only when `monitor` improves) to a path that may
/// contain `{epoch}` / `{epoch:02d}` and `{<log>:.4f}`-style fields, like Keras.
pub struct ModelCheckpoint {
    /// The file path pattern.
    pub filepath: String,
    /// The log that decides "best".
    pub monitor: String,
    /// Only save when `monitor` improves.
    pub save_best_only: bool,
    /// Direction of improvement.
    pub mode: Mode,
    best: Option<f64>,
    /// The files written, in order.
    pub saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// Checkpoints to `filepath`, monitoring `val_loss`.
    pub fn new(filepath: &str) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: "val_loss".into(),
            save_best_only: false,
            mode: Mode::Auto,
            best: None,
            saved: Vec::new(),
        }
    }

    /// Only save improvements of `monitor`.
    pub fn best_only(mut self, monitor: &str) -> Self {
        self.monitor = monitor.into();
        self.save_best_only = true;
        self
    }
}

/// Expands Keras's `{epoch:02d}` and `{val_loss:.4f}` placeholders (epochs are 1-based).
pub fn format_path(pattern: &str, epoch: usize, logs: &Logs) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else { break };
        let field = &rest[start + 1..start + end];
        let (name, spec) = field.split_once(':').unwrap_or((field, ""));
        let value = if name == "epoch" { Some(epoch as f64 + 1.0) } else { logs.get(name).copied() };
        match value {
            Some(v) if name == "epoch" => {
                let width: usize = spec.trim_end_matches('d').trim_start_matches('0').parse().unwrap_or(0);
                out.push_str(&format!("{:0width$}", v as usize));
            }
            Some(v) => {
                let prec: usize = spec.trim_start_matches('.').trim_end_matches('f').parse().unwrap_or(4);
                out.push_str(&format!("{v:.prec$}"));
            }
            None => out.push_str(&rest[start..start + end + 1]),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if self.save_best_only {
            let current = monitored(logs, &self.monitor)?;
            if !self.best.is_none_or(|b| improved(self.mode, &self.monitor, current, b, 0.0)) {
                return Ok(());
            }
            self.best = Some(current);
        }
        let path = PathBuf::from(format_path(&self.filepath, epoch, logs));
        crate::model::io::save_weights(ctx.model, &path, &[("fovea.epoch", (epoch + 1).to_string())])?;
        self.saved.push(path);
        Ok(())
    }
}

/// Appends one CSV row per epoch (`epoch` then every log, sorted by name).
pub struct CsvLogger {
    path: PathBuf,
    columns: Option<Vec<String>>,
}

impl CsvLogger {
    /// Logs to `path` (overwritten at the start of training).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger { path: path.into(), columns: None }
    }
}

impl Callback for CsvLogger {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        let io = |e: std::io::Error| Error::Config(format!("{}: {e}", self.path.display()));
        let mut text = String::new();
        if self.columns.is_none() {
            let cols: Vec<String> = logs.keys().cloned().collect();
            text.push_str(&format!("epoch,{}\n", cols.join(",")));
            std::fs::write(&self.path, "").map_err(io)?;
            self.columns = Some(cols);
        }
        let cols = self.columns.as_ref().expect("set above");
        let values: Vec<String> = cols.iter().map(|c| logs.get(c).map_or(String::new(), |v| v.to_string())).collect();
        text.push_str(&format!("{epoch},{}\n", values.join(",")));
        std::fs::OpenOptions::new().append(true).open(&self.path).and_then(|mut f| f.write_all(text.as_bytes())).map_err(io)
    }
}

/// Sets the learning rate at the start of each epoch from `schedule(epoch, current_lr)`.
pub struct LearningRateScheduler<F: FnMut(usize, f64) -> f64 + Send>(pub F);

impl<F: FnMut(usize, f64) -> f64 + Send> Callback for LearningRateScheduler<F> {
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let lr = (self.0)(epoch, ctx.learning_rate());
        ctx.set_learning_rate(lr);
        Ok(())
    }
}

/// Multiplies the learning rate by `factor` when `monitor` stalls for `patience` epochs.
pub struct ReduceLrOnPlateau {
    /// The log to watch (default `val_loss`).
    pub monitor: String,
    /// The multiplier (Keras default 0.1).
    pub factor: f64,
    /// Epochs without improvement before reducing (Keras default 10).
    pub patience: usize,
    /// The floor.
    pub min_lr: f64,
    best: Option<f64>,
    wait: usize,
}

impl ReduceLrOnPlateau {
    /// Watches `monitor` with `factor` and `patience`.
    pub fn new(monitor: &str, factor: f64, patience: usize) -> Self {
        ReduceLrOnPlateau { monitor: monitor.into(), factor, patience, min_lr: 0.0, best: None, wait: 0 }
    }
}

impl Callback for ReduceLrOnPlateau {
    fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let current = monitored(logs, &self.monitor)?;
        if self.best.is_none_or(|b| improved(Mode::Auto, &self.monitor, current, b, 1e-4)) {
            self.best = Some(current);
            self.wait = 0;
        } else {
            self.wait += 1;
            if self.wait >= self.patience {
                ctx.set_learning_rate((ctx.learning_rate() * self.factor).max(self.min_lr));
                self.wait = 0;
            }
        }
        Ok(())
    }
}

/// Saves weights, optimizer state and the epoch after every epoch to `backup_dir`; a later
/// `fit` with the same callback resumes from there (Keras's `BackupAndRestore`). The backup
/// is deleted when training completes. In a data-parallel job give it to every replica with a
/// `backup_dir` they can all read (as Keras asks): all restore, the chief alone writes.
pub struct BackupAndRestore {
    dir: PathBuf,
}

impl BackupAndRestore {
    /// Backs up into `backup_dir` (created if needed).
    pub fn new(backup_dir: impl Into<PathBuf>) -> Self {
        BackupAndRestore { dir: backup_dir.into() }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("backup.safetensors")
    }
}

impl Callback for BackupAndRestore {
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let path = self.file();
        if !path.is_file() {
            return Ok(());
        }
        let meta = crate::model::io::load_weights(ctx.model, &path)?;
        let epoch: usize = meta
            .get("fovea.epoch")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| Error::Config(format!("{}: backup without an epoch number", path.display())))?;
        let (tensors, _) = fovea_core::io::read_safetensors_file(&path, fovea_core::Device::Cpu)?;
        let state: Vec<(String, Tensor)> = tensors.into_iter().filter(|(k, _)| k.starts_with("optimizer/")).collect();
        if let Some(c) = ctx.compiled.lock().expect("compile lock").as_mut() {
            if !state.is_empty() {
                c.optimizer.load_state(&state)?;
            }
        }
        ctx.resume_epoch = Some(epoch);
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, _logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        // In a data-parallel job every replica restores from the same file, and only the
        // chief writes it: the replicas hold the same weights, and a slow one must not put
        // back a backup the chief has already removed.
        if !is_chief(ctx) {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::Config(format!("cannot create {}: {e}", self.dir.display())))?;
        let state = ctx.compiled.lock().expect("compile lock").as_ref().map(|c| c.optimizer.state()).transpose()?.unwrap_or_default();
        crate::model::io::save_checkpoint(ctx.model, &self.file(), &[("fovea.epoch", (epoch + 1).to_string())], &state)
    }

    fn on_train_end(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        // An interrupted run never gets here, so its backup stays for the next fit.
        if is_chief(ctx) {
            let _ = std::fs::remove_file(self.file());
        }
        Ok(())
    }
}

/// Records a timeline of training — each layer's forward pass, each backward op, each
/// optimizer update — and writes it to `path` in Chrome's trace format when training ends
/// (open it in Perfetto or `chrome://tracing`). Uses [`fovea_core::profile`].
pub struct Profiler {
    path: PathBuf,
}

impl Profiler {
    /// A profiler writing its trace to `path` (atomically).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Profiler { path: path.into() }
    }
}

impl Callback for Profiler {
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        fovea_core::profile::start();
        Ok(())
    }

    fn on_train_end(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        let events = fovea_core::profile::stop();
        fovea_core::io::write_atomic(&self.path, fovea_core::profile::chrome_trace(&events).as_bytes())?;
        Ok(())
    }
}

/// Whether this process is replica 0 of a data-parallel job, or trains alone.
fn is_chief(ctx: &CallbackContext<'_>) -> bool {
    ctx.compiled.lock().expect("compile lock").as_ref().and_then(|c| c.replicas.as_ref()).is_none_or(|r| r.rank() == 0)
}

/// Stops training as soon as a batch loss (`loss`, or any `*_loss` a custom train step
/// reports, such as a GAN's `d_loss`) is NaN or infinite.
pub struct TerminateOnNan;

impl Callback for TerminateOnNan {
    fn on_batch_end(&mut self, _batch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if crate::model::training::first_non_finite_loss(logs).is_some() {
            ctx.stop_training = true;
        }
        Ok(())
    }
}

/// A callback from a closure run at the end of each epoch.
pub struct LambdaCallback<F: FnMut(usize, &Logs) + Send>(pub F);

impl<F: FnMut(usize, &Logs) + Send> Callback for LambdaCallback<F> {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        (self.0)(epoch, logs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profiler_writes_forward_backward_and_optimizer_spans_as_a_chrome_trace() {
        use crate::layers::Dense;
        use crate::model::{FitOptions, Model, Sequential};
        let m = Sequential::with_input_shape(&[3]);
        m.add(Dense::new(4).named("hidden").unwrap()).unwrap();
        m.compile(crate::optimizers::Optimizer::sgd(0.1, 0.0, false), crate::losses::Loss::from_name("mse").unwrap(), &[]).unwrap();
        let x = fovea_core::Tensor::ones([8, 3], fovea_core::DType::F32, fovea_core::Device::Cpu).unwrap();
        let y = fovea_core::Tensor::zeros([8, 4], fovea_core::DType::F32, fovea_core::Device::Cpu).unwrap();
        let path = std::env::temp_dir().join(format!("fovea-profile-{}.json", std::process::id()));
        let mut profiler = Profiler::new(&path);
        m.fit_with_callbacks(&x, &y, FitOptions { epochs: 2, batch_size: 4, verbose: 0, ..Default::default() }, &mut [&mut profiler])
            .unwrap();
        let trace: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let events = trace["traceEvents"].as_array().unwrap();
        let count =
            |cat: &str, name: &str| events.iter().filter(|e| e["cat"] == cat && e["name"].as_str().unwrap().starts_with(name)).count();
        // 2 epochs × 2 batches: four forward passes of the layer, four updates, and a matmul
        // gradient in each backward pass.
        assert!(count("forward", "hidden (Dense)") >= 4, "{trace}");
        assert!(count("optimizer", "apply_gradients") >= 4 && count("backward", "matmul") >= 4, "{trace}");
        assert!(events.iter().all(|e| e["ph"] == "X" && e["dur"].as_f64().unwrap() >= 0.0 && e["ts"].as_f64().is_some()));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn paths_expand_like_keras() {
        let mut logs = Logs::new();
        logs.insert("val_loss".into(), 0.123456);
        assert_eq!(format_path("ckpt-{epoch:02d}-{val_loss:.2f}.safetensors", 4, &logs), "ckpt-05-0.12.safetensors");
        assert_eq!(format_path("m{epoch}.st", 0, &logs), "m1.st");
        assert_eq!(format_path("x{unknown}.st", 0, &logs), "x{unknown}.st");
    }

    #[test]
    fn auto_mode_follows_the_name() {
        assert!(improved(Mode::Auto, "val_accuracy", 0.9, 0.8, 0.0));
        assert!(improved(Mode::Auto, "val_loss", 0.1, 0.2, 0.0));
        assert!(!improved(Mode::Auto, "val_loss", 0.19, 0.2, 0.05));
    }
}
