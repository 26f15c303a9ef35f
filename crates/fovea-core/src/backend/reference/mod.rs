//! The reference backend: plain loops with f64 accumulation. It is the specification every
//! other backend is tested against, so clarity wins over speed here.

pub mod batch_norm;
pub mod conv;
pub mod elementwise;
pub mod matmul;
pub mod movement;
pub mod pool;
pub mod reduce;

use super::HostBackend;

/// The reference backend (every `HostBackend` default is its own kernel).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceBackend;

impl HostBackend for ReferenceBackend {
    fn name(&self) -> &'static str {
        "reference"
    }
}
