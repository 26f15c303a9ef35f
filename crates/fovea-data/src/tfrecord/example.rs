//! `tf.train.Example`: the protobuf messages (written by hand with `prost`'s derive, field numbers
//! from TensorFlow's `example.proto` and `feature.proto`, so no `protoc` is needed) and their
//! conversion to pipeline elements.

use crate::pipeline::Element;
use crate::{Error, Result};
use fovea_core::{Device, HostData, Tensor};
use std::collections::BTreeMap;

/// `tf.train.BytesList`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BytesList {
    /// The byte strings (encoded images, text, serialised tensors).
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub value: Vec<Vec<u8>>,
}

/// `tf.train.FloatList`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FloatList {
    /// The values (packed on the wire).
    #[prost(float, repeated, tag = "1")]
    pub value: Vec<f32>,
}

/// `tf.train.Int64List`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Int64List {
    /// The values (packed on the wire).
    #[prost(int64, repeated, tag = "1")]
    pub value: Vec<i64>,
}

/// The `kind` oneof of `tf.train.Feature`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    /// A list of byte strings.
    #[prost(message, tag = "1")]
    BytesList(BytesList),
    /// A list of floats.
    #[prost(message, tag = "2")]
    FloatList(FloatList),
    /// A list of 64-bit integers.
    #[prost(message, tag = "3")]
    Int64List(Int64List),
}

/// `tf.train.Feature`: one list of one of the three kinds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Feature {
    /// The list; `None` for a feature TF wrote without a kind (read as an empty list).
    #[prost(oneof = "Kind", tags = "1, 2, 3")]
    pub kind: Option<Kind>,
}

/// `tf.train.Features`: named features.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Features {
    /// The features by name; sorted, so that encoding is deterministic.
    #[prost(btree_map = "string, message", tag = "1")]
    pub feature: BTreeMap<String, Feature>,
}

/// `tf.train.Example`: the record type of most TFRecord files.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Example {
    /// The example's features.
    #[prost(message, optional, tag = "1")]
    pub features: Option<Features>,
}

impl Feature {
    /// A `BytesList` feature.
    pub fn bytes<B: Into<Vec<u8>>>(values: impl IntoIterator<Item = B>) -> Feature {
        Feature { kind: Some(Kind::BytesList(BytesList { value: values.into_iter().map(Into::into).collect() })) }
    }

    /// A `FloatList` feature.
    pub fn floats(values: impl IntoIterator<Item = f32>) -> Feature {
        Feature { kind: Some(Kind::FloatList(FloatList { value: values.into_iter().collect() })) }
    }

    /// An `Int64List` feature.
    pub fn int64s(values: impl IntoIterator<Item = i64>) -> Feature {
        Feature { kind: Some(Kind::Int64List(Int64List { value: values.into_iter().collect() })) }
    }

    /// The byte strings of a `BytesList` feature.
    pub fn as_bytes(&self) -> Option<&[Vec<u8>]> {
        match &self.kind {
            Some(Kind::BytesList(l)) => Some(&l.value),
            _ => None,
        }
    }

    /// The values of a `FloatList` feature.
    pub fn as_floats(&self) -> Option<&[f32]> {
        match &self.kind {
            Some(Kind::FloatList(l)) => Some(&l.value),
            _ => None,
        }
    }

    /// The values of an `Int64List` feature.
    pub fn as_int64s(&self) -> Option<&[i64]> {
        match &self.kind {
            Some(Kind::Int64List(l)) => Some(&l.value),
            _ => None,
        }
    }

    /// Converts to a tensor-tree: floats → f32 `[n]`, int64s → i64 `[n]`, a single byte string →
    /// u8 `[len]` (ready for `decode_image`), several byte strings → a tuple of u8 tensors.
    fn to_element(&self, device: Device) -> Result<Element> {
        let t = |s: HostData, n: usize| Tensor::from_host(s, vec![n], device).map(Element::Tensor).map_err(Error::from);
        match &self.kind {
            Some(Kind::FloatList(l)) => t(HostData::F32(l.value.clone()), l.value.len()),
            Some(Kind::Int64List(l)) => t(HostData::I64(l.value.clone()), l.value.len()),
            Some(Kind::BytesList(l)) if l.value.len() == 1 => t(HostData::U8(l.value[0].clone()), l.value[0].len()),
            Some(Kind::BytesList(l)) => {
                Ok(Element::Tuple(l.value.iter().map(|b| t(HostData::U8(b.clone()), b.len())).collect::<Result<_>>()?))
            }
            None => t(HostData::F32(Vec::new()), 0),
        }
    }
}

impl Example {
    /// An example of the given named features.
    pub fn from_features<K: Into<String>>(features: impl IntoIterator<Item = (K, Feature)>) -> Example {
        Example { features: Some(Features { feature: features.into_iter().map(|(k, v)| (k.into(), v)).collect() }) }
    }

    /// The feature `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Feature> {
        self.features.as_ref()?.feature.get(name)
    }

    /// The serialised protobuf (`Example.SerializeToString()`).
    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(self)
    }

    /// Parses a serialised `tf.train.Example`.
    ///
    /// # Errors
    /// `Format` naming `parse_example` when the bytes are not a valid Example protobuf.
    pub fn from_bytes(bytes: &[u8]) -> Result<Example> {
        <Example as prost::Message>::decode(bytes).map_err(|e| {
            Error::format(
                "parse_example",
                format!("expected a serialised tf.train.Example, got {} bytes that do not parse: {e}", bytes.len()),
            )
        })
    }

    /// The features as a dict element, in name order (see [`parse_example`] for the tensors).
    ///
    /// # Errors
    /// `Core` errors from building tensors (none for well-formed examples).
    pub fn to_element(&self, device: Device) -> Result<Element> {
        let Some(f) = &self.features else { return Ok(Element::Dict(Vec::new())) };
        Ok(Element::Dict(f.feature.iter().map(|(k, v)| Ok((k.clone(), v.to_element(device)?))).collect::<Result<_>>()?))
    }
}

/// The map function of a TFRecord pipeline: turns a record element (u8 `[len]` bytes, as
/// [`crate::pipeline::Dataset::from_tfrecord_files`] yields) into a dict of its features
/// (`tf.io.parse_single_example` without a schema): float lists → f32 `[n]`, int64 lists →
/// i64 `[n]`, one byte string → u8 `[len]` (decode it with `fovea_vision`'s `decode_image`),
/// several → a tuple of u8 tensors.
///
/// # Errors
/// `Format` when the element is not a u8 tensor or does not parse as an Example.
pub fn parse_example(record: Element) -> Result<Element> {
    let t = record.tensor()?;
    let Ok(bytes) = t.host_slice::<u8>() else {
        return Err(Error::format("parse_example", format!("expected a uint8 record tensor, got dtype {}", t.dtype())));
    };
    Example::from_bytes(bytes)?.to_element(t.device())
}
