//! Weight files: one `.safetensors` file (ARCHITECTURE §5) holding every weight under its
//! Keras-style name, the weight order and the model's config in `__metadata__`, and a format
//! version. Writes are atomic.

use crate::layer::Layer;
use crate::losses::Loss;
use crate::model::functional::Functional;
use crate::model::{Model, Sequential};
use crate::optimizers::Optimizer;
use crate::{Error, Result};
use fovea_core::io::{read_safetensors_file, save_safetensors};
use fovea_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// The format version this build writes; files from a newer version are refused.
pub const FORMAT_VERSION: u32 = 1;

const KEY_VERSION: &str = "fovea.format_version";
const KEY_ORDER: &str = "fovea.weight_order";
const KEY_CONFIG: &str = "fovea.config";
const KEY_CLASS: &str = "fovea.class_name";

/// Writes every weight of `model` (built) to `path`, with extra metadata entries.
///
/// # Errors
/// `Config` when the model has no weights yet (not built); I/O errors naming the path.
pub fn save_weights(model: &dyn Layer, path: impl AsRef<Path>, extra: &[(&str, String)]) -> Result<()> {
    WeightFileBuilder::from_model(model, extra)?.write(path.as_ref(), &[])
}

/// Writes weights plus extra tensors (e.g. optimizer state) and metadata atomically.
///
/// # Errors
/// As [`save_weights`].
pub fn save_checkpoint(model: &dyn Layer, path: &Path, extra: &[(&str, String)], tensors: &[(String, Tensor)]) -> Result<()> {
    WeightFileBuilder::from_model(model, extra)?.write(path, tensors)
}

/// A weight file's tensors in model order and its metadata.
pub struct WeightFile {
    /// `(name, value)` in the order the model listed its weights.
    pub weights: Vec<(String, Tensor)>,
    /// Other tensors in the file (e.g. optimizer state).
    pub extra: Vec<(String, Tensor)>,
    /// The `__metadata__` entries.
    pub metadata: HashMap<String, String>,
}

/// Reads a weight file.
///
/// # Errors
/// `Core(File)` naming the file for a missing or corrupt file; `Config` naming it for a newer
/// format version, or a weight order that names tensors the file does not hold.
pub fn read_weights(path: impl AsRef<Path>) -> Result<WeightFile> {
    let path = path.as_ref();
    // The core error names the file once and says what is wrong in words.
    let (tensors, metadata) = read_safetensors_file(path, Device::Cpu)?;
    let version: u32 = metadata
        .get(KEY_VERSION)
        .ok_or_else(|| Error::Config(format!("{}: not a Fovea weight file (no {KEY_VERSION} in its metadata)", path.display())))?
        .parse()
        .map_err(|_| Error::Config(format!("{}: unreadable format version {:?}", path.display(), metadata[KEY_VERSION])))?;
    if version > FORMAT_VERSION {
        return Err(Error::Config(format!(
            "{}: written by a newer Fovea (format version {version}; this build reads up to {FORMAT_VERSION})",
            path.display()
        )));
    }
    let order: Vec<String> = serde_json::from_str(metadata.get(KEY_ORDER).map(String::as_str).unwrap_or("[]"))
        .map_err(|e| Error::Config(format!("{}: bad weight order: {e}", path.display())))?;
    let mut by_name: HashMap<String, Tensor> = tensors.into_iter().collect();
    let mut weights = Vec::with_capacity(order.len());
    for name in order {
        let t = by_name
            .remove(&name)
            .ok_or_else(|| Error::Config(format!("{}: the weight order lists {name:?} but the file has no such tensor", path.display())))?;
        weights.push((name, t));
    }
    let mut extra: Vec<(String, Tensor)> = by_name.into_iter().collect();
    extra.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(WeightFile { weights, extra, metadata })
}

/// Loads weights saved by [`save_weights`] into `model` (built, same architecture), matching
/// them by position and checking every shape. Each weight keeps its device: the file's value
/// is copied there.
///
/// # Errors
/// As [`read_weights`]; `Config` naming the weight for a count or shape mismatch.
pub fn load_weights(model: &dyn Layer, path: impl AsRef<Path>) -> Result<HashMap<String, String>> {
    let path = path.as_ref();
    let file = read_weights(path)?;
    let weights = model.weights();
    if weights.len() != file.weights.len() {
        return Err(Error::Config(format!(
            "{}: the file holds {} weights but model {} has {}",
            path.display(),
            file.weights.len(),
            model.name(),
            weights.len()
        )));
    }
    for (v, (name, t)) in weights.iter().zip(&file.weights) {
        if v.value().shape() != t.shape() {
            return Err(Error::Config(format!(
                "{}: weight {name} has shape {} in the file but {} (as {}) in the model",
                path.display(),
                t.shape(),
                v.value().shape(),
                v.name()
            )));
        }
    }
    for (v, (_, t)) in weights.iter().zip(&file.weights) {
        v.assign(&t.to(v.value().device())?)?;
    }
    Ok(file.metadata)
}

