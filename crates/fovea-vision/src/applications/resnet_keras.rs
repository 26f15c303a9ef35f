//! ResNet (He et al. 2015) with `keras.applications.resnet`'s graph and layer names, so that
//! Keras weights map by name: ResNet-50/101/152 with bottleneck units exactly as Keras builds
//! them, and ResNet-18/34 with basic units under the same naming scheme.
//!
//! Every unit is named `conv{stage}_block{i}_*`: `_0_conv`/`_0_bn` on the projection shortcut,
//! `_1_*`, `_2_*` (and `_3_*` for bottlenecks) on the residual branch, then `_add` and `_out`.
//! Batch normalization uses Keras's ε = 1.001e-5. Input: 224×224 RGB after
//! [`preprocess_input`](super::preprocess_input) in `Caffe` mode; at least 32×32.
//!
//! | model | units per stage | params (1000 classes) | non-trainable |
//! |---|---|---|---|
//! | ResNet-18 | 2, 2, 2, 2 basic | 11,699,112 | 9,600 |
//! | ResNet-34 | 3, 4, 6, 3 basic | 21,814,696 | 17,024 |
//! | ResNet-50 | 3, 4, 6, 3 bottleneck | 25,636,712 | 53,120 |
//! | ResNet-101 | 3, 4, 23, 3 bottleneck | 44,707,176 | 105,344 |
//! | ResNet-152 | 3, 8, 36, 3 bottleneck | 60,419,944 | 151,424 |
//!
//! ResNet-18/34 follow torchvision's layout (bias-free convolutions, a 1×1 projection only where
//! the shape changes — the paper's option B), so their trainable counts are torchvision's
//! 11,689,512 and 21,797,672; the rest is the batch-norm moving statistics, which Keras counts.
//! Their stride-2 3×3 convolutions pad "same" the TensorFlow way (the extra row and column at
//! the bottom and right), where PyTorch pads one pixel on every side. ResNet-50 and up keep
//! Keras's biased convolutions, hence 25,636,712 rather than torchvision's 25,557,032.

use super::options::AppOptions;
use super::se::squeeze_excite;
use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{Activation, Add, BatchNormalization, Conv2D, GlobalAveragePooling2D, MaxPooling2D, ZeroPadding2D};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::Result;

/// Keras applications' batch-norm epsilon (Caffe's 1e-5, nudged above cuDNN's minimum).
pub(crate) const BN_EPSILON: f32 = 1.001e-5;

/// The residual unit a ResNet stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Two 3×3 convolutions (ResNet-18/34).
    Basic,
    /// 1×1 → 3×3 → 1×1 with a 4× wider output (ResNet-50 and deeper).
    Bottleneck,
}

/// An ImageNet ResNet: its unit, units per stage and an optional squeeze-and-excitation ratio.
pub(crate) struct Spec {
    pub name: &'static str,
    pub unit: Unit,
    pub blocks: [usize; 4],
    pub se_ratio: Option<usize>,
}

/// ResNet-18: basic units 2, 2, 2, 2.
///
/// # Errors
/// An input under 32×32, or `classes = 0` with the top.
pub fn resnet18(opts: &AppOptions) -> Result<Functional> {
    resnet(opts, &Spec { name: "resnet18", unit: Unit::Basic, blocks: [2, 2, 2, 2], se_ratio: None })
}

/// ResNet-34: basic units 3, 4, 6, 3.
///
/// # Errors
/// An input under 32×32, or `classes = 0` with the top.
pub fn resnet34(opts: &AppOptions) -> Result<Functional> {
    resnet(opts, &Spec { name: "resnet34", unit: Unit::Basic, blocks: [3, 4, 6, 3], se_ratio: None })
}

/// `keras.applications.ResNet50`: bottleneck units 3, 4, 6, 3.
///
/// # Errors
/// An input under 32×32, or `classes = 0` with the top.
pub fn resnet50(opts: &AppOptions) -> Result<Functional> {
    resnet(opts, &Spec { name: "resnet50", unit: Unit::Bottleneck, blocks: [3, 4, 6, 3], se_ratio: None })
}

/// `keras.applications.ResNet101`: bottleneck units 3, 4, 23, 3.
///
/// # Errors
/// An input under 32×32, or `classes = 0` with the top.
pub fn resnet101(opts: &AppOptions) -> Result<Functional> {
    resnet(opts, &Spec { name: "resnet101", unit: Unit::Bottleneck, blocks: [3, 4, 23, 3], se_ratio: None })
}

/// `keras.applications.ResNet152`: bottleneck units 3, 8, 36, 3.
///
/// # Errors
/// An input under 32×32, or `classes = 0` with the top.
pub fn resnet152(opts: &AppOptions) -> Result<Functional> {
    resnet(opts, &Spec { name: "resnet152", unit: Unit::Bottleneck, blocks: [3, 8, 36, 3], se_ratio: None })
}

