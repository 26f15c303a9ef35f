//! Inception v3 (Szegedy et al., *Rethinking the Inception Architecture*, 2016) as
//! `keras.applications.InceptionV3`: the factorised 7×7 and 3×3 modules `mixed0` … `mixed10`,
//! every convolution followed by a batch normalisation without γ (`scale=False`) and a ReLU.

use super::options::AppOptions;
use super::support_b::{auto, unnamed_pool};
use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{Activation, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, GlobalAveragePooling2D, MaxPooling2D};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::Result;

/// Keras's `conv2d_bn`: a bias-free convolution, a batch normalisation without γ and a ReLU,
/// all automatically named (`conv2d_N`, `batch_normalization_N`, `activation_N`).
fn conv_bn(x: &Node, filters: usize, kernel: (usize, usize), strides: usize, padding: Padding) -> Result<Node> {
    let x = auto(Conv2D::new(filters, kernel).strides((strides, strides)).padding(padding).use_bias(false)).on(x)?;
    let x = auto(BatchNormalization::new().center_scale(true, false)).on(&x)?;
    auto(Activation::new(Act::Relu)).on(&x)
}

fn same(x: &Node, filters: usize, kernel: (usize, usize)) -> Result<Node> {
    conv_bn(x, filters, kernel, 1, Padding::Same)
}

fn concat(branches: &[&Node], name: Option<&str>) -> Result<Node> {
    match name {
        Some(n) => Concatenate::new(3).named(n)?.on_many(branches),
        None => auto(Concatenate::new(3)).on_many(branches),
    }
}

/// The 3×3 average-pooling branch every module but the reductions has.
fn pool_branch(x: &Node, filters: usize) -> Result<Node> {
    let p = auto(AveragePooling2D::new((3, 3)).strides((1, 1)).padding(Padding::Same)).on(x)?;
    same(&p, filters, (1, 1))
}

/// `mixed0`–`mixed2`: 1×1, 5×5, double 3×3 and pooling branches at 35×35.
fn module_a(x: &Node, pool_filters: usize, name: &str) -> Result<Node> {
    let b1 = same(x, 64, (1, 1))?;
    let b5 = same(&same(x, 48, (1, 1))?, 64, (5, 5))?;
    let b3 = same(&same(&same(x, 64, (1, 1))?, 96, (3, 3))?, 96, (3, 3))?;
    let bp = pool_branch(x, pool_filters)?;
    concat(&[&b1, &b5, &b3, &bp], Some(name))
}

/// `mixed4`–`mixed7`: 7×7 convolutions factorised into 1×7 and 7×1 at 17×17.
fn module_c(x: &Node, c7: usize, name: &str) -> Result<Node> {
    let b1 = same(x, 192, (1, 1))?;
    let b7 = same(&same(&same(x, c7, (1, 1))?, c7, (1, 7))?, 192, (7, 1))?;
    let mut d = same(x, c7, (1, 1))?;
    d = same(&d, c7, (7, 1))?;
    d = same(&d, c7, (1, 7))?;
    d = same(&d, c7, (7, 1))?;
    d = same(&d, 192, (1, 7))?;
    let bp = pool_branch(x, 192)?;
    concat(&[&b1, &b7, &d, &bp], Some(name))
}

/// `mixed9`/`mixed10`: expanded 3×3 branches split into parallel 1×3 and 3×1 at 8×8.
fn module_e(x: &Node, i: usize) -> Result<Node> {
    let b1 = same(x, 320, (1, 1))?;
    let b3 = same(x, 384, (1, 1))?;
    let (b3_1, b3_2) = (same(&b3, 384, (1, 3))?, same(&b3, 384, (3, 1))?);
    let b3 = concat(&[&b3_1, &b3_2], Some(&format!("mixed9_{i}")))?;
    let d = same(&same(x, 448, (1, 1))?, 384, (3, 3))?;
    let (d_1, d_2) = (same(&d, 384, (1, 3))?, same(&d, 384, (3, 1))?);
    let d = concat(&[&d_1, &d_2], None)?;
    let bp = pool_branch(x, 192)?;
    concat(&[&b1, &b3, &d, &bp], Some(&format!("mixed{}", 9 + i)))
}

