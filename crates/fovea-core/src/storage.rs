//! Tensor storage: an opaque buffer owned by the backend of the tensor's device.
//!
//! Host backends (`cpu`, `reference`) keep [`HostData`]: one contiguous, row-major `Vec` per
//! dtype. A backend registered from outside the core (CUDA, or the test backend that counts host
//! transfers) keeps its own [`DeviceBuffer`]. Code outside the core never looks inside a
//! [`Storage`]: it moves data explicitly with `Tensor::to_host` / `Tensor::from_host`.

use crate::{DType, Error, Result};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// The elements of a tensor in host memory, contiguous and row-major: what
/// `Tensor::to_host` returns and `Tensor::from_host` takes, and what host backends compute on.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// Bytes.
    U8(Vec<u8>),
    /// 64-bit integers.
    I64(Vec<i64>),
    /// 32-bit integers.
    I32(Vec<i32>),
    /// Booleans.
    Bool(Vec<bool>),
    /// IEEE half precision.
    F16(Vec<half::f16>),
    /// bfloat16 (the upper half of an f32).
    BF16(Vec<half::bf16>),
}

/// Large float buffers go back to the [`crate::buffer_pool`] for the next tensor of that size.
impl Drop for HostData {
    fn drop(&mut self) {
        if let HostData::F32(v) = self {
            crate::buffer_pool::recycle(std::mem::take(v));
        }
    }
}

impl HostData {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            HostData::F32(_) => DType::F32,
            HostData::U8(_) => DType::U8,
            HostData::I64(_) => DType::I64,
            HostData::I32(_) => DType::I32,
            HostData::Bool(_) => DType::Bool,
            HostData::F16(_) => DType::F16,
            HostData::BF16(_) => DType::BF16,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::U8(v) => v.len(),
            HostData::I64(v) => v.len(),
            HostData::I32(v) => v.len(),
            HostData::Bool(v) => v.len(),
            HostData::F16(v) => v.len(),
            HostData::BF16(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A storage of `n` zeros (false for bool).
    ///
    /// # Errors
    /// Never today; kept fallible for dtypes a host cannot hold.
    pub fn zeros(dtype: DType, n: usize) -> Result<Self> {
        Ok(match dtype {
            DType::F32 => HostData::F32(vec![0.0; n]),
            DType::U8 => HostData::U8(vec![0; n]),
            DType::I64 => HostData::I64(vec![0; n]),
            DType::I32 => HostData::I32(vec![0; n]),
            DType::Bool => HostData::Bool(vec![false; n]),
            DType::F16 => HostData::F16(vec![half::f16::ZERO; n]),
            DType::BF16 => HostData::BF16(vec![half::bf16::ZERO; n]),
        })
    }

    /// `n` elements equal to `value` converted to `dtype` (nonzero is true for bool; halves round
    /// to nearest even).
    ///
    /// # Errors
    /// Never today; kept fallible for dtypes a host cannot hold.
    pub fn full(dtype: DType, n: usize, value: f64) -> Result<Self> {
        Ok(match dtype {
            DType::F32 => HostData::F32(vec![value as f32; n]),
            DType::U8 => HostData::U8(vec![value as u8; n]),
            DType::I64 => HostData::I64(vec![value as i64; n]),
            DType::I32 => HostData::I32(vec![value as i32; n]),
            DType::Bool => HostData::Bool(vec![value != 0.0; n]),
            // One rounding from f64, to nearest even.
            DType::F16 => HostData::F16(vec![half::f16::from_f64(value); n]),
            DType::BF16 => HostData::BF16(vec![half::bf16::from_f64(value); n]),
        })
    }

    /// The f32 elements.
    ///
    /// # Errors
    /// `DTypeMismatch` naming `op` when the storage is not f32.
    pub fn as_f32(&self, op: &'static str) -> Result<&[f32]> {
        match self {
            HostData::F32(v) => Ok(v),
            other => Err(Error::dtype(op, "float32", other.dtype())),
        }
    }

    /// The f32 elements, mutable (for in-place kernels such as optimizer updates).
    ///
    /// # Errors
    /// `DTypeMismatch` naming `op` when the storage is not f32.
    pub fn as_f32_mut(&mut self, op: &'static str) -> Result<&mut [f32]> {
        match self {
            HostData::F32(v) => Ok(v),
            other => Err(Error::dtype(op, "float32", other.dtype())),
        }
    }

    /// The i64 elements.
    ///
    /// # Errors
    /// `DTypeMismatch` naming `op` when the storage is not i64.
    pub fn as_i64(&self, op: &'static str) -> Result<&[i64]> {
        match self {
            HostData::I64(v) => Ok(v),
            other => Err(Error::dtype(op, "int64", other.dtype())),
        }
    }

    /// The bool elements.
    ///
    /// # Errors
    /// `DTypeMismatch` naming `op` when the storage is not bool.
    pub fn as_bool(&self, op: &'static str) -> Result<&[bool]> {
        match self {
            HostData::Bool(v) => Ok(v),
            other => Err(Error::dtype(op, "bool", other.dtype())),
        }
    }

    /// Element `i` converted to f64 (bool as 0/1), for printing and scalar extraction.
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            HostData::F32(v) => v[i] as f64,
            HostData::U8(v) => v[i] as f64,
            HostData::I64(v) => v[i] as f64,
            HostData::I32(v) => v[i] as f64,
            HostData::Bool(v) => v[i] as u8 as f64,
            HostData::F16(v) => v[i].to_f64(),
            HostData::BF16(v) => v[i].to_f64(),
        }
    }
}

