//! Transfer learning on MNIST (Géron, *Hands-On ML* ch. 11): pretrain a small CNN on digits
//! 0–4, reuse its convolutional base — frozen — under a new head for digits 5–9 trained on only
//! 500 images, then unfreeze it and fine-tune with a 10× lower learning rate (compiling again so
//! that the optimizer sees the newly trainable weights). The same network trained from scratch
//! on the same 500 images is the baseline.
//!
//! Run: `cargo run --release -p fovea --example transfer_learning` (fetches MNIST on first use
//! into $FOVEA_DATA_DIR or ~/.cache/fovea). The test `tests/transfer_learning.rs` runs the same
//! recipe on synthetic digits, without the network.

use fovea::nn::activations::Activation as Act;
use fovea::nn::layer::{Layer, LayerRef};
use fovea::nn::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use fovea::nn::losses::Loss;
use fovea::nn::model::functional::{Connect, Functional, Input};
use fovea::nn::model::{FitOptions, Model};
use fovea::nn::optimizers::Optimizer;
use fovea::prelude::*;
use std::sync::Arc;

type AnyResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Images (scaled to [0, 1], `[n, 28, 28, 1]`) and labels (minus `offset`) of the digits in
/// `digits`, at most `limit` of them.
fn subset(images: &Tensor, labels: &Tensor, digits: std::ops::Range<i64>, limit: usize) -> AnyResult<(Tensor, Tensor)> {
    let all = labels.to_vec::<i64>()?;
    let keep: Vec<i64> = (0..all.len() as i64).filter(|&i| digits.contains(&all[i as usize])).take(limit).collect();
    let idx = Tensor::from_vec(keep.clone(), vec![keep.len()], Device::Cpu)?;
    let x = images.index_select(0, &idx)?.cast(DType::F32)?.div_scalar(255.0)?.reshape(&[-1, 28, 28, 1])?;
    let y: Vec<i64> = keep.iter().map(|&i| all[i as usize] - digits.start).collect();
    Ok((x, Tensor::from_vec(y, vec![keep.len()], Device::Cpu)?))
}

/// The convolutional base as a nested model, so that one `set_trainable(false)` freezes it.
fn base() -> AnyResult<Arc<Functional>> {
    let x = Input::new(&[28, 28, 1]);
    let y = Conv2D::new(32, (3, 3)).activation(Act::Relu).on(&x)?;
    let y = MaxPooling2D::new((2, 2)).on(&y)?;
    let y = Conv2D::new(64, (3, 3)).activation(Act::Relu).on(&y)?;
    let y = MaxPooling2D::new((2, 2)).on(&y)?;
    let y = Flatten::new().on(&y)?;
    Ok(Arc::new(Functional::new(&[&x], &[&y])?.named("base")?))
}

/// `base` under a new head: Keras's `include_top=False` plus a functional top.
fn with_head(base: &Arc<Functional>) -> AnyResult<Functional> {
    let x = Input::new(&[28, 28, 1]);
    let f = (base.clone() as LayerRef).on(&x)?;
    let h = Dense::new(64).activation(Act::Relu).on(&f)?;
    let y = Dense::new(5).activation(Act::Softmax).on(&h)?;
    Ok(Functional::new(&[&x], &[&y])?)
}

fn train(m: &Functional, lr: f64, x: &Tensor, y: &Tensor, epochs: usize) -> AnyResult<()> {
    m.compile(Optimizer::adam(lr), Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
    m.fit(x, y, FitOptions { epochs, batch_size: 32, verbose: 0, seed: Some(1), ..Default::default() })?;
    Ok(())
}

fn main() -> AnyResult<()> {
    set_seed(42);
    let data = fovea::data::mnist::load(Device::Cpu)?;
    let (x_a, y_a) = subset(&data.train_images, &data.train_labels, 0..5, 10_000)?;
    let (x_b, y_b) = subset(&data.train_images, &data.train_labels, 5..10, 500)?;
    let (x_test, y_test) = subset(&data.test_images, &data.test_labels, 5..10, usize::MAX)?;
    let acc = |m: &Functional, x: &Tensor, y: &Tensor| -> AnyResult<f64> { Ok(m.evaluate(x, y, 256)?["accuracy"]) };

    let pretrained = base()?;
    let model_a = with_head(&pretrained)?;
    train(&model_a, 1e-3, &x_a, &y_a, 2)?;
    println!("pretrained on {} images of 0–4: accuracy {:.4}", x_a.dims()[0], acc(&model_a, &x_a, &y_a)?);

    pretrained.set_trainable(false)?;
    let transfer = with_head(&pretrained)?;
    train(&transfer, 3e-3, &x_b, &y_b, 5)?;
    let frozen = acc(&transfer, &x_test, &y_test)?;
    pretrained.set_trainable(true)?;
    train(&transfer, 1e-4, &x_b, &y_b, 2)?;
    let fine_tuned = acc(&transfer, &x_test, &y_test)?;

    let scratch = with_head(&base()?)?;
    train(&scratch, 1e-3, &x_b, &y_b, 7)?;
    let from_scratch = acc(&scratch, &x_test, &y_test)?;

    println!("digits 5–9, {} training images, {} test images:", x_b.dims()[0], x_test.dims()[0]);
    println!("  frozen pretrained base + new head: {frozen:.4}");
    println!("  then fine-tuned at lr 1e-4:        {fine_tuned:.4}");
    println!("  same network from scratch:         {from_scratch:.4}");
    Ok(())
}
