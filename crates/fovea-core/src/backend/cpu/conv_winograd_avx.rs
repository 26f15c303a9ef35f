//! The AVX-512F kernels of [`super`]: the three tile transforms, vectorised over 16
//! channels at a time, and the register-blocked products of the transform domain.

use std::arch::x86_64::*;

/// The lane mask of a 16-lane block with `lanes` (≥ 1) live lanes.
fn lane_mask(lanes: usize) -> u16 {
    if lanes >= 16 {
        u16::MAX
    } else {
        (1u16 << lanes) - 1
    }
}

/// Writes `Bᵀ d B` of the 4×4 window at `x` (tap `(i, j)`, channel `ch` at
/// `x[i·row_stride + j·c + ch]`) to `v[p·c + ch]`, position `p = 4i + j`.
///
/// # Safety
/// AVX-512F must be available; every tap named above readable and `v[..16·c]` writable.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn input_tile(x: *const f32, (row_stride, c): (usize, usize), v: *mut f32) {
    let zero = _mm512_setzero_ps();
    for cb in (0..c).step_by(16) {
        let mask = lane_mask(c - cb);
        let mut d = [zero; 16];
        for (k, dk) in d.iter_mut().enumerate() {
            // SAFETY: a tap of the window; lanes past `c` are masked off.
            *dk = unsafe { _mm512_maskz_loadu_ps(mask, x.add((k / 4) * row_stride + (k % 4) * c + cb)) };
        }
        // Bᵀ d: rows (d0 − d2, d1 + d2, d2 − d1, d1 − d3), per column.
        let mut t = [zero; 16];
        for j in 0..4 {
            t[j] = _mm512_sub_ps(d[j], d[8 + j]);
            t[4 + j] = _mm512_add_ps(d[4 + j], d[8 + j]);
            t[8 + j] = _mm512_sub_ps(d[8 + j], d[4 + j]);
            t[12 + j] = _mm512_sub_ps(d[4 + j], d[12 + j]);
        }
        // (Bᵀ d) B: the same combination of columns, per row.
        for i in 0..4 {
            let r = 4 * i;
            let out = [
                _mm512_sub_ps(t[r], t[r + 2]),
                _mm512_add_ps(t[r + 1], t[r + 2]),
                _mm512_sub_ps(t[r + 2], t[r + 1]),
                _mm512_sub_ps(t[r + 1], t[r + 3]),
            ];
            for (j, o) in out.into_iter().enumerate() {
                // SAFETY: the caller guarantees `v` for every position and live channel.
                unsafe { _mm512_mask_storeu_ps(v.add((r + j) * c + cb), mask, o) };
            }
        }
    }
}

/// Writes the live part (`live` = rows, columns, each 1 or 2) of the 2×2 output tile
/// `Aᵀ M A`, where position `p` of `M` is `m[p·pos_stride ..]` (`c_out` rounded up to 16
/// floats), to `y[a·row_stride + b·c_out + ch]`.
///
/// # Safety
/// AVX-512F must be available; `m` readable at `p·pos_stride + ch` for `p < 16` and `ch` up
/// to `c_out` rounded up to 16; `y` writable at every live output.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn output_tile(m: *const f32, pos_stride: usize, y: *mut f32, (row_stride, c_out): (usize, usize), live: (usize, usize)) {
    let zero = _mm512_setzero_ps();
    for cb in (0..c_out).step_by(16) {
        let mask = lane_mask(c_out - cb);
        let mut v = [zero; 16];
        for (p, vp) in v.iter_mut().enumerate() {
            // SAFETY: inside the caller's rounded-up `M` rows.
            *vp = unsafe { _mm512_loadu_ps(m.add(p * pos_stride + cb)) };
        }
        // Aᵀ M: rows (m0 + m1 + m2, m1 − m2 − m3), per column.
        let mut z = [zero; 8];
        for j in 0..4 {
            z[j] = _mm512_add_ps(_mm512_add_ps(v[j], v[4 + j]), v[8 + j]);
            z[4 + j] = _mm512_sub_ps(_mm512_sub_ps(v[4 + j], v[8 + j]), v[12 + j]);
        }
        for a in 0..live.0 {
            let r = 4 * a;
            let out = [_mm512_add_ps(_mm512_add_ps(z[r], z[r + 1]), z[r + 2]), _mm512_sub_ps(_mm512_sub_ps(z[r + 1], z[r + 2]), z[r + 3])];
            for (b, o) in out.into_iter().enumerate().take(live.1) {
                // SAFETY: a live output, writable per the caller.
                unsafe {
                    if mask == u16::MAX {
                        _mm512_storeu_ps(y.add(a * row_stride + b * c_out + cb), o)
                    } else {
                        _mm512_mask_storeu_ps(y.add(a * row_stride + b * c_out + cb), mask, o)
                    }
                };
            }
        }
    }
}

