//! `tf.train.CheckpointManager` for Fovea weight files: numbered checkpoints
//! (`DIR/ckpt-34.safetensors`, the number being the global step), at most `max_to_keep` of
//! them, one kept for good every N hours, the latest one found again after a restart, and
//! restoring all of a model's variables or only some, by name.

use crate::layer::Layer;
use crate::model::io::{read_weights, save_weights};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PREFIX: &str = "ckpt-";
const SUFFIX: &str = ".safetensors";
const KEY_STEP: &str = "fovea.checkpoint_step";
const KEY_TIME: &str = "fovea.checkpoint_time";

/// One checkpoint file.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The global step it was saved at.
    pub step: u64,
    /// The file.
    pub path: PathBuf,
    /// When it was saved (seconds since the Unix epoch).
    pub time: f64,
}

/// Keeps a directory of numbered checkpoints (see the module docs).
pub struct CheckpointManager {
    dir: PathBuf,
    max_to_keep: Option<usize>,
    keep_every: Option<Duration>,
    /// Managed checkpoints, oldest first (those kept for good are not listed).
    checkpoints: Vec<Checkpoint>,
    /// When the last checkpoint kept for good was saved (at first, the oldest checkpoint's
    /// time: the clock starts with the first save).
    last_preserved: Option<f64>,
}

