//! A bounded, deterministic mutation test of what fovea-nn reads from outside: whole-model
//! `.safetensors` files, JSON specs (Fovea's and Keras 3's), Keras HDF5 and `.keras` files and
//! PyTorch `torch.save` pickles are damaged in a fixed set of
//! ways, and every damaged input must give `Ok` or a clean `Err`, never a panic or an abort.
//! The budget is fixed so it runs in every `cargo test`.

use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation;
use fovea_nn::budget::with_param_budget;
use fovea_nn::layer::Layer;
use fovea_nn::layers::{BatchNormalization, Conv2D, Dense, Flatten};
use fovea_nn::model::io::{load_model, save_model};
use fovea_nn::model::registry::sequential_from_config;
use fovea_nn::model::Sequential;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Mutations per format.
const BUDGET: u64 = 300;

/// Runs `read` on `valid` and its mutations (see [`fovea_core::testing::mutation`]).
fn no_panics(format: &str, valid: &[u8], read: impl Fn(&[u8])) {
    fovea_core::testing::mutation::no_panics(format, valid, BUDGET, true, read);
}

fn small_model() -> Sequential {
    let m = Sequential::with_input_shape(&[6, 6, 2]);
    m.add(Conv2D::new(3, (3, 3)).padding(Padding::Same).activation(Activation::Relu)).unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(4).activation(Activation::Softmax)).unwrap();
    m.build_for(&[6, 6, 2]).unwrap();
    m
}

