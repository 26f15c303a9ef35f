//! Every optimizer against Keras 3: five updates with fixed gradients must land on the same
//! weights to 1e-5 (fixtures from `tools/fixtures/gen_optimizer_fixtures.py`).

use fovea_core::{io::load_safetensors, testing::assert_close, Device, Tensor, Variable};
use fovea_nn::optimizers::{Algorithm, Optimizer};
use fovea_nn::schedules::LearningRate;
use std::collections::HashMap;

fn fixtures() -> HashMap<String, Tensor> {
    load_safetensors(format!("{}/tests/fixtures/optimizers.safetensors", env!("CARGO_MANIFEST_DIR")), Device::Cpu).unwrap()
}

fn cases() -> Vec<(&'static str, Optimizer)> {
    let sgd = |lr| Optimizer::sgd(lr, 0.0, false);
    vec![
        ("sgd", sgd(0.1)),
        ("sgd_momentum", Optimizer::sgd(0.1, 0.9, false)),
        ("sgd_nesterov", Optimizer::sgd(0.1, 0.9, true)),
        ("sgd_clipnorm", sgd(0.1).with_clipnorm(1.0)),
        ("sgd_clipvalue", sgd(0.1).with_clipvalue(0.5)),
        ("sgd_global_clipnorm", sgd(0.1).with_global_clipnorm(1.0)),
        (
            "sgd_exponential_decay",
            sgd(0.1).with_schedule(LearningRate::ExponentialDecay {
                initial_learning_rate: 0.1,
                decay_steps: 2.0,
                decay_rate: 0.5,
                staircase: false,
            }),
        ),
        ("adam", Optimizer::adam(0.01)),
        ("adam_amsgrad", Optimizer::new(Algorithm::Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: true }, 0.01)),
        ("adamw", Optimizer::adamw(0.01)),
        ("nadam", Optimizer::nadam(0.01)),
        ("rmsprop", Optimizer::rmsprop(0.01)),
        ("rmsprop_momentum_centered", Optimizer::new(Algorithm::RmsProp { rho: 0.9, momentum: 0.5, epsilon: 1e-7, centered: true }, 0.01)),
        ("adagrad", Optimizer::adagrad(0.1)),
        ("adadelta", Optimizer::adadelta(1.0)),
        ("adamax", Optimizer::adamax(0.01)),
    ]
}

#[test]
fn five_steps_match_keras_for_every_optimizer() {
    let f = fixtures();
    for (name, mut opt) in cases() {
        let w = Variable::new("w", f["w0"].clone(), true).unwrap();
        let b = Variable::new("b", f["b0"].clone(), true).unwrap();
        for step in 0..5 {
            opt.apply_gradients(&[(f[&format!("g{step}.w")].clone(), w.clone()), (f[&format!("g{step}.b")].clone(), b.clone())]).unwrap();
            for (v, key) in [(&w, format!("{name}.w{step}")), (&b, format!("{name}.b{step}"))] {
                assert_close(&key, &v.value().to_vec::<f32>().unwrap(), &f[&key].to_vec::<f32>().unwrap(), 1e-5, 1e-6);
            }
        }
        assert_eq!(opt.iterations(), 5, "{name}");
    }
}

#[test]
fn five_steps_match_keras_on_the_reference_backend() {
    // The reference backend runs the update composed from its primitives, and the clipping as
    // tensor ops, with the variables, gradients and slots all on that device.
    let f = fixtures();
    let dev = Device::Reference;
    for (name, mut opt) in cases() {
        let w = Variable::new("w", f["w0"].to(dev).unwrap(), true).unwrap();
        let b = Variable::new("b", f["b0"].to(dev).unwrap(), true).unwrap();
        for step in 0..5 {
            let g = |v: &str| f[&format!("g{step}.{v}")].to(dev).unwrap();
            opt.apply_gradients(&[(g("w"), w.clone()), (g("b"), b.clone())]).unwrap();
            for (v, key) in [(&w, format!("{name}.w{step}")), (&b, format!("{name}.b{step}"))] {
                assert_eq!(v.value().device(), dev);
                assert_close(
                    &format!("{key} on reference"),
                    &v.value().to_vec::<f32>().unwrap(),
                    &f[&key].to_vec::<f32>().unwrap(),
                    1e-5,
                    1e-6,
                );
            }
        }
        // Checkpoints hold each slot flat, as files always have.
        for (key, t) in opt.state().unwrap().iter().filter(|(k, _)| k.contains("/slot")) {
            assert_eq!(t.rank(), 1, "{name}: {key}");
        }
    }
}

