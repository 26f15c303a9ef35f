//! Fast 2-D pooling over NHWC in f32.
//!
//! NHWC keeps the channels of one pixel contiguous, so every kernel walks the window pixel by
//! pixel and processes a whole channel row at once (loops the compiler vectorises). Each batch
//! image is independent — forward and backward write disjoint slices — so large inputs split
//! across threads by image with no effect on the result.
//!
//! Max pooling keeps the reference's rule: the first maximum in row-major window order wins,
//! NaN wins and stays, padding never takes part.

use super::PARALLEL_THRESHOLD;
use crate::backend::{Pool2dSpec, PoolKind};
use crate::{Result, Storage};
use rayon::prelude::*;

/// The real input rows `iy` and columns `ix` of output `(oy, ox)`'s window, as ranges.
fn window(s: &Pool2dSpec, oy: usize, ox: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let clip = |o: usize, stride: usize, pad: usize, k: usize, size: usize| {
        let start = o * stride;
        (start.saturating_sub(pad)).min(size)..(start + k).saturating_sub(pad).min(size)
    };
    (clip(oy, s.stride.0, s.pad.0, s.kh, s.h), clip(ox, s.stride.1, s.pad.2, s.kw, s.w))
}

/// Runs `f(image_index, out_chunk)` for each batch image, in parallel when the work is large.
fn per_image<T: Send>(out: &mut [T], per: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if per == 0 {
        return;
    }
    if work >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(per).enumerate().for_each(|(b, o)| f(b, o));
    } else {
        out.chunks_mut(per).enumerate().for_each(|(b, o)| f(b, o));
    }
}

/// For each output pixel of image `xb`, the per-channel maximum and the pixel index (`iy·W + ix`
/// within the image) it came from; `emit(out_pixel, best, idx)` consumes them.
fn max_scan(xb: &[f32], s: &Pool2dSpec, mut emit: impl FnMut(usize, &[f32], &[usize])) {
    let c = s.c;
    let mut best = vec![0f32; c];
    let mut idx = vec![0usize; c];
    for oy in 0..s.out_h {
        for ox in 0..s.out_w {
            let (rows, cols) = window(s, oy, ox);
            let mut first = true;
            for iy in rows {
                for ix in cols.clone() {
                    let p = iy * s.w + ix;
                    let row = &xb[p * c..(p + 1) * c];
                    if first {
                        best.copy_from_slice(row);
                        idx.fill(p);
                        first = false;
                        continue;
                    }
                    for ((b, i), &v) in best.iter_mut().zip(idx.iter_mut()).zip(row) {
                        if !b.is_nan() && (v.is_nan() || v > *b) {
                            *b = v;
                            *i = p;
                        }
                    }
                }
            }
            emit(oy * s.out_w + ox, &best, &idx);
        }
    }
}

/// Forward max pooling of one image; value only, so a branch-free select suffices.
fn max_image(xb: &[f32], s: &Pool2dSpec, yb: &mut [f32]) {
    let c = s.c;
    for oy in 0..s.out_h {
        for ox in 0..s.out_w {
            let (rows, cols) = window(s, oy, ox);
            let acc = &mut yb[(oy * s.out_w + ox) * c..][..c];
            acc.fill(f32::NEG_INFINITY);
            let mut first = true;
            for iy in rows {
                for ix in cols.clone() {
                    let row = &xb[(iy * s.w + ix) * c..][..c];
                    if first {
                        // Start from a real input so an all-(-inf) window still yields -inf
                        // and a NaN in the first pixel is kept.
                        acc.copy_from_slice(row);
                        first = false;
                        continue;
                    }
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a = if !a.is_nan() && (v.is_nan() || v > *a) { v } else { *a };
                    }
                }
            }
        }
    }
}

