//! 2-D convolution (`tf.nn.conv2d` / Keras `Conv2D`): NHWC input, HWIO filter
//! `[kh, kw, c_in / groups, c_out]`, stride, dilation, TensorFlow padding and channel groups.
//!
//! The three backend primitives (forward, input gradient, filter gradient) are wrapped here as
//! differentiable tensor ops. Convolution is bilinear in `(x, w)`, so each primitive's gradient
//! is another of the three: with `y = conv(x, w)`,
//! `dx = conv_grad_input(dy, w)` and `dw = conv_grad_filter(x, dy)`. Transposed convolution
//! (`ops::conv_transpose`) is `conv_grad_input` run forward and reuses the same wrappers.
//! Depthwise, separable, 1-D and 3-D convolutions are compositions in sibling modules.

use crate::backend::{backend, Conv2dSpec};
use crate::ops::padding::{resolve_axis, Padding};
use crate::{Error, Result, Shape, Tensor};

/// Options of [`Tensor::conv2d`], with Keras's defaults: stride 1, `Valid` padding, no
/// dilation, one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Stride (rows, columns).
    pub strides: (usize, usize),
    /// TensorFlow padding: `Valid`, `Same`, or explicit `(before, after)` pairs for H and W.
    pub padding: Padding,
    /// Dilation (rows, columns): a kernel tap `i` reads input row `i·dilation` further on.
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels are split into `groups` independent
    /// convolutions (`groups == c_in` is a depthwise convolution).
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions { strides: (1, 1), padding: Padding::Valid, dilation: (1, 1), groups: 1 }
    }
}

impl Conv2dOptions {
    /// Sets the stride (rows, columns).
    pub fn with_strides(mut self, strides: (usize, usize)) -> Self {
        self.strides = strides;
        self
    }

    /// Sets the padding.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the dilation (rows, columns).
    pub fn with_dilation(mut self, dilation: (usize, usize)) -> Self {
        self.dilation = dilation;
        self
    }

    /// Sets the number of channel groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as in TensorFlow) of an NHWC input with an HWIO
    /// filter `[kh, kw, c_in / groups, c_out]`, giving `[N, out_h, out_w, c_out]`.
    ///
    /// ```
    /// use fovea_core::{ops::conv::Conv2dOptions, ops::padding::Padding, Device, Tensor};
    /// # fn main() -> fovea_core::Result<()> {
    /// let x = Tensor::ones([1, 5, 5, 1], fovea_core::DType::F32, Device::Cpu)?;
    /// let w = Tensor::ones([3, 3, 1, 1], fovea_core::DType::F32, Device::Cpu)?;
    /// let y = x.conv2d(&w, &Conv2dOptions::default().with_strides((2, 2)).with_padding(Padding::Same))?;
    /// assert_eq!(y.dims(), &[1, 3, 3, 1]);
    /// assert_eq!(y.to_vec::<f32>()?, vec![4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `RankMismatch` unless input and filter are rank 4; `DTypeMismatch` unless both are f32;
    /// `ShapeMismatch` when the filter's input channels are not `c_in / groups`;
    /// `InvalidArgument` for zero groups, channels not divisible by `groups`, a zero stride or
    /// dilation, or a (dilated) kernel larger than the padded input.
    pub fn conv2d(&self, filter: &Tensor, opts: &Conv2dOptions) -> Result<Tensor> {
        conv2d_named("conv2d", self, filter, opts)
    }
}

/// [`Tensor::conv2d`] reporting errors under the name of the public op `op` that composes it.
pub(crate) fn conv2d_named(op: &'static str, x: &Tensor, filter: &Tensor, opts: &Conv2dOptions) -> Result<Tensor> {
    if let Some([x, filter]) = crate::autocast::operands([x, filter])? {
        return conv2d_named(op, &x, &filter, opts);
    }
    let spec = conv2d_spec(op, x, filter, opts)?;
    conv2d_forward(x, filter, spec)
}

/// Fails unless the input and filter share one float dtype.
pub(crate) fn check_operands(op: &'static str, x: &Tensor, filter: &Tensor) -> Result<()> {
    crate::ops::check_same_float(op, x, filter)
}

