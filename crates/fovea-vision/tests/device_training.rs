//! LeNet-5 trained, evaluated and saved on a device outside host memory (the arena test
//! backend, which counts every host transfer): data crosses to the host only where asked —
//! the input batches going up, scalar logs and the saved weights coming down.

use fovea_core::testing::arena;
use fovea_core::{set_seed, Device, Tensor};
use fovea_nn::layer::{with_device, Layer};
use fovea_nn::losses::Loss;
use fovea_nn::model::io::{load_model_on, save_model};
use fovea_nn::model::{FitOptions, Model};
use fovea_nn::optimizers::Optimizer;
use fovea_vision::applications::lenet5;

/// The ordinal of this file's arena device (other test binaries use their own).
const ORDINAL: u16 = 50;

fn sgd() -> Optimizer {
    Optimizer::sgd(0.05, 0.0, false)
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

    // The optimizer updates on the variables' device: alone, with zero gradients made there
    // (an SGD step that changes nothing), it transfers nothing.
    let zero_grads: Vec<(Tensor, fovea_core::Variable)> =
        model.trainable_weights().into_iter().map(|v| (v.value().zeros_like(), v)).collect();
    arena::reset(ORDINAL);
    sgd().apply_gradients(&zero_grads).unwrap();
    assert_eq!(arena::transfers(ORDINAL), arena::Transfers::default(), "the optimizer alone");

    arena::reset(ORDINAL);
    let logs = model.train_on_batch(&x, &y).unwrap();
    assert!(logs["loss"].is_finite() && logs.contains_key("accuracy"), "{logs:?}");
    let t = arena::transfers(ORDINAL);
    // Up: the batch's images and labels, once each.
    assert_eq!((t.uploads, t.uploaded_elements), (2, n * 28 * 28 + n), "{t:?}");
    // Down: three scalars — the label-range check of the loss, the loss, the accuracy's hit count.
    assert_eq!(t.download_sizes, vec![1, 1, 1], "{t:?}");
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

    // A shuffled fit with Adam: the batches are gathered on the host and uploaded once each,
    // the moment slots are made and updated on the device, and each step sends back its
    // scalars only (label check, loss, accuracy).
    loaded.compile(Optimizer::adam(0.001), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();
    arena::reset(ORDINAL);
    let h = loaded.fit(&x, &y, FitOptions { epochs: 1, batch_size: 4, verbose: 0, seed: Some(1), ..Default::default() }).unwrap();
    assert!(h.history["loss"][0].is_finite(), "{h:?}");
    let t = arena::transfers(ORDINAL);
    assert_eq!((t.uploads, t.uploaded_elements), (4, n * 28 * 28 + n), "{t:?}");
    assert_eq!(t.download_sizes, vec![1; 6], "{t:?}");
}
