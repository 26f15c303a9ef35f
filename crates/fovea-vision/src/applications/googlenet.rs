//! GoogLeNet / Inception v1 (Szegedy et al., *Going Deeper with Convolutions*, 2014, Table 1)
//! with its two auxiliary classifiers, under the layer names of the BVLC Caffe reference model
//! (`conv1_7x7_s2`, `inception_4a_3x3_reduce`, `loss1_fc`, ...) so that its weights can be
//! mapped by name. Keras does not ship it; `tools/fixtures/gen_zoo_fixtures_b.py` holds the
//! Keras functional model the counts are checked against.

use super::options::AppOptions;
use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{
    AveragePooling2D, Concatenate, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling2D, LocalResponseNormalization, MaxPooling2D,
};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::{Error, Result};

/// The weight of each auxiliary classifier's loss in training (the paper's 0.3).
pub const GOOGLENET_AUX_LOSS_WEIGHT: f64 = 0.3;

/// `loss_weights` for `compile_outputs` on [`googlenet_with_aux`]: the main output, then the
/// two auxiliary ones.
pub const GOOGLENET_LOSS_WEIGHTS: [f64; 3] = [1.0, GOOGLENET_AUX_LOSS_WEIGHT, GOOGLENET_AUX_LOSS_WEIGHT];

/// The smallest input with auxiliary heads: their 5×5 stride-3 average pool needs a 5×5 map
/// after the 16× reduction before `inception_4a`.
const MIN_SIZE_WITH_AUX: usize = 65;

fn conv(x: &Node, filters: usize, k: usize, stride: usize, padding: Padding, name: &str) -> Result<Node> {
    Conv2D::new(filters, (k, k)).strides((stride, stride)).padding(padding).activation(Act::Relu).named(name)?.on(x)
}

fn max_pool(x: &Node, stride: usize, name: &str) -> Result<Node> {
    MaxPooling2D::new((3, 3)).strides((stride, stride)).padding(Padding::Same).named(name)?.on(x)
}

/// The paper's (and AlexNet's) local response normalisation: radius 2, α = 1e-4 / 5 per
/// channel as TensorFlow counts it, β = 0.75, k = 1.
fn lrn(x: &Node, name: &str) -> Result<Node> {
    LocalResponseNormalization::new(2, 1.0, 2e-5, 0.75).named(name)?.on(x)
}

/// An inception module with Table 1's `#1×1`, `#3×3 reduce`, `#3×3`, `#5×5 reduce`, `#5×5`
/// and `pool proj` widths.
fn inception(x: &Node, name: &str, widths: [usize; 6]) -> Result<Node> {
    let [f1, r3, f3, r5, f5, pp] = widths;
    let same = |x: &Node, f: usize, k: usize, part: &str| conv(x, f, k, 1, Padding::Same, &format!("inception_{name}_{part}"));
    let b1 = same(x, f1, 1, "1x1")?;
    let b3 = same(&same(x, r3, 1, "3x3_reduce")?, f3, 3, "3x3")?;
    let b5 = same(&same(x, r5, 1, "5x5_reduce")?, f5, 5, "5x5")?;
    let bp = max_pool(x, 1, &format!("inception_{name}_pool"))?;
    let bp = same(&bp, pp, 1, "pool_proj")?;
    Concatenate::new(-1).named(&format!("inception_{name}_output"))?.on_many(&[&b1, &b3, &b5, &bp])
}

