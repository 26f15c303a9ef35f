//! End-to-end training through `Sequential`, `compile` and `fit`.

use fovea_core::{set_seed, DType, Device, Tensor};
use fovea_nn::activations::Activation;
use fovea_nn::layer::Layer;
use fovea_nn::layers::Dense;
use fovea_nn::losses::Loss;
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;

#[test]
fn xor_mlp_2_8_1_converges() {
    set_seed(1);
    let d = Device::Cpu;
    let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], [4, 2], d).unwrap();
    let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], [4, 1], d).unwrap();
    let model = Sequential::new();
    model.add(Dense::new(8).activation(Activation::Tanh)).unwrap();
    model.add(Dense::new(1).activation(Activation::Sigmoid)).unwrap();
    model.compile(Optimizer::adam(0.05), Loss::from_name("binary_crossentropy").unwrap(), &["accuracy"]).unwrap();
    let h = model.fit(&x, &y, FitOptions { epochs: 400, batch_size: 4, verbose: 0, seed: Some(0), ..Default::default() }).unwrap();
    let loss = *h.history["loss"].last().unwrap();
    assert!(loss < 0.01, "XOR loss {loss}");
    assert_eq!(*h.history["accuracy"].last().unwrap(), 1.0);
    assert_eq!(model.weights().iter().map(|v| v.value().numel()).sum::<usize>(), 2 * 8 + 8 + 8 + 1);
    let p = model.predict(&x, 2).unwrap().to_vec::<f32>().unwrap();
    assert!(p[0] < 0.1 && p[1] > 0.9 && p[2] > 0.9 && p[3] < 0.1, "{p:?}");
}

/// Three Gaussian blobs in 2-D, labels 0..3.
fn blobs(n_per: usize, seed: u64) -> (Tensor, Tensor) {
    let centers = [(0.0f32, 3.0f32), (3.0, -2.0), (-3.0, -2.0)];
    let noise = Tensor::random_normal([3 * n_per, 2], 0.0, 1.0, Some(seed), Device::Cpu).unwrap().to_vec::<f32>().unwrap();
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 0..3 * n_per {
        let c = i % 3;
        xs.push(centers[c].0 + noise[2 * i]);
        xs.push(centers[c].1 + noise[2 * i + 1]);
        ys.push(c as i64);
    }
    (Tensor::from_vec(xs, [3 * n_per, 2], Device::Cpu).unwrap(), Tensor::from_vec(ys, [3 * n_per], Device::Cpu).unwrap())
}

#[test]
fn linear_classifier_reaches_95_percent_held_out() {
    set_seed(2);
    let (x, y) = blobs(200, 5);
    let (xt, yt) = blobs(100, 6);
    let model = Sequential::with_input_shape(&[2]);
    model.add(Dense::new(3)).unwrap();
    // The layer outputs logits, so the loss is told so, as a Keras user would.
    model
        .compile(
            Optimizer::sgd(0.1, 0.9, false),
            fovea_nn::losses::LossKind::SparseCategoricalCrossentropy { from_logits: true }.into(),
            &["accuracy"],
        )
        .unwrap();
    let h = model
        .fit(&x, &y, FitOptions { epochs: 10, batch_size: 32, validation_split: 0.2, verbose: 0, seed: Some(1), ..Default::default() })
        .unwrap();
    assert_eq!(h.history["val_accuracy"].len(), 10);
    let logs = model.evaluate(&xt, &yt, 64).unwrap();
    assert!(logs["accuracy"] >= 0.95, "held-out accuracy {}", logs["accuracy"]);
    assert!(h.history["loss"][9] < h.history["loss"][0]);
}

#[test]
fn int32_labels_train_exactly_as_int64_labels() {
    // TensorFlow's default label dtype is int32: fit, evaluate and every label metric take it.
    let (x, y) = blobs(50, 7);
    let run = |labels: &Tensor| {
        fovea_nn::names::clear_session();
        set_seed(3);
        let model = Sequential::with_input_shape(&[2]);
        model.add(Dense::new(3).activation(Activation::Softmax)).unwrap();
        model
            .compile(
                Optimizer::adam(0.05),
                Loss::from_name("sparse_categorical_crossentropy").unwrap(),
                &["accuracy", "sparse_top_k_categorical_accuracy"],
            )
            .unwrap();
        let h = model.fit(&x, labels, FitOptions { epochs: 3, batch_size: 16, verbose: 0, seed: Some(4), ..Default::default() }).unwrap();
        (h.history, model.evaluate(&x, labels, 32).unwrap())
    };
    let y32 = y.cast(DType::I32).unwrap();
    assert_eq!(y32.dtype(), DType::I32);
    let (h64, e64) = run(&y);
    let (h32, e32) = run(&y32);
    assert_eq!(h32, h64, "the same losses and metrics, epoch by epoch");
    assert_eq!(e32, e64);
    assert!(e32["accuracy"] > 0.9, "{e32:?}");
}

