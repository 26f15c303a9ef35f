//! Synchronous data parallelism, independent of the transport: what `fit` does when a compiled
//! model has replicas in other processes (Keras's `MultiWorkerMirroredStrategy`).
//!
//! Each replica holds the whole model and trains on its slice of every global batch; after the
//! backward pass the gradients are averaged across replicas (weighted by each replica's sample
//! count, so the update equals one process training on the whole batch), and every replica
//! applies the same update. The transport is a [`Collective`]: `fovea-distributed` implements
//! it on MPI; this module needs none.

use super::batches::{narrow_all, BatchSource, Batches};
use super::training::{Logs, Model};
use crate::{Error, Result};
use fovea_core::{Tensor, Variable};
use std::sync::Arc;

/// Gradients travel in buckets of this many values (4 MB of f32): the transport can reduce one
/// bucket while the next is being packed, and no buffer grows with the model.
pub const BUCKET_VALUES: usize = 1 << 20;

/// The collective operations data-parallel training needs, over all replicas of a job.
/// Every replica must call them in the same order with buffers of the same length.
pub trait Collective: Send + Sync {
    /// This replica's index, `0..world_size()`; replica 0 is the chief.
    fn rank(&self) -> usize;

    /// How many replicas train together.
    fn world_size(&self) -> usize;

    /// Element-wise sums of `buckets` over all replicas, in the same order. Implementations may
    /// reduce the buckets concurrently.
    ///
    /// # Errors
    /// When the transport fails.
    fn all_reduce_sum_f32(&self, buckets: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>>;

    /// Element-wise sum of `values` over all replicas (logs, sample counts).
    ///
    /// # Errors
    /// When the transport fails.
    fn all_reduce_sum_f64(&self, values: Vec<f64>) -> Result<Vec<f64>>;

    /// Replica 0's `values` on every replica.
    ///
    /// # Errors
    /// When the transport fails.
    fn broadcast_f32(&self, values: Vec<f32>) -> Result<Vec<f32>>;

    /// Replica 0's `value` on every replica (a shared shuffle seed).
    ///
    /// # Errors
    /// When the transport fails.
    fn broadcast_u64(&self, value: u64) -> Result<u64>;
}

/// Makes `model`'s training data parallel over `collective`'s replicas: from then on `fit`
/// splits each global batch across the replicas, averages gradients, reduces the epoch's logs,
/// starts from replica 0's weights, and prints progress on replica 0 only. The model must be
/// compiled with its default train step (a model with its own `train_step` averages nothing);
/// a later `compile` keeps the replicas.
///
/// # Errors
/// `Config` when the model is not compiled.
pub fn distribute<M: Model + ?Sized>(model: &M, collective: Arc<dyn Collective>) -> Result<()> {
    let mut guard = model.compiled().lock().expect("compile lock");
    let c = guard.as_mut().ok_or_else(|| Error::Config(format!("{}: compile the model before distributing it", model.name())))?;
    c.replicas = Some(collective);
    Ok(())
}

/// The collective a compiled model trains over, if any.
pub(crate) fn replicas_of<M: Model + ?Sized>(model: &M) -> Option<Arc<dyn Collective>> {
    model.compiled().lock().expect("compile lock").as_ref().and_then(|c| c.replicas.clone())
}

/// Copies replica 0's value of every weight (trainable or not: batch-norm statistics too) to
/// all replicas, so they start identical whatever their seeds. A model not built yet (its
/// source did not declare its input shapes) is built first from the shapes of the source's
/// first batch: its weights must exist before they can be copied.
pub(crate) fn sync_weights<M: Model + ?Sized>(model: &M, source: &dyn BatchSource, collective: &dyn Collective) -> Result<()> {
    if !model.base().is_built() {
        if let Some(first) = source.batches(0)?.next() {
            let specs: Vec<crate::layer::ShapeSpec> =
                first?.x.iter().map(|t| std::iter::once(None).chain(t.dims()[1..].iter().map(|&d| Some(d))).collect()).collect();
            model.build(&specs)?;
            model.base().mark_built();
        }
    }
    for v in model.weights() {
        let value = v.value();
        let synced = collective.broadcast_f32(value.to_vec::<f32>()?)?;
        v.assign(&Tensor::from_vec(synced, value.shape().clone(), value.device())?)?;
    }
    Ok(())
}

/// The global mean loss and this replica's share of the global batch: each replica's loss is a
/// mean over its own samples, so the global mean weights them by sample count.
pub(crate) fn global_loss(collective: &dyn Collective, local_loss: f64, local_count: usize) -> Result<(f64, f64)> {
    let sums = collective.all_reduce_sum_f64(vec![local_loss * local_count as f64, local_count as f64])?;
    if sums[1] <= 0.0 {
        return Err(Error::Config("data-parallel step: no replica had samples".into()));
    }
    Ok((sums[0] / sums[1], local_count as f64 / sums[1]))
}

/// Replaces each gradient by the sample-weighted average over replicas: Σ_r share_r · g_r.
/// The gradients are packed into buckets of [`BUCKET_VALUES`] values, reduced, and unpacked
/// into tensors on their original devices.
pub(crate) fn average_gradients(pairs: &mut [(Tensor, Variable)], share: f64, collective: &dyn Collective) -> Result<()> {
    let mut buckets: Vec<Vec<f32>> = vec![Vec::new()];
    for (g, _) in pairs.iter() {
        let scaled = g.to_vec::<f32>()?;
        for chunk in scaled.chunks(BUCKET_VALUES) {
            let last = buckets.last_mut().expect("one bucket at least");
            if last.len() + chunk.len() > BUCKET_VALUES {
                buckets.push(Vec::with_capacity(BUCKET_VALUES));
            }
            buckets.last_mut().expect("one bucket at least").extend(chunk.iter().map(|&x| (x as f64 * share) as f32));
        }
    }
    let reduced = collective.all_reduce_sum_f32(buckets)?;
    let mut values = reduced.into_iter().flatten();
    for (g, _) in pairs.iter_mut() {
        let n = g.shape().numel();
        let data: Vec<f32> = values.by_ref().take(n).collect();
        if data.len() != n {
            return Err(Error::Config(format!(
                "data-parallel step: the reduced gradients are shorter than the model's ({} of {n})",
                data.len()
            )));
        }
        *g = Tensor::from_vec(data, g.shape().clone(), g.device())?;
    }
    Ok(())
}

/// The epoch's logs averaged over replicas, each weighted by the samples it saw (the keys are
/// the same on every replica: they come from the same compiled model).
pub(crate) fn reduce_logs(collective: &dyn Collective, logs: &Logs, seen: usize) -> Result<Logs> {
    let mut values: Vec<f64> = logs.values().map(|v| v * seen as f64).collect();
    values.push(seen as f64);
    let sums = collective.all_reduce_sum_f64(values)?;
    let total = sums.last().copied().unwrap_or(0.0).max(1.0);
    Ok(logs.keys().cloned().zip(sums.iter().map(|s| s / total)).collect())
}

/// This replica's rows of every batch of another source: the replicas see the same global
/// batches (the same shuffle seed) and each keeps a contiguous slice. A final batch smaller
/// than the number of replicas is skipped by all of them, so they stay in step.
pub(crate) struct ReplicaShard<'a> {
    pub(crate) source: &'a dyn BatchSource,
    pub(crate) rank: usize,
    pub(crate) world: usize,
}

