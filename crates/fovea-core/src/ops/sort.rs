//! Sorting along an axis: `tf.sort`, `tf.argsort` and `tf.math.top_k`.
//!
//! The order is found on the host (one download of the values; no backend has a sort
//! primitive yet) and applied on the tensor's device by a flat gather, whose gradient scatters
//! each output gradient back to the element it came from.

use crate::ops::index::host_indices;
use crate::{DType, Error, Result, Tensor};
use std::cmp::Ordering;

/// The values of one lane, compared as PyTorch and NumPy order them: NaN above every number
/// (TensorFlow's order with NaN is not a total order, so there is none to follow).
enum Keys {
    Float(Vec<f32>),
    Int(Vec<i64>),
}

impl Keys {
    fn of(op: &'static str, x: &Tensor) -> Result<Keys> {
        match x.dtype() {
            DType::I64 => Ok(Keys::Int(x.to_vec::<i64>()?)),
            DType::I32 => Ok(Keys::Int(x.cast(DType::I64)?.to_vec::<i64>()?)),
            d if d.is_float() => Ok(Keys::Float(x.cast(DType::F32)?.to_vec::<f32>()?)),
            other => Err(Error::dtype(op, "a float, int64 or int32 tensor", other)),
        }
    }

    fn cmp(&self, a: usize, b: usize) -> Ordering {
        match self {
            // total_cmp would order -NaN below -inf; every NaN goes on top.
            Keys::Float(v) => match (v[a].is_nan(), v[b].is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => v[a].partial_cmp(&v[b]).expect("neither is NaN"),
            },
            Keys::Int(v) => v[a].cmp(&v[b]),
        }
    }
}

impl Tensor {
    /// For each lane along `axis`, the positions of its `take` first elements in sorted order,
    /// as flat indices into the whole tensor, lane by lane; with the axis length.
    fn sorted_positions(&self, op: &'static str, axis: isize, descending: bool, take: usize) -> Result<(usize, Vec<i64>)> {
        let a = self.shape().axis(op, axis)?;
        let dims = self.dims();
        let n = dims[a];
        let inner: usize = dims[a + 1..].iter().product();
        let outer: usize = dims[..a].iter().product();
        let keys = Keys::of(op, self)?;
        let mut flat = Vec::with_capacity(outer * take * inner);
        let mut order: Vec<usize> = Vec::with_capacity(n);
        let mut lanes = vec![Vec::with_capacity(take); inner];
        for o in 0..outer {
            for (i, lane) in lanes.iter_mut().enumerate() {
                let at = |j: usize| (o * n + j) * inner + i;
                order.clear();
                order.extend(0..n);
                // A stable sort keeps equal values in index order in both directions.
                if descending {
                    order.sort_by(|&p, &q| keys.cmp(at(q), at(p)));
                } else {
                    order.sort_by(|&p, &q| keys.cmp(at(p), at(q)));
                }
                lane.clear();
                lane.extend(order[..take].iter().map(|&j| at(j) as i64));
            }
            // Output layout: [outer, take, inner].
            for t in 0..take {
                flat.extend(lanes.iter().map(|lane| lane[t]));
            }
        }
        Ok((n, flat))
    }

    /// Gathers flat `positions` (laid out as `self` with `axis` shortened to `take`),
    /// recording the gradient.
    fn gather_positions(&self, axis: isize, take: usize, positions: Vec<i64>) -> Result<Tensor> {
        let a = self.shape().axis("sort", axis)?;
        let mut dims = self.dims().to_vec();
        dims[a] = take;
        let idx = host_indices(positions, self.device())?;
        self.reshape_to([self.numel()])?.take_along(0, idx)?.reshape_to(dims)
    }

    /// The positions along `axis` of `positions` (flat indices) as an int64 tensor shaped like
    /// `self` with `axis` shortened to `take`.
    fn positions_along(&self, axis: isize, take: usize, positions: &[i64]) -> Result<Tensor> {
        let a = self.shape().axis("argsort", axis)?;
        let dims = self.dims();
        let (n, inner) = (dims[a] as i64, dims[a + 1..].iter().product::<usize>() as i64);
        let along: Vec<i64> = positions.iter().map(|&p| (p / inner) % n).collect();
        let mut out = dims.to_vec();
        out[a] = take;
        Tensor::from_vec(along, out, self.device())
    }

    /// The elements sorted along `axis` (`tf.sort`; ascending unless `descending`). NaN sorts
    /// above every number and equal elements keep their order. The gradient goes back to each
    /// element's original position.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad axis; `DTypeMismatch` for bool or uint8 tensors.
    pub fn sort(&self, axis: isize, descending: bool) -> Result<Tensor> {
        let n = self.dims().get(self.shape().axis("sort", axis)?).copied().unwrap_or(0);
        let (_, positions) = self.sorted_positions("sort", axis, descending, n)?;
        self.gather_positions(axis, n, positions)
    }

