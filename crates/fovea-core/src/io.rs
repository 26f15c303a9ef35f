//! Reading and writing tensors in the `.safetensors` format (the model-file format of Fovea:
//! Python's `safetensors` opens these files as they are), with atomic writes.

use crate::{Device, Error, HostData, Result, Tensor};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

pub mod limit;
pub mod record;
mod safetensors_text;

fn format_err(detail: impl std::fmt::Display) -> Error {
    Error::invalid("safetensors", detail.to_string())
}

/// Named tensors in file order.
pub type NamedTensors = Vec<(String, Tensor)>;

/// A file's `__metadata__` map.
pub type Metadata = HashMap<String, String>;

/// Parses a safetensors buffer into named tensors (in file order) and its metadata.
///
/// # Errors
/// `InvalidArgument` saying in words what is wrong for a truncated or corrupt buffer or an
/// unsupported dtype (f32, f16, bf16, i64, u8 and bool are supported; f64 and i32 are
/// converted to f32 and i64). [`read_safetensors_file`] names the file instead.
pub fn read_safetensors(bytes: &[u8], device: Device) -> Result<(NamedTensors, Metadata)> {
    parse_safetensors(bytes, device).map_err(format_err)
}

/// Reads a `.safetensors` file into named tensors (in file order) and its metadata.
///
/// # Errors
/// [`Error::File`] naming the file once, with what is wrong in words: it cannot be read, it is
/// truncated or corrupt (which entry of the header, what was expected and found), or a tensor
/// has an unsupported dtype.
pub fn read_safetensors_file(path: impl AsRef<Path>, device: Device) -> Result<(NamedTensors, Metadata)> {
    let path = path.as_ref();
    let file_err = |detail: String| Error::File { path: path.display().to_string(), detail };
    let bytes = std::fs::read(path).map_err(|e| file_err(format!("cannot read the file: {e}")))?;
    parse_safetensors(&bytes, device).map_err(file_err)
}

/// [`read_safetensors`] with the problem as a plain sentence, for callers to attach a name to.
fn parse_safetensors(bytes: &[u8], device: Device) -> std::result::Result<(NamedTensors, Metadata), String> {
    let describe = |e: safetensors::SafeTensorError| safetensors_text::describe(&e, bytes);
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(describe)?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(bytes).map_err(describe)?;
    // File order is data-offset order, which is how the writer laid the tensors out.
    let mut names: Vec<(usize, String)> = meta.tensors().into_iter().map(|(k, info)| (info.data_offsets.0, k)).collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for (_, name) in names {
        let view = st.tensor(&name).map_err(describe)?;
        let data = view.data();
        let shape = view.shape().to_vec();
        let host = match view.dtype() {
            Dtype::F32 => HostData::F32(data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
            Dtype::F64 => HostData::F32(data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect()),
            Dtype::I64 => HostData::I64(data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()),
            Dtype::I32 => HostData::I32(data.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()),
            Dtype::U8 => HostData::U8(data.to_vec()),
            Dtype::BOOL => HostData::Bool(data.iter().map(|&b| b != 0).collect()),
            Dtype::F16 => HostData::F16(data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]])).collect()),
            Dtype::BF16 => HostData::BF16(data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]])).collect()),
            other => {
                return Err(format!(
                    "tensor {name:?} has dtype {other:?}, which Fovea cannot load (supported: F32, F64, F16, BF16, I64, I32, U8, BOOL)"
                ))
            }
        };
        out.push((name.clone(), Tensor::from_host(host, shape, device).map_err(|e| format!("tensor {name:?}: {e}"))?));
    }
    Ok((out, metadata))
}

/// Reads a `.safetensors` file into a name → tensor map.
///
/// # Errors
/// As [`read_safetensors_file`].
pub fn load_safetensors(path: impl AsRef<Path>, device: Device) -> Result<HashMap<String, Tensor>> {
    let (tensors, _) = read_safetensors_file(path, device)?;
    Ok(tensors.into_iter().collect())
}

