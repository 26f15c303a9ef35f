//! Input pipelines, the `tf.data` analogue.
//!
//! A [`Dataset`] is a cheap-to-clone *description* of a stream of [`Element`]s; every call to
//! [`Dataset::iter`] starts a fresh pass (an epoch). Pipelines are composed with builder methods:
//!
//! ```
//! use fovea_core::{Device, Tensor};
//! use fovea_data::pipeline::Dataset;
//!
//! let x = Tensor::from_vec((0..10).map(|v| v as f32).collect::<Vec<_>>(), vec![10], Device::Cpu).unwrap();
//! let ds = Dataset::from_tensor_slices(x).unwrap().shuffle(4, Some(7)).batch(3, false).prefetch(2);
//! let batches: Vec<_> = ds.iter().collect::<Result<_, _>>().unwrap();
//! assert_eq!(batches.len(), 4); // 3 + 3 + 3 + 1: the last partial batch is kept
//! ```
//!
//! Errors (shape mismatches, a failing map function, a corrupt cache file) come out as `Err` items
//! of the iterator, never as panics. Given seeds, every pipeline is reproducible: shuffles without
//! a seed draw one from [`fovea_core::set_seed`]'s global sequence when they are built.

mod batcher;
mod cache;
mod element;
mod fit;
mod parallel;
mod resample;
mod sources;
mod split;
mod transform;

pub use element::Element;
pub use resample::ClassFn;
pub use split::{SplitBound, SplitSpec};

use crate::Result;
use std::sync::Arc;

/// The iterator one epoch of a dataset yields.
pub type ElementIter = Box<dyn Iterator<Item = Result<Element>> + Send>;

/// A user function over elements, shared between worker threads.
pub type MapFn = Arc<dyn Fn(Element) -> Result<Element> + Send + Sync>;

/// How many elements a dataset yields, as far as can be known without running it (like
/// `tf.data.Dataset.cardinality`, with `Infinite` and `Unknown` in place of `-1` and `-2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    /// Exactly this many elements.
    Finite(u64),
    /// The dataset never ends (`repeat()` without a count).
    Infinite,
    /// Depends on the data (`filter`, `from_generator`, ...).
    Unknown,
}

/// How many worker threads a parallel map uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parallelism {
    /// Exactly this many (at least one).
    Fixed(usize),
    /// One per available core (`tf.data.AUTOTUNE`).
    Autotune,
}

/// Shorthand for [`Parallelism::Autotune`].
pub const AUTOTUNE: Parallelism = Parallelism::Autotune;

impl Parallelism {
    pub(crate) fn threads(self) -> usize {
        match self {
            Parallelism::Fixed(n) => n.max(1),
            Parallelism::Autotune => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }
    }
}

/// A stage of a pipeline: it knows how to start an epoch and how long an epoch is.
pub(crate) trait Node: Send + Sync {
    fn iter(&self) -> ElementIter;
    fn cardinality(&self) -> Cardinality;
}

/// A reusable description of a stream of elements (`tf.data.Dataset`).
///
/// Cloning shares the description (and the state that must persist across epochs, such as a
/// shuffle's epoch counter and an in-memory cache).
#[derive(Clone)]
pub struct Dataset {
    node: Arc<dyn Node>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dataset(cardinality: {:?})", self.cardinality())
    }
}

impl Dataset {
    pub(crate) fn from_node(node: impl Node + 'static) -> Self {
        Dataset { node: Arc::new(node) }
    }

    /// Starts a new epoch.
    pub fn iter(&self) -> ElementIter {
        self.node.iter()
    }

    /// The number of elements one epoch yields, when it is known without running the pipeline.
    pub fn cardinality(&self) -> Cardinality {
        self.node.cardinality()
    }

    /// Runs one epoch and collects it.
    ///
    /// # Errors
    /// The first `Err` item of the epoch.
    pub fn collect(&self) -> Result<Vec<Element>> {
        self.iter().collect()
    }
}