/// An auxiliary classifier `loss{n}`: 5×5/3 average pool, 1×1 convolution to 128, a 1024-unit
/// ReLU layer, 70% dropout and the classifier.
fn aux_head(x: &Node, n: usize, opts: &AppOptions) -> Result<Node> {
    let y = AveragePooling2D::new((5, 5)).strides((3, 3)).named(&format!("loss{n}_ave_pool"))?.on(x)?;
    let y = conv(&y, 128, 1, 1, Padding::Valid, &format!("loss{n}_conv"))?;
    let y = Flatten::new().named(&format!("loss{n}_flatten"))?.on(&y)?;
    let y = Dense::new(1024).activation(Act::Relu).named(&format!("loss{n}_fc"))?.on(&y)?;
    let y = Dropout::new(0.7).named(&format!("loss{n}_drop_fc"))?.on(&y)?;
    opts.classifier(&y, &format!("loss{n}_classifier"))
}

/// The network; `aux` also returns the outputs of `inception_4a` and `inception_4d`.
fn build(opts: &AppOptions, min: usize) -> Result<(Node, Node, Node, Node)> {
    let (h, w, c) = opts.resolve_input("GoogLeNet", (224, 224, 3), min)?;
    let input = Input::new(&[h, w, c]);
    let mut x = conv(&input, 64, 7, 2, Padding::Same, "conv1_7x7_s2")?;
    x = max_pool(&x, 2, "pool1_3x3_s2")?;
    x = lrn(&x, "pool1_norm1")?;
    x = conv(&x, 64, 1, 1, Padding::Valid, "conv2_3x3_reduce")?;
    x = conv(&x, 192, 3, 1, Padding::Same, "conv2_3x3")?;
    x = lrn(&x, "conv2_norm2")?;
    x = max_pool(&x, 2, "pool2_3x3_s2")?;
    x = inception(&x, "3a", [64, 96, 128, 16, 32, 32])?;
    x = inception(&x, "3b", [128, 128, 192, 32, 96, 64])?;
    x = max_pool(&x, 2, "pool3_3x3_s2")?;
    let a4 = inception(&x, "4a", [192, 96, 208, 16, 48, 64])?;
    x = inception(&a4, "4b", [160, 112, 224, 24, 64, 64])?;
    x = inception(&x, "4c", [128, 128, 256, 24, 64, 64])?;
    let d4 = inception(&x, "4d", [112, 144, 288, 32, 64, 64])?;
    x = inception(&d4, "4e", [256, 160, 320, 32, 128, 128])?;
    x = max_pool(&x, 2, "pool4_3x3_s2")?;
    x = inception(&x, "5a", [256, 160, 320, 32, 128, 128])?;
    x = inception(&x, "5b", [384, 192, 384, 48, 128, 128])?;
    Ok((input, x, a4, d4))
}

/// The main top: global average pool (the paper's 7×7 pool at 224×224), 40% dropout and the
/// classifier `loss3_classifier`; or the headless pooling.
fn main_top(opts: &AppOptions, x: &Node) -> Result<Node> {
    if !opts.include_top {
        return opts.pool(x);
    }
    let p = GlobalAveragePooling2D::new().named("pool5_7x7_s1")?.on(x)?;
    let p = Dropout::new(0.4).named("pool5_drop_7x7_s1")?.on(&p)?;
    opts.classifier(&p, "loss3_classifier")
}

/// GoogLeNet for inference, without the auxiliary classifiers: 6,998,552 parameters with the
/// 1000-class top at 224×224×3 (5,973,552 headless), all trainable: 6,990,272 weights and 8,280
/// biases (no batch normalisation). The paper's Table 1 parameter column sums to 6,797.7K with
/// K = 1024 and no biases, ≈6.96M weights — the 30K gap is mostly its conv1 entry (2.7K for a
/// 7×7×3×64 = 9,408-weight kernel).
///
/// Inputs are expected in Keras's `"caffe"` preprocess mode (BGR, ImageNet means subtracted),
/// as for the BVLC reference weights; the smallest input is 32×32.
///
/// # Errors
/// `Config` for an input under 32×32 or `classes` 0 with the top.
pub fn googlenet(opts: &AppOptions) -> Result<Functional> {
    let (input, x, _, _) = build(opts, 32)?;
    let out = main_top(opts, &x)?;
    Functional::new(&[&input], &[&out])?.named("googlenet")
}

