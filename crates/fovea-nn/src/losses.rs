//! Losses with Keras 3's formulas, defaults and reductions.
//!
//! A loss first computes one value per sample (averaging over the last axis where Keras does),
//! then reduces: `sum_over_batch_size` (the default: `Σ wᵢ·lᵢ / N`), `sum`, or `none`.

use crate::{Error, Result};
use fovea_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// Keras's fuzz factor for clipping probabilities before a log.
pub const EPSILON: f32 = 1e-7;

/// Which loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum LossKind {
    /// Integer labels `[N]` or `[N, 1]` against class scores `[N, C]`.
    SparseCategoricalCrossentropy {
        /// `y_pred` holds logits instead of probabilities.
        from_logits: bool,
    },
    /// One-hot (or soft) labels `[N, C]` against class scores.
    CategoricalCrossentropy {
        /// `y_pred` holds logits.
        from_logits: bool,
        /// Mixes the labels with the uniform distribution: `y·(1−s) + s/C`.
        label_smoothing: f32,
    },
    /// Independent 0/1 labels against probabilities (or logits).
    BinaryCrossentropy {
        /// `y_pred` holds logits.
        from_logits: bool,
        /// Pulls labels toward ½: `y·(1−s) + s/2`.
        label_smoothing: f32,
    },
    /// `mean((y − ŷ)²)` over the last axis.
    MeanSquaredError,
    /// `mean(|y − ŷ|)` over the last axis.
    MeanAbsoluteError,
    /// Quadratic below `delta`, linear above.
    Huber {
        /// The switch point (Keras default 1.0).
        delta: f32,
    },
    /// `Σ y·ln(y/ŷ)` with both clipped to `[ε, 1]`.
    KlDivergence,
    /// `mean(max(1 − y·ŷ, 0))`, 0/1 labels mapped to ±1.
    Hinge,
    /// `mean(max(1 − y·ŷ, 0)²)`.
    SquaredHinge,
    /// `max(0, 1 + max((1−y)·ŷ) − Σ y·ŷ)`.
    CategoricalHinge,
    /// `mean(ln cosh(ŷ − y))`.
    LogCosh,
    /// `−Σ normalize(y)·normalize(ŷ)` over the last axis.
    CosineSimilarity,
    /// Binary cross-entropy scaled by `(1 − p_t)^γ` (Keras's `BinaryFocalCrossentropy`), and
    /// by `α` / `1 − α` for positives / negatives when `alpha` is given (its
    /// `apply_class_balancing`).
    BinaryFocalCrossentropy {
        /// The focusing exponent γ (Keras default 2).
        gamma: f32,
        /// Class balancing weight α of positives (`None`: no balancing; Keras's α default 0.25).
        alpha: Option<f32>,
        /// `y_pred` holds logits.
        from_logits: bool,
        /// Pulls labels toward ½ first.
        label_smoothing: f32,
    },
    /// `−Σ α·(1 − p)^γ·y·ln p` over classes (Keras's `CategoricalFocalCrossentropy`).
    CategoricalFocalCrossentropy {
        /// The weight α (Keras default 0.25).
        alpha: f32,
        /// The focusing exponent γ (Keras default 2).
        gamma: f32,
        /// `y_pred` holds logits.
        from_logits: bool,
        /// Mixes the labels with the uniform distribution first.
        label_smoothing: f32,
    },
    /// Binary cross-entropy on logits with positives weighted by `pos_weight`
    /// (`tf.nn.weighted_cross_entropy_with_logits`, averaged over the last axis): trades recall
    /// against precision on imbalanced labels.
    WeightedBinaryCrossentropy {
        /// The weight of the positive term (> 1 raises recall).
        pos_weight: f32,
    },
    /// The multi-class SVM (Weston–Watkins) hinge of the seeds, one-hot labels against scores:
    /// `Σ_{j≠y} max(0, s_j − s_y + 1)` — every wrong class within the margin counts, where
    /// Keras's categorical hinge counts only the highest one.
    MulticlassHinge,
}

/// How per-sample losses become the reported loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// `Σ wᵢ·lᵢ / N` — Keras's default.
    #[default]
    SumOverBatchSize,
    /// `Σ wᵢ·lᵢ`.
    Sum,
    /// The per-sample losses, weighted.
    None,
}

/// A loss function with its reduction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Loss {
    /// The formula.
    pub kind: LossKind,
    /// The reduction.
    pub reduction: Reduction,
}

impl From<LossKind> for Loss {
    fn from(kind: LossKind) -> Self {
        Loss { kind, reduction: Reduction::SumOverBatchSize }
    }
}

