//! TFRecord files (`tf.io.TFRecordWriter`, `tf.data.TFRecordDataset`): framed records with masked
//! CRC32C checksums ([`fovea_core::io::record`]), optionally GZIP-compressed, usually holding
//! serialised [`Example`]s.
//!
//! ```
//! use fovea_data::tfrecord::{Compression, Example, Feature, ReadOptions, TfRecordReader, TfRecordWriter};
//!
//! let path = std::env::temp_dir().join(format!("fovea-doc-{}.tfrecord", std::process::id()));
//! let mut w = TfRecordWriter::create(&path, Compression::None).unwrap();
//! w.write_example(&Example::from_features([("label", Feature::int64s([3]))])).unwrap();
//! w.finish().unwrap();
//! let records: Vec<Vec<u8>> = TfRecordReader::open(&path, &ReadOptions::default()).unwrap().collect::<Result<_, _>>().unwrap();
//! let ex = Example::from_bytes(&records[0]).unwrap();
//! assert_eq!(ex.get("label").unwrap().as_int64s(), Some(&[3i64][..]));
//! # std::fs::remove_file(path).ok();
//! ```

mod dataset;
mod example;
mod parse;

pub use example::{parse_example, BytesList, Example, Feature, Features, FloatList, Int64List, Kind};
pub use parse::{decode_raw, parse_single_example, FeatureSpec, FeatureType, FixedLenFeature};

use crate::{Error, Result};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use fovea_core::io::record::{write_record, RecordError, RecordReader};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How a TFRecord file is compressed (TF's `compression_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Plain records (`""`).
    #[default]
    None,
    /// The whole file is one GZIP stream (`"GZIP"`).
    Gzip,
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w,
        }
    }
}

/// Writes records to one TFRecord file (`tf.io.TFRecordWriter`).
pub struct TfRecordWriter {
    path: PathBuf,
    sink: Sink,
    records: u64,
}

impl TfRecordWriter {
    /// Creates (or truncates) `path`.
    ///
    /// # Errors
    /// `Io` naming the file when it cannot be created.
    pub fn create(path: impl AsRef<Path>, compression: Compression) -> Result<TfRecordWriter> {
        let path = path.as_ref().to_path_buf();
        let file = BufWriter::new(File::create(&path).map_err(|e| Error::io(&path, e))?);
        let sink = match compression {
            Compression::None => Sink::Plain(file),
            Compression::Gzip => Sink::Gzip(GzEncoder::new(file, flate2::Compression::default())),
        };
        Ok(TfRecordWriter { path, sink, records: 0 })
    }

    /// Appends one record.
    ///
    /// # Errors
    /// `Io` naming the file.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        write_record(self.sink.writer(), data).map_err(|e| Error::io(&self.path, e))?;
        self.records += 1;
        Ok(())
    }

    /// Appends one serialised [`Example`].
    ///
    /// # Errors
    /// `Io` naming the file.
    pub fn write_example(&mut self, example: &Example) -> Result<()> {
        self.write(&example.to_bytes())
    }

    /// How many records were written.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes and closes the file (finishing the GZIP stream); dropping the writer without this
    /// also closes it but cannot report errors.
    ///
    /// # Errors
    /// `Io` naming the file.
    pub fn finish(self) -> Result<()> {
        let io = |e| Error::io(&self.path, e);
        match self.sink {
            Sink::Plain(mut w) => w.flush().map_err(io),
            Sink::Gzip(w) => w.finish().and_then(|mut f| f.flush()).map_err(io),
        }
    }
}

/// The file name of shard `index` of `num_shards`: `name-00003-of-00010.tfrecord`.
pub fn shard_path(prefix: impl AsRef<Path>, index: usize, num_shards: usize) -> PathBuf {
    let prefix = prefix.as_ref();
    let name = prefix.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    prefix.with_file_name(format!("{name}-{index:05}-of-{num_shards:05}.tfrecord"))
}

/// Writes records round-robin over `num_shards` files named by [`shard_path`], so shards stay
/// within one record of each other in size and can be read in parallel.
pub struct ShardedWriter {
    shards: Vec<TfRecordWriter>,
    next: usize,
}

impl ShardedWriter {
    /// Creates the `num_shards` files `prefix-0000i-of-0000n.tfrecord`.
    ///
    /// # Errors
    /// `Format` for zero shards; `Io` naming a file that cannot be created.
    pub fn create(prefix: impl AsRef<Path>, num_shards: usize, compression: Compression) -> Result<ShardedWriter> {
        if num_shards == 0 {
            return Err(Error::format("ShardedWriter", "expected at least 1 shard, got 0"));
        }
        let shards =
            (0..num_shards).map(|i| TfRecordWriter::create(shard_path(&prefix, i, num_shards), compression)).collect::<Result<_>>()?;
        Ok(ShardedWriter { shards, next: 0 })
    }

