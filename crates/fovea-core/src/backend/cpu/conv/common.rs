//! What every convolution strategy shares: per-thread scratch buffers, the rotated filter that
//! turns an input gradient into a forward convolution, order-stable partial sums, and the CPU
//! feature check. Strategies call down into this module; nothing here calls a strategy.

use crate::backend::Conv2dSpec;
use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// Each thread's patch buffer, kept between calls: a fresh multi-megabyte buffer per
    /// chunk would cost its page faults again on every call.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    with_thread_buffer(&SCRATCH, f)
}

/// Runs `f` with a per-thread buffer kept between calls (so repeated calls do not pay page
/// faults again). A thread can re-enter while its buffer is in use (rayon runs stolen work
/// inside a parallel gemm's join); it then gets a fresh buffer. An exceptionally large buffer
/// is dropped afterwards rather than kept for the thread's lifetime.
pub(super) fn with_thread_buffer<R>(key: &'static std::thread::LocalKey<RefCell<Vec<f32>>>, f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let out = f(&mut buf);
            if buf.capacity() > MAX_KEPT_SCRATCH {
                *buf = Vec::new();
            }
            out
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// The largest buffer (elements) a thread keeps between calls.
const MAX_KEPT_SCRATCH: usize = 1 << 22;

/// The filter of the forward convolution whose output is `s`'s input gradient: rotated by
/// 180° with its channel axes swapped within each group,
/// `w'[i', j', co, g·cin_g + ci] = w[kh−1−i', kw−1−j', ci, g·cout_g + co]`.
pub(super) fn rotated_filter(w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
    let mut flipped = vec![0f32; w.len()];
    for i in 0..s.kh {
        for j in 0..s.kw {
            let src = &w[(i * s.kw + j) * cin_g * s.c_out..][..cin_g * s.c_out];
            let dst = &mut flipped[((s.kh - 1 - i) * s.kw + (s.kw - 1 - j)) * cout_g * s.c_in..][..cout_g * s.c_in];
            for ci in 0..cin_g {
                for oc in 0..s.c_out {
                    let (g, co) = (oc / cout_g, oc % cout_g);
                    dst[co * s.c_in + g * cin_g + ci] = src[ci * s.c_out + oc];
                }
            }
        }
    }
    flipped
}

/// The stride-1 forward convolution of `dy` with [`rotated_filter`] that gives `s`'s input
/// gradient: padded by `(k−1)·d − pad` on each side. Callers check that no side has more
/// padding than `(k−1)·d`.
pub(super) fn input_grad_spec(s: &Conv2dSpec) -> Conv2dSpec {
    let (reach_h, reach_w) = ((s.kh - 1) * s.dilation.0, (s.kw - 1) * s.dilation.1);
    let (pt, pb, pl, pr) = s.pad;
    Conv2dSpec {
        h: s.out_h,
        w: s.out_w,
        c_in: s.c_out,
        c_out: s.c_in,
        pad: (reach_h - pt, reach_h - pb, reach_w - pl, reach_w - pr),
        out_h: s.h,
        out_w: s.w,
        ..s.clone()
    }
}

/// `Σ_c partial(c)` for `c` in `0..chunks`, added in index order whatever the thread count:
/// partials are computed a wave of `threads` at a time and folded into the total in order.
pub(super) fn sum_partials_in_order(chunks: usize, len: usize, partial: impl Fn(usize, &mut Vec<f32>) -> Vec<f32> + Sync) -> Vec<f32> {
    let wave = rayon::current_num_threads().max(1);
    let mut total = vec![0f32; len];
    for start in (0..chunks).step_by(wave) {
        let parts: Vec<Vec<f32>> =
            (start..(start + wave).min(chunks)).into_par_iter().map(|c| with_scratch(|scratch| partial(c, scratch))).collect();
        total.par_chunks_mut(4096).enumerate().for_each(|(b, out)| {
            for p in &parts {
                out.iter_mut().zip(&p[b * 4096..]).for_each(|(t, v)| *t += v);
            }
        });
    }
    total
}

/// Whether this CPU runs the AVX-512F kernels.
#[cfg(target_arch = "x86_64")]
pub(super) fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Whether this CPU runs the AVX-512F kernels.
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn avx512() -> bool {
    false
}
