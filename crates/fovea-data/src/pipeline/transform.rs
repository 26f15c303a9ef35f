//! Sequential transformations: shuffle, map, filter, batching, repeat/take/skip, enumerate and
//! interleave.

use super::element::{padded_stack, scalar_i64};
use super::{Cardinality, Dataset, Element, ElementIter, MapFn, Node};
use crate::{Error, Result};
use fovea_core::random::Rng;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An adaptor node: a function from the input's epoch iterator to this stage's, and a rule for
/// the cardinality.
struct Adapt<F, C> {
    input: Dataset,
    make: F,
    card: C,
}

impl<F, C> Node for Adapt<F, C>
where
    F: Fn(ElementIter) -> ElementIter + Send + Sync,
    C: Fn(Cardinality) -> Cardinality + Send + Sync,
{
    fn iter(&self) -> ElementIter {
        (self.make)(self.input.iter())
    }

    fn cardinality(&self) -> Cardinality {
        (self.card)(self.input.cardinality())
    }
}

fn same(c: Cardinality) -> Cardinality {
    c
}

struct Shuffle {
    input: Dataset,
    buffer_size: usize,
    seed: u64,
    reshuffle: bool,
    epoch: AtomicU64,
}

impl Node for Shuffle {
    fn iter(&self) -> ElementIter {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed);
        // Each epoch's stream is a pure function of (seed, epoch), so a rebuilt pipeline replays
        // the same sequence of epochs.
        let seed = if self.reshuffle { self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) } else { self.seed };
        let mut rng = Rng::new(seed);
        let mut input = self.input.iter();
        let cap = self.buffer_size.max(1);
        let mut buf: Vec<Element> = Vec::with_capacity(cap.min(1 << 16));
        let mut exhausted = false;
        Box::new(std::iter::from_fn(move || {
            // Keep the buffer full; an input error is passed on at once rather than buffered.
            while !exhausted && buf.len() < cap {
                match input.next() {
                    Some(Ok(e)) => buf.push(e),
                    Some(Err(e)) => return Some(Err(e)),
                    None => exhausted = true,
                }
            }
            if buf.is_empty() {
                return None;
            }
            let i = rng.below(buf.len() as u64) as usize;
            Some(Ok(buf.swap_remove(i)))
        }))
    }

    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
}

struct Repeat {
    input: Dataset,
    count: Option<u64>,
}

impl Node for Repeat {
    fn iter(&self) -> ElementIter {
        let input = self.input.clone();
        let count = self.count;
        let mut done = 0u64;
        let mut current: Option<ElementIter> = None;
        let mut yielded_this_epoch = false;
        Box::new(std::iter::from_fn(move || loop {
            if let Some(it) = current.as_mut() {
                match it.next() {
                    Some(item) => {
                        yielded_this_epoch = true;
                        return Some(item);
                    }
                    None => {
                        current = None;
                        done += 1;
                        // An empty epoch would make `repeat()` spin forever; tf.data stops too.
                        if !yielded_this_epoch {
                            return None;
                        }
                    }
                }
            }
            if count.is_some_and(|c| done >= c) {
                return None;
            }
            yielded_this_epoch = false;
            current = Some(input.iter());
        }))
    }

    fn cardinality(&self) -> Cardinality {
        match (self.input.cardinality(), self.count) {
            (Cardinality::Finite(0), _) | (_, Some(0)) => Cardinality::Finite(0),
            (Cardinality::Finite(n), Some(c)) => Cardinality::Finite(n.saturating_mul(c)),
            // As tf.data: repeating forever is infinite unless the input is known to be empty.
            (_, None) | (Cardinality::Infinite, _) => Cardinality::Infinite,
            (Cardinality::Unknown, Some(_)) => Cardinality::Unknown,
        }
    }
}

struct Interleave {
    input: Dataset,
    f: Arc<dyn Fn(Element) -> Result<Dataset> + Send + Sync>,
    cycle_length: usize,
    block_length: usize,
}

