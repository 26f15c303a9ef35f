//! The [`Tensor`] handle: cheap to clone, immutable, carrying its autodiff node.

use crate::autograd::{self, Node};
use crate::backend::{backend, RandomDist};
use crate::storage::Element;
use crate::{DType, Device, Error, HostData, Result, Shape, Storage};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A unique identity for a tensor value, used as the key of gradient stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        TensorId(COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

/// An n-dimensional array on a device, row-major and contiguous.
///
/// Cloning is cheap (an `Arc`). Ops return new tensors. When an op's input requires a gradient
/// (and recording is not switched off by [`crate::no_grad`]), the result remembers the op and its
/// inputs so that [`Tensor::backward`] can run the chain rule.
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

struct Inner {
    id: TensorId,
    storage: Arc<Storage>,
    shape: Shape,
    device: Device,
    requires_grad: bool,
    node: Option<Node>,
}

impl Tensor {
    /// Wraps a storage of `device`'s backend as a leaf tensor (no gradient). For backends:
    /// everything else creates tensors from host data ([`Tensor::from_host`]).
    ///
    /// # Errors
    /// `ShapeMismatch` when the storage length differs from the shape's element count.
    pub fn from_storage(storage: Storage, shape: impl Into<Shape>, device: Device) -> Result<Self> {
        let shape = shape.into();
        if storage.len() != shape.numel() {
            return Err(Error::shape(
                "from_storage",
                format!("{} elements for shape {shape}", shape.numel()),
                format!("{} elements", storage.len()),
            ));
        }
        Ok(Self::leaf(Arc::new(storage), shape, device, false))
    }

    fn leaf(storage: Arc<Storage>, shape: Shape, device: Device, requires_grad: bool) -> Self {
        Tensor(Arc::new(Inner { id: TensorId::next(), storage, shape, device, requires_grad, node: None }))
    }

    /// The result of an op: records `backward` when gradients are being recorded and an input
    /// requires one. `backward` gets the inputs, the output and the output's gradient, and
    /// returns one gradient (or `None`) per input.
    pub(crate) fn from_op(
        storage: Storage,
        shape: Shape,
        device: Device,
        name: &'static str,
        inputs: &[&Tensor],
        backward: impl Fn(&[Tensor], &Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    ) -> Tensor {
        debug_assert_eq!(storage.len(), shape.numel(), "{name}: storage does not match shape");
        Self::build(Arc::new(storage), shape, device, name, inputs, backward)
    }

    fn build(
        storage: Arc<Storage>,
        shape: Shape,
        device: Device,
        name: &'static str,
        inputs: &[&Tensor],
        backward: impl Fn(&[Tensor], &Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    ) -> Tensor {
        let record = autograd::is_recording() && inputs.iter().any(|t| t.requires_grad());
        let node = record.then(|| Node { name, inputs: inputs.iter().map(|t| (*t).clone()).collect(), backward: Box::new(backward) });
        Tensor(Arc::new(Inner { id: TensorId::next(), storage, shape, device, requires_grad: record, node }))
    }

    /// A tensor sharing this one's storage but with a new shape (same element count, checked by
    /// the caller); used by reshape-like ops, which need no copy.
    pub(crate) fn share_storage(
        &self,
        shape: Shape,
        name: &'static str,
        inputs: &[&Tensor],
        backward: impl Fn(&[Tensor], &Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    ) -> Tensor {
        self.share_storage_on(self.device(), shape, name, inputs, backward)
    }

    fn share_storage_on(
        &self,
        device: Device,
        shape: Shape,
        name: &'static str,
        inputs: &[&Tensor],
        backward: impl Fn(&[Tensor], &Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    ) -> Tensor {
        Self::build(self.0.storage.clone(), shape, device, name, inputs, backward)
    }

    /// Mutable access to the elements when no other handle can observe them (this tensor and
    /// its storage are both unshared), for in-place optimizer updates.
    pub fn storage_mut_if_unique(&mut self) -> Option<&mut Storage> {
        Arc::get_mut(&mut self.0).and_then(|inner| Arc::get_mut(&mut inner.storage))
    }

    /// Mutable access to the elements, first detaching this handle from anything that shares
    /// them: a handle others hold becomes a fresh leaf (same values, `requires_grad` kept, new
    /// identity), and a shared storage is copied. Optimizer updates write through this, so a
    /// tensor someone else kept (a checkpoint, the graph of the last step) never changes.
    pub(crate) fn storage_make_mut(&mut self) -> &mut Storage {
        if Arc::get_mut(&mut self.0).is_none() {
            *self = Self::leaf(self.0.storage.clone(), self.0.shape.clone(), self.0.device, self.0.requires_grad);
        }
        let inner = Arc::get_mut(&mut self.0).expect("a handle just created has no other owner");
        Arc::make_mut(&mut inner.storage)
    }

    pub(crate) fn node(&self) -> Option<&Node> {
        self.0.node.as_ref()
    }

    /// The identity used to look up this tensor's gradient.
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    /// Whether this tensor (not a copy) is still held anywhere, through a weak handle.
    pub(crate) fn weak(&self) -> std::sync::Weak<impl Sized + Send + Sync> {
        Arc::downgrade(&self.0)
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.0.shape
    }

    /// The dimensions (shorthand for `shape().dims()`).
    pub fn dims(&self) -> &[usize] {
        self.0.shape.dims()
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.shape.rank()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.0.shape.numel()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }

    /// The device (backend) this tensor computes on.
    pub fn device(&self) -> Device {
        self.0.device
    }

    /// The elements, opaque: the backend of [`Tensor::device`] reads them; ops never mutate
    /// them. Host code reads values with [`Tensor::to_vec`] or [`Tensor::host_slice`].
    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }

    /// The host data of a tensor on a host device, for the backends' own tests.
    #[cfg(test)]
    pub(crate) fn host_storage(&self) -> &HostData {
        self.storage().host_data("test").expect("a tensor on a host device")
    }

    /// Whether a gradient flows to (or through) this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    /// A leaf tensor sharing this storage, with `requires_grad` set as given (a new identity).
    /// Floats only can require a gradient.
    ///
    /// # Errors
    /// `DTypeMismatch` when asking an integer or bool tensor to require a gradient.
    pub fn with_requires_grad(&self, requires_grad: bool) -> Result<Tensor> {
        if requires_grad && !self.dtype().is_float() {
            return Err(Error::dtype("requires_grad", "a floating-point dtype", self.dtype()));
        }
        Ok(Self::leaf(self.0.storage.clone(), self.0.shape.clone(), self.0.device, requires_grad))
    }

    /// The same values cut from the graph: no gradient flows through the result.
    pub fn detach(&self) -> Tensor {
        Self::leaf(self.0.storage.clone(), self.0.shape.clone(), self.0.device, false)
    }

    /// The same values on another device (gradients flow back to this device). Between the two
    /// host devices the storage is shared; otherwise the data is copied through host memory.
    ///
    /// # Errors
    /// `DeviceUnavailable` when either device has no backend.
    pub fn to(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let source = self.device();
        let backward = move |_: &[Tensor], _: &Tensor, g: &Tensor| Ok(vec![Some(g.to(source)?)]);
        if device.is_host() && source.is_host() {
            return Ok(self.share_storage_on(device, self.shape().clone(), "to_device", &[self], backward));
        }
        let data = self.to_host()?;
        let storage = backend(device)?.copy_from_host(data)?;
        Ok(Self::build(Arc::new(storage), self.shape().clone(), device, "to_device", &[self], backward))
    }

    // ---- constructors -------------------------------------------------------------------------

    /// A tensor of the given shape from a vector of elements.
    ///
    /// # Errors
    /// `ShapeMismatch` when `data.len()` differs from the shape's element count.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: impl Into<Shape>, device: Device) -> Result<Self> {
        Self::from_host(T::into_host(data), shape, device)
    }

    /// A tensor on `device` from host data (copied to the device unless it keeps host memory).
    ///
    /// # Errors
    /// `ShapeMismatch` when the element count differs from the shape's; `DeviceUnavailable`.
    pub fn from_host(data: HostData, shape: impl Into<Shape>, device: Device) -> Result<Self> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(Error::shape(
                "from_host",
                format!("{} elements for shape {shape}", shape.numel()),
                format!("{} elements", data.len()),
            ));
        }
        let storage = if device.is_host() { Storage::host(data) } else { backend(device)?.copy_from_host(data)? };
        Ok(Self::leaf(Arc::new(storage), shape, device, false))
    }

    /// A tensor of the given shape copied from a slice.
    ///
    /// # Errors
    /// `ShapeMismatch` when `data.len()` differs from the shape's element count.
    pub fn from_slice<T: Element>(data: &[T], shape: impl Into<Shape>, device: Device) -> Result<Self> {
        Self::from_vec(data.to_vec(), shape, device)
    }

    /// A rank-0 f32 tensor.
    ///
    /// # Errors
    /// `DeviceUnavailable` when `device` has no backend in this build.
    pub fn scalar(value: f32, device: Device) -> Result<Self> {
        Self::full((), value as f64, DType::F32, device)
    }

    /// Zeros (false for bool).
    ///
    /// # Errors
    /// `Unsupported` for f16/bf16 on the CPU.
    pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: Device) -> Result<Self> {
        Self::full(shape, 0.0, dtype, device)
    }

    /// Ones (true for bool).
    ///
    /// # Errors
    /// `Unsupported` for f16/bf16 on the CPU.
    pub fn ones(shape: impl Into<Shape>, dtype: DType, device: Device) -> Result<Self> {
        Self::full(shape, 1.0, dtype, device)
    }

    /// Every element equal to `value` (converted to the dtype; nonzero is true for bool).
    ///
    /// # Errors
    /// `Unsupported` for f16/bf16 on the CPU.
    pub fn full(shape: impl Into<Shape>, value: f64, dtype: DType, device: Device) -> Result<Self> {
        let shape = shape.into();
        let storage = backend(device)?.full(dtype, shape.numel(), value)?;
        Self::from_storage(storage, shape, device)
    }

    /// Zeros with this tensor's shape, dtype and device.
    pub fn zeros_like(&self) -> Tensor {
        Self::full(self.shape().clone(), 0.0, self.dtype(), self.device()).expect("dtype and device of an existing tensor")
    }

    /// Ones with this tensor's shape, dtype and device.
    pub fn ones_like(&self) -> Tensor {
        Self::full(self.shape().clone(), 1.0, self.dtype(), self.device()).expect("dtype of an existing tensor")
    }

    /// `start, start+step, ...` up to but excluding `end`, as f32 (like `tf.range`).
    ///
    /// # Errors
    /// `InvalidArgument` when `step` is zero or not finite.
    pub fn arange(start: f64, end: f64, step: f64, device: Device) -> Result<Self> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid(
                "arange",
                format!("start, end and a nonzero step must be finite, got start={start}, end={end}, step={step}"),
            ));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let v: Vec<f32> = (0..n).map(|i| (start + i as f64 * step) as f32).collect();
        Self::from_vec(v, [n], device)
    }

    /// The `n`×`n` identity matrix in f32.
    ///
    /// # Errors
    /// `DeviceUnavailable` when `device` has no backend in this build; `InvalidArgument` when
    /// `n × n` overflows.
    pub fn eye(n: usize, device: Device) -> Result<Self> {
        let len = n.checked_mul(n).ok_or_else(|| Error::invalid("eye", format!("expected n × n to fit in memory, got n = {n}")))?;
        let mut v = vec![0f32; len];
        for i in 0..n {
            v[i * n + i] = 1.0;
        }
        Self::from_vec(v, [n, n], device)
    }

    /// Uniform samples in `[low, high)`, f32; `seed: None` draws from the global seed sequence.
    ///
    /// # Errors
    /// `InvalidArgument` when `low > high` or a bound is not finite.
    pub fn random_uniform(shape: impl Into<Shape>, low: f64, high: f64, seed: Option<u64>, device: Device) -> Result<Self> {
        if !(low.is_finite() && high.is_finite() && low <= high) {
            return Err(Error::invalid("random_uniform", format!("need finite low <= high, got low={low}, high={high}")));
        }
        Self::random(shape.into(), RandomDist::Uniform { low, high }, seed, device)
    }

    /// Normal samples with the given mean and standard deviation, f32.
    ///
    /// # Errors
    /// `InvalidArgument` when `std` is negative or a parameter is not finite.
    pub fn random_normal(shape: impl Into<Shape>, mean: f64, std: f64, seed: Option<u64>, device: Device) -> Result<Self> {
        Self::normal_like("random_normal", shape.into(), RandomDist::Normal { mean, std }, seed, device)
    }

    /// Normal samples redrawn until within two standard deviations of the mean, like
    /// `tf.random.truncated_normal`.
    ///
    /// # Errors
    /// `InvalidArgument` when `std` is negative or a parameter is not finite.
    pub fn truncated_normal(shape: impl Into<Shape>, mean: f64, std: f64, seed: Option<u64>, device: Device) -> Result<Self> {
        Self::normal_like("truncated_normal", shape.into(), RandomDist::TruncatedNormal { mean, std }, seed, device)
    }

    fn normal_like(op: &'static str, shape: Shape, dist: RandomDist, seed: Option<u64>, device: Device) -> Result<Self> {
        let (mean, std) = match dist {
            RandomDist::Normal { mean, std } | RandomDist::TruncatedNormal { mean, std } => (mean, std),
            RandomDist::Uniform { low, high } => (low, high),
        };
        if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
            return Err(Error::invalid(op, format!("need a finite mean and std >= 0, got mean={mean}, std={std}")));
        }
        Self::random(shape, dist, seed, device)
    }

    /// Samples on the device; without a seed, the next one of the global sequence.
    fn random(shape: Shape, dist: RandomDist, seed: Option<u64>, device: Device) -> Result<Self> {
        let seed = seed.unwrap_or_else(crate::random::next_seed);
        let storage = backend(device)?.random(dist, shape.numel(), seed)?;
        Self::from_storage(storage, shape, device)
    }

    // ---- reading values -----------------------------------------------------------------------

    /// The elements as a vector of `T`, which must match the dtype.
    ///
    /// # Errors
    /// `DTypeMismatch` when `T` is not this tensor's element type.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::dtype("to_vec", T::DTYPE.as_str(), self.dtype()));
        }
        if let Ok(host) = self.storage().host_data("to_vec") {
            return T::slice(host).map(<[T]>::to_vec).ok_or_else(|| Error::dtype("to_vec", T::DTYPE.as_str(), self.dtype()));
        }
        T::from_host(self.to_host()?).ok_or_else(|| Error::dtype("to_vec", T::DTYPE.as_str(), self.dtype()))
    }

    /// The elements copied to host memory, whatever the device (a copy of host data too).
    ///
    /// # Errors
    /// `DeviceUnavailable`, or the backend's error when the copy fails.
    pub fn to_host(&self) -> Result<HostData> {
        match self.storage().host_data("to_host") {
            Ok(host) => Ok(host.clone()),
            Err(_) => backend(self.device())?.copy_to_host(self.storage()),
        }
    }

    /// The elements in host memory: borrowed for a tensor on a host device, copied once from
    /// any other device. For writers (files, caches) that accept tensors from anywhere.
    ///
    /// # Errors
    /// As [`Tensor::to_host`].
    pub fn host_view(&self) -> Result<std::borrow::Cow<'_, HostData>> {
        match self.storage().host_data("host_view") {
            Ok(h) => Ok(std::borrow::Cow::Borrowed(h)),
            Err(_) => Ok(std::borrow::Cow::Owned(self.to_host()?)),
        }
    }

    /// The host data borrowed in place, for host-side code that handles every dtype (batching,
    /// caching, file writers).
    ///
    /// # Errors
    /// `Unsupported` when the tensor lives on a device outside host memory.
    pub fn host_data(&self) -> Result<&HostData> {
        self.storage().host_data("host_data")
    }

    /// The elements borrowed in place, for host-side code (data pipelines, file writers) that
    /// works on tensors it made in host memory.
    ///
    /// # Errors
    /// `DTypeMismatch` when `T` is not the element type; `Unsupported` when the tensor lives on
    /// a device outside host memory (copy it with [`Tensor::to_vec`] instead).
    pub fn host_slice<T: Element>(&self) -> Result<&[T]> {
        let host = self.host_data()?;
        T::slice(host).ok_or_else(|| Error::dtype("host_slice", T::DTYPE.as_str(), self.dtype()))
    }

    /// The single element of a one-element tensor.
    ///
    /// # Errors
    /// `ShapeMismatch` when the tensor does not hold exactly one element; `DTypeMismatch` when `T`
    /// is not the element type.
    pub fn to_scalar<T: Element>(&self) -> Result<T> {
        if self.numel() != 1 {
            return Err(Error::shape("to_scalar", "exactly one element", self.shape()));
        }
        Ok(self.to_vec::<T>()?[0])
    }

    /// The f32 elements, borrowed.
    ///
    /// # Errors
    /// `DTypeMismatch` when the tensor is not f32.
    pub fn as_f32_slice(&self) -> Result<&[f32]> {
        self.host_slice::<f32>()
    }

    /// Checks that `other` lives on the same device, for binary ops.
    pub(crate) fn same_device(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.device() != other.device() {
            return Err(Error::invalid(
                op,
                format!("both tensors must be on one device, got {} and {}; move one with `.to(device)`", self.device(), other.device()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_fill_as_documented() {
        let d = Device::Cpu;
        assert_eq!(Tensor::eye(3, d).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        // A device this build has no backend for is an error, not a panic.
        let gone = Device::Cuda(7);
        assert!(Tensor::scalar(1.0, gone).unwrap_err().to_string().contains("cuda"));
        assert!(Tensor::eye(2, gone).is_err());
        assert!(Tensor::eye(usize::MAX, d).unwrap_err().to_string().contains("n × n"));
        assert_eq!(Tensor::arange(1.0, 2.0, 0.25, d).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 1.25, 1.5, 1.75]);
        assert_eq!(Tensor::arange(5.0, 1.0, -2.0, d).unwrap().to_vec::<f32>().unwrap(), vec![5.0, 3.0]);
        assert_eq!(Tensor::full([2], 7.0, DType::I64, d).unwrap().to_vec::<i64>().unwrap(), vec![7, 7]);
        assert_eq!(Tensor::ones([2], DType::Bool, d).unwrap().to_vec::<bool>().unwrap(), vec![true, true]);
        assert_eq!(Tensor::zeros([2, 0], DType::U8, d).unwrap().numel(), 0);
    }

    #[test]
    fn seeded_random_tensors_repeat_and_have_the_right_moments() {
        let d = Device::Cpu;
        let a = Tensor::random_normal([10_000], 2.0, 0.5, Some(42), d).unwrap().to_vec::<f32>().unwrap();
        let b = Tensor::random_normal([10_000], 2.0, 0.5, Some(42), d).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(a, b);
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        assert!((mean - 2.0).abs() < 0.02, "{mean}");
        let u = Tensor::random_uniform([10_000], -3.0, -1.0, Some(1), d).unwrap().to_vec::<f32>().unwrap();
        assert!(u.iter().all(|&v| (-3.0..-1.0).contains(&v)));
        let t = Tensor::truncated_normal([10_000], 0.0, 0.01, Some(1), d).unwrap().to_vec::<f32>().unwrap();
        assert!(t.iter().all(|&v| v.abs() <= 0.02));
        crate::set_seed(9);
        let g1 = Tensor::random_uniform([4], 0.0, 1.0, None, d).unwrap().to_vec::<f32>().unwrap();
        crate::set_seed(9);
        let g2 = Tensor::random_uniform([4], 0.0, 1.0, None, d).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(g1, g2);
    }

    #[test]
    fn bad_construction_is_an_error() {
        let d = Device::Cpu;
        let e = Tensor::from_vec(vec![1.0f32; 5], [2, 3], d).unwrap_err().to_string();
        assert!(e.contains("6 elements for shape [2, 3]") && e.contains("got 5 elements"), "{e}");
        assert!(Tensor::arange(0.0, 1.0, 0.0, d).is_err());
        assert!(Tensor::random_uniform([2], 1.0, 0.0, None, d).is_err());
        assert!(Tensor::random_normal([2], 0.0, -1.0, None, d).is_err());
        let t = Tensor::zeros([2], DType::F32, d).unwrap();
        assert!(t.to_scalar::<f32>().unwrap_err().to_string().contains("exactly one element"));
        assert!(t.to_vec::<i64>().unwrap_err().to_string().contains("expected dtype int64, got float32"));
        assert!(Tensor::zeros([2], DType::I64, d).unwrap().with_requires_grad(true).is_err());
    }
}
