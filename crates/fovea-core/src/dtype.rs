//! Element types.

use std::fmt;

/// The element type of a tensor.
///
/// `F16` and `BF16` are reserved for the GPU and mixed-precision backends: they are part of the
/// enum so that code matching on dtypes is written for them from day one, but creating a tensor of
/// either on the CPU returns [`crate::Error::Unsupported`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float, the compute default.
    F32,
    /// Unsigned byte, for images.
    U8,
    /// 64-bit signed integer, for labels and indices.
    I64,
    /// Boolean, for masks and comparison results.
    Bool,
    /// IEEE half precision (reserved).
    F16,
    /// bfloat16 (reserved).
    BF16,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::U8 | DType::Bool => 1,
            DType::I64 => 8,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// Whether values of this dtype are floating point (and so differentiable).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }

    /// The lower-case name TensorFlow and NumPy use (`float32`, `uint8`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::U8 => "uint8",
            DType::I64 => "int64",
            DType::Bool => "bool",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
