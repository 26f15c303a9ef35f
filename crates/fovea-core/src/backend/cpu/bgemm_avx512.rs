#![cfg(target_arch = "x86_64")]
//! A bf16 matrix product on AVX512-BF16: `C (f32) (+)= A (bf16) · B (bf16)`, for mixed
//! precision's matrix products and convolutions.
//!
//! `vdpbf16ps` multiplies pairs of bf16 values and adds both products to one f32 lane, so the
//! operands are laid out in pairs along `k`: a packed `B` panel holds, for each pair `p` and
//! each of its 32 columns `j`, `(b[2p][j], b[2p+1][j])`; a packed `A` block holds, for each
//! pair, the 14 rows' `(a[r][2p], a[r][2p+1])` as one 32-bit word to broadcast. The microkernel
//! keeps a 14×32 tile of `C` in 28 zmm accumulators (as the f32 kernel does): per pair, two
//! loads of `B`, 14 broadcasts and 28 `vdpbf16ps`, twice the multiply-adds of an f32 FMA step.
//! Products of bf16 values are exact in f32, so the only rounding is the f32 accumulation.
//! Odd `k`, partial row blocks and partial column panels are zero-padded, and partial tiles
//! are stored through masks.
//!
//! Everything here must only run after [`available`] says so.

use half::bf16;
use std::arch::x86_64::*;

/// Rows of the microkernel tile.
const MR: usize = 14;
/// Columns of the microkernel tile (two zmm registers).
const NR: usize = 32;

/// Whether this CPU runs the kernel (AVX-512F and AVX512-BF16, detected once by std).
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
}

const _: () = assert!(MR == 14, "the rows! macro unrolls exactly 14 rows");

/// `B` (`k×n`) packed into panels of 32 columns of bf16 pairs.
pub(crate) struct PackedB {
    data: Vec<u16>,
    pairs: usize,
    n: usize,
}

impl PackedB {
    /// Packs `B` whose element `(r, c)` is `b[r·rs + c·cs]`.
    pub(crate) fn new(b: &[bf16], k: usize, n: usize, rs: usize, cs: usize) -> PackedB {
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let mut data = vec![0u16; panels * pairs * 2 * NR];
        for (jb, panel) in data.chunks_exact_mut(pairs * 2 * NR).enumerate() {
            let cols = NR.min(n - jb * NR);
            for (p, step) in panel.chunks_exact_mut(2 * NR).enumerate() {
                for t in 0..2 {
                    let r = 2 * p + t;
                    if r >= k {
                        continue;
                    }
                    for j in 0..cols {
                        step[2 * j + t] = b[r * rs + (jb * NR + j) * cs].to_bits();
                    }
                }
            }
        }
        PackedB { data, pairs, n }
    }

    fn panel(&self, jb: usize) -> &[u16] {
        &self.data[jb * self.pairs * 2 * NR..][..self.pairs * 2 * NR]
    }
}

/// Packs rows `r0..r0 + mr` of `A` (row-major, row stride `lda`, `k` columns) as 32-bit pairs,
/// `out[p·14 + r]`, zero past `k` and past `mr` rows.
fn pack_a(a: &[bf16], lda: usize, r0: usize, mr: usize, k: usize, out: &mut [u32]) {
    let pairs = k.div_ceil(2);
    out[..pairs * MR].fill(0);
    for r in 0..mr {
        let row = &a[(r0 + r) * lda..][..k];
        for p in 0..k / 2 {
            out[p * MR + r] = row[2 * p].to_bits() as u32 | (row[2 * p + 1].to_bits() as u32) << 16;
        }
        if k % 2 == 1 {
            out[(k / 2) * MR + r] = row[k - 1].to_bits() as u32;
        }
    }
}

