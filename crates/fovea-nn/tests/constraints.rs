//! Weight constraints: Keras's formulas (against Keras 3's own output), applied by optimizers
//! after every update, and kept in layer configs.

use fovea_core::{Device, Tensor};
use fovea_nn::constraints::Constraint;
use fovea_nn::layers::Dense;
use fovea_nn::losses::Loss;
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use serde_json::Value;

fn tensor(v: &Value, shape: &Value) -> Tensor {
    let data: Vec<f32> = v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    let dims: Vec<usize> = shape.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    Tensor::from_vec(data, dims, Device::Cpu).unwrap()
}

/// Cases from `tools/fixtures/gen_constraint_fixtures.py` (Keras 3 on TensorFlow 2.21).
#[test]
fn constraints_match_keras() {
    let f: Value = serde_json::from_str(include_str!("fixtures/constraints.json")).unwrap();
    let (w, d) = (tensor(&f["w"], &f["w_shape"]), tensor(&f["d"], &f["d_shape"]));
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        // Keras's own config parses as it is written.
        let c: Constraint = serde_json::from_value(case["config"].clone()).unwrap();
        let x = if case["input"] == "w" { &w } else { &d };
        let got = c.apply(x).unwrap().to_vec::<f32>().unwrap();
        let want: Vec<f32> = case["expected"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "{}: element {i}: {g} vs Keras {e}", case["config"]);
        }
    }
}

#[test]
fn optimizers_apply_constraints_after_every_update_and_configs_keep_them() {
    fovea_core::set_seed(1);
    let model = Sequential::with_input_shape(&[3]);
    model
        .add(
            Dense::new(4)
                .kernel_constraint(Constraint::NonNeg {})
                .bias_constraint(Constraint::ClipByValue { min_value: -0.05, max_value: 0.05 }),
        )
        .unwrap();
    model.add(Dense::new(1)).unwrap();
    model.build_for(&[3]).unwrap();
    model.compile(Optimizer::sgd(0.05, 0.0, false), Loss::from_name("mse").unwrap(), &[]).unwrap();
    // Targets that pull the first layer's weights negative and its bias far from zero.
    let x = Tensor::random_uniform([32, 3], -1.0, 1.0, Some(4), Device::Cpu).unwrap();
    let y = x.sum(&[1], true).unwrap().mul_scalar(-3.0).unwrap().add_scalar(2.0).unwrap();
    model.fit(&x, &y, FitOptions { epochs: 5, batch_size: 8, verbose: 0, ..Default::default() }).unwrap();
    let first = &model.layers()[0];
    let (kernel, bias) = (first.weights()[0].value().to_vec::<f32>().unwrap(), first.weights()[1].value().to_vec::<f32>().unwrap());
    assert!(kernel.iter().all(|&v| v >= 0.0), "NonNeg kernel after training: {kernel:?}");
    assert!(bias.iter().all(|v| v.abs() <= 0.05 + 1e-7), "clipped bias: {bias:?}");
    // The unconstrained layer did move negative, so the constraint is what held the first.
    assert!(model.layers()[1].weights()[0].value().to_vec::<f32>().unwrap().iter().any(|&v| v < 0.0));
    let config = first.config();
    assert_eq!(config["kernel_constraint"], serde_json::json!({"class_name": "NonNeg", "config": {}}));
    let rebuilt = fovea_nn::model::registry::layer_from_config("Dense", &config).unwrap();
    assert_eq!(rebuilt.config()["bias_constraint"], config["bias_constraint"]);
}
