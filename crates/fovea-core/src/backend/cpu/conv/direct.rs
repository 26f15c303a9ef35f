//! Direct (no im2col) NHWC convolution for narrow channel counts, with AVX-512 kernels.
//!
//! With few channels the im2col + gemm path spends its time packing: a LeNet first layer
//! turns each output pixel into a 25-element patch row and multiplies it by a 25×6 filter,
//! far too small a gemm to amortise the copies. Here the patches are never built:
//! - forward: an output row is cut into strips of `R` columns; a register block of `R ×
//!   NB·16` accumulators (output columns × output channels) sums `kh·kw·c_in` taps, each one
//!   a broadcast input value times a row of the (HWIO, hence `[kg, c_out]`) filter;
//! - filter gradient: the same block shape with the roles swapped: `R` rows `(i, j, ci)` of
//!   `dw` × `NB·16` output channels, summed over every output pixel of an image;
//! - input gradient (stride 1): a forward convolution of `dy` with the rotated filter.
//!
//! Every image is first copied into a zero-bordered scratch image covering exactly the
//! window extent, so the kernels never test bounds: padding, stride and dilation are only
//! offsets. Filter-gradient partials are per chunk of images, whose size depends only on the
//! shape, and are added in chunk order, so results do not depend on the thread count.
//!
//! The kernels need AVX-512F, detected at run time; without it [`applies`] is false and the
//! caller keeps its portable im2col + gemm path.

use super::common::{avx512, sum_partials_in_order};
use super::planar;
use crate::backend::Conv2dSpec;
use rayon::prelude::*;
use std::cell::RefCell;

/// Output channels above which the gemm path is used: beyond four 16-lane blocks per pass
/// the direct kernel re-reads the input once per block while gemm packs it once.
const MAX_C_OUT: usize = 64;

/// Whether the direct kernels handle the forward pass and filter gradient of `s`.
pub(super) fn applies(s: &Conv2dSpec) -> bool {
    s.groups == 1 && s.c_out <= MAX_C_OUT && s.c_out > 0 && s.c_in > 0 && avx512()
}

/// Whether the input gradient of `s` runs as a direct forward convolution: stride 1, no side
/// padded by more than the dilated kernel reach (the rotated padding would be negative), and
/// few enough input channels for the rotated convolution's outputs. When the rotated
/// convolution would run column-vectorised over many (> 8) input channels, gemm + col2im
/// measured faster in an A/B timing (LeNet C3: about 90 against 67 GFLOP/s), so it keeps
/// that case.
pub(super) fn applies_grad_input(s: &Conv2dSpec) -> bool {
    let (reach_h, reach_w) = ((s.kh - 1) * s.dilation.0, (s.kw - 1) * s.dilation.1);
    let (pt, pb, pl, pr) = s.pad;
    let rotated = Conv2dSpec { c_in: s.c_out, c_out: s.c_in, out_w: s.w, ..s.clone() };
    let wide_planar = s.c_out > planar::MAX_CO && planar::applies(&rotated);
    !wide_planar
        && s.groups == 1
        && s.c_in <= MAX_C_OUT
        && s.c_in > 0
        && s.c_out > 0
        && s.stride == (1, 1)
        && pt.max(pb) <= reach_h
        && pl.max(pr) <= reach_w
        && avx512()
}

thread_local! {
    /// Each thread's padded-image buffer, kept between calls to avoid page faults per image.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's padded-image buffer.
fn with_padded<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    super::common::with_thread_buffer(&PADDED, f)
}

/// The zero-bordered image the kernels read: exactly the rows and columns the windows reach.
struct Padded {
    /// Rows: `(out_h − 1)·sh + (kh − 1)·dh + 1`.
    hp: usize,
    /// Columns, likewise.
    wp: usize,
}

impl Padded {
    fn new(s: &Conv2dSpec) -> Self {
        Padded {
            hp: (s.out_h - 1) * s.stride.0 + (s.kh - 1) * s.dilation.0 + 1,
            wp: (s.out_w - 1) * s.stride.1 + (s.kw - 1) * s.dilation.1 + 1,
        }
    }

