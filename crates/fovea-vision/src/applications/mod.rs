//! The model zoo (`keras.applications` and the classic architectures of the seeds).

mod alexnet;
mod fashion;
mod lenet;
mod options;
mod preprocess;
pub mod registry;
mod resnet;
mod resnet_cifar;
mod resnet_keras;
mod se;
mod vgg;

pub use alexnet::alexnet;
pub use fashion::fashion_mnist_cnn;
pub use lenet::lenet5;
pub use options::{AppOptions, Pooling};
pub use preprocess::{preprocess_input, PreprocessMode};
pub use registry::{build_by_name, MODEL_NAMES};
pub use resnet::{resnet34_geron, ResidualUnit};
pub use resnet_cifar::{resnet20, resnet32, resnet56, resnet_cifar};
pub use resnet_keras::{resnet101, resnet152, resnet18, resnet34, resnet50};
pub use se::{se_resnet50, squeeze_excite, SE_RATIO};
pub use vgg::{vgg16, vgg19};
