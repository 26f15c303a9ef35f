//! The few bytes of the ZIP format that `torch.save` archives need: the central directory
//! (with its ZIP64 extension) and *stored* entries. PyTorch writes every entry uncompressed so
//! that storages can be memory-mapped, hence no inflater — a compressed entry is refused.

use crate::{Error, Result};
use fovea_core::io::limit::{fmt_bytes, BoundedReader, LimitError};

/// One file inside the archive.
#[derive(Clone, Debug)]
pub struct ZipEntry {
    /// The path inside the archive, e.g. `archive/data.pkl`.
    pub name: String,
    method: u16,
    size: u64,
    local_offset: u64,
}

/// A ZIP archive held in memory.
pub struct ZipArchive<'a> {
    bytes: &'a [u8],
    /// Every entry, in central-directory order.
    pub entries: Vec<ZipEntry>,
    what: String,
}

// Offsets come from the file, so `at + n` may overflow (found by fuzz/torch_pickle): such a
// field reads as missing.
fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at.checked_add(2)?).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?).map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at.checked_add(8)?).map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

const EOCD: u32 = 0x0605_4b50;
const EOCD64_LOCATOR: u32 = 0x0706_4b50;
const EOCD64: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;

impl<'a> ZipArchive<'a> {
    /// Parses the central directory of `bytes`; `what` names the file in errors.
    ///
    /// # Errors
    /// `Config` naming `what` when the bytes are not a ZIP archive or are truncated.
    pub fn new(bytes: &'a [u8], what: &str) -> Result<Self> {
        let bad = |msg: &str| Error::Config(format!("{what}: corrupt or truncated zip archive ({msg})"));
        // The end-of-central-directory record sits in the last 22 + 65,535 (comment) bytes.
        let lo = bytes.len().saturating_sub(22 + 65_535);
        let eocd = (lo..bytes.len().saturating_sub(21))
            .rev()
            .find(|&i| u32_at(bytes, i) == Some(EOCD))
            .ok_or_else(|| bad("no end-of-central-directory record"))?;
        let mut count = u64::from(u16_at(bytes, eocd + 10).ok_or_else(|| bad("short record"))?);
        let mut cd_offset = u64::from(u32_at(bytes, eocd + 16).ok_or_else(|| bad("short record"))?);
        if eocd >= 20 && u32_at(bytes, eocd - 20) == Some(EOCD64_LOCATOR) {
            let rec = u64_at(bytes, eocd - 12).ok_or_else(|| bad("short ZIP64 locator"))? as usize;
            if u32_at(bytes, rec) != Some(EOCD64) {
                return Err(bad("bad ZIP64 end record"));
            }
            count = u64_at(bytes, rec + 32).ok_or_else(|| bad("short ZIP64 record"))?;
            cd_offset = u64_at(bytes, rec + 48).ok_or_else(|| bad("short ZIP64 record"))?;
        }
        let mut entries = Vec::new();
        let mut at = usize::try_from(cd_offset).map_err(|_| bad("central directory offset"))?;
        for _ in 0..count {
            if u32_at(bytes, at) != Some(CENTRAL) {
                return Err(bad("bad central-directory entry"));
            }
            let field = |off: usize| u32_at(bytes, at + off).ok_or_else(|| bad("short central-directory entry"));
            let method = u16_at(bytes, at + 10).ok_or_else(|| bad("short entry"))?;
            let mut size = u64::from(field(24)?);
            let mut local_offset = u64::from(field(42)?);
            let name_len = usize::from(u16_at(bytes, at + 28).ok_or_else(|| bad("short entry"))?);
            let extra_len = usize::from(u16_at(bytes, at + 30).ok_or_else(|| bad("short entry"))?);
            let comment_len = usize::from(u16_at(bytes, at + 32).ok_or_else(|| bad("short entry"))?);
            let name = bytes.get(at + 46..at + 46 + name_len).ok_or_else(|| bad("short entry name"))?;
            let name = String::from_utf8_lossy(name).into_owned();
            let extra = bytes.get(at + 46 + name_len..at + 46 + name_len + extra_len).ok_or_else(|| bad("short extra field"))?;
            Self::zip64_extra(extra, field(20)?, &mut size, &mut local_offset);
            entries.push(ZipEntry { name, method, size, local_offset });
            at += 46 + name_len + extra_len + comment_len;
        }
        Ok(ZipArchive { bytes, entries, what: what.to_string() })
    }

