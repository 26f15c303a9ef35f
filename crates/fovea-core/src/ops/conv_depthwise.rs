//! Depthwise and separable convolutions (`tf.nn.depthwise_conv2d`, `tf.nn.separable_conv2d`),
//! composed from grouped [`Tensor::conv2d`].
//!
//! A depthwise filter `[kh, kw, c_in, multiplier]` read in row-major order is already the
//! grouped HWIO filter `[kh, kw, 1, c_in·multiplier]` with `groups = c_in`: element
//! `(i, j, c, m)` lands on output channel `c·multiplier + m`, which belongs to group `c` —
//! exactly TensorFlow's `output[..., c·multiplier + m] = Σ input[..., c] · filter[..., c, m]`.
//! So the reshape is free and gradients come from conv2d's.

use crate::ops::conv::{check_operands, conv2d_forward, conv2d_spec, Conv2dOptions};
use crate::{Error, Result, Tensor};

impl Tensor {
    /// Depthwise 2-D convolution: each input channel `c` is convolved with its own
    /// `multiplier` kernels, giving output channels `c·multiplier + m` (`[N, out_h, out_w,
    /// c_in·multiplier]`). `filter` is `[kh, kw, c_in, multiplier]`; `opts.groups` must stay 1
    /// (the grouping is implied).
    ///
    /// # Errors
    /// As [`Tensor::conv2d`]; `ShapeMismatch` when the filter's third axis is not `c_in`,
    /// `InvalidArgument` when `opts.groups != 1`.
    pub fn depthwise_conv2d(&self, filter: &Tensor, opts: &Conv2dOptions) -> Result<Tensor> {
        const OP: &str = "depthwise_conv2d";
        if let Some([x, filter]) = crate::autocast::operands([self, filter])? {
            return x.depthwise_conv2d(&filter, opts);
        }
        let grouped = depthwise_as_grouped(OP, self, filter, opts)?;
        let opts = Conv2dOptions { groups: self.dims()[3], ..opts.clone() };
        let spec = conv2d_spec(OP, self, &grouped, &opts)?;
        conv2d_forward(self, &grouped, spec)
    }

    /// Separable 2-D convolution: a depthwise convolution (`depthwise`: `[kh, kw, c_in,
    /// multiplier]`, with `opts`' stride, padding and dilation) followed by a 1×1 convolution
    /// (`pointwise`: `[1, 1, c_in·multiplier, c_out]`).
    ///
    /// # Errors
    /// As [`Tensor::depthwise_conv2d`]; `ShapeMismatch` unless `pointwise` is
    /// `[1, 1, c_in·multiplier, c_out]`.
    pub fn separable_conv2d(&self, depthwise: &Tensor, pointwise: &Tensor, opts: &Conv2dOptions) -> Result<Tensor> {
        const OP: &str = "separable_conv2d";
        if let Some([x, depthwise, pointwise]) = crate::autocast::operands([self, depthwise, pointwise])? {
            return x.separable_conv2d(&depthwise, &pointwise, opts);
        }
        let grouped = depthwise_as_grouped(OP, self, depthwise, opts)?;
        check_operands(OP, self, pointwise)?;
        let mid = grouped.dims()[3];
        let pd = pointwise.dims();
        if pointwise.rank() != 4 || pd[0] != 1 || pd[1] != 1 || pd[2] != mid {
            return Err(Error::shape(
                OP,
                format!("a pointwise filter [1, 1, {mid}, c_out] (c_in·multiplier = {mid} for depthwise filter {})", depthwise.shape()),
                pointwise.shape(),
            ));
        }
        let dw_opts = Conv2dOptions { groups: self.dims()[3], ..opts.clone() };
        let spec = conv2d_spec(OP, self, &grouped, &dw_opts)?;
        let mid_t = conv2d_forward(self, &grouped, spec)?;
        let spec = conv2d_spec(OP, &mid_t, pointwise, &Conv2dOptions::default())?;
        conv2d_forward(&mid_t, pointwise, spec)
    }
}

/// Checks a depthwise filter against `x` and returns it as the grouped filter
/// `[kh, kw, 1, c_in·multiplier]`.
fn depthwise_as_grouped(op: &'static str, x: &Tensor, filter: &Tensor, opts: &Conv2dOptions) -> Result<Tensor> {
    check_operands(op, x, filter)?;
    if x.rank() != 4 {
        return Err(Error::rank(op, "4 (N, H, W, C)", x.shape()));
    }
    if filter.rank() != 4 {
        return Err(Error::rank(op, "4 (kh, kw, c_in, multiplier)", filter.shape()));
    }
    if opts.groups != 1 {
        return Err(Error::invalid(op, format!("groups is implied (one per input channel) and must be left at 1, got {}", opts.groups)));
    }
    let (c_in, fd) = (x.dims()[3], filter.dims());
    if fd[2] != c_in {
        return Err(Error::shape(op, format!("a depthwise filter [kh, kw, {c_in}, multiplier] for input {}", x.shape()), filter.shape()));
    }
    filter.reshape_to([fd[0], fd[1], 1, c_in * fd[3]])
}

