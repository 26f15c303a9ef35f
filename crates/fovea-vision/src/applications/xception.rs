//! Xception (Chollet, *Deep Learning with Depthwise Separable Convolutions*, 2017) as
//! `keras.applications.Xception`: an entry flow of strided separable blocks with 1×1
//! projection shortcuts, eight identity-shortcut middle blocks of 728 channels, and an exit
//! flow to 2048 channels.

use super::options::AppOptions;
use super::support_b::{auto, unnamed_pool};
use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{Activation, Add, BatchNormalization, Conv2D, GlobalAveragePooling2D, MaxPooling2D, SeparableConv2D};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::Result;

fn relu(x: &Node, name: &str) -> Result<Node> {
    Activation::new(Act::Relu).named(name)?.on(x)
}

/// A bias-free 3×3 "same" separable convolution `name` and its batch normalisation `name_bn`.
fn sep_bn(x: &Node, filters: usize, name: &str) -> Result<Node> {
    let x = SeparableConv2D::new(filters, (3, 3)).padding(Padding::Same).use_bias(false).named(name)?.on(x)?;
    BatchNormalization::new().named(&format!("{name}_bn"))?.on(&x)
}

/// The strided 1×1 projection shortcut (automatically named, as in Keras).
fn shortcut(x: &Node, filters: usize) -> Result<Node> {
    let r = auto(Conv2D::new(filters, (1, 1)).strides((2, 2)).padding(Padding::Same).use_bias(false)).on(x)?;
    auto(BatchNormalization::new()).on(&r)
}

fn block_pool(x: &Node, name: &str) -> Result<Node> {
    MaxPooling2D::new((3, 3)).strides((2, 2)).padding(Padding::Same).named(name)?.on(x)
}

fn add(a: &Node, b: &Node) -> Result<Node> {
    auto(Add::new()).on_many(&[a, b])
}

/// Entry-flow blocks 3 and 4: ReLU, two separable convolutions, a strided max pool, plus the
/// projection shortcut.
fn entry_block(x: &Node, filters: usize, block: usize) -> Result<Node> {
    let residual = shortcut(x, filters)?;
    let mut y = relu(x, &format!("block{block}_sepconv1_act"))?;
    y = sep_bn(&y, filters, &format!("block{block}_sepconv1"))?;
    y = relu(&y, &format!("block{block}_sepconv2_act"))?;
    y = sep_bn(&y, filters, &format!("block{block}_sepconv2"))?;
    y = block_pool(&y, &format!("block{block}_pool"))?;
    add(&y, &residual)
}

/// `keras.applications.Xception(weights=None, ...)`: 22,910,480 parameters (54,528
/// non-trainable) at the canonical 299×299×3 with the 1000-class top.
///
/// Explicit Keras names (`block1_conv1`, `block5_sepconv2_bn`, `block13_pool`, `avg_pool`,
/// `predictions`, ...) are kept, and the shortcut convolutions, their batch normalisations and
/// the `Add`s are created in Keras's order so that their automatic names match after
/// `fovea_nn::names::clear_session()`. Inputs are expected in Keras's `"tf"` preprocess mode
/// (pixels scaled to [-1, 1]); the smallest input is 71×71.
///
/// # Errors
/// `Config` for an input under 71×71 or `classes` 0 with the top.
pub fn xception(opts: &AppOptions) -> Result<Functional> {
    let (h, w, c) = opts.resolve_input("Xception", (299, 299, 3), 71)?;
    let input = Input::new(&[h, w, c]);
    let mut x = Conv2D::new(32, (3, 3)).strides((2, 2)).use_bias(false).named("block1_conv1")?.on(&input)?;
    x = BatchNormalization::new().named("block1_conv1_bn")?.on(&x)?;
    x = relu(&x, "block1_conv1_act")?;
    x = Conv2D::new(64, (3, 3)).use_bias(false).named("block1_conv2")?.on(&x)?;
    x = BatchNormalization::new().named("block1_conv2_bn")?.on(&x)?;
    x = relu(&x, "block1_conv2_act")?;

    // Block 2 starts from an activated tensor, so it has no leading ReLU.
    let residual = shortcut(&x, 128)?;
    x = sep_bn(&x, 128, "block2_sepconv1")?;
    x = relu(&x, "block2_sepconv2_act")?;
    x = sep_bn(&x, 128, "block2_sepconv2")?;
    x = block_pool(&x, "block2_pool")?;
    x = add(&x, &residual)?;

    x = entry_block(&x, 256, 3)?;
    x = entry_block(&x, 728, 4)?;

    for block in 5..13 {
        let residual = x.clone();
        for i in 1..=3 {
            x = relu(&x, &format!("block{block}_sepconv{i}_act"))?;
            x = sep_bn(&x, 728, &format!("block{block}_sepconv{i}"))?;
        }
        x = add(&x, &residual)?;
    }

    let residual = shortcut(&x, 1024)?;
    x = relu(&x, "block13_sepconv1_act")?;
    x = sep_bn(&x, 728, "block13_sepconv1")?;
    x = relu(&x, "block13_sepconv2_act")?;
    x = sep_bn(&x, 1024, "block13_sepconv2")?;
    x = block_pool(&x, "block13_pool")?;
    x = add(&x, &residual)?;

    x = sep_bn(&x, 1536, "block14_sepconv1")?;
    x = relu(&x, "block14_sepconv1_act")?;
    x = sep_bn(&x, 2048, "block14_sepconv2")?;
    x = relu(&x, "block14_sepconv2_act")?;

    let out = if opts.include_top {
        let p = GlobalAveragePooling2D::new().named("avg_pool")?.on(&x)?;
        opts.classifier(&p, "predictions")?
    } else {
        unnamed_pool(opts, &x)?
    };
    Functional::new(&[&input], &[&out])?.named("xception")
}
