//! Keras's own files as the test: every layer class Fovea reads from Keras configs, built by
//! Keras 3 with defaults (nulls included) and other option combinations, in Sequential and
//! functional models (`tools/fixtures/gen_keras_layer_fixtures.py`). Each model loads from
//! `model.to_json()` plus `.weights.h5`, and from `.keras`, and gives Keras's output on a
//! fixed input.

use fovea_core::io::read_safetensors;
use fovea_core::testing::assert_close;
use fovea_core::{Device, Tensor};
use fovea_nn::import::keras_config::{load_keras_json, load_keras_model, model_from_keras_config, KerasModel};
use fovea_nn::import::keras_h5::{assign_keras_weights, read_keras_weights, LoadOptions};
use fovea_nn::losses::LossKind;
use fovea_nn::model::registry::BUILTIN_CLASSES;
use fovea_nn::model::FitOptions;
use fovea_nn::optimizers::Optimizer;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

const MODELS: &[&str] = &[
    "dense_activations",
    "activation_layers",
    "conv2d",
    "conv2d_transpose",
    "conv1d",
    "conv3d",
    "pooling",
    "batch_norm",
    "merge",
    "residual",
    "nested",
];

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/keras_layers/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn io() -> HashMap<String, Tensor> {
    let bytes = std::fs::read(fixture("io.safetensors")).expect("fixture");
    read_safetensors(&bytes, Device::Cpu).expect("safetensors").0.into_iter().collect()
}

fn check(what: &str, model: &KerasModel, x: &Tensor, want: &Tensor) {
    let y = model.as_layer().call(std::slice::from_ref(x), false).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(y.shape().dims(), want.shape().dims(), "{what}: output shape");
    assert_close(what, &y.to_vec::<f32>().unwrap(), &want.to_vec::<f32>().unwrap(), 1e-4, 1e-5);
}

fn from_json(name: &str) -> KerasModel {
    let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
    let config: Value = serde_json::from_str(&text).unwrap();
    let model = model_from_keras_config(&config).unwrap_or_else(|e| panic!("{name}.json: {e}"));
    let path = fixture(&format!("{name}.weights.h5"));
    let weights = read_keras_weights(&path).unwrap();
    assign_keras_weights(model.as_layer(), &weights, &path, LoadOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    model
}

#[test]
fn json_and_weights_h5_give_keras_outputs() {
    let io = io();
    for name in MODELS {
        check(&format!("{name}.json + {name}.weights.h5"), &from_json(name), &io[&format!("{name}.x")], &io[&format!("{name}.y")]);
    }
}

#[test]
fn keras_files_give_keras_outputs() {
    let io = io();
    for name in MODELS {
        let model = load_keras_model(fixture(&format!("{name}.keras"))).unwrap_or_else(|e| panic!("{name}.keras: {e}"));
        check(&format!("{name}.keras"), &model, &io[&format!("{name}.x")], &io[&format!("{name}.y")]);
    }
}

/// The classes of a config's layers, nested models included.
fn classes(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            if let (Some(Value::String(c)), Some(Value::Object(_))) = (o.get("class_name"), o.get("config")) {
                out.insert(c.clone());
            }
            o.values().for_each(|v| classes(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| classes(v, out)),
        _ => {}
    }
}

#[test]
fn the_fixtures_cover_every_keras_layer_class_fovea_reads() {
    let mut seen = BTreeSet::new();
    for name in MODELS {
        let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
        classes(&serde_json::from_str(&text).unwrap(), &mut seen);
    }
    // Fovea's own classes that Keras 3 does not have.
    let fovea_only = ["LocalResponseNormalization", "Lambda"];
    let missing: Vec<&&str> = BUILTIN_CLASSES.iter().filter(|c| !seen.contains(**c) && !fovea_only.contains(c)).collect();
    assert!(missing.is_empty(), "layer classes without a Keras fixture: {missing:?}");
}

/// An imported model is a model like any other: compile, fit, evaluate and predict without
/// matching on its class, and it keeps computing Keras's outputs until it trains.
#[test]
fn an_imported_keras_model_trains_like_any_model() {
    let io = io();
    // A softmax head, and a log_softmax one read as logits (softmax of log_softmax is softmax).
    for (name, from_logits) in [("merge", false), ("dense_activations", true)] {
        let model = load_keras_json(fixture(&format!("{name}.json")), fixture(&format!("{name}.weights.h5"))).unwrap();
        let (x, want) = (&io[&format!("{name}.x")], &io[&format!("{name}.y")]);
        assert_close(name, &model.predict(x, 2).unwrap().to_vec::<f32>().unwrap(), &want.to_vec::<f32>().unwrap(), 1e-4, 1e-5);
        let y = Tensor::from_vec(vec![0i64, want.dims()[1] as i64 - 1], [2], Device::Cpu).unwrap();
        model.compile(Optimizer::adam(0.01), LossKind::SparseCategoricalCrossentropy { from_logits }.into(), &[]).unwrap();
        let before = model.evaluate(x, &y, 2).unwrap()["loss"];
        let h = model.fit(x, &y, FitOptions { epochs: 30, batch_size: 2, verbose: 0, ..Default::default() }).unwrap();
        let after = model.evaluate(x, &y, 2).unwrap()["loss"];
        assert!(after < 0.5 * before, "{name}: loss {before} -> {after} ({:?})", h.history["loss"]);
        // Boxed, it is still the same (trained) model.
        let trained = model.predict(x, 2).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(model.into_model().predict(x, 2).unwrap().to_vec::<f32>().unwrap(), trained);
    }
}
