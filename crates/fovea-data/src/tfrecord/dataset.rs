//! TFRecord files as a pipeline source (`tf.data.TFRecordDataset`), read one after another or
//! interleaved with a reader thread per open file.

use super::{parse_example, ReadOptions, TfRecordReader};
use crate::pipeline::{Cardinality, Dataset, Element, ElementIter, Node};
use crate::Result;
use fovea_core::{Device, HostData, Tensor};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Records each reader thread may run ahead of the consumer.
const READ_AHEAD: usize = 64;

fn record_element(bytes: Vec<u8>) -> Result<Element> {
    let n = bytes.len();
    Ok(Element::Tensor(Tensor::from_host(HostData::U8(bytes), vec![n], Device::Cpu)?))
}

struct Records {
    files: Arc<Vec<PathBuf>>,
    options: ReadOptions,
    parallel: usize,
    epoch: AtomicU64,
}

/// Reads one file on its own thread into a bounded channel; the thread ends when the file does
/// or when the consumer hangs up.
fn spawn_reader(path: PathBuf, options: ReadOptions) -> Receiver<Result<Vec<u8>>> {
    let (tx, rx) = sync_channel(READ_AHEAD);
    std::thread::spawn(move || {
        let reader = match TfRecordReader::open(&path, &options) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        for item in reader {
            if tx.send(item).is_err() {
                return;
            }
        }
    });
    rx
}

impl Node for Records {
    fn iter(&self) -> ElementIter {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed);
        let files = match self.options.shuffle_files {
            // A pure function of (seed, epoch), like `Dataset::shuffle`'s epochs.
            Some(seed) => {
                let mut order: Vec<PathBuf> = self.files.to_vec();
                fovea_core::random::Rng::new(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)).shuffle(&mut order);
                Arc::new(order)
            }
            None => self.files.clone(),
        };
        let options = self.options.clone();
        if self.parallel <= 1 {
            let mut readers = (0..files.len()).map(move |i| TfRecordReader::open(&files[i], &options));
            let mut current: Option<TfRecordReader> = None;
            return Box::new(std::iter::from_fn(move || loop {
                if let Some(r) = current.as_mut() {
                    match r.next() {
                        Some(item) => return Some(item.and_then(record_element)),
                        None => current = None,
                    }
                }
                match readers.next()? {
                    Ok(r) => current = Some(r),
                    Err(e) => return Some(Err(e)),
                }
            }));
        }
        // TF's interleave order: slots are visited in turn, one record each; a finished file's
        // slot is refilled at once with the next file, which then gives that turn's record.
        let mut slots: Vec<Option<Receiver<Result<Vec<u8>>>>> = (0..self.parallel).map(|_| None).collect();
        let mut next_file = 0usize;
        for slot in slots.iter_mut() {
            if next_file < files.len() {
                *slot = Some(spawn_reader(files[next_file].clone(), options.clone()));
                next_file += 1;
            }
        }
        let mut turn = 0usize;
        Box::new(std::iter::from_fn(move || loop {
            if slots.iter().all(Option::is_none) && next_file >= files.len() {
                return None;
            }
            let i = turn % slots.len();
            match slots[i].as_ref().map(Receiver::recv) {
                Some(Ok(item)) => {
                    turn += 1;
                    return Some(item.and_then(record_element));
                }
                // The reader thread hung up: its file is done.
                Some(Err(_)) | None => {
                    slots[i] = None;
                    if next_file < files.len() {
                        slots[i] = Some(spawn_reader(files[next_file].clone(), options.clone()));
                        next_file += 1;
                    } else {
                        turn += 1;
                    }
                }
            }
        }))
    }

    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
}

impl Dataset {
    /// The records of TFRecord `files`, each a u8 `[len]` tensor (`tf.data.TFRecordDataset`).
    /// With `num_parallel_reads` above 1, that many files are read at once on their own threads
    /// and their records interleaved one by one, in the same order as TF's; otherwise the files
    /// are read in order. Map [`parse_example`] over it for the features.
    ///
    /// Errors (a missing file, a corrupt or truncated record: the message names the file and the
    /// byte offset) come out as `Err` items and end that file; see
    /// [`ReadOptions::skip_bad_records`] to skip and count them instead.
    pub fn from_tfrecord_files<P: Into<PathBuf>>(
        files: impl IntoIterator<Item = P>,
        options: ReadOptions,
        num_parallel_reads: usize,
    ) -> Dataset {
        let files: Vec<PathBuf> = files.into_iter().map(Into::into).collect();
        if files.is_empty() {
            return Dataset::failing("from_tfrecord_files", "expected at least one file, got none".into());
        }
        Dataset::from_node(Records { files: Arc::new(files), options, parallel: num_parallel_reads, epoch: AtomicU64::new(0) })
    }

    /// [`Dataset::from_tfrecord_files`] with every record parsed as a `tf.train.Example` into a
    /// dict of its features (see [`parse_example`]).
    pub fn from_tfrecord_examples<P: Into<PathBuf>>(
        files: impl IntoIterator<Item = P>,
        options: ReadOptions,
        num_parallel_reads: usize,
    ) -> Dataset {
        Dataset::from_tfrecord_files(files, options, num_parallel_reads).map(parse_example)
    }
}
