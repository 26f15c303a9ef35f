//! Predict request bodies in TF Serving's two formats, parsed straight into `f32` rows, and
//! predict responses written straight from them.
//!
//! The body is read by a serde `DeserializeSeed` that walks the nested arrays and pushes each
//! number into one `Vec<f32>`, checking that the nesting is rectangular as it goes: no
//! `serde_json::Value` tree is built for the (large) `instances` array. `{"b64": "..."}` values
//! are PNG or JPEG images, decoded and resized to the model's input and scaled as `fovea predict`
//! scales image files (pixels / 255, or the model's `fovea.preprocess` mode).

use crate::store::Servable;
use base64::Engine as _;
use fovea_core::{DType, Device};
use fovea_vision::applications::preprocess_input;
use fovea_vision::image::{decode_image_with_limit, resize, ResizeMethod};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Which of TF Serving's request formats a body used; the response uses the matching one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `{"instances": [...]}` → `{"predictions": [...]}`.
    Row,
    /// `{"inputs": ...}` → `{"outputs": ...}`.
    Columnar,
}

/// A parsed predict request: `rows` instances of the model's input, row-major.
#[derive(Debug)]
pub struct Parsed {
    /// The request format.
    pub format: Format,
    /// Instances.
    pub rows: usize,
    /// `rows × input_len` values.
    pub data: Vec<f32>,
}

/// What the walk over the nested arrays collects.
struct Collect<'a> {
    data: Vec<f32>,
    /// The length seen at each nesting depth (the first array there; the rest must match).
    dims: Vec<Option<usize>>,
    /// The depth numbers sit at, once one was seen.
    leaf: Option<usize>,
    images: Vec<Vec<u8>>,
    image_depth: Option<usize>,
    /// The depth at which `{"input_name": ...}` may stand for the input (1 for rows, 0 for
    /// columns).
    named_depth: usize,
    input_name: &'a str,
}

impl Collect<'_> {
    fn leaf_at(&mut self, depth: usize) -> Result<(), String> {
        match self.leaf {
            None => {
                self.leaf = Some(depth);
                Ok(())
            }
            Some(d) if d == depth => Ok(()),
            Some(d) => Err(format!("ragged nesting: values at depth {depth} and at depth {d}; every instance needs the same shape")),
        }
    }

    fn array_len(&mut self, depth: usize, n: usize) -> Result<(), String> {
        if self.dims.len() <= depth {
            self.dims.resize(depth + 1, None);
        }
        match self.dims[depth] {
            None => self.dims[depth] = Some(n),
            Some(m) if m == n => {}
            Some(m) => return Err(format!("ragged nesting: arrays of {m} and of {n} elements at depth {depth}")),
        }
        Ok(())
    }
}

struct Level<'c, 'a> {
    c: &'c mut Collect<'a>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Level<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("numbers (DT_FLOAT) in nested arrays, or {\"b64\": \"...\"} images")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0;
        while seq.next_element_seed(Level { c: &mut *self.c, depth: self.depth + 1 })?.is_some() {
            n += 1;
        }
        self.c.array_len(self.depth, n).map_err(de::Error::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.c.leaf_at(self.depth).map_err(E::custom)?;
        self.c.data.push(v as f32);
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let shown: String = v.chars().take(20).collect();
        Err(E::custom(format!(
            "expected a number (the model's input is DT_FLOAT), got the string {shown:?}; images go in {{\"b64\": \"...\"}}"
        )))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        Err(E::custom(format!("expected a number (the model's input is DT_FLOAT), got the boolean {v}")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom("expected a number (the model's input is DT_FLOAT), got null"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom("expected a number, an array or {\"b64\": \"...\"}, got an empty object"));
        };
        if key == "b64" {
            let text: String = map.next_value()?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| de::Error::custom(format!("b64 value is not valid base64: {e}")))?;
            match self.c.image_depth {
                None => self.c.image_depth = Some(self.depth),
                Some(d) if d == self.depth => {}
                Some(_) => return Err(de::Error::custom("b64 images at different nesting depths")),
            }
            self.c.images.push(bytes);
        } else if self.depth == self.c.named_depth {
            if key != self.c.input_name {
                return Err(de::Error::custom(format!("unknown input {key:?}: the model's input is {:?}", self.c.input_name)));
            }
            map.next_value_seed(Level { c: &mut *self.c, depth: self.depth })?;
        } else {
            return Err(de::Error::custom(format!("unexpected object key {key:?}: expected numbers or {{\"b64\": \"...\"}}")));
        }
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!("unexpected key {extra:?}: the model has one input, {:?}", self.c.input_name)));
        }
        Ok(())
    }
}

/// The top-level object: `signature_name` and one of `instances` / `inputs`.
struct Body<'c, 'a> {
    c: &'c mut Collect<'a>,
    format: &'c mut Option<Format>,
}

impl<'de> DeserializeSeed<'de> for Body<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Body<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with \"instances\" (row format) or \"inputs\" (columnar format)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let format = match key.as_str() {
                "instances" => Format::Row,
                "inputs" => Format::Columnar,
                "signature_name" => {
                    let name: String = map.next_value()?;
                    if name != "serving_default" && !name.is_empty() {
                        return Err(de::Error::custom(format!("unknown signature_name {name:?}: the model has \"serving_default\"")));
                    }
                    continue;
                }
                other => {
                    map.next_value::<IgnoredAny>()?;
                    return Err(de::Error::custom(format!("unknown key {other:?}: expected \"instances\" or \"inputs\"")));
                }
            };
            if format_set(self.format, format).is_err() {
                return Err(de::Error::custom("give either \"instances\" or \"inputs\", not both"));
            }
            self.c.named_depth = if format == Format::Row { 1 } else { 0 };
            map.next_value_seed(Level { c: &mut *self.c, depth: 0 })?;
        }
        Ok(())
    }
}

