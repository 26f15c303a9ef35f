//! Callbacks inside `fit`: stopping, checkpoints, CSV logs, learning-rate control, NaN.

use fovea_core::{set_seed, Device, Tensor};
use fovea_nn::callbacks::*;
use fovea_nn::layer::Layer;
use fovea_nn::layers::Dense;
use fovea_nn::losses::Loss;
use fovea_nn::model::training::Logs;
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;

fn setup(lr: f64) -> (Sequential, Tensor, Tensor) {
    set_seed(11);
    let m = Sequential::with_input_shape(&[3]);
    m.add(Dense::new(1)).unwrap();
    m.compile(Optimizer::sgd(lr, 0.0, false), Loss::from_name("mse").unwrap(), &[]).unwrap();
    let x = Tensor::random_uniform([32, 3], -1.0, 1.0, Some(1), Device::Cpu).unwrap();
    let y = x.sum(&[1], true).unwrap();
    (m, x, y)
}

fn opts(epochs: usize) -> FitOptions {
    FitOptions { epochs, batch_size: 8, verbose: 0, seed: Some(0), ..Default::default() }
}

struct WeightLog(Vec<Vec<f32>>);
impl Callback for WeightLog {
    fn on_epoch_end(&mut self, _e: usize, _l: &Logs, ctx: &mut CallbackContext<'_>) -> fovea_nn::Result<()> {
        self.0.push(ctx.model.weights()[0].value().to_vec::<f32>().unwrap());
        Ok(())
    }
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    let (m, x, y) = setup(0.05);
    // Nothing beats epoch 1 by 1e9, so patience 2 stops after epoch 3.
    let mut es = EarlyStopping::new("loss", 2);
    es.min_delta = 1e9;
    es.restore_best_weights = true;
    let mut log = WeightLog(vec![]);
    let h = m.fit_with_callbacks(&x, &y, opts(10), &mut [&mut log, &mut es]).unwrap();
    assert_eq!(h.history["loss"].len(), 3);
    assert_eq!(es.stopped_epoch, 2);
    assert_eq!(m.weights()[0].value().to_vec::<f32>().unwrap(), log.0[0], "weights of the best (first) epoch restored");
    let mut bad = EarlyStopping::new("val_loss", 1);
    let e = m.fit_with_callbacks(&x, &y, opts(1), &mut [&mut bad]).unwrap_err().to_string();
    assert!(e.contains("monitors \"val_loss\", which is not in the logs"), "{e}");
}

