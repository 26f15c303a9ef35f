//! Confusion counts and the rates derived from them (accuracy, TPR/recall, FPR, PPV/precision,
//! NPV, F1), with `0/0 := 0` as in the book's accuracy-paradox example; a multi-class confusion
//! matrix with mean IoU; and ROC/PR AUC over thresholds as Keras computes it.

use crate::{Error, Result};
use fovea_core::{DType, Tensor};

/// Binary confusion counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BinaryCounts {
    /// True positives.
    pub tp: f64,
    /// False positives.
    pub fp: f64,
    /// False negatives.
    pub fn_: f64,
    /// True negatives.
    pub tn: f64,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

impl BinaryCounts {
    /// Counts from 0/1 labels and scores thresholded at `threshold` (score > threshold is positive).
    ///
    /// # Errors
    /// `Config` when the label and score counts differ.
    pub fn from_scores(labels: &[f32], scores: &[f32], threshold: f32) -> Result<Self> {
        if labels.len() != scores.len() {
            return Err(Error::Config(format!("{} labels for {} scores", labels.len(), scores.len())));
        }
        let mut c = BinaryCounts::default();
        for (&l, &s) in labels.iter().zip(scores) {
            match (l > 0.5, s > threshold) {
                (true, true) => c.tp += 1.0,
                (false, true) => c.fp += 1.0,
                (true, false) => c.fn_ += 1.0,
                (false, false) => c.tn += 1.0,
            }
        }
        Ok(c)
    }

    /// Adds another set of counts.
    pub fn add(&mut self, o: &BinaryCounts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.tn += o.tn;
    }

    /// (TP + TN) / all.
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.tp + self.fp + self.fn_ + self.tn)
    }
    /// TP / (TP + FN): recall, sensitivity.
    pub fn tpr(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// FP / (FP + TN).
    pub fn fpr(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }
    /// TP / (TP + FP): precision.
    pub fn ppv(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// TN / (TN + FN).
    pub fn npv(&self) -> f64 {
        ratio(self.tn, self.tn + self.fn_)
    }
    /// The harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        ratio(2.0 * self.ppv() * self.tpr(), self.ppv() + self.tpr())
    }
}

/// Keras's evenly spaced AUC thresholds: `num` values from 0 to 1 with ±ε at the ends.
pub fn auc_thresholds(num: usize) -> Vec<f32> {
    let eps = 1e-7f32;
    let mut t: Vec<f32> = (1..num - 1).map(|i| i as f32 / (num - 1) as f32).collect();
    t.insert(0, -eps);
    t.push(1.0 + eps);
    t
}

/// Which curve an AUC integrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// True-positive rate against false-positive rate.
    Roc,
    /// Precision against recall.
    Pr,
}

/// The area under a curve from per-threshold counts (thresholds increasing), as
/// `keras.metrics.AUC`'s default `summation_method="interpolation"` computes it: trapezoids on
/// the ROC points, and for PR the interpolation of Davis & Goadrich (2006), which follows
/// precision along the straight line between two thresholds' true and false positive counts
/// (trapezoids on the PR points overestimate it where precision changes between them).
pub fn auc(counts: &[BinaryCounts], curve: Curve) -> f64 {
    match curve {
        Curve::Roc => {
            let points: Vec<(f64, f64)> = counts.iter().map(|c| (c.fpr(), c.tpr())).collect();
            points.windows(2).map(|w| (w[0].0 - w[1].0).abs() * (w[0].1 + w[1].1) / 2.0).sum()
        }
        Curve::Pr => counts.windows(2).map(|w| interpolated_pr_step(&w[0], &w[1])).sum(),
    }
}

/// Keras's `interpolate_pr_auc` for one pair of neighbouring thresholds (`a` below `b`).
fn interpolated_pr_step(a: &BinaryCounts, b: &BinaryCounts) -> f64 {
    let no_nan = |n: f64, d: f64| if d == 0.0 { 0.0 } else { n / d };
    let dtp = a.tp - b.tp;
    let (pa, pb) = (a.tp + a.fp, b.tp + b.fp);
    let slope = no_nan(dtp, (pa - pb).max(0.0));
    let intercept = b.tp - slope * pb;
    let ratio = if pa > 0.0 && pb > 0.0 { pa / pb } else { 1.0 };
    no_nan(slope * (dtp + intercept * ratio.ln()), (b.tp + b.fn_).max(0.0))
}

