//! Parsing with a schema (`tf.io.parse_single_example` with `FixedLenFeature`s) and
//! `tf.io.decode_raw`, for pipelines that know their features' types and shapes.

use super::{Example, Feature, Kind};
use crate::pipeline::Element;
use crate::{Error, Result};
use fovea_core::{DType, Device, HostData, Tensor};

/// The list kind a feature must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureType {
    /// `tf.string`: a `bytes_list`.
    Bytes,
    /// `tf.float32`: a `float_list`.
    Float,
    /// `tf.int64`: an `int64_list`.
    Int64,
}

impl FeatureType {
    fn list_name(self) -> &'static str {
        match self {
            FeatureType::Bytes => "bytes_list",
            FeatureType::Float => "float_list",
            FeatureType::Int64 => "int64_list",
        }
    }
}

/// `tf.io.FixedLenFeature`: a feature with a known type and shape, and an optional default used
/// when an example lacks it.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedLenFeature {
    /// The shape of the parsed value (`[]` for a single value).
    pub shape: Vec<usize>,
    /// The list kind.
    pub dtype: FeatureType,
    /// The value of a missing feature (`None`: missing is an error).
    pub default: Option<Feature>,
}

impl FixedLenFeature {
    /// One byte string (`FixedLenFeature([], tf.string)`), parsed as a u8 `[len]` tensor.
    pub fn bytes() -> Self {
        FixedLenFeature { shape: Vec::new(), dtype: FeatureType::Bytes, default: None }
    }

    /// Floats of `shape` (`FixedLenFeature(shape, tf.float32)`), parsed as an f32 tensor.
    pub fn float(shape: &[usize]) -> Self {
        FixedLenFeature { shape: shape.to_vec(), dtype: FeatureType::Float, default: None }
    }

    /// Integers of `shape` (`FixedLenFeature(shape, tf.int64)`), parsed as an i64 tensor.
    pub fn int64(shape: &[usize]) -> Self {
        FixedLenFeature { shape: shape.to_vec(), dtype: FeatureType::Int64, default: None }
    }

    /// Uses `value` when an example lacks the feature.
    pub fn with_default(mut self, value: Feature) -> Self {
        self.default = Some(value);
        self
    }
}

/// Named features to parse, in output order.
pub type FeatureSpec = Vec<(String, FixedLenFeature)>;

fn parse_one(name: &str, f: &Feature, spec: &FixedLenFeature, device: Device) -> Result<Element> {
    let err = |msg: String| Error::format("parse_single_example", format!("feature {name:?}: {msg}"));
    let n: usize = spec.shape.iter().product();
    let got_kind = match &f.kind {
        Some(Kind::BytesList(_)) => "bytes_list",
        Some(Kind::FloatList(_)) => "float_list",
        Some(Kind::Int64List(_)) => "int64_list",
        None => "no list",
    };
    let count = |len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(err(format!("expected {n} value(s) for shape {:?}, got {len}", spec.shape)))
        }
    };
    let tensor = |s: HostData| Tensor::from_host(s, spec.shape.clone(), device).map(Element::Tensor).map_err(Error::from);
    match (&f.kind, spec.dtype) {
        (Some(Kind::FloatList(l)), FeatureType::Float) => count(l.value.len()).and_then(|_| tensor(HostData::F32(l.value.clone()))),
        (Some(Kind::Int64List(l)), FeatureType::Int64) => count(l.value.len()).and_then(|_| tensor(HostData::I64(l.value.clone()))),
        (Some(Kind::BytesList(l)), FeatureType::Bytes) => {
            count(l.value.len())?;
            let bytes =
                |b: &Vec<u8>| Tensor::from_host(HostData::U8(b.clone()), vec![b.len()], device).map(Element::Tensor).map_err(Error::from);
            if spec.shape.is_empty() {
                bytes(&l.value[0])
            } else {
                Ok(Element::Tuple(l.value.iter().map(bytes).collect::<Result<_>>()?))
            }
        }
        _ => Err(err(format!("expected a {}, got {got_kind}", spec.dtype.list_name()))),
    }
}

/// Parses a serialised Example (a u8 record element) into a dict with one entry per `spec`
/// entry, in spec order (`tf.io.parse_single_example`): floats and int64s as tensors of the
/// spec's shape, a single byte string as u8 `[len]`, several as a tuple. Features not in the
/// spec are ignored.
///
/// # Errors
/// `Format` naming `parse_single_example` and the feature when it is missing without a default,
/// has another list kind, or holds a different number of values than the shape needs; `Format`
/// when the record is not a u8 tensor or not an Example.
pub fn parse_single_example(record: Element, spec: &FeatureSpec) -> Result<Element> {
    let t = record.tensor()?;
    let Ok(bytes) = t.host_slice::<u8>() else {
        return Err(Error::format("parse_single_example", format!("expected a uint8 record tensor, got dtype {}", t.dtype())));
    };
    let ex = Example::from_bytes(bytes)?;
    let fields = spec
        .iter()
        .map(|(name, s)| {
            let f = ex
                .get(name)
                .or(s.default.as_ref())
                .ok_or_else(|| Error::format("parse_single_example", format!("feature {name:?} is missing and has no default")))?;
            Ok((name.clone(), parse_one(name, f, s, t.device())?))
        })
        .collect::<Result<_>>()?;
    Ok(Element::Dict(fields))
}

/// Reinterprets the bytes of a u8 tensor as little-endian values of `dtype` (u8, f32, i32 or i64),
/// as a `[n]` tensor (`tf.io.decode_raw`); reshape it afterwards.
///
/// # Errors
/// `Format` naming `decode_raw` for a non-u8 input, another dtype, or a byte count that is not
/// a multiple of the value size.
pub fn decode_raw(bytes: &Tensor, dtype: DType) -> Result<Tensor> {
    let err = |msg: String| Error::format("decode_raw", msg);
    let Ok(b) = bytes.host_slice::<u8>() else {
        return Err(err(format!("expected uint8 bytes, got dtype {}", bytes.dtype())));
    };
    let size = match dtype {
        DType::U8 => 1,
        DType::F32 => 4,
        DType::I64 => 8,
        DType::I32 => 4,
        other => return Err(err(format!("expected out_type uint8, float32, int32 or int64, got {other}"))),
    };
    if b.len() % size != 0 {
        return Err(err(format!("{} bytes are not a whole number of {dtype} values ({size} bytes each)", b.len())));
    }
    let storage = match dtype {
        DType::U8 => HostData::U8(b.to_vec()),
        DType::F32 => HostData::F32(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()),
        DType::I32 => HostData::I32(b.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()),
        _ => HostData::I64(b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()),
    };
    Ok(Tensor::from_host(storage, vec![b.len() / size], bytes.device())?)
}
