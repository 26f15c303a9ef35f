//! Reductions over any set of axes with `keepdims`: sum, mean, max, min, prod, variance,
//! argmax, argmin — and `sum_to_shape`, which undoes broadcasting in gradients.

use crate::backend::{backend, ReduceOp};
use crate::{DType, Error, Result, Shape, Storage, Tensor};

fn reduced_shape(shape: &Shape, axes: &[usize], keepdims: bool) -> Shape {
    let dims = shape.dims();
    Shape::new(
        (0..dims.len())
            .filter_map(|i| match (axes.contains(&i), keepdims) {
                (false, _) => Some(dims[i]),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect::<Vec<_>>(),
    )
}

impl Tensor {
    fn reduce_raw(&self, op: ReduceOp, axes: &[usize], keepdims: bool) -> Result<(Storage, Shape)> {
        let y = backend(self.device()).reduce(op, self.storage(), self.shape(), axes)?;
        Ok((y, reduced_shape(self.shape(), axes, keepdims)))
    }

    fn check_reducible(&self, op: &'static str, axes: &[usize]) -> Result<()> {
        if let Some(&a) = axes.iter().find(|&&a| self.dims()[a] == 0) {
            if matches!(op, "max" | "min" | "argmax" | "argmin") {
                return Err(Error::invalid(op, format!("cannot reduce axis {a} of size 0 in shape {}", self.shape())));
            }
        }
        if self.dtype() == DType::Bool || (self.dtype() == DType::U8 && !matches!(op, "max" | "min" | "argmax" | "argmin")) {
            return Err(Error::dtype(op, "float32 or int64 (cast first)", self.dtype()));
        }
        Ok(())
    }

    /// Sum over `axes` (empty: no reduction; see [`Tensor::sum_all`]).
    ///
    /// # Errors
    /// `InvalidArgument` for an axis out of range or repeated; `DTypeMismatch` for bool/u8.
    pub fn sum(&self, axes: &[isize], keepdims: bool) -> Result<Tensor> {
        let ax = self.shape().axes("sum", axes)?;
        self.check_reducible("sum", &ax)?;
        if ax.is_empty() {
            return Ok(self.clone());
        }
        let (y, y_shape) = self.reduce_raw(ReduceOp::Sum, &ax, keepdims)?;
        let kept = reduced_shape(self.shape(), &ax, true);
        Ok(Tensor::from_op(y, y_shape, self.device(), "sum", &[self], move |inputs, _, g| {
            Ok(vec![Some(g.reshape_to(kept.clone())?.broadcast_to(inputs[0].shape().clone())?)])
        }))
    }

    /// Sum of all elements, as a scalar.
    ///
    /// # Errors
    /// `DTypeMismatch` for bool/u8.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&self.all_axes(), false)
    }

    /// Mean over `axes` (empty: no reduction).
    ///
    /// # Errors
    /// As [`Tensor::sum`]; the dtype must be f32.
    pub fn mean(&self, axes: &[isize], keepdims: bool) -> Result<Tensor> {
        if self.dtype() != DType::F32 {
            return Err(Error::dtype("mean", "float32", self.dtype()));
        }
        let ax = self.shape().axes("mean", axes)?;
        let count: usize = ax.iter().map(|&a| self.dims()[a]).product();
        self.sum(axes, keepdims)?.mul_scalar(1.0 / count.max(1) as f32)
    }

    /// Mean of all elements, as a scalar.
    ///
    /// # Errors
    /// `DTypeMismatch` unless f32.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&self.all_axes(), false)
    }

    /// Population variance over `axes` (`tf.math.reduce_variance`).
    ///
    /// # Errors
    /// As [`Tensor::mean`].
    pub fn variance(&self, axes: &[isize], keepdims: bool) -> Result<Tensor> {
        let mu = self.mean(axes, true)?;
        self.sub(&mu)?.square()?.mean(axes, keepdims)
    }

    fn extremum(&self, op: ReduceOp, name: &'static str, axes: &[isize], keepdims: bool) -> Result<Tensor> {
        let ax = self.shape().axes(name, axes)?;
        self.check_reducible(name, &ax)?;
        if ax.is_empty() {
            return Ok(self.clone());
        }
        let (y, y_shape) = self.reduce_raw(op, &ax, keepdims)?;
        let kept = reduced_shape(self.shape(), &ax, true);
        let axes_i: Vec<isize> = ax.iter().map(|&a| a as isize).collect();
        Ok(Tensor::from_op(y, y_shape, self.device(), name, &[self], move |inputs, out, g| {
            // Ties share the gradient equally, as TensorFlow's reduce_max gradient does.
            let x = &inputs[0];
            let hit = x.eq(&out.reshape_to(kept.clone())?)?.cast(DType::F32)?;
            let count = hit.sum(&axes_i, true)?;
            let g = g.reshape_to(kept.clone())?;
            Ok(vec![Some(hit.mul(&g)?.div(&count)?)])
        }))
    }

    /// Maximum over `axes`.
    ///
    /// # Errors
    /// As [`Tensor::sum`], and `InvalidArgument` for an empty axis.
    pub fn max(&self, axes: &[isize], keepdims: bool) -> Result<Tensor> {
        self.extremum(ReduceOp::Max, "max", axes, keepdims)
    }

    /// Minimum over `axes`.
    ///
    /// # Errors
    /// As [`Tensor::max`].
    pub fn min(&self, axes: &[isize], keepdims: bool) -> Result<Tensor> {
        self.extremum(ReduceOp::Min, "min", axes, keepdims)
    }

    /// Product over `axes`; the gradient is exact with zeros present.
    ///
    /// # Errors
    /// As [`Tensor::sum`].
    pub fn prod(&self, axes: &[isize], keepdims: bool) -> Result<Tensor> {
        let ax = self.shape().axes("prod", axes)?;
        self.check_reducible("prod", &ax)?;
        if ax.is_empty() {
            return Ok(self.clone());
        }
        let (y, y_shape) = self.reduce_raw(ReduceOp::Prod, &ax, keepdims)?;
        let kept = reduced_shape(self.shape(), &ax, true);
        let axes_i: Vec<isize> = ax.iter().map(|&a| a as isize).collect();
        Ok(Tensor::from_op(y, y_shape, self.device(), "prod", &[self], move |inputs, _, g| {
            // d prod / d x_i = product of the others: p/x_i without zeros; with exactly one zero
            // only that element gets the product of the rest; with two or more, all get 0.
            let x = &inputs[0];
            let zero = x.zeros_like();
            let nonzero = x.ne(&zero)?;
            let x_safe = nonzero.select(x, &x.ones_like())?;
            let p = x_safe.prod(&axes_i, true)?;
            let zeros = nonzero.logical_not()?.cast(DType::F32)?.sum(&axes_i, true)?;
            let no_zero = zeros.eq(&Tensor::scalar(0.0, x.device()))?;
            let one_zero = zeros.eq(&Tensor::scalar(1.0, x.device()))?;
            let others = no_zero.select(
                &p.div(&x_safe)?,
                &one_zero.logical_and(&nonzero.logical_not()?)?.select(&p.broadcast_to(x.shape().clone())?, &zero)?,
            )?;
            Ok(vec![Some(others.mul(&g.reshape_to(kept.clone())?)?)])
        }))
    }

    fn arg_extremum(&self, op: ReduceOp, name: &'static str, axis: isize) -> Result<Tensor> {
        let a = self.shape().axis(name, axis)?;
        self.check_reducible(name, &[a])?;
        let (y, shape) = self.reduce_raw(op, &[a], false)?;
        Tensor::from_storage(y, shape, self.device())
    }

    /// Index of the largest element along `axis` (first on ties), as i64.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad or empty axis; `DTypeMismatch` for bool.
    pub fn argmax(&self, axis: isize) -> Result<Tensor> {
        self.arg_extremum(ReduceOp::ArgMax, "argmax", axis)
    }

    /// Index of the smallest element along `axis` (first on ties), as i64.
    ///
    /// # Errors
    /// As [`Tensor::argmax`].
    pub fn argmin(&self, axis: isize) -> Result<Tensor> {
        self.arg_extremum(ReduceOp::ArgMin, "argmin", axis)
    }

    /// Sums a broadcast gradient back to `shape` (the inverse of broadcasting `shape` to ours).
    ///
    /// # Errors
    /// `ShapeMismatch` when `shape` does not broadcast to this tensor's shape.
    pub fn sum_to_shape(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let (r, s) = (self.rank(), shape.rank());
        if s > r {
            return Err(Error::shape("sum_to_shape", format!("a shape of rank <= {r}"), shape));
        }
        let mut axes = Vec::new();
        for i in 0..r {
            let target = if i < r - s { 1 } else { shape.dims()[i - (r - s)] };
            if i < r - s || (target == 1 && self.dims()[i] != 1) {
                axes.push(i as isize);
            } else if target != self.dims()[i] {
                return Err(Error::shape("sum_to_shape", format!("a shape that broadcasts to {}", self.shape()), shape));
            }
        }
        self.sum(&axes, false)?.reshape_to(shape.clone())
    }

    pub(crate) fn all_axes(&self) -> Vec<isize> {
        (0..self.rank() as isize).collect()
    }
}
