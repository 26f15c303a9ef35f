//! Keras weight files (`.weights.h5`, legacy `.h5` in both layouts, `.keras`) written by
//! tools/fixtures/gen_keras_h5_fixtures.py load into the same models built with Fovea and give
//! Keras's outputs; partial loads, mismatches and damaged files give clear errors.

use fovea_core::io::read_safetensors;
use fovea_core::ops::padding::Padding;
use fovea_core::{Device, Tensor};
use fovea_nn::activations::Activation;
use fovea_nn::import::keras_config::{load_keras_model, model_from_keras_config, KerasModel};
use fovea_nn::import::keras_h5::{load_keras_weights, parse_keras_weights, read_keras_weights, KerasFormat, LoadOptions, LoadReport};
use fovea_nn::import::load::load_weights_by_name;
use fovea_nn::layer::{Layer, LayerRef};
use fovea_nn::layers::{Add, BatchNormalization, Conv2D, Dense, Flatten, GlobalAveragePooling2D, MaxPooling2D, ReLU};
use fovea_nn::model::functional::{Connect, Functional, Input};
use fovea_nn::model::Sequential;
use std::sync::Arc;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/keras/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn io(model: &str) -> (Tensor, Vec<f32>) {
    let bytes = std::fs::read(fixture(&format!("{model}.io.safetensors"))).expect("fixture");
    let (tensors, _) = read_safetensors(&bytes, Device::Cpu).expect("safetensors");
    let get = |k: &str| tensors.iter().find(|(n, _)| n == k).expect("tensor").1.clone();
    (get("x"), get("y").to_vec::<f32>().expect("f32"))
}

fn seq_cnn() -> Sequential {
    let m = Sequential::with_input_shape(&[8, 8, 3]);
    m.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu).named("conv_a").unwrap()).unwrap();
    m.add(MaxPooling2D::new((2, 2)).named("pool").unwrap()).unwrap();
    m.add(Conv2D::new(6, (3, 3)).padding(Padding::Same).named("conv_b").unwrap()).unwrap();
    m.add(Flatten::new().named("flatten").unwrap()).unwrap();
    m.add(Dense::new(5).activation(Activation::Softmax).named("dense_out").unwrap()).unwrap();
    m.build_for(&[8, 8, 3]).unwrap();
    m
}

fn func_bn() -> Functional {
    let inp = Input::named(&[6, 6, 2], "image");
    let x = Conv2D::new(4, (3, 3)).padding(Padding::Same).named("stem").unwrap().on(&inp).unwrap();
    let x = BatchNormalization::new().named("bn").unwrap().on(&x).unwrap();
    let x = ReLU::new().named("relu").unwrap().on(&x).unwrap();
    let shared: LayerRef = Arc::new(Conv2D::new(4, (1, 1)).named("shared").unwrap());
    let a = shared.clone().on(&x).unwrap();
    let b = shared.on(&a).unwrap();
    let x = Add::new().named("add").unwrap().on_many(&[&a, &b]).unwrap();
    let x = GlobalAveragePooling2D::new().named("gap").unwrap().on(&x).unwrap();
    let out = Dense::new(3).named("head").unwrap().on(&x).unwrap();
    Functional::new(&[&inp], &[&out]).unwrap().named("func_bn").unwrap()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * w.abs().max(1e-2), "{what}[{i}]: {g} vs Keras {w}");
    }
}

fn full() -> LoadOptions {
    LoadOptions::default()
}