/// Forward average pooling of one image; the divisor counts real inputs only.
fn avg_image(xb: &[f32], s: &Pool2dSpec, yb: &mut [f32]) {
    let c = s.c;
    for oy in 0..s.out_h {
        for ox in 0..s.out_w {
            let (rows, cols) = window(s, oy, ox);
            let count = rows.len() * cols.len();
            let acc = &mut yb[(oy * s.out_w + ox) * c..][..c];
            acc.fill(0.0);
            for iy in rows {
                for ix in cols.clone() {
                    for (a, &v) in acc.iter_mut().zip(&xb[(iy * s.w + ix) * c..][..c]) {
                        *a += v;
                    }
                }
            }
            let inv = 1.0 / count.max(1) as f32;
            acc.iter_mut().for_each(|a| *a *= inv);
        }
    }
}

pub(super) fn pool2d(x: &Storage, s: &Pool2dSpec) -> Result<Storage> {
    let x = x.as_f32("pool2d")?;
    let (in_per, out_per) = (s.h * s.w * s.c, s.out_h * s.out_w * s.c);
    let mut y = vec![0f32; s.n * out_per];
    per_image(&mut y, out_per, x.len(), |b, yb| {
        let xb = &x[b * in_per..(b + 1) * in_per];
        match s.kind {
            PoolKind::Max => max_image(xb, s, yb),
            PoolKind::Avg => avg_image(xb, s, yb),
        }
    });
    Ok(Storage::F32(y))
}

