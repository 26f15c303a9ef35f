//! Training, evaluating and saving U-Net segmenters on label-map batches.

use super::losses::{sparse_pixel_crossentropy, PixelLossOptions};
use super::metrics::SegmentationMetrics;
use crate::applications::{unet_with, UNetOptions};
use fovea_core::{no_grad, GradientTape, Tensor, Variable};
use fovea_nn::layer::Layer;
use fovea_nn::model::functional::Functional;
use fovea_nn::optimizers::Optimizer;
use fovea_nn::{Error, Result};
use std::path::Path;

/// The metadata key under which [`save_unet`] records the architecture.
pub const UNET_KEY: &str = "fovea.unet";

/// One gradient step of the per-pixel cross-entropy on a batch; returns the batch's loss.
///
/// # Errors
/// Model and loss errors; `Config` when the loss is not finite (the weights are left as they
/// were).
pub fn train_step(model: &Functional, optimizer: &mut Optimizer, x: &Tensor, y: &Tensor, loss: &PixelLossOptions) -> Result<f32> {
    let tape = GradientTape::new();
    let logits = model.apply(std::slice::from_ref(x), true)?;
    let value = sparse_pixel_crossentropy(y, &logits, loss)?;
    let scalar = value.to_scalar::<f32>()?;
    if !scalar.is_finite() {
        return Err(Error::Config(format!("train_step: the loss became {scalar}; lower the learning rate or check the inputs")));
    }
    let vars = model.trainable_weights();
    let values: Vec<Tensor> = vars.iter().map(|v| v.value()).collect();
    let grads = tape.gradient(&value, &values.iter().collect::<Vec<_>>())?;
    let pairs: Vec<(Tensor, Variable)> = grads.into_iter().zip(vars).filter_map(|(g, v)| g.map(|g| (g, v))).collect();
    optimizer.apply_gradients(&pairs)?;
    Ok(scalar)
}

/// The `(N, H, W)` predicted label maps of `(N, H, W, C)` images, `batch_size` at a time, in
/// inference mode.
///
/// # Errors
/// Model errors; `Config` for a zero batch size.
pub fn predict_labels(model: &Functional, images: &Tensor, batch_size: usize) -> Result<Tensor> {
    if batch_size == 0 {
        return Err(Error::Config("predict_labels: batch size must be positive, got 0".into()));
    }
    let n = images.dims().first().copied().unwrap_or(0);
    let mut parts = Vec::new();
    for start in (0..n).step_by(batch_size) {
        let x = images.narrow(0, start, batch_size.min(n - start))?;
        let out = no_grad(|| model.call_all(&[x], false))?;
        parts.push(out[0].argmax(-1)?);
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    Ok(Tensor::concat(&refs, 0)?)
}

/// Segmentation metrics of `model` on images and their label maps.
///
/// # Errors
/// As [`predict_labels`] and [`SegmentationMetrics::update`].
pub fn evaluate(model: &Functional, images: &Tensor, labels: &Tensor, classes: usize, batch_size: usize) -> Result<SegmentationMetrics> {
    let mut m = SegmentationMetrics::new(classes, None);
    m.update(labels, &predict_labels(model, images, batch_size)?)?;
    Ok(m)
}

/// Saves a U-Net's weights with its architecture in the file's metadata, for [`load_unet`].
///
/// # Errors
/// `Config` naming the file when it cannot be written.
pub fn save_unet(model: &Functional, opts: &UNetOptions, path: &Path) -> Result<()> {
    let (h, w, c) = opts.input_shape;
    let meta = serde_json::json!({
        "input_shape": [h, w, c], "classes": opts.classes, "filters": opts.filters,
        "depth": opts.depth, "batch_norm": opts.batch_norm, "name": opts.name,
    });
    fovea_nn::model::io::save_weights(model, path, &[(UNET_KEY, meta.to_string())])
}

/// Rebuilds and loads a U-Net written by [`save_unet`].
///
/// # Errors
/// `Config` naming the file when it cannot be read, has no or malformed [`UNET_KEY`] metadata
/// (not a U-Net from `fovea train unet`), or its weights do not fit the model it describes.
pub fn load_unet(path: &Path) -> Result<(Functional, UNetOptions)> {
    let file = fovea_nn::model::io::read_weights(path)?;
    let bad = |m: &str| Error::Config(format!("{}: {m}", path.display()));
    let text = file.metadata.get(UNET_KEY).ok_or_else(|| bad("no U-Net metadata (fovea.unet): not written by `fovea train unet`"))?;
    let meta: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&format!("malformed fovea.unet metadata: {e}")))?;
    let count = |k: &str| meta[k].as_u64().map(|v| v as usize).ok_or_else(|| bad(&format!("fovea.unet metadata lacks a count {k:?}")));
    let shape: Vec<usize> =
        meta["input_shape"].as_array().map(|a| a.iter().filter_map(|v| v.as_u64().map(|v| v as usize)).collect()).unwrap_or_default();
    if shape.len() != 3 {
        return Err(bad("fovea.unet input_shape is not [height, width, channels]"));
    }
    let opts = UNetOptions {
        input_shape: (shape[0], shape[1], shape[2]),
        classes: count("classes")?,
        filters: count("filters")?,
        depth: count("depth")?,
        batch_norm: meta["batch_norm"].as_bool().ok_or_else(|| bad("fovea.unet metadata lacks batch_norm"))?,
        name: meta["name"].as_str().unwrap_or("unet").to_string(),
    };
    let model = unet_with(&opts)?;
    fovea_nn::model::io::load_weights(&model, path)?;
    Ok((model, opts))
}
