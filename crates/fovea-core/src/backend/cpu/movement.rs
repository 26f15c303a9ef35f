//! Parallel data movement. Permute and strided slice run the reference's strided walk split
//! across threads by rows; after merging axes that stay adjacent, the permutes that matter most
//! — NHWC ↔ NCHW, matrix and batched-matrix transposes — are a batched 2-D transpose
//! `[batch, rows, cols] → [batch, cols, rows]`, which runs in small square tiles instead. The
//! plain walk reads a transpose column by column, touching `rows` cache lines per output row;
//! once those lines no longer stay cached each one is fetched again for every element it holds.
//! Measured single-threaded (f32, opt-level 3, min of 7, walk → tiled): NHWC → NCHW of
//! [32, 56, 56, 64] 11.0 → 7.4 ms and of [4, 224, 224, 64] 63 → 34 ms; a 1024² transpose
//! 3.7 → 0.5 ms. With 64 or fewer input rows (NCHW → NHWC with 64 channels) the walk was faster
//! (7.6 vs 10.5 ms at 56×56), so it is kept there.

use super::walk::FastWalk;
use super::PARALLEL_THRESHOLD;
use crate::backend::reference::movement::{self as reference, check_concat, check_perm, check_slice, Walk};
use crate::backend::{PadMode, SliceAxis};
use crate::{HostData, Result, Shape};
use rayon::prelude::*;

/// Tile side in elements: 16 f32 are one cache line, and a 16×16 tile sits in registers/L1.
const TILE: usize = 16;

/// Transposes with at most this many input rows take the plain walk (see [`permute`]).
const MIN_TILED_ROWS: usize = 64;

/// Elements per parallel task of the strided walk.
const CHUNK: usize = 1 << 14;

/// Applies a generic kernel to the elements of any storage, keeping the dtype.
macro_rules! each_dtype {
    ($x:expr, $v:ident => $e:expr) => {
        match $x {
            HostData::F32($v) => HostData::F32($e),
            HostData::U8($v) => HostData::U8($e),
            HostData::I64($v) => HostData::I64($e),
            HostData::I32($v) => HostData::I32($e),
            HostData::Bool($v) => HostData::Bool($e),
            HostData::F16($v) => HostData::F16($e),
            HostData::BF16($v) => HostData::BF16($e),
        }
    };
}

/// The same permutation with size-1 axes dropped and runs of input axes that stay adjacent and
/// in order merged into one: returns the merged input dims and the permutation over them.
fn simplify(dims: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    // Renumber the non-unit input axes so that adjacency ignores the unit axes between them.
    let mut renum = vec![usize::MAX; dims.len()];
    let mut n = 0;
    for (a, &d) in dims.iter().enumerate() {
        if d != 1 {
            renum[a] = n;
            n += 1;
        }
    }
    // Runs of consecutive (renumbered) input axes, in output order.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new(); // (first renumbered axis, last, product of dims)
    for &p in perm.iter().filter(|&&p| dims[p] != 1) {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == renum[p] => {
                run.1 = renum[p];
                run.2 *= dims[p];
            }
            _ => runs.push((renum[p], renum[p], dims[p])),
        }
    }
    let mut by_input: Vec<usize> = (0..runs.len()).collect();
    by_input.sort_by_key(|&r| runs[r].0);
    let merged_dims = by_input.iter().map(|&r| runs[r].2).collect();
    let mut merged_perm = vec![0; runs.len()];
    for (pos, &r) in by_input.iter().enumerate() {
        merged_perm[r] = pos;
    }
    (merged_dims, merged_perm)
}

/// Runs `walk` over `x`, whole rows per thread.
fn par_walk<T: Copy + Send + Sync>(x: &[T], walk: &Walk) -> Vec<T> {
    let n: usize = walk.dims.iter().product();
    if n == 0 {
        return Vec::new();
    }
    let walk = FastWalk::new(walk);
    // Any element serves as the initial value: every one is overwritten.
    let mut out = vec![x[0]; n];
    let row = walk.row_len();
    if n >= PARALLEL_THRESHOLD && rayon::current_num_threads() > 1 {
        let rows_per_task = (CHUNK / row).max(1);
        out.par_chunks_mut(rows_per_task * row).enumerate().for_each(|(i, chunk)| walk.fill(x, i * rows_per_task, chunk));
    } else {
        walk.fill(x, 0, &mut out);
    }
    out
}

