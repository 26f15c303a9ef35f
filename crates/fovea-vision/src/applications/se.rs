//! Squeeze-and-excitation (Hu, Shen & Sun, SENet 2017): a unit's output channels are rescaled by
//! weights computed from the unit's own globally pooled output, `x · σ(W₂ relu(W₁ gap(x)))`, with
//! a bottleneck of `C / ratio` units (ratio 16 in the paper). It adds `2C²/r + C/r + C`
//! parameters to a unit of `C` output channels and leaves every shape unchanged, so it drops
//! into any residual or Inception unit.
//!
//! SE-ResNet-50 is `keras.applications.ResNet50` with an SE block on each bottleneck's residual
//! branch, before the addition: 25,636,712 + 2,530,992 = 28,167,704 parameters (the paper's
//! 28.09M is the same network over torchvision's bias-free convolutions).

use super::options::AppOptions;
use super::resnet_keras::{resnet, Spec, Unit};
use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{Dense, GlobalAveragePooling2D, Multiply, Reshape};
use fovea_nn::model::functional::{Connect, Functional, Node};
use fovea_nn::{Error, Result};

/// The squeeze-and-excitation ratio of the paper.
pub const SE_RATIO: usize = 16;

/// `x` rescaled channel-wise by an SE block with `C / ratio` hidden units. Its layers are
/// `{name}_se_squeeze` (global average pooling), `{name}_se_reduce` (ReLU), `{name}_se_expand`
/// (sigmoid), `{name}_se_reshape` (to `1×1×C`) and `{name}_se_excite` (the product).
///
/// # Errors
/// `Config` when `x` is not a 4-D feature map with a known channel count of at least `ratio`, or
/// `ratio` is 0; layer build errors.
pub fn squeeze_excite(x: &Node, ratio: usize, name: &str) -> Result<Node> {
    let channels = match x.shape().as_slice() {
        [_, _, _, Some(c)] => *c,
        _ => {
            return Err(Error::Config(format!(
                "squeeze_excite {name}: expected a feature map (batch, height, width, channels), got shape {}",
                fovea_nn::layer::format_shape(x.shape())
            )))
        }
    };
    if ratio == 0 || channels < ratio {
        return Err(Error::Config(format!(
            "squeeze_excite {name}: ratio must be between 1 and the channel count {channels}, received {ratio}"
        )));
    }
    let n = |suffix: &str| format!("{name}_se_{suffix}");
    let s = GlobalAveragePooling2D::new().named(&n("squeeze"))?.on(x)?;
    let s = Dense::new(channels / ratio).activation(Act::Relu).named(&n("reduce"))?.on(&s)?;
    let s = Dense::new(channels).activation(Act::Sigmoid).named(&n("expand"))?.on(&s)?;
    let s = Reshape::new(&[1, 1, channels as isize]).named(&n("reshape"))?.on(&s)?;
    Multiply::new().named(&n("excite"))?.on_many(&[x, &s])
}

/// SE-ResNet-50: `keras.applications.ResNet50` with squeeze-and-excitation (ratio 16) in every
/// unit; the same options, input and preprocessing.
///
/// # Errors
/// An input under 32×32, or `classes = 0` with the top.
pub fn se_resnet50(opts: &AppOptions) -> Result<Functional> {
    resnet(opts, &Spec { name: "se_resnet50", unit: Unit::Bottleneck, blocks: [3, 4, 6, 3], se_ratio: Some(SE_RATIO) })
}
