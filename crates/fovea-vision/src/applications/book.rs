//! The seeds' reference models, layer for layer as their TF1 code builds them (SPEC §1, with
//! the parameter counts of SPEC §2.2): the MNIST CNN of chapter 2 (3,274,634 parameters), the
//! CIFAR-10 CNN of chapter 3 (233,130), the two-head localization CNN of chapter 4 (296,933),
//! `inception_block_a` of chapter 5 (317,024 on 384 channels), the sliding-window net whose
//! dense layer became a convolution, and the FC → conv conversion itself.

use fovea_core::ops::padding::Padding;
use fovea_core::Tensor;
use fovea_nn::activations::Activation as Act;
use fovea_nn::layer::Layer;
use fovea_nn::layers::{AveragePooling2D, Concatenate, Conv2D, Dense, Dropout, Flatten, MaxPooling2D};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::model::Sequential;
use fovea_nn::{Error, Result};

fn conv(filters: usize, k: usize, act: Act) -> fovea_nn::layers::ConvLayer {
    Conv2D::new(filters, (k, k)).padding(Padding::Same).activation(act)
}

/// Chapter 2's MNIST CNN: 5×5 convolutions of 32 and 64 filters (same, ReLU) each followed by
/// a 2×2 max pooling, dense 1024 ReLU, dropout 0.4, and `classes` logits (no softmax: the book
/// trains with `softmax_cross_entropy_with_logits`). 28×28×1 input.
///
/// # Errors
/// `classes` of 0.
pub fn mnist_cnn(classes: usize) -> Result<Sequential> {
    positive(classes, "mnist_cnn")?;
    let m = Sequential::with_input_shape(&[28, 28, 1]);
    m.add(conv(32, 5, Act::Relu))?;
    m.add(MaxPooling2D::new((2, 2)))?;
    m.add(conv(64, 5, Act::Relu))?;
    m.add(MaxPooling2D::new((2, 2)))?;
    m.add(Flatten::new())?;
    m.add(Dense::new(1024).activation(Act::Relu))?;
    m.add(Dropout::new(0.4))?;
    m.add(Dense::new(classes))?;
    m.build_for(&[28, 28, 1])?;
    Ok(m)
}

/// Chapter 3's CIFAR-10 CNN: three 5×5 same ReLU convolutions (64, 64, 32 filters) each with
/// a 2×2 max pooling, then dense 128 and 64 (ReLU) and `classes` logits. 32×32×3 input.
///
/// # Errors
/// `classes` of 0.
pub fn cifar10_cnn(classes: usize) -> Result<Sequential> {
    positive(classes, "cifar10_cnn")?;
    let m = Sequential::with_input_shape(&[32, 32, 3]);
    for filters in [64, 64, 32] {
        m.add(conv(filters, 5, Act::Relu))?;
        m.add(MaxPooling2D::new((2, 2)))?;
    }
    m.add(Flatten::new())?;
    m.add(Dense::new(128).activation(Act::Relu))?;
    m.add(Dense::new(64).activation(Act::Relu))?;
    m.add(Dense::new(classes))?;
    m.build_for(&[32, 32, 3])?;
    Ok(m)
}

/// Chapter 4's classification-and-localization CNN on 240×320×3 images: 5×5 convolutions of
/// 32, 64 and 32 filters without activations, each with a 2×2 max pooling, flattened to
/// 30·40·32 = 38,400 features; two heads: `box` (4 numbers: upper-left x, y, height, width) and
/// `presence` (sigmoid).
///
/// # Errors
/// Layer build errors only.
pub fn localization_cnn() -> Result<Functional> {
    let input = Input::named(&[240, 320, 3], "image");
    let mut x = input.clone();
    for filters in [32, 64, 32] {
        x = conv(filters, 5, Act::Linear).on(&x)?;
        x = MaxPooling2D::new((2, 2)).on(&x)?;
    }
    let features = Flatten::new().on(&x)?;
    let boxes = Dense::new(4).named("box")?.on(&features)?;
    let presence = Dense::new(1).activation(Act::Sigmoid).named("presence")?.on(&features)?;
    Functional::new(&[&input], &[&boxes, &presence])?.named("localization_cnn")
}