/// Writes `A dY Aᵀ` of the 2×2 output-gradient tile at `dy` (`dy[a·row_stride + b·c_out +
/// ch]`; outputs outside `live` count as zero) to position `p` at `dm[p·pos_stride ..]`,
/// `c_out` rounded up to 16 floats, zeros past `c_out`.
///
/// # Safety
/// AVX-512F must be available; `dy` readable at every live output; `dm` writable at
/// `p·pos_stride + ch` for `p < 16` and `ch` up to `c_out` rounded up to 16.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn output_grad_tile(
    dy: *const f32,
    (row_stride, c_out): (usize, usize),
    live: (usize, usize),
    dm: *mut f32,
    pos_stride: usize,
) {
    let zero = _mm512_setzero_ps();
    for cb in (0..c_out).step_by(16) {
        let mask = lane_mask(c_out - cb);
        let mut g = [zero; 4];
        for a in 0..live.0 {
            for b in 0..live.1 {
                // SAFETY: a live output; lanes past `c_out` are masked off (zero).
                g[2 * a + b] = unsafe { _mm512_maskz_loadu_ps(mask, dy.add(a * row_stride + b * c_out + cb)) };
            }
        }
        // A dY: rows (g0, g0 + g1, g0 − g1, −g1), per column.
        let mut z = [zero; 8];
        for b in 0..2 {
            z[b] = g[b];
            z[2 + b] = _mm512_add_ps(g[b], g[2 + b]);
            z[4 + b] = _mm512_sub_ps(g[b], g[2 + b]);
            z[6 + b] = _mm512_sub_ps(zero, g[2 + b]);
        }
        for i in 0..4 {
            let (z0, z1) = (z[2 * i], z[2 * i + 1]);
            let out = [z0, _mm512_add_ps(z0, z1), _mm512_sub_ps(z0, z1), _mm512_sub_ps(zero, z1)];
            for (j, o) in out.into_iter().enumerate() {
                // SAFETY: inside the caller's rounded-up `dM` rows.
                unsafe { _mm512_storeu_ps(dm.add((4 * i + j) * pos_stride + cb), o) };
            }
        }
    }
}

/// Calls `$f::<R, NB>` for run-time `r ≤ MAX_R[nb − 1]`, `nb ≤ 4`.
macro_rules! dispatch {
    ($f:ident, $r:expr, $nb:expr, $args:tt) => {
        match $nb {
            1 => dispatch!(@r $f, 1, $r, $args, [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24]),
            2 => dispatch!(@r $f, 2, $r, $args, [1 2 3 4 5 6 7 8 9 10 11 12]),
            3 => dispatch!(@r $f, 3, $r, $args, [1 2 3 4 5 6 7 8]),
            4 => dispatch!(@r $f, 4, $r, $args, [1 2 3 4 5 6]),
            _ => unreachable!("at most four column blocks"),
        }
    };
    (@r $f:ident, $nb:literal, $r:expr, $args:tt, [$($rr:literal)*]) => {
        match $r {
            $($rr => $f::<$rr, $nb> $args,)*
            _ => unreachable!("register block too large"),
        }
    };
}

/// `C (+)= A · B` on an `r × 16·nb` block: `A[i][kk] = a[i·a_rs + kk·a_ks]`,
/// `B[kk][q] = b[kk·b_rs + q]`, `C[i][q] = c[i·c_rs + q]`, `kk < k`.
///
/// # Safety
/// AVX-512F must be available, `r ≤ super::MAX_R[nb − 1]`, and every element named above
/// must be in bounds.
pub(super) unsafe fn product_block(
    r: usize,
    nb: usize,
    k: usize,
    (a, a_rs, a_ks): (*const f32, usize, usize),
    (b, b_rs): (*const f32, usize),
    (c, c_rs): (*mut f32, usize),
    accumulate: bool,
) {
    // SAFETY: forwarded from the caller.
    unsafe { dispatch!(product_kernel, r, nb, (k, a, a_rs, a_ks, b, b_rs, c, c_rs, accumulate)) }
}

#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn product_kernel<const R: usize, const NB: usize>(
    k: usize,
    a: *const f32,
    a_rs: usize,
    a_ks: usize,
    b: *const f32,
    b_rs: usize,
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); NB]; R];
    if accumulate {
        for (i, row) in acc.iter_mut().enumerate() {
            for (q, v) in row.iter_mut().enumerate() {
                // SAFETY: in bounds per the caller.
                *v = unsafe { _mm512_loadu_ps(c.add(i * c_rs + 16 * q)) };
            }
        }
    }
    let (mut a_k, mut b_k) = (a, b);
    for _ in 0..k {
        let mut bv = [_mm512_setzero_ps(); NB];
        for (q, v) in bv.iter_mut().enumerate() {
            // SAFETY: in bounds per the caller.
            *v = unsafe { _mm512_loadu_ps(b_k.add(16 * q)) };
        }
        for (i, row) in acc.iter_mut().enumerate() {
            // SAFETY: in bounds per the caller.
            let av = _mm512_set1_ps(unsafe { *a_k.add(i * a_rs) });
            for q in 0..NB {
                row[q] = _mm512_fmadd_ps(av, bv[q], row[q]);
            }
        }
        // SAFETY: advancing within (or one step past the end of) the caller's rows.
        unsafe {
            a_k = a_k.add(a_ks);
            b_k = b_k.add(b_rs);
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (q, v) in row.iter().enumerate() {
            // SAFETY: in bounds per the caller.
            unsafe { _mm512_storeu_ps(c.add(i * c_rs + 16 * q), *v) };
        }
    }
}
