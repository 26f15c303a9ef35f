//! Automatic mixed precision: a scope in which matrix products and convolutions compute in a
//! 16-bit float (`torch.autocast`, or what a Keras `mixed_bfloat16` / `mixed_float16` policy
//! does to a layer's kernel and inputs).
//!
//! Inside [`autocast`], the float32 operands of matrix products and convolutions are cast to
//! the scope's dtype, and the result stays in it; an element-wise op that meets the scope's
//! dtype and float32 (an activation plus a float32 bias) casts the float32 side. Every cast is
//! an op of the graph, so gradients flow back to float32 variables as float32. Batch
//! normalization always normalizes half inputs in float32. Outside a scope, dtypes never mix
//! silently: an op given two float dtypes is an error.
//!
//! The scope is per thread; `fovea_nn` models enter it inside their forward pass.

use crate::{DType, Error, Result, Tensor, TensorId};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Mutex, Weak};

thread_local! {
    static AUTOCAST: Cell<Option<DType>> = const { Cell::new(None) };
}

/// Restores the previous scope when dropped, so a scope ends even when `f` returns early.
struct Restore(Option<DType>);

impl Drop for Restore {
    fn drop(&mut self) {
        AUTOCAST.with(|a| a.set(self.0));
    }
}

/// Runs `f` with products and convolutions computing in `dtype` (`DType::BF16` or
/// `DType::F16`); `None` runs it with autocasting off (a float32 island inside a scope, such
/// as an output layer).
///
/// # Errors
/// `InvalidArgument` when `dtype` is not a 16-bit float; `f` then does not run.
pub fn autocast<R>(dtype: Option<DType>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    if let Some(d) = dtype {
        if !d.is_half() {
            return Err(Error::invalid("autocast", format!("the compute dtype must be bfloat16 or float16, got {d}")));
        }
    }
    let _restore = Restore(AUTOCAST.with(|a| a.replace(dtype)));
    f()
}

/// Sets this thread's scope dtype and returns the previous one (for [`crate::on_pool`], which
/// carries the caller's scope to the pool thread that runs its closure).
pub(crate) fn replace(dtype: Option<DType>) -> Option<DType> {
    AUTOCAST.with(|a| a.replace(dtype))
}

/// The dtype products and convolutions compute in on this thread: `Some` inside [`autocast`].
pub fn autocast_dtype() -> Option<DType> {
    AUTOCAST.with(|a| a.get())
}

/// The operands cast to the scope's dtype, when a scope is active and some operand is float32;
/// `None` when they are to be used as they are. Ops call it first and, on `Some`, run again on
/// the cast operands.
pub(crate) fn operands<const N: usize>(ts: [&Tensor; N]) -> Result<Option<[Tensor; N]>> {
    let Some(low) = autocast_dtype() else { return Ok(None) };
    if !ts.iter().any(|t| t.dtype() == DType::F32) {
        return Ok(None);
    }
    let mut out: [Option<Tensor>; N] = std::array::from_fn(|_| None);
    for (o, t) in out.iter_mut().zip(ts) {
        *o = Some(if t.dtype() == DType::F32 { cast_weight(t, low)? } else { t.clone() });
    }
    Ok(Some(out.map(|t| t.expect("every operand was set"))))
}

/// For an element-wise op on `a` and `b` of different float dtypes inside a scope: the pair
/// with the float32 one cast to the scope's dtype, when the other one has it.
pub(crate) fn mixed_pair(a: &Tensor, b: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
    let Some(low) = autocast_dtype() else { return Ok(None) };
    Ok(match (a.dtype(), b.dtype()) {
        (DType::F32, d) if d == low => Some((a.cast(low)?, b.clone())),
        (d, DType::F32) if d == low => Some((a.clone(), b.cast(low)?)),
        _ => None,
    })
}

/// Low-precision copies of weights made while no graph is recorded (inference), by the source
/// tensor: a weight is cast once instead of at every forward pass (as `torch.autocast` caches
/// weight casts). Entries die with their source: a variable's assignment makes a new tensor,
/// and entries whose source is gone are dropped whenever an entry is added.
type CastCache = HashMap<(TensorId, DType), (Weak<dyn std::any::Any + Send + Sync>, Tensor)>;
static WEIGHT_CASTS: Mutex<Option<CastCache>> = Mutex::new(None);

/// `t` cast to `low`: from the cache for weights (tensors that require a gradient, used while
/// nothing is recorded), else a fresh cast — recorded, so gradients reach float32 weights.
fn cast_weight(t: &Tensor, low: DType) -> Result<Tensor> {
    if !t.requires_grad() || crate::autograd::is_recording() {
        return t.cast(low);
    }
    let key = (t.id(), low);
    if let Some((_, hit)) = WEIGHT_CASTS.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).get(&key) {
        return Ok(hit.clone());
    }
    let cast = t.cast(low)?;
    let mut cache = WEIGHT_CASTS.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    map.retain(|_, (source, _)| source.strong_count() > 0);
    let weak: Weak<dyn std::any::Any + Send + Sync> = t.weak();
    map.insert(key, (weak, cast.clone()));
    Ok(cast)
}
