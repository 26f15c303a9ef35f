//! The README's library example: a small CNN trained on MNIST with one import and one error
//! type (`cargo run --release -p fovea --example quickstart`).

use fovea::prelude::*;

fn main() -> fovea::Result<()> {
    let model = Sequential::with_input_shape(&[28, 28, 1]);
    model.add(Conv2D::new(6, (5, 5)).padding(Padding::Same).activation(Activation::Relu))?;
    model.add(MaxPooling2D::new((2, 2)))?;
    model.add(Flatten::new())?;
    model.add(Dense::new(10).activation(Activation::Softmax))?;
    model.compile(Optimizer::adam(1e-3), Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
    let mnist = fovea::data::mnist::load(Device::Cpu)?; // fetched on first use
    let scale = |images: &Tensor| -> fovea::Result<Tensor> {
        let n = images.dims()[0] as isize;
        Ok(images.cast(DType::F32)?.div_scalar(255.0)?.reshape(&[n, 28, 28, 1])?)
    };
    let options = FitOptions { epochs: 2, validation_split: 0.1, ..FitOptions::default() };
    model.fit(&scale(&mnist.train_images)?, &mnist.train_labels, options)?;
    let test = model.evaluate(&scale(&mnist.test_images)?, &mnist.test_labels, 256)?;
    println!("test accuracy {:.4}", test["accuracy"]);
    save_model(&model, "quickstart.safetensors")?;
    Ok(())
}
