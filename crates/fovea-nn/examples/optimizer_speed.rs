//! Times what the optimizers cost: one epoch of LeNet-5 (the CLI's `train lenet5`: Adam, batch
//! 32) on MNIST-shaped random data, then Adam and SGD-momentum updates alone on a 1M-element
//! variable, and Adam on LeNet-5's variables alone. Run with `cargo run --release -p fovea-nn --example optimizer_speed`.

use fovea_core::ops::padding::Padding;
use fovea_core::{set_seed, Device, Tensor, Variable};
use fovea_nn::activations::Activation;
use fovea_nn::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use fovea_nn::losses::Loss;
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use std::time::Instant;

fn lenet5() -> Sequential {
    let m = Sequential::with_input_shape(&[28, 28, 1]);
    m.add(Conv2D::new(6, (5, 5)).padding(Padding::Same).activation(Activation::Relu)).unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Conv2D::new(16, (5, 5)).activation(Activation::Relu)).unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(120).activation(Activation::Relu)).unwrap();
    m.add(Dense::new(84).activation(Activation::Relu)).unwrap();
    m.add(Dense::new(10).activation(Activation::Softmax)).unwrap();
    m.build_for(&[28, 28, 1]).unwrap();
    m
}

fn main() {
    // An argument picks one section (`lenet`, `step`, `big`), e.g. for `perf stat`.
    let only = std::env::args().nth(1);
    let run = |section: &str| only.as_deref().is_none_or(|o| o == section);
    if run("lenet") {
        lenet_epoch();
    }
    if run("step") {
        lenet_optimizer_step();
    }
    if run("big") {
        big_updates();
    }
}

fn lenet_epoch() {
    set_seed(1);
    let n = 8192;
    let x = Tensor::random_uniform([n, 28, 28, 1], 0.0, 1.0, Some(1), Device::Cpu).unwrap();
    let y = Tensor::from_vec((0..n as i64).map(|i| (i * 7919) % 10).collect::<Vec<_>>(), [n], Device::Cpu).unwrap();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let m = lenet5();
        m.compile(Optimizer::adam(0.001), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();
        let t = Instant::now();
        m.fit(&x, &y, FitOptions { epochs: 1, batch_size: 32, verbose: 0, seed: Some(0), ..Default::default() }).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("lenet5 epoch of {n} samples (256 Adam steps), best of 5: {:.3} s", best);
}

fn lenet_optimizer_step() {
    // The optimizer alone on LeNet-5's ten variables (61,706 values), as `fit` calls it.
    let shapes: [&[usize]; 10] = [&[5, 5, 1, 6], &[6], &[5, 5, 6, 16], &[16], &[400, 120], &[120], &[120, 84], &[84], &[84, 10], &[10]];
    let pairs: Vec<(Tensor, Variable)> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let w = Tensor::random_normal(s.to_vec(), 0.0, 0.1, Some(i as u64), Device::Cpu).unwrap();
            let g = Tensor::random_normal(s.to_vec(), 0.0, 0.01, Some(100 + i as u64), Device::Cpu).unwrap();
            (g, Variable::new(format!("v{i}"), w, true).unwrap())
        })
        .collect();
    let mut opt = Optimizer::adam(0.001);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..1000 {
            opt.apply_gradients(&pairs).unwrap();
        }
        best = best.min(t.elapsed().as_secs_f64() / 1000.0);
    }
    println!("adam apply_gradients on lenet5's variables, best of 5: {:.1} us", best * 1e6);
}

fn big_updates() {
    for (name, mut opt) in [("adam", Optimizer::adam(0.001)), ("sgd_momentum", Optimizer::sgd(0.01, 0.9, false))] {
        let w = Variable::new("w", Tensor::random_normal([1 << 20], 0.0, 1.0, Some(2), Device::Cpu).unwrap(), true).unwrap();
        let g = Tensor::random_normal([1 << 20], 0.0, 1.0, Some(3), Device::Cpu).unwrap();
        opt.apply_gradients(&[(g.clone(), w.clone())]).unwrap();
        let steps = 200;
        let t = Instant::now();
        for _ in 0..steps {
            opt.apply_gradients(&[(g.clone(), w.clone())]).unwrap();
        }
        println!("{name} update of 1M elements: {:.1} us", t.elapsed().as_secs_f64() / steps as f64 * 1e6);
    }
}
