#![cfg(target_arch = "x86_64")]
//! The AVX-512 pieces of the blocked sgemm: a 14×32 register-blocked microkernel and the two
//! packing routines that lay `A` and `B` out in the order it reads them.
//!
//! The microkernel keeps a 14×32 tile of `C` in 28 zmm accumulators; every `k` step loads
//! one 32-wide row of the packed `B` panel (two zmm) and broadcasts each of the 14 `A`
//! values of that step against it (28 FMAs per 2 loads + 14 broadcasts). Partial tiles use
//! the same arithmetic on zero-padded panels and store through masks, so an element's sum
//! is the same whether it sits in a full or a partial tile.
//!
//! Everything here is `unsafe` and must only run after `is_x86_feature_detected!("avx512f")`.

use std::arch::x86_64::*;

/// Rows of the microkernel tile (one broadcast each per `k` step).
pub(super) const MR: usize = 14;
/// Columns of the microkernel tile (two zmm registers).
pub(super) const NR: usize = 32;

const _: () = assert!(MR == 14, "the rows! macro unrolls exactly 14 rows");

/// A strided read-only matrix: element `(r, c)` at `ptr + r·rs + c·cs`.
#[derive(Clone, Copy)]
pub(super) struct Strided {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

/// `C[0..mr, 0..nr] (+)= Ã · B̃` over `kc` steps, `Ã` a packed `MR`-row panel (`MR` values
/// per step) and `B̃` a packed `NR`-column panel (`NR` values per step).
///
/// With `overwrite` the old `C` is never read (it may hold garbage); otherwise the sum is
/// added to it.
///
/// # Safety
/// The CPU supports AVX-512F; `a` holds `kc·MR` and `b` `kc·NR` readable floats; `c` is
/// valid for writes (and reads unless `overwrite`) at `c + i·c_rs + j` for `i < mr ≤ MR`,
/// `j < nr ≤ NR`, and no other thread touches those elements meanwhile.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)] // the BLIS microkernel signature
pub(super) unsafe fn kernel(kc: usize, a: *const f32, b: *const f32, c: *mut f32, c_rs: usize, mr: usize, nr: usize, overwrite: bool) {
    // Start fetching the C tile now: it is read only after the k loop, and from L3 or memory
    // its misses would stall the store phase.
    rows!(I => {
        if I < mr {
            let cp = c.wrapping_add(I * c_rs);
            _mm_prefetch::<_MM_HINT_T0>(cp as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(cp.wrapping_add(NR - 1) as *const i8);
        }
    });
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (mut ap, mut bp) = (a, b);
    for _ in 0..kc {
        // SAFETY: step `p < kc` reads `b[p·NR .. p·NR + 32]` and `a[p·MR .. p·MR + 14]`,
        // inside the panels the caller promises.
        unsafe {
            let b0 = _mm512_loadu_ps(bp);
            let b1 = _mm512_loadu_ps(bp.add(16));
            rows!(I => {
                let av = _mm512_set1_ps(*ap.add(I));
                acc[I][0] = _mm512_fmadd_ps(av, b0, acc[I][0]);
                acc[I][1] = _mm512_fmadd_ps(av, b1, acc[I][1]);
            });
            ap = ap.add(MR);
            bp = bp.add(NR);
        }
    }
    if mr == MR && nr == NR {
        rows!(I => {
            // SAFETY: a full tile: row `I < MR = mr`, columns `0..32 = nr` are in bounds.
            unsafe {
                let cp = c.add(I * c_rs);
                if overwrite {
                    _mm512_storeu_ps(cp, acc[I][0]);
                    _mm512_storeu_ps(cp.add(16), acc[I][1]);
                } else {
                    _mm512_storeu_ps(cp, _mm512_add_ps(_mm512_loadu_ps(cp), acc[I][0]));
                    _mm512_storeu_ps(cp.add(16), _mm512_add_ps(_mm512_loadu_ps(cp.add(16)), acc[I][1]));
                }
            }
        });
    } else {
        let m0: __mmask16 = if nr >= 16 { 0xFFFF } else { (1u16 << nr) - 1 };
        let m1: __mmask16 = if nr >= 32 {
            0xFFFF
        } else if nr > 16 {
            (1u16 << (nr - 16)) - 1
        } else {
            0
        };
        rows!(I => {
            if I < mr {
                // SAFETY: row `I < mr`; masked loads and stores touch only lanes `j < nr`
                // (masked-off lanes are neither read nor written, so they may lie outside `c`).
                unsafe {
                    let cp = c.add(I * c_rs);
                    let (mut v0, mut v1) = (acc[I][0], acc[I][1]);
                    if !overwrite {
                        v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cp), v0);
                        v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cp.wrapping_add(16)), v1);
                    }
                    _mm512_mask_storeu_ps(cp, m0, v0);
                    _mm512_mask_storeu_ps(cp.wrapping_add(16), m1, v1);
                }
            }
        });
    }
}