#[cfg(test)]
mod tests {
    use crate::ops::conv::Conv2dOptions;
    use crate::ops::padding::Padding;
    use crate::testing::{gradcheck, rand};
    use crate::{backend_test, DType, Device, Tensor};

    fn t(v: Vec<f32>, shape: &[usize], dev: Device) -> Tensor {
        Tensor::from_vec(v, shape.to_vec(), dev).unwrap()
    }

    /// 2×2 image with channel 0 = 1, 2, 3, 4 and channel 1 = 10, 20, 30, 40; a 2×2 filter with
    /// multiplier 2: m = 0 is all ones, m = 1 weighs tap k (row-major) by k + 1.
    fn example(dev: Device) -> (Tensor, Tensor) {
        let x = t(vec![1., 10., 2., 20., 3., 30., 4., 40.], &[1, 2, 2, 2], dev);
        let w: Vec<f32> = (0..4).flat_map(|k| [1., k as f32 + 1., 1., k as f32 + 1.]).collect();
        (x, t(w, &[2, 2, 2, 2], dev))
    }

    backend_test!(depthwise_orders_channels_like_tensorflow, |dev| {
        let (x, w) = example(dev);
        let y = x.depthwise_conv2d(&w, &Conv2dOptions::default()).unwrap();
        assert_eq!(y.dims(), &[1, 1, 1, 4]);
        // Output c·2 + m: (c0, ones) 1+2+3+4, (c0, ramp) 1+4+9+16, then channel 1 scaled by 10.
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![10., 30., 100., 300.]);
    });

    backend_test!(separable_is_depthwise_then_pointwise, |dev| {
        let (x, w) = example(dev);
        // Pointwise sums the two "ones" channels into output 0 and the two ramps into output 1.
        let p = t(vec![1., 0., 0., 1., 1., 0., 0., 1.], &[1, 1, 4, 2], dev);
        let y = x.separable_conv2d(&w, &p, &Conv2dOptions::default()).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![110., 330.]);
    });

    backend_test!(gradcheck_depthwise_and_separable, |dev| {
        let same = Conv2dOptions::default().with_padding(Padding::Same);
        let cases = [
            ([1, 5, 5, 2], [3, 3, 2, 2], same.clone().with_strides((2, 2))),
            ([2, 4, 5, 3], [2, 3, 3, 1], Conv2dOptions::default().with_dilation((2, 1))),
            ([1, 4, 4, 2], [3, 3, 2, 3], Conv2dOptions::default().with_padding(Padding::Explicit(vec![(0, 2), (1, 0)]))),
        ];
        for (i, (xd, wd, opts)) in cases.into_iter().enumerate() {
            let x = rand(&xd, -1.0, 1.0, 30 + i as u64, dev);
            let w = rand(&wd, -1.0, 1.0, 40 + i as u64, dev);
            gradcheck(|v| v[0].depthwise_conv2d(&v[1], &opts), &[x.clone(), w.clone()], 1e-2, 2e-3).unwrap();
            let p = rand(&[1, 1, wd[2] * wd[3], 2], -1.0, 1.0, 50 + i as u64, dev);
            gradcheck(|v| v[0].separable_conv2d(&v[1], &v[2], &opts), &[x, w, p], 1e-2, 2e-3).unwrap();
        }
    });

    backend_test!(depthwise_errors, |dev| {
        let x = Tensor::zeros([1, 6, 6, 3], DType::F32, dev).unwrap();
        let w = Tensor::zeros([3, 3, 3, 2], DType::F32, dev).unwrap();
        let d = Conv2dOptions::default();
        let e = x.depthwise_conv2d(&Tensor::zeros([3, 3, 4, 2], DType::F32, dev).unwrap(), &d).unwrap_err().to_string();
        assert!(e.contains("depthwise_conv2d") && e.contains("[kh, kw, 3, multiplier]") && e.contains("got [3, 3, 4, 2]"), "{e}");
        let e = x.depthwise_conv2d(&w, &d.clone().with_groups(3)).unwrap_err().to_string();
        assert!(e.contains("must be left at 1, got 3"), "{e}");
        let e = x.depthwise_conv2d(&Tensor::zeros([3, 3, 3], DType::F32, dev).unwrap(), &d).unwrap_err().to_string();
        assert!(e.contains("rank 4 (kh, kw, c_in, multiplier)") && e.contains("[3, 3, 3]"), "{e}");
        let e = x.depthwise_conv2d(&w, &d.clone().with_strides((0, 1))).unwrap_err().to_string();
        assert!(e.contains("depthwise_conv2d") && e.contains("stride 0"), "{e}");
        let p = Tensor::zeros([1, 1, 5, 4], DType::F32, dev).unwrap();
        let e = x.separable_conv2d(&w, &p, &d).unwrap_err().to_string();
        assert!(e.contains("separable_conv2d") && e.contains("pointwise filter [1, 1, 6, c_out]") && e.contains("got [1, 1, 5, 4]"), "{e}");
    });
}
