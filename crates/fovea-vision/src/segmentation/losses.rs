//! Per-pixel losses for `(N, H, W, C)` class scores against `(N, H, W)` integer label maps.
//!
//! Every loss here skips the pixels whose label is the ignore label (Pascal VOC's 255 marks
//! object borders that way) and averages over the remaining pixels, as Keras 3's
//! `SparseCategoricalCrossentropy(ignore_class=255)` does. They are compositions of tensor ops,
//! so their gradients come from autodiff and they run on the scores' device; only the label
//! check brings one count back to the host.

use fovea_core::{DType, Tensor};
use fovea_nn::{Error, Result};

/// Keras's fuzz factor: clips probabilities before a log and guards the Dice division.
const EPSILON: f32 = 1e-7;

/// What a per-pixel loss reads from its scores and which pixels it skips.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelLossOptions {
    /// The scores are logits (a softmax is applied first) rather than probabilities.
    pub from_logits: bool,
    /// Pixels with this label contribute nothing (neither loss nor count); `None`: every pixel
    /// counts and every label must be a class.
    pub ignore_label: Option<i64>,
    /// One weight per class: each pixel's loss is scaled by the weight of its true class (the
    /// mean is still over the counted pixels, as Keras's per-pixel `sample_weight` gives).
    pub class_weights: Option<Vec<f32>>,
}

impl Default for PixelLossOptions {
    /// Logits, no ignore label, no class weights.
    fn default() -> Self {
        PixelLossOptions { from_logits: true, ignore_label: None, class_weights: None }
    }
}

/// The one-hot encoding of the labels (all-zero rows at ignored pixels) and the f32 mask of
/// counted pixels, both checked against the scores' shape.
fn encode(what: &str, labels: &Tensor, scores: &Tensor, ignore: Option<i64>) -> Result<(Tensor, Tensor)> {
    if scores.rank() != 4 {
        return Err(Error::Config(format!("{what}: expected scores of shape (N, H, W, C), got shape {}", scores.shape())));
    }
    let classes = scores.dims()[3];
    let labels = if labels.rank() == 4 && labels.dims()[3] == 1 { labels.squeeze(&[-1])? } else { labels.clone() };
    if labels.dims() != &scores.dims()[..3] {
        return Err(Error::Config(format!(
            "{what}: labels of shape {} do not match scores of shape {} (expected labels of shape {:?})",
            labels.shape(),
            scores.shape(),
            &scores.dims()[..3]
        )));
    }
    let labels = labels.cast(DType::I64)?;
    let device = labels.device();
    let full = |v: f64| Tensor::full((), v, DType::I64, device);
    let counted = match ignore {
        Some(i) => labels.eq(&full(i as f64)?)?.logical_not()?,
        None => Tensor::full(labels.dims().to_vec(), 1.0, DType::Bool, device)?,
    };
    // One count comes back; only a failing batch is read whole, to name the bad label.
    let outside = labels.lt(&full(0.0)?)?.logical_or(&labels.ge(&full(classes as f64)?)?)?.logical_and(&counted)?;
    if outside.cast(DType::F32)?.sum_all()?.to_scalar::<f32>()? > 0.0 {
        let v = labels.to_vec::<i64>()?;
        let bad = v.into_iter().find(|&l| (l < 0 || l as usize >= classes) && Some(l) != ignore).unwrap_or(-1);
        let ignore_note = ignore.map(|i| format!(" or the ignore label {i}")).unwrap_or_default();
        return Err(Error::Config(format!(
            "{what}: label {bad} is out of range for {classes} classes (expected 0 to {}{ignore_note})",
            classes - 1
        )));
    }
    // one_hot gives an all-zero row for any label outside 0..C, so ignored pixels drop out.
    Ok((Tensor::one_hot(&labels, classes)?, counted.cast(DType::F32)?))
}

/// Per-pixel weights: the counted mask times the weight of each pixel's class.
fn pixel_weights(what: &str, onehot: &Tensor, counted: &Tensor, class_weights: Option<&[f32]>) -> Result<Tensor> {
    let Some(w) = class_weights else { return Ok(counted.clone()) };
    let classes = onehot.dims()[3];
    if w.len() != classes {
        return Err(Error::Config(format!("{what}: {} class weights for {classes} classes", w.len())));
    }
    let w = Tensor::from_vec(w.to_vec(), [classes], onehot.device())?;
    Ok(onehot.mul(&w)?.sum(&[-1], false)?.mul(counted)?)
}