impl Node for Interleave {
    fn iter(&self) -> ElementIter {
        let mut input = self.input.iter();
        let f = self.f.clone();
        let (cycle, block) = (self.cycle_length.max(1), self.block_length.max(1));
        let mut slots: Vec<Option<ElementIter>> = (0..cycle).map(|_| None).collect();
        let mut input_done = false;
        let mut pos = 0usize;
        let mut taken = 0usize;
        let mut pending_err: VecDeque<Error> = VecDeque::new();
        Box::new(std::iter::from_fn(move || loop {
            if let Some(e) = pending_err.pop_front() {
                return Some(Err(e));
            }
            // Fill an empty slot from the input (tf.data opens the next input element in the slot
            // its predecessor left).
            if slots[pos].is_none() && !input_done {
                match input.next() {
                    Some(Ok(e)) => match f(e) {
                        Ok(ds) => slots[pos] = Some(ds.iter()),
                        Err(err) => return Some(Err(err)),
                    },
                    Some(Err(err)) => return Some(Err(err)),
                    None => input_done = true,
                }
            }
            if input_done && slots.iter().all(Option::is_none) {
                return None;
            }
            if let Some(it) = slots[pos].as_mut() {
                match it.next() {
                    Some(item) => {
                        taken += 1;
                        if taken >= block {
                            taken = 0;
                            pos = (pos + 1) % cycle;
                        }
                        return Some(item);
                    }
                    // tf.data moves on to the next slot and refills this one on its next turn.
                    None => slots[pos] = None,
                }
            }
            taken = 0;
            pos = (pos + 1) % cycle;
        }))
    }

    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
}

fn batch_cardinality(c: Cardinality, size: usize, drop_remainder: bool) -> Cardinality {
    match c {
        Cardinality::Finite(n) => {
            let s = size.max(1) as u64;
            Cardinality::Finite(if drop_remainder { n / s } else { n.div_ceil(s) })
        }
        other => other,
    }
}

/// Groups up to `size` items of `input`; an input error is passed on at once (the group being
/// gathered continues after it).
fn groups(
    input: ElementIter,
    size: usize,
    drop_remainder: bool,
    combine: impl Fn(&[Element]) -> Result<Element> + Send + 'static,
) -> ElementIter {
    super::batcher::grouped(input, size, drop_remainder, Collect { elems: Vec::new(), combine })
}

/// A group that keeps its elements and combines them at the end (`padded_batch`).
struct Collect<F> {
    elems: Vec<Element>,
    combine: F,
}

impl<F: Fn(&[Element]) -> Result<Element> + Send> super::batcher::Group for Collect<F> {
    fn push(&mut self, e: Element) {
        self.elems.push(e);
    }

    fn len(&self) -> usize {
        self.elems.len()
    }

    fn finish(&mut self) -> Result<Element> {
        let out = (self.combine)(&self.elems);
        self.elems.clear();
        out
    }
}

/// A stage whose every epoch is a single `Err` item: how builder methods (which return a
/// `Dataset`, not a `Result`, so that pipelines chain) report an invalid argument.
struct Failing {
    op: &'static str,
    msg: String,
}

impl Node for Failing {
    fn iter(&self) -> ElementIter {
        Box::new(std::iter::once(Err(Error::format(self.op, self.msg.clone()))))
    }

    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
}

impl Dataset {
    pub(crate) fn failing(op: &'static str, msg: String) -> Dataset {
        Dataset::from_node(Failing { op, msg })
    }

    /// Shuffles with a buffer of `buffer_size` elements (`tf.data.Dataset.shuffle`): the buffer
    /// is filled, then each output is a uniformly drawn buffer element, replaced by the next
    /// input. A buffer at least as large as the dataset gives a uniform permutation. Each epoch
    /// is shuffled differently (`reshuffle_each_iteration=True`); see
    /// [`Dataset::shuffle_with`] to keep one order. `seed: None` draws a seed from the global
    /// sequence ([`fovea_core::set_seed`]) now, so the pipeline is still reproducible.
    pub fn shuffle(&self, buffer_size: usize, seed: Option<u64>) -> Dataset {
        self.shuffle_with(buffer_size, seed, true)
    }

