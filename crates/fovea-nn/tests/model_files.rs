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
