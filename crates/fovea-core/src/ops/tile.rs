//! Repetition and reversal: `tf.tile`, `tf.repeat` (scalar repeats) and `tf.reverse`.
//!
//! Tile and repeat are gathers with a periodic or stretched index list, so every dtype works and
//! the gradient — the sum over the copies — is the gather's scatter-add. Flip is a slice with
//! step -1, whose gradient is the flip of the gradient.

use crate::backend::SliceAxis;
use crate::{Error, Result, Tensor};

impl Tensor {
    /// Repeats the whole tensor `multiples[k]` times along each axis `k` (`tf.tile`).
    ///
    /// # Errors
    /// `InvalidArgument` unless there is one multiple per axis.
    pub fn tile(&self, multiples: &[usize]) -> Result<Tensor> {
        if multiples.len() != self.rank() {
            return Err(Error::invalid("tile", format!("need one multiple per axis of shape {}, got {multiples:?}", self.shape())));
        }
        let mut y = self.clone();
        for (k, (&m, &d)) in multiples.iter().zip(self.dims()).enumerate() {
            if m != 1 {
                // Copy c of the axis reads 0..d again: index j reads j mod d.
                let idx = super::index::host_indices((0..d * m).map(|j| (j % d) as i64), self.device())?;
                y = y.take_along(k, idx)?;
            }
        }
        Ok(y)
    }

    /// Repeats each entry along `axis` `repeats` times in place (`tf.repeat` with a scalar
    /// count): `[a, b]` becomes `[a, a, b, b]` for `repeats = 2`.
    ///
    /// # Errors
    /// `InvalidArgument` when the axis is out of range.
    pub fn repeat(&self, repeats: usize, axis: isize) -> Result<Tensor> {
        let a = self.shape().axis("repeat", axis)?;
        if repeats == 1 {
            return Ok(self.clone());
        }
        let idx = super::index::host_indices((0..self.dims()[a] * repeats).map(|j| (j / repeats) as i64), self.device())?;
        self.take_along(a, idx)
    }

    /// Reverses the order of entries along each of `axes` (`tf.reverse`).
    ///
    /// # Errors
    /// `InvalidArgument` for an axis out of range or given twice.
    pub fn flip(&self, axes: &[isize]) -> Result<Tensor> {
        let axes = self.shape().axes("flip", axes)?;
        let slices = self
            .dims()
            .iter()
            .enumerate()
            .map(|(k, &d)| {
                if axes.contains(&k) && d > 1 {
                    SliceAxis { start: d - 1, step: -1, len: d }
                } else {
                    SliceAxis { start: 0, step: 1, len: d }
                }
            })
            .collect();
        self.slice_axes(slices, "flip")
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{gradcheck, rand};
    use crate::{backend_test, DType, Device, Tensor};

    backend_test!(tile_and_repeat_follow_tf, |dev| {
        // tf.tile docs: a = [[1, 2, 3], [4, 5, 6]].
        let a = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], [2, 3], dev).unwrap();
        assert_eq!(a.tile(&[1, 2]).unwrap().to_vec::<i64>().unwrap(), vec![1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
        assert_eq!(a.tile(&[2, 1]).unwrap().to_vec::<i64>().unwrap(), vec![1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
        let t = a.tile(&[2, 2]).unwrap();
        assert_eq!(t.dims(), &[4, 6]);
        assert_eq!(t.to_vec::<i64>().unwrap()[18..], [4, 5, 6, 4, 5, 6]);
        assert_eq!(a.tile(&[0, 1]).unwrap().dims(), &[0, 3]);
        // tf.repeat([[1, 2], [3, 4]], repeats=2, axis=0 / axis=1).
        let m = Tensor::from_vec(vec![1u8, 2, 3, 4], [2, 2], dev).unwrap();
        assert_eq!(m.repeat(2, 0).unwrap().to_vec::<u8>().unwrap(), vec![1, 2, 1, 2, 3, 4, 3, 4]);
        let r = m.repeat(2, -1).unwrap();
        assert_eq!((r.dims(), r.to_vec::<u8>().unwrap()), (&[2, 4][..], vec![1, 1, 2, 2, 3, 3, 4, 4]));
    });

    backend_test!(flip_reverses_axes, |dev| {
        // tf.reverse docs: t of shape [1, 2, 3, 4] holding 0..24.
        let t = Tensor::from_vec((0..24).map(|v| v as f32).collect::<Vec<_>>(), [1, 2, 3, 4], dev).unwrap();
        let last = t.flip(&[-1]).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(last[..8], [3.0, 2.0, 1.0, 0.0, 7.0, 6.0, 5.0, 4.0]);
        let blocks = t.flip(&[1]).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(blocks[..4], [12.0, 13.0, 14.0, 15.0]);
        let rows = t.flip(&[2]).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(rows[..4], [8.0, 9.0, 10.0, 11.0]);
        let both = t.flip(&[1, 2]).unwrap().to_vec::<f32>().unwrap();
        assert_eq!((both[0], both[23]), (20.0, 3.0));
        let b = Tensor::from_vec(vec![true, false, false], [3], dev).unwrap();
        assert_eq!(b.flip(&[0]).unwrap().to_vec::<bool>().unwrap(), vec![false, false, true]);
    });

    backend_test!(copy_gradients_pass_gradcheck, |dev| {
        let x = rand(&[2, 3], -1.0, 1.0, 21, dev);
        gradcheck(|t| t[0].tile(&[2, 3]), std::slice::from_ref(&x), 1e-3, 1e-3).unwrap();
        gradcheck(|t| t[0].repeat(3, 1), std::slice::from_ref(&x), 1e-3, 1e-3).unwrap();
        gradcheck(|t| t[0].repeat(2, 0), std::slice::from_ref(&x), 1e-3, 1e-3).unwrap();
        gradcheck(|t| t[0].flip(&[0, 1]), std::slice::from_ref(&x), 1e-3, 1e-3).unwrap();
        gradcheck(|t| t[0].flip(&[-1]), std::slice::from_ref(&x), 1e-3, 1e-3).unwrap();
        // Tiling sums the gradient over the copies: three copies of each entry.
        let x = x.with_requires_grad(true).unwrap();
        let g = x.tile(&[1, 3]).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![3.0; 6]);
    });

    #[test]
    fn bad_copies_are_errors() {
        let x = Tensor::zeros([2, 3], DType::F32, Device::Cpu).unwrap();
        assert!(x.tile(&[2]).unwrap_err().to_string().contains("one multiple per axis of shape [2, 3]"));
        assert!(x.repeat(2, 2).unwrap_err().to_string().contains("axis 2 is out of range"));
        assert!(x.flip(&[0, -2]).unwrap_err().to_string().contains("given twice"));
    }
}
