//! Work on other threads: a parallel map whose workers pull indexed elements (results are put
//! back in order unless told otherwise) and a bounded prefetch thread.

use super::{Cardinality, Dataset, Element, ElementIter, MapFn, Node, Parallelism};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

struct ParallelMap {
    input: Dataset,
    f: MapFn,
    threads: usize,
    deterministic: bool,
}

type Job = (u64, Result<Element>);

/// The consumer side of one epoch of a parallel map. The consumer pulls the input itself and
/// hands out at most `2 × threads` jobs at a time, so a slow element cannot make the reorder
/// buffer grow without bound.
struct ParallelIter {
    input: ElementIter,
    jobs: Option<Sender<Job>>,
    results: Receiver<Job>,
    in_flight: usize,
    max_in_flight: usize,
    next_in: u64,
    next_out: u64,
    input_done: bool,
    deterministic: bool,
    pending: BTreeMap<u64, Result<Element>>,
    workers: Workers,
}

/// The threads running a parallel map's workers, and how to wait for them to finish.
enum Workers {
    /// Broadcast loops on a private rayon pool; `done` disconnects when the last one ends.
    Pool {
        _pool: rayon::ThreadPool,
        done: Receiver<()>,
    },
    Threads(Vec<thread::JoinHandle<()>>),
}

fn apply(f: &MapFn, item: Result<Element>) -> Result<Element> {
    let e = item?;
    // A panicking user function must not leave a hole in the output order (the consumer would
    // wait for that index forever), so it becomes an Err item.
    catch_unwind(AssertUnwindSafe(|| f(e))).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::format("map_parallel", format!("the map function panicked: {msg}")))
    })
}

impl ParallelIter {
    fn start(input: ElementIter, f: MapFn, threads: usize, deterministic: bool) -> Self {
        let (job_tx, job_rx) = channel::<Job>();
        let (res_tx, res_rx) = channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let worker = move |job_rx: Arc<Mutex<Receiver<Job>>>, res_tx: Sender<Job>, f: MapFn| loop {
            // The lock is held only while taking a job, never while running `f`.
            let job = match job_rx.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok((i, item)) = job else { return };
            if res_tx.send((i, apply(&f, item))).is_err() {
                return;
            }
        };
        // The workers are the threads of their own rayon pool, so the parallel kernels that `f`
        // calls (resize, crop, casts) split across the workers instead of queueing on the global
        // pool behind every other worker's. One loop per thread, pinned there by the broadcast:
        // a loop queued as an ordinary job could be stolen by a thread waiting inside a kernel
        // and block it until the epoch ends.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("fovea-map-{i}")).build();
        let (done_tx, done_rx) = channel::<()>();
        let workers = match pool {
            Ok(pool) => {
                let (job_rx, res_tx, f) = (job_rx.clone(), res_tx.clone(), f.clone());
                pool.spawn_broadcast(move |_| {
                    // Held while this loop runs; the broadcast closure's own copy goes when the
                    // last loop has ended.
                    let _running = done_tx.clone();
                    worker(job_rx.clone(), res_tx.clone(), f.clone());
                });
                Workers::Pool { _pool: pool, done: done_rx }
            }
            // Without a pool (threads could not be created), plain threads still do the work.
            Err(_) => Workers::Threads(
                (0..threads)
                    .map(|_| {
                        let (job_rx, res_tx, f) = (job_rx.clone(), res_tx.clone(), f.clone());
                        thread::spawn(move || worker(job_rx, res_tx, f))
                    })
                    .collect(),
            ),
        };
        ParallelIter {
            input,
            jobs: Some(job_tx),
            results: res_rx,
            in_flight: 0,
            max_in_flight: 2 * threads,
            next_in: 0,
            next_out: 0,
            input_done: false,
            deterministic,
            pending: BTreeMap::new(),
            workers,
        }
    }

    fn refill(&mut self) {
        // Results waiting in the reorder buffer count too: otherwise a slow element lets the
        // others run ahead without bound.
        while !self.input_done && self.in_flight + self.pending.len() < self.max_in_flight {
            match self.input.next() {
                Some(item) => {
                    let sent = self.jobs.as_ref().is_some_and(|tx| tx.send((self.next_in, item)).is_ok());
                    if !sent {
                        self.input_done = true;
                        return;
                    }
                    self.next_in += 1;
                    self.in_flight += 1;
                }
                None => self.input_done = true,
            }
        }
    }
}

impl Iterator for ParallelIter {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        loop {
            if let Some(r) = self.pending.remove(&self.next_out) {
                self.next_out += 1;
                return Some(r);
            }
            self.refill();
            if self.in_flight == 0 {
                return None;
            }
            let Ok((i, r)) = self.results.recv() else {
                self.in_flight = 0;
                return Some(Err(Error::format("map_parallel", "the worker threads stopped unexpectedly")));
            };
            self.in_flight -= 1;
            if !self.deterministic {
                return Some(r);
            }
            self.pending.insert(i, r);
        }
    }
}

impl Drop for ParallelIter {
    fn drop(&mut self) {
        // Closing the job channel lets idle workers exit; busy ones exit after their current
        // element, when sending the result fails or the next recv sees the closed channel.
        self.jobs = None;
        match &mut self.workers {
            Workers::Pool { done, .. } => while done.recv().is_ok() {},
            Workers::Threads(handles) => {
                for w in handles.drain(..) {
                    let _ = w.join();
                }
            }
        }
    }
}

impl Node for ParallelMap {
    fn iter(&self) -> ElementIter {
        Box::new(ParallelIter::start(self.input.iter(), self.f.clone(), self.threads, self.deterministic))
    }

    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
}

struct Prefetch {
    input: Dataset,
    buffer_size: usize,
}

impl Node for Prefetch {
    fn iter(&self) -> ElementIter {
        let mut input = self.input.iter();
        // The producer holds one element while blocked on a full channel, so a channel of
        // `buffer_size - 1` keeps at most `buffer_size` elements ahead of the consumer.
        let (tx, rx) = sync_channel::<Result<Element>>(self.buffer_size.max(1) - 1);
        thread::spawn(move || {
            for item in input.by_ref() {
                if tx.send(item).is_err() {
                    return;
                }
            }
        });
        Box::new(rx.into_iter())
    }

    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
}

impl Dataset {
    /// [`Dataset::map`] on `num_parallel_calls` worker threads (`Dataset.map(f,
    /// num_parallel_calls=..., deterministic=...)`). Workers take indexed elements and the
    /// results are put back in input order; with `deterministic = false` each result is passed
    /// on as soon as it is ready (faster when element costs vary, order not reproducible). A
    /// panic in `f` becomes an `Err` item.
    pub fn map_parallel<F>(&self, f: F, num_parallel_calls: Parallelism, deterministic: bool) -> Dataset
    where
        F: Fn(Element) -> Result<Element> + Send + Sync + 'static,
    {
        Dataset::from_node(ParallelMap { input: self.clone(), f: Arc::new(f), threads: num_parallel_calls.threads(), deterministic })
    }

    /// Produces elements on a background thread, up to `buffer_size` ahead of the consumer
    /// (`Dataset.prefetch`), so that input work overlaps with training.
    pub fn prefetch(&self, buffer_size: usize) -> Dataset {
        Dataset::from_node(Prefetch { input: self.clone(), buffer_size })
    }
}
