//! Shape-only ops that never move data: reshape (with -1), expand_dims, squeeze, flatten, and
//! broadcast_to.

use crate::shape::{broadcast_shapes, normalize_axis};
use crate::{Error, Result, Shape, Tensor};

impl Tensor {
    /// The same elements under a new shape; one dimension may be `-1` and is inferred
    /// (`tf.reshape`). Shares storage (no copy).
    ///
    /// # Errors
    /// `InvalidArgument` for more than one `-1` or another negative size; `ShapeMismatch` when the
    /// element counts differ.
    pub fn reshape(&self, dims: &[isize]) -> Result<Tensor> {
        const OP: &str = "reshape";
        let mut infer = None;
        let mut known = 1usize;
        for (i, &d) in dims.iter().enumerate() {
            match d {
                -1 if infer.is_none() => infer = Some(i),
                -1 => return Err(Error::invalid(OP, format!("only one dimension may be -1, got {dims:?}"))),
                d if d < 0 => return Err(Error::invalid(OP, format!("dimension sizes must be >= 0 or -1, got {dims:?}"))),
                d => known *= d as usize,
            }
        }
        let mut out: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
        if let Some(i) = infer {
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(Error::shape(OP, format!("a shape compatible with {dims:?}"), self.shape()));
            }
            out[i] = self.numel() / known;
        }
        self.reshape_to(Shape::new(out))
    }

    /// Reshape to an exact shape with the same element count.
    ///
    /// # Errors
    /// `ShapeMismatch` when the element counts differ.
    pub fn reshape_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.numel() != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("{} elements to fill shape {shape}", shape.numel()),
                format!("{} ({} elements)", self.shape(), self.numel()),
            ));
        }
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        Ok(self.share_storage(shape, "reshape", &[self], |inputs, _, g| Ok(vec![Some(g.reshape_to(inputs[0].shape().clone())?)])))
    }

    /// Inserts a dimension of size 1 at `axis` (negative counts from the end of the result).
    ///
    /// # Errors
    /// `InvalidArgument` when `axis` is outside `-(rank+1)..=rank`.
    pub fn expand_dims(&self, axis: isize) -> Result<Tensor> {
        let a = normalize_axis("expand_dims", axis, self.rank() + 1)?;
        let mut dims = self.dims().to_vec();
        dims.insert(a, 1);
        self.reshape_to(dims)
    }

    /// Removes the given size-1 axes, or every size-1 axis when `axes` is empty (`tf.squeeze`).
    ///
    /// # Errors
    /// `InvalidArgument` when a named axis is out of range or its size is not 1.
    pub fn squeeze(&self, axes: &[isize]) -> Result<Tensor> {
        let dims = self.dims();
        let drop: Vec<usize> = if axes.is_empty() {
            (0..dims.len()).filter(|&i| dims[i] == 1).collect()
        } else {
            let drop = self.shape().axes("squeeze", axes)?;
            if let Some(&bad) = drop.iter().find(|&&a| dims[a] != 1) {
                return Err(Error::invalid(
                    "squeeze",
                    format!("can only squeeze axes of size 1, but axis {bad} of shape {} has size {}", self.shape(), dims[bad]),
                ));
            }
            drop
        };
        let kept: Vec<usize> = (0..dims.len()).filter(|i| !drop.contains(i)).map(|i| dims[i]).collect();
        self.reshape_to(kept)
    }

    /// Collapses every axis after the first into one: `[N, ...] → [N, prod(...)]` (Keras `Flatten`).
    ///
    /// # Errors
    /// `RankMismatch` for a scalar.
    pub fn flatten(&self) -> Result<Tensor> {
        if self.rank() == 0 {
            return Err(Error::rank("flatten", "at least 1", self.shape()));
        }
        self.reshape(&[self.dims()[0] as isize, -1])
    }

    /// Repeats along size-1 (or missing leading) axes to reach `shape` (`tf.broadcast_to`).
    ///
    /// # Errors
    /// `ShapeMismatch` when this shape does not broadcast to `shape`.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let out = broadcast_shapes("broadcast_to", self.shape(), &shape)?;
        if out != shape {
            return Err(Error::shape("broadcast_to", format!("a shape that broadcasts to {shape}"), self.shape()));
        }
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        self.add(&Tensor::zeros(shape, self.dtype(), self.device())?)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{gradcheck, rand};
    use crate::{backend_test, DType, Tensor};

    backend_test!(reshape_infers_and_shares, |dev| {
        let x = Tensor::arange(0.0, 12.0, 1.0, dev).unwrap();
        let y = x.reshape(&[3, -1]).unwrap();
        assert_eq!(y.dims(), &[3, 4]);
        assert_eq!(y.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
        assert_eq!(y.expand_dims(0).unwrap().dims(), &[1, 3, 4]);
        assert_eq!(y.expand_dims(-1).unwrap().dims(), &[3, 4, 1]);
        assert_eq!(y.reshape(&[1, 3, 1, 4]).unwrap().squeeze(&[]).unwrap().dims(), &[3, 4]);
        assert_eq!(y.reshape(&[1, 3, 1, 4]).unwrap().squeeze(&[2]).unwrap().dims(), &[1, 3, 4]);
        assert_eq!(y.reshape(&[3, 2, 2]).unwrap().flatten().unwrap().dims(), &[3, 4]);
        let b = Tensor::from_vec(vec![1.0f32, 2.0], [2, 1], dev).unwrap().broadcast_to([3, 2, 2]).unwrap();
        assert_eq!(b.to_vec::<f32>().unwrap(), [1.0, 1.0, 2.0, 2.0].repeat(3));
        gradcheck(|t| t[0].reshape(&[4, -1])?.broadcast_to([2, 4, 3]), &[rand(&[2, 6], -1.0, 1.0, 1, dev)], 1e-3, 2e-3).unwrap();
    });

    backend_test!(shape_errors_say_what_fits, |dev| {
        let x = Tensor::zeros([2, 3], DType::F32, dev).unwrap();
        let e = x.reshape(&[4, -1]).unwrap_err().to_string();
        assert!(e.contains("reshape") && e.contains("[4, -1]") && e.contains("[2, 3]"), "{e}");
        assert!(x.reshape(&[-1, -1]).unwrap_err().to_string().contains("only one dimension may be -1"));
        let e = x.reshape(&[5]).unwrap_err().to_string();
        assert!(e.contains("5 elements") && e.contains("6 elements"), "{e}");
        let e = x.squeeze(&[0]).unwrap_err().to_string();
        assert!(e.contains("axis 0 of shape [2, 3] has size 2"), "{e}");
        assert!(x.broadcast_to([3, 3]).is_err());
        assert!(x.expand_dims(3).is_err());
    });
}
