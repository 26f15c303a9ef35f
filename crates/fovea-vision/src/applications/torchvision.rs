//! torchvision's ResNet-18/34/50 and VGG-16 under the zoo's Keras layer names, and the tables
//! that map their `state_dict` keys onto those names — so a torchvision checkpoint loads into
//! Fovea and gives torchvision's outputs.
//!
//! Two layout differences make torchvision's ResNets distinct graphs from the Keras ones in
//! [`resnet18`](super::resnet18)…[`resnet50`](super::resnet50):
//! - PyTorch pads a stride-2 3×3 convolution by one pixel on every side, where TensorFlow's
//!   "same" puts the single padding row and column at the bottom and right. The builders here
//!   write torch's padding out as a `ZeroPadding2D` (`{block}_1_pad` / `_2_pad`) and a "valid"
//!   convolution. (Stride-1 3×3 "same" padding is symmetric in both frameworks.)
//! - torchvision's ResNet-50 is "v1.5": the stride sits on the 3×3 convolution rather than the
//!   first 1×1, and no convolution has a bias.
//!
//! Batch normalization uses PyTorch's ε = 1e-5. The models take `Torch`-mode
//! [`preprocess_input`](super::preprocess_input). VGG-16 is the zoo's [`vgg16`](super::vgg16)
//! unchanged (its 3×3 convolutions all have stride 1); only its first fully connected layer is
//! re-laid-out, from PyTorch's NCHW flattening to Keras's NHWC one, which ties the top to a
//! 224×224 input, as in Keras.

use super::options::AppOptions;
use super::resnet_keras::{merge, relu};
use super::vgg16;
use fovea_core::ops::padding::Padding;
use fovea_core::Tensor;
use fovea_nn::import::torch::{apply_rules, read_state_dict, Rule, Transform};
use fovea_nn::layer::Layer;
use fovea_nn::layers::{BatchNormalization, Conv2D, GlobalAveragePooling2D, MaxPooling2D, ZeroPadding2D};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::model::io::{assign_by_name, LoadReport};
use fovea_nn::{Error, Result};
use std::path::Path;

/// The architectures [`torchvision_model`] builds and [`torchvision_rules`] maps.
pub const TORCHVISION_ARCHS: &[&str] = &["resnet18", "resnet34", "resnet50", "vgg16"];

/// PyTorch's batch-norm epsilon.
const TORCH_BN_EPSILON: f32 = 1e-5;

fn unknown(arch: &str) -> Error {
    Error::Config(format!("torchvision: unknown architecture {arch:?}, expected one of {}", TORCHVISION_ARCHS.join(", ")))
}

/// Units per stage and whether the units are bottlenecks.
fn resnet_spec(arch: &str) -> Option<([usize; 4], bool)> {
    match arch {
        "resnet18" => Some(([2, 2, 2, 2], false)),
        "resnet34" => Some(([3, 4, 6, 3], false)),
        "resnet50" => Some(([3, 4, 6, 3], true)),
        _ => None,
    }
}

/// torchvision's `arch` (one of [`TORCHVISION_ARCHS`]) as a Fovea model with Keras layer names.
///
/// # Errors
/// An unknown architecture; the constructors' errors (input under 32×32, `classes = 0`).
pub fn torchvision_model(arch: &str, opts: &AppOptions) -> Result<Functional> {
    if arch == "vgg16" {
        return vgg16(opts);
    }
    let (blocks, bottleneck) = resnet_spec(arch).ok_or_else(|| unknown(arch))?;
    let (h, w, c) = opts.resolve_input(arch, (224, 224, 3), 32)?;
    let input = Input::new(&[h, w, c]);
    let x = ZeroPadding2D::new((3, 3), (3, 3)).named("conv1_pad")?.on(&input)?;
    let x = Conv2D::new(64, (7, 7)).strides((2, 2)).use_bias(false).named("conv1_conv")?.on(&x)?;
    let x = relu("conv1_relu", &bn("conv1_bn", &x)?)?;
    // Zero padding before the max pooling equals PyTorch's -∞ padding: the input is post-ReLU.
    let x = ZeroPadding2D::new((1, 1), (1, 1)).named("pool1_pad")?.on(&x)?;
    let mut x = MaxPooling2D::new((3, 3)).strides((2, 2)).named("pool1_pool")?.on(&x)?;
    for (stage, (&n, filters)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
        for b in 1..=n {
            let name = format!("conv{}_block{b}", stage + 2);
            let stride = if stage > 0 && b == 1 { 2 } else { 1 };
            x = if bottleneck { bottleneck_v15(&x, filters, stride, b == 1, &name)? } else { basic(&x, filters, stride, &name)? };
        }
    }
    let x = if opts.include_top {
        let x = GlobalAveragePooling2D::new().named("avg_pool")?.on(&x)?;
        opts.classifier(&x, "predictions")?
    } else {
        opts.pool(&x)?
    };
    Functional::new(&[&input], &[&x])?.named(arch)
}

