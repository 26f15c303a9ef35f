//! Writes the TensorBoard fixture that `tools/check_tensorboard.py` reads with TensorBoard's own
//! `EventAccumulator`:
//!
//! ```sh
//! cargo run -p fovea-nn --example tensorboard_fixture -- crates/fovea-nn/tests/fixtures/tensorboard
//! ```
//!
//! `custom/` comes from a `SummaryWriter` with values the script restates: scalar `loss` =
//! 1 / (step + 1) for steps 0..5; histogram `weights` of k / 10 for k in 0..100 at step 0 and of
//! its negation at step 1; image `sample` (uint8 [2, 4, 4, 3], pixel (n, y, x, c) =
//! 60 n + 16 y + 4 x + c) and `gray` (float [3, 5, 1], value (y, x) = (5 y + x) / 14); text
//! `notes`. `fit/` is a `TensorBoard` callback's output for a tiny model, and `expected.json` the
//! `History` it must match.

use fovea_core::{set_seed, Device, Tensor};
use fovea_nn::callbacks::{SummaryWriter, TensorBoard};
use fovea_nn::layer::Layer;
use fovea_nn::layers::{Dense, Softmax};
use fovea_nn::losses::Loss;
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: tensorboard_fixture OUT_DIR")?);
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let mut w = SummaryWriter::new(out.join("custom"))?;
    for step in 0..5 {
        w.scalar("loss", 1.0 / (step as f64 + 1.0), step)?;
    }
    let ramp = Tensor::from_vec((0..100).map(|k| k as f32 / 10.0).collect::<Vec<_>>(), vec![100], Device::Cpu)?;
    w.histogram("weights", &ramp, 0)?;
    w.histogram("weights", &ramp.neg()?, 1)?;
    let pixels: Vec<u8> = (0..2 * 4 * 4 * 3).map(|i| (60 * (i / 48) + 16 * (i / 12 % 4) + 4 * (i / 3 % 4) + i % 3) as u8).collect();
    w.image("sample", &Tensor::from_vec(pixels, vec![2, 4, 4, 3], Device::Cpu)?, 0)?;
    w.image("gray", &Tensor::from_vec((0..15).map(|i| i as f32 / 14.0).collect::<Vec<_>>(), vec![3, 5, 1], Device::Cpu)?, 0)?;
    w.text("notes", "Fovea **TensorBoard** fixture", 0)?;
    w.flush()?;

    set_seed(1);
    let m = Sequential::with_input_shape(&[3]);
    m.add(Dense::new(2))?;
    m.add(Softmax::new(-1))?;
    m.compile(Optimizer::sgd(0.1, 0.0, false), Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
    let x = Tensor::random_uniform([20, 3], -1.0, 1.0, Some(2), Device::Cpu)?;
    let y = Tensor::from_vec((0..20).map(|i| (i % 2) as i64).collect::<Vec<_>>(), vec![20], Device::Cpu)?;
    let mut tb = TensorBoard::new(out.join("fit")).histogram_freq(1);
    let opts = FitOptions { epochs: 3, batch_size: 8, validation_split: 0.2, verbose: 0, seed: Some(0), ..Default::default() };
    let history = m.fit_with_callbacks(&x, &y, opts, &mut [&mut tb])?;
    drop(tb);
    let kernel = m.weights()[0].value().to_vec::<f32>()?;
    let expected = serde_json::json!({ "history": history.history, "final_dense_kernel": kernel });
    std::fs::write(out.join("expected.json"), serde_json::to_string_pretty(&expected)?)?;
    println!("wrote {}", out.display());
    Ok(())
}
