//! One entry point for loading weights whatever wrote them: Keras files (by content: HDF5 or
//! zip) or Fovea's own `.safetensors` weight files, with Keras's `by_name` / `skip_mismatch`.

use super::keras_h5::{assign_keras_weights, parse_keras_weights, KerasFormat, KerasLayerWeights, KerasWeights, LoadOptions, LoadReport};
use crate::layer::Layer;
use crate::model::io::read_weights;
use crate::{Error, Result};
use std::path::Path;

/// Loads the weights in `path` into `model` (built), matching layers by name: a Keras
/// `.weights.h5`, legacy `.h5` or `.keras` file, or a Fovea weight file from
/// [`crate::model::io::save_weights`] (whose weights are named `<layer>/<weight>`).
///
/// # Errors
/// As [`super::keras_h5::read_keras_weights`] or [`crate::model::io::read_weights`], and as
/// [`assign_keras_weights`] for layers that do not match.
pub fn load_weights_by_name(model: &dyn Layer, path: impl AsRef<Path>, opts: LoadOptions) -> Result<LoadReport> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Config(format!("cannot read {what}: {e}")))?;
    let file = if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(crate::hdf5::SIGNATURE) {
        parse_keras_weights(bytes, &what)?
    } else {
        drop(bytes);
        let fovea = read_weights(path)?;
        let mut layers: Vec<KerasLayerWeights> = Vec::new();
        for (name, t) in fovea.weights {
            let (layer, short) = name.rsplit_once('/').unwrap_or((name.as_str(), name.as_str()));
            match layers.last_mut() {
                Some(l) if l.name == layer => l.weights.push((short.to_string(), t)),
                _ => layers.push(KerasLayerWeights { name: layer.to_string(), weights: vec![(short.to_string(), t)] }),
            }
        }
        KerasWeights { format: KerasFormat::FoveaSafetensors, layers, config: None, keras_version: None }
    };
    assign_keras_weights(model, &file, &what, opts)
}
