//! The functional API: branches and merges, shared layers, nested models, freezing, errors.
#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests

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
    assert_eq!(model.non_trainable_variables().len(), 2, "the frozen base's kernel and bias");
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

#[test]
fn two_output_model_reports_keras_log_names_and_weights_its_losses() {
    set_seed(8);
    let img = Input::new(&[6]);
    let h = Dense::new(16).activation(Activation::Relu).on(&img).unwrap();
    let class_out = Dense::new(3).activation(Activation::Softmax).named("class_output").unwrap().on(&h).unwrap();
    let loc_out = Dense::new(4).named("loc_output").unwrap().on(&h).unwrap();
    let model = Functional::new(&[&img], &[&class_out, &loc_out]).unwrap();
    assert_eq!(model.output_names(), vec!["class_output", "loc_output"]);
    let x = Tensor::random_uniform([40, 6], -1.0, 1.0, Some(2), Device::Cpu).unwrap();
    let y_class = Tensor::from_vec((0..40).map(|i| (i % 3) as i64).collect::<Vec<_>>(), [40], Device::Cpu).unwrap();
    let y_box = Tensor::random_uniform([40, 4], 0.0, 1.0, Some(3), Device::Cpu).unwrap();
    let losses = [Loss::from_name("sparse_categorical_crossentropy").unwrap(), Loss::from_name("mse").unwrap()];
    model.compile_outputs(Optimizer::adam(0.01), &losses, Some(&[0.8, 0.2]), &[&["accuracy"], &[]]).unwrap();
    let h = model
        .fit_multi(
            &[x.clone()],
            &[y_class.clone(), y_box.clone()],
            FitOptions { epochs: 3, batch_size: 8, validation_split: 0.25, verbose: 0, ..Default::default() },
            &mut [],
        )
        .unwrap();
    for key in [
        "loss",
        "class_output_loss",
        "loc_output_loss",
        "class_output_accuracy",
        "val_loss",
        "val_class_output_loss",
        "val_class_output_accuracy",
    ] {
        assert!(h.history.contains_key(key), "missing {key} in {:?}", h.history.keys());
    }
    assert!(!h.history.contains_key("loc_output_accuracy"), "metrics were given for the class output only");
    // In evaluation the total is exactly the weighted sum of the per-output losses.
    let logs = model.evaluate_multi(&[x.clone()], &[y_class.clone(), y_box.clone()], 16).unwrap();
    let total = 0.8 * logs["class_output_loss"] + 0.2 * logs["loc_output_loss"];
    assert!((logs["loss"] - total).abs() < 1e-6, "{logs:?}");
    let preds = model.predict_multi(&[x], 16).unwrap();
    assert_eq!((preds[0].dims(), preds[1].dims()), (&[40usize, 3][..], &[40usize, 4][..]));
    let e = model.compile_outputs(Optimizer::adam(0.01), &losses, Some(&[1.0]), &[]).unwrap_err().to_string();
    assert!(e.contains("loss_weights: expected 2"), "{e}");
    let three = [losses[0], losses[1], losses[1]];
    assert!(model.compile_outputs(Optimizer::adam(0.01), &three, None, &[]).unwrap_err().to_string().contains("expected 1 or 2"));
}

#[test]
fn inference_fuses_conv_batch_norm_relu_without_changing_outputs() {
    // 4 channels: the per-channel map runs as its own pass after the convolution; 16 and 32:
    // the CPU's product kernel applies it to each output block (strided and 1×1 convolutions).
    for (width, stride) in [(4, 1), (16, 2), (32, 1)] {
        fused_inference_matches_composed(width, stride);
    }
}

fn fused_inference_matches_composed(width: usize, stride: usize) {
    use fovea_core::ops::padding::Padding;
    use fovea_nn::layers::{Activation as ActivationLayer, BatchNormalization, Conv2D};
    set_seed(11);
    let x_in = Input::new(&[6, 6, 3]);
    let conv1 = Conv2D::new(width, (3, 3)).strides((stride, stride)).padding(Padding::Same).on(&x_in).unwrap();
    let bn1 = BatchNormalization::new().on(&conv1).unwrap();
    let relu1 = ActivationLayer::new(Activation::Relu).on(&bn1).unwrap();
    let conv2 = Conv2D::new(width, (1, 1)).use_bias(false).on(&relu1).unwrap();
    let bn2 = BatchNormalization::new().on(&conv2).unwrap();
    let sum = Add::new().on_many(&[&bn2, &relu1]).unwrap();
    let out = ActivationLayer::new(Activation::Relu).on(&sum).unwrap();
    // Two outputs: `bn1` being an output cuts its chain before the ReLU.
    let model = Functional::new(&[&x_in], &[&out, &bn1]).unwrap();
    let x = Tensor::random_uniform([2, 6, 6, 3], -1.0, 1.0, Some(5), Device::Cpu).unwrap();
    model.call_all(&[x.clone()], false).unwrap(); // builds the layers
                                                  // Non-trivial moving statistics, γ, β and biases (all positive, so the variances are valid).
    for (k, v) in model.weights().iter().enumerate() {
        let dims = v.value().dims().to_vec();
        v.assign(&Tensor::random_uniform(dims, 0.2, 1.5, Some(100 + k as u64), Device::Cpu).unwrap()).unwrap();
    }
    // Recording (the trainable weights require gradients): every layer runs on its own.
    let composed = model.call_all(&[x.clone()], false).unwrap();
    let fused = fovea_core::no_grad(|| model.call_all(&[x.clone()], false)).unwrap();
    for (f, c) in fused.iter().zip(&composed) {
        fovea_core::testing::assert_tensor_close(&format!("fused inference, width {width}"), f, c, 1e-5, 1e-6);
    }
    assert!(composed[0].to_vec::<f32>().unwrap().contains(&0.0), "the ReLU clipped something");
}
