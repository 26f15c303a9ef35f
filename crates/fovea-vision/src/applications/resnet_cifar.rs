//! The CIFAR-10 ResNets of He et al. 2015 (§4.2): a 3×3 convolution of 16 filters, then three
//! stages of `n` basic units with 16, 32 and 64 filters on 32×32, 16×16 and 8×8 maps, global
//! average pooling and the classifier — `6n + 2` weighted layers.
//!
//! Shortcuts use the paper's **option A**, which it uses for these networks: identities, and
//! where a stage halves the map and doubles the width, a parameter-free shortcut that subsamples
//! (`{unit}_0_pool`, a 1×1 max pooling of stride 2) and appends as many zero channels
//! (`{unit}_0_zeros`, the subsampled map minus itself, and `{unit}_0_pad`, the concatenation).
//! Built from stock layers, the model saves and reloads like any other. (Implementations that
//! pad half the zeros on each side differ only by a permutation of the residual branch's
//! channels.) Convolutions are bias-free, batch norm uses ε = 1.001e-5 like the Keras ResNets.
//!
//! With 10 classes: ResNet-20 271,098 parameters (269,722 trainable — the paper's "0.27M"),
//! ResNet-32 466,426 (464,154), ResNet-56 857,082 (853,018). For ResNet-20: convolutions
//! 432 + 6·2,304 + (4,608 + 5·9,216) + (18,432 + 5·36,864) = 267,696; 19 batch norms over
//! 16·7 + 32·6 + 64·6 = 688 channels, 4 values each, 2,752 (half of it moving statistics,
//! non-trainable); the classifier 650. Input: 32×32×3 (at least 8×8); pass `classes: 10` for
//! CIFAR-10 — the options' default is ImageNet's 1000.

use super::options::AppOptions;
use super::resnet_keras::{bn, merge, relu};
use fovea_core::ops::padding::Padding;
use fovea_nn::layers::{Concatenate, Conv2D, GlobalAveragePooling2D, MaxPooling2D, Subtract};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::{Error, Result};

/// ResNet-20 (`n = 3`).
///
/// # Errors
/// As [`resnet_cifar`].
pub fn resnet20(opts: &AppOptions) -> Result<Functional> {
    resnet_cifar(20, opts)
}

/// ResNet-32 (`n = 5`).
///
/// # Errors
/// As [`resnet_cifar`].
pub fn resnet32(opts: &AppOptions) -> Result<Functional> {
    resnet_cifar(32, opts)
}

/// ResNet-56 (`n = 9`).
///
/// # Errors
/// As [`resnet_cifar`].
pub fn resnet56(opts: &AppOptions) -> Result<Functional> {
    resnet_cifar(56, opts)
}

/// The CIFAR ResNet of `depth = 6n + 2` layers (20, 32, 44, 56, 110, ...), named `resnet{depth}`.
///
/// # Errors
/// `Config` for a depth that is not `6n + 2` with `n ≥ 1`, an input under 8×8, or `classes = 0`
/// with the top.
pub fn resnet_cifar(depth: usize, opts: &AppOptions) -> Result<Functional> {
    let name = format!("resnet{depth}");
    if depth < 8 || !(depth - 2).is_multiple_of(6) {
        return Err(Error::Config(format!("{name}: depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 56, 110, ...), received {depth}")));
    }
    let (h, w, c) = opts.resolve_input(&name, (32, 32, 3), 8)?;
    let input = Input::new(&[h, w, c]);
    let x = Conv2D::new(16, (3, 3)).padding(Padding::Same).use_bias(false).named("conv1_conv")?.on(&input)?;
    let mut x = relu("conv1_relu", &bn("conv1_bn", &x)?)?;
    for (stage, filters) in [16, 32, 64].into_iter().enumerate() {
        for b in 1..=(depth - 2) / 6 {
            let stride = if stage > 0 && b == 1 { 2 } else { 1 };
            x = unit(&x, filters, stride, &format!("conv{}_block{b}", stage + 2))?;
        }
    }
    let x = if opts.include_top {
        let x = GlobalAveragePooling2D::new().named("avg_pool")?.on(&x)?;
        opts.classifier(&x, "predictions")?
    } else {
        opts.pool(&x)?
    };
    Functional::new(&[&input], &[&x])?.named(&name)
}

/// A basic unit with an option-A shortcut when it downsamples (and so doubles the width).
fn unit(x: &Node, filters: usize, stride: usize, name: &str) -> Result<Node> {
    let n = |suffix: &str| format!("{name}_{suffix}");
    let conv3 = |s: usize, suffix: &str, x: &Node| -> Result<Node> {
        Conv2D::new(filters, (3, 3)).strides((s, s)).padding(Padding::Same).use_bias(false).named(&n(suffix))?.on(x)
    };
    let shortcut = if stride != 1 {
        let sub = MaxPooling2D::new((1, 1)).strides((stride, stride)).named(&n("0_pool"))?.on(x)?;
        let zeros = Subtract::new().named(&n("0_zeros"))?.on_many(&[&sub, &sub])?;
        Concatenate::new(-1).named(&n("0_pad"))?.on_many(&[&sub, &zeros])?
    } else {
        x.clone()
    };
    let y = relu(&n("1_relu"), &bn(&n("1_bn"), &conv3(stride, "1_conv", x)?)?)?;
    let y = bn(&n("2_bn"), &conv3(1, "2_conv", &y)?)?;
    merge(&shortcut, &y, None, name)
}
