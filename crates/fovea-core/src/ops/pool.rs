//! 2-D pooling over NHWC with TensorFlow's semantics: max and average pooling (the backend
//! primitive `pool2d` and its gradient), max pooling with argmax and its inverse (unpooling),
//! max pooling across channels, and global pooling composed from reductions.

use crate::backend::{backend, Pool2dSpec, PoolKind};
use crate::ops::padding::{resolve_axis, Padding};
use crate::{DType, Error, Result, Shape, Storage, Tensor};

impl Tensor {
    /// Validates an NHWC pooling and resolves its padding into a backend spec.
    fn pool_spec(
        &self,
        op: &'static str,
        kind: PoolKind,
        ksize: (usize, usize),
        strides: (usize, usize),
        padding: &Padding,
    ) -> Result<Pool2dSpec> {
        if self.rank() != 4 {
            return Err(Error::rank(op, "4 (N, H, W, C)", self.shape()));
        }
        crate::ops::check_float(op, self)?;
        let (n, h, w, c) = (self.dims()[0], self.dims()[1], self.dims()[2], self.dims()[3]);
        if h == 0 || w == 0 {
            return Err(Error::invalid(op, format!("height and width must be nonzero, got input shape {}", self.shape())));
        }
        if let Padding::Explicit(pairs) = padding {
            if pairs.len() != 2 {
                return Err(Error::invalid(op, format!("explicit padding needs 2 (before, after) pairs (rows, columns), got {pairs:?}")));
            }
        }
        let ay = resolve_axis(op, padding, 0, h, ksize.0, strides.0, 1)?;
        let ax = resolve_axis(op, padding, 1, w, ksize.1, strides.1, 1)?;
        // With padding smaller than the window every window covers a real input, so a maximum
        // and a nonzero average count always exist (SAME always satisfies this).
        for (axis, a, k) in [(0, ay, ksize.0), (1, ax, ksize.1)] {
            if a.pad_before >= k || a.pad_after >= k {
                return Err(Error::invalid(
                    op,
                    format!(
                        "padding ({}, {}) on spatial axis {axis} must be smaller than the window size {k}, so every window covers a real input",
                        a.pad_before, a.pad_after
                    ),
                ));
            }
        }
        Ok(Pool2dSpec {
            kind,
            n,
            h,
            w,
            c,
            kh: ksize.0,
            kw: ksize.1,
            // One window along an axis makes its stride irrelevant (see conv2d).
            stride: (if ay.out == 1 { 1 } else { strides.0 }, if ax.out == 1 { 1 } else { strides.1 }),
            pad: (ay.pad_before, ay.pad_after, ax.pad_before, ax.pad_after),
            out_h: ay.out,
            out_w: ax.out,
        })
    }

    /// Wraps a pooled storage as a tensor whose gradient is [`pool2d_grad`].
    fn pooled(&self, op: &'static str, y: Storage, spec: Pool2dSpec) -> Tensor {
        let shape = Shape::new([spec.n, spec.out_h, spec.out_w, spec.c]);
        Tensor::from_op(y, shape, self.device(), op, &[self], move |inputs, out, g| Ok(vec![Some(pool2d_grad(&inputs[0], out, g, &spec)?)]))
    }

    fn pool(&self, op: &'static str, kind: PoolKind, ksize: (usize, usize), strides: (usize, usize), padding: Padding) -> Result<Tensor> {
        let spec = self.pool_spec(op, kind, ksize, strides, &padding)?;
        let y = backend(self.device())?.pool2d(self.storage(), &spec)?;
        Ok(self.pooled(op, y, spec))
    }

    /// Max pooling of an NHWC f32 tensor over `ksize = (rows, cols)` windows moved by
    /// `strides` (`tf.nn.max_pool2d`). Padding never wins a maximum. The gradient goes to the
    /// first maximum of each window in row-major order, as in TensorFlow; it is computed by a
    /// backend kernel, recorded as an op whose own gradient reads the same maxima, so
    /// `grad_with_graph` can differentiate it again.
    ///
    /// # Errors
    /// `RankMismatch` unless rank 4; `DTypeMismatch` unless f32; `InvalidArgument` for a zero
    /// window or stride, a window larger than the (padded) input, explicit padding that is not
    /// two pairs or not smaller than the window, or an empty height or width.
    pub fn max_pool2d(&self, ksize: (usize, usize), strides: (usize, usize), padding: Padding) -> Result<Tensor> {
        self.pool("max_pool2d", PoolKind::Max, ksize, strides, padding)
    }

