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
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn format(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Format { what: what.into(), detail: detail.into() }
    }
}