    /// The int64 indices that sort the elements along `axis` (`tf.argsort` with
    /// `stable=True`): equal elements keep their order, NaN counts as the largest.
    ///
    /// # Errors
    /// As [`Tensor::sort`].
    pub fn argsort(&self, axis: isize, descending: bool) -> Result<Tensor> {
        let n = self.dims().get(self.shape().axis("argsort", axis)?).copied().unwrap_or(0);
        let (_, positions) = self.sorted_positions("argsort", axis, descending, n)?;
        self.positions_along(axis, n, &positions)
    }

    /// The `k` largest elements along the last axis and their int64 indices
    /// (`tf.math.top_k` with `sorted=True`): largest first, the lower index first among
    /// equal values. The values' gradient goes back to the positions they were taken from.
    ///
    /// # Errors
    /// `InvalidArgument` for a scalar or `k` above the last axis' length; `DTypeMismatch` as
    /// [`Tensor::sort`].
    pub fn top_k(&self, k: usize) -> Result<(Tensor, Tensor)> {
        const OP: &str = "top_k";
        let Some(&n) = self.dims().last() else {
            return Err(Error::invalid(OP, "expected a tensor of rank 1 or more, got a scalar"));
        };
        if k > n {
            return Err(Error::invalid(OP, format!("expected k at most the last axis' length {n}, got k = {k}")));
        }
        let (_, positions) = self.sorted_positions(OP, -1, true, k)?;
        let indices = self.positions_along(-1, k, &positions)?;
        Ok((self.gather_positions(-1, k, positions)?, indices))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::gradcheck;
    use crate::{DType, Device, Tensor};

    fn t(v: Vec<f32>, dims: &[usize]) -> Tensor {
        Tensor::from_vec(v, dims.to_vec(), Device::Cpu).unwrap()
    }

    #[test]
    fn sort_orders_each_lane_and_keeps_ties_in_index_order() {
        // Axis 0 of a [3, 2] tensor: columns [3, 1, 2] and [5, 5, 4].
        let x = t(vec![3.0, 5.0, 1.0, 5.0, 2.0, 4.0], &[3, 2]);
        assert_eq!(x.sort(0, false).unwrap().to_vec::<f32>().unwrap(), [1.0, 4.0, 2.0, 5.0, 3.0, 5.0]);
        assert_eq!(x.argsort(0, false).unwrap().to_vec::<i64>().unwrap(), [1, 2, 2, 0, 0, 1]);
        // Descending, the tie 5, 5 stays in index order: rows 0 then 1.
        assert_eq!(x.argsort(0, true).unwrap().to_vec::<i64>().unwrap(), [0, 0, 2, 1, 1, 2]);
        let nan = t(vec![1.0, f32::NAN, -f32::NAN, 0.0], &[4]);
        let asc = nan.sort(0, false).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(&asc[..2], &[0.0, 1.0]);
        assert!(asc[2].is_nan() && asc[3].is_nan());
        let ints = Tensor::from_vec(vec![9i64, -3, 7], [3], Device::Cpu).unwrap();
        assert_eq!(ints.sort(0, true).unwrap().to_vec::<i64>().unwrap(), [9, 7, -3]);
    }

    #[test]
    fn top_k_takes_the_largest_of_each_row() {
        let x = t(vec![1.0, 4.0, 4.0, 2.0, 0.5, -1.0, 3.0, 3.0], &[2, 4]);
        let (v, i) = x.top_k(2).unwrap();
        assert_eq!(v.dims(), [2, 2]);
        assert_eq!(v.to_vec::<f32>().unwrap(), [4.0, 4.0, 3.0, 3.0]);
        assert_eq!(i.to_vec::<i64>().unwrap(), [1, 2, 2, 3]);
        let e = x.top_k(5).unwrap_err().to_string();
        assert!(e.contains("top_k") && e.contains("at most the last axis' length 4, got k = 5"), "{e}");
        let b = Tensor::zeros([3], DType::Bool, Device::Cpu).unwrap();
        assert!(b.sort(0, false).unwrap_err().to_string().contains("float, int64 or int32"));
        assert!(x.sort(2, false).is_err());
    }

    #[test]
    fn gradients_flow_back_to_the_sorted_positions() {
        // Distinct values, so that a small step never reorders them.
        let x = t(vec![0.3, -1.2, 2.5, 0.9, -0.4, 1.7, 0.1, -2.2, 1.1, 0.6, -0.8, 2.0], &[2, 3, 2]);
        gradcheck(|v| v[0].sort(1, true), &[x.clone()], 1e-3, 1e-2).unwrap();
        gradcheck(|v| v[0].sort(0, false), &[x.clone()], 1e-3, 1e-2).unwrap();
        gradcheck(|v| Ok(v[0].top_k(1)?.0), &[x], 1e-3, 1e-2).unwrap();
    }
}
