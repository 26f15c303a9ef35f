//! Fast f32 reductions over one contiguous block of axes.
//!
//! When the reduced axes are adjacent, the tensor is a row-major `[outer, reduce, inner]` array
//! and every output `(o, i)` folds `x[o, 0..reduce, i]`. That covers the hot cases: the last
//! axis (softmax, losses), axis 0 (bias gradients), axes `[0, 1, 2]` (batch-norm statistics)
//! and `[1, 2]` (global pooling). Other axis sets and dtypes run the reference.
//!
//! Determinism: work is cut into tasks whose boundaries depend only on the shape (`BLOCK`
//! elements, `COLS` columns), each task folds in a fixed order, and partial results are merged
//! in task order — so the result is the same whatever the number of threads. Within a task the
//! fold runs in f32 (eight interleaved lanes when `inner == 1`, whole rows otherwise, both of
//! which vectorise); partials merge in f64, which keeps long sums accurate.

use super::PARALLEL_THRESHOLD;
use crate::backend::{reference, ReduceOp};
use crate::{HostData, Result, Shape};
use rayon::prelude::*;

/// Elements folded by one task before its partial result is merged.
const BLOCK: usize = 8192;
/// Columns of the inner axis handled by one task.
const COLS: usize = 512;
/// Independent accumulators for a contiguous fold, so the adds do not form one serial chain.
const LANES: usize = 8;

/// One reduction: how to fold an element into an accumulator and how to merge partials.
trait Fold: Sync {
    /// The in-task accumulator: f32 where that is exact enough, f64 for products, which
    /// overflow f32 in intermediate steps long before the reference (f64) does.
    type Acc: Copy + Send + Sync + Into<f64>;
    const INIT: Self::Acc;
    fn step(a: Self::Acc, v: f32) -> Self::Acc;
    fn merge(a: f64, b: f64) -> f64;
}

struct Sum;
struct Prod;
struct Max;
struct Min;

impl Fold for Sum {
    type Acc = f32;
    const INIT: f32 = 0.0;
    fn step(a: f32, v: f32) -> f32 {
        a + v
    }
    fn merge(a: f64, b: f64) -> f64 {
        a + b
    }
}

impl Fold for Prod {
    type Acc = f64;
    const INIT: f64 = 1.0;
    fn step(a: f64, v: f32) -> f64 {
        a * v as f64
    }
    fn merge(a: f64, b: f64) -> f64 {
        a * b
    }
}

// NaN wins and stays, as in the reference: once an accumulator is NaN nothing replaces it.
macro_rules! extremum {
    ($t:ident, $init:expr, $cmp:tt) => {
        impl Fold for $t {
            type Acc = f32;
            const INIT: f32 = $init;
            fn step(a: f32, v: f32) -> f32 {
                // `a` stays when it is NaN or `v` does not beat it; a NaN `v` beats everything.
                // Written with `|` and a select so the loop vectorises without branches.
                if !((v $cmp a) | v.is_nan()) | a.is_nan() { a } else { v }
            }
            fn merge(a: f64, b: f64) -> f64 {
                if !a.is_nan() && (b.is_nan() || b $cmp a) { b } else { a }
            }
        }
    };
}
extremum!(Max, f32::NEG_INFINITY, >);
extremum!(Min, f32::INFINITY, <);

/// `(outer, reduce, inner)` when `axes` (sorted) form one contiguous block.
fn split(shape: &Shape, axes: &[usize]) -> Option<(usize, usize, usize)> {
    let (&first, &last) = (axes.first()?, axes.last()?);
    if axes.windows(2).any(|w| w[1] != w[0] + 1) || last >= shape.rank() {
        return None;
    }
    let d = shape.dims();
    Some((d[..first].iter().product(), d[first..=last].iter().product(), d[last + 1..].iter().product()))
}

