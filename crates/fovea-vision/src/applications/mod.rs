//! The model zoo (`keras.applications` and the classic architectures of the seeds).

mod fashion;
mod lenet;
mod options;
mod resnet;

pub use fashion::fashion_mnist_cnn;
pub use lenet::lenet5;
pub use options::{AppOptions, Pooling};
pub use resnet::{resnet34_geron, ResidualUnit};
