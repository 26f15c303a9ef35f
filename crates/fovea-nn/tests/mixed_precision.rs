//! Mixed precision: layers created under `mixed_bfloat16` / `mixed_float16` compute in the
//! 16-bit dtype with float32 variables, train to the accuracy of float32, and float16 training
//! uses a dynamic loss scale.

use fovea_core::ops::padding::Padding;
use fovea_core::{set_seed, DType, Device, Tensor};
use fovea_nn::activations::Activation;
use fovea_nn::layer::Layer;
use fovea_nn::layers::{BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D};
use fovea_nn::losses::Loss;
use fovea_nn::mixed_precision::{with_policy, Policy};
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;

fn conv_net() -> Sequential {
    let m = Sequential::with_input_shape(&[8, 8, 1]);
    m.add(Conv2D::new(8, (3, 3)).padding(Padding::Same).activation(Activation::Relu)).unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dropout::new(0.1)).unwrap();
    m.add(Dense::new(16).activation(Activation::Relu)).unwrap();
    m.add(Dense::new(2).activation(Activation::Softmax)).unwrap();
    m.build_for(&[8, 8, 1]).unwrap();
    m
}

/// Images whose class is which half (left or right) holds a bright bar.
fn bars(n: usize, seed: u64) -> (Tensor, Tensor) {
    let noise = Tensor::random_uniform([n, 8, 8, 1], 0.0, 0.3, Some(seed), Device::Cpu).unwrap().to_vec::<f32>().unwrap();
    let mut x = noise;
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i * 7 + seed as usize) % 2;
        let col = if class == 0 { 1 + i % 3 } else { 4 + i % 3 };
        for r in 0..8 {
            x[i * 64 + r * 8 + col] += 0.8;
        }
        y.push(class as i64);
    }
    (Tensor::from_vec(x, [n, 8, 8, 1], Device::Cpu).unwrap(), Tensor::from_vec(y, [n], Device::Cpu).unwrap())
}

fn compile(m: &Sequential) {
    m.compile(Optimizer::adam(0.01), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();
}

#[test]
fn mixed_bfloat16_layers_compute_in_bf16_keep_f32_variables_and_train() {
    set_seed(5);
    let model = with_policy(Policy::MixedBFloat16, conv_net);
    let float = with_policy(Policy::Float32, conv_net);
    float.set_weights(&model.get_weights()).unwrap();
    assert_eq!(model.base().dtype_policy(), Policy::MixedBFloat16);
    assert!(model.weights().iter().all(|v| v.value().dtype() == DType::F32), "variables stay float32");
    let (x, y) = bars(96, 1);
    // A layer's own output is in its compute dtype; the model's outputs come back as float32.
    let conv = &model.layers()[0];
    assert_eq!(conv.base().dtype_policy(), Policy::MixedBFloat16);
    assert_eq!(conv.apply(std::slice::from_ref(&x), false).unwrap().dtype(), DType::BF16);
    let p_mixed = model.predict(&x, 32).unwrap();
    assert_eq!(p_mixed.dtype(), DType::F32);
    // Before training, the bf16 forward pass agrees with the float32 one to bf16 precision.
    let p_float = float.predict(&x, 32).unwrap();
    let diff = p_mixed.sub(&p_float).unwrap().abs().unwrap().max(&[0, 1], false).unwrap().to_scalar::<f32>().unwrap();
    assert!(diff < 0.03, "bf16 and f32 predictions differ by {diff}");
    compile(&model);
    let h = model.fit(&x, &y, FitOptions { epochs: 12, batch_size: 16, verbose: 0, ..Default::default() }).unwrap();
    let (test_x, test_y) = bars(64, 2);
    let acc = model.evaluate(&test_x, &test_y, 32).unwrap()["accuracy"];
    assert!(acc >= 0.95, "mixed bf16 accuracy {acc}, history {:?}", h.history["loss"]);
    assert!(model.weights().iter().all(|v| v.value().dtype() == DType::F32), "updates keep variables float32");
}

#[test]
fn a_float32_layer_in_a_mixed_model_is_a_float32_island() {
    let model = with_policy(Policy::MixedBFloat16, conv_net);
    let last = model.layers().last().unwrap().clone();
    last.base().set_dtype_policy(Policy::Float32);
    let (x, _) = bars(4, 3);
    let hidden = model.layers()[..6].iter().try_fold(x.clone(), |h, l| l.apply(&[h], false)).unwrap();
    assert_eq!(hidden.dtype(), DType::BF16);
    assert_eq!(last.apply(&[hidden], false).unwrap().dtype(), DType::F32);
}

#[test]
fn mixed_float16_training_scales_the_loss_and_learns() {
    set_seed(9);
    let model = with_policy(Policy::MixedFloat16, conv_net);
    compile(&model);
    let (x, y) = bars(96, 4);
    // Trains to the accuracy float32 reaches here (the scaled loss keeps small float16
    // gradients from flushing to zero; overflowing steps are skipped).
    model.fit(&x, &y, FitOptions { epochs: 12, batch_size: 16, verbose: 0, ..Default::default() }).unwrap();
    let (test_x, test_y) = bars(64, 6);
    let acc = model.evaluate(&test_x, &test_y, 32).unwrap()["accuracy"];
    assert!(acc >= 0.95, "mixed f16 accuracy {acc}");
    let compiled = model.compiled().lock().unwrap();
    let scale = compiled.as_ref().unwrap().loss_scale.as_ref().expect("mixed_float16 compiles with a loss scale").scale();
    // Keras's initial 2^15 overflows float16 gradients here: those steps were skipped and the
    // scale halved (and 12 epochs of 6 steps are too few to grow it back).
    assert!((1.0..32768.0).contains(&scale), "{scale}");
    drop(compiled);
    // float32 and bf16 models train without one.
    let plain = with_policy(Policy::MixedBFloat16, conv_net);
    compile(&plain);
    assert!(plain.compiled().lock().unwrap().as_ref().unwrap().loss_scale.is_none());
}
