//! Stateful metrics (`update_state` / `result` / `reset_state`) with Keras's names.
//!
//! Each batch is reduced with tensor ops on the device the predictions live on (the model's);
//! only the batch's few totals (hit counts, a loss sum, per-threshold counts) come back to the
//! host, where the running totals are kept in f64 so long epochs do not lose precision.

use crate::confusion::{auc, auc_thresholds, BinaryCounts, ConfusionMatrix, Curve};
use crate::losses::{Loss, LossKind};
use crate::{Error, Result};
use fovea_core::{DType, Device, Tensor};

/// Which metric, by Keras name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricKind {
    /// `"accuracy"`: resolved from the loss at compile time, as Keras does.
    Accuracy,
    /// Integer labels vs. class scores: argmax matches.
    SparseCategoricalAccuracy,
    /// One-hot labels vs. class scores: argmaxes match.
    CategoricalAccuracy,
    /// 0/1 labels vs. probabilities thresholded at 0.5.
    BinaryAccuracy,
    /// Integer label among the `k` highest scores.
    SparseTopKCategoricalAccuracy(usize),
    /// The mean of a loss over the samples seen.
    MeanLoss(Loss),
    /// The (weighted) mean of the values given to [`Metric::update_values`] (`keras.metrics.Mean`).
    Mean,
    /// TP / (TP + FP) of 0/1 labels against probabilities thresholded at 0.5.
    Precision,
    /// TP / (TP + FN), thresholded at 0.5.
    Recall,
    /// The harmonic mean of precision and recall.
    F1Score,
    /// Area under the ROC or PR curve over Keras's 200 thresholds.
    Auc(Curve),
    /// Mean intersection-over-union of integer labels and the argmax of class scores.
    MeanIou(usize),
}

/// A running metric.
#[derive(Debug, Clone)]
pub struct Metric {
    kind: MetricKind,
    name: String,
    total: f64,
    count: f64,
    /// Per-threshold counts (one threshold, 0.5, except for AUC).
    counts: Vec<BinaryCounts>,
    confusion: Option<ConfusionMatrix>,
}