    /// Copies image `img` (`[h, w, c_in]`) into `buf` as `[hp, wp, c_in]`, zeros outside.
    fn fill(&self, s: &Conv2dSpec, img: &[f32], buf: &mut Vec<f32>) {
        let c = s.c_in;
        let len = self.hp * self.wp * c;
        buf.clear();
        buf.resize(len, 0.0);
        // Padded column pc holds input column pc − pad_left.
        let first = s.pad.2.min(self.wp);
        let last = (s.pad.2 + s.w).min(self.wp);
        if first >= last {
            return;
        }
        for pr in 0..self.hp {
            let Some(ih) = pr.checked_sub(s.pad.0).filter(|&ih| ih < s.h) else { continue };
            let src = &img[(ih * s.w + first - s.pad.2) * c..][..(last - first) * c];
            buf[(pr * self.wp + first) * c..][..(last - first) * c].copy_from_slice(src);
        }
    }

    /// Offset in the padded image of tap `(i, j, ci)` from its window's top-left corner, in
    /// HWIO row order.
    fn taps(&self, s: &Conv2dSpec) -> Vec<usize> {
        let mut taps = Vec::with_capacity(s.kh * s.kw * s.c_in);
        for i in 0..s.kh {
            for j in 0..s.kw {
                for ci in 0..s.c_in {
                    taps.push((i * s.dilation.0 * self.wp + j * s.dilation.1) * s.c_in + ci);
                }
            }
        }
        taps
    }
}

/// Register blocks: the most columns (rows of `dw`) per pass for `nb` 16-lane channel blocks,
/// keeping `R·nb` accumulators plus the filter row within the 32 vector registers.
const MAX_R: [usize; 4] = [16, 12, 8, 6];

/// Splits `len` into near-equal blocks of at most `max`: `(block, count)`.
fn blocks(len: usize, max: usize) -> (usize, usize) {
    let count = len.div_ceil(max);
    (len.div_ceil(count), count)
}

/// The lane mask of the last 16-lane block when `lanes` (1..=16) of it are live.
fn lane_mask(lanes: usize) -> u16 {
    if lanes >= 16 {
        u16::MAX
    } else {
        (1u16 << lanes) - 1
    }
}

/// Channel blocks of one pass: `(first channel, 16-lane blocks, live lanes in the last)`.
fn channel_passes(c: usize) -> impl Iterator<Item = (usize, usize, u16)> {
    (0..c).step_by(16 * MAX_R.len()).map(move |cb| {
        let nb = (c - cb).div_ceil(16).min(MAX_R.len());
        (cb, nb, lane_mask(c - cb - (nb - 1) * 16))
    })
}

/// Forward convolution (`groups == 1`); call only when [`applies`].
pub(super) fn forward(x: &[f32], w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    if planar::applies(s) {
        return planar::forward(x, w, s);
    }
    let y_img = s.out_h * s.out_w * s.c_out;
    // The strips cover every output row, column and channel block, and store (not add).
    let mut y = crate::buffer_pool::for_overwrite(s.n * y_img);
    if y.is_empty() {
        return y;
    }
    let pad = Padded::new(s);
    let taps = pad.taps(s);
    // The filter with rows padded to whole 16-lane blocks, so its loads need no mask.
    let cop = s.c_out.div_ceil(16) * 16;
    let mut wp = vec![0f32; taps.len() * cop];
    for (dst, src) in wp.chunks_exact_mut(cop).zip(w.chunks_exact(s.c_out)) {
        dst[..s.c_out].copy_from_slice(src);
    }
    let x_img = s.h * s.w * s.c_in;
    // Whole images per task, enough work (about 2²¹ multiply-adds) to hide the task's cost.
    let per_task = (1usize << 21).div_ceil((y_img * taps.len()).max(1)).clamp(1, s.n);
    y.par_chunks_mut(y_img * per_task).enumerate().for_each(|(chunk, y_chunk)| {
        with_padded(|buf| {
            for (k, y_n) in y_chunk.chunks_mut(y_img).enumerate() {
                let n = chunk * per_task + k;
                pad.fill(s, &x[n * x_img..][..x_img], buf);
                for (cb, nb, mask) in channel_passes(s.c_out) {
                    let (r, strips) = blocks(s.out_w, MAX_R[nb - 1]);
                    for oh in 0..s.out_h {
                        let x_row = oh * s.stride.0 * pad.wp * s.c_in;
                        for strip in 0..strips {
                            let ow = strip * r;
                            let cols = r.min(s.out_w - ow);
                            let x_off = x_row + ow * s.stride.1 * s.c_in;
                            let y_off = (oh * s.out_w + ow) * s.c_out + cb;
                            // The strip's last window ends inside the padded image and its last
                            // output inside `y_n`: the kernel's reads and writes stay in bounds.
                            assert!(x_off + (cols - 1) * s.stride.1 * s.c_in + taps.last().copied().unwrap_or(0) < buf.len());
                            assert!(y_off + (cols - 1) * s.c_out + (nb - 1) * 16 + (mask.count_ones() as usize) <= y_n.len());
                            // SAFETY: bounds asserted above; `applies` checked AVX-512F.
                            unsafe {
                                avx::forward_strip(
                                    cols,
                                    nb,
                                    buf[x_off..].as_ptr(),
                                    s.stride.1 * s.c_in,
                                    &taps,
                                    wp[cb..].as_ptr(),
                                    cop,
                                    y_n[y_off..].as_mut_ptr(),
                                    s.c_out,
                                    mask,
                                )
                            };
                        }
                    }
                }
            }
        })
    });
    y
}

