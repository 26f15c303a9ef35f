//! The model zoo (`keras.applications` and the classic architectures of the seeds).

mod lenet;
mod resnet;

pub use lenet::lenet5;
pub use resnet::{resnet34_geron, ResidualUnit};
