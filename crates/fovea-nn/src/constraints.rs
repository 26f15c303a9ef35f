//! Weight constraints with Keras's formulas (`keras.constraints`), applied by the optimizer to
//! a variable right after each update (`kernel_constraint=` / `bias_constraint=` on a layer).

use crate::Result;
use fovea_core::{no_grad, Tensor};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Keras's fuzz factor (`keras.backend.epsilon()`), added to norms before dividing.
const EPSILON: f32 = 1e-7;

/// The axes a norm is taken over: one axis or several, as Keras's `axis` argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Axes {
    /// One axis (negative counts from the end).
    One(isize),
    /// Several axes (e.g. `[0, 1, 2]` for every input position of a conv kernel).
    Many(Vec<isize>),
}

impl Default for Axes {
    /// Keras's default, axis 0: for a dense kernel `[in, out]`, the norm of each unit's weights.
    fn default() -> Self {
        Axes::One(0)
    }
}

impl Axes {
    fn list(&self) -> Vec<isize> {
        match self {
            Axes::One(a) => vec![*a],
            Axes::Many(v) => v.clone(),
        }
    }
}

/// A constraint on a weight, in Keras's config form (`{"class_name": "MaxNorm", "config": {..}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class_name", content = "config")]
pub enum Constraint {
    /// Rescales slices whose L2 norm over `axis` exceeds `max_value` down to it.
    MaxNorm {
        /// The largest norm allowed (Keras default 2).
        #[serde(default = "two")]
        max_value: f32,
        /// The axes of the norm.
        #[serde(default)]
        axis: Axes,
    },
    /// Sets negative weights to zero.
    NonNeg {},
    /// Rescales slices to unit L2 norm over `axis`.
    UnitNorm {
        /// The axes of the norm.
        #[serde(default)]
        axis: Axes,
    },
    /// Moves each slice's norm toward `[min_value, max_value]` by the fraction `rate`.
    MinMaxNorm {
        /// The smallest norm (default 0).
        #[serde(default)]
        min_value: f32,
        /// The largest norm (default 1).
        #[serde(default = "one")]
        max_value: f32,
        /// How far to move toward the clipped norm per application (default 1: all the way).
        #[serde(default = "one")]
        rate: f32,
        /// The axes of the norm.
        #[serde(default)]
        axis: Axes,
    },
    /// Clips every weight to `[min_value, max_value]` (clipping by value, as in WGAN critics).
    ClipByValue {
        /// Lower bound.
        min_value: f32,
        /// Upper bound.
        max_value: f32,
    },
}

fn one() -> f32 {
    1.0
}

fn two() -> f32 {
    2.0
}

impl Constraint {
    /// The constrained value of `w` (no gradient is recorded).
    ///
    /// # Errors
    /// Core errors, e.g. an axis out of range for `w`.
    pub fn apply(&self, w: &Tensor) -> Result<Tensor> {
        no_grad(|| -> Result<Tensor> {
            let norms = |axis: &Axes| -> Result<Tensor> { Ok(w.square()?.sum(&axis.list(), true)?.sqrt()?) };
            Ok(match self {
                Constraint::MaxNorm { max_value, axis } => {
                    let n = norms(axis)?;
                    w.mul(&n.clip(0.0, *max_value)?.div(&n.add_scalar(EPSILON)?)?)?
                }
                Constraint::NonNeg {} => w.mul(&w.ge(&w.zeros_like())?.cast(w.dtype())?)?,
                Constraint::UnitNorm { axis } => w.div(&norms(axis)?.add_scalar(EPSILON)?)?,
                Constraint::MinMaxNorm { min_value, max_value, rate, axis } => {
                    let n = norms(axis)?;
                    let desired = n.clip(*min_value, *max_value)?.mul_scalar(*rate)?.add(&n.mul_scalar(1.0 - rate)?)?;
                    w.mul(&desired.div(&n.add_scalar(EPSILON)?)?)?
                }
                Constraint::ClipByValue { min_value, max_value } => w.clip(*min_value, *max_value)?,
            })
        })
    }

    /// Attaches this constraint to `variable`, so that optimizers apply it after each update.
    pub fn attach(self, variable: &fovea_core::Variable) {
        let constraint = Arc::new(self);
        variable.set_constraint(Some(Arc::new(move |w: &Tensor| {
            constraint.apply(w).map_err(|e| fovea_core::Error::invalid("constraint", e.to_string()))
        })));
    }
}
