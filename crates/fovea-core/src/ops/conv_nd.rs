//! 1-D and 3-D convolutions (`tf.nn.conv1d`, `tf.nn.conv3d`), composed from 2-D convolution
//! and reshapes so that every backend and gradient comes from conv2d.
//!
//! - conv1d is conv2d with a height of 1.
//! - conv3d runs in two 2-D stages. Stage one convolves every depth slice over (H, W) with all
//!   `kd` depth taps at once: the filter `[kd, kh, kw, cin, cout]`, transposed to
//!   `[kh, kw, cin, cout·kd]`, gives `z[n, d, oh, ow, co·kd + t]` = the contribution that depth
//!   slice `d` would make through depth tap `t`. Stage two sums those contributions along depth
//!   with a grouped convolution over `(D, H·W)` with a fixed 0/1 "selection" kernel
//!   `[kd, 1, kd, cout]`, `groups = cout`: output `co` at depth `od` adds
//!   `z[od·sd + t·dd − pad, ·, co·kd + t]` over `t`. Stage two costs `kd` multiply-adds per
//!   output, a small fraction of stage one. No slicing or permutation primitive is needed: the
//!   filter transpose is a matrix product with the identity.

use crate::ops::conv::{check_operands, conv2d_named, Conv2dOptions};
use crate::ops::padding::{resolve_axis, Padding};
use crate::{Error, Result, Tensor};

impl Tensor {
    /// 1-D convolution of `[N, L, c_in]` with a filter `[k, c_in / groups, c_out]`, giving
    /// `[N, out_len, c_out]`. Explicit padding takes one `(before, after)` pair.
    ///
    /// # Errors
    /// `RankMismatch` unless input and filter are rank 3; otherwise as [`Tensor::conv2d`].
    pub fn conv1d(&self, filter: &Tensor, stride: usize, padding: Padding, dilation: usize, groups: usize) -> Result<Tensor> {
        const OP: &str = "conv1d";
        if self.rank() != 3 {
            return Err(Error::rank(OP, "3 (N, L, C)", self.shape()));
        }
        if filter.rank() != 3 {
            return Err(Error::rank(OP, "3 (k, c_in / groups, c_out)", filter.shape()));
        }
        let (&[n, len, c_in], &[k, f_in, c_out]) = (self.dims(), filter.dims()) else { unreachable!("ranks checked above") };
        if groups > 0 && c_in % groups == 0 && f_in != c_in / groups {
            return Err(Error::shape(
                OP,
                format!("a filter with {} input channels (input {}, {groups} groups)", c_in / groups, self.shape()),
                filter.shape(),
            ));
        }
        let padding = match padding {
            Padding::Explicit(pairs) if pairs.len() == 1 => Padding::Explicit(vec![(0, 0), pairs[0]]),
            Padding::Explicit(pairs) => {
                return Err(Error::invalid(
                    OP,
                    format!("explicit padding needs exactly one (before, after) pair, got {} pairs", pairs.len()),
                ))
            }
            p => p,
        };
        let opts = Conv2dOptions { strides: (1, stride), padding, dilation: (1, dilation), groups };
        let x = self.reshape_to([n, 1, len, c_in])?;
        let w = filter.reshape_to([1, k, f_in, c_out])?;
        let y = conv2d_named(OP, &x, &w, &opts)?;
        let out_len = y.dims()[2];
        y.reshape_to([n, out_len, c_out])
    }

