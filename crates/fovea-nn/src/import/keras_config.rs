//! Rebuilding a model from a Keras model config (a `.keras` file's `config.json`, a legacy
//! `.h5` file's `model_config`), so such files load without building the model in code.
//!
//! Keras configs name layer arguments as Fovea's do; what differs is translated here: the
//! serialized initializers and regularizers (`{"class_name": "GlorotUniform", "config": ..}`),
//! `DepthwiseConv2D`'s `depthwise_*` arguments, input layers, and the functional graph
//! (Keras's `inbound_nodes` with `keras_history` references, Keras 3 and Keras 2 forms).
//! Layers Fovea lacks, multi-output layers and tensors passed as keyword arguments are errors
//! naming the layer.

use super::keras_h5::{assign_keras_weights, read_keras_weights, LoadOptions};
use crate::callbacks::Callback;
use crate::layer::Layer;
use crate::model::functional::{functional_from_config, Functional};
use crate::model::registry::sequential_from_config;
use crate::model::{FitOptions, History, Model, Sequential};
use crate::{Error, Result};
use fovea_core::Tensor;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// A model rebuilt from a Keras config: Keras's two model classes.
pub enum KerasModel {
    /// From a `Sequential` config.
    Sequential(Sequential),
    /// From a `Functional` (or `Model`) config.
    Functional(Functional),
}

impl KerasModel {
    /// The model as a layer (for calling, weights, `load_keras_weights`).
    pub fn as_layer(&self) -> &dyn Layer {
        match self {
            KerasModel::Sequential(m) => m,
            KerasModel::Functional(m) => m,
        }
    }

    /// The model as a trainable model (compile, fit, evaluate, predict), whichever class it is.
    pub fn as_model(&self) -> &(dyn Model + 'static) {
        match self {
            KerasModel::Sequential(m) => m,
            KerasModel::Functional(m) => m,
        }
    }

    /// Trains the model (`Model::fit`, which needs the concrete class, so it is here too).
    ///
    /// # Errors
    /// As [`Model::fit`].
    pub fn fit(&self, x: &Tensor, y: &Tensor, options: FitOptions) -> Result<History> {
        match self {
            KerasModel::Sequential(m) => m.fit(x, y, options),
            KerasModel::Functional(m) => m.fit(x, y, options),
        }
    }

    /// Trains the model with callbacks (`Model::fit_with_callbacks`).
    ///
    /// # Errors
    /// As [`Model::fit_with_callbacks`].
    pub fn fit_with_callbacks(&self, x: &Tensor, y: &Tensor, options: FitOptions, callbacks: &mut [&mut dyn Callback]) -> Result<History> {
        match self {
            KerasModel::Sequential(m) => m.fit_with_callbacks(x, y, options, callbacks),
            KerasModel::Functional(m) => m.fit_with_callbacks(x, y, options, callbacks),
        }
    }

    /// The model, owned, as a trainable model.
    pub fn into_model(self) -> Box<dyn Model> {
        match self {
            KerasModel::Sequential(m) => Box::new(m),
            KerasModel::Functional(m) => Box::new(m),
        }
    }
}

/// A Keras model is used as any model: `model.compile(..)`, `model.predict(..)`,
/// `model.evaluate(..)` without matching on its class (`fit` is an inherent method above).
impl std::ops::Deref for KerasModel {
    type Target = dyn Model;

    fn deref(&self) -> &Self::Target {
        self.as_model()
    }
}

fn bad(what: &str) -> Error {
    Error::Config(format!("Keras model config: {what}"))
}

