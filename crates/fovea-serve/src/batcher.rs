//! Dynamic batching: requests' rows are concatenated into one forward pass on a dedicated
//! inference thread, and the results are split back to each request.
//!
//! A batch closes when it holds `max_batch_size` rows, when `batching_timeout` has passed since
//! its first request, or — earlier — when the queue is empty and no request is being read or
//! parsed: then nothing is about to arrive, and waiting out the timeout would only add latency
//! (one client alone never waits). While the model runs, new requests queue up, so under load
//! batches fill without waiting at all.
//!
//! The queue is bounded: a full queue answers 503 at once rather than growing without limit.

use crate::metrics::Metrics;
use crate::store::Servable;
use fovea_core::{Device, Tensor};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// One request's rows for one servable, and where its output goes.
pub struct Job {
    /// The model version the request was routed to.
    pub servable: Arc<Servable>,
    /// Instances in `input`.
    pub rows: usize,
    /// `rows × input_len` values, row-major.
    pub input: Vec<f32>,
    /// Receives `rows × output_len` values or an error message.
    pub reply: oneshot::Sender<Result<Vec<f32>, String>>,
}

/// Why a job was not queued.
pub enum SubmitError {
    /// The queue holds `max_queue` requests.
    Full,
    /// The inference thread is gone (only after shutdown).
    Closed,
}

/// The sending side of the batching queue; cheap to share.
pub struct Batcher {
    tx: SyncSender<Job>,
    /// Requests being read or parsed, which will be queued soon (see the module docs).
    reading: Arc<AtomicUsize>,
    queued: Arc<AtomicUsize>,
}

/// Counts a request as being read until it is dropped (queued or failed).
pub struct ReadingGuard(Arc<AtomicUsize>);

impl Drop for ReadingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Batching limits.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    /// Most rows per forward pass.
    pub max_batch_size: usize,
    /// Longest a batch waits for more rows after its first request.
    pub batching_timeout: Duration,
    /// Most requests waiting; more are answered 503.
    pub max_queue: usize,
}

impl Batcher {
    /// Starts the inference thread.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(config: BatchConfig, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Job>(config.max_queue.max(1));
        let reading = Arc::new(AtomicUsize::new(0));
        let queued = Arc::new(AtomicUsize::new(0));
        let worker = Worker { rx, config, metrics, reading: reading.clone(), queued: queued.clone() };
        std::thread::Builder::new().name("fovea-serve-inference".into()).spawn(move || worker.run())?;
        Ok(Batcher { tx, reading, queued })
    }

    /// Marks a request as being read; the batcher waits for it while the guard lives.
    pub fn reading(&self) -> ReadingGuard {
        self.reading.fetch_add(1, Ordering::AcqRel);
        ReadingGuard(self.reading.clone())
    }

    /// Queues a job without waiting.
    ///
    /// # Errors
    /// [`SubmitError::Full`] when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), SubmitError> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.tx.try_send(job).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            match e {
                TrySendError::Full(_) => SubmitError::Full,
                TrySendError::Disconnected(_) => SubmitError::Closed,
            }
        })
    }

    /// Requests waiting for the model.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

struct Worker {
    rx: mpsc::Receiver<Job>,
    config: BatchConfig,
    metrics: Arc<Metrics>,
    reading: Arc<AtomicUsize>,
    queued: Arc<AtomicUsize>,
}

impl Worker {
    fn run(self) {
        let mut carry: Option<Job> = None;
        loop {
            let first = match carry.take() {
                Some(j) => j,
                None => match self.rx.recv() {
                    Ok(j) => j,
                    Err(_) => return, // every sender is gone: the server has shut down
                },
            };
            self.queued.fetch_sub(1, Ordering::AcqRel);
            let deadline = Instant::now() + self.config.batching_timeout;
            let mut rows = first.rows;
            let mut batch = vec![first];
            while rows < self.config.max_batch_size {
                let next = match self.rx.try_recv() {
                    Ok(j) => j,
                    Err(mpsc::TryRecvError::Disconnected) => break,
                    Err(mpsc::TryRecvError::Empty) => {
                        let now = Instant::now();
                        if now >= deadline || self.reading.load(Ordering::Acquire) == 0 {
                            break;
                        }
                        // Short waits, so that the "nobody is reading" check is seen soon.
                        match self.rx.recv_timeout((deadline - now).min(Duration::from_micros(200))) {
                            Ok(j) => j,
                            Err(RecvTimeoutError::Timeout) => continue,
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                };
                self.queued.fetch_sub(1, Ordering::AcqRel);
                if Arc::ptr_eq(&next.servable, &batch[0].servable) && rows + next.rows <= self.config.max_batch_size {
                    rows += next.rows;
                    batch.push(next);
                } else {
                    // Another model, or too many rows: it starts the next batch. Counted back
                    // as queued, since it is taken off again when that batch starts.
                    self.queued.fetch_add(1, Ordering::AcqRel);
                    carry = Some(next);
                    break;
                }
            }
            self.run_batch(batch);
        }
    }

    fn run_batch(&self, batch: Vec<Job>) {
        // A request whose client has gone (timed out, disconnected) is not worth computing.
        let mut batch: Vec<Job> = batch.into_iter().filter(|j| !j.reply.is_closed()).collect();
        let Some(first) = batch.first() else { return };
        let servable = first.servable.clone();
        let rows: usize = batch.iter().map(|j| j.rows).sum();
        let input = if batch.len() == 1 {
            // One request: its buffer becomes the tensor as it is.
            std::mem::take(&mut batch[0].input)
        } else {
            let mut all = Vec::with_capacity(rows * servable.input_len());
            batch.iter().for_each(|j| all.extend_from_slice(&j.input));
            all
        };
        self.metrics.batch_size.observe(rows as f64);
        // The model must not be able to take the server down: a panic in a layer becomes an
        // error answer for the requests of this batch.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| forward(&servable, input, rows, self.config.max_batch_size)))
            .unwrap_or_else(|p| Err(format!("inference panicked: {}", panic_message(&p))));
        match result {
            Ok(out) => {
                let len = servable.output_len();
                let mut offset = 0;
                for job in batch {
                    let n = job.rows * len;
                    let _ = job.reply.send(Ok(out[offset..offset + n].to_vec()));
                    offset += n;
                }
            }
            Err(e) => {
                for job in batch {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One request larger than `max_batch` rows still runs in passes of at most `max_batch`.
fn forward(servable: &Servable, input: Vec<f32>, rows: usize, max_batch: usize) -> Result<Vec<f32>, String> {
    let dims: Vec<usize> = std::iter::once(rows).chain(servable.input_dims.iter().copied()).collect();
    let x = Tensor::from_vec(input, dims, Device::Cpu).map_err(|e| e.to_string())?;
    let y = servable.model.predict(&x, max_batch.max(1)).map_err(|e| e.to_string())?;
    let out = y.to_vec::<f32>().map_err(|e| e.to_string())?;
    if out.len() != rows * servable.output_len() {
        return Err(format!("the model gave {} values for {rows} rows of output shape {:?}", out.len(), servable.output_dims));
    }
    Ok(out)
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into())
}
