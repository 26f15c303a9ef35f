//! `fovea convert` on Keras files: the committed `keras.applications` MobileNetV2 (alpha 0.35,
//! 32×32, 10 classes, written by tools/fixtures/gen_keras_h5_fixtures.py with its outputs on a
//! fixed input) converts from its `.keras` file and from the bare `.weights.h5` inside it, and
//! the converted model gives Keras's outputs; mismatched and damaged files are clear errors.
//! Without `--arch`, any Keras model converts: a `.keras` file, or `model.to_json()` with
//! `--weights` (tools/fixtures/gen_keras_layer_fixtures.py's models).

use fovea::core::io::read_safetensors;
use fovea::core::{Device, Tensor};
use fovea::nn::import::keras_zip::read_zip;
use fovea::nn::model::io::{load_functional, read_weights};
use fovea::nn::model::{Model, SavedModel};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fovea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fovea")).args(args).output().expect("run fovea");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// Keras's input `x` and output `y` for the MobileNetV2 fixture.
fn keras_io() -> (Tensor, Vec<f32>) {
    let bytes = std::fs::read(fixture("fovea-vision/tests/fixtures/keras/mobilenet_v2_0.35.io.safetensors")).unwrap();
    let (tensors, _) = read_safetensors(&bytes, Device::Cpu).unwrap();
    let get = |k: &str| tensors.iter().find(|(n, _)| n == k).unwrap().1.clone();
    (get("x"), get("y").to_vec::<f32>().unwrap())
}

/// The converted model's softmax outputs agree with Keras's to 1e-4 relative.
fn assert_matches_keras(converted: &Path) {
    let (x, want) = keras_io();
    let got = load_functional(converted).unwrap().predict(&x, 2).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * w.abs().max(1e-3), "{}[{i}]: {g} vs Keras {w}", converted.display());
    }
}