/// `GlorotUniform` → `glorot_uniform`, `L1L2` → `l1l2`.
fn snake(s: &str) -> String {
    let mut out = String::new();
    let mut prev: Option<char> = None;
    for ch in s.chars() {
        if ch.is_ascii_uppercase() && prev.is_some_and(|p| !p.is_ascii_uppercase() && !p.is_ascii_digit()) {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
        prev = Some(ch);
    }
    out
}

fn initializer(layer: &str, key: &str, v: &Value) -> Result<Value> {
    match v {
        Value::String(s) => Ok(json!({"class_name": snake(s)})),
        Value::Object(o) => {
            let class =
                o.get("class_name").and_then(Value::as_str).ok_or_else(|| bad(&format!("layer {layer:?}: {key} has no class_name")))?;
            let mut out = Map::new();
            out.insert("class_name".into(), json!(snake(class)));
            if let Some(Value::Object(c)) = o.get("config") {
                for (k, v) in c {
                    // Seeds and axis hints do not change the distribution Fovea samples from.
                    if !matches!(k.as_str(), "seed" | "input_axes" | "output_axes") {
                        out.insert(k.clone(), if k == "distribution" && v == "normal" { json!("truncated_normal") } else { v.clone() });
                    }
                }
            }
            Ok(Value::Object(out))
        }
        other => Err(bad(&format!("layer {layer:?}: {key} {other} is not an initializer"))),
    }
}

fn regularizer(layer: &str, key: &str, v: &Value) -> Result<Value> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Object(o) => {
            let c = o.get("config").cloned().unwrap_or(json!({}));
            Ok(json!({"l1": c["l1"].as_f64().unwrap_or(0.0), "l2": c["l2"].as_f64().unwrap_or(0.0)}))
        }
        other => Err(bad(&format!("layer {layer:?}: {key} {other} is not a regularizer"))),
    }
}

/// Keras arguments whose non-default values Fovea's layers do not implement: an error naming
/// the layer, rather than a model that loads and computes something else. Checked by
/// [`crate::model::registry::layer_from_config`], so Keras documents given as specs are too.
pub(crate) fn unsupported_option(class: &str, name: &str, map: &Map<String, Value>) -> Result<()> {
    let refuse = |key: &str, v: &Value, why: &str| Err(bad(&format!("layer {name:?} ({class}): {key} {v} is not supported ({why})")));
    let is = |key: &str, ok: &dyn Fn(&Value) -> bool| map.get(key).filter(|v| !v.is_null() && !ok(v));
    let minus_one = |v: &Value| v == &json!(-1) || v == &json!([-1]);
    if let Some(v) = is("data_format", &|v| v == "channels_last") {
        return refuse("data_format", v, "Fovea's layers are channels_last (NHWC)");
    }
    if let Some(v) = is("activity_regularizer", &|_| false) {
        return refuse("activity_regularizer", v, "only kernel and bias regularizers are");
    }
    if let Some(v) = is("padding", &|v| v != "causal") {
        return refuse("padding", v, "expected \"valid\" or \"same\"");
    }
    match class {
        "LayerNormalization" => {
            if let Some(v) = is("axis", &minus_one) {
                return refuse("axis", v, "Fovea normalizes over the last axis");
            }
            for key in ["center", "scale"] {
                if let Some(v) = is(key, &|v| v == &json!(true)) {
                    return refuse(key, v, "Fovea's LayerNormalization always has beta and gamma");
                }
            }
            if let Some(v) = is("rms_scaling", &|v| v == &json!(false)) {
                return refuse("rms_scaling", v, "Fovea's LayerNormalization subtracts the mean");
            }
        }
        "ReLU" => {
            for key in ["negative_slope", "threshold"] {
                if let Some(v) = is(key, &|v| v.as_f64() == Some(0.0)) {
                    return refuse(key, v, "Fovea's ReLU takes max_value only; use LeakyReLU for a slope");
                }
            }
        }
        "UpSampling2D" => {
            if let Some(v) = is("interpolation", &|v| v == "nearest" || v == "bilinear") {
                return refuse("interpolation", v, "expected \"nearest\" or \"bilinear\"");
            }
        }
        "Dropout" => {
            if let Some(v) = is("noise_shape", &|_| false) {
                return refuse("noise_shape", v, "Fovea's Dropout drops single values");
            }
        }
        "Dense" => {
            if let Some(v) = is("lora_rank", &|_| false) {
                return refuse("lora_rank", v, "LoRA layers are not");
            }
        }
        _ => {}
    }
    Ok(())
}

