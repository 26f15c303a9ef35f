//! AlexNet (Krizhevsky, Sutskever & Hinton 2012) as Géron describes it (*Hands-On ML*, ch. 14):
//! the single-tower variant — the paper's two-GPU split into grouped convolutions is dropped, so
//! conv2, conv4 and conv5 see every channel — with local response normalization after the ReLU
//! of conv1 and conv2 (`tf.nn.local_response_normalization` with depth radius r = 2, bias k = 1,
//! α = 2e-5, β = 0.75) and 50% dropout after fc6 and fc7.
//!
//! Input: 227×227×3 (the paper's "224" does not give its 55×55 first map), at least 67×67 so
//! that the three 3×3 stride-2 poolings have something to pool. 62,378,344 parameters with
//! 1000 classes: conv1 34,944; conv2 614,656; conv3 885,120; conv4 1,327,488; conv5 884,992;
//! fc6 37,752,832 (6·6·256 → 4096); fc7 16,781,312; predictions 4,097,000.

use super::options::AppOptions;
use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{Conv2D, Dense, Dropout, Flatten, LocalResponseNormalization, MaxPooling2D};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::Result;

/// AlexNet with LRN; headless models end after `pool5` (then `opts.pooling`).
///
/// # Errors
/// An input under 67×67, or `classes = 0` with the top.
pub fn alexnet(opts: &AppOptions) -> Result<Functional> {
    let (h, w, c) = opts.resolve_input("alexnet", (227, 227, 3), 67)?;
    let input = Input::new(&[h, w, c]);
    let conv = |filters: usize, k: usize, name: &str, x: &Node| -> Result<Node> {
        Conv2D::new(filters, (k, k)).padding(Padding::Same).activation(Act::Relu).named(name)?.on(x)
    };
    let lrn = |name: &str, x: &Node| LocalResponseNormalization::new(2, 1.0, 2e-5, 0.75).named(name)?.on(x);
    let pool = |name: &str, x: &Node| MaxPooling2D::new((3, 3)).strides((2, 2)).named(name)?.on(x);

    let x = Conv2D::new(96, (11, 11)).strides((4, 4)).activation(Act::Relu).named("conv1")?.on(&input)?;
    let x = pool("pool1", &lrn("lrn1", &x)?)?;
    let x = pool("pool2", &lrn("lrn2", &conv(256, 5, "conv2", &x)?)?)?;
    let x = conv(384, 3, "conv3", &x)?;
    let x = conv(384, 3, "conv4", &x)?;
    let x = pool("pool5", &conv(256, 3, "conv5", &x)?)?;
    let x = if opts.include_top {
        let x = Flatten::new().named("flatten")?.on(&x)?;
        let x = Dense::new(4096).activation(Act::Relu).named("fc6")?.on(&x)?;
        let x = Dropout::new(0.5).named("drop6")?.on(&x)?;
        let x = Dense::new(4096).activation(Act::Relu).named("fc7")?.on(&x)?;
        let x = Dropout::new(0.5).named("drop7")?.on(&x)?;
        opts.classifier(&x, "predictions")?
    } else {
        opts.pool(&x)?
    };
    Functional::new(&[&input], &[&x])?.named("alexnet")
}
