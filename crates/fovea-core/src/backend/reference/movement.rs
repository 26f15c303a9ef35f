//! Reference data movement: permute, strided slice, concat, pad, gather, scatter-add.
//!
//! Each primitive is one generic function over the element type; the public entry points
//! dispatch on the storage's dtype. The ops validate their arguments first, but the checks are
//! repeated here (they are cheap) so that a wrong call from inside the crate is an error rather
//! than an out-of-bounds panic.

use crate::backend::{PadMode, SliceAxis};
use crate::{DType, Element, Error, HostData, Result, Shape};

/// Element types that a constant pad value (given as f64) converts to.
trait Fill: Element {
    fn from_f64(v: f64) -> Self;
}

impl Fill for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}
impl Fill for u8 {
    fn from_f64(v: f64) -> Self {
        v as u8 // saturating, as a cast to uint8 in TensorFlow
    }
}
impl Fill for i64 {
    fn from_f64(v: f64) -> Self {
        v as i64
    }
}
impl Fill for i32 {
    fn from_f64(v: f64) -> Self {
        v as i32
    }
}
impl Fill for bool {
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
}
impl Fill for half::f16 {
    fn from_f64(v: f64) -> Self {
        half::f16::from_f64(v)
    }
}
impl Fill for half::bf16 {
    fn from_f64(v: f64) -> Self {
        half::bf16::from_f64(v)
    }
}

/// Calls the generic `f::<T>(args)` for the element type of `dtype`.
macro_rules! by_dtype {
    ($op:expr, $dtype:expr, $f:ident ( $($arg:expr),* )) => {
        match $dtype {
            DType::F32 => $f::<f32>($($arg),*),
            DType::U8 => $f::<u8>($($arg),*),
            DType::I64 => $f::<i64>($($arg),*),
            DType::I32 => $f::<i32>($($arg),*),
            DType::Bool => $f::<bool>($($arg),*),
            DType::F16 => $f::<half::f16>($($arg),*),
            DType::BF16 => $f::<half::bf16>($($arg),*),
        }
    };
}

fn elems<'a, T: Element>(op: &'static str, x: &'a HostData, shape: &Shape) -> Result<&'a [T]> {
    let v = T::slice(x).ok_or_else(|| Error::dtype(op, T::DTYPE.as_str(), x.dtype()))?;
    if v.len() != shape.numel() {
        return Err(Error::shape(op, format!("{} elements for shape {shape}", shape.numel()), format!("{} elements", v.len())));
    }
    Ok(v)
}

fn check_axis(op: &'static str, axis: usize, shape: &Shape) -> Result<()> {
    if axis >= shape.rank() {
        return Err(Error::invalid(op, format!("axis {axis} is out of range for shape {shape}")));
    }
    Ok(())
}

/// A strided read of a tensor: output element `i` (a row-major index over `dims`) comes from
/// `x[base + Σ i_k·strides[k]]`. Permute and strided slice are both such a walk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Walk {
    pub(crate) dims: Vec<usize>,
    pub(crate) base: usize,
    pub(crate) strides: Vec<isize>,
}

impl Walk {
    /// The walk that permutes `shape` by a valid `perm`.
    pub(crate) fn permute(shape: &Shape, perm: &[usize]) -> Walk {
        let strides = shape.strides();
        Walk {
            dims: perm.iter().map(|&p| shape.dims()[p]).collect(),
            base: 0,
            strides: perm.iter().map(|&p| strides[p] as isize).collect(),
        }
    }

    /// The walk that takes the strided slice `axes` (validated) of `shape`.
    pub(crate) fn slice(shape: &Shape, axes: &[SliceAxis]) -> Walk {
        let strides = shape.strides();
        let dims: Vec<usize> = axes.iter().map(|a| a.len).collect();
        let base = if dims.contains(&0) { 0 } else { axes.iter().zip(&strides).map(|(a, s)| a.start * s).sum() };
        Walk { dims, base, strides: axes.iter().zip(&strides).map(|(a, &s)| a.step * s as isize).collect() }
    }

