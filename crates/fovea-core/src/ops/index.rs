//! Indexing along an axis: `tf.gather`, `index_select`, scatter-add (gather's adjoint) and
//! `tf.one_hot`.
//!
//! Gather and scatter-add are each other's gradient: gather reads rows (repeats allowed), so its
//! gradient adds each output row's gradient back into the row it came from.

use crate::backend::backend;
use crate::{DType, Device, Error, Result, Shape, Tensor};

/// An index tensor checked for dtype and device, flattened to 1-D: it stays on the device, where
/// the backend checks every index against the axis.
fn index_tensor(op: &'static str, x: &Tensor, indices: &Tensor) -> Result<Tensor> {
    let indices = match indices.dtype() {
        DType::I64 => indices.clone(),
        DType::I32 => indices.cast(DType::I64)?,
        other => return Err(Error::dtype(op, "int64 or int32 indices", other)),
    };
    x.same_device(op, &indices)?;
    indices.reshape_to([indices.numel()])
}

/// Indices an op computed on the host (tile, pad, slice gradients) as a tensor on `device`.
pub(crate) fn host_indices(indices: impl IntoIterator<Item = i64>, device: Device) -> Result<Tensor> {
    let v: Vec<i64> = indices.into_iter().collect();
    let n = v.len();
    Tensor::from_vec(v, [n], device)
}

impl Tensor {
    /// Entries `indices` along `axis` (checked in range by the caller), recording the gradient.
    pub(crate) fn take_along(&self, axis: usize, indices: Tensor) -> Result<Tensor> {
        let y = backend(self.device())?.gather(self.storage(), self.shape(), axis, indices.storage())?;
        let mut dims = self.dims().to_vec();
        dims[axis] = indices.numel();
        Ok(Tensor::from_op(y, Shape::new(dims), self.device(), "gather", &[self], move |inputs, _, g| {
            Ok(vec![Some(g.put_along(axis, indices.clone(), inputs[0].dims()[axis])?)])
        }))
    }

    /// Adds entry `j` along `axis` into entry `indices[j]` of zeros with `out_dim` entries on
    /// that axis, recording the gradient (a gather of the output gradient).
    pub(crate) fn put_along(&self, axis: usize, indices: Tensor, out_dim: usize) -> Result<Tensor> {
        let y = backend(self.device())?.scatter_add(self.storage(), self.shape(), axis, indices.storage(), out_dim)?;
        let mut dims = self.dims().to_vec();
        dims[axis] = out_dim;
        Ok(Tensor::from_op(y, Shape::new(dims), self.device(), "scatter_add", &[self], move |_, _, g| {
            Ok(vec![Some(g.take_along(axis, indices.clone())?)])
        }))
    }

    /// Entries `indices` (int64, any rank) along `axis` (`tf.gather`): the result has shape
    /// `x.shape[..axis] + indices.shape + x.shape[axis+1..]`. The gradient adds back into the
    /// rows read, so repeated indices accumulate.
    ///
    /// # Errors
    /// `DTypeMismatch` for non-int64 indices; `InvalidArgument` for a bad axis or an index
    /// outside `0..dim` (negative indices included), naming the index and the valid range.
    pub fn gather(&self, indices: &Tensor, axis: isize) -> Result<Tensor> {
        let a = self.shape().axis("gather", axis)?;
        let idx = index_tensor("gather", self, indices)?;
        let dims = self.dims();
        let out: Vec<usize> = dims[..a].iter().chain(indices.dims()).chain(&dims[a + 1..]).copied().collect();
        self.take_along(a, idx)?.reshape_to(out)
    }

    /// [`Tensor::gather`] with a 1-D index list, which keeps the rank (`torch.index_select`).
    ///
    /// # Errors
    /// `RankMismatch` unless `indices` is 1-D; otherwise as [`Tensor::gather`].
    pub fn index_select(&self, axis: isize, indices: &Tensor) -> Result<Tensor> {
        if indices.rank() != 1 {
            return Err(Error::rank("index_select", "1 for the indices", indices.shape()));
        }
        self.gather(indices, axis)
    }

