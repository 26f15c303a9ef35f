//! The zoo from the command line without code: `fovea summary NAME`, `fovea create NAME -o
//! FILE` (a freshly initialised model as a file `train --resume`, `evaluate` and `predict`
//! read) and `fovea models` (what there is, its size and the input it expects).

use clap::Args;
use fovea::nn::layer::Layer;
use fovea::nn::model::functional::{Functional, Input};
use fovea::nn::model::summary::thousands;
use fovea::nn::model::Sequential;
use fovea::vision::applications::{self, build_by_name, AppOptions, MODEL_NAMES};
use std::path::Path;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The Sequential models of the books, with their canonical input and default classes; every
/// other name is a `keras.applications`-style functional model.
const SEQUENTIAL: &[(&str, (usize, usize, usize), usize)] = &[
    ("lenet5", (28, 28, 1), 10),
    ("lenet_like", (28, 28, 1), 10),
    ("fashion_cnn", (28, 28, 1), 10),
    ("resnet34_geron", (224, 224, 3), 10),
    ("mnist_cnn", (28, 28, 1), 10),
    ("cifar10_cnn", (32, 32, 3), 10),
];

/// The segmentation models (per-pixel class scores, no classifier to drop), with their
/// canonical input and default classes: the small U-Net of the MNIST scenes (background and
/// ten digits), the paper's two-class U-Net, and FCN and SegNet at Pascal VOC's 21 and
/// CamVid's 12 classes.
const SEGMENTATION: &[(&str, (usize, usize, usize), usize)] = &[
    ("unet_small", (128, 128, 1), 11),
    ("unet", (256, 256, 1), 2),
    ("fcn8s", (224, 224, 3), 21),
    ("fcn16s", (224, 224, 3), 21),
    ("fcn32s", (224, 224, 3), 21),
    ("segnet", (224, 224, 3), 12),
];

/// The seeds' models that exist at one size only (LeCun's LeNet-5 on 32×32, chapter 4's
/// localization CNN on 240×320×3, the inception block on 35×35×384), with that input.
const FIXED: &[(&str, (usize, usize, usize))] =
    &[("lenet5_original", (32, 32, 1)), ("localization_cnn", (240, 320, 3)), ("inception_block_a", (35, 35, 384))];

/// Which zoo model, and how to shape it.
#[derive(Args)]
pub struct ZooArgs {
    /// The model: `lenet5`, `resnet34_geron`, a `keras.applications`-style name (`resnet50`,
    /// `vgg16`, `mobilenet_v2`, `xception`, …) or a segmentation model (`unet_small`, `unet`,
    /// `fcn8s`, `fcn16s`, `fcn32s`, `segnet`); `fovea models` lists them all.
    pub model: String,
    /// Output classes of the top, or per pixel (default: 10 for the MNIST and CIFAR models, 1000
    /// for ImageNet's, 11 / 2 / 21 / 12 for unet_small / unet / FCN / SegNet).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Input as HxWxC (default: the model's canonical size, e.g. 224x224x3).
    #[arg(long, value_parser = crate::parse_input_shape)]
    pub input_shape: Option<(usize, usize, usize)>,
    /// Leave out the classifier (Keras's include_top=False).
    #[arg(long)]
    pub no_top: bool,
}

/// A built zoo model of either kind.
enum ZooModel {
    Sequential(Sequential),
    Functional(Functional),
}

impl ZooModel {
    fn layer(&self) -> &dyn Layer {
        match self {
            ZooModel::Sequential(m) => m,
            ZooModel::Functional(m) => m,
        }
    }
}

fn build(args: &ZooArgs) -> AnyResult<ZooModel> {
    let name = args.model.replace('-', "_");
    if let Some(&(_, default_input, default_classes)) = SEQUENTIAL.iter().find(|(n, ..)| *n == name) {
        let input = args.input_shape.unwrap_or(default_input);
        let classes = args.classes.unwrap_or(default_classes);
        if matches!(name.as_str(), "mnist_cnn" | "cifar10_cnn") && input != default_input {
            let (h, w, c) = default_input;
            return Err(format!("--input-shape: {name} is the book's model for {h}x{w}x{c} inputs").into());
        }
        let net = match name.as_str() {
            "mnist_cnn" => applications::mnist_cnn(classes)?,
            "cifar10_cnn" => applications::cifar10_cnn(classes)?,
            "lenet5" => applications::lenet5(input, classes)?,
            "lenet_like" => applications::lenet_like(input, classes)?,
            "fashion_cnn" => applications::fashion_mnist_cnn(input, classes)?,
            _ => applications::resnet34_geron(input, classes)?,
        };
        if args.no_top {
            drop_classifier(&net)?;
        }
        return Ok(ZooModel::Sequential(net));
    }
    if let Some(&(_, input)) = FIXED.iter().find(|(n, _)| *n == name) {
        let (h, w, c) = input;
        if args.input_shape.is_some_and(|s| s != input) || args.classes.is_some() || args.no_top {
            return Err(format!(
                "{name} is the book's fixed model on {h}x{w}x{c} inputs: --input-shape, --classes and --no-top do not apply"
            )
            .into());
        }
        return Ok(match name.as_str() {
            "lenet5_original" => ZooModel::Sequential(applications::lenet5_original()?),
            "localization_cnn" => ZooModel::Functional(applications::localization_cnn()?),
            _ => {
                let x = Input::named(&[h, w, c], "input");
                let block = applications::inception_block_a(&x, "inception_a")?;
                ZooModel::Functional(Functional::new(&[&x], &[&block])?.named("inception_block_a")?)
            }
        });
    }
    if let Some(&(_, default_input, default_classes)) = SEGMENTATION.iter().find(|(n, ..)| *n == name) {
        if args.no_top {
            return Err(format!("--no-top: {name} is a segmentation model, with no classifier to leave out").into());
        }
        let (input, classes) = (args.input_shape.unwrap_or(default_input), args.classes.unwrap_or(default_classes));
        let variant = |v| applications::fcn(input, classes, v);
        return Ok(ZooModel::Functional(match name.as_str() {
            "unet_small" => applications::unet_small(input, classes)?,
            "unet" => applications::unet(input, classes)?,
            "fcn8s" => variant(applications::FcnVariant::Fcn8s)?,
            "fcn16s" => variant(applications::FcnVariant::Fcn16s)?,
            "fcn32s" => variant(applications::FcnVariant::Fcn32s)?,
            _ => applications::segnet(input, classes)?,
        }));
    }
    // The CIFAR ResNets are 10-class models; the ImageNet ones have 1,000 classes.
    let default_classes = if matches!(name.as_str(), "resnet20" | "resnet32" | "resnet56") { 10 } else { 1000 };
    let opts = AppOptions {
        include_top: !args.no_top,
        input_shape: args.input_shape,
        classes: args.classes.unwrap_or(default_classes),
        ..AppOptions::default()
    };
    let sequential: Vec<&str> = SEQUENTIAL.iter().chain(SEGMENTATION).map(|(n, ..)| *n).chain(FIXED.iter().map(|(n, _)| *n)).collect();
    Ok(ZooModel::Functional(build_by_name(&name, &opts).map_err(|e| format!("{e} (or {})", sequential.join(", ")))?))
}

