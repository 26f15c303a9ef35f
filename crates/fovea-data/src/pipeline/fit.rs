//! Feeding a [`Dataset`] to `fit` and `evaluate`: a dataset of batched `(x, y)` or
//! `(x, y, sample_weight)` elements is a [`BatchSource`]; `x` and `y` may themselves be tuples
//! for models with several inputs or outputs.

use super::{Cardinality, Dataset, Element};
use fovea_core::Tensor;
use fovea_nn::model::training::{Batch, BatchSource, Batches};

fn leaves(e: &Element, what: &str) -> fovea_nn::Result<Vec<Tensor>> {
    match e {
        Element::Tensor(t) => Ok(vec![t.clone()]),
        Element::Tuple(items) => {
            items.iter().map(|i| i.tensor().cloned().map_err(|err| fovea_nn::Error::Config(format!("{what}: {err}")))).collect()
        }
        Element::Dict(_) => {
            Err(fovea_nn::Error::Config(format!("{what}: named fields are not supported here; map the dataset to (x, y) tuples")))
        }
    }
}

fn to_batch(e: Element) -> fovea_nn::Result<Batch> {
    let Element::Tuple(parts) = &e else {
        return Err(fovea_nn::Error::Config(format!(
            "fit expects dataset elements (x, y) or (x, y, sample_weight), got {}",
            e.signature()
        )));
    };
    match parts.as_slice() {
        [x, y] => Ok(Batch { x: leaves(x, "inputs")?, y: leaves(y, "targets")?, sample_weight: None }),
        [x, y, w] => Ok(Batch {
            x: leaves(x, "inputs")?,
            y: leaves(y, "targets")?,
            sample_weight: Some(w.tensor().map_err(|err| fovea_nn::Error::Config(format!("sample_weight: {err}")))?.clone()),
        }),
        _ => Err(fovea_nn::Error::Config(format!(
            "fit expects dataset elements (x, y) or (x, y, sample_weight), got a tuple of {}",
            parts.len()
        ))),
    }
}

impl BatchSource for Dataset {
    fn batches(&self, _epoch: usize) -> fovea_nn::Result<Batches<'_>> {
        // The dataset's own shuffle reshuffles on every new iteration.
        Ok(Box::new(self.iter().map(|e| to_batch(e.map_err(|err| fovea_nn::Error::Config(err.to_string()))?))))
    }

    fn steps(&self) -> Option<usize> {
        match self.cardinality() {
            Cardinality::Finite(n) => Some(n as usize),
            _ => None,
        }
    }
}
