//! NumPy's `.npy` arrays and `.npz` archives (`np.save`, `np.savez`, `np.savez_compressed`).
//!
//! A `.npy` file is a magic string, a version, a Python-dict header (`descr`, `fortran_order`,
//! `shape`) and the raw elements. Element types map onto Fovea's dtypes: `f4` → float32,
//! `u1` → uint8, `i4` → int32, `i8` → int64, `b1` → bool; `f8` is converted on reading to
//! float32, since Fovea has no float64 tensors. Either byte order is read.
//! Only C order is supported: a Fortran-ordered array is an error, not a silent transposition.
//! An `.npz` is a zip of `.npy` files, stored or deflated; its entries' CRC-32s are checked.

use crate::{Error, Result};
use fovea_core::{DType, Device, Tensor};
use fovea_nn::import::zip::{entries, ZipError};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// The element types a `.npy` file may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    F4,
    F8,
    U1,
    I4,
    I8,
    B1,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::F4 | Kind::I4 => 4,
            Kind::F8 | Kind::I8 => 8,
            Kind::U1 | Kind::B1 => 1,
        }
    }
}

/// The value of `key` in a header dict literal (up to the next top-level comma or brace).
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find([',', '}'])? };
    Some(rest[..end].trim())
}

/// Parses the bytes of a `.npy` file; `what` names it in errors.
///
/// # Errors
/// `Format` naming `what` for a missing magic string, an unknown version, a malformed header,
/// an unsupported element type, Fortran order, or a data length that disagrees with the shape
/// (a truncated file).
pub fn parse_npy(bytes: &[u8], what: &str, device: Device) -> Result<Tensor> {
    let bad = |detail: String| Error::format(what, detail);
    if !bytes.starts_with(MAGIC) || bytes.len() < 10 {
        return Err(bad(format!("not a .npy file: expected the magic string \\x93NUMPY, got {:02x?}", &bytes[..bytes.len().min(6)])));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(format!(".npy format version {v}.{} is not supported (expected 1.0, 2.0 or 3.0)", bytes[7]))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad(format!("truncated header: {header_len} bytes announced, {} present", bytes.len() - start)))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("the header is not text".into()))?;
    let field = |key: &str| header_value(header, key).ok_or_else(|| bad(format!("the header has no '{key}': {header:?}")));
    let descr = field("descr")?.trim_matches(['\'', '"']);
    if field("fortran_order")? != "False" {
        return Err(bad("the array is in Fortran order; only C order is supported (save np.ascontiguousarray(a) instead)".into()));
    }
    let shape_text = field("shape")?;
    let dims: Vec<usize> = shape_text
        .trim_matches(['(', ')'])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad(format!("the shape {shape_text} is not a tuple of sizes")))?;
    // Not `split_at(1)`: a damaged header's first character may be several bytes long (found
    // by fuzz/npy).
    let (big_endian, code) = match (descr.strip_prefix(['<', '|', '=']), descr.strip_prefix('>')) {
        (Some(c), _) => (false, c),
        (_, Some(c)) => (true, c),
        _ => (false, descr),
    };
    let kind = match code {
        "f4" => Kind::F4,
        "f8" => Kind::F8,
        "u1" => Kind::U1,
        "i4" => Kind::I4,
        "i8" => Kind::I8,
        "b1" => Kind::B1,
        _ => {
            return Err(bad(format!(
                "element type '{descr}' is not supported (expected float32 '<f4', float64 '<f8', uint8 '|u1', int32 '<i4', int64 '<i8' or bool '|b1')"
            )))
        }
    };
    let data = &bytes[start + header_len..];
    // Checked: a shape read from the file must not wrap to a size that matches its data.
    let needed = fovea_core::checked_numel(&dims).and_then(|n| n.checked_mul(kind.size())).ok_or_else(|| {
        bad(format!("the shape {dims:?} of '{descr}' declares more bytes than can be addressed (the file holds {})", data.len()))
    })?;
    if data.len() != needed {
        return Err(bad(format!(
            "the shape {dims:?} of '{descr}' needs {needed} bytes of data, the file holds {} (truncated or corrupt)",
            data.len()
        )));
    }
    let word = |c: &[u8]| -> [u8; 8] {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        if big_endian {
            w[..c.len()].reverse();
        }
        w
    };
    let chunks = data.chunks_exact(kind.size().max(1));
    Ok(match kind {
        Kind::F4 => Tensor::from_vec(
            chunks.map(|c| f32::from_le_bytes(word(c)[..4].try_into().expect("4 bytes"))).collect::<Vec<_>>(),
            dims,
            device,
        )?,
        Kind::F8 => Tensor::from_vec(chunks.map(|c| f64::from_le_bytes(word(c)) as f32).collect::<Vec<_>>(), dims, device)?,
        Kind::I4 => Tensor::from_vec(
            chunks.map(|c| i32::from_le_bytes(word(c)[..4].try_into().expect("4 bytes"))).collect::<Vec<_>>(),
            dims,
            device,
        )?,
        Kind::I8 => Tensor::from_vec(chunks.map(|c| i64::from_le_bytes(word(c))).collect::<Vec<_>>(), dims, device)?,
        Kind::U1 => Tensor::from_vec(data.to_vec(), dims, device)?,
        Kind::B1 => {
            if let Some(v) = data.iter().find(|&&b| b > 1) {
                return Err(bad(format!("bool element {v} is neither 0 nor 1 (corrupt file)")));
            }
            Tensor::from_vec(data.iter().map(|&b| b == 1).collect::<Vec<_>>(), dims, device)?
        }
    })
}