/// A Rust element type that a tensor can hold.
pub trait Element: Copy + Send + Sync + 'static {
    /// The matching dtype.
    const DTYPE: DType;
    /// Wraps a vector of this type into host data.
    fn into_host(v: Vec<Self>) -> HostData;
    /// Borrows the elements of host data of this type.
    fn slice(s: &HostData) -> Option<&[Self]>;
    /// Takes the elements of host data of this type without copying.
    fn from_host(s: HostData) -> Option<Vec<Self>>;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn into_host(v: Vec<Self>) -> HostData {
                HostData::$variant(v)
            }
            fn slice(s: &HostData) -> Option<&[Self]> {
                match s {
                    HostData::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn from_host(mut s: HostData) -> Option<Vec<Self>> {
                match &mut s {
                    HostData::$variant(v) => Some(std::mem::take(v)),
                    _ => None,
                }
            }
        }
    };
}
element!(f32, F32);
element!(u8, U8);
element!(i64, I64);
element!(i32, I32);
element!(bool, Bool);
element!(half::f16, F16);
element!(half::bf16, BF16);

/// A buffer kept by a backend outside host memory (device memory, or a test backend's arena).
///
/// The core only asks its dtype and length; the owning backend downcasts it back to its own type
/// with [`Storage::device_buffer`].
pub trait DeviceBuffer: Any + Send + Sync + fmt::Debug {
    /// The dtype of the elements.
    fn dtype(&self) -> DType;
    /// The number of elements.
    fn len(&self) -> usize;
    /// Whether there are no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `self` as `Any`, for downcasting by the owning backend.
    fn as_any(&self) -> &dyn Any;
}

/// The elements of a tensor, owned by the backend of its device and opaque to everything else.
///
/// Shared between tensors through an `Arc` in [`crate::Tensor`]; ops never mutate a storage that
/// another tensor can see (optimizers mutate a variable's storage only when it is unshared).
#[derive(Debug, Clone)]
pub struct Storage(Repr);

#[derive(Debug, Clone)]
enum Repr {
    Host(HostData),
    Device(Arc<dyn DeviceBuffer>),
}

impl From<HostData> for Storage {
    fn from(data: HostData) -> Self {
        Storage(Repr::Host(data))
    }
}

impl Storage {
    /// Host memory, as the `cpu` and `reference` backends keep it.
    pub fn host(data: HostData) -> Self {
        Storage(Repr::Host(data))
    }

    /// A buffer of a backend that keeps its data outside host memory.
    pub fn from_device_buffer(buffer: impl DeviceBuffer) -> Self {
        Storage(Repr::Device(Arc::new(buffer)))
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match &self.0 {
            Repr::Host(h) => h.dtype(),
            Repr::Device(d) => d.dtype(),
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Host(h) => h.len(),
            Repr::Device(d) => d.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the elements are in host memory.
    pub fn is_host(&self) -> bool {
        matches!(self.0, Repr::Host(_))
    }

    /// The host data, for host backends.
    ///
    /// # Errors
    /// `Unsupported` naming `op` when the storage is a device buffer: a host kernel was handed
    /// another backend's data, which the device checks of the ops should have refused.
    pub fn host_data(&self, op: &'static str) -> Result<&HostData> {
        match &self.0 {
            Repr::Host(h) => Ok(h),
            Repr::Device(d) => Err(not_host(op, d.as_ref())),
        }
    }

    /// The host data, mutable, for in-place updates by host backends.
    ///
    /// # Errors
    /// As [`Storage::host_data`].
    pub fn host_data_mut(&mut self, op: &'static str) -> Result<&mut HostData> {
        match &mut self.0 {
            Repr::Host(h) => Ok(h),
            Repr::Device(d) => Err(not_host(op, d.as_ref())),
        }
    }

    /// The device buffer as the owning backend's type `T`; `None` for host data or another type.
    pub fn device_buffer<T: DeviceBuffer>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Device(d) => d.as_any().downcast_ref::<T>(),
            Repr::Host(_) => None,
        }
    }

    /// The f32 elements in host memory.
    ///
    /// # Errors
    /// `DTypeMismatch` naming `op` when not f32; `Unsupported` when not in host memory.
    pub fn as_f32(&self, op: &'static str) -> Result<&[f32]> {
        self.host_data(op)?.as_f32(op)
    }

    /// The f32 elements in host memory, mutable, for in-place updates by host backends.
    ///
    /// # Errors
    /// As [`Storage::as_f32`].
    pub fn as_f32_mut(&mut self, op: &'static str) -> Result<&mut [f32]> {
        self.host_data_mut(op)?.as_f32_mut(op)
    }

    /// The i64 elements in host memory.
    ///
    /// # Errors
    /// As [`Storage::as_f32`], for int64.
    pub fn as_i64(&self, op: &'static str) -> Result<&[i64]> {
        self.host_data(op)?.as_i64(op)
    }

    /// The bool elements in host memory.
    ///
    /// # Errors
    /// As [`Storage::as_f32`], for bool.
    pub fn as_bool(&self, op: &'static str) -> Result<&[bool]> {
        self.host_data(op)?.as_bool(op)
    }
}

fn not_host(op: &'static str, d: &dyn DeviceBuffer) -> Error {
    Error::Unsupported {
        op,
        msg: format!("a host kernel got a device buffer ({} {} elements); move the tensor with `.to(device)` first", d.len(), d.dtype()),
    }
}
