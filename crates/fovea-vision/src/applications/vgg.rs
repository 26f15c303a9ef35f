//! VGG-16 and VGG-19 (Simonyan & Zisserman 2014) exactly as `keras.applications.vgg16/vgg19`
//! build them: five blocks of 3×3 "same" ReLU convolutions, each closed by a 2×2 max pooling,
//! then `flatten`, `fc1`, `fc2` (4096 ReLU units) and `predictions` — 138,357,544 and
//! 143,667,240 parameters at 224×224×3 with 1000 classes. Input: 224×224 RGB after
//! [`preprocess_input`](super::preprocess_input) in `Caffe` mode; at least 32×32.

use super::options::{AppOptions, Pooling};
use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{Conv2D, Dense, Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::Result;

/// VGG-11 (the paper's configuration A): blocks of 1, 1, 2, 2, 2 convolutions; 132,863,336
/// parameters at 224×224×3 with 1000 classes (torchvision's `vgg11` has the same layers).
///
/// # Errors
/// An input under 32×32, or `classes = 0` with the top.
pub fn vgg11(opts: &AppOptions) -> Result<Functional> {
    vgg(opts, "vgg11", [1, 1, 2, 2, 2])
}

/// VGG-13 (configuration B): blocks of 2, 2, 2, 2, 2 convolutions; 133,047,848 parameters.
///
/// # Errors
/// An input under 32×32, or `classes = 0` with the top.
pub fn vgg13(opts: &AppOptions) -> Result<Functional> {
    vgg(opts, "vgg13", [2, 2, 2, 2, 2])
}

/// VGG-16: blocks of 2, 2, 3, 3, 3 convolutions.
///
/// # Errors
/// An input under 32×32, or `classes = 0` with the top.
pub fn vgg16(opts: &AppOptions) -> Result<Functional> {
    vgg(opts, "vgg16", [2, 2, 3, 3, 3])
}

/// VGG-19: blocks of 2, 2, 4, 4, 4 convolutions.
///
/// # Errors
/// An input under 32×32, or `classes = 0` with the top.
pub fn vgg19(opts: &AppOptions) -> Result<Functional> {
    vgg(opts, "vgg19", [2, 2, 4, 4, 4])
}

fn vgg(opts: &AppOptions, name: &str, convs: [usize; 5]) -> Result<Functional> {
    let (h, w, c) = opts.resolve_input(name, (224, 224, 3), 32)?;
    let input = Input::new(&[h, w, c]);
    let pools = vgg_blocks(&input, convs)?;
    let x = pools[4].clone();
    let x = if opts.include_top {
        let x = Flatten::new().named("flatten")?.on(&x)?;
        let x = Dense::new(4096).activation(Act::Relu).named("fc1")?.on(&x)?;
        let x = Dense::new(4096).activation(Act::Relu).named("fc2")?.on(&x)?;
        opts.classifier(&x, "predictions")?
    } else {
        headless_pool(opts, &x)?
    };
    Functional::new(&[&input], &[&x])?.named(name)
}

/// The five convolution blocks of VGG on `input` (Keras's layer names `blockB_convI`,
/// `blockB_pool`); returns the output of each block's pooling, so FCN can tap pool3 and pool4.
pub(crate) fn vgg_blocks(input: &Node, convs: [usize; 5]) -> Result<Vec<Node>> {
    let mut x = input.clone();
    let mut pools = Vec::with_capacity(5);
    for (block, (&n, filters)) in convs.iter().zip([64, 128, 256, 512, 512]).enumerate() {
        for i in 1..=n {
            x = Conv2D::new(filters, (3, 3))
                .padding(Padding::Same)
                .activation(Act::Relu)
                .named(&format!("block{}_conv{i}", block + 1))?
                .on(&x)?;
        }
        x = MaxPooling2D::new((2, 2)).strides((2, 2)).named(&format!("block{}_pool", block + 1))?.on(&x)?;
        pools.push(x.clone());
    }
    Ok(pools)
}

/// Keras's VGG leaves its headless pooling layers unnamed (unlike ResNet's `avg_pool`), so they
/// take the session's automatic names, as in Keras.
fn headless_pool(opts: &AppOptions, x: &Node) -> Result<Node> {
    match opts.pooling {
        Pooling::None => Ok(x.clone()),
        Pooling::Avg => GlobalAveragePooling2D::new().on(x),
        Pooling::Max => GlobalMaxPooling2D::new().on(x),
    }
}