/// A Keras layer config in Fovea's form.
fn layer_config(class: &str, c: &Value) -> Result<Value> {
    let name = c["name"].as_str().unwrap_or("?").to_string();
    let Value::Object(map) = c else { return Err(bad(&format!("layer {name:?} has no config object"))) };
    let mut out = Map::new();
    for (k, v) in map {
        // Fovea configures a depthwise (or separable) convolution's kernels through the
        // `kernel_*` arguments; Keras names them `depthwise_*` (and `pointwise_*`, whose
        // initializer matters little once the file's weights are loaded).
        let key = match (class, k.as_str()) {
            ("DepthwiseConv2D" | "SeparableConv2D", "depthwise_initializer") => "kernel_initializer",
            ("DepthwiseConv2D" | "SeparableConv2D", "depthwise_regularizer") => "kernel_regularizer",
            _ => k.as_str(),
        };
        let v = if key.ends_with("_initializer") {
            initializer(&name, key, v)?
        } else if key.ends_with("_regularizer") {
            regularizer(&name, key, v)?
        } else if key == "activation" && !v.is_string() {
            return Err(bad(&format!("layer {name:?}: activation {v} is not a built-in activation name")));
        } else {
            v.clone()
        };
        out.insert(key.to_string(), v);
    }
    if matches!(class, "DepthwiseConv2D" | "SeparableConv2D") && !out.contains_key("kernel_regularizer") {
        out.insert("kernel_regularizer".into(), Value::Null);
    }
    Ok(Value::Object(out))
}

/// The input shape (batch excluded) of a Keras `InputLayer` config, or of a Keras 2 first
/// layer's `batch_input_shape`.
fn input_shape(c: &Value) -> Option<Vec<usize>> {
    let s = c.get("batch_shape").or_else(|| c.get("batch_input_shape"))?.as_array()?;
    s.iter().skip(1).map(|d| d.as_u64().map(|d| d as usize)).collect()
}

fn entry_config(class: &str, entry: &Value) -> Result<Value> {
    match class {
        "Functional" | "Model" => Ok(json!({"class_name": "Functional", "config": functional_config(&entry["config"])?})),
        "Sequential" => Ok(json!({"class_name": "Sequential", "config": sequential_config(&entry["config"])?.0})),
        _ => Ok(json!({"class_name": class, "config": layer_config(class, &entry["config"])?})),
    }
}

/// A Keras `Sequential` config in Fovea's form, and its input shape when it records one.
fn sequential_config(c: &Value) -> Result<(Value, Option<Vec<usize>>)> {
    let mut shape = None;
    let mut layers = Vec::new();
    for entry in c["layers"].as_array().ok_or_else(|| bad("a Sequential config without a \"layers\" list"))? {
        let class = entry["class_name"].as_str().ok_or_else(|| bad("a layer without class_name"))?;
        if shape.is_none() {
            shape = input_shape(&entry["config"]);
        }
        if class != "InputLayer" {
            layers.push(entry_config(class, entry)?);
        }
    }
    Ok((json!({"name": c["name"], "layers": layers}), shape))
}

/// A `[layer, node, tensor]` reference (`keras_history`, a Keras 2 inbound entry); `None` when
/// it is not one. (`Vec` and `Map` indexing would panic on a damaged file: fuzz/keras_config.)
fn tensor_ref(v: &Value) -> Option<(String, u64, u64)> {
    match v.as_array()?.as_slice() {
        [layer, node, tensor, ..] => Some((layer.as_str()?.to_string(), node.as_u64()?, tensor.as_u64()?)),
        _ => None,
    }
}