/// Keras's `load_weights(..., by_name=..., skip_mismatch=...)` switches for partial loads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Match weights by name (`layer/weight`) instead of by position; model weights the file
    /// does not name keep their values.
    pub by_name: bool,
    /// Skip weights whose shapes differ (reported) instead of failing.
    pub skip_mismatch: bool,
}

/// What a partial load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Model weights assigned from the file.
    pub loaded: Vec<String>,
    /// Model weights skipped for a shape mismatch, with the reason.
    pub skipped: Vec<String>,
    /// Model weights the file does not name (by-name loads only); they keep their values.
    pub unmatched: Vec<String>,
}

/// Loads a Fovea weight file into `model` with Keras's `by_name` / `skip_mismatch` semantics;
/// with both off this is [`load_weights`].
///
/// # Errors
/// As [`load_weights`]; by name, `Config` when no weight of the file matches the model.
pub fn load_weights_with(model: &dyn Layer, path: impl AsRef<Path>, opts: LoadOptions) -> Result<LoadReport> {
    let path = path.as_ref();
    if !opts.by_name && !opts.skip_mismatch {
        load_weights(model, path)?;
        return Ok(LoadReport { loaded: model.weights().iter().map(|v| v.name().to_string()).collect(), ..LoadReport::default() });
    }
    let file = read_weights(path)?;
    let what = path.display().to_string();
    if opts.by_name {
        return assign_by_name(model, &file.weights, opts.skip_mismatch, &what);
    }
    let weights = model.weights();
    if weights.len() != file.weights.len() {
        return Err(Error::Config(format!(
            "{what}: the file holds {} weights but model {} has {}",
            file.weights.len(),
            model.name(),
            weights.len()
        )));
    }
    let mut report = LoadReport::default();
    for (v, (name, t)) in weights.iter().zip(&file.weights) {
        if v.value().shape() != t.shape() {
            report.skipped.push(format!("{}: file {name} has shape {} but the model's is {}", v.name(), t.shape(), v.value().shape()));
        } else {
            v.assign(&t.to(v.value().device())?)?;
            report.loaded.push(v.name().to_string());
        }
    }
    Ok(report)
}

/// Assigns `tensors` to the weights of `model` with the same names (`layer/weight`). Shapes
/// are all checked before anything is assigned, so a failed load leaves the model untouched.
/// `what` names the source in errors.
///
/// # Errors
/// `Config` naming the weight for a shape mismatch (unless `skip_mismatch`), or when no tensor
/// matches any weight of the model (a file for another architecture).
pub fn assign_by_name(model: &dyn Layer, tensors: &[(String, Tensor)], skip_mismatch: bool, what: &str) -> Result<LoadReport> {
    let by_name: HashMap<&str, &Tensor> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut report = LoadReport::default();
    let mut todo = Vec::new();
    for v in model.weights() {
        let Some(t) = by_name.get(v.name()) else {
            report.unmatched.push(v.name().to_string());
            continue;
        };
        if v.value().shape() != t.shape() {
            let msg = format!("weight {} has shape {} in {what} but {} in model {}", v.name(), t.shape(), v.value().shape(), model.name());
            if !skip_mismatch {
                return Err(Error::Config(msg));
            }
            report.skipped.push(msg);
            continue;
        }
        todo.push((v, *t));
    }
    if todo.is_empty() && report.skipped.is_empty() {
        return Err(Error::Config(format!(
            "{what}: none of its {} tensors names a weight of model {} (a file for another model?)",
            tensors.len(),
            model.name()
        )));
    }
    for (v, t) in todo {
        v.assign(&t.to(v.value().device())?)?;
        report.loaded.push(v.name().to_string());
    }
    Ok(report)
}

const KEY_ARCH: &str = "fovea.architecture";
const KEY_COMPILE: &str = "fovea.compile";

