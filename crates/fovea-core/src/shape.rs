//! Tensor shapes, row-major strides, broadcasting and axis normalisation.

use crate::{Error, Result};
use std::fmt;

/// The dimensions of a tensor, outermost first (row-major, NHWC for images).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    /// The shape of a scalar (rank 0, one element).
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The number of elements (1 for a scalar).
    ///
    /// Wraps (or panics in debug builds) when the product overflows; shapes that come from
    /// outside (files, configs) go through [`Shape::checked_numel`] first.
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// The number of elements, or `None` when the product overflows `usize`: the check every
    /// reader makes on a shape read from a file, where a huge product could otherwise wrap to
    /// a small (even zero) size.
    pub fn checked_numel(&self) -> Option<usize> {
        checked_numel(&self.0)
    }

    /// Size of dimension `axis`, which may be negative (counted from the end).
    ///
    /// # Errors
    /// `InvalidArgument` when the axis is out of range.
    pub fn dim(&self, axis: isize) -> Result<usize> {
        Ok(self.0[self.axis("dim", axis)?])
    }

    /// Row-major (C-order) strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.0.len()];
        for i in (0..self.0.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.0[i + 1];
        }
        strides
    }

    /// Resolves a possibly negative axis against this rank.
    ///
    /// # Errors
    /// `InvalidArgument` naming `op` when `axis` is outside `-rank..rank`.
    pub fn axis(&self, op: &'static str, axis: isize) -> Result<usize> {
        normalize_axis(op, axis, self.rank())
    }

    /// Resolves a list of possibly negative axes, sorted and without repeats.
    ///
    /// # Errors
    /// `InvalidArgument` for an axis out of range or given twice.
    pub fn axes(&self, op: &'static str, axes: &[isize]) -> Result<Vec<usize>> {
        let mut out = Vec::with_capacity(axes.len());
        for &a in axes {
            let a = self.axis(op, a)?;
            if out.contains(&a) {
                return Err(Error::invalid(op, format!("axis {a} given twice in {axes:?}")));
            }
            out.push(a);
        }
        out.sort_unstable();
        Ok(out)
    }
}

/// Resolves a possibly negative `axis` for a tensor of `rank` dimensions.
///
/// # Errors
/// `InvalidArgument` naming `op` when `axis` is outside `-rank..rank`.
pub fn normalize_axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    if axis < -r || axis >= r {
        return Err(Error::invalid(op, format!("axis {axis} is out of range for a tensor of rank {rank} (valid: {} to {})", -r, r - 1)));
    }
    Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
}

/// The NumPy broadcast of two shapes: dimensions are aligned from the right, and each pair must
/// be equal or contain a 1.
///
/// # Errors
/// `ShapeMismatch` naming `op` when the shapes do not broadcast.
pub fn broadcast_shapes(op: &'static str, a: &Shape, b: &Shape) -> Result<Shape> {
    let rank = a.rank().max(b.rank());
    let mut out = vec![0; rank];
    for (i, slot) in out.iter_mut().enumerate() {
        let da = if i < rank - a.rank() { 1 } else { a.0[i - (rank - a.rank())] };
        let db = if i < rank - b.rank() { 1 } else { b.0[i - (rank - b.rank())] };
        *slot = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shape(op, format!("a shape that broadcasts with {a}"), b));
            }
        };
    }
    Ok(Shape(out))
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}

impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}

impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape::scalar()
    }
}

/// The number of elements of `dims`, or `None` when the product overflows `usize` (see
/// [`Shape::checked_numel`]).
pub fn checked_numel(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// The bytes `dims` elements of `elem_size` bytes occupy, or `None` when that overflows or
/// exceeds `isize::MAX` (the most one allocation may hold), so a size read from a file becomes
/// a clear error instead of a capacity-overflow panic.
pub fn checked_bytes(dims: &[usize], elem_size: usize) -> Option<usize> {
    checked_numel(dims)?.checked_mul(elem_size).filter(|&b| isize::try_from(b).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_sizes_refuse_overflow() {
        // [2^22, 2^21, 2^21] multiplies to 2^64, which `product()` wraps to zero.
        let huge = Shape::new([1 << 22, 1 << 21, 1 << 21]);
        assert_eq!(huge.checked_numel(), None);
        assert_eq!(Shape::new([2, 3, 4]).checked_numel(), Some(24));
        assert_eq!(Shape::scalar().checked_numel(), Some(1));
        assert_eq!(checked_bytes(&[2, 3], 4), Some(24));
        assert_eq!(checked_bytes(&[1 << 62], 4), None, "past usize");
        assert_eq!(checked_bytes(&[1 << 62, 2], 1), None, "past isize::MAX");
    }

    #[test]
    fn strides_are_row_major() {
        assert_eq!(Shape::new([2, 3, 4]).strides(), vec![12, 4, 1]);
        assert_eq!(Shape::scalar().strides(), Vec::<usize>::new());
    }

    #[test]
    fn broadcasting_follows_numpy() {
        let s = broadcast_shapes("t", &Shape::new([4, 1, 3]), &Shape::new([5, 1])).unwrap();
        assert_eq!(s, Shape::new([4, 5, 3]));
        let err = broadcast_shapes("add", &Shape::new([2, 3]), &Shape::new([4])).unwrap_err();
        assert!(err.to_string().contains("add: shape mismatch"), "{err}");
        assert!(err.to_string().contains("[2, 3]") && err.to_string().contains("[4]"), "{err}");
    }

    #[test]
    fn negative_axes_resolve_and_bad_axes_error() {
        let s = Shape::new([2, 3, 4]);
        assert_eq!(s.axis("t", -1).unwrap(), 2);
        assert_eq!(s.axes("t", &[-1, 0]).unwrap(), vec![0, 2]);
        let err = s.axis("sum", 3).unwrap_err().to_string();
        assert!(err.contains("axis 3 is out of range") && err.contains("rank 3"), "{err}");
        assert!(s.axes("sum", &[1, -2]).is_err());
    }
}
