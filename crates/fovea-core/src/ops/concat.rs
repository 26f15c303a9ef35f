//! Joining and cutting along an axis: `tf.concat`, `tf.stack`, `tf.split`, `tf.unstack`.
//! Concat's gradient is a slice of the output gradient per input; split and unstack are slices,
//! so their gradients come from the slice op.

use crate::backend::backend;
use crate::shape::normalize_axis;
use crate::{Error, Result, Shape, Tensor};

impl Tensor {
    /// Joins tensors along `axis`; all other dimensions, the dtype and the device must agree
    /// (`tf.concat`).
    ///
    /// # Errors
    /// `InvalidArgument` for an empty list, a bad axis or mixed devices; `RankMismatch` or
    /// `ShapeMismatch` (naming both shapes) when the inputs do not line up; `DTypeMismatch` for
    /// mixed dtypes.
    pub fn concat(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        const OP: &str = "concat";
        let Some(&first) = tensors.first() else {
            return Err(Error::invalid(OP, "need at least one tensor, got an empty list"));
        };
        let a = normalize_axis(OP, axis, first.rank())?;
        for (i, t) in tensors.iter().enumerate().skip(1) {
            first.same_device(OP, t)?;
            if t.dtype() != first.dtype() {
                return Err(Error::dtype(OP, format!("{} like tensor 0", first.dtype()), t.dtype()));
            }
            if t.rank() != first.rank() {
                return Err(Error::rank(OP, format!("{} like tensor 0 (shape {})", first.rank(), first.shape()), t.shape()));
            }
            if (0..t.rank()).any(|k| k != a && t.dims()[k] != first.dims()[k]) {
                return Err(Error::shape(
                    OP,
                    format!("shapes that agree except on axis {a}, but tensor 0 has shape {}", first.shape()),
                    format!("shape {} for tensor {i}", t.shape()),
                ));
            }
        }
        if tensors.len() == 1 {
            return Ok(first.clone());
        }
        let parts: Vec<_> = tensors.iter().map(|t| (t.storage(), t.shape())).collect();
        let y = backend(first.device())?.concat(&parts, a)?;
        let mut dims = first.dims().to_vec();
        dims[a] = tensors.iter().map(|t| t.dims()[a]).sum();
        Ok(Tensor::from_op(y, Shape::new(dims), first.device(), OP, tensors, move |inputs, _, g| {
            // Each input's gradient is its own stretch of the output gradient.
            let mut start = 0;
            inputs
                .iter()
                .map(|t| {
                    let len = t.dims()[a];
                    start += len;
                    Ok(Some(g.narrow(a as isize, start - len, len)?))
                })
                .collect()
        }))
    }

    /// Joins same-shaped tensors along a new axis `axis` (`tf.stack`; negative counts from the
    /// end of the result).
    ///
    /// # Errors
    /// `ShapeMismatch` (naming both shapes) when the shapes differ; otherwise as
    /// [`Tensor::concat`].
    pub fn stack(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let Some(&first) = tensors.first() else {
            return Err(Error::invalid("stack", "need at least one tensor, got an empty list"));
        };
        let a = normalize_axis("stack", axis, first.rank() + 1)?;
        if let Some((i, t)) = tensors.iter().enumerate().find(|(_, t)| t.shape() != first.shape()) {
            return Err(Error::shape(
                "stack",
                format!("every tensor of shape {} like tensor 0", first.shape()),
                format!("shape {} for tensor {i}", t.shape()),
            ));
        }
        let expanded = tensors.iter().map(|t| t.expand_dims(a as isize)).collect::<Result<Vec<_>>>()?;
        Tensor::concat(&expanded.iter().collect::<Vec<_>>(), a as isize)
    }

    /// Cuts `axis` into consecutive pieces of the given sizes, which must add up to its length
    /// (`tf.split` with `size_splits`).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad axis or sizes that do not sum to the axis length.
    pub fn split(&self, sizes: &[usize], axis: isize) -> Result<Vec<Tensor>> {
        let a = self.shape().axis("split", axis)?;
        let total: usize = sizes.iter().sum();
        if total != self.dims()[a] {
            return Err(Error::invalid(
                "split",
                format!("sizes {sizes:?} sum to {total}, but axis {a} of shape {} has size {}", self.shape(), self.dims()[a]),
            ));
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&len| {
                start += len;
                self.narrow(a as isize, start - len, len)
            })
            .collect()
    }

    /// Cuts `axis` into `n` equal pieces (`tf.split(x, n, axis)`).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad axis, `n == 0`, or an axis length not divisible by `n`.
    pub fn split_equal(&self, n: usize, axis: isize) -> Result<Vec<Tensor>> {
        let a = self.shape().axis("split", axis)?;
        let dim = self.dims()[a];
        if n == 0 || !dim.is_multiple_of(n) {
            return Err(Error::invalid(
                "split",
                format!("axis {a} of shape {} (size {dim}) cannot be split into {n} equal pieces", self.shape()),
            ));
        }
        self.split(&vec![dim / n; n], axis)
    }

