//! How far mixed bfloat16 inference strays from float32: loads a trained model twice, once
//! under each policy, and compares their predictions on the 10,000 MNIST test images (the
//! device-ready core issue asks for ≥ 99.5% agreement).
//!
//! Run: `cargo run --release -p fovea -- train lenet5 -o /tmp/lenet5.safetensors`, then
//! `cargo run --release -p fovea --example bf16_agreement -- /tmp/lenet5.safetensors`

use fovea::core::{DType, Device, Tensor};
use fovea::nn::mixed_precision::{with_policy, Policy};
use fovea::nn::model::io::load_model;
use fovea::nn::model::Model;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: bf16_agreement MODEL.safetensors (a model trained on MNIST)")?;
    let data = fovea::data::mnist::load(Device::Cpu)?;
    let n = data.test_images.dims()[0] as isize;
    let x = data.test_images.cast(DType::F32)?.div_scalar(255.0)?.reshape(&[n, 28, 28, 1])?;
    let labels = data.test_labels.to_vec::<i64>()?;
    let classes = |policy: Policy| -> Result<Vec<i64>, Box<dyn std::error::Error>> {
        let model = with_policy(policy, || load_model(&path))?;
        let p: Tensor = model.predict(&x, 256)?;
        Ok(p.argmax(-1)?.to_vec::<i64>()?)
    };
    let (full, mixed) = (classes(Policy::Float32)?, classes(Policy::MixedBFloat16)?);
    let count = |f: &dyn Fn(usize) -> bool| (0..labels.len()).filter(|&i| f(i)).count() as f64 / labels.len() as f64 * 100.0;
    println!("float32 accuracy:        {:.2}%", count(&|i| full[i] == labels[i]));
    println!("mixed_bfloat16 accuracy: {:.2}%", count(&|i| mixed[i] == labels[i]));
    println!("agreement:               {:.2}%", count(&|i| full[i] == mixed[i]));
    Ok(())
}