/// Saves a whole model (`Sequential` or functional): weights, architecture, and — when
/// compiled — the optimizer (with its state), losses and metric names, so [`load_model`] /
/// [`load_functional`] resume training exactly where it stopped.
///
/// # Errors
/// As [`save_weights`]; `Config` when a `Sequential` has no input shape yet.
pub fn save_model<M: Model>(model: &M, path: impl AsRef<Path>) -> Result<()> {
    save_model_with(model, path, &[])
}

/// [`save_model`] with extra `__metadata__` entries (e.g. a generator's latent size), which
/// [`read_weights`] returns.
///
/// # Errors
/// As [`save_model`].
pub fn save_model_with<M: Model>(model: &M, path: impl AsRef<Path>, metadata: &[(&str, String)]) -> Result<()> {
    let mut arch = serde_json::json!({"class_name": model.class_name(), "config": model.config()});
    if let Some(seq) = model.sequential_input_shape() {
        let input: Vec<usize> = seq
            .ok_or_else(|| Error::Config(format!("{}: the model has no input shape yet; build it before saving", model.name())))?
            .into_iter()
            .skip(1)
            .map(|d| d.ok_or_else(|| Error::Config("only the batch dimension may be unknown when saving".into())))
            .collect::<Result<_>>()?;
        arch["input_shape"] = serde_json::json!(input);
    }
    let mut extra = vec![(KEY_ARCH, arch.to_string())];
    extra.extend(metadata.iter().cloned());
    let mut state = Vec::new();
    if let Some(c) = model.compiled().lock().expect("compile lock").as_ref() {
        let metrics: Vec<Vec<&str>> = c.metrics.iter().map(|ms| ms.iter().map(|m| m.name()).collect()).collect();
        let compile = serde_json::json!({"optimizer": c.optimizer, "losses": c.losses, "loss_weights": c.loss_weights, "metrics": metrics});
        extra.push((KEY_COMPILE, compile.to_string()));
        state = c.optimizer.state()?;
    }
    WeightFileBuilder::from_model(model, &extra)?.write(path.as_ref(), &state)
}

fn architecture(path: &Path, file: &WeightFile, want: &str) -> Result<serde_json::Value> {
    let arch: serde_json::Value = serde_json::from_str(file.metadata.get(KEY_ARCH).ok_or_else(|| {
        Error::Config(format!("{}: holds weights only (no architecture); build the model in code and call load_weights", path.display()))
    })?)
    .map_err(|e| Error::Config(format!("{}: bad architecture JSON: {e}", path.display())))?;
    let class = arch["class_name"].as_str().unwrap_or("");
    if class != want {
        let hint = if class == "Functional" { "load_functional" } else { "load_model" };
        return Err(Error::Config(format!("{}: holds a {class} model, not a {want}; use {hint}", path.display())));
    }
    Ok(arch)
}

/// Loads a `Sequential` written by [`save_model`]: architecture, weights, compile state.
///
/// # Errors
/// As [`read_weights`]; `Config` for a weights-only file, a functional model (use
/// [`load_functional`]) or an unknown layer type.
pub fn load_model(path: impl AsRef<Path>) -> Result<Sequential> {
    let path = path.as_ref();
    let file = read_weights(path)?;
    let arch = architecture(path, &file, "Sequential")?;
    let input: Vec<usize> = serde_json::from_value(arch["input_shape"].clone())
        .map_err(|e| Error::Config(format!("{}: bad input shape: {e}", path.display())))?;
    let model = within_stored_size(path, &file, || crate::model::registry::sequential_from_config(&arch["config"], Some(&input)))?;
    load_weights(&model, path)?;
    restore_compile(&model, &file, path)?;
    Ok(model)
}

/// [`load_model`] onto `device`: the layers are created there and each weight is copied from
/// the file to it once.
///
/// # Errors
/// As [`load_model`]; `DeviceUnavailable` when `device` has no backend.
pub fn load_model_on(path: impl AsRef<Path>, device: Device) -> Result<Sequential> {
    fovea_core::backend::backend(device)?;
    crate::layer::with_device(device, || load_model(path))
}

/// [`load_functional`] onto `device`, as [`load_model_on`].
///
/// # Errors
/// As [`load_model_on`].
pub fn load_functional_on(path: impl AsRef<Path>, device: Device) -> Result<Functional> {
    fovea_core::backend::backend(device)?;
    crate::layer::with_device(device, || load_functional(path))
}