fn step_of(path: &Path) -> Option<u64> {
    path.file_name()?.to_str()?.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.parse().ok()
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl CheckpointManager {
    /// Manages `dir` (created if missing), keeping at most `max_to_keep` checkpoints (`None`:
    /// all). Checkpoints already there (`ckpt-<step>.safetensors`) are picked up, by step.
    ///
    /// # Errors
    /// `Config` for `max_to_keep` of 0 or a directory that cannot be created or listed.
    pub fn new(dir: impl Into<PathBuf>, max_to_keep: Option<usize>) -> Result<Self> {
        let dir = dir.into();
        if max_to_keep == Some(0) {
            return Err(Error::Config("CheckpointManager: max_to_keep must be at least 1 (or None to keep all), got 0".into()));
        }
        let io = |e: std::io::Error| Error::Config(format!("CheckpointManager: {}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut checkpoints = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if let Some(step) = step_of(&path) {
                let time = read_weights(&path)?.metadata.get(KEY_TIME).and_then(|t| t.parse().ok()).unwrap_or(0.0);
                checkpoints.push(Checkpoint { step, path, time });
            }
        }
        checkpoints.sort_by_key(|c| c.step);
        let last_preserved = checkpoints.first().map(|c| c.time);
        Ok(CheckpointManager { dir, max_to_keep, keep_every: None, checkpoints, last_preserved })
    }

    /// Keeps one checkpoint for good (never deleted) every `hours`, as TensorFlow's
    /// `keep_checkpoint_every_n_hours`.
    pub fn keep_checkpoint_every_n_hours(mut self, hours: f64) -> Self {
        self.keep_every = Some(Duration::from_secs_f64(hours.max(0.0) * 3600.0));
        self
    }

    /// The managed checkpoints, oldest first.
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// The newest checkpoint, if any (`tf.train.latest_checkpoint`).
    pub fn latest_checkpoint(&self) -> Option<&Path> {
        self.checkpoints.last().map(|c| c.path.as_path())
    }

    /// Saves `model`'s weights as `ckpt-<step>.safetensors` (atomically), then deletes the
    /// oldest checkpoints beyond `max_to_keep`, except one every N hours.
    ///
    /// # Errors
    /// `Config` for a step not above the latest one; as [`save_weights`]; a file that cannot
    /// be deleted.
    pub fn save(&mut self, model: &dyn Layer, step: u64) -> Result<PathBuf> {
        self.save_at(model, step, now())
    }

    fn save_at(&mut self, model: &dyn Layer, step: u64, time: f64) -> Result<PathBuf> {
        if let Some(last) = self.checkpoints.last().filter(|c| c.step >= step) {
            return Err(Error::Config(format!("CheckpointManager: step {step} is not after the latest checkpoint's step {}", last.step)));
        }
        let path = self.dir.join(format!("{PREFIX}{step}{SUFFIX}"));
        save_weights(model, &path, &[(KEY_STEP, step.to_string()), (KEY_TIME, time.to_string())])?;
        self.checkpoints.push(Checkpoint { step, path: path.clone(), time });
        self.last_preserved.get_or_insert(time);
        while self.max_to_keep.is_some_and(|max| self.checkpoints.len() > max) {
            let oldest = self.checkpoints.remove(0);
            let preserve = self.keep_every.is_some_and(|every| oldest.time - self.last_preserved.unwrap_or(time) >= every.as_secs_f64());
            if preserve {
                self.last_preserved = Some(oldest.time);
            } else {
                std::fs::remove_file(&oldest.path)
                    .map_err(|e| Error::Config(format!("CheckpointManager: cannot delete {}: {e}", oldest.path.display())))?;
            }
        }
        Ok(path)
    }

    /// Restores the latest checkpoint into `model`: every weight, or with `only`, just the
    /// weights with those names (`layer/weight`, as the model's `Variable::name` gives them).
    /// Weights are matched by position, as [`crate::model::io::load_weights`] does, so a model
    /// built again (whose layers got new automatic names) restores too. Returns the names of
    /// the weights restored.
    ///
    /// # Errors
    /// `Config` when there is no checkpoint, a name in `only` is not a weight of the model, or
    /// the file's weights differ from the model's in number or shape.
    pub fn restore(&self, model: &dyn Layer, only: Option<&[&str]>) -> Result<Vec<String>> {
        let path = self.latest_checkpoint().ok_or_else(|| Error::Config(format!("{}: no checkpoint to restore", self.dir.display())))?;
        let file = read_weights(path)?;
        let weights = model.weights();
        if let Some(names) = only {
            if let Some(missing) = names.iter().find(|n| !weights.iter().any(|w| w.name() == **n)) {
                let known: Vec<&str> = weights.iter().map(|w| w.name()).collect();
                return Err(Error::Config(format!("restore: the model has no weight {missing:?} (it has {})", known.join(", "))));
            }
        }
        if file.weights.len() != weights.len() {
            return Err(Error::Config(format!(
                "{}: holds {} weights but the model has {}",
                path.display(),
                file.weights.len(),
                weights.len()
            )));
        }
        let mut restored = Vec::new();
        for (w, (saved_name, value)) in weights.iter().zip(&file.weights) {
            if only.is_some_and(|names| !names.contains(&w.name())) {
                continue;
            }
            if value.dims() != w.value().dims() {
                return Err(Error::Config(format!(
                    "{}: weight {saved_name:?} has shape {:?} in the file but the model's {:?} has {:?}",
                    path.display(),
                    value.dims(),
                    w.name(),
                    w.value().dims()
                )));
            }
            w.assign(&value.to(w.value().device())?)?;
            restored.push(w.name().to_string());
        }
        Ok(restored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Dense;
    use crate::model::Sequential;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fovea-ckpt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn model() -> Sequential {
        let m = Sequential::with_input_shape(&[3]);
        m.add(Dense::new(2)).unwrap();
        m.add(Dense::new(1)).unwrap();
        m.build_for(&[3]).unwrap();
        m
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn keeps_the_newest_and_one_every_n_hours_and_finds_them_again() {
        let dir = scratch("keep");
        let m = model();
        let mut mgr = CheckpointManager::new(&dir, Some(2)).unwrap().keep_checkpoint_every_n_hours(1.0);
        // Saved at 0 h, 0.5 h, 1.0 h, 1.5 h, 2.0 h: as each falls out of the newest two, the
        // one an hour after the last kept one (1.0 h) stays; 0 h (the start) and 0.5 h go.
        let t0 = 1.0e9;
        for (i, step) in [10u64, 20, 30, 40, 50].into_iter().enumerate() {
            mgr.save_at(&m, step, t0 + i as f64 * 1800.0).unwrap();
        }
        assert_eq!(files(&dir), ["ckpt-30.safetensors", "ckpt-40.safetensors", "ckpt-50.safetensors"]);
        assert_eq!(mgr.checkpoints().iter().map(|c| c.step).collect::<Vec<_>>(), [40, 50]);
        assert!(mgr.latest_checkpoint().unwrap().ends_with("ckpt-50.safetensors"));
        let e = mgr.save(&m, 50).unwrap_err().to_string();
        assert!(e.contains("step 50 is not after the latest checkpoint's step 50"), "{e}");
        // A new manager (after a restart) finds them by step.
        let again = CheckpointManager::new(&dir, Some(5)).unwrap();
        assert_eq!(again.checkpoints().iter().map(|c| c.step).collect::<Vec<_>>(), [30, 40, 50]);
        assert!(CheckpointManager::new(&dir, Some(0)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn restores_all_or_only_the_named_weights() {
        let dir = scratch("restore");
        let saved = model();
        let mut mgr = CheckpointManager::new(&dir, None).unwrap();
        assert!(mgr.restore(&saved, None).unwrap_err().to_string().contains("no checkpoint"));
        mgr.save(&saved, 1).unwrap();
        let values = |m: &Sequential| m.weights().iter().map(|w| w.value().to_vec::<f32>().unwrap()).collect::<Vec<_>>();
        let other = model();
        let names: Vec<String> = other.weights().iter().map(|w| w.name().to_string()).collect();
        // Only the first layer's kernel: it now equals the saved one, the rest keeps its values.
        let before = values(&other);
        let restored = mgr.restore(&other, Some(&[names[0].as_str()])).unwrap();
        assert_eq!(restored, [names[0].clone()]);
        let after = values(&other);
        assert_eq!(after[0], values(&saved)[0]);
        assert_eq!(after[1..], before[1..]);
        assert_ne!(after[0], before[0]);
        mgr.restore(&other, None).unwrap();
        assert_eq!(values(&other), values(&saved));
        let e = mgr.restore(&other, Some(&["nope/kernel"])).unwrap_err().to_string();
        assert!(e.contains("no weight \"nope/kernel\"") && e.contains(&names[0]), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
