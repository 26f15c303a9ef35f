//! The models of this part of the zoo by name, for `fovea summary <name>` and similar lookups.

use super::googlenet::{googlenet, googlenet_with_aux};
use super::inception_v3::inception_v3;
use super::mobilenet::{mobilenet, mobilenet_v2};
use super::options::AppOptions;
use super::xception::xception;
use fovea_nn::model::functional::Functional;
use fovea_nn::Result;

/// The names [`build_by_name`] knows, Keras's spelling in lower case; the MobileNets at their
/// default width (α = 1, Keras's dropout 1e-3) and GoogLeNet with or without its auxiliary
/// classifiers.
pub const MODEL_NAMES: &[&str] = &["inception_v3", "googlenet", "googlenet_aux", "xception", "mobilenet", "mobilenet_v2"];

/// Builds the model called `name` (see [`MODEL_NAMES`]) with `opts`; `None` for a name this
/// part of the zoo does not have.
pub fn build_by_name(name: &str, opts: &AppOptions) -> Option<Result<Functional>> {
    Some(match name {
        "inception_v3" => inception_v3(opts),
        "googlenet" => googlenet(opts),
        "googlenet_aux" => googlenet_with_aux(opts),
        "xception" => xception(opts),
        "mobilenet" => mobilenet(opts, 1.0, 1, 1e-3),
        "mobilenet_v2" => mobilenet_v2(opts, 1.0),
        _ => return None,
    })
}
