//! Direct convolution vectorised over output columns, for very few output channels.
//!
//! [`super::direct`] puts output channels in the vector lanes, which wastes 10 of 16
//! lanes for a LeNet first layer (6 channels) and 15 for its input gradient (the rotated
//! convolution has 1 output channel). Here the lanes hold 16 neighbouring output columns
//! instead: each image is copied once into zero-bordered channel planes `[c_in][rows][pitch]`,
//! so with column stride 1 the 16 inputs a tap needs are one contiguous load. A register
//! block holds `RR` output rows × `S` strips of 16 columns × `CO` output channels; each tap
//! `(i, j, ci)` is a row of broadcast filter values times the shifted input vectors. The
//! block is then transposed back to NHWC through a small stack buffer.
//!
//! Rows and columns are padded up to whole blocks in the planes, so the kernel never tests
//! bounds; lanes past the output are computed from zeros and dropped at the store.

use crate::backend::Conv2dSpec;
use rayon::prelude::*;
use std::cell::RefCell;

/// The most output channels the register block holds.
pub(super) const MAX_CO: usize = 8;

/// Whether [`forward`] handles `s` and beats channel-vectorised kernels: one group, column
/// stride 1, at most [`MAX_CO`] output channels, and more live lanes per 16 across columns
/// than across output channels.
pub(super) fn applies(s: &Conv2dSpec) -> bool {
    let live = |n: usize| n as f32 / n.div_ceil(16).max(1) as f32;
    s.groups == 1
        && s.stride.1 == 1
        && (1..=MAX_CO).contains(&s.c_out)
        && s.c_in > 0
        && live(s.out_w) > live(s.c_out)
        && super::common::avx512()
}

