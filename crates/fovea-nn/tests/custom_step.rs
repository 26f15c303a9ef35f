//! Custom train steps (Keras 3's overridable `train_step` / `test_step`) driven by `fit`:
//! two networks with two optimizers, logs in the `History` and callbacks, NaN checks that name
//! the loss, sub-models frozen between steps, and `evaluate` through `test_step`.

use fovea_core::{set_seed, Device, Tensor, Variable};
use fovea_nn::callbacks::{LambdaCallback, TerminateOnNan};
use fovea_nn::layer::{Layer, LayerBase, ShapeSpec};
use fovea_nn::layers::Dense;
use fovea_nn::losses::{Loss, LossKind};
use fovea_nn::model::training::{Batch, Logs};
use fovea_nn::model::{Compiled, FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use fovea_nn::Result;
use std::sync::Mutex;

/// A two-network adversarial model: `g` maps noise to points, `d` scores points (logits).
struct TwoNets {
    base: LayerBase,
    g: Sequential,
    d: Sequential,
    g_opt: Mutex<Optimizer>,
    d_opt: Mutex<Optimizer>,
    compiled: Mutex<Option<Compiled>>,
    /// Which networks a step trains: (discriminator, generator).
    train: Mutex<(bool, bool)>,
    /// Multiplies the real samples, so a test can make the discriminator loss NaN.
    poison: Mutex<f32>,
}

fn bce(labels: f32, logits: &Tensor) -> Result<Tensor> {
    let loss = Loss::from(LossKind::BinaryCrossentropy { from_logits: true, label_smoothing: 0.0 });
    let y = Tensor::full(logits.shape().clone(), labels as f64, fovea_core::DType::F32, logits.device())?;
    loss.compute(&y, logits, None)
}

impl TwoNets {
    fn new() -> Self {
        let g = Sequential::with_input_shape(&[2]);
        g.add(Dense::new(2)).unwrap();
        g.build_for(&[2]).unwrap();
        let d = Sequential::with_input_shape(&[2]);
        d.add(Dense::new(1)).unwrap();
        d.build_for(&[2]).unwrap();
        TwoNets {
            base: LayerBase::new("TwoNets"),
            g,
            d,
            g_opt: Mutex::new(Optimizer::adam(0.01)),
            d_opt: Mutex::new(Optimizer::sgd(0.1, 0.0, false)),
            compiled: Mutex::new(None),
            train: Mutex::new((true, true)),
            poison: Mutex::new(1.0),
        }
    }

    fn d_loss(&self, real: &Tensor, z: &Tensor) -> Result<Tensor> {
        let real = real.mul_scalar(*self.poison.lock().unwrap())?;
        let fake = self.g.apply(std::slice::from_ref(z), true)?.detach();
        let (pr, pf) = (self.d.apply(&[real], true)?, self.d.apply(&[fake], true)?);
        Ok(bce(1.0, &pr)?.add(&bce(0.0, &pf)?)?)
    }
}

impl Layer for TwoNets {
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn class_name(&self) -> &'static str {
        "TwoNets"
    }
    fn compute_output_shape(&self, shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        self.g.compute_output_shape(shapes)
    }
    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        self.g.apply(inputs, training)
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name() })
    }
    fn weights(&self) -> Vec<Variable> {
        self.g.weights().into_iter().chain(self.d.weights()).collect()
    }
}

impl Model for TwoNets {
    fn compiled(&self) -> &Mutex<Option<Compiled>> {
        &self.compiled
    }

    fn train_step(&self, batch: &Batch) -> Result<Logs> {
        let real = &batch.x[0];
        let z = Tensor::random_normal([real.dims()[0], 2], 0.0, 1.0, None, real.device())?;
        let (train_d, train_g) = *self.train.lock().unwrap();
        let mut logs = Logs::new();
        if train_d {
            let loss = self.d_opt.lock().unwrap().minimize(|| self.d_loss(real, &z), &self.d.trainable_weights())?;
            logs.insert("d_loss".into(), loss.to_scalar::<f32>()? as f64);
        }
        if train_g {
            let g_loss = || -> Result<Tensor> { bce(1.0, &self.d.apply(&[self.g.apply(std::slice::from_ref(&z), true)?], true)?) };
            let loss = self.g_opt.lock().unwrap().minimize(g_loss, &self.g.trainable_weights())?;
            logs.insert("g_loss".into(), loss.to_scalar::<f32>()? as f64);
        }
        Ok(logs)
    }

    fn test_step(&self, batch: &Batch) -> Option<Result<Logs>> {
        let z = Tensor::zeros([batch.x[0].dims()[0], 2], fovea_core::DType::F32, Device::Cpu);
        Some(z.map_err(Into::into).and_then(|z| {
            let loss = self.d_loss(&batch.x[0], &z)?;
            Ok(Logs::from([("d_loss".to_string(), loss.to_scalar::<f32>()? as f64)]))
        }))
    }
}

fn values(vars: &[Variable]) -> Vec<Vec<f32>> {
    vars.iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect()
}

fn data(n: usize) -> Tensor {
    Tensor::random_normal([n, 2], 3.0, 0.5, Some(7), Device::Cpu).unwrap()
}