#[test]
fn fit_errors_are_clear() {
    let model = Sequential::new();
    model.add(Dense::new(1)).unwrap();
    let x = Tensor::zeros([4, 2], DType::F32, Device::Cpu).unwrap();
    let y = Tensor::zeros([3, 1], DType::F32, Device::Cpu).unwrap();
    let e = model.fit(&x, &y, FitOptions::default()).unwrap_err().to_string();
    assert!(e.contains("inputs have 4 samples but targets have shape [3, 1]"), "{e}");
    let y4 = Tensor::zeros([4, 1], DType::F32, Device::Cpu).unwrap();
    let e = model.fit(&x, &y4, FitOptions::default()).unwrap_err().to_string();
    assert!(e.contains("call compile() before fit()"), "{e}");
    model.compile(Optimizer::sgd(0.01, 0.0, false), Loss::from_name("mse").unwrap(), &[]).unwrap();
    let e = model.fit(&x, &y4, FitOptions { batch_size: 0, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("batch_size must be >= 1"), "{e}");
    let e = model.fit(&x, &y4, FitOptions { validation_split: 1.0, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("validation_split must be in [0, 1)"), "{e}");
    let e = model.compile(Optimizer::adam(0.1), Loss::from_name("mse").unwrap(), &["f7"]).unwrap_err().to_string();
    assert!(e.contains("unknown metric"), "{e}");
}

#[test]
fn class_and_sample_weights_scale_the_loss() {
    // With SGD at learning rate 0, fit changes nothing and the epoch loss is the weighted loss.
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [4, 1], Device::Cpu).unwrap();
    let y = Tensor::from_vec(vec![0i64, 1, 1, 0], [4], Device::Cpu).unwrap();
    let model = Sequential::with_input_shape(&[1]);
    model.add(Dense::new(2).activation(Activation::Softmax)).unwrap();
    model.build_for(&[1]).unwrap();
    model.compile(Optimizer::sgd(0.0, 0.0, false), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &[]).unwrap();
    let per = Loss::from_name("sparse_categorical_crossentropy").unwrap();
    let l = per.per_sample(&y, &model.predict(&x, 4).unwrap()).unwrap().to_vec::<f32>().unwrap();
    let opts = |cw: Option<Vec<(i64, f64)>>, sw: Option<Vec<f32>>| FitOptions {
        batch_size: 4,
        shuffle: false,
        verbose: 0,
        class_weight: cw.map(|v| v.into_iter().collect()),
        sample_weight: sw.map(|v| Tensor::from_vec(v, [4], Device::Cpu).unwrap()),
        ..Default::default()
    };
    // SPEC §2.1 #49 style weights: class 0 weighs 1.0, class 1 weighs 0.3.
    let h = model.fit(&x, &y, opts(Some(vec![(0, 1.0), (1, 0.3)]), None)).unwrap();
    let want = (l[0] + 0.3 * l[1] + 0.3 * l[2] + l[3]) / 4.0;
    assert!((h.history["loss"][0] - want as f64).abs() < 1e-5, "{} vs {want}", h.history["loss"][0]);
    let h = model.fit(&x, &y, opts(Some(vec![(0, 2.0), (1, 1.0)]), Some(vec![1.0, 0.0, 0.5, 1.0]))).unwrap();
    let want = (2.0 * l[0] + 0.5 * l[2] + 2.0 * l[3]) / 4.0;
    assert!((h.history["loss"][0] - want as f64).abs() < 1e-5);
    let e = model.fit(&x, &y, opts(Some(vec![(0, 1.0)]), None)).unwrap_err().to_string();
    assert!(e.contains("class_weight has no entry for class 1"), "{e}");
}