/// Reduces `x` over `axes`: the fast path for f32 over contiguous axes, the reference otherwise.
pub(super) fn reduce(op: ReduceOp, x: &HostData, shape: &Shape, axes: &[usize]) -> Result<HostData> {
    if matches!(x, HostData::F16(_) | HostData::BF16(_)) {
        // Halves reduce on an f32 copy (f32 accumulation, like the f32 path) and round once.
        let y = reduce(op, &crate::backend::host_adapter::widen(x), shape, axes)?;
        return Ok(crate::backend::host_adapter::narrow(y, Some(x.dtype())));
    }
    let (HostData::F32(v), Some((outer, red, inner))) = (x, split(shape, axes)) else {
        return reference::reduce::reduce(op, x, shape, axes);
    };
    let arg = matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin);
    // Empty tensors and multi-axis arg reductions (an error) keep the reference's behaviour.
    if v.is_empty() || (arg && axes.len() != 1) {
        return reference::reduce::reduce(op, x, shape, axes);
    }
    Ok(match op {
        ReduceOp::Sum => HostData::F32(fold::<Sum>(v, outer, red, inner)),
        ReduceOp::Prod => HostData::F32(fold::<Prod>(v, outer, red, inner)),
        ReduceOp::Max => HostData::F32(fold::<Max>(v, outer, red, inner)),
        ReduceOp::Min => HostData::F32(fold::<Min>(v, outer, red, inner)),
        ReduceOp::ArgMax => HostData::I64(arg_fold::<true>(v, outer, red, inner)),
        ReduceOp::ArgMin => HostData::I64(arg_fold::<false>(v, outer, red, inner)),
    })
}