#[test]
fn every_layout_of_a_sequential_cnn_gives_keras_outputs() {
    let (x, want) = io("seq_cnn");
    for (file, format) in [
        ("seq_cnn.weights.h5", KerasFormat::WeightsH5),
        ("seq_cnn.h5", KerasFormat::LegacyModelH5),
        ("seq_cnn.legacy.h5", KerasFormat::LegacyWeightsH5),
        ("seq_cnn.keras2.h5", KerasFormat::LegacyWeightsH5),
        ("seq_cnn.keras", KerasFormat::KerasZip),
    ] {
        let w = read_keras_weights(fixture(file)).unwrap();
        assert_eq!(w.format, format, "{file}");
        let names: Vec<&str> = w.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["conv_a", "conv_b", "dense_out"], "{file}");
        let model = seq_cnn();
        let report = load_keras_weights(&model, fixture(file), full()).unwrap();
        assert_eq!(report.loaded, ["conv_a", "conv_b", "dense_out"], "{file}");
        let y = model.apply(std::slice::from_ref(&x), false).unwrap();
        assert_eq!(y.dims(), &[2, 5]);
        assert_close(&y.to_vec::<f32>().unwrap(), &want, file);
    }
}

#[test]
fn functional_model_with_batch_norm_and_a_shared_layer_gives_keras_outputs() {
    let (x, want) = io("func_bn");
    for file in ["func_bn.weights.h5", "func_bn.h5", "func_bn.legacy.h5", "func_bn.keras"] {
        let model = func_bn();
        let report = load_keras_weights(&model, fixture(file), full()).unwrap();
        assert_eq!(report.loaded, ["stem", "bn", "shared", "head"], "{file}");
        // The moving statistics come from the file: inference uses them.
        let bn = model.get_layer("bn").unwrap().weights();
        assert!(bn[3].value().to_vec::<f32>().unwrap().iter().all(|&v| (0.5..=1.5).contains(&v)), "{file}");
        let y = model.call_all(std::slice::from_ref(&x), false).unwrap();
        assert_close(&y[0].to_vec::<f32>().unwrap(), &want, file);
    }
}

#[test]
fn architecture_and_version_come_with_the_weights() {
    let k = read_keras_weights(fixture("func_bn.keras")).unwrap();
    let config = k.config.expect("config.json");
    assert_eq!(config["class_name"], "Functional");
    assert_eq!(config["config"]["name"], "func_bn");
    assert!(k.keras_version.as_deref().is_some_and(|v| v.starts_with('3')), "{:?}", k.keras_version);
    let h = read_keras_weights(fixture("func_bn.h5")).unwrap();
    assert_eq!(h.config.expect("model_config")["config"]["layers"].as_array().unwrap().len(), 8);
    // Legacy files name the weights; Keras 3 files number them.
    let bn = &h.layers.iter().find(|l| l.name == "bn").unwrap().weights;
    let names: Vec<&str> = bn.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["gamma", "beta", "moving_mean", "moving_variance"]);
    let w = read_keras_weights(fixture("func_bn.weights.h5")).unwrap();
    assert!(w.config.is_none());
    assert_eq!(w.layers[0].weights[0].0, "vars/0");
    // Same values whatever the layout.
    let by3: Vec<f32> = w.layers.iter().find(|l| l.name == "bn").unwrap().weights[2].1.to_vec().unwrap();
    assert_eq!(by3, bn[2].1.to_vec::<f32>().unwrap());
}