thread_local! {
    /// Each thread's plane buffer, kept between calls to avoid page faults per image.
    static PLANES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Register-block rows for `(co, s)`: about 24 accumulators, at most 8 rows.
const fn block_rows(co: usize, s: usize) -> usize {
    let r = 24 / (co * s);
    if r > 8 {
        8
    } else if r == 0 {
        1
    } else {
        r
    }
}

/// Layout of one image's planes.
struct Planes {
    /// 16-column strips per register block (1 or 2).
    strips: usize,
    /// Output rows per register block.
    rows_per_block: usize,
    /// Register blocks down and across the output.
    blocks: (usize, usize),
    /// Rows per plane: every row a (padded) block of output rows reaches.
    rows: usize,
    /// Columns per plane row.
    pitch: usize,
}

impl Planes {
    fn new(s: &Conv2dSpec) -> Self {
        let strips = if s.out_w > 16 { 2 } else { 1 };
        let rows_per_block = block_rows(s.c_out, strips);
        let blocks = (s.out_h.div_ceil(rows_per_block), s.out_w.div_ceil(16 * strips));
        let rows = (blocks.0 * rows_per_block - 1) * s.stride.0 + (s.kh - 1) * s.dilation.0 + 1;
        let pitch = blocks.1 * 16 * strips + (s.kw - 1) * s.dilation.1;
        Planes { strips, rows_per_block, blocks, rows, pitch }
    }

    /// Copies image `img` (`[h, w, c_in]`) into `buf` as zero-bordered planes. Every
    /// element is written (border zeros included), so a reused buffer needs no clearing.
    fn fill(&self, s: &Conv2dSpec, img: &[f32], buf: &mut [f32]) {
        let plane = self.rows * self.pitch;
        assert_eq!(buf.len(), s.c_in * plane, "planes of the wrong size");
        // Plane column pc holds input column pc − pad_left; the rest are zero.
        let left = s.pad.2.min(self.pitch);
        let cols = s.w.min(self.pitch - left);
        for (ci, planar) in buf.chunks_exact_mut(plane).enumerate() {
            for (pr, row) in planar.chunks_exact_mut(self.pitch).enumerate() {
                let Some(ih) = pr.checked_sub(s.pad.0).filter(|&ih| ih < s.h) else {
                    row.fill(0.0);
                    continue;
                };
                let (head, rest) = row.split_at_mut(left);
                let (mid, tail) = rest.split_at_mut(cols);
                head.fill(0.0);
                tail.fill(0.0);
                let src = &img[ih * s.w * s.c_in..][..cols * s.c_in];
                for (d, px) in mid.iter_mut().zip(src.chunks_exact(s.c_in)) {
                    *d = px[ci];
                }
            }
        }
    }

    /// Offset of tap `(i, j, ci)` in the planes, HWIO row order.
    fn taps(&self, s: &Conv2dSpec) -> Vec<usize> {
        let plane = self.rows * self.pitch;
        let mut taps = Vec::with_capacity(s.kh * s.kw * s.c_in);
        for i in 0..s.kh {
            for j in 0..s.kw {
                for ci in 0..s.c_in {
                    taps.push(ci * plane + i * s.dilation.0 * self.pitch + j * s.dilation.1);
                }
            }
        }
        taps
    }
}

/// Forward convolution; call only when [`applies`].
pub(super) fn forward(x: &[f32], w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    let y_img = s.out_h * s.out_w * s.c_out;
    // The kernel stores every output (it never adds to `y`).
    let mut y = crate::buffer_pool::for_overwrite(s.n * y_img);
    if y.is_empty() {
        return y;
    }
    let planes = Planes::new(s);
    let taps = planes.taps(s);
    let x_img = s.h * s.w * s.c_in;
    let interleave = Interleave::new(s.c_out);
    // Whole images per task, enough work (about 2²¹ multiply-adds) to hide the task's cost.
    let per_task = (1usize << 21).div_ceil((y_img * taps.len()).max(1)).clamp(1, s.n);
    y.par_chunks_mut(y_img * per_task).enumerate().for_each(|(chunk, y_chunk)| {
        PLANES.with(|cell| {
            let mut fresh = Vec::new();
            let mut kept = cell.try_borrow_mut();
            let buf = match kept.as_mut() {
                Ok(b) => &mut **b,
                Err(_) => &mut fresh,
            };
            for (k, y_n) in y_chunk.chunks_mut(y_img).enumerate() {
                let n = chunk * per_task + k;
                buf.resize(s.c_in * planes.rows * planes.pitch, 0.0);
                planes.fill(s, &x[n * x_img..][..x_img], buf);
                image(s, &planes, &taps, w, &interleave, buf, y_n);
            }
        })
    });
    y
}

/// Runs every register block of one image whose planes are in `buf`.
fn image(s: &Conv2dSpec, planes: &Planes, taps: &[usize], w: &[f32], interleave: &Interleave, buf: &[f32], y_n: &mut [f32]) {
    let max_tap = taps.last().copied().unwrap_or(0);
    for rb in 0..planes.blocks.0 {
        for cb in 0..planes.blocks.1 {
            let (oh, ow) = (rb * planes.rows_per_block, cb * 16 * planes.strips);
            let base = oh * s.stride.0 * planes.pitch + ow;
            // The block's last vector load ends inside the planes.
            let last_row = (planes.rows_per_block - 1) * s.stride.0 * planes.pitch;
            assert!(base + last_row + 16 * planes.strips - 1 + max_tap < buf.len());
            let block = Block { oh, ow, row_step: s.stride.0 * planes.pitch, out: (s.out_h, s.out_w) };
            // SAFETY: reads bounded above, writes bounded by the output size in the kernel's
            // store and `y_n` holds the whole output image; `applies` checked AVX-512F.
            unsafe { avx::block(s.c_out, planes.strips, buf[base..].as_ptr(), taps, w, &block, interleave, y_n) };
        }
    }
}

/// Lane permutations that interleave `co` channel vectors of 16 columns into NHWC order:
/// output vector `q` lane `l` is flat element `e = 16q + l` = column `e / co`, channel
/// `e % co`; `idx[q·co + c]` picks those lanes from channel `c`'s vector, `mask` marks them.
pub(super) struct Interleave {
    idx: Vec<[i32; 16]>,
    mask: Vec<u16>,
}

impl Interleave {
    fn new(co: usize) -> Self {
        let mut idx = vec![[0i32; 16]; co * co];
        let mut mask = vec![0u16; co * co];
        for e in 0..16 * co {
            let (q, l) = (e / 16, e % 16);
            idx[q * co + e % co][l] = (e / co) as i32;
            mask[q * co + e % co] |= 1 << l;
        }
        Interleave { idx, mask }
    }
}

/// Where a register block sits: its first output row and column, the plane distance between
/// its rows, and the output size.
struct Block {
    oh: usize,
    ow: usize,
    row_step: usize,
    /// Output rows and columns.
    out: (usize, usize),
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{block_rows, Block, Interleave};
    use std::arch::x86_64::*;

    /// Runs the kernel for `co` output channels and `strips` 16-column strips.
    ///
    /// # Safety
    /// AVX-512F must be available and `x[r·row_step + 16·s + tap + 0..16]` in bounds for
    /// every block row, strip and tap.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block(
        co: usize,
        strips: usize,
        x: *const f32,
        taps: &[usize],
        w: &[f32],
        b: &Block,
        il: &Interleave,
        y: &mut [f32],
    ) {
        macro_rules! go {
            ($($co:literal)*) => {
                match (co, strips) {
                    $(($co, 1) => kernel::<$co, 1, { block_rows($co, 1) }>(x, taps, w, b, il, y),
                      ($co, _) => kernel::<$co, 2, { block_rows($co, 2) }>(x, taps, w, b, il, y),)*
                    _ => unreachable!("at most eight output channels"),
                }
            };
        }
        unsafe { go!(1 2 3 4 5 6 7 8) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn kernel<const CO: usize, const S: usize, const RR: usize>(
        x: *const f32,
        taps: &[usize],
        w: &[f32],
        b: &Block,
        il: &Interleave,
        y: &mut [f32],
    ) {
        let (out_h, out_w) = b.out;
        let mut acc = [[[_mm512_setzero_ps(); CO]; S]; RR];
        for (&tap, w_k) in taps.iter().zip(w.chunks_exact(CO)) {
            // The block's inputs stay in registers while each channel's filter value is
            // broadcast once: RR·S + 1 live vectors beside the accumulators.
            let mut xs = [[_mm512_setzero_ps(); S]; RR];
            for (r, xs_r) in xs.iter_mut().enumerate() {
                for (s, v) in xs_r.iter_mut().enumerate() {
                    // SAFETY: the caller bounds every load of the block.
                    *v = unsafe { _mm512_loadu_ps(x.add(r * b.row_step + 16 * s + tap)) };
                }
            }
            for (c, &wk) in w_k.iter().enumerate() {
                let wv = _mm512_set1_ps(wk);
                for (acc_r, xs_r) in acc.iter_mut().zip(&xs) {
                    for (acc_rs, &xv) in acc_r.iter_mut().zip(xs_r) {
                        acc_rs[c] = _mm512_fmadd_ps(xv, wv, acc_rs[c]);
                    }
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            let oh = b.oh + r;
            if oh >= out_h {
                break;
            }
            for (s, acc_rs) in acc_r.iter().enumerate() {
                let ow = b.ow + 16 * s;
                let valid = 16.min(out_w.saturating_sub(ow)) * CO;
                if valid == 0 {
                    break;
                }
                let dst = &mut y[(oh * out_w + ow) * CO..][..valid];
                for q in 0..valid.div_ceil(16) {
                    let mut v = _mm512_setzero_ps();
                    for (c, &acc_c) in acc_rs.iter().enumerate() {
                        let k = q * CO + c;
                        // SAFETY: `idx[k]` holds 16 lane indices.
                        let idx = unsafe { _mm512_loadu_si512(il.idx[k].as_ptr().cast()) };
                        v = _mm512_mask_permutexvar_ps(v, il.mask[k], idx, acc_c);
                    }
                    let lanes = (valid - 16 * q).min(16);
                    let m = if lanes == 16 { u16::MAX } else { (1u16 << lanes) - 1 };
                    // SAFETY: the masked lanes lie inside `dst`.
                    unsafe { _mm512_mask_storeu_ps(dst[16 * q..].as_mut_ptr(), m, v) };
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx {
    use super::Block;

    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block(_: usize, _: usize, _: *const f32, _: &[usize], _: &[f32], _: &Block, _: &super::Interleave, _: &mut [f32]) {
        unreachable!("planar convolution needs AVX-512F")
    }
}
