//! The few bytes of the ZIP format that `torch.save` archives need: the central directory
//! (with its ZIP64 extension) and *stored* entries. PyTorch writes every entry uncompressed so
//! that storages can be memory-mapped, hence no inflater — a compressed entry is refused.

use crate::{Error, Result};

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

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
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
