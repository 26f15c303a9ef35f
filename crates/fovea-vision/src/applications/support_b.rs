//! Helpers shared by the Keras-application ports of this part of the zoo (Inception, Xception,
//! MobileNets, GoogLeNet).

use super::options::{AppOptions, Pooling};
use fovea_nn::layer::Layer;
use fovea_nn::layers::{GlobalAveragePooling2D, GlobalMaxPooling2D};
use fovea_nn::model::functional::{Connect, Node};
use fovea_nn::Result;

/// Fixes an unnamed layer's automatic name now. Keras numbers layers (`conv2d_7`,
/// `activation_12`) when they are constructed, fovea when a name is first asked for — which for
/// a weightless layer may be long after the model is built — so pinning it at construction
/// reproduces Keras's numbering whenever the layers are created in Keras's order.
pub(crate) fn auto<L: Layer>(layer: L) -> L {
    let _ = layer.name();
    layer
}

/// The pooling of a headless model as these `keras.applications` write it: an unnamed
/// `GlobalAveragePooling2D` / `GlobalMaxPooling2D` (`AppOptions::pool` uses ResNet's
/// `avg_pool` / `max_pool` names instead).
pub(crate) fn unnamed_pool(opts: &AppOptions, x: &Node) -> Result<Node> {
    match opts.pooling {
        Pooling::None => Ok(x.clone()),
        Pooling::Avg => auto(GlobalAveragePooling2D::new()).on(x),
        Pooling::Max => auto(GlobalMaxPooling2D::new()).on(x),
    }
}
