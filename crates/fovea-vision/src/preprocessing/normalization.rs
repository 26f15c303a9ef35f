//! `keras.layers.Normalization`: fixed or adapted per-axis statistics.

use fovea_core::{DType, Device, Tensor, Variable};
use fovea_nn::initializers::Initializer;
use fovea_nn::layer::{format_shape, Layer, LayerBase, ShapeSpec};
use fovea_nn::{Error, Result};
use serde_json::{json, Value};
use std::sync::RwLock;

/// The statistics a [`Normalization`] layer divides by: fixed at construction, or adapted.
enum Stats {
    Given { mean: Vec<f32>, variance: Vec<f32> },
    Adapted { mean: Variable, variance: Variable, count: Variable },
}

/// What `build` fixes: the statistics, the kept axes (non-negative) and the broadcast shape.
type Built = (Stats, Vec<usize>, Vec<usize>);

/// `keras.layers.Normalization`: `(x − mean) / max(√variance, 1e-7)` (or its inverse with
/// `invert`), with one mean and variance per index of the kept `axis` (default: the last).
///
/// The statistics are either given ([`Normalization::with_stats`]) or computed from data with
/// [`Normalization::adapt`] / [`Normalization::adapt_batches`]; an adapted layer has Keras's
/// three non-trainable weights `mean`, `variance` and `count`, so it saves and loads like any
/// other layer.
pub struct Normalization {
    base: LayerBase,
    axis: Vec<isize>,
    invert: bool,
    given: Option<(Vec<f32>, Vec<f32>)>,
    state: RwLock<Option<Built>>,
}

impl Normalization {
    /// Normalizes along `axis` (Keras default `[-1]`: per channel); an empty list means one
    /// mean and variance for everything.
    pub fn new(axis: &[isize]) -> Self {
        Normalization { base: LayerBase::new("Normalization"), axis: axis.to_vec(), invert: false, given: None, state: RwLock::new(None) }
    }

    /// Fixed statistics instead of adapted ones: one value per kept index, or a single value
    /// for all.
    ///
    /// # Errors
    /// `Config` when the lengths differ, a variance is negative, or a value is NaN.
    pub fn with_stats(mut self, mean: &[f32], variance: &[f32]) -> Result<Self> {
        if mean.len() != variance.len() {
            return Err(Error::Config(format!(
                "Normalization: mean and variance must have the same length, got {} and {}",
                mean.len(),
                variance.len()
            )));
        }
        if mean.iter().chain(variance).any(|v| v.is_nan()) || variance.iter().any(|&v| v < 0.0) {
            return Err(Error::Config(format!(
                "Normalization: expected non-NaN statistics and non-negative variances, got mean={mean:?}, variance={variance:?}"
            )));
        }
        self.given = Some((mean.to_vec(), variance.to_vec()));
        Ok(self)
    }

