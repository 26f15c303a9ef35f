//! The zip container of a `.keras` file: Keras writes `metadata.json`, `config.json` and
//! `model.weights.h5` stored (uncompressed); re-zipped files may use deflate.

use super::zip::{read_entries, ZipError};
use crate::{Error, Result};

/// The entries of a `.keras` archive, `(name, contents)` in archive order (see
/// [`read_entries`]).
///
/// # Errors
/// `Config` naming `what` (and the entry) for a file that is not a zip, a truncated archive, a
/// compression other than stored/deflate, or a CRC mismatch.
pub fn read_zip(bytes: &[u8], what: &str) -> Result<Vec<(String, Vec<u8>)>> {
    read_entries(bytes).map_err(|e| match e {
        ZipError::NotZip => {
            Error::Config(format!("{what}: not a .keras (zip) archive, or a truncated one: no end-of-central-directory record"))
        }
        ZipError::Directory(detail) => Error::Config(format!("{what}: {detail}")),
        ZipError::Entry { name, detail } => Error::Config(format!("{what}: entry {name:?}: {detail}")),
    })
}