/// Serialises named tensors and metadata to safetensors bytes.
///
/// # Errors
/// `InvalidArgument` for duplicate names; the backend's error when a device tensor cannot be
/// copied to the host.
pub fn write_safetensors(tensors: &[(String, Tensor)], metadata: &HashMap<String, String>) -> Result<Vec<u8>> {
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let host = t.host_view()?;
        let (dtype, bytes) = match host.as_ref() {
            HostData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::I32(v) => (Dtype::I32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::U8(v) => (Dtype::U8, v.clone()),
            HostData::Bool(v) => (Dtype::BOOL, v.iter().map(|&b| b as u8).collect()),
            HostData::F16(v) => (Dtype::F16, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::BF16(v) => (Dtype::BF16, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        };
        buffers.push((name.clone(), dtype, t.dims().to_vec(), bytes));
    }
    let mut views = Vec::with_capacity(buffers.len());
    for (name, dtype, shape, bytes) in &buffers {
        views.push((name.clone(), TensorView::new(*dtype, shape.clone(), bytes).map_err(|e| format_err(format!("{name}: {e}")))?));
    }
    let meta = if metadata.is_empty() { None } else { Some(metadata.clone()) };
    safetensors::serialize(views, meta).map_err(|e| format_err(e.to_string()))
}

/// Writes `bytes` to `path` atomically: a temporary file beside it is written and fsynced, then
/// renamed over the target, so a crash never leaves a half-written file in place.
///
/// # Errors
/// `InvalidArgument` naming the path for any I/O failure.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let io = |what: &str, e: std::io::Error| format_err(format!("cannot {what} {}: {e}", path.display()));
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().ok_or_else(|| format_err(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp{}", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("create a temporary file for", e))?;
        f.write_all(bytes).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("fsync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("rename into", e))?;
        // Persist the rename itself.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes named tensors to a `.safetensors` file atomically.
///
/// # Errors
/// As [`write_safetensors`] and [`write_atomic`].
pub fn save_safetensors(path: impl AsRef<Path>, tensors: &[(String, Tensor)], metadata: &HashMap<String, String>) -> Result<()> {
    write_atomic(path, &write_safetensors(tensors, metadata)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_names_dtypes_values_and_metadata() {
        let d = Device::Cpu;
        let tensors = vec![
            ("dense/kernel".to_string(), Tensor::from_vec(vec![1.5f32, -2.0, 3.25, 0.0], [2, 2], d).unwrap()),
            ("step".to_string(), Tensor::from_vec(vec![7i64], [1], d).unwrap()),
            ("mask".to_string(), Tensor::from_vec(vec![true, false], [2], d).unwrap()),
            ("img".to_string(), Tensor::from_vec(vec![0u8, 255], [1, 2], d).unwrap()),
        ];
        let meta: HashMap<String, String> = [("format".to_string(), "1".to_string())].into();
        let dir = std::env::temp_dir().join(format!("fovea-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        save_safetensors(&path, &tensors, &meta).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (back, meta_back) = read_safetensors(&bytes, d).unwrap();
        assert_eq!(meta_back, meta);
        assert_eq!(back.len(), 4);
        for (name, t) in &tensors {
            let (_, b) = back.iter().find(|(n, _)| n == name).unwrap();
            assert_eq!(b.dtype(), t.dtype());
            assert_eq!(b.shape(), t.shape());
            assert_eq!(format!("{b}"), format!("{t}"));
        }
        // A truncated file is an error that says so, never a panic.
        let e = read_safetensors(&bytes[..bytes.len() - 3], d).unwrap_err().to_string();
        assert!(e.contains("safetensors") && e.contains("truncated"), "{e}");
        let e = read_safetensors(&bytes[..5], d).unwrap_err().to_string();
        assert!(e.contains("the file holds only 5 bytes"), "{e}");
        let e = load_safetensors(dir.join("missing.safetensors"), d).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: cannot read the file: ", dir.join("missing.safetensors").display())), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A safetensors file with this header and `data` bytes after it.
    fn with_header(header: &str, data: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend(header.as_bytes());
        v.extend(vec![0u8; data]);
        v
    }

    #[test]
    fn every_safetensors_error_is_a_sentence_naming_the_file_once() {
        let dir = std::env::temp_dir().join(format!("fovea-io-errors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.safetensors");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            // Used to say "cannot read the header: InvalidHeaderDeserialization".
            (
                with_header(r#"{"w":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}"#, 4),
                r#"tensor "w" has dtype "F99", which safetensors does not define"#,
            ),
            (
                with_header(r#"{"w":{"dtype":"F32","shape":"big","data_offsets":[0,4]}}"#, 4),
                r#"tensor "w": expected shape to be a list of non-negative integers, found the string "big""#,
            ),
            (
                with_header(r#"{"w":{"dtype":"F32","shape":[1]}}"#, 4),
                r#"tensor "w": expected data_offsets to be a [begin, end] pair of byte offsets, found nothing"#,
            ),
            (with_header(r#"{"__metadata__":{"k":3}}"#, 0), r#"metadata entry "k" must be a string, found the number 3"#),
            (with_header(r#"{"w": "#, 0), "the header is not valid JSON: EOF while parsing"),
            (with_header("[1]", 0), "expected the header to be a JSON object of tensors, found a list"),
            // Used to say TensorInvalidInfo.
            (
                with_header(r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 4),
                r#"tensor "w": shape [2] of F32 needs 8 bytes, but its data_offsets [0, 4] span 4 bytes"#,
            ),
            // Used to say InvalidOffset("b").
            (
                with_header(
                    r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}"#,
                    5,
                ),
                r#"tensor "b": its data starts at byte 3, expected 2"#,
            ),
            (
                with_header(r#"{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#, 7),
                "the tensors' data ends at byte 2 of the data section, but the file holds 7 bytes of data",
            ),
            (
                with_header(r#"{"w":{"dtype":"F64","shape":[4611686018427387904, 4],"data_offsets":[0,8]}}"#, 8),
                "is too large (its size in bytes overflows)",
            ),
            // Used to say HeaderTooLarge.
            (
                [u64::MAX.to_le_bytes().to_vec(), vec![0; 8]].concat(),
                "the header length field says 18446744073709551615 bytes, more than the 100000000 bytes",
            ),
            ([100u64.to_le_bytes().to_vec(), b"{}".to_vec()].concat(), "the header length field says 100 bytes but only 2 bytes follow it"),
            (vec![1, 2, 3], "expected a safetensors file, which starts with an 8-byte header length, but the file holds only 3 bytes"),
            ([2u64.to_le_bytes().to_vec(), vec![0xff, 0xfe]].concat(), "the header is not UTF-8 text"),
            (
                with_header(r#"{"w":{"dtype":"U16","shape":[1],"data_offsets":[0,2]}}"#, 2),
                r#"tensor "w" has dtype U16, which Fovea cannot load"#,
            ),
            // Files passed by mistake where a model belongs are named for what they are.
            (b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00rest of a photo".to_vec(), "expected a safetensors model file, but this is a JPEG image"),
            (b"\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR".to_vec(), "but this is a PNG image"),
            (b"\x89HDF\r\n\x1A\n\x00\x00\x00\x00".to_vec(), "but this is an HDF5 file (a Keras .h5 model?"),
            (b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec(), "but this is a ZIP archive"),
        ];
        for (bytes, expected) in cases {
            std::fs::write(&path, &bytes).unwrap();
            let e = load_safetensors(&path, Device::Cpu).unwrap_err().to_string();
            let prefix = format!("{}: ", path.display());
            assert!(e.starts_with(&prefix) && e.contains(expected), "expected {expected:?}, got {e}");
            // One prefix: no enum names, no repeated file name or error-type words.
            assert_eq!(e.matches("bad.safetensors").count(), 1, "{e}");
            assert!(!e.contains("invalid argument") && !e.contains("Invalid") && !e.contains("TooLarge"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