    /// Fills `out` with the output elements starting at row `first_row` (whole rows).
    ///
    /// An odometer over the outer axes keeps the read offset incrementally, so nothing is
    /// allocated per element; rows with a unit step are one slice copy.
    pub(crate) fn fill<T: Copy>(&self, x: &[T], first_row: usize, out: &mut [T]) {
        let rank = self.dims.len();
        if out.is_empty() {
            return;
        }
        if rank == 0 {
            out[0] = x[self.base];
            return;
        }
        let (dims, strides) = (&self.dims[..rank - 1], &self.strides[..rank - 1]);
        let (last, step) = (self.dims[rank - 1], self.strides[rank - 1]);
        let mut idx = vec![0usize; rank - 1];
        let mut off = self.base as isize;
        let mut rem = first_row;
        for k in (0..rank - 1).rev() {
            idx[k] = rem % dims[k];
            rem /= dims[k];
            off += idx[k] as isize * strides[k];
        }
        for row in out.chunks_mut(last) {
            if step == 1 {
                row.copy_from_slice(&x[off as usize..off as usize + last]);
            } else {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = x[(off + j as isize * step) as usize];
                }
            }
            for k in (0..rank - 1).rev() {
                idx[k] += 1;
                off += strides[k];
                if idx[k] < dims[k] {
                    break;
                }
                off -= strides[k] * dims[k] as isize;
                idx[k] = 0;
            }
        }
    }

    fn run<T: Copy>(&self, x: &[T]) -> Vec<T> {
        let n = self.dims.iter().product();
        // Any element serves as the initial value: every one is overwritten.
        let mut out = if n == 0 { Vec::new() } else { vec![x[self.base]; n] };
        self.fill(x, 0, &mut out);
        out
    }
}

/// Checks that `perm` is a permutation of `0..rank`.
pub(crate) fn check_perm(op: &'static str, perm: &[usize], shape: &Shape) -> Result<()> {
    let rank = shape.rank();
    let mut seen = vec![false; rank];
    let ok = perm.len() == rank && perm.iter().all(|&p| p < rank && !std::mem::replace(&mut seen[p], true));
    if !ok {
        return Err(Error::invalid(
            op,
            format!("perm must be a permutation of 0..{rank} (one entry per axis of shape {shape}), got {perm:?}"),
        ));
    }
    Ok(())
}

/// Permutes axes: output axis `i` is input axis `perm[i]`.
///
/// # Errors
/// `InvalidArgument` when `perm` is not a permutation of the axes; `ShapeMismatch` when the
/// storage does not fill `shape`.
pub fn permute(x: &HostData, shape: &Shape, perm: &[usize]) -> Result<HostData> {
    fn run<T: Element>(x: &HostData, shape: &Shape, perm: &[usize]) -> Result<HostData> {
        let v = elems::<T>("permute", x, shape)?;
        Ok(T::into_host(Walk::permute(shape, perm).run(v)))
    }
    check_perm("permute", perm, shape)?;
    by_dtype!("permute", x.dtype(), run(x, shape, perm))
}

/// Checks that one [`SliceAxis`] per axis stays inside `shape` with a nonzero step.
pub(crate) fn check_slice(shape: &Shape, axes: &[SliceAxis]) -> Result<()> {
    if axes.len() != shape.rank() {
        return Err(Error::invalid("strided_slice", format!("need one slice per axis of shape {shape}, got {}", axes.len())));
    }
    for (k, (a, &d)) in axes.iter().zip(shape.dims()).enumerate() {
        let last = a.start as isize + (a.len as isize - 1) * a.step;
        if a.step == 0 || (a.len > 0 && (a.start >= d || last < 0 || last >= d as isize)) {
            return Err(Error::invalid("strided_slice", format!("slice {a:?} reads outside axis {k} of size {d} (shape {shape})")));
        }
    }
    Ok(())
}

/// Strided slice: along each axis, `len` elements starting at `start`, `step` apart (a negative
/// step walks backwards). One [`SliceAxis`] per axis.
///
/// # Errors
/// `InvalidArgument` when an axis would read outside the tensor or the step is zero.
pub fn strided_slice(x: &HostData, shape: &Shape, axes: &[SliceAxis]) -> Result<HostData> {
    fn run<T: Element>(x: &HostData, shape: &Shape, axes: &[SliceAxis]) -> Result<HostData> {
        let v = elems::<T>("strided_slice", x, shape)?;
        Ok(T::into_host(Walk::slice(shape, axes).run(v)))
    }
    check_slice(shape, axes)?;
    by_dtype!("strided_slice", x.dtype(), run(x, shape, axes))
}

