//! Transposed 2-D convolution (Keras `Conv2DTranspose`, `tf.nn.conv2d_transpose`).
//!
//! A transposed convolution is the input gradient of an ordinary convolution: the forward
//! convolution that maps the (large) output back to the (small) input has the HWIO filter
//! `[kh, kw, c_out, c_in]`, which is exactly Keras's transposed-conv kernel layout, so the
//! kernel is used as-is. The output size follows Keras's `deconv_output_length`; the padding
//! is then TensorFlow's rule applied to that output size, as `tf.nn.conv2d_transpose` does.

use crate::backend::Conv2dSpec;
use crate::ops::conv::{check_operands, conv2d_input_grad};
use crate::ops::padding::{resolve_axis, Padding};
use crate::{Error, Result, Tensor};

/// Options of [`Tensor::conv2d_transpose`], with Keras's defaults: stride 1, `Valid`
/// padding, no output padding, no dilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conv2dTransposeOptions {
    /// Stride (rows, columns): the upsampling factor.
    pub strides: (usize, usize),
    /// `Valid` or `Same` (Keras offers no explicit padding for transposed convolutions).
    pub padding: Padding,
    /// Extra rows/columns at the bottom/right of the output, each smaller than its stride;
    /// `None` uses Keras's default output size.
    pub output_padding: Option<(usize, usize)>,
    /// Dilation (rows, columns) of the kernel.
    pub dilation: (usize, usize),
}

impl Default for Conv2dTransposeOptions {
    fn default() -> Self {
        Conv2dTransposeOptions { strides: (1, 1), padding: Padding::Valid, output_padding: None, dilation: (1, 1) }
    }
}

/// Keras's `deconv_output_length` for one axis, with the kernel size already dilated.
/// `None` when the size overflows (sizes may come from a file).
fn deconv_output_length(input: usize, kernel: usize, same: bool, output_padding: Option<usize>, stride: usize) -> Option<usize> {
    match (output_padding, same) {
        (None, false) => input.checked_mul(stride)?.checked_add(kernel.saturating_sub(stride)),
        (None, true) => input.checked_mul(stride),
        (Some(op), same) => {
            let pad = if same { kernel / 2 } else { 0 };
            Some(input.saturating_sub(1).checked_mul(stride)?.checked_add(kernel)?.checked_add(op)?.saturating_sub(2 * pad))
        }
    }
}

