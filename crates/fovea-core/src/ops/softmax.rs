//! Softmax, log-softmax and log-sum-exp, composed from reductions and element-wise ops.
//!
//! All three subtract the maximum before exponentiating, so logits like ±1000 neither overflow
//! nor underflow to 0/0. The maximum is a constant shift (the results do not depend on it), so
//! it is detached: the gradient is exact and avoids the max op's tie-splitting backward.

use crate::{Result, Storage, Tensor};

/// The storage of a tensor nobody else holds, without copying it when possible.
fn take_storage(mut t: Tensor) -> Storage {
    match t.storage_mut_if_unique() {
        Some(s) => std::mem::replace(s, Storage::host(crate::HostData::F32(Vec::new()))),
        None => t.storage().clone(),
    }
}

impl Tensor {
    fn check_float(&self, op: &'static str) -> Result<()> {
        crate::ops::check_float(op, self)?;
        Ok(())
    }

    /// `exp(x − max)` and its sum along `axis` (kept), the shared core of softmax.
    fn shifted_exp(&self, axis: isize) -> Result<(Tensor, Tensor)> {
        let m = self.max(&[axis], true)?.detach();
        let e = self.sub(&m)?.exp()?;
        let s = e.sum(&[axis], true)?;
        Ok((e, s))
    }

