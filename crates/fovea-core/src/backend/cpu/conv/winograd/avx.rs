//! The AVX-512F kernels of [`super`]: the three tile transforms, vectorised over 16
//! channels at a time, and the register-blocked products of the transform domain.

use super::Tile;
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
unsafe fn input_tile2(x: *const f32, (row_stride, c): (usize, usize), v: *mut f32) {
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
unsafe fn output_tile2(m: *const f32, pos_stride: usize, y: *mut f32, (row_stride, c_out): (usize, usize), live: (usize, usize)) {
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
unsafe fn output_grad_tile2(dy: *const f32, (row_stride, c_out): (usize, usize), live: (usize, usize), dm: *mut f32, pos_stride: usize) {
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

/// Writes the transformed window at `x` (tap `(i, j)`, channel `ch` at
/// `x[i·row_stride + j·c + ch]`) to `v[p·c + ch]`, position `p = α·i + j`.
///
/// # Safety
/// AVX-512F must be available; every tap of the α×α window readable; `v[..α²·c]` writable.
pub(super) unsafe fn input_tile(tile: Tile, x: *const f32, strides: (usize, usize), v: *mut f32) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match tile {
            Tile::F2 => input_tile2(x, strides, v),
            Tile::F4 => input_tile4(x, strides, v),
        }
    }
}

/// Writes the live part (`live` = rows, columns, each at most `m`) of the output tile
/// `Aᵀ M A`, where position `p` of `M` is `m[p·pos_stride ..]` (`c_out` rounded up to 16
/// floats), to `y[a·row_stride + b·c_out + ch]`.
///
/// # Safety
/// AVX-512F must be available; `m` readable at `p·pos_stride + ch` for `p < α²` and `ch` up
/// to `c_out` rounded up to 16; `y` writable at every live output.
pub(super) unsafe fn output_tile(tile: Tile, m: *const f32, pos_stride: usize, y: *mut f32, strides: (usize, usize), live: (usize, usize)) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match tile {
            Tile::F2 => output_tile2(m, pos_stride, y, strides, live),
            Tile::F4 => output_tile4(m, pos_stride, y, strides, live),
        }
    }
}

/// Writes `A dY Aᵀ` of the output-gradient tile at `dy` (`dy[a·row_stride + b·c_out + ch]`;
/// outputs outside `live` count as zero) to position `p` at `dm[p·pos_stride ..]`, `c_out`
/// rounded up to 16 floats, zeros past `c_out`.
///
/// # Safety
/// AVX-512F must be available; `dy` readable at every live output; `dm` writable at
/// `p·pos_stride + ch` for `p < α²` and `ch` up to `c_out` rounded up to 16.
pub(super) unsafe fn output_grad_tile(
    tile: Tile,
    dy: *const f32,
    strides: (usize, usize),
    live: (usize, usize),
    dm: *mut f32,
    pos_stride: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match tile {
            Tile::F2 => output_grad_tile2(dy, strides, live, dm, pos_stride),
            Tile::F4 => output_grad_tile4(dy, strides, live, dm, pos_stride),
        }
    }
}

/// `Bᵀ d` of one 6-point line of F(4×4, 3×3).
#[inline]
#[target_feature(enable = "avx512f")]
fn bt6(d: [__m512; 6]) -> [__m512; 6] {
    let (two, four, five) = (_mm512_set1_ps(2.0), _mm512_set1_ps(4.0), _mm512_set1_ps(5.0));
    let a = _mm512_fnmadd_ps(four, d[2], d[4]); // d4 − 4·d2
    let b = _mm512_fnmadd_ps(four, d[1], d[3]); // d3 − 4·d1
    let c = _mm512_sub_ps(d[4], d[2]);
    let e = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
    [
        _mm512_fnmadd_ps(five, d[2], _mm512_fmadd_ps(four, d[0], d[4])),
        _mm512_add_ps(a, b),
        _mm512_sub_ps(a, b),
        _mm512_add_ps(c, e),
        _mm512_sub_ps(c, e),
        _mm512_fnmadd_ps(five, d[3], _mm512_fmadd_ps(four, d[1], d[5])),
    ]
}

/// `Aᵀ m` of one 6-point line of F(4×4, 3×3).
#[inline]
#[target_feature(enable = "avx512f")]
fn at6(m: [__m512; 6]) -> [__m512; 4] {
    let (two, four, eight) = (_mm512_set1_ps(2.0), _mm512_set1_ps(4.0), _mm512_set1_ps(8.0));
    let (p, q) = (_mm512_add_ps(m[1], m[2]), _mm512_sub_ps(m[1], m[2]));
    let (r, u) = (_mm512_add_ps(m[3], m[4]), _mm512_sub_ps(m[3], m[4]));
    [
        _mm512_add_ps(_mm512_add_ps(m[0], p), r),
        _mm512_fmadd_ps(two, u, q),
        _mm512_fmadd_ps(four, r, p),
        _mm512_add_ps(_mm512_fmadd_ps(eight, u, q), m[5]),
    ]
}

