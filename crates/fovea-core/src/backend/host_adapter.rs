//! Every host backend is a [`Backend`]: storages are unwrapped to their host data (a device
//! buffer here is an error, never a silent copy) and results wrapped back.
//!
//! This is also where f16 and bf16 arithmetic is defined for the host: a kernel given half
//! operands computes on f32 copies and rounds each result once, to nearest even — what
//! TensorFlow's and PyTorch's CPU kernels do for halves, and exact for every op whose f32
//! result is correctly rounded. Movement and reductions need no widening (the kernels are
//! generic over the element, and reductions accumulate in f64); a backend with native bf16
//! products says so through [`HostBackend::bf16_products`].

use super::{Backend, Conv2dSpec, HostBackend, MatmulSpec, PadMode, Pool2dSpec, RandomDist, ReduceOp, SliceAxis};
use crate::ops::binary::BinaryOp;
use crate::ops::optim::UpdateRule;
use crate::ops::unary::UnaryOp;
use crate::{DType, HostData, Result, Shape, Storage};
use std::borrow::Cow;

fn h(s: &Storage) -> Result<&HostData> {
    s.host_data("host backend")
}

/// The half dtype of `x`, if it is one.
fn half_of(x: &HostData) -> Option<DType> {
    match x {
        HostData::F16(_) => Some(DType::F16),
        HostData::BF16(_) => Some(DType::BF16),
        _ => None,
    }
}

/// `x` as f32 when it is a half, else `x` itself.
pub(crate) fn widen(x: &HostData) -> Cow<'_, HostData> {
    match x {
        HostData::F16(v) => Cow::Owned(HostData::F32(v.iter().map(|h| h.to_f32()).collect())),
        HostData::BF16(v) => Cow::Owned(HostData::F32(v.iter().map(|h| h.to_f32()).collect())),
        _ => Cow::Borrowed(x),
    }
}

/// Rounds an f32 result back to the half dtype its operands had; other results pass through.
pub(crate) fn narrow(x: HostData, half: Option<DType>) -> HostData {
    match (half, &x) {
        (Some(DType::F16), HostData::F32(v)) => HostData::F16(v.iter().copied().map(half::f16::from_f32).collect()),
        (Some(DType::BF16), HostData::F32(v)) => HostData::BF16(v.iter().copied().map(half::bf16::from_f32).collect()),
        _ => x,
    }
}

/// `op(a, b)` for two bf16 operands of one shape in one pass, each result computed in f32 and
/// rounded once: what widening, the f32 kernel and narrowing give, without the two f32 copies
/// (residual additions and the like dominate the non-product time of mixed precision).
fn same_shape_bf16(op: BinaryOp, a: &HostData, b: &HostData) -> Option<HostData> {
    let (HostData::BF16(a), HostData::BF16(b)) = (a, b) else { return None };
    let f = |(x, y): (&half::bf16, &half::bf16)| half::bf16::from_f32(op.value_f32(x.to_f32(), y.to_f32()));
    Some(HostData::BF16(if a.len() >= crate::backend::cpu::PARALLEL_THRESHOLD {
        use rayon::prelude::*;
        a.par_iter().zip(b.par_iter()).map(f).collect()
    } else {
        a.iter().zip(b).map(f).collect()
    }))
}

/// ReLU of bf16 values without widening (exact in any format; NaN gives 0, as the f32 kernel).
fn relu_bf16(x: &HostData) -> Option<HostData> {
    let HostData::BF16(v) = x else { return None };
    Some(HostData::BF16(v.iter().map(|&h| if h.to_f32() > 0.0 { h } else { half::bf16::ZERO }).collect()))
}

/// Whether a product kernel gets `x` as it is: always for non-halves, for bf16 when the backend
/// has native bf16 products.
fn passes_through<T: HostBackend>(backend: &T, x: &HostData) -> bool {
    match x {
        HostData::F16(_) => false,
        HostData::BF16(_) => backend.bf16_products(),
        _ => true,
    }
}

