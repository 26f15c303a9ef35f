//! Whole-model files: architecture, weights and optimizer state round-trip, and training
//! resumed from a file ends exactly where uninterrupted training does.

use fovea_core::ops::padding::Padding;
use fovea_core::{set_seed, Device, Tensor};
use fovea_nn::activations::Activation;
use fovea_nn::layer::Layer;
use fovea_nn::layers::{BatchNormalization, Conv2D, Dense, Flatten, Lambda, MaxPooling2D};
use fovea_nn::losses::Loss;
use fovea_nn::model::io::{load_model, save_model};
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;

fn model() -> Sequential {
    let m = Sequential::with_input_shape(&[8, 8, 1]);
    m.add(Conv2D::new(4, (3, 3)).padding(Padding::Same).activation(Activation::Relu)).unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(3).activation(Activation::Softmax)).unwrap();
    m.build_for(&[8, 8, 1]).unwrap();
    m.compile(Optimizer::nadam(0.01), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();
    m
}

fn weights(m: &Sequential) -> Vec<Vec<f32>> {
    m.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect()
}

#[test]
fn save_load_resume_is_exact() {
    set_seed(5);
    let x = Tensor::random_uniform([48, 8, 8, 1], 0.0, 1.0, Some(1), Device::Cpu).unwrap();
    let y = Tensor::from_vec((0..48).map(|i| (i % 3) as i64).collect::<Vec<_>>(), [48], Device::Cpu).unwrap();
    let opts = |seed| FitOptions { epochs: 1, batch_size: 16, verbose: 0, seed: Some(seed), ..Default::default() };
    let dir = std::env::temp_dir().join(format!("fovea-model-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");

    let a = model();
    a.fit(&x, &y, opts(1)).unwrap();
    save_model(&a, &path).unwrap();
    let b = load_model(&path).unwrap();
    assert_eq!(b.summary().unwrap().lines().skip(1).collect::<Vec<_>>(), a.summary().unwrap().lines().skip(1).collect::<Vec<_>>());
    assert_eq!(weights(&a), weights(&b));
    let (pa, pb) = (a.predict(&x, 16).unwrap(), b.predict(&x, 16).unwrap());
    assert_eq!(pa.to_vec::<f32>().unwrap(), pb.to_vec::<f32>().unwrap());
    // One more epoch on each: the restored optimizer state makes them identical.
    a.fit(&x, &y, opts(2)).unwrap();
    b.fit(&x, &y, opts(2)).unwrap();
    assert_eq!(weights(&a), weights(&b));

    // Weights-only files and models with closures are refused with a reason.
    fovea_nn::model::io::save_weights(&a, &path, &[]).unwrap();
    let e = load_model(&path).err().unwrap().to_string();
    assert!(e.contains("holds weights only"), "{e}");
    let lam = Sequential::with_input_shape(&[2]);
    lam.add(Dense::new(2)).unwrap();
    lam.add(Lambda::new(|t| t.relu(), |s| s.clone())).unwrap();
    lam.build_for(&[2]).unwrap();
    save_model(&lam, &path).unwrap();
    let e = load_model(&path).err().unwrap().to_string();
    assert!(e.contains("Lambda layer holds a Rust closure"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn functional_models_with_shared_and_nested_layers_round_trip() {
    use fovea_nn::layer::LayerRef;
    use fovea_nn::layers::Concatenate;
    use fovea_nn::model::functional::{Connect, Functional, Input};
    use fovea_nn::model::io::load_functional;
    use std::sync::Arc;
    set_seed(9);
    let a = Input::named(&[4], "left");
    let b = Input::named(&[4], "right");
    let shared: LayerRef = Arc::new(Dense::new(3).activation(Activation::Tanh).named("shared").unwrap());
    let nested = Sequential::new();
    nested.add(Dense::new(5).activation(Activation::Relu)).unwrap();
    let nested: LayerRef = Arc::new(nested);
    let ha = shared.clone().on(&a).unwrap();
    let hb = shared.on(&b).unwrap();
    let cat = Concatenate::new(-1).on_many(&[&ha, &hb]).unwrap();
    let deep = nested.on(&cat).unwrap();
    let out1 = Dense::new(2).activation(Activation::Softmax).named("cls").unwrap().on(&deep).unwrap();
    let out2 = Dense::new(1).named("reg").unwrap().on(&deep).unwrap();
    let m = Functional::new(&[&a, &b], &[&out1, &out2]).unwrap();
    let losses = [Loss::from_name("sparse_categorical_crossentropy").unwrap(), Loss::from_name("mse").unwrap()];
    m.compile_outputs(Optimizer::adam(0.01), &losses, Some(&[1.0, 0.5]), &[&["accuracy"], &[]]).unwrap();
    let xa = Tensor::random_uniform([24, 4], -1.0, 1.0, Some(1), Device::Cpu).unwrap();
    let xb = Tensor::random_uniform([24, 4], -1.0, 1.0, Some(2), Device::Cpu).unwrap();
    let yc = Tensor::from_vec((0..24).map(|i| (i % 2) as i64).collect::<Vec<_>>(), [24], Device::Cpu).unwrap();
    let yr = Tensor::random_uniform([24, 1], -1.0, 1.0, Some(3), Device::Cpu).unwrap();
    let opts = || FitOptions { epochs: 1, batch_size: 8, verbose: 0, seed: Some(4), ..Default::default() };
    let (xs, ys) = (vec![xa.clone(), xb.clone()], vec![yc.clone(), yr.clone()]);
    m.fit_multi(&xs, &ys, opts(), &mut []).unwrap();
    let dir = std::env::temp_dir().join(format!("fovea-functional-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f.safetensors");
    save_model(&m, &path).unwrap();
    let back = load_functional(&path).unwrap();
    assert_eq!(back.summary().unwrap().lines().skip(1).collect::<Vec<_>>(), m.summary().unwrap().lines().skip(1).collect::<Vec<_>>());
    let (p1, p2) = (m.predict_multi(&xs, 8).unwrap(), back.predict_multi(&xs, 8).unwrap());
    for (x, y) in p1.iter().zip(&p2) {
        assert_eq!(x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
    }
    m.fit_multi(&xs, &ys, opts(), &mut []).unwrap();
    back.fit_multi(&xs, &ys, opts(), &mut []).unwrap();
    let w = |f: &Functional| f.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect::<Vec<_>>();
    assert_eq!(w(&m), w(&back));
    let e = load_model(&path).err().unwrap().to_string();
    assert!(e.contains("holds a Functional model, not a Sequential; use load_functional"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Rewrites the architecture stored in `path` with `edit`, keeping the weights.
fn edit_architecture(path: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let (tensors, mut meta) = fovea_core::io::read_safetensors(&std::fs::read(path).unwrap(), Device::Cpu).unwrap();
    let mut arch: serde_json::Value = serde_json::from_str(&meta["fovea.architecture"]).unwrap();
    edit(&mut arch);
    meta.insert("fovea.architecture".into(), arch.to_string());
    fovea_core::io::save_safetensors(path, &tensors, &meta).unwrap();
}

#[test]
fn huge_declared_sizes_are_refused_before_allocation() {
    let dir = std::env::temp_dir().join(format!("fovea-model-files-huge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    let m = Sequential::with_input_shape(&[784]);
    m.add(Dense::new(10)).unwrap();
    m.build_for(&[784]).unwrap();
    save_model(&m, &path).unwrap();
    // One billion units: 784 billion parameters, which used to abort in allocation.
    edit_architecture(&path, |a| a["config"]["layers"][0]["config"]["units"] = serde_json::json!(1_000_000_000u64));
    let e = load_model(&path).err().expect("an error").to_string();
    assert!(e.contains("shape [784, 1000000000] (784000000000 parameters)"), "{e}");
    assert!(e.contains(&format!("the 7850 values {} stores", path.display())), "{e}");
    // Sizes past isize::MAX bytes are a clear error, not a capacity-overflow panic.
    edit_architecture(&path, |a| a["config"]["layers"][0]["config"]["units"] = serde_json::json!(1u64 << 62));
    let e = load_model(&path).err().expect("an error").to_string();
    assert!(e.contains("is too large to allocate") && e.contains(&path.display().to_string()), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn huge_specs_are_refused_before_allocation() {
    use fovea_nn::model::registry::sequential_from_config;
    let spec = |units: u64| {
        serde_json::json!({"name": "s", "layers": [{"class_name": "Dense", "config": {
            "units": units, "activation": "relu", "use_bias": true, "kernel_initializer": "glorot_uniform",
            "bias_initializer": "zeros", "kernel_regularizer": null, "bias_regularizer": null}}]})
    };
    let e = sequential_from_config(&spec(1_000_000_000), Some(&[784])).err().expect("an error").to_string();
    assert!(e.contains("(784000000000 parameters)") && e.contains("the limit of 2147483648 parameters"), "{e}");
    assert!(e.contains("FOVEA_MAX_PARAMS"), "{e}");
    let e = sequential_from_config(&spec(u64::MAX), Some(&[784])).err().expect("an error").to_string();
    assert!(e.contains("too large to allocate"), "{e}");
    assert!(sequential_from_config(&spec(100), Some(&[784])).is_ok());
}
