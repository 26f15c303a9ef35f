//! The record framing that TFRecord files and TensorBoard event files share, with the CRC32C
//! (Castagnoli) checksum it uses.
//!
//! A record is `u64 length (LE) | u32 masked_crc32c(length bytes) | data | u32 masked_crc32c(data)`.
//! The checksums are masked (rotated and offset) because a CRC of data that itself contains CRCs
//! is weak; TensorFlow's `crc32c::Mask` defines the rotation.

use std::io::{Read, Write};

/// The CRC32C (Castagnoli) of `data`; `crc32c(b"123456789") == 0xE306_9283`. The `crc32c` crate
/// uses the SSE4.2 / ARMv8 CRC instructions: the record reader checks every byte it reads.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// TensorFlow's masked CRC32C: the CRC rotated right by 15 bits plus `0xa282ead8`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c(data);
    c.rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// Appends one framed record holding `data` to `out`.
pub fn encode_record(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// Writes one framed record holding `data`.
///
/// # Errors
/// The writer's I/O error.
pub fn write_record(w: &mut (impl Write + ?Sized), data: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(data.len() + 16);
    encode_record(data, &mut buf);
    w.write_all(&buf)
}

/// Why a record could not be read. Offsets count bytes of the (decompressed) record stream from
/// its start, at the beginning of the faulty record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The underlying reader failed.
    #[error("I/O error at byte offset {offset}: {source}")]
    Io {
        /// Where the failing record starts.
        offset: u64,
        /// The OS (or decompressor) error.
        source: std::io::Error,
    },
    /// The stream ended inside a record.
    #[error("truncated record at byte offset {offset}: expected {expected} bytes of {part}, got {got}")]
    Truncated {
        /// Where the truncated record starts.
        offset: u64,
        /// Which part was cut: `length`, `length CRC`, `data` or `data CRC`.
        part: &'static str,
        /// Bytes the part needs.
        expected: u64,
        /// Bytes that were left.
        got: u64,
    },
    /// A checksum does not match its bytes.
    #[error("corrupt record at byte offset {offset}: {part} CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    CrcMismatch {
        /// Where the corrupt record starts.
        offset: u64,
        /// `length` or `data`.
        part: &'static str,
        /// The masked CRC in the file.
        stored: u32,
        /// The masked CRC of the bytes read.
        computed: u32,
    },
    /// A record's length exceeds the reader's limit
    /// ([`RecordReader::with_max_record_bytes`]); nothing was allocated for it.
    #[error("{0}")]
    TooLarge(crate::io::limit::LimitError),
}

impl RecordError {
    /// Whether reading can go on after this error: only a bad data CRC leaves the framing (the
    /// verified length) intact, so the next record can still be found.
    pub fn is_resumable(&self) -> bool {
        matches!(self, RecordError::CrcMismatch { part: "data", .. })
    }
}

/// Reads framed records one after another, tracking the byte offset for error messages.
pub struct RecordReader<R> {
    inner: R,
    offset: u64,
    max_record_bytes: u64,
}