fn format_set(slot: &mut Option<Format>, f: Format) -> Result<(), ()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(f);
    Ok(())
}

fn shape_text(dims: &[usize]) -> String {
    format!("[{}]", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// Parses a predict body for `servable`.
///
/// # Errors
/// A message for a 400 answer: malformed JSON, neither or both formats, non-numbers, ragged
/// nesting, or a shape other than the model's (naming expected and received shapes).
pub fn parse_predict(body: &[u8], servable: &Servable) -> Result<Parsed, String> {
    let mut c = Collect {
        data: Vec::with_capacity(body.len() / 4),
        dims: Vec::new(),
        leaf: None,
        images: Vec::new(),
        image_depth: None,
        named_depth: 1,
        input_name: &servable.input_name,
    };
    let mut format = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    Body { c: &mut c, format: &mut format }.deserialize(&mut de).map_err(|e| format!("malformed request: {e}"))?;
    de.end().map_err(|e| format!("malformed request: {e}"))?;
    let format = format.ok_or("malformed request: expected \"instances\" (row format) or \"inputs\" (columnar format)")?;
    let key = if format == Format::Row { "instances" } else { "inputs" };
    let expected = format!("[-1, {}", shape_text(&servable.input_dims).trim_start_matches('['));
    if !c.images.is_empty() {
        if c.leaf.is_some() {
            return Err(format!("{key}: mixes numbers and b64 images"));
        }
        // Rows: a list of images. Columns: one image, or a list of them.
        let depth = c.image_depth.unwrap_or(0);
        if depth > 1 || (format == Format::Row && depth != 1) {
            return Err(format!(
                "{key}: b64 images must be {}",
                if format == Format::Row { "the instances themselves" } else { "the input or a list of them" }
            ));
        }
        let rows = c.images.len();
        let mut data = Vec::with_capacity(rows * servable.input_len());
        for (i, bytes) in c.images.iter().enumerate() {
            data.extend(image_input(bytes, servable).map_err(|e| format!("{key}: image {i}: {e}"))?);
        }
        return Ok(Parsed { format, rows, data });
    }
    let Some(leaf) = c.leaf else {
        return Err(format!("{key}: no values; expected shape {expected}"));
    };
    let got: Vec<usize> = c.dims[..leaf].iter().map(|d| d.unwrap_or(0)).collect();
    if got.len() != servable.input_dims.len() + 1 || got[1..] != servable.input_dims[..] {
        return Err(format!(
            "{key}: the model's input {:?} has shape {expected}, got {} (expected {} per instance)",
            servable.input_name,
            shape_text(&got),
            shape_text(&servable.input_dims)
        ));
    }
    if got[0] == 0 {
        return Err(format!("{key}: no instances"));
    }
    Ok(Parsed { format, rows: got[0], data: c.data })
}

/// The most bytes one decoded image may take (a 64-megapixel RGB image): a small PNG can
/// declare a huge size, and one request must not exhaust the server's memory.
const MAX_IMAGE_BYTES: u64 = 192 << 20;

/// Decodes a PNG/JPEG into the model's input: converted to its channels, resized (bilinear)
/// to its height and width, then scaled as the model expects.
fn image_input(bytes: &[u8], servable: &Servable) -> Result<Vec<f32>, String> {
    let &[h, w, ch] = servable.input_dims.as_slice() else {
        return Err(format!("the model's input {} is not an image (height, width, channels)", shape_text(&servable.input_dims)));
    };
    let img = decode_image_with_limit(bytes, ch, Device::Cpu, MAX_IMAGE_BYTES).map_err(|e| e.to_string())?;
    let img = if img.dims()[..2] == [h, w] { img.cast(DType::F32) } else { resize(&img, (h, w), ResizeMethod::Bilinear, false) }
        .map_err(|e| e.to_string())?;
    let img = match servable.preprocess {
        Some(mode) => preprocess_input(&img, mode),
        None => img.div_scalar(255.0),
    }
    .map_err(|e| e.to_string())?;
    img.to_vec::<f32>().map_err(|e| e.to_string())
}

/// Writes the response body: `{"predictions": [...]}` or `{"outputs": [...]}`, one nested
/// array per instance of shape `output_dims`.
pub fn write_response(format: Format, out: &[f32], rows: usize, output_dims: &[usize]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(out.len() * 12 + 32);
    buf.extend_from_slice(if format == Format::Row { b"{\"predictions\":" } else { b"{\"outputs\":" });
    let mut dims = Vec::with_capacity(output_dims.len() + 1);
    dims.push(rows);
    dims.extend_from_slice(output_dims);
    let mut fmt = ryu::Buffer::new();
    let mut values = out.iter();
    write_nested(&mut buf, &dims, &mut values, &mut fmt);
    buf.push(b'}');
    buf
}

fn write_nested(buf: &mut Vec<u8>, dims: &[usize], values: &mut std::slice::Iter<f32>, fmt: &mut ryu::Buffer) {
    let Some((&n, rest)) = dims.split_first() else {
        let v = values.next().copied().unwrap_or(f32::NAN);
        // JSON has no NaN or infinities; TF Serving writes them as strings, Python's json as
        // bare words; null is what every JSON parser reads.
        if v.is_finite() {
            buf.extend_from_slice(fmt.format_finite(v).as_bytes());
        } else {
            buf.extend_from_slice(b"null");
        }
        return;
    };
    buf.push(b'[');
    for i in 0..n {
        if i > 0 {
            buf.push(b',');
        }
        write_nested(buf, rest, values, fmt);
    }
    buf.push(b']');
}
