//! Where `fit` and `evaluate` draw batches from: the [`BatchSource`] trait and in-memory
//! tensors served in (shuffled) batches.

use crate::{Error, Result};
use fovea_core::{random::Rng, Device, Tensor};

/// Rows `idx` of a batch-first tensor.
pub(crate) fn take_rows(t: &Tensor, idx: &[i64]) -> Result<Tensor> {
    let index = Tensor::from_vec(idx.to_vec(), [idx.len()], t.device())?;
    Ok(t.gather(&index, 0)?)
}

/// The sample count shared by every input and target.
pub(crate) fn check_pairs(x: &[Tensor], y: &[Tensor]) -> Result<usize> {
    let first = x.first().ok_or_else(|| Error::Config("no input tensors".into()))?;
    let n = first.dims().first().copied().ok_or_else(|| Error::Config(format!("inputs need a batch axis, got shape {}", first.shape())))?;
    for t in x.iter().chain(y) {
        if t.dims().first() != Some(&n) {
            return Err(Error::Config(format!("inputs have {n} samples but targets have shape {} (the first axis must match)", t.shape())));
        }
    }
    Ok(n)
}

fn rows_of(ts: &[Tensor], idx: &[i64]) -> Result<Vec<Tensor>> {
    ts.iter().map(|t| take_rows(t, idx)).collect()
}

pub(crate) fn narrow_all(ts: &[Tensor], start: usize, len: usize) -> Result<Vec<Tensor>> {
    ts.iter().map(|t| Ok(t.narrow(0, start, len)?)).collect()
}

/// One training batch: inputs, targets (one per output) and optional per-sample weights.
pub struct Batch {
    /// The model inputs.
    pub x: Vec<Tensor>,
    /// The targets, one per output.
    pub y: Vec<Tensor>,
    /// Per-sample loss weights `[batch]`.
    pub sample_weight: Option<Tensor>,
}

impl Batch {
    /// The batch moved to `device` (the model's) before the forward pass: inputs, targets and
    /// weights are uploaded once here, so the losses and metrics compute there too.
    ///
    /// # Errors
    /// `DeviceUnavailable` when `device` has no backend.
    pub fn on_device(self, device: Device) -> Result<Batch> {
        Ok(Batch {
            x: to_device_all(&self.x, device)?,
            y: to_device_all(&self.y, device)?,
            sample_weight: self.sample_weight.map(|w| w.to(device)).transpose()?,
        })
    }
}

/// The batches of one epoch.
pub type Batches<'a> = Box<dyn Iterator<Item = Result<Batch>> + 'a>;

/// Anything `fit` and `evaluate` can draw batches from: tensors, or a `fovea_data` `Dataset`.
pub trait BatchSource {
    /// The batches of epoch `epoch` (0-based; sources that shuffle use it to reshuffle).
    ///
    /// # Errors
    /// When the source cannot start an epoch.
    fn batches(&self, epoch: usize) -> Result<Batches<'_>>;

    /// Batches per epoch, when known (for the progress bar's total).
    fn steps(&self) -> Option<usize> {
        None
    }

    /// The input shapes (batch `None`), when known before the first batch, so `fit` can build
    /// the model before its callbacks run.
    fn input_specs(&self) -> Option<Vec<crate::layer::ShapeSpec>> {
        None
    }

    /// Whether this source already yields this replica's own batches (a dataset sharded per
    /// worker), so a data-parallel `fit` must not split them again. See
    /// [`super::replicas::PerReplica`].
    fn per_replica(&self) -> bool {
        false
    }
}

/// The first `steps` batches of another source (Keras's `validation_steps`).
pub(crate) struct FirstSteps<'a> {
    pub(crate) source: &'a dyn BatchSource,
    pub(crate) steps: usize,
}

impl BatchSource for FirstSteps<'_> {
    fn batches(&self, epoch: usize) -> Result<Batches<'_>> {
        Ok(Box::new(self.source.batches(epoch)?.take(self.steps)))
    }

    fn steps(&self) -> Option<usize> {
        Some(self.source.steps().map_or(self.steps, |s| s.min(self.steps)))
    }

    fn input_specs(&self) -> Option<Vec<crate::layer::ShapeSpec>> {
        self.source.input_specs()
    }
}

/// In-memory tensors served in (shuffled) batches.
pub(crate) struct TensorBatches {
    pub(crate) x: Vec<Tensor>,
    pub(crate) y: Vec<Tensor>,
    pub(crate) weights: Option<Tensor>,
    pub(crate) batch_size: usize,
    pub(crate) shuffle: bool,
    pub(crate) seed: u64,
    /// Steps per epoch when cycling (`steps_per_epoch`); 0 means one pass.
    pub(crate) steps: usize,
    pub(crate) cycle: bool,
}

impl BatchSource for TensorBatches {
    fn batches(&self, epoch: usize) -> Result<Batches<'_>> {
        let n = self.x.first().map_or(0, |t| t.dims()[0]);
        let mut order: Vec<i64> = (0..n as i64).collect();
        if self.shuffle {
            Rng::new(self.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)).shuffle(&mut order);
        }
        if self.cycle {
            // With steps_per_epoch beyond one pass, keep cycling through the order.
            order = order.iter().copied().cycle().take(self.steps * self.batch_size).collect();
        }
        let bs = self.batch_size;
        let chunks: Vec<Vec<i64>> = order.chunks(bs).map(<[i64]>::to_vec).collect();
        let contiguous = !self.shuffle && !self.cycle;
        Ok(Box::new(chunks.into_iter().enumerate().map(move |(i, idx)| {
            // Unshuffled data is sliced, not gathered: no copy of the batch's rows.
            let (x, y) = if contiguous {
                (narrow_all(&self.x, i * bs, idx.len())?, narrow_all(&self.y, i * bs, idx.len())?)
            } else {
                (rows_of(&self.x, &idx)?, rows_of(&self.y, &idx)?)
            };
            let sample_weight = self.weights.as_ref().map(|w| take_rows(w, &idx)).transpose()?;
            Ok(Batch { x, y, sample_weight })
        })))
    }

    fn steps(&self) -> Option<usize> {
        let n = self.x.first().map_or(0, |t| t.dims()[0]);
        Some(if self.cycle { self.steps } else { n.div_ceil(self.batch_size) })
    }

    fn input_specs(&self) -> Option<Vec<crate::layer::ShapeSpec>> {
        Some(self.x.iter().map(|t| std::iter::once(None).chain(t.dims()[1..].iter().map(|&d| Some(d))).collect()).collect())
    }
}

/// The tensors moved to `device` (a no-op for those already there): batches go to the
/// model's device before the forward pass, one explicit upload per tensor.
///
/// # Errors
/// `DeviceUnavailable` when `device` has no backend.
pub(crate) fn to_device_all(ts: &[Tensor], device: Device) -> Result<Vec<Tensor>> {
    ts.iter().map(|t| Ok(t.to(device)?)).collect()
}
