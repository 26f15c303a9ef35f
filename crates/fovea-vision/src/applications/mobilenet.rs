//! MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al. 2018) as
//! `keras.applications.MobileNet` and `MobileNetV2`: depthwise separable convolutions with
//! ReLU6, the width multiplier α and (v1) the depth multiplier; v2's inverted residual blocks
//! with linear bottlenecks.

use super::options::AppOptions;
use super::support_b::{auto, unnamed_pool};
use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{
    Activation, Add, BatchNormalization, Conv2D, DepthwiseConv2D, Dropout, GlobalAveragePooling2D, ReLU, Reshape, ZeroPadding2D,
};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::{Error, Result};

fn relu6(x: &Node, name: &str) -> Result<Node> {
    ReLU::with_max_value(6.0).named(name)?.on(x)
}

/// Python's `int(filters * alpha)`: the width multiplier truncates.
fn scaled(filters: usize, alpha: f64) -> usize {
    (filters as f64 * alpha) as usize
}

/// `alpha` must be finite and positive; v1 also needs `int(32·α) ≥ 1` for its first layer.
fn check_alpha(model: &str, alpha: f64, smallest: Option<f64>) -> Result<()> {
    let ok = alpha.is_finite() && alpha > 0.0 && smallest.is_none_or(|s| alpha >= s);
    if !ok {
        let want = match smallest {
            Some(s) => format!("at least {s} (so that every layer keeps a filter)"),
            None => "> 0".to_string(),
        };
        return Err(Error::Config(format!("{model}: alpha must be a finite width multiplier {want}, received {alpha}")));
    }
    Ok(())
}

/// v1's depthwise separable block `block_id`: a 3×3 depthwise convolution (strided ones
/// after an explicit bottom/right zero padding, as TensorFlow's reference weights expect), then
/// a 1×1 pointwise convolution, each with batch normalisation and ReLU6.
fn depthwise_block(x: &Node, pointwise: usize, alpha: f64, depth_multiplier: usize, stride: usize, block_id: usize) -> Result<Node> {
    let mut y = x.clone();
    if stride != 1 {
        y = ZeroPadding2D::new((0, 1), (0, 1)).named(&format!("conv_pad_{block_id}"))?.on(&y)?;
    }
    let padding = if stride == 1 { Padding::Same } else { Padding::Valid };
    y = DepthwiseConv2D::new((3, 3), depth_multiplier)
        .padding(padding)
        .strides((stride, stride))
        .use_bias(false)
        .named(&format!("conv_dw_{block_id}"))?
        .on(&y)?;
    y = BatchNormalization::new().named(&format!("conv_dw_{block_id}_bn"))?.on(&y)?;
    y = relu6(&y, &format!("conv_dw_{block_id}_relu"))?;
    y = Conv2D::new(scaled(pointwise, alpha), (1, 1))
        .padding(Padding::Same)
        .use_bias(false)
        .named(&format!("conv_pw_{block_id}"))?
        .on(&y)?;
    y = BatchNormalization::new().named(&format!("conv_pw_{block_id}_bn"))?.on(&y)?;
    relu6(&y, &format!("conv_pw_{block_id}_relu"))
}

