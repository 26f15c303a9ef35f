//! A saved model file of either kind: `fovea train -o` writes `Sequential` models, `create` and
//! `convert` functional ones, and the readers that take any model file (`fovea evaluate`,
//! `predict`, `serve`) need not know which they were given.

use crate::layer::{Layer, ShapeSpec};
use crate::model::functional::Functional;
use crate::model::io::{load_functional, load_model, read_weights};
use crate::model::{Model, Sequential};
use crate::Result;
use fovea_core::Tensor;
use std::path::Path;

/// The metadata key that names the pixel preprocessing a converted model expects (`torch`,
/// `caffe`, `tf` or `none`; see fovea-vision's `PreprocessMode`).
pub const KEY_PREPROCESS: &str = "fovea.preprocess";

/// A model loaded from a `.safetensors` model file, whichever kind it holds.
pub enum SavedModel {
    /// A `Sequential` model.
    Sequential(Sequential),
    /// A functional model.
    Functional(Functional),
}

impl SavedModel {
    /// Loads the model `path` holds.
    ///
    /// # Errors
    /// As [`load_model`] and [`load_functional`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Ok(if is_functional(path)? { SavedModel::Functional(load_functional(path)?) } else { SavedModel::Sequential(load_model(path)?) })
    }

    /// The declared input shape of the (first) input, batch axis included where the model
    /// declares one (`None` for a `Sequential` not yet built).
    pub fn input_shape(&self) -> Option<ShapeSpec> {
        match self {
            SavedModel::Sequential(net) => net.input_shape(),
            SavedModel::Functional(net) => net.inputs().first().map(|n| n.shape().clone()),
        }
    }

    /// The (first) input's name: a functional model's input layer, `input` for a `Sequential`,
    /// which has no input layer of its own.
    pub fn input_name(&self) -> String {
        match self {
            SavedModel::Sequential(_) => "input".to_string(),
            SavedModel::Functional(net) => net.inputs().first().and_then(|n| n.input_name()).unwrap_or("input").to_string(),
        }
    }

    /// The names of the outputs (the layers producing them).
    pub fn output_names(&self) -> Vec<String> {
        match self {
            SavedModel::Sequential(net) => vec![net.layers().last().map_or_else(|| net.name().to_string(), |l| l.name().to_string())],
            SavedModel::Functional(net) => net.output_names(),
        }
    }

    /// The model's (first) output for `x`, in inference mode and batches of `batch_size`.
    ///
    /// # Errors
    /// As [`Model::predict`].
    pub fn predict(&self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        match self {
            SavedModel::Sequential(net) => net.predict(x, batch_size),
            SavedModel::Functional(net) => net.predict(x, batch_size),
        }
    }
}

/// Whether `path` holds a functional model (zoo / converted) rather than a `Sequential`.
///
/// # Errors
/// As [`read_weights`].
pub fn is_functional(path: impl AsRef<Path>) -> Result<bool> {
    let file = read_weights(path)?;
    let arch = file.metadata.get("fovea.architecture").map(String::as_str).unwrap_or("");
    Ok(arch.contains("\"class_name\":\"Functional\""))
}