    /// 3-D convolution of `[N, D, H, W, c_in]` with a filter `[kd, kh, kw, c_in, c_out]`,
    /// giving `[N, out_d, out_h, out_w, c_out]`; strides and dilation per (D, H, W) and
    /// TensorFlow padding (explicit padding takes three pairs).
    ///
    /// # Errors
    /// `RankMismatch` unless input and filter are rank 5; `DTypeMismatch` unless f32;
    /// `ShapeMismatch` when the filter's input channels differ from the input's;
    /// `InvalidArgument` for a zero stride or dilation or a kernel larger than the padded input.
    pub fn conv3d(
        &self,
        filter: &Tensor,
        strides: (usize, usize, usize),
        padding: Padding,
        dilation: (usize, usize, usize),
    ) -> Result<Tensor> {
        const OP: &str = "conv3d";
        if let Some([x, filter]) = crate::autocast::operands([self, filter])? {
            return x.conv3d(&filter, strides, padding, dilation);
        }
        self.same_device(OP, filter)?;
        check_operands(OP, self, filter)?;
        if self.rank() != 5 {
            return Err(Error::rank(OP, "5 (N, D, H, W, C)", self.shape()));
        }
        if filter.rank() != 5 {
            return Err(Error::rank(OP, "5 (kd, kh, kw, c_in, c_out)", filter.shape()));
        }
        let (&[n, d, h, w, c_in], &[kd, kh, kw, f_in, c_out]) = (self.dims(), filter.dims()) else { unreachable!("ranks checked above") };
        if f_in != c_in {
            return Err(Error::shape(OP, format!("a filter with {c_in} input channels (input {})", self.shape()), filter.shape()));
        }
        let depth = resolve_axis(OP, &padding, 0, d, kd, strides.0, dilation.0)?;
        let rows = resolve_axis(OP, &padding, 1, h, kh, strides.1, dilation.1)?;
        let cols = resolve_axis(OP, &padding, 2, w, kw, strides.2, dilation.2)?;

        // Stage one: [kd, rest] → [rest, kd] (a product with the identity), so that the
        // depth taps of output channel co sit side by side at co·kd + t.
        let taps = filter.reshape_to([kd, kh * kw * c_in * c_out])?.matmul_t(&Tensor::eye(kd, self.device())?, true, false)?;
        let taps = taps.reshape_to([kh, kw, c_in, c_out * kd])?;
        let planar = Conv2dOptions {
            strides: (strides.1, strides.2),
            padding: Padding::Explicit(vec![(rows.pad_before, rows.pad_after), (cols.pad_before, cols.pad_after)]),
            dilation: (dilation.1, dilation.2),
            groups: 1,
        };
        let z = conv2d_named(OP, &self.reshape_to([n * d, h, w, c_in])?, &taps, &planar)?;

        // Stage two: sum tap t of depth od·sd + t·dd − pad into output depth od.
        let mut select = vec![0f32; kd * kd * c_out];
        for t in 0..kd {
            for co in 0..c_out {
                select[(t * kd + t) * c_out + co] = 1.0;
            }
        }
        let select = Tensor::from_vec(select, [kd, 1, kd, c_out], self.device())?;
        let along_depth = Conv2dOptions {
            strides: (strides.0, 1),
            padding: Padding::Explicit(vec![(depth.pad_before, depth.pad_after), (0, 0)]),
            dilation: (dilation.0, 1),
            groups: c_out,
        };
        let z = z.reshape_to([n, d, rows.out * cols.out, c_out * kd])?;
        let y = conv2d_named(OP, &z, &select, &along_depth)?;
        y.reshape_to([n, depth.out, rows.out, cols.out, c_out])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, gradcheck, rand};
    use crate::{backend_test, DType, Device};

    fn t(v: Vec<f32>, shape: &[usize], dev: Device) -> Tensor {
        Tensor::from_vec(v, shape.to_vec(), dev).unwrap()
    }

    backend_test!(conv1d_dilation_and_padding, |dev| {
        // [1, 2, 3] at rate 4 acts like [1,0,0,0,2,0,0,0,3]: y[t] = x[t] + 2x[t+4] + 3x[t+8] = 6t + 32.
        let x = t((0..12).map(|v| v as f32).collect(), &[1, 12, 1], dev);
        let k = t(vec![1., 2., 3.], &[3, 1, 1], dev);
        let y = x.conv1d(&k, 1, Padding::Valid, 4, 1).unwrap();
        assert_eq!((y.dims(), y.to_vec::<f32>().unwrap()), (&[1usize, 4, 1][..], vec![32., 38., 44., 50.]));
        // Stride 2 with explicit padding (1, 0): windows start at -1, 1, 3, ...
        let y = x.conv1d(&k, 2, Padding::Explicit(vec![(1, 0)]), 1, 1).unwrap();
        // Window o covers x[2o − 1 + j] (x[−1] = 0): o = 0 → 2·0 + 3·1 = 3; o ≥ 1 → 6·(2o − 1) + 8.
        let expected_by_hand = vec![3., 14., 26., 38., 50., 62.];
        assert_eq!(y.to_vec::<f32>().unwrap(), expected_by_hand);
    });