/// `keras.applications.MobileNet(weights=None, alpha=..., depth_multiplier=..., dropout=...)`:
/// 4,253,864 parameters (21,888 non-trainable) at α = 1, depth multiplier 1, 224×224×3 with the
/// 1000-class top.
///
/// α scales every layer's filters (truncating, as Keras does); the resolution multiplier of the
/// paper is the input size. The top is Keras's: a kept-dimensions global average pool, dropout
/// `dropout` (Keras's default 1e-3), a 1×1 convolution `conv_preds`, a `Reshape` `reshape_2`
/// and the classifier activation as an `Activation` layer `predictions`. Layer names are
/// Keras's (`conv1`, `conv_dw_N`, `conv_pw_N`, `conv_pad_N` with `_bn`/`_relu`). Inputs are
/// expected in Keras's `"tf"` preprocess mode (pixels scaled to [-1, 1]); the smallest input is
/// 32×32.
///
/// # Errors
/// `Config` for an input under 32×32, `classes` 0 with the top, α too small to keep a filter in
/// the first layer (under 1/32) or not finite, a depth multiplier of 0, or a dropout rate outside
/// [0, 1).
pub fn mobilenet(opts: &AppOptions, alpha: f64, depth_multiplier: usize, dropout: f64) -> Result<Functional> {
    let (h, w, c) = opts.resolve_input("MobileNet", (224, 224, 3), 32)?;
    check_alpha("MobileNet", alpha, Some(1.0 / 32.0))?;
    if depth_multiplier == 0 {
        return Err(Error::Config("MobileNet: depth_multiplier must be at least 1, received 0".into()));
    }
    if !(0.0..1.0).contains(&dropout) {
        return Err(Error::Config(format!("MobileNet: dropout must be in [0, 1), received {dropout}")));
    }
    let input = Input::new(&[h, w, c]);
    let mut x = Conv2D::new(scaled(32, alpha), (3, 3)).padding(Padding::Same).strides((2, 2)).use_bias(false).named("conv1")?.on(&input)?;
    x = BatchNormalization::new().named("conv1_bn")?.on(&x)?;
    x = relu6(&x, "conv1_relu")?;
    let blocks: [(usize, usize); 13] =
        [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)];
    for (i, &(filters, stride)) in blocks.iter().enumerate() {
        x = depthwise_block(&x, filters, alpha, depth_multiplier, stride, i + 1)?;
    }
    let out = if opts.include_top {
        x = auto(GlobalAveragePooling2D::new().keepdims(true)).on(&x)?;
        x = Dropout::new(dropout).named("dropout")?.on(&x)?;
        x = Conv2D::new(opts.classes, (1, 1)).padding(Padding::Same).named("conv_preds")?.on(&x)?;
        x = Reshape::new(&[opts.classes as isize]).named("reshape_2")?.on(&x)?;
        Activation::new(opts.classifier_activation.unwrap_or(Act::Linear)).named("predictions")?.on(&x)?
    } else {
        unnamed_pool(opts, &x)?
    };
    Functional::new(&[&input], &[&out])?.named(&format!("mobilenet_{alpha:.2}_{h}"))
}

/// Keras's `_make_divisible`: the nearest multiple of `divisor` (at least `divisor`), rounded
/// up when rounding would lose more than 10%.
fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut rounded = (((v + d / 2.0) as usize) / divisor * divisor).max(divisor);
    if (rounded as f64) < 0.9 * v {
        rounded += divisor;
    }
    rounded
}

fn bn_v2(x: &Node, name: &str) -> Result<Node> {
    BatchNormalization::new().epsilon(1e-3).momentum(0.999).named(name)?.on(x)
}

/// v2's inverted residual block: a 1×1 expansion (not in block 0), a 3×3 depthwise convolution,
/// a linear 1×1 projection, and an identity shortcut when shapes allow.
fn inverted_res_block(inputs: &Node, expansion: usize, stride: usize, alpha: f64, filters: usize, block_id: usize) -> Result<Node> {
    let in_channels = inputs.shape()[3].unwrap_or(0);
    let pointwise = make_divisible(scaled(filters, alpha) as f64, 8);
    let mut x = inputs.clone();
    let prefix = if block_id == 0 { "expanded_conv_".to_string() } else { format!("block_{block_id}_") };
    if block_id != 0 {
        x = Conv2D::new(expansion * in_channels, (1, 1))
            .padding(Padding::Same)
            .use_bias(false)
            .named(&format!("{prefix}expand"))?
            .on(&x)?;
        x = bn_v2(&x, &format!("{prefix}expand_BN"))?;
        x = relu6(&x, &format!("{prefix}expand_relu"))?;
    }
    if stride == 2 {
        // Keras's `correct_pad`: one extra row/column at the bottom/right of even sizes.
        let pad = |d: Option<usize>| if d.is_some_and(|d| d % 2 == 1) { (1, 1) } else { (0, 1) };
        x = ZeroPadding2D::new(pad(x.shape()[1]), pad(x.shape()[2])).named(&format!("{prefix}pad"))?.on(&x)?;
    }
    let padding = if stride == 1 { Padding::Same } else { Padding::Valid };
    x = DepthwiseConv2D::new((3, 3), 1)
        .strides((stride, stride))
        .padding(padding)
        .use_bias(false)
        .named(&format!("{prefix}depthwise"))?
        .on(&x)?;
    x = bn_v2(&x, &format!("{prefix}depthwise_BN"))?;
    x = relu6(&x, &format!("{prefix}depthwise_relu"))?;
    x = Conv2D::new(pointwise, (1, 1)).padding(Padding::Same).use_bias(false).named(&format!("{prefix}project"))?.on(&x)?;
    x = bn_v2(&x, &format!("{prefix}project_BN"))?;
    if in_channels == pointwise && stride == 1 {
        return Add::new().named(&format!("{prefix}add"))?.on_many(&[inputs, &x]);
    }
    Ok(x)
}