#[test]
fn convert_takes_keras_files_and_keeps_keras_outputs() {
    let dir = std::env::temp_dir().join(format!("fovea-convert-keras-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keras = fixture("fovea-vision/tests/fixtures/keras/mobilenet_v2_0.35.keras");
    let out = dir.join("mnv2.safetensors");
    let o = out.to_str().unwrap();

    // The .keras file: input size from its config, classes from its classifier.
    let (ok, stdout, err) = fovea(&["convert", keras.to_str().unwrap(), "--arch", "mobilenet_v2", "--alpha", "0.35", "-o", o]);
    assert!(ok, "{err}");
    assert!(stdout.contains("Keras mobilenet_v2, 10 classes, 105 layers with weights"), "{stdout}");
    assert_matches_keras(&out);
    assert_eq!(read_weights(&out).unwrap().metadata["fovea.preprocess"], "tf");

    // The bare weights file has no config, so the input size comes from --input-shape.
    let entries = read_zip(&std::fs::read(&keras).unwrap(), "fixture").unwrap();
    let (_, weights) = entries.into_iter().find(|(n, _)| n == "model.weights.h5").expect("model.weights.h5 in the .keras zip");
    let h5 = dir.join("mnv2.weights.h5");
    std::fs::write(&h5, &weights).unwrap();
    let h5 = h5.to_str().unwrap();
    let (ok, _, err) = fovea(&["convert", h5, "--arch", "mobilenet_v2", "--alpha", "0.35", "--input-shape", "32x32x3", "-o", o]);
    assert!(ok, "{err}");
    assert_matches_keras(&out);

    // Mismatches: another architecture, another width, options that do not apply.
    let (ok, _, err) = fovea(&["convert", h5, "--arch", "resnet50", "-o", o]);
    assert!(
        !ok && err.contains("mnv2.weights.h5")
            && err.contains("has layer \"conv1_conv\" with weights, but the file holds no weights for it"),
        "{err}"
    );
    let (ok, _, err) = fovea(&["convert", h5, "--arch", "mobilenet_v2", "-o", o]);
    assert!(
        !ok && err.contains(
            "layer \"Conv1\": the file holds 1 weights of shapes [[3, 3, 3, 16]] but the model's layer has 1 of shapes [[3, 3, 3, 32]]"
        ),
        "{err}"
    );
    let (ok, _, err) = fovea(&["convert", h5, "--arch", "vgg16", "--alpha", "0.35", "-o", o]);
    assert!(!ok && err.contains("--alpha applies to mobilenet and mobilenet_v2, not vgg16"), "{err}");
    let (ok, _, err) = fovea(&["convert", h5, "--arch", "resnet18", "-o", o]);
    assert!(!ok && err.contains("unknown --arch \"resnet18\" for a Keras file, expected one of resnet50, resnet101"), "{err}");
    let pt = fixture("fovea-vision/tests/fixtures/torch/tiny.pt");
    let (ok, _, err) = fovea(&["convert", pt.to_str().unwrap(), "--arch", "resnet18", "--alpha", "0.5", "-o", o]);
    assert!(!ok && err.contains("--alpha and --input-shape apply to Keras files"), "{err}");

    // A small Keras file of another model, and a truncated one.
    let seq = fixture("fovea-nn/tests/fixtures/keras/seq_cnn.weights.h5");
    let (ok, _, err) = fovea(&["convert", seq.to_str().unwrap(), "--arch", "vgg16", "-o", o]);
    assert!(!ok && err.contains("seq_cnn.weights.h5") && err.contains("\"block1_conv1\"") && err.contains("\"conv_a\""), "{err}");
    let cut = dir.join("cut.h5");
    std::fs::write(&cut, &weights[..weights.len() / 3]).unwrap();
    let (ok, _, err) = fovea(&["convert", cut.to_str().unwrap(), "--arch", "mobilenet_v2", "-o", o]);
    assert!(!ok && err.contains("cut.h5") && err.contains("truncated"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn convert_takes_any_keras_model_without_arch() {
    let dir = std::env::temp_dir().join(format!("fovea-convert-any-keras-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let layers = |f: &str| fixture(&format!("fovea-nn/tests/fixtures/keras_layers/{f}"));
    let bytes = std::fs::read(layers("io.safetensors")).unwrap();
    let (io, _) = read_safetensors(&bytes, Device::Cpu).unwrap();
    let get = |k: &str| io.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let out = dir.join("m.safetensors");
    let o = out.to_str().unwrap();
    let (keras, json, weights) = (layers("residual.keras"), layers("batch_norm.json"), layers("batch_norm.weights.h5"));
    let (keras, json, weights) = (keras.to_str().unwrap(), json.to_str().unwrap(), weights.to_str().unwrap());
    for (args, name, class) in [(vec![keras], "residual", "Functional"), (vec![json, "--weights", weights], "batch_norm", "Sequential")] {
        let (ok, stdout, err) = fovea(&[&["convert"][..], &args, &["-o", o]].concat());
        assert!(ok, "{err}");
        assert!(stdout.contains(&format!("Keras {class} model \"{name}\"")) && stdout.contains(o), "{stdout}");
        // The file is a Fovea model file like any other, and computes what Keras computed.
        let y = SavedModel::load(&out).unwrap().predict(&get(&format!("{name}.x")), 2).unwrap().to_vec::<f32>().unwrap();
        let want = get(&format!("{name}.y")).to_vec::<f32>().unwrap();
        assert_eq!(y.len(), want.len());
        for (i, (g, w)) in y.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-4 * w.abs() + 1e-5, "{name}[{i}]: {g} vs Keras {w}");
        }
    }
    // What cannot be converted without --arch says why.
    let (ok, _, err) = fovea(&["convert", json, "-o", o]);
    assert!(!ok && err.contains("batch_norm.json is a model architecture; give its weights with --weights"), "{err}");
    let (ok, _, err) = fovea(&["convert", keras, "--weights", weights, "-o", o]);
    assert!(!ok && err.contains("--weights goes with a .json architecture"), "{err}");
    let (ok, _, err) = fovea(&["convert", json, "--weights", weights, "--arch", "vgg16", "-o", o]);
    assert!(!ok && err.contains("--weights goes with a .json architecture, not with --arch"), "{err}");
    let seq = fixture("fovea-nn/tests/fixtures/keras/seq_cnn.weights.h5");
    let (ok, _, err) = fovea(&["convert", seq.to_str().unwrap(), "-o", o]);
    assert!(!ok && err.contains("seq_cnn.weights.h5: holds weights only") && err.contains("give --arch"), "{err}");
    let pt = fixture("fovea-vision/tests/fixtures/torch/tiny.pt");
    let (ok, _, err) = fovea(&["convert", pt.to_str().unwrap(), "-o", o]);
    assert!(!ok && err.contains("tiny.pt is not a Keras file; give --arch for a PyTorch checkpoint"), "{err}");
    let (ok, _, err) = fovea(&["convert", json, "--weights", seq.to_str().unwrap(), "-o", o]);
    assert!(!ok && err.contains("seq_cnn.weights.h5"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
