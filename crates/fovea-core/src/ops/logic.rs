//! Selection (`tf.where`), logical not and dtype casts.

use crate::backend::backend;
use crate::shape::broadcast_shapes;
use crate::{DType, Error, Result, Tensor};

impl Tensor {
    /// Picks `a` where this bool tensor is true and `b` elsewhere, broadcasting all three
    /// (`tf.where(cond, a, b)`). The gradient flows to the picked operand only.
    ///
    /// # Errors
    /// `DTypeMismatch` when the condition is not bool or `a` and `b` differ in dtype;
    /// `ShapeMismatch` when the shapes do not broadcast.
    pub fn select(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        const OP: &str = "where";
        if self.dtype() != DType::Bool {
            return Err(Error::dtype(OP, "a bool condition", self.dtype()));
        }
        if a.dtype() != b.dtype() {
            return Err(Error::dtype(OP, format!("both branches of one dtype ({} from the first)", a.dtype()), b.dtype()));
        }
        self.same_device(OP, a)?;
        a.same_device(OP, b)?;
        let out_shape = broadcast_shapes(OP, &broadcast_shapes(OP, self.shape(), a.shape())?, b.shape())?;
        let y = backend(self.device())?.select(self.storage(), self.shape(), a.storage(), a.shape(), b.storage(), b.shape(), &out_shape)?;
        Ok(Tensor::from_op(y, out_shape, self.device(), OP, &[self, a, b], |inputs, _, g| {
            let (cond, a, b) = (&inputs[0], &inputs[1], &inputs[2]);
            let zero = g.zeros_like();
            let ga = cond.select(g, &zero)?.sum_to_shape(a.shape())?;
            let gb = cond.select(&zero, g)?.sum_to_shape(b.shape())?;
            Ok(vec![None, Some(ga), Some(gb)])
        }))
    }

    /// Logical not of a bool tensor.
    ///
    /// # Errors
    /// `DTypeMismatch` unless bool.
    pub fn logical_not(&self) -> Result<Tensor> {
        if self.dtype() != DType::Bool {
            return Err(Error::dtype("logical_not", "bool", self.dtype()));
        }
        self.eq(&Tensor::full((), 0.0, DType::Bool, self.device())?)
    }

    /// Converts to another dtype (`tf.cast`): floats to integers truncate toward zero (and
    /// saturate), anything nonzero becomes true, true becomes 1. The gradient flows between
    /// float dtypes only.
    ///
    /// # Errors
    /// `Unsupported` for f16/bf16 on the CPU.
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let y = backend(self.device())?.cast(self.storage(), dtype)?;
        let from = self.dtype();
        Ok(Tensor::from_op(y, self.shape().clone(), self.device(), "cast", &[self], move |_, _, g| {
            Ok(vec![if dtype.is_float() { Some(g.cast(from)?) } else { None }])
        }))
    }
}
