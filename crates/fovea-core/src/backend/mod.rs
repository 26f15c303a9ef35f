//! The backend contract: a small, closed set of primitives that every backend implements.
//!
//! Every op in [`crate::ops`] validates its arguments, then calls these primitives on storages
//! whose shapes are already checked. The trait's default methods are the reference
//! implementations ([`reference`]: plain loops, f64 accumulation — the specification); the fast
//! [`cpu`] backend overrides the ones that matter for speed and is tested against the reference
//! with the same test bodies.

pub mod cpu;
pub(crate) mod optim;
pub mod reference;

use crate::ops::binary::BinaryOp;
use crate::ops::optim::UpdateRule;
use crate::ops::unary::UnaryOp;
use crate::{DType, Device, Result, Shape, Storage};

/// A reduction over a set of axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum of elements.
    Sum,
    /// Largest element.
    Max,
    /// Smallest element.
    Min,
    /// Product of elements.
    Prod,
    /// Index of the largest element along one axis (first on ties), as i64.
    ArgMax,
    /// Index of the smallest element along one axis (first on ties), as i64.
    ArgMin,
}

/// A batched matrix product `C[b] = op(A[b]) · op(B[b])`, all row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatmulSpec {
    /// Number of matrix products.
    pub batch: usize,
    /// Rows of `op(A)` and `C`.
    pub m: usize,
    /// Columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
    /// Columns of `op(B)` and `C`.
    pub n: usize,
    /// Elements between consecutive `A` matrices (0 broadcasts one matrix to the batch).
    pub a_batch_stride: usize,
    /// Elements between consecutive `B` matrices (0 broadcasts one matrix to the batch).
    pub b_batch_stride: usize,
    /// `A` is stored as `[k, m]` and used transposed.
    pub trans_a: bool,
    /// `B` is stored as `[n, k]` and used transposed.
    pub trans_b: bool,
}

/// A 2-D convolution over NHWC input with an HWIO kernel `[kh, kw, c_in / groups, c_out]`,
/// every size resolved (TensorFlow padding already turned into explicit per-side amounts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conv2dSpec {
    /// Batch size.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c_in: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Output channels.
    pub c_out: usize,
    /// Channel groups (`c_in` for depthwise).
    pub groups: usize,
    /// Stride (rows, columns).
    pub stride: (usize, usize),
    /// Dilation (rows, columns).
    pub dilation: (usize, usize),
    /// Padding (top, bottom, left, right).
    pub pad: (usize, usize, usize, usize),
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

/// The kind of a 2-D pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum over the window (padding never wins).
    Max,
    /// Mean over the real (unpadded) inputs of the window.
    Avg,
}

/// A 2-D pooling over NHWC input, every size resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool2dSpec {
    /// Max or average.
    pub kind: PoolKind,
    /// Batch size.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Stride (rows, columns).
    pub stride: (usize, usize),
    /// Padding (top, bottom, left, right).
    pub pad: (usize, usize, usize, usize),
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

/// How `pad` fills the border (`tf.pad` modes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PadMode {
    /// A constant value.
    Constant(f64),
    /// Mirror without repeating the edge: `[1,2,3]` padded by 2 → `3 2 | 1 2 3 | 2 1`.
    Reflect,
    /// Mirror repeating the edge: `[1,2,3]` padded by 2 → `2 1 | 1 2 3 | 3 2`.
    Symmetric,
}

/// One axis of a strided slice: the first index, the step (nonzero, may be negative) and the
/// number of elements taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceAxis {
    /// Index of the first element taken.
    pub start: usize,
    /// Distance between taken elements.
    pub step: isize,
    /// How many elements are taken.
    pub len: usize,
}