    /// Applies a ZIP64 extended-information field: the 64-bit sizes and offset replace the
    /// 32-bit ones that read `0xFFFFFFFF`, in the order the specification lists them.
    fn zip64_extra(extra: &[u8], compressed: u32, size: &mut u64, offset: &mut u64) {
        let mut i = 0;
        while i + 4 <= extra.len() {
            let id = u16_at(extra, i).unwrap_or(0);
            let len = usize::from(u16_at(extra, i + 2).unwrap_or(0));
            if id == 1 {
                let mut at = i + 4;
                let mut next = |slot: &mut u64| {
                    if let Some(v) = u64_at(extra, at) {
                        *slot = v;
                        at += 8;
                    }
                };
                if *size == 0xFFFF_FFFF {
                    next(size);
                }
                let mut c = u64::from(compressed);
                if c == 0xFFFF_FFFF {
                    next(&mut c);
                }
                if *offset == 0xFFFF_FFFF {
                    next(offset);
                }
            }
            i += 4 + len;
        }
    }

    /// The entry whose path ends with `suffix` (PyTorch prefixes every path with the archive's
    /// own folder name, which varies).
    pub fn find(&self, suffix: &str) -> Option<&ZipEntry> {
        self.entries.iter().find(|e| e.name.ends_with(suffix))
    }

    /// The bytes of `entry`.
    ///
    /// # Errors
    /// `Config` for a compressed entry or one that runs past the end of the file.
    pub fn read(&self, entry: &ZipEntry) -> Result<&'a [u8]> {
        if entry.method != 0 {
            return Err(Error::Config(format!(
                "{}: entry {} is compressed (method {}); torch.save archives store entries uncompressed",
                self.what, entry.name, entry.method
            )));
        }
        let bad = || Error::Config(format!("{}: corrupt or truncated zip archive (entry {} runs past the end)", self.what, entry.name));
        let at = usize::try_from(entry.local_offset).map_err(|_| bad())?;
        if u32_at(self.bytes, at) != Some(LOCAL) {
            return Err(bad());
        }
        let name_len = usize::from(u16_at(self.bytes, at + 26).ok_or_else(bad)?);
        let extra_len = usize::from(u16_at(self.bytes, at + 28).ok_or_else(bad)?);
        let start = at + 30 + name_len + extra_len;
        let end = start.checked_add(usize::try_from(entry.size).map_err(|_| bad())?).ok_or_else(bad)?;
        self.bytes.get(start..end).ok_or_else(bad)
    }
}

/// Why [`read_entries`] could not read an archive; callers phrase it in their own terms
/// (`.npz`, `.keras`) and error types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZipError {
    /// No end-of-central-directory record: not a zip file, or one cut short.
    NotZip,
    /// The central directory is damaged (what is wrong).
    Directory(String),
    /// One entry is damaged, truncated, or compressed with an unsupported method.
    Entry {
        /// The entry's name in the archive.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
    /// An entry inflates past its declared size, or the archive past the decompression limit;
    /// the error names the entry (`entry "model.weights.h5" ...`), callers prefix the file.
    Limit(LimitError),
}

/// A little-endian u16 at `at`; callers have bounds-checked the record it belongs to.
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// A little-endian u32 at `at`; callers have bounds-checked the record it belongs to.
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// DEFLATE expands at most about 1032:1, so no honest entry needs more room than this.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// The entries of a zip archive one at a time (see [`entries`]): each is inflated only when
/// the iterator reaches it, so a caller that turns entries into tensors holds one inflated
/// entry at a time.
pub struct Entries<'a> {
    bytes: &'a [u8],
    left: usize,
    at: usize,
    limit: u64,
    inflated: u64,
    failed: bool,
}

/// Iterates over the entries of a zip archive, `(name, contents)` in archive order,
/// decompressed (stored or deflate) and checked against their CRC-32 and size, so a damaged
/// archive is refused rather than half-read. Zip64 sizes and offsets in the entries' extra
/// fields are honoured. Used by `.keras` files and NumPy's `.npz`; [`ZipArchive`] instead
/// borrows stored entries in place for `torch.save` archives, whose tensors can be large.
///
/// Inflating is bounded: a deflated entry stops at its declared uncompressed size, and the
/// deflated entries together stop at `limit` bytes (a declared size that does not fit is
/// refused before inflating); see [`fovea_core::io::limit`] for the default limit.
///
/// # Errors
/// [`ZipError::NotZip`] here; then, per entry, [`ZipError`] saying which part is damaged or
/// which entry exceeded what (the iterator ends after an error).
pub fn entries(bytes: &[u8], limit: u64) -> std::result::Result<Entries<'_>, ZipError> {
    // The end-of-central-directory record sits in the last 22 + 65,535 (comment) bytes.
    let lo = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (lo..bytes.len().saturating_sub(21)).rev().find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06]).ok_or(ZipError::NotZip)?;
    let left = le16(bytes, eocd + 10) as usize;
    let at = le32(bytes, eocd + 16) as usize;
    Ok(Entries { bytes, left, at, limit, inflated: 0, failed: false })
}

/// Every entry of a zip archive at once (as [`entries`], collected).
///
/// # Errors
/// As [`entries`].
pub fn read_entries(bytes: &[u8], limit: u64) -> std::result::Result<Vec<(String, Vec<u8>)>, ZipError> {
    entries(bytes, limit)?.collect()
}

