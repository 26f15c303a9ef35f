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
        let y = backend(self.device())?.reduce(op, self.storage(), self.shape(), axes)?;
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
        crate::ops::check_float("mean", self)?;
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
            let hit = x.eq(&out.reshape_to(kept.clone())?)?.cast(x.dtype())?;
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
            let zeros = nonzero.logical_not()?.cast(DType::F32)?.sum(&axes_i, true)?.cast(x.dtype())?;
            let no_zero = zeros.eq(&zeros.zeros_like())?;
            let one_zero = zeros.eq(&zeros.ones_like())?;
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

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gradcheck, rand};
    use crate::{backend_test, DType, Tensor};

    backend_test!(reductions_over_axis_sets_with_keepdims, |dev| {
        let x = Tensor::arange(0.0, 24.0, 1.0, dev).unwrap().reshape(&[2, 3, 4]).unwrap();
        let s = x.sum(&[0, 2], false).unwrap();
        assert_eq!(s.dims(), &[3]);
        // rows j: Σ_i Σ_k (12i + 4j + k) = 2·(6 + 16j) + 12·4·... computed directly:
        assert_eq!(s.to_vec::<f32>().unwrap(), vec![60.0, 92.0, 124.0]);
        let m = x.mean(&[-1], true).unwrap();
        assert_eq!(m.dims(), &[2, 3, 1]);
        assert_eq!(m.to_vec::<f32>().unwrap(), vec![1.5, 5.5, 9.5, 13.5, 17.5, 21.5]);
        assert_eq!(x.max(&[1], false).unwrap().to_vec::<f32>().unwrap(), vec![8.0, 9.0, 10.0, 11.0, 20.0, 21.0, 22.0, 23.0]);
        assert_eq!(x.min(&[0, 1, 2], false).unwrap().to_scalar::<f32>().unwrap(), 0.0);
        assert_eq!(x.argmax(1).unwrap().to_vec::<i64>().unwrap(), vec![2; 8]);
        assert_eq!(x.argmin(-1).unwrap().to_vec::<i64>().unwrap(), vec![0; 6]);
        let v = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [4], dev).unwrap();
        assert_eq!(v.variance(&[0], false).unwrap().to_scalar::<f32>().unwrap(), 1.25);
        assert_eq!(v.prod(&[0], false).unwrap().to_scalar::<f32>().unwrap(), 24.0);
        let i = Tensor::from_vec(vec![3i64, -1, 7], [3], dev).unwrap();
        assert_eq!(i.sum_all().unwrap().to_scalar::<i64>().unwrap(), 9);
        assert_eq!(i.argmax(0).unwrap().to_scalar::<i64>().unwrap(), 2);
    });

    backend_test!(reduction_gradients_pass_gradcheck, |dev| {
        let x = rand(&[2, 3, 4], -2.0, 2.0, 5, dev);
        gradcheck(|t| t[0].sum(&[0, 2], true), &[x.clone()], 1e-3, 2e-3).unwrap();
        gradcheck(|t| t[0].mean(&[1], false), &[x.clone()], 1e-3, 2e-3).unwrap();
        gradcheck(|t| t[0].max(&[2], false), &[x.clone()], 1e-3, 2e-3).unwrap();
        gradcheck(|t| t[0].min(&[0, 1], true), &[x.clone()], 1e-3, 2e-3).unwrap();
        gradcheck(|t| t[0].variance(&[0, 2], false), &[x.clone()], 1e-3, 2e-3).unwrap();
        gradcheck(|t| t[0].prod(&[2], false), &[x.clone()], 1e-3, 2e-3).unwrap();
    });

    backend_test!(max_ties_share_and_prod_handles_zeros, |dev| {
        let x = Tensor::from_vec(vec![1.0f32, 3.0, 3.0, 0.0], [4], dev).unwrap().with_requires_grad(true).unwrap();
        let g = x.max(&[0], false).unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 0.5, 0.5, 0.0]);
        // One zero: only it receives the product of the others (1·3·3 = 9).
        let g = x.prod(&[0], false).unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 0.0, 0.0, 9.0]);
        let z = Tensor::from_vec(vec![0.0f32, 2.0, 0.0], [3], dev).unwrap().with_requires_grad(true).unwrap();
        let g = z.prod(&[0], false).unwrap().backward().unwrap();
        assert_eq!(g.get(&z).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 0.0, 0.0]);
    });

    backend_test!(sum_to_shape_undoes_broadcasting, |dev| {
        let g = Tensor::ones([2, 3, 4], DType::F32, dev).unwrap();
        let s = g.sum_to_shape(&crate::Shape::new([3, 1])).unwrap();
        assert_eq!(s.dims(), &[3, 1]);
        assert_close("sum_to_shape", &s.to_vec::<f32>().unwrap(), &[8.0, 8.0, 8.0], 0.0, 0.0);
        assert!(g.sum_to_shape(&crate::Shape::new([2, 4])).is_err());
    });

    backend_test!(reduction_errors_name_the_problem, |dev| {
        let x = Tensor::zeros([2, 3], DType::F32, dev).unwrap();
        let e = x.sum(&[2], false).unwrap_err().to_string();
        assert!(e.contains("sum: invalid argument: axis 2 is out of range for a tensor of rank 2"), "{e}");
        assert!(x.sum(&[1, -1], false).unwrap_err().to_string().contains("given twice"));
        let empty = Tensor::zeros([0, 3], DType::F32, dev).unwrap();
        assert!(empty.max(&[0], false).unwrap_err().to_string().contains("size 0"));
        let b = Tensor::zeros([2], DType::Bool, dev).unwrap();
        assert!(b.sum_all().unwrap_err().to_string().contains("expected dtype float32 or int64"));
        let i = Tensor::zeros([2], DType::I64, dev).unwrap();
        assert!(i.mean_all().is_err());
    });
}