    /// `self` plus `updates` scattered along `axis`: update slice `j` is added at position
    /// `indices[j]`, and repeated indices accumulate. `updates` has the shape [`Tensor::gather`]
    /// would return for these indices, `x.shape[..axis] + indices.shape + x.shape[axis+1..]`,
    /// which makes this the adjoint of gather. Gradients: `self` gets the output gradient,
    /// `updates` the gather of it.
    ///
    /// # Errors
    /// `DTypeMismatch` unless `self` and `updates` share a dtype of f32 or i64 and the indices are
    /// int64; `ShapeMismatch` when `updates` has the wrong shape; `InvalidArgument` for a bad
    /// axis or an index out of range.
    pub fn scatter_add(&self, axis: isize, indices: &Tensor, updates: &Tensor) -> Result<Tensor> {
        const OP: &str = "scatter_add";
        if !(self.dtype().is_float() || self.dtype() == DType::I64) {
            return Err(Error::dtype(OP, "float32, bfloat16, float16 or int64", self.dtype()));
        }
        if updates.dtype() != self.dtype() {
            return Err(Error::dtype(OP, format!("updates of {} like the tensor", self.dtype()), updates.dtype()));
        }
        self.same_device(OP, updates)?;
        let a = self.shape().axis(OP, axis)?;
        let idx = index_tensor(OP, self, indices)?;
        let dims = self.dims();
        let expected: Vec<usize> = dims[..a].iter().chain(indices.dims()).chain(&dims[a + 1..]).copied().collect();
        if updates.dims() != expected {
            return Err(Error::shape(
                OP,
                format!(
                    "updates of shape {} (tensor shape {} with axis {a} replaced by the indices' shape {})",
                    Shape::new(expected),
                    self.shape(),
                    indices.shape()
                ),
                updates.shape(),
            ));
        }
        let flat: Vec<usize> = dims[..a].iter().copied().chain([idx.numel()]).chain(dims[a + 1..].iter().copied()).collect();
        let scattered = updates.reshape_to(flat)?.put_along(a, idx, dims[a])?;
        self.add(&scattered)
    }

    /// A float32 one-hot encoding with a trailing axis of `depth` (`tf.one_hot`): index `i`
    /// becomes a row with 1 at position `i`; indices outside `0..depth` (negative included)
    /// give an all-zero row, as in TensorFlow. There is no gradient.
    ///
    /// # Errors
    /// `DTypeMismatch` unless the indices are int64, int32 or uint8.
    pub fn one_hot(indices: &Tensor, depth: usize) -> Result<Tensor> {
        let idx = match indices.dtype() {
            DType::I64 => indices.clone(),
            DType::I32 | DType::U8 => indices.cast(DType::I64)?,
            other => return Err(Error::dtype("one_hot", "int64, int32 or uint8 indices", other)),
        };
        let classes = Tensor::from_storage(backend(indices.device())?.iota(depth)?, [depth], indices.device())?;
        // Comparing against every class is exactly the TF rule: out-of-range matches nothing.
        idx.expand_dims(-1)?.eq(&classes)?.cast(DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{gradcheck, rand};
    use crate::{backend_test, DType, Device, Tensor};

    fn idx(v: &[i64], shape: &[usize], dev: Device) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape.to_vec(), dev).unwrap()
    }

    backend_test!(gather_follows_tf_shapes, |dev| {
        // tf.gather docs: params p0..p5, indices [3, 4, 0, 1] and [[2, 0], [2, 5]].
        let p = Tensor::from_vec((0..6).map(|v| v as f32).collect::<Vec<_>>(), [6], dev).unwrap();
        assert_eq!(p.gather(&idx(&[3, 4, 0, 1], &[4], dev), 0).unwrap().to_vec::<f32>().unwrap(), vec![3.0, 4.0, 0.0, 1.0]);
        let g = p.gather(&idx(&[2, 0, 2, 5], &[2, 2], dev), 0).unwrap();
        assert_eq!((g.dims(), g.to_vec::<f32>().unwrap()), (&[2, 2][..], vec![2.0, 0.0, 2.0, 5.0]));
        // Along axis 1 of [[0 1 2 3] [4 5 6 7] [8 9 10 11]] with indices [[3], [0]] → shape [3, 2, 1].
        let m = Tensor::from_vec((0..12i64).collect::<Vec<_>>(), [3, 4], dev).unwrap();
        let g = m.gather(&idx(&[3, 0], &[2, 1], dev), 1).unwrap();
        assert_eq!((g.dims(), g.to_vec::<i64>().unwrap()), (&[3, 2, 1][..], vec![3, 0, 7, 4, 11, 8]));
        // A scalar index drops the axis; index_select keeps it.
        let row = m.gather(&Tensor::from_vec(vec![1i64], (), dev).unwrap(), 0).unwrap();
        assert_eq!((row.dims(), row.to_vec::<i64>().unwrap()), (&[4][..], vec![4, 5, 6, 7]));
        let sel = m.index_select(0, &idx(&[2, 2], &[2], dev)).unwrap();
        assert_eq!(sel.to_vec::<i64>().unwrap(), vec![8, 9, 10, 11, 8, 9, 10, 11]);
        let b = Tensor::from_vec(vec![true, false, true], [3], dev).unwrap();
        assert_eq!(b.gather(&idx(&[1, 0], &[2], dev), 0).unwrap().to_vec::<bool>().unwrap(), vec![false, true]);
    });

