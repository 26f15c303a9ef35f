//! The zip container of a `.keras` file: Keras writes `metadata.json`, `config.json` and
//! `model.weights.h5` stored (uncompressed); re-zipped files may use deflate, whose inflating
//! is bounded (see [`super::zip::entries`]).

use super::zip::{entries, ZipError};
use crate::{Error, Result};

/// The entries of a `.keras` archive, `(name, contents)` in archive order (see
/// [`super::zip::read_entries`]), inflating at most the global decompression limit
/// ([`fovea_core::io::limit::max_decompressed_bytes`]).
///
/// # Errors
/// `Config` naming `what` (and the entry) for a file that is not a zip, a truncated archive, a
/// compression other than stored/deflate or a CRC mismatch; `Limit` naming both for an entry
/// that inflates past its declared size or the limit, or a malformed
/// `FOVEA_MAX_DECOMPRESSED_BYTES`.
pub fn read_zip(bytes: &[u8], what: &str) -> Result<Vec<(String, Vec<u8>)>> {
    zip_entries(bytes, what, crate::error::decompression_limit()?)?.collect()
}

/// The entries of a `.keras` archive one at a time, inflating at most `limit` bytes in all
/// (see [`super::zip::entries`]).
///
/// # Errors
/// As [`read_zip`], here for a file that is not a zip and per entry for the rest.
pub fn zip_entries<'a>(bytes: &'a [u8], what: &'a str, limit: u64) -> Result<impl Iterator<Item = Result<(String, Vec<u8>)>> + 'a> {
    let it = entries(bytes, limit).map_err(|e| zip_error(what, e))?;
    Ok(it.map(move |r| r.map_err(|e| zip_error(what, e))))
}

fn zip_error(what: &str, e: ZipError) -> Error {
    match e {
        ZipError::NotZip => {
            Error::Config(format!("{what}: not a .keras (zip) archive, or a truncated one: no end-of-central-directory record"))
        }
        ZipError::Directory(detail) => Error::Config(format!("{what}: {detail}")),
        ZipError::Entry { name, detail } => Error::Config(format!("{what}: entry {name:?}: {detail}")),
        ZipError::Limit(limit) => Error::Limit(limit.in_file(what)),
    }
}