/// Reads a `.npy` file.
///
/// # Errors
/// `Io` naming the file; `Format` as [`parse_npy`].
pub fn read_npy(path: impl AsRef<Path>, device: Device) -> Result<Tensor> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy(&bytes, &path.display().to_string(), device)
}

/// The `.npy` bytes of a tensor (format 1.0, little-endian, C order, header padded to 64 bytes
/// as NumPy pads it).
///
/// # Errors
/// `Format` for float16/bfloat16 tensors, which `.npy` writing does not support here.
pub fn npy_bytes(tensor: &Tensor) -> Result<Vec<u8>> {
    let t = tensor.detach();
    let (descr, data): (&str, Vec<u8>) = match t.dtype() {
        DType::F32 => ("<f4", t.to_vec::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::U8 => ("|u1", t.to_vec::<u8>()?),
        DType::I64 => ("<i8", t.to_vec::<i64>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::I32 => ("<i4", t.to_vec::<i32>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::Bool => ("|b1", t.to_vec::<bool>()?.into_iter().map(u8::from).collect()),
        other => return Err(Error::format("write_npy", format!("expected a float32, uint8, int32, int64 or bool tensor, got {other:?}"))),
    };
    let shape = match t.dims() {
        [d] => format!("({d},)"),
        dims => format!("({})", dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // NumPy pads with spaces so that the data starts on a 64-byte boundary, then a newline.
    while !(MAGIC.len() + 4 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([1, 0]);
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    Ok(out)
}

/// Writes a tensor as a `.npy` file (atomically: a failed write leaves no partial file).
///
/// # Errors
/// As [`npy_bytes`]; `Core` when the file cannot be written.
pub fn write_npy(path: impl AsRef<Path>, tensor: &Tensor) -> Result<()> {
    fovea_core::io::write_atomic(path, &npy_bytes(tensor)?)?;
    Ok(())
}

/// Parses the bytes of an `.npz` archive into its arrays, in archive order, named without the
/// `.npy` suffix (as `np.load(...).files` names them). Entries are inflated one at a time,
/// each parsed before the next is inflated, within the global decompression limit
/// ([`fovea_core::io::limit::max_decompressed_bytes`]).
///
/// # Errors
/// `Format` naming `what` (and the entry) for a file that is not a zip, a truncated archive, a
/// compression other than stored/deflate, a CRC mismatch, or a bad `.npy` inside; `Limit`
/// naming both for an entry that inflates past its declared size or the limit.
pub fn parse_npz(bytes: &[u8], what: &str, device: Device) -> Result<Vec<(String, Tensor)>> {
    parse_npz_with_limit(bytes, what, device, crate::error::decompression_limit()?)
}

/// [`parse_npz`] inflating at most `limit` bytes in all.
///
/// # Errors
/// As [`parse_npz`].
pub fn parse_npz_with_limit(bytes: &[u8], what: &str, device: Device, limit: u64) -> Result<Vec<(String, Tensor)>> {
    let zip_error = |e| match e {
        ZipError::NotZip => Error::format(what, "not an .npz (zip) archive, or a truncated one: no end-of-central-directory record"),
        ZipError::Directory(detail) => Error::format(what, detail),
        ZipError::Entry { name, detail } => Error::format(format!("{what}:{name}"), detail),
        ZipError::Limit(limit) => Error::Limit(limit.in_file(what)),
    };
    entries(bytes, limit)
        .map_err(zip_error)?
        .map(|entry| {
            let (name, data) = entry.map_err(zip_error)?;
            let array = parse_npy(&data, &format!("{what}:{name}"), device)?;
            Ok((name.strip_suffix(".npy").unwrap_or(&name).to_string(), array))
        })
        .collect()
}

/// Reads an `.npz` archive (see [`parse_npz`]).
///
/// # Errors
/// `Io` naming the file; `Format` as [`parse_npz`].
pub fn read_npz(path: impl AsRef<Path>, device: Device) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npz(&bytes, &path.display().to_string(), device)
}