/// Keras's `ResNet(stack_fn, preact=False, use_bias=True, ...)` for the units of `spec`.
pub(crate) fn resnet(opts: &AppOptions, spec: &Spec) -> Result<Functional> {
    let (h, w, c) = opts.resolve_input(spec.name, (224, 224, 3), 32)?;
    let input = Input::new(&[h, w, c]);
    // Keras's ResNet-50 family keeps a bias before every batch norm; the basic-unit models
    // follow torchvision and drop it (it is redundant under batch norm).
    let bias = spec.unit == Unit::Bottleneck;
    let x = ZeroPadding2D::new((3, 3), (3, 3)).named("conv1_pad")?.on(&input)?;
    let x = Conv2D::new(64, (7, 7)).strides((2, 2)).use_bias(bias).named("conv1_conv")?.on(&x)?;
    let x = bn("conv1_bn", &x)?;
    let x = relu("conv1_relu", &x)?;
    let x = ZeroPadding2D::new((1, 1), (1, 1)).named("pool1_pad")?.on(&x)?;
    let mut x = MaxPooling2D::new((3, 3)).strides((2, 2)).named("pool1_pool")?.on(&x)?;
    for (stage, (&n, filters)) in spec.blocks.iter().zip([64, 128, 256, 512]).enumerate() {
        for b in 1..=n {
            let name = format!("conv{}_block{b}", stage + 2);
            // Stage 2 follows the stride-2 max pooling, so it keeps its resolution.
            let stride = if stage > 0 && b == 1 { 2 } else { 1 };
            x = match spec.unit {
                Unit::Bottleneck => bottleneck(&x, filters, stride, b == 1, spec.se_ratio, &name)?,
                Unit::Basic => basic(&x, filters, stride, spec.se_ratio, &name)?,
            };
        }
    }
    let x = if opts.include_top {
        let x = GlobalAveragePooling2D::new().named("avg_pool")?.on(&x)?;
        opts.classifier(&x, "predictions")?
    } else {
        opts.pool(&x)?
    };
    Functional::new(&[&input], &[&x])?.named(spec.name)
}

pub(crate) fn bn(name: &str, x: &Node) -> Result<Node> {
    BatchNormalization::new().epsilon(BN_EPSILON).named(name)?.on(x)
}

pub(crate) fn relu(name: &str, x: &Node) -> Result<Node> {
    Activation::new(Act::Relu).named(name)?.on(x)
}

/// `relu(shortcut + residual)` under `{name}_add` and `{name}_out`, after an optional SE block on
/// the residual branch (where SENet puts it, so the identity path stays untouched).
pub(crate) fn merge(shortcut: &Node, residual: &Node, se_ratio: Option<usize>, name: &str) -> Result<Node> {
    let residual = match se_ratio {
        Some(r) => squeeze_excite(residual, r, name)?,
        None => residual.clone(),
    };
    let x = Add::new().named(&format!("{name}_add"))?.on_many(&[shortcut, &residual])?;
    relu(&format!("{name}_out"), &x)
}

/// Keras's `residual_block_v1`: the stride sits on the first 1×1 convolution, and only the first
/// unit of a stage projects its shortcut (`conv_shortcut`).
fn bottleneck(x: &Node, filters: usize, stride: usize, conv_shortcut: bool, se_ratio: Option<usize>, name: &str) -> Result<Node> {
    let n = |suffix: &str| format!("{name}_{suffix}");
    let shortcut = if conv_shortcut {
        let s = Conv2D::new(4 * filters, (1, 1)).strides((stride, stride)).named(&n("0_conv"))?.on(x)?;
        bn(&n("0_bn"), &s)?
    } else {
        x.clone()
    };
    let y = Conv2D::new(filters, (1, 1)).strides((stride, stride)).named(&n("1_conv"))?.on(x)?;
    let y = relu(&n("1_relu"), &bn(&n("1_bn"), &y)?)?;
    let y = Conv2D::new(filters, (3, 3)).padding(Padding::Same).named(&n("2_conv"))?.on(&y)?;
    let y = relu(&n("2_relu"), &bn(&n("2_bn"), &y)?)?;
    let y = Conv2D::new(4 * filters, (1, 1)).named(&n("3_conv"))?.on(&y)?;
    let y = bn(&n("3_bn"), &y)?;
    merge(&shortcut, &y, se_ratio, name)
}

/// Two bias-free 3×3 convolutions; a 1×1 projection when the stride or width changes.
fn basic(x: &Node, filters: usize, stride: usize, se_ratio: Option<usize>, name: &str) -> Result<Node> {
    let n = |suffix: &str| format!("{name}_{suffix}");
    let conv3 = |s: usize, suffix: &str, x: &Node| -> Result<Node> {
        Conv2D::new(filters, (3, 3)).strides((s, s)).padding(Padding::Same).use_bias(false).named(&n(suffix))?.on(x)
    };
    let shortcut = if stride != 1 || x.shape().last() != Some(&Some(filters)) {
        let s = Conv2D::new(filters, (1, 1)).strides((stride, stride)).use_bias(false).named(&n("0_conv"))?.on(x)?;
        bn(&n("0_bn"), &s)?
    } else {
        x.clone()
    };
    let y = relu(&n("1_relu"), &bn(&n("1_bn"), &conv3(stride, "1_conv", x)?)?)?;
    let y = bn(&n("2_bn"), &conv3(1, "2_conv", &y)?)?;
    merge(&shortcut, &y, se_ratio, name)
}
