//! [`H5File`] for builds without the `hdf5` feature: the same API, but no file ever opens, so
//! every Keras HDF5 path ends in one error that says how to get the reader back.

use super::{H5Data, SIGNATURE};
use crate::{Error, Result};
use std::convert::Infallible;

/// An open HDF5 file; in this build none can be opened (see [`H5File::from_bytes`]).
pub struct H5File {
    never: Infallible,
}

impl H5File {
    /// Always fails: HDF5 reading is compiled out.
    ///
    /// # Errors
    /// `Config` naming `what` and the missing `hdf5` feature (or, for bytes that are not HDF5 at
    /// all, saying so, as the full build does).
    pub fn from_bytes(bytes: Vec<u8>, what: &str) -> Result<Self> {
        if !bytes.starts_with(SIGNATURE) {
            return Err(Error::Config(format!("{what}: not an HDF5 file (it does not start with the HDF5 signature)")));
        }
        Err(Error::Config(format!(
            "{what}: reading HDF5 (Keras .h5, .weights.h5 and .keras files) needs the `hdf5` feature of fovea-nn \
             (default-on, and forwarded by fovea-vision and fovea), which this build leaves out"
        )))
    }

    /// Always fails, as [`H5File::from_bytes`] (the limit has nothing to bound here).
    ///
    /// # Errors
    /// As [`H5File::from_bytes`].
    pub fn from_bytes_with_limit(bytes: Vec<u8>, what: &str, _limit: u64) -> Result<Self> {
        Self::from_bytes(bytes, what)
    }

    /// The name errors carry.
    pub fn what(&self) -> &str {
        match self.never {}
    }

    /// Whether `path` names a group.
    pub fn has_group(&self, _path: &str) -> bool {
        match self.never {}
    }

    /// The subgroups and datasets of the group at `path`.
    ///
    /// # Errors
    /// Never returns: no `H5File` exists in this build.
    pub fn members(&self, _path: &str) -> Result<(Vec<String>, Vec<String>)> {
        match self.never {}
    }

    /// A string-list attribute of the group at `path`.
    ///
    /// # Errors
    /// Never returns: no `H5File` exists in this build.
    pub fn strings_attr(&self, _path: &str, _name: &str) -> Result<Option<Vec<String>>> {
        match self.never {}
    }

    /// A single-string attribute of the group at `path`.
    ///
    /// # Errors
    /// Never returns: no `H5File` exists in this build.
    pub fn string_attr(&self, _path: &str, _name: &str) -> Result<Option<String>> {
        match self.never {}
    }

    /// The dataset at `path`.
    ///
    /// # Errors
    /// Never returns: no `H5File` exists in this build.
    pub fn dataset(&self, _path: &str) -> Result<H5Data> {
        match self.never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_hdf5_without_the_feature_names_the_feature() {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend([0u8; 64]);
        let e = H5File::from_bytes(bytes, "model.weights.h5").err().expect("no HDF5 in this build").to_string();
        assert!(e.contains("model.weights.h5") && e.contains("`hdf5` feature"), "{e}");
        let e = H5File::from_bytes(b"PK\x03\x04".to_vec(), "x.h5").err().expect("not HDF5").to_string();
        assert!(e.contains("not an HDF5 file"), "{e}");
    }
}
