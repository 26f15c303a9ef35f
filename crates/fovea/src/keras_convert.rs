//! `fovea convert` without `--arch`: any Keras model — a `.keras` file, a full-model `.h5`, or
//! `model.to_json()`'s document with its `.weights.h5` — becomes a Fovea model file that
//! `fovea evaluate`, `predict` and `train --resume` read like one Fovea trained.

use fovea::nn::import::keras_config::{load_keras_json, load_keras_model, KerasModel};
use fovea::nn::model::io::save_model_with;
use std::path::Path;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Converts the Keras model in `input` (with `weights` for a `.json` architecture) into the
/// Fovea model file `output`, and describes what it wrote.
///
/// # Errors
/// A `.json` without `--weights` (or `--weights` with another file), a weights-only Keras file
/// (which needs `--arch`), a PyTorch file, and as [`load_keras_model`] / [`load_keras_json`]:
/// unsupported layers or arguments, or weights that do not fit, naming the file and layer.
pub fn convert_keras_model(input: &Path, weights: Option<&Path>, output: &Path) -> AnyResult<String> {
    let what = input.display();
    let is_json = input.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let model = match (is_json, weights) {
        (true, Some(w)) => load_keras_json(input, w)?,
        (true, None) => {
            return Err(format!("convert: {what} is a model architecture; give its weights with --weights FILE.weights.h5").into())
        }
        (false, Some(_)) => {
            return Err(format!("convert: --weights goes with a .json architecture (model.to_json()); {what} is not one").into())
        }
        (false, None) => {
            if !super::convert::is_keras(input)? {
                return Err(format!("convert: {what} is not a Keras file; give --arch for a PyTorch checkpoint").into());
            }
            load_keras_model(input).map_err(|e| {
                let e = e.to_string();
                if e.contains("holds weights only") {
                    format!("{e} (or give --arch for a keras.applications architecture)")
                } else {
                    e
                }
            })?
        }
    };
    let source = match weights {
        Some(w) => format!("Keras {} with weights {}", what, w.display()),
        None => format!("Keras {what}"),
    };
    let meta = [("fovea.source", source)];
    match &model {
        KerasModel::Sequential(m) => save_model_with(m, output, &meta)?,
        KerasModel::Functional(m) => save_model_with(m, output, &meta)?,
    }
    let layer = model.as_layer();
    let params: usize = layer.weights().iter().map(|v| v.value().numel()).sum();
    Ok(format!("{what}: Keras {} model {:?}, {params} parameters → {}", layer.class_name(), layer.name(), output.display()))
}