/// The mean of `per_pixel` weighted by `weights` over the `counted` pixels (0 when none count).
fn masked_mean(per_pixel: &Tensor, weights: &Tensor, counted: &Tensor) -> Result<Tensor> {
    let n = counted.sum_all()?.maximum(&Tensor::scalar(1.0, counted.device())?)?;
    Ok(per_pixel.mul(weights)?.sum_all()?.div(&n)?)
}

fn log_probs(scores: &Tensor, from_logits: bool) -> Result<Tensor> {
    Ok(if from_logits {
        scores.log_softmax(-1)?
    } else {
        // Keras renormalises probabilities over the class axis before the clipped log.
        scores.div(&scores.sum(&[-1], true)?)?.clip(EPSILON, 1.0 - EPSILON)?.log()?
    })
}

fn probs(scores: &Tensor, from_logits: bool) -> Result<Tensor> {
    Ok(if from_logits { scores.softmax(-1)? } else { scores.clone() })
}

/// Sparse categorical cross-entropy per pixel, averaged over the counted pixels:
/// `Σ_p w[y_p]·(−ln q_p[y_p]) / #counted` (Keras's `SparseCategoricalCrossentropy` with
/// `ignore_class` and a per-pixel `sample_weight = class_weights[label]`). A rank-0 tensor.
///
/// # Errors
/// `Config` naming the shapes when labels are not `(N, H, W)` (or `(N, H, W, 1)`) for scores
/// `(N, H, W, C)`, naming the label when one is outside `0..C` and not the ignore label, and
/// when the class weights are not one per class.
pub fn sparse_pixel_crossentropy(labels: &Tensor, scores: &Tensor, opts: &PixelLossOptions) -> Result<Tensor> {
    let what = "sparse_pixel_crossentropy";
    let (onehot, counted) = encode(what, labels, scores, opts.ignore_label)?;
    let weights = pixel_weights(what, &onehot, &counted, opts.class_weights.as_deref())?;
    let nll = onehot.mul(&log_probs(scores, opts.from_logits)?)?.sum(&[-1], false)?.neg()?;
    masked_mean(&nll, &weights, &counted)
}

/// Categorical focal loss per pixel (Keras's `CategoricalFocalCrossentropy` on one-hot labels:
/// `−α·(1 − q)^γ·ln q` at the true class), averaged over the counted pixels; class weights
/// scale each pixel as in [`sparse_pixel_crossentropy`]. A rank-0 tensor.
///
/// # Errors
/// As [`sparse_pixel_crossentropy`].
pub fn sparse_pixel_focal(labels: &Tensor, scores: &Tensor, alpha: f32, gamma: f32, opts: &PixelLossOptions) -> Result<Tensor> {
    let what = "sparse_pixel_focal";
    let (onehot, counted) = encode(what, labels, scores, opts.ignore_label)?;
    let weights = pixel_weights(what, &onehot, &counted, opts.class_weights.as_deref())?;
    let q = probs(scores, opts.from_logits)?;
    let q = q.div(&q.sum(&[-1], true)?)?.clip(EPSILON, 1.0 - EPSILON)?;
    // (1 − q)^γ down-weights the pixels the model already gets right.
    let modulating = q.neg()?.add_scalar(1.0)?.powf(gamma)?;
    let per_pixel = modulating.mul(&onehot.mul(&q.log()?)?)?.sum(&[-1], false)?.mul_scalar(-alpha)?;
    masked_mean(&per_pixel, &weights, &counted)
}