    /// `exp(x) / Σ exp(x)` along `axis` (`tf.nn.softmax`), computed stably.
    ///
    /// The backward pass is recorded as one op: with `y` the output and `g` its gradient,
    /// `dx = y ⊙ (g − Σ_axis g ⊙ y)` — cheaper than differentiating through the composition,
    /// and tested against it.
    ///
    /// # Errors
    /// `DTypeMismatch` unless f32; `InvalidArgument` for an axis out of range or of size 0.
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        const OP: &str = "softmax";
        self.check_float(OP)?;
        let a = self.shape().axis(OP, axis)?;
        if self.numel() == 0 {
            return Ok(self.clone()); // nothing to normalize (TensorFlow returns the empty tensor)
        }
        let y = crate::no_grad(|| -> Result<Tensor> {
            let (e, s) = self.shifted_exp(a as isize)?;
            e.div(&s)
        })?;
        Ok(Tensor::from_op(take_storage(y), self.shape().clone(), self.device(), OP, &[self], move |_, y, g| {
            // d softmax: J = diag(y) − y yᵀ, so Jᵀg = y ⊙ (g − ⟨g, y⟩).
            let dot = g.mul(y)?.sum(&[a as isize], true)?;
            Ok(vec![Some(y.mul(&g.sub(&dot)?)?)])
        }))
    }

    /// `x − log Σ exp(x)` along `axis` (`tf.nn.log_softmax`), computed stably; its gradient
    /// comes from the composition (`g − softmax ⊙ Σ g`).
    ///
    /// # Errors
    /// As [`Tensor::softmax`].
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        const OP: &str = "log_softmax";
        self.check_float(OP)?;
        let a = self.shape().axis(OP, axis)? as isize;
        if self.numel() == 0 {
            return Ok(self.clone());
        }
        let m = self.max(&[a], true)?.detach();
        let shifted = self.sub(&m)?;
        let lse = shifted.exp()?.sum(&[a], true)?.log()?;
        shifted.sub(&lse)
    }

    /// `log Σ exp(x)` over `axes` (`tf.reduce_logsumexp`), computed stably. As TensorFlow, a
    /// non-finite maximum (all `-inf`, or `inf`) is not subtracted, so an all-`-inf` slice gives
    /// `-inf` rather than NaN. Empty `axes` reduces nothing.
    ///
    /// # Errors
    /// `DTypeMismatch` unless f32; `InvalidArgument` for an axis out of range, repeated or of
    /// size 0.
    pub fn logsumexp(&self, axes: &[isize], keepdims: bool) -> Result<Tensor> {
        const OP: &str = "logsumexp";
        self.check_float(OP)?;
        let ax = self.shape().axes(OP, axes)?;
        if ax.is_empty() {
            return Ok(self.clone());
        }
        let ax: Vec<isize> = ax.into_iter().map(|a| a as isize).collect();
        let raw = self.max(&ax, true)?.detach();
        let finite = raw.abs()?.lt(&Tensor::full((), f64::INFINITY, self.dtype(), self.device())?)?;
        let m = finite.select(&raw, &raw.zeros_like())?;
        let y = self.sub(&m)?.exp()?.sum(&ax, true)?.log()?.add(&m)?;
        if keepdims {
            Ok(y)
        } else {
            y.squeeze(&ax)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, assert_tensor_close, gradcheck, rand};
    use crate::{backend_test, DType, Tensor};

    fn vals(t: &Tensor) -> Vec<f32> {
        t.to_vec::<f32>().unwrap()
    }

    backend_test!(softmax_family_hand_values, |dev| {
        // scipy.special.softmax([1, 2, 3]) and its logarithm; logsumexp = 3.40760596.
        let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [1, 3], dev).unwrap();
        assert_close("softmax", &vals(&x.softmax(-1).unwrap()), &[0.090_030_57, 0.244_728_48, 0.665_240_94], 1e-6, 1e-7);
        assert_close("log_softmax", &vals(&x.log_softmax(1).unwrap()), &[-2.407_606, -1.407_606, -0.407_606], 1e-6, 1e-6);
        let l = x.logsumexp(&[-1], false).unwrap();
        assert_eq!(l.dims(), &[1]);
        assert_close("logsumexp", &vals(&l), &[3.407_606], 1e-6, 1e-6);
        // Along axis 0 each column sums to one; a constant column is uniform.
        let m = Tensor::from_vec(vec![0.0f32, 5.0, 2.0, 0.0, -5.0, 2.0], [2, 3], dev).unwrap();
        let s = m.softmax(0).unwrap();
        let e10 = 1.0 / (1.0 + (-10f32).exp());
        assert_close("axis 0", &vals(&s), &[0.5, e10, 0.5, 0.5, 1.0 - e10, 0.5], 1e-6, 1e-7);
        let l = m.logsumexp(&[0, 1], true).unwrap();
        assert_eq!(l.dims(), &[1, 1]);
        let want = (2.0f64 + 5f64.exp() + (-5f64).exp() + 2.0 * 2f64.exp()).ln() as f32;
        assert_close("logsumexp all", &vals(&l), &[want], 1e-6, 1e-6);
    });

    backend_test!(large_logits_stay_finite, |dev| {
        let x = Tensor::from_vec(vec![1000.0f32, -1000.0, 1000.0, 1000.0], [2, 2], dev).unwrap().with_requires_grad(true).unwrap();
        let s = x.softmax(-1).unwrap();
        assert_eq!(vals(&s), vec![1.0, 0.0, 0.5, 0.5]);
        let ln2 = std::f32::consts::LN_2;
        assert_close("log_softmax", &vals(&x.log_softmax(-1).unwrap()), &[0.0, -2000.0, -ln2, -ln2], 1e-6, 0.0);
        let l = x.logsumexp(&[1], false).unwrap();
        assert_close("lse", &vals(&l), &[1000.0, 1000.0 + std::f32::consts::LN_2], 1e-7, 0.0);
        let neg = x.neg().unwrap().logsumexp(&[1], false).unwrap();
        assert_close("lse neg", &vals(&neg), &[1000.0, -1000.0 + std::f32::consts::LN_2], 1e-7, 0.0);
        let g = s.mul(&Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], dev).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
        // Row 1: y = (½, ½), g = (3, 4): dx = y ⊙ (g − 3.5) = (−¼, ¼). Row 0 is saturated.
        assert_eq!(vals(g.get(&x).unwrap()), vec![0.0, 0.0, -0.25, 0.25]);
        // d logsumexp / dx = softmax(x), finite at ±1000 too.
        let g = x.logsumexp(&[1], false).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(vals(g.get(&x).unwrap()), vec![1.0, 0.0, 0.5, 0.5]);
        let g = x.log_softmax(1).unwrap().sum_all().unwrap().backward().unwrap();
        // d Σ_j log_softmax_j / dx_i = 1 − n·softmax_i with n = 2.
        assert_eq!(vals(g.get(&x).unwrap()), vec![-1.0, 1.0, 0.0, 0.0]);
        // An all −inf slice gives −inf, not NaN (TensorFlow's reduce_logsumexp).
        let inf = Tensor::full([1, 2], f64::NEG_INFINITY, DType::F32, dev).unwrap();
        assert_eq!(vals(&inf.logsumexp(&[1], false).unwrap()), vec![f32::NEG_INFINITY]);
    });

    backend_test!(softmax_family_gradcheck, |dev| {
        let x = rand(&[3, 4, 2], -2.0, 2.0, 7, dev);
        for axis in [-1, 0, 1] {
            gradcheck(|t| t[0].softmax(axis), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
            gradcheck(|t| t[0].log_softmax(axis), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
        }
        for (axes, keep) in [(vec![-1], false), (vec![0, 2], true), (vec![0, 1, 2], false)] {
            gradcheck(|t| t[0].logsumexp(&axes, keep), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
        }
    });

    backend_test!(softmax_custom_backward_matches_composition, |dev| {
        let x = rand(&[4, 5], -3.0, 3.0, 11, dev).with_requires_grad(true).unwrap();
        let r = rand(&[4, 5], -1.0, 1.0, 12, dev);
        let fused = x.softmax(1).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let e = x.sub(&x.max(&[1], true).unwrap().detach()).unwrap().exp().unwrap();
        let composed = e.div(&e.sum(&[1], true).unwrap()).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        assert_tensor_close("dx", fused.get(&x).unwrap(), composed.get(&x).unwrap(), 1e-5, 1e-6);
    });

    backend_test!(softmax_errors_and_empty_inputs, |dev| {
        let i = Tensor::from_vec(vec![1i64, 2], [2], dev).unwrap();
        let e = i.softmax(0).unwrap_err().to_string();
        assert!(e.contains("softmax: expected dtype float32, bfloat16 or float16, got int64"), "{e}");
        let x = Tensor::zeros([2, 3], DType::F32, dev).unwrap();
        let e = x.log_softmax(2).unwrap_err().to_string();
        assert!(e.contains("log_softmax") && e.contains("axis 2 is out of range") && e.contains("rank 2"), "{e}");
        let e = x.logsumexp(&[0, -2], false).unwrap_err().to_string();
        assert!(e.contains("logsumexp") && e.contains("given twice"), "{e}");
        let empty = Tensor::zeros([0, 3], DType::F32, dev).unwrap();
        assert_eq!(empty.softmax(-1).unwrap().dims(), &[0, 3]);
        assert_eq!(empty.log_softmax(0).unwrap().dims(), &[0, 3]);
    });
}
