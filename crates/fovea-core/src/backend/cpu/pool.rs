//! Fast 2-D pooling over NHWC in f32.
//!
//! NHWC keeps the channels of one pixel contiguous, so every kernel walks the window pixel by
//! pixel and processes a whole channel row at once (loops the compiler vectorises). Large inputs
//! split across threads by output row in the forward pass and by image in the backward pass
//! (where neighbouring rows' windows overlap); each task writes a disjoint slice, so the split
//! never changes the result.
//!
//! Max pooling keeps the reference's rule: the first maximum in row-major window order wins,
//! NaN wins and stays, padding never takes part.

use super::PARALLEL_THRESHOLD;
use crate::backend::{reference, Pool2dSpec, PoolKind};
use crate::{HostData, Result};
use rayon::prelude::*;

/// The real input rows `iy` and columns `ix` of output `(oy, ox)`'s window, as ranges.
fn window(s: &Pool2dSpec, oy: usize, ox: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let clip = |o: usize, stride: usize, pad: usize, k: usize, size: usize| {
        let start = o * stride;
        (start.saturating_sub(pad)).min(size)..(start + k).saturating_sub(pad).min(size)
    };
    (clip(oy, s.stride.0, s.pad.0, s.kh, s.h), clip(ox, s.stride.1, s.pad.2, s.kw, s.w))
}

/// Runs `f(chunk_index, chunk)` over `per`-sized chunks of `out`, in parallel when the work is
/// large. Chunks are disjoint, so the split never changes the result.
fn per_chunk<T: Send>(out: &mut [T], per: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if per == 0 {
        return;
    }
    if work >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(per).enumerate().for_each(|(i, o)| f(i, o));
    } else {
        out.chunks_mut(per).enumerate().for_each(|(i, o)| f(i, o));
    }
}

/// Whether pixel indices within one image are exact in the f32 lanes of [`max_scan`].
fn fits_lanes(s: &Pool2dSpec) -> bool {
    s.h.checked_mul(s.w).is_some_and(|p| p <= 1 << 24)
}

/// For each output pixel of output row `oy` of image `xb`, the per-channel maximum and the
/// pixel index (`iy·W + ix` within the image) it came from; `emit(ox, best, idx)` consumes them.
///
/// Two passes, both plain selects that vectorise: the maximum (as [`max_row`]), then the window
/// again in reverse order, overwriting the index wherever the value equals the maximum (or both
/// are NaN) — the last overwrite is the first occurrence. Tracking value and index together in
/// one pass measured 2.5× slower. Indices are carried as f32 (exact below 2²⁴; callers check
/// `H·W` fits) because the compiler vectorises an f32 select here but kept u32 selects scalar
/// (measured ten times slower).
fn max_scan(xb: &[f32], s: &Pool2dSpec, oy: usize, mut emit: impl FnMut(usize, &[f32], &[f32])) {
    let c = s.c;
    let mut best = vec![0f32; s.out_w * c];
    let mut idx = vec![0f32; c];
    max_row(xb, s, oy, &mut best);
    for (ox, best) in best.chunks_exact(c).enumerate() {
        let (rows, cols) = window(s, oy, ox);
        // -1 survives only for a window of padding only, which the ops never build.
        idx.fill(-1.0);
        for iy in rows.rev() {
            for ix in cols.clone().rev() {
                let p = iy * s.w + ix;
                let row = &xb[p * c..][..c];
                mark_hits(&mut idx, row, best, p as f32);
            }
        }
        emit(ox, best, &idx);
    }
}

/// Sets `idx[k] = p` wherever `row[k]` equals `best[k]` (or both are NaN). Kept as its own
/// small function: inlined into the callers' closures the loop stayed scalar.
#[inline(never)]
fn mark_hits(idx: &mut [f32], row: &[f32], best: &[f32], p: f32) {
    for ((i, &v), &b) in idx.iter_mut().zip(row).zip(best) {
        let hit = (v == b) | (v.is_nan() & b.is_nan());
        *i = if hit { p } else { *i };
    }
}

