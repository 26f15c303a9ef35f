//! Convolutions in ONNX's NCHW: HWIO kernels become OIHW, a depthwise convolution becomes a
//! grouped `Conv` (one group per input channel), a separable one a depthwise `Conv` then a 1×1
//! `Conv`, and TensorFlow's `same` padding becomes explicit (asymmetric) pads.

use super::graph::{int, ints, Graph, Layout, Val};
use super::layers::Ctx;
use crate::Result;
use fovea_core::ops::padding::{resolve_axis, Padding};

/// ONNX `pads` `[top, left, bottom, right]` for a window op on `x` (TensorFlow puts the odd
/// padding row or column at the end, as ONNX's explicit pads can say and `SAME_UPPER` would too).
pub(super) fn pads(ctx: &Ctx, padding: &Padding, x: &Val, k: (usize, usize), s: (usize, usize), d: (usize, usize)) -> Result<Vec<i64>> {
    if x.rank() != 4 {
        return Err(ctx.err(format!("expected a rank-4 (N, H, W, C) input, got rank {}", x.rank())));
    }
    let rows = resolve_axis("ONNX export", padding, 0, x.shape[0], k.0, s.0, d.0)?;
    let cols = resolve_axis("ONNX export", padding, 1, x.shape[1], k.1, s.1, d.1)?;
    Ok(vec![rows.pad_before as i64, cols.pad_before as i64, rows.pad_after as i64, cols.pad_after as i64])
}

fn pair_attr(name: &str, p: (usize, usize)) -> super::proto::AttributeProto {
    ints(name, &[p.0 as i64, p.1 as i64])
}

/// The kernel of a depthwise convolution `[kh, kw, C, M]` as ONNX's grouped weight
/// `[C·M, 1, kh, kw]`: output channel `c·M + m`, as TensorFlow orders them.
fn depthwise_weight(g: &mut Graph, ctx: &Ctx, suffix: &str) -> Result<(String, usize)> {
    let t = ctx.required(suffix)?;
    let &[kh, kw, c, m] = t.dims() else {
        return Err(ctx.err(format!("expected a [kh, kw, in, multiplier] kernel, got {:?}", t.dims())));
    };
    let values = t.permute(&[2, 3, 0, 1])?.to_vec::<f32>()?;
    Ok((g.f32_const(&format!("{}/{suffix}", ctx.name()), &[c * m, 1, kh, kw], &values), c))
}

/// `Conv2D`, `DepthwiseConv2D` and `SeparableConv2D` (bias included, activation not).
pub(super) fn conv(g: &mut Graph, ctx: &Ctx, x: &Val, out_shape: &[usize]) -> Result<Val> {
    let x = g.in_layout(x, Layout::Nchw);
    let (k, s, d) = (ctx.pair("kernel_size")?, ctx.pair("strides")?, ctx.pair("dilation_rate")?);
    let pads = pads(ctx, &ctx.padding()?, &x, k, s, d)?;
    let attrs = |group: usize| {
        vec![
            pair_attr("kernel_shape", k),
            pair_attr("strides", s),
            pair_attr("dilations", d),
            ints("pads", &pads),
            int("group", group as i64),
        ]
    };
    let base = ctx.name().to_string();
    let class = ctx.class();
    let y = match class {
        "Conv2D" => {
            let (w, _) = ctx.init(g, "kernel", Some(&[3, 2, 0, 1]))?.ok_or_else(|| ctx.err("expected a kernel (is the layer built?)"))?;
            let group = ctx.get("groups").ok().and_then(|v| v.as_u64()).unwrap_or(1) as usize;
            let mut inputs = vec![x.name.clone(), w];
            if let Some((b, _)) = ctx.init(g, "bias", None)? {
                inputs.push(b);
            }
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            g.node("Conv", &refs, &base, attrs(group))
        }
        "DepthwiseConv2D" => {
            let suffix = if ctx.weight("depthwise_kernel")?.is_some() { "depthwise_kernel" } else { "kernel" };
            let (w, c) = depthwise_weight(g, ctx, suffix)?;
            let mut inputs = vec![x.name.clone(), w];
            if let Some((b, _)) = ctx.init(g, "bias", None)? {
                inputs.push(b);
            }
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            g.node("Conv", &refs, &base, attrs(c))
        }
        _ => {
            let (w, c) = depthwise_weight(g, ctx, "depthwise_kernel")?;
            let dw = g.node("Conv", &[&x.name, &w], &format!("{base}/depthwise"), attrs(c));
            let (p, _) = ctx
                .init(g, "pointwise_kernel", Some(&[3, 2, 0, 1]))?
                .ok_or_else(|| ctx.err("expected a pointwise_kernel (is the layer built?)"))?;
            let mut inputs = vec![dw, p];
            if let Some((b, _)) = ctx.init(g, "bias", None)? {
                inputs.push(b);
            }
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            let one = vec![pair_attr("kernel_shape", (1, 1)), int("group", 1)];
            g.node("Conv", &refs, &format!("{base}/pointwise"), one)
        }
    };
    Ok(Val { name: y, layout: Layout::Nchw, shape: out_shape.to_vec() })
}

