//! Bounded decompression: every decompressing reader in Fovea (ZIP entries of `.keras` and
//! `.npz` files, gzip IDX and TFRecord files, `.tar.gz` archives, deflate chunks in HDF5, PNG
//! pixels) stops at the size its container declares and at a global limit, so a small hostile
//! file cannot make Fovea allocate gigabytes.
//!
//! The limit is [`DEFAULT_MAX_DECOMPRESSED_BYTES`] (4 GiB) unless the environment variable
//! [`ENV_VAR`] (`FOVEA_MAX_DECOMPRESSED_BYTES`) says otherwise; readers that take an explicit
//! limit use the environment only as their default ([`max_decompressed_bytes`]).
//!
//! ```
//! use fovea_core::io::limit::{BoundedReader, LimitError};
//! use std::io::Read;
//!
//! let mut out = Vec::new();
//! let err = BoundedReader::new(&[0u8; 100][..], "bomb.gz", 64).read_to_end(&mut out).unwrap_err();
//! assert_eq!(
//!     LimitError::from_io(&err).unwrap().to_string(),
//!     "bomb.gz inflates past the decompression limit of 64 bytes (set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)"
//! );
//! ```

use std::io::{self, Read};

/// The environment variable that overrides [`DEFAULT_MAX_DECOMPRESSED_BYTES`]: a byte count,
/// optionally with a binary suffix (`K`, `M`, `G`, `T`, also written `KiB`, `MB`, ...; all
/// powers of 1024), e.g. `8GiB` or `536870912`.
pub const ENV_VAR: &str = "FOVEA_MAX_DECOMPRESSED_BYTES";

/// The global limit on the bytes one decompressed input may produce when [`ENV_VAR`] is unset:
/// 4 GiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 4 << 30;

/// Why a decompressing reader stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The stream produced more bytes than its container declares (a ZIP entry's uncompressed
    /// size, an IDX header's dimensions): a corrupt or hostile file.
    #[error("{what} inflates past its declared {}", fmt_bytes(*declared))]
    PastDeclared {
        /// The file or entry, e.g. `model.keras: entry "model.weights.h5"`.
        what: String,
        /// The size the container declares.
        declared: u64,
    },
    /// A declared size, or a stream that declares none, exceeds the global limit.
    #[error(
        "{what} {} the decompression limit of {} (set {ENV_VAR} to raise it)",
        match size { Some(s) => format!("declares {}, over", fmt_bytes(*s)), None => "inflates past".to_string() },
        fmt_bytes(*limit)
    )]
    OverLimit {
        /// The file or entry.
        what: String,
        /// The size the container declares; `None` for a stream that declares none (gzip).
        size: Option<u64>,
        /// The limit in force.
        limit: u64,
    },
    /// [`ENV_VAR`] holds something that is not a byte count.
    #[error("{ENV_VAR}: expected a byte count such as 4294967296, 4GiB or 512MiB, got {0:?}")]
    BadSetting(String),
}

impl LimitError {
    /// The limit error carried by an I/O error from a [`BoundedReader`] (possibly passed on by
    /// a decoder that wraps it), if that is what it is.
    pub fn from_io(e: &io::Error) -> Option<&LimitError> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<LimitError>())
    }

    /// The same error with `file: ` put before the name of what exceeded (an entry of an
    /// archive gets its archive's name this way).
    pub fn in_file(self, file: &str) -> Self {
        match self {
            LimitError::PastDeclared { what, declared } => LimitError::PastDeclared { what: format!("{file}: {what}"), declared },
            LimitError::OverLimit { what, size, limit } => LimitError::OverLimit { what: format!("{file}: {what}"), size, limit },
            e @ LimitError::BadSetting(_) => e,
        }
    }

    /// This error as an I/O error (kind `InvalidData`), for use inside `Read` implementations.
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// Describes an I/O error from a bounded stream: the limit's own message when the limit
/// stopped it, else `context: error` (e.g. `corrupt gzip stream: invalid gzip header`).
pub fn describe_io(e: &io::Error, context: &str) -> String {
    match LimitError::from_io(e) {
        Some(limit) => limit.to_string(),
        None => format!("{context}: {e}"),
    }
}

