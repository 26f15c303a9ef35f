//! The `hdf5-reader`-backed implementation of [`super::H5File`] (the `hdf5` feature).
//!
//! What the decoder underneath supports (so what Fovea reads): superblocks v0–v3, object
//! headers v1/v2, old-style (symbol table) and new-style (link message) groups, attributes in
//! the header or in dense storage, fixed- and variable-length strings, and contiguous,
//! compact and chunked layouts with the deflate, shuffle and fletcher32 filters. On top of it
//! this module accepts float32 and float64 datasets (float64 is narrowed to float32, Fovea's
//! weight type) in either byte order; any other element type is an error naming the dataset.
//! Every error names the file (`what`) and the object's path.

use super::{H5Data, SIGNATURE};
use crate::{Error, Result};
use fovea_core::io::limit::{fmt_bytes, LimitError};
use fovea_core::{Device, Tensor};
use hdf5_reader::{ByteOrder, Datatype, Hdf5File, OpenOptions, DEFAULT_MAX_CHUNK_BYTES};
use std::sync::atomic::{AtomicU64, Ordering};

/// An open HDF5 file, the name its errors carry, and its decompression budget.
///
/// Bounds (see [`fovea_core::io::limit`]): each dataset's declared size (shape × element size)
/// is checked against what is left of the limit before it is read, so the datasets read from
/// one file declare at most the limit together; underneath, `hdf5-reader` inflates each
/// deflate chunk to at most its declared chunk size (+1 byte to detect overflow, then refuses
/// a chunk whose size differs), refuses chunks over `min(256 MiB, limit)` before allocating
/// them, and refuses reads over the limit.
pub struct H5File {
    file: Hdf5File,
    what: String,
    limit: u64,
    used: AtomicU64,
}

/// The group at a path (`hdf5_reader` does not export the group type, so this cannot be a
/// method returning it).
macro_rules! group {
    ($self:expr, $path:expr) => {
        if $path.trim_matches('/').is_empty() { $self.file.root_group() } else { $self.file.group($path) }.map_err(|e| $self.err($path, e))
    };
}

impl H5File {
    /// Parses an HDF5 file held in memory; `what` (usually the path) names it in errors. Reads
    /// are bounded by the global decompression limit
    /// ([`fovea_core::io::limit::max_decompressed_bytes`]).
    ///
    /// # Errors
    /// `Config` naming `what` when the bytes are not HDF5 or its superblock is unreadable, or
    /// `FOVEA_MAX_DECOMPRESSED_BYTES` is malformed.
    pub fn from_bytes(bytes: Vec<u8>, what: &str) -> Result<Self> {
        Self::from_bytes_with_limit(bytes, what, crate::error::decompression_limit()?)
    }

    /// [`H5File::from_bytes`] with an explicit limit on the bytes its datasets may declare in
    /// all (see [`H5File`]).
    ///
    /// # Errors
    /// As [`H5File::from_bytes`].
    pub fn from_bytes_with_limit(bytes: Vec<u8>, what: &str, limit: u64) -> Result<Self> {
        if !bytes.starts_with(SIGNATURE) {
            return Err(Error::Config(format!("{what}: not an HDF5 file (it does not start with the HDF5 signature)")));
        }
        let cap = usize::try_from(limit).unwrap_or(usize::MAX);
        let options = OpenOptions::default().with_max_read_bytes(cap).with_max_chunk_bytes(cap.min(DEFAULT_MAX_CHUNK_BYTES));
        let file = Hdf5File::from_vec_with_options(bytes, options)
            .map_err(|e| Error::Config(format!("{what}: corrupt or truncated HDF5 file: {e}")))?;
        Ok(H5File { file, what: what.to_string(), limit, used: AtomicU64::new(0) })
    }

    /// The name errors carry.
    pub fn what(&self) -> &str {
        &self.what
    }

    fn err(&self, path: &str, e: impl std::fmt::Display) -> Error {
        Error::Config(format!("{}: HDF5 object {path:?}: {e} (corrupt or truncated file?)", self.what))
    }

    /// Whether `path` names a group.
    pub fn has_group(&self, path: &str) -> bool {
        group!(self, path).is_ok()
    }

    /// The names of the subgroups and datasets of the group at `path`, each list sorted.
    ///
    /// # Errors
    /// `Config` naming the file and path when the group is missing or unreadable.
    pub fn members(&self, path: &str) -> Result<(Vec<String>, Vec<String>)> {
        let (mut groups, mut datasets) = group!(self, path)?.member_names().map_err(|e| self.err(path, e))?;
        groups.sort();
        datasets.sort();
        Ok((groups, datasets))
    }