#[test]
fn checkpoints_and_csv_logs_are_written() {
    let dir = std::env::temp_dir().join(format!("fovea-cb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (m, x, y) = setup(0.05);
    let mut every = ModelCheckpoint::new(dir.join("w-{epoch:02d}-{loss:.3f}.safetensors").to_str().unwrap());
    let mut best = ModelCheckpoint::new(dir.join("best.safetensors").to_str().unwrap()).best_only("loss");
    let mut csv = CsvLogger::new(dir.join("log.csv"));
    m.fit_with_callbacks(&x, &y, opts(3), &mut [&mut every, &mut best, &mut csv]).unwrap();
    assert_eq!(every.saved.len(), 3);
    assert!(every.saved[0].file_name().unwrap().to_str().unwrap().starts_with("w-01-"));
    assert!(every.saved.iter().all(|p| p.is_file()));
    // The loss falls every epoch here, so "best only" also saved three times, to one file.
    assert_eq!(best.saved.len(), 3);
    fovea_nn::model::io::load_weights(&m, &best.saved[2]).unwrap();
    let text = std::fs::read_to_string(dir.join("log.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "epoch,learning_rate,loss");
    assert_eq!(lines.len(), 4);
    assert!(lines[3].starts_with("2,0.05,"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn learning_rate_callbacks_change_the_optimizer() {
    let (m, x, y) = setup(0.1);
    let mut sched = LearningRateScheduler(|epoch, lr| if epoch < 2 { lr } else { lr * 0.5 });
    let h = m.fit_with_callbacks(&x, &y, opts(4), &mut [&mut sched]).unwrap();
    assert_eq!(h.history["learning_rate"], vec![0.1, 0.1, 0.05, 0.025]);
    // A learning rate too small to move the loss makes it plateau: the rate is cut each epoch.
    let (m, x, y) = setup(1e-12);
    let mut plateau = ReduceLrOnPlateau::new("loss", 0.5, 1);
    let h = m.fit_with_callbacks(&x, &y, opts(3), &mut [&mut plateau]).unwrap();
    let lr = &h.history["learning_rate"];
    assert_eq!(lr[0], 1e-12);
    assert!((lr[2] / lr[1] - 0.5).abs() < 1e-9, "{lr:?}");
}

#[test]
fn nan_losses_stop_cleanly_or_fail_clearly() {
    let (m, x, y) = setup(0.05);
    let mut xs = x.to_vec::<f32>().unwrap();
    xs[5] = f32::NAN;
    let xn = Tensor::from_vec(xs, [32, 3], Device::Cpu).unwrap();
    let e = m.fit(&xn, &y, FitOptions { shuffle: false, ..opts(2) }).unwrap_err().to_string();
    assert!(e.contains("the loss became NaN at epoch 1, batch 0"), "{e}");
    let before = m.weights()[0].value().to_vec::<f32>().unwrap();
    let h = m.fit_with_callbacks(&xn, &y, FitOptions { shuffle: false, ..opts(2) }, &mut [&mut TerminateOnNan]).unwrap();
    assert_eq!(h.history["loss"].len(), 1);
    assert_eq!(m.weights()[0].value().to_vec::<f32>().unwrap(), before, "a NaN batch must not update the weights");
}

struct CrashAfter(usize);
impl Callback for CrashAfter {
    fn on_epoch_end(&mut self, epoch: usize, _l: &Logs, _ctx: &mut CallbackContext<'_>) -> fovea_nn::Result<()> {
        if epoch + 1 == self.0 {
            return Err(fovea_nn::Error::Config("simulated crash".into()));
        }
        Ok(())
    }
}

#[test]
fn backup_and_restore_resumes_to_the_same_weights() {
    let dir = std::env::temp_dir().join(format!("fovea-backup-{}", std::process::id()));
    let run = |interrupt: bool| -> Vec<Vec<f32>> {
        let (m, x, y) = setup(0.05);
        m.compile(Optimizer::adam(0.05), Loss::from_name("mse").unwrap(), &[]).unwrap();
        let init: Vec<Tensor> = m.weights().iter().map(|v| v.value().detach()).collect();
        if interrupt {
            let mut backup = BackupAndRestore::new(&dir);
            let e = m.fit_with_callbacks(&x, &y, opts(4), &mut [&mut backup, &mut CrashAfter(2)]).unwrap_err();
            assert!(e.to_string().contains("simulated crash"));
            assert!(dir.join("backup.safetensors").is_file());
            // A fresh process: new model with other initial weights, same compile.
            let (m2, _, _) = setup(0.05);
            m2.compile(Optimizer::adam(0.05), Loss::from_name("mse").unwrap(), &[]).unwrap();
            let mut backup = BackupAndRestore::new(&dir);
            let h = m2.fit_with_callbacks(&x, &y, opts(4), &mut [&mut backup]).unwrap();
            assert_eq!(h.history["loss"].len(), 2, "resumed at epoch 3 of 4");
            assert!(!dir.join("backup.safetensors").exists(), "a finished fit removes its backup");
            return m2.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect();
        }
        for (v, t) in m.weights().iter().zip(init) {
            v.assign(&t).unwrap();
        }
        m.fit(&x, &y, opts(4)).unwrap();
        m.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect()
    };
    assert_eq!(run(true), run(false));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn initial_epoch_steps_per_epoch_and_test_on_batch() {
    let (m, x, y) = setup(0.05);
    let h = m.fit(&x, &y, FitOptions { initial_epoch: 2, steps_per_epoch: Some(7), ..opts(4) }).unwrap();
    assert_eq!(h.history["loss"].len(), 2);
    let before: Vec<Vec<f32>> = m.weights().iter().map(|w| w.value().to_vec::<f32>().unwrap()).collect();
    let logs = m.test_on_batch(&x, &y).unwrap();
    // Reference: the mean squared error of the model's own weights, computed on the host in
    // f64; and test_on_batch must not train.
    let (w, b) = (&before[0], before[1][0] as f64);
    let (xs, ys) = (x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
    let mse = (0..32)
        .map(|i| {
            let pred = (0..3).map(|j| xs[i * 3 + j] as f64 * w[j] as f64).sum::<f64>() + b;
            (pred - ys[i] as f64).powi(2)
        })
        .sum::<f64>()
        / 32.0;
    assert!((logs["loss"] - mse).abs() <= 1e-5 * mse.max(1e-3), "test_on_batch loss {} vs host MSE {mse}", logs["loss"]);
    let after: Vec<Vec<f32>> = m.weights().iter().map(|w| w.value().to_vec::<f32>().unwrap()).collect();
    assert_eq!(before, after, "test_on_batch changed the weights");
    let e = m.fit(&x, &y, FitOptions { steps_per_epoch: Some(0), ..opts(1) }).unwrap_err().to_string();
    assert!(e.contains("steps_per_epoch must be >= 1"), "{e}");
}

#[test]
fn validation_steps_limit_the_validation_batches() {
    let (m, x, y) = setup(0.05);
    let (vx, vy) = (x.narrow(0, 8, 24).unwrap(), y.narrow(0, 8, 24).unwrap());
    let with = |steps: Option<usize>| {
        let options = FitOptions { validation_data: Some((vx.clone(), vy.clone())), validation_steps: steps, ..opts(1) };
        m.fit(&x, &y, options).unwrap().history["val_loss"][0]
    };
    // The epoch's validation loss is the loss of exactly the first batch (8 samples), measured
    // with the weights the epoch ended with.
    let first_batch = with(Some(1));
    let expected = m.evaluate(&vx.narrow(0, 0, 8).unwrap(), &vy.narrow(0, 0, 8).unwrap(), 8).unwrap()["loss"];
    assert!((first_batch - expected).abs() <= 1e-6 * expected.max(1e-3), "{first_batch} vs {expected}");
    let all = with(None);
    let expected = m.evaluate(&vx, &vy, 8).unwrap()["loss"];
    assert!((all - expected).abs() <= 1e-6 * expected.max(1e-3), "{all} vs {expected}");
    // The two are different measurements: the first batch alone is not the whole set.
    let first = m.evaluate(&vx.narrow(0, 0, 8).unwrap(), &vy.narrow(0, 0, 8).unwrap(), 8).unwrap()["loss"];
    assert!((first - expected).abs() > 1e-4 * expected, "{first} vs {expected}");
    let e = m.fit(&x, &y, FitOptions { validation_steps: Some(0), ..opts(1) }).unwrap_err().to_string();
    assert!(e.contains("validation_steps must be at least 1"), "{e}");
}
