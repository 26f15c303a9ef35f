//! Writes the example plots shown in the README (`docs/plots/`): learning curves, a confusion
//! matrix and a prediction grid, from illustrative numbers and synthetic images.
//!
//! `cargo run -p fovea-vision --example plots_demo -- docs/plots`

use fovea_core::{Device, Tensor};
use fovea_nn::confusion::ConfusionMatrix;
use fovea_nn::model::History;
use fovea_vision::plots::*;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    // A run that starts to overfit after epoch 6: training loss keeps falling, validation turns.
    let loss = [0.92, 0.48, 0.36, 0.29, 0.25, 0.22, 0.19, 0.17, 0.15, 0.13];
    let val_loss = [0.55, 0.41, 0.34, 0.31, 0.29, 0.285, 0.29, 0.30, 0.31, 0.33];
    let mut history = History::default();
    for (k, v) in [("loss", &loss), ("val_loss", &val_loss)] {
        history.history.insert(k.into(), v.to_vec());
    }
    history.history.insert("accuracy".into(), loss.iter().map(|l| 1.0 - 0.3 * l).collect());
    history.history.insert("val_accuracy".into(), val_loss.iter().map(|l| 0.99 - 0.3 * l).collect());
    let options = CurveOptions { title: Some("LeNet-5 on Fashion-MNIST".into()), panel_size: (420, 300), ..Default::default() };
    plot_history(&history, dir.join("learning_curves.png"), &options)?;

    let names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat"];
    let mut m = ConfusionMatrix::new(5);
    let (mut labels, mut preds) = (Vec::new(), Vec::new());
    for t in 0..5i64 {
        for k in 0..40i64 {
            labels.push(t);
            // Mostly right; pullovers and coats get mixed up, as they do in Fashion-MNIST.
            preds.push(match (t, k % 10) {
                (2, 0..=2) => 4,
                (4, 0..=1) => 2,
                (0, 0) => 3,
                _ => t,
            });
        }
    }
    let n = labels.len();
    m.update(&Tensor::from_vec(labels, [n], Device::Cpu)?, &Tensor::from_vec(preds, [n], Device::Cpu)?)?;
    plot_confusion_matrix(&m, &names, dir.join("confusion_matrix.png"), &ConfusionOptions::default())?;

    // Eight synthetic 28×28 "items": a bright bar whose position encodes the class.
    let mut px = vec![0.0f32; 8 * 28 * 28];
    for i in 0..8 {
        let c = i % 5;
        for y in 4..24 {
            for x in 4 + 4 * c..8 + 4 * c {
                px[(i * 28 + y) * 28 + x] = 0.4 + 0.6 * (y as f32 / 24.0);
            }
        }
    }
    let images = Tensor::from_vec(px, vec![8, 28, 28, 1], Device::Cpu)?;
    let truth = Tensor::from_vec((0..8).map(|i| (i % 5) as i64).collect(), [8], Device::Cpu)?;
    let guess = Tensor::from_vec(vec![0i64, 1, 4, 3, 4, 0, 1, 2], [8], Device::Cpu)?;
    plot_predictions(dir.join("predictions.png"), &images, &truth, &guess, &names, 4)?;
    println!("wrote learning_curves.png, confusion_matrix.png and predictions.png to {}", dir.display());
    Ok(())
}
