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
use fovea_core::{Tensor, TensorId, Variable};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};

/// Gradients travel in buckets of this many values by default (4 MB of f32): the transport
/// reduces one bucket while the backward pass fills the next.
pub const BUCKET_VALUES: usize = 1 << 20;

static BUCKET_CAPACITY: AtomicUsize = AtomicUsize::new(BUCKET_VALUES);

/// Sets how many gradient values fill a bucket before it is sent (PyTorch DDP's
/// `bucket_cap_mb`, in values): smaller buckets start reducing sooner, larger ones make fewer
/// calls. A weight's gradient is never split, so a bucket may exceed it by one weight.
pub fn set_bucket_capacity(values: usize) {
    BUCKET_CAPACITY.store(values.max(1), Ordering::Relaxed);
}

/// The collective operations data-parallel training needs, over all replicas of a job.
/// Every replica must call them in the same order with buffers of the same length.
pub trait Collective: Send + Sync {
    /// This replica's index, `0..world_size()`; replica 0 is the chief.
    fn rank(&self) -> usize;

    /// How many replicas train together.
    fn world_size(&self) -> usize;

    /// Starts the element-wise sum of `values` over all replicas and returns at once; the
    /// handle's `wait` gives the sum. Replicas start their reductions in the same order.
    ///
    /// # Errors
    /// When the transport fails.
    fn start_all_reduce_sum_f32(&self, values: Vec<f32>) -> Result<PendingSum>;

    /// Element-wise sums of `buckets` over all replicas, in the same order: all are started,
    /// then awaited, so the transport may reduce one while the next is being handed over.
    ///
    /// # Errors
    /// When the transport fails.
    fn all_reduce_sum_f32(&self, buckets: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>> {
        let pending = buckets.into_iter().map(|b| self.start_all_reduce_sum_f32(b)).collect::<Result<Vec<_>>>()?;
        pending.into_iter().map(PendingSum::wait).collect()
    }

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
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::downgrade(&collective));
    c.replicas = Some(collective);
    Ok(())
}

/// The job's collective once a model was distributed: layers that reduce across replicas
/// themselves (a synchronized batch norm) find it here. Weak, so that the job still ends (MPI
/// finalizes) when the strategy and its models are dropped.
static CURRENT: RwLock<Option<Weak<dyn Collective>>> = RwLock::new(None);

/// This replica's share of the current step's global batch (f64 bits), set before the
/// backward pass: [`all_reduce_sum`]'s gradient needs it.
static STEP_SHARE: AtomicU64 = AtomicU64::new(0x3FF0_0000_0000_0000); // 1.0

/// The collective of the distributed job this process belongs to, if any.
pub fn current() -> Option<Arc<dyn Collective>> {
    CURRENT.read().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(Weak::upgrade)
}

/// The element-wise sum of `t` over all replicas, differentiable (a synchronized batch norm's
/// statistics); `t` itself outside a distributed job. Every replica must call it at the same
/// point of its step.
///
/// The gradient: replica r's loss counts with weight share_r in the global objective, and its
/// gradients are scaled by share_r when they are averaged; so the gradient reaching replica r's
/// `t` is Σ_r' share_r'·g_r' / share_r — another cross-replica sum.
///
/// # Errors
/// When the transport fails.
pub fn all_reduce_sum(t: &Tensor) -> Result<Tensor> {
    let Some(collective) = current() else { return Ok(t.clone()) };
    let sum = |values: &Tensor, factor: f64, collective: &dyn Collective| -> Result<Tensor> {
        let scaled: Vec<f64> = values.to_vec::<f32>()?.iter().map(|&v| v as f64 * factor).collect();
        let total: Vec<f32> = collective.all_reduce_sum_f64(scaled)?.into_iter().map(|v| v as f32).collect();
        Ok(Tensor::from_vec(total, values.shape().clone(), values.device())?)
    };
    let value = fovea_core::no_grad(|| sum(t, 1.0, collective.as_ref()))?;
    Ok(fovea_core::custom_op("all_reduce_sum", &value, &[t], move |_, _, g| {
        let share = f64::from_bits(STEP_SHARE.load(Ordering::Relaxed));
        let back = sum(g, share, collective.as_ref()).map_err(|e| fovea_core::Error::Autodiff(format!("all_reduce_sum: {e}")))?;
        Ok(vec![Some(back.mul_scalar((1.0 / share) as f32)?)])
    }))
}

