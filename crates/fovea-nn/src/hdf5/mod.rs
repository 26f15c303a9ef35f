//! The slice of HDF5 that Keras weight files need: walking groups, reading string attributes
//! and float datasets into tensors.
//!
//! The decoder is the pure-Rust `hdf5-reader` crate behind the default-on `hdf5` feature. A
//! lean build (`default-features = false`) drops it and its dependencies; [`H5File`] then
//! keeps its API, so callers have no `#[cfg]`, but opening a file is an error naming the
//! feature. The choice is made here only.

use fovea_core::Tensor;

#[cfg(not(feature = "hdf5"))]
mod disabled;
#[cfg(feature = "hdf5")]
mod reader;

#[cfg(not(feature = "hdf5"))]
pub use disabled::H5File;
#[cfg(feature = "hdf5")]
pub use reader::H5File;

/// What a dataset holds, as far as weight loading cares.
pub enum H5Data {
    /// A float dataset, converted to a float32 tensor of the dataset's shape.
    Float(Tensor),
    /// Any other element type (integers, strings, compounds), described for error messages.
    Other(String),
}

/// The signature every HDF5 file starts with (at offset 0 for the files Keras writes).
pub const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