/// The primitives every backend implements. Arguments are validated by the ops; a backend may
/// still fail on a dtype it does not handle.
#[allow(missing_docs)] // each method is documented at its reference implementation
pub trait Backend: Send + Sync {
    /// A short name for messages and benchmarks.
    fn name(&self) -> &'static str;

    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        reference::elementwise::unary(op, x)
    }
    fn unary_grad(&self, op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage> {
        reference::elementwise::unary_grad(op, x, y, dy)
    }
    fn binary(&self, op: BinaryOp, a: &Storage, a_shape: &Shape, b: &Storage, b_shape: &Shape, out_shape: &Shape) -> Result<Storage> {
        reference::elementwise::binary(op, a, a_shape, b, b_shape, out_shape)
    }
    #[allow(clippy::too_many_arguments)]
    fn select(
        &self,
        cond: &Storage,
        c_shape: &Shape,
        a: &Storage,
        a_shape: &Shape,
        b: &Storage,
        b_shape: &Shape,
        out_shape: &Shape,
    ) -> Result<Storage> {
        reference::elementwise::select(cond, c_shape, a, a_shape, b, b_shape, out_shape)
    }
    fn cast(&self, x: &Storage, dtype: DType) -> Result<Storage> {
        reference::elementwise::cast(x, dtype)
    }
    fn reduce(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage> {
        reference::reduce::reduce(op, x, shape, axes)
    }
    fn matmul(&self, a: &Storage, b: &Storage, spec: &MatmulSpec) -> Result<Storage> {
        reference::matmul::matmul(a, b, spec)
    }
    fn conv2d(&self, x: &Storage, w: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        reference::conv::conv2d(x, w, spec)
    }
    fn conv2d_grad_input(&self, dy: &Storage, w: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        reference::conv::conv2d_grad_input(dy, w, spec)
    }
    fn conv2d_grad_filter(&self, x: &Storage, dy: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        reference::conv::conv2d_grad_filter(x, dy, spec)
    }
    fn pool2d(&self, x: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        reference::pool::pool2d(x, spec)
    }
    fn pool2d_grad(&self, x: &Storage, y: &Storage, dy: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        reference::pool::pool2d_grad(x, y, dy, spec)
    }
    fn max_pool2d_argmax(&self, x: &Storage, spec: &Pool2dSpec) -> Result<(Storage, Storage)> {
        reference::pool::max_pool2d_argmax(x, spec)
    }
    fn permute(&self, x: &Storage, shape: &Shape, perm: &[usize]) -> Result<Storage> {
        reference::movement::permute(x, shape, perm)
    }
    fn strided_slice(&self, x: &Storage, shape: &Shape, axes: &[SliceAxis]) -> Result<Storage> {
        reference::movement::strided_slice(x, shape, axes)
    }
    fn concat(&self, xs: &[(&Storage, &Shape)], axis: usize) -> Result<Storage> {
        reference::movement::concat(xs, axis)
    }
    fn pad(&self, x: &Storage, shape: &Shape, pads: &[(usize, usize)], mode: PadMode) -> Result<Storage> {
        reference::movement::pad(x, shape, pads, mode)
    }
    fn gather(&self, x: &Storage, shape: &Shape, axis: usize, indices: &[i64]) -> Result<Storage> {
        reference::movement::gather(x, shape, axis, indices)
    }
    fn scatter_add(&self, src: &Storage, src_shape: &Shape, axis: usize, indices: &[i64], out_dim: usize) -> Result<Storage> {
        reference::movement::scatter_add(src, src_shape, axis, indices, out_dim)
    }
    fn batch_norm_stats(&self, x: &Storage, channels: usize) -> Result<(Storage, Storage)> {
        reference::batch_norm::batch_norm_stats(x, channels)
    }
    fn channel_affine(&self, x: &Storage, scale: &Storage, shift: &Storage, channels: usize, relu: bool) -> Result<Storage> {
        reference::batch_norm::channel_affine(x, scale, shift, channels, relu)
    }
    /// A 2-D convolution followed by [`Backend::channel_affine`] on its output channels, for
    /// backends that can apply the per-channel map while the output is still in cache (an
    /// inference-time conv → batch norm [→ ReLU] chain). The default runs the two in turn.
    fn conv2d_affine(&self, x: &Storage, w: &Storage, spec: &Conv2dSpec, scale: &Storage, shift: &Storage, relu: bool) -> Result<Storage> {
        let y = self.conv2d(x, w, spec)?;
        self.channel_affine(&y, scale, shift, spec.c_out, relu)
    }
    fn batch_norm_grad(
        &self,
        x: &Storage,
        dy: &Storage,
        mean: &Storage,
        invstd: &Storage,
        gamma: &Storage,
        channels: usize,
    ) -> Result<(Storage, Storage, Storage)> {
        reference::batch_norm::batch_norm_grad(x, dy, mean, invstd, gamma, channels)
    }
    /// One optimizer step ([`UpdateRule`]) on a variable's storage `param` from its gradient,
    /// reading and writing the rule's slots, all of one length and f32. A backend may write in
    /// place; the caller ([`crate::ops::optim::apply_update`]) hands over storages nothing else
    /// can see. The default composes the rule from this backend's own `binary` and `unary`
    /// primitives (so it runs wherever the storages live) and replaces the storages with the
    /// results; it is the reference backend's update and the specification of fused kernels.
    ///
    /// # Errors
    /// `DTypeMismatch` unless every storage is f32; `ShapeMismatch` for differing lengths;
    /// `InvalidArgument` for the wrong number of slots. Storages are unchanged after an error.
    fn apply_update(&self, rule: &UpdateRule, param: &mut Storage, grad: &Storage, slots: &mut [&mut Storage]) -> Result<()> {
        optim::compose_update(self, rule, param, grad, slots)
    }
}

/// The backend that computes for `device`.
pub fn backend(device: Device) -> &'static dyn Backend {
    match device {
        Device::Cpu => &cpu::CpuBackend,
        Device::Reference => &reference::ReferenceBackend,
    }
}