/// Packs rows `0..mc`, columns `0..kc` of `a` into `MR`-row panels: panel `r` holds, for each
/// step `p`, the `MR` values `a(r·MR + i, p)`, zero past row `mc`.
///
/// # Safety
/// `a` is readable at every `(i, p)` with `i < mc`, `p < kc`; `dst` holds
/// `mc.div_ceil(MR)·kc·MR` writable floats.
pub(super) unsafe fn pack_a(mc: usize, kc: usize, a: Strided, dst: *mut f32) {
    for r in 0..mc.div_ceil(MR) {
        let rows = MR.min(mc - r * MR);
        // SAFETY: the panel `r` occupies `dst[r·kc·MR .. (r+1)·kc·MR]`, inside `dst`; source
        // indices have `i < rows` (so `r·MR + i < mc`) and `p < kc`.
        unsafe {
            let panel = dst.add(r * kc * MR);
            let src = a.ptr.add(r * MR * a.rs);
            if a.rs == 1 {
                // Columns of the panel are contiguous in the source (a transposed operand).
                for p in 0..kc {
                    let s = src.add(p * a.cs);
                    let d = panel.add(p * MR);
                    for i in 0..rows {
                        *d.add(i) = *s.add(i);
                    }
                    for i in rows..MR {
                        *d.add(i) = 0.0;
                    }
                }
            } else {
                for i in 0..rows {
                    let s = src.add(i * a.rs);
                    for p in 0..kc {
                        *panel.add(p * MR + i) = *s.add(p * a.cs);
                    }
                }
                for i in rows..MR {
                    for p in 0..kc {
                        *panel.add(p * MR + i) = 0.0;
                    }
                }
            }
        }
    }
}

/// Packs rows `0..kc`, columns `0..cols` (`cols ≤ NR`) of `src` (element `(p, j)` at
/// `src + p·rs + j·cs`) into one `NR`-column panel: for each step `p`, the `NR` values
/// `b(p, j)`, zero past column `cols`.
///
/// # Safety
/// `src` is readable at `p·rs + j·cs` for `p < kc`, `j < cols`; `dst` holds `kc·NR` floats.
pub(super) unsafe fn pack_b_panel(kc: usize, cols: usize, src: *const f32, rs: usize, cs: usize, dst: *mut f32) {
    // SAFETY: indices stay below `kc` rows and `cols` columns of the source and below
    // `kc·NR` in `dst`, as the caller promises.
    unsafe {
        if cs == 1 {
            // Rows of the panel are contiguous in the source (a plain row-major operand).
            for p in 0..kc {
                let s = src.add(p * rs);
                let d = dst.add(p * NR);
                std::ptr::copy_nonoverlapping(s, d, cols);
                for j in cols..NR {
                    *d.add(j) = 0.0;
                }
            }
        } else {
            for j in 0..cols {
                let s = src.add(j * cs);
                for p in 0..kc {
                    *dst.add(p * NR + j) = *s.add(p * rs);
                }
            }
            for j in cols..NR {
                for p in 0..kc {
                    *dst.add(p * NR + j) = 0.0;
                }
            }
        }
    }
}
