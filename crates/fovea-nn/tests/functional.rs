//! The functional API: branches and merges, shared layers, nested models, freezing, errors.

use fovea_core::{set_seed, Device, Tensor};
use fovea_nn::activations::Activation;
use fovea_nn::layer::{Layer, LayerRef};
use fovea_nn::layers::{Add, Concatenate, Dense};
use fovea_nn::losses::Loss;
use fovea_nn::model::functional::{Connect, Functional, Input};
use fovea_nn::model::{FitOptions, Model};
use fovea_nn::optimizers::Optimizer;
use std::sync::Arc;

#[test]
fn branches_merge_and_shared_layers() {
    let a = Input::named(&[4], "a");
    let b = Input::named(&[4], "b");
    let shared: LayerRef = Arc::new(Dense::new(3).named("shared").unwrap());
    let ha = shared.clone().on(&a).unwrap();
    let hb = shared.clone().on(&b).unwrap();
    let sum = Add::new().on_many(&[&ha, &hb]).unwrap();
    let cat = Concatenate::new(-1).on_many(&[&sum, &ha]).unwrap();
    let out = Dense::new(1).named("head").unwrap().on(&cat).unwrap();
    let model = Functional::new(&[&a, &b], &[&out]).unwrap();
    // The shared layer's weights count once: 4·3+3 + (6·1+1).
    assert_eq!(model.weights().iter().map(|v| v.value().numel()).sum::<usize>(), 15 + 7);
    assert_eq!(model.layers().len(), 4);
    let table = model.summary().unwrap();
    assert!(table.contains("Connected to") && table.contains("shared[0][0], shared[0][0]") && table.contains("a (InputLayer)"), "{table}");
    // Same input on both branches ⇒ the add doubles the shared output.
    let x = Tensor::ones([2, 4], fovea_core::DType::F32, Device::Cpu).unwrap();
    let outs = model.call_all(&[x.clone(), x], false).unwrap();
    assert_eq!(outs[0].dims(), &[2, 1]);
    assert!(model.get_layer("head").is_ok());
    assert!(model.get_layer("nope").err().unwrap().to_string().contains("no layer named \"nope\""));
}

#[test]
fn nested_models_train_and_freeze() {
    set_seed(3);
    let inner_in = Input::new(&[2]);
    let inner_out = Dense::new(8).activation(Activation::Tanh).on(&inner_in).unwrap();
    let base = Arc::new(Functional::new(&[&inner_in], &[&inner_out]).unwrap().named("base").unwrap());
    let x_in = Input::new(&[2]);
    let feat = (base.clone() as LayerRef).on(&x_in).unwrap();
    let out = Dense::new(1).activation(Activation::Sigmoid).on(&feat).unwrap();
    let model = Functional::new(&[&x_in], &[&out]).unwrap();
    assert_eq!(model.trainable_weights().len(), 4);
    // Freezing the nested model leaves only the head trainable, and fit leaves it unchanged.
    base.set_trainable(false).unwrap();
    assert_eq!(model.trainable_weights().len(), 2);
    let before: Vec<Vec<f32>> = base.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect();
    let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], [4, 2], Device::Cpu).unwrap();
    let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], [4, 1], Device::Cpu).unwrap();
    model.compile(Optimizer::adam(0.05), Loss::from_name("binary_crossentropy").unwrap(), &["accuracy"]).unwrap();
    let h = model.fit(&x, &y, FitOptions { epochs: 20, batch_size: 4, verbose: 0, ..Default::default() }).unwrap();
    let after: Vec<Vec<f32>> = base.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect();
    assert_eq!(before, after);
    assert!(h.history["loss"][19] < h.history["loss"][0]);
    // Unfreezing without compiling again is refused, as in Keras the optimizer is built for a
    // fixed set of variables; after compile, the base trains again.
    base.set_trainable(true).unwrap();
    let e = model.fit(&x, &y, FitOptions { epochs: 1, batch_size: 4, verbose: 0, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("compile again"), "{e}");
    model.compile(Optimizer::adam(0.01), Loss::from_name("binary_crossentropy").unwrap(), &["accuracy"]).unwrap();
    model.fit(&x, &y, FitOptions { epochs: 2, batch_size: 4, verbose: 0, ..Default::default() }).unwrap();
    let moved: Vec<Vec<f32>> = base.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect();
    assert_ne!(before, moved);
}

#[test]
fn disconnected_graphs_are_refused() {
    let a = Input::named(&[3], "used");
    let b = Input::named(&[3], "forgotten");
    let s = Add::new().on_many(&[&a, &b]).unwrap();
    let e = Functional::new(&[&a], &[&s]).err().unwrap().to_string();
    assert!(e.contains("graph disconnected") && e.contains("\"forgotten\""), "{e}");
    let e = Dense::new(2).on(&Input::named(&[], "scalar")).err().unwrap().to_string();
    assert!(e.contains("expected an input of rank >= 2"), "{e}");
}