#[test]
fn optimizer_state_round_trips_and_resumes_identically() {
    let f = fixtures();
    // Three steps, save, restore into a fresh optimizer, two more: same as five straight.
    let w = Variable::new("w", f["w0"].clone(), true).unwrap();
    let mut opt = Optimizer::nadam(0.01);
    for step in 0..3 {
        opt.apply_gradients(&[(f[&format!("g{step}.w")].clone(), w.clone())]).unwrap();
    }
    let state = opt.state().unwrap();
    let mut resumed = Optimizer::nadam(0.01);
    resumed.load_state(&state).unwrap();
    assert_eq!(resumed.iterations(), 3);
    for step in 3..5 {
        resumed.apply_gradients(&[(f[&format!("g{step}.w")].clone(), w.clone())]).unwrap();
    }
    let expected = f["nadam.w4"].to_vec::<f32>().unwrap();
    assert_close("resumed nadam", &w.value().to_vec::<f32>().unwrap(), &expected, 1e-5, 1e-6);
    assert!(Optimizer::adam(0.1).load_state(&[]).unwrap_err().to_string().contains("iterations"));
}

#[test]
fn frozen_variables_and_bad_gradients() {
    let w = Variable::new("frozen", Tensor::ones([2], fovea_core::DType::F32, Device::Cpu).unwrap(), false).unwrap();
    let mut opt = Optimizer::sgd(1.0, 0.0, false);
    opt.apply_gradients(&[(Tensor::ones([2], fovea_core::DType::F32, Device::Cpu).unwrap(), w.clone())]).unwrap();
    assert_eq!(w.value().to_vec::<f32>().unwrap(), vec![1.0, 1.0]);
    let e = opt.apply_gradients(&[(Tensor::ones([3], fovea_core::DType::F32, Device::Cpu).unwrap(), w)]).unwrap_err().to_string();
    assert!(e.contains("gradient of shape [3] for variable frozen of shape [2]"), "{e}");
    assert!(Optimizer::from_name("lion").unwrap_err().to_string().contains("unknown optimizer"));
    assert_eq!(Optimizer::from_name("SGD").unwrap().current_learning_rate(), 0.01);
}

/// `minimize(loss, var_list)` on `(x − 3)²` with plain SGD: `x ← x − lr·2(x − 3)`, so from 0 with
/// lr 0.1 the iterates are 0.6, 1.08, ... → 3; a variable the loss does not use stays put.
#[test]
fn minimize_takes_the_gradient_of_the_loss_and_updates_the_variables() {
    let x = Variable::new("x", Tensor::from_vec(vec![0.0f32], [1], Device::Cpu).unwrap(), true).unwrap();
    let unused = Variable::new("unused", Tensor::from_vec(vec![5.0f32], [1], Device::Cpu).unwrap(), true).unwrap();
    let mut opt = Optimizer::sgd(0.1, 0.0, false);
    let loss = || Ok(x.value().sub_scalar(3.0)?.square()?.sum_all()?);
    let first = opt.minimize(loss, &[x.clone(), unused.clone()]).unwrap();
    assert_eq!(first.to_scalar::<f32>().unwrap(), 9.0, "the loss before the update is returned");
    assert!((x.value().to_vec::<f32>().unwrap()[0] - 0.6).abs() < 1e-6);
    opt.minimize(loss, std::slice::from_ref(&x)).unwrap();
    assert!((x.value().to_vec::<f32>().unwrap()[0] - 1.08).abs() < 1e-6);
    for _ in 0..100 {
        opt.minimize(loss, std::slice::from_ref(&x)).unwrap();
    }
    assert!((x.value().to_vec::<f32>().unwrap()[0] - 3.0).abs() < 1e-4);
    assert_eq!(unused.value().to_vec::<f32>().unwrap(), vec![5.0]);
    let e = opt.minimize(|| Ok(x.value().mul_scalar(1.0)?), std::slice::from_ref(&x));
    assert!(e.is_ok(), "a one-element loss counts as a scalar");
    let e = opt.minimize(|| Ok(Tensor::zeros([2], fovea_core::DType::F32, Device::Cpu)?), &[x]).unwrap_err().to_string();
    assert!(e.contains("must be a scalar, got shape [2]"), "{e}");
}