#[test]
fn partial_loads_by_name_and_skip_mismatch() {
    // A model sharing only `stem` and `head` (head with another width) with func_bn.
    let inp = Input::named(&[6, 6, 2], "image");
    let x = Conv2D::new(4, (3, 3)).padding(Padding::Same).named("stem").unwrap().on(&inp).unwrap();
    let x = Conv2D::new(4, (1, 1)).named("other").unwrap().on(&x).unwrap();
    let x = GlobalAveragePooling2D::new().named("gap").unwrap().on(&x).unwrap();
    let out = Dense::new(7).named("head").unwrap().on(&x).unwrap();
    let model = Functional::new(&[&inp], &[&out]).unwrap();
    let other_before = model.get_layer("other").unwrap().weights()[0].value().to_vec::<f32>().unwrap();
    let path = fixture("func_bn.weights.h5");

    let e = load_keras_weights(&model, &path, full()).unwrap_err().to_string();
    assert!(e.contains("has layer \"other\" with weights, but the file holds no weights for it") && e.contains("by_name"), "{e}");
    let by_name = LoadOptions { by_name: true, skip_mismatch: false };
    let e = load_keras_weights(&model, &path, by_name).unwrap_err().to_string();
    assert!(
        e.contains("layer \"head\": the file holds 2 weights of shapes [[4, 3], [3]] but the model's layer has 2 of shapes [[4, 7], [7]]"),
        "{e}"
    );
    let e = load_keras_weights(&model, &path, LoadOptions { by_name: false, skip_mismatch: true }).unwrap_err().to_string();
    assert!(e.contains("skip_mismatch requires by_name"), "{e}");

    let report = load_keras_weights(&model, &path, LoadOptions { by_name: true, skip_mismatch: true }).unwrap();
    assert_eq!(
        report,
        LoadReport {
            loaded: vec!["stem".into()],
            skipped: vec![(
                "head".into(),
                "the file holds 2 weights of shapes [[4, 3], [3]] but the model's layer has 2 of shapes [[4, 7], [7]]".into()
            )],
            missing_in_file: vec!["other".into()],
            unused_in_file: vec!["bn".into(), "shared".into()],
        }
    );
    let file = read_keras_weights(&path).unwrap();
    let stem_file: Vec<f32> = file.layers.iter().find(|l| l.name == "stem").unwrap().weights[0].1.to_vec().unwrap();
    assert_eq!(model.get_layer("stem").unwrap().weights()[0].value().to_vec::<f32>().unwrap(), stem_file);
    assert_eq!(model.get_layer("other").unwrap().weights()[0].value().to_vec::<f32>().unwrap(), other_before);
}

#[test]
fn mismatched_models_are_refused_without_changing_anything() {
    // The Sequential CNN's file into the functional model: no layer in common.
    let model = func_bn();
    let before: Vec<Vec<f32>> = model.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect();
    let e = load_keras_weights(&model, fixture("seq_cnn.h5"), full()).unwrap_err().to_string();
    assert!(e.contains("seq_cnn.h5") && e.contains("layer \"stem\"") && e.contains("[\"conv_a\", \"conv_b\", \"dense_out\"]"), "{e}");
    let after: Vec<Vec<f32>> = model.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect();
    assert_eq!(before, after);
    // Extra layers in the file are an error unless loading by name.
    let small = Sequential::with_input_shape(&[8, 8, 3]);
    small.add(Conv2D::new(4, (3, 3)).named("conv_a").unwrap()).unwrap();
    small.build_for(&[8, 8, 3]).unwrap();
    let e = load_keras_weights(&small, fixture("seq_cnn.keras"), full()).unwrap_err().to_string();
    assert!(e.contains("the file holds weights for layers model") && e.contains("[\"conv_b\", \"dense_out\"]"), "{e}");
    let r = load_keras_weights(&small, fixture("seq_cnn.keras"), LoadOptions { by_name: true, ..full() }).unwrap();
    assert_eq!((r.loaded, r.unused_in_file), (vec!["conv_a".to_string()], vec!["conv_b".to_string(), "dense_out".to_string()]));
}