fn opts(epochs: usize) -> FitOptions {
    FitOptions { epochs, batch_size: 4, verbose: 0, seed: Some(1), ..Default::default() }
}

#[test]
fn fit_drives_a_two_optimizer_step_and_reports_its_logs() {
    set_seed(3);
    let m = TwoNets::new();
    let x = data(16);
    let mut seen: Vec<Logs> = Vec::new();
    let mut cb = LambdaCallback(|_epoch: usize, logs: &Logs| seen.push(logs.clone()));
    let (g0, d0) = (values(&m.g.weights()), values(&m.d.weights()));
    let h = m.fit_multi(&[x], &[], opts(3), &mut [&mut cb]).unwrap();
    assert_eq!(h.history.keys().collect::<Vec<_>>(), ["d_loss", "g_loss"], "no compiled optimizer, so no learning_rate log");
    assert_eq!(h.history["d_loss"].len(), 3);
    assert!(h.history.values().flatten().all(|v| v.is_finite() && *v > 0.0), "{:?}", h.history);
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2]["g_loss"], h.history["g_loss"][2]);
    assert_ne!(values(&m.g.weights()), g0, "the generator was trained");
    assert_ne!(values(&m.d.weights()), d0, "the discriminator was trained");
}

#[test]
fn each_optimizer_moves_only_its_own_network() {
    set_seed(4);
    let m = TwoNets::new();
    let x = data(8);
    let batch = Batch { x: vec![x.clone()], y: vec![], sample_weight: None };
    *m.train.lock().unwrap() = (true, false);
    let (g0, d0) = (values(&m.g.weights()), values(&m.d.weights()));
    m.train_step(&batch).unwrap();
    assert_eq!(values(&m.g.weights()), g0, "a discriminator step must leave the generator alone");
    assert_ne!(values(&m.d.weights()), d0);
    *m.train.lock().unwrap() = (false, true);
    let d1 = values(&m.d.weights());
    m.train_step(&batch).unwrap();
    assert_eq!(values(&m.d.weights()), d1, "a generator step backpropagates through D but must not update it");
    assert_ne!(values(&m.g.weights()), g0);
}

#[test]
fn a_frozen_sub_model_stays_put_and_trains_again_once_unfrozen() {
    set_seed(5);
    // Keras 2's recipe: one optimizer over the stacked model, with D frozen for the G update.
    let m = TwoNets::new();
    let z = Tensor::random_normal([8, 2], 0.0, 1.0, Some(2), Device::Cpu).unwrap();
    let mut opt = Optimizer::sgd(0.1, 0.0, false);
    let all = |m: &TwoNets| m.g.weights().into_iter().chain(m.d.weights()).filter(Variable::trainable).collect::<Vec<_>>();
    let g_loss = |m: &TwoNets| bce(1.0, &m.d.apply(&[m.g.apply(std::slice::from_ref(&z), true)?], true)?);
    m.d.set_trainable(false).unwrap();
    assert_eq!(all(&m).len(), 2, "only G's kernel and bias remain trainable");
    let (g0, d0) = (values(&m.g.weights()), values(&m.d.weights()));
    opt.minimize(|| g_loss(&m), &all(&m)).unwrap();
    assert_eq!(values(&m.d.weights()), d0);
    assert_ne!(values(&m.g.weights()), g0);
    m.d.set_trainable(true).unwrap();
    let mut opt = Optimizer::sgd(0.1, 0.0, false);
    opt.minimize(|| g_loss(&m), &all(&m)).unwrap();
    assert_ne!(values(&m.d.weights()), d0, "unfrozen, D is updated again");
}

#[test]
fn a_nan_custom_loss_stops_fit_naming_the_loss_unless_terminate_on_nan() {
    set_seed(6);
    let m = TwoNets::new();
    *m.poison.lock().unwrap() = f32::NAN;
    let e = m.fit_multi(&[data(8)], &[], opts(2), &mut []).unwrap_err().to_string();
    assert!(e.contains("two_nets: ") && e.contains("the d_loss became NaN at epoch 1, batch 0"), "{e}");
    let h = m.fit_multi(&[data(8)], &[], opts(2), &mut [&mut TerminateOnNan]).unwrap();
    assert_eq!(h.history["d_loss"].len(), 1, "TerminateOnNan stops after the first epoch");
    assert!(h.history["d_loss"][0].is_nan());
}

#[test]
fn evaluate_averages_test_step_logs_over_samples() {
    set_seed(7);
    let m = TwoNets::new();
    let x = data(10);
    // Batches of 4, 4 and 2: the average must weight each batch by its size.
    let got = m.evaluate_multi(std::slice::from_ref(&x), &[], 4).unwrap()["d_loss"];
    let z = Tensor::zeros([10, 2], fovea_core::DType::F32, Device::Cpu).unwrap();
    let whole = m.d_loss(&x, &z).unwrap().to_scalar::<f32>().unwrap() as f64;
    assert!((got - whole).abs() < 1e-5, "evaluate {got} vs the loss over all samples at once {whole}");
    let h = m
        .fit_multi(std::slice::from_ref(&x), &[], FitOptions { validation_data_multi: Some((vec![x.clone()], vec![])), ..opts(1) }, &mut [])
        .unwrap();
    assert!(h.history["val_d_loss"][0].is_finite());
}