    /// The shard files, in order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.shards.iter().map(|s| s.path.clone()).collect()
    }

    /// Appends one record to the next shard.
    ///
    /// # Errors
    /// `Io` naming the shard.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let n = self.shards.len();
        self.shards[self.next].write(data)?;
        self.next = (self.next + 1) % n;
        Ok(())
    }

    /// Appends one serialised [`Example`] to the next shard.
    ///
    /// # Errors
    /// `Io` naming the shard.
    pub fn write_example(&mut self, example: &Example) -> Result<()> {
        self.write(&example.to_bytes())
    }

    /// Closes every shard and returns their paths.
    ///
    /// # Errors
    /// The first shard's `Io` error.
    pub fn finish(self) -> Result<Vec<PathBuf>> {
        let paths = self.paths();
        for s in self.shards {
            s.finish()?;
        }
        Ok(paths)
    }
}

/// A shared count of the bad records that reading skipped; clones count into the same total.
#[derive(Clone, Debug, Default)]
pub struct BadRecords(Arc<AtomicU64>);

impl BadRecords {
    /// How many bad records (corrupt, or the truncated or unreadable rest of a file) were skipped.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// How TFRecord files are read.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The files' compression (TF's `compression_type`; it is not guessed, as in TF).
    pub compression: Compression,
    /// Skip records with a bad data checksum and count them, instead of failing; a bad length
    /// checksum or a truncation counts one and ends that file (its framing is lost).
    pub skip_bad_records: bool,
    /// The count of skipped records, shared with every reader made from these options.
    pub bad_records: BadRecords,
    /// Shuffle the order of the files each epoch with this seed (the first step of TF's
    /// `list_files(shuffle=True)` + `interleave` recipe for sharded data); `None` keeps the order.
    pub shuffle_files: Option<u64>,
    /// The longest record accepted, in bytes; `None` is the global decompression limit
    /// ([`fovea_core::io::limit::max_decompressed_bytes`]). Files are read as streams, record by
    /// record, so this bounds the memory one record takes; a longer record is refused (with
    /// the file, its offset and the limit) before anything is allocated for it, which is what
    /// stops a GZIP file whose one record inflates to gigabytes.
    pub max_record_bytes: Option<u64>,
}

impl ReadOptions {
    /// Reads GZIP-compressed files.
    pub fn gzip(mut self) -> Self {
        self.compression = Compression::Gzip;
        self
    }

    /// Reads the files in a new seeded order each epoch.
    pub fn shuffle_files(mut self, seed: u64) -> Self {
        self.shuffle_files = Some(seed);
        self
    }

    /// Refuses records longer than `bytes` (see [`ReadOptions::max_record_bytes`]).
    pub fn max_record_bytes(mut self, bytes: u64) -> Self {
        self.max_record_bytes = Some(bytes);
        self
    }

    /// Skips and counts bad records (see [`ReadOptions::skip_bad_records`]).
    pub fn skip_bad_records(mut self) -> Self {
        self.skip_bad_records = true;
        self
    }
}

/// Reads the records of one TFRecord file, as an iterator of their bytes.
pub struct TfRecordReader {
    path: PathBuf,
    records: RecordReader<Box<dyn Read + Send>>,
    options: ReadOptions,
    gzip_magic: bool,
    done: bool,
}

impl TfRecordReader {
    /// Opens `path`.
    ///
    /// # Errors
    /// `Io` naming the file when it cannot be opened; `Limit` for a malformed
    /// `FOVEA_MAX_DECOMPRESSED_BYTES` when [`ReadOptions::max_record_bytes`] is `None`.
    pub fn open(path: impl AsRef<Path>, options: &ReadOptions) -> Result<TfRecordReader> {
        let path = path.as_ref().to_path_buf();
        let limit = match options.max_record_bytes {
            Some(bytes) => bytes,
            None => crate::error::decompression_limit()?,
        };
        let mut file = BufReader::new(File::open(&path).map_err(|e| Error::io(&path, e))?);
        // Only to improve the error for a GZIP file read as plain records.
        let gzip_magic = std::io::BufRead::fill_buf(&mut file).map(|b| b.starts_with(&[0x1F, 0x8B])).unwrap_or(false);
        let inner: Box<dyn Read + Send> = match options.compression {
            Compression::None => Box::new(file),
            Compression::Gzip => Box::new(MultiGzDecoder::new(file)),
        };
        Ok(TfRecordReader {
            path,
            records: RecordReader::new(inner).with_max_record_bytes(limit),
            options: options.clone(),
            gzip_magic,
            done: false,
        })
    }

    fn error(&self, e: RecordError) -> Error {
        let what = match self.options.compression {
            Compression::None => self.path.display().to_string(),
            Compression::Gzip => format!("{} (GZIP; offsets count decompressed bytes)", self.path.display()),
        };
        if let RecordError::TooLarge(limit) = e {
            return Error::Limit(limit.in_file(&what));
        }
        let hint = if self.gzip_magic
            && self.options.compression == Compression::None
            && matches!(e, RecordError::CrcMismatch { offset: 0, .. })
        {
            " (the file starts with the GZIP magic bytes 1f 8b: read it with Compression::Gzip)"
        } else {
            ""
        };
        Error::format(what, format!("{e}{hint}"))
    }
}

impl Iterator for TfRecordReader {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.records.next_record() {
                Ok(Some(r)) => return Some(Ok(r)),
                Ok(None) => self.done = true,
                Err(e) => {
                    if !e.is_resumable() {
                        self.done = true;
                    }
                    if !self.options.skip_bad_records {
                        self.done = true;
                        return Some(Err(self.error(e)));
                    }
                    self.options.bad_records.add();
                }
            }
        }
        None
    }
}
