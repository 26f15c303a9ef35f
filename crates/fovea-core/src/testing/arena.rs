//! A backend that plugs in from outside the core's host path: the proof that another backend
//! (CUDA next) can carry every op, and the instrument that shows where data crosses to the host.
//!
//! It registers as [`Device::Custom`], keeps every buffer in its own arena type that the core
//! cannot read, and counts each host transfer. It computes with the reference backend (internal
//! copies, not counted as transfers), so its results equal [`Device::Reference`]'s bit for bit. It uses only the public backend API
//! (`Backend`, `register_backend`, `Storage::from_device_buffer`, `Storage::device_buffer`), as
//! a backend crate would.

use crate::backend::{reference, register_backend, Backend, Conv2dSpec, MatmulSpec, PadMode, Pool2dSpec, RandomDist, ReduceOp, SliceAxis};
use crate::ops::binary::BinaryOp;
use crate::ops::unary::UnaryOp;
use crate::{DType, Device, DeviceBuffer, DeviceKind, Error, HostData, Result, Shape, Storage};
use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;

/// Host transfers of one arena device since it was registered (or last [`reset`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfers {
    /// Copies from the host into the arena.
    pub uploads: usize,
    /// Elements copied in by those uploads.
    pub uploaded_elements: usize,
    /// Copies from the arena to the host.
    pub downloads: usize,
    /// Elements copied out by those downloads.
    pub downloaded_elements: usize,
    /// The element count of each download, in order (to tell scalar logs from whole tensors).
    pub download_sizes: Vec<usize>,
}

static COUNTS: Mutex<Option<HashMap<u16, Transfers>>> = Mutex::new(None);

fn count(device: u16, f: impl FnOnce(&mut Transfers)) {
    let mut counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    f(counts.get_or_insert_with(HashMap::new).entry(device).or_default());
}

/// Registers the arena backend for every [`Device::Custom`] ordinal and returns
/// `Device::Custom(ordinal)`. Tests running in parallel each take their own ordinal, so their
/// counts do not mix.
///
/// # Panics
/// Never: registering a `Custom` factory cannot fail.
pub fn device(ordinal: u16) -> Device {
    register_backend(DeviceKind::Custom, |d| match d {
        Device::Custom(n) => Ok(Box::new(ArenaBackend { ordinal: n })),
        other => Err(format!("the arena backend serves custom devices, not {other}")),
    })
    .expect("custom backends can be registered");
    Device::Custom(ordinal)
}

/// The transfers counted so far on `Device::Custom(ordinal)`.
pub fn transfers(ordinal: u16) -> Transfers {
    let counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    counts.as_ref().and_then(|m| m.get(&ordinal)).cloned().unwrap_or_default()
}

/// Sets the counts of `Device::Custom(ordinal)` back to zero.
pub fn reset(ordinal: u16) {
    count(ordinal, |t| *t = Transfers::default());
}

/// A buffer in the arena: host memory underneath, but opaque to the core, which must go through
/// the backend for every read.
#[derive(Debug)]
struct ArenaBuffer(HostData);

