//! Models on a device: weights are created on the model's device, `model.to(device)` moves
//! them, training and inference run there, and mixing devices is a clear error.

use fovea_core::ops::padding::Padding;
use fovea_core::{set_seed, Device, Tensor};
use fovea_nn::activations::Activation;
use fovea_nn::layer::{with_device, Layer};
use fovea_nn::layers::{BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D};
use fovea_nn::losses::Loss;
use fovea_nn::model::functional::{Connect, Functional, Input};
use fovea_nn::model::io::{load_model_on, save_model};
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;

/// A small conv net with every kind of weight: kernels, biases, batch-norm scale and moving
/// statistics.
fn conv_net(device: Device) -> Sequential {
    let m = Sequential::with_input_shape(&[8, 8, 2]).on_device(device).unwrap();
    m.add(Conv2D::new(4, (3, 3)).padding(Padding::Same)).unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(fovea_nn::layers::Activation::new(Activation::Relu)).unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(3).activation(Activation::Softmax)).unwrap();
    m.build_for(&[8, 8, 2]).unwrap();
    m
}

fn data() -> (Tensor, Tensor) {
    let x = Tensor::random_uniform([6, 8, 8, 2], -1.0, 1.0, Some(3), Device::Cpu).unwrap();
    let y = Tensor::from_vec(vec![0i64, 1, 2, 0, 1, 2], [6], Device::Cpu).unwrap();
    (x, y)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.to_vec::<f32>().unwrap().iter().zip(b.to_vec::<f32>().unwrap()).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max)
}