/// `keras.applications.MobileNetV2(weights=None, alpha=...)`: 3,538,984 parameters (34,112
/// non-trainable) at α = 1, 224×224×3 with the 1000-class top.
///
/// α scales the block widths to multiples of 8 (the last 1×1 convolution keeps 1280 filters
/// unless α > 1). Layer names are Keras's (`Conv1`, `bn_Conv1`, `expanded_conv_*`,
/// `block_N_expand` / `_depthwise` / `_project` with `_BN` and `_relu`, `block_N_pad`,
/// `block_N_add`, `Conv_1`, `out_relu`, `predictions`). Inputs are expected in Keras's `"tf"`
/// preprocess mode (pixels scaled to [-1, 1]); the smallest input is 32×32.
///
/// # Errors
/// `Config` for an input under 32×32, `classes` 0 with the top, or α not finite and positive.
pub fn mobilenet_v2(opts: &AppOptions, alpha: f64) -> Result<Functional> {
    let (h, w, c) = opts.resolve_input("MobileNetV2", (224, 224, 3), 32)?;
    // Widths are rounded up to multiples of 8, so any positive α keeps every layer.
    check_alpha("MobileNetV2", alpha, None)?;
    let input = Input::new(&[h, w, c]);
    let mut x = Conv2D::new(make_divisible(32.0 * alpha, 8), (3, 3))
        .strides((2, 2))
        .padding(Padding::Same)
        .use_bias(false)
        .named("Conv1")?
        .on(&input)?;
    x = bn_v2(&x, "bn_Conv1")?;
    x = relu6(&x, "Conv1_relu")?;
    // (filters, stride, expansion) of blocks 0–16.
    let blocks: [(usize, usize, usize); 17] = [
        (16, 1, 1),
        (24, 2, 6),
        (24, 1, 6),
        (32, 2, 6),
        (32, 1, 6),
        (32, 1, 6),
        (64, 2, 6),
        (64, 1, 6),
        (64, 1, 6),
        (64, 1, 6),
        (96, 1, 6),
        (96, 1, 6),
        (96, 1, 6),
        (160, 2, 6),
        (160, 1, 6),
        (160, 1, 6),
        (320, 1, 6),
    ];
    for (id, &(filters, stride, expansion)) in blocks.iter().enumerate() {
        x = inverted_res_block(&x, expansion, stride, alpha, filters, id)?;
    }
    let last = if alpha > 1.0 { make_divisible(1280.0 * alpha, 8) } else { 1280 };
    x = Conv2D::new(last, (1, 1)).use_bias(false).named("Conv_1")?.on(&x)?;
    x = bn_v2(&x, "Conv_1_bn")?;
    x = relu6(&x, "out_relu")?;
    let out = if opts.include_top {
        let p = auto(GlobalAveragePooling2D::new()).on(&x)?;
        opts.classifier(&p, "predictions")?
    } else {
        unnamed_pool(opts, &x)?
    };
    Functional::new(&[&input], &[&out])?.named(&format!("mobilenetv2_{alpha:.2}_{h}"))
}
