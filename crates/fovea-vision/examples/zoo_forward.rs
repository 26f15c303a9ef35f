//! Builds every zoo model at its canonical input size (Keras's default `input_shape`) and
//! runs one forward pass on a random image: output shape, parameter count and time.
//!
//! Run: `cargo run --release -p fovea-vision --example zoo_forward [NAME...]`

use fovea_core::{Device, Tensor};
use fovea_nn::layer::Layer;
use fovea_vision::applications::{build_by_name, AppOptions, MODEL_NAMES};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = if names.is_empty() { MODEL_NAMES.to_vec() } else { names.iter().map(String::as_str).collect() };
    for name in names {
        fovea_nn::names::clear_session();
        let model = build_by_name(name, &AppOptions::default())?;
        let input: Vec<usize> = model.inputs()[0].shape().iter().map(|d| d.unwrap_or(1)).collect();
        let x = Tensor::random_uniform(input.clone(), 0.0, 1.0, Some(0), Device::Cpu)?;
        let start = Instant::now();
        let outputs = fovea_core::no_grad(|| model.call_all(&[x], false))?;
        let params: usize = model.weights().iter().map(|v| v.value().numel()).sum();
        let shapes: Vec<String> = outputs.iter().map(|o| format!("{:?}", o.dims())).collect();
        let sums: Vec<f32> = outputs.iter().map(|o| o.sum_all().and_then(|s| s.to_scalar::<f32>()).unwrap_or(f32::NAN)).collect();
        println!(
            "{name:<14} input {input:?} → {} ; {params} parameters ; softmax sums {sums:?} ; {:.2} s",
            shapes.join(", "),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