/// The collective a compiled model trains over, if any.
pub(crate) fn replicas_of<M: Model + ?Sized>(model: &M) -> Option<Arc<dyn Collective>> {
    model.compiled().lock().expect("compile lock").as_ref().and_then(|c| c.replicas.clone())
}

/// The shuffle seed of a `fit`: the one given, else a fresh one — replica 0's on every replica
/// of a distributed model, so that they all cut the same global batches.
pub(crate) fn shuffle_seed<M: Model + ?Sized>(model: &M, given: Option<u64>) -> Result<u64> {
    match (given, replicas_of(model)) {
        (Some(seed), _) => Ok(seed),
        (None, Some(r)) => r.broadcast_u64(fovea_core::random::next_seed()),
        (None, None) => Ok(fovea_core::random::next_seed()),
    }
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
    let share = local_count as f64 / sums[1];
    STEP_SHARE.store(share.to_bits(), Ordering::Relaxed);
    Ok((sums[0] / sums[1], share))
}

/// Data-parallel gradient averaging overlapped with the backward pass: as each weight's
/// gradient becomes final ([`Tensor::backward_with_hook`]), it is scaled by this replica's share
/// of the global batch and packed into the current bucket; a full bucket goes to the
/// collective at once, which reduces it while the backward pass goes on. Every replica runs
/// the same graph, so the buckets are filled, and reduced, in the same order everywhere.
pub(crate) struct OverlappedReduce<'a> {
    collective: &'a dyn Collective,
    /// This replica's share of the global batch, divided by any loss scale.
    factor: f64,
    /// Position in the trainable weights of each weight's current value.
    index_of: HashMap<TensorId, usize>,
    bucket: Vec<f32>,
    capacity: usize,
    /// (weight position, value count) in the order the gradients were packed.
    layout: Vec<(usize, usize)>,
    pending: Vec<PendingSum>,
}

impl<'a> OverlappedReduce<'a> {
    pub(crate) fn new(collective: &'a dyn Collective, factor: f64, trainable: &[Variable]) -> Self {
        let index_of = trainable.iter().enumerate().map(|(i, v)| (v.value().id(), i)).collect();
        let capacity = BUCKET_CAPACITY.load(Ordering::Relaxed);
        OverlappedReduce { collective, factor, index_of, bucket: Vec::new(), capacity, layout: Vec::new(), pending: Vec::new() }
    }

    /// Packs one final gradient (leaves that are not trainable weights are ignored).
    pub(crate) fn on_leaf(&mut self, leaf: &Tensor, gradient: &Tensor) -> fovea_core::Result<()> {
        let Some(&i) = self.index_of.get(&leaf.id()) else { return Ok(()) };
        let values = gradient.to_vec::<f32>()?;
        self.layout.push((i, values.len()));
        self.bucket.extend(values.iter().map(|&g| (g as f64 * self.factor) as f32));
        if self.bucket.len() >= self.capacity {
            self.flush().map_err(|e| fovea_core::Error::Autodiff(e.to_string()))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.bucket.is_empty() {
            let bucket = std::mem::take(&mut self.bucket);
            self.pending.push(self.collective.start_all_reduce_sum_f32(bucket)?);
        }
        Ok(())
    }

    /// Sends the last bucket, waits for every sum, and puts the averaged gradients in `pairs`
    /// (the trainable weights in the order given to [`OverlappedReduce::new`]); a weight that
    /// had no gradient keeps the zeros it has on every replica.
    pub(crate) fn finish(mut self, pairs: &mut [(Tensor, Variable)]) -> Result<()> {
        self.flush()?;
        let mut sums = Vec::with_capacity(self.layout.iter().map(|(_, n)| n).sum());
        for pending in self.pending {
            sums.extend(pending.wait()?);
        }
        let mut offset = 0;
        for (i, n) in self.layout {
            let values = sums.get(offset..offset + n).ok_or_else(|| {
                Error::Config(format!("data-parallel step: {} reduced gradient values for {} packed", sums.len(), offset + n))
            })?;
            let g = &mut pairs[i].0;
            *g = Tensor::from_vec(values.to_vec(), g.shape().clone(), g.device())?;
            offset += n;
        }
        Ok(())
    }
}

/// A reduction under way ([`Collective::start_all_reduce_sum_f32`]).
pub struct PendingSum(Box<dyn FnOnce() -> Result<Vec<f32>> + Send>);

impl PendingSum {
    /// A reduction whose result `wait` will produce.
    pub fn new(wait: impl FnOnce() -> Result<Vec<f32>> + Send + 'static) -> Self {
        PendingSum(Box::new(wait))
    }

