//! The model zoo (`keras.applications` and the classic architectures of the seeds).

mod fashion;
mod googlenet;
mod inception_v3;
mod lenet;
mod mobilenet;
mod options;
pub mod registry_b;
mod resnet;
mod support_b;
mod xception;

pub use fashion::fashion_mnist_cnn;
pub use googlenet::{googlenet, googlenet_inference, googlenet_with_aux, GOOGLENET_AUX_LOSS_WEIGHT, GOOGLENET_LOSS_WEIGHTS};
pub use inception_v3::inception_v3;
pub use lenet::lenet5;
pub use mobilenet::{mobilenet, mobilenet_v2};
pub use options::{AppOptions, Pooling};
pub use resnet::{resnet34_geron, ResidualUnit};
pub use xception::xception;
