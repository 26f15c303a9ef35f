//! Fovea core: tensors, reverse-mode autodiff and the backends that compute them.
//!
//! Layout follows TensorFlow: images and activations are NHWC, convolution kernels HWIO.
//! Every op is a method on [`Tensor`] that returns a `Result`; bad input is an [`Error`] that
//! says what was expected and what was received.
//!
//! ```
//! use fovea_core::{Device, Tensor};
//! # fn main() -> fovea_core::Result<()> {
//! let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0], [3], Device::Cpu)?.with_requires_grad(true)?;
//! let loss = x.square()?.sum_all()?; // Σ x²
//! let grads = loss.backward()?;
//! assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, vec![2.0, -4.0, 6.0]);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]
// Tests pass `&[x.clone()]` to gradcheck for readability.
#![cfg_attr(test, allow(clippy::cloned_ref_to_slice_refs))]

pub mod autocast;
pub mod autograd;
#[cfg(test)]
mod autograd_tests;
pub mod backend;
pub mod buffer_pool;
mod device;
mod display;
mod dtype;
mod error;
#[cfg(test)]
mod half_tests;
pub mod io;
pub mod ops;
pub mod profile;
pub mod random;
#[cfg(test)]
mod second_order_tests;
mod shape;
mod storage;
mod tensor;
#[doc(hidden)]
pub mod testing;
pub mod threads;
mod variable;

pub use autocast::{autocast, autocast_dtype};
pub use autograd::{custom_op, enable_grad, grad, grad_with_graph, no_grad, GradientTape, Gradients, NoGradGuard, TWICE_DIFFERENTIABLE};
pub use device::{Device, DeviceKind};
pub use dtype::DType;
pub use error::{Error, Result};
pub use half::{bf16, f16};
pub use random::set_seed;
pub use shape::{broadcast_shapes, checked_bytes, checked_numel, normalize_axis, Shape};
pub use storage::{DeviceBuffer, Element, HostData, Storage};
pub use tensor::{Tensor, TensorId};
pub use threads::on_pool;
pub use variable::{Constraint, Variable};
