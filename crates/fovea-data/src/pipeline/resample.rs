//! Rebalancing a stream: drawing from several datasets with weights
//! (`tf.data.Dataset.sample_from_datasets`) and resampling one to a target class distribution
//! by rejection (`Dataset.rejection_resample`) — the seeds' remedies for class imbalance
//! without copying the data.

use super::element::scalar_i64;
use super::{Cardinality, Dataset, Element, ElementIter, Node};
use crate::{Error, Result};
use fovea_core::random::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A distribution given by the caller: finite, non-negative, not all zero; normalized.
fn distribution(what: &str, p: &[f64], len: usize) -> Result<Vec<f64>> {
    if p.len() != len || p.iter().any(|v| !v.is_finite() || *v < 0.0) || p.iter().sum::<f64>() <= 0.0 {
        return Err(Error::format(what, format!("expected {len} finite, non-negative weights that are not all zero, got {p:?}")));
    }
    let total: f64 = p.iter().sum();
    Ok(p.iter().map(|v| v / total).collect())
}

/// The seed of epoch `n` of a stage seeded with `seed`: every pass draws anew, reproducibly.
fn epoch_seed(seed: u64, epoch: &AtomicU64) -> u64 {
    seed ^ (epoch.fetch_add(1, Ordering::Relaxed) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

struct SampleFrom {
    datasets: Vec<Dataset>,
    weights: Vec<f64>,
    seed: u64,
    stop_on_empty: bool,
    epoch: AtomicU64,
}

impl Node for SampleFrom {
    fn iter(&self) -> ElementIter {
        let mut rng = Rng::new(epoch_seed(self.seed, &self.epoch));
        let mut sources: Vec<Option<ElementIter>> = self.datasets.iter().map(|d| Some(d.iter())).collect();
        let mut weights = self.weights.clone();
        let stop_on_empty = self.stop_on_empty;
        Box::new(std::iter::from_fn(move || loop {
            let total: f64 = weights.iter().sum();
            if total <= 0.0 {
                return None;
            }
            // Pick a source by weight among those not exhausted.
            let mut u = rng.uniform() * total;
            let mut pick = weights.iter().rposition(|&w| w > 0.0)?;
            for (i, &w) in weights.iter().enumerate() {
                if w > 0.0 && u < w {
                    pick = i;
                    break;
                }
                u -= w;
            }
            match sources[pick].as_mut().and_then(Iterator::next) {
                Some(item) => return Some(item),
                None if stop_on_empty => return None,
                None => {
                    // An exhausted dataset drops out; the others keep their relative weights.
                    sources[pick] = None;
                    weights[pick] = 0.0;
                }
            }
        }))
    }

    fn cardinality(&self) -> Cardinality {
        let cards: Vec<Cardinality> = self.datasets.iter().map(Dataset::cardinality).collect();
        if cards.iter().all(|c| *c == Cardinality::Infinite) {
            return Cardinality::Infinite;
        }
        if self.stop_on_empty {
            return Cardinality::Unknown;
        }
        // Without stopping, every element of every dataset comes out once.
        cards
            .iter()
            .try_fold(0u64, |acc, c| match c {
                Cardinality::Finite(n) => acc.checked_add(*n),
                _ => None,
            })
            .map_or(Cardinality::Unknown, Cardinality::Finite)
    }
}

/// A user function naming an element's class, `0..classes`.
pub type ClassFn = Arc<dyn Fn(&Element) -> Result<usize> + Send + Sync>;

struct Rejection {
    input: Dataset,
    class_of: ClassFn,
    target: Vec<f64>,
    initial: Option<Vec<f64>>,
    seed: u64,
    epoch: AtomicU64,
}

impl Node for Rejection {
    fn iter(&self) -> ElementIter {
        let mut rng = Rng::new(epoch_seed(self.seed, &self.epoch));
        let (class_of, target, initial) = (self.class_of.clone(), self.target.clone(), self.initial.clone());
        // Without a given initial distribution it is estimated from the classes seen so far
        // (TensorFlow does the same), starting from one pseudo-count per class.
        let mut seen = vec![1.0f64; target.len()];
        let mut input = self.input.iter();
        Box::new(std::iter::from_fn(move || loop {
            let element = match input.next()? {
                Ok(e) => e,
                Err(e) => return Some(Err(e)),
            };
            let class = match class_of(&element) {
                Ok(c) if c < target.len() => c,
                Ok(c) => {
                    return Some(Err(Error::format(
                        "rejection_resample",
                        format!("class_func returned class {c}, outside the {} classes of target_dist", target.len()),
                    )))
                }
                Err(e) => return Some(Err(e)),
            };
            seen[class] += 1.0;
            let total: f64 = seen.iter().sum();
            let p = |i: usize| initial.as_ref().map_or(seen[i] / total, |d| d[i]);
            // Accept class i with probability (t_i / p_i) / max_j (t_j / p_j): the output then
            // has p_i · a_i ∝ t_i, the target, and the most under-represented class is never
            // rejected.
            let ratio = |i: usize| if p(i) > 0.0 { target[i] / p(i) } else { 0.0 };
            let best = (0..target.len()).map(ratio).fold(0.0f64, f64::max);
            if best > 0.0 && rng.uniform() < ratio(class) / best {
                let tagged = scalar_i64(class as i64).map(|c| Element::Tuple(vec![Element::Tensor(c), element]));
                return Some(tagged);
            }
        }))
    }

    fn cardinality(&self) -> Cardinality {
        match self.input.cardinality() {
            Cardinality::Infinite => Cardinality::Infinite,
            _ => Cardinality::Unknown,
        }
    }
}

impl Dataset {
    /// Elements drawn at random from `datasets`, each pick choosing dataset `i` with
    /// probability `weights[i]` (uniform when `None`) — `tf.data.Dataset.sample_from_datasets`.
    /// When a dataset runs out, the draw goes on among the others (or ends, with
    /// `stop_on_empty_dataset`). Every pass draws anew, reproducibly for a given `seed`.
    ///
    /// # Errors
    /// `Format` for no datasets, or weights of the wrong length, negative, non-finite or all zero.
    pub fn sample_from_datasets(
        datasets: Vec<Dataset>,
        weights: Option<Vec<f64>>,
        seed: Option<u64>,
        stop_on_empty_dataset: bool,
    ) -> Result<Dataset> {
        if datasets.is_empty() {
            return Err(Error::format("sample_from_datasets", "expected at least one dataset, got none"));
        }
        let n = datasets.len();
        let weights = distribution("sample_from_datasets weights", &weights.unwrap_or_else(|| vec![1.0; n]), n)?;
        let seed = seed.unwrap_or_else(fovea_core::random::next_seed);
        Ok(Dataset::from_node(SampleFrom { datasets, weights, seed, stop_on_empty: stop_on_empty_dataset, epoch: AtomicU64::new(0) }))
    }

    /// This dataset resampled by rejection so that the classes `class_func` gives follow
    /// `target_dist` (`Dataset.rejection_resample`): elements of over-represented classes are
    /// dropped at random. Like TensorFlow's, it yields `(class, element)` pairs (`class` a
    /// scalar int64). `initial_dist` is the input's class distribution, estimated on the fly
    /// when `None`. Every pass draws anew, reproducibly for a given `seed`.
    ///
    /// # Errors
    /// `Format` for a target or initial distribution that is negative, non-finite, all zero or
    /// of different lengths; an element whose class is outside the target is an `Err` item.
    pub fn rejection_resample<F>(
        &self,
        class_func: F,
        target_dist: &[f64],
        initial_dist: Option<&[f64]>,
        seed: Option<u64>,
    ) -> Result<Dataset>
    where
        F: Fn(&Element) -> Result<usize> + Send + Sync + 'static,
    {
        let target = distribution("rejection_resample target_dist", target_dist, target_dist.len().max(1))?;
        let initial = initial_dist.map(|d| distribution("rejection_resample initial_dist", d, target.len())).transpose()?;
        let seed = seed.unwrap_or_else(fovea_core::random::next_seed);
        Ok(Dataset::from_node(Rejection {
            input: self.clone(),
            class_of: Arc::new(class_func),
            target,
            initial,
            seed,
            epoch: AtomicU64::new(0),
        }))
    }
}