impl Loss {
    /// Looks a loss up by its Keras name (`"sparse_categorical_crossentropy"`, `"mse"`, ...).
    ///
    /// # Errors
    /// `Config` for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        use LossKind::*;
        let kind = match name {
            "sparse_categorical_crossentropy" => SparseCategoricalCrossentropy { from_logits: false },
            "categorical_crossentropy" => CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 },
            "binary_crossentropy" => BinaryCrossentropy { from_logits: false, label_smoothing: 0.0 },
            "mean_squared_error" | "mse" => MeanSquaredError,
            "mean_absolute_error" | "mae" => MeanAbsoluteError,
            "huber" => Huber { delta: 1.0 },
            "kl_divergence" | "kld" => KlDivergence,
            "hinge" => Hinge,
            "squared_hinge" => SquaredHinge,
            "categorical_hinge" => CategoricalHinge,
            "log_cosh" | "logcosh" => LogCosh,
            "cosine_similarity" => CosineSimilarity,
            "binary_focal_crossentropy" => BinaryFocalCrossentropy { gamma: 2.0, alpha: None, from_logits: false, label_smoothing: 0.0 },
            "categorical_focal_crossentropy" => CategoricalFocalCrossentropy { alpha: 0.25, gamma: 2.0, from_logits: false, label_smoothing: 0.0 },
            "multiclass_hinge" => MulticlassHinge,
            other => {
                return Err(Error::Config(format!(
                    "unknown loss {other:?}; known: sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy, mean_squared_error (mse), mean_absolute_error (mae), huber, kl_divergence, hinge, squared_hinge, categorical_hinge, log_cosh, cosine_similarity, binary_focal_crossentropy, categorical_focal_crossentropy, multiclass_hinge"
                )))
            }
        };
        Ok(kind.into())
    }

    /// The Keras name of the formula (used in logs like `val_loss`-style metric names).
    pub fn name(&self) -> &'static str {
        match self.kind {
            LossKind::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            LossKind::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            LossKind::BinaryCrossentropy { .. } => "binary_crossentropy",
            LossKind::MeanSquaredError => "mean_squared_error",
            LossKind::MeanAbsoluteError => "mean_absolute_error",
            LossKind::Huber { .. } => "huber",
            LossKind::KlDivergence => "kl_divergence",
            LossKind::Hinge => "hinge",
            LossKind::SquaredHinge => "squared_hinge",
            LossKind::CategoricalHinge => "categorical_hinge",
            LossKind::LogCosh => "log_cosh",
            LossKind::CosineSimilarity => "cosine_similarity",
            LossKind::BinaryFocalCrossentropy { .. } => "binary_focal_crossentropy",
            LossKind::CategoricalFocalCrossentropy { .. } => "categorical_focal_crossentropy",
            LossKind::WeightedBinaryCrossentropy { .. } => "weighted_binary_crossentropy",
            LossKind::MulticlassHinge => "multiclass_hinge",
        }
    }

    /// The loss of a batch, reduced, optionally weighted per sample (`sample_weight` `[N]`).
    ///
    /// # Errors
    /// `Config` naming the loss with both shapes when `y_true` and `y_pred` do not fit together,
    /// or when a sparse label is out of range.
    pub fn compute(&self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<Tensor> {
        let mut per_sample = self.per_sample(y_true, y_pred)?;
        if let Some(w) = sample_weight {
            if w.numel() != per_sample.numel() {
                return Err(Error::Config(format!(
                    "{}: sample_weight has {} values for a batch of {}",
                    self.name(),
                    w.numel(),
                    per_sample.numel()
                )));
            }
            per_sample = per_sample.mul(&w.cast(DType::F32)?.reshape_to(per_sample.shape().clone())?)?;
        }
        Ok(match self.reduction {
            Reduction::None => per_sample,
            Reduction::Sum => per_sample.sum_all()?,
            Reduction::SumOverBatchSize => per_sample.sum_all()?.mul_scalar(1.0 / per_sample.numel().max(1) as f32)?,
        })
    }

    /// One loss value per sample, `[N]` (more leading axes are kept as they are).
    ///
    /// # Errors
    /// As [`Loss::compute`].
    pub fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let name = self.name();
        if y_pred.rank() == 0 {
            return Err(Error::Config(format!("{name}: y_pred must have a batch axis, got shape {}", y_pred.shape())));
        }
        if let LossKind::SparseCategoricalCrossentropy { from_logits } = self.kind {
            return sparse_crossentropy(name, y_true, y_pred, from_logits);
        }
        let y = y_true.cast(DType::F32)?;
        if y.shape() != y_pred.shape() {
            return Err(Error::Config(format!("{name}: y_true shape {} does not match y_pred shape {}", y.shape(), y_pred.shape())));
        }
        let p = y_pred;
        Ok(match self.kind {
            LossKind::CategoricalCrossentropy { from_logits, label_smoothing } => {
                let c = *p.dims().last().expect("rank >= 1") as f32;
                let y = if label_smoothing > 0.0 { y.mul_scalar(1.0 - label_smoothing)?.add_scalar(label_smoothing / c)? } else { y };
                let log_p = if from_logits { p.log_softmax(-1)? } else { clipped_log(&p.div(&p.sum(&[-1], true)?)?)? };
                y.mul(&log_p)?.sum(&[-1], false)?.neg()?
            }
            LossKind::BinaryCrossentropy { from_logits, label_smoothing } => {
                let y = if label_smoothing > 0.0 { y.mul_scalar(1.0 - label_smoothing)?.add_scalar(0.5 * label_smoothing)? } else { y };
                binary_crossentropy(&y, p, from_logits)?.mean(&[-1], false)?
            }
            LossKind::MeanSquaredError => y.sub(p)?.square()?.mean(&[-1], false)?,
            LossKind::MeanAbsoluteError => y.sub(p)?.abs()?.mean(&[-1], false)?,
            LossKind::Huber { delta } => {
                let err = p.sub(&y)?.abs()?;
                let quadratic = err.square()?.mul_scalar(0.5)?;
                let linear = err.mul_scalar(delta)?.sub_scalar(0.5 * delta * delta)?;
                err.le(&Tensor::scalar(delta, err.device())?)?.select(&quadratic, &linear)?.mean(&[-1], false)?
            }
            LossKind::KlDivergence => {
                let yc = y.clip(EPSILON, 1.0)?;
                let pc = p.clip(EPSILON, 1.0)?;
                yc.mul(&yc.div(&pc)?.log()?)?.sum(&[-1], false)?
            }
            LossKind::Hinge | LossKind::SquaredHinge => {
                let signed = to_plus_minus_one(&y)?;
                let margin = signed.mul(p)?.neg()?.add_scalar(1.0)?.relu()?;
                let margin = if matches!(self.kind, LossKind::SquaredHinge) { margin.square()? } else { margin };
                margin.mean(&[-1], false)?
            }
            LossKind::CategoricalHinge => {
                let pos = y.mul(p)?.sum(&[-1], false)?;
                let neg = y.neg()?.add_scalar(1.0)?.mul(p)?.max(&[-1], false)?;
                neg.sub(&pos)?.add_scalar(1.0)?.relu()?
            }
            LossKind::LogCosh => {
                // ln cosh(x) = x + softplus(−2x) − ln 2, without overflow
                let x = p.sub(&y)?;
                x.add(&x.mul_scalar(-2.0)?.softplus()?)?.sub_scalar(std::f32::consts::LN_2)?.mean(&[-1], false)?
            }
            LossKind::CosineSimilarity => {
                let norm = |t: &Tensor| -> Result<Tensor> {
                    Ok(t.div(&t.square()?.sum(&[-1], true)?.maximum(&Tensor::scalar(1e-12, t.device())?)?.sqrt()?)?)
                };
                norm(&y)?.mul(&norm(p)?)?.sum(&[-1], false)?.neg()?
            }
            LossKind::BinaryFocalCrossentropy { gamma, alpha, from_logits, label_smoothing } => {
                let y = if label_smoothing > 0.0 { y.mul_scalar(1.0 - label_smoothing)?.add_scalar(0.5 * label_smoothing)? } else { y };
                let bce = binary_crossentropy(&y, p, from_logits)?;
                let prob = if from_logits { p.sigmoid()? } else { p.clone() };
                // p_t: the probability given to the true label; (1 − p_t)^γ down-weights easy cases.
                let p_t = y.mul(&prob)?.add(&y.neg()?.add_scalar(1.0)?.mul(&prob.neg()?.add_scalar(1.0)?)?)?;
                let mut focal = p_t.neg()?.add_scalar(1.0)?.pow(&Tensor::full((), gamma as f64, DType::F32, p.device())?)?.mul(&bce)?;
                if let Some(a) = alpha {
                    focal = focal.mul(&y.mul_scalar(a)?.add(&y.neg()?.add_scalar(1.0)?.mul_scalar(1.0 - a)?)?)?;
                }
                focal.mean(&[-1], false)?
            }
            LossKind::CategoricalFocalCrossentropy { alpha, gamma, from_logits, label_smoothing } => {
                let c = *p.dims().last().expect("rank >= 1") as f32;
                let y = if label_smoothing > 0.0 { y.mul_scalar(1.0 - label_smoothing)?.add_scalar(label_smoothing / c)? } else { y };
                let prob = if from_logits { p.softmax(-1)? } else { p.clone() };
                let prob = prob.div(&prob.sum(&[-1], true)?)?.clip(EPSILON, 1.0 - EPSILON)?;
                let modulating = prob.neg()?.add_scalar(1.0)?.pow(&Tensor::full((), gamma as f64, DType::F32, p.device())?)?;
                modulating.mul_scalar(alpha)?.mul(&y.mul(&prob.log()?)?.neg()?)?.sum(&[-1], false)?
            }
            LossKind::WeightedBinaryCrossentropy { pos_weight } => {
                // (1 − y)·x + (1 + (q − 1)·y)·(ln(1 + e^{−|x|}) + max(−x, 0)), stable for any x
                let softplus_neg = p.abs()?.neg()?.exp()?.log1p()?.add(&p.neg()?.relu()?)?;
                let weight = y.mul_scalar(pos_weight - 1.0)?.add_scalar(1.0)?;
                y.neg()?.add_scalar(1.0)?.mul(p)?.add(&weight.mul(&softplus_neg)?)?.mean(&[-1], false)?
            }
            LossKind::MulticlassHinge => {
                let true_score = y.mul(p)?.sum(&[-1], true)?;
                p.sub(&true_score)?.add_scalar(1.0)?.relu()?.mul(&y.neg()?.add_scalar(1.0)?)?.sum(&[-1], false)?
            }
            LossKind::SparseCategoricalCrossentropy { .. } => unreachable!("handled above"),
        })
    }
}

