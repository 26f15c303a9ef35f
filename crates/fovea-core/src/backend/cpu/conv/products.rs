//! The forward im2col convolution through the AVX-512 register-blocked product kernel of the
//! Winograd pass, where the CPU has AVX-512F and the output channels come in whole 16-lane
//! blocks (every layer of the ResNets, VGGs and Inceptions). Measured inside ResNet-50 at
//! batch 1 (1×1 convolutions with 49–3,136 output pixels, 3×3 ones at 7×7) the `gemm` crate's
//! AVX2 kernels reached about 83 GFLOP/s per core where this kernel reaches about 110 on the
//! Winograd products: its B panel is read straight from the weights (no packing per call) and
//! its 6–24-row register blocks fit the short pixel counts of small images.
//!
//! Work is split into tasks of output lines × column ranges; the shared dimension runs in
//! slices whose `B` panel stays in L2. Each element of `C` is summed by one task in a fixed
//! order, so results do not depend on the thread count.

use super::common::{avx512, with_scratch};
use super::im2col::{patches, Geometry};
use super::winograd::products_raw;
use crate::backend::Conv2dSpec;
use rayon::prelude::*;

/// Floats of a `B` panel slice (`kc × c_out`): 256 KiB, a quarter of a Zen 4 L2.
const PANEL_FLOATS: usize = 1 << 16;

/// Whether the forward pass of `s` runs here.
pub(super) fn applies(s: &Conv2dSpec) -> bool {
    s.groups == 1 && s.c_out.is_multiple_of(16) && s.c_out > 0 && avx512()
}

/// The C buffer, shared by tasks that write disjoint (row, column) ranges of it.
struct SharedOut(*mut f32);

// SAFETY: tasks only write their own rows × columns (see `forward`).
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The element at `offset` (a method, so closures capture the whole `Sync` wrapper).
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// A per-channel map applied to each task's output block once its sums are complete:
/// `y·scale + shift` per output channel, then ReLU when `relu` — the arithmetic of the
/// backend's `channel_affine`, so the fused result equals the two passes bit for bit.
pub(super) struct Epilogue<'a> {
    pub(super) scale: &'a [f32],
    pub(super) shift: &'a [f32],
    pub(super) relu: bool,
}

impl Epilogue<'_> {
    /// Maps `row` (output channels `c0..c0 + row.len()`).
    fn apply(&self, row: &mut [f32], c0: usize) {
        let (scale, shift) = (&self.scale[c0..][..row.len()], &self.shift[c0..][..row.len()]);
        for ((y, &s), &t) in row.iter_mut().zip(scale).zip(shift) {
            let a = *y * s + t;
            // `UnaryOp::Relu`'s rule: only positive values pass.
            *y = if !self.relu || a > 0.0 { a } else { 0.0 };
        }
    }
}

/// Forward convolution; call only when [`applies`].
pub(super) fn forward(x: &[f32], w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    forward_with(x, w, s, None)
}

/// [`forward`], then `epilogue` on every output.
pub(super) fn forward_with(x: &[f32], w: &[f32], s: &Conv2dSpec, epilogue: Option<&Epilogue>) -> Vec<f32> {
    let geo = Geometry::new(s);
    let (k, n) = (geo.kg, s.c_out);
    let total_lines = s.n * s.out_h;
    let mut y = crate::buffer_pool::for_overwrite(total_lines * s.out_w * n);
    if y.is_empty() {
        return y;
    }
    assert!(w.len() >= k * n);
    let line_chunks = total_lines.div_ceil(geo.lines);
    // With fewer line chunks than two per thread, the columns are split too (whole 64-column
    // register blocks), so that small images still use every thread.
    let threads = rayon::current_num_threads();
    let col_parts = if line_chunks >= 2 * threads { 1 } else { (2 * threads).div_ceil(line_chunks).min(n.div_ceil(64)).max(1) };
    let part_cols = (n / 16).div_ceil(col_parts) * 16;
    // From the shape only (not the thread count), so every sum is sliced alike.
    let kc = (PANEL_FLOATS / n).clamp(64, k.max(64));
    let out = SharedOut(y.as_mut_ptr());
    let y_len = y.len();
    (0..line_chunks * col_parts).into_par_iter().for_each(|task| {
        let (chunk, part) = (task / col_parts, task % col_parts);
        let lines = chunk * geo.lines..((chunk + 1) * geo.lines).min(total_lines);
        let (c0, cols) = (part * part_cols, part_cols.min(n.saturating_sub(part * part_cols)));
        if cols == 0 {
            return;
        }
        let (r0, rows) = (lines.start * s.out_w, lines.len() * s.out_w);
        assert!((r0 + rows - 1) * n + c0 + cols <= y_len);
        with_scratch(|scratch| {
            let a = patches(x, s, &geo, 0, lines, scratch);
            for k0 in (0..k).step_by(kc) {
                let kk = kc.min(k - k0);
                // SAFETY: rows r0..r0+rows, columns c0..c0+cols of `y` belong to this task
                // alone (tasks are distinct (line chunk, column part) pairs) and lie inside
                // `y` as asserted; `applies` checked AVX-512F.
                unsafe {
                    products_raw(rows, kk, cols, (&a.data[k0 * a.cs..], a.rs, a.cs), (&w[k0 * n + c0..], n), out.at(r0 * n + c0), n, k0 > 0)
                };
            }
        });
        if let Some(e) = epilogue {
            for r in r0..r0 + rows {
                // SAFETY: row r, columns c0..c0 + cols is this task's alone and inside `y`
                // (asserted above); the products above have finished writing it.
                e.apply(unsafe { std::slice::from_raw_parts_mut(out.at(r * n + c0), cols) }, c0);
            }
        }
    });
    y
}

