//! Where pipelines start: tensor slices, in-memory lists, generators, and zips of datasets.

use super::{Cardinality, Dataset, Element, ElementIter, Node};
use crate::{Error, Result};
use fovea_core::Tensor;
use std::sync::Arc;

struct Slices {
    source: Element,
    rows: usize,
}

impl Node for Slices {
    fn iter(&self) -> ElementIter {
        let source = self.source.clone();
        Box::new((0..self.rows).map(move |i| source.row(i)))
    }

    fn cardinality(&self) -> Cardinality {
        Cardinality::Finite(self.rows as u64)
    }
}

struct Elements(Arc<Vec<Element>>);

impl Node for Elements {
    fn iter(&self) -> ElementIter {
        let v = self.0.clone();
        Box::new((0..v.len()).map(move |i| Ok(v[i].clone())))
    }

    fn cardinality(&self) -> Cardinality {
        Cardinality::Finite(self.0.len() as u64)
    }
}

type GenFn = Arc<dyn Fn() -> ElementIter + Send + Sync>;

struct Generator(GenFn);

impl Node for Generator {
    fn iter(&self) -> ElementIter {
        (self.0)()
    }

    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
}

struct Zip(Vec<Dataset>);

impl Node for Zip {
    fn iter(&self) -> ElementIter {
        let mut iters: Vec<ElementIter> = self.0.iter().map(Dataset::iter).collect();
        Box::new(std::iter::from_fn(move || {
            let mut parts = Vec::with_capacity(iters.len());
            for it in iters.iter_mut() {
                match it.next()? {
                    Ok(e) => parts.push(e),
                    Err(e) => return Some(Err(e)),
                }
            }
            Some(Ok(Element::Tuple(parts)))
        }))
    }

    fn cardinality(&self) -> Cardinality {
        let cards: Vec<Cardinality> = self.0.iter().map(Dataset::cardinality).collect();
        let min_finite = cards.iter().filter_map(|c| if let Cardinality::Finite(n) = c { Some(*n) } else { None }).min();
        match min_finite {
            // A finite input bounds the zip even when another input's length is unknown, but
            // only if that unknown one cannot end earlier.
            Some(n) if !cards.contains(&Cardinality::Unknown) => Cardinality::Finite(n),
            Some(_) => Cardinality::Unknown,
            None if cards.contains(&Cardinality::Unknown) || cards.is_empty() => Cardinality::Unknown,
            None => Cardinality::Infinite,
        }
    }
}

impl Dataset {
    /// One element per row (index of axis 0) of `source`'s tensors, keeping its structure:
    /// slicing `(images [N,28,28], labels [N])` gives `N` pairs `(image [28,28], label [])`
    /// (`tf.data.Dataset.from_tensor_slices`).
    ///
    /// # Errors
    /// `Format` when a tensor is a scalar or the tensors disagree on the size of axis 0.
    pub fn from_tensor_slices(source: impl Into<Element>) -> Result<Dataset> {
        let source = detach(source.into());
        let rows = source.rows("from_tensor_slices")?;
        Ok(Dataset::from_node(Slices { source, rows }))
    }

    /// A dataset of the given elements, in order (`tf.data.Dataset.from_tensors` over a list).
    pub fn from_elements(elements: Vec<Element>) -> Dataset {
        Dataset::from_node(Elements(Arc::new(elements)))
    }

    /// The integers `start..end` as scalar int64 tensors (`tf.data.Dataset.range`).
    pub fn range(start: i64, end: i64) -> Dataset {
        Dataset::from_generator(move || (start..end).map(|i| Ok(Element::Tensor(super::element::scalar_i64(i)?))))
            .with_cardinality(Cardinality::Finite((end - start).max(0) as u64))
    }

    /// A dataset whose every epoch calls `make` for a fresh iterator
    /// (`tf.data.Dataset.from_generator`). Its cardinality is unknown.
    pub fn from_generator<F, I>(make: F) -> Dataset
    where
        F: Fn() -> I + Send + Sync + 'static,
        I: Iterator<Item = Result<Element>> + Send + 'static,
    {
        Dataset::from_node(Generator(Arc::new(move || Box::new(make()) as ElementIter)))
    }

    /// Tuples of the datasets' elements, in lockstep, ending with the shortest
    /// (`tf.data.Dataset.zip`).
    ///
    /// # Errors
    /// `Format` when `datasets` is empty.
    pub fn zip(datasets: Vec<Dataset>) -> Result<Dataset> {
        if datasets.is_empty() {
            return Err(Error::format("zip", "expected at least one dataset, got none"));
        }
        Ok(Dataset::from_node(Zip(datasets)))
    }

    /// A dataset that reports `cardinality` instead of what it can infer (for generators whose
    /// length is known; `tf.data.experimental.assert_cardinality` without the check).
    pub fn with_cardinality(&self, cardinality: Cardinality) -> Dataset {
        struct Known(Dataset, Cardinality);
        impl Node for Known {
            fn iter(&self) -> ElementIter {
                self.0.iter()
            }
            fn cardinality(&self) -> Cardinality {
                self.1
            }
        }
        Dataset::from_node(Known(self.clone(), cardinality))
    }
}

/// Wraps a tensor as a dataset element.
impl From<&Tensor> for Element {
    fn from(t: &Tensor) -> Self {
        Element::Tensor(t.clone())
    }
}

/// Data does not take part in autodiff: slicing a tensor that requires a gradient would otherwise
/// record one graph node per element.
fn detach(e: Element) -> Element {
    match e {
        Element::Tensor(t) => Element::Tensor(t.detach()),
        Element::Tuple(v) => Element::Tuple(v.into_iter().map(detach).collect()),
        Element::Dict(f) => Element::Dict(f.into_iter().map(|(k, e)| (k, detach(e))).collect()),
    }
}