/// Images per filter-gradient chunk: enough output pixels that a partial's reduction is
/// cheap beside its products. Depends on the shape only, never on the thread count.
fn images_per_chunk(s: &Conv2dSpec) -> usize {
    let per_image = (s.out_h * s.out_w * s.kh * s.kw * s.c_in * s.c_out).max(1);
    (1usize << 22).div_ceil(per_image).clamp(1, s.n.max(1))
}

/// Filter gradient (`groups == 1`); call only when [`applies`].
pub(super) fn grad_filter(x: &[f32], dy: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    let kg = s.kh * s.kw * s.c_in;
    let len = kg * s.c_out;
    if len == 0 || s.n == 0 || s.out_h == 0 || s.out_w == 0 {
        return vec![0.0; len];
    }
    let pad = Padded::new(s);
    let taps = pad.taps(s);
    let per = images_per_chunk(s);
    let (x_img, dy_img) = (s.h * s.w * s.c_in, s.out_h * s.out_w * s.c_out);
    let partial = |c: usize, buf: &mut Vec<f32>| {
        let mut dw = vec![0f32; len];
        for n in c * per..((c + 1) * per).min(s.n) {
            pad.fill(s, &x[n * x_img..][..x_img], buf);
            let dy_n = &dy[n * dy_img..][..dy_img];
            for (cb, nb, mask) in channel_passes(s.c_out) {
                let (r, count) = blocks(kg, MAX_R[nb - 1]);
                for k in 0..count {
                    let rows = &taps[k * r..(k * r + r).min(kg)];
                    // The last tap of the last window lies inside the padded image.
                    let reach = ((s.out_h - 1) * s.stride.0 * pad.wp + (s.out_w - 1) * s.stride.1) * s.c_in;
                    assert!(reach + rows.iter().max().copied().unwrap_or(0) < buf.len());
                    assert!((k * r + rows.len() - 1) * s.c_out + cb + (nb - 1) * 16 + mask.count_ones() as usize <= dw.len());
                    // SAFETY: bounds asserted above (`dy_n` holds every output pixel's
                    // channels); `applies` checked AVX-512F.
                    unsafe {
                        avx::filter_block(
                            rows.len(),
                            nb,
                            buf.as_ptr(),
                            rows,
                            (s.out_h, s.stride.0 * pad.wp * s.c_in),
                            (s.out_w, s.stride.1 * s.c_in),
                            dy_n[cb..].as_ptr(),
                            s.c_out,
                            dw[k * r * s.c_out + cb..].as_mut_ptr(),
                            mask,
                        )
                    };
                }
            }
        }
        dw
    };
    sum_partials_in_order(s.n.div_ceil(per), len, partial)
}

/// Input gradient (stride 1) as a forward convolution of `dy` with the filter rotated by
/// 180° and its channel axes swapped, padded by `(k − 1)·d − pad`; call only when
/// [`applies_grad_input`].
pub(super) fn grad_input(dy: &[f32], w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    if s.out_h == 0 || s.out_w == 0 {
        return vec![0.0; s.n * s.h * s.w * s.c_in];
    }
    forward(dy, &super::common::rotated_filter(w, s), &super::common::input_grad_spec(s))
}