impl<T: HostBackend> Backend for T {
    fn name(&self) -> &'static str {
        HostBackend::name(self)
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    fn copy_from_host(&self, data: HostData) -> Result<Storage> {
        Ok(Storage::host(data))
    }
    fn copy_to_host(&self, x: &Storage) -> Result<HostData> {
        Ok(x.host_data("to_host")?.clone())
    }
    fn full(&self, dtype: DType, n: usize, value: f64) -> Result<Storage> {
        Ok(Storage::host(HostData::full(dtype, n, value)?))
    }
    fn random(&self, dist: RandomDist, n: usize, seed: u64) -> Result<Storage> {
        Ok(Storage::host(HostData::F32(crate::random::sample(dist, n, seed))))
    }
    fn iota(&self, n: usize) -> Result<Storage> {
        Ok(Storage::host(HostData::I64((0..n as i64).collect())))
    }
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        let x = h(x)?;
        if let Some(y) = (op == UnaryOp::Relu).then(|| relu_bf16(x)).flatten() {
            return Ok(Storage::host(y));
        }
        let y = HostBackend::unary(self, op, &widen(x))?;
        Ok(Storage::host(narrow(y, half_of(x))))
    }
    fn unary_grad(&self, op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage> {
        let (x, y, dy) = (h(x)?, h(y)?, h(dy)?);
        let dx = HostBackend::unary_grad(self, op, &widen(x), &widen(y), &widen(dy))?;
        Ok(Storage::host(narrow(dx, half_of(dy))))
    }
    fn binary(&self, op: BinaryOp, a: &Storage, a_shape: &Shape, b: &Storage, b_shape: &Shape, out_shape: &Shape) -> Result<Storage> {
        let (a, b) = (h(a)?, h(b)?);
        if !op.is_predicate() && a_shape == b_shape {
            if let Some(y) = same_shape_bf16(op, a, b) {
                return Ok(Storage::host(y));
            }
        }
        let y = HostBackend::binary(self, op, &widen(a), a_shape, &widen(b), b_shape, out_shape)?;
        Ok(Storage::host(narrow(y, half_of(a))))
    }
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
        let (a, b) = (h(a)?, h(b)?);
        let y = HostBackend::select(self, h(cond)?, c_shape, &widen(a), a_shape, &widen(b), b_shape, out_shape)?;
        Ok(Storage::host(narrow(y, half_of(a))))
    }
    fn cast(&self, x: &Storage, dtype: DType) -> Result<Storage> {
        HostBackend::cast(self, h(x)?, dtype).map(Storage::host)
    }
    fn reduce(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage> {
        HostBackend::reduce(self, op, h(x)?, shape, axes).map(Storage::host)
    }
    fn matmul(&self, a: &Storage, b: &Storage, spec: &MatmulSpec) -> Result<Storage> {
        let (a, b) = (h(a)?, h(b)?);
        if passes_through(self, a) && passes_through(self, b) {
            return HostBackend::matmul(self, a, b, spec).map(Storage::host);
        }
        let y = HostBackend::matmul(self, &widen(a), &widen(b), spec)?;
        Ok(Storage::host(narrow(y, half_of(a))))
    }
    fn conv2d(&self, x: &Storage, w: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        let (x, w) = (h(x)?, h(w)?);
        if passes_through(self, x) && passes_through(self, w) {
            return HostBackend::conv2d(self, x, w, spec).map(Storage::host);
        }
        let y = HostBackend::conv2d(self, &widen(x), &widen(w), spec)?;
        Ok(Storage::host(narrow(y, half_of(x))))
    }
    fn conv2d_grad_input(&self, dy: &Storage, w: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        let (dy, w) = (h(dy)?, h(w)?);
        if passes_through(self, dy) && passes_through(self, w) {
            return HostBackend::conv2d_grad_input(self, dy, w, spec).map(Storage::host);
        }
        let dx = HostBackend::conv2d_grad_input(self, &widen(dy), &widen(w), spec)?;
        Ok(Storage::host(narrow(dx, half_of(dy))))
    }
    fn conv2d_grad_filter(&self, x: &Storage, dy: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        let (x, dy) = (h(x)?, h(dy)?);
        if passes_through(self, x) && passes_through(self, dy) {
            return HostBackend::conv2d_grad_filter(self, x, dy, spec).map(Storage::host);
        }
        let dw = HostBackend::conv2d_grad_filter(self, &widen(x), &widen(dy), spec)?;
        Ok(Storage::host(narrow(dw, half_of(x))))
    }
    fn pool2d(&self, x: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        let x = h(x)?;
        let y = HostBackend::pool2d(self, &widen(x), spec)?;
        Ok(Storage::host(narrow(y, half_of(x))))
    }
    fn pool2d_grad(&self, x: &Storage, y: &Storage, dy: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        let (x, y, dy) = (h(x)?, h(y)?, h(dy)?);
        let dx = HostBackend::pool2d_grad(self, &widen(x), &widen(y), &widen(dy), spec)?;
        Ok(Storage::host(narrow(dx, half_of(dy))))
    }
    fn max_pool2d_argmax(&self, x: &Storage, spec: &Pool2dSpec) -> Result<(Storage, Storage)> {
        let x = h(x)?;
        let (y, idx) = HostBackend::max_pool2d_argmax(self, &widen(x), spec)?;
        Ok((Storage::host(narrow(y, half_of(x))), Storage::host(idx)))
    }
    fn permute(&self, x: &Storage, shape: &Shape, perm: &[usize]) -> Result<Storage> {
        HostBackend::permute(self, h(x)?, shape, perm).map(Storage::host)
    }
    fn strided_slice(&self, x: &Storage, shape: &Shape, axes: &[SliceAxis]) -> Result<Storage> {
        HostBackend::strided_slice(self, h(x)?, shape, axes).map(Storage::host)
    }
    fn concat(&self, xs: &[(&Storage, &Shape)], axis: usize) -> Result<Storage> {
        let parts = xs.iter().map(|(s, shape)| Ok((h(s)?, *shape))).collect::<Result<Vec<_>>>()?;
        HostBackend::concat(self, &parts, axis).map(Storage::host)
    }
    fn pad(&self, x: &Storage, shape: &Shape, pads: &[(usize, usize)], mode: PadMode) -> Result<Storage> {
        HostBackend::pad(self, h(x)?, shape, pads, mode).map(Storage::host)
    }
    fn gather(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage) -> Result<Storage> {
        HostBackend::gather(self, h(x)?, shape, axis, indices.as_i64("gather")?).map(Storage::host)
    }
    fn scatter_add(&self, src: &Storage, src_shape: &Shape, axis: usize, indices: &Storage, out_dim: usize) -> Result<Storage> {
        let src = h(src)?;
        let y = HostBackend::scatter_add(self, &widen(src), src_shape, axis, indices.as_i64("scatter_add")?, out_dim)?;
        Ok(Storage::host(narrow(y, half_of(src))))
    }
    fn batch_norm_stats(&self, x: &Storage, channels: usize) -> Result<(Storage, Storage)> {
        let x = h(x)?;
        let (m, v) = HostBackend::batch_norm_stats(self, &widen(x), channels)?;
        Ok((Storage::host(narrow(m, half_of(x))), Storage::host(narrow(v, half_of(x)))))
    }
    fn channel_affine(&self, x: &Storage, scale: &Storage, shift: &Storage, channels: usize, relu: bool) -> Result<Storage> {
        let x = h(x)?;
        let y = HostBackend::channel_affine(self, &widen(x), &widen(h(scale)?), &widen(h(shift)?), channels, relu)?;
        Ok(Storage::host(narrow(y, half_of(x))))
    }
    fn conv2d_affine(&self, x: &Storage, w: &Storage, spec: &Conv2dSpec, scale: &Storage, shift: &Storage, relu: bool) -> Result<Storage> {
        let (x, w, scale, shift) = (h(x)?, h(w)?, h(scale)?, h(shift)?);
        if passes_through(self, x) && passes_through(self, w) {
            return HostBackend::conv2d_affine(self, x, w, spec, &widen(scale), &widen(shift), relu).map(Storage::host);
        }
        let y = HostBackend::conv2d_affine(self, &widen(x), &widen(w), spec, &widen(scale), &widen(shift), relu)?;
        Ok(Storage::host(narrow(y, half_of(x))))
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
        let (x, dy) = (h(x)?, h(dy)?);
        let (mean, invstd, gamma) = (widen(h(mean)?), widen(h(invstd)?), widen(h(gamma)?));
        let (dx, a, b) = HostBackend::batch_norm_grad(self, &widen(x), &widen(dy), &mean, &invstd, &gamma, channels)?;
        let half = half_of(dy);
        Ok((Storage::host(narrow(dx, half)), Storage::host(narrow(a, half)), Storage::host(narrow(b, half))))
    }
    fn apply_update(&self, rule: &UpdateRule, param: &mut Storage, grad: &Storage, slots: &mut [&mut Storage]) -> Result<()> {
        HostBackend::apply_update(self, rule, param, grad, slots)
    }
}