fn bn(name: &str, x: &Node) -> Result<Node> {
    BatchNormalization::new().epsilon(TORCH_BN_EPSILON).named(name)?.on(x)
}

/// A bias-free k×k convolution padded the PyTorch way: symmetric `k / 2` pixels, written out
/// as a `ZeroPadding2D` when the stride is 2 (where TensorFlow's "same" would differ).
fn conv(x: &Node, filters: usize, k: usize, stride: usize, name: &str, suffix: &str) -> Result<Node> {
    let base = Conv2D::new(filters, (k, k)).strides((stride, stride)).use_bias(false);
    if k == 1 {
        base.named(&format!("{name}_{suffix}_conv"))?.on(x)
    } else if stride == 1 {
        base.padding(Padding::Same).named(&format!("{name}_{suffix}_conv"))?.on(x)
    } else {
        let p = k / 2;
        let x = ZeroPadding2D::new((p, p), (p, p)).named(&format!("{name}_{suffix}_pad"))?.on(x)?;
        base.named(&format!("{name}_{suffix}_conv"))?.on(&x)
    }
}

fn basic(x: &Node, filters: usize, stride: usize, name: &str) -> Result<Node> {
    let shortcut = if stride != 1 || x.shape().last() != Some(&Some(filters)) {
        bn(&format!("{name}_0_bn"), &conv(x, filters, 1, stride, name, "0")?)?
    } else {
        x.clone()
    };
    let y = relu(&format!("{name}_1_relu"), &bn(&format!("{name}_1_bn"), &conv(x, filters, 3, stride, name, "1")?)?)?;
    let y = bn(&format!("{name}_2_bn"), &conv(&y, filters, 3, 1, name, "2")?)?;
    merge(&shortcut, &y, None, name)
}

fn bottleneck_v15(x: &Node, filters: usize, stride: usize, project: bool, name: &str) -> Result<Node> {
    let shortcut = if project { bn(&format!("{name}_0_bn"), &conv(x, 4 * filters, 1, stride, name, "0")?)? } else { x.clone() };
    let y = relu(&format!("{name}_1_relu"), &bn(&format!("{name}_1_bn"), &conv(x, filters, 1, 1, name, "1")?)?)?;
    let y = relu(&format!("{name}_2_relu"), &bn(&format!("{name}_2_bn"), &conv(&y, filters, 3, stride, name, "2")?)?)?;
    let y = bn(&format!("{name}_3_bn"), &conv(&y, 4 * filters, 1, 1, name, "3")?)?;
    merge(&shortcut, &y, None, name)
}

fn rule(torch: String, fovea: String, transform: Transform) -> Rule {
    Rule { torch, fovea, transform }
}

/// A `Conv2d` (weight only) or a `BatchNorm2d` (four tensors).
fn conv_rules(out: &mut Vec<Rule>, torch: &str, fovea: &str) {
    out.push(rule(format!("{torch}.weight"), format!("{fovea}/kernel"), Transform::Conv));
}

fn bn_rules(out: &mut Vec<Rule>, torch: &str, fovea: &str) {
    for (t, f) in [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance")] {
        out.push(rule(format!("{torch}.{t}"), format!("{fovea}/{f}"), Transform::Identity));
    }
}

fn dense_rules(out: &mut Vec<Rule>, torch: &str, fovea: &str, kernel: Transform) {
    out.push(rule(format!("{torch}.weight"), format!("{fovea}/kernel"), kernel));
    out.push(rule(format!("{torch}.bias"), format!("{fovea}/bias"), Transform::Identity));
}