/// Reads up to `buf.len()` bytes, stopping early only at the end of the stream.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> RecordReader<R> {
    /// Reads records from `inner` (already decompressed), starting at offset 0, with no limit on
    /// a record's length other than the bytes present.
    pub fn new(inner: R) -> Self {
        RecordReader { inner, offset: 0, max_record_bytes: u64::MAX }
    }

    /// Refuses records longer than `limit` bytes ([`RecordError::TooLarge`]) before reading
    /// them: a decompressed stream (GZIP) can hold a record far larger than its file.
    pub fn with_max_record_bytes(mut self, limit: u64) -> Self {
        self.max_record_bytes = limit;
        self
    }

    /// The byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn part(&mut self, start: u64, buf: &mut [u8], part: &'static str) -> Result<(), RecordError> {
        let got = read_full(&mut self.inner, buf).map_err(|source| RecordError::Io { offset: start, source })?;
        self.offset += got as u64;
        if got < buf.len() {
            return Err(RecordError::Truncated { offset: start, part, expected: buf.len() as u64, got: got as u64 });
        }
        Ok(())
    }

    /// The next record's data, or `None` at a clean end of the stream.
    ///
    /// # Errors
    /// [`RecordError::Truncated`] when the stream ends inside a record, [`RecordError::CrcMismatch`]
    /// for a bad checksum (after a bad data CRC the reader is positioned at the next record), and
    /// [`RecordError::Io`] for reader failures.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, RecordError> {
        let start = self.offset;
        let mut header = [0u8; 12];
        let got = read_full(&mut self.inner, &mut header).map_err(|source| RecordError::Io { offset: start, source })?;
        self.offset += got as u64;
        if got == 0 {
            return Ok(None);
        }
        if got < 8 {
            return Err(RecordError::Truncated { offset: start, part: "length", expected: 8, got: got as u64 });
        }
        if got < 12 {
            return Err(RecordError::Truncated { offset: start, part: "length CRC", expected: 4, got: got as u64 - 8 });
        }
        let len_bytes: [u8; 8] = header[..8].try_into().expect("8 bytes");
        let stored = u32::from_le_bytes(header[8..].try_into().expect("4 bytes"));
        let computed = masked_crc32c(&len_bytes);
        if stored != computed {
            return Err(RecordError::CrcMismatch { offset: start, part: "length", stored, computed });
        }
        let len = u64::from_le_bytes(len_bytes);
        crate::io::limit::check_declared(|| format!("the record at byte offset {start}"), len, self.max_record_bytes)
            .map_err(RecordError::TooLarge)?;
        // The length is checksummed, but a huge one can still come from a hostile file: read it
        // through `take` so memory grows only with the bytes actually present.
        let mut data = Vec::new();
        let got = (&mut self.inner).take(len).read_to_end(&mut data).map_err(|source| RecordError::Io { offset: start, source })? as u64;
        self.offset += got;
        if got < len {
            return Err(RecordError::Truncated { offset: start, part: "data", expected: len, got });
        }
        let mut crc_bytes = [0u8; 4];
        self.part(start, &mut crc_bytes, "data CRC")?;
        let stored = u32::from_le_bytes(crc_bytes);
        let computed = masked_crc32c(&data);
        if stored != computed {
            return Err(RecordError::CrcMismatch { offset: start, part: "data", stored, computed });
        }
        Ok(Some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_check_values() {
        // The standard "check" value of CRC32C, and TF's mask applied to them by hand:
        // rotr(0xE3069283, 15) = 0x2507C60D, + 0xA282EAD8 = 0xC78AB0E5.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    fn stream(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            encode_record(r, &mut out);
        }
        out
    }

    #[test]
    fn records_round_trip_with_offsets() {
        let bytes = stream(&[b"abc", b"", b"hello world"]);
        assert_eq!(bytes.len(), 3 * 16 + 3 + 11);
        let mut r = RecordReader::new(bytes.as_slice());
        assert_eq!(r.next_record().unwrap().unwrap(), b"abc");
        assert_eq!(r.offset(), 19);
        assert_eq!(r.next_record().unwrap().unwrap(), b"");
        assert_eq!(r.next_record().unwrap().unwrap(), b"hello world");
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn a_flipped_data_byte_is_a_resumable_crc_error_at_the_record_offset() {
        let mut bytes = stream(&[b"abc", b"defg", b"h"]);
        bytes[19 + 12 + 1] ^= 0x01;
        let mut r = RecordReader::new(bytes.as_slice());
        r.next_record().unwrap();
        let err = r.next_record().unwrap_err();
        assert!(err.is_resumable());
        assert!(err.to_string().starts_with("corrupt record at byte offset 19: data CRC mismatch"), "{err}");
        assert_eq!(r.next_record().unwrap().unwrap(), b"h");
    }

    #[test]
    fn a_flipped_length_byte_is_not_resumable() {
        let mut bytes = stream(&[b"abc"]);
        bytes[0] ^= 0x04;
        let err = RecordReader::new(bytes.as_slice()).next_record().unwrap_err();
        assert!(!err.is_resumable());
        assert!(err.to_string().contains("byte offset 0: length CRC mismatch"), "{err}");
    }

    #[test]
    fn truncation_names_the_part_and_the_missing_bytes() {
        let bytes = stream(&[b"abc", b"defg"]);
        let cases = [
            (19 + 5, "expected 8 bytes of length, got 5"),
            (19 + 14, "expected 4 bytes of data, got 2"),
            (bytes.len() - 1, "expected 4 bytes of data CRC, got 3"),
        ];
        for (cut, msg) in cases {
            let mut r = RecordReader::new(&bytes[..cut]);
            r.next_record().unwrap();
            let err = r.next_record().unwrap_err().to_string();
            assert_eq!(err, format!("truncated record at byte offset 19: {msg}"));
        }
    }
}
