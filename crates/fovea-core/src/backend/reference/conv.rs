//! Reference 2-D convolution (NHWC × HWIO) and its two gradients.
//!
//! All three walk the same index relation, written once in [`for_each_tap`]: output pixel
//! `(oh, ow)` reads input pixel `(oh·sh + i·dh − pad_top, ow·sw + j·dw − pad_left)` through
//! kernel tap `(i, j)`, and output channel `oc` of group `g = oc / (c_out / groups)` reads input
//! channels `g·cin_g .. (g+1)·cin_g`. The forward pass gathers along it; the input gradient
//! scatters back along it; the filter gradient correlates input with output gradient along it.
//! Sums are accumulated in f64 and rounded to f32 once.

use crate::backend::Conv2dSpec;
use crate::{HostData, Result};

/// Calls `f(n, oh, ow, i, j, ih, iw)` for every output pixel and every kernel tap that lands
/// inside the (unpadded) input; taps in the padding contribute zero and are skipped.
fn for_each_tap(s: &Conv2dSpec, mut f: impl FnMut(usize, usize, usize, usize, usize, usize, usize)) {
    for n in 0..s.n {
        for oh in 0..s.out_h {
            for ow in 0..s.out_w {
                for i in 0..s.kh {
                    let ih = (oh * s.stride.0 + i * s.dilation.0) as isize - s.pad.0 as isize;
                    if ih < 0 || ih >= s.h as isize {
                        continue;
                    }
                    for j in 0..s.kw {
                        let iw = (ow * s.stride.1 + j * s.dilation.1) as isize - s.pad.2 as isize;
                        if iw < 0 || iw >= s.w as isize {
                            continue;
                        }
                        f(n, oh, ow, i, j, ih as usize, iw as usize);
                    }
                }
            }
        }
    }
}

/// Flat index helpers for the three tensors of a convolution.
struct Index<'a>(&'a Conv2dSpec);

impl Index<'_> {
    fn x(&self, n: usize, ih: usize, iw: usize, c: usize) -> usize {
        let s = self.0;
        ((n * s.h + ih) * s.w + iw) * s.c_in + c
    }
    fn y(&self, n: usize, oh: usize, ow: usize, oc: usize) -> usize {
        let s = self.0;
        ((n * s.out_h + oh) * s.out_w + ow) * s.c_out + oc
    }
    fn w(&self, i: usize, j: usize, ci: usize, oc: usize) -> usize {
        let s = self.0;
        ((i * s.kw + j) * (s.c_in / s.groups) + ci) * s.c_out + oc
    }
}

/// `y[n, oh, ow, oc] = Σ_{i, j, ci} x[n, oh·sh + i·dh − pt, ow·sw + j·dw − pl, g·cin_g + ci] · w[i, j, ci, oc]`.
pub fn conv2d(x: &HostData, w: &HostData, s: &Conv2dSpec) -> Result<HostData> {
    let (x, w) = (x.as_f32("conv2d")?, w.as_f32("conv2d")?);
    let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
    let ix = Index(s);
    let mut y = vec![0f64; s.n * s.out_h * s.out_w * s.c_out];
    for_each_tap(s, |n, oh, ow, i, j, ih, iw| {
        for oc in 0..s.c_out {
            let g = oc / cout_g;
            let acc: f64 = (0..cin_g).map(|ci| x[ix.x(n, ih, iw, g * cin_g + ci)] as f64 * w[ix.w(i, j, ci, oc)] as f64).sum();
            y[ix.y(n, oh, ow, oc)] += acc;
        }
    });
    Ok(HostData::F32(y.into_iter().map(|v| v as f32).collect()))
}

/// `dx = ∂L/∂x` given `dy = ∂L/∂y`: every product `x·w` in the forward sum sends `dy·w` back
/// to the input element it read.
pub fn conv2d_grad_input(dy: &HostData, w: &HostData, s: &Conv2dSpec) -> Result<HostData> {
    let (dy, w) = (dy.as_f32("conv2d_grad_input")?, w.as_f32("conv2d_grad_input")?);
    let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
    let ix = Index(s);
    let mut dx = vec![0f64; s.n * s.h * s.w * s.c_in];
    for_each_tap(s, |n, oh, ow, i, j, ih, iw| {
        for oc in 0..s.c_out {
            let g = oc / cout_g;
            let d = dy[ix.y(n, oh, ow, oc)] as f64;
            for ci in 0..cin_g {
                dx[ix.x(n, ih, iw, g * cin_g + ci)] += d * w[ix.w(i, j, ci, oc)] as f64;
            }
        }
    });
    Ok(HostData::F32(dx.into_iter().map(|v| v as f32).collect()))
}

/// `dw = ∂L/∂w` given `dy`: each filter tap accumulates `x·dy` over every place it was used.
pub fn conv2d_grad_filter(x: &HostData, dy: &HostData, s: &Conv2dSpec) -> Result<HostData> {
    let (x, dy) = (x.as_f32("conv2d_grad_filter")?, dy.as_f32("conv2d_grad_filter")?);
    let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
    let ix = Index(s);
    let mut dw = vec![0f64; s.kh * s.kw * cin_g * s.c_out];
    for_each_tap(s, |n, oh, ow, i, j, ih, iw| {
        for oc in 0..s.c_out {
            let g = oc / cout_g;
            let d = dy[ix.y(n, oh, ow, oc)] as f64;
            for ci in 0..cin_g {
                dw[ix.w(i, j, ci, oc)] += d * x[ix.x(n, ih, iw, g * cin_g + ci)] as f64;
            }
        }
    });
    Ok(HostData::F32(dw.into_iter().map(|v| v as f32).collect()))
}
