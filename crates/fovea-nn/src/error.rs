//! The error type of the layers-and-models crate.

/// What can go wrong while building, calling or training a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed (shapes, dtypes, arguments).
    #[error(transparent)]
    Core(#[from] fovea_core::Error),
    /// A layer received input it cannot handle, named with the layer's name.
    #[error("{layer}: {msg}")]
    Layer {
        /// The layer's name, e.g. `conv2d_1`.
        layer: String,
        /// What was expected and what was received.
        msg: String,
    },
    /// A configuration value is invalid (unknown name, out-of-range parameter).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A compressed input inflates past the size its container declares or past the
    /// decompression limit, or the limit's setting is malformed ([`fovea_core::io::limit`]);
    /// the message names the file and the entry or dataset.
    #[error(transparent)]
    Limit(#[from] fovea_core::io::limit::LimitError),
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::Layer`].
    pub fn layer(layer: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Layer { layer: layer.into(), msg: msg.into() }
    }
}

/// The global decompression limit ([`fovea_core::io::limit::max_decompressed_bytes`]).
pub(crate) fn decompression_limit() -> Result<u64> {
    Ok(fovea_core::io::limit::max_decompressed_bytes()?)
}
