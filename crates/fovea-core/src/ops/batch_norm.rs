//! Batch normalization over every axis but the last (channels last, as Keras's
//! `BatchNormalization(axis=-1)` on NHWC data), and the per-channel affine map it reduces to
//! at inference.
//!
//! Fused for speed: composed from reductions and broadcast element-wise ops, training-mode
//! batch normalization costs about a dozen full passes over the activation forward and
//! backward and keeps the centred input alive for the backward pass; here it is two passes
//! forward (statistics, then normalization) and two backward, and only the input and two
//! per-channel vectors are kept. The tests check both against the composed formula.

use crate::backend::backend;
use crate::{no_grad, DType, Error, Result, Tensor};

impl Tensor {
    fn check_channel_vector(&self, op: &'static str, what: &str, v: &Tensor, channels: usize) -> Result<()> {
        // A half input may take float32 vectors: kernels compute in f32 and round once.
        if v.dtype() != self.dtype() && !(self.dtype().is_half() && v.dtype() == DType::F32) {
            return Err(Error::dtype(op, format!("{} (the input's dtype) for {what}", self.dtype()), v.dtype()));
        }
        if v.dims() != [channels] {
            return Err(Error::invalid(op, format!("{what} must have shape [{channels}] (the input's last axis), got {}", v.shape())));
        }
        if v.device() != self.device() {
            return Err(Error::invalid(op, format!("{what} is on {:?} but the input is on {:?}", v.device(), self.device())));
        }
        Ok(())
    }

    fn check_channels_last(&self, op: &'static str) -> Result<usize> {
        crate::ops::check_float(op, self)?;
        if self.rank() == 0 {
            return Err(Error::rank(op, "at least 1 (channels last)", self.shape()));
        }
        Ok(self.dims()[self.rank() - 1])
    }