/// Folds a contiguous run with `LANES` interleaved accumulators, merged in a fixed order.
fn fold_contig<F: Fold>(xs: &[f32]) -> f64 {
    let mut lanes = [F::INIT; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for ch in chunks {
        for (l, &v) in lanes.iter_mut().zip(ch) {
            *l = F::step(*l, v);
        }
    }
    let mut acc: f64 = F::INIT.into();
    for l in lanes {
        acc = F::merge(acc, l.into());
    }
    for &v in rest {
        acc = F::merge(acc, v as f64);
    }
    acc
}

/// Folds rows `rows` of the `[reduce, inner]` slab starting at `base`, columns `cols`, into `acc`.
fn fold_rows<F: Fold>(
    x: &[f32],
    base: usize,
    inner: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    acc: &mut [F::Acc],
) {
    acc.fill(F::INIT);
    for r in rows {
        let row = &x[base + r * inner..][cols.clone()];
        for (a, &v) in acc.iter_mut().zip(row) {
            *a = F::step(*a, v);
        }
    }
}

fn fold<F: Fold>(x: &[f32], outer: usize, red: usize, inner: usize) -> Vec<f32> {
    let mut out = crate::buffer_pool::zeroed(outer * inner);
    let parallel = x.len() >= PARALLEL_THRESHOLD;
    let init: f64 = F::INIT.into();
    if inner == 1 {
        if red <= BLOCK {
            let kernel = |(o, y): (usize, &mut f32)| *y = fold_contig::<F>(&x[o * red..(o + 1) * red]) as f32;
            if parallel {
                out.par_iter_mut().enumerate().for_each(kernel);
            } else {
                out.iter_mut().enumerate().for_each(kernel);
            }
        } else {
            let nb = red.div_ceil(BLOCK);
            let partial = |t: usize| {
                let (o, b) = (t / nb, t % nb);
                let start = o * red + b * BLOCK;
                fold_contig::<F>(&x[start..start + BLOCK.min(red - b * BLOCK)])
            };
            let parts: Vec<f64> =
                if parallel { (0..outer * nb).into_par_iter().map(partial).collect() } else { (0..outer * nb).map(partial).collect() };
            for (y, p) in out.iter_mut().zip(parts.chunks(nb)) {
                *y = p.iter().fold(init, |a, &b| F::merge(a, b)) as f32;
            }
        }
        return out;
    }
    let cw = inner.min(COLS);
    let nc = inner.div_ceil(cw);
    let rb = (BLOCK / cw).max(1);
    let nb = red.div_ceil(rb);
    let cols = |j: usize| j * cw..((j + 1) * cw).min(inner);
    if nb == 1 {
        // One task per output row: fold straight into the row, with per-thread scratch.
        let kernel = |acc: &mut Vec<F::Acc>, (o, y): (usize, &mut [f32])| {
            for j in 0..nc {
                let c = cols(j);
                acc.resize(c.len(), F::INIT);
                fold_rows::<F>(x, o * red * inner, inner, 0..red, c.clone(), acc);
                for (d, &a) in y[c].iter_mut().zip(acc.iter()) {
                    *d = a.into() as f32;
                }
            }
        };
        if parallel {
            out.par_chunks_mut(inner).enumerate().for_each_init(Vec::new, kernel);
        } else {
            let mut acc = Vec::new();
            out.chunks_mut(inner).enumerate().for_each(|t| kernel(&mut acc, t));
        }
        return out;
    }
    // Tasks (o, column chunk j, row block b), in that order; merged over b afterwards.
    let partial = |t: usize| {
        let (o, j, b) = (t / (nb * nc), (t / nb) % nc, t % nb);
        let c = cols(j);
        let mut acc = vec![F::INIT; c.len()];
        fold_rows::<F>(x, o * red * inner, inner, b * rb..((b + 1) * rb).min(red), c, &mut acc);
        acc
    };
    let tasks = outer * nc * nb;
    let parts: Vec<Vec<F::Acc>> =
        if parallel { (0..tasks).into_par_iter().map(partial).collect() } else { (0..tasks).map(partial).collect() };
    let mut merged = Vec::new();
    for (oj, group) in parts.chunks(nb).enumerate() {
        let (o, j) = (oj / nc, oj % nc);
        // Merge whole partial rows in block order: sequential reads, fixed order.
        merged.clear();
        merged.resize(group[0].len(), init);
        for p in group {
            for (m, &a) in merged.iter_mut().zip(p) {
                *m = F::merge(*m, a.into());
            }
        }
        for (d, &m) in out[o * inner..][cols(j)].iter_mut().zip(&merged) {
            *d = m as f32;
        }
    }
    out
}

/// Whether `v` replaces the current best `b`: strictly better, or NaN (which then stays).
#[inline]
fn better<const MAX: bool>(b: f32, v: f32) -> bool {
    !b.is_nan() & (v.is_nan() | if MAX { v > b } else { v < b })
}

/// Arg-max (`MAX`) or arg-min over the middle axis: the first best index, NaN winning.
fn arg_fold<const MAX: bool>(x: &[f32], outer: usize, red: usize, inner: usize) -> Vec<i64> {
    let mut out = vec![0i64; outer * inner];
    let kernel = |best: &mut Vec<f32>, (o, y): (usize, &mut [i64])| {
        let slab = &x[o * red * inner..(o + 1) * red * inner];
        if inner == 1 {
            let (mut b, mut bi) = (slab[0], 0);
            for (r, &v) in slab.iter().enumerate().skip(1) {
                if better::<MAX>(b, v) {
                    (b, bi) = (v, r);
                }
            }
            y[0] = bi as i64;
            return;
        }
        best.clear();
        best.extend_from_slice(&slab[..inner]);
        y.fill(0);
        for (r, row) in slab.chunks_exact(inner).enumerate().skip(1) {
            for ((b, i), &v) in best.iter_mut().zip(y.iter_mut()).zip(row) {
                let take = better::<MAX>(*b, v);
                *b = if take { v } else { *b };
                *i = if take { r as i64 } else { *i };
            }
        }
    };
    if x.len() >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(inner).enumerate().for_each_init(Vec::new, kernel);
    } else {
        let mut best = Vec::new();
        out.chunks_mut(inner).enumerate().for_each(|t| kernel(&mut best, t));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, rand};
    use crate::Device;

    /// Every contiguous block of axes of `dims`, every op, against the reference.
    fn check_all_patterns(dims: &[usize], seed: u64) {
        let shape = Shape::new(dims.to_vec());
        // Values near 1 keep long products finite.
        let x = rand(dims, 0.6, 1.5, seed, Device::Cpu);
        let x = x.host_storage();
        for first in 0..dims.len() {
            for last in first..dims.len() {
                let axes: Vec<usize> = (first..=last).collect();
                for op in [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min, ReduceOp::ArgMax, ReduceOp::ArgMin] {
                    if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) && axes.len() != 1 {
                        continue;
                    }
                    let want = reference::reduce::reduce(op, x, &shape, &axes).unwrap();
                    let got = reduce(op, x, &shape, &axes).unwrap();
                    let what = format!("{op:?} over {axes:?} of {dims:?}");
                    match (&got, &want) {
                        (HostData::F32(g), HostData::F32(w)) => assert_close(&what, g, w, 2e-5, 1e-6),
                        _ => assert_eq!(got, want, "{what}"),
                    }
                }
            }
        }
    }

    #[test]
    fn contiguous_reductions_match_reference_on_random_shapes() {
        let mut state = 7u64;
        let mut next = |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for seed in 0..20 {
            let rank = 1 + next(4) as usize;
            let dims: Vec<usize> = (0..rank).map(|_| 1 + next(6) as usize).collect();
            check_all_patterns(&dims, seed);
        }
    }

    #[test]
    fn large_reductions_cross_block_and_thread_boundaries() {
        // Multi-block contiguous rows, multi-block row slabs, column chunking past COLS, and
        // inputs past the parallel threshold.
        check_all_patterns(&[3, 9000], 1);
        check_all_patterns(&[2, 700, 37], 2);
        check_all_patterns(&[2, 3, 1100], 3);
        check_all_patterns(&[40000], 4);
        // Batch-norm statistics shape: [N, H, W, C] over [0, 1, 2].
        let dims = [8usize, 16, 16, 24];
        let x = rand(&dims, -1.0, 1.0, 5, Device::Cpu);
        let shape = Shape::new(dims.to_vec());
        let got = reduce(ReduceOp::Sum, x.host_storage(), &shape, &[0, 1, 2]).unwrap();
        let want = reference::reduce::reduce(ReduceOp::Sum, x.host_storage(), &shape, &[0, 1, 2]).unwrap();
        assert_close("bn sum", got.as_f32("t").unwrap(), want.as_f32("t").unwrap(), 1e-4, 1e-4);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let cases: [(&[usize], &[usize]); 4] =
            [(&[3, 90000], &[1]), (&[16, 700, 37], &[1]), (&[8, 16, 16, 24], &[0, 1, 2]), (&[300000], &[0])];
        for (dims, axes) in cases {
            let x = rand(dims, -1.0, 1.0, 9, Device::Cpu);
            let shape = Shape::new(dims.to_vec());
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| reduce(ReduceOp::Sum, x.host_storage(), &shape, axes).unwrap())
            };
            let one = run(1);
            for threads in [2, 3, 7] {
                assert_eq!(run(threads), one, "{dims:?} over {axes:?} with {threads} threads");
            }
        }
    }

    #[test]
    fn nan_propagates_and_other_axis_sets_fall_back() {
        let shape = Shape::new([2, 3]);
        let x = HostData::F32(vec![1.0, f32::NAN, 3.0, 4.0, 5.0, 6.0]);
        let m = reduce(ReduceOp::Max, &x, &shape, &[1]).unwrap();
        let m = m.as_f32("t").unwrap();
        assert!(m[0].is_nan() && m[1] == 6.0, "{m:?}");
        assert_eq!(reduce(ReduceOp::ArgMin, &x, &shape, &[1]).unwrap(), HostData::I64(vec![1, 0]));
        // The same down columns (the row-slab path), and deep inside a multi-block row.
        let m = reduce(ReduceOp::Min, &x, &Shape::new([3, 2]), &[0]).unwrap();
        let m = m.as_f32("t").unwrap();
        assert!(m[0] == 1.0 && m[1].is_nan(), "{m:?}");
        assert_eq!(reduce(ReduceOp::ArgMax, &x, &Shape::new([3, 2]), &[0]).unwrap(), HostData::I64(vec![2, 0]));
        let mut long = vec![1.0f32; 3 * BLOCK];
        long[2 * BLOCK + 5] = f32::NAN;
        let long = HostData::F32(long);
        for op in [ReduceOp::Max, ReduceOp::Min, ReduceOp::Sum] {
            assert!(reduce(op, &long, &Shape::new([3 * BLOCK]), &[0]).unwrap().as_f32("t").unwrap()[0].is_nan(), "{op:?}");
        }
        assert_eq!(reduce(ReduceOp::ArgMax, &long, &Shape::new([1, 3 * BLOCK]), &[1]).unwrap(), HostData::I64(vec![2 * BLOCK as i64 + 5]));
        // Non-contiguous axes and integer dtypes go to the reference and agree with it.
        let shape = Shape::new([2, 2, 2]);
        let x = HostData::F32((0..8).map(|v| v as f32).collect());
        assert_eq!(reduce(ReduceOp::Sum, &x, &shape, &[0, 2]).unwrap(), HostData::F32(vec![10.0, 18.0]));
        let xi = HostData::I64((0..8).collect());
        assert_eq!(reduce(ReduceOp::Max, &xi, &shape, &[1, 2]).unwrap(), HostData::I64(vec![3, 7]));
        let e = reduce(ReduceOp::ArgMax, &x, &shape, &[0, 1]).unwrap_err().to_string();
        assert!(e.contains("exactly one axis"), "{e}");
    }
}
