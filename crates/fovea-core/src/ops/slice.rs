//! Slicing (`narrow`, `tf.slice`, `tf.strided_slice` with negative steps), and the gradient that
//! puts a slice's gradient back in place with zeros elsewhere.
//!
//! Every slice is one [`SliceAxis`] per axis handed to the backend's strided-slice primitive.

use crate::backend::{backend, PadMode, SliceAxis};
use crate::{Error, Result, Shape, Tensor};
use std::sync::Arc;

/// The slice that takes a whole axis of size `dim`.
fn full(dim: usize) -> SliceAxis {
    SliceAxis { start: 0, step: 1, len: dim }
}

/// Resolves one axis of a NumPy/TensorFlow strided slice `begin:end:stride` over `dim`
/// elements: negative bounds count from the end, then bounds are clamped to the axis (to
/// `[0, dim]` walking forward, `[-1, dim-1]` walking backward, so `-dim-1` as `end` reaches past
/// the first element).
fn resolve(begin: isize, end: isize, stride: isize, dim: usize) -> SliceAxis {
    let d = dim as isize;
    let norm = |i: isize| if i < 0 { i.saturating_add(d) } else { i };
    let (lo, hi) = if stride > 0 { (0, d) } else { (-1, d - 1) };
    let (b, e) = (norm(begin).clamp(lo, hi), norm(end).clamp(lo, hi));
    let span = if stride > 0 { e - b } else { b - e };
    let step = stride.unsigned_abs() as isize;
    let len = if span <= 0 { 0 } else { ((span + step - 1) / step) as usize };
    SliceAxis { start: if len == 0 { 0 } else { b as usize }, step: stride, len }
}

impl Tensor {
    /// Takes the strided slice `axes` (validated by the caller), recording the gradient.
    pub(crate) fn slice_axes(&self, axes: Vec<SliceAxis>, name: &'static str) -> Result<Tensor> {
        if axes.iter().zip(self.dims()).all(|(a, &d)| *a == full(d)) {
            return Ok(self.clone());
        }
        let y = backend(self.device())?.strided_slice(self.storage(), self.shape(), &axes)?;
        let shape = Shape::new(axes.iter().map(|a| a.len).collect::<Vec<_>>());
        let axes: Arc<[SliceAxis]> = axes.into();
        Ok(Tensor::from_op(y, shape, self.device(), name, &[self], move |inputs, _, g| {
            Ok(vec![Some(unslice(g, &axes, inputs[0].dims())?)])
        }))
    }

    /// `len` entries of `axis` starting at `start` (`torch.narrow`; TF's `x[:, start:start+len]`).
    ///
    /// # Errors
    /// `InvalidArgument` when the axis is out of range or `start + len` exceeds its size.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let a = self.shape().axis("narrow", axis)?;
        let dim = self.dims()[a];
        if start.checked_add(len).is_none_or(|end| end > dim) {
            return Err(Error::invalid(
                "narrow",
                format!("start {start} + length {len} exceeds axis {a} of size {dim} (shape {})", self.shape()),
            ));
        }
        let mut axes: Vec<SliceAxis> = self.dims().iter().map(|&d| full(d)).collect();
        axes[a] = SliceAxis { start, step: 1, len };
        self.slice_axes(axes, "narrow")
    }

    /// The block starting at `begin` with `size` entries per axis, `-1` meaning "to the end"
    /// (`tf.slice`).
    ///
    /// # Errors
    /// `InvalidArgument` for a list whose length differs from the rank, a size below `-1`, or a
    /// block reaching outside the tensor.
    pub fn slice(&self, begin: &[usize], size: &[isize]) -> Result<Tensor> {
        let shape = self.shape();
        if begin.len() != self.rank() || size.len() != self.rank() {
            return Err(Error::invalid(
                "slice",
                format!("begin and size need one entry per axis of shape {shape}, got begin {begin:?} and size {size:?}"),
            ));
        }
        let mut axes = Vec::with_capacity(self.rank());
        for (k, ((&b, &s), &d)) in begin.iter().zip(size).zip(self.dims()).enumerate() {
            let len = match s {
                -1 => d.checked_sub(b),
                s if s >= 0 => Some(s as usize).filter(|&s| b.checked_add(s).is_some_and(|e| e <= d)),
                _ => None,
            };
            let Some(len) = len else {
                return Err(Error::invalid(
                    "slice",
                    format!(
                        "begin {b} with size {s} does not fit axis {k} of size {d} (shape {shape}; sizes are >= 0, or -1 for the rest)"
                    ),
                ));
            };
            axes.push(SliceAxis { start: b, step: 1, len });
        }
        self.slice_axes(axes, "slice")
    }

    /// `x[begin:end:stride]` per axis with NumPy/TensorFlow semantics: negative `begin`/`end`
    /// count from the end, out-of-range bounds are clamped, and negative strides walk backwards
    /// (`x.strided_slice(&[-1], &[isize::MIN], &[-1])` reverses a vector). Axes past the given
    /// lists are taken whole. An empty range gives a size-0 axis.
    ///
    /// ```
    /// # use fovea_core::{Device, Tensor};
    /// let x = Tensor::from_vec((0..6).map(|v| v as f32).collect::<Vec<_>>(), [6], Device::Cpu)?;
    /// // x[::-2] and x[1:-1]
    /// assert_eq!(x.strided_slice(&[-1], &[isize::MIN], &[-2])?.to_vec::<f32>()?, [5.0, 3.0, 1.0]);
    /// assert_eq!(x.strided_slice(&[1], &[-1], &[1])?.to_vec::<f32>()?, [1.0, 2.0, 3.0, 4.0]);
    /// # Ok::<(), fovea_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` when the three lists differ in length, are longer than the rank, or a
    /// stride is zero.
    pub fn strided_slice(&self, begin: &[isize], end: &[isize], strides: &[isize]) -> Result<Tensor> {
        let n = begin.len();
        if end.len() != n || strides.len() != n || n > self.rank() {
            return Err(Error::invalid(
                "strided_slice",
                format!(
                    "begin, end and strides must have one length, at most the rank of shape {}, got {begin:?}, {end:?}, {strides:?}",
                    self.shape()
                ),
            ));
        }
        if let Some(k) = strides.iter().position(|&s| s == 0) {
            return Err(Error::invalid("strided_slice", format!("strides must be nonzero, got 0 on axis {k}")));
        }
        let axes =
            self.dims().iter().enumerate().map(|(k, &d)| if k < n { resolve(begin[k], end[k], strides[k], d) } else { full(d) }).collect();
        self.slice_axes(axes, "strided_slice")
    }
}

