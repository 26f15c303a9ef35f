//! Stateful metrics (`update_state` / `result` / `reset_state`) with Keras's names.

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
}

/// A running metric.
#[derive(Debug, Clone)]
pub struct Metric {
    kind: MetricKind,
    name: String,
    total: f64,
    count: f64,
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
        Metric { kind, name: name.to_string(), total: 0.0, count: 0.0 }
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
    }

    /// The current value (0 before any update).
    pub fn result(&self) -> f64 {
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
    }
}
