//! Fast 2-D convolution: im2col + gemm over chunks of output lines, rayon across chunks.
//!
//! For each group `g` a chunk of output lines `(n, oh)` becomes the patch matrix `cols`
//! `[rows, kg]` (`rows` = lines·out_w, `kg` = kh·kw·cin_g, NHWC patch order `(i, j, ci)`),
//! which is exactly the row order of the HWIO filter viewed as `[kg, c_out]`. Then
//! - forward: `y_g = cols · w_g`;
//! - filter gradient: `dw_g = colsᵀ · dy_g`, one partial per chunk, summed in chunk order;
//! - input gradient: for stride 1, a forward convolution of `dy` with the rotated kernel;
//!   otherwise `dcols = dy_g · w_gᵀ` per chunk of whole images, scattered back (col2im).
//!
//! Chunks hold about 1024 patch rows and at most 2²⁰ patch elements, so scratch stays small
//! even for large images. Groups are strided column blocks of `w`, `y` and `dy`, so no copies
//! are made for them. A 1×1, stride-1, unpadded convolution needs no im2col: the input already
//! is `cols`. Depthwise convolutions (`groups == c_in`) have their own direct kernels
//! ([`super::conv_depthwise`]); per-group gemms of width `multiplier` would waste the gemm.
//!
//! Chunk sizes depend only on the shapes, never on the thread count, and the filter-gradient
//! partials are added in chunk order, so results are the same whatever the number of threads.

use super::{conv_depthwise, conv_direct, conv_products, conv_winograd};
use crate::backend::Conv2dSpec;
use crate::{HostData, Result};
use rayon::prelude::*;
use std::cell::RefCell;

/// A strided read-only matrix: element `(r, c)` is `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub(super) data: &'a [f32],
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl<'a> View<'a> {
    fn new(data: &'a [f32], rs: usize, cs: usize) -> Self {
        View { data, rs, cs }
    }
}

/// `C (+)= A · B` with `A` an `m×k` view, `B` a `k×n` view and `C` row-major with row stride
/// `c_rs` (unit column stride), through the backend's one strided SGEMM.
#[allow(clippy::too_many_arguments)]
fn gemm_views(m: usize, k: usize, n: usize, a: View, b: View, c: &mut [f32], c_rs: usize, accumulate: bool, threads: usize) {
    super::matmul::sgemm_strided(m, k, n, (a.data, a.rs, a.cs), (b.data, b.rs, b.cs), c, c_rs, accumulate, threads);
}

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

/// Shape facts shared by the three passes.
pub(super) struct Geometry {
    /// Output pixels per image.
    p: usize,
    cin_g: usize,
    cout_g: usize,
    /// Patch length `kh·kw·cin_g`.
    pub(super) kg: usize,
    /// The input is its own patch matrix (1×1 kernel, stride 1, no padding).
    direct: bool,
    /// Output lines `(n, oh)` per forward / filter-gradient chunk: enough rows to keep the
    /// gemm busy, few enough to bound `cols` even for large images.
    pub(super) lines: usize,
    /// Images per input-gradient chunk (col2im scatters over whole images, so chunks of the
    /// gemm + col2im path never split one).
    chunk: usize,
}

impl Geometry {
    pub(super) fn new(s: &Conv2dSpec) -> Self {
        let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
        let p = s.out_h * s.out_w;
        let kg = s.kh * s.kw * cin_g;
        let direct = s.kh == 1 && s.kw == 1 && s.stride == (1, 1) && s.pad == (0, 0, 0, 0);
        let per_chunk = |unit: usize| 1024usize.div_ceil(unit.max(1)).min((1usize << 20) / (unit * kg).max(1)).max(1);
        Geometry { p, cin_g, cout_g, kg, direct, lines: per_chunk(s.out_w), chunk: per_chunk(p) }
    }

    /// Gemm threads per chunk when `chunks` run side by side.
    fn inner_threads(&self, chunks: usize) -> usize {
        (rayon::current_num_threads() / chunks.max(1)).max(1)
    }
}

/// Where the taps of one kernel row of output column `ow` read: the first input column
/// (possibly negative), and whether the whole row of `kw` taps is one contiguous, in-bounds
/// run of `kw·c_in` input elements (no column dilation, one group, no padding touched), which
/// is then moved with one slice copy instead of `kw` small ones.
#[inline]
fn tap_run(s: &Conv2dSpec, ow: usize) -> (isize, bool) {
    let iw0 = (ow * s.stride.1) as isize - s.pad.2 as isize;
    let contiguous = s.dilation.1 == 1 && s.groups == 1 && iw0 >= 0 && iw0 as usize + s.kw <= s.w;
    (iw0, contiguous)
}