    /// Average pooling of an NHWC f32 tensor (`tf.nn.avg_pool2d`). Each output is the mean of
    /// the real inputs in its window: with `Same` (or explicit) padding the border windows
    /// divide by fewer elements, as TensorFlow does. The gradient spreads each output's
    /// gradient evenly over those inputs (a backend kernel, differentiable again: its adjoint is
    /// this average pooling).
    ///
    /// # Errors
    /// As [`Tensor::max_pool2d`].
    pub fn avg_pool2d(&self, ksize: (usize, usize), strides: (usize, usize), padding: Padding) -> Result<Tensor> {
        self.pool("avg_pool2d", PoolKind::Avg, ksize, strides, padding)
    }

    /// Max pooling that also returns where each maximum came from
    /// (`tf.nn.max_pool_with_argmax` with `include_batch_in_index=True`): an i64 tensor of the
    /// output's shape holding the flat input index `((b·H + y)·W + x)·C + c`. Ties go to the
    /// first maximum in row-major window order. The pooled values carry the max-pool gradient.
    ///
    /// # Errors
    /// As [`Tensor::max_pool2d`].
    pub fn max_pool2d_with_argmax(&self, ksize: (usize, usize), strides: (usize, usize), padding: Padding) -> Result<(Tensor, Tensor)> {
        const OP: &str = "max_pool2d_with_argmax";
        let spec = self.pool_spec(OP, PoolKind::Max, ksize, strides, &padding)?;
        let (y, idx) = backend(self.device())?.max_pool2d_argmax(self.storage(), &spec)?;
        let shape = Shape::new([spec.n, spec.out_h, spec.out_w, spec.c]);
        let argmax = Tensor::from_storage(idx, shape, self.device())?;
        Ok((self.pooled(OP, y, spec), argmax))
    }

    /// The inverse of [`Tensor::max_pool2d_with_argmax`] (as TensorFlow Addons'
    /// `MaxUnpooling2D`): a zero tensor of `output_shape` with each pooled value added at its
    /// flat `argmax` index (values sharing an index are summed). The gradient gathers from
    /// those indices.
    ///
    /// # Errors
    /// `DTypeMismatch` unless this tensor is f32 and `argmax` i64; `ShapeMismatch` when their
    /// shapes differ; `InvalidArgument` for an index outside `output_shape`.
    pub fn max_unpool2d(&self, argmax: &Tensor, output_shape: &[usize]) -> Result<Tensor> {
        const OP: &str = "max_unpool2d";
        self.same_device(OP, argmax)?;
        if !self.dtype().is_float() || argmax.dtype() != DType::I64 {
            return Err(Error::dtype(
                OP,
                "float values and int64 argmax",
                if !self.dtype().is_float() { self.dtype() } else { argmax.dtype() },
            ));
        }
        if argmax.shape() != self.shape() {
            return Err(Error::shape(OP, format!("argmax indices of the pooled shape {}", self.shape()), argmax.shape()));
        }
        let out_shape = Shape::new(output_shape.to_vec());
        let total = out_shape.numel();
        // A scatter-add of the pooled values at their flat indices, on the device; its gradient
        // (d out[idx[i]] / d pooled[i] = 1) is the gather that scatter-add records.
        let flat = Tensor::zeros([total], self.dtype(), self.device())?;
        let out = flat.scatter_add(0, &argmax.reshape_to([argmax.numel()])?, &self.reshape_to([self.numel()])?).map_err(|e| {
            Error::invalid(OP, format!("every argmax index must lie in the output shape {out_shape} ({total} elements): {e}"))
        })?;
        out.reshape_to(out_shape)
    }