/// Concatenation along `axis`; every other dimension must agree.
///
/// # Errors
/// `InvalidArgument` for no inputs or a bad axis; `ShapeMismatch` for disagreeing shapes;
/// `DTypeMismatch` for mixed dtypes.
pub fn concat(xs: &[(&HostData, &Shape)], axis: usize) -> Result<HostData> {
    fn run<T: Element>(xs: &[(&HostData, &Shape)], axis: usize) -> Result<HostData> {
        let first = xs[0].1;
        let outer: usize = first.dims()[..axis].iter().product();
        let parts: Vec<(&[T], usize)> =
            xs.iter().map(|(s, sh)| Ok((elems::<T>("concat", s, sh)?, sh.dims()[axis..].iter().product()))).collect::<Result<_>>()?;
        let total: usize = parts.iter().map(|(v, _)| v.len()).sum();
        let mut out = Vec::with_capacity(total);
        for o in 0..outer {
            for (v, chunk) in &parts {
                out.extend_from_slice(&v[o * chunk..(o + 1) * chunk]);
            }
        }
        Ok(T::into_host(out))
    }
    check_concat(xs, axis)?;
    by_dtype!("concat", xs[0].0.dtype(), run(xs, axis))
}

/// Checks concat's inputs: at least one, a valid axis, and shapes that agree off `axis`.
pub(crate) fn check_concat(xs: &[(&HostData, &Shape)], axis: usize) -> Result<()> {
    let Some(&(_, first_shape)) = xs.first() else {
        return Err(Error::invalid("concat", "need at least one tensor"));
    };
    check_axis("concat", axis, first_shape)?;
    for (_, sh) in xs {
        let same =
            sh.rank() == first_shape.rank() && sh.dims().iter().zip(first_shape.dims()).enumerate().all(|(k, (a, b))| k == axis || a == b);
        if !same {
            return Err(Error::shape("concat", format!("a shape matching {first_shape} except on axis {axis}"), sh));
        }
    }
    Ok(())
}

/// Where output position `i` of a padded axis reads from: `None` for the constant border.
///
/// For the mirror modes the border folds back once: reflect excludes the edge (`-1 → 1`),
/// symmetric repeats it (`-1 → 0`). The pad gradient uses these maps to scatter back.
///
/// # Errors
/// `InvalidArgument` when a mirrored border is too wide for one fold (reflect needs
/// `pad < dim`, symmetric `pad <= dim`).
pub(crate) fn pad_source_map(op: &'static str, axis: usize, dim: usize, pad: (usize, usize), mode: PadMode) -> Result<Vec<Option<usize>>> {
    let limit = match mode {
        PadMode::Constant(_) => usize::MAX,
        PadMode::Reflect => dim.saturating_sub(1),
        PadMode::Symmetric => dim,
    };
    if pad.0 > limit || pad.1 > limit {
        let (name, rule) = if mode == PadMode::Reflect { ("REFLECT", "less than") } else { ("SYMMETRIC", "at most") };
        return Err(Error::invalid(
            op,
            format!(
                "{name} padding must be {rule} the dimension size on each side, got paddings ({}, {}) for axis {axis} of size {dim}",
                pad.0, pad.1
            ),
        ));
    }
    let d = dim as isize;
    Ok((-(pad.0 as isize)..d + pad.1 as isize)
        .map(|i| match mode {
            _ if (0..d).contains(&i) => Some(i as usize),
            PadMode::Constant(_) => None,
            PadMode::Reflect => Some(if i < 0 { -i } else { 2 * (d - 1) - i } as usize),
            PadMode::Symmetric => Some(if i < 0 { -i - 1 } else { 2 * d - 1 - i } as usize),
        })
        .collect())
}

