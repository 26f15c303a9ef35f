//! Keras weight files: Keras 3 `.weights.h5`, legacy `.h5` (full-model files with the weights
//! under `model_weights/`, and weights-only files with them at the root) and `.keras` zips.
//!
//! Layouts read:
//! - Keras 3: `layers/<path>/vars/<i>`, nested models as `layers/<model>/layers/...`; the
//!   `vars` group's `name` attribute is the layer's Keras name (older Keras 3 files lack it,
//!   and the group's own name stands in). Top-level `optimizer/` state is ignored.
//! - Legacy (h5py, Keras 2 and Keras 3's `legacy_h5_format`): the `layer_names` attribute lists
//!   the layers, each layer group's `weight_names` attribute its weights (`conv/kernel:0`,
//!   `inner/conv/kernel` for a layer of a nested model), each a dataset at
//!   `<layer>/<weight name>`. Name lists may be fixed- or variable-length strings, and
//!   chunked (`layer_names0`, `layer_names1`, ... as Keras splits lists over 64 KB). The root's
//!   `model_config` attribute, when present, is the architecture. `optimizer_weights/` is
//!   ignored.
//! - `.keras`: `config.json` (the architecture) and `model.weights.h5` (Keras 3 layout).
//!
//! Weights are matched to Fovea layers by Keras layer name (Fovea's layers carry Keras names,
//! and their weights come in Keras order), so a file from a model built elsewhere loads into
//! the same architecture built with Fovea.

use crate::hdf5::{H5Data, H5File};
use crate::layer::Layer;
use crate::{Error, Result};
use fovea_core::{Tensor, Variable};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Which kind of Keras file the weights came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KerasFormat {
    /// Keras 3 `model.save_weights("x.weights.h5")`.
    WeightsH5,
    /// A legacy full-model `.h5` (`model.save("x.h5")`): weights under `model_weights/`.
    LegacyModelH5,
    /// A legacy weights-only `.h5` (Keras 2 `save_weights("x.h5")`): weights at the root.
    LegacyWeightsH5,
    /// A Keras 3 `.keras` zip.
    KerasZip,
    /// Not Keras: a Fovea weight file read by [`super::load::load_weights_by_name`].
    FoveaSafetensors,
}

/// One layer's weights as the file stores them, in the layer's Keras order.
#[derive(Clone, Debug)]
pub struct KerasLayerWeights {
    /// The Keras layer name (`block1_conv1`).
    pub name: String,
    /// `(weight name, value)`; Keras 3 files name weights by index (`vars/0`), legacy files by
    /// their Keras names (`kernel`).
    pub weights: Vec<(String, Tensor)>,
}

/// The weights of a Keras file, and the architecture when the file holds one.
#[derive(Clone, Debug)]
pub struct KerasWeights {
    /// The file's kind.
    pub format: KerasFormat,
    /// Every layer that holds weights, in file order (for Keras 3 files the order of the group
    /// names, which h5py keeps sorted; for legacy files the `layer_names` order).
    pub layers: Vec<KerasLayerWeights>,
    /// The Keras model config (`config.json`, or a legacy file's `model_config`), if any.
    pub config: Option<serde_json::Value>,
    /// The Keras version that wrote the file, when recorded.
    pub keras_version: Option<String>,
}

const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// Reads a Keras weight file of any supported kind, told apart by its content.
///
/// # Errors
/// `Config` naming the file when it cannot be read, is neither HDF5 nor a zip, is corrupt or
/// truncated, or holds content this reader does not support (named in the message).
pub fn read_keras_weights(path: impl AsRef<Path>) -> Result<KerasWeights> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    parse_keras_weights(bytes, &path.display().to_string())
}

/// [`read_keras_weights`] on bytes in memory; `what` names them in errors.
///
/// # Errors
/// As [`read_keras_weights`].
pub fn parse_keras_weights(bytes: Vec<u8>, what: &str) -> Result<KerasWeights> {
    parse_keras_weights_with_limit(bytes, what, crate::error::decompression_limit()?)
}

