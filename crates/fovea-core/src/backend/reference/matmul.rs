//! Reference batched matrix product with f64 accumulation.

use crate::backend::MatmulSpec;
use crate::{Error, HostData, Result};

/// `C[b] = op(A[b]) · op(B[b])` for f32 storages.
pub fn matmul(a: &HostData, b: &HostData, s: &MatmulSpec) -> Result<HostData> {
    let (a, b) = (a.as_f32("matmul")?, b.as_f32("matmul")?);
    let (m, k, n) = (s.m, s.k, s.n);
    if s.batch > 0 && (a.len() < (s.batch - 1) * s.a_batch_stride + m * k || b.len() < (s.batch - 1) * s.b_batch_stride + k * n) {
        return Err(Error::invalid("matmul", "operand storage smaller than the spec"));
    }
    let mut c = vec![0f32; s.batch * m * n];
    for bi in 0..s.batch {
        let a = &a[bi * s.a_batch_stride..];
        let b = &b[bi * s.b_batch_stride..];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f64;
                for p in 0..k {
                    let av = if s.trans_a { a[p * m + i] } else { a[i * k + p] };
                    let bv = if s.trans_b { b[j * k + p] } else { b[p * n + j] };
                    acc += av as f64 * bv as f64;
                }
                c[bi * m * n + i * n + j] = acc as f32;
            }
        }
    }
    Ok(HostData::F32(c))
}
