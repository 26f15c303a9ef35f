//! Model files as the commands read them: `train -o` writes Sequential models, `create` and
//! `convert` functional ones, and `evaluate` and `predict` take either.

use fovea::core::Tensor;
use fovea::nn::layer::Layer;
use fovea::nn::losses::Loss;
use fovea::nn::model::functional::Functional;
use fovea::nn::model::io::read_weights;
use fovea::nn::model::{Logs, Model, SavedModel, Sequential};
use fovea::nn::optimizers::Optimizer;
use std::path::Path;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The metadata key under which `fovea train --data DIR -o FILE` stores the folder's sorted
/// class names, as a JSON array of strings.
pub const KEY_CLASS_NAMES: &str = "fovea.class_names";

/// Whether `net` has an optimizer and loss (a file saved after training has them).
pub fn is_compiled<M: Model>(net: &M) -> bool {
    net.compiled().lock().map(|c| c.is_some()).unwrap_or(false)
}

/// The metadata entry that stores `names` in a model file.
pub fn class_names_metadata(names: &[String]) -> (&'static str, String) {
    (KEY_CLASS_NAMES, serde_json::json!(names).to_string())
}

/// The class names a model file stores (None when it has none, as files from `create`,
/// `convert` or `train --dataset`).
///
/// # Errors
/// When the file cannot be read, or its class names are not a JSON list of strings.
pub fn class_names(path: &Path) -> AnyResult<Option<Vec<String>>> {
    let file = read_weights(path)?;
    file.metadata
        .get(KEY_CLASS_NAMES)
        .map(|text| serde_json::from_str(text).map_err(|e| format!("{}: bad class names in the metadata: {e}", path.display()).into()))
        .transpose()
}

/// Refuses a data folder whose class sub-folders are not the classes `model` was trained on,
/// naming both lists (the class indices would otherwise mean different things).
///
/// # Errors
/// When the lists differ.
pub fn check_class_names(model: &Path, saved: &[String], folder: &str, found: &[String]) -> AnyResult<()> {
    if saved == found {
        return Ok(());
    }
    Err(format!("{} was trained on the classes {saved:?} but {folder} holds the classes {found:?}", model.display()).into())
}

/// A model's declared input shape as `(height, width, channels)`.
pub fn image_input(shape: Option<fovea::nn::layer::ShapeSpec>, path: &Path) -> AnyResult<(usize, usize, usize)> {
    match shape.as_deref() {
        // With or without the batch axis.
        Some([None, Some(h), Some(w), Some(c)] | [Some(h), Some(w), Some(c)]) => Ok((*h, *w, *c)),
        other => {
            Err(format!("{}: expected a model of images with input shape (height, width, channels), got {other:?}", path.display()).into())
        }
    }
}

/// A saved model of either kind: `train -o` writes Sequential ones, `create` and `convert`
/// functional ones, and `evaluate` and `predict` read both.
pub enum ModelFile {
    /// A `Sequential` model (`fovea train -o`).
    Sequential(Sequential),
    /// A functional model (`fovea create`, `fovea convert`).
    Functional(Functional),
}

impl ModelFile {
    /// Loads the model `path` holds, whichever kind.
    ///
    /// # Errors
    /// When the file is not a Fovea model file or cannot be read.
    pub fn load(path: &Path) -> AnyResult<Self> {
        Ok(match SavedModel::load(path)? {
            SavedModel::Functional(net) => ModelFile::Functional(net),
            SavedModel::Sequential(net) => ModelFile::Sequential(net),
        })
    }

    /// The declared input `(height, width, channels)`.
    pub fn input(&self, path: &Path) -> AnyResult<(usize, usize, usize)> {
        match self {
            ModelFile::Sequential(net) => image_input(net.input_shape(), path),
            ModelFile::Functional(net) => image_input(net.inputs().first().map(|n| n.shape().clone()), path),
        }
    }

    /// The number of classes the model outputs (the last axis of its output), when its shape
    /// says.
    pub fn classes(&self) -> Option<usize> {
        let shape = match self {
            ModelFile::Sequential(net) => net.input_shape().and_then(|s| net.compute_output_shape(&[s]).ok()),
            ModelFile::Functional(net) => net.outputs().first().map(|o| o.shape().clone()),
        };
        shape.and_then(|s| s.last().copied().flatten())
    }

    /// Test loss and accuracy, compiled for evaluation when the file holds no training
    /// configuration.
    pub fn evaluate(&self, x: &Tensor, y: &Tensor) -> AnyResult<Logs> {
        fn with<M: Model>(net: &M, x: &Tensor, y: &Tensor) -> AnyResult<Logs> {
            if !is_compiled(net) {
                net.compile(Optimizer::adam(0.001), Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
            }
            Ok(net.evaluate(x, y, 256)?)
        }
        match self {
            ModelFile::Sequential(net) => with(net, x, y),
            ModelFile::Functional(net) => with(net, x, y),
        }
    }

    /// The model's output for `x`, in batches of 256.
    ///
    /// # Errors
    /// When the model does not take `x`.
    pub fn predict(&self, x: &Tensor) -> AnyResult<Tensor> {
        Ok(match self {
            ModelFile::Sequential(net) => net.predict(x, 256)?,
            ModelFile::Functional(net) => net.predict(x, 256)?,
        })
    }
}

/// Refuses an output path whose folder does not exist or cannot be written, before the work
/// whose result it would hold (a training run) starts rather than after. The probe is a file
/// created and removed beside the target, as the atomic writers later create theirs.
pub fn check_writable(flag: &str, path: &Path) -> AnyResult<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!("{flag} {}: the folder {} does not exist", path.display(), dir.display()).into());
    }
    let probe = dir.join(format!(".fovea-write-probe-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(|e| format!("{flag} {}: cannot write in {}: {e}", path.display(), dir.display()))?;
    // The probe is empty and ours; failing to remove it is not worth failing the command.
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