    /// A string-list attribute of the group at `path` (fixed- or variable-length strings, or a
    /// single string); `None` when the group has no such attribute. An empty non-string array
    /// (h5py writes `np.array([])` as float64) reads as an empty list.
    ///
    /// # Errors
    /// `Config` naming the attribute when it holds something other than strings.
    pub fn strings_attr(&self, path: &str, name: &str) -> Result<Option<Vec<String>>> {
        let group = group!(self, path)?;
        let attrs = group.attributes().map_err(|e| self.err(path, e))?;
        let Some(attr) = attrs.into_iter().find(|a| a.name == name) else { return Ok(None) };
        if let Ok(list) = attr.read_strings() {
            return Ok(Some(list));
        }
        if let Ok(one) = attr.read_string() {
            return Ok(Some(vec![one]));
        }
        if attr.num_elements().map_err(|e| self.err(path, e))? == 0 {
            return Ok(Some(Vec::new()));
        }
        Err(Error::Config(format!("{}: attribute {name:?} of {path:?} should hold strings but holds {:?}", self.what, attr.datatype)))
    }

    /// A single-string attribute of the group at `path`; `None` when absent.
    ///
    /// # Errors
    /// As [`H5File::strings_attr`], and when the attribute holds several strings.
    pub fn string_attr(&self, path: &str, name: &str) -> Result<Option<String>> {
        match self.strings_attr(path, name)? {
            None => Ok(None),
            Some(mut v) if v.len() == 1 => Ok(v.pop()),
            Some(v) => Err(Error::Config(format!("{}: attribute {name:?} of {path:?} holds {} strings, expected one", self.what, v.len()))),
        }
    }

    /// Reads the dataset at `path`.
    ///
    /// # Errors
    /// `Config` naming the dataset when it is missing, or its data cannot be decoded.
    pub fn dataset(&self, path: &str) -> Result<H5Data> {
        let ds = self.file.dataset(path).map_err(|e| self.err(path, e))?;
        let dims: Vec<usize> = ds.shape().iter().map(|&d| d as usize).collect();
        let (size, order) = match ds.dtype() {
            Datatype::FloatingPoint { size, byte_order } => (*size, *byte_order),
            other => return Ok(H5Data::Other(format!("{other:?}"))),
        };
        if size != 4 && size != 8 {
            return Ok(H5Data::Other(format!("float{}", size as usize * 8)));
        }
        self.reserve(path, &dims, size as u64)?;
        let raw = ds.read_raw_bytes().map_err(|e| self.err(path, e))?;
        let numel: usize = dims.iter().product();
        if raw.len() != numel * size as usize {
            return Err(self.err(path, format!("{} data bytes for {numel} elements of {size} bytes", raw.len())));
        }
        let values: Vec<f32> = match (size, order) {
            (4, ByteOrder::LittleEndian) => raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect(),
            (4, ByteOrder::BigEndian) => raw.chunks_exact(4).map(|c| f32::from_be_bytes(c.try_into().expect("4 bytes"))).collect(),
            (_, ByteOrder::LittleEndian) => {
                raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect()
            }
            (_, ByteOrder::BigEndian) => raw.chunks_exact(8).map(|c| f64::from_be_bytes(c.try_into().expect("8 bytes")) as f32).collect(),
        };
        Ok(H5Data::Float(Tensor::from_vec(values, dims, Device::Cpu)?))
    }

    /// Takes a dataset's declared size (shape × element size) from the budget before anything
    /// is read or allocated for it.
    fn reserve(&self, path: &str, dims: &[usize], elem: u64) -> Result<()> {
        let declared = dims.iter().try_fold(elem, |acc, &d| acc.checked_mul(d as u64)).unwrap_or(u64::MAX);
        let before = self.used.load(Ordering::Relaxed);
        let total = before.saturating_add(declared);
        if total > self.limit {
            let dataset = format!("{}: dataset {path:?} (shape {dims:?}, {elem}-byte elements)", self.what);
            // The dataset's own size when it alone is too large, else the running total.
            let (what, size) = match before {
                b if b > 0 && declared <= self.limit => (format!("{dataset} with the {} of datasets read before it", fmt_bytes(b)), total),
                _ => (dataset, declared),
            };
            return Err(LimitError::OverLimit { what, size: Some(size), limit: self.limit }.into());
        }
        self.used.store(total, Ordering::Relaxed);
        Ok(())
    }
}
