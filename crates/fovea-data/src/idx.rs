//! The IDX format of MNIST and Fashion-MNIST: a magic number (two zero bytes, a type code, the
//! rank), big-endian dimension sizes, then the raw elements. Gzipped files are recognised by
//! their own magic bytes and decompressed transparently.

use crate::{Error, Result};
use fovea_core::io::limit::BoundedReader;
use std::io::Read;
use std::path::Path;

/// The unsigned-byte element type code, the only one MNIST-style datasets use.
const TYPE_U8: u8 = 0x08;

/// An IDX array of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimension sizes, outermost first.
    pub dims: Vec<usize>,
    /// The elements in row-major order.
    pub data: Vec<u8>,
}

/// Parses an (uncompressed) IDX buffer of unsigned bytes; `what` names it in errors.
///
/// # Errors
/// `Format` for a bad magic number, an element type other than unsigned byte, or a length that
/// disagrees with the header (a truncated file).
pub fn parse_idx(bytes: &[u8], what: &str) -> Result<IdxArray> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::format(
            what,
            format!("not an IDX file: expected magic bytes 00 00 <type> <rank>, got {:02x?}", &bytes[..bytes.len().min(4)]),
        ));
    }
    if bytes[2] != TYPE_U8 {
        return Err(Error::format(what, format!("IDX element type 0x{:02x} is not supported (expected 0x08, unsigned byte)", bytes[2])));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(Error::format(what, format!("truncated header: {} bytes for a rank-{rank} IDX header of {header}", bytes.len())));
    }
    let dims: Vec<usize> =
        (0..rank).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize).collect();
    if let Some(axis) = dims.iter().position(|&d| d == 0) {
        // An empty array is never a dataset; accepting it only defers the failure to a reshape
        // deep in training that no longer names the file.
        return Err(Error::format(what, format!("dimension {axis} of {dims:?} is zero: the file holds no examples")));
    }
    let got = bytes.len() - header;
    // A checked product: [2^22, 2^21, 2^21] would otherwise wrap to 0 and match an empty body.
    let expected = fovea_core::checked_numel(&dims).ok_or_else(|| {
        Error::format(
            what,
            format!("header declares dimensions {dims:?}, more elements than can be addressed (file holds {got} bytes of data)"),
        )
    })?;
    if got != expected {
        return Err(Error::format(
            what,
            format!("header says {dims:?} = {expected} bytes of data, file holds {got} (truncated or corrupt)"),
        ));
    }
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

/// Reads an IDX file, gunzipping it first when it starts with the gzip magic bytes; the
/// stream is bounded as in [`gunzip_idx`] by the global decompression limit
/// ([`fovea_core::io::limit::max_decompressed_bytes`]).
///
/// # Errors
/// `Io` naming the file, `Format` as [`parse_idx`] (and for a corrupt gzip stream), `Limit` as
/// [`gunzip_idx`].
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    read_idx_with_limit(path, crate::error::decompression_limit()?)
}

/// [`read_idx`] with an explicit decompression limit.
///
/// # Errors
/// As [`read_idx`].
pub fn read_idx_with_limit(path: &Path, limit: u64) -> Result<IdxArray> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let what = path.display().to_string();
    if raw.starts_with(&[0x1f, 0x8b]) {
        return parse_idx(&gunzip_idx(&raw, &what, limit)?, &what);
    }
    parse_idx(&raw, &what)
}

/// Gunzips an IDX file incrementally: once its header is in, the stream stops at the size the
/// header declares (header + product of the dimensions) and, throughout, at `limit` bytes;
/// the buffer grows only as bytes arrive. A stream that is not IDX inside comes back as far
/// as the limit allows, for [`parse_idx`] to reject.
///
/// # Errors
/// `Limit` naming `what` when the stream inflates past the declared size or the limit, or the
/// header declares more than the limit; `Format` for a corrupt gzip stream.
pub fn gunzip_idx(gz: &[u8], what: &str, limit: u64) -> Result<Vec<u8>> {
    let corrupt = |e| Error::stream(what, "corrupt gzip stream", e);
    let mut reader = BoundedReader::new(flate2::read::GzDecoder::new(gz), what, limit);
    let mut out = Vec::new();
    (&mut reader).take(4).read_to_end(&mut out).map_err(corrupt)?;
    if out.len() == 4 && out[0] == 0 && out[1] == 0 {
        let rank = out[3] as u64;
        (&mut reader).take(4 * rank).read_to_end(&mut out).map_err(corrupt)?;
        if out.len() as u64 == 4 + 4 * rank {
            let elems = out[4..]
                .chunks_exact(4)
                .try_fold(1u64, |acc, d| acc.checked_mul(u32::from_be_bytes(d.try_into().expect("4 bytes")) as u64));
            let declared = elems.and_then(|n| n.checked_add(out.len() as u64)).unwrap_or(u64::MAX);
            reader = reader.with_declared(declared)?;
        }
    }
    // Only a hint: deflate expands at most about 1032:1.
    let hint = usize::try_from(reader.cap().min((gz.len() as u64).saturating_mul(1032))).unwrap_or(usize::MAX);
    let _ = out.try_reserve_exact(hint.saturating_sub(out.len()));
    reader.read_to_end(&mut out).map_err(corrupt)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn parses_and_rejects_with_reasons() {
        let a = parse_idx(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6]), "t").unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        let e = parse_idx(&idx(&[2, 3], &[1, 2, 3]), "train-images").unwrap_err().to_string();
        assert!(e.contains("train-images") && e.contains("6 bytes of data, file holds 3"), "{e}");
        let e = parse_idx(b"\x1f\x8b\x08\x00", "x").unwrap_err().to_string();
        assert!(e.contains("not an IDX file"), "{e}");
        let mut f = idx(&[1], &[0, 0, 0, 0]);
        f[2] = 0x0D;
        assert!(parse_idx(&f, "x").unwrap_err().to_string().contains("type 0x0d"));
    }

    #[test]
    fn overflowing_and_empty_headers_are_rejected() {
        // 16 bytes declaring 2^64 elements: an unchecked product wraps to 0 and "matches".
        let e = parse_idx(&idx(&[1 << 22, 1 << 21, 1 << 21], &[]), "huge.idx").unwrap_err().to_string();
        assert!(e.contains("huge.idx") && e.contains("more elements than can be addressed"), "{e}");
        let e = parse_idx(&idx(&[0, 28, 28], &[]), "empty-images").unwrap_err().to_string();
        assert!(e.contains("empty-images: dimension 0 of [0, 28, 28] is zero"), "{e}");
        let e = parse_idx(&idx(&[3, 0], &[]), "x").unwrap_err().to_string();
        assert!(e.contains("dimension 1 of [3, 0] is zero"), "{e}");
    }

    #[test]
    fn reads_gzipped_files() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("fovea-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("labels.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&idx(&[3], &[7, 8, 9])).unwrap();
        std::fs::write(&p, enc.finish().unwrap()).unwrap();
        assert_eq!(read_idx(&p).unwrap().data, vec![7, 8, 9]);
        std::fs::write(&p, [0x1f, 0x8b, 0x08, 0x00, 0x01]).unwrap();
        assert!(read_idx(&p).unwrap_err().to_string().contains("corrupt gzip stream"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
