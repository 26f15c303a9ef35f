//! The zip container of a `.keras` file: Keras writes `metadata.json`, `config.json` and
//! `model.weights.h5` stored (uncompressed); re-zipped files may use deflate. Zip64 sizes and
//! offsets are honoured; every entry's CRC-32 is checked, so a damaged archive is refused
//! rather than half-read.

use crate::{Error, Result};
use std::io::Read;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The entries of a zip archive, `(name, contents)` in archive order.
///
/// # Errors
/// `Config` naming `what` (and the entry) for a file that is not a zip, a truncated archive, a
/// compression other than stored/deflate, or a CRC mismatch.
pub fn read_zip(bytes: &[u8], what: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let bad = |detail: String| Error::Config(format!("{what}: {detail}"));
    // The end-of-central-directory record sits in the last 22 + 65,535 (comment) bytes.
    let lo = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (lo..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(|| bad("not a .keras (zip) archive, or a truncated one: no end-of-central-directory record".into()))?;
    let entries = u16_at(bytes, eocd + 10) as usize;
    let mut at = u32_at(bytes, eocd + 16) as usize;
    let mut out = Vec::with_capacity(entries);
    for _ in 0..entries {
        if bytes.get(at..at + 46).is_none_or(|h| h[..4] != [0x50, 0x4b, 0x01, 0x02]) {
            return Err(bad(format!("corrupt zip central directory at byte {at}")));
        }
        let method = u16_at(bytes, at + 10);
        let crc = u32_at(bytes, at + 16);
        let (mut csize, mut usize_, mut offset) =
            (u32_at(bytes, at + 20) as u64, u32_at(bytes, at + 24) as u64, u32_at(bytes, at + 42) as u64);
        let (nlen, xlen, clen) = (u16_at(bytes, at + 28) as usize, u16_at(bytes, at + 30) as usize, u16_at(bytes, at + 32) as usize);
        let name_bytes = bytes.get(at + 46..at + 46 + nlen).ok_or_else(|| bad("truncated zip central directory".into()))?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        // Zip64: sizes and offsets of 0xFFFFFFFF live in the extra field (id 1), in this order.
        let mut extra = bytes.get(at + 46 + nlen..at + 46 + nlen + xlen).ok_or_else(|| bad("truncated zip central directory".into()))?;
        while extra.len() >= 4 {
            let (id, len) = (u16_at(extra, 0), u16_at(extra, 2) as usize);
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
        at += 46 + nlen + xlen + clen;
        let entry = |detail: String| Error::Config(format!("{what}: entry {name:?}: {detail}"));
        let local = offset as usize;
        if bytes.get(local..local.saturating_add(30)).is_none_or(|h| h[..4] != [0x50, 0x4b, 0x03, 0x04]) {
            return Err(entry(format!("no local header at byte {local} (corrupt archive)")));
        }
        let data_at = local + 30 + u16_at(bytes, local + 26) as usize + u16_at(bytes, local + 28) as usize;
        let raw = bytes
            .get(data_at..data_at.saturating_add(csize as usize))
            .ok_or_else(|| entry(format!("{csize} bytes of data announced, the archive ends first (truncated)")))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut out = Vec::with_capacity(usize_.min(1 << 30) as usize);
                flate2::read::DeflateDecoder::new(raw).read_to_end(&mut out).map_err(|e| entry(format!("corrupt deflate stream: {e}")))?;
                out
            }
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
        out.push((name, data));
    }
    Ok(out)
}