    /// [`Dataset::shuffle`] with the choice of reshuffling each epoch or repeating the first
    /// epoch's order.
    pub fn shuffle_with(&self, buffer_size: usize, seed: Option<u64>, reshuffle_each_iteration: bool) -> Dataset {
        if buffer_size == 0 {
            return Dataset::failing("shuffle", "buffer_size must be at least 1, got 0".into());
        }
        let seed = seed.unwrap_or_else(fovea_core::random::next_seed);
        Dataset::from_node(Shuffle {
            input: self.clone(),
            buffer_size,
            seed,
            reshuffle: reshuffle_each_iteration,
            epoch: AtomicU64::new(0),
        })
    }

    /// Applies `f` to every element, in order, on the consuming thread (`Dataset.map`); an
    /// `Err` from `f` becomes an `Err` item. See [`Dataset::map_parallel`] for worker threads.
    pub fn map<F>(&self, f: F) -> Dataset
    where
        F: Fn(Element) -> Result<Element> + Send + Sync + 'static,
    {
        let f: MapFn = Arc::new(f);
        Dataset::from_node(Adapt {
            input: self.clone(),
            make: move |it: ElementIter| {
                let f = f.clone();
                Box::new(it.map(move |r| r.and_then(|e| f(e)))) as ElementIter
            },
            card: same,
        })
    }

    /// Keeps the elements for which `predicate` is true (`Dataset.filter`). An `Err` from the
    /// predicate becomes an `Err` item. The cardinality becomes unknown (as in tf.data, even for
    /// an infinite input).
    pub fn filter<F>(&self, predicate: F) -> Dataset
    where
        F: Fn(&Element) -> Result<bool> + Send + Sync + 'static,
    {
        let p = Arc::new(predicate);
        Dataset::from_node(Adapt {
            input: self.clone(),
            make: move |it: ElementIter| {
                let p = p.clone();
                Box::new(it.filter_map(move |r| match r {
                    Ok(e) => match p(&e) {
                        Ok(true) => Some(Ok(e)),
                        Ok(false) => None,
                        Err(err) => Some(Err(err)),
                    },
                    Err(err) => Some(Err(err)),
                })) as ElementIter
            },
            // As tf.data: even an infinite input may be filtered down to nothing.
            card: |_| Cardinality::Unknown,
        })
    }

    /// Stacks runs of `batch_size` elements along a new axis 0 (`Dataset.batch`). The last,
    /// shorter batch is kept unless `drop_remainder`. Elements of different shapes give an
    /// `Err` item naming both shapes (see [`Dataset::padded_batch`]).
    pub fn batch(&self, batch_size: usize, drop_remainder: bool) -> Dataset {
        if batch_size == 0 {
            return Dataset::failing("batch", "batch_size must be at least 1, got 0".into());
        }
        Dataset::from_node(Adapt {
            input: self.clone(),
            make: move |it: ElementIter| super::batcher::batches(it, batch_size, drop_remainder),
            card: move |c| batch_cardinality(c, batch_size, drop_remainder),
        })
    }

    /// Batches elements of different shapes by padding each component with `padding_value` at
    /// the end of every axis (`Dataset.padded_batch`). `padded_shapes` gives, per tensor of the
    /// element in depth-first order, the size of each axis (`None`: the batch's largest); without
    /// it every axis pads to the batch's largest.
    pub fn padded_batch(
        &self,
        batch_size: usize,
        padded_shapes: Option<Vec<Vec<Option<usize>>>>,
        padding_value: f64,
        drop_remainder: bool,
    ) -> Dataset {
        if batch_size == 0 {
            return Dataset::failing("padded_batch", "batch_size must be at least 1, got 0".into());
        }
        let shapes = Arc::new(padded_shapes);
        Dataset::from_node(Adapt {
            input: self.clone(),
            make: move |it: ElementIter| {
                let shapes = shapes.clone();
                groups(it, batch_size, drop_remainder, move |g| padded_stack(g, shapes.as_deref(), padding_value))
            },
            card: move |c| batch_cardinality(c, batch_size, drop_remainder),
        })
    }

