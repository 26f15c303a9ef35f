//! `tf.pad` in its three modes, with gradients.
//!
//! A constant pad's gradient is the slice of the gradient where the input sits. A mirrored pad
//! reads some inputs twice or three times (the original and its reflections), so its gradient
//! must add those contributions up: per axis, a scatter-add along the same source map the
//! forward pass read through.

use crate::backend::backend;
use crate::backend::reference::movement::pad_source_map;
pub use crate::backend::PadMode;
use crate::{Error, Result, Shape, Tensor};

impl Tensor {
    /// Pads each axis by `(before, after)` elements (`tf.pad`): `Constant(v)` fills with `v`
    /// (converted to the dtype), `Reflect` mirrors without the edge, `Symmetric` mirrors with it.
    ///
    /// ```
    /// # use fovea_core::{ops::pad::PadMode, Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3], Device::Cpu)?;
    /// assert_eq!(x.pad(&[(2, 2)], PadMode::Reflect)?.to_vec::<f32>()?, [3., 2., 1., 2., 3., 2., 1.]);
    /// assert_eq!(x.pad(&[(2, 2)], PadMode::Symmetric)?.to_vec::<f32>()?, [2., 1., 1., 2., 3., 3., 2.]);
    /// # Ok::<(), fovea_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` when `paddings` does not have one pair per axis, or a mirrored border is
    /// too wide (`Reflect` needs `pad < dim`, `Symmetric` needs `pad <= dim`, on each side).
    pub fn pad(&self, paddings: &[(usize, usize)], mode: PadMode) -> Result<Tensor> {
        if paddings.len() != self.rank() {
            return Err(Error::invalid(
                "pad",
                format!("need one (before, after) pair per axis of shape {}, got {} pairs: {paddings:?}", self.shape(), paddings.len()),
            ));
        }
        // Checked here too so that a bad width is reported even when nothing is padded elsewhere.
        let maps = self
            .dims()
            .iter()
            .zip(paddings)
            .enumerate()
            .map(|(k, (&d, &p))| pad_source_map("pad", k, d, p, mode))
            .collect::<Result<Vec<_>>>()?;
        if paddings.iter().all(|&p| p == (0, 0)) {
            return Ok(self.clone());
        }
        let y = backend(self.device())?.pad(self.storage(), self.shape(), paddings, mode)?;
        let shape = Shape::new(maps.iter().map(Vec::len).collect::<Vec<_>>());
        let pads = paddings.to_vec();
        Ok(Tensor::from_op(y, shape, self.device(), "pad", &[self], move |inputs, _, g| {
            let dims = inputs[0].dims();
            let grad = match mode {
                PadMode::Constant(_) => {
                    let begin: Vec<usize> = pads.iter().map(|p| p.0).collect();
                    let size: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
                    g.slice(&begin, &size)?
                }
                PadMode::Reflect | PadMode::Symmetric => {
                    // The pad is a gather along each axis in turn, so its adjoint is a
                    // scatter-add along each axis with the same indices.
                    let mut g = g.clone();
                    for (k, map) in maps.iter().enumerate() {
                        if pads[k] != (0, 0) {
                            // Mirror modes read a source for every position, so no entry is dropped.
                            let idx = super::index::host_indices(map.iter().flatten().map(|&m| m as i64), g.device())?;
                            g = g.put_along(k, idx, dims[k])?;
                        }
                    }
                    g
                }
            };
            Ok(vec![Some(grad)])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::PadMode;
    use crate::testing::{gradcheck, rand};
    use crate::{backend_test, DType, Device, Tensor};

    backend_test!(tf_pad_doc_examples, |dev| {
        // The tf.pad documentation: t = [[1, 2, 3], [4, 5, 6]], paddings = [[1, 1], [2, 2]].
        let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3], dev).unwrap();
        let pads = [(1, 1), (2, 2)];
        let constant = t.pad(&pads, PadMode::Constant(0.0)).unwrap();
        assert_eq!(constant.dims(), &[4, 7]);
        #[rustfmt::skip]
        assert_eq!(constant.to_vec::<f32>().unwrap(), vec![
            0., 0., 0., 0., 0., 0., 0.,
            0., 0., 1., 2., 3., 0., 0.,
            0., 0., 4., 5., 6., 0., 0.,
            0., 0., 0., 0., 0., 0., 0.,
        ]);
        #[rustfmt::skip]
        assert_eq!(t.pad(&pads, PadMode::Reflect).unwrap().to_vec::<f32>().unwrap(), vec![
            6., 5., 4., 5., 6., 5., 4.,
            3., 2., 1., 2., 3., 2., 1.,
            6., 5., 4., 5., 6., 5., 4.,
            3., 2., 1., 2., 3., 2., 1.,
        ]);
        #[rustfmt::skip]
        assert_eq!(t.pad(&pads, PadMode::Symmetric).unwrap().to_vec::<f32>().unwrap(), vec![
            2., 1., 1., 2., 3., 3., 2.,
            2., 1., 1., 2., 3., 3., 2.,
            5., 4., 4., 5., 6., 6., 5.,
            5., 4., 4., 5., 6., 6., 5.,
        ]);
    });

    backend_test!(pad_keeps_dtype_and_fill_value, |dev| {
        let x = Tensor::from_vec(vec![7u8, 8], [2], dev).unwrap();
        assert_eq!(x.pad(&[(1, 2)], PadMode::Constant(9.0)).unwrap().to_vec::<u8>().unwrap(), vec![9, 7, 8, 9, 9]);
        let i = Tensor::from_vec(vec![1i64, 2, 3], [1, 3], dev).unwrap();
        assert_eq!(i.pad(&[(0, 0), (2, 1)], PadMode::Reflect).unwrap().to_vec::<i64>().unwrap(), vec![3, 2, 1, 2, 3, 2]);
        let b = Tensor::from_vec(vec![true, false], [2], dev).unwrap();
        assert_eq!(b.pad(&[(2, 0)], PadMode::Symmetric).unwrap().to_vec::<bool>().unwrap(), vec![false, true, true, false]);
        let f = Tensor::from_vec(vec![1.0f32], [1, 1], dev).unwrap();
        assert_eq!(f.pad(&[(1, 0), (0, 1)], PadMode::Constant(-0.5)).unwrap().to_vec::<f32>().unwrap(), vec![-0.5, -0.5, 1.0, -0.5]);
    });

    backend_test!(pad_gradients_pass_gradcheck, |dev| {
        let x = rand(&[3, 4], -1.0, 1.0, 11, dev);
        for mode in [PadMode::Constant(0.5), PadMode::Reflect, PadMode::Symmetric] {
            for pads in [[(1, 2), (2, 1)], [(0, 0), (3, 3)], [(2, 0), (0, 0)]] {
                gradcheck(|t| t[0].pad(&pads, mode), std::slice::from_ref(&x), 1e-3, 1e-3)
                    .unwrap_or_else(|e| panic!("{mode:?} {pads:?}: {e}"));
            }
        }
        // Symmetric allows pad == dim (a whole mirrored copy); NHWC spatial padding as in a CNN.
        let img = rand(&[1, 2, 3, 2], -1.0, 1.0, 12, dev);
        gradcheck(|t| t[0].pad(&[(0, 0), (2, 2), (3, 1), (0, 0)], PadMode::Symmetric), std::slice::from_ref(&img), 1e-3, 1e-3).unwrap();
        gradcheck(|t| t[0].pad(&[(0, 0), (1, 1), (2, 2), (0, 0)], PadMode::Reflect), &[img], 1e-3, 1e-3).unwrap();
    });

    backend_test!(reflect_gradient_accumulates_mirrors, |dev| {
        // [a b c] reflect-padded by (2, 2) is [c b a b c b a]: a and c are read twice, b 3 times.
        let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3], dev).unwrap().with_requires_grad(true).unwrap();
        let g = x.pad(&[(2, 2)], PadMode::Reflect).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![2.0, 3.0, 2.0]);
        // Symmetric (2, 1): [b a a b c c]: a 2, b 2, c 2.
        let g = x.pad(&[(2, 1)], PadMode::Symmetric).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![2.0, 2.0, 2.0]);
    });

    #[test]
    fn too_wide_mirrors_are_errors() {
        let x = Tensor::zeros([2, 3], DType::F32, Device::Cpu).unwrap();
        let e = x.pad(&[(0, 0), (3, 0)], PadMode::Reflect).unwrap_err().to_string();
        assert!(e.contains("pad") && e.contains("REFLECT") && e.contains("less than") && e.contains("axis 1 of size 3"), "{e}");
        assert!(x.pad(&[(0, 0), (3, 3)], PadMode::Symmetric).is_ok());
        let e = x.pad(&[(0, 3), (0, 0)], PadMode::Symmetric).unwrap_err().to_string();
        assert!(e.contains("SYMMETRIC") && e.contains("at most") && e.contains("(0, 3) for axis 0 of size 2"), "{e}");
        let e = x.pad(&[(1, 1)], PadMode::Constant(0.0)).unwrap_err().to_string();
        assert!(e.contains("one (before, after) pair per axis of shape [2, 3]"), "{e}");
    }
}
