//! Local response normalization (`tf.nn.local_response_normalization`, AlexNet §3.3),
//! composed from primitives so its gradient is automatic.

use crate::{Error, Result, Tensor};

impl Tensor {
    /// Normalizes each element by the energy of its neighbours along the last (channel) axis,
    /// with TensorFlow's formula:
    ///
    /// ```text
    /// sqr_sum[..., d] = Σ_{d' = max(0, d−r)}^{min(C−1, d+r)} x[..., d']²
    /// out             = x / (bias + alpha · sqr_sum)^beta
    /// ```
    ///
    /// `alpha` is not divided by the window size (unlike Caffe and PyTorch). TensorFlow's
    /// defaults are `depth_radius = 5, bias = 1, alpha = 1, beta = 0.5`; AlexNet uses
    /// `2, 1, 2e-5, 0.75` (the paper's `k, n, α, β = 2, 5, 1e-4, 0.75` on a different scale).
    /// TensorFlow requires NHWC input; any rank ≥ 1 works here, normalizing over the last axis.
    ///
    /// The windowed sum is one matrix product of `x²` viewed as `[rows, C]` with a `C×C` band
    /// of ones, which the CPU backend runs through gemm.
    ///
    /// # Errors
    /// `DTypeMismatch` unless f32; `RankMismatch` for a scalar; `InvalidArgument` for a
    /// non-finite `bias`, `alpha` or `beta`.
    pub fn local_response_normalization(&self, depth_radius: usize, bias: f32, alpha: f32, beta: f32) -> Result<Tensor> {
        const OP: &str = "local_response_normalization";
        crate::ops::check_float(OP, self)?;
        if self.rank() == 0 {
            return Err(Error::rank(OP, "at least 1 (channels last)", self.shape()));
        }
        if !(bias.is_finite() && alpha.is_finite() && beta.is_finite()) {
            return Err(Error::invalid(OP, format!("bias, alpha and beta must be finite, got bias={bias}, alpha={alpha}, beta={beta}")));
        }
        if self.numel() == 0 {
            return Ok(self.clone());
        }
        let c = self.dims()[self.rank() - 1];
        // A radius of c or more already spans every channel; clamping keeps `i + radius` from
        // overflowing when the radius comes from a file.
        let depth_radius = depth_radius.min(c);
        let mut band = vec![0f32; c * c];
        for i in 0..c {
            for j in i.saturating_sub(depth_radius)..(i + depth_radius + 1).min(c) {
                band[i * c + j] = 1.0;
            }
        }
        let band = Tensor::from_vec(band, [c, c], self.device())?;
        let sqr_sum = self.square()?.reshape(&[-1, c as isize])?.matmul(&band)?.reshape_to(self.shape().clone())?;
        // x · (bias + alpha·s)^(−beta): one power instead of a power and a division.
        self.mul(&sqr_sum.mul_scalar(alpha)?.add_scalar(bias)?.powf(-beta)?)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gradcheck, rand};
    use crate::{backend_test, DType, Tensor};

    fn lrn(x: &[f32], r: usize, bias: f32, alpha: f32, beta: f32, dev: crate::Device) -> Vec<f32> {
        let t = Tensor::from_vec(x.to_vec(), [1, 1, 1, x.len()], dev).unwrap();
        t.local_response_normalization(r, bias, alpha, beta).unwrap().to_vec::<f32>().unwrap()
    }

    backend_test!(lrn_hand_values, |dev| {
        // r=1, k=α=β=1: sqr_sum = [1+4, 1+4+9, 4+9] → x / (1 + s).
        assert_close("r1", &lrn(&[1.0, 2.0, 3.0], 1, 1.0, 1.0, 1.0, dev), &[1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0], 1e-6, 0.0);
        // TensorFlow's defaults (r=5 covers all 3 channels): x / sqrt(1 + 14).
        assert_close("defaults", &lrn(&[1.0, 2.0, 3.0], 5, 1.0, 1.0, 0.5, dev), &[0.258_198_9, 0.516_397_8, 0.774_596_7], 1e-6, 0.0);
        // AlexNet (r=2, k=1, α=2e-5, β=0.75): sqr_sum = [1400, 3000, 5500, 5400, 5000]; values
        // from x / (1 + 2e-5·s)^0.75 in f64.
        let want = [9.795_016_3_f64, 19.144_790, 27.741_441, 37.038_652, 46.550_622].map(|v| v as f32);
        assert_close("alexnet", &lrn(&[10.0, 20.0, 30.0, 40.0, 50.0], 2, 1.0, 2e-5, 0.75, dev), &want, 2e-6, 0.0);
        // r=0 normalizes each channel by itself alone.
        assert_close("r0", &lrn(&[3.0, 4.0], 0, 1.0, 1.0, 0.5, dev), &[3.0 / 10f32.sqrt(), 4.0 / 17f32.sqrt()], 1e-6, 0.0);
        // Every pixel is normalized independently.
        let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 3.0, 2.0, 1.0], [1, 2, 1, 3], dev).unwrap();
        let y = x.local_response_normalization(1, 1.0, 1.0, 1.0).unwrap().to_vec::<f32>().unwrap();
        assert_close("pixels", &y, &[1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0, 3.0 / 14.0, 2.0 / 15.0, 1.0 / 6.0], 1e-6, 0.0);
    });

    backend_test!(lrn_gradcheck, |dev| {
        let x = rand(&[2, 2, 3, 5], -1.5, 1.5, 21, dev);
        gradcheck(|t| t[0].local_response_normalization(2, 2.0, 0.3, 0.75), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
        gradcheck(|t| t[0].local_response_normalization(5, 1.0, 1.0, 0.5), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
        gradcheck(|t| t[0].local_response_normalization(1, 1.0, 2e-1, 1.0), &[rand(&[4, 3], -2.0, 2.0, 22, dev)], 1e-3, 2e-3).unwrap();
    });

    backend_test!(lrn_errors, |dev| {
        let i = Tensor::from_vec(vec![1i64, 2], [1, 2], dev).unwrap();
        let e = i.local_response_normalization(2, 1.0, 1.0, 0.5).unwrap_err().to_string();
        assert!(e.contains("local_response_normalization: expected dtype float32, bfloat16 or float16, got int64"), "{e}");
        let e = Tensor::scalar(1.0, dev).unwrap().local_response_normalization(2, 1.0, 1.0, 0.5).unwrap_err().to_string();
        assert!(e.contains("rank at least 1") && e.contains("[]"), "{e}");
        let x = Tensor::zeros([1, 3], DType::F32, dev).unwrap();
        let e = x.local_response_normalization(2, f32::NAN, 1.0, 0.5).unwrap_err().to_string();
        assert!(e.contains("must be finite") && e.contains("bias=NaN"), "{e}");
    });
}