    backend_test!(conv1d_groups_and_gradcheck, |dev| {
        // Two groups of one channel: output 0 sees channel 0 only, output 1 channel 1 only.
        let x = t(vec![1., 100., 2., 200.], &[1, 2, 2], dev);
        let k = t(vec![1., 1., 10., 10.], &[2, 1, 2], dev);
        let y = x.conv1d(&k, 1, Padding::Valid, 1, 2).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![1. + 20., 100. + 2000.]);
        for (i, (stride, padding, dilation, groups)) in
            [(1, Padding::Same, 1, 1), (2, Padding::Same, 2, 1), (2, Padding::Explicit(vec![(2, 1)]), 1, 2)].into_iter().enumerate()
        {
            let x = rand(&[2, 7, 4], -1.0, 1.0, 80 + i as u64, dev);
            let k = rand(&[3, 4 / groups, 2], -1.0, 1.0, 90 + i as u64, dev);
            gradcheck(|v| v[0].conv1d(&v[1], stride, padding.clone(), dilation, groups), &[x, k], 1e-2, 2e-3).unwrap();
        }
    });

    backend_test!(conv3d_mixes_depth_taps, |dev| {
        // Kernel kd=2 (weights 1, 2) over x[d, h, w] = 100d + 10h + w: y = x[d] + 2x[d+1] = 300d + 30h + 3w + 200.
        let x: Vec<f32> = (0..3).flat_map(|d| (0..2).flat_map(move |h| (0..2).map(move |w| (100 * d + 10 * h + w) as f32))).collect();
        let x = t(x, &[1, 3, 2, 2, 1], dev);
        let y = x.conv3d(&t(vec![1., 2.], &[2, 1, 1, 1, 1], dev), (1, 1, 1), Padding::Valid, (1, 1, 1)).unwrap();
        assert_eq!(y.dims(), &[1, 2, 2, 2, 1]);
        let expected: Vec<f32> =
            (0..2).flat_map(|d| (0..2).flat_map(move |h| (0..2).map(move |w| (300 * d + 30 * h + 3 * w + 200) as f32))).collect();
        assert_eq!(y.to_vec::<f32>().unwrap(), expected);
        // Depth stride 2 and dilation 2 over x[d] = d: y[od] = x[2od] + 10·x[2od + 2] → 20, 42.
        let x = t((0..5).map(|d| d as f32).collect(), &[1, 5, 1, 1, 1], dev);
        let y = x.conv3d(&t(vec![1., 10.], &[2, 1, 1, 1, 1], dev), (2, 1, 1), Padding::Valid, (2, 1, 1)).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![20., 42.]);
        // Channels: depth tap 0 is the identity, tap 1 scales channel 0 by 10 and 1 by 100.
        let x = t(vec![1., 2., 3., 4.], &[1, 2, 1, 1, 2], dev);
        let k = t(vec![1., 0., 0., 1., 10., 0., 0., 100.], &[2, 1, 1, 2, 2], dev);
        let y = x.conv3d(&k, (1, 1, 1), Padding::Valid, (1, 1, 1)).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![1. + 30., 2. + 400.]);
    });

    backend_test!(conv3d_same_padding_counts_real_taps, |dev| {
        // 3×3×3 ones, 3×3×3 ones kernel, SAME: each output counts the real inputs under it.
        let x = Tensor::ones([1, 3, 3, 3, 1], DType::F32, dev).unwrap();
        let k = Tensor::ones([3, 3, 3, 1, 1], DType::F32, dev).unwrap();
        let y = x.conv3d(&k, (1, 1, 1), Padding::Same, (1, 1, 1)).unwrap().to_vec::<f32>().unwrap();
        let count = |i: usize| if i == 1 { 3. } else { 2. };
        let expected: Vec<f32> = (0..27).map(|p| count(p / 9) * count(p / 3 % 3) * count(p % 3)).collect();
        assert_close("same", &y, &expected, 0.0, 0.0);
    });

    backend_test!(gradcheck_conv3d, |dev| {
        let cases = [
            ([1, 4, 3, 3, 2], [2, 2, 2, 2, 3], (1, 1, 1), Padding::Valid, (1, 1, 1)),
            ([1, 5, 4, 3, 1], [3, 2, 2, 1, 2], (2, 1, 2), Padding::Same, (1, 2, 1)),
            ([2, 4, 3, 3, 2], [2, 1, 2, 2, 1], (1, 2, 1), Padding::Explicit(vec![(1, 0), (0, 1), (1, 1)]), (2, 1, 1)),
        ];
        for (i, (xd, kd, s, p, d)) in cases.into_iter().enumerate() {
            let x = rand(&xd, -1.0, 1.0, 110 + i as u64, dev);
            let k = rand(&kd, -1.0, 1.0, 120 + i as u64, dev);
            gradcheck(|v| v[0].conv3d(&v[1], s, p.clone(), d), &[x, k], 1e-2, 2e-3).unwrap_or_else(|e| panic!("case {i}: {e}"));
        }
    });

    backend_test!(conv1d_and_conv3d_errors, |dev| {
        let x1 = Tensor::zeros([1, 8, 3], DType::F32, dev).unwrap();
        let e = x1.conv1d(&Tensor::zeros([3, 2, 4], DType::F32, dev).unwrap(), 1, Padding::Valid, 1, 1).unwrap_err().to_string();
        assert!(e.contains("conv1d") && e.contains("a filter with 3 input channels") && e.contains("got [3, 2, 4]"), "{e}");
        let e = x1.conv1d(&Tensor::zeros([3, 3, 4, 1], DType::F32, dev).unwrap(), 1, Padding::Valid, 1, 1).unwrap_err().to_string();
        assert!(e.contains("rank 3 (k, c_in / groups, c_out)"), "{e}");
        let e = Tensor::zeros([8, 3], DType::F32, dev).unwrap().conv1d(&x1, 1, Padding::Valid, 1, 1).unwrap_err().to_string();
        assert!(e.contains("rank 3 (N, L, C)") && e.contains("[8, 3]"), "{e}");
        let k1 = Tensor::zeros([3, 3, 4], DType::F32, dev).unwrap();
        let e = x1.conv1d(&k1, 0, Padding::Valid, 1, 1).unwrap_err().to_string();
        assert!(e.contains("conv1d") && e.contains("stride 0"), "{e}");
        let e = x1.conv1d(&k1, 1, Padding::Explicit(vec![(1, 1), (1, 1)]), 1, 1).unwrap_err().to_string();
        assert!(e.contains("exactly one (before, after) pair, got 2"), "{e}");

        let x3 = Tensor::zeros([1, 4, 4, 4, 2], DType::F32, dev).unwrap();
        let e = x3
            .conv3d(&Tensor::zeros([2, 2, 2, 3, 1], DType::F32, dev).unwrap(), (1, 1, 1), Padding::Valid, (1, 1, 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("conv3d") && e.contains("a filter with 2 input channels") && e.contains("got [2, 2, 2, 3, 1]"), "{e}");
        let k3 = Tensor::zeros([5, 2, 2, 2, 1], DType::F32, dev).unwrap();
        let e = x3.conv3d(&k3, (1, 1, 1), Padding::Valid, (1, 1, 1)).unwrap_err().to_string();
        assert!(e.contains("kernel size 5 on spatial axis 0 is larger than the padded input size 4"), "{e}");
        let e = x3.conv3d(&k3, (1, 1, 0), Padding::Same, (1, 1, 1)).unwrap_err().to_string();
        assert!(e.contains("stride 0") && e.contains("spatial axis 2"), "{e}");
        let e =
            Tensor::zeros([4, 4, 4, 2], DType::F32, dev).unwrap().conv3d(&k3, (1, 1, 1), Padding::Same, (1, 1, 1)).unwrap_err().to_string();
        assert!(e.contains("rank 5 (N, D, H, W, C)"), "{e}");
    });
}
