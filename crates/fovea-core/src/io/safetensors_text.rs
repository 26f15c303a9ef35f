//! The `safetensors` crate's errors in words. Its `Display` prints enum names
//! (`InvalidOffset("b")`, `TensorInvalidInfo`), and for a header it cannot deserialise it keeps
//! no detail at all, so the header is read again here as plain JSON to say which entry is wrong
//! and how.

use safetensors::SafeTensorError;
use serde_json::Value;

/// The dtype names the safetensors format defines, with their sizes in bytes.
const DTYPES: &[(&str, u64)] = &[
    ("BOOL", 1),
    ("U8", 1),
    ("I8", 1),
    ("F8_E5M2", 1),
    ("F8_E4M3", 1),
    ("I16", 2),
    ("U16", 2),
    ("F16", 2),
    ("BF16", 2),
    ("I32", 4),
    ("U32", 4),
    ("F32", 4),
    ("F64", 8),
    ("I64", 8),
    ("U64", 8),
];

/// The largest header the `safetensors` crate reads (its `MAX_HEADER_SIZE`).
const MAX_HEADER: u64 = 100_000_000;

/// A sentence saying what is wrong with the safetensors `bytes` that produced `e`: what was
/// expected and what was found.
pub(crate) fn describe(e: &SafeTensorError, bytes: &[u8]) -> String {
    let header_error = matches!(
        e,
        SafeTensorError::HeaderTooSmall
            | SafeTensorError::HeaderTooLarge
            | SafeTensorError::InvalidHeaderLength
            | SafeTensorError::InvalidHeader(_)
    );
    if let Some(format) = header_error.then(|| foreign_format(bytes)).flatten() {
        return format!("expected a safetensors model file, but this is {format}");
    }
    let declared = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let available = bytes.len().saturating_sub(8);
    match e {
        SafeTensorError::HeaderTooSmall => format!(
            "expected a safetensors file, which starts with an 8-byte header length, but the file holds only {} bytes",
            bytes.len()
        ),
        SafeTensorError::HeaderTooLarge => format!(
            "the header length field says {} bytes, more than the {MAX_HEADER} bytes a safetensors header may have (not a safetensors file?)",
            declared.unwrap_or(0)
        ),
        SafeTensorError::InvalidHeaderLength => format!(
            "the header length field says {} bytes but only {available} bytes follow it (truncated file?)",
            declared.unwrap_or(0)
        ),
        SafeTensorError::InvalidHeader(_) => "the header is not UTF-8 text".to_string(),
        SafeTensorError::TensorNotFound(name) => format!("the file has no tensor named {name:?}"),
        SafeTensorError::IoError(e) => format!("cannot read the file: {e}"),
        SafeTensorError::JsonError(e) => format!("the header is not valid JSON: {e}"),
        SafeTensorError::InvalidTensorView(dtype, shape, len) => {
            format!("a {dtype:?} tensor of shape {shape:?} cannot be made from {len} bytes of data")
        }
        SafeTensorError::InvalidOffset(name) => diagnose(bytes).unwrap_or_else(|| {
            format!("the data_offsets of tensor {name:?} do not continue where the previous tensor's data ends")
        }),
        SafeTensorError::MetadataIncompleteBuffer => diagnose(bytes)
            .unwrap_or_else(|| "the tensors' data_offsets do not cover exactly the data after the header".to_string()),
        SafeTensorError::TensorInvalidInfo => diagnose(bytes)
            .unwrap_or_else(|| "a tensor's shape and dtype need a different number of bytes than its data_offsets span".to_string()),
        SafeTensorError::ValidationOverflow => {
            diagnose(bytes).unwrap_or_else(|| "a tensor's shape times its dtype size overflows".to_string())
        }
        SafeTensorError::InvalidHeaderDeserialization(_) => {
            diagnose(bytes).unwrap_or_else(|| "the header is JSON but not a safetensors header".to_string())
        }
        // The crate's enum is not exhaustive across versions.
        #[allow(unreachable_patterns)]
        other => format!("the file is not valid safetensors ({other:?})"),
    }
}