    backend_test!(gather_gradient_accumulates_repeats, |dev| {
        let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3], dev).unwrap().with_requires_grad(true).unwrap();
        let y = x.gather(&idx(&[2, 0, 2, 2], &[2, 2], dev), 0).unwrap();
        let w = Tensor::from_vec(vec![1.0f32, 10.0, 100.0, 1000.0], [2, 2], dev).unwrap();
        let g = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![10.0, 0.0, 1101.0]);
        let x = rand(&[3, 4, 2], -1.0, 1.0, 5, dev);
        for axis in [0, 1, -1] {
            gradcheck(|t| t[0].gather(&idx(&[1, 0, 1, 1], &[2, 2], dev), axis), std::slice::from_ref(&x), 1e-3, 1e-3).unwrap();
        }
    });

    backend_test!(scatter_add_accumulates, |dev| {
        // Rows 0 and 2 of a 3×2 tensor get updates; row 2 twice.
        let x = Tensor::from_vec(vec![1.0f32; 6], [3, 2], dev).unwrap();
        let u = Tensor::from_vec(vec![1.0f32, 2.0, 10.0, 20.0, 100.0, 200.0], [3, 2], dev).unwrap();
        let y = x.scatter_add(0, &idx(&[2, 0, 2], &[3], dev), &u).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![11.0, 21.0, 1.0, 1.0, 102.0, 203.0]);
        let i = Tensor::from_vec(vec![0i64, 0, 0, 0], [2, 2], dev).unwrap();
        let y = i.scatter_add(-1, &idx(&[1, 1], &[2], dev), &Tensor::from_vec(vec![5i64, 6, 7, 8], [2, 2], dev).unwrap()).unwrap();
        assert_eq!(y.to_vec::<i64>().unwrap(), vec![0, 11, 0, 15]);
        let x = rand(&[2, 3], -1.0, 1.0, 8, dev);
        let u = rand(&[2, 2, 2], -1.0, 1.0, 9, dev);
        gradcheck(|t| t[0].scatter_add(1, &idx(&[2, 0, 2, 2], &[2, 2], dev), &t[1]), &[x, u], 1e-3, 1e-3).unwrap();
    });

    backend_test!(one_hot_matches_tf, |dev| {
        // tf.one_hot([0, 2, -1, 1], 3): the -1 row is all zeros.
        let h = Tensor::one_hot(&idx(&[0, 2, -1, 1], &[4], dev), 3).unwrap();
        assert_eq!(h.dims(), &[4, 3]);
        assert_eq!(h.to_vec::<f32>().unwrap(), vec![1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0.]);
        let labels = Tensor::from_vec(vec![1u8, 5], [2, 1], dev).unwrap();
        let h = Tensor::one_hot(&labels, 2).unwrap();
        assert_eq!((h.dims(), h.to_vec::<f32>().unwrap()), (&[2, 1, 2][..], vec![0., 1., 0., 0.]));
    });

    #[test]
    fn bad_indices_are_errors() {
        let dev = Device::Cpu;
        let x = Tensor::zeros([2, 3], DType::F32, dev).unwrap();
        let e = x.gather(&idx(&[0, 3], &[2], dev), 1).unwrap_err().to_string();
        assert!(e.contains("gather") && e.contains("index 3") && e.contains("axis 1 of size 3") && e.contains("valid: 0 to 2"), "{e}");
        let e = x.gather(&idx(&[-1], &[1], dev), 0).unwrap_err().to_string();
        assert!(e.contains("index -1") && e.contains("valid: 0 to 1"), "{e}");
        let e = x.gather(&x, 0).unwrap_err().to_string();
        assert!(e.contains("int64 or int32 indices") && e.contains("float32"), "{e}");
        assert!(x.gather(&idx(&[0], &[1], dev), 2).unwrap_err().to_string().contains("axis 2 is out of range"));
        assert!(x.index_select(0, &idx(&[0], &[1, 1], dev)).unwrap_err().to_string().contains("index_select"));
        let u = Tensor::zeros([2, 2], DType::F32, dev).unwrap();
        let e = x.scatter_add(0, &idx(&[0], &[1], dev), &u).unwrap_err().to_string();
        assert!(e.contains("scatter_add") && e.contains("[1, 3]") && e.contains("[2, 2]"), "{e}");
        let e = x.scatter_add(0, &idx(&[2], &[1], dev), &Tensor::zeros([1, 3], DType::F32, dev).unwrap()).unwrap_err().to_string();
        assert!(e.contains("index 2") && e.contains("valid: 0 to 1"), "{e}");
        assert!(Tensor::one_hot(&x, 3).unwrap_err().to_string().contains("int64, int32 or uint8"));
    }
}