impl Metric {
    /// A metric by Keras name (`"accuracy"`, `"sparse_categorical_accuracy"`, `"top_k"`...).
    ///
    /// # Errors
    /// `Config` for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        let kind = match name {
            "accuracy" | "acc" => MetricKind::Accuracy,
            "sparse_categorical_accuracy" => MetricKind::SparseCategoricalAccuracy,
            "categorical_accuracy" => MetricKind::CategoricalAccuracy,
            "binary_accuracy" => MetricKind::BinaryAccuracy,
            "sparse_top_k_categorical_accuracy" => MetricKind::SparseTopKCategoricalAccuracy(5),
            "precision" => MetricKind::Precision,
            "recall" => MetricKind::Recall,
            "f1_score" => MetricKind::F1Score,
            "auc" => MetricKind::Auc(Curve::Roc),
            other => match Loss::from_name(other) {
                Ok(loss) => MetricKind::MeanLoss(loss),
                Err(_) => {
                    return Err(Error::Config(format!(
                        "unknown metric {other:?}; known: accuracy, sparse_categorical_accuracy, categorical_accuracy, binary_accuracy, sparse_top_k_categorical_accuracy, or any loss name"
                    )))
                }
            },
        };
        Ok(Self::new(kind, name))
    }

    /// A metric of `kind` reported under `name`.
    pub fn new(kind: MetricKind, name: &str) -> Self {
        let thresholds = if matches!(kind, MetricKind::Auc(_)) { AUC_THRESHOLDS } else { 1 };
        let confusion = if let MetricKind::MeanIou(c) = kind { Some(ConfusionMatrix::new(c)) } else { None };
        Metric { kind, name: name.to_string(), total: 0.0, count: 0.0, counts: vec![BinaryCounts::default(); thresholds], confusion }
    }

    /// `keras.metrics.Mean`: a running (weighted) mean of values.
    pub fn mean(name: &str) -> Self {
        Self::new(MetricKind::Mean, name)
    }

    /// Folds values (and optional same-shaped weights) into a `Mean` metric.
    ///
    /// # Errors
    /// `Config` for a metric that is not a `Mean`, or weights of another size.
    pub fn update_values(&mut self, values: &Tensor, weights: Option<&Tensor>) -> Result<()> {
        if self.kind != MetricKind::Mean {
            return Err(Error::Config(format!("{}: update_values is for Mean metrics; use update_state", self.name)));
        }
        let v = values.cast(DType::F32)?.reshape(&[-1])?;
        let (total, count) = match weights {
            Some(w) => {
                if w.numel() != v.numel() {
                    return Err(Error::Config(format!("{}: {} weights for {} values", self.name, w.numel(), v.numel())));
                }
                let w = w.cast(DType::F32)?.reshape(&[-1])?;
                let sums = download(&[v.mul(&w)?.sum_all()?, w.sum_all()?])?;
                (sums[0], sums[1])
            }
            None => (download(&[v.sum_all()?])?[0], v.numel() as f64),
        };
        self.total += total;
        self.count += count;
        Ok(())
    }

    /// Resolves `"accuracy"` to the variant that fits `loss`, keeping the name, as Keras does.
    pub fn resolved_for(mut self, loss: &Loss) -> Self {
        if self.kind == MetricKind::Accuracy {
            self.kind = match loss.kind {
                LossKind::SparseCategoricalCrossentropy { .. } => MetricKind::SparseCategoricalAccuracy,
                LossKind::BinaryCrossentropy { .. }
                | LossKind::BinaryFocalCrossentropy { .. }
                | LossKind::WeightedBinaryCrossentropy { .. } => MetricKind::BinaryAccuracy,
                _ => MetricKind::CategoricalAccuracy,
            };
        }
        self
    }

    /// The name used in logs (`accuracy`, `val_accuracy`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Clears the running totals.
    pub fn reset_state(&mut self) {
        self.total = 0.0;
        self.count = 0.0;
        self.counts.iter_mut().for_each(|c| *c = BinaryCounts::default());
        if let Some(m) = &mut self.confusion {
            *m = ConfusionMatrix::new(m_classes(&self.kind));
        }
    }

    /// The current value (0 before any update).
    pub fn result(&self) -> f64 {
        match self.kind {
            MetricKind::Precision => return self.counts[0].ppv(),
            MetricKind::Recall => return self.counts[0].tpr(),
            MetricKind::F1Score => return self.counts[0].f1(),
            MetricKind::Auc(curve) => return auc(&self.counts, curve),
            MetricKind::MeanIou(_) => return self.confusion.as_ref().map_or(0.0, ConfusionMatrix::mean_iou),
            _ => {}
        }
        if self.count == 0.0 {
            0.0
        } else {
            self.total / self.count
        }
    }

    /// Folds a batch in: reduced on the predictions' device, with only the batch's totals
    /// copied back.
    ///
    /// # Errors
    /// `Config` for labels and predictions that do not fit the metric; core errors when they
    /// live on different devices.
    pub fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        match self.kind {
            MetricKind::Precision | MetricKind::Recall | MetricKind::F1Score | MetricKind::Auc(_) => {
                let thresholds = if self.counts.len() == 1 { vec![0.5] } else { auc_thresholds(self.counts.len()) };
                let batch = binary_counts(&self.name, y_true, y_pred, &thresholds)?;
                for (c, b) in self.counts.iter_mut().zip(&batch) {
                    c.add(b);
                }
                return Ok(());
            }
            MetricKind::MeanIou(_) => {
                // The confusion matrix is kept on the host: it is the metric's whole state, and
                // its update (one count per sample and class pair) has no device primitive yet.
                let pred = y_pred.argmax(-1)?;
                return self.confusion.as_mut().expect("mean IoU keeps a matrix").update(y_true, &pred);
            }
            MetricKind::Mean => return Err(Error::Config(format!("{}: a Mean metric takes values through update_values", self.name))),
            _ => {}
        }
        let (hits, count) = match self.kind {
            MetricKind::MeanLoss(loss) => {
                let v = fovea_core::no_grad(|| loss.per_sample(y_true, y_pred))?;
                (v.sum_all()?, v.numel())
            }
            MetricKind::SparseCategoricalAccuracy | MetricKind::Accuracy => {
                let labels = y_true.cast(DType::I64)?.reshape(&[-1])?;
                let pred = y_pred.argmax(-1)?.reshape(&[-1])?;
                check_len(&self.name, labels.numel(), pred.numel())?;
                (count_true(&labels.eq(&pred)?)?, labels.numel())
            }
            MetricKind::CategoricalAccuracy => {
                let t = y_true.argmax(-1)?.reshape(&[-1])?;
                let p = y_pred.argmax(-1)?.reshape(&[-1])?;
                check_len(&self.name, t.numel(), p.numel())?;
                (count_true(&t.eq(&p)?)?, t.numel())
            }
            MetricKind::BinaryAccuracy => {
                let t = y_true.cast(DType::F32)?.reshape(&[-1])?;
                let p = y_pred.cast(DType::F32)?.reshape(&[-1])?;
                check_len(&self.name, t.numel(), p.numel())?;
                let half = half(p.device())?;
                (count_true(&p.gt(&half)?.eq(&t.gt(&half)?)?)?, t.numel())
            }
            MetricKind::SparseTopKCategoricalAccuracy(k) => {
                let c = *y_pred.dims().last().unwrap_or(&1);
                let labels = y_true.cast(DType::I64)?.reshape(&[-1])?;
                let scores = y_pred.cast(DType::F32)?.reshape(&[-1, c as isize])?;
                check_len(&self.name, labels.numel(), scores.dims()[0])?;
                // The label's score per row (-inf for a label outside the classes, which then
                // never counts as a hit), and how many scores beat it.
                let mask = Tensor::one_hot(&labels, c)?.gt(&Tensor::full((), 0.0, DType::F32, scores.device())?)?;
                let floor = Tensor::full((), f64::NEG_INFINITY, DType::F32, scores.device())?;
                let target = mask.select(&scores, &floor)?.max(&[-1], true)?;
                let above = scores.gt(&target)?.cast(DType::F32)?.sum(&[-1], false)?;
                let hit = above.lt(&Tensor::full((), k as f64, DType::F32, scores.device())?)?;
                (count_true(&hit)?, labels.numel())
            }
            MetricKind::Precision
            | MetricKind::Recall
            | MetricKind::F1Score
            | MetricKind::Auc(_)
            | MetricKind::MeanIou(_)
            | MetricKind::Mean => {
                unreachable!("handled above")
            }
        };
        self.total += download(&[hits])?[0];
        self.count += count as f64;
        Ok(())
    }
}

