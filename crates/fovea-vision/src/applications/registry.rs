//! The zoo by name, for the CLI (`fovea summary <name>`) and configs: one match from a model's
//! lower-case name to its constructor.

use super::options::AppOptions;
use super::{
    alexnet, googlenet, googlenet_with_aux, inception_v3, mobilenet, mobilenet_v2, resnet101, resnet152, resnet18, resnet20, resnet32,
    resnet34, resnet50, resnet56, se_resnet50, vgg11, vgg13, vgg16, vgg19, xception,
};
use fovea_nn::model::functional::Functional;
use fovea_nn::{Error, Result};

/// Every name [`build_by_name`] accepts.
pub const MODEL_NAMES: &[&str] = &[
    "alexnet",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet20",
    "resnet32",
    "resnet56",
    "se_resnet50",
    "inception_v3",
    "googlenet",
    "googlenet_aux",
    "xception",
    "mobilenet",
    "mobilenet_v2",
];

/// The zoo model called `name` (one of [`MODEL_NAMES`]) built with `opts`.
///
/// ```
/// use fovea_vision::applications::{build_by_name, AppOptions};
/// let m = build_by_name("resnet20", &AppOptions { classes: 10, ..AppOptions::default() })?;
/// assert!(m.summary()?.contains("Total params: 271,098"));
/// # Ok::<(), fovea_nn::Error>(())
/// ```
///
/// # Errors
/// `Config` listing the known names for an unknown one; the constructor's errors.
pub fn build_by_name(name: &str, opts: &AppOptions) -> Result<Functional> {
    match name {
        "alexnet" => alexnet(opts),
        "vgg11" => vgg11(opts),
        "vgg13" => vgg13(opts),
        "vgg16" => vgg16(opts),
        "vgg19" => vgg19(opts),
        "resnet18" => resnet18(opts),
        "resnet34" => resnet34(opts),
        "resnet50" => resnet50(opts),
        "resnet101" => resnet101(opts),
        "resnet152" => resnet152(opts),
        "resnet20" => resnet20(opts),
        "resnet32" => resnet32(opts),
        "resnet56" => resnet56(opts),
        "se_resnet50" => se_resnet50(opts),
        "inception_v3" => inception_v3(opts),
        "googlenet" => googlenet(opts),
        // GoogLeNet with its two auxiliary classifiers (three outputs), for training.
        "googlenet_aux" => googlenet_with_aux(opts),
        "xception" => xception(opts),
        // The MobileNets at their default width (α = 1) and Keras's dropout of 1e-3.
        "mobilenet" => mobilenet(opts, 1.0, 1, 1e-3),
        "mobilenet_v2" => mobilenet_v2(opts, 1.0),
        _ => Err(Error::Config(format!("build_by_name: unknown model {name:?}, expected one of {}", MODEL_NAMES.join(", ")))),
    }
}
