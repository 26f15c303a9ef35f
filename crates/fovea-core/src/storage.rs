//! Host storage of tensor elements: one contiguous, row-major buffer per dtype.

use crate::{DType, Error, Result};

/// The elements of a tensor, contiguous and row-major.
///
/// Shared between tensors through an `Arc` in [`crate::Tensor`]; ops never mutate a storage that
/// another tensor can see (optimizers replace a variable's value or mutate it only when unshared).
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// Bytes.
    U8(Vec<u8>),
    /// 64-bit integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
}

/// Large float buffers go back to the [`crate::buffer_pool`] for the next tensor of that size.
impl Drop for Storage {
    fn drop(&mut self) {
        if let Storage::F32(v) = self {
            crate::buffer_pool::recycle(std::mem::take(v));
        }
    }
}

impl Storage {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::U8(_) => DType::U8,
            Storage::I64(_) => DType::I64,
            Storage::Bool(_) => DType::Bool,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::U8(v) => v.len(),
            Storage::I64(v) => v.len(),
            Storage::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A storage of `n` zeros (false for bool).
    ///
    /// # Errors
    /// `Unsupported` for the reserved half-precision dtypes.
    pub fn zeros(dtype: DType, n: usize) -> Result<Self> {
        Ok(match dtype {
            DType::F32 => Storage::F32(vec![0.0; n]),
            DType::U8 => Storage::U8(vec![0; n]),
            DType::I64 => Storage::I64(vec![0; n]),
            DType::Bool => Storage::Bool(vec![false; n]),
            DType::F16 | DType::BF16 => return Err(unsupported_half(dtype)),
        })
    }

    /// The f32 elements.
    ///
    /// # Errors
    /// `DTypeMismatch` naming `op` when the storage is not f32.
    pub fn as_f32(&self, op: &'static str) -> Result<&[f32]> {
        match self {
            Storage::F32(v) => Ok(v),
            other => Err(Error::dtype(op, "float32", other.dtype())),
        }
    }

    /// The f32 elements, mutable (for in-place kernels such as optimizer updates).
    ///
    /// # Errors
    /// `DTypeMismatch` naming `op` when the storage is not f32.
    pub fn as_f32_mut(&mut self, op: &'static str) -> Result<&mut [f32]> {
        match self {
            Storage::F32(v) => Ok(v),
            other => Err(Error::dtype(op, "float32", other.dtype())),
        }
    }

    /// The i64 elements.
    ///
    /// # Errors
    /// `DTypeMismatch` naming `op` when the storage is not i64.
    pub fn as_i64(&self, op: &'static str) -> Result<&[i64]> {
        match self {
            Storage::I64(v) => Ok(v),
            other => Err(Error::dtype(op, "int64", other.dtype())),
        }
    }

    /// The bool elements.
    ///
    /// # Errors
    /// `DTypeMismatch` naming `op` when the storage is not bool.
    pub fn as_bool(&self, op: &'static str) -> Result<&[bool]> {
        match self {
            Storage::Bool(v) => Ok(v),
            other => Err(Error::dtype(op, "bool", other.dtype())),
        }
    }

    /// Element `i` converted to f64 (bool as 0/1), for printing and scalar extraction.
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Storage::F32(v) => v[i] as f64,
            Storage::U8(v) => v[i] as f64,
            Storage::I64(v) => v[i] as f64,
            Storage::Bool(v) => v[i] as u8 as f64,
        }
    }
}

pub(crate) fn unsupported_half(dtype: DType) -> Error {
    Error::Unsupported { op: "storage", msg: format!("{dtype} tensors need the GPU backend; use float32 on the CPU") }
}

/// A Rust element type that a tensor can hold.
pub trait Element: Copy + Send + Sync + 'static {
    /// The matching dtype.
    const DTYPE: DType;
    /// Wraps a vector of this type into a storage.
    fn into_storage(v: Vec<Self>) -> Storage;
    /// Borrows the elements of a storage of this type.
    fn slice(s: &Storage) -> Option<&[Self]>;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$variant(v)
            }
            fn slice(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
element!(f32, F32);
element!(u8, U8);
element!(i64, I64);
element!(bool, Bool);
