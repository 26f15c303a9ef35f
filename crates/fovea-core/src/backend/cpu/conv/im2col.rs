//! The im2col + gemm strategy: patch matrices built line by line (or borrowed when the
//! convolution is 1×1), multiplied through the backend's strided SGEMM, scattered back with
//! col2im for input gradients.

use super::common::with_scratch;
use crate::backend::Conv2dSpec;
use rayon::prelude::*;

/// A strided read-only matrix: element `(r, c)` is `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub(super) data: &'a [f32],
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl<'a> View<'a> {
    pub(super) fn new(data: &'a [f32], rs: usize, cs: usize) -> Self {
        View { data, rs, cs }
    }
}

/// `C (+)= A · B` with `A` an `m×k` view, `B` a `k×n` view and `C` row-major with row stride
/// `c_rs` (unit column stride), through the backend's one strided SGEMM.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_views(m: usize, k: usize, n: usize, a: View, b: View, c: &mut [f32], c_rs: usize, accumulate: bool, threads: usize) {
    crate::backend::cpu::matmul::sgemm_strided(m, k, n, (a.data, a.rs, a.cs), (b.data, b.rs, b.cs), c, c_rs, accumulate, threads);
}

/// Shape facts shared by the three passes.
pub(super) struct Geometry {
    /// Output pixels per image.
    pub(super) p: usize,
    pub(super) cin_g: usize,
    pub(super) cout_g: usize,
    /// Patch length `kh·kw·cin_g`.
    pub(super) kg: usize,
    /// The input is its own patch matrix (1×1 kernel, stride 1, no padding).
    pub(super) direct: bool,
    /// Output lines `(n, oh)` per forward / filter-gradient chunk: enough rows to keep the
    /// gemm busy, few enough to bound `cols` even for large images.
    pub(super) lines: usize,
    /// Images per input-gradient chunk (col2im scatters over whole images, so chunks of the
    /// gemm + col2im path never split one).
    pub(super) chunk: usize,
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
    pub(super) fn inner_threads(&self, chunks: usize) -> usize {
        (rayon::current_num_threads() / chunks.max(1)).max(1)
    }
}

/// Where the taps of one kernel row of output column `ow` read: the first input column
/// (possibly negative), and whether the whole row of `kw` taps is one contiguous, in-bounds
/// run of `kw·c_in` input elements (no column dilation, one group, no padding touched), which
/// is then moved with one slice copy instead of `kw` small ones.
#[inline]
pub(super) fn tap_run(s: &Conv2dSpec, ow: usize) -> (isize, bool) {
    let iw0 = (ow * s.stride.1) as isize - s.pad.2 as isize;
    let contiguous = s.dilation.1 == 1 && s.groups == 1 && iw0 >= 0 && iw0 as usize + s.kw <= s.w;
    (iw0, contiguous)
}

/// Fills `cols` `[out_w, kg]` with the patches of group `g` for output line `line` (image
/// `line / out_h`, row `line % out_h`), zeros in the padding.
pub(super) fn im2col_line(x: &[f32], s: &Conv2dSpec, geo: &Geometry, g: usize, line: usize, cols: &mut [f32]) {
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
pub(super) fn col2im(dcols: &[f32], s: &Conv2dSpec, geo: &Geometry, g: usize, dx_img: &mut [f32]) {
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

/// The im2col + gemm forward pass.
pub(super) fn forward_gemm(x: &[f32], w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
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