/// `(layer, node index, tensor index)` of every Keras tensor in a node's arguments (Keras 3
/// form).
fn history(v: &Value, out: &mut Vec<(String, u64, u64)>) -> std::result::Result<(), String> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| history(i, out)),
        Value::Object(o) if o.get("class_name") == Some(&json!("__keras_tensor__")) => {
            let h = o.get("config").map_or(&Value::Null, |c| &c["keras_history"]);
            out.push(tensor_ref(h).ok_or_else(|| format!("a Keras tensor with keras_history {h}, not [layer, node, tensor]"))?);
            Ok(())
        }
        // Tensors inside a dict argument (`{"x": tensor}`) count too.
        Value::Object(o) => o.values().try_for_each(|i| history(i, out)),
        _ => Ok(()),
    }
}

/// The tensors a layer call (one inbound node) reads, Keras 3 (`{"args", "kwargs"}`) or
/// Keras 2 (`[[layer, node, tensor, kwargs], ...]`) form.
fn node_inputs(layer: &str, node: &Value) -> Result<Vec<(String, u64, u64)>> {
    let mut refs = Vec::new();
    match node {
        Value::Object(o) => {
            history(o.get("args").unwrap_or(&Value::Null), &mut refs).map_err(|e| bad(&format!("layer {layer:?}: {e}")))?;
            let mut in_kwargs = Vec::new();
            history(o.get("kwargs").unwrap_or(&Value::Null), &mut in_kwargs).map_err(|e| bad(&format!("layer {layer:?}: {e}")))?;
            if !in_kwargs.is_empty() {
                return Err(bad(&format!("layer {layer:?} receives tensors as keyword arguments, which Fovea does not support")));
            }
        }
        Value::Array(items) => {
            for i in items {
                refs.push(
                    tensor_ref(i).ok_or_else(|| bad(&format!("layer {layer:?}: inbound entry {i} is not [layer, node, tensor, ...]")))?,
                );
            }
        }
        other => return Err(bad(&format!("layer {layer:?}: unreadable inbound node {other}"))),
    }
    if refs.is_empty() {
        return Err(bad(&format!("layer {layer:?}: an inbound node that reads no tensor: {node}")));
    }
    Ok(refs)
}

/// `input_layers` / `output_layers`: one `[name, node, tensor]` or a list of them.
fn endpoints(v: &Value, what: &str) -> Result<Vec<(String, u64)>> {
    let list = v.as_array().ok_or_else(|| bad(&format!("no {what} list")))?;
    let items: Vec<&Value> = if list.first().is_some_and(Value::is_string) { vec![v] } else { list.iter().collect() };
    items
        .iter()
        .map(|i| Ok((i[0].as_str().ok_or_else(|| bad(&format!("bad {what} entry {i}")))?.to_string(), i[1].as_u64().unwrap_or(0))))
        .collect()
}

