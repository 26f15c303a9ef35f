//! The error type of the data crate.

use std::path::PathBuf;

/// What can go wrong while reading or fetching data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file's contents are not what its format requires.
    #[error("{what}: {detail}")]
    Format {
        /// The file or record.
        what: String,
        /// What was expected and what was found.
        detail: String,
    },
    /// A dataset is not on disk and could not be fetched.
    #[error("{0}")]
    Missing(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Core(#[from] fovea_core::Error),
    /// A compressed input inflates past the size its container declares or past the
    /// decompression limit, or the limit's setting is malformed ([`fovea_core::io::limit`]);
    /// the message names the file (and the entry or record).
    #[error(transparent)]
    Limit(#[from] fovea_core::io::limit::LimitError),
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// An I/O error from a decompressing stream read through a
    /// [`fovea_core::io::limit::BoundedReader`]: `Limit` when the limit stopped it, else
    /// `Format` naming `what` with `context` (e.g. `corrupt gzip stream`).
    pub(crate) fn stream(what: &str, context: &str, e: std::io::Error) -> Self {
        match fovea_core::io::limit::LimitError::from_io(&e) {
            Some(limit) => Error::Limit(limit.clone()),
            None => Error::format(what, format!("{context}: {e}")),
        }
    }

    pub(crate) fn format(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Format { what: what.into(), detail: detail.into() }
    }
}

/// The global decompression limit ([`fovea_core::io::limit::max_decompressed_bytes`]).
pub(crate) fn decompression_limit() -> Result<u64> {
    Ok(fovea_core::io::limit::max_decompressed_bytes()?)
}
