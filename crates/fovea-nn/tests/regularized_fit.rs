//! Weight regularizers through `fit` (the `model.losses()` path) against Keras 3: the penalty
//! before training, the per-epoch losses Keras reports (regularization included) and the weights
//! after two epochs of plain SGD (`tools/fixtures/gen_regularized_fit_reference.py` prints the
//! reference values; inputs and starting weights are the script's closed formulas).

use fovea_core::{testing::assert_close, Device, Tensor};
use fovea_nn::activations::Activation;
use fovea_nn::layer::Layer;
use fovea_nn::layers::Dense;
use fovea_nn::losses::Loss;
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use fovea_nn::regularizers::Regularizer;

fn grid(rows: usize, cols: usize, f: impl Fn(f64, f64) -> f64) -> Vec<f32> {
    (0..rows).flat_map(|i| (0..cols).map(move |j| (i as f64, j as f64))).map(|(i, j)| f(i, j) as f32).collect()
}

fn model(regularized: bool) -> Sequential {
    let d = Device::Cpu;
    let m = Sequential::with_input_shape(&[4]);
    let (mut first, mut second) = (Dense::new(3).activation(Activation::Tanh), Dense::new(2));
    if regularized {
        first = first.kernel_regularizer(Regularizer::l2(0.05)).bias_regularizer(Regularizer::l1(0.02));
        second = second.kernel_regularizer(Regularizer::l1_l2(0.01, 0.03));
    }
    m.add(first).unwrap();
    m.add(second).unwrap();
    m.build_for(&[4]).unwrap();
    let start = [
        Tensor::from_vec(grid(4, 3, |a, b| 0.4 * (0.5 * a + 1.1 * b + 0.3).sin()), [4, 3], d).unwrap(),
        Tensor::from_vec(vec![0.1f32, -0.2, 0.05], [3], d).unwrap(),
        Tensor::from_vec(grid(3, 2, |a, b| 0.5 * (0.8 * a - 0.6 * b).cos()), [3, 2], d).unwrap(),
        Tensor::from_vec(vec![0.3f32, -0.1], [2], d).unwrap(),
    ];
    for (v, t) in m.weights().iter().zip(start) {
        v.assign(&t).unwrap();
    }
    m.compile(Optimizer::sgd(0.1, 0.0, false), Loss::from_name("mse").unwrap(), &[]).unwrap();
    m
}

fn fit(m: &Sequential) -> Vec<f64> {
    let d = Device::Cpu;
    let x = Tensor::from_vec(grid(8, 4, |i, j| (1.3 * i + 0.7 * j).sin()), [8, 4], d).unwrap();
    let y = Tensor::from_vec(grid(8, 2, |i, k| (0.9 * i - 0.4 * k).cos()), [8, 2], d).unwrap();
    let opts = FitOptions { epochs: 2, batch_size: 4, shuffle: false, verbose: 0, ..Default::default() };
    m.fit(&x, &y, opts).unwrap().history["loss"].clone()
}

#[test]
fn regularized_dense_layers_fit_as_in_keras() {
    let m = model(true);
    let penalty: f32 = m.losses().unwrap().iter().map(|t| t.to_vec::<f32>().unwrap()[0]).sum();
    assert!((penalty - 0.100_469_01).abs() < 1e-6, "sum(model.losses) {penalty}, Keras 0.10046901");
    let losses = fit(&m);
    assert_close("epoch losses", &losses.iter().map(|&l| l as f32).collect::<Vec<_>>(), &[0.643_357_3, 0.572_978], 1e-5, 1e-6);
    let want: [&[f32]; 4] = [
        &[
            0.1643704, 0.418271, 0.2433694, 0.2775971, 0.3504009, 0.04908074, 0.3224162, 0.1997176, -0.156065, 0.2990789, 0.01362514,
            -0.3182022,
        ],
        &[0.07613382, -0.1880522, 0.0509278],
        &[0.4260612, 0.3341348, 0.3417644, 0.4488269, 0.03917113, 0.3212405],
        &[0.2217375, -0.05311305],
    ];
    for (i, (v, w)) in m.weights().iter().zip(want).enumerate() {
        assert_close(&format!("weight {i} after two epochs"), &v.value().to_vec::<f32>().unwrap(), w, 1e-5, 1e-6);
    }
    // The penalty is what moved them: the same model without regularizers ends elsewhere.
    let plain = model(false);
    assert!(plain.losses().unwrap().is_empty());
    let plain_losses = fit(&plain);
    assert!((plain_losses[0] - losses[0]).abs() > 0.05, "{plain_losses:?} vs {losses:?}");
}
