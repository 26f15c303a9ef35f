//! The fast CPU backend: f32 throughout, gemm for matrix products, rayon across large
//! element-wise maps. Primitives it does not override run the reference code.

mod batch_norm;
mod conv;
mod conv_depthwise;
mod conv_direct;
mod conv_planar;
mod conv_products;
mod conv_winograd;
mod elementwise;
mod matmul;
mod movement;
mod optim;
mod pool;
mod reduce;
mod sgemm_avx512;
mod sgemm_blocked;
mod walk;
use super::{Backend, Conv2dSpec, MatmulSpec, PadMode, Pool2dSpec, ReduceOp, SliceAxis};
use crate::ops::binary::BinaryOp;
use crate::ops::optim::UpdateRule;
use crate::ops::unary::UnaryOp;
use crate::{Result, Shape, Storage};
use rayon::prelude::*;

/// Element counts below this run on the calling thread: spawning rayon work costs more than
/// the map itself on small tensors.
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 17;

/// Runs `kernel(start, piece)` over consecutive pieces of `out` of `chunk` elements (the last
/// may be shorter), `start` being the piece's offset; across rayon when `out` is large, else as
/// one piece on the calling thread.
pub(super) fn chunked(out: &mut [f32], chunk: usize, kernel: impl Fn(usize, &mut [f32]) + Sync) {
    if out.len() >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, o)| kernel(i * chunk, o));
    } else {
        kernel(0, out);
    }
}

/// The fast CPU backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        elementwise::unary(op, x)
    }

    fn unary_grad(&self, op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage> {
        elementwise::unary_grad(op, x, y, dy)
    }

    fn binary(&self, op: BinaryOp, a: &Storage, a_shape: &Shape, b: &Storage, b_shape: &Shape, out_shape: &Shape) -> Result<Storage> {
        elementwise::binary(op, a, a_shape, b, b_shape, out_shape)
    }

    fn matmul(&self, a: &Storage, b: &Storage, spec: &MatmulSpec) -> Result<Storage> {
        matmul::matmul(a, b, spec)
    }

    fn reduce(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage> {
        reduce::reduce(op, x, shape, axes)
    }

    fn pool2d(&self, x: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        pool::pool2d(x, spec)
    }

    fn pool2d_grad(&self, x: &Storage, y: &Storage, dy: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        pool::pool2d_grad(x, y, dy, spec)
    }

    fn max_pool2d_argmax(&self, x: &Storage, spec: &Pool2dSpec) -> Result<(Storage, Storage)> {
        pool::max_pool2d_argmax(x, spec)
    }

    fn conv2d(&self, x: &Storage, w: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        conv::conv2d(x, w, spec)
    }

    fn conv2d_grad_input(&self, dy: &Storage, w: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        conv::conv2d_grad_input(dy, w, spec)
    }

    fn conv2d_grad_filter(&self, x: &Storage, dy: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        conv::conv2d_grad_filter(x, dy, spec)
    }

    fn permute(&self, x: &Storage, shape: &Shape, perm: &[usize]) -> Result<Storage> {
        movement::permute(x, shape, perm)
    }

    fn strided_slice(&self, x: &Storage, shape: &Shape, axes: &[SliceAxis]) -> Result<Storage> {
        movement::strided_slice(x, shape, axes)
    }
    fn concat(&self, xs: &[(&Storage, &Shape)], axis: usize) -> Result<Storage> {
        movement::concat(xs, axis)
    }

    fn pad(&self, x: &Storage, shape: &Shape, pads: &[(usize, usize)], mode: PadMode) -> Result<Storage> {
        movement::pad(x, shape, pads, mode)
    }

    fn batch_norm_stats(&self, x: &Storage, channels: usize) -> Result<(Storage, Storage)> {
        batch_norm::batch_norm_stats(x, channels)
    }

    fn channel_affine(&self, x: &Storage, scale: &Storage, shift: &Storage, channels: usize, relu: bool) -> Result<Storage> {
        batch_norm::channel_affine(x, scale, shift, channels, relu)
    }

    fn conv2d_affine(&self, x: &Storage, w: &Storage, spec: &Conv2dSpec, scale: &Storage, shift: &Storage, relu: bool) -> Result<Storage> {
        match conv::conv2d_affine(x, w, spec, scale, shift, relu)? {
            Some(y) => Ok(y),
            None => {
                let y = conv::conv2d(x, w, spec)?;
                batch_norm::channel_affine(&y, scale, shift, spec.c_out, relu)
            }
        }
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
        batch_norm::batch_norm_grad(x, dy, mean, invstd, gamma, channels)
    }

    fn apply_update(&self, rule: &UpdateRule, param: &mut Storage, grad: &Storage, slots: &mut [&mut Storage]) -> Result<()> {
        optim::apply_update(rule, param, grad, slots)
    }
}