/// [`parse_keras_weights`] with an explicit decompression limit instead of the global one
/// ([`fovea_core::io::limit`]): a `.keras` archive inflates at most `limit` bytes (and each
/// deflated entry at most its declared size), and the HDF5 datasets read declare at most
/// `limit` bytes together, each checked (shape × dtype) before it is read.
///
/// # Errors
/// As [`read_keras_weights`]; `Limit` naming the file and the entry or dataset that exceeds
/// its declared size or the limit.
pub fn parse_keras_weights_with_limit(bytes: Vec<u8>, what: &str, limit: u64) -> Result<KerasWeights> {
    if bytes.starts_with(ZIP_MAGIC) {
        return parse_keras_zip(&bytes, what, limit);
    }
    if !bytes.starts_with(crate::hdf5::SIGNATURE) {
        return Err(Error::Config(format!(
            "{what}: not a Keras weight file: expected HDF5 (.h5, .weights.h5) or a zip (.keras), the file starts with {:02x?}",
            &bytes[..bytes.len().min(8)]
        )));
    }
    let file = H5File::from_bytes_with_limit(bytes, what, limit)?;
    if names_attr(&file, "/", "layer_names")?.is_some() {
        return read_legacy(&file, "", KerasFormat::LegacyWeightsH5);
    }
    if file.has_group("model_weights") && names_attr(&file, "model_weights", "layer_names")?.is_some() {
        return read_legacy(&file, "model_weights", KerasFormat::LegacyModelH5);
    }
    if file.has_group("layers") || file.has_group("vars") {
        return read_keras3(&file, KerasFormat::WeightsH5);
    }
    let (groups, datasets) = file.members("/")?;
    Err(Error::Config(format!(
        "{what}: an HDF5 file but not a Keras weight file: no `layers` group (Keras 3) and no `layer_names` attribute (legacy); \
         top-level groups {groups:?}, datasets {datasets:?}"
    )))
}

/// The entries are inflated one at a time and only the ones kept stay in memory. The HDF5
/// file needs random access, so `model.weights.h5` is held whole (bounded by its declared
/// size and the limit); its tensors are then read one by one.
fn parse_keras_zip(bytes: &[u8], what: &str, limit: u64) -> Result<KerasWeights> {
    let mut config = None;
    let mut keras_version = None;
    let mut weights = None;
    for entry in super::keras_zip::zip_entries(bytes, what, limit)? {
        let (name, data) = entry?;
        let json = |data: &[u8]| -> Result<serde_json::Value> {
            serde_json::from_slice(data).map_err(|e| Error::Config(format!("{what}: entry {name:?} is not valid JSON: {e}")))
        };
        match name.as_str() {
            "config.json" => config = Some(json(&data)?),
            "metadata.json" => keras_version = json(&data)?["keras_version"].as_str().map(str::to_string),
            "model.weights.h5" => weights = Some(data),
            "model.weights.npz" => {
                return Err(Error::Config(format!(
                    "{what}: holds its weights as model.weights.npz, which is not supported (expected model.weights.h5)"
                )))
            }
            n if n.starts_with("assets/") => {}
            other => return Err(Error::Config(format!("{what}: unexpected entry {other:?} in a .keras archive"))),
        }
    }
    let weights = weights.ok_or_else(|| Error::Config(format!("{what}: a zip without model.weights.h5, so not a .keras model file")))?;
    let inner = format!("{what}:model.weights.h5");
    let mut out = read_keras3(&H5File::from_bytes_with_limit(weights, &inner, limit)?, KerasFormat::KerasZip)?;
    out.config = config;
    out.keras_version = keras_version;
    Ok(out)
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}/{child}")
    }
}