/// Element-wise binary cross-entropy of labels `y` against probabilities or logits `p`.
fn binary_crossentropy(y: &Tensor, p: &Tensor, from_logits: bool) -> Result<Tensor> {
    Ok(if from_logits {
        // max(x, 0) − x·y + ln(1 + e^{−|x|}), stable for any logit
        p.relu()?.sub(&p.mul(y)?)?.add(&p.abs()?.neg()?.exp()?.log1p()?)?
    } else {
        let pc = p.clip(EPSILON, 1.0 - EPSILON)?;
        y.mul(&pc.log()?)?.add(&y.neg()?.add_scalar(1.0)?.mul(&pc.neg()?.add_scalar(1.0)?.log()?)?)?.neg()?
    })
}

fn clipped_log(p: &Tensor) -> Result<Tensor> {
    Ok(p.clip(EPSILON, 1.0 - EPSILON)?.log()?)
}

/// Keras's hinge losses accept 0/1 labels and map them to −1/+1. The labels are checked on
/// their device; one count comes back.
fn to_plus_minus_one(y: &Tensor) -> Result<Tensor> {
    let full = |v: f64| Tensor::full((), v, y.dtype(), y.device());
    let binary = y.eq(&full(0.0)?)?.logical_or(&y.eq(&full(1.0)?)?)?;
    let others = binary.logical_not()?.cast(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
    if others == 0.0 {
        Ok(y.mul_scalar(2.0)?.sub_scalar(1.0)?)
    } else {
        Ok(y.clone())
    }
}

fn sparse_crossentropy(name: &str, y_true: &Tensor, y_pred: &Tensor, from_logits: bool) -> Result<Tensor> {
    let classes = *y_pred.dims().last().expect("rank >= 1");
    let batch_dims = &y_pred.dims()[..y_pred.rank() - 1];
    // Labels may come as [N] or [N, 1], and as integers or integral floats.
    let labels = if y_true.rank() == y_pred.rank() && y_true.dims().last() == Some(&1) { y_true.squeeze(&[-1])? } else { y_true.clone() };
    if labels.dims() != batch_dims {
        return Err(Error::Config(format!(
            "{name}: labels of shape {} do not match predictions of shape {} (expected labels of shape {:?})",
            y_true.shape(),
            y_pred.shape(),
            batch_dims
        )));
    }
    let labels = labels.cast(DType::I64)?;
    // Checked on the labels' device (one count comes back); only a failing batch is read whole,
    // to name the bad label.
    let bound = |v: f64| Tensor::full((), v, DType::I64, labels.device());
    let outside = labels.lt(&bound(0.0)?)?.logical_or(&labels.ge(&bound(classes as f64)?)?)?;
    let outside = outside.cast(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
    if let Some(bad) =
        (outside > 0.0).then(|| labels.to_vec::<i64>()).transpose()?.and_then(|v| v.into_iter().find(|&l| l < 0 || l as usize >= classes))
    {
        return Err(Error::Config(format!("{name}: label {bad} is out of range for {classes} classes (valid: 0 to {})", classes - 1)));
    }
    let log_p = if from_logits { y_pred.log_softmax(-1)? } else { clipped_log(&y_pred.div(&y_pred.sum(&[-1], true)?)?)? };
    Ok(Tensor::one_hot(&labels, classes)?.mul(&log_p)?.sum(&[-1], false)?.neg()?)
}