/// Parses a byte count: digits, optionally followed by `K`, `M`, `G` or `T` (with an optional
/// `i` and `B`; all powers of 1024) or `B`. `None` for anything else, zero, or an overflow.
pub fn parse_byte_count(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let unit = s[digits..].trim().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift).filter(|&v| v > 0)
}

/// The global limit: [`ENV_VAR`] when set, else [`DEFAULT_MAX_DECOMPRESSED_BYTES`].
///
/// # Errors
/// [`LimitError::BadSetting`] when the variable is set but is not a positive byte count.
pub fn max_decompressed_bytes() -> Result<u64, LimitError> {
    match std::env::var(ENV_VAR) {
        Ok(v) => parse_byte_count(&v).ok_or(LimitError::BadSetting(v)),
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_MAX_DECOMPRESSED_BYTES),
        Err(std::env::VarError::NotUnicode(v)) => Err(LimitError::BadSetting(v.to_string_lossy().into_owned())),
    }
}

/// A byte count for messages: `4 GiB` for a whole number (under 1024) of binary units, else
/// `1,234 bytes`.
pub fn fmt_bytes(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) && n >> shift < 1024 {
            return format!("{} {unit}", n >> shift);
        }
    }
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out} {}", if n == 1 { "byte" } else { "bytes" })
}

/// Checks a size that a container declares (an HDF5 dataset's shape × dtype, a PNG's
/// width × height × channels) against `limit` before anything is allocated for it.
///
/// # Errors
/// [`LimitError::OverLimit`] naming `what`, the size and the limit.
pub fn check_declared(what: impl FnOnce() -> String, size: u64, limit: u64) -> Result<(), LimitError> {
    if size > limit {
        return Err(LimitError::OverLimit { what: what(), size: Some(size), limit });
    }
    Ok(())
}

/// A `Read` adapter that fails, with a [`LimitError`] inside an `InvalidData` I/O error, once
/// more bytes come out of `inner` than its container declares or than the limit allows. Wrap
/// the decompressor's output in it; errors name `what`.
#[derive(Debug)]
pub struct BoundedReader<R> {
    inner: R,
    what: String,
    declared: Option<u64>,
    limit: u64,
    read: u64,
}

impl<R: Read> BoundedReader<R> {
    /// Bounds `inner` by `limit` bytes; `what` names the file or entry in errors.
    pub fn new(inner: R, what: impl Into<String>, limit: u64) -> Self {
        BoundedReader { inner, what: what.into(), declared: None, limit, read: 0 }
    }

    /// Also bounds the stream by the size its container declares.
    ///
    /// # Errors
    /// [`LimitError::OverLimit`] when the declared size itself exceeds the limit.
    pub fn with_declared(mut self, declared: u64) -> Result<Self, LimitError> {
        check_declared(|| self.what.clone(), declared, self.limit)?;
        self.declared = Some(declared);
        Ok(self)
    }

    /// The most bytes this reader lets through.
    pub fn cap(&self) -> u64 {
        self.declared.map_or(self.limit, |d| d.min(self.limit))
    }

    /// The bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn error(&self) -> io::Error {
        match self.declared {
            Some(declared) if declared <= self.limit => LimitError::PastDeclared { what: self.what.clone(), declared },
            _ => LimitError::OverLimit { what: self.what.clone(), size: None, limit: self.limit },
        }
        .into_io()
    }

    /// Reads the whole stream into a vector, reserving at most `min(declared size, limit,
    /// reserve_hint)` bytes up front (pass an upper bound the input implies, e.g. 1032 × the
    /// compressed size for deflate); the vector grows only as bytes arrive.
    ///
    /// # Errors
    /// The limit's error or the inner reader's, as an I/O error.
    pub fn read_all(mut self, reserve_hint: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let want = usize::try_from(self.cap().min(reserve_hint)).unwrap_or(usize::MAX);
        // Only a hint: when the allocator refuses, reading goes on with a growing vector.
        let _ = out.try_reserve_exact(want);
        self.read_to_end(&mut out)?;
        Ok(out)
    }
}