#[test]
fn damaged_and_foreign_files_give_clear_errors() {
    let e = read_keras_weights(fixture("nope.h5")).unwrap_err().to_string();
    assert!(e.contains("cannot read") && e.contains("nope.h5"), "{e}");
    let e = read_keras_weights(fixture("not_keras.h5")).unwrap_err().to_string();
    assert!(e.contains("an HDF5 file but not a Keras weight file") && e.contains("datasets [\"data\"]"), "{e}");
    let e = read_keras_weights(fixture("int_weight.weights.h5")).unwrap_err().to_string();
    assert!(e.contains("weight \"layers/dense/vars/0\" holds") && e.contains("only float32/float64 weights are supported"), "{e}");
    let e = read_keras_weights(fixture("cycle.weights.h5")).unwrap_err().to_string();
    assert!(e.contains("groups nested more than 64 levels deep") && e.contains("layers/block/again/again"), "{e}");
    let e = parse_keras_weights(b"hello world".to_vec(), "x.h5").unwrap_err().to_string();
    assert!(e.contains("x.h5: not a Keras weight file: expected HDF5"), "{e}");
    for file in ["seq_cnn.h5", "seq_cnn.weights.h5"] {
        let bytes = std::fs::read(fixture(file)).unwrap();
        // Cut inside the data: the superblock promises more than the file holds.
        for cut in [bytes.len() / 2, 100, 9] {
            let e = parse_keras_weights(bytes[..cut].to_vec(), file).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("invalid configuration: {file}:")) && (e.contains("corrupt") || e.contains("truncated")),
                "{file} cut at {cut}: {e}"
            );
        }
        // Garbage over the weights' object headers.
        let mut bad = bytes.clone();
        for b in &mut bad[1000..bytes.len() / 2] {
            *b = 0xAB;
        }
        let e = parse_keras_weights(bad, file).unwrap_err().to_string();
        assert!(e.contains(file) && e.contains("corrupt"), "{file}: {e}");
    }
    let zip = std::fs::read(fixture("seq_cnn.keras")).unwrap();
    let e = parse_keras_weights(zip[..zip.len() - 30].to_vec(), "m.keras").unwrap_err().to_string();
    assert!(e.contains("m.keras: not a .keras (zip) archive, or a truncated one"), "{e}");
    // A flipped byte inside the stored weights file fails its CRC.
    let mut flipped = zip.clone();
    flipped[zip.len() / 2] ^= 0xFF;
    let e = parse_keras_weights(flipped, "m.keras").unwrap_err().to_string();
    assert!(e.contains("entry \"model.weights.h5\": CRC-32") && e.contains("corrupt archive"), "{e}");
}