/// What a file that is not safetensors is, from its first bytes: the files people pass by
/// mistake where a model is expected (swapped arguments, a Keras or PyTorch file).
fn foreign_format(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"\x89PNG\r\n\x1A\n", "a PNG image"),
        (b"GIF8", "a GIF image"),
        (b"\x89HDF\r\n\x1A\n", "an HDF5 file (a Keras .h5 model? `fovea convert` turns it into safetensors)"),
        (b"PK\x03\x04", "a ZIP archive (a Keras .keras or PyTorch .pt file? `fovea convert` turns it into safetensors)"),
        (b"\x1F\x8B\x08", "gzip-compressed data"),
        // `{"`, not `{` alone: a safetensors header of 123 bytes starts with 0x7B too.
        (b"{\"", "JSON text (a model config? `--spec` reads those)"),
    ];
    SIGNATURES.iter().find(|(magic, _)| bytes.starts_with(magic)).map(|(_, what)| *what)
}

/// Reads the header as JSON and says what is wrong with it: the first entry that breaks the
/// format, or the data's length. `None` when nothing is found (then the caller's generic
/// sentence stands).
fn diagnose(bytes: &[u8]) -> Option<String> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let text = std::str::from_utf8(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    let header: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some(format!("the header is not valid JSON: {e}")),
    };
    let Value::Object(entries) = header else {
        return Some(format!("expected the header to be a JSON object of tensors, found {}", kind(&header)));
    };
    let mut spans = Vec::new();
    for (name, entry) in &entries {
        if name == "__metadata__" {
            match entry {
                Value::Object(m) => {
                    if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                        return Some(format!("metadata entry {k:?} must be a string, found {}", kind(v)));
                    }
                    continue;
                }
                other => return Some(format!("__metadata__ must be an object of strings, found {}", kind(other))),
            }
        }
        let what = |field: &str, expected: &str| {
            Some(format!("tensor {name:?}: expected {field} to be {expected}, found {}", entry.get(field).map_or("nothing".into(), kind)))
        };
        let Some(dtype) = entry.get("dtype").and_then(Value::as_str) else { return what("dtype", "a dtype name such as \"F32\"") };
        let Some(&(_, size)) = DTYPES.iter().find(|(d, _)| *d == dtype) else {
            let known: Vec<&str> = DTYPES.iter().map(|(d, _)| *d).collect();
            return Some(format!("tensor {name:?} has dtype {dtype:?}, which safetensors does not define (known: {})", known.join(", ")));
        };
        let Some(shape) =
            entry.get("shape").and_then(Value::as_array).and_then(|s| s.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
        else {
            return what("shape", "a list of non-negative integers");
        };
        let Some([begin, end]) = entry
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|o| o.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
            .and_then(|o| <[u64; 2]>::try_from(o).ok())
        else {
            return what("data_offsets", "a [begin, end] pair of byte offsets");
        };
        let Some(needed) = shape.iter().try_fold(size, |acc, &d| acc.checked_mul(d)) else {
            return Some(format!("tensor {name:?}: shape {shape:?} of {dtype} is too large (its size in bytes overflows)"));
        };
        if end < begin || end - begin != needed {
            return Some(format!(
                "tensor {name:?}: shape {shape:?} of {dtype} needs {needed} bytes, but its data_offsets [{begin}, {end}] span {}",
                if end < begin { "a negative range".to_string() } else { format!("{} bytes", end - begin) }
            ));
        }
        spans.push((begin, end, name.as_str()));
    }
    // The format lays tensors out back to back from offset 0, covering the data exactly.
    spans.sort();
    let mut at = 0;
    for (begin, end, name) in spans {
        if begin != at {
            return Some(format!(
                "tensor {name:?}: its data starts at byte {begin}, expected {at} (where the previous tensor's data ends)"
            ));
        }
        at = end;
    }
    let data = (bytes.len() - 8 - n) as u64;
    (at != data).then(|| {
        format!(
            "the tensors' data ends at byte {at} of the data section, but the file holds {data} bytes of data (truncated or padded file?)"
        )
    })
}

/// A JSON value's kind, for messages.
fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}