    /// Training-mode batch normalization (`tf.nn.batch_normalization` with the batch's own
    /// `tf.nn.moments` over every axis but the last):
    ///
    /// ```text
    /// μ, σ² = mean and biased variance over all rows (every axis but the channel axis)
    /// y     = γ · (x − μ) / √(σ² + ε) + β
    /// ```
    ///
    /// `gamma` and `beta` (shape `[C]`) are optional (Keras's `scale=False` / `center=False`).
    /// Returns `(y, μ, σ²)`. The gradient of `y` accounts for μ and σ² depending on `x`; the
    /// returned statistics themselves carry no gradient (they feed the moving averages).
    ///
    /// # Errors
    /// `DTypeMismatch` unless the input is a float and `gamma`/`beta` f32 (a half input is
    /// normalized in f32, as Keras does); `RankMismatch` for a scalar; `InvalidArgument`
    /// for a `gamma`/`beta` not of shape `[C]`, an input with no rows, or a negative or
    /// non-finite `epsilon`.
    pub fn batch_norm_train(&self, gamma: Option<&Tensor>, beta: Option<&Tensor>, epsilon: f32) -> Result<(Tensor, Tensor, Tensor)> {
        const OP: &str = "batch_norm_train";
        if self.dtype().is_half() {
            // As Keras under a mixed policy: statistics and normalization in f32, the output
            // back in the input's dtype; γ and β stay f32 variables.
            let (y, mean, var) = self.cast(DType::F32)?.batch_norm_train(gamma, beta, epsilon)?;
            return Ok((y.cast(self.dtype())?, mean, var));
        }
        let c = self.check_channels_last(OP)?;
        for (what, v) in [("gamma", gamma), ("beta", beta)] {
            if let Some(v) = v {
                self.check_channel_vector(OP, what, v, c)?;
            }
        }
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(Error::invalid(OP, format!("epsilon must be finite and non-negative, got {epsilon}")));
        }
        if c == 0 || self.numel() == 0 {
            return Err(Error::invalid(OP, format!("cannot take batch statistics of an empty input {}", self.shape())));
        }
        let (dev, be) = (self.device(), backend(self.device())?);
        let (mean_s, var_s) = be.batch_norm_stats(self.storage(), c)?;
        let (mean, var) = (Tensor::from_storage(mean_s, [c], dev)?, Tensor::from_storage(var_s, [c], dev)?);
        let gamma_value = match gamma {
            Some(g) => g.detach(),
            None => Tensor::ones([c], DType::F32, dev)?,
        };
        // The per-channel constants are tiny; the full-size work is the one affine pass.
        let (invstd, scale, shift) = no_grad(|| -> Result<(Tensor, Tensor, Tensor)> {
            let invstd = var.add_scalar(epsilon)?.rsqrt()?;
            let scale = invstd.mul(&gamma_value)?;
            let mut shift = mean.mul(&scale)?.neg()?;
            if let Some(b) = beta {
                shift = shift.add(&b.detach())?;
            }
            Ok((invstd, scale, shift))
        })?;
        let y = be.channel_affine(self.storage(), scale.storage(), shift.storage(), c, false)?;
        let mut inputs = vec![self];
        inputs.extend(gamma);
        inputs.extend(beta);
        let (has_gamma, saved_mean) = (gamma.is_some(), mean.clone());
        let y = Tensor::from_op(y, self.shape().clone(), dev, OP, &inputs, move |inputs, _, g| {
            let x = &inputs[0];
            if crate::autograd::is_recording() {
                // grad_with_graph: the same gradient in recorded ops, differentiable again.
                return batch_norm_grad_recorded(x, has_gamma.then(|| &inputs[1]), inputs.len() > 1 + has_gamma as usize, g, epsilon);
            }
            let be = backend(x.device())?;
            let (dx, sum_dy, sum_dy_xmu) =
                be.batch_norm_grad(x.storage(), g.storage(), saved_mean.storage(), invstd.storage(), gamma_value.storage(), c)?;
            let mut grads = vec![Some(Tensor::from_storage(dx, x.shape().clone(), x.device())?)];
            if has_gamma {
                // dγ = Σ dy·x̂ = Σ dy·(x − μ) · σ⁻¹
                grads.push(Some(Tensor::from_storage(sum_dy_xmu, [c], x.device())?.mul(&invstd)?));
            }
            if inputs.len() > grads.len() {
                grads.push(Some(Tensor::from_storage(sum_dy, [c], x.device())?));
                // dβ = Σ dy
            }
            Ok(grads)
        });
        Ok((y, mean, var))
    }

    /// `y = x · scale + shift` with per-channel `scale` and `shift` of shape `[C]` broadcast
    /// over every leading axis: inference-mode batch normalization once its moving statistics,
    /// γ and β are folded into two vectors. Differentiable in all three inputs.
    ///
    /// # Errors
    /// `DTypeMismatch` unless everything has one float dtype; `RankMismatch` for a scalar;
    /// `InvalidArgument` for a `scale` or `shift` not of shape `[C]`.
    pub fn channel_affine(&self, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
        const OP: &str = "channel_affine";
        let c = self.check_channels_last(OP)?;
        self.check_channel_vector(OP, "scale", scale, c)?;
        self.check_channel_vector(OP, "shift", shift, c)?;
        let y = if c == 0 {
            backend(self.device())?.full(self.dtype(), 0, 0.0)?
        } else {
            backend(self.device())?.channel_affine(self.storage(), scale.storage(), shift.storage(), c, false)?
        };
        Ok(Tensor::from_op(y, self.shape().clone(), self.device(), OP, &[self, scale, shift], move |inputs, _, g| {
            let (x, scale) = (&inputs[0], &inputs[1]);
            // dx = dy · scale;  dscale = Σ_rows dy · x;  dshift = Σ_rows dy
            let dx = if crate::autograd::is_recording() {
                // grad_with_graph: a recorded broadcast product, differentiable again.
                g.mul(&scale.cast(g.dtype())?)?
            } else {
                let zeros = scale.zeros_like();
                let dx = backend(x.device())?.channel_affine(g.storage(), scale.storage(), zeros.storage(), c, false)?;
                Tensor::from_storage(dx, x.shape().clone(), x.device())?
            };
            let rows = [-1, c as isize];
            let dscale = match scale.requires_grad() {
                true => Some(g.mul(&x.cast(g.dtype())?)?.reshape(&rows)?.sum(&[0], false)?.cast(scale.dtype())?),
                false => None,
            };
            let dshift = match inputs[2].requires_grad() {
                true => Some(g.reshape(&rows)?.sum(&[0], false)?.cast(inputs[2].dtype())?),
                false => None,
            };
            Ok(vec![Some(dx), dscale, dshift])
        }))
    }

    /// `relu(x · scale + shift)` per channel in one pass: inference-mode batch normalization
    /// (with a preceding bias folded into `shift`) followed by ReLU. Equal to
    /// `x.channel_affine(scale, shift)?.relu()`, which it runs instead while a gradient is
    /// being recorded for any of the three.
    ///
    /// # Errors
    /// As [`Tensor::channel_affine`].
    pub fn channel_affine_relu(&self, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
        const OP: &str = "channel_affine_relu";
        if crate::autograd::is_recording() && [self, scale, shift].iter().any(|t| t.requires_grad()) {
            return self.channel_affine(scale, shift)?.relu();
        }
        let c = self.check_channels_last(OP)?;
        self.check_channel_vector(OP, "scale", scale, c)?;
        self.check_channel_vector(OP, "shift", shift, c)?;
        if c == 0 {
            return Ok(self.clone());
        }
        let y = backend(self.device())?.channel_affine(self.storage(), scale.storage(), shift.storage(), c, true)?;
        Tensor::from_storage(y, self.shape().clone(), self.device())
    }

    /// `conv2d(x, filter) · scale + shift` per output channel, then ReLU when `relu`: an
    /// inference-time convolution → batch normalization [→ ReLU] chain (a bias folded into
    /// `shift`) as one op, so that backends can apply the map while each output block is in
    /// cache instead of in a pass of its own. Equal to `x.conv2d(filter, opts)` followed by
    /// [`Tensor::channel_affine`] (and [`Tensor::relu`]), which it runs instead while a
    /// gradient is recorded.
    ///
    /// # Errors
    /// As [`Tensor::conv2d`], and as [`Tensor::channel_affine`] for `scale` and `shift`.
    pub fn conv2d_affine(
        &self,
        filter: &Tensor,
        opts: &crate::ops::conv::Conv2dOptions,
        scale: &Tensor,
        shift: &Tensor,
        relu: bool,
    ) -> Result<Tensor> {
        const OP: &str = "conv2d_affine";
        if let Some([x, filter]) = crate::autocast::operands([self, filter])? {
            return x.conv2d_affine(&filter, opts, scale, shift, relu);
        }
        if crate::autograd::is_recording() && [self, filter, scale, shift].iter().any(|t| t.requires_grad()) {
            let y = self.conv2d(filter, opts)?.channel_affine(scale, shift)?;
            return if relu { y.relu() } else { Ok(y) };
        }
        let spec = crate::ops::conv::conv2d_spec(OP, self, filter, opts)?;
        self.check_channel_vector(OP, "scale", scale, spec.c_out)?;
        self.check_channel_vector(OP, "shift", shift, spec.c_out)?;
        let shape = crate::Shape::new(vec![spec.n, spec.out_h, spec.out_w, spec.c_out]);
        if shape.numel() == 0 {
            return Tensor::zeros(shape, self.dtype(), self.device());
        }
        let y = backend(self.device())?.conv2d_affine(self.storage(), filter.storage(), &spec, scale.storage(), shift.storage(), relu)?;
        Tensor::from_storage(y, shape, self.device())
    }

    /// `relu(x + bias)` with `bias` of shape `[C]` broadcast over every leading axis: a
    /// convolution's or dense layer's bias and ReLU in one pass over the activation instead of
    /// two (and one output kept for the backward pass instead of two). Equal to
    /// `x.add(bias)?.relu()`, bit for bit, gradients included.
    ///
    /// # Errors
    /// `DTypeMismatch` unless both have one float dtype; `RankMismatch` for a scalar; `InvalidArgument` for
    /// a `bias` not of shape `[C]`.
    pub fn bias_add_relu(&self, bias: &Tensor) -> Result<Tensor> {
        const OP: &str = "bias_add_relu";
        let c = self.check_channels_last(OP)?;
        self.check_channel_vector(OP, "bias", bias, c)?;
        if c == 0 {
            return Ok(self.clone());
        }
        let ones = Tensor::ones([c], self.dtype(), self.device())?;
        let y = backend(self.device())?.channel_affine(self.storage(), ones.storage(), bias.storage(), c, true)?;
        Ok(Tensor::from_op(y, self.shape().clone(), self.device(), OP, &[self, bias], move |inputs, y, g| {
            // d relu(a)/da = [a > 0] = [y > 0]; dbias = Σ_rows dx.
            let dx = if crate::autograd::is_recording() {
                // grad_with_graph: ReLU's recorded gradient op (linear in g, f'' = 0).
                let y = y.detach();
                super::unary_grad::unary_grad(crate::ops::unary::UnaryOp::Relu, &y, &y, g)?
            } else {
                let dx = backend(y.device())?.unary_grad(crate::ops::unary::UnaryOp::Relu, y.storage(), y.storage(), g.storage())?;
                Tensor::from_storage(dx, y.shape().clone(), y.device())?
            };
            let dbias = match inputs[1].requires_grad() {
                true => Some(dx.reshape(&[-1, c as isize])?.sum(&[0], false)?.cast(inputs[1].dtype())?),
                false => None,
            };
            Ok(vec![Some(dx), dbias])
        }))
    }
}