/// `C[r0.., ..] (+)= A[r0..r0+m, :] · B` for `m` rows of a row-major `A` (row stride `lda`)
/// into `c` (row stride `ldc`, its first row being row `r0` of the product), on this thread.
///
/// Panics when a slice is too small for its matrix (a bug in the caller).
#[allow(clippy::too_many_arguments)] // mirrors the BLAS signature
pub(crate) fn bgemm_rows(a: &[bf16], lda: usize, k: usize, b: &PackedB, c: &mut [f32], ldc: usize, m: usize, accumulate: bool) {
    assert!(available(), "bgemm_rows needs AVX512-BF16");
    assert!(m == 0 || (a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + b.n), "bgemm_rows: operand too small");
    assert_eq!(b.pairs, k.div_ceil(2), "bgemm_rows: B was packed for another k");
    let mut a_block = vec![0u32; b.pairs * MR];
    for r0 in (0..m).step_by(MR) {
        let mr = MR.min(m - r0);
        pack_a(a, lda, r0, mr, k, &mut a_block);
        for jb in 0..b.n.div_ceil(NR) {
            let cols = NR.min(b.n - jb * NR);
            // SAFETY: the features are present (asserted above); the packed blocks hold
            // `pairs` full steps; `c` holds `mr` rows of `ldc` from `r0·ldc + jb·NR`, of which
            // the kernel touches `cols` columns (asserted sizes above).
            unsafe {
                kernel(b.pairs, a_block.as_ptr(), b.panel(jb).as_ptr(), c.as_mut_ptr().add(r0 * ldc + jb * NR), ldc, mr, cols, accumulate);
            }
        }
    }
}

/// The 14×32 tile: `c[r][j] (+)= Σ_p dot(a_pair[p][r], b_pair[p][j])` for `r < mr`, `j < cols`.
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(pairs: usize, a: *const u32, b: *const u16, c: *mut f32, ldc: usize, mr: usize, cols: usize, accumulate: bool) {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for p in 0..pairs {
        let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * 2 * NR) as *const _));
        let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * 2 * NR + NR) as *const _));
        let ap = a.add(p * MR);
        rows!(I => {
            let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ap.add(I) as i32));
            acc[I][0] = _mm512_dpbf16_ps(acc[I][0], av, b0);
            acc[I][1] = _mm512_dpbf16_ps(acc[I][1], av, b1);
        });
    }
    let m0: __mmask16 = if cols >= 16 { 0xffff } else { ((1u32 << cols) - 1) as u16 };
    let m1: __mmask16 = if cols >= 32 {
        0xffff
    } else if cols > 16 {
        ((1u32 << (cols - 16)) - 1) as u16
    } else {
        0
    };
    rows!(I => {
        if I < mr {
            let row = c.add(I * ldc);
            let (mut v0, mut v1) = (acc[I][0], acc[I][1]);
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row.add(16)));
            }
            _mm512_mask_storeu_ps(row, m0, v0);
            _mm512_mask_storeu_ps(row.add(16), m1, v1);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backend offers native bf16 products exactly where this kernel can run; elsewhere
    /// bf16 products take the widening path that `half_tests` checks on every CPU.
    #[test]
    fn the_cpu_backend_uses_the_kernel_exactly_where_the_cpu_has_it() {
        use crate::backend::HostBackend;
        assert_eq!(crate::backend::cpu::CpuBackend.bf16_products(), available());
    }

    #[test]
    #[cfg_attr(not(target_feature = "avx512bf16"), ignore = "needs AVX512-BF16 (Zen 4, Sapphire Rapids); .ci/run runs it with --ignored")]
    fn bf16_products_equal_f64_sums_of_the_exact_products() {
        // Odd k, partial row blocks and a partial column panel; values on a coarse grid so
        // every product and partial sum is exact in f32 and the comparison is exact.
        for &(m, k, n) in &[(1, 1, 1), (14, 2, 32), (15, 7, 33), (29, 64, 70), (3, 129, 5)] {
            let a: Vec<bf16> = (0..m * k).map(|i| bf16::from_f32(((i * 7 % 13) as f32 - 6.0) / 8.0)).collect();
            let b: Vec<bf16> = (0..k * n).map(|i| bf16::from_f32(((i * 5 % 11) as f32 - 5.0) / 4.0)).collect();
            let packed = PackedB::new(&b, k, n, n, 1);
            let mut c = vec![1.0f32; m * n];
            bgemm_rows(&a, k, k, &packed, &mut c, n, m, true);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = 1.0 + (0..k).map(|p| a[i * k + p].to_f64() * b[p * n + j].to_f64()).sum::<f64>();
                    assert_eq!(c[i * n + j] as f64, want, "({m},{k},{n}) at ({i},{j})");
                }
            }
            // A transposed B (`[n, k]` storage) packs to the same panels.
            let bt: Vec<bf16> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let mut c2 = vec![1.0f32; m * n];
            bgemm_rows(&a, k, k, &PackedB::new(&bt, k, n, 1, k), &mut c2, n, m, true);
            assert_eq!(c, c2);
        }
    }
}
