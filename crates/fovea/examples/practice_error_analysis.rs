//! The seeds' practice chapter, part 1 (`docs/practice.md`): train / train-dev / dev / test
//! splits over two distributions, and the bias/variance table that says what to fix next.
//!
//! Distribution 1 (large, what we can collect) is MNIST's training set: clean scans. The target,
//! distribution 2, is MNIST's test set as a phone would take it: lower contrast and sensor
//! noise. Training and train-dev come from distribution 1; dev and test from distribution 2.
//!
//! `cargo run --release -p fovea --example practice_error_analysis` (fetches MNIST on first use).

use fovea::data::{mnist, train_test_split, TestSize};
use fovea::nn::diagnosis::ErrorAnalysis;
use fovea::prelude::*;
use fovea::vision::image::random_gaussian_noise;

/// MNIST's estimated human-level error on its test set (about 0.2%), the proxy for Bayes error.
const HUMAN_ERROR: f64 = 0.2;

fn scale(images: &Tensor) -> fovea::Result<Tensor> {
    Ok(images.cast(DType::F32)?.div_scalar(255.0)?.reshape(&[-1, 28, 28, 1])?)
}

/// The target distribution: contrast lowered around grey, then Gaussian sensor noise.
fn as_phone_photos(images: &Tensor, seed: u64) -> fovea::Result<Tensor> {
    let faded = images.sub_scalar(0.5)?.mul_scalar(0.7)?.add_scalar(0.5)?;
    Ok(random_gaussian_noise(&faded, 0.2, (seed, 0))?.clip(0.0, 1.0)?)
}

/// Classification error in percent.
fn error(model: &Sequential, x: &Tensor, y: &Tensor) -> fovea::Result<f64> {
    Ok(100.0 * (1.0 - model.evaluate(x, y, 256)?["accuracy"]))
}

/// A small CNN; the dev set picks the epochs, as it would pick any hyperparameter.
fn train(x: &Tensor, y: &Tensor, dev: &(Tensor, Tensor)) -> fovea::Result<Sequential> {
    set_seed(0);
    let model = Sequential::with_input_shape(&[28, 28, 1]);
    model.add(Conv2D::new(16, (3, 3)).activation(Activation::Relu))?;
    model.add(MaxPooling2D::new((2, 2)))?;
    model.add(Flatten::new())?;
    model.add(Dense::new(64).activation(Activation::Relu))?;
    model.add(Dense::new(10).activation(Activation::Softmax))?;
    model.compile(Optimizer::adam(1e-3), Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
    let options = FitOptions { epochs: 2, batch_size: 64, validation_data: Some(dev.clone()), ..FitOptions::default() };
    model.fit(x, y, options)?;
    Ok(model)
}

fn main() -> fovea::Result<()> {
    let data = mnist::load(Device::Cpu)?;
    // Distribution 1: 58,000 to train on, 2,000 held out as train-dev (same distribution).
    let (train_x, train_dev_x, train_y, train_dev_y) =
        train_test_split(&scale(&data.train_images)?, &data.train_labels, TestSize::Count(2_000), 0, true)?;
    // Distribution 2, the one that matters: split evenly into dev and test (same distribution).
    let target = as_phone_photos(&scale(&data.test_images)?, 7)?;
    let (dev_x, test_x, dev_y, test_y) = train_test_split(&target, &data.test_labels, TestSize::Fraction(0.5), 0, true)?;

    let dev = (dev_x, dev_y);
    let analyse = |train_x: &Tensor| -> fovea::Result<ErrorAnalysis> {
        let model = train(train_x, &train_y, &dev)?;
        Ok(ErrorAnalysis {
            human: HUMAN_ERROR,
            train: error(&model, train_x, &train_y)?,
            train_dev: Some(error(&model, &train_dev_x, &train_dev_y)?),
            dev: Some(error(&model, &dev.0, &dev.1)?),
            test: Some(error(&model, &test_x, &test_y)?),
        })
    };
    let analysis = analyse(&train_x)?;
    println!("\nError (%) by stage, and what each gap means:\n{analysis}");
    for problem in analysis.problems(1.0) {
        println!("Work on {problem}: {}", problem.remedies());
    }
    // The chapter's remedy for a mismatch: synthesize training data that looks like the target.
    // (Train-dev stays clean: it measures the training distribution we collected.)
    let synthesized = as_phone_photos(&train_x, 11)?;
    println!("\nAfter training on synthesized phone-like photos:\n{}", analyse(&synthesized)?);
    Ok(())
}