/// Pads each axis by `(before, after)` elements filled according to `mode` (`tf.pad`).
///
/// # Errors
/// `InvalidArgument` for the wrong number of pairs or a mirrored border wider than the mode
/// allows.
pub fn pad(x: &HostData, shape: &Shape, pads: &[(usize, usize)], mode: PadMode) -> Result<HostData> {
    /// The recursive fill: one level per axis, reading through that axis's source map.
    struct PadFill<'a, T> {
        x: &'a [T],
        strides: Vec<usize>,
        maps: Vec<Vec<Option<usize>>>,
        /// Output elements in one step of each axis, to fill whole border blocks at once.
        block: Vec<usize>,
        fill: T,
    }
    impl<T: Copy> PadFill<'_, T> {
        fn run(&self, axis: usize, off: usize, out: &mut Vec<T>) {
            let last = axis + 1 == self.maps.len();
            for m in &self.maps[axis] {
                match (m, last) {
                    (Some(m), true) => out.push(self.x[off + m]),
                    (Some(m), false) => self.run(axis + 1, off + m * self.strides[axis], out),
                    (None, _) => out.resize(out.len() + self.block[axis], self.fill),
                }
            }
        }
    }
    fn run<T: Fill>(x: &HostData, shape: &Shape, maps: Vec<Vec<Option<usize>>>, fill: f64) -> Result<HostData> {
        let v = elems::<T>("pad", x, shape)?;
        let out_dims: Vec<usize> = maps.iter().map(Vec::len).collect();
        let block = Shape::new(out_dims.clone()).strides();
        let mut out = Vec::with_capacity(out_dims.iter().product());
        if maps.is_empty() {
            out.extend_from_slice(v);
        } else {
            PadFill { x: v, strides: shape.strides(), maps, block, fill: T::from_f64(fill) }.run(0, 0, &mut out);
        }
        Ok(T::into_host(out))
    }
    if pads.len() != shape.rank() {
        return Err(Error::invalid("pad", format!("need one (before, after) pair per axis of shape {shape}, got {} pairs", pads.len())));
    }
    let maps =
        shape.dims().iter().zip(pads).enumerate().map(|(k, (&d, &p))| pad_source_map("pad", k, d, p, mode)).collect::<Result<Vec<_>>>()?;
    let fill = if let PadMode::Constant(c) = mode { c } else { 0.0 };
    by_dtype!("pad", x.dtype(), run(x, shape, maps, fill))
}

/// Checks that every index lies in `0..dim`, naming the first offender and the valid range.
pub(crate) fn check_indices(op: &'static str, indices: &[i64], dim: usize, axis: usize) -> Result<()> {
    if let Some((pos, &bad)) = indices.iter().enumerate().find(|(_, &i)| i < 0 || i as u64 >= dim as u64) {
        let valid = if dim == 0 { "none: the axis is empty".to_string() } else { format!("0 to {}", dim - 1) };
        return Err(Error::invalid(
            op,
            format!("index {bad} at position {pos} is out of range for axis {axis} of size {dim} (valid: {valid})"),
        ));
    }
    Ok(())
}

/// Selects entries `indices` along `axis` (`index_select`): the output has `indices.len()`
/// entries on that axis, in the order given (repeats allowed).
///
/// # Errors
/// `InvalidArgument` for a bad axis or an index outside `0..dim`.
pub fn gather(x: &HostData, shape: &Shape, axis: usize, indices: &[i64]) -> Result<HostData> {
    fn run<T: Element>(x: &HostData, shape: &Shape, axis: usize, indices: &[i64]) -> Result<HostData> {
        let v = elems::<T>("gather", x, shape)?;
        let dims = shape.dims();
        let outer: usize = dims[..axis].iter().product();
        let inner: usize = dims[axis + 1..].iter().product();
        let mut out = Vec::with_capacity(outer * indices.len() * inner);
        for o in 0..outer {
            for &i in indices {
                let start = (o * dims[axis] + i as usize) * inner;
                out.extend_from_slice(&v[start..start + inner]);
            }
        }
        Ok(T::into_host(out))
    }
    check_axis("gather", axis, shape)?;
    check_indices("gather", indices, shape.dims()[axis], axis)?;
    by_dtype!("gather", x.dtype(), run(x, shape, axis, indices))
}

