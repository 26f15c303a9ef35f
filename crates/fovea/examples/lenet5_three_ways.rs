//! LeNet-5 built three ways — `Sequential`, the functional API, and a custom model through the
//! `Layer` trait — all with the same 61,706 parameters; trains the functional one briefly on
//! MNIST.
//!
//! Run: `cargo run --release -p fovea --example lenet5_three_ways`

use fovea::core::ops::padding::Padding;
use fovea::nn::activations::Activation as Act;
use fovea::nn::layer::{single_input, single_shape, Layer, LayerBase, LayerRef, ShapeSpec};
use fovea::nn::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use fovea::nn::losses::Loss;
use fovea::nn::model::functional::{Connect, Functional, Input};
use fovea::nn::model::{FitOptions, Model};
use fovea::nn::optimizers::Optimizer;
use fovea::prelude::*;
use std::sync::Arc;

fn layers() -> Vec<LayerRef> {
    vec![
        Arc::new(Conv2D::new(6, (5, 5)).padding(Padding::Same).activation(Act::Relu)),
        Arc::new(MaxPooling2D::new((2, 2))),
        Arc::new(Conv2D::new(16, (5, 5)).activation(Act::Relu)),
        Arc::new(MaxPooling2D::new((2, 2))),
        Arc::new(Flatten::new()),
        Arc::new(Dense::new(120).activation(Act::Relu)),
        Arc::new(Dense::new(84).activation(Act::Relu)),
        Arc::new(Dense::new(10).activation(Act::Softmax)),
    ]
}

/// `class LeNet5(Model)`: a custom model that owns its layers and chains them in `call`.
struct LeNet5 {
    base: LayerBase,
    layers: Vec<LayerRef>,
}

impl Layer for LeNet5 {
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn class_name(&self) -> &'static str {
        "LeNet5"
    }
    fn build(&self, input_shapes: &[ShapeSpec]) -> fovea::nn::Result<()> {
        let mut s = single_shape(&self.base, input_shapes)?.clone();
        for l in &self.layers {
            l.build(&[s.clone()])?;
            l.base().mark_built();
            s = l.compute_output_shape(&[s])?;
        }
        Ok(())
    }
    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> fovea::nn::Result<ShapeSpec> {
        self.layers.iter().try_fold(single_shape(&self.base, input_shapes)?.clone(), |s, l| l.compute_output_shape(&[s]))
    }
    fn call(&self, inputs: &[Tensor], training: bool) -> fovea::nn::Result<Tensor> {
        self.layers.iter().try_fold(single_input(&self.base, inputs)?.clone(), |x, l| l.apply(&[x], training))
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name()})
    }
    fn weights(&self) -> Vec<fovea::core::Variable> {
        self.layers.iter().flat_map(|l| l.weights()).collect()
    }
}

fn count(l: &dyn Layer) -> usize {
    l.weights().iter().map(|v| v.value().numel()).sum()
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    set_seed(42);
    let sequential = fovea::vision::applications::lenet5((28, 28, 1), 10)?;
    let inputs = Input::new(&[28, 28, 1]);
    let outputs = layers().into_iter().try_fold(inputs.clone(), |x, l| l.on(&x))?;
    let functional = Functional::new(&[&inputs], &[&outputs])?;
    let custom = LeNet5 { base: LayerBase::new("LeNet5"), layers: layers() };
    custom.build(&[vec![None, Some(28), Some(28), Some(1)]])?;
    println!("parameters: sequential {}, functional {}, custom {}", count(&sequential), count(&functional), count(&custom));
    println!("{}", functional.summary()?);

    let data = fovea::data::mnist::load(Device::Cpu)?;
    let prep = |t: &Tensor| -> fovea::core::Result<Tensor> {
        t.narrow(0, 0, 6000)?.cast(DType::F32)?.div_scalar(255.0)?.reshape(&[-1, 28, 28, 1])
    };
    let (x, y) = (prep(&data.train_images)?, data.train_labels.narrow(0, 0, 6000)?);
    functional.compile(Optimizer::adam(1e-3), Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
    functional.fit(&x, &y, FitOptions { epochs: 2, validation_split: 0.1, ..Default::default() })?;
    Ok(())
}