/// `Conv2DTranspose` as ONNX `ConvTranspose` (bias included, activation not).
///
/// Fovea (like TensorFlow) computes the transposed convolution as the input gradient of the
/// forward convolution from the output (size `out`) back to the input, whose padding is
/// TensorFlow's rule applied to `out`: `(pb, pa)`. The full transposed result has
/// `(in − 1)·s + k_eff` rows starting `pb` rows before the output's first; the rows past the
/// output's end are cropped by the end pad, and when the output is longer than what the
/// windows reach (output padding) the missing rows come from ONNX's `output_padding`. So both
/// `pads` and `output_padding` are non-negative: no negative pads, whatever the configuration.
pub(super) fn conv_transpose(g: &mut Graph, ctx: &Ctx, x: &Val, out_shape: &[usize]) -> Result<Val> {
    let x = g.in_layout(x, Layout::Nchw);
    if x.rank() != 4 || out_shape.len() != 3 {
        return Err(ctx.err(format!("expected rank-4 (N, H, W, C) input and output, got ranks {} and {}", x.rank(), out_shape.len() + 1)));
    }
    let (k, s, d) = (ctx.pair("kernel_size")?, ctx.pair("strides")?, ctx.pair("dilation_rate")?);
    let padding = ctx.padding()?;
    if matches!(padding, Padding::Explicit(_)) {
        return Err(ctx.err("explicit padding is not a Conv2DTranspose option (expected same or valid)"));
    }
    let mut begin = [0i64; 2];
    let mut end = [0i64; 2];
    let mut extra = [0i64; 2];
    for axis in 0..2 {
        let (input, out) = (x.shape[axis], out_shape[axis]);
        let (k, s, d) = [(k.0, s.0, d.0), (k.1, s.1, d.1)][axis];
        let w = resolve_axis("ONNX export", &padding, axis, out, k, s, d)?;
        let full = ((input as i64) - 1) * s as i64 + ((k as i64 - 1) * d as i64 + 1);
        let crop_end = full - w.pad_before as i64 - out as i64;
        begin[axis] = w.pad_before as i64;
        if crop_end >= 0 {
            end[axis] = crop_end;
        } else {
            extra[axis] = -crop_end;
        }
    }
    // Keras [kh, kw, out, in] → ONNX [in, out, kh, kw].
    let (w, _) = ctx.init(g, "kernel", Some(&[3, 2, 0, 1]))?.ok_or_else(|| ctx.err("expected a kernel (is the layer built?)"))?;
    let mut inputs = vec![x.name.clone(), w];
    if let Some((b, _)) = ctx.init(g, "bias", None)? {
        inputs.push(b);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let attrs = vec![
        pair_attr("kernel_shape", k),
        pair_attr("strides", s),
        pair_attr("dilations", d),
        ints("pads", &[begin[0], begin[1], end[0], end[1]]),
        ints("output_padding", &extra),
    ];
    Ok(Val { name: g.node("ConvTranspose", &refs, ctx.name(), attrs), layout: Layout::Nchw, shape: out_shape.to_vec() })
}

/// `Conv1D` on `[N, L, C]` (bias included, activation not): transposed to `[N, C, L]` for a 1-D
/// `Conv` and back. Fovea keeps a 1-D layer's window sizes in the second entry of its pairs.
pub(super) fn conv1d(g: &mut Graph, ctx: &Ctx, x: &Val, out_shape: &[usize]) -> Result<Val> {
    if x.rank() != 3 {
        return Err(ctx.err(format!("expected a rank-3 (N, L, C) input, got rank {}", x.rank())));
    }
    let (k, s, d) = (ctx.pair("kernel_size")?.1, ctx.pair("strides")?.1, ctx.pair("dilation_rate")?.1);
    let w = resolve_axis("ONNX export", &ctx.padding()?, 0, x.shape[0], k, s, d)?;
    let group = ctx.get("groups").ok().and_then(|v| v.as_u64()).unwrap_or(1) as i64;
    let base = ctx.name().to_string();
    let xt = g.node("Transpose", &[&x.name], &format!("{base}/ncl"), vec![ints("perm", &[0, 2, 1])]);
    // Keras [k, in/g, out] → ONNX [out, in/g, k].
    let (kernel, _) = ctx.init(g, "kernel", Some(&[2, 1, 0]))?.ok_or_else(|| ctx.err("expected a kernel (is the layer built?)"))?;
    let mut inputs = vec![xt, kernel];
    if let Some((b, _)) = ctx.init(g, "bias", None)? {
        inputs.push(b);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let attrs = vec![
        ints("kernel_shape", &[k as i64]),
        ints("strides", &[s as i64]),
        ints("dilations", &[d as i64]),
        ints("pads", &[w.pad_before as i64, w.pad_after as i64]),
        int("group", group),
    ];
    let y = g.node("Conv", &refs, &format!("{base}/conv"), attrs);
    let y = g.node("Transpose", &[&y], &base, vec![ints("perm", &[0, 2, 1])]);
    Ok(Val { name: y, layout: Layout::Keras, shape: out_shape.to_vec() })
}