#[test]
fn damaged_model_files_are_clean_errors() {
    let dir = std::env::temp_dir().join(format!("fovea-nn-mutation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("valid.safetensors");
    save_model(&small_model(), &path).unwrap();
    let valid = std::fs::read(&path).unwrap();
    let damaged = dir.join("mutated.safetensors");
    no_panics("model file", &valid, |b| {
        std::fs::write(&damaged, b).unwrap();
        // The file's own size bounds what its architecture may allocate.
        if let Ok(m) = load_model(&damaged) {
            let _ = m.summary();
        }
    });
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn damaged_specs_are_clean_errors() {
    let fovea_spec = serde_json::json!({"class_name": "Sequential", "config": small_model().config()}).to_string();
    let keras_spec = concat!(
        r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": ["#,
        r#"{"class_name": "InputLayer", "config": {"batch_shape": [null, 6, 6, 2], "name": "in"}},"#,
        r#"{"class_name": "Conv2DTranspose", "config": {"name": "up", "filters": 2, "kernel_size": [2, 2], "strides": [2, 2], "padding": "valid", "dilation_rate": [1, 1], "activation": "silu", "use_bias": true, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}}, "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.01}}, "bias_regularizer": null, "output_padding": null}},"#,
        r#"{"class_name": "Flatten", "config": {"name": "f"}},"#,
        r#"{"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "softmax", "use_bias": true, "kernel_initializer": {"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_in", "distribution": "uniform"}}, "bias_initializer": "zeros", "kernel_regularizer": null, "bias_regularizer": null}}"#,
        r#"]}}"#
    );
    let shape: &[usize] = &[6, 6, 2];
    for (format, spec, input) in [("Fovea spec", fovea_spec.as_str(), Some(shape)), ("Keras 3 spec", keras_spec, None)] {
        no_panics(format, spec.as_bytes(), |b| {
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(b) else { return };
            // A damaged spec may legitimately declare millions of parameters; keep the test's
            // memory small (the default limit is tested in model_files.rs).
            let _ = with_param_budget(1 << 20, "the mutation test's budget", || sequential_from_config(&json, input));
        });
    }
}

#[test]
fn extreme_layer_arguments_in_specs_are_clean_errors() {
    // Hand-picked values a mutation rarely reaches: zeros (divisions), values past usize and
    // sizes whose products overflow in shape arithmetic.
    let dense = r#""activation": "linear", "use_bias": true, "kernel_initializer": "zeros", "bias_initializer": "zeros", "kernel_regularizer": null, "bias_regularizer": null"#;
    let conv = |k: &str, s: &str, d: &str, p: &str| {
        format!(
            r#"{{"class_name": "Conv2D", "config": {{"filters": 2, "kernel_size": {k}, "strides": {s}, "dilation_rate": {d}, "padding": "{p}", {dense}}}}}"#
        )
    };
    let big = "4611686018427387904";
    let mut layers: Vec<String> = Vec::new();
    for p in ["valid", "same"] {
        for (k, s, d) in [
            ("[3, 3]", "[0, 0]", "[1, 1]"),
            ("[0, 0]", "[1, 1]", "[1, 1]"),
            ("[3, 3]", "[1, 1]", "[0, 0]"),
            (&format!("[{big}, 3]"), "[1, 1]", "[1, 1]"),
            ("[3, 3]", &format!("[{big}, 1]"), "[1, 1]"),
            ("[3, 3]", "[1, 1]", &format!("[{big}, 1]")),
        ] {
            layers.push(conv(k, s, d, p));
        }
        for pool in ["MaxPooling2D", "AveragePooling2D"] {
            for (size, strides) in
                [("[0, 0]", "[1, 1]"), ("[2, 2]", "[0, 0]"), (&format!("[{big}, 2]"), "[1, 1]"), ("[2, 2]", &format!("[{big}, 1]"))]
            {
                layers.push(format!(
                    r#"{{"class_name": "{pool}", "config": {{"pool_size": {size}, "strides": {strides}, "padding": "{p}"}}}}"#
                ));
            }
        }
    }
    layers.push(format!(r#"{{"class_name": "UpSampling2D", "config": {{"size": [{big}, {big}]}}}}"#));
    layers.push(r#"{"class_name": "UpSampling2D", "config": {"size": [0, 0]}}"#.to_string());
    layers.push(format!(r#"{{"class_name": "ZeroPadding2D", "config": {{"padding": [[{big}, {big}], [1, 1]]}}}}"#));
    layers.push(format!(r#"{{"class_name": "Cropping2D", "config": {{"cropping": [[{big}, 1], [1, 1]]}}}}"#));
    layers.push(format!(r#"{{"class_name": "Reshape", "config": {{"target_shape": [{big}, {big}, -1]}}}}"#));
    layers.push(r#"{"class_name": "Reshape", "config": {"target_shape": [0, -1]}}"#.to_string());
    layers.push(r#"{"class_name": "Permute", "config": {"dims": [7, 1, 2]}}"#.to_string());
    layers.push(format!(r#"{{"class_name": "Conv2DTranspose", "config": {{"filters": 2, "kernel_size": [{big}, 2], "strides": [{big}, 2], "dilation_rate": [1, 1], "padding": "same", {dense}}}}}"#));
    layers.push(format!(r#"{{"class_name": "DepthwiseConv2D", "config": {{"depth_multiplier": {big}, "kernel_size": [3, 3], "strides": [1, 1], "dilation_rate": [1, 1], "padding": "same", {dense}}}}}"#));
    layers.push(format!(r#"{{"class_name": "Dense", "config": {{"units": 0, {dense}}}}}"#));
    layers.push(r#"{"class_name": "Dropout", "config": {"rate": 7.5}}"#.to_string());
    layers.push(r#"{"class_name": "LocalResponseNormalization", "config": {"depth_radius": 18446744073709551615, "bias": 1, "alpha": 1, "beta": 0.5}}"#.to_string());
    for layer in layers {
        let spec: serde_json::Value =
            serde_json::from_str(&format!(r#"{{"layers": [{layer}, {{"class_name": "Flatten", "config": {{}}}}]}}"#)).unwrap();
        let run = || {
            let m = with_param_budget(1 << 20, "the test's budget", || sequential_from_config(&spec, Some(&[8, 8, 3])))?;
            let x = fovea_core::Tensor::ones([1, 8, 8, 3], fovea_core::DType::F32, fovea_core::Device::Cpu)?;
            m.call(&[x], false)
        };
        if catch_unwind(AssertUnwindSafe(run)).is_err() {
            panic!("a spec with {layer} panicked");
        }
    }
    // Sizes that do not overflow but whose activations could never be allocated are refused
    // when the model is built, before the first batch.
    let spec = serde_json::json!({"layers": [{"class_name": "UpSampling2D", "config": {"name": "up", "size": [100000, 100000]}}]});
    let e = sequential_from_config(&spec, Some(&[8, 8, 3])).err().expect("an error").to_string();
    assert!(e.contains("layer up: output shape (None, 800000, 800000, 3) holds 1920000000000 values per example, past the limit of 2147483648 (set FOVEA_MAX_PARAMS to raise it)"), "{e}");
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

#[cfg(feature = "hdf5")]
#[test]
fn damaged_keras_files_are_clean_errors() {
    use fovea_nn::import::keras_config::model_from_keras_config;
    use fovea_nn::import::keras_h5::{assign_keras_weights, parse_keras_weights_with_limit, LoadOptions};
    // Keras 3's .weights.h5 and legacy full-model .h5 (HDF5), and a .keras zip around one.
    for (name, budget) in [("seq_cnn.weights.h5", BUDGET), ("seq_cnn.h5", BUDGET / 2), ("seq_cnn.keras", BUDGET / 2)] {
        let valid = fixture(&format!("tests/fixtures/keras/{name}"));
        fovea_core::testing::mutation::no_panics(name, &valid, budget, false, |b| {
            let Ok(file) = parse_keras_weights_with_limit(b.to_vec(), "mutated", 1 << 20) else { return };
            // What a damaged file's config describes is built under the parameter budget.
            if let Some(config) = &file.config {
                if let Ok(model) = with_param_budget(1 << 20, "the mutation test's budget", || model_from_keras_config(config)) {
                    let _ = assign_keras_weights(model.as_layer(), &file, "mutated", LoadOptions::default());
                }
            }
        });
    }
}

#[test]
fn damaged_torch_pickles_are_clean_errors() {
    use fovea_nn::import::torch::state_dict_from_bytes;
    let valid = fixture("../fovea-vision/tests/fixtures/torch/tiny.pt");
    assert!(state_dict_from_bytes(&valid, "tiny.pt").is_ok(), "the undamaged file loads");
    no_panics("torch.save pickle", &valid, |b| {
        let _ = state_dict_from_bytes(b, "mutated.pt");
    });
}

/// Found by `fuzz/torch_pickle`: a ZIP64 locator whose end-record offset is near `usize::MAX`
/// overflowed `offset + 4` (a panic in debug builds, a wrapped read in release ones).
#[test]
fn a_zip64_locator_past_the_address_space_is_a_clean_error() {
    for rec in [u64::MAX, u64::MAX - 3, u64::MAX - 40] {
        let mut b = b"PK\x03\x04".to_vec();
        b.extend([0x50, 0x4b, 0x06, 0x07, 0, 0, 0, 0]); // ZIP64 end-of-central-directory locator
        b.extend(rec.to_le_bytes());
        b.extend([1, 0, 0, 0]);
        b.extend([0x50, 0x4b, 0x05, 0x06]); // end-of-central-directory record
        b.extend([0u8; 18]);
        let e = fovea_nn::import::torch::state_dict_from_bytes(&b, "crafted.pt").unwrap_err().to_string();
        assert!(e.contains("crafted.pt: corrupt or truncated zip archive (bad ZIP64 end record)"), "{e}");
    }
}