/// The values of a few rank-0 tensors of one device, in one copy to the host.
fn download(scalars: &[Tensor]) -> Result<Vec<f64>> {
    let refs: Vec<&Tensor> = scalars.iter().collect();
    let all = Tensor::stack(&refs, 0)?.cast(DType::F32)?;
    Ok(all.to_vec::<f32>()?.into_iter().map(f64::from).collect())
}

/// How many elements of a bool tensor are true, as a rank-0 f32 tensor on its device (exact up
/// to 2^24 per batch).
fn count_true(mask: &Tensor) -> Result<Tensor> {
    Ok(mask.cast(DType::F32)?.sum_all()?)
}

/// The 0.5 decision threshold as a rank-0 f32 tensor on `device`.
fn half(device: Device) -> Result<Tensor> {
    Ok(Tensor::full((), 0.5, DType::F32, device)?)
}

/// Binary confusion counts of 0/1 labels against scores at each threshold (score > threshold
/// is positive), reduced on the scores' device: two counts per threshold and the positive-label
/// total come back.
fn binary_counts(name: &str, y_true: &Tensor, y_pred: &Tensor, thresholds: &[f32]) -> Result<Vec<BinaryCounts>> {
    let labels = y_true.cast(DType::F32)?.reshape(&[-1, 1])?;
    let scores = y_pred.cast(DType::F32)?.reshape(&[-1, 1])?;
    if labels.numel() != scores.numel() {
        return Err(Error::Config(format!("{name}: {} labels for {} scores", labels.numel(), scores.numel())));
    }
    let device = scores.device();
    let positive = labels.gt(&half(device)?)?.cast(DType::F32)?;
    // One threshold is a fill on the device; AUC's 200 are a small upload.
    let th = match thresholds {
        [t] => Tensor::full([1, 1], f64::from(*t), DType::F32, device)?,
        _ => Tensor::from_vec(thresholds.to_vec(), [1, thresholds.len()], device)?,
    };
    let predicted = scores.gt(&th)?.cast(DType::F32)?; // [n, T]
    let tp = predicted.mul(&positive)?.sum(&[0], false)?;
    let pp = predicted.sum(&[0], false)?;
    let all = Tensor::concat(&[&tp, &pp, &positive.sum(&[0], false)?], 0)?.to_vec::<f32>()?;
    let (n, t) = (labels.numel() as f64, thresholds.len());
    let actual = f64::from(all[2 * t]);
    Ok((0..t)
        .map(|i| {
            let (tp, pp) = (f64::from(all[i]), f64::from(all[t + i]));
            BinaryCounts { tp, fp: pp - tp, fn_: actual - tp, tn: n - pp - (actual - tp) }
        })
        .collect())
}