/// Keras's `include_top=False` for the Sequential zoo models: the classifier (the trailing dense,
/// dropout, flatten and global-pooling layers) goes, the feature extractor stays.
fn drop_classifier(net: &Sequential) -> AnyResult<()> {
    const HEAD: [&str; 5] = ["Dense", "Dropout", "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D"];
    while net.layers().last().is_some_and(|l| HEAD.contains(&l.class_name())) {
        net.pop()?;
    }
    Ok(())
}

/// `fovea summary`: the Keras table, the JSON config with `config`, or the MACs per layer
/// with `flops`.
pub fn summary(args: &ZooArgs, config: bool, flops: bool) -> AnyResult<String> {
    let model = build(args)?;
    let layer = model.layer();
    Ok(if config {
        format!("{:#}\n", layer.config())
    } else if flops {
        match &model {
            ZooModel::Sequential(m) => m.summary_with_flops()?,
            ZooModel::Functional(m) => m.summary_with_flops()?,
        }
    } else {
        match &model {
            ZooModel::Sequential(m) => m.summary()?,
            ZooModel::Functional(m) => m.summary()?,
        }
    })
}

/// `fovea create`: writes the freshly initialised model (architecture and weights) to `out`.
pub fn create(args: &ZooArgs, out: &Path) -> AnyResult<()> {
    let model = build(args)?;
    match &model {
        ZooModel::Sequential(m) => fovea::nn::model::io::save_model(m, out)?,
        ZooModel::Functional(m) => fovea::nn::model::io::save_model(m, out)?,
    }
    let params = thousands(parameters(model.layer()));
    println!("{}: {} with {params} parameters written to {}", args.model, model.layer().class_name(), out.display());
    Ok(())
}

fn parameters(layer: &dyn Layer) -> usize {
    layer.weights().iter().map(|v| v.value().numel()).sum()
}

/// The input convention each model's published weights expect (`preprocess_input`'s mode);
/// models without published weights are trained here on pixels scaled to [0, 1].
fn preprocessing(name: &str) -> &'static str {
    match name {
        "vgg16" | "vgg19" | "resnet50" | "resnet101" | "resnet152" => "caffe (Keras weights)",
        "inception_v3" | "xception" | "mobilenet" | "mobilenet_v2" => "tf: x/127.5 - 1 (Keras weights)",
        "resnet18" | "resnet34" => "torch: ImageNet mean/std (torchvision weights)",
        _ => "x/255 (no published weights)",
    }
}

/// `fovea models`: one line per zoo model (or per name in `only`): name, kind, canonical input,
/// parameters with its default top, and the preprocessing its weights expect.
pub fn models(only: &[String]) -> AnyResult<String> {
    let all: Vec<&str> = SEQUENTIAL
        .iter()
        .map(|(n, ..)| *n)
        .chain(FIXED.iter().map(|(n, _)| *n))
        .chain(MODEL_NAMES.iter().copied())
        .chain(SEGMENTATION.iter().map(|(n, ..)| *n))
        .collect();
    let wanted: Vec<String> = only.iter().map(|n| n.replace('-', "_")).collect();
    if let Some(unknown) = wanted.iter().find(|n| !all.contains(&n.as_str())) {
        return Err(format!("unknown model {unknown:?}, expected one of {}", all.join(", ")).into());
    }
    let mut text = format!("{:<16} {:<10} {:<12} {:>12}  {}\n", "model", "kind", "input", "parameters", "preprocessing");
    for name in all.into_iter().filter(|n| wanted.is_empty() || wanted.iter().any(|w| w == n)) {
        let model = build(&ZooArgs { model: name.to_string(), classes: None, input_shape: None, no_top: false })?;
        let input = match &model {
            ZooModel::Sequential(m) => m.input_shape(),
            ZooModel::Functional(m) => m.inputs().first().map(|n| n.shape().clone()),
        };
        // Without the batch axis, as HxWxC.
        let input = input.unwrap_or_default().iter().skip(1).map(|d| d.map_or("?".into(), |d| d.to_string())).collect::<Vec<_>>().join("x");
        let params = thousands(parameters(model.layer()));
        text += &format!("{name:<16} {:<10} {:<12} {params:>12}  {}\n", model.layer().class_name(), input, preprocessing(name));
    }
    Ok(text)
}