    /// Denormalizes instead: `mean + x · max(√variance, 1e-7)` (Keras's `invert=True`).
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }

    /// The kept axes (non-negative, sorted) for inputs of rank `ndim`.
    fn keep_axes(&self, ndim: usize) -> Result<Vec<usize>> {
        let mut keep = Vec::new();
        for &a in &self.axis {
            let r = if a < 0 { a + ndim as isize } else { a };
            if r < 0 || r as usize >= ndim {
                return Err(self.base.error(format!("axis {a} is out of range for inputs of rank {ndim}")));
            }
            keep.push(r as usize);
        }
        keep.sort_unstable();
        keep.dedup();
        Ok(keep)
    }

    fn build_for(&self, s: &ShapeSpec) -> Result<()> {
        // A model that rebuilds its layers must not add a second set of weights.
        if self.state.read().expect("normalization state").is_some() {
            return Ok(());
        }
        let keep = self.keep_axes(s.len())?;
        let mut bshape = vec![1usize; s.len()];
        for &k in &keep {
            bshape[k] =
                s[k].ok_or_else(|| self.base.error(format!("axis {k} must have a known size, got input shape {}", format_shape(s))))?;
        }
        let stat_shape: Vec<usize> = keep.iter().map(|&k| bshape[k]).collect();
        let n: usize = stat_shape.iter().product();
        let stats = match &self.given {
            Some((m, v)) => {
                let widen = |x: &[f32]| if x.len() == 1 { vec![x[0]; n] } else { x.to_vec() };
                if m.len() != 1 && m.len() != n {
                    return Err(self.base.error(format!(
                        "expected 1 or {n} mean/variance values for the kept axes of shape {stat_shape:?}, got {}",
                        m.len()
                    )));
                }
                Stats::Given { mean: widen(m), variance: widen(v) }
            }
            None => Stats::Adapted {
                mean: self.base.add_weight("mean", &stat_shape, &Initializer::Zeros, false, None)?,
                variance: self.base.add_weight("variance", &stat_shape, &Initializer::Ones, false, None)?,
                count: self.base.add_weight("count", &[], &Initializer::Zeros, false, None)?,
            },
        };
        *self.state.write().expect("normalization state") = Some((stats, keep, bshape));
        Ok(())
    }

    /// Computes the mean and variance of `data` over every axis but the kept ones (Keras's
    /// `adapt` on an array). Builds the layer for `data`'s shape if it is not built yet.
    ///
    /// # Errors
    /// `Layer` when the layer has fixed statistics, `data` is empty, not float32/uint8, or its
    /// kept axes differ from the built shape.
    pub fn adapt(&self, data: &Tensor) -> Result<()> {
        self.adapt_batches(std::iter::once(data.clone()))
    }

    /// [`Normalization::adapt`] over batches (Keras's `adapt` on a dataset), combining each
    /// batch's mean and variance with the running ones exactly as Keras does.
    ///
    /// # Errors
    /// As [`Normalization::adapt`]; also for an empty iterator.
    pub fn adapt_batches(&self, batches: impl IntoIterator<Item = Tensor>) -> Result<()> {
        if self.given.is_some() {
            return Err(self.base.error("adapt() cannot be used on a Normalization layer given a mean and variance"));
        }
        let mut totals: Option<(Vec<f64>, Vec<f64>, f64)> = None;
        for batch in batches {
            let batch = match batch.dtype() {
                DType::F32 => batch,
                DType::U8 => batch.cast(DType::F32)?,
                other => return Err(self.base.error(format!("adapt() expected float32 or uint8 data, got {other}"))),
            };
            if batch.numel() == 0 {
                return Err(self.base.error(format!("adapt() expected non-empty data, got shape {}", batch.shape())));
            }
            if !self.base.is_built() {
                let spec: ShapeSpec = batch.dims().iter().map(|&d| Some(d)).collect();
                self.build_for(&spec)?;
                self.base.mark_built();
            }
            let (keep, bshape) = {
                let st = self.state.read().expect("normalization state");
                let (_, keep, bshape) = st.as_ref().expect("built above");
                (keep.clone(), bshape.clone())
            };
            if batch.rank() != bshape.len() || keep.iter().any(|&k| batch.dims()[k] != bshape[k]) {
                return Err(self.base.error(format!(
                    "adapt() data of shape {} does not match the layer's kept axes {keep:?} of sizes {:?}",
                    batch.shape(),
                    keep.iter().map(|&k| bshape[k]).collect::<Vec<_>>()
                )));
            }
            let reduce: Vec<isize> = (0..batch.rank()).filter(|d| !keep.contains(d)).map(|d| d as isize).collect();
            let (bm, bv, count) = if reduce.is_empty() {
                (batch.clone(), batch.zeros_like(), 1.0)
            } else {
                let m = batch.mean(&reduce, true)?;
                let v = batch.sub(&m)?.square()?.mean(&reduce, true)?;
                let count: usize = reduce.iter().map(|&d| batch.dims()[d as usize]).product();
                (m, v, count as f64)
            };
            let bm: Vec<f64> = bm.to_vec::<f32>()?.into_iter().map(f64::from).collect();
            let bv: Vec<f64> = bv.to_vec::<f32>()?.into_iter().map(f64::from).collect();
            totals = Some(match totals {
                None => (bm, bv, count),
                Some((tm, tv, tc)) => {
                    let total = tc + count;
                    let (wb, we) = (count / total, tc / total);
                    let nm: Vec<f64> = tm.iter().zip(&bm).map(|(a, b)| a * we + b * wb).collect();
                    let nv =
                        (0..tm.len()).map(|i| (tv[i] + (tm[i] - nm[i]).powi(2)) * we + (bv[i] + (bm[i] - nm[i]).powi(2)) * wb).collect();
                    (nm, nv, total)
                }
            });
        }
        let (m, v, n) = totals.ok_or_else(|| self.base.error("adapt() received no batches; expected at least one"))?;
        let st = self.state.read().expect("normalization state");
        if let Some((Stats::Adapted { mean, variance, count }, _, _)) = st.as_ref() {
            let shape = mean.value().shape().clone();
            mean.assign(&Tensor::from_vec(m.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape.clone(), Device::Cpu)?)?;
            variance.assign(&Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape, Device::Cpu)?)?;
            count.assign(&Tensor::scalar(n as f32, Device::Cpu)?)?;
        }
        Ok(())
    }

    /// The current mean and variance, flattened over the kept axes (`None` before build).
    ///
    /// # Errors
    /// Core errors reading the weights.
    pub fn stats(&self) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        let st = self.state.read().expect("normalization state");
        Ok(match st.as_ref() {
            None => None,
            Some((Stats::Given { mean, variance }, _, _)) => Some((mean.clone(), variance.clone())),
            Some((Stats::Adapted { mean, variance, .. }, _, _)) => Some((mean.value().to_vec()?, variance.value().to_vec()?)),
        })
    }

    fn output_shape(&self, s: &ShapeSpec) -> Result<ShapeSpec> {
        Ok(s.clone())
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        let x = if x.dtype() == DType::F32 { x.clone() } else { x.cast(DType::F32)? };
        let st = self.state.read().expect("normalization state");
        let (stats, _, bshape) = st.as_ref().ok_or_else(|| self.base.error("the layer must be built (or adapted) before use"))?;
        if x.rank() != bshape.len() || bshape.iter().zip(x.dims()).any(|(&b, &d)| b != 1 && b != d) {
            return Err(self
                .base
                .error(format!("expected inputs broadcastable with the statistics' shape {bshape:?}, got shape {}", x.shape())));
        }
        let dev = x.device();
        let (mean, var) = match stats {
            Stats::Given { mean, variance } => {
                (Tensor::from_vec(mean.clone(), bshape.clone(), dev)?, Tensor::from_vec(variance.clone(), bshape.clone(), dev)?)
            }
            Stats::Adapted { mean, variance, .. } => {
                (mean.value().reshape_to(bshape.clone())?, variance.value().reshape_to(bshape.clone())?)
            }
        };
        let std = var.sqrt()?.maximum(&Tensor::scalar(1e-7, dev)?)?;
        Ok(if self.invert { x.mul(&std)?.add(&mean)? } else { x.sub(&mean)?.div(&std)? })
    }

    fn keras_config(&self) -> Value {
        let (m, v) = match &self.given {
            Some((m, v)) => (json!(m), json!(v)),
            None => (Value::Null, Value::Null),
        };
        json!({"axis": self.axis, "invert": self.invert, "mean": m, "variance": v})
    }
}

impl Layer for Normalization {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "Normalization"
    }

    fn build(&self, shapes: &[ShapeSpec]) -> Result<()> {
        self.build_for(fovea_nn::layer::single_shape(&self.base, shapes)?)
    }

    fn compute_output_shape(&self, shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        self.output_shape(fovea_nn::layer::single_shape(&self.base, shapes)?)
    }

    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        self.forward(fovea_nn::layer::single_input(&self.base, inputs)?, training).map_err(|e| match e {
            Error::Core(c) => self.base.error(c.to_string()),
            other => other,
        })
    }

    fn config(&self) -> Value {
        let mut c = self.keras_config();
        c["name"] = json!(self.name());
        c["trainable"] = json!(self.trainable());
        c["dtype"] = super::dtype_policy();
        c
    }
}