/// Forward max pooling of output row `oy` of one image; value only, so a select suffices.
fn max_row(xb: &[f32], s: &Pool2dSpec, oy: usize, yrow: &mut [f32]) {
    let c = s.c;
    for (ox, acc) in yrow.chunks_exact_mut(c).enumerate() {
        let (rows, cols) = window(s, oy, ox);
        let mut first = true;
        for iy in rows {
            for ix in cols.clone() {
                let row = &xb[(iy * s.w + ix) * c..][..c];
                if first {
                    // Start from a real input so a NaN in the first pixel is kept.
                    acc.copy_from_slice(row);
                    first = false;
                    continue;
                }
                for (a, &v) in acc.iter_mut().zip(row) {
                    // Keep `a` when it is NaN or not smaller. Written with `|` and a select:
                    // a branch here mispredicts half the time on random data.
                    *a = if (*a >= v) | a.is_nan() { *a } else { v };
                }
            }
        }
        if first {
            acc.fill(f32::NEG_INFINITY); // padding only, as the reference
        }
    }
}

/// Forward average pooling of output row `oy` of one image; the divisor counts real inputs.
fn avg_row(xb: &[f32], s: &Pool2dSpec, oy: usize, yrow: &mut [f32]) {
    let c = s.c;
    for (ox, acc) in yrow.chunks_exact_mut(c).enumerate() {
        let (rows, cols) = window(s, oy, ox);
        let count = rows.len() * cols.len();
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

/// Whether `s` is 2×2 max pooling with stride 2 and no padding over few channels, the case of
/// [`max2x2_row`] and [`max2x2_grad_image`]: with fewer channels than a vector has lanes, the
/// channel-row kernels above spend their time on loop overhead (LeNet-5's 6 and 16 channels).
fn is_small_max2x2(s: &Pool2dSpec) -> bool {
    s.kind == PoolKind::Max && (s.kh, s.kw, s.stride, s.pad) == (2, 2, (2, 2), (0, 0, 0, 0)) && s.c < 16
}

/// The maximum of `a` and `v` by the forward pass's rule: NaN wins and stays, ties keep `a`.
#[inline(always)]
fn max_keep_first(a: f32, v: f32) -> f32 {
    if (a >= v) | a.is_nan() {
        a
    } else {
        v
    }
}

/// Output row `oy` of 2×2, stride-2 max pooling: each output reads its four inputs directly.
fn max2x2_row(xb: &[f32], s: &Pool2dSpec, oy: usize, yrow: &mut [f32]) {
    let (c, line) = (s.c, s.w * s.c);
    let (r0, r1) = (&xb[2 * oy * line..][..line], &xb[(2 * oy + 1) * line..][..line]);
    for (ox, out) in yrow.chunks_exact_mut(c).enumerate() {
        let i = 2 * ox * c;
        for (ch, o) in out.iter_mut().enumerate() {
            let j = i + ch;
            *o = max_keep_first(max_keep_first(max_keep_first(r0[j], r0[j + c]), r1[j]), r1[j + c]);
        }
    }
}

/// Max pooling's backward pass over one image for [`is_small_max2x2`] specs: every input of a
/// window is written (the gradient to the first input equal to the window's maximum, or the
/// first NaN, zero to the others), so only rows and columns no window covers need zeroing.
fn max2x2_grad_image(xb: &[f32], yb: &[f32], dyb: &[f32], s: &Pool2dSpec, dxb: &mut [f32]) {
    let (c, line) = (s.c, s.w * s.c);
    for oy in 0..s.out_h {
        let top = 2 * oy * line;
        for ox in 0..s.out_w {
            let o = (oy * s.out_w + ox) * c;
            for ch in 0..c {
                let (m, g) = (yb[o + ch], dyb[o + ch]);
                let at = [top + 2 * ox * c + ch, top + 2 * ox * c + c + ch, top + line + 2 * ox * c + ch, top + line + 2 * ox * c + c + ch];
                let mut pending = true;
                for i in at {
                    let v = xb[i];
                    let hit = pending & ((v == m) | (v.is_nan() & m.is_nan()));
                    dxb[i] = if hit { g } else { 0.0 };
                    pending &= !hit;
                }
            }
        }
        if s.w % 2 == 1 {
            dxb[top + (s.w - 1) * c..][..c].fill(0.0);
            dxb[top + line + (s.w - 1) * c..][..c].fill(0.0);
        }
    }
    dxb[2 * s.out_h * line..].fill(0.0);
}

pub(super) fn pool2d(x: &HostData, s: &Pool2dSpec) -> Result<HostData> {
    let x = x.as_f32("pool2d")?;
    let in_per = s.h * s.w * s.c;
    let row = s.out_w * s.c;
    // Every output is written: by the direct 2×2 path, or from a window's first input (or as
    // -inf for a padding-only window) in `max_row`, or by `avg_row`'s fill.
    let mut y = crate::buffer_pool::for_overwrite(s.n * s.out_h * row);
    if is_small_max2x2(s) {
        per_chunk(&mut y, row, x.len(), |r, yrow| max2x2_row(&x[(r / s.out_h) * in_per..][..in_per], s, r % s.out_h, yrow));
        return Ok(HostData::F32(y));
    }
    // Output rows are independent in the forward pass, so even one image spreads over threads.
    per_chunk(&mut y, row, x.len(), |r, yrow| {
        let (b, oy) = (r / s.out_h, r % s.out_h);
        let xb = &x[b * in_per..(b + 1) * in_per];
        match s.kind {
            PoolKind::Max => max_row(xb, s, oy, yrow),
            PoolKind::Avg => avg_row(xb, s, oy, yrow),
        }
    });
    Ok(HostData::F32(y))
}

/// One window pixel's share of max pooling's backward pass: where the pixel holds the window's
/// maximum `y` (or both are NaN) and no earlier pixel of the window did (`pending` is 1), it
/// receives the gradient and clears `pending` — so the first maximum in row-major order wins,
/// as in the forward pass. `pending` is an f32 mask so the channel loop vectorises.
#[inline(never)]
fn route_to_first_max(dx: &mut [f32], x: &[f32], y: &[f32], g: &[f32], pending: &mut [f32]) {
    for ((((d, &v), &m), &gv), p) in dx.iter_mut().zip(x).zip(y).zip(g).zip(pending.iter_mut()) {
        let hit = if (v == m) | (v.is_nan() & m.is_nan()) { *p } else { 0.0 };
        // A select, not `hit · g`: an infinite gradient must not reach the losers as NaN.
        *d += if hit != 0.0 { gv } else { 0.0 };
        *p -= hit;
    }
}

pub(super) fn pool2d_grad(x: &HostData, y: &HostData, dy: &HostData, s: &Pool2dSpec) -> Result<HostData> {
    let (x, y, dy) = (x.as_f32("pool2d_grad")?, y.as_f32("pool2d_grad")?, dy.as_f32("pool2d_grad")?);
    let c = s.c;
    let (in_per, out_per) = (s.h * s.w * c, s.out_h * s.out_w * c);
    if is_small_max2x2(s) {
        let mut dx = crate::buffer_pool::for_overwrite(x.len());
        per_chunk(&mut dx, in_per, x.len() + dy.len(), |b, dxb| {
            let (xb, yb, dyb) = (&x[b * in_per..][..in_per], &y[b * out_per..][..out_per], &dy[b * out_per..][..out_per]);
            max2x2_grad_image(xb, yb, dyb, s, dxb);
        });
        return Ok(HostData::F32(dx));
    }
    let mut dx = crate::buffer_pool::zeroed(x.len());
    // Windows of neighbouring output rows overlap in the input, so the backward pass splits
    // by image only.
    per_chunk(&mut dx, in_per, x.len() + dy.len(), |b, dxb| {
        let dyb = &dy[b * out_per..(b + 1) * out_per];
        match s.kind {
            PoolKind::Max => {
                let (xb, yb) = (&x[b * in_per..(b + 1) * in_per], &y[b * out_per..(b + 1) * out_per]);
                let mut pending = vec![0f32; c];
                for oy in 0..s.out_h {
                    for ox in 0..s.out_w {
                        let o = (oy * s.out_w + ox) * c;
                        let (yo, go) = (&yb[o..o + c], &dyb[o..o + c]);
                        let (rows, cols) = window(s, oy, ox);
                        pending.fill(1.0);
                        for iy in rows {
                            for ix in cols.clone() {
                                let p = (iy * s.w + ix) * c;
                                route_to_first_max(&mut dxb[p..p + c], &xb[p..p + c], yo, go, &mut pending);
                            }
                        }
                    }
                }
            }
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
    Ok(HostData::F32(dx))
}

pub(super) fn max_pool2d_argmax(x: &HostData, s: &Pool2dSpec) -> Result<(HostData, HostData)> {
    if !fits_lanes(s) {
        return reference::pool::max_pool2d_argmax(x, s);
    }
    let x = x.as_f32("max_pool2d_with_argmax")?;
    let c = s.c;
    let (in_per, row) = (s.h * s.w * c, s.out_w * c);
    // Values and indices are produced together, so pair them in one buffer split afterwards.
    let mut both = vec![(0f32, 0i64); s.n * s.out_h * row];
    per_chunk(&mut both, row, x.len(), |r, orow| {
        let (b, oy) = (r / s.out_h, r % s.out_h);
        max_scan(&x[b * in_per..(b + 1) * in_per], s, oy, |ox, best, idx| {
            for (ch, slot) in orow[ox * c..(ox + 1) * c].iter_mut().enumerate() {
                let flat = if idx[ch] >= 0.0 { ((b * s.h * s.w + idx[ch] as usize) * c + ch) as i64 } else { -1 };
                *slot = (best[ch], flat);
            }
        });
    });
    let (y, i) = both.into_iter().unzip();
    Ok((HostData::F32(y), HostData::I64(i)))
}

#[cfg(test)]
mod tests {
    use crate::backend::{reference, Pool2dSpec, PoolKind};
    use crate::ops::padding::{resolve_axis, Padding};
    use crate::testing::{assert_close, rand};
    use crate::{Device, HostData};

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
        let cases: [Case; 8] = [
            // 2×2 / stride 2 over few channels (the direct path): even, odd and large sizes.
            ([3, 8, 6, 6], (2, 2), (2, 2), Padding::Valid),
            ([2, 7, 5, 3], (2, 2), (2, 2), Padding::Valid),
            ([64, 28, 28, 6], (2, 2), (2, 2), Padding::Same),
            ([2, 7, 6, 3], (3, 3), (2, 2), Padding::Same),
            ([1, 5, 5, 4], (2, 3), (1, 2), Padding::Valid),
            ([3, 6, 7, 5], (3, 2), (2, 3), Padding::Explicit(vec![(1, 2), (1, 0)])),
            ([4, 33, 31, 64], (3, 3), (2, 2), Padding::Same),
            ([2, 4, 4, 1], (4, 4), (1, 1), Padding::Valid),
        ];
        for (seed, (dims, k, st, p)) in cases.into_iter().enumerate() {
            let mut x = rand(&dims, -2.0, 2.0, seed as u64, Device::Cpu);
            if seed < 2 {
                // Ties, NaN and -0 next to +0: the first maximum (or NaN) must win, as in the reference.
                let mut v = x.to_vec::<f32>().unwrap();
                for (i, e) in v.iter_mut().enumerate() {
                    *e = match i % 11 {
                        0 => f32::NAN,
                        3..=5 => 1.0,
                        7 => -0.0,
                        8 => 0.0,
                        _ => (*e * 2.0).round(),
                    };
                }
                x = crate::Tensor::from_vec(v, dims, Device::Cpu).unwrap();
            }
            for kind in [PoolKind::Max, PoolKind::Avg] {
                let s = spec(kind, dims, k, st, &p);
                let want = reference::pool::pool2d(x.host_storage(), &s).unwrap();
                let got = super::pool2d(x.host_storage(), &s).unwrap();
                let what = format!("{kind:?} {dims:?} forward");
                assert_close(&what, got.as_f32("t").unwrap(), want.as_f32("t").unwrap(), 1e-5, 1e-6);
                let dy = rand(&[s.n, s.out_h, s.out_w, s.c], -1.0, 1.0, 99, Device::Cpu);
                let want = reference::pool::pool2d_grad(x.host_storage(), &want, dy.host_storage(), &s).unwrap();
                let got = super::pool2d_grad(x.host_storage(), &got, dy.host_storage(), &s).unwrap();
                let what = format!("{kind:?} {dims:?} grad");
                assert_close(&what, got.as_f32("t").unwrap(), want.as_f32("t").unwrap(), 1e-5, 1e-6);
            }
            let s = spec(PoolKind::Max, dims, k, st, &p);
            let ((y, i), (ry, ri)) = (
                super::max_pool2d_argmax(x.host_storage(), &s).unwrap(),
                reference::pool::max_pool2d_argmax(x.host_storage(), &s).unwrap(),
            );
            assert_eq!(i, ri, "{dims:?} argmax");
            assert_close("argmax values", y.as_f32("t").unwrap(), ry.as_f32("t").unwrap(), 0.0, 0.0);
        }
    }

    #[test]
    fn padding_only_windows_agree_with_reference() {
        // Not reachable through the ops (they keep padding below the window size), but the
        // backends must still agree: -inf, index -1, no gradient.
        let s = spec(PoolKind::Max, [1, 2, 2, 3], (1, 1), (1, 1), &Padding::Explicit(vec![(1, 0), (0, 1)]));
        let x = rand(&[1, 2, 2, 3], -1.0, 1.0, 4, Device::Cpu);
        let (y, i) = super::max_pool2d_argmax(x.host_storage(), &s).unwrap();
        assert_eq!((y.clone(), i.clone()), reference::pool::max_pool2d_argmax(x.host_storage(), &s).unwrap());
        assert_eq!(y.as_f32("t").unwrap()[0], f32::NEG_INFINITY);
        assert_eq!(i.as_i64("t").unwrap()[..3], [-1, -1, -1]);
        assert_eq!(super::pool2d(x.host_storage(), &s).unwrap(), y);
        let dy = HostData::F32(vec![1.0; y.len()]);
        let want = reference::pool::pool2d_grad(x.host_storage(), &y, &dy, &s).unwrap();
        assert_eq!(super::pool2d_grad(x.host_storage(), &y, &dy, &s).unwrap(), want);
    }

    #[test]
    fn nan_and_ties_follow_the_reference() {
        // One channel, 2×2 window over 2×2 images: a tie (first wins), then a NaN that the later 5.0
        // cannot displace.
        let s = spec(PoolKind::Max, [2, 2, 2, 1], (2, 2), (1, 1), &Padding::Valid);
        let x = HostData::F32(vec![3.0, 1.0, 3.0, 0.0, 1.0, f32::NAN, 5.0, 2.0]);
        let (y, i) = super::max_pool2d_argmax(&x, &s).unwrap();
        let (ry, ri) = reference::pool::max_pool2d_argmax(&x, &s).unwrap();
        assert_eq!(i, HostData::I64(vec![0, 5]));
        assert_eq!(i, ri);
        let (y, ry) = (y.as_f32("t").unwrap().to_vec(), ry.as_f32("t").unwrap().to_vec());
        assert_eq!(y[0], 3.0);
        assert!(y[1].is_nan() && ry[1].is_nan());
        let fwd = super::pool2d(&x, &s).unwrap();
        assert!(fwd.as_f32("t").unwrap()[1].is_nan());
        // The gradient goes to the first maximum and the first NaN only, and an infinite
        // gradient does not turn the other pixels into NaN.
        let dy = HostData::F32(vec![2.0, f32::INFINITY]);
        let dx = super::pool2d_grad(&x, &fwd, &dy, &s).unwrap();
        assert_eq!(dx, HostData::F32(vec![2.0, 0.0, 0.0, 0.0, 0.0, f32::INFINITY, 0.0, 0.0]));
        assert_eq!(dx, reference::pool::pool2d_grad(&x, &fwd, &dy, &s).unwrap());
    }
}