/// Validates a 2-D convolution of `x` by `filter` and resolves every size; `op` names the
/// public operation in messages.
pub(crate) fn conv2d_spec(op: &'static str, x: &Tensor, filter: &Tensor, opts: &Conv2dOptions) -> Result<Conv2dSpec> {
    x.same_device(op, filter)?;
    check_operands(op, x, filter)?;
    if x.rank() != 4 {
        return Err(Error::rank(op, "4 (N, H, W, C)", x.shape()));
    }
    if filter.rank() != 4 {
        return Err(Error::rank(op, "4 (kh, kw, c_in / groups, c_out)", filter.shape()));
    }
    let (&[n, h, w, c_in], &[kh, kw, f_in, c_out]) = (x.dims(), filter.dims()) else { unreachable!("ranks checked above") };
    let groups = opts.groups;
    if groups == 0 {
        return Err(Error::invalid(op, "groups must be >= 1, got 0"));
    }
    if c_in % groups != 0 || c_out % groups != 0 {
        return Err(Error::invalid(
            op,
            format!(
                "input channels ({c_in}) and output channels ({c_out}) must both be divisible by groups ({groups}); input {}, filter {}",
                x.shape(),
                filter.shape()
            ),
        ));
    }
    if f_in != c_in / groups {
        let why = if groups == 1 { format!("input {}", x.shape()) } else { format!("input {} split into {groups} groups", x.shape()) };
        return Err(Error::shape(op, format!("a filter with {} input channels ({why})", c_in / groups), filter.shape()));
    }
    let rows = resolve_axis(op, &opts.padding, 0, h, kh, opts.strides.0, opts.dilation.0)?;
    let cols = resolve_axis(op, &opts.padding, 1, w, kw, opts.strides.1, opts.dilation.1)?;
    Ok(Conv2dSpec {
        n,
        h,
        w,
        c_in,
        kh,
        kw,
        c_out,
        groups,
        // One window along an axis makes its stride irrelevant; a huge stride there (from a
        // file) would otherwise size the kernels' scratch planes by it.
        stride: (if rows.out == 1 { 1 } else { opts.strides.0 }, if cols.out == 1 { 1 } else { opts.strides.1 }),
        dilation: opts.dilation,
        pad: (rows.pad_before, rows.pad_after, cols.pad_before, cols.pad_after),
        out_h: rows.out,
        out_w: cols.out,
    })
}

/// `y = conv(x, w)` → `[n, out_h, out_w, c_out]`, differentiable in both arguments.
pub(crate) fn conv2d_forward(x: &Tensor, w: &Tensor, spec: Conv2dSpec) -> Result<Tensor> {
    let y = backend(x.device())?.conv2d(x.storage(), w.storage(), &spec)?;
    let shape = Shape::new(vec![spec.n, spec.out_h, spec.out_w, spec.c_out]);
    Ok(Tensor::from_op(y, shape, x.device(), "conv2d", &[x, w], move |inputs, _, g| {
        let (x, w) = (&inputs[0], &inputs[1]);
        // y = x ⋆ w: dx = conv_grad_input(dy, w), dw = conv_grad_filter(x, dy).
        let dx = if x.requires_grad() { Some(conv2d_input_grad(g, w, spec.clone())?) } else { None };
        let dw = if w.requires_grad() { Some(conv2d_filter_grad(x, g, spec.clone())?) } else { None };
        Ok(vec![dx, dw])
    }))
}

/// `dx = conv_grad_input(dy, w)` → `[n, h, w, c_in]`: the adjoint of `conv(·, w)`, which is
/// also the transposed convolution of `dy`. Differentiable in both arguments.
pub(crate) fn conv2d_input_grad(dy: &Tensor, w: &Tensor, spec: Conv2dSpec) -> Result<Tensor> {
    let dx = backend(dy.device())?.conv2d_grad_input(dy.storage(), w.storage(), &spec)?;
    let shape = Shape::new(vec![spec.n, spec.h, spec.w, spec.c_in]);
    Ok(Tensor::from_op(dx, shape, dy.device(), "conv2d_grad_input", &[dy, w], move |inputs, _, g| {
        let (dy, w) = (&inputs[0], &inputs[1]);
        // dx = Aᵀ_w dy is linear in dy with adjoint A_w = conv(·, w); as a function of w,
        // ⟨g, Aᵀ_w dy⟩ = ⟨conv(g, w), dy⟩, whose w-gradient is conv_grad_filter(g, dy).
        let d_dy = if dy.requires_grad() { Some(conv2d_forward(g, w, spec.clone())?) } else { None };
        let d_w = if w.requires_grad() { Some(conv2d_filter_grad(g, dy, spec.clone())?) } else { None };
        Ok(vec![d_dy, d_w])
    }))
}

/// `dw = conv_grad_filter(x, dy)` → `[kh, kw, c_in / groups, c_out]`. Differentiable in both.
pub(crate) fn conv2d_filter_grad(x: &Tensor, dy: &Tensor, spec: Conv2dSpec) -> Result<Tensor> {
    let dw = backend(x.device())?.conv2d_grad_filter(x.storage(), dy.storage(), &spec)?;
    let shape = Shape::new(vec![spec.kh, spec.kw, spec.c_in / spec.groups, spec.c_out]);
    Ok(Tensor::from_op(dw, shape, x.device(), "conv2d_grad_filter", &[x, dy], move |inputs, _, g| {
        let (x, dy) = (&inputs[0], &inputs[1]);
        // ⟨g, dw(x, dy)⟩ = ⟨conv(x, g), dy⟩ = ⟨x, conv_grad_input(dy, g)⟩.
        let d_x = if x.requires_grad() { Some(conv2d_input_grad(dy, g, spec.clone())?) } else { None };
        let d_dy = if dy.requires_grad() { Some(conv2d_forward(x, g, spec.clone())?) } else { None };
        Ok(vec![d_x, d_dy])
    }))
}

#[cfg(test)]
#[path = "conv_tests.rs"]
mod tests;
