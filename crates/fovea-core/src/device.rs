//! Where a tensor lives and which backend computes on it.

use std::fmt;
use std::str::FromStr;

/// The device (and so the backend) of a tensor.
///
/// `Cpu` and `Reference` keep their data in host memory and differ in the code that computes:
/// `Cpu` is the fast backend (AVX-512 kernels, rayon, fused kernels) and `Reference` is the
/// specification backend (plain loops, f64 accumulation) that every other backend is tested
/// against. `Cuda(n)` is the n-th GPU, served by the backend that the `fovea-cuda` crate
/// registers; `Custom(n)` is a backend registered at run time under a number (a test backend, an
/// experiment). A tensor's result stays on its device; mixing devices in one op is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// The fast CPU backend.
    #[default]
    Cpu,
    /// The reference backend: obviously correct loops, slow; for tests.
    Reference,
    /// A CUDA GPU by ordinal.
    Cuda(u32),
    /// A backend registered with [`crate::backend::register_backend`] under this number.
    Custom(u16),
}

/// The kind of a device, without its ordinal: what a backend factory is registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// [`Device::Cpu`].
    Cpu,
    /// [`Device::Reference`].
    Reference,
    /// [`Device::Cuda`].
    Cuda,
    /// [`Device::Custom`].
    Custom,
}

impl Device {
    /// The kind of this device.
    pub fn kind(self) -> DeviceKind {
        match self {
            Device::Cpu => DeviceKind::Cpu,
            Device::Reference => DeviceKind::Reference,
            Device::Cuda(_) => DeviceKind::Cuda,
            Device::Custom(_) => DeviceKind::Custom,
        }
    }

    /// Whether the device keeps its tensors in host memory (so moving between two such devices
    /// shares the storage instead of copying it).
    pub fn is_host(self) -> bool {
        matches!(self, Device::Cpu | Device::Reference)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Reference => f.write_str("reference"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
            Device::Custom(n) => write!(f, "custom:{n}"),
        }
    }
}

impl FromStr for Device {
    type Err = crate::Error;

    /// `cpu`, `reference`, `cuda` (ordinal 0), `cuda:N` or `custom:N`, as PyTorch spells devices.
    fn from_str(s: &str) -> crate::Result<Self> {
        let bad = || crate::Error::invalid("device", format!("expected cpu, reference, cuda, cuda:N or custom:N, got {s:?}"));
        let (kind, ordinal) = match s.split_once(':') {
            Some((k, n)) => (k, Some(n.parse::<u32>().map_err(|_| bad())?)),
            None => (s, None),
        };
        Ok(match (kind.to_ascii_lowercase().as_str(), ordinal) {
            ("cpu", None) => Device::Cpu,
            ("reference", None) => Device::Reference,
            ("cuda" | "gpu", n) => Device::Cuda(n.unwrap_or(0)),
            ("custom", Some(n)) => Device::Custom(u16::try_from(n).map_err(|_| bad())?),
            _ => return Err(bad()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_print_and_parse_as_pytorch_spells_them() {
        for d in [Device::Cpu, Device::Reference, Device::Cuda(0), Device::Cuda(3), Device::Custom(7)] {
            assert_eq!(d.to_string().parse::<Device>().unwrap(), d);
        }
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        let e = "tpu".parse::<Device>().unwrap_err().to_string();
        assert!(e.contains("expected cpu, reference, cuda") && e.contains("\"tpu\""), "{e}");
        assert!("cuda:x".parse::<Device>().is_err());
        assert!("custom:70000".parse::<Device>().is_err());
    }
}