/// `A g` of one 4-point line (the adjoint of [`at6`]).
#[inline]
#[target_feature(enable = "avx512f")]
fn a6(g: [__m512; 4]) -> [__m512; 6] {
    let (two, four, eight) = (_mm512_set1_ps(2.0), _mm512_set1_ps(4.0), _mm512_set1_ps(8.0));
    let (s02, s13) = (_mm512_add_ps(g[0], g[2]), _mm512_add_ps(g[1], g[3]));
    let t = _mm512_fmadd_ps(four, g[2], g[0]); // g0 + 4·g2
    let w = _mm512_fmadd_ps(eight, g[3], _mm512_mul_ps(two, g[1])); // 2·g1 + 8·g3
    [g[0], _mm512_add_ps(s02, s13), _mm512_sub_ps(s02, s13), _mm512_add_ps(t, w), _mm512_sub_ps(t, w), g[3]]
}

/// [`input_tile`] for F(4×4, 3×3).
#[target_feature(enable = "avx512f")]
unsafe fn input_tile4(x: *const f32, (row_stride, c): (usize, usize), v: *mut f32) {
    let zero = _mm512_setzero_ps();
    for cb in (0..c).step_by(16) {
        let mask = lane_mask(c - cb);
        // Columns first: t[i][j] = (Bᵀ d)[i][j].
        let mut t = [[zero; 6]; 6];
        for j in 0..6 {
            let mut col = [zero; 6];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: a tap of the window; lanes past `c` are masked off.
                *ci = unsafe { _mm512_maskz_loadu_ps(mask, x.add(i * row_stride + j * c + cb)) };
            }
            for (row, ti) in t.iter_mut().zip(bt6(col)) {
                row[j] = ti;
            }
        }
        for (i, row) in t.into_iter().enumerate() {
            for (j, o) in bt6(row).into_iter().enumerate() {
                // SAFETY: position 6i + j of the caller's `v`.
                unsafe { _mm512_mask_storeu_ps(v.add((6 * i + j) * c + cb), mask, o) };
            }
        }
    }
}

/// [`output_tile`] for F(4×4, 3×3).
#[target_feature(enable = "avx512f")]
unsafe fn output_tile4(m: *const f32, pos_stride: usize, y: *mut f32, (row_stride, c_out): (usize, usize), live: (usize, usize)) {
    let zero = _mm512_setzero_ps();
    for cb in (0..c_out).step_by(16) {
        let mask = lane_mask(c_out - cb);
        // Columns first: z[a][j] = (Aᵀ M)[a][j].
        let mut z = [[zero; 6]; 4];
        for j in 0..6 {
            let mut col = [zero; 6];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: inside the caller's rounded-up `M` rows.
                *ci = unsafe { _mm512_loadu_ps(m.add((6 * i + j) * pos_stride + cb)) };
            }
            for (row, za) in z.iter_mut().zip(at6(col)) {
                row[j] = za;
            }
        }
        for (a, row) in z.into_iter().enumerate().take(live.0) {
            for (b, o) in at6(row).into_iter().enumerate().take(live.1) {
                // SAFETY: a live output, writable per the caller.
                unsafe { _mm512_mask_storeu_ps(y.add(a * row_stride + b * c_out + cb), mask, o) };
            }
        }
    }
}

/// [`output_grad_tile`] for F(4×4, 3×3).
#[target_feature(enable = "avx512f")]
unsafe fn output_grad_tile4(dy: *const f32, (row_stride, c_out): (usize, usize), live: (usize, usize), dm: *mut f32, pos_stride: usize) {
    let zero = _mm512_setzero_ps();
    for cb in (0..c_out).step_by(16) {
        let mask = lane_mask(c_out - cb);
        // Columns first: z[i][b] = (A dY)[i][b].
        let mut z = [[zero; 4]; 6];
        for b in 0..4 {
            let mut col = [zero; 4];
            for (a, ca) in col.iter_mut().enumerate().take(live.0) {
                if b < live.1 {
                    // SAFETY: a live output; lanes past `c_out` are masked off (zero).
                    *ca = unsafe { _mm512_maskz_loadu_ps(mask, dy.add(a * row_stride + b * c_out + cb)) };
                }
            }
            for (row, zi) in z.iter_mut().zip(a6(col)) {
                row[b] = zi;
            }
        }
        for (i, row) in z.into_iter().enumerate() {
            for (j, o) in a6(row).into_iter().enumerate() {
                // SAFETY: inside the caller's rounded-up `dM` rows.
                unsafe { _mm512_storeu_ps(dm.add((6 * i + j) * pos_stride + cb), o) };
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

/// `dst = Σ k · row` over `(row, k)` pairs, in the given order (`dst` zero for none): a row of
/// the transformed filter `U` from the filter's tap rows.
///
/// # Safety
/// AVX-512F must be available.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn weighted_sum(dst: &mut [f32], rows: &[(&[f32], f32)]) {
    match rows.split_first() {
        None => dst.fill(0.0),
        Some((&(first, k), rest)) => {
            dst.iter_mut().zip(first).for_each(|(d, g)| *d = k * g);
            for &(row, k) in rest {
                dst.iter_mut().zip(row).for_each(|(d, g)| *d += k * g);
            }
        }
    }
}
