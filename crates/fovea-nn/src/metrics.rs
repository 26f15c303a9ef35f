//! Stateful metrics (`update_state` / `result` / `reset_state`) with Keras's names.

use crate::confusion::{auc, auc_thresholds, BinaryCounts, ConfusionMatrix, Curve};
use crate::losses::{Loss, LossKind};
use crate::{Error, Result};
use fovea_core::{DType, Tensor};

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
        let v = values.cast(DType::F32)?.to_vec::<f32>()?;
        let w = match weights {
            Some(w) => w.cast(DType::F32)?.to_vec::<f32>()?,
            None => vec![1.0; v.len()],
        };
        if w.len() != v.len() {
            return Err(Error::Config(format!("{}: {} weights for {} values", self.name, w.len(), v.len())));
        }
        self.total += v.iter().zip(&w).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>();
        self.count += w.iter().map(|&b| b as f64).sum::<f64>();
        Ok(())
    }

    /// Resolves `"accuracy"` to the variant that fits `loss`, keeping the name, as Keras does.
    pub fn resolved_for(mut self, loss: &Loss) -> Self {
        if self.kind == MetricKind::Accuracy {
            self.kind = match loss.kind {
                LossKind::SparseCategoricalCrossentropy { .. } => MetricKind::SparseCategoricalAccuracy,
                LossKind::BinaryCrossentropy { .. } => MetricKind::BinaryAccuracy,
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

    /// Folds a batch in.
    ///
    /// # Errors
    /// `Config` for labels and predictions that do not fit the metric.
    pub fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        let n = y_pred.dims().first().copied().unwrap_or(1) as f64;
        match self.kind {
            MetricKind::Precision | MetricKind::Recall | MetricKind::F1Score | MetricKind::Auc(_) => {
                let t = y_true.cast(DType::F32)?.to_vec::<f32>()?;
                let p = y_pred.to_vec::<f32>()?;
                let thresholds = if self.counts.len() == 1 { vec![0.5] } else { auc_thresholds(self.counts.len()) };
                for (c, th) in self.counts.iter_mut().zip(thresholds) {
                    c.add(&BinaryCounts::from_scores(&t, &p, th).map_err(|e| Error::Config(format!("{}: {e}", self.name)))?);
                }
                return Ok(());
            }
            MetricKind::MeanIou(_) => {
                let pred = y_pred.argmax(-1)?;
                return self.confusion.as_mut().expect("mean IoU keeps a matrix").update(y_true, &pred);
            }
            MetricKind::Mean => return Err(Error::Config(format!("{}: a Mean metric takes values through update_values", self.name))),
            _ => {}
        }
        let (hits, count) = match self.kind {
            MetricKind::MeanLoss(loss) => {
                let v = fovea_core::no_grad(|| loss.per_sample(y_true, y_pred))?;
                (v.to_vec::<f32>()?.iter().map(|&x| x as f64).sum(), v.numel() as f64)
            }
            MetricKind::SparseCategoricalAccuracy | MetricKind::Accuracy => {
                let labels = flatten_labels(y_true)?;
                let pred = y_pred.argmax(-1)?.to_vec::<i64>()?;
                check_len(&self.name, labels.len(), pred.len())?;
                (labels.iter().zip(&pred).filter(|(a, b)| a == b).count() as f64, n)
            }
            MetricKind::CategoricalAccuracy => {
                let t = y_true.argmax(-1)?.to_vec::<i64>()?;
                let p = y_pred.argmax(-1)?.to_vec::<i64>()?;
                check_len(&self.name, t.len(), p.len())?;
                (t.iter().zip(&p).filter(|(a, b)| a == b).count() as f64, t.len() as f64)
            }
            MetricKind::BinaryAccuracy => {
                let t = y_true.cast(DType::F32)?.to_vec::<f32>()?;
                let p = y_pred.to_vec::<f32>()?;
                check_len(&self.name, t.len(), p.len())?;
                (t.iter().zip(&p).filter(|(t, p)| (**p > 0.5) == (**t > 0.5)).count() as f64, t.len() as f64)
            }
            MetricKind::Precision
            | MetricKind::Recall
            | MetricKind::F1Score
            | MetricKind::Auc(_)
            | MetricKind::MeanIou(_)
            | MetricKind::Mean => {
                unreachable!("handled above")
            }
            MetricKind::SparseTopKCategoricalAccuracy(k) => {
                let labels = flatten_labels(y_true)?;
                let c = *y_pred.dims().last().unwrap_or(&1);
                let p = y_pred.to_vec::<f32>()?;
                check_len(&self.name, labels.len(), p.len() / c.max(1))?;
                let hits = labels
                    .iter()
                    .enumerate()
                    .filter(|(i, &l)| {
                        let row = &p[i * c..(i + 1) * c];
                        let target = row.get(l as usize).copied().unwrap_or(f32::NEG_INFINITY);
                        row.iter().filter(|&&v| v > target).count() < k
                    })
                    .count();
                (hits as f64, labels.len() as f64)
            }
        };
        self.total += hits;
        self.count += count;
        Ok(())
    }
}

/// Keras's default number of AUC thresholds.
const AUC_THRESHOLDS: usize = 200;

fn m_classes(kind: &MetricKind) -> usize {
    match kind {
        MetricKind::MeanIou(c) => *c,
        _ => 0,
    }
}

fn flatten_labels(y: &Tensor) -> Result<Vec<i64>> {
    Ok(y.cast(DType::I64)?.to_vec::<i64>()?)
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
        assert!((a.result() - 0.75).abs() < 0.01, "auc {}", a.result());
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
}
