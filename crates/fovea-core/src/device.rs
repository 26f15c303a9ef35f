//! Where a tensor lives and which backend computes on it.

use std::fmt;

/// The device (and so the backend) of a tensor.
///
/// Both variants keep their data in host memory; they differ in the code that computes:
/// `Cpu` is the fast backend (gemm, rayon, fused kernels) and `Reference` is the specification
/// backend (plain loops, f64 accumulation) that every fast kernel is tested against. A tensor's
/// result stays on its device; mixing devices in one op is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// The fast CPU backend.
    #[default]
    Cpu,
    /// The reference backend: obviously correct loops, slow; for tests.
    Reference,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Reference => f.write_str("reference"),
        }
    }
}
