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
//! ([`depthwise`]); per-group gemms of width `multiplier` would waste the gemm.
//!
//! Chunk sizes depend only on the shapes, never on the thread count, and the filter-gradient
//! partials are added in chunk order, so results are the same whatever the number of threads.

mod common;
mod depthwise;
mod direct;
mod im2col;
mod planar;
mod products;
mod winograd;

use crate::backend::Conv2dSpec;
use crate::{HostData, Result};
use common::{input_grad_spec, rotated_filter, sum_partials_in_order, with_scratch};
use im2col::{col2im, forward_gemm, gemm_views, patches, Geometry, View};
use rayon::prelude::*;

/// Forward convolution.
pub(super) fn conv2d(x: &HostData, w: &HostData, s: &Conv2dSpec) -> Result<HostData> {
    let (x, w) = (x.as_f32("conv2d")?, w.as_f32("conv2d")?);
    if s.groups > 1 && s.groups == s.c_in {
        return Ok(HostData::F32(depthwise::forward(x, w, s)));
    }
    if winograd::applies(s) {
        return Ok(HostData::F32(winograd::forward(x, w, s)));
    }
    if direct::applies(s) {
        return Ok(HostData::F32(direct::forward(x, w, s)));
    }
    if products::applies(s) {
        return Ok(HostData::F32(products::forward(x, w, s)));
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
    let other_kernel = (s.groups > 1 && s.groups == s.c_in) || winograd::applies(s) || direct::applies(s);
    if other_kernel || !products::applies(s) {
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
    let epilogue = products::Epilogue { scale, shift, relu };
    Ok(Some(HostData::F32(products::forward_with(x, w, s, Some(&epilogue)))))
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

/// Gradient with respect to the input.
pub(super) fn conv2d_grad_input(dy: &HostData, w: &HostData, s: &Conv2dSpec) -> Result<HostData> {
    let (dy, w) = (dy.as_f32("conv2d_grad_input")?, w.as_f32("conv2d_grad_input")?);
    if s.groups > 1 && s.groups == s.c_in {
        return Ok(HostData::F32(depthwise::grad_input(dy, w, s)));
    }
    if winograd::applies_grad_input(s) {
        return Ok(HostData::F32(winograd::grad_input(dy, w, s)));
    }
    if direct::applies_grad_input(s) {
        return Ok(HostData::F32(direct::grad_input(dy, w, s)));
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
        return Ok(HostData::F32(depthwise::grad_filter(x, dy, s)));
    }
    if winograd::applies_grad_filter(s) {
        return Ok(HostData::F32(winograd::grad_filter(x, dy, s)));
    }
    if direct::applies(s) {
        return Ok(HostData::F32(direct::grad_filter(x, dy, s)));
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