impl Iterator for Entries<'_> {
    type Item = std::result::Result<(String, Vec<u8>), ZipError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = self.next_entry();
        self.failed = item.is_err();
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(if self.failed { 0 } else { self.left }))
    }
}

impl Entries<'_> {
    fn next_entry(&mut self) -> std::result::Result<(String, Vec<u8>), ZipError> {
        let (bytes, at) = (self.bytes, self.at);
        let bad = ZipError::Directory;
        if bytes.get(at..at.saturating_add(46)).is_none_or(|h| h[..4] != [0x50, 0x4b, 0x01, 0x02]) {
            return Err(bad(format!("corrupt zip central directory at byte {at}")));
        }
        let method = le16(bytes, at + 10);
        let crc = le32(bytes, at + 16);
        let (mut csize, mut usize_, mut offset) = (le32(bytes, at + 20) as u64, le32(bytes, at + 24) as u64, le32(bytes, at + 42) as u64);
        let (nlen, xlen, clen) = (le16(bytes, at + 28) as usize, le16(bytes, at + 30) as usize, le16(bytes, at + 32) as usize);
        let name_bytes = bytes.get(at + 46..at + 46 + nlen).ok_or_else(|| bad("truncated zip central directory".into()))?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        // Zip64: sizes and offsets of 0xFFFFFFFF live in the extra field (id 1), in this order.
        let mut extra = bytes.get(at + 46 + nlen..at + 46 + nlen + xlen).ok_or_else(|| bad("truncated zip central directory".into()))?;
        while extra.len() >= 4 {
            let (id, len) = (le16(extra, 0), le16(extra, 2) as usize);
            let body = extra.get(4..4 + len).unwrap_or(&[]);
            if id == 1 {
                let mut vals = body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")));
                for v in [&mut usize_, &mut csize, &mut offset] {
                    if *v == 0xFFFF_FFFF {
                        *v = vals.next().ok_or_else(|| bad(format!("{name}: incomplete zip64 sizes")))?;
                    }
                }
            }
            extra = extra.get(4 + len..).unwrap_or(&[]);
        }
        self.at += 46 + nlen + xlen + clen;
        let entry = |detail: String| ZipError::Entry { name: name.clone(), detail };
        let local = usize::try_from(offset).unwrap_or(usize::MAX);
        if bytes.get(local..local.saturating_add(30)).is_none_or(|h| h[..4] != [0x50, 0x4b, 0x03, 0x04]) {
            return Err(entry(format!("no local header at byte {local} (corrupt archive)")));
        }
        let data_at = local + 30 + le16(bytes, local + 26) as usize + le16(bytes, local + 28) as usize;
        let raw = bytes
            .get(data_at..data_at.saturating_add(usize::try_from(csize).unwrap_or(usize::MAX)))
            .ok_or_else(|| entry(format!("{csize} bytes of data announced, the archive ends first (truncated)")))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => self.inflate(raw, &name, usize_)?,
            m => return Err(entry(format!("compression method {m} is not supported (expected 0, stored, or 8, deflate)"))),
        };
        let mut sum = flate2::Crc::new();
        sum.update(&data);
        if data.len() as u64 != usize_ || sum.sum() != crc {
            return Err(entry(format!(
                "CRC-32 {:08x} / {} bytes, expected {crc:08x} / {usize_} bytes (corrupt archive)",
                sum.sum(),
                data.len()
            )));
        }
        Ok((name, data))
    }

    /// Inflates one deflated entry, stopping at its declared size and at what is left of the
    /// limit after the entries before it.
    fn inflate(&mut self, raw: &[u8], name: &str, declared: u64) -> std::result::Result<Vec<u8>, ZipError> {
        let total = self.inflated.saturating_add(declared);
        if total > self.limit {
            // The entry's own size when it alone is too large, else the running total.
            let (what, size) = match self.inflated {
                before if before > 0 && declared <= self.limit => {
                    (format!("entry {name:?} with the {} inflated from the entries before it", fmt_bytes(before)), total)
                }
                _ => (format!("entry {name:?}"), declared),
            };
            return Err(ZipError::Limit(LimitError::OverLimit { what, size: Some(size), limit: self.limit }));
        }
        let reader = BoundedReader::new(flate2::read::DeflateDecoder::new(raw), format!("entry {name:?}"), self.limit - self.inflated)
            .with_declared(declared)
            .map_err(ZipError::Limit)?;
        let data =
            reader.read_all((raw.len() as u64).saturating_mul(DEFLATE_MAX_RATIO).saturating_add(64)).map_err(
                |e| match LimitError::from_io(&e) {
                    Some(limit) => ZipError::Limit(limit.clone()),
                    None => ZipError::Entry { name: name.to_string(), detail: format!("corrupt deflate stream: {e}") },
                },
            )?;
        self.inflated += data.len() as u64;
        Ok(data)
    }
}
