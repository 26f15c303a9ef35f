//! Element types.

use std::fmt;

/// The element type of a tensor.
///
/// `F16` and `BF16` are the low-precision dtypes of mixed precision: every float op accepts them
/// (host backends compute on f32 copies and round each result once, to nearest even).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float, the compute default.
    F32,
    /// Unsigned byte, for images.
    U8,
    /// 64-bit signed integer, for labels and indices.
    I64,
    /// 32-bit signed integer: TensorFlow's default label and index dtype, accepted wherever
    /// labels and indices are (integer ops widen it to int64).
    I32,
    /// Boolean, for masks and comparison results.
    Bool,
    /// IEEE half precision: 5 exponent bits, 11 significand bits.
    F16,
    /// bfloat16: f32's 8 exponent bits, 8 significand bits.
    BF16,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::U8 | DType::Bool => 1,
            DType::I64 => 8,
            DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// Whether values of this dtype are floating point (and so differentiable).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }

    /// Whether this is one of the 16-bit floats (`F16`, `BF16`).
    pub fn is_half(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }

    /// The lower-case name TensorFlow and NumPy use (`float32`, `uint8`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::U8 => "uint8",
            DType::I64 => "int64",
            DType::I32 => "int32",
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