/// Fills `cols` `[out_w, kg]` with the patches of group `g` for output line `line` (image
/// `line / out_h`, row `line % out_h`), zeros in the padding.
fn im2col_line(x: &[f32], s: &Conv2dSpec, geo: &Geometry, g: usize, line: usize, cols: &mut [f32]) {
    let (cin_g, kg) = (geo.cin_g, geo.kg);
    let (n, oh) = (line / s.out_h, line % s.out_h);
    let x_img = &x[n * s.h * s.w * s.c_in..][..s.h * s.w * s.c_in];
    for ow in 0..s.out_w {
        let row = &mut cols[ow * kg..][..kg];
        let (iw0, contiguous) = tap_run(s, ow);
        for i in 0..s.kh {
            let taps = &mut row[i * s.kw * cin_g..][..s.kw * cin_g];
            let ih = (oh * s.stride.0 + i * s.dilation.0).wrapping_sub(s.pad.0);
            if ih >= s.h {
                taps.fill(0.0);
            } else if contiguous {
                taps.copy_from_slice(&x_img[(ih * s.w + iw0 as usize) * s.c_in..][..s.kw * s.c_in]);
            } else {
                for (j, dst) in taps.chunks_exact_mut(cin_g).enumerate() {
                    let iw = (iw0 + (j * s.dilation.1) as isize) as usize;
                    if iw >= s.w {
                        dst.fill(0.0);
                    } else {
                        dst.copy_from_slice(&x_img[(ih * s.w + iw) * s.c_in + g * cin_g..][..cin_g]);
                    }
                }
            }
        }
    }
}

/// Adds the patch gradients `dcols` `[p, kg]` of group `g` back onto one image's gradient.
fn col2im(dcols: &[f32], s: &Conv2dSpec, geo: &Geometry, g: usize, dx_img: &mut [f32]) {
    let (cin_g, kg) = (geo.cin_g, geo.kg);
    let add = |dst: &mut [f32], src: &[f32]| dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
    for oh in 0..s.out_h {
        for ow in 0..s.out_w {
            let row = &dcols[(oh * s.out_w + ow) * kg..][..kg];
            let (iw0, contiguous) = tap_run(s, ow);
            for i in 0..s.kh {
                let ih = (oh * s.stride.0 + i * s.dilation.0).wrapping_sub(s.pad.0);
                if ih >= s.h {
                    continue;
                }
                let taps = &row[i * s.kw * cin_g..][..s.kw * cin_g];
                if contiguous {
                    add(&mut dx_img[(ih * s.w + iw0 as usize) * s.c_in..][..s.kw * s.c_in], taps);
                    continue;
                }
                for (j, src) in taps.chunks_exact(cin_g).enumerate() {
                    let iw = (iw0 + (j * s.dilation.1) as isize) as usize;
                    if iw < s.w {
                        add(&mut dx_img[(ih * s.w + iw) * s.c_in + g * cin_g..][..cin_g], src);
                    }
                }
            }
        }
    }
}

/// The patch matrix of group `g` for output lines `lines`: borrowed from `x` when the
/// convolution is direct, else built in `scratch`.
pub(super) fn patches<'a>(
    x: &'a [f32],
    s: &Conv2dSpec,
    geo: &Geometry,
    g: usize,
    lines: std::ops::Range<usize>,
    scratch: &'a mut Vec<f32>,
) -> View<'a> {
    if geo.direct {
        return View::new(&x[lines.start * s.out_w * s.c_in + g * geo.cin_g..], s.c_in, 1);
    }
    let per = s.out_w * geo.kg;
    if scratch.len() < lines.len() * per {
        scratch.resize(lines.len() * per, 0.0);
    }
    for (k, line) in lines.enumerate() {
        im2col_line(x, s, geo, g, line, &mut scratch[k * per..][..per]);
    }
    View::new(scratch, geo.kg, 1)
}

/// Forward convolution.
pub(super) fn conv2d(x: &HostData, w: &HostData, s: &Conv2dSpec) -> Result<HostData> {
    let (x, w) = (x.as_f32("conv2d")?, w.as_f32("conv2d")?);
    if s.groups > 1 && s.groups == s.c_in {
        return Ok(HostData::F32(conv_depthwise::forward(x, w, s)));
    }
    if conv_winograd::applies(s) {
        return Ok(HostData::F32(conv_winograd::forward(x, w, s)));
    }
    if conv_direct::applies(s) {
        return Ok(HostData::F32(conv_direct::forward(x, w, s)));
    }
    if conv_products::applies(s) {
        return Ok(HostData::F32(conv_products::forward(x, w, s)));
    }
    Ok(HostData::F32(forward_gemm(x, w, s)))
}

