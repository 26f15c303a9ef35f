//! Per-pixel metrics of label maps: a confusion matrix accumulated over batches, from which
//! per-class IoU, mean IoU (Keras's `MeanIoU`), pixel accuracy and per-class Dice follow.
//!
//! The argmax runs on the scores' device; the label and predicted maps then come to the host,
//! where the `C×C` counts are kept as `u64` so a whole test set never loses a pixel.

use fovea_core::{DType, Tensor};
use fovea_nn::{Error, Result};

/// The `(N, H, W)` label map of `(N, H, W, C)` class scores: the argmax over classes.
///
/// # Errors
/// `Config` when the scores are not rank 4.
pub fn argmax_labels(scores: &Tensor) -> Result<Tensor> {
    if scores.rank() != 4 {
        return Err(Error::Config(format!("argmax_labels: expected scores of shape (N, H, W, C), got shape {}", scores.shape())));
    }
    Ok(scores.argmax(-1)?)
}

/// Running segmentation metrics over `classes` classes, skipping pixels labelled
/// `ignore_label`.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationMetrics {
    classes: usize,
    ignore_label: Option<i64>,
    /// Row-major `classes × classes`: rows are true classes, columns predicted ones.
    counts: Vec<u64>,
}

impl SegmentationMetrics {
    /// Empty counts for `classes` classes.
    pub fn new(classes: usize, ignore_label: Option<i64>) -> Self {
        SegmentationMetrics { classes, ignore_label, counts: vec![0; classes * classes] }
    }

