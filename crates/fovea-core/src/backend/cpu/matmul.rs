//! Matrix products through the `gemm` crate, threads shared between batch and the product.

use crate::backend::MatmulSpec;
use crate::{Result, Storage};
use gemm::Parallelism;
use rayon::prelude::*;

/// Below this many multiply-adds per product, one thread is faster than fanning out.
const GEMM_PARALLEL_FLOPS: usize = 1 << 18;

/// `C = op(A) · op(B)` for one matrix, row-major, written to `c` (overwritten).
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
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // Row-major X[i, j] at i*rs + j*cs: A is [m,k] (rs = k, cs = 1) or stored [k,m] when transposed.
    let (a_rs, a_cs) = if trans_a { (1, m as isize) } else { (k as isize, 1) };
    let (b_rs, b_cs) = if trans_b { (1, k as isize) } else { (n as isize, 1) };
    let par = if threads > 1 && m * n * k >= GEMM_PARALLEL_FLOPS { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: the assert above guarantees every index the strides reach is in bounds, and `c`
    // does not alias `a` or `b` (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

pub(super) fn matmul(a: &Storage, b: &Storage, s: &MatmulSpec) -> Result<Storage> {
    let (a, b) = (a.as_f32("matmul")?, b.as_f32("matmul")?);
    let (m, k, n) = (s.m, s.k, s.n);
    let mut c = vec![0f32; s.batch * m * n];
    if m * n == 0 {
        return Ok(Storage::F32(c));
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
    Ok(Storage::F32(c))
}
