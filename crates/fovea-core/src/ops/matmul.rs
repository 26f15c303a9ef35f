//! Batched matrix multiplication with optional transposes, and its gradient.

use crate::backend::{backend, MatmulSpec};
use crate::{DType, Error, Result, Shape, Tensor};

impl Tensor {
    /// `self · other` over the last two axes (`tf.linalg.matmul`). Leading (batch) axes must be
    /// equal, or one operand may be a plain matrix shared across the other's batch.
    ///
    /// # Errors
    /// `RankMismatch` below rank 2; `ShapeMismatch` when inner dimensions or batch axes differ;
    /// `DTypeMismatch` unless both are f32.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        self.matmul_t(other, false, false)
    }

    /// `op(self) · op(other)` where `op` transposes the last two axes when its flag is set.
    ///
    /// # Errors
    /// As [`Tensor::matmul`].
    pub fn matmul_t(&self, other: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        const OP: &str = "matmul";
        self.same_device(OP, other)?;
        for t in [self, other] {
            if t.dtype() != DType::F32 {
                return Err(Error::dtype(OP, "float32", t.dtype()));
            }
            if t.rank() < 2 {
                return Err(Error::rank(OP, "at least 2 (a matrix)", t.shape()));
            }
        }
        let (ra, rb) = (self.rank(), other.rank());
        let (a_rows, a_cols) = (self.dims()[ra - 2], self.dims()[ra - 1]);
        let (b_rows, b_cols) = (other.dims()[rb - 2], other.dims()[rb - 1]);
        let (m, k) = if trans_a { (a_cols, a_rows) } else { (a_rows, a_cols) };
        let (k2, n) = if trans_b { (b_cols, b_rows) } else { (b_rows, b_cols) };
        if k != k2 {
            return Err(Error::shape(
                OP,
                format!("a right operand with {k} rows (after transposes) to match {}", self.shape()),
                other.shape(),
            ));
        }
        let (ba, bb) = (&self.dims()[..ra - 2], &other.dims()[..rb - 2]);
        let batch_dims: Vec<usize> = if ba == bb || bb.is_empty() {
            ba.to_vec()
        } else if ba.is_empty() {
            bb.to_vec()
        } else {
            return Err(Error::shape(OP, format!("batch axes equal to {ba:?} (or a plain matrix)"), other.shape()));
        };
        let batch: usize = batch_dims.iter().product();
        let spec = MatmulSpec {
            batch,
            m,
            k,
            n,
            a_batch_stride: if ba.is_empty() { 0 } else { m * k },
            b_batch_stride: if bb.is_empty() { 0 } else { k * n },
            trans_a,
            trans_b,
        };
        let y = backend(self.device()).matmul(self.storage(), other.storage(), &spec)?;
        let mut out_dims = batch_dims;
        out_dims.extend([m, n]);
        Ok(Tensor::from_op(y, Shape::new(out_dims), self.device(), OP, &[self, other], move |inputs, _, g| {
            let (a, b) = (&inputs[0], &inputs[1]);
            // C = AB: dA = dC·Bᵀ, dB = Aᵀ·dC; the transposed cases follow by symmetry.
            let (da, db) = match (trans_a, trans_b) {
                (false, false) => (g.matmul_t(b, false, true)?, a.matmul_t(g, true, false)?),
                (true, false) => (b.matmul_t(g, false, true)?, a.matmul_t(g, false, false)?),
                (false, true) => (g.matmul_t(b, false, false)?, g.matmul_t(a, true, false)?),
                (true, true) => (b.matmul_t(g, true, true)?, g.matmul_t(a, true, true)?),
            };
            Ok(vec![Some(da.sum_to_shape(a.shape())?), Some(db.sum_to_shape(b.shape())?)])
        }))
    }
}