/// `out[b, c, r] = x[b, r, c]` for `x` of shape `[batch, rows, cols]` (the batch is implied by
/// the length).
fn batched_transpose<T: Copy + Send + Sync>(x: &[T], rows: usize, cols: usize) -> Vec<T> {
    if x.is_empty() {
        return Vec::new();
    }
    let mut out = vec![x[0]; x.len()];
    let plane = rows * cols;
    // Output rows c0..c0+nc of plane `b`: each full tile is read as TILE contiguous input runs
    // into a local buffer, then written as TILE contiguous output runs.
    let band = |b: usize, c0: usize, chunk: &mut [T]| {
        let src = &x[b * plane..(b + 1) * plane];
        let nc = chunk.len() / rows;
        let mut buf = [[x[0]; TILE]; TILE];
        for r0 in (0..rows).step_by(TILE) {
            let nr = (rows - r0).min(TILE);
            if nr == TILE && nc == TILE {
                for (i, line) in buf.iter_mut().enumerate() {
                    line.copy_from_slice(&src[(r0 + i) * cols + c0..][..TILE]);
                }
                for j in 0..TILE {
                    for (i, d) in chunk[j * rows + r0..][..TILE].iter_mut().enumerate() {
                        *d = buf[i][j];
                    }
                }
            } else {
                for j in 0..nc {
                    for i in 0..nr {
                        chunk[j * rows + r0 + i] = src[(r0 + i) * cols + c0 + j];
                    }
                }
            }
        }
    };
    // Output rows first_c.. of plane `b`, one band of TILE rows at a time.
    let bands = |b: usize, first_c: usize, rows_out: &mut [T]| {
        for (u, chunk) in rows_out.chunks_mut(TILE * rows).enumerate() {
            band(b, first_c + u * TILE, chunk);
        }
    };
    if x.len() >= PARALLEL_THRESHOLD && rayon::current_num_threads() > 1 {
        // A task takes whole bands, enough of them to outweigh scheduling.
        let task_rows = (CHUNK / rows).max(1).div_ceil(TILE) * TILE;
        out.par_chunks_mut(plane).enumerate().for_each(|(b, plane_out)| {
            plane_out.par_chunks_mut(task_rows * rows).enumerate().for_each(|(t, chunk)| bands(b, t * task_rows, chunk));
        });
    } else {
        for (b, plane_out) in out.chunks_mut(plane).enumerate() {
            bands(b, 0, plane_out);
        }
    }
    out
}

/// Permutes axes (see [`reference::permute`]): tiled for batched 2-D transposes, a parallel
/// strided walk over the merged axes otherwise.
pub(super) fn permute(x: &HostData, shape: &Shape, perm: &[usize]) -> Result<HostData> {
    check_perm("permute", perm, shape)?;
    if x.len() != shape.numel() {
        return reference::permute(x, shape, perm); // reports the mismatch
    }
    let (dims, p) = simplify(shape.dims(), perm);
    if let ([r, c], [1, 0]) | ([_, r, c], [0, 2, 1]) = (dims.as_slice(), p.as_slice()) {
        let (rows, cols) = (*r, *c);
        // With few input rows every output row reads the same few lines, which stay cached, and
        // the plain walk measured faster (see the module docs).
        if rows > MIN_TILED_ROWS {
            return Ok(each_dtype!(x, v => batched_transpose(v, rows, cols)));
        }
    }
    let walk = Walk::permute(&Shape::new(dims), &p);
    Ok(each_dtype!(x, v => par_walk(v, &walk)))
}

/// Strided slice (see [`reference::strided_slice`]), split across threads.
pub(super) fn strided_slice(x: &HostData, shape: &Shape, axes: &[SliceAxis]) -> Result<HostData> {
    check_slice(shape, axes)?;
    if x.len() != shape.numel() {
        return reference::strided_slice(x, shape, axes);
    }
    let walk = Walk::slice(shape, axes);
    Ok(each_dtype!(x, v => par_walk(v, &walk)))
}

