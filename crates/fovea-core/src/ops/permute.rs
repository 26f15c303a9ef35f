//! Axis permutation (`tf.transpose` with `perm`) and the two-axis swap, with their gradient:
//! the inverse permutation.

use crate::backend::backend;
use crate::backend::reference::movement::check_perm;
use crate::{Result, Shape, Tensor};

impl Tensor {
    /// Reorders the axes: output axis `i` is input axis `perm[i]` (`tf.transpose(x, perm)`).
    /// Works for every dtype; the result is a contiguous copy.
    ///
    /// # Errors
    /// `InvalidArgument` when `perm` is not a permutation of `0..rank`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        check_perm("permute", perm, self.shape())?;
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        let y = backend(self.device())?.permute(self.storage(), self.shape(), perm)?;
        let shape = Shape::new(perm.iter().map(|&p| self.dims()[p]).collect::<Vec<_>>());
        // The gradient moves back with the inverse permutation: inverse[perm[i]] = i.
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(Tensor::from_op(y, shape, self.device(), "permute", &[self], move |_, _, g| Ok(vec![Some(g.permute(&inverse)?)])))
    }

    /// Swaps axes `a` and `b` (negative counts from the end), e.g. `transpose(-1, -2)` for the
    /// matrix transpose of a batch.
    ///
    /// # Errors
    /// `InvalidArgument` when an axis is out of range.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let (a, b) = (self.shape().axis("transpose", a)?, self.shape().axis("transpose", b)?);
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{gradcheck, rand};
    use crate::{backend_test, DType, Device, Tensor};

    backend_test!(permute_moves_axes, |dev| {
        // x[i, j, k] = 100i + 10j + k with shape [2, 3, 2]; perm [2, 0, 1] gives y[k, i, j].
        let v: Vec<f32> = (0..2).flat_map(|i| (0..3).flat_map(move |j| (0..2).map(move |k| (100 * i + 10 * j + k) as f32))).collect();
        let x = Tensor::from_vec(v, [2, 3, 2], dev).unwrap();
        let y = x.permute(&[2, 0, 1]).unwrap();
        assert_eq!(y.dims(), &[2, 2, 3]);
        let expected: Vec<f32> =
            (0..2).flat_map(|k| (0..2).flat_map(move |i| (0..3).map(move |j| (100 * i + 10 * j + k) as f32))).collect();
        assert_eq!(y.to_vec::<f32>().unwrap(), expected);
        // NHWC -> NCHW on bytes keeps every dtype.
        let img = Tensor::from_vec((0u8..12).collect(), [1, 2, 2, 3], dev).unwrap();
        let nchw = img.permute(&[0, 3, 1, 2]).unwrap();
        assert_eq!(nchw.to_vec::<u8>().unwrap(), vec![0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]);
        assert_eq!(nchw.permute(&[0, 2, 3, 1]).unwrap().to_vec::<u8>().unwrap(), (0u8..12).collect::<Vec<_>>());
    });

    backend_test!(transpose_swaps_two_axes, |dev| {
        let x = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], [2, 3], dev).unwrap();
        let t = x.transpose(0, -1).unwrap();
        assert_eq!(t.dims(), &[3, 2]);
        assert_eq!(t.to_vec::<i64>().unwrap(), vec![1, 4, 2, 5, 3, 6]);
        let b = Tensor::from_vec(vec![true, false], [1, 2, 1], dev).unwrap();
        assert_eq!(b.transpose(1, 2).unwrap().dims(), &[1, 1, 2]);
    });

    backend_test!(permute_gradients_pass_gradcheck, |dev| {
        let x = rand(&[2, 3, 4], -1.0, 1.0, 3, dev);
        gradcheck(|t| t[0].permute(&[1, 2, 0]), std::slice::from_ref(&x), 1e-3, 1e-3).unwrap();
        gradcheck(|t| t[0].transpose(0, 2), std::slice::from_ref(&x), 1e-3, 1e-3).unwrap();
        let img = rand(&[2, 2, 3, 2], -1.0, 1.0, 4, dev);
        gradcheck(|t| t[0].permute(&[0, 3, 1, 2]), &[img], 1e-3, 1e-3).unwrap();
    });

    #[test]
    fn bad_perms_and_axes_are_errors() {
        let x = Tensor::zeros([2, 3, 4], DType::F32, Device::Cpu).unwrap();
        for perm in [&[0, 1][..], &[0, 1, 1], &[0, 1, 3]] {
            let e = x.permute(perm).unwrap_err().to_string();
            assert!(e.contains("permute") && e.contains("permutation of 0..3") && e.contains("[2, 3, 4]"), "{e}");
        }
        let e = x.transpose(0, 3).unwrap_err().to_string();
        assert!(e.contains("transpose") && e.contains("axis 3 is out of range"), "{e}");
    }
}
