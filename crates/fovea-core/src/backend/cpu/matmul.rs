//! Matrix products: the AVX-512 blocked kernel ([`super::sgemm_blocked`]) for large products
//! where the CPU has it, the `gemm` crate otherwise; threads shared between batch and the product.

#[cfg(target_arch = "x86_64")]
use super::sgemm_blocked;
use crate::backend::MatmulSpec;
use crate::{HostData, Result};
use gemm::Parallelism;
use rayon::prelude::*;

/// Below this many multiply-adds per product, one thread is faster than fanning out.
const GEMM_PARALLEL_FLOPS: usize = 1 << 18;

/// The AVX-512 kernel runs only when every dimension is at least this. Measured on Zen 4
/// (whose AVX-512 FMAs are double-pumped 256-bit ones, so no more flops than AVX2): it beats
/// the gemm crate on large products with 2 threads (≈ 190 vs ≈ 175 GFLOP/s per 2 CPU-seconds
/// at 1024³ and 2048³) and ties it on one thread, but narrow products such as the conv shapes
/// (n = 6…64, k = 25…576) run 1.5–3× faster in the gemm crate, whose kernels keep lanes full
/// there and do not pack a once-used `A`.
const BLOCKED_MIN_DIM: usize = 256;

/// `C = op(A) · op(B)` for one matrix, row-major, written to `c` (overwritten, or added to
/// with `accumulate`).
///
/// Panics when a slice is too small for its matrix (a bug in the caller, never user input).
#[allow(clippy::too_many_arguments)] // mirrors the BLAS signature
pub(crate) fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    c: &mut [f32],
    accumulate: bool,
    threads: usize,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "sgemm: operand too small");
    // Row-major X[i, j] at i*rs + j*cs: A is [m,k] (rs = k, cs = 1) or stored [k,m] when transposed.
    let (a_rs, a_cs) = if trans_a { (1, m) } else { (k, 1) };
    let (b_rs, b_cs) = if trans_b { (1, k) } else { (n, 1) };
    sgemm_strided(m, k, n, (a, a_rs, a_cs), (b, b_rs, b_cs), c, n, accumulate, threads);
}

/// `C (+)= A · B` with `A` an `m×k` and `B` a `k×n` strided matrix given as
/// `(data, row stride, column stride)`, and `C` row-major with row stride `c_rs`.
///
/// Runs the AVX-512 blocked kernel for large products where the CPU has it (see
/// [`BLOCKED_MIN_DIM`]), the `gemm` crate otherwise.
/// Panics when a slice is too small for its matrix (a bug in the caller, never user input).
#[allow(clippy::too_many_arguments)] // mirrors the BLAS signature
pub(crate) fn sgemm_strided(
    m: usize,
    k: usize,
    n: usize,
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
    threads: usize,
) {
    let fits = |(d, rs, cs): (&[f32], usize, usize), rows: usize, cols: usize| {
        rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < d.len()
    };
    assert!(fits(a, m, k) && fits(b, k, n) && fits((c, c_rs, 1), m, n) && (m <= 1 || c_rs >= n), "sgemm: operand too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.chunks_mut(c_rs.max(n)).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if m.min(n).min(k) >= BLOCKED_MIN_DIM && sgemm_blocked::available() {
        let (a, b) = (sgemm_blocked::View { data: a.0, rs: a.1, cs: a.2 }, sgemm_blocked::View { data: b.0, rs: b.1, cs: b.2 });
        sgemm_blocked::gemm(m, k, n, a, b, c, c_rs.max(n), accumulate, threads);
        return;
    }
    gemm_crate(m, k, n, a, b, c, c_rs, accumulate, threads);
}