/// The adjoint of [`gather`]: entry `j` along `axis` of `src` is added into entry `indices[j]` of
/// an output of `out_dim` entries on that axis (zeros elsewhere; repeated indices accumulate).
/// f32 accumulates in f64; i64 wraps.
///
/// # Errors
/// `InvalidArgument` for a bad axis, `indices.len()` differing from the source axis, or an
/// index outside `0..out_dim`; `DTypeMismatch` unless f32 or i64.
pub fn scatter_add(src: &HostData, src_shape: &Shape, axis: usize, indices: &[i64], out_dim: usize) -> Result<HostData> {
    fn run<S: Element, A: Copy + Default>(
        src: &HostData,
        shape: &Shape,
        axis: usize,
        indices: &[i64],
        out_dim: usize,
        add: impl Fn(A, S) -> A,
    ) -> Result<Vec<A>> {
        let v = elems::<S>("scatter_add", src, shape)?;
        let dims = shape.dims();
        let outer: usize = dims[..axis].iter().product();
        let inner: usize = dims[axis + 1..].iter().product();
        let mut acc = vec![A::default(); outer * out_dim * inner];
        for o in 0..outer {
            for (j, &i) in indices.iter().enumerate() {
                let src_row = &v[(o * dims[axis] + j) * inner..][..inner];
                let dst_row = &mut acc[(o * out_dim + i as usize) * inner..][..inner];
                for (d, &s) in dst_row.iter_mut().zip(src_row) {
                    *d = add(*d, s);
                }
            }
        }
        Ok(acc)
    }
    check_axis("scatter_add", axis, src_shape)?;
    if src_shape.dims()[axis] != indices.len() {
        return Err(Error::invalid(
            "scatter_add",
            format!("source axis {axis} of shape {src_shape} must have one entry per index, got {} indices", indices.len()),
        ));
    }
    check_indices("scatter_add", indices, out_dim, axis)?;
    match src.dtype() {
        DType::F32 => {
            let acc = run::<f32, f64>(src, src_shape, axis, indices, out_dim, |a, s| a + s as f64)?;
            Ok(HostData::F32(acc.into_iter().map(|a| a as f32).collect()))
        }
        DType::I64 => Ok(HostData::I64(run::<i64, i64>(src, src_shape, axis, indices, out_dim, i64::wrapping_add)?)),
        other => Err(Error::dtype("scatter_add", "float32 or int64", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_move_every_dtype() {
        let s = Shape::new([2, 3]);
        let x = HostData::U8(vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(permute(&x, &s, &[1, 0]).unwrap(), HostData::U8(vec![1, 4, 2, 5, 3, 6]));
        let b = HostData::Bool(vec![true, false, false, true, true, false]);
        let rev = [SliceAxis { start: 1, step: -1, len: 2 }, SliceAxis { start: 2, step: -2, len: 2 }];
        assert_eq!(strided_slice(&b, &s, &rev).unwrap(), HostData::Bool(vec![false, true, false, true]));
        let i = HostData::I64(vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(gather(&i, &s, 1, &[2, 2, 0]).unwrap(), HostData::I64(vec![3, 3, 1, 6, 6, 4]));
        assert_eq!(scatter_add(&i, &s, 1, &[1, 1, 0], 2).unwrap(), HostData::I64(vec![3, 3, 6, 9]));
        let c = concat(&[(&x, &s), (&HostData::U8(vec![9, 9]), &Shape::new([2, 1]))], 1).unwrap();
        assert_eq!(c, HostData::U8(vec![1, 2, 3, 9, 4, 5, 6, 9]));
        let p = pad(&x, &s, &[(0, 0), (1, 0)], PadMode::Constant(300.0)).unwrap();
        assert_eq!(p, HostData::U8(vec![255, 1, 2, 3, 255, 4, 5, 6])); // the fill saturates
    }

    #[test]
    fn rank_zero_and_empty_tensors() {
        let x = HostData::F32(vec![7.0]);
        assert_eq!(permute(&x, &Shape::scalar(), &[]).unwrap(), x);
        assert_eq!(pad(&x, &Shape::scalar(), &[], PadMode::Reflect).unwrap(), x);
        let e = HostData::F32(vec![]);
        let p = pad(&e, &Shape::new([0]), &[(1, 2)], PadMode::Constant(1.5)).unwrap();
        assert_eq!(p, HostData::F32(vec![1.5; 3]));
        let s = strided_slice(&e, &Shape::new([0]), &[SliceAxis { start: 0, step: 1, len: 0 }]).unwrap();
        assert_eq!(s, e);
    }

    #[test]
    fn bad_calls_are_errors() {
        let x = HostData::F32(vec![0.0; 6]);
        let s = Shape::new([2, 3]);
        assert!(permute(&x, &s, &[0, 0]).unwrap_err().to_string().contains("permutation of 0..2"));
        let e = strided_slice(&x, &s, &[SliceAxis { start: 0, step: 1, len: 2 }, SliceAxis { start: 1, step: 1, len: 3 }]).unwrap_err();
        assert!(e.to_string().contains("axis 1 of size 3"), "{e}");
        let e = gather(&x, &s, 1, &[3]).unwrap_err().to_string();
        assert!(e.contains("index 3") && e.contains("valid: 0 to 2"), "{e}");
        let e = scatter_add(&HostData::U8(vec![0; 6]), &s, 0, &[0, 1], 2).unwrap_err().to_string();
        assert!(e.contains("float32 or int64"), "{e}");
        let e = concat(&[(&x, &s), (&x, &Shape::new([3, 2]))], 0).unwrap_err().to_string();
        assert!(e.contains("[2, 3]") && e.contains("[3, 2]"), "{e}");
    }
}