/// GoogLeNet for training: three outputs, `[loss3_classifier, loss1_classifier,
/// loss2_classifier]` — the main classifier and the auxiliary ones on `inception_4a` and
/// `inception_4d` — to be compiled with `compile_outputs(.., Some(&GOOGLENET_LOSS_WEIGHTS), ..)`
/// so each auxiliary loss counts 0.3. 13,378,280 parameters with 1000 classes at 224×224×3
/// (the auxiliary heads add 3,188,840 and 3,190,888). [`googlenet_inference`] drops the heads afterwards.
///
/// # Errors
/// `Config` without the top (the heads are classifiers), for an input under 65×65 (the heads'
/// 5×5 pool needs a 5×5 map), or `classes` 0.
pub fn googlenet_with_aux(opts: &AppOptions) -> Result<Functional> {
    if !opts.include_top {
        return Err(Error::Config(
            "GoogLeNet with auxiliary classifiers: include_top must be true (the auxiliary heads are classifiers), received false".into(),
        ));
    }
    let (input, x, a4, d4) = build(opts, MIN_SIZE_WITH_AUX)?;
    let main = main_top(opts, &x)?;
    let aux1 = aux_head(&a4, 1, opts)?;
    let aux2 = aux_head(&d4, 2, opts)?;
    Functional::new(&[&input], &[&main, &aux1, &aux2])?.named("googlenet")
}

/// The inference model of a trained [`googlenet_with_aux`]: the same layers and weights (shared,
/// not copied) up to the main classifier, the auxiliary heads dropped.
///
/// # Errors
/// `Config` when `trained` does not have GoogLeNet's one input and three outputs.
pub fn googlenet_inference(trained: &Functional) -> Result<Functional> {
    let (ins, outs) = (trained.inputs(), trained.outputs());
    if ins.len() != 1 || outs.len() != 3 {
        return Err(Error::Config(format!(
            "googlenet_inference: expected a model with 1 input and 3 outputs (main, aux1, aux2), received {} inputs and {} outputs",
            ins.len(),
            outs.len()
        )));
    }
    Functional::new(&[&ins[0]], &[&outs[0]])?.named("googlenet")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_nn::layer::Layer;

    fn count(m: &Functional, prefix: &str) -> usize {
        m.layers().iter().filter(|l| l.name().starts_with(prefix)).flat_map(|l| l.weights()).map(|v| v.value().numel()).sum()
    }

    #[test]
    fn inception_and_head_counts_by_hand() {
        let m = googlenet_with_aux(&AppOptions::default()).unwrap();
        // inception_3a on 192 channels, (weights + biases) per branch:
        // 1×1 192·64+64, 3×3 reduce 192·96+96, 3×3 9·96·128+128, 5×5 reduce 192·16+16,
        // 5×5 25·16·32+32, pool proj 192·32+32.
        let want_3a = 12_352 + 18_528 + 110_720 + 3_088 + 12_832 + 6_176;
        assert_eq!(count(&m, "inception_3a_"), want_3a);
        // loss1 on inception_4a's 512 channels: 512·128+128, then 4·4·128 → 1024, then 1000.
        assert_eq!(count(&m, "loss1_"), 65_664 + (2_048 * 1_024 + 1_024) + 1_025_000);
        // Biases of the inference network: conv1 64, conv2 64 + 192, each module's six widths,
        // and the 1000 classes.
        let modules = [368, 640, 624, 648, 664, 704, 1024, 1024, 1264];
        let want = 64 + 64 + 192 + modules.iter().sum::<usize>() + 1000;
        let inference = googlenet_inference(&m).unwrap();
        let biases: usize = inference.weights().iter().filter(|v| v.name().ends_with("bias")).map(|v| v.value().numel()).sum();
        assert_eq!((biases, want), (8_280, 8_280));
    }
}
