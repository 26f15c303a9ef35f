//! Whole `keras.applications` models: files written by tools/fixtures/gen_keras_h5_fixtures.py
//! load into the zoo's models (which carry Keras's layer names) and give Keras's outputs.
//!
//! MobileNetV2 (alpha 0.35) is committed as a `.keras` file. ResNet50, VGG16, Xception and
//! MobileNetV2 at alpha 1.0 are too big to commit: an ignored test regenerates them with the
//! script (the Python with TensorFlow/Keras and safetensors is `FOVEA_TF_PYTHON`, default
//! `/work/venvs/tf/bin/python`) when run with `-- --ignored`, as `.ci/run` does.

use fovea_core::io::read_safetensors;
use fovea_core::{Device, Tensor};
use fovea_nn::import::keras_config::{load_keras_model, KerasModel};
use fovea_nn::import::keras_h5::{load_keras_weights, read_keras_weights, KerasFormat, LoadOptions};
use fovea_nn::model::functional::Functional;
use fovea_vision::applications::{mobilenet_v2, resnet50, vgg16, xception, AppOptions};
use std::path::{Path, PathBuf};

fn io(path: &Path) -> (Tensor, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (tensors, _) = read_safetensors(&bytes, Device::Cpu).expect("safetensors");
    let get = |k: &str| tensors.iter().find(|(n, _)| n == k).expect("tensor").1.clone();
    (get("x"), get("y").to_vec::<f32>().expect("f32"))
}

/// Softmax outputs agree to 1e-4 relative (absolute below 1e-3, where relative error is noise).
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * w.abs().max(1e-3), "{what}[{i}]: {g} vs Keras {w}");
    }
}

fn at(size: usize) -> AppOptions {
    AppOptions { input_shape: Some((size, size, 3)), classes: 10, ..AppOptions::default() }
}

fn check(model: &Functional, file: &Path, io_file: &Path) {
    let report = load_keras_weights(model, file, LoadOptions::default()).unwrap();
    assert!(report.missing_in_file.is_empty() && report.unused_in_file.is_empty(), "{report:?}");
    let (x, want) = io(io_file);
    let y = model.call_all(&[x], false).unwrap();
    assert_close(&y[0].to_vec::<f32>().unwrap(), &want, &file.display().to_string());
}

#[test]
fn mobilenet_v2_from_a_keras_file_gives_keras_outputs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras");
    let file = dir.join("mobilenet_v2_0.35.keras");
    let w = read_keras_weights(&file).unwrap();
    assert_eq!(w.format, KerasFormat::KerasZip);
    // 52 convolutions and 52 batch norms, the classifier: every layer with weights.
    assert_eq!(w.layers.len(), 105);
    assert_eq!(w.config.as_ref().unwrap()["config"]["name"], "mobilenetv2_0.35_32");
    let model = mobilenet_v2(&at(32), 0.35).unwrap();
    check(&model, &file, &dir.join("mobilenet_v2_0.35.io.safetensors"));
}

#[test]
fn mobilenet_v2_rebuilds_from_the_keras_config_alone() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras");
    let KerasModel::Functional(model) = load_keras_model(dir.join("mobilenet_v2_0.35.keras")).unwrap() else {
        panic!("MobileNetV2 is a functional model")
    };
    // The same graph as the zoo's constructor: layer for layer, by class and name.
    let zoo = mobilenet_v2(&at(32), 0.35).unwrap();
    let names = |m: &Functional| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = m.layers().iter().map(|l| (l.name().to_string(), l.class_name().to_string())).collect();
        v.sort();
        v
    };
    assert_eq!(names(&model), names(&zoo));
    let (x, want) = io(&dir.join("mobilenet_v2_0.35.io.safetensors"));
    let y = model.call_all(&[x], false).unwrap();
    assert_close(&y[0].to_vec::<f32>().unwrap(), &want, "mobilenet_v2_0.35.keras (from its config)");
}

// Ignored rather than passing when it cannot run, so a plain `cargo test` reports it as not
// run; `.ci/run` runs it with `-- --ignored`.
#[test]
#[ignore = "needs TensorFlow: run with FOVEA_TF_PYTHON=<python with tensorflow> and -- --ignored (.ci/run does)"]
fn big_keras_applications_when_enabled() {
    let python = std::env::var("FOVEA_TF_PYTHON").unwrap_or_else(|_| "/work/venvs/tf/bin/python".into());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("fovea-keras-big-{}", std::process::id()));
    let status = std::process::Command::new(&python)
        .arg(root.join("tools/fixtures/gen_keras_h5_fixtures.py"))
        .arg("--big")
        .arg(&dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(status.success(), "the fixture script failed");
    let models: [(&str, Functional); 4] = [
        ("resnet50", resnet50(&at(64)).unwrap()),
        ("vgg16", vgg16(&at(32)).unwrap()),
        ("xception", xception(&at(71)).unwrap()),
        ("mobilenet_v2", mobilenet_v2(&at(96), 1.0).unwrap()),
    ];
    for (name, model) in &models {
        for ext in ["weights.h5", "h5"] {
            check(model, &dir.join(format!("{name}.{ext}")), &dir.join(format!("{name}.io.safetensors")));
        }
        // The legacy full-model file also rebuilds from its own `model_config`.
        let KerasModel::Functional(rebuilt) = load_keras_model(dir.join(format!("{name}.h5"))).unwrap() else { panic!("{name}") };
        let (x, want) = io(&dir.join(format!("{name}.io.safetensors")));
        assert_close(&rebuilt.call_all(&[x], false).unwrap()[0].to_vec::<f32>().unwrap(), &want, &format!("{name}.h5 (from its config)"));
    }
    // A VGG file into a ResNet: no layer in common, named in the error.
    let e = load_keras_weights(&models[0].1, dir.join("vgg16.h5"), LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("vgg16.h5") && e.contains("has layer \"conv1_conv\" with weights, but the file holds no weights for it"), "{e}");
    assert!(e.contains("\"block1_conv1\""), "{e}");
    // By name only the classifier `predictions` is common, with another input width: skipped,
    // so the ResNet keeps all its weights and the report says why.
    let r = load_keras_weights(&models[0].1, dir.join("vgg16.h5"), LoadOptions { by_name: true, skip_mismatch: true }).unwrap();
    assert!(r.loaded.is_empty() && r.unused_in_file.len() == 15 && r.missing_in_file.len() == 106, "{r:?}");
    assert_eq!(
        r.skipped,
        [(
            "predictions".to_string(),
            "the file holds 2 weights of shapes [[4096, 10], [10]] but the model's layer has 2 of shapes [[2048, 10], [10]]".to_string()
        )]
    );
    std::fs::remove_dir_all(dir).unwrap();
}
