//! The seeds' first experiment (SPEC §1.1): a linear classifier s = x·W + b on Iris, trained
//! with the multi-class SVM hinge loss by plain gradient descent (learning rate 0.5, 1000
//! full-batch steps) on 105 shuffled flowers and tested on the other 45. The seed printed a test
//! accuracy of 0.977778 (44/45); the exact value depends on the shuffle and the initial weights.
//!
//! `cargo run --release -p fovea --example iris_linear [-- path/to/iris.csv]` (without a path,
//! `fovea::data::iris::load` finds or fetches the file).

use fovea::data::{iris, train_test_split, TestSize};
use fovea::prelude::*;

fn main() -> fovea::Result<()> {
    let data = match std::env::args().nth(1) {
        Some(path) => iris::read(path)?,
        None => iris::load()?,
    };
    let (x_train, x_test, y_train, y_test) = train_test_split(&data.features, &data.labels, TestSize::Count(45), 0, false)?;
    set_seed(0);
    let model = linear_classifier()?;
    let one_hot = |y: &Tensor| Tensor::one_hot(y, 3)?.cast(DType::F32);
    let options = FitOptions { epochs: 1000, batch_size: 105, shuffle: false, verbose: 0, ..FitOptions::default() };
    let history = model.fit(&x_train, &one_hot(&y_train)?, options)?;
    let test = model.evaluate(&x_test, &one_hot(&y_test)?, 45)?;
    let final_loss = history.history["loss"].last().copied().unwrap_or(f64::NAN);
    println!("training loss after 1000 steps {final_loss:.6}; test accuracy {:.6}", test["accuracy"]);
    Ok(())
}

/// Dense(3) on 4 features, no activation: the seed's `tf.matmul(x, W) + b`, compiled with the
/// seed's loss and optimizer.
fn linear_classifier() -> fovea::Result<Sequential> {
    let model = Sequential::with_input_shape(&[4]);
    model.add(Dense::new(3))?;
    model.compile(Optimizer::sgd(0.5, 0.0, false), Loss::from_name("multiclass_hinge")?, &["accuracy"])?;
    Ok(model)
}
