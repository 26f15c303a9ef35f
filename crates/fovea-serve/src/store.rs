//! The model store: TF Serving's layout `BASE/{name}/{version}/model.safetensors`, the highest
//! version of each model serving, and a poll that loads new versions while the old one keeps
//! answering.
//!
//! Each served model is an `Arc<Servable>`: a request takes a clone when it starts, so swapping
//! in a new version never pulls the model out from under a request already queued for the old
//! one; the old version is freed when its last request is done.

use fovea_core::{Device, Tensor};
use fovea_nn::model::io::read_weights;
use fovea_nn::model::saved::KEY_PREPROCESS;
use fovea_nn::model::SavedModel;
use fovea_vision::applications::PreprocessMode;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// The file each version directory holds.
pub const MODEL_FILE: &str = "model.safetensors";

/// One loaded version of a model, with what the REST API reports about it.
pub struct Servable {
    /// The model's name (its directory under the base path).
    pub name: String,
    /// The version (its numeric directory).
    pub version: u64,
    /// The model itself.
    pub model: SavedModel,
    /// The input's name in the signature.
    pub input_name: String,
    /// The output's name in the signature.
    pub output_name: String,
    /// One instance's input shape (batch axis excluded).
    pub input_dims: Vec<usize>,
    /// One instance's output shape (batch axis excluded).
    pub output_dims: Vec<usize>,
    /// How decoded `b64` images are scaled; `None`: pixels / 255, as Fovea's training
    /// pipeline and `fovea predict` feed images.
    pub preprocess: Option<PreprocessMode>,
}

impl Servable {
    /// Loads `path` and probes it with one zero instance, which gives the output shape and
    /// refuses a model that cannot run before it replaces a working version.
    ///
    /// # Errors
    /// A message naming the file: unreadable, not a model, an input shape that is not fixed,
    /// or a forward pass that fails.
    pub fn load(name: &str, version: u64, path: &Path) -> Result<Self, String> {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let model = SavedModel::load(path).map_err(|e| err(&e))?;
        let spec = model.input_shape().ok_or_else(|| err(&"the model declares no input shape"))?;
        // Keras shapes carry the batch axis as `None`; a shape given without it has none.
        let spec = if spec.first() == Some(&None) { &spec[1..] } else { &spec[..] };
        let input_dims: Vec<usize> = spec
            .iter()
            .copied()
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| err(&format!("input shape {spec:?} is not fixed; the server needs every axis but the batch")))?;
        let zeros =
            Tensor::zeros(std::iter::once(1).chain(input_dims.iter().copied()).collect::<Vec<_>>(), fovea_core::DType::F32, Device::Cpu)
                .map_err(|e| err(&e))?;
        let out = model.predict(&zeros, 1).map_err(|e| err(&format!("a forward pass on zeros failed: {e}")))?;
        let meta = read_weights(path).map_err(|e| err(&e))?.metadata;
        let preprocess = PreprocessMode::from_metadata(meta.get(KEY_PREPROCESS).map(String::as_str)).map_err(|e| err(&e))?;
        Ok(Servable {
            name: name.to_string(),
            version,
            input_name: model.input_name(),
            output_name: model.output_names().into_iter().next().unwrap_or_else(|| "output".into()),
            input_dims,
            output_dims: out.dims()[1..].to_vec(),
            preprocess,
            model,
        })
    }

    /// Values per instance of the input.
    pub fn input_len(&self) -> usize {
        self.input_dims.iter().product()
    }

    /// Values per instance of the output.
    pub fn output_len(&self) -> usize {
        self.output_dims.iter().product()
    }
}

/// Why a lookup found nothing to serve (answered with 404).
#[derive(Debug)]
pub struct NotFound(pub String);

/// The models under a base path and the version of each that serves.
pub struct ModelStore {
    base: PathBuf,
    only: Option<String>,
    serving: RwLock<BTreeMap<String, Arc<Servable>>>,
    /// Files that failed to load, with their modification time and size: retried only once
    /// they change (a version directory may be polled while it is still being copied).
    failed: Mutex<HashMap<PathBuf, (Option<SystemTime>, u64)>>,
}

impl ModelStore {
    /// A store over `base`. With `only`, that model alone is served; when `base` itself holds
    /// version directories (TF Serving's `--model_base_path=/models/lenet`), it is one model
    /// named `only` (or `default`, TF Serving's default name).
    pub fn new(base: impl Into<PathBuf>, only: Option<String>) -> Self {
        ModelStore { base: base.into(), only, serving: RwLock::new(BTreeMap::new()), failed: Mutex::new(HashMap::new()) }
    }

    /// The base path.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The servable for `name`: its serving version, or `version` when that one is loaded.
    ///
    /// # Errors
    /// [`NotFound`] naming the model and version, and what does serve.
    pub fn get(&self, name: &str, version: Option<u64>) -> Result<Arc<Servable>, NotFound> {
        let map = self.serving.read().unwrap_or_else(|e| e.into_inner());
        let Some(s) = map.get(name) else {
            let known: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(NotFound(format!("Servable not found for request: Latest({name}); models served: {known:?}")));
        };
        match version {
            Some(v) if v != s.version => {
                Err(NotFound(format!("Servable not found for request: Specific({name}, {v}); version {} serves", s.version)))
            }
            _ => Ok(s.clone()),
        }
    }

    /// The models served, by name.
    pub fn names(&self) -> Vec<String> {
        self.serving.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// The model directories: `(name, directory)`.
    fn model_dirs(&self) -> std::io::Result<Vec<(String, PathBuf)>> {
        if !versions(&self.base)?.is_empty() {
            return Ok(vec![(self.only.clone().unwrap_or_else(|| "default".into()), self.base.clone())]);
        }
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(&self.base)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && self.only.as_ref().is_none_or(|o| *o == name) {
                dirs.push((name, entry.path()));
            }
        }
        Ok(dirs)
    }

    /// Scans the base path once and loads each model's highest version where it is not the
    /// one serving. Returns one line per change or failure, for the log.
    ///
    /// # Errors
    /// When the base path cannot be read at all.
    pub fn poll(&self) -> std::io::Result<Vec<String>> {
        let mut log = Vec::new();
        for (name, dir) in self.model_dirs()? {
            let Some(&version) = versions(&dir).unwrap_or_default().last() else { continue };
            let current = self.get(&name, None).ok().map(|s| s.version);
            if current == Some(version) {
                continue;
            }
            let path = dir.join(version.to_string()).join(MODEL_FILE);
            let stamp = std::fs::metadata(&path).map(|m| (m.modified().ok(), m.len())).unwrap_or((None, 0));
            if self.failed.lock().unwrap_or_else(|e| e.into_inner()).get(&path) == Some(&stamp) {
                continue;
            }
            // Loading happens outside the lock: requests keep the old version meanwhile.
            match Servable::load(&name, version, &path) {
                Ok(s) => {
                    self.serving.write().unwrap_or_else(|e| e.into_inner()).insert(name.clone(), Arc::new(s));
                    let was = current.map_or(String::new(), |c| format!(" (was version {c})"));
                    log.push(format!("serving model {name} version {version}{was} from {}", path.display()));
                }
                Err(e) => {
                    self.failed.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), stamp);
                    log.push(format!("could not load model {name} version {version}: {e}"));
                }
            }
        }
        Ok(log)
    }
}

/// The numeric version directories under `dir` holding a model file, ascending.
fn versions(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()))
        .filter(|v| dir.join(v.to_string()).join(MODEL_FILE).is_file())
        .collect();
    out.sort_unstable();
    Ok(out)
}