/// The AVX-512 register-block kernels. `R` (columns or filter rows) and `NB` (16-lane
/// channel blocks) are compile-time so the accumulators live in registers.
#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// Calls `$f::<R, NB>` for run-time `r ≤ MAX_R[nb − 1]`, `nb ≤ 4`.
    macro_rules! dispatch {
        ($f:ident, $r:expr, $nb:expr, $args:tt) => {
            match $nb {
                1 => dispatch!(@r $f, 1, $r, $args, [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16]),
                2 => dispatch!(@r $f, 2, $r, $args, [1 2 3 4 5 6 7 8 9 10 11 12]),
                3 => dispatch!(@r $f, 3, $r, $args, [1 2 3 4 5 6 7 8]),
                4 => dispatch!(@r $f, 4, $r, $args, [1 2 3 4 5 6]),
                _ => unreachable!("at most four channel blocks"),
            }
        };
        (@r $f:ident, $nb:literal, $r:expr, $args:tt, [$($rr:literal)*]) => {
            match $r {
                $($rr => $f::<$rr, $nb> $args,)*
                _ => unreachable!("register block too large"),
            }
        };
    }

    /// Writes `cols` output pixels `y[t·y_step + c]` (`c` over `nb` blocks, the last masked)
    /// as `Σ_k x[t·x_step + taps[k]] · w[k·w_row + c]`.
    ///
    /// # Safety
    /// AVX-512F must be available, every read `x[t·x_step + taps[k]]` and `w[k·w_row + c]`
    /// (`c < 16·nb`) must be in bounds, and so must every masked write.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn forward_strip(
        cols: usize,
        nb: usize,
        x: *const f32,
        x_step: usize,
        taps: &[usize],
        w: *const f32,
        w_row: usize,
        y: *mut f32,
        y_step: usize,
        mask: u16,
    ) {
        unsafe { dispatch!(forward_kernel, cols, nb, (x, x_step, taps, w, w_row, y, y_step, mask)) }
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn forward_kernel<const R: usize, const NB: usize>(
        x: *const f32,
        x_step: usize,
        taps: &[usize],
        w: *const f32,
        w_row: usize,
        y: *mut f32,
        y_step: usize,
        mask: u16,
    ) {
        let mut acc = [[_mm512_setzero_ps(); NB]; R];
        let mut w_k = w;
        for &tap in taps {
            unsafe {
                let mut wv = [_mm512_setzero_ps(); NB];
                for (b, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(w_k.add(16 * b));
                }
                let x_k = x.add(tap);
                for (t, a) in acc.iter_mut().enumerate() {
                    let xv = _mm512_set1_ps(*x_k.add(t * x_step));
                    for b in 0..NB {
                        a[b] = _mm512_fmadd_ps(xv, wv[b], a[b]);
                    }
                }
                w_k = w_k.add(w_row);
            }
        }
        for (t, a) in acc.iter().enumerate() {
            for (b, v) in a.iter().enumerate() {
                unsafe {
                    let p = y.add(t * y_step + 16 * b);
                    if b + 1 == NB {
                        _mm512_mask_storeu_ps(p, mask, *v);
                    } else {
                        _mm512_storeu_ps(p, *v);
                    }
                }
            }
        }
    }

    /// Adds to `dw[t·c_out + c]` (`t < rows.len()`, `c` over `nb` blocks, the last masked)
    /// `Σ_(oh, ow) x[oh·row_step + ow·col_step + rows[t]] · dy[(oh·out_w + ow)·c_out + c]`,
    /// with `(out_h, row_step)` = `oh_steps` and `(out_w, col_step)` = `ow_steps`.
    ///
    /// # Safety
    /// AVX-512F must be available and every read and masked read/write in bounds.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn filter_block(
        r: usize,
        nb: usize,
        x: *const f32,
        rows: &[usize],
        oh_steps: (usize, usize),
        ow_steps: (usize, usize),
        dy: *const f32,
        c_out: usize,
        dw: *mut f32,
        mask: u16,
    ) {
        unsafe { dispatch!(filter_kernel, r, nb, (x, rows, oh_steps, ow_steps, dy, c_out, dw, mask)) }
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn filter_kernel<const R: usize, const NB: usize>(
        x: *const f32,
        rows: &[usize],
        (out_h, row_step): (usize, usize),
        (out_w, col_step): (usize, usize),
        dy: *const f32,
        c_out: usize,
        dw: *mut f32,
        mask: u16,
    ) {
        let mut off = [0usize; R];
        off.copy_from_slice(&rows[..R]);
        let mut acc = [[_mm512_setzero_ps(); NB]; R];
        let mut dy_p = dy;
        for oh in 0..out_h {
            for ow in 0..out_w {
                unsafe {
                    let x_p = x.add(oh * row_step + ow * col_step);
                    let mut dv = [_mm512_setzero_ps(); NB];
                    for (b, v) in dv.iter_mut().enumerate() {
                        *v = if b + 1 == NB { _mm512_maskz_loadu_ps(mask, dy_p.add(16 * b)) } else { _mm512_loadu_ps(dy_p.add(16 * b)) };
                    }
                    for (t, a) in acc.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(*x_p.add(off[t]));
                        for b in 0..NB {
                            a[b] = _mm512_fmadd_ps(xv, dv[b], a[b]);
                        }
                    }
                    dy_p = dy_p.add(c_out);
                }
            }
        }
        for (t, a) in acc.iter().enumerate() {
            for (b, v) in a.iter().enumerate() {
                unsafe {
                    let p = dw.add(t * c_out + 16 * b);
                    let m = if b + 1 == NB { mask } else { u16::MAX };
                    let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(m, p), *v);
                    _mm512_mask_storeu_ps(p, m, sum);
                }
            }
        }
    }
}