/// `keras.applications.InceptionV3(weights=None, ...)`: 23,851,784 parameters (34,432 of them
/// non-trainable moving statistics) at the canonical 299×299×3 with the 1000-class top.
///
/// Layers are created in Keras's order, so after `fovea_nn::names::clear_session()` even the
/// automatic names (`conv2d_N`, `batch_normalization_N`) equal Keras's; the explicit ones are
/// `mixed0` … `mixed10`, `mixed9_0`, `mixed9_1`, `avg_pool` and `predictions`. Inputs are
/// expected in Keras's `"tf"` preprocess mode (pixels scaled to [-1, 1]); the smallest input is
/// 75×75.
///
/// # Errors
/// `Config` for an input under 75×75 or `classes` 0 with the top.
pub fn inception_v3(opts: &AppOptions) -> Result<Functional> {
    let (h, w, c) = opts.resolve_input("InceptionV3", (299, 299, 3), 75)?;
    let input = Input::new(&[h, w, c]);
    let mut x = conv_bn(&input, 32, (3, 3), 2, Padding::Valid)?;
    x = conv_bn(&x, 32, (3, 3), 1, Padding::Valid)?;
    x = same(&x, 64, (3, 3))?;
    x = auto(MaxPooling2D::new((3, 3)).strides((2, 2))).on(&x)?;
    x = conv_bn(&x, 80, (1, 1), 1, Padding::Valid)?;
    x = conv_bn(&x, 192, (3, 3), 1, Padding::Valid)?;
    x = auto(MaxPooling2D::new((3, 3)).strides((2, 2))).on(&x)?;

    x = module_a(&x, 32, "mixed0")?;
    x = module_a(&x, 64, "mixed1")?;
    x = module_a(&x, 64, "mixed2")?;

    // mixed3: the 35×35 → 17×17 reduction.
    let b3 = conv_bn(&x, 384, (3, 3), 2, Padding::Valid)?;
    let d = same(&same(&x, 64, (1, 1))?, 96, (3, 3))?;
    let d = conv_bn(&d, 96, (3, 3), 2, Padding::Valid)?;
    let bp = auto(MaxPooling2D::new((3, 3)).strides((2, 2))).on(&x)?;
    x = concat(&[&b3, &d, &bp], Some("mixed3"))?;

    x = module_c(&x, 128, "mixed4")?;
    x = module_c(&x, 160, "mixed5")?;
    x = module_c(&x, 160, "mixed6")?;
    x = module_c(&x, 192, "mixed7")?;

    // mixed8: the 17×17 → 8×8 reduction.
    let b3 = conv_bn(&same(&x, 192, (1, 1))?, 320, (3, 3), 2, Padding::Valid)?;
    let mut b7 = same(&x, 192, (1, 1))?;
    b7 = same(&b7, 192, (1, 7))?;
    b7 = same(&b7, 192, (7, 1))?;
    b7 = conv_bn(&b7, 192, (3, 3), 2, Padding::Valid)?;
    let bp = auto(MaxPooling2D::new((3, 3)).strides((2, 2))).on(&x)?;
    x = concat(&[&b3, &b7, &bp], Some("mixed8"))?;

    x = module_e(&x, 0)?;
    x = module_e(&x, 1)?;

    let out = if opts.include_top {
        let p = GlobalAveragePooling2D::new().named("avg_pool")?.on(&x)?;
        opts.classifier(&p, "predictions")?
    } else {
        unnamed_pool(opts, &x)?
    };
    Functional::new(&[&input], &[&out])?.named("inception_v3")
}