#[test]
fn weights_are_created_on_the_models_device_and_a_step_matches_the_cpu() {
    set_seed(7);
    let cpu = conv_net(Device::Cpu);
    let reference = conv_net(Device::Reference);
    assert_eq!(reference.device(), Device::Reference);
    for v in reference.weights() {
        assert_eq!(v.value().device(), Device::Reference, "{} was created off the model's device", v.name());
    }
    // Start from the same values (each weight keeps its device when assigned).
    reference.set_weights(&cpu.get_weights()).unwrap();
    assert!(reference.weights().iter().all(|v| v.value().device() == Device::Reference));
    let (x, y) = data();
    let mut logs = Vec::new();
    for m in [&cpu, &reference] {
        m.compile(Optimizer::sgd(0.1, 0.9, false), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();
        logs.push(m.train_on_batch(&x, &y).unwrap());
    }
    assert!((logs[0]["loss"] - logs[1]["loss"]).abs() < 1e-5, "{logs:?}");
    assert_eq!(logs[0]["accuracy"], logs[1]["accuracy"]);
    for (a, b) in cpu.weights().iter().zip(reference.weights()) {
        assert_eq!(b.value().device(), Device::Reference, "{} left the device while training", b.name());
        let d = max_diff(&a.value(), &b.value());
        assert!(d < 1e-5, "{}: cpu and reference differ by {d} after one step", a.name());
    }
    // A fit (with validation) and an evaluate run on the device too.
    let h =
        reference.fit(&x, &y, FitOptions { epochs: 1, batch_size: 4, validation_split: 0.3, verbose: 0, ..Default::default() }).unwrap();
    assert!(h.history["val_loss"][0].is_finite(), "{h:?}");
    let e = reference.evaluate(&x, &y, 4).unwrap();
    assert!(e["loss"].is_finite() && (0.0..=1.0).contains(&e["accuracy"]), "{e:?}");
}

#[test]
fn a_model_moved_to_the_reference_device_predicts_as_on_the_cpu() {
    set_seed(11);
    let model = conv_net(Device::Cpu);
    let (x, _) = data();
    let on_cpu = model.predict(&x, 4).unwrap();
    model.to(Device::Reference).unwrap();
    assert_eq!(model.device(), Device::Reference);
    for v in model.weights() {
        assert_eq!(v.value().device(), Device::Reference, "{} was not moved", v.name());
    }
    let on_reference = model.predict(&x, 4).unwrap();
    // The prediction stays on the model's device and reads back from there.
    assert_eq!(on_reference.device(), Device::Reference);
    assert!(max_diff(&on_cpu, &on_reference) < 1e-5);
    // A layer added later builds its weights where the model is.
    let head = Sequential::new().on_device(Device::Reference).unwrap();
    head.add(Dense::new(2)).unwrap();
    head.build_for(&[5]).unwrap();
    assert!(head.weights().iter().all(|v| v.value().device() == Device::Reference));
    // A model trained on the CPU keeps training after the move: the optimizer's slots follow
    // their variables at the next update.
    let (x6, y6) = data();
    let moved = conv_net(Device::Cpu);
    moved.compile(Optimizer::adam(0.01), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();
    moved.train_on_batch(&x6, &y6).unwrap();
    moved.to(Device::Reference).unwrap();
    assert!(moved.train_on_batch(&x6, &y6).unwrap()["loss"].is_finite());
    assert!(moved.weights().iter().all(|v| v.value().device() == Device::Reference));
    // An unavailable device is an error, and the model stays where it was.
    let e = model.to(Device::Cuda(0)).unwrap_err().to_string();
    assert!(e.contains("cuda:0 is unavailable"), "{e}");
    assert!(model.weights().iter().all(|v| v.value().device() == Device::Reference));
}

#[test]
fn a_functional_model_builds_inside_with_device_and_loads_onto_a_device() {
    set_seed(5);
    let model = with_device(Device::Reference, || {
        let input = Input::new(&[4]);
        let hidden = Dense::new(3).activation(Activation::Relu).on(&input).unwrap();
        let out = Dense::new(2).on(&hidden).unwrap();
        Functional::new(&[&input], &[&out]).unwrap()
    });
    // The scope ends with the closure.
    assert_eq!(fovea_nn::layer::default_device(), Device::Cpu);
    assert_eq!(model.device(), Device::Reference);
    assert!(model.weights().iter().all(|v| v.value().device() == Device::Reference));
    let x = Tensor::random_uniform([3, 4], -1.0, 1.0, Some(1), Device::Cpu).unwrap();
    let before = model.predict(&x, 3).unwrap();

    // A saved Sequential loads onto the device asked for, with the same values.
    let seq = conv_net(Device::Cpu);
    seq.compile(Optimizer::adam(0.01), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();
    let dir = std::env::temp_dir().join(format!("fovea-nn-device-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    save_model(&seq, &path).unwrap();
    let loaded = load_model_on(&path, Device::Reference).unwrap();
    assert_eq!(loaded.device(), Device::Reference);
    for (a, b) in seq.weights().iter().zip(loaded.weights()) {
        assert_eq!(b.value().device(), Device::Reference, "{}", b.name());
        assert_eq!(a.value().to_vec::<f32>().unwrap(), b.value().to_vec::<f32>().unwrap(), "{}", a.name());
    }
    let e = load_model_on(&path, Device::Cuda(1)).err().expect("no CUDA backend in this build").to_string();
    assert!(e.contains("cuda:1 is unavailable"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();

    // Moving the functional model back gives the same outputs on the CPU.
    model.to(Device::Cpu).unwrap();
    let after = model.predict(&x, 3).unwrap();
    assert_eq!(after.device(), Device::Cpu);
    assert!(max_diff(&before, &after) < 1e-6);
}

#[test]
fn tensors_of_two_devices_in_one_op_are_an_error_naming_both() {
    let a = Tensor::ones([2, 2], fovea_core::DType::F32, Device::Cpu).unwrap();
    let b = Tensor::ones([2, 2], fovea_core::DType::F32, Device::Reference).unwrap();
    let e = a.add(&b).unwrap_err().to_string();
    assert!(e.contains("cpu") && e.contains("reference"), "{e}");
    // A layer whose weights are on the reference device refuses a CPU input when called
    // directly (models move their inputs; a bare layer does not guess).
    let dense = Dense::new(2);
    dense.to(Device::Reference).unwrap();
    dense.apply(std::slice::from_ref(&b), false).unwrap();
    let e = dense.apply(&[a], false).unwrap_err().to_string();
    assert!(e.contains("cpu") && e.contains("reference"), "{e}");
}