    /// Splits every element along axis 0 into its rows (`Dataset.unbatch`), the inverse of
    /// [`Dataset::batch`].
    pub fn unbatch(&self) -> Dataset {
        Dataset::from_node(Adapt {
            input: self.clone(),
            make: |it: ElementIter| {
                Box::new(it.flat_map(|r| -> Box<dyn Iterator<Item = Result<Element>> + Send> {
                    match r.and_then(|e| e.rows("unbatch").map(|n| (e, n))) {
                        Ok((e, n)) => Box::new((0..n).map(move |i| e.row(i))),
                        Err(err) => Box::new(std::iter::once(Err(err))),
                    }
                })) as ElementIter
            },
            card: |c| if c == Cardinality::Infinite { c } else { Cardinality::Unknown },
        })
    }

    /// Repeats the dataset `count` times, or forever with `None` (`Dataset.repeat`). Each
    /// repetition is a new epoch of the input (so an upstream shuffle reshuffles).
    pub fn repeat(&self, count: Option<u64>) -> Dataset {
        Dataset::from_node(Repeat { input: self.clone(), count })
    }

    /// The first `count` elements (`Dataset.take`).
    pub fn take(&self, count: u64) -> Dataset {
        Dataset::from_node(Adapt {
            input: self.clone(),
            make: move |it: ElementIter| Box::new(it.take(count as usize)) as ElementIter,
            card: move |c| match c {
                Cardinality::Finite(n) => Cardinality::Finite(n.min(count)),
                Cardinality::Infinite => Cardinality::Finite(count),
                Cardinality::Unknown => Cardinality::Unknown,
            },
        })
    }

    /// Every `num_shards`-th element starting at `index` (`Dataset.shard`): one worker's share
    /// of the data in a data-parallel job, without reading the other workers' elements past
    /// the source.
    ///
    /// # Errors
    /// `num_shards` of 0, or `index` not below it (TensorFlow's `InvalidArgumentError`).
    pub fn shard(&self, num_shards: u64, index: u64) -> Result<Dataset> {
        if num_shards == 0 || index >= num_shards {
            return Err(Error::format(
                "Dataset.shard",
                format!("expected 0 <= index < num_shards, got index {index} of {num_shards} shards"),
            ));
        }
        Ok(Dataset::from_node(Adapt {
            input: self.clone(),
            make: move |it: ElementIter| Box::new(it.skip(index as usize).step_by(num_shards as usize)) as ElementIter,
            card: move |c| match c {
                Cardinality::Finite(n) => Cardinality::Finite(n / num_shards + u64::from(index < n % num_shards)),
                other => other,
            },
        }))
    }

    /// All but the first `count` elements (`Dataset.skip`).
    pub fn skip(&self, count: u64) -> Dataset {
        Dataset::from_node(Adapt {
            input: self.clone(),
            make: move |it: ElementIter| Box::new(it.skip(count as usize)) as ElementIter,
            card: move |c| match c {
                Cardinality::Finite(n) => Cardinality::Finite(n.saturating_sub(count)),
                other => other,
            },
        })
    }

    /// Pairs every element with its position: `(index, element)`, the index a scalar int64
    /// tensor counting from `start` (`Dataset.enumerate`).
    pub fn enumerate(&self, start: i64) -> Dataset {
        Dataset::from_node(Adapt {
            input: self.clone(),
            make: move |it: ElementIter| {
                Box::new(it.enumerate().map(move |(i, r)| {
                    let e = r?;
                    Ok(Element::Tuple(vec![Element::Tensor(scalar_i64(start + i as i64)?), e]))
                })) as ElementIter
            },
            card: same,
        })
    }

    /// Maps every element to a dataset and interleaves them (`Dataset.interleave`): `cycle_length`
    /// of those datasets are open at once, and `block_length` consecutive elements are taken from
    /// each in turn. With `cycle_length = 1` this is `flat_map`.
    pub fn interleave<F>(&self, f: F, cycle_length: usize, block_length: usize) -> Dataset
    where
        F: Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
    {
        if cycle_length == 0 || block_length == 0 {
            return Dataset::failing(
                "interleave",
                format!("cycle_length and block_length must be at least 1, got {cycle_length} and {block_length}"),
            );
        }
        Dataset::from_node(Interleave { input: self.clone(), f: Arc::new(f), cycle_length, block_length })
    }
}
