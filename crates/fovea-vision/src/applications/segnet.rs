//! SegNet (Badrinarayanan, Kendall & Cipolla 2017): a VGG-16-shaped encoder (3×3 convolutions
//! with batch norm and ReLU, 2×2 max pooling) and a mirrored decoder that upsamples with the
//! encoder's pooling indices ([`MaxUnpooling2D`]) instead of learned deconvolutions; a 1×1
//! convolution gives the class logits. Each decoder block repeats its encoder block's
//! convolutions, the last one narrowing to the next block's width (64 at the top). Layer names
//! and counts match the Keras build in `tools/fixtures/gen_segmentation_fixtures.py`.

use crate::segmentation::unpool::MaxUnpooling2D;
use fovea_core::ops::padding::Padding;
use fovea_nn::layers::{BatchNormalization, Conv2D, MaxPooling2D, ReLU};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::{Error, Result};

fn conv_bn_relu(x: &Node, filters: usize, name: &str) -> Result<Node> {
    let x = Conv2D::new(filters, (3, 3)).padding(Padding::Same).use_bias(false).named(&format!("{name}_conv"))?.on(x)?;
    let x = BatchNormalization::new().named(&format!("{name}_bn"))?.on(&x)?;
    ReLU::new().named(&format!("{name}_relu"))?.on(&x)
}

/// SegNet with VGG-16's encoder: blocks of 2, 2, 3, 3, 3 convolutions of 64 to 512 filters.
///
/// # Errors
/// As [`segnet_with`].
pub fn segnet(input_shape: (usize, usize, usize), classes: usize) -> Result<Functional> {
    segnet_with(input_shape, classes, &[64, 128, 256, 512, 512], &[2, 2, 3, 3, 3], "segnet")
}

/// A SegNet whose encoder block `b` has `convs[b]` convolutions of `filters[b]` filters.
///
/// # Errors
/// `Config` when `filters` and `convs` differ in length or are empty, a count is zero, or the
/// input's height and width are not multiples of `2^blocks`.
pub fn segnet_with(
    input_shape: (usize, usize, usize),
    classes: usize,
    filters: &[usize],
    convs: &[usize],
    name: &str,
) -> Result<Functional> {
    let (h, w, c) = input_shape;
    let blocks = filters.len();
    let step = 1usize << blocks.min(30);
    if blocks == 0 || convs.len() != blocks || filters.contains(&0) || convs.contains(&0) || classes == 0 || c == 0 {
        return Err(Error::Config(format!(
            "{name}: expected as many positive filter widths as conv counts (at least one block) and at least one class, got filters {filters:?}, convs {convs:?}, {classes} classes"
        )));
    }
    if h == 0 || w == 0 || h % step != 0 || w % step != 0 {
        return Err(Error::Config(format!("{name}: {blocks} poolings need a height and width that are multiples of {step}, got {h}×{w}")));
    }
    let input = Input::named(&[h, w, c], "input");
    let (mut x, mut features) = (input.clone(), Vec::with_capacity(blocks));
    for b in 0..blocks {
        for i in 1..=convs[b] {
            x = conv_bn_relu(&x, filters[b], &format!("enc{}_{i}", b + 1))?;
        }
        features.push(x.clone());
        x = MaxPooling2D::new((2, 2)).named(&format!("enc{}_pool", b + 1))?.on(&x)?;
    }
    for b in (0..blocks).rev() {
        x = MaxUnpooling2D::new((2, 2)).named(&format!("dec{}_unpool", b + 1))?.on_many(&[&x, &features[b]])?;
        for i in 1..=convs[b] {
            let width = if i < convs[b] { filters[b] } else { filters[b.saturating_sub(1)] };
            x = conv_bn_relu(&x, width, &format!("dec{}_{i}", b + 1))?;
        }
    }
    let logits = Conv2D::new(classes, (1, 1)).named("logits")?.on(&x)?;
    Functional::new(&[&input], &[&logits])?.named(name)
}