/// The name-mapping table from torchvision's `state_dict` keys for `arch` to Fovea weight
/// names (`layer/weight`) of [`torchvision_model`], with the layout change of each.
///
/// # Errors
/// An unknown architecture.
pub fn torchvision_rules(arch: &str) -> Result<Vec<Rule>> {
    let mut out = Vec::new();
    if arch == "vgg16" {
        let convs = [2, 2, 3, 3, 3];
        let mut index = 0;
        for (block, &n) in convs.iter().enumerate() {
            for i in 1..=n {
                let f = format!("block{}_conv{i}", block + 1);
                conv_rules(&mut out, &format!("features.{index}"), &f);
                out.push(rule(format!("features.{index}.bias"), format!("{f}/bias"), Transform::Identity));
                index += 2; // Conv2d, ReLU
            }
            index += 1; // MaxPool2d
        }
        dense_rules(&mut out, "classifier.0", "fc1", Transform::LinearFromChw(512, 7, 7));
        dense_rules(&mut out, "classifier.3", "fc2", Transform::Linear);
        dense_rules(&mut out, "classifier.6", "predictions", Transform::Linear);
        return Ok(out);
    }
    let (blocks, bottleneck) = resnet_spec(arch).ok_or_else(|| unknown(arch))?;
    conv_rules(&mut out, "conv1", "conv1_conv");
    bn_rules(&mut out, "bn1", "conv1_bn");
    let convs = if bottleneck { 3 } else { 2 };
    for (stage, &n) in blocks.iter().enumerate() {
        for b in 0..n {
            let (t, f) = (format!("layer{}.{b}", stage + 1), format!("conv{}_block{}", stage + 2, b + 1));
            for k in 1..=convs {
                conv_rules(&mut out, &format!("{t}.conv{k}"), &format!("{f}_{k}_conv"));
                bn_rules(&mut out, &format!("{t}.bn{k}"), &format!("{f}_{k}_bn"));
            }
            if b == 0 && (bottleneck || stage > 0) {
                conv_rules(&mut out, &format!("{t}.downsample.0"), &format!("{f}_0_conv"));
                bn_rules(&mut out, &format!("{t}.downsample.1"), &format!("{f}_0_bn"));
            }
        }
    }
    dense_rules(&mut out, "fc", "predictions", Transform::Linear);
    Ok(out)
}

/// A torchvision `state_dict` for `arch` renamed and re-laid-out to Fovea's weight names.
///
/// # Errors
/// An unknown architecture; `Config` listing missing and unexpected keys when the file is for
/// another architecture.
pub fn convert_torchvision(state: &[(String, Tensor)], arch: &str) -> Result<Vec<(String, Tensor)>> {
    apply_rules(state, &torchvision_rules(arch)?, &format!("torchvision {arch}"))
}

/// The number of classes of a torchvision checkpoint for `arch` (the rows of its last layer).
///
/// # Errors
/// An unknown architecture, or a file without the classifier.
pub fn torchvision_classes(state: &[(String, Tensor)], arch: &str) -> Result<usize> {
    let key = match arch {
        "vgg16" => "classifier.6.weight",
        _ if resnet_spec(arch).is_some() => "fc.weight",
        _ => return Err(unknown(arch)),
    };
    let t = state
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, t)| t)
        .ok_or_else(|| Error::Config(format!("not a torchvision {arch} state_dict: it has no {key}")))?;
    match t.dims() {
        [classes, _] => Ok(*classes),
        _ => Err(Error::Config(format!("torchvision {arch}: {key} should be [classes, features], received {}", t.shape()))),
    }
}

/// Reads a torchvision checkpoint (`.pt`, `.pth` or `.safetensors`) for `arch` and assigns it
/// to `model` (built by [`torchvision_model`] for the same `arch`; headless models skip the
/// classifier).
///
/// # Errors
/// As [`read_state_dict`] and [`convert_torchvision`]; `Config` naming the weight for a shape
/// mismatch (e.g. another class count).
pub fn load_torchvision(model: &dyn Layer, path: impl AsRef<Path>, arch: &str) -> Result<LoadReport> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let state = read_state_dict(path)?;
    let weights = convert_torchvision(&state, arch).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("{what}: {m}")),
        other => other,
    })?;
    let report = assign_by_name(model, &weights, false, &what)?;
    if let Some(w) = report.unmatched.first() {
        return Err(Error::Config(format!("{what}: the torchvision {arch} file has no tensor for weight {w} of model {}", model.name())));
    }
    Ok(report)
}