impl DeviceBuffer for ArenaBuffer {
    fn dtype(&self) -> DType {
        self.0.dtype()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct ArenaBackend {
    ordinal: u16,
}

fn get(s: &Storage) -> Result<&HostData> {
    s.device_buffer::<ArenaBuffer>()
        .map(|b| &b.0)
        .ok_or_else(|| Error::invalid("arena backend", format!("got a storage of another backend ({} {} elements)", s.len(), s.dtype())))
}

fn wrap(data: HostData) -> Storage {
    Storage::from_device_buffer(ArenaBuffer(data))
}

/// The reference backend, which the arena computes with: float kernels go through its
/// `Backend` face (on host copies of the arena's buffers) so that f16/bf16 get the reference's
/// widening, exactly as on `Device::Reference`.
const REFERENCE: &dyn Backend = &reference::ReferenceBackend;

fn host(s: &Storage) -> Result<Storage> {
    Ok(Storage::host(get(s)?.clone()))
}

fn back(s: Storage) -> Result<Storage> {
    Ok(wrap(s.host_data("arena backend")?.clone()))
}

impl Backend for ArenaBackend {
    fn name(&self) -> &'static str {
        "arena"
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    fn copy_from_host(&self, data: HostData) -> Result<Storage> {
        count(self.ordinal, |t| {
            t.uploads += 1;
            t.uploaded_elements += data.len();
        });
        Ok(wrap(data))
    }
    fn copy_to_host(&self, x: &Storage) -> Result<HostData> {
        let data = get(x)?.clone();
        count(self.ordinal, |t| {
            t.downloads += 1;
            t.downloaded_elements += data.len();
            t.download_sizes.push(data.len());
        });
        Ok(data)
    }
    fn full(&self, dtype: DType, n: usize, value: f64) -> Result<Storage> {
        HostData::full(dtype, n, value).map(wrap)
    }
    fn random(&self, dist: RandomDist, n: usize, seed: u64) -> Result<Storage> {
        Ok(wrap(HostData::F32(crate::random::sample(dist, n, seed))))
    }
    fn iota(&self, n: usize) -> Result<Storage> {
        Ok(wrap(HostData::I64((0..n as i64).collect())))
    }
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        back(REFERENCE.unary(op, &host(x)?)?)
    }
    fn unary_grad(&self, op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage> {
        back(REFERENCE.unary_grad(op, &host(x)?, &host(y)?, &host(dy)?)?)
    }
    fn binary(&self, op: BinaryOp, a: &Storage, a_shape: &Shape, b: &Storage, b_shape: &Shape, out_shape: &Shape) -> Result<Storage> {
        back(REFERENCE.binary(op, &host(a)?, a_shape, &host(b)?, b_shape, out_shape)?)
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
        back(REFERENCE.select(&host(cond)?, c_shape, &host(a)?, a_shape, &host(b)?, b_shape, out_shape)?)
    }
    fn cast(&self, x: &Storage, dtype: DType) -> Result<Storage> {
        reference::elementwise::cast(get(x)?, dtype).map(wrap)
    }
    fn reduce(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage> {
        reference::reduce::reduce(op, get(x)?, shape, axes).map(wrap)
    }
    fn matmul(&self, a: &Storage, b: &Storage, spec: &MatmulSpec) -> Result<Storage> {
        back(REFERENCE.matmul(&host(a)?, &host(b)?, spec)?)
    }
    fn conv2d(&self, x: &Storage, w: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        back(REFERENCE.conv2d(&host(x)?, &host(w)?, spec)?)
    }
    fn conv2d_grad_input(&self, dy: &Storage, w: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        back(REFERENCE.conv2d_grad_input(&host(dy)?, &host(w)?, spec)?)
    }
    fn conv2d_grad_filter(&self, x: &Storage, dy: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        back(REFERENCE.conv2d_grad_filter(&host(x)?, &host(dy)?, spec)?)
    }
    fn pool2d(&self, x: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        back(REFERENCE.pool2d(&host(x)?, spec)?)
    }
    fn pool2d_grad(&self, x: &Storage, y: &Storage, dy: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        back(REFERENCE.pool2d_grad(&host(x)?, &host(y)?, &host(dy)?, spec)?)
    }
    fn max_pool2d_argmax(&self, x: &Storage, spec: &Pool2dSpec) -> Result<(Storage, Storage)> {
        let (y, idx) = REFERENCE.max_pool2d_argmax(&host(x)?, spec)?;
        Ok((back(y)?, back(idx)?))
    }
    fn permute(&self, x: &Storage, shape: &Shape, perm: &[usize]) -> Result<Storage> {
        reference::movement::permute(get(x)?, shape, perm).map(wrap)
    }
    fn strided_slice(&self, x: &Storage, shape: &Shape, axes: &[SliceAxis]) -> Result<Storage> {
        reference::movement::strided_slice(get(x)?, shape, axes).map(wrap)
    }
    fn concat(&self, xs: &[(&Storage, &Shape)], axis: usize) -> Result<Storage> {
        let parts = xs.iter().map(|(s, shape)| Ok((get(s)?, *shape))).collect::<Result<Vec<_>>>()?;
        reference::movement::concat(&parts, axis).map(wrap)
    }
    fn pad(&self, x: &Storage, shape: &Shape, pads: &[(usize, usize)], mode: PadMode) -> Result<Storage> {
        reference::movement::pad(get(x)?, shape, pads, mode).map(wrap)
    }
    fn gather(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage) -> Result<Storage> {
        reference::movement::gather(get(x)?, shape, axis, get(indices)?.as_i64("gather")?).map(wrap)
    }
    fn scatter_add(&self, src: &Storage, src_shape: &Shape, axis: usize, indices: &Storage, out_dim: usize) -> Result<Storage> {
        back(REFERENCE.scatter_add(&host(src)?, src_shape, axis, &host(indices)?, out_dim)?)
    }
    fn batch_norm_stats(&self, x: &Storage, channels: usize) -> Result<(Storage, Storage)> {
        let (m, v) = REFERENCE.batch_norm_stats(&host(x)?, channels)?;
        Ok((back(m)?, back(v)?))
    }
    fn channel_affine(&self, x: &Storage, scale: &Storage, shift: &Storage, channels: usize, relu: bool) -> Result<Storage> {
        back(REFERENCE.channel_affine(&host(x)?, &host(scale)?, &host(shift)?, channels, relu)?)
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
        let (x, dy, mean, invstd, gamma) = (host(x)?, host(dy)?, host(mean)?, host(invstd)?, host(gamma)?);
        let (dx, a, b) = REFERENCE.batch_norm_grad(&x, &dy, &mean, &invstd, &gamma, channels)?;
        Ok((back(dx)?, back(a)?, back(b)?))
    }
}