/// [`conv2d`] with the per-channel map `y·scale + shift` (then ReLU when `relu`) applied by
/// the product kernel's tasks while their output block is in cache; `None` where another
/// kernel runs the convolution (the caller then applies the map as its own pass).
pub(super) fn conv2d_affine(
    x: &HostData,
    w: &HostData,
    s: &Conv2dSpec,
    scale: &HostData,
    shift: &HostData,
    relu: bool,
) -> Result<Option<HostData>> {
    let other_kernel = (s.groups > 1 && s.groups == s.c_in) || conv_winograd::applies(s) || conv_direct::applies(s);
    if other_kernel || !conv_products::applies(s) {
        return Ok(None);
    }
    const OP: &str = "conv2d_affine";
    let (x, w, scale, shift) = (x.as_f32(OP)?, w.as_f32(OP)?, scale.as_f32(OP)?, shift.as_f32(OP)?);
    if scale.len() != s.c_out || shift.len() != s.c_out {
        return Err(crate::Error::invalid(
            OP,
            format!("scale and shift need {} entries, got {} and {}", s.c_out, scale.len(), shift.len()),
        ));
    }
    let epilogue = conv_products::Epilogue { scale, shift, relu };
    Ok(Some(HostData::F32(conv_products::forward_with(x, w, s, Some(&epilogue)))))
}

/// The im2col + gemm forward pass.
fn forward_gemm(x: &[f32], w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    let geo = Geometry::new(s);
    let mut y = crate::buffer_pool::zeroed(s.n * geo.p * s.c_out);
    if y.is_empty() {
        return y;
    }
    let chunk_len = geo.lines * s.out_w * s.c_out;
    let threads = geo.inner_threads(y.len().div_ceil(chunk_len));
    y.par_chunks_mut(chunk_len).enumerate().for_each(|(ci, y_chunk)| {
        with_scratch(|scratch| {
            let lines = ci * geo.lines..ci * geo.lines + y_chunk.len() / (s.out_w * s.c_out);
            let rows = lines.len() * s.out_w;
            for g in 0..s.groups {
                let cols = patches(x, s, &geo, g, lines.clone(), scratch);
                let w_g = View::new(&w[g * geo.cout_g..], s.c_out, 1);
                gemm_views(rows, geo.kg, geo.cout_g, cols, w_g, &mut y_chunk[g * geo.cout_g..], s.c_out, false, threads);
            }
        })
    });
    y
}

/// Input channels per group below which the rotated-kernel input gradient loses to
/// gemm + col2im: its gemm is only `cin_g` columns wide (1 for a LeNet first layer).
const MIN_FLIPPED_WIDTH: usize = 16;

/// For a stride-1 convolution, the input gradient is itself a forward convolution: of `dy`
/// with the kernel rotated by 180° and its channel axes swapped (within each group), padded
/// by `(k−1)·d − pad` on each side. That runs the forward gemm (patch length kh·kw·cout_g)
/// instead of a gemm producing the much larger `dcols` followed by a scatter. `None` when the
/// stride is not 1 or a side has more padding than `(k−1)·d` (the rotated padding would be
/// negative), the convolution is 1×1 direct (already a single gemm), or there are fewer than
/// [`MIN_FLIPPED_WIDTH`] input channels per group (the rotated conv's gemm would be too narrow).
fn grad_input_as_forward(dy: &[f32], w: &[f32], s: &Conv2dSpec) -> Option<Vec<f32>> {
    let (reach_h, reach_w) = ((s.kh - 1) * s.dilation.0, (s.kw - 1) * s.dilation.1);
    let (pt, pb, pl, pr) = s.pad;
    let narrow = s.c_in / s.groups < MIN_FLIPPED_WIDTH;
    if narrow || s.stride != (1, 1) || pt.max(pb) > reach_h || pl.max(pr) > reach_w || Geometry::new(s).direct {
        return None;
    }
    let (flipped, spec) = (rotated_filter(w, s), input_grad_spec(s));
    Some(forward_gemm(dy, &flipped, &spec))
}

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