/// The portable path: the `gemm` crate (AVX2/FMA or NEON, its own threading).
#[allow(clippy::too_many_arguments)] // mirrors the BLAS signature
fn gemm_crate(
    m: usize,
    k: usize,
    n: usize,
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
    threads: usize,
) {
    let par = if threads > 1 && m * n * k >= GEMM_PARALLEL_FLOPS { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: the caller (`sgemm_strided`) asserted every index the strides reach is in
    // bounds, and `c` does not alias `a` or `b` (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_rs as isize,
            accumulate,
            a.0.as_ptr(),
            a.2 as isize,
            a.1 as isize,
            b.0.as_ptr(),
            b.2 as isize,
            b.1 as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

pub(super) fn matmul(a: &HostData, b: &HostData, s: &MatmulSpec) -> Result<HostData> {
    let (a, b) = (a.as_f32("matmul")?, b.as_f32("matmul")?);
    let (m, k, n) = (s.m, s.k, s.n);
    let mut c = crate::buffer_pool::zeroed(s.batch * m * n);
    if m * n == 0 {
        return Ok(HostData::F32(c));
    }
    let threads = rayon::current_num_threads();
    if s.batch >= threads && m * n * k < (1 << 22) {
        // Many small products: one per thread.
        c.par_chunks_mut(m * n).enumerate().for_each(|(bi, cb)| {
            sgemm(m, k, n, &a[bi * s.a_batch_stride..], s.trans_a, &b[bi * s.b_batch_stride..], s.trans_b, cb, false, 1);
        });
    } else {
        for (bi, cb) in c.chunks_mut(m * n).enumerate() {
            sgemm(m, k, n, &a[bi * s.a_batch_stride..], s.trans_a, &b[bi * s.b_batch_stride..], s.trans_b, cb, false, threads);
        }
    }
    Ok(HostData::F32(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::reference;
    use crate::testing::assert_close;

    /// Deterministic values in [-1, 1) from a small LCG, so tests need no tensors.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The blocked kernel itself, whatever the size (the dispatch in `sgemm_strided` sends
    /// small products to the gemm crate); `None` on CPUs without AVX-512.
    #[allow(clippy::too_many_arguments)]
    fn blocked(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        ta: bool,
        b: &[f32],
        tb: bool,
        c: &mut [f32],
        accumulate: bool,
        threads: usize,
    ) -> Option<()> {
        #[cfg(target_arch = "x86_64")]
        if sgemm_blocked::available() {
            let a = sgemm_blocked::View { data: a, rs: if ta { 1 } else { k }, cs: if ta { m } else { 1 } };
            let b = sgemm_blocked::View { data: b, rs: if tb { 1 } else { n }, cs: if tb { k } else { 1 } };
            sgemm_blocked::gemm(m, k, n, a, b, c, n, accumulate, threads);
            return Some(());
        }
        None
    }

    type Gemm = fn(usize, usize, usize, &[f32], bool, &[f32], bool, &mut [f32], bool, usize) -> Option<()>;

    /// The dispatching entry point and the blocked kernel, named for messages.
    fn paths() -> [(&'static str, Gemm); 2] {
        [
            ("sgemm", |m, k, n, a, ta, b, tb, c, acc, t| {
                sgemm(m, k, n, a, ta, b, tb, c, acc, t);
                Some(())
            }),
            ("blocked", blocked),
        ]
    }

    fn spec(batch: usize, m: usize, k: usize, n: usize, strides: (usize, usize), trans: (bool, bool)) -> MatmulSpec {
        MatmulSpec { batch, m, k, n, a_batch_stride: strides.0, b_batch_stride: strides.1, trans_a: trans.0, trans_b: trans.1 }
    }

    fn reference_product(a: &[f32], b: &[f32], s: &MatmulSpec) -> Vec<f32> {
        let out = reference::matmul::matmul(&HostData::F32(a.to_vec()), &HostData::F32(b.to_vec()), s).expect("reference");
        out.as_f32("test").expect("f32").to_vec()
    }

    /// Every sgemm shape class: scalars, k = 1, m or n below one tile, ragged tiles in both
    /// directions, more than one KC block, and more than one row block.
    const SHAPES: [(usize, usize, usize); 13] = [
        (1, 1, 1),
        (7, 13, 5),
        (15, 33, 47),
        (129, 257, 65),
        (3, 1, 70),
        (64, 1, 3),
        (13, 40, 31),
        (14, 1100, 32),
        (1, 600, 100),
        (100, 20, 1),
        (28, 513, 64),
        (600, 37, 45),
        (33, 65, 4100),
    ];

    #[test]
    fn sgemm_matches_reference_on_odd_shapes_all_transposes() {
        for (m, k, n) in SHAPES {
            for trans in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, b) = (values(m * k, 1), values(k * n, 2));
                let expected = reference_product(&a, &b, &spec(1, m, k, n, (0, 0), trans));
                for ((path, f), threads) in paths().into_iter().flat_map(|p| [(p, 1), (p, 2)]) {
                    let mut c = vec![f32::NAN; m * n]; // overwritten, never read
                    if f(m, k, n, &a, trans.0, &b, trans.1, &mut c, false, threads).is_some() {
                        assert_close(&format!("{path} {m}x{k}x{n} {trans:?} threads {threads}"), &c, &expected, 1e-4, 1e-5);
                    }
                }
            }
        }
    }

    #[test]
    fn sgemm_accumulate_adds_into_c() {
        for (m, k, n) in SHAPES {
            for trans in [(false, false), (true, true)] {
                let (a, b) = (values(m * k, 3), values(k * n, 4));
                let c0 = values(m * n, 5);
                let product = reference_product(&a, &b, &spec(1, m, k, n, (0, 0), trans));
                let expected: Vec<f32> = c0.iter().zip(&product).map(|(x, y)| x + y).collect();
                for (path, f) in paths() {
                    let mut c = c0.clone();
                    if f(m, k, n, &a, trans.0, &b, trans.1, &mut c, true, 2).is_some() {
                        assert_close(&format!("{path} accumulate {m}x{k}x{n} {trans:?}"), &c, &expected, 1e-4, 1e-5);
                    }
                }
            }
        }
    }

    #[test]
    fn sgemm_k_zero_clears_or_keeps_c() {
        let mut c = vec![3.0f32; 6];
        sgemm(2, 0, 3, &[], false, &[], false, &mut c, true, 1);
        assert_eq!(c, vec![3.0; 6]);
        sgemm(2, 0, 3, &[], false, &[], false, &mut c, false, 1);
        assert_eq!(c, vec![0.0; 6]);
    }

    #[test]
    fn sgemm_hand_computed_2x3x2() {
        // [[1,2,3],[4,5,6]] · [[7,8],[9,10],[11,12]] = [[58,64],[139,154]]
        let (a, b) = ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
        let mut c = [0f32; 4];
        sgemm(2, 3, 2, &a, false, &b, false, &mut c, false, 1);
        assert_eq!(c, [58.0, 64.0, 139.0, 154.0]);
    }

    #[test]
    fn sgemm_strided_writes_only_its_columns() {
        // C is the left 3 columns of a 2x5 buffer; the other columns must keep their values.
        let (a, b) = (values(2 * 4, 6), values(4 * 3, 7));
        let mut c = vec![9.0f32; 10];
        sgemm_strided(2, 4, 3, (&a, 4, 1), (&b, 3, 1), &mut c, 5, false, 1);
        let expected = reference_product(&a, &b, &spec(1, 2, 4, 3, (0, 0), (false, false)));
        assert_close("strided C", &[&c[0..3], &c[5..8]].concat(), &expected, 1e-4, 1e-5);
        assert_eq!([c[3], c[4], c[8], c[9]], [9.0; 4]);
    }

    #[test]
    fn sgemm_is_bitwise_independent_of_thread_count() {
        for (m, k, n) in [(129, 257, 65), (600, 700, 300), (33, 65, 4100), (1030, 300, 70)] {
            let (a, b) = (values(m * k, 8), values(k * n, 9));
            for (path, f) in paths() {
                let run = |threads: usize| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
                    pool.install(|| {
                        let mut c = vec![0f32; m * n];
                        f(m, k, n, &a, false, &b, true, &mut c, false, rayon::current_num_threads()).map(|()| c)
                    })
                };
                let (one, two) = (run(1), run(2));
                assert_eq!(one.is_some(), two.is_some(), "{path}: ran on one pool only");
                let same = one.iter().flatten().zip(two.iter().flatten()).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{path} {m}x{k}x{n}: 1 vs 2 threads differ");
            }
        }
    }

    #[test]
    fn matmul_batched_with_broadcast_matches_reference() {
        // (batch, m, k, n, a stride 0?, b stride 0?): the small-product and large-product paths.
        for (batch, m, k, n, a_bcast, b_bcast) in
            [(5, 7, 13, 5, false, true), (3, 15, 33, 47, true, false), (2, 129, 257, 65, false, false)]
        {
            for trans in [(false, false), (true, true), (false, true)] {
                let a_len = if a_bcast { m * k } else { batch * m * k };
                let b_len = if b_bcast { k * n } else { batch * k * n };
                let (a, b) = (values(a_len, 10), values(b_len, 11));
                let s = spec(batch, m, k, n, (if a_bcast { 0 } else { m * k }, if b_bcast { 0 } else { k * n }), trans);
                let expected = reference_product(&a, &b, &s);
                let got = matmul(&HostData::F32(a), &HostData::F32(b), &s).expect("matmul");
                assert_close(&format!("batched {batch}x{m}x{k}x{n} {trans:?}"), got.as_f32("test").expect("f32"), &expected, 1e-4, 1e-5);
            }
        }
    }
}