#[cfg(test)]
mod tests {
    use crate::backend::{reference, Conv2dSpec};
    use crate::ops::padding::{resolve_axis, Padding};
    use crate::testing::{assert_close, rand};
    use crate::{Device, HostData};

    /// `[n, h, w, c_in]`, kernel side, stride, dilation, padding, `c_out`.
    type Case = ([usize; 4], usize, usize, usize, Padding, usize);

    fn spec(&(dims, k, stride, dil, ref p, c_out): &Case) -> Conv2dSpec {
        let ay = resolve_axis("t", p, 0, dims[1], k, stride, dil).unwrap();
        let ax = resolve_axis("t", p, 1, dims[2], k, stride, dil).unwrap();
        Conv2dSpec {
            n: dims[0],
            h: dims[1],
            w: dims[2],
            c_in: dims[3],
            kh: k,
            kw: k,
            c_out,
            groups: 1,
            stride: (stride, stride),
            dilation: (dil, dil),
            pad: (ay.pad_before, ay.pad_after, ax.pad_before, ax.pad_after),
            out_h: ay.out,
            out_w: ax.out,
        }
    }

    /// 1×1 layers with few pixels and many channels (split by columns, the shared dimension
    /// sliced), strided and padded kernels, dilation, and many line chunks.
    fn cases() -> Vec<Case> {
        vec![
            ([1, 7, 7, 1024], 1, 1, 1, Padding::Valid, 512),
            ([1, 7, 7, 96], 3, 1, 1, Padding::Same, 528),
            ([2, 9, 9, 24], 3, 2, 1, Padding::Same, 64),
            ([1, 15, 13, 3], 7, 2, 1, Padding::Same, 32),
            ([2, 10, 10, 8], 3, 1, 2, Padding::Valid, 16),
            ([3, 40, 40, 4], 1, 1, 1, Padding::Valid, 48),
            ([1, 6, 6, 20], 1, 2, 1, Padding::Valid, 80),
        ]
    }

    fn f32s(s: HostData) -> Vec<f32> {
        s.as_f32("test").unwrap().to_vec()
    }

    #[test]
    fn products_convolutions_match_the_reference_for_any_thread_count() {
        if !super::super::common::avx512() {
            eprintln!("skipping: no AVX-512F, this path never runs here");
            return;
        }
        for (seed, case) in cases().iter().enumerate() {
            let s = spec(case);
            assert!(super::applies(&s), "{case:?}");
            let x = rand(&[s.n, s.h, s.w, s.c_in], -1.0, 1.0, seed as u64, Device::Cpu);
            let w = rand(&[s.kh, s.kw, s.c_in, s.c_out], -1.0, 1.0, seed as u64 + 100, Device::Cpu);
            let (xs, ws) = (f32s(x.host_storage().clone()), f32s(w.host_storage().clone()));
            let want = f32s(reference::conv::conv2d(x.host_storage(), w.host_storage(), &s).unwrap());
            let on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| super::forward(&xs, &ws, &s))
            };
            let one = on(1);
            assert_close(&format!("{case:?}"), &one, &want, 1e-4, 1e-4);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one), bits(&on(3)), "thread count changed {case:?}");
        }
        let odd = spec(&([1, 4, 4, 8], 3, 1, 1, Padding::Same, 24));
        assert!(!super::applies(&odd), "24 output channels are not whole 16-lane blocks");
    }
}
