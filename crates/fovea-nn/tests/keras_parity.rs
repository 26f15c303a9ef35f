//! A small CNN against Keras 3 with the same weights: logits, loss, the gradient of every
//! weight, one SGD-with-momentum step, and BatchNormalization's moving statistics
//! (fixture from `tools/fixtures/gen_cnn_step_fixture.py`).

use fovea_core::ops::padding::Padding;
use fovea_core::{io::load_safetensors, testing::assert_close, Device, Tensor};
use fovea_nn::activations::Activation as Act;
use fovea_nn::layer::Layer;
use fovea_nn::layers::{Activation, BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D};
use fovea_nn::losses::{Loss, LossKind};
use fovea_nn::model::{Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use std::collections::HashMap;

fn fixture() -> HashMap<String, Tensor> {
    load_safetensors(format!("{}/tests/fixtures/cnn_step.safetensors", env!("CARGO_MANIFEST_DIR")), Device::Cpu).unwrap()
}

fn model(f: &HashMap<String, Tensor>, dev: Device) -> Sequential {
    let m = Sequential::with_input_shape(&[12, 12, 3]);
    m.add(Conv2D::new(8, (3, 3)).padding(Padding::Same).activation(Act::Relu)).unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Conv2D::new(6, (3, 3)).strides((2, 2))).unwrap();
    m.add(Activation::new(Act::Tanh)).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(16).activation(Act::Relu)).unwrap();
    m.add(Dense::new(5)).unwrap();
    m.build_for(&[12, 12, 3]).unwrap();
    for (i, v) in m.weights().iter().enumerate() {
        v.set_device(dev).unwrap();
        v.assign(&f[&format!("w.{i}")]).unwrap();
    }
    m
}

fn check(dev: Device) {
    let f = fixture();
    let m = model(&f, dev);
    let (x, y) = (f["x"].to(dev).unwrap(), f["y"].to(dev).unwrap());
    let loss_fn: Loss = LossKind::SparseCategoricalCrossentropy { from_logits: true }.into();
    let logits = m.apply(std::slice::from_ref(&x), true).unwrap();
    assert_close(&format!("logits on {dev}"), &logits.to_vec::<f32>().unwrap(), &f["logits"].to_vec::<f32>().unwrap(), 1e-4, 1e-5);
    let loss = loss_fn.compute(&y, &logits, None).unwrap();
    assert_close("loss", &loss.to_vec::<f32>().unwrap(), &f["loss"].to_vec::<f32>().unwrap(), 1e-5, 1e-6);
    let grads = loss.backward().unwrap();
    let trainable = m.trainable_weights();
    assert_eq!(trainable.len(), 10);
    for (i, v) in trainable.iter().enumerate() {
        let g = grads.get(&v.value()).unwrap();
        assert_close(
            &format!("gradient of {} on {dev}", v.name()),
            &g.to_vec::<f32>().unwrap(),
            &f[&format!("g.{i}")].to_vec::<f32>().unwrap(),
            1e-3,
            1e-5,
        );
    }
    // Two more training calls move the moving statistics as Keras's did (momentum 0.99).
    m.apply(std::slice::from_ref(&x), true).unwrap();
    m.apply(std::slice::from_ref(&x), true).unwrap();
    let bn = m.get_layer("batch_normalization").unwrap_or_else(|_| m.layers()[1].clone());
    let w = bn.weights();
    assert_close("moving_mean", &w[2].value().to_vec::<f32>().unwrap(), &f["bn_mean_after"].to_vec::<f32>().unwrap(), 1e-5, 1e-6);
    assert_close("moving_variance", &w[3].value().to_vec::<f32>().unwrap(), &f["bn_var_after"].to_vec::<f32>().unwrap(), 1e-5, 1e-6);
}

#[test]
fn small_cnn_matches_keras_on_reference() {
    check(Device::Reference);
}

#[test]
fn small_cnn_matches_keras_on_cpu() {
    check(Device::Cpu);
}

#[test]
fn one_sgd_momentum_step_matches_keras() {
    let f = fixture();
    let m = model(&f, Device::Cpu);
    m.compile(Optimizer::sgd(0.1, 0.9, false), LossKind::SparseCategoricalCrossentropy { from_logits: true }.into(), &[]).unwrap();
    m.train_on_batch(&f["x"], &f["y"]).unwrap();
    for (i, v) in m.trainable_weights().iter().enumerate() {
        assert_close(
            &format!("{} after one step", v.name()),
            &v.value().to_vec::<f32>().unwrap(),
            &f[&format!("w_after_sgd.{i}")].to_vec::<f32>().unwrap(),
            1e-4,
            1e-5,
        );
    }
}
