//! Batched matrix multiplication with optional transposes, and its gradient.

use crate::backend::{backend, MatmulSpec};
use crate::{Error, Result, Shape, Tensor};

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
        if let Some([a, b]) = crate::autocast::operands([self, other])? {
            return a.matmul_t(&b, trans_a, trans_b);
        }
        self.same_device(OP, other)?;
        crate::ops::check_same_float(OP, self, other)?;
        for t in [self, other] {
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
        let y = backend(self.device())?.matmul(self.storage(), other.storage(), &spec)?;
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

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gradcheck, rand};
    use crate::{backend_test, DType, Device, Tensor};

    backend_test!(matmul_values_and_transposes, |dev| {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3], dev).unwrap();
        let b = Tensor::from_vec(vec![7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0], [3, 2], dev).unwrap();
        assert_eq!(a.matmul(&b).unwrap().to_vec::<f32>().unwrap(), vec![58.0, 64.0, 139.0, 154.0]);
        // aᵀ·a is 3×3 and symmetric.
        let ata = a.matmul_t(&a, true, false).unwrap();
        assert_eq!(ata.to_vec::<f32>().unwrap(), vec![17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]);
        let abt = a.matmul_t(&a, false, true).unwrap();
        assert_eq!(abt.to_vec::<f32>().unwrap(), vec![14.0, 32.0, 32.0, 77.0]);
    });

    backend_test!(matmul_gradients_every_transpose_and_broadcast, |dev| {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = rand(if ta { &[2, 4, 3] } else { &[2, 3, 4] }, -1.0, 1.0, 1, dev);
            let b = rand(if tb { &[5, 4] } else { &[4, 5] }, -1.0, 1.0, 2, dev);
            gradcheck(|t| t[0].matmul_t(&t[1], ta, tb), &[a, b], 1e-3, 2e-3).unwrap();
        }
    });

    #[test]
    fn cpu_gemm_matches_reference_on_odd_sizes() {
        for (m, k, n) in [(1, 1, 1), (7, 13, 5), (65, 33, 130), (128, 256, 64)] {
            let a = rand(&[m, k], -1.0, 1.0, 3, Device::Cpu);
            let b = rand(&[3, k, n], -1.0, 1.0, 4, Device::Cpu);
            let c = a.matmul(&b).unwrap();
            let r = a.to(Device::Reference).unwrap().matmul(&b.to(Device::Reference).unwrap()).unwrap();
            assert_close(&format!("{m}x{k}x{n}"), &c.to_vec::<f32>().unwrap(), &r.to_vec::<f32>().unwrap(), 1e-4, 1e-5);
        }
    }

    #[test]
    fn matmul_errors_show_both_shapes() {
        let a = Tensor::zeros([2, 3], DType::F32, Device::Cpu).unwrap();
        let b = Tensor::zeros([4, 5], DType::F32, Device::Cpu).unwrap();
        let e = a.matmul(&b).unwrap_err().to_string();
        assert!(e.contains("matmul") && e.contains("[2, 3]") && e.contains("[4, 5]"), "{e}");
        let v = Tensor::zeros([3], DType::F32, Device::Cpu).unwrap();
        assert!(a.matmul(&v).unwrap_err().to_string().contains("rank at least 2"));
        let x = Tensor::zeros([2, 2, 3], DType::F32, Device::Cpu).unwrap();
        let y = Tensor::zeros([3, 3, 1], DType::F32, Device::Cpu).unwrap();
        assert!(x.matmul(&y).unwrap_err().to_string().contains("batch axes"));
    }
}
