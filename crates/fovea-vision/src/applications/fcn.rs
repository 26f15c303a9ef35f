//! Fully convolutional networks (Long, Shelhamer & Darrell 2015) on a VGG-16 backbone, with
//! "same" padding so the output map has the input's size: `fc6` (7×7, 4096) and `fc7` (1×1,
//! 4096) as convolutions, a 1×1 `score_fr` to class scores, then learned (transposed
//! convolution) upsampling. FCN-32s upsamples ×32 at once; FCN-16s adds the 1×1 scores of pool4
//! to the ×2-upsampled scores first; FCN-8s adds pool3's too. Layer names and counts match the
//! Keras builds in `tools/fixtures/gen_segmentation_fixtures.py`. Dropout after fc6/fc7 is
//! left out (the fixture's build has none either).

use super::vgg::vgg_blocks;
use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{Add, Conv2D, Conv2DTranspose};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::{Error, Result};

/// How far an FCN upsamples in its last step: its stride (32, 16 or 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FcnVariant {
    /// One ×32 upsampling of the fc7 scores.
    Fcn32s,
    /// pool4's scores added at stride 16, then ×16.
    Fcn16s,
    /// pool4's and pool3's scores added, then ×8.
    Fcn8s,
}

/// A transposed convolution without bias that upsamples `x` by `factor` (kernel 2·factor).
fn upsample(x: &Node, classes: usize, factor: usize, name: &str) -> Result<Node> {
    Conv2DTranspose::new(classes, (2 * factor, 2 * factor))
        .strides((factor, factor))
        .padding(Padding::Same)
        .use_bias(false)
        .named(name)?
        .on(x)
}

/// An FCN of `variant` for `(height, width, channels)` inputs (multiples of 32).
///
/// # Errors
/// `Config` when the height or width is not a positive multiple of 32 or `classes` is 0.
pub fn fcn(input_shape: (usize, usize, usize), classes: usize, variant: FcnVariant) -> Result<Functional> {
    let (h, w, c) = input_shape;
    let name = match variant {
        FcnVariant::Fcn32s => "fcn32s",
        FcnVariant::Fcn16s => "fcn16s",
        FcnVariant::Fcn8s => "fcn8s",
    };
    if h == 0 || w == 0 || h % 32 != 0 || w % 32 != 0 || c == 0 || classes == 0 {
        return Err(Error::Config(format!(
            "{name}: expected an input whose height and width are positive multiples of 32 and at least one class, got {h}×{w}×{c}, {classes} classes"
        )));
    }
    let input = Input::named(&[h, w, c], "input");
    let pools = vgg_blocks(&input, [2, 2, 3, 3, 3])?;
    let x = Conv2D::new(4096, (7, 7)).padding(Padding::Same).activation(Act::Relu).named("fc6")?.on(&pools[4])?;
    let x = Conv2D::new(4096, (1, 1)).activation(Act::Relu).named("fc7")?.on(&x)?;
    let score = Conv2D::new(classes, (1, 1)).named("score_fr")?.on(&x)?;
    let out = match variant {
        FcnVariant::Fcn32s => upsample(&score, classes, 32, "upscore32")?,
        _ => {
            let up = upsample(&score, classes, 2, "upscore2")?;
            let pool4 = Conv2D::new(classes, (1, 1)).named("score_pool4")?.on(&pools[3])?;
            let fused = Add::new().named("fuse_pool4")?.on_many(&[&up, &pool4])?;
            if variant == FcnVariant::Fcn16s {
                upsample(&fused, classes, 16, "upscore16")?
            } else {
                let up = upsample(&fused, classes, 2, "upscore_pool4")?;
                let pool3 = Conv2D::new(classes, (1, 1)).named("score_pool3")?.on(&pools[2])?;
                let fused = Add::new().named("fuse_pool3")?.on_many(&[&up, &pool3])?;
                upsample(&fused, classes, 8, "upscore8")?
            }
        }
    };
    Functional::new(&[&input], &[&out])?.named(name)
}