/// A Keras functional config in Fovea's form (layers, inputs, nodes, outputs).
fn functional_config(c: &Value) -> Result<Value> {
    let entries = c["layers"].as_array().ok_or_else(|| bad("a functional config without a \"layers\" list"))?;
    let mut refs: HashMap<(String, u64), String> = HashMap::new();
    let mut inputs = Vec::new();
    for (k, (name, node)) in endpoints(&c["input_layers"], "input_layers")?.into_iter().enumerate() {
        let entry = entries.iter().find(|e| e["name"] == name.as_str() || e["config"]["name"] == name.as_str());
        let shape = entry.and_then(|e| input_shape(&e["config"])).ok_or_else(|| bad(&format!("input {name:?} has no known shape")))?;
        inputs.push(json!({"name": name, "shape": shape}));
        refs.insert((name, node), format!("i{k}"));
    }
    let mut layers = Vec::new();
    // Every call of every layer: (Fovea layer index, Keras layer name, node index, inputs).
    let mut pending = Vec::new();
    for entry in entries {
        let class = entry["class_name"].as_str().ok_or_else(|| bad("a layer without class_name"))?;
        if class == "InputLayer" {
            continue;
        }
        let name = entry["name"].as_str().or_else(|| entry["config"]["name"].as_str()).unwrap_or("").to_string();
        for (n, node) in entry["inbound_nodes"].as_array().into_iter().flatten().enumerate() {
            let ins = node_inputs(&name, node)?;
            if let Some((_, _, t)) = ins.iter().find(|(_, _, t)| *t != 0) {
                return Err(bad(&format!("layer {name:?} reads output {t} of a multi-output layer, which Fovea does not support")));
            }
            pending.push((layers.len(), name.clone(), n as u64, ins));
        }
        layers.push(entry_config(class, entry)?);
    }
    let mut nodes = Vec::new();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|(index, name, n, ins)| {
            let resolved: Option<Vec<String>> = ins.iter().map(|(l, k, _)| refs.get(&(l.clone(), *k)).cloned()).collect();
            let Some(resolved) = resolved else { return true };
            refs.insert((name.clone(), *n), format!("n{}", nodes.len()));
            nodes.push(json!({"layer": index, "inputs": resolved}));
            false
        });
        if pending.len() == before {
            let (_, name, _, ins) = &pending[0];
            return Err(bad(&format!("layer {name:?} reads {ins:?}, which no layer of the graph produces")));
        }
    }
    let outputs: Vec<String> = endpoints(&c["output_layers"], "output_layers")?
        .into_iter()
        .map(|(l, n)| refs.get(&(l.clone(), n)).cloned().ok_or_else(|| bad(&format!("output {l:?} is not produced by the graph"))))
        .collect::<Result<_>>()?;
    Ok(json!({"name": c["name"], "layers": layers, "inputs": inputs, "nodes": nodes, "outputs": outputs}))
}

/// Builds the model a Keras model config (`{"class_name", "config"}`) describes.
///
/// # Errors
/// `Config` naming the layer for unsupported layers or arguments, a broken graph, or a
/// `Sequential` without a recorded input shape.
pub fn model_from_keras_config(config: &Value) -> Result<KerasModel> {
    match config["class_name"].as_str() {
        Some("Sequential") => {
            let (c, shape) = sequential_config(&config["config"])?;
            let shape = shape.ok_or_else(|| bad("the Sequential model records no input shape, so it cannot be built"))?;
            Ok(KerasModel::Sequential(sequential_from_config(&c, Some(&shape))?))
        }
        Some("Functional" | "Model") => Ok(KerasModel::Functional(functional_from_config(&functional_config(&config["config"])?)?)),
        Some(other) => Err(bad(&format!("class {other:?} is not a Keras model class (expected Sequential or Functional)"))),
        None => Err(bad("no class_name at the top")),
    }
}

/// Loads a whole Keras model — architecture and weights — from a `.keras` file or a legacy
/// full-model `.h5`.
///
/// # Errors
/// As [`read_keras_weights`]; `Config` for a weights-only file (no architecture), as
/// [`model_from_keras_config`], and when the weights do not fit the rebuilt model.
pub fn load_keras_model(path: impl AsRef<Path>) -> Result<KerasModel> {
    let path = path.as_ref();
    let file = read_keras_weights(path)?;
    let config = file.config.as_ref().ok_or_else(|| {
        Error::Config(format!(
            "{}: holds weights only (no model config); build the model in code and load the weights into it",
            path.display()
        ))
    })?;
    let model = model_from_keras_config(config).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
        other => other,
    })?;
    assign_keras_weights(model.as_layer(), &file, &path.display().to_string(), LoadOptions::default())?;
    Ok(model)
}