    /// Folds a batch in: `labels` `(N, H, W)` against either `(N, H, W, C)` scores (their
    /// argmax is taken) or an `(N, H, W)` predicted label map.
    ///
    /// # Errors
    /// `Config` naming both shapes when they do not fit, and naming the value when a label
    /// (other than the ignore label) or a prediction is outside `0..classes`.
    pub fn update(&mut self, labels: &Tensor, predictions: &Tensor) -> Result<()> {
        let c = self.classes;
        let pred = if predictions.rank() == 4 {
            if predictions.dims()[3] != c {
                return Err(Error::Config(format!(
                    "segmentation metrics: scores of shape {} have {} classes, expected {c}",
                    predictions.shape(),
                    predictions.dims()[3]
                )));
            }
            argmax_labels(predictions)?
        } else {
            predictions.clone()
        };
        if labels.dims() != pred.dims() {
            return Err(Error::Config(format!(
                "segmentation metrics: labels of shape {} do not match predictions of shape {}",
                labels.shape(),
                predictions.shape()
            )));
        }
        let l = labels.cast(DType::I64)?.to_vec::<i64>()?;
        let p = pred.cast(DType::I64)?.to_vec::<i64>()?;
        let mut batch = vec![0u64; c * c];
        for (&t, &q) in l.iter().zip(&p) {
            if Some(t) == self.ignore_label {
                continue;
            }
            if t < 0 || t as usize >= c {
                return Err(Error::Config(format!("segmentation metrics: label {t} is outside 0..{c}")));
            }
            if q < 0 || q as usize >= c {
                return Err(Error::Config(format!("segmentation metrics: predicted class {q} is outside 0..{c}")));
            }
            batch[t as usize * c + q as usize] += 1;
        }
        // Only a batch that passed every check is added, so an error leaves the totals as they were.
        self.counts.iter_mut().zip(batch).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// Clears the counts.
    pub fn reset(&mut self) {
        self.counts.iter_mut().for_each(|v| *v = 0);
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Pixels of true class `t` predicted as `p`.
    pub fn count(&self, t: usize, p: usize) -> u64 {
        self.counts[t * self.classes + p]
    }

    /// `(TP, FP, FN)` of class `k`.
    fn tp_fp_fn(&self, k: usize) -> (f64, f64, f64) {
        let tp = self.count(k, k) as f64;
        let row: f64 = (0..self.classes).map(|j| self.count(k, j) as f64).sum();
        let col: f64 = (0..self.classes).map(|i| self.count(i, k) as f64).sum();
        (tp, col - tp, row - tp)
    }

    /// TP / (TP + FP + FN) per class; NaN for a class neither labelled nor predicted.
    pub fn class_iou(&self) -> Vec<f64> {
        (0..self.classes)
            .map(|k| {
                let (tp, fp, fn_) = self.tp_fp_fn(k);
                if tp + fp + fn_ > 0.0 {
                    tp / (tp + fp + fn_)
                } else {
                    f64::NAN
                }
            })
            .collect()
    }

    /// The mean of [`class_iou`](Self::class_iou) over the classes present in the labels or the
    /// predictions (Keras's `MeanIoU`); 0 before any pixel.
    pub fn mean_iou(&self) -> f64 {
        nan_mean(&self.class_iou())
    }

    /// 2·TP / (2·TP + FP + FN) per class (the F1 score of its pixels); NaN for a class neither
    /// labelled nor predicted.
    pub fn class_dice(&self) -> Vec<f64> {
        (0..self.classes)
            .map(|k| {
                let (tp, fp, fn_) = self.tp_fp_fn(k);
                if tp + fp + fn_ > 0.0 {
                    2.0 * tp / (2.0 * tp + fp + fn_)
                } else {
                    f64::NAN
                }
            })
            .collect()
    }

    /// The mean of [`class_dice`](Self::class_dice) over the classes present; 0 before any pixel.
    pub fn mean_dice(&self) -> f64 {
        nan_mean(&self.class_dice())
    }

    /// The fraction of counted pixels whose predicted class is the label; 0 before any pixel.
    pub fn pixel_accuracy(&self) -> f64 {
        let total: u64 = self.counts.iter().sum();
        let hits: u64 = (0..self.classes).map(|k| self.count(k, k)).sum();
        if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        }
    }
}

fn nan_mean(v: &[f64]) -> f64 {
    let present: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if present.is_empty() {
        0.0
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::Device;

    #[test]
    fn counts_by_hand() {
        let d = Device::Cpu;
        let mut m = SegmentationMetrics::new(3, Some(255));
        // Labels 0 0 1 2 | 2 255; predictions 0 1 1 2 | 0 2: the 255 pixel is skipped.
        let l = Tensor::from_vec(vec![0i64, 0, 1, 2, 2, 255], [1, 2, 3], d).unwrap();
        let p = Tensor::from_vec(vec![0i64, 1, 1, 2, 0, 2], [1, 2, 3], d).unwrap();
        m.update(&l, &p).unwrap();
        // IoU: class 0 = 1/3, class 1 = 1/2, class 2 = 1/2; Dice 2/4, 2/3, 2/3.
        let iou = m.class_iou();
        assert!((iou[0] - 1.0 / 3.0).abs() < 1e-12 && (iou[1] - 0.5).abs() < 1e-12 && (iou[2] - 0.5).abs() < 1e-12);
        assert!((m.mean_iou() - (1.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
        assert!((m.class_dice()[1] - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.pixel_accuracy() - 3.0 / 5.0).abs() < 1e-12);
        let bad = Tensor::from_vec(vec![0i64, 0, 1, 2, 3, 255], [1, 2, 3], d).unwrap();
        let e = m.update(&bad, &p).unwrap_err().to_string();
        assert!(e.contains("label 3 is outside 0..3"), "{e}");
        assert!((m.pixel_accuracy() - 3.0 / 5.0).abs() < 1e-12, "a failed update adds nothing");
        let e = m.update(&l, &Tensor::zeros([1, 2, 2], DType::I64, d).unwrap()).unwrap_err().to_string();
        assert!(e.contains("labels of shape [1, 2, 3] do not match predictions of shape [1, 2, 2]"), "{e}");
        m.reset();
        assert_eq!((m.mean_iou(), m.pixel_accuracy()), (0.0, 0.0));
    }
}