/// Chapter 5's `inception_block_a` on `x`: four ReLU same-padded branches — 3×3 average
/// pooling then 1×1 ×96; 1×1 ×96; 1×1 ×64 then 3×3 ×96; 1×1 ×64 then two 3×3 ×96 (a 5×5 as two
/// 3×3) — concatenated to 384 channels. Layer names start with `name_`.
///
/// # Errors
/// A name already used, or an input that is not an image.
pub fn inception_block_a(x: &Node, name: &str) -> Result<Node> {
    let c = |filters, k, branch: &str, x: &Node| conv(filters, k, Act::Relu).named(&format!("{name}_{branch}")).and_then(|l| l.on(x));
    let pooled = AveragePooling2D::new((3, 3)).strides((1, 1)).padding(Padding::Same).named(&format!("{name}_pool"))?.on(x)?;
    let b1 = c(96, 1, "pool_1x1", &pooled)?;
    let b2 = c(96, 1, "1x1", x)?;
    let b3 = c(96, 3, "3x3", &c(64, 1, "3x3_reduce", x)?)?;
    let b4 = c(96, 3, "5x5_b", &c(96, 3, "5x5_a", &c(64, 1, "5x5_reduce", x)?)?)?;
    Concatenate::new(-1).named(&format!("{name}_concat"))?.on_many(&[&b1, &b2, &b3, &b4])
}

/// The seeds' sliding-window net with its dense layers already convolutions: 5×5 ×16 (valid),
/// 2×2 max pooling, the "FC" 5×5 ×400, 1×1 ×400, and 1×1 ×`classes` scores. On its 14×14×3
/// window it gives 1×1×`classes`; on a 16×16×3 image, 2×2×`classes`: the four windows at
/// stride 2 (the pooling's) in one pass. `input` is `(height, width)`.
///
/// # Errors
/// An input under the 14×14 window.
pub fn sliding_window_net(input: (usize, usize), classes: usize) -> Result<Sequential> {
    if input.0 < 14 || input.1 < 14 || classes == 0 {
        return Err(Error::Config(format!(
            "sliding_window_net: expected an input of at least 14×14 and classes > 0, received {}×{} and {classes}",
            input.0, input.1
        )));
    }
    let m = Sequential::with_input_shape(&[input.0, input.1, 3]);
    m.add(Conv2D::new(16, (5, 5)).activation(Act::Relu).named("conv1")?)?;
    m.add(MaxPooling2D::new((2, 2)).named("pool1")?)?;
    m.add(Conv2D::new(400, (5, 5)).activation(Act::Relu).named("fc1_as_conv")?)?;
    m.add(Conv2D::new(400, (1, 1)).activation(Act::Relu).named("fc2_as_conv")?)?;
    m.add(Conv2D::new(classes, (1, 1)).named("scores")?)?;
    m.build_for(&[input.0, input.1, 3])?;
    Ok(m)
}

/// A dense layer's kernel `[h·w·c, units]`, read after a `Flatten` of `h × w × c` features,
/// as the kernel `[h, w, c, units]` of the equivalent `h × w` VALID convolution (Keras flattens
/// channels-last, so the reshape needs no transpose); the bias is unchanged. The conv then
/// slides the classifier over larger inputs.
///
/// # Errors
/// A kernel whose rows are not `h·w·c`.
pub fn dense_kernel_as_conv(kernel: &Tensor, (h, w, c): (usize, usize, usize)) -> Result<Tensor> {
    match kernel.dims() {
        [rows, units] if *rows == h * w * c => Ok(kernel.reshape(&[h as isize, w as isize, c as isize, *units as isize])?),
        other => Err(Error::Config(format!(
            "dense_kernel_as_conv: expected a kernel of [{}, units] for {h}×{w}×{c} features, got {other:?}",
            h * w * c
        ))),
    }
}

fn positive(classes: usize, model: &str) -> Result<()> {
    if classes == 0 {
        return Err(Error::Config(format!("{model}: classes must be positive, received 0")));
    }
    Ok(())
}

/// The parameters of a built layer or model (trainable or not).
pub fn count_params(layer: &dyn Layer) -> usize {
    layer.weights().iter().map(|v| v.value().numel()).sum()
}