    /// The slices along `axis`, with that axis removed (`tf.unstack`).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad axis.
    pub fn unstack(&self, axis: isize) -> Result<Vec<Tensor>> {
        let a = self.shape().axis("unstack", axis)?;
        self.split(&vec![1; self.dims()[a]], axis)?.iter().map(|t| t.squeeze(&[a as isize])).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{gradcheck, rand};
    use crate::{backend_test, DType, Device, Tensor};

    backend_test!(concat_and_stack_join_values, |dev| {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], dev).unwrap();
        let b = Tensor::from_vec(vec![5.0f32, 6.0], [2, 1], dev).unwrap();
        let c = Tensor::concat(&[&a, &b], -1).unwrap();
        assert_eq!(c.dims(), &[2, 3]);
        assert_eq!(c.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
        let r = Tensor::concat(&[&a, &a.narrow(0, 0, 1).unwrap()], 0).unwrap();
        assert_eq!(r.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0]);
        // tf.stack([x, y], axis=1) with x = [1, 2], y = [3, 4] → [[1, 3], [2, 4]].
        let x = Tensor::from_vec(vec![1i64, 2], [2], dev).unwrap();
        let y = Tensor::from_vec(vec![3i64, 4], [2], dev).unwrap();
        let s = Tensor::stack(&[&x, &y], 1).unwrap();
        assert_eq!(s.dims(), &[2, 2]);
        assert_eq!(s.to_vec::<i64>().unwrap(), vec![1, 3, 2, 4]);
        assert_eq!(Tensor::stack(&[&x, &y], 0).unwrap().to_vec::<i64>().unwrap(), vec![1, 2, 3, 4]);
    });

    backend_test!(split_and_unstack_cut_values, |dev| {
        let x = Tensor::from_vec((0..12).map(|v| v as f32).collect::<Vec<_>>(), [2, 6], dev).unwrap();
        let parts = x.split(&[1, 3, 2], 1).unwrap();
        let dims: Vec<_> = parts.iter().map(|p| p.dims().to_vec()).collect();
        assert_eq!(dims, vec![vec![2, 1], vec![2, 3], vec![2, 2]]);
        assert_eq!(parts[2].to_vec::<f32>().unwrap(), vec![4.0, 5.0, 10.0, 11.0]);
        let thirds = x.split_equal(3, -1).unwrap();
        assert_eq!(thirds[1].to_vec::<f32>().unwrap(), vec![2.0, 3.0, 8.0, 9.0]);
        let rows = x.unstack(0).unwrap();
        assert_eq!((rows.len(), rows[1].dims()), (2, &[6][..]));
        assert_eq!(rows[1].to_vec::<f32>().unwrap(), vec![6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
        let back = Tensor::concat(&parts.iter().collect::<Vec<_>>(), 1).unwrap();
        assert_eq!(back.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    });

    backend_test!(join_and_cut_gradients_pass_gradcheck, |dev| {
        let a = rand(&[2, 3], -1.0, 1.0, 1, dev);
        let b = rand(&[2, 1], -1.0, 1.0, 2, dev);
        let c = rand(&[2, 2], -1.0, 1.0, 3, dev);
        gradcheck(|t| Tensor::concat(&[&t[0], &t[1], &t[2]], 1), &[a.clone(), b, c], 1e-3, 1e-3).unwrap();
        let d = rand(&[2, 3], -1.0, 1.0, 4, dev);
        gradcheck(|t| Tensor::stack(&[&t[0], &t[1]], -1), &[a.clone(), d], 1e-3, 1e-3).unwrap();
        // Recombine split pieces with different weights so each piece's gradient is distinct.
        gradcheck(
            |t| {
                let p = t[0].split(&[2, 1], 1)?;
                Tensor::concat(&[&p[1].mul_scalar(3.0)?, &p[0]], 1)
            },
            std::slice::from_ref(&a),
            1e-3,
            1e-3,
        )
        .unwrap();
        gradcheck(|t| t[0].unstack(0)?[1].mul_scalar(2.0), &[a], 1e-3, 1e-3).unwrap();
    });

    #[test]
    fn mismatched_joins_and_cuts_are_errors() {
        let dev = Device::Cpu;
        let a = Tensor::zeros([2, 3], DType::F32, dev).unwrap();
        let b = Tensor::zeros([3, 3], DType::F32, dev).unwrap();
        let e = Tensor::concat(&[&a, &b], 1).unwrap_err().to_string();
        assert!(e.contains("concat: shape mismatch") && e.contains("[2, 3]") && e.contains("[3, 3]") && e.contains("axis 1"), "{e}");
        let e = Tensor::concat(&[&a, &a], 2).unwrap_err().to_string();
        assert!(e.contains("axis 2 is out of range"), "{e}");
        let v = Tensor::zeros([6], DType::F32, dev).unwrap();
        let e = Tensor::concat(&[&a, &v], 0).unwrap_err().to_string();
        assert!(e.contains("rank 2") && e.contains("[6]"), "{e}");
        let i = Tensor::zeros([2, 3], DType::I64, dev).unwrap();
        assert!(Tensor::concat(&[&a, &i], 0).unwrap_err().to_string().contains("int64"));
        assert!(Tensor::concat(&[], 0).unwrap_err().to_string().contains("at least one"));
        let e = Tensor::stack(&[&a, &b], 0).unwrap_err().to_string();
        assert!(e.contains("stack") && e.contains("[2, 3]") && e.contains("[3, 3]"), "{e}");
        let e = a.split(&[1, 1], 1).unwrap_err().to_string();
        assert!(e.contains("sum to 2") && e.contains("size 3"), "{e}");
        assert!(a.split_equal(2, 1).unwrap_err().to_string().contains("cannot be split into 2 equal pieces"));
    }
}
