//! The fast CPU backend: f32 throughout, gemm for matrix products, rayon across large
//! element-wise maps; bf16 matrix products and convolutions on AVX512-BF16 where the CPU has
//! it. Primitives it does not override run the reference code.

/// Expands `$body` once per row of a 14-row microkernel tile (the f32 and bf16 AVX-512
/// kernels) with `$i` a constant, so the accumulator array is indexed by constants only and
/// stays in registers.
#[cfg(target_arch = "x86_64")]
macro_rules! rows {
    ($i:ident => $body:block) => {
        rows!(@ $i $body; 0 1 2 3 4 5 6 7 8 9 10 11 12 13)
    };
    (@ $i:ident $body:block; $($n:literal)*) => {
        $( { const $i: usize = $n; $body } )*
    };
}

mod batch_norm;
mod bf16_products;
mod bgemm_avx512;
mod conv;
mod elementwise;
mod matmul;
mod movement;
mod optim;
mod pool;
mod reduce;
mod sgemm_avx512;
mod sgemm_blocked;
mod walk;
use super::{Conv2dSpec, HostBackend, MatmulSpec, PadMode, Pool2dSpec, ReduceOp, SliceAxis};
use crate::backend::host_adapter::{narrow, widen};
use crate::ops::binary::BinaryOp;
use crate::ops::optim::UpdateRule;
use crate::ops::unary::UnaryOp;
use crate::{DType, HostData, Result, Shape, Storage};
use rayon::prelude::*;

/// Whether the bf16 product kernels run here (x86-64 with AVX512-BF16).
fn native_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    return bgemm_avx512::available();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// An f32 kernel run on f32 copies of bf16 operands, its result rounded back to bf16: the
/// product kernels without a native bf16 form (grouped convolutions, the backward passes).
fn via_f32(a: &HostData, b: &HostData, f: impl FnOnce(&HostData, &HostData) -> Result<HostData>) -> Result<HostData> {
    let half = a.dtype().is_half().then(|| a.dtype());
    Ok(narrow(f(&widen(a), &widen(b))?, half))
}

/// The bf16 slices of two operands, when both are bf16 and the native kernels run.
#[cfg(target_arch = "x86_64")]
fn bf16_pair<'a>(a: &'a HostData, b: &'a HostData) -> Option<(&'a [half::bf16], &'a [half::bf16])> {
    match (a, b) {
        (HostData::BF16(a), HostData::BF16(b)) if native_bf16() => Some((a, b)),
        _ => None,
    }
}

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