fn read_keras3(file: &H5File, format: KerasFormat) -> Result<KerasWeights> {
    let (groups, datasets) = file.members("/")?;
    if let Some(d) = datasets.first() {
        return Err(Error::Config(format!("{}: unexpected top-level dataset {d:?} in a Keras 3 weight file", file.what())));
    }
    let mut layers = Vec::new();
    for g in groups {
        match g.as_str() {
            "layers" => walk_keras3(file, "layers", 0, &mut layers)?,
            // The model's own variables; Keras models have none, so any are unsupported content.
            "vars" => {
                let (_, ds) = file.members("vars")?;
                if !ds.is_empty() {
                    return Err(Error::Config(format!(
                        "{}: the model itself holds variables {ds:?} (top-level `vars`), which Fovea models do not have",
                        file.what()
                    )));
                }
            }
            // Training state, not weights.
            "optimizer" => {}
            other => return Err(Error::Config(format!("{}: unexpected top-level group {other:?} in a Keras 3 weight file", file.what()))),
        }
    }
    let mut seen = HashSet::new();
    if let Some(dup) = layers.iter().find(|l: &&KerasLayerWeights| !seen.insert(l.name.clone())) {
        return Err(Error::Config(format!("{}: two layers are both named {:?}", file.what(), dup.name)));
    }
    Ok(KerasWeights { format, layers, config: None, keras_version: None })
}

const MAX_DEPTH: usize = 64;

/// Collects every `vars` group under `path`: a layer's weights, or (deeper) those of the
/// layers of a nested model or of a layer's sub-layers.
fn walk_keras3(file: &H5File, path: &str, depth: usize, out: &mut Vec<KerasLayerWeights>) -> Result<()> {
    // A damaged file can make a group its own descendant; real models nest a few levels.
    if depth > MAX_DEPTH {
        return Err(Error::Config(format!(
            "{}: groups nested more than {MAX_DEPTH} levels deep at {path:?} (a cycle in a corrupt file?)",
            file.what()
        )));
    }
    let (groups, datasets) = file.members(path)?;
    if let Some(d) = datasets.first() {
        return Err(Error::Config(format!("{}: unexpected dataset {:?} outside a `vars` group", file.what(), join(path, d))));
    }
    for g in groups {
        let sub = join(path, &g);
        if g != "vars" {
            walk_keras3(file, &sub, depth + 1, out)?;
            continue;
        }
        let (inner, ds) = file.members(&sub)?;
        if let Some(i) = inner.first() {
            return Err(Error::Config(format!("{}: unexpected group {:?} inside a `vars` group", file.what(), join(&sub, i))));
        }
        if ds.is_empty() {
            continue;
        }
        let mut indexed = Vec::with_capacity(ds.len());
        for d in ds {
            let i: usize = d.parse().map_err(|_| {
                Error::Config(format!("{}: weight dataset {:?} should be named by its index (0, 1, ...)", file.what(), join(&sub, &d)))
            })?;
            indexed.push((i, d));
        }
        indexed.sort();
        let mut weights = Vec::with_capacity(indexed.len());
        for (_, d) in indexed {
            let full = join(&sub, &d);
            weights.push((format!("vars/{d}"), float_dataset(file, &full)?));
        }
        let name = match file.string_attr(&sub, "name")? {
            Some(n) => n,
            None => path.rsplit('/').next().unwrap_or(path).to_string(),
        };
        out.push(KerasLayerWeights { name, weights });
    }
    Ok(())
}

fn float_dataset(file: &H5File, path: &str) -> Result<Tensor> {
    match file.dataset(path)? {
        H5Data::Float(t) => Ok(t),
        H5Data::Other(kind) => {
            Err(Error::Config(format!("{}: weight {path:?} holds {kind}; only float32/float64 weights are supported", file.what())))
        }
    }
}

/// A legacy name-list attribute, whole or — as Keras writes lists over the 64 KB object-header
/// limit — in chunks `name0`, `name1`, ...
fn names_attr(file: &H5File, path: &str, name: &str) -> Result<Option<Vec<String>>> {
    if let Some(list) = file.strings_attr(path, name)? {
        return Ok(Some(list));
    }
    let mut out: Option<Vec<String>> = None;
    for i in 0.. {
        match file.strings_attr(path, &format!("{name}{i}"))? {
            Some(chunk) => out.get_or_insert_with(Vec::new).extend(chunk),
            None => break,
        }
    }
    Ok(out)
}