#[test]
fn fovea_weight_files_load_by_name_too() {
    let source = func_bn();
    load_keras_weights(&source, fixture("func_bn.keras"), full()).unwrap();
    let dir = std::env::temp_dir().join(format!("fovea-keras-h5-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("func_bn.safetensors");
    fovea_nn::model::io::save_weights(&source, &path, &[]).unwrap();
    // Only the head: a strict load fails naming the extra layers; by name it takes the head.
    let inp = Input::named(&[4], "features");
    let out = Dense::new(3).named("head").unwrap().on(&inp).unwrap();
    let head = Functional::new(&[&inp], &[&out]).unwrap();
    let e = load_weights_by_name(&head, &path, full()).unwrap_err().to_string();
    assert!(e.contains("does not have: [\"stem\", \"bn\", \"shared\"]"), "{e}");
    let r = load_weights_by_name(&head, &path, LoadOptions { by_name: true, ..full() }).unwrap();
    assert_eq!(r.loaded, ["head"]);
    let want = source.get_layer("head").unwrap().weights()[0].value().to_vec::<f32>().unwrap();
    assert_eq!(head.weights()[0].value().to_vec::<f32>().unwrap(), want);
    // The same entry point reads Keras files.
    let r = load_weights_by_name(&head, fixture("func_bn.weights.h5"), LoadOptions { by_name: true, ..full() }).unwrap();
    assert_eq!(r.loaded, ["head"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn whole_models_rebuild_from_their_keras_config() {
    let cases = [("seq_cnn", "seq_cnn.keras"), ("seq_cnn", "seq_cnn.h5"), ("func_bn", "func_bn.keras"), ("func_bn", "func_bn.h5")];
    for (model, file) in cases {
        let (x, want) = io(model);
        let m = load_keras_model(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let is_seq = matches!(m, KerasModel::Sequential(_));
        assert_eq!(is_seq, model == "seq_cnn", "{file}");
        let y = m.as_layer().apply(std::slice::from_ref(&x), false).unwrap();
        assert_close(&y.to_vec::<f32>().unwrap(), &want, file);
    }
    let e = load_keras_model(fixture("func_bn.weights.h5")).err().unwrap().to_string();
    assert!(e.contains("func_bn.weights.h5: holds weights only (no model config)"), "{e}");
    let e = model_from_keras_config(&serde_json::json!({"class_name": "Dense", "config": {}})).err().unwrap().to_string();
    assert!(e.contains("class \"Dense\" is not a Keras model class"), "{e}");
}

/// The fixture's transfer-learning model: a Sequential base inside a functional model.
fn nested() -> (Functional, Arc<Sequential>) {
    let base = Sequential::with_input_shape(&[5, 5, 2]);
    base.base().set_name("base").unwrap();
    base.add(Conv2D::new(3, (3, 3)).activation(Activation::Relu).named("base_conv").unwrap()).unwrap();
    base.add(BatchNormalization::new().named("base_bn").unwrap()).unwrap();
    base.add(GlobalAveragePooling2D::new().named("base_gap").unwrap()).unwrap();
    let base = Arc::new(base);
    let inp = Input::named(&[5, 5, 2], "pixels");
    let feat = (base.clone() as LayerRef).on(&inp).unwrap();
    let out = Dense::new(2).activation(Activation::Softmax).named("new_head").unwrap().on(&feat).unwrap();
    (Functional::new(&[&inp], &[&out]).unwrap(), base)
}

#[test]
fn nested_models_load_layer_by_layer_and_from_config() {
    let (x, want) = io("nested");
    for file in ["nested.weights.h5", "nested.h5", "nested.legacy.h5", "nested.keras"] {
        // Keras 3 files keep the nesting as groups, legacy ones in the weight names
        // (`base/base_conv/kernel`); both come out as the inner layers.
        let w = read_keras_weights(fixture(file)).unwrap();
        let mut names: Vec<&str> = w.layers.iter().map(|l| l.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["base_bn", "base_conv", "new_head"], "{file}");
        let (model, base) = nested();
        load_keras_weights(&model, fixture(file), full()).unwrap();
        let y = model.call_all(std::slice::from_ref(&x), false).unwrap();
        assert_close(&y[0].to_vec::<f32>().unwrap(), &want, file);
        // Only the base's weights, by name, into a model whose head differs: the transfer step.
        let (fresh, _) = nested();
        let head_before = fresh.get_layer("new_head").unwrap().weights()[0].value().to_vec::<f32>().unwrap();
        let r = load_keras_weights(base.as_ref(), fixture(file), LoadOptions { by_name: true, ..full() }).unwrap();
        assert_eq!((r.loaded, r.unused_in_file), (vec!["base_conv".to_string(), "base_bn".to_string()], vec!["new_head".to_string()]));
        assert_eq!(fresh.get_layer("new_head").unwrap().weights()[0].value().to_vec::<f32>().unwrap(), head_before);
    }
    for file in ["nested.keras", "nested.h5"] {
        let KerasModel::Functional(m) = load_keras_model(fixture(file)).unwrap() else { panic!("{file}: a functional model") };
        assert_eq!(m.get_layer("base").unwrap().class_name(), "Sequential");
        let y = m.call_all(std::slice::from_ref(&x), false).unwrap();
        assert_close(&y[0].to_vec::<f32>().unwrap(), &want, &format!("{file} (from its config)"));
    }
}

#[test]
fn randomly_damaged_files_load_or_fail_naming_the_file() {
    // A fixed pseudo-random stream of byte changes over every layout; each damaged file
    // either still reads (the bytes hit padding or the data) or fails with the file's name.
    let mut seed: u64 = 12345;
    let mut failures = 0;
    for file in ["seq_cnn.h5", "seq_cnn.weights.h5", "nested.keras", "func_bn.legacy.h5"] {
        let bytes = std::fs::read(fixture(file)).unwrap();
        for _ in 0..200 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let i = (seed >> 33) as usize % b.len();
                b[i] = (seed >> 20) as u8;
            }
            if let Err(e) = parse_keras_weights(b, file) {
                assert!(e.to_string().contains(file), "{e}");
                failures += 1;
            }
        }
    }
    assert!(failures > 0, "some of the damage must be detected");
}