impl HostBackend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn bf16_products(&self) -> bool {
        native_bf16()
    }

    fn unary(&self, op: UnaryOp, x: &HostData) -> Result<HostData> {
        elementwise::unary(op, x)
    }

    fn unary_grad(&self, op: UnaryOp, x: &HostData, y: &HostData, dy: &HostData) -> Result<HostData> {
        elementwise::unary_grad(op, x, y, dy)
    }

    fn binary(&self, op: BinaryOp, a: &HostData, a_shape: &Shape, b: &HostData, b_shape: &Shape, out_shape: &Shape) -> Result<HostData> {
        elementwise::binary(op, a, a_shape, b, b_shape, out_shape)
    }

    fn matmul(&self, a: &HostData, b: &HostData, spec: &MatmulSpec) -> Result<HostData> {
        #[cfg(target_arch = "x86_64")]
        if let Some((a, b)) = bf16_pair(a, b) {
            return Ok(HostData::BF16(bf16_products::matmul(a, b, spec)));
        }
        matmul::matmul(a, b, spec)
    }

    fn reduce(&self, op: ReduceOp, x: &HostData, shape: &Shape, axes: &[usize]) -> Result<HostData> {
        reduce::reduce(op, x, shape, axes)
    }

    fn pool2d(&self, x: &HostData, spec: &Pool2dSpec) -> Result<HostData> {
        pool::pool2d(x, spec)
    }

    fn pool2d_grad(&self, x: &HostData, y: &HostData, dy: &HostData, spec: &Pool2dSpec) -> Result<HostData> {
        pool::pool2d_grad(x, y, dy, spec)
    }

    fn max_pool2d_argmax(&self, x: &HostData, spec: &Pool2dSpec) -> Result<(HostData, HostData)> {
        pool::max_pool2d_argmax(x, spec)
    }

    fn conv2d(&self, x: &HostData, w: &HostData, spec: &Conv2dSpec) -> Result<HostData> {
        #[cfg(target_arch = "x86_64")]
        if let Some(y) = bf16_pair(x, w).and_then(|(x, w)| bf16_products::conv2d(x, w, spec, None)) {
            return Ok(HostData::BF16(y));
        }
        if x.dtype() == DType::BF16 {
            return via_f32(x, w, |x, w| conv::conv2d(x, w, spec));
        }
        conv::conv2d(x, w, spec)
    }

    fn conv2d_grad_input(&self, dy: &HostData, w: &HostData, spec: &Conv2dSpec) -> Result<HostData> {
        via_f32(dy, w, |dy, w| conv::conv2d_grad_input(dy, w, spec))
    }

    fn conv2d_grad_filter(&self, x: &HostData, dy: &HostData, spec: &Conv2dSpec) -> Result<HostData> {
        via_f32(x, dy, |x, dy| conv::conv2d_grad_filter(x, dy, spec))
    }

    fn permute(&self, x: &HostData, shape: &Shape, perm: &[usize]) -> Result<HostData> {
        movement::permute(x, shape, perm)
    }

    fn strided_slice(&self, x: &HostData, shape: &Shape, axes: &[SliceAxis]) -> Result<HostData> {
        movement::strided_slice(x, shape, axes)
    }
    fn concat(&self, xs: &[(&HostData, &Shape)], axis: usize) -> Result<HostData> {
        movement::concat(xs, axis)
    }

    fn pad(&self, x: &HostData, shape: &Shape, pads: &[(usize, usize)], mode: PadMode) -> Result<HostData> {
        movement::pad(x, shape, pads, mode)
    }

    fn batch_norm_stats(&self, x: &HostData, channels: usize) -> Result<(HostData, HostData)> {
        batch_norm::batch_norm_stats(x, channels)
    }

    fn channel_affine(&self, x: &HostData, scale: &HostData, shift: &HostData, channels: usize, relu: bool) -> Result<HostData> {
        batch_norm::channel_affine(x, scale, shift, channels, relu)
    }

    fn conv2d_affine(
        &self,
        x: &HostData,
        w: &HostData,
        spec: &Conv2dSpec,
        scale: &HostData,
        shift: &HostData,
        relu: bool,
    ) -> Result<HostData> {
        #[cfg(target_arch = "x86_64")]
        if let (Some((xb, wb)), Ok(scale), Ok(shift)) = (bf16_pair(x, w), scale.as_f32("conv2d_affine"), shift.as_f32("conv2d_affine")) {
            let epilogue = bf16_products::Epilogue { scale, shift, relu };
            if let Some(y) = bf16_products::conv2d(xb, wb, spec, Some(&epilogue)) {
                return Ok(HostData::BF16(y));
            }
        }
        if x.dtype() == DType::BF16 {
            let y = self.conv2d(x, w, spec)?;
            return HostBackend::channel_affine(self, &widen(&y), scale, shift, spec.c_out, relu).map(|y| narrow(y, Some(DType::BF16)));
        }
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
        x: &HostData,
        dy: &HostData,
        mean: &HostData,
        invstd: &HostData,
        gamma: &HostData,
        channels: usize,
    ) -> Result<(HostData, HostData, HostData)> {
        batch_norm::batch_norm_grad(x, dy, mean, invstd, gamma, channels)
    }

    fn apply_update(&self, rule: &UpdateRule, param: &mut Storage, grad: &Storage, slots: &mut [&mut Storage]) -> Result<()> {
        optim::apply_update(rule, param, grad, slots)
    }
}