/// Soft Dice loss per image, `1 − 2·Σ y·q / (Σ y + Σ q + ε)` over height, width and classes
/// (Keras's `Dice(axis=(1, 2, 3))` on one-hot labels and softmax probabilities), averaged over
/// the batch. Ignored pixels count in neither sum. A rank-0 tensor.
///
/// # Errors
/// As [`sparse_pixel_crossentropy`] (class weights are not used by this loss and are rejected).
pub fn dice_loss(labels: &Tensor, scores: &Tensor, opts: &PixelLossOptions) -> Result<Tensor> {
    let what = "dice_loss";
    if opts.class_weights.is_some() {
        return Err(Error::Config(format!("{what}: class weights are not supported by the Dice loss")));
    }
    let (onehot, counted) = encode(what, labels, scores, opts.ignore_label)?;
    let q = probs(scores, opts.from_logits)?.mul(&counted.expand_dims(-1)?)?;
    let inter = onehot.mul(&q)?.sum(&[1, 2, 3], false)?;
    let denom = onehot.sum(&[1, 2, 3], false)?.add(&q.sum(&[1, 2, 3], false)?)?.add_scalar(EPSILON)?;
    Ok(inter.mul_scalar(2.0)?.div(&denom)?.neg()?.add_scalar(1.0)?.mean(&[0], false)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::testing::{gradcheck, rand};
    use fovea_core::Device;

    fn labels(d: Device) -> Tensor {
        Tensor::from_vec(vec![0i64, 2, 255, 1, 1, 0, 2, 255], [2, 2, 2], d).unwrap()
    }

    #[test]
    fn gradients_match_finite_differences() {
        let d = Device::Reference;
        let x = rand(&[2, 2, 2, 3], -2.0, 2.0, 7, d);
        let ignore = PixelLossOptions { ignore_label: Some(255), ..Default::default() };
        let weighted = PixelLossOptions { class_weights: Some(vec![0.5, 2.0, 1.0]), ..ignore.clone() };
        let y = labels(d);
        // gradcheck takes core results; a loss error here is a test failure anyway.
        let ok = |r: Result<Tensor>| -> fovea_core::Result<Tensor> { Ok(r.expect("loss")) };
        gradcheck(|v| ok(sparse_pixel_crossentropy(&y, &v[0], &weighted)), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
        gradcheck(|v| ok(sparse_pixel_focal(&y, &v[0], 0.25, 2.0, &weighted)), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
        gradcheck(|v| ok(dice_loss(&y, &v[0], &ignore)), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
        // Probabilities instead of logits: a softmax of x keeps them inside (0, 1).
        let probs_opts = PixelLossOptions { from_logits: false, ..ignore.clone() };
        gradcheck(|v| ok(sparse_pixel_crossentropy(&y, &v[0].softmax(-1)?, &probs_opts)), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
        gradcheck(|v| ok(dice_loss(&y, &v[0].softmax(-1)?, &probs_opts)), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
    }

    #[test]
    fn ignored_pixels_change_nothing() {
        let d = Device::Cpu;
        let x = rand(&[2, 2, 2, 3], -2.0, 2.0, 3, d);
        let opts = PixelLossOptions { ignore_label: Some(255), ..Default::default() };
        let base = sparse_pixel_crossentropy(&labels(d), &x, &opts).unwrap().to_scalar::<f32>().unwrap();
        // Changing the scores at the two ignored pixels (flat pixels 2 and 7) leaves the loss.
        let mut v = x.to_vec::<f32>().unwrap();
        for k in [6, 7, 8, 21, 22, 23] {
            v[k] += 5.0;
        }
        let moved = Tensor::from_vec(v, [2, 2, 2, 3], d).unwrap();
        let after = sparse_pixel_crossentropy(&labels(d), &moved, &opts).unwrap().to_scalar::<f32>().unwrap();
        assert!((base - after).abs() < 1e-6, "{base} vs {after}");
    }

    #[test]
    fn bad_labels_and_shapes_are_named() {
        let d = Device::Cpu;
        let x = Tensor::zeros([2, 2, 2, 3], DType::F32, d).unwrap();
        let e = sparse_pixel_crossentropy(&labels(d), &x, &PixelLossOptions::default()).unwrap_err().to_string();
        assert!(e.contains("label 255 is out of range for 3 classes (expected 0 to 2)"), "{e}");
        let bad = Tensor::from_vec(vec![0i64, 2, 255, 3, 1, 0, 2, 255], [2, 2, 2], d).unwrap();
        let opts = PixelLossOptions { ignore_label: Some(255), ..Default::default() };
        let e = dice_loss(&bad, &x, &opts).unwrap_err().to_string();
        assert!(e.contains("dice_loss: label 3 is out of range for 3 classes (expected 0 to 2 or the ignore label 255)"), "{e}");
        let e = sparse_pixel_crossentropy(&Tensor::zeros([2, 2], DType::I64, d).unwrap(), &x, &opts).unwrap_err().to_string();
        assert!(e.contains("labels of shape [2, 2] do not match scores of shape [2, 2, 2, 3]"), "{e}");
        let w = PixelLossOptions { class_weights: Some(vec![1.0; 2]), ..opts };
        let e = sparse_pixel_focal(&labels(d), &x, 0.25, 2.0, &w).unwrap_err().to_string();
        assert!(e.contains("2 class weights for 3 classes"), "{e}");
    }
}
