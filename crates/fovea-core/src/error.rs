//! The error type of the core crate: every fallible public function returns [`Result`].

use crate::{DType, Shape};

/// Everything that can go wrong in a tensor operation.
///
/// Each variant names the operation and says what was expected and what was received, so a user
/// can act on the message without reading Fovea's source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two shapes that must agree (or broadcast) do not.
    #[error("{op}: shape mismatch: expected {expected}, got {got}")]
    ShapeMismatch {
        /// The operation that failed.
        op: &'static str,
        /// What the operation needed, in words or as a shape.
        expected: String,
        /// The shape it received.
        got: String,
    },
    /// A tensor has the wrong number of dimensions.
    #[error("{op}: expected a tensor of rank {expected}, got shape {got}")]
    RankMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The rank (or ranks) the operation accepts, in words.
        expected: String,
        /// The shape it received.
        got: Shape,
    },
    /// A tensor has a dtype the operation does not accept.
    #[error("{op}: expected dtype {expected}, got {got}")]
    DTypeMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The dtype (or dtypes) the operation accepts, in words.
        expected: String,
        /// The dtype it received.
        got: DType,
    },
    /// A parameter is out of its valid range (zero stride, negative size, bad axis, ...).
    #[error("{op}: invalid argument: {msg}")]
    InvalidArgument {
        /// The operation that failed.
        op: &'static str,
        /// What was wrong, with the offending value.
        msg: String,
    },
    /// The operation exists but not for this dtype or device yet.
    #[error("{op}: not supported: {msg}")]
    Unsupported {
        /// The operation that failed.
        op: &'static str,
        /// Why, and what would work instead.
        msg: String,
    },
    /// Gradient computation was asked for something that cannot be differentiated.
    #[error("autodiff: {0}")]
    Autodiff(String),
    /// A device has no usable backend (no driver, no GPU with that ordinal, feature not built).
    #[error("device {device} is unavailable: {reason}")]
    DeviceUnavailable {
        /// The device asked for, as printed (`cuda:0`).
        device: String,
        /// Why, and what would make it available.
        reason: String,
    },
    /// A file cannot be read or does not hold what its format requires; the message names
    /// the file once, then says in words what was expected and what was found.
    #[error("{path}: {detail}")]
    File {
        /// The file, as given.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// The result type of the core crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument { op, msg: msg.into() }
    }

    /// Shorthand for [`Error::ShapeMismatch`].
    pub fn shape(op: &'static str, expected: impl Into<String>, got: impl std::fmt::Display) -> Self {
        Error::ShapeMismatch { op, expected: expected.into(), got: got.to_string() }
    }

    /// Shorthand for [`Error::RankMismatch`].
    pub fn rank(op: &'static str, expected: impl Into<String>, got: &Shape) -> Self {
        Error::RankMismatch { op, expected: expected.into(), got: got.clone() }
    }

    /// Shorthand for [`Error::DTypeMismatch`].
    pub fn dtype(op: &'static str, expected: impl Into<String>, got: DType) -> Self {
        Error::DTypeMismatch { op, expected: expected.into(), got }
    }
}
