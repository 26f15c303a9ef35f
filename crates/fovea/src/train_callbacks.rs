//! `fovea train`'s callback flags: the Keras callbacks `fit` has (TensorBoard, CSVLogger,
//! EarlyStopping, ModelCheckpoint) reachable without code.

use clap::Args;
use fovea::nn::callbacks::{improved, monitored, Callback, CallbackContext, CsvLogger, EarlyStopping, Mode, Profiler, TensorBoard};
use fovea::nn::model::io::save_model_with;
use fovea::nn::model::{Logs, Model};
use std::path::PathBuf;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The callback flags of `fovea train`.
#[derive(Args)]
pub struct CallbackArgs {
    /// Write TensorBoard event files (losses, metrics, learning rate) under this folder.
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
    /// Append one CSV row of logs per epoch to this file (Keras's CSVLogger).
    #[arg(long, value_name = "FILE")]
    csv_log: Option<PathBuf>,
    /// Stop when --monitor has not improved for this many epochs (Keras's EarlyStopping).
    #[arg(long, value_name = "PATIENCE")]
    early_stopping: Option<usize>,
    /// The log that --early-stopping and --checkpoint's best model watch.
    #[arg(long, default_value = "val_loss")]
    monitor: String,
    /// Save the model after every epoch to DIR/last.safetensors and whenever --monitor
    /// improves to DIR/best.safetensors (Keras's ModelCheckpoint).
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
    /// Write a timeline of the training (each layer's forward pass, each backward op, each
    /// optimizer update) to this file in Chrome's trace format (open it in Perfetto).
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
}

impl CallbackArgs {
    /// Refuses what would only fail after training started: a checkpoint folder that cannot
    /// be created, a CSV file in a missing folder, a monitor that `fit` never logs.
    pub fn check(&self, validation_split: f64) -> AnyResult<()> {
        if let Some(dir) = &self.checkpoint {
            std::fs::create_dir_all(dir).map_err(|e| format!("--checkpoint {}: {e}", dir.display()))?;
        }
        if let Some(file) = &self.csv_log {
            crate::model_file::check_writable("--csv-log", file)?;
        }
        if let Some(file) = &self.profile {
            crate::model_file::check_writable("--profile", file)?;
        }
        let watched = self.early_stopping.is_some() || self.checkpoint.is_some();
        if watched && self.monitor.starts_with("val_") && validation_split <= 0.0 {
            return Err(format!("--monitor {} needs validation data: give --validation-split above 0", self.monitor).into());
        }
        if watched && !matches!(self.monitor.trim_start_matches("val_"), "loss" | "accuracy") {
            return Err(format!("--monitor expects loss, accuracy, val_loss or val_accuracy, got {:?}", self.monitor).into());
        }
        Ok(())
    }

    /// The callbacks the flags ask for, in the order Keras runs them. Only the chief replica
    /// of a distributed run writes files; every replica stops early together, since they all
    /// see the same averaged logs.
    /// `metadata` goes into every checkpoint file (the class names of a `--data` folder).
    pub fn build<'a, M: Model>(&self, net: &'a M, chief: bool, metadata: &[(&'static str, String)]) -> Vec<Box<dyn Callback + 'a>> {
        let mut callbacks: Vec<Box<dyn Callback + 'a>> = Vec::new();
        if !chief {
            callbacks.extend(self.early_stopping.map(|p| Box::new(EarlyStopping::new(&self.monitor, p)) as Box<dyn Callback>));
            return callbacks;
        }
        if let Some(dir) = &self.tensorboard {
            callbacks.push(Box::new(TensorBoard::new(dir)));
        }
        if let Some(file) = &self.csv_log {
            callbacks.push(Box::new(CsvLogger::new(file)));
        }
        if let Some(file) = &self.profile {
            callbacks.push(Box::new(Profiler::new(file)));
        }
        if let Some(dir) = &self.checkpoint {
            callbacks.push(Box::new(WholeModelCheckpoint {
                net,
                dir: dir.clone(),
                monitor: self.monitor.clone(),
                best: None,
                metadata: metadata.to_vec(),
            }));
        }
        if let Some(patience) = self.early_stopping {
            callbacks.push(Box::new(EarlyStopping::new(&self.monitor, patience)));
        }
        callbacks
    }
}

/// Keras's `ModelCheckpoint` with its default `save_weights_only=False`: whole model files
/// (architecture, weights, optimizer state) that `evaluate`, `predict` and `train --resume`
/// read, the last epoch's and the best one's.
struct WholeModelCheckpoint<'a, M> {
    net: &'a M,
    dir: PathBuf,
    monitor: String,
    best: Option<f64>,
    metadata: Vec<(&'static str, String)>,
}

impl<M: Model> Callback for WholeModelCheckpoint<'_, M> {
    fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, _ctx: &mut CallbackContext<'_>) -> fovea::nn::Result<()> {
        save_model_with(self.net, self.dir.join("last.safetensors"), &self.metadata)?;
        let current = monitored(logs, &self.monitor)?;
        if self.best.is_none_or(|b| improved(Mode::Auto, &self.monitor, current, b, 0.0)) {
            self.best = Some(current);
            save_model_with(self.net, self.dir.join("best.safetensors"), &self.metadata)?;
        }
        Ok(())
    }
}