/// Loads a Keras model from its architecture as `model.to_json()` writes it (a `.json` file)
/// and its weights as `model.save_weights` writes them (`.weights.h5`; a legacy `.h5` or a
/// `.keras` file works too).
///
/// # Errors
/// `Config` naming `config_path` for an unreadable or malformed JSON document, as
/// [`model_from_keras_config`] (prefixed with the path), as [`read_keras_weights`], and when the
/// weights do not fit the rebuilt model.
pub fn load_keras_json(config_path: impl AsRef<Path>, weights_path: impl AsRef<Path>) -> Result<KerasModel> {
    let (config_path, weights_path) = (config_path.as_ref(), weights_path.as_ref());
    let what = config_path.display();
    let text = std::fs::read_to_string(config_path).map_err(|e| Error::Config(format!("cannot read {what}: {e}")))?;
    let config: Value = serde_json::from_str(&text).map_err(|e| Error::Config(format!("{what}: not a JSON document: {e}")))?;
    let model = model_from_keras_config(&config).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("{what}: {m}")),
        other => other,
    })?;
    let file = read_keras_weights(weights_path)?;
    assign_keras_weights(model.as_layer(), &file, &weights_path.display().to_string(), LoadOptions::default())?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_class_names_become_fovea_snake_case() {
        for (keras, fovea) in [
            ("GlorotUniform", "glorot_uniform"),
            ("HeNormal", "he_normal"),
            ("VarianceScaling", "variance_scaling"),
            ("L1L2", "l1l2"),
            ("Zeros", "zeros"),
        ] {
            assert_eq!(snake(keras), fovea);
        }
        let init = initializer(
            "d",
            "kernel_initializer",
            &json!({"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.5, "seed": 3}}),
        );
        assert_eq!(init.unwrap(), json!({"class_name": "random_normal", "mean": 0.0, "stddev": 0.5}));
        assert_eq!(regularizer("d", "r", &json!({"class_name": "L2", "config": {"l2": 0.25}})).unwrap(), json!({"l1": 0.0, "l2": 0.25}));
        let e = initializer("d", "kernel_initializer", &json!(3)).unwrap_err().to_string();
        assert!(e.contains("layer \"d\": kernel_initializer 3 is not an initializer"), "{e}");
    }

    fn graph(layer: Value) -> Value {
        json!({"class_name": "Functional", "config": {
            "name": "g",
            "layers": [{"class_name": "InputLayer", "name": "in", "config": {"batch_shape": [null, 3], "name": "in"}, "inbound_nodes": []}, layer],
            "input_layers": [["in", 0, 0]],
            "output_layers": [["out", 0, 0]]
        }})
    }

    fn call(from: &str, tensor: u64) -> Value {
        json!([{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [from, 0, tensor]}}], "kwargs": {}}])
    }

    #[test]
    fn unsupported_configs_are_named() {
        let err = |c: Value| model_from_keras_config(&c).err().expect("an error").to_string();
        let e = err(graph(
            json!({"class_name": "MultiHeadAttention", "name": "out", "config": {"name": "out"}, "inbound_nodes": call("in", 0)}),
        ));
        assert!(e.contains("unknown layer type \"MultiHeadAttention\""), "{e}");
        let dense =
            |nodes: Value| json!({"class_name": "Dense", "name": "out", "config": {"name": "out", "units": 2}, "inbound_nodes": nodes});
        let e = err(graph(dense(call("ghost", 0))));
        assert!(e.contains("layer \"out\" reads [(\"ghost\", 0, 0)], which no layer of the graph produces"), "{e}");
        let e = err(graph(dense(call("in", 1))));
        assert!(e.contains("layer \"out\" reads output 1 of a multi-output layer"), "{e}");
        let kw = json!([{"args": [], "kwargs": {"x": {"class_name": "__keras_tensor__", "config": {"keras_history": ["in", 0, 0]}}}}]);
        let e = err(graph(dense(kw)));
        assert!(e.contains("layer \"out\" receives tensors as keyword arguments"), "{e}");
        let e = err(
            json!({"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "Flatten", "config": {"name": "f"}}]}}),
        );
        assert!(e.contains("the Sequential model records no input shape"), "{e}");
        let e = err(
            json!({"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "Dense", "config": {"name": "d", "batch_shape": [null, 2], "activation": {"class_name": "custom"}}}]}}),
        );
        assert!(e.contains("layer \"d\": activation {\"class_name\":\"custom\"} is not a built-in activation name"), "{e}");
    }

    /// Found by `fuzz/keras_config`: an inbound node without `"args"` (a `Map` index) and short
    /// `keras_history` or Keras 2 node lists (`Vec` indexes) panicked.
    #[test]
    fn damaged_graph_entries_are_errors_not_panics() {
        let dense =
            |nodes: Value| json!({"class_name": "Dense", "name": "out", "config": {"name": "out", "units": 2}, "inbound_nodes": nodes});
        let history = |h: Value| json!([{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": h}}], "kwargs": {}}]);
        for nodes in [
            json!([{"arKs": [], "kwargs": {}}]),
            json!([{"args": [{"class_name": "__keras_tensor__"}]}]),
            history(json!([])),
            history(json!(["in"])),
            json!([[["in"]]]),
            json!([[[]]]),
        ] {
            let e = model_from_keras_config(&graph(dense(nodes.clone()))).err().map(|e| e.to_string());
            let e = e.unwrap_or_else(|| panic!("{nodes} loaded"));
            assert!(e.contains("layer \"out\"") && (e.contains("no tensor") || e.contains("not [layer, node, tensor")), "{nodes}: {e}");
        }
    }

    #[test]
    fn keras_options_fovea_lacks_are_refused_not_ignored() {
        let err = |class: &str, config: Value| {
            let mut config = config;
            config["name"] = json!("out");
            let entry = json!({"class_name": class, "name": "out", "config": config, "inbound_nodes": call("in", 0)});
            model_from_keras_config(&graph(entry)).err().map(|e| e.to_string()).unwrap_or_default()
        };
        for (class, config, want) in [
            ("Dense", json!({"units": 2, "activity_regularizer": {"class_name": "L2", "config": {"l2": 0.1}}}), "activity_regularizer"),
            ("Dense", json!({"units": 2, "lora_rank": 4}), "lora_rank 4"),
            ("LayerNormalization", json!({"epsilon": 0.001, "center": false}), "center false"),
            ("LayerNormalization", json!({"epsilon": 0.001, "axis": [0]}), "axis [0]"),
            ("LayerNormalization", json!({"epsilon": 0.001, "rms_scaling": true}), "rms_scaling true"),
            ("ReLU", json!({"negative_slope": 0.1}), "negative_slope 0.1"),
            ("ReLU", json!({"threshold": 0.5}), "threshold 0.5"),
            ("Dropout", json!({"rate": 0.5, "noise_shape": [null, 1]}), "noise_shape"),
            ("Conv1D", json!({"filters": 2, "kernel_size": [2], "padding": "causal"}), "padding \"causal\""),
            ("Dense", json!({"units": 2, "data_format": "channels_first"}), "data_format \"channels_first\""),
            ("UpSampling2D", json!({"size": [2, 2], "interpolation": "bicubic"}), "interpolation \"bicubic\""),
        ] {
            let e = err(class, config);
            assert!(e.contains(&format!("layer \"out\" ({class}): {want}")) && e.contains("not supported"), "{class}: {e}");
        }
        // Defaults and nulls as Keras writes them are accepted.
        let ok = |class: &str, config: Value| unsupported_option(class, "out", config.as_object().unwrap());
        ok("LayerNormalization", json!({"axis": -1, "center": true, "scale": true, "rms_scaling": false})).unwrap();
        ok("ReLU", json!({"negative_slope": 0.0, "threshold": 0.0, "max_value": null})).unwrap();
        ok("Dense", json!({"activity_regularizer": null, "lora_rank": null, "data_format": "channels_last"})).unwrap();
        ok("Conv2D", json!({"padding": "same", "data_format": null})).unwrap();
    }
}