    /// Blocks until the sum is there.
    ///
    /// # Errors
    /// When the transport failed.
    pub fn wait(self) -> Result<Vec<f32>> {
        (self.0)()
    }
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
        fn start_all_reduce_sum_f32(&self, values: Vec<f32>) -> Result<PendingSum> {
            let other = self.other_f32.lock().unwrap().remove(0);
            assert_eq!(other.len(), values.len(), "same bucket length on both replicas");
            let sum: Vec<f32> = values.iter().zip(&other).map(|(x, y)| x + y).collect();
            Ok(PendingSum::new(move || Ok(sum)))
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
        // Buckets of 2 values: w's 3 values fill the first, u's 2 the second.
        let other = PairedReplica {
            other_f32: Mutex::new(vec![vec![0.25 * 8.0, 0.25 * -4.0, 0.25 * 2.0], vec![1.0, 2.0]]),
            other_f64: Mutex::new(vec![]),
        };
        let v = Variable::new("w", Tensor::zeros([3], fovea_core::DType::F32, Device::Cpu).unwrap(), true).unwrap();
        let u = Variable::new("u", Tensor::zeros([2], fovea_core::DType::F32, Device::Cpu).unwrap(), true).unwrap();
        let idle = Variable::new("idle", Tensor::zeros([1], fovea_core::DType::F32, Device::Cpu).unwrap(), true).unwrap();
        let trainable = [v.clone(), u.clone(), idle.clone()];
        let mut reduce = OverlappedReduce::new(&other, 0.75, &trainable);
        reduce.capacity = 2;
        reduce.on_leaf(&v.value(), &Tensor::from_vec(vec![4.0f32, 0.0, 2.0], [3], Device::Cpu).unwrap()).unwrap();
        assert_eq!(reduce.pending.len(), 1, "a full bucket is sent before the pass ends");
        reduce.on_leaf(&u.value(), &Tensor::from_vec(vec![4.0f32, -4.0], [2], Device::Cpu).unwrap()).unwrap();
        // A leaf that is no trainable weight (an input watched for its gradient) is not packed.
        reduce
            .on_leaf(
                &Tensor::zeros([5], fovea_core::DType::F32, Device::Cpu).unwrap(),
                &Tensor::zeros([5], fovea_core::DType::F32, Device::Cpu).unwrap(),
            )
            .unwrap();
        let mut pairs = vec![(v.value().zeros_like(), v), (u.value().zeros_like(), u), (idle.value().zeros_like(), idle)];
        reduce.finish(&mut pairs).unwrap();
        assert_eq!(pairs[0].0.to_vec::<f32>().unwrap(), vec![5.0, -1.0, 2.0]);
        assert_eq!(pairs[1].0.to_vec::<f32>().unwrap(), vec![4.0, -1.0]);
        // A weight without a gradient keeps its zeros (the same on every replica).
        assert_eq!(pairs[2].0.to_vec::<f32>().unwrap(), vec![0.0]);
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