/// A `C×C` confusion matrix: rows are true classes, columns predicted ones.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix { classes, counts: vec![0; classes * classes] }
    }

    /// Adds integer labels and predicted classes (any integer dtype or integral floats).
    ///
    /// # Errors
    /// `Config` for different lengths or a class outside `0..classes`.
    pub fn update(&mut self, labels: &Tensor, predictions: &Tensor) -> Result<()> {
        let l = labels.cast(DType::I64)?.to_vec::<i64>()?;
        let p = predictions.cast(DType::I64)?.to_vec::<i64>()?;
        if l.len() != p.len() {
            return Err(Error::Config(format!("confusion matrix: {} labels for {} predictions", l.len(), p.len())));
        }
        for (&t, &q) in l.iter().zip(&p) {
            if t < 0 || q < 0 || t as usize >= self.classes || q as usize >= self.classes {
                return Err(Error::Config(format!(
                    "confusion matrix: class {} is outside 0..{}",
                    if t < 0 || t as usize >= self.classes { t } else { q },
                    self.classes
                )));
            }
            self.counts[t as usize * self.classes + q as usize] += 1;
        }
        Ok(())
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The count of true class `t` predicted as `p`.
    pub fn get(&self, t: usize, p: usize) -> u64 {
        self.counts[t * self.classes + p]
    }

    /// The mean over classes of TP / (TP + FP + FN), skipping classes absent from both
    /// labels and predictions (Keras's `MeanIoU`).
    pub fn mean_iou(&self) -> f64 {
        let c = self.classes;
        let mut ious = Vec::new();
        for k in 0..c {
            let tp = self.get(k, k) as f64;
            let row: f64 = (0..c).map(|j| self.get(k, j) as f64).sum();
            let col: f64 = (0..c).map(|i| self.get(i, k) as f64).sum();
            let denom = row + col - tp;
            if denom > 0.0 {
                ious.push(tp / denom);
            }
        }
        if ious.is_empty() {
            0.0
        } else {
            ious.iter().sum::<f64>() / ious.len() as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::Device;

    fn counts(tp: f64, fp: f64, fn_: f64, tn: f64) -> BinaryCounts {
        BinaryCounts { tp, fp, fn_, tn }
    }

    /// The book prints rates truncated to two decimals (0.1176 → 0.11, 0.99999 → 0.99).
    fn trunc2(v: f64) -> f64 {
        ((v * 100.0) + 1e-9).floor() / 100.0
    }

    #[test]
    fn book_confusion_examples() {
        // SPEC §2.1 #50: TP 10, FP 13, FN 75, TN 188 → 0.69, 0.11, 0.06, 0.43, 0.71.
        let c = counts(10.0, 13.0, 75.0, 188.0);
        assert_eq!([c.accuracy(), c.tpr(), c.fpr(), c.ppv(), c.npv()].map(trunc2), [0.69, 0.11, 0.06, 0.43, 0.71]);
        // #51: all negative predictions — accuracy 0.70, PPV is 0/0 := 0.
        let c = counts(0.0, 0.0, 85.0, 201.0);
        assert_eq!([c.accuracy(), c.tpr(), c.fpr(), c.ppv(), c.npv()].map(trunc2), [0.70, 0.0, 0.0, 0.0, 0.70]);
        assert_eq!(c.f1(), 0.0);
        // #52: the cancer screen — 0.99 accuracy, yet precision 0.09.
        let c = counts(99.0, 999.0, 1.0, 98_901.0);
        assert_eq!([c.accuracy(), c.tpr(), c.fpr(), c.ppv(), c.npv()].map(trunc2), [0.99, 0.99, 0.01, 0.09, 0.99]);
    }

    #[test]
    fn scores_thresholds_and_auc() {
        let labels = [1.0f32, 1.0, 0.0, 0.0];
        let c = BinaryCounts::from_scores(&labels, &[0.9, 0.4, 0.6, 0.1], 0.5).unwrap();
        assert_eq!(c, counts(1.0, 1.0, 1.0, 1.0));
        // Perfectly ranked scores have ROC AUC 1, reversed ones 0.
        let t = auc_thresholds(200);
        let good: Vec<BinaryCounts> = t.iter().map(|&th| BinaryCounts::from_scores(&labels, &[0.9, 0.8, 0.2, 0.1], th).unwrap()).collect();
        assert!((auc(&good, Curve::Roc) - 1.0).abs() < 1e-9);
        let bad: Vec<BinaryCounts> = t.iter().map(|&th| BinaryCounts::from_scores(&labels, &[0.1, 0.2, 0.8, 0.9], th).unwrap()).collect();
        assert!(auc(&bad, Curve::Roc).abs() < 1e-9);
        assert!(BinaryCounts::from_scores(&labels, &[0.1], 0.5).is_err());
    }

    #[test]
    fn confusion_matrix_and_mean_iou() {
        let mut m = ConfusionMatrix::new(3);
        let l = Tensor::from_vec(vec![0i64, 0, 1, 2, 2], [5], Device::Cpu).unwrap();
        let p = Tensor::from_vec(vec![0i64, 1, 1, 2, 0], [5], Device::Cpu).unwrap();
        m.update(&l, &p).unwrap();
        assert_eq!((m.get(0, 0), m.get(0, 1), m.get(2, 0)), (1, 1, 1));
        // IoU: class 0 = 1/(2+2−1) = 1/3, class 1 = 1/(1+2−1) = 1/2, class 2 = 1/(2+1−1) = 1/2.
        assert!((m.mean_iou() - (1.0 / 3.0 + 0.5 + 0.5) / 3.0).abs() < 1e-12);
        let bad = Tensor::from_vec(vec![3i64], [1], Device::Cpu).unwrap();
        assert!(m.update(&bad, &bad).unwrap_err().to_string().contains("class 3 is outside 0..3"));
    }
}