/// Strides of `shape` broadcast to `out` (rank-aligned from the right; 0 on broadcast axes).
pub(crate) fn broadcast_strides(shape: &Shape, out: &Shape) -> Vec<usize> {
    let strides = shape.strides();
    let offset = out.rank() - shape.rank();
    (0..out.rank()).map(|i| if i < offset || shape.dims()[i - offset] == 1 { 0 } else { strides[i - offset] }).collect()
}

/// Applies `f` to broadcast pairs for output rows `rows` (a row is the last output axis),
/// writing into `out` (which holds exactly those rows). Shared by both backends: the reference
/// calls it once, the CPU backend once per parallel chunk.
#[allow(clippy::too_many_arguments)]
pub(crate) fn broadcast_rows<A: Copy, B: Copy, O>(
    a: &[A],
    a_strides: &[usize],
    b: &[B],
    b_strides: &[usize],
    out_shape: &Shape,
    rows: std::ops::Range<usize>,
    out: &mut [O],
    f: impl Fn(A, B) -> O,
) {
    let rank = out_shape.rank();
    if rank == 0 {
        out[0] = f(a[0], b[0]);
        return;
    }
    let dims = out_shape.dims();
    let last = dims[rank - 1];
    let (sa, sb) = (a_strides[rank - 1], b_strides[rank - 1]);
    for (r, out_row) in rows.zip(out.chunks_mut(last.max(1))) {
        // Decompose the row index into the outer coordinates to find both row offsets.
        let (mut rem, mut oa, mut ob) = (r, 0, 0);
        for ax in (0..rank - 1).rev() {
            let i = rem % dims[ax];
            rem /= dims[ax];
            oa += i * a_strides[ax];
            ob += i * b_strides[ax];
        }
        for (j, o) in out_row.iter_mut().enumerate() {
            *o = f(a[oa + j * sa], b[ob + j * sb]);
        }
    }
}
