//! Model files as the commands read them: `train -o` writes Sequential models, `create` and
//! `convert` functional ones, and `evaluate` and `predict` take either.

use fovea::core::Tensor;
use fovea::nn::losses::Loss;
use fovea::nn::model::functional::Functional;
use fovea::nn::model::io::load_model;
use fovea::nn::model::{Logs, Model, SavedModel, Sequential};
use fovea::nn::optimizers::Optimizer;
use std::path::Path;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A saved Sequential model (`train --resume`), compiled for evaluation when the file holds no
/// training configuration.
pub fn load_compiled(path: &Path) -> AnyResult<Sequential> {
    let net = load_model(path)?;
    if net.compiled().lock().map(|c| c.is_none()).unwrap_or(true) {
        net.compile(Optimizer::adam(0.001), Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
    }
    Ok(net)
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
    Sequential(Sequential),
    Functional(Functional),
}

impl ModelFile {
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

    /// Test loss and accuracy, compiled for evaluation when the file holds no training
    /// configuration.
    pub fn evaluate(&self, x: &Tensor, y: &Tensor) -> AnyResult<Logs> {
        fn with<M: Model>(net: &M, x: &Tensor, y: &Tensor) -> AnyResult<Logs> {
            if net.compiled().lock().map(|c| c.is_none()).unwrap_or(true) {
                net.compile(Optimizer::adam(0.001), Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
            }
            Ok(net.evaluate(x, y, 256)?)
        }
        match self {
            ModelFile::Sequential(net) => with(net, x, y),
            ModelFile::Functional(net) => with(net, x, y),
        }
    }

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