/// The gradients of training-mode batch normalization written in recorded ops, for
/// `grad_with_graph` (the fused kernel computes the same on raw buffers). Over the rows of the
/// `[rows, C]` view, with `x̂ = (x − μ)·σ⁻¹` and `σ⁻¹ = (σ² + ε)^(−½)`:
///
/// ```text
/// dx = γ·σ⁻¹ · (g − mean(g) − x̂ · mean(g ⊙ x̂))      dγ = Σ g ⊙ x̂      dβ = Σ g
/// ```
///
/// μ and σ² are recomputed from `x` with recorded ops, so the result is differentiable in `x`,
/// `γ` and `g`. Returns one gradient per input: `x`, then `γ` and `β` when present.
fn batch_norm_grad_recorded(x: &Tensor, gamma: Option<&Tensor>, has_beta: bool, g: &Tensor, epsilon: f32) -> Result<Vec<Option<Tensor>>> {
    let c = x.dims()[x.rank() - 1] as isize;
    let rows = [-1, c];
    let (x2, g2) = (x.reshape(&rows)?, g.reshape(&rows)?);
    let mean = x2.mean(&[0], true)?;
    let centred = x2.sub(&mean)?;
    let invstd = centred.square()?.mean(&[0], true)?.add_scalar(epsilon)?.rsqrt()?;
    let xhat = centred.mul(&invstd)?;
    let g_xhat = g2.mul(&xhat)?;
    let inner = g2.sub(&g2.mean(&[0], true)?)?.sub(&xhat.mul(&g_xhat.mean(&[0], true)?)?)?;
    let scale = match gamma {
        Some(gamma) => invstd.mul(gamma)?,
        None => invstd,
    };
    let mut grads = vec![Some(inner.mul(&scale)?.reshape_to(x.shape().clone())?)];
    let channels = [c as usize];
    if gamma.is_some() {
        grads.push(Some(g_xhat.sum(&[0], false)?.reshape_to(channels)?));
    }
    if has_beta {
        grads.push(Some(g2.sum(&[0], false)?.reshape_to(channels)?));
    }
    Ok(grads)
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_tensor_close, gradcheck, rand};
    use crate::{backend_test, DType, Tensor};

    /// The composed formula the fused op replaces (what `BatchNormalization` computed before).
    fn composed(x: &Tensor, gamma: Option<&Tensor>, beta: Option<&Tensor>, eps: f32) -> Tensor {
        let axes: Vec<isize> = (0..x.rank() as isize - 1).collect();
        let mean = x.mean(&axes, false).unwrap();
        let var = x.variance(&axes, false).unwrap();
        let mut inv = var.add_scalar(eps).unwrap().rsqrt().unwrap();
        if let Some(g) = gamma {
            inv = inv.mul(g).unwrap();
        }
        let y = x.sub(&mean).unwrap().mul(&inv).unwrap();
        beta.map_or(y.clone(), |b| y.add(b).unwrap())
    }

    backend_test!(batch_norm_matches_the_composed_formula_forward_and_backward, |dev| {
        // An offset mean (50) checks the shifted sums; 3·7·5 = 105 rows spans blocks unevenly.
        let x = rand(&[3, 7, 5, 6], 49.0, 51.0, 31, dev).with_requires_grad(true).unwrap();
        let gamma = rand(&[6], 0.5, 1.5, 32, dev).with_requires_grad(true).unwrap();
        let beta = rand(&[6], -1.0, 1.0, 33, dev).with_requires_grad(true).unwrap();
        let r = rand(&[3, 7, 5, 6], -1.0, 1.0, 34, dev);
        let grads = |y: &Tensor| {
            let loss = y.mul(&r).unwrap().sum_all().unwrap();
            crate::grad(&loss, &[&x, &gamma, &beta]).unwrap()
        };
        let (y, mean, var) = x.batch_norm_train(Some(&gamma), Some(&beta), 1e-3).unwrap();
        let want = composed(&x, Some(&gamma), Some(&beta), 1e-3);
        assert_tensor_close("y", &y, &want, 1e-4, 1e-4);
        assert_tensor_close("mean", &mean, &x.mean(&[0, 1, 2], false).unwrap(), 1e-5, 1e-6);
        assert_tensor_close("variance", &var, &x.variance(&[0, 1, 2], false).unwrap(), 1e-3, 1e-5);
        assert!(!mean.requires_grad() && !var.requires_grad());
        for ((name, got), want) in ["dx", "dgamma", "dbeta"].iter().zip(grads(&y)).zip(grads(&want)) {
            assert_tensor_close(name, &got.unwrap(), &want.unwrap(), 1e-3, 1e-4);
        }
    });

    backend_test!(batch_norm_large_inputs_split_across_threads_agree, |dev| {
        // 41 · 31 · 32 = 40,672 elements: above the CPU backend's parallel threshold, with a
        // last task of a different size.
        let x = rand(&[41, 31, 32], -3.0, 5.0, 35, dev).with_requires_grad(true).unwrap();
        let (y, _, _) = x.batch_norm_train(None, None, 1e-5).unwrap();
        assert_tensor_close("y", &y, &composed(&x, None, None, 1e-5), 1e-4, 1e-4);
        let r = rand(&[41, 31, 32], -1.0, 1.0, 36, dev);
        let dx = |y: &Tensor| crate::grad(&y.mul(&r).unwrap().sum_all().unwrap(), &[&x]).unwrap().remove(0).unwrap();
        assert_tensor_close("dx", &dx(&y), &dx(&composed(&x, None, None, 1e-5)), 1e-3, 1e-4);
    });

    backend_test!(batch_norm_gradcheck, |dev| {
        let x = rand(&[4, 3, 5], -2.0, 2.0, 41, dev);
        let (g, b) = (rand(&[5], 0.5, 1.5, 42, dev), rand(&[5], -1.0, 1.0, 43, dev));
        gradcheck(|t| Ok(t[0].batch_norm_train(Some(&t[1]), Some(&t[2]), 1e-3)?.0), &[x.clone(), g.clone(), b], 1e-3, 3e-3).unwrap();
        // Without γ and β (Keras's scale=False, center=False), and on a [N, C] input (after Dense).
        gradcheck(|t| Ok(t[0].batch_norm_train(None, None, 1e-3)?.0), std::slice::from_ref(&x), 1e-3, 3e-3).unwrap();
        gradcheck(|t| Ok(t[0].batch_norm_train(Some(&t[1]), None, 1e-3)?.0), &[rand(&[6, 5], -2.0, 2.0, 44, dev), g], 1e-3, 3e-3).unwrap();
    });

    backend_test!(channel_affine_values_and_gradients, |dev| {
        let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], dev).unwrap();
        let (s, t) = (Tensor::from_vec(vec![2.0f32, -1.0], [2], dev).unwrap(), Tensor::from_vec(vec![0.5f32, 1.0], [2], dev).unwrap());
        assert_eq!(x.channel_affine(&s, &t).unwrap().to_vec::<f32>().unwrap(), vec![2.5, -1.0, 6.5, -3.0]);
        let x = rand(&[2, 3, 4], -2.0, 2.0, 51, dev);
        let (s, t) = (rand(&[4], -1.0, 1.0, 52, dev), rand(&[4], -1.0, 1.0, 53, dev));
        gradcheck(|v| v[0].channel_affine(&v[1], &v[2]), &[x, s, t], 1e-3, 2e-3).unwrap();
    });

    backend_test!(bias_add_relu_equals_add_then_relu, |dev| {
        // Values around zero, -0 and NaN after the add: bit-identical to the two-op version.
        let mut v = rand(&[3, 4, 5, 7], -1.0, 1.0, 61, dev).to_vec::<f32>().unwrap();
        v[3] = f32::NAN;
        v[5] = -0.0;
        let x = Tensor::from_vec(v, [3, 4, 5, 7], dev).unwrap().with_requires_grad(true).unwrap();
        let b = Tensor::from_vec(vec![0.5f32, -0.5, 0.0, 0.25, -1.0, 1.0, 0.1], [7], dev).unwrap().with_requires_grad(true).unwrap();
        let (fused, composed) = (x.bias_add_relu(&b).unwrap(), x.add(&b).unwrap().relu().unwrap());
        let bits = |t: &Tensor| t.to_vec::<f32>().unwrap().iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fused), bits(&composed));
        let r = rand(&[3, 4, 5, 7], -1.0, 1.0, 62, dev);
        let grads = |y: &Tensor| crate::grad(&y.mul(&r).unwrap().sum_all().unwrap(), &[&x, &b]).unwrap();
        for ((name, got), want) in ["dx", "dbias"].iter().zip(grads(&fused)).zip(grads(&composed)) {
            assert_tensor_close(name, &got.unwrap(), &want.unwrap(), 1e-6, 1e-6);
        }
        let xs = rand(&[2, 3, 4], -2.0, 2.0, 63, dev);
        gradcheck(|t| t[0].bias_add_relu(&t[1]), &[xs, rand(&[4], -0.5, 0.5, 64, dev)], 1e-3, 2e-3).unwrap();
        let e = x.bias_add_relu(&Tensor::zeros([3], DType::F32, dev).unwrap()).unwrap_err().to_string();
        assert!(e.contains("bias must have shape [7]"), "{e}");
    });

    backend_test!(channel_affine_relu_equals_affine_then_relu, |dev| {
        let x = rand(&[4, 3, 5], -2.0, 2.0, 71, dev);
        let (s, t) = (rand(&[5], -1.0, 1.0, 72, dev), rand(&[5], -1.0, 1.0, 73, dev));
        let want = x.channel_affine(&s, &t).unwrap().relu().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(x.channel_affine_relu(&s, &t).unwrap().to_vec::<f32>().unwrap(), want);
        // While recording, the composed (differentiable) path runs.
        let xg = x.with_requires_grad(true).unwrap();
        let y = xg.channel_affine_relu(&s, &t).unwrap();
        assert!(y.requires_grad());
        assert_eq!(y.to_vec::<f32>().unwrap(), want);
    });

    backend_test!(conv2d_affine_equals_conv_then_affine, |dev| {
        use crate::ops::conv::Conv2dOptions;
        use crate::ops::padding::Padding;
        // Shapes for every CPU kernel: the product kernel (whole 16-channel blocks, 1×1 and
        // strided 3×3, fused), Winograd and a channel count off the 16-lane grid (two passes).
        let cases = [
            ([1, 7, 7, 64], [1, 1, 64, 128], (1, 1), Padding::Valid),
            ([2, 9, 9, 24], [3, 3, 24, 32], (2, 2), Padding::Same),
            ([1, 8, 8, 16], [3, 3, 16, 16], (1, 1), Padding::Same),
            ([2, 5, 6, 8], [3, 3, 8, 24], (1, 1), Padding::Valid),
        ];
        for (seed, (xd, wd, strides, padding)) in cases.into_iter().enumerate() {
            let seed = 80 + 10 * seed as u64;
            let (x, w) = (rand(&xd, -1.0, 1.0, seed, dev), rand(&wd, -1.0, 1.0, seed + 1, dev));
            let (s, t) = (rand(&[wd[3]], -1.0, 1.0, seed + 2, dev), rand(&[wd[3]], -0.5, 0.5, seed + 3, dev));
            let opts = Conv2dOptions::default().with_strides(strides).with_padding(padding);
            let affine = x.conv2d(&w, &opts).unwrap().channel_affine(&s, &t).unwrap();
            for relu in [false, true] {
                let want = if relu { affine.relu().unwrap() } else { affine.clone() }.to_vec::<f32>().unwrap();
                let got = x.conv2d_affine(&w, &opts, &s, &t, relu).unwrap();
                assert_eq!(got.dims(), affine.dims());
                assert_eq!(got.to_vec::<f32>().unwrap(), want, "case {seed} relu={relu}");
                // While recording, the composed (differentiable) path runs.
                let tracked = x.with_requires_grad(true).unwrap().conv2d_affine(&w, &opts, &s, &t, relu).unwrap();
                assert!(tracked.requires_grad());
                assert_eq!(tracked.to_vec::<f32>().unwrap(), want);
            }
        }
        let (x, w) = (rand(&[1, 4, 4, 3], -1.0, 1.0, 1, dev), rand(&[3, 3, 3, 16], -1.0, 1.0, 2, dev));
        let bad = rand(&[8], -1.0, 1.0, 3, dev);
        let e = x.conv2d_affine(&w, &Conv2dOptions::default(), &bad, &bad, false).unwrap_err().to_string();
        assert!(e.contains("scale must have shape [16]") && e.contains("[8]"), "{e}");
    });

    backend_test!(batch_norm_bad_input_is_an_error, |dev| {
        let x = Tensor::zeros([2, 3], DType::F32, dev).unwrap();
        let e = x.batch_norm_train(Some(&Tensor::zeros([4], DType::F32, dev).unwrap()), None, 1e-3).unwrap_err().to_string();
        assert!(e.contains("gamma must have shape [3]") && e.contains("[4]"), "{e}");
        let e = x.batch_norm_train(None, None, f32::NAN).unwrap_err().to_string();
        assert!(e.contains("epsilon must be finite"), "{e}");
        let e = Tensor::zeros([0, 3], DType::F32, dev).unwrap().batch_norm_train(None, None, 1e-3).unwrap_err().to_string();
        assert!(e.contains("empty input"), "{e}");
        let e = Tensor::scalar(1.0, dev).unwrap().channel_affine(&x, &x).unwrap_err().to_string();
        assert!(e.contains("rank at least 1"), "{e}");
        let i = Tensor::from_vec(vec![1i64, 2, 3], [1, 3], dev).unwrap();
        assert!(i.batch_norm_train(None, None, 1e-3).unwrap_err().to_string().contains("expected dtype float32"));
        let e = x.channel_affine(&Tensor::zeros([3], DType::F32, dev).unwrap(), &Tensor::zeros([2], DType::F32, dev).unwrap());
        assert!(e.unwrap_err().to_string().contains("shift must have shape [3]"));
    });
}