pub(super) fn pool2d_grad(x: &Storage, _y: &Storage, dy: &Storage, s: &Pool2dSpec) -> Result<Storage> {
    let (x, dy) = (x.as_f32("pool2d_grad")?, dy.as_f32("pool2d_grad")?);
    let c = s.c;
    let (in_per, out_per) = (s.h * s.w * c, s.out_h * s.out_w * c);
    let mut dx = vec![0f32; x.len()];
    per_image(&mut dx, in_per, x.len() + dy.len(), |b, dxb| {
        let dyb = &dy[b * out_per..(b + 1) * out_per];
        match s.kind {
            PoolKind::Max => max_scan(&x[b * in_per..(b + 1) * in_per], s, |o, _, idx| {
                for (ch, (&p, &g)) in idx.iter().zip(&dyb[o * c..(o + 1) * c]).enumerate() {
                    dxb[p * c + ch] += g;
                }
            }),
            PoolKind::Avg => {
                for oy in 0..s.out_h {
                    for ox in 0..s.out_w {
                        let (rows, cols) = window(s, oy, ox);
                        let inv = 1.0 / (rows.len() * cols.len()).max(1) as f32;
                        let g = &dyb[(oy * s.out_w + ox) * c..][..c];
                        for iy in rows {
                            for ix in cols.clone() {
                                for (d, &gv) in dxb[(iy * s.w + ix) * c..][..c].iter_mut().zip(g) {
                                    *d += gv * inv;
                                }
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(Storage::F32(dx))
}

pub(super) fn max_pool2d_argmax(x: &Storage, s: &Pool2dSpec) -> Result<(Storage, Storage)> {
    let x = x.as_f32("max_pool2d_with_argmax")?;
    let c = s.c;
    let (in_per, out_per) = (s.h * s.w * c, s.out_h * s.out_w * c);
    // Values and indices are produced together, so pair them in one buffer split afterwards.
    let mut both = vec![(0f32, 0i64); s.n * out_per];
    per_image(&mut both, out_per, x.len(), |b, ob| {
        max_scan(&x[b * in_per..(b + 1) * in_per], s, |o, best, idx| {
            for (ch, slot) in ob[o * c..(o + 1) * c].iter_mut().enumerate() {
                *slot = (best[ch], ((b * s.h * s.w + idx[ch]) * c + ch) as i64);
            }
        });
    });
    let (y, i) = both.into_iter().unzip();
    Ok((Storage::F32(y), Storage::I64(i)))
}

#[cfg(test)]
mod tests {
    use crate::backend::{reference, Pool2dSpec, PoolKind};
    use crate::ops::padding::{resolve_axis, Padding};
    use crate::testing::{assert_close, rand};
    use crate::{Device, Storage};

    fn spec(kind: PoolKind, dims: [usize; 4], k: (usize, usize), st: (usize, usize), p: &Padding) -> Pool2dSpec {
        let ay = resolve_axis("t", p, 0, dims[1], k.0, st.0, 1).unwrap();
        let ax = resolve_axis("t", p, 1, dims[2], k.1, st.1, 1).unwrap();
        Pool2dSpec {
            kind,
            n: dims[0],
            h: dims[1],
            w: dims[2],
            c: dims[3],
            kh: k.0,
            kw: k.1,
            stride: st,
            pad: (ay.pad_before, ay.pad_after, ax.pad_before, ax.pad_after),
            out_h: ay.out,
            out_w: ax.out,
        }
    }

    #[test]
    fn cpu_pooling_matches_reference() {
        // The large case crosses the parallel threshold; the odd sizes exercise clipped windows.
        type Case = ([usize; 4], (usize, usize), (usize, usize), Padding);
        let cases: [Case; 5] = [
            ([2, 7, 6, 3], (3, 3), (2, 2), Padding::Same),
            ([1, 5, 5, 4], (2, 3), (1, 2), Padding::Valid),
            ([3, 6, 7, 5], (3, 2), (2, 3), Padding::Explicit(vec![(1, 2), (1, 0)])),
            ([4, 33, 31, 64], (3, 3), (2, 2), Padding::Same),
            ([2, 4, 4, 1], (4, 4), (1, 1), Padding::Valid),
        ];
        for (seed, (dims, k, st, p)) in cases.into_iter().enumerate() {
            let x = rand(&dims, -2.0, 2.0, seed as u64, Device::Cpu);
            for kind in [PoolKind::Max, PoolKind::Avg] {
                let s = spec(kind, dims, k, st, &p);
                let want = reference::pool::pool2d(x.storage(), &s).unwrap();
                let got = super::pool2d(x.storage(), &s).unwrap();
                let what = format!("{kind:?} {dims:?} forward");
                assert_close(&what, got.as_f32("t").unwrap(), want.as_f32("t").unwrap(), 1e-5, 1e-6);
                let dy = rand(&[s.n, s.out_h, s.out_w, s.c], -1.0, 1.0, 99, Device::Cpu);
                let want = reference::pool::pool2d_grad(x.storage(), &want, dy.storage(), &s).unwrap();
                let got = super::pool2d_grad(x.storage(), &got, dy.storage(), &s).unwrap();
                let what = format!("{kind:?} {dims:?} grad");
                assert_close(&what, got.as_f32("t").unwrap(), want.as_f32("t").unwrap(), 1e-5, 1e-6);
            }
            let s = spec(PoolKind::Max, dims, k, st, &p);
            assert_eq!(super::max_pool2d_argmax(x.storage(), &s).unwrap(), reference::pool::max_pool2d_argmax(x.storage(), &s).unwrap());
        }
    }

    #[test]
    fn nan_and_ties_follow_the_reference() {
        // One channel, 2×2 window over 2×2 images: a tie (first wins), then a NaN that the later 5.0
        // cannot displace.
        let s = spec(PoolKind::Max, [2, 2, 2, 1], (2, 2), (1, 1), &Padding::Valid);
        let x = Storage::F32(vec![3.0, 1.0, 3.0, 0.0, 1.0, f32::NAN, 5.0, 2.0]);
        let (y, i) = super::max_pool2d_argmax(&x, &s).unwrap();
        let (ry, ri) = reference::pool::max_pool2d_argmax(&x, &s).unwrap();
        assert_eq!(i, Storage::I64(vec![0, 5]));
        assert_eq!(i, ri);
        let (y, ry) = (y.as_f32("t").unwrap().to_vec(), ry.as_f32("t").unwrap().to_vec());
        assert_eq!(y[0], 3.0);
        assert!(y[1].is_nan() && ry[1].is_nan());
        let fwd = super::pool2d(&x, &s).unwrap();
        assert!(fwd.as_f32("t").unwrap()[1].is_nan());
    }
}