/// Concatenation (see [`reference::concat`]); f32 outputs come from the buffer pool, since a
/// pipeline's batches are large and made again every step: fresh memory is faulted in page by
/// page each time.
pub(super) fn concat(xs: &[(&HostData, &Shape)], axis: usize) -> Result<HostData> {
    check_concat(xs, axis)?;
    let parts: Option<Vec<(&[f32], usize)>> = xs
        .iter()
        .map(|(s, sh)| match s {
            HostData::F32(v) if v.len() == sh.numel() => Some((v.as_slice(), sh.dims()[axis..].iter().product())),
            _ => None,
        })
        .collect();
    let Some(parts) = parts else {
        return reference::concat(xs, axis);
    };
    let outer: usize = xs[0].1.dims()[..axis].iter().product();
    let total: usize = parts.iter().map(|(v, _)| v.len()).sum();
    let mut out = crate::buffer_pool::for_overwrite(total);
    let mut at = 0;
    for o in 0..outer {
        for (v, chunk) in &parts {
            out[at..at + chunk].copy_from_slice(&v[o * chunk..(o + 1) * chunk]);
            at += chunk;
        }
    }
    Ok(HostData::F32(out))
}

/// Constant padding of f32 data: the output is filled with the constant, then every run of the
/// input that stays contiguous in the output (the trailing unpadded axes together with the last
/// padded one, e.g. a whole `W × C` row for `ZeroPadding2D` on NHWC) is copied in at once.
/// Other modes and dtypes run the reference.
pub(super) fn pad(x: &HostData, shape: &Shape, pads: &[(usize, usize)], mode: PadMode) -> Result<HostData> {
    let (HostData::F32(v), PadMode::Constant(fill)) = (x, mode) else {
        return reference::pad(x, shape, pads, mode);
    };
    let dims = shape.dims();
    if pads.len() != dims.len() || dims.is_empty() || v.is_empty() || pads.iter().all(|&p| p == (0, 0)) {
        return reference::pad(x, shape, pads, mode);
    }
    let out_dims: Vec<usize> = dims.iter().zip(pads).map(|(&d, &(b, a))| d + b + a).collect();
    let out_strides = Shape::new(out_dims.clone()).strides();
    // The last padded axis `k`: axes after it are copied whole with it.
    let k = pads.iter().rposition(|&p| p != (0, 0)).unwrap_or(0);
    let run = dims[k..].iter().product::<usize>();
    let mut out = crate::buffer_pool::for_overwrite(out_dims.iter().product());
    out.fill(fill as f32);
    for (r, src) in v.chunks_exact(run).enumerate() {
        // Coordinates of run `r` over axes 0..k, shifted by their leading padding.
        let (mut rem, mut off) = (r, pads[k].0 * out_strides[k]);
        for ax in (0..k).rev() {
            off += (rem % dims[ax] + pads[ax].0) * out_strides[ax];
            rem /= dims[ax];
        }
        out[off..off + run].copy_from_slice(src);
    }
    Ok(HostData::F32(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_pad_matches_reference() {
        use crate::backend::PadMode;
        type Case<'a> = (&'a [usize], &'a [(usize, usize)]);
        let cases: [Case; 5] = [
            (&[2, 5, 4, 3], &[(0, 0), (3, 2), (1, 3), (0, 0)]),
            (&[2, 5, 4, 3], &[(1, 0), (0, 0), (0, 0), (2, 1)]),
            (&[3, 7], &[(0, 2), (0, 0)]),
            (&[6], &[(4, 1)]),
            (&[1, 2, 3], &[(0, 0), (0, 0), (0, 0)]),
        ];
        for (dims, pads) in cases {
            let x = crate::testing::rand(dims, -1.0, 1.0, 7, crate::Device::Cpu);
            let shape = Shape::new(dims.to_vec());
            for mode in [PadMode::Constant(0.0), PadMode::Constant(-2.5)] {
                let got = pad(x.host_storage(), &shape, pads, mode).unwrap();
                assert_eq!(got, reference::pad(x.host_storage(), &shape, pads, mode).unwrap(), "{dims:?} {pads:?} {mode:?}");
            }
        }
    }

    #[test]
    fn axes_merge_into_a_batched_transpose() {
        // NHWC → NCHW: [N, H·W, C] → [N, C, H·W].
        assert_eq!(simplify(&[2, 5, 6, 3], &[0, 3, 1, 2]), (vec![2, 30, 3], vec![0, 2, 1]));
        // NCHW → NHWC with N = 1 drops the batch: a plain transpose.
        assert_eq!(simplify(&[1, 3, 5, 6], &[0, 2, 3, 1]), (vec![3, 30], vec![1, 0]));
        // A unit axis between two axes that stay in order does not split them.
        assert_eq!(simplify(&[4, 1, 5, 2], &[3, 0, 1, 2]), (vec![20, 2], vec![1, 0]));
        // HWIO → OIHW does not reduce to a 2-D transpose.
        assert_eq!(simplify(&[3, 3, 4, 8], &[3, 2, 0, 1]), (vec![9, 4, 8], vec![2, 1, 0]));
        assert_eq!(simplify(&[2, 3], &[0, 1]), (vec![6], vec![0]));
        assert_eq!(simplify(&[1, 1], &[1, 0]), (vec![], vec![]));
    }

    #[test]
    fn tiled_permutes_match_the_reference() {
        // Sizes off the tile grid, above and below the parallel threshold, several dtypes.
        let cases: [(&[usize], &[usize]); 8] = [
            (&[8, 70, 70], &[1, 0, 2]),       // parallel walk, unit-stride rows
            (&[5, 80, 3, 30], &[2, 0, 3, 1]), // parallel walk, strided rows
            (&[2, 40, 37, 33], &[0, 3, 1, 2]),
            (&[3, 33, 17, 5], &[0, 2, 3, 1]),
            (&[70, 45], &[1, 0]),
            (&[1, 9, 7, 65], &[0, 3, 1, 2]),
            (&[30, 30, 4, 8], &[3, 2, 0, 1]),
            (&[4, 0, 3], &[0, 2, 1]),
        ];
        for (dims, perm) in cases {
            let shape = Shape::new(dims);
            let n = shape.numel();
            let f = HostData::F32((0..n).map(|i| i as f32).collect());
            assert_eq!(permute(&f, &shape, perm).unwrap(), reference::permute(&f, &shape, perm).unwrap(), "{dims:?} {perm:?}");
            let u = HostData::U8((0..n).map(|i| (i % 251) as u8).collect());
            assert_eq!(permute(&u, &shape, perm).unwrap(), reference::permute(&u, &shape, perm).unwrap(), "{dims:?} {perm:?}");
        }
        assert!(permute(&HostData::F32(vec![0.0; 6]), &Shape::new([2, 3]), &[1, 1]).is_err());
    }

    #[test]
    fn concat_matches_the_reference() {
        let f = |dims: &[usize], start: usize| {
            let shape = Shape::new(dims.to_vec());
            (HostData::F32((start..start + shape.numel()).map(|i| i as f32).collect()), shape)
        };
        let (a, b, c) = (f(&[2, 3, 4], 0), f(&[2, 1, 4], 100), f(&[2, 5, 4], 200));
        for (parts, axis) in [(vec![&a, &b, &c], 1), (vec![&a, &a], 0), (vec![&a, &a], 2), (vec![&b], 1)] {
            let xs: Vec<_> = parts.iter().map(|(s, sh)| (s, sh)).collect();
            assert_eq!(concat(&xs, axis).unwrap(), reference::concat(&xs, axis).unwrap(), "axis {axis}");
        }
        // Shape and dtype mismatches are reported, as by the reference.
        assert!(concat(&[(&a.0, &a.1), (&b.0, &b.1)], 0).is_err());
        let u = HostData::U8(vec![0; 24]);
        assert!(concat(&[(&a.0, &a.1), (&u, &a.1)], 0).is_err());
        assert!(concat(&[], 0).is_err());
    }

    #[test]
    fn parallel_slices_match_the_reference() {
        let shape = Shape::new([6, 70, 90]); // above the parallel threshold
        let x = HostData::F32((0..shape.numel()).map(|i| i as f32).collect());
        let axes = [
            SliceAxis { start: 5, step: -2, len: 3 },
            SliceAxis { start: 1, step: 1, len: 68 },
            SliceAxis { start: 89, step: -3, len: 30 },
        ];
        assert_eq!(strided_slice(&x, &shape, &axes).unwrap(), reference::strided_slice(&x, &shape, &axes).unwrap());
        let bad = [SliceAxis { start: 0, step: 1, len: 7 }, axes[1], axes[2]];
        assert!(strided_slice(&x, &shape, &bad).is_err());
    }
}
