#![cfg(target_arch = "x86_64")]
//! bf16 matrix products and convolutions on the AVX512-BF16 kernel ([`super::bgemm_avx512`]):
//! bf16 operands, f32 accumulation, one rounding of each result to bf16 (after the fused
//! per-channel map of an inference conv → batch norm chain, which so also runs in f32).
//!
//! Convolutions run as im2col + product over chunks of output pixels, in parallel: a chunk's
//! bf16 patch rows (about 128 KiB, so they stay in L2 while every column panel passes over
//! them) and its f32 result are scratch of that chunk. A 1×1, stride-1, unpadded convolution
//! reads the input as its patch matrix. Grouped convolutions are not handled here (`None`).

use super::bgemm_avx512::{bgemm_rows, PackedB};
use super::PARALLEL_THRESHOLD;
use crate::backend::{Conv2dSpec, MatmulSpec};
use half::bf16;
use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    static ACC: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static COLS: RefCell<Vec<bf16>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` elements of a per-thread buffer kept between calls (no page faults per
/// call); a re-entered thread (rayon work stolen inside a join) gets a fresh buffer. The
/// contents are whatever the last user left: callers overwrite before they read.
fn with_buffer<T: Copy + Default, R>(key: &'static std::thread::LocalKey<RefCell<Vec<T>>>, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, T::default());
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![T::default(); len]),
    })
}

/// The per-channel map `y·scale + shift` (then ReLU) applied before rounding.
pub(super) struct Epilogue<'a> {
    pub scale: &'a [f32],
    pub shift: &'a [f32],
    pub relu: bool,
}

/// Rounds an f32 block to bf16, through the epilogue when there is one (`c` columns per row).
fn finish(acc: &[f32], out: &mut [bf16], c: usize, epilogue: Option<&Epilogue>) {
    match epilogue {
        None => out.iter_mut().zip(acc).for_each(|(o, &v)| *o = bf16::from_f32(v)),
        Some(e) => {
            for (orow, arow) in out.chunks_exact_mut(c).zip(acc.chunks_exact(c)) {
                for (j, (o, &v)) in orow.iter_mut().zip(arow).enumerate() {
                    let y = v * e.scale[j] + e.shift[j];
                    *o = bf16::from_f32(if e.relu { y.max(0.0) } else { y });
                }
            }
        }
    }
}

/// Output rows per parallel task: about 128 KiB of bf16 `A` rows, a multiple of the 14-row
/// tile, between 14 and 896.
fn rows_per_task(k: usize) -> usize {
    ((128 * 1024 / (2 * k.max(1))) / 14).clamp(1, 64) * 14
}

/// A batched `C[b] = op(A[b]) · op(B[b])` in bf16 (f32 accumulation).
pub(super) fn matmul(a: &[bf16], b: &[bf16], s: &MatmulSpec) -> Vec<bf16> {
    let (m, k, n) = (s.m, s.k, s.n);
    let mut out = vec![bf16::ZERO; s.batch * m * n];
    if m * n == 0 {
        return out;
    }
    let mut packed_once = None;
    for (bi, out_b) in out.chunks_exact_mut(m * n).enumerate() {
        let b_mat = &b[bi * s.b_batch_stride..];
        let (b_rs, b_cs) = if s.trans_b { (1, k) } else { (n, 1) };
        let packed = if s.b_batch_stride == 0 {
            &*packed_once.get_or_insert_with(|| PackedB::new(b_mat, k, n, b_rs, b_cs))
        } else {
            packed_once = Some(PackedB::new(b_mat, k, n, b_rs, b_cs));
            packed_once.as_ref().expect("just packed")
        };
        let a_mat = &a[bi * s.a_batch_stride..];
        let transposed;
        let a_rows: &[bf16] = if s.trans_a {
            // The kernel reads rows of A; a transposed A (stored [k, m]) is copied once.
            transposed = (0..m * k).map(|i| a_mat[(i % k) * m + i / k]).collect::<Vec<_>>();
            &transposed
        } else {
            &a_mat[..m * k]
        };
        let task = rows_per_task(k);
        let run = |(t, out_rows): (usize, &mut [bf16])| {
            let rows = out_rows.len() / n;
            with_buffer(&ACC, rows * n, |acc| {
                bgemm_rows(&a_rows[t * task * k..], k, k, packed, acc, n, rows, false);
                finish(acc, out_rows, n, None);
            });
        };
        if m * n * k >= PARALLEL_THRESHOLD {
            out_b.par_chunks_mut(task * n).enumerate().for_each(run);
        } else {
            out_b.chunks_mut(task * n).enumerate().for_each(run);
        }
    }
    out
}

/// Writes the patch rows of output pixels `first..first + rows` (NHWC patch order `(i, j, ci)`).
fn im2col(x: &[bf16], s: &Conv2dSpec, first: usize, rows: usize, cols: &mut [bf16]) {
    let k = s.kh * s.kw * s.c_in;
    let per_image = s.out_h * s.out_w;
    for (r, patch) in cols.chunks_exact_mut(k).take(rows).enumerate() {
        let q = first + r;
        let (img, rem) = (q / per_image, q % per_image);
        let (oy, ox) = (rem / s.out_w, rem % s.out_w);
        for i in 0..s.kh {
            let iy = (oy * s.stride.0 + i * s.dilation.0) as isize - s.pad.0 as isize;
            for j in 0..s.kw {
                let ix = (ox * s.stride.1 + j * s.dilation.1) as isize - s.pad.2 as isize;
                let dst = &mut patch[(i * s.kw + j) * s.c_in..][..s.c_in];
                if iy < 0 || ix < 0 || iy as usize >= s.h || ix as usize >= s.w {
                    dst.fill(bf16::ZERO);
                } else {
                    dst.copy_from_slice(&x[((img * s.h + iy as usize) * s.w + ix as usize) * s.c_in..][..s.c_in]);
                }
            }
        }
    }
}

/// A forward convolution (with the epilogue, if any) in bf16; `None` for grouped convolutions.
pub(super) fn conv2d(x: &[bf16], w: &[bf16], s: &Conv2dSpec, epilogue: Option<&Epilogue>) -> Option<Vec<bf16>> {
    if s.groups != 1 {
        return None;
    }
    let (k, n) = (s.kh * s.kw * s.c_in, s.c_out);
    let m = s.n * s.out_h * s.out_w;
    let mut out = vec![bf16::ZERO; m * n];
    if m * n == 0 {
        return Some(out);
    }
    let packed = PackedB::new(w, k, n, n, 1);
    let pointwise = s.kh == 1 && s.kw == 1 && s.stride == (1, 1) && s.pad == (0, 0, 0, 0);
    let task = rows_per_task(k);
    let run = |(t, out_rows): (usize, &mut [bf16])| {
        let rows = out_rows.len() / n;
        with_buffer(&ACC, rows * n, |acc| {
            if pointwise {
                bgemm_rows(&x[t * task * k..], k, k, &packed, acc, n, rows, false);
            } else {
                with_buffer(&COLS, rows * k, |cols| {
                    im2col(x, s, t * task, rows, cols);
                    bgemm_rows(cols, k, k, &packed, acc, n, rows, false);
                });
            }
            finish(acc, out_rows, n, epilogue);
        });
    };
    if m * n * k >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(task * n).enumerate().for_each(run);
    } else {
        out.chunks_mut(task * n).enumerate().for_each(run);
    }
    Some(out)
}
