//! LeNet-5 trained, evaluated and saved on a device outside host memory (the arena test
//! backend, which counts every host transfer): data crosses to the host only where asked —
//! the input batches going up, scalar logs and the saved weights coming down.

use fovea_core::testing::arena;
use fovea_core::{set_seed, Device, Tensor};
use fovea_nn::layer::{with_device, Layer};
use fovea_nn::losses::Loss;
use fovea_nn::model::io::{load_model_on, save_model};
use fovea_nn::model::Model;
use fovea_nn::optimizers::Optimizer;
use fovea_vision::applications::lenet5;

/// The ordinal of this file's arena device (other test binaries use their own).
const ORDINAL: u16 = 50;

fn sgd() -> Optimizer {
    Optimizer::sgd(0.05, 0.0, false)
}

/// Removes `part` from `all` as multisets of download sizes, failing when `part` is not in it.
fn without(all: &[usize], part: &[usize]) -> Vec<usize> {
    let mut rest = all.to_vec();
    for p in part {
        let i = rest.iter().position(|r| r == p).unwrap_or_else(|| panic!("download of {p} elements missing from {all:?}"));
        rest.remove(i);
    }
    rest
}

#[test]
fn lenet5_on_a_counting_device_transfers_only_batches_logs_and_saved_weights() {
    let dev = arena::device(ORDINAL);
    arena::reset(ORDINAL);
    set_seed(3);
    let model = with_device(dev, || lenet5((28, 28, 1), 10)).unwrap();
    let weights = model.weights();
    let sizes: Vec<usize> = weights.iter().map(|v| v.value().numel()).collect();
    assert!(weights.iter().all(|v| v.value().device() == dev));
    // The weights were drawn on the device from seeds: nothing crossed.
    assert_eq!(arena::transfers(ORDINAL), arena::Transfers::default(), "building");

    let n = 8;
    let x = Tensor::random_uniform([n, 28, 28, 1], 0.0, 1.0, Some(9), Device::Cpu).unwrap();
    let y = Tensor::from_vec((0..n as i64).map(|i| i % 10).collect::<Vec<_>>(), [n], Device::Cpu).unwrap();
    model.compile(sgd(), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();

    // What the optimizer transfers by itself for one update of these variables, measured alone
    // with zero gradients made on the device (an SGD step with a zero gradient changes nothing).
    // While `Optimizer` updates through host memory it downloads each gradient and each weight
    // and uploads each weight back; once it runs as tensor ops on the variable's device this is
    // empty, and the assertions below hold unchanged.
    let zero_grads: Vec<(Tensor, fovea_core::Variable)> =
        model.trainable_weights().into_iter().map(|v| (v.value().zeros_like(), v)).collect();
    arena::reset(ORDINAL);
    sgd().apply_gradients(&zero_grads).unwrap();
    let optimizer = arena::transfers(ORDINAL);
    eprintln!("the optimizer's own transfers per step: {optimizer:?}");

    arena::reset(ORDINAL);
    let logs = model.train_on_batch(&x, &y).unwrap();
    assert!(logs["loss"].is_finite() && logs.contains_key("accuracy"), "{logs:?}");
    let t = arena::transfers(ORDINAL);
    // Up: the batch's images and labels, once each (plus the optimizer's own traffic).
    assert_eq!(t.uploads - optimizer.uploads, 2, "{t:?}");
    assert_eq!(t.uploaded_elements - optimizer.uploaded_elements, n * 28 * 28 + n, "{t:?}");
    // Down: three scalars — the label-range check of the loss, the loss, the accuracy's hit count.
    assert_eq!(without(&t.download_sizes, &optimizer.download_sizes), vec![1, 1, 1], "{t:?} with optimizer {optimizer:?}");
    assert!(model.weights().iter().all(|v| v.value().device() == dev), "training kept the weights on the device");

    arena::reset(ORDINAL);
    let eval = model.evaluate(&x, &y, n).unwrap();
    assert!(eval["loss"].is_finite(), "{eval:?}");
    let t = arena::transfers(ORDINAL);
    assert_eq!((t.uploads, t.uploaded_elements), (2, n * 28 * 28 + n), "{t:?}");
    // The loss metric's label check and sum, and the accuracy's hit count.
    assert_eq!(t.download_sizes, vec![1, 1, 1], "{t:?}");

    // A checkpoint is an explicit download of every weight, once, in model order.
    let dir = std::env::temp_dir().join(format!("fovea-vision-arena-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lenet5.safetensors");
    arena::reset(ORDINAL);
    save_model(&model, &path).unwrap();
    let t = arena::transfers(ORDINAL);
    assert_eq!(t.uploads, 0, "{t:?}");
    assert_eq!(t.download_sizes, sizes, "{t:?}");

    // Loading onto the device uploads each weight once and reads nothing back.
    arena::reset(ORDINAL);
    let loaded = load_model_on(&path, dev).unwrap();
    let t = arena::transfers(ORDINAL);
    assert_eq!((t.uploads, t.uploaded_elements, t.downloads), (sizes.len(), sizes.iter().sum(), 0), "{t:?}");
    for (a, b) in model.weights().iter().zip(loaded.weights()) {
        assert_eq!(b.value().device(), dev);
        assert_eq!(a.value().to_vec::<f32>().unwrap(), b.value().to_vec::<f32>().unwrap(), "{}", a.name());
    }
    std::fs::remove_dir_all(dir).unwrap();
}