fn read_legacy(file: &H5File, root: &str, format: KerasFormat) -> Result<KerasWeights> {
    let names = names_attr(file, root, "layer_names")?.unwrap_or_default();
    let mut layers: Vec<KerasLayerWeights> = Vec::new();
    for layer in names {
        let group = join(root, &layer);
        let weight_names = names_attr(file, &group, "weight_names")?.ok_or_else(|| {
            Error::Config(format!("{}: layer group {group:?} has no `weight_names` attribute (corrupt legacy file?)", file.what()))
        })?;
        for wn in weight_names {
            let value = float_dataset(file, &join(&group, &wn))?;
            // `inner/conv/kernel:0` belongs to layer `conv` (of nested model `inner`).
            let bare = wn.split(':').next().unwrap_or(&wn);
            let parts: Vec<&str> = bare.split('/').collect();
            let owner = if parts.len() >= 2 { parts[parts.len() - 2] } else { layer.as_str() };
            let short = parts.last().copied().unwrap_or(bare).to_string();
            match layers.last_mut() {
                Some(l) if l.name == owner => l.weights.push((short, value)),
                _ => {
                    if layers.iter().any(|l| l.name == owner) {
                        return Err(Error::Config(format!("{}: the weights of layer {owner:?} are listed in two places", file.what())));
                    }
                    layers.push(KerasLayerWeights { name: owner.to_string(), weights: vec![(short, value)] });
                }
            }
        }
    }
    let config = match file.string_attr("/", "model_config")? {
        Some(s) => Some(
            serde_json::from_str(&s)
                .map_err(|e| Error::Config(format!("{}: the `model_config` attribute is not valid JSON: {e}", file.what())))?,
        ),
        None => None,
    };
    let keras_version = file.string_attr(root, "keras_version")?;
    Ok(KerasWeights { format, layers, config, keras_version })
}

/// How [`assign_keras_weights`] matches file layers to model layers (Keras's `load_weights`
/// arguments): with `by_name`, only the layers both sides have are loaded; without it, every
/// layer with weights must be on both sides. `skip_mismatch` (with `by_name`) skips layers
/// whose weight count or shapes differ instead of failing.
pub use crate::model::io::LoadOptions;

/// What a load did, layer by layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Model layers whose weights were set from the file.
    pub loaded: Vec<String>,
    /// Model layers skipped for a count or shape mismatch (`skip_mismatch`), with the reason.
    pub skipped: Vec<(String, String)>,
    /// Model layers with weights that the file does not hold (left unchanged; `by_name`).
    pub missing_in_file: Vec<String>,
    /// File layers the model does not have (ignored; `by_name`).
    pub unused_in_file: Vec<String>,
}

/// The model's weights grouped by layer (the part of a weight's name before its last `/`),
/// in model order.
pub fn model_layers(model: &dyn Layer) -> Vec<(String, Vec<Variable>)> {
    let mut out: Vec<(String, Vec<Variable>)> = Vec::new();
    for v in model.weights() {
        let layer = v.name().rsplit_once('/').map_or(v.name(), |(l, _)| l).to_string();
        match out.iter_mut().find(|(n, _)| *n == layer) {
            Some((_, vs)) => vs.push(v),
            None => out.push((layer, vec![v])),
        }
    }
    out
}

fn shapes(ts: impl Iterator<Item = String>) -> String {
    format!("[{}]", ts.collect::<Vec<_>>().join(", "))
}

fn listed(names: &[&str]) -> String {
    const MAX: usize = 12;
    if names.len() <= MAX {
        format!("{names:?}")
    } else {
        format!("{:?} and {} more", &names[..MAX], names.len() - MAX)
    }
}