/// Without x86-64 there are no kernels; [`applies`] is always false there.
#[cfg(not(target_arch = "x86_64"))]
mod avx {
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn forward_strip(
        _: usize,
        _: usize,
        _: *const f32,
        _: usize,
        _: &[usize],
        _: *const f32,
        _: usize,
        _: *mut f32,
        _: usize,
        _: u16,
    ) {
        unreachable!("direct convolution needs AVX-512F")
    }
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn filter_block(
        _: usize,
        _: usize,
        _: *const f32,
        _: &[usize],
        _: (usize, usize),
        _: (usize, usize),
        _: *const f32,
        _: usize,
        _: *mut f32,
        _: u16,
    ) {
        unreachable!("direct convolution needs AVX-512F")
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::cpu::conv;
    use crate::backend::{reference, Conv2dSpec};
    use crate::ops::padding::{resolve_axis, Padding};
    use crate::testing::{assert_close, rand};
    use crate::{Device, HostData};

    /// `[n, h, w, c_in]`, `(kh, kw)`, `c_out`, stride, dilation, padding, groups.
    type Case = ([usize; 4], (usize, usize), usize, (usize, usize), (usize, usize), Padding, usize);

    fn spec(&(dims, k, c_out, stride, dilation, ref p, groups): &Case) -> Conv2dSpec {
        let ay = resolve_axis("t", p, 0, dims[1], k.0, stride.0, dilation.0).unwrap();
        let ax = resolve_axis("t", p, 1, dims[2], k.1, stride.1, dilation.1).unwrap();
        Conv2dSpec {
            n: dims[0],
            h: dims[1],
            w: dims[2],
            c_in: dims[3],
            kh: k.0,
            kw: k.1,
            c_out,
            groups,
            stride,
            dilation,
            pad: (ay.pad_before, ay.pad_after, ax.pad_before, ax.pad_after),
            out_h: ay.out,
            out_w: ax.out,
        }
    }

    fn cases() -> Vec<Case> {
        let asym = Padding::Explicit(vec![(2, 0), (0, 1)]);
        vec![
            ([3, 28, 28, 1], (5, 5), 6, (1, 1), (1, 1), Padding::Same, 1),
            ([2, 14, 14, 6], (5, 5), 16, (1, 1), (1, 1), Padding::Valid, 1),
            ([2, 9, 11, 3], (3, 3), 17, (2, 2), (1, 1), Padding::Same, 1),
            ([2, 10, 9, 5], (3, 2), 33, (1, 2), (2, 1), asym.clone(), 1),
            ([1, 12, 13, 4], (3, 3), 64, (2, 1), (2, 2), Padding::Same, 1),
            ([2, 7, 8, 2], (2, 3), 1, (1, 1), (2, 2), asym, 1),
            ([1, 6, 40, 3], (1, 1), 7, (1, 1), (1, 1), Padding::Valid, 1),
            ([2, 8, 8, 16], (3, 3), 16, (1, 1), (1, 1), Padding::Same, 1),
            ([2, 5, 5, 3], (3, 3), 80, (1, 1), (1, 1), Padding::Same, 1),
            ([2, 6, 6, 4], (3, 3), 6, (1, 1), (1, 1), Padding::Same, 2),
            ([2, 11, 37, 3], (3, 3), 5, (2, 1), (1, 2), Padding::Same, 1),
        ]
    }

    fn f32s(s: HostData) -> Vec<f32> {
        s.as_f32("test").unwrap().to_vec()
    }

    #[test]
    fn direct_conv_matches_reference() {
        if !super::avx512() {
            eprintln!("skipping: no AVX-512F, the direct kernels never run here");
            return;
        }
        for (seed, case) in cases().iter().enumerate() {
            let s = spec(case);
            let seed = 10 * seed as u64;
            let x = rand(&[s.n, s.h, s.w, s.c_in], -1.0, 1.0, seed, Device::Cpu);
            let w = rand(&[s.kh, s.kw, s.c_in / s.groups, s.c_out], -1.0, 1.0, seed + 1, Device::Cpu);
            let dy = rand(&[s.n, s.out_h, s.out_w, s.c_out], -1.0, 1.0, seed + 2, Device::Cpu);
            let (x, w, dy) = (x.host_storage(), w.host_storage(), dy.host_storage());
            let what = |pass: &str| format!("{pass} {case:?}");
            let want = f32s(reference::conv::conv2d(x, w, &s).unwrap());
            assert_close(&what("forward"), &f32s(conv::conv2d(x, w, &s).unwrap()), &want, 1e-4, 1e-4);
            let want = f32s(reference::conv::conv2d_grad_filter(x, dy, &s).unwrap());
            assert_close(&what("grad_filter"), &f32s(conv::conv2d_grad_filter(x, dy, &s).unwrap()), &want, 1e-4, 1e-4);
            let want = f32s(reference::conv::conv2d_grad_input(dy, w, &s).unwrap());
            assert_close(&what("grad_input"), &f32s(conv::conv2d_grad_input(dy, w, &s).unwrap()), &want, 1e-4, 1e-4);
        }
    }

    #[test]
    fn direct_conv_dispatch_covers_the_narrow_cases() {
        let all = cases();
        let direct = all.iter().filter(|c| super::applies(&spec(c))).count();
        let direct_dx = all.iter().filter(|c| super::applies_grad_input(&spec(c))).count();
        let planar = all.iter().filter(|c| super::planar::applies(&spec(c))).count();
        if super::avx512() {
            // All but the 80-channel and the grouped case. Of the six ungrouped stride-1
            // cases, LeNet C3 and the 80-channel one keep gemm for the input gradient (their
            // rotated convolutions would be column-vectorised over 16 and 80 channels).
            // Planar: LeNet C1, the 1- and 7-channel cases and the 5-channel row-strided one.
            assert_eq!((direct, direct_dx, planar), (9, 4, 4));
        } else {
            assert_eq!((direct, direct_dx, planar), (0, 0, 0));
        }
    }

    #[test]
    fn direct_conv_is_independent_of_thread_count() {
        let run = |threads: usize, s: &Conv2dSpec, x: &HostData, w: &HostData, dy: &HostData| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                (
                    f32s(conv::conv2d(x, w, s).unwrap()),
                    f32s(conv::conv2d_grad_filter(x, dy, s).unwrap()),
                    f32s(conv::conv2d_grad_input(dy, w, s).unwrap()),
                )
            })
        };
        // 40 images of LeNet C1 make several filter-gradient chunks.
        let mut all = cases();
        all.push(([40, 28, 28, 1], (5, 5), 6, (1, 1), (1, 1), Padding::Same, 1));
        for case in &all {
            let s = spec(case);
            let x = rand(&[s.n, s.h, s.w, s.c_in], -1.0, 1.0, 1, Device::Cpu);
            let w = rand(&[s.kh, s.kw, s.c_in / s.groups, s.c_out], -1.0, 1.0, 2, Device::Cpu);
            let dy = rand(&[s.n, s.out_h, s.out_w, s.c_out], -1.0, 1.0, 3, Device::Cpu);
            let one = run(1, &s, x.host_storage(), w.host_storage(), dy.host_storage());
            let two = run(2, &s, x.host_storage(), w.host_storage(), dy.host_storage());
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one.0), bits(&two.0), "forward {case:?}");
            assert_eq!(bits(&one.1), bits(&two.1), "grad_filter {case:?}");
            assert_eq!(bits(&one.2), bits(&two.2), "grad_input {case:?}");
        }
    }
}