    /// Max pooling across channels in groups of `k` (`tf.nn.max_pool` with
    /// `ksize = strides = (1, 1, 1, k)`): `[N, H, W, C] → [N, H, W, C/k]`. Composed from a
    /// reshape and [`Tensor::max`], so tied maxima share the gradient equally.
    ///
    /// # Errors
    /// `RankMismatch` unless rank 4; `DTypeMismatch` unless f32; `InvalidArgument` when `k` is
    /// zero or does not divide the channel count.
    pub fn max_pool_depth(&self, k: usize) -> Result<Tensor> {
        const OP: &str = "max_pool_depth";
        if self.rank() != 4 {
            return Err(Error::rank(OP, "4 (N, H, W, C)", self.shape()));
        }
        crate::ops::check_float(OP, self)?;
        let d = self.dims();
        if k == 0 || !d[3].is_multiple_of(k) {
            return Err(Error::invalid(
                OP,
                format!("the channel count {} of input shape {} must be divisible by the depth window {k}", d[3], self.shape()),
            ));
        }
        self.reshape_to([d[0], d[1], d[2], d[3] / k, k])?.max(&[-1], false)
    }

    fn check_global(&self, op: &'static str) -> Result<()> {
        if self.rank() != 4 {
            return Err(Error::rank(op, "4 (N, H, W, C)", self.shape()));
        }
        Ok(())
    }

    /// Mean over height and width (Keras `GlobalAveragePooling2D`): `[N, C]`, or `[N, 1, 1, C]`
    /// with `keepdims`.
    ///
    /// # Errors
    /// `RankMismatch` unless rank 4; `DTypeMismatch` unless f32.
    pub fn global_avg_pool2d(&self, keepdims: bool) -> Result<Tensor> {
        self.check_global("global_avg_pool2d")?;
        crate::ops::check_float("global_avg_pool2d", self)?;
        self.mean(&[1, 2], keepdims)
    }

    /// Maximum over height and width (Keras `GlobalMaxPooling2D`): `[N, C]`, or `[N, 1, 1, C]`
    /// with `keepdims`. Tied maxima share the gradient, as `tf.reduce_max`.
    ///
    /// # Errors
    /// `RankMismatch` unless rank 4; `InvalidArgument` for an empty height or width.
    pub fn global_max_pool2d(&self, keepdims: bool) -> Result<Tensor> {
        self.check_global("global_max_pool2d")?;
        self.max(&[1, 2], keepdims)
    }
}

/// `dx` of a pooling `out = pool(x)` for the output gradient `g`: the backend's kernel, as an op
/// of its own so that `grad_with_graph` can differentiate it again. It is linear in `g`, and
/// its derivative in `x` is 0 almost everywhere (the windows' averages do not depend on `x`;
/// which input wins a maximum changes only at ties), so `g` is its only recorded input. Its
/// adjoint is the pooling itself with the routing frozen: the average pool of `gg`, or `gg`
/// read at each window's first maximum of `x` (the input the kernel sent the gradient to).
fn pool2d_grad(x: &Tensor, out: &Tensor, g: &Tensor, spec: &Pool2dSpec) -> Result<Tensor> {
    let be = backend(x.device())?;
    let dx = be.pool2d_grad(x.storage(), out.storage(), g.storage(), spec)?;
    let (x, spec) = (x.detach(), spec.clone());
    Ok(Tensor::from_op(dx, x.shape().clone(), x.device(), "pool2d_grad", &[g], move |_, _, gg| {
        let be = backend(gg.device())?;
        let d_g = match spec.kind {
            PoolKind::Avg => gg.pooled("avg_pool2d", be.pool2d(gg.storage(), &spec)?, spec.clone()),
            PoolKind::Max => {
                let (_, idx) = be.max_pool2d_argmax(x.storage(), &spec)?;
                let n_out = spec.n * spec.out_h * spec.out_w * spec.c;
                let idx = Tensor::from_storage(idx, Shape::new([n_out]), gg.device())?;
                gg.reshape_to([gg.numel()])?.take_along(0, idx)?.reshape_to([spec.n, spec.out_h, spec.out_w, spec.c])?
            }
        };
        Ok(vec![Some(d_g)])
    }))
}

#[cfg(test)]
mod tests {
    use super::Padding;
    use crate::testing::{assert_close, gradcheck, rand};
    use crate::{backend_test, DType, Device, Tensor};

    /// The 4×4 image 1..=16 (row-major), one channel.
    fn ramp(dev: Device) -> Tensor {
        Tensor::from_vec((1..=16).map(|v| v as f32).collect::<Vec<_>>(), [1, 4, 4, 1], dev).unwrap()
    }