/// Loads a functional model written by [`save_model`].
///
/// # Errors
/// As [`load_model`].
pub fn load_functional(path: impl AsRef<Path>) -> Result<Functional> {
    let path = path.as_ref();
    let file = read_weights(path)?;
    let arch = architecture(path, &file, "Functional")?;
    let model = within_stored_size(path, &file, || crate::model::functional::functional_from_config(&arch["config"]))?;
    load_weights(&model, path)?;
    restore_compile(&model, &file, path)?;
    Ok(model)
}

/// Rebuilds a model from a file's architecture with no more parameters than the file stores:
/// the declared shapes are checked against the stored tensors as each weight is created,
/// before it is allocated, so an architecture declaring huge sizes cannot exhaust memory.
fn within_stored_size<M>(path: &Path, file: &WeightFile, build: impl FnOnce() -> Result<M>) -> Result<M> {
    let stored = file.weights.iter().fold(0u64, |n, (_, t)| n.saturating_add(t.shape().numel() as u64));
    let what = format!("the {stored} values {} stores", path.display());
    crate::budget::with_param_budget(stored, &what, build).map_err(|e| match e {
        Error::Config(m) if !m.contains(&path.display().to_string()) => Error::Config(format!("{}: {m}", path.display())),
        other => other,
    })
}

fn restore_compile<M: Model>(model: &M, file: &WeightFile, path: &Path) -> Result<()> {
    let Some(compile) = file.metadata.get(KEY_COMPILE) else { return Ok(()) };
    let bad = |what: &str, e: serde_json::Error| Error::Config(format!("{}: bad {what}: {e}", path.display()));
    let c: serde_json::Value = serde_json::from_str(compile).map_err(|e| bad("compile JSON", e))?;
    let mut optimizer: Optimizer = serde_json::from_value(c["optimizer"].clone()).map_err(|e| bad("optimizer", e))?;
    let losses: Vec<Loss> = serde_json::from_value(c["losses"].clone()).map_err(|e| bad("losses", e))?;
    let loss_weights: Vec<f64> = serde_json::from_value(c["loss_weights"].clone()).map_err(|e| bad("loss weights", e))?;
    let metrics: Vec<Vec<String>> = serde_json::from_value(c["metrics"].clone()).map_err(|e| bad("metrics", e))?;
    let state: Vec<(String, Tensor)> = file.extra.iter().filter(|(k, _)| k.starts_with("optimizer/")).cloned().collect();
    if !state.is_empty() {
        optimizer.load_state(&state)?;
    }
    let names: Vec<Vec<&str>> = metrics.iter().map(|ms| ms.iter().map(String::as_str).collect()).collect();
    let names: Vec<&[&str]> = names.iter().map(Vec::as_slice).collect();
    model.compile_outputs(optimizer, &losses, Some(&loss_weights), &names)
}

/// The tensors and metadata of a file about to be written.
struct WeightFileBuilder {
    tensors: Vec<(String, Tensor)>,
    meta: HashMap<String, String>,
}

impl WeightFileBuilder {
    fn from_model(model: &dyn Layer, extra: &[(&str, String)]) -> Result<Self> {
        let weights = model.weights();
        if weights.is_empty() {
            return Err(Error::Config(format!("{}: no weights to save (build the model or call it on data first)", model.name())));
        }
        let order: Vec<String> = weights.iter().map(|v| v.name().to_string()).collect();
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = order.iter().find(|n| !seen.insert(*n)) {
            return Err(Error::Config(format!("{}: two weights are both named {dup:?}; give the layers distinct names", model.name())));
        }
        // The writer reads each tensor through `host_view`: weights on another device are
        // copied to the host once, here, as the file needs them.
        let tensors = weights.iter().map(|v| (v.name().to_string(), v.value().detach())).collect();
        let mut meta: HashMap<String, String> = HashMap::new();
        meta.insert(KEY_VERSION.into(), FORMAT_VERSION.to_string());
        meta.insert(KEY_ORDER.into(), serde_json::to_string(&order).expect("strings serialise"));
        meta.insert(KEY_CONFIG.into(), model.config().to_string());
        meta.insert(KEY_CLASS.into(), model.class_name().into());
        for (k, v) in extra {
            meta.insert((*k).to_string(), v.clone());
        }
        Ok(WeightFileBuilder { tensors, meta })
    }