impl<R: Read> Read for BoundedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let cap = self.cap();
        if self.read > cap {
            return Err(self.error());
        }
        // One byte past the cap is let through to tell "exactly the cap" from "more".
        let room = usize::try_from((cap - self.read).saturating_add(1)).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        let got = self.inner.read(&mut buf[..n])?;
        self.read += got as u64;
        if self.read > cap {
            return Err(self.error());
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_and_print() {
        assert_eq!(parse_byte_count("4294967296"), Some(4 << 30));
        assert_eq!(parse_byte_count("4GiB"), Some(4 << 30));
        assert_eq!(parse_byte_count(" 512 MiB "), Some(512 << 20));
        assert_eq!(parse_byte_count("64k"), Some(64 << 10));
        assert_eq!(parse_byte_count("2T"), Some(2 << 40));
        for bad in ["", "0", "-1", "1.5G", "4 gigs", "GiB", "99999999999999999999", "20000000T"] {
            assert_eq!(parse_byte_count(bad), None, "{bad}");
        }
        assert_eq!(fmt_bytes(4 << 30), "4 GiB");
        assert_eq!(fmt_bytes(1234), "1,234 bytes");
        assert_eq!(fmt_bytes(1_234_567_890), "1,234,567,890 bytes");
        assert_eq!(fmt_bytes(999), "999 bytes");
        assert_eq!(fmt_bytes(1), "1 byte");
        assert_eq!(fmt_bytes(3 << 20), "3 MiB");
        assert_eq!(fmt_bytes(1200 << 10), "1,228,800 bytes");
        assert_eq!(fmt_bytes(1 << 50), "1,125,899,906,842,624 bytes");
        let e = LimitError::BadSetting("lots".into()).to_string();
        assert_eq!(e, "FOVEA_MAX_DECOMPRESSED_BYTES: expected a byte count such as 4294967296, 4GiB or 512MiB, got \"lots\"");
    }

    #[test]
    fn streams_stop_at_the_declared_size_and_at_the_limit() {
        let data = vec![7u8; 1000];
        // Exactly the declared size and exactly the limit both pass.
        assert_eq!(BoundedReader::new(&data[..], "x", 1000).read_all(u64::MAX).unwrap().len(), 1000);
        let r = BoundedReader::new(&data[..], "x", 5000).with_declared(1000).unwrap();
        assert_eq!(r.read_all(10).unwrap(), data);
        // One byte more than declared.
        let r = BoundedReader::new(&data[..], "a.zip: entry \"w\"", 5000).with_declared(999).unwrap();
        let e = r.read_all(u64::MAX).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(LimitError::from_io(&e), Some(&LimitError::PastDeclared { what: "a.zip: entry \"w\"".into(), declared: 999 }));
        assert_eq!(e.to_string(), "a.zip: entry \"w\" inflates past its declared 999 bytes");
        // A stream without a declared size, one byte over the limit.
        let e = BoundedReader::new(&data[..], "t.gz", 999).read_all(0).unwrap_err();
        assert_eq!(
            describe_io(&e, "corrupt"),
            "t.gz inflates past the decompression limit of 999 bytes (set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)"
        );
        // A declared size over the limit is refused before reading.
        let e = BoundedReader::new(&data[..], "m.keras: entry \"model.weights.h5\"", 1 << 30).with_declared(8 << 30).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.keras: entry \"model.weights.h5\" declares 8 GiB, over the decompression limit of 1 GiB \
             (set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)"
        );
        // Other I/O errors keep their context.
        let other = io::Error::other("bad header");
        assert_eq!(describe_io(&other, "corrupt gzip stream"), "corrupt gzip stream: bad header");
    }

    #[test]
    fn an_endless_stream_is_cut_off_at_the_limit() {
        let mut r = BoundedReader::new(io::repeat(0), "zeros", 1 << 20);
        let mut sink = Vec::new();
        let e = r.read_to_end(&mut sink).unwrap_err();
        assert!(matches!(LimitError::from_io(&e), Some(LimitError::OverLimit { size: None, limit: 1048576, .. })));
        assert_eq!(r.bytes_read(), (1 << 20) + 1);
        assert!(sink.len() <= 1 << 20, "{}", sink.len());
    }
}