impl BatchSource for ReplicaShard<'_> {
    fn batches(&self, epoch: usize) -> Result<Batches<'_>> {
        let (rank, world) = (self.rank, self.world);
        let batches = self.source.batches(epoch)?.filter_map(move |batch| {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            let n = batch.x.first().map_or(0, |t| t.dims().first().copied().unwrap_or(0));
            if n < world {
                return None;
            }
            let (start, end) = (rank * n / world, (rank + 1) * n / world);
            let slice = || -> Result<super::batches::Batch> {
                Ok(super::batches::Batch {
                    x: narrow_all(&batch.x, start, end - start)?,
                    y: narrow_all(&batch.y, start, end - start)?,
                    sample_weight: batch.sample_weight.as_ref().map(|w| w.narrow(0, start, end - start)).transpose()?,
                })
            };
            Some(slice())
        });
        Ok(Box::new(batches))
    }

    fn steps(&self) -> Option<usize> {
        self.source.steps()
    }

    fn input_specs(&self) -> Option<Vec<crate::layer::ShapeSpec>> {
        self.source.input_specs()
    }
}

/// A source whose batches are already this replica's own (each worker reads its shard of the
/// files, e.g. `Dataset::shard(world, rank)`): a data-parallel `fit` trains on them as they
/// are instead of splitting every batch across the replicas. Its batch size is per replica.
pub struct PerReplica<S: BatchSource>(pub S);