/// The adjoint of a strided slice: the gradient of the slice, put back where it was read, into
/// zeros of the input's shape `dims`.
///
/// Unit-step axes are a contiguous block (reversed when the step is -1): flip those back, then a
/// single zero pad places the block. Longer steps scatter along their axis.
fn unslice(g: &Tensor, axes: &[SliceAxis], dims: &[usize]) -> Result<Tensor> {
    let reversed: Vec<isize> = (0..axes.len()).filter(|&k| axes[k].step == -1 && axes[k].len > 1).map(|k| k as isize).collect();
    let mut g = if reversed.is_empty() { g.clone() } else { g.flip(&reversed)? };
    let mut pads = vec![(0, 0); axes.len()];
    for (k, (a, &d)) in axes.iter().zip(dims).enumerate() {
        if a.step.abs() == 1 || a.len <= 1 {
            let lo = if a.len == 0 { 0 } else { a.start.min((a.start as isize + (a.len as isize - 1) * a.step) as usize) };
            pads[k] = (lo, d - lo - a.len);
        } else {
            let taken = super::index::host_indices((0..a.len as i64).map(|j| a.start as i64 + j * a.step as i64), g.device())?;
            g = g.put_along(k, taken, d)?;
        }
    }
    if pads.iter().all(|&p| p == (0, 0)) {
        return Ok(g);
    }
    g.pad(&pads, PadMode::Constant(0.0))
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use crate::backend::SliceAxis;
    use crate::testing::{gradcheck, rand};
    use crate::{backend_test, DType, Device, Tensor};

    fn iota(shape: &[usize], dev: crate::Device) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec((0..n).map(|v| v as f32).collect::<Vec<_>>(), shape.to_vec(), dev).unwrap()
    }

    #[test]
    fn bounds_resolve_like_python() {
        // Python: list(range(5))[1:4:2] = [1, 3]; [::-1] = [4..0]; [-2:] = [3, 4]; [4:1:-2] = [4, 2].
        assert_eq!(resolve(1, 4, 2, 5), SliceAxis { start: 1, step: 2, len: 2 });
        assert_eq!(resolve(-1, isize::MIN, -1, 5), SliceAxis { start: 4, step: -1, len: 5 });
        assert_eq!(resolve(-6, 5, -1, 5).len, 0); // begin clamps to -1: nothing left walking back
        assert_eq!(resolve(-2, 100, 1, 5), SliceAxis { start: 3, step: 1, len: 2 });
        assert_eq!(resolve(4, 1, -2, 5), SliceAxis { start: 4, step: -2, len: 2 });
        assert_eq!(resolve(3, 1, 1, 5).len, 0);
        assert_eq!(resolve(0, 0, 1, 0).len, 0);
    }

    backend_test!(slices_take_the_right_block, |dev| {
        let x = iota(&[3, 4], dev); // [[0 1 2 3] [4 5 6 7] [8 9 10 11]]
        assert_eq!(x.narrow(1, 1, 2).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 2.0, 5.0, 6.0, 9.0, 10.0]);
        let s = x.slice(&[1, 2], &[-1, 2]).unwrap();
        assert_eq!(s.dims(), &[2, 2]);
        assert_eq!(s.to_vec::<f32>().unwrap(), vec![6.0, 7.0, 10.0, 11.0]);
        // x[::-2, 3:0:-2] = rows 2, 0; columns 3, 1.
        let r = x.strided_slice(&[-1, 3], &[isize::MIN, 0], &[-2, -2]).unwrap();
        assert_eq!(r.to_vec::<f32>().unwrap(), vec![11.0, 9.0, 3.0, 1.0]);
        // Fewer entries than axes: the rest are whole. x[1:] on rank 2.
        assert_eq!(x.strided_slice(&[1], &[10], &[1]).unwrap().dims(), &[2, 4]);
        // An empty range is a size-0 axis, not an error (as NumPy).
        assert_eq!(x.strided_slice(&[2, 0], &[1, 4], &[1, 1]).unwrap().dims(), &[0, 4]);
        let b = Tensor::from_vec(vec![true, false, false], [3], dev).unwrap();
        assert_eq!(b.strided_slice(&[-1], &[isize::MIN], &[-1]).unwrap().to_vec::<bool>().unwrap(), vec![false, false, true]);
    });

    backend_test!(slice_gradients_pass_gradcheck, |dev| {
        let x = rand(&[3, 5], -1.0, 1.0, 7, dev);
        gradcheck(|t| t[0].narrow(-1, 1, 3), std::slice::from_ref(&x), 1e-3, 1e-3).unwrap();
        gradcheck(|t| t[0].slice(&[1, 0], &[2, -1]), std::slice::from_ref(&x), 1e-3, 1e-3).unwrap();
        // Positive and negative steps, unit and longer, plus a full reversal.
        for (b, e, s) in [
            ([0, 1], [3, 5], [2, 2]),
            ([-1, -1], [isize::MIN, isize::MIN], [-1, -2]),
            ([2, 3], [0, 0], [-1, -1]),
            ([1, 4], [3, isize::MIN], [1, -3]),
        ] {
            gradcheck(|t| t[0].strided_slice(&b, &e, &s), std::slice::from_ref(&x), 1e-3, 1e-3)
                .unwrap_or_else(|err| panic!("{b:?}:{e:?}:{s:?}: {err}"));
        }
        // A slice that reads nothing sends back zeros.
        let x = x.with_requires_grad(true).unwrap();
        let g = x.narrow(0, 1, 0).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![0.0; 15]);
    });

    backend_test!(slice_gradient_places_values, |dev| {
        // d/dx of sum(w ⊙ x[2:0:-1]) puts w reversed at rows 1..=2 and zero at row 0.
        let x = iota(&[3], dev).with_requires_grad(true).unwrap();
        let w = Tensor::from_vec(vec![10.0f32, 20.0], [2], dev).unwrap();
        let g = x.strided_slice(&[2], &[0], &[-1]).unwrap().mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 20.0, 10.0]);
    });

    #[test]
    fn bad_slices_are_errors() {
        let x = Tensor::zeros([2, 3], DType::F32, Device::Cpu).unwrap();
        let e = x.narrow(1, 2, 2).unwrap_err().to_string();
        assert!(e.contains("narrow") && e.contains("start 2 + length 2 exceeds axis 1 of size 3"), "{e}");
        let e = x.narrow(2, 0, 1).unwrap_err().to_string();
        assert!(e.contains("axis 2 is out of range"), "{e}");
        let e = x.slice(&[0, 2], &[1, 2]).unwrap_err().to_string();
        assert!(e.contains("begin 2 with size 2 does not fit axis 1 of size 3"), "{e}");
        assert!(x.slice(&[0], &[1]).unwrap_err().to_string().contains("one entry per axis of shape [2, 3]"));
        assert!(x.slice(&[0, 0], &[1, -2]).is_err());
        let e = x.strided_slice(&[0, 0], &[1, 1], &[1, 0]).unwrap_err().to_string();
        assert!(e.contains("strides must be nonzero") && e.contains("axis 1"), "{e}");
        assert!(x.strided_slice(&[0, 0, 0], &[1, 1, 1], &[1, 1, 1]).is_err());
    }
}