/// Gradient with respect to the input.
pub(super) fn conv2d_grad_input(dy: &HostData, w: &HostData, s: &Conv2dSpec) -> Result<HostData> {
    let (dy, w) = (dy.as_f32("conv2d_grad_input")?, w.as_f32("conv2d_grad_input")?);
    if s.groups > 1 && s.groups == s.c_in {
        return Ok(HostData::F32(conv_depthwise::grad_input(dy, w, s)));
    }
    if conv_winograd::applies_grad_input(s) {
        return Ok(HostData::F32(conv_winograd::grad_input(dy, w, s)));
    }
    if conv_direct::applies_grad_input(s) {
        return Ok(HostData::F32(conv_direct::grad_input(dy, w, s)));
    }
    if let Some(dx) = grad_input_as_forward(dy, w, s) {
        return Ok(HostData::F32(dx));
    }
    let geo = Geometry::new(s);
    let img_len = s.h * s.w * s.c_in;
    let mut dx = crate::buffer_pool::zeroed(s.n * img_len);
    if dx.is_empty() || geo.p == 0 {
        return Ok(HostData::F32(dx));
    }
    let chunk_len = geo.chunk * img_len;
    let threads = geo.inner_threads(dx.len().div_ceil(chunk_len));
    dx.par_chunks_mut(chunk_len).enumerate().for_each(|(ci, dx_chunk)| {
        with_scratch(|scratch| {
            let first = ci * geo.chunk;
            let rows = dx_chunk.len() / img_len * geo.p;
            let dy_chunk = &dy[first * geo.p * s.c_out..];
            for g in 0..s.groups {
                let dy_g = View::new(&dy_chunk[g * geo.cout_g..], s.c_out, 1);
                // w_g is [kg, cout_g] with row stride c_out; read transposed.
                let w_g_t = View::new(&w[g * geo.cout_g..], 1, s.c_out);
                if geo.direct {
                    // Each group owns its input channels, so the product lands in place.
                    gemm_views(rows, geo.cout_g, geo.kg, dy_g, w_g_t, &mut dx_chunk[g * geo.cin_g..], s.c_in, false, threads);
                    continue;
                }
                let per = geo.p * geo.kg;
                if scratch.len() < rows * geo.kg {
                    scratch.resize(rows * geo.kg, 0.0);
                }
                gemm_views(rows, geo.cout_g, geo.kg, dy_g, w_g_t, scratch, geo.kg, false, threads);
                for (k, dx_img) in dx_chunk.chunks_mut(img_len).enumerate() {
                    col2im(&scratch[k * per..][..per], s, &geo, g, dx_img);
                }
            }
        })
    });
    Ok(HostData::F32(dx))
}

/// Gradient with respect to the filter.
pub(super) fn conv2d_grad_filter(x: &HostData, dy: &HostData, s: &Conv2dSpec) -> Result<HostData> {
    let (x, dy) = (x.as_f32("conv2d_grad_filter")?, dy.as_f32("conv2d_grad_filter")?);
    if s.groups > 1 && s.groups == s.c_in {
        return Ok(HostData::F32(conv_depthwise::grad_filter(x, dy, s)));
    }
    if conv_winograd::applies_grad_filter(s) {
        return Ok(HostData::F32(conv_winograd::grad_filter(x, dy, s)));
    }
    if conv_direct::applies(s) {
        return Ok(HostData::F32(conv_direct::grad_filter(x, dy, s)));
    }
    let geo = Geometry::new(s);
    let len = geo.kg * s.c_out;
    let total_lines = s.n * s.out_h;
    let chunks = total_lines.div_ceil(geo.lines);
    if len == 0 || geo.p == 0 || chunks == 0 {
        return Ok(HostData::F32(vec![0.0; len]));
    }
    let threads = geo.inner_threads(chunks);
    let partial = |ci: usize, scratch: &mut Vec<f32>| {
        let lines = ci * geo.lines..(ci * geo.lines + geo.lines).min(total_lines);
        let rows = lines.len() * s.out_w;
        let dy_chunk = &dy[lines.start * s.out_w * s.c_out..];
        let mut dw = vec![0f32; len];
        for g in 0..s.groups {
            let cols = patches(x, s, &geo, g, lines.clone(), scratch);
            // colsᵀ: element (kk, row) of the [kg, rows] transpose.
            let cols_t = View::new(cols.data, cols.cs, cols.rs);
            let dy_g = View::new(&dy_chunk[g * geo.cout_g..], s.c_out, 1);
            gemm_views(geo.kg, rows, geo.cout_g, cols_t, dy_g, &mut dw[g * geo.cout_g..], s.c_out, false, threads);
        }
        dw
    };
    Ok(HostData::F32(sum_partials_in_order(chunks, len, partial)))
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