impl<S: BatchSource> BatchSource for PerReplica<S> {
    fn batches(&self, epoch: usize) -> Result<Batches<'_>> {
        self.0.batches(epoch)
    }

    fn steps(&self) -> Option<usize> {
        self.0.steps()
    }

    fn input_specs(&self) -> Option<Vec<crate::layer::ShapeSpec>> {
        self.0.input_specs()
    }

    fn per_replica(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::batches::TensorBatches;
    use fovea_core::Device;
    use std::sync::Mutex;

    /// Two replicas simulated in one process: replica 1's contributions are fixed in advance,
    /// so the arithmetic of each reduction can be checked exactly.
    struct PairedReplica {
        other_f32: Mutex<Vec<Vec<f32>>>,
        other_f64: Mutex<Vec<Vec<f64>>>,
    }

    impl Collective for PairedReplica {
        fn rank(&self) -> usize {
            0
        }
        fn world_size(&self) -> usize {
            2
        }
        fn all_reduce_sum_f32(&self, buckets: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>> {
            let other = std::mem::take(&mut *self.other_f32.lock().unwrap());
            assert_eq!(other.len(), buckets.len(), "same bucket count on both replicas");
            Ok(buckets.into_iter().zip(other).map(|(a, b)| a.iter().zip(&b).map(|(x, y)| x + y).collect()).collect())
        }
        fn all_reduce_sum_f64(&self, values: Vec<f64>) -> Result<Vec<f64>> {
            let other = self.other_f64.lock().unwrap().remove(0);
            Ok(values.iter().zip(&other).map(|(x, y)| x + y).collect())
        }
        fn broadcast_f32(&self, values: Vec<f32>) -> Result<Vec<f32>> {
            Ok(values)
        }
        fn broadcast_u64(&self, value: u64) -> Result<u64> {
            Ok(value)
        }
    }

    #[test]
    fn gradients_are_averaged_by_sample_share() {
        // Replica 0 saw 3 samples, replica 1 saw 1: the global gradient is ¾·g0 + ¼·g1.
        let other = PairedReplica { other_f32: Mutex::new(vec![vec![0.25 * 8.0, 0.25 * -4.0, 0.25 * 2.0]]), other_f64: Mutex::new(vec![]) };
        let v = Variable::new("w", Tensor::zeros([3], fovea_core::DType::F32, Device::Cpu).unwrap(), true).unwrap();
        let mut pairs = vec![(Tensor::from_vec(vec![4.0f32, 0.0, 2.0], [3], Device::Cpu).unwrap(), v)];
        average_gradients(&mut pairs, 0.75, &other).unwrap();
        assert_eq!(pairs[0].0.to_vec::<f32>().unwrap(), vec![5.0, -1.0, 2.0]);
    }

    #[test]
    fn loss_and_logs_are_weighted_by_samples() {
        let other =
            PairedReplica { other_f32: Mutex::new(vec![]), other_f64: Mutex::new(vec![vec![2.0 * 1.0, 1.0], vec![0.5 * 1.0, 1.0]]) };
        let (loss, share) = global_loss(&other, 1.0, 3).unwrap();
        assert!((loss - (3.0 + 2.0) / 4.0).abs() < 1e-12 && (share - 0.75).abs() < 1e-12, "{loss} {share}");
        let logs: Logs = [("accuracy".to_string(), 1.0)].into_iter().collect();
        let reduced = reduce_logs(&other, &logs, 3).unwrap();
        assert!((reduced["accuracy"] - 3.5 / 4.0).abs() < 1e-12, "{reduced:?}");
    }

    #[test]
    fn shards_split_each_batch_and_skip_a_batch_smaller_than_the_world() {
        let x = Tensor::from_vec((0..10).map(|i| i as f32).collect(), [10, 1], Device::Cpu).unwrap();
        let y = Tensor::from_vec((0..10).map(|i| i as f32).collect(), [10], Device::Cpu).unwrap();
        let source =
            TensorBatches { x: vec![x], y: vec![y], weights: None, batch_size: 4, shuffle: false, seed: 0, steps: 0, cycle: false };
        let rows = |rank| -> Vec<Vec<f32>> {
            let shard = ReplicaShard { source: &source, rank, world: 3 };
            shard.batches(0).unwrap().map(|b| b.unwrap().y[0].to_vec::<f32>().unwrap()).collect()
        };
        // Batches [0..4), [4..8), [8..10): the last has 2 rows for 3 replicas and is skipped.
        assert_eq!(rows(0), vec![vec![0.0], vec![4.0]]);
        assert_eq!(rows(1), vec![vec![1.0], vec![5.0]]);
        assert_eq!(rows(2), vec![vec![2.0, 3.0], vec![6.0, 7.0]]);
    }
}