    /// Distinct values 0.01 apart in a scrambled order, so no window has a near-tie that a
    /// finite-difference step could flip. `numel` must be coprime with 97.
    fn distinct(dims: &[usize], dev: Device) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i * 97) % n) as f32 * 0.01 - n as f32 * 0.005).collect();
        Tensor::from_vec(v, dims.to_vec(), dev).unwrap()
    }

    fn vals(t: &Tensor) -> Vec<f32> {
        t.to_vec::<f32>().unwrap()
    }

    backend_test!(max_and_avg_pool_hand_values, |dev| {
        let x = ramp(dev);
        let y = x.max_pool2d((2, 2), (2, 2), Padding::Valid).unwrap();
        assert_eq!(y.dims(), &[1, 2, 2, 1]);
        assert_eq!(vals(&y), vec![6.0, 8.0, 14.0, 16.0]);
        // VALID 3×3 stride 2 on 4×4: ceil((4 − 3 + 1) / 2) = 1 window.
        assert_eq!(vals(&x.max_pool2d((3, 3), (2, 2), Padding::Valid).unwrap()), vec![11.0]);
        // SAME 3×3 stride 2: out 2, padding 0 before and 1 after on each axis.
        assert_eq!(vals(&x.max_pool2d((3, 3), (2, 2), Padding::Same).unwrap()), vec![11.0, 12.0, 15.0, 16.0]);
        assert_eq!(vals(&x.avg_pool2d((2, 2), (2, 2), Padding::Valid).unwrap()), vec![3.5, 5.5, 11.5, 13.5]);
        // SAME averages divide by the real inputs: 9, 6, 6 and 4 of them.
        // (0,0): rows 0–2 × cols 0–2 → 54/9; (0,1): cols 2–3 → 45/6; (1,0): 72/6; (1,1): 54/4.
        let y = x.avg_pool2d((3, 3), (2, 2), Padding::Same).unwrap();
        assert_close("avg same", &vals(&y), &[6.0, 7.5, 12.0, 13.5], 1e-6, 1e-6);
        // Padding never wins a maximum, even over negative inputs.
        let neg = x.neg().unwrap();
        assert_eq!(vals(&neg.max_pool2d((3, 3), (2, 2), Padding::Same).unwrap()), vec![-1.0, -3.0, -9.0, -11.0]);
    });

    backend_test!(avg_pool_same_counts_only_real_inputs, |dev| {
        // Ones everywhere: any count that included padding would pull the borders below 1.
        let x = Tensor::ones([2, 4, 5, 3], DType::F32, dev).unwrap();
        let y = x.avg_pool2d((3, 3), (1, 1), Padding::Same).unwrap();
        assert_eq!(y.dims(), &[2, 4, 5, 3]);
        assert_close("ones", &vals(&y), &[1.0; 120], 1e-6, 1e-6);
        // Explicit padding follows the same rule: window (0,0) covers only pixel (0,0).
        let y = ramp(dev).avg_pool2d((2, 2), (2, 2), Padding::Explicit(vec![(1, 1), (1, 1)])).unwrap();
        assert_eq!(y.dims(), &[1, 3, 3, 1]);
        assert_close("explicit", &vals(&y), &[1.0, 2.5, 4.0, 7.0, 8.5, 10.0, 13.0, 14.5, 16.0], 1e-6, 1e-6);
    });

    backend_test!(channels_pool_independently, |dev| {
        // Channel 1 is the negated ramp: the 2×2 maxima sit at the windows' top-left corners.
        let v: Vec<f32> = (1..=16).flat_map(|v| [v as f32, -(v as f32)]).collect();
        let x = Tensor::from_vec(v, [1, 4, 4, 2], dev).unwrap();
        let y = x.max_pool2d((2, 2), (2, 2), Padding::Valid).unwrap();
        assert_eq!(vals(&y), vec![6.0, -1.0, 8.0, -3.0, 14.0, -9.0, 16.0, -11.0]);
    });

    backend_test!(argmax_indices_include_the_batch, |dev| {
        let v: Vec<f32> = (0..2 * 16).flat_map(|v| [v as f32, -(v as f32)]).collect();
        let x = Tensor::from_vec(v, [2, 4, 4, 2], dev).unwrap();
        let (y, idx) = x.max_pool2d_with_argmax((2, 2), (2, 2), Padding::Valid).unwrap();
        assert_eq!(idx.dims(), &[2, 2, 2, 2]);
        // ((b·4 + y)·4 + x)·2 + c: channel 0 peaks bottom-right of each window, channel 1 top-left.
        let mut want = Vec::new();
        for b in 0..2 {
            for (oy, ox) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                want.push((((b * 4 + 2 * oy + 1) * 4 + 2 * ox + 1) * 2) as i64);
                want.push((((b * 4 + 2 * oy) * 4 + 2 * ox) * 2 + 1) as i64);
            }
        }
        assert_eq!(&want[..4], &[10, 1, 14, 5]);
        assert_eq!(idx.to_vec::<i64>().unwrap(), want);
        let flat = x.to_vec::<f32>().unwrap();
        let picked: Vec<f32> = want.iter().map(|&i| flat[i as usize]).collect();
        assert_eq!(vals(&y), picked);
        // Unpooling puts each maximum back where it came from.
        let un = y.max_unpool2d(&idx, x.dims()).unwrap();
        let back = vals(&un);
        for (i, &v) in back.iter().enumerate() {
            assert_eq!(v, if want.contains(&(i as i64)) { flat[i] } else { 0.0 }, "element {i}");
        }
    });

    backend_test!(pool_gradients_by_hand, |dev| {
        let x = ramp(dev).with_requires_grad(true).unwrap();
        let g = x.max_pool2d((2, 2), (2, 2), Padding::Valid).unwrap().sum_all().unwrap().backward().unwrap();
        let mut want = vec![0f32; 16];
        for i in [5, 7, 13, 15] {
            want[i] = 1.0;
        }
        assert_eq!(vals(g.get(&x).unwrap()), want);
        // Ties send the whole gradient to the first maximum, as TensorFlow.
        let t = Tensor::ones([1, 2, 2, 1], DType::F32, dev).unwrap().with_requires_grad(true).unwrap();
        let g = t.max_pool2d((2, 2), (1, 1), Padding::Valid).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(vals(g.get(&t).unwrap()), vec![1.0, 0.0, 0.0, 0.0]);
        // SAME 3×3 stride 2 average: windows of 9, 6, 6 and 4 real inputs.
        let g = x.avg_pool2d((3, 3), (2, 2), Padding::Same).unwrap().sum_all().unwrap().backward().unwrap();
        let d = vals(g.get(&x).unwrap());
        assert_close(
            "corner",
            &[d[0], d[10], d[15], d[2]],
            &[1.0 / 9.0, 1.0 / 9.0 + 1.0 / 3.0 + 0.25, 0.25, 1.0 / 9.0 + 1.0 / 6.0],
            1e-6,
            1e-6,
        );
    });

    backend_test!(pool_gradcheck, |dev| {
        let x = distinct(&[2, 5, 6, 3], dev);
        type Combo = ((usize, usize), (usize, usize), Padding);
        let combos: [Combo; 5] = [
            ((2, 2), (2, 2), Padding::Valid),
            ((3, 3), (2, 2), Padding::Same),
            ((3, 2), (1, 2), Padding::Same),
            ((2, 3), (2, 1), Padding::Explicit(vec![(1, 0), (1, 1)])),
            ((3, 3), (1, 1), Padding::Valid),
        ];
        for (k, s, p) in combos {
            let what = format!("{k:?} {s:?} {p:?}");
            gradcheck(|t| t[0].max_pool2d(k, s, p.clone()), std::slice::from_ref(&x), 1e-3, 2e-3)
                .unwrap_or_else(|e| panic!("max {what}: {e}"));
            gradcheck(|t| t[0].avg_pool2d(k, s, p.clone()), std::slice::from_ref(&x), 1e-3, 2e-3)
                .unwrap_or_else(|e| panic!("avg {what}: {e}"));
            gradcheck(|t| Ok(t[0].max_pool2d_with_argmax(k, s, p.clone())?.0), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
        }
        let (y, idx) = x.max_pool2d_with_argmax((2, 2), (2, 2), Padding::Same).unwrap();
        gradcheck(|t| t[0].max_unpool2d(&idx, x.dims()), &[y], 1e-3, 2e-3).unwrap();
    });

    backend_test!(depth_and_global_pooling, |dev| {
        let x = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 3.0, 8.0, 7.0, 6.0, 9.0], [1, 1, 2, 4], dev).unwrap();
        let y = x.max_pool_depth(2).unwrap();
        assert_eq!(y.dims(), &[1, 1, 2, 2]);
        assert_eq!(vals(&y), vec![5.0, 3.0, 8.0, 9.0]);
        gradcheck(|t| t[0].max_pool_depth(3), &[distinct(&[1, 2, 2, 6], dev)], 1e-3, 2e-3).unwrap();
        let g = x.global_avg_pool2d(false).unwrap();
        assert_eq!(g.dims(), &[1, 4]);
        assert_eq!(vals(&g), vec![4.5, 6.0, 4.0, 6.0]);
        let g = x.global_max_pool2d(true).unwrap();
        assert_eq!(g.dims(), &[1, 1, 1, 4]);
        assert_eq!(vals(&g), vec![8.0, 7.0, 6.0, 9.0]);
        gradcheck(|t| t[0].global_avg_pool2d(true), &[rand(&[2, 3, 2, 2], -1.0, 1.0, 3, dev)], 1e-3, 2e-3).unwrap();
        gradcheck(|t| t[0].global_max_pool2d(false), &[distinct(&[2, 3, 2, 2], dev)], 1e-3, 2e-3).unwrap();
    });

    backend_test!(pooling_errors_name_expected_and_received, |dev| {
        let x = ramp(dev);
        let e = x.reshape(&[4, 4, 1]).unwrap().max_pool2d((2, 2), (2, 2), Padding::Valid).unwrap_err().to_string();
        assert!(e.contains("max_pool2d") && e.contains("rank 4 (N, H, W, C)") && e.contains("[4, 4, 1]"), "{e}");
        let e = x.avg_pool2d((0, 2), (1, 1), Padding::Valid).unwrap_err().to_string();
        assert!(e.contains("avg_pool2d") && e.contains("got kernel 0, stride 1"), "{e}");
        let e = x.max_pool2d((2, 2), (1, 0), Padding::Same).unwrap_err().to_string();
        assert!(e.contains("got kernel 2, stride 0"), "{e}");
        let e = x.max_pool2d((5, 2), (1, 1), Padding::Valid).unwrap_err().to_string();
        assert!(e.contains("kernel size 5 on spatial axis 0 is larger than the padded input size 4"), "{e}");
        let e = x.max_pool2d((2, 2), (1, 1), Padding::Explicit(vec![(2, 0), (0, 0)])).unwrap_err().to_string();
        assert!(e.contains("padding (2, 0) on spatial axis 0 must be smaller than the window size 2"), "{e}");
        let e = x.max_pool2d((2, 2), (1, 1), Padding::Explicit(vec![(1, 0)])).unwrap_err().to_string();
        assert!(e.contains("needs 2 (before, after) pairs"), "{e}");
        let e = x.cast(DType::I64).unwrap().max_pool2d((2, 2), (1, 1), Padding::Valid).unwrap_err().to_string();
        assert!(e.contains("expected dtype float32, bfloat16 or float16, got int64"), "{e}");
        let e = Tensor::zeros([1, 2, 2, 6], DType::F32, dev).unwrap().max_pool_depth(4).unwrap_err().to_string();
        assert!(e.contains("channel count 6") && e.contains("depth window 4") && e.contains("[1, 2, 2, 6]"), "{e}");
        let e = x.cast(DType::I64).unwrap().global_avg_pool2d(true).unwrap_err().to_string();
        assert!(e.contains("global_avg_pool2d: expected dtype float32, bfloat16 or float16, got int64"), "{e}");
        let e = x.global_max_pool2d(false).unwrap().global_avg_pool2d(false).unwrap_err().to_string();
        assert!(e.contains("global_avg_pool2d") && e.contains("[1, 1]"), "{e}");
        let (y, idx) = x.max_pool2d_with_argmax((2, 2), (2, 2), Padding::Valid).unwrap();
        let e = y.max_unpool2d(&idx, &[1, 2, 2, 1]).unwrap_err().to_string();
        assert!(e.contains("index 5") && e.contains("output shape [1, 2, 2, 1] (4 elements)"), "{e}");
        let e = y.max_unpool2d(&idx.reshape(&[4]).unwrap(), x.dims()).unwrap_err().to_string();
        assert!(e.contains("max_unpool2d") && e.contains("[1, 2, 2, 1]") && e.contains("[4]"), "{e}");
    });
}