/// Keras's default number of AUC thresholds.
const AUC_THRESHOLDS: usize = 200;

fn m_classes(kind: &MetricKind) -> usize {
    match kind {
        MetricKind::MeanIou(c) => *c,
        _ => 0,
    }
}

fn check_len(name: &str, labels: usize, preds: usize) -> Result<()> {
    if labels != preds {
        return Err(Error::Config(format!("{name}: {labels} labels for {preds} predictions")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::Device;

    #[test]
    fn accuracy_follows_the_loss_and_accumulates() {
        let d = Device::Cpu;
        let loss = Loss::from_name("sparse_categorical_crossentropy").unwrap();
        let mut m = Metric::from_name("accuracy").unwrap().resolved_for(&loss);
        let p = Tensor::from_vec(vec![0.1f32, 0.9, 0.8, 0.2, 0.3, 0.7], [3, 2], d).unwrap();
        m.update_state(&Tensor::from_vec(vec![1i64, 1, 1], [3], d).unwrap(), &p).unwrap();
        assert!((m.result() - 2.0 / 3.0).abs() < 1e-12);
        m.update_state(&Tensor::from_vec(vec![0i64], [1], d).unwrap(), &Tensor::from_vec(vec![0.6f32, 0.4], [1, 2], d).unwrap()).unwrap();
        assert_eq!(m.result(), 0.75);
        m.reset_state();
        assert_eq!(m.result(), 0.0);
        let bce = Loss::from_name("binary_crossentropy").unwrap();
        let mut b = Metric::from_name("accuracy").unwrap().resolved_for(&bce);
        b.update_state(&Tensor::from_vec(vec![1.0f32, 0.0], [2, 1], d).unwrap(), &Tensor::from_vec(vec![0.7f32, 0.6], [2, 1], d).unwrap())
            .unwrap();
        assert_eq!(b.result(), 0.5);
        let mut top = Metric::new(MetricKind::SparseTopKCategoricalAccuracy(2), "top2");
        top.update_state(&Tensor::from_vec(vec![2i64], [1], d).unwrap(), &Tensor::from_vec(vec![0.5f32, 0.1, 0.3], [1, 3], d).unwrap())
            .unwrap();
        assert_eq!(top.result(), 1.0);
        assert!(Metric::from_name("f7").is_err());
        // Precision/recall/F1 at 0.5 and AUC accumulate over batches.
        let t = Tensor::from_vec(vec![1.0f32, 1.0, 0.0, 0.0], [4, 1], d).unwrap();
        let p = Tensor::from_vec(vec![0.9f32, 0.4, 0.6, 0.1], [4, 1], d).unwrap();
        for (name, want) in [("precision", 0.5), ("recall", 0.5), ("f1_score", 0.5)] {
            let mut m = Metric::from_name(name).unwrap();
            m.update_state(&t, &p).unwrap();
            assert!((m.result() - want).abs() < 1e-12, "{name}");
        }
        let mut a = Metric::from_name("auc").unwrap();
        a.update_state(&t, &p).unwrap();
        // Reference values from keras.metrics.AUC()'s algorithm (200 thresholds, trapezoids on
        // the ROC points): 3 of 4 positive-negative pairs are ordered, so exactly 0.75.
        assert!((a.result() - 0.75).abs() < 1e-12, "auc {}", a.result());
        // 0.501 (positive) and 0.502 (negative) fall between the same two thresholds, so Keras
        // counts the pair as a tie: (3 + 1/2) / 6, where the exact rank statistic gives 3 / 6.
        let mut a = Metric::from_name("auc").unwrap();
        a.update_state(
            &Tensor::from_vec(vec![1.0f32, 0.0, 1.0], [3, 1], d).unwrap(),
            &Tensor::from_vec(vec![0.501f32, 0.502, 0.9], [3, 1], d).unwrap(),
        )
        .unwrap();
        a.update_state(&Tensor::from_vec(vec![0.0f32, 1.0], [2, 1], d).unwrap(), &Tensor::from_vec(vec![0.3f32, 0.2], [2, 1], d).unwrap())
            .unwrap();
        assert!((a.result() - 3.5 / 6.0).abs() < 1e-12, "auc over two batches {}", a.result());
        let mut iou = Metric::new(MetricKind::MeanIou(2), "mean_iou");
        iou.update_state(
            &Tensor::from_vec(vec![0i64, 1], [2], d).unwrap(),
            &Tensor::from_vec(vec![0.9f32, 0.1, 0.2, 0.8], [2, 2], d).unwrap(),
        )
        .unwrap();
        assert_eq!(iou.result(), 1.0);
        iou.reset_state();
        assert_eq!(iou.result(), 0.0);
        let mut mean = Metric::mean("mean");
        mean.update_values(&Tensor::from_vec(vec![1.0f32, 3.0], [2], d).unwrap(), None).unwrap();
        mean.update_values(&Tensor::from_vec(vec![5.0f32], [1], d).unwrap(), Some(&Tensor::from_vec(vec![2.0f32], [1], d).unwrap()))
            .unwrap();
        assert_eq!(mean.result(), (1.0 + 3.0 + 10.0) / 4.0);
        assert!(mean.update_state(&t, &p).is_err());
    }

    /// `keras.metrics.AUC(curve=...)` on the same scores (`tools/fixtures/gen_auc_reference.py`
    /// prints these values; Keras sums in f32, hence the 1e-6).
    #[test]
    fn auc_matches_keras() {
        let d = Device::Cpu;
        let batch = |y: &[f32], p: &[f32]| {
            (Tensor::from_vec(y.to_vec(), [y.len(), 1], d).unwrap(), Tensor::from_vec(p.to_vec(), [p.len(), 1], d).unwrap())
        };
        let small = [batch(&[1.0, 1.0, 0.0, 0.0], &[0.9, 0.4, 0.6, 0.1])];
        let two = [
            batch(
                &[1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
                &[0.91, 0.85, 0.77, 0.502, 0.501, 0.43, 0.38, 0.3, 0.22, 0.15, 0.08, 0.9],
            ),
            batch(
                &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0],
                &[0.95, 0.64, 0.64, 0.55, 0.12, 0.05, 0.71, 0.33, 0.996, 0.2, 0.47, 0.6],
            ),
        ];
        type Batches<'a> = &'a [(Tensor, Tensor)];
        let cases: [(Curve, Batches, f64); 4] = [
            (Curve::Roc, &small, 0.750000000),
            (Curve::Roc, &two, 0.629370689),
            // Trapezoids on the PR points would give 0.7917 here.
            (Curve::Pr, &small, 0.797267437),
            (Curve::Pr, &two, 0.603086591),
        ];
        for (curve, batches, want) in cases {
            let mut m = Metric::new(MetricKind::Auc(curve), "auc");
            for (y, p) in batches {
                m.update_state(y, p).unwrap();
            }
            assert!((m.result() - want).abs() < 1e-6, "{curve:?} over {} batches: {} vs Keras {want}", batches.len(), m.result());
        }
    }
}
