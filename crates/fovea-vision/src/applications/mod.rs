//! The model zoo (`keras.applications` and the classic architectures of the seeds).

mod alexnet;
mod aspp;
mod book;
mod fashion;
mod fcn;
mod googlenet;
mod imagenet;
mod inception_v3;
mod lenet;
mod lenet_original;
mod mobilenet;
mod options;
mod preprocess;
pub mod registry;
mod resnet;
mod resnet_cifar;
mod resnet_keras;
mod se;
mod segnet;
mod support_b;
mod torchvision;
mod unet;
mod vgg;
mod xception;

pub use alexnet::alexnet;
pub use aspp::aspp;
pub use book::{cifar10_cnn, count_params, dense_kernel_as_conv, inception_block_a, localization_cnn, mnist_cnn, sliding_window_net};
pub use fashion::fashion_mnist_cnn;
pub use fcn::{fcn, FcnVariant};
pub use googlenet::{googlenet, googlenet_inference, googlenet_with_aux, GOOGLENET_AUX_LOSS_WEIGHT, GOOGLENET_LOSS_WEIGHTS};
pub use imagenet::{decode_predictions, imagenet_classes, Prediction, IMAGENET_CLASSES};
pub use inception_v3::inception_v3;
pub use lenet::{lenet5, lenet_like};
pub use lenet_original::{c3_kernel, lenet5_original, rbf, subsample, PartialConv2D, RbfOutput, Subsampling2D, C3_CONNECTIONS};
pub use mobilenet::{mobilenet, mobilenet_v2};
pub use options::{AppOptions, Pooling};
pub use preprocess::{preprocess_input, PreprocessMode};
pub use registry::{build_by_name, MODEL_NAMES};
pub use resnet::{resnet34_geron, ResidualUnit};
pub use resnet_cifar::{resnet20, resnet32, resnet56, resnet_cifar};
pub use resnet_keras::{resnet101, resnet152, resnet18, resnet34, resnet50};
pub use se::{se_resnet50, squeeze_excite, SE_RATIO};
pub use segnet::{segnet, segnet_with};
pub use torchvision::{
    convert_torchvision, load_torchvision, torchvision_classes, torchvision_model, torchvision_rules, TORCHVISION_ARCHS,
};
pub use unet::{unet, unet_small, unet_with, UNetOptions};
pub use vgg::{vgg11, vgg13, vgg16, vgg19};
pub use xception::xception;