impl Tensor {
    /// Transposed convolution of NHWC input `[N, H, W, c_in]` with a Keras kernel
    /// `[kh, kw, c_out, c_in]`, giving `[N, out_h, out_w, c_out]` where, per axis (`k` the
    /// dilated kernel size, `s` the stride): `Valid` → `in·s + max(k − s, 0)`, `Same` →
    /// `in·s`, and with output padding `p` → `(in − 1)·s + k − 2·pad + p` (`pad = k/2` for
    /// `Same`, 0 for `Valid`).
    ///
    /// # Errors
    /// `RankMismatch` unless both are rank 4; `DTypeMismatch` unless f32; `ShapeMismatch` when
    /// the kernel's last axis is not `c_in`; `InvalidArgument` for explicit padding, a zero
    /// stride or dilation, or an output padding not smaller than its stride.
    pub fn conv2d_transpose(&self, filter: &Tensor, opts: &Conv2dTransposeOptions) -> Result<Tensor> {
        const OP: &str = "conv2d_transpose";
        if let Some([x, filter]) = crate::autocast::operands([self, filter])? {
            return x.conv2d_transpose(&filter, opts);
        }
        self.same_device(OP, filter)?;
        check_operands(OP, self, filter)?;
        if self.rank() != 4 {
            return Err(Error::rank(OP, "4 (N, H, W, C)", self.shape()));
        }
        if filter.rank() != 4 {
            return Err(Error::rank(OP, "4 (kh, kw, c_out, c_in)", filter.shape()));
        }
        let (&[n, h, w, c_in], &[kh, kw, c_out, f_in]) = (self.dims(), filter.dims()) else { unreachable!("ranks checked above") };
        if f_in != c_in {
            return Err(Error::shape(OP, format!("a kernel [kh, kw, c_out, {c_in}] for input {}", self.shape()), filter.shape()));
        }
        let same = match opts.padding {
            Padding::Valid => false,
            Padding::Same => true,
            Padding::Explicit(_) => return Err(Error::invalid(OP, "padding must be Valid or Same, got explicit padding")),
        };
        let axes = [(h, kh, opts.strides.0, opts.dilation.0), (w, kw, opts.strides.1, opts.dilation.1)];
        let output_padding = opts.output_padding.map(|(a, b)| [a, b]);
        let mut windows = Vec::with_capacity(2);
        for (axis, &(input, kernel, stride, dilation)) in axes.iter().enumerate() {
            if kernel == 0 || stride == 0 || dilation == 0 {
                return Err(Error::invalid(
                    OP,
                    format!("kernel size, stride and dilation must be >= 1, got kernel {kernel}, stride {stride}, dilation {dilation} on spatial axis {axis}"),
                ));
            }
            let op = output_padding.map(|p| p[axis]);
            if let Some(p) = op.filter(|&p| p >= stride) {
                return Err(Error::invalid(
                    OP,
                    format!("output padding must be smaller than the stride, got {p} >= {stride} on spatial axis {axis}"),
                ));
            }
            let overflow = || {
                Error::invalid(
                    OP,
                    format!("input {input}, kernel {kernel}, stride {stride} and dilation {dilation} on spatial axis {axis} give an output past what can be addressed"),
                )
            };
            let dilated = (kernel - 1).checked_mul(dilation).and_then(|d| d.checked_add(1)).ok_or_else(overflow)?;
            let out = deconv_output_length(input, dilated, same, op, stride).ok_or_else(overflow)?;
            // TensorFlow pads the forward convolution of the output back to the input.
            let window = resolve_axis(OP, &opts.padding, axis, out, kernel, stride, dilation)?;
            if window.out != input {
                return Err(Error::invalid(
                    OP,
                    format!("output size {out} on spatial axis {axis} does not convolve back to the input size {input} (kernel {kernel}, stride {stride})"),
                ));
            }
            windows.push((out, window));
        }
        let ((out_h, rows), (out_w, cols)) = (windows[0], windows[1]);
        let spec = Conv2dSpec {
            n,
            h: out_h,
            w: out_w,
            c_in: c_out,
            kh,
            kw,
            c_out: c_in,
            groups: 1,
            stride: opts.strides,
            dilation: opts.dilation,
            pad: (rows.pad_before, rows.pad_after, cols.pad_before, cols.pad_after),
            out_h: h,
            out_w: w,
        };
        conv2d_input_grad(self, filter, spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::Conv2dOptions;
    use crate::testing::{gradcheck, rand};
    use crate::{backend_test, DType, Device};

    fn t(v: Vec<f32>, shape: &[usize], dev: Device) -> Tensor {
        Tensor::from_vec(v, shape.to_vec(), dev).unwrap()
    }

    fn opts(strides: usize, padding: Padding, output_padding: Option<(usize, usize)>) -> Conv2dTransposeOptions {
        Conv2dTransposeOptions { strides: (1, strides), padding, output_padding, ..Default::default() }
    }

    backend_test!(transpose_scatters_kernel_copies, |dev| {
        // Input [1, 10] along W, kernel [1, 2, 3], stride 2: each input drops a scaled copy of
        // the kernel every 2 columns and overlaps add.
        let x = t(vec![1., 10.], &[1, 1, 2, 1], dev);
        let k = t(vec![1., 2., 3.], &[1, 3, 1, 1], dev);
        let y = x.conv2d_transpose(&k, &opts(2, Padding::Valid, None)).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![1., 2., 13., 20., 30.]); // 2·2 + max(3 − 2, 0) = 5
                                                                             // SAME: in·s = 4 columns; TensorFlow pads the forward conv by (0, 1), dropping the tail.
        let y = x.conv2d_transpose(&k, &opts(2, Padding::Same, None)).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![1., 2., 13., 20.]);
        // Output padding adds a column: (2 − 1)·2 + 3 + 1 = 6.
        let y = x.conv2d_transpose(&k, &opts(2, Padding::Valid, Some((0, 1)))).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![1., 2., 13., 20., 30., 0.]);
        // Kernel layout [kh, kw, c_out, c_in]: one input channel fanned out to two outputs.
        let y = t(vec![2.], &[1, 1, 1, 1], dev).conv2d_transpose(&t(vec![3., 5.], &[1, 1, 2, 1], dev), &Default::default()).unwrap();
        assert_eq!((y.dims(), y.to_vec::<f32>().unwrap()), (&[1usize, 1, 1, 2][..], vec![6., 10.]));
    });

    backend_test!(transpose_upsamples_14_to_28_and_is_the_adjoint_of_conv2d, |dev| {
        // SPEC golden: 14×14 → 28×28 with kernel 4, stride 2, SAME.
        let x = rand(&[2, 14, 14, 3], -1.0, 1.0, 1, dev);
        let k = rand(&[4, 4, 5, 3], -1.0, 1.0, 2, dev);
        let o = Conv2dTransposeOptions { strides: (2, 2), padding: Padding::Same, ..Default::default() };
        let y = x.conv2d_transpose(&k, &o).unwrap();
        assert_eq!(y.dims(), &[2, 28, 28, 5]);
        // ⟨convT(x, k), z⟩ = ⟨x, conv(z, k)⟩ for the matching forward convolution.
        let z = rand(&[2, 28, 28, 5], -1.0, 1.0, 3, dev);
        let fwd = z.conv2d(&k, &Conv2dOptions::default().with_strides((2, 2)).with_padding(Padding::Same)).unwrap();
        let lhs = y.mul(&z).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        let rhs = x.mul(&fwd).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!((lhs - rhs).abs() < 1e-3 * (1.0 + rhs.abs()), "{lhs} vs {rhs}");
        // Output sizes from deconv_output_length.
        let size = |o: Conv2dTransposeOptions| x.conv2d_transpose(&k, &o).unwrap().dims()[1..3].to_vec();
        assert_eq!(size(Conv2dTransposeOptions { output_padding: Some((1, 1)), ..o.clone() }), vec![27, 27]);
        assert_eq!(size(Conv2dTransposeOptions { padding: Padding::Valid, ..o.clone() }), vec![30, 30]);
        assert_eq!(size(Conv2dTransposeOptions { dilation: (2, 1), strides: (1, 1), ..o.clone() }), vec![14, 14]);
        assert_eq!(size(Conv2dTransposeOptions { dilation: (2, 1), strides: (1, 1), padding: Padding::Valid, ..o }), vec![20, 17]);
    });

    backend_test!(gradcheck_conv2d_transpose, |dev| {
        let cases = [
            ([1, 3, 3, 2], [3, 3, 2, 2], Conv2dTransposeOptions { strides: (2, 2), padding: Padding::Same, ..Default::default() }),
            ([1, 3, 2, 2], [4, 3, 3, 2], Conv2dTransposeOptions { strides: (2, 1), ..Default::default() }),
            (
                [2, 2, 3, 1],
                [3, 2, 2, 1],
                Conv2dTransposeOptions { strides: (2, 3), padding: Padding::Same, output_padding: Some((1, 2)), dilation: (1, 1) },
            ),
            (
                [1, 3, 3, 2],
                [2, 2, 1, 2],
                Conv2dTransposeOptions { output_padding: Some((0, 1)), strides: (1, 2), dilation: (2, 1), ..Default::default() },
            ),
        ];
        for (i, (xd, kd, o)) in cases.into_iter().enumerate() {
            let x = rand(&xd, -1.0, 1.0, 60 + i as u64, dev);
            let k = rand(&kd, -1.0, 1.0, 70 + i as u64, dev);
            gradcheck(|v| v[0].conv2d_transpose(&v[1], &o), &[x, k], 1e-2, 2e-3).unwrap_or_else(|e| panic!("case {i}: {e}"));
        }
    });

    backend_test!(conv2d_transpose_errors, |dev| {
        let x = Tensor::zeros([1, 4, 4, 3], DType::F32, dev).unwrap();
        let k = Tensor::zeros([3, 3, 2, 3], DType::F32, dev).unwrap();
        let err = |x: &Tensor, k: &Tensor, o: Conv2dTransposeOptions| x.conv2d_transpose(k, &o).unwrap_err().to_string();
        let e = err(&x, &Tensor::zeros([3, 3, 3, 2], DType::F32, dev).unwrap(), Default::default());
        assert!(e.contains("conv2d_transpose") && e.contains("a kernel [kh, kw, c_out, 3]") && e.contains("got [3, 3, 3, 2]"), "{e}");
        let e = err(&Tensor::zeros([4, 4, 3], DType::F32, dev).unwrap(), &k, Default::default());
        assert!(e.contains("rank 4 (N, H, W, C)") && e.contains("[4, 4, 3]"), "{e}");
        let e = err(&x, &Tensor::zeros([3, 3, 3], DType::F32, dev).unwrap(), Default::default());
        assert!(e.contains("rank 4 (kh, kw, c_out, c_in)"), "{e}");
        let e = err(&x, &k, Conv2dTransposeOptions { padding: Padding::Explicit(vec![(1, 1), (1, 1)]), ..Default::default() });
        assert!(e.contains("Valid or Same"), "{e}");
        let e = err(&x, &k, Conv2dTransposeOptions { strides: (2, 2), output_padding: Some((1, 2)), ..Default::default() });
        assert!(e.contains("output padding must be smaller than the stride, got 2 >= 2 on spatial axis 1"), "{e}");
        // Keras's length with output padding 0 for an even kernel, (4 − 1)·2 + 4 − 4 = 6, only
        // convolves back to 3 rows; TensorFlow rejects it too.
        let k4 = Tensor::zeros([4, 4, 2, 3], DType::F32, dev).unwrap();
        let e = err(
            &x,
            &k4,
            Conv2dTransposeOptions { strides: (2, 2), padding: Padding::Same, output_padding: Some((0, 1)), ..Default::default() },
        );
        assert!(e.contains("output size 6 on spatial axis 0 does not convolve back to the input size 4"), "{e}");
        let e = err(&x, &k, Conv2dTransposeOptions { strides: (0, 1), ..Default::default() });
        assert!(e.contains("stride 0,") && e.contains("spatial axis 0"), "{e}");
        let e = err(&x.cast(DType::I64).unwrap(), &k, Default::default());
        assert!(e.contains("conv2d_transpose: expected dtype float32"), "{e}");
    });
}
