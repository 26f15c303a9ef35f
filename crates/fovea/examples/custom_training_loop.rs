//! A custom training loop with the gradient tape and an extra loss term (`add_loss`), the way
//! a TensorFlow user writes `with tf.GradientTape() as tape: ...; optimizer.apply_gradients`.
//!
//! Run: `cargo run --release -p fovea --example custom_training_loop`

use fovea::nn::activations::Activation;
use fovea::nn::layer::Layer;
use fovea::nn::layers::Dense;
use fovea::nn::losses::Loss;
use fovea::nn::model::Sequential;
use fovea::nn::optimizers::Optimizer;
use fovea::prelude::*;

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    set_seed(0);
    // y = sin(3x) on [-1, 1], fitted by a small MLP.
    let x = Tensor::random_uniform([256, 1], -1.0, 1.0, Some(1), Device::Cpu)?;
    let y = x.mul_scalar(3.0)?.sin()?;
    let model = Sequential::with_input_shape(&[1]);
    model.add(Dense::new(32).activation(Activation::Tanh))?;
    model.add(Dense::new(1))?;
    model.build_for(&[1])?;
    let loss_fn = Loss::from_name("mse")?;
    let mut optimizer = Optimizer::adam(0.01);
    for step in 0..=500 {
        let tape = GradientTape::new();
        let pred = model.apply(std::slice::from_ref(&x), true)?;
        // A custom penalty on the output scale, added like Keras's `add_loss`.
        model.base().add_loss(pred.square()?.mean_all()?.mul_scalar(1e-3)?);
        let mut loss = loss_fn.compute(&y, &pred, None)?;
        for extra in model.losses()? {
            loss = loss.add(&extra)?;
        }
        let vars = model.trainable_weights();
        let values: Vec<Tensor> = vars.iter().map(|v| v.value()).collect();
        let grads = tape.gradient(&loss, &values.iter().collect::<Vec<_>>())?;
        let pairs = grads.into_iter().zip(vars).map(|(g, v)| (g.expect("every weight is used"), v)).collect::<Vec<_>>();
        optimizer.apply_gradients(&pairs)?;
        if step % 100 == 0 {
            println!("step {step:>3}: loss {:.5}", loss.to_scalar::<f32>()?);
        }
    }
    Ok(())
}