/// Sets the weights of `model` (built) from `file`, matching layers by Keras name and each
/// layer's weights by position (Keras order), checking every shape before changing anything.
///
/// # Errors
/// `Config` naming the layers: without `by_name`, a model layer the file lacks or a file layer
/// the model lacks; a weight count or shape mismatch (unless `skip_mismatch`);
/// `skip_mismatch` without `by_name` (as in Keras).
pub fn assign_keras_weights(model: &dyn Layer, file: &KerasWeights, what: &str, opts: LoadOptions) -> Result<LoadReport> {
    if opts.skip_mismatch && !opts.by_name {
        return Err(Error::Config(format!("{what}: skip_mismatch requires by_name (as in Keras)")));
    }
    let ours = model_layers(model);
    // A model with no weights at all (pooling, reshaping, activations) loads a file that has
    // none either, as Keras does; an empty model with weights to load was not built yet.
    if ours.is_empty() && !file.layers.iter().any(|l| !l.weights.is_empty()) && model.base().is_built() {
        return Ok(LoadReport::default());
    }
    if ours.is_empty() {
        return Err(Error::Config(format!("{}: no weights to load into (build the model or call it on data first)", model.name())));
    }
    let theirs: HashMap<&str, &KerasLayerWeights> = file.layers.iter().map(|l| (l.name.as_str(), l)).collect();
    let our_names: HashSet<&str> = ours.iter().map(|(n, _)| n.as_str()).collect();
    let file_names: Vec<&str> = file.layers.iter().map(|l| l.name.as_str()).collect();
    let mut report = LoadReport {
        unused_in_file: file_names.iter().filter(|n| !our_names.contains(**n)).map(|n| n.to_string()).collect(),
        ..LoadReport::default()
    };
    let mut plan: Vec<(&Variable, &Tensor)> = Vec::new();
    for (name, vars) in &ours {
        let Some(src) = theirs.get(name.as_str()) else {
            if opts.by_name {
                report.missing_in_file.push(name.clone());
                continue;
            }
            return Err(Error::Config(format!(
                "{what}: model {} has layer {name:?} with weights, but the file holds no weights for it; the file's layers are {} \
                 (pass by_name to load only the layers both have)",
                model.name(),
                listed(&file_names)
            )));
        };
        let fits = src.weights.len() == vars.len() && src.weights.iter().zip(vars).all(|((_, t), v)| t.shape() == v.value().shape());
        if !fits {
            let reason = format!(
                "the file holds {} weights of shapes {} but the model's layer has {} of shapes {}",
                src.weights.len(),
                shapes(src.weights.iter().map(|(_, t)| t.shape().to_string())),
                vars.len(),
                shapes(vars.iter().map(|v| v.value().shape().to_string()))
            );
            if opts.skip_mismatch {
                report.skipped.push((name.clone(), reason));
                continue;
            }
            return Err(Error::Config(format!("{what}: layer {name:?}: {reason}")));
        }
        plan.extend(vars.iter().zip(src.weights.iter().map(|(_, t)| t)));
        report.loaded.push(name.clone());
    }
    if !opts.by_name && !report.unused_in_file.is_empty() {
        let unused: Vec<&str> = report.unused_in_file.iter().map(String::as_str).collect();
        return Err(Error::Config(format!(
            "{what}: the file holds weights for layers model {} does not have: {} (pass by_name to ignore them)",
            model.name(),
            listed(&unused)
        )));
    }
    for (v, t) in plan {
        v.assign(&t.to(v.value().device())?)?;
    }
    Ok(report)
}

/// Reads a Keras weight file and loads it into `model` (see [`assign_keras_weights`]).
///
/// # Errors
/// As [`read_keras_weights`] and [`assign_keras_weights`].
pub fn load_keras_weights(model: &dyn Layer, path: impl AsRef<Path>, opts: LoadOptions) -> Result<LoadReport> {
    let path = path.as_ref();
    let file = read_keras_weights(path)?;
    assign_keras_weights(model, &file, &path.display().to_string(), opts)
}