    fn write(mut self, path: &Path, extra_tensors: &[(String, Tensor)]) -> Result<()> {
        self.tensors.extend(extra_tensors.iter().cloned());
        save_safetensors(path, &self.tensors, &self.meta)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Dense;
    use crate::model::Sequential;

    fn model() -> Sequential {
        let m = Sequential::with_input_shape(&[3]);
        m.add(Dense::new(4)).unwrap();
        m.add(Dense::new(2)).unwrap();
        m.build_for(&[3]).unwrap();
        m
    }

    #[test]
    fn save_load_round_trip_and_errors() {
        let dir = std::env::temp_dir().join(format!("fovea-nn-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        let a = model();
        save_weights(&a, &path, &[("fovea.note", "hello".into())]).unwrap();
        let b = model();
        let meta = load_weights(&b, &path).unwrap();
        assert_eq!(meta["fovea.note"], "hello");
        for (x, y) in a.weights().iter().zip(b.weights()) {
            assert_eq!(x.value().to_vec::<f32>().unwrap(), y.value().to_vec::<f32>().unwrap());
        }
        // A different architecture is refused with the weight named.
        let c = Sequential::with_input_shape(&[3]);
        c.add(Dense::new(5)).unwrap();
        c.add(Dense::new(2)).unwrap();
        c.build_for(&[3]).unwrap();
        let e = load_weights(&c, &path).unwrap_err().to_string();
        assert!(e.contains("has shape [3, 4] in the file but [3, 5]"), "{e}");
        // Truncated file.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = load_weights(&b, &path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", path.display())) && e.contains("truncated") && !e.contains("invalid"), "{e}");
        // Newer format version.
        let mut meta = HashMap::new();
        meta.insert(KEY_VERSION.to_string(), "99".to_string());
        fovea_core::io::save_safetensors(&path, &[("x".into(), Tensor::scalar(1.0, Device::Cpu).unwrap())], &meta).unwrap();
        let e = load_weights(&b, &path).unwrap_err().to_string();
        assert!(e.contains("newer Fovea (format version 99"), "{e}");
        let e = load_weights(&b, dir.join("nope.safetensors")).unwrap_err().to_string();
        assert!(e.contains("nope.safetensors: cannot read the file"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn by_name_and_skip_mismatch_load_partially() {
        let dir = std::env::temp_dir().join(format!("fovea-nn-io-partial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        let named = |units: usize, extra: bool| {
            let m = Sequential::with_input_shape(&[3]);
            m.add(Dense::new(4).named("base").unwrap()).unwrap();
            m.add(Dense::new(units).named("head").unwrap()).unwrap();
            if extra {
                m.add(Dense::new(1).named("more").unwrap()).unwrap();
            }
            m.build_for(&[3]).unwrap();
            m
        };
        let a = named(2, false);
        save_weights(&a, &path, &[]).unwrap();
        let value = |m: &Sequential, i: usize| m.weights()[i].value().to_vec::<f32>().unwrap();
        // A new 5-unit head: by name, the mismatched head is skipped and the base loaded.
        let b = named(5, true);
        let before = value(&b, 2);
        let e = load_weights_with(&b, &path, LoadOptions { by_name: true, skip_mismatch: false }).unwrap_err().to_string();
        assert!(e.contains("weight head/kernel has shape [4, 2]") && e.contains("but [4, 5]"), "{e}");
        assert_ne!(value(&b, 0), value(&a, 0), "a failed load assigns nothing");
        let r = load_weights_with(&b, &path, LoadOptions { by_name: true, skip_mismatch: true }).unwrap();
        assert_eq!(r.loaded, ["base/kernel", "base/bias"]);
        assert_eq!(r.skipped.len(), 2);
        assert_eq!(r.unmatched, ["more/kernel", "more/bias"]);
        assert_eq!(value(&b, 0), value(&a, 0));
        assert_eq!(value(&b, 2), before);
        // Positional with skip_mismatch: same count required, mismatches skipped.
        let c = named(5, false);
        let r = load_weights_with(&c, &path, LoadOptions { by_name: false, skip_mismatch: true }).unwrap();
        assert_eq!((r.loaded.len(), r.skipped.len()), (2, 2));
        // Nothing in common is an error.
        let d = Sequential::with_input_shape(&[3]);
        d.add(Dense::new(2).named("other").unwrap()).unwrap();
        d.build_for(&[3]).unwrap();
        let e = load_weights_with(&d, &path, LoadOptions { by_name: true, skip_mismatch: true }).unwrap_err().to_string();
        assert!(e.contains("none of its 4 tensors names a weight"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
