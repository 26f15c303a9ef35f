//! `fovea convert` (PyTorch and Keras weight files → Fovea model files) and `fovea predict` on
//! ImageNet classifiers (functional models from the zoo or from `convert`).

use fovea::core::{Device, Tensor};
use fovea::nn::import::keras_h5::{assign_keras_weights, read_keras_weights, KerasWeights, LoadOptions};
use fovea::nn::import::torch::read_state_dict;
use fovea::nn::layer::Layer;
use fovea::nn::model::functional::Functional;
use fovea::nn::model::io::{load_functional, read_weights, save_weights};
use fovea::nn::model::Model;
use fovea::vision::applications::{
    build_by_name, convert_torchvision, decode_predictions, mobilenet, mobilenet_v2, preprocess_input, torchvision_classes,
    torchvision_model, AppOptions, PreprocessMode, IMAGENET_CLASSES, TORCHVISION_ARCHS,
};
use std::path::{Path, PathBuf};

use fovea::nn::model::saved::KEY_PREPROCESS;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The `keras.applications` models `convert` takes Keras files for (the zoo builds them with
/// Keras's layer names), with the `preprocess_input` mode each was trained with.
pub const KERAS_ARCHS: &[(&str, &str)] = &[
    ("resnet50", "caffe"),
    ("resnet101", "caffe"),
    ("resnet152", "caffe"),
    ("vgg16", "caffe"),
    ("vgg19", "caffe"),
    ("xception", "tf"),
    ("inception_v3", "tf"),
    ("mobilenet", "tf"),
    ("mobilenet_v2", "tf"),
];

/// `fovea convert`'s arguments.
#[derive(clap::Args)]
pub struct ConvertArgs {
    /// The file: a Keras model (.keras or full-model .h5), a Keras `model.to_json()` document
    /// (.json, with --weights), or with --arch a PyTorch checkpoint or Keras weight file.
    pub input: PathBuf,
    /// The architecture of a weights-only file. PyTorch: resnet18, resnet34, resnet50 or vgg16
    /// (torchvision's). Keras: resnet50, resnet101, resnet152, vgg16, vgg19, xception,
    /// inception_v3, mobilenet or mobilenet_v2 (`keras.applications`'). Without it, the Keras
    /// file's own architecture is converted, whatever model it is.
    #[arg(long)]
    pub arch: Option<String>,
    /// The weights of a .json architecture (`model.save_weights`' .weights.h5, or a .h5 or
    /// .keras file).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Keras MobileNets (with --arch): the width multiplier the file was made with (default 1.0).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Keras files with --arch: the input size HxWxC to build at (default: the file's config if
    /// it has one, else the architecture's default). VGG's classifier depends on it.
    #[arg(long, value_parser = super::parse_input_shape)]
    pub input_shape: Option<(usize, usize, usize)>,
    /// Where to write the Fovea model (.safetensors).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `fovea convert`: with `--arch` as [`convert`], else as [`convert_keras_model`].
///
/// # Errors
/// As those, and for options that do not go together.
pub fn run(args: &ConvertArgs) -> AnyResult<String> {
    match &args.arch {
        Some(arch) => {
            if args.weights.is_some() {
                return Err("convert: --weights goes with a .json architecture, not with --arch".into());
            }
            convert(&args.input, arch, &ConvertOptions { alpha: args.alpha, input_shape: args.input_shape }, &args.output)
        }
        None => {
            if args.alpha.is_some() || args.input_shape.is_some() {
                return Err("convert: --alpha and --input-shape apply with --arch (keras.applications weight files)".into());
            }
            crate::keras_convert::convert_keras_model(&args.input, args.weights.as_deref(), &args.output)
        }
    }
}

/// What `convert` may be told besides the file and the architecture.
#[derive(Default)]
pub struct ConvertOptions {
    /// The MobileNets' width multiplier (Keras's `alpha`); Keras files only.
    pub alpha: Option<f64>,
    /// The input size to build at; Keras files only (default: the file's own config if it has
    /// one, else the architecture's default).
    pub input_shape: Option<(usize, usize, usize)>,
}

/// Converts a weight file for `arch` into a Fovea model file (architecture and weights),
/// loadable with `load_functional` and `fovea predict --model`: a Keras file (`.weights.h5`,
/// legacy `.h5`, `.keras`) for the `keras.applications` architectures in [`KERAS_ARCHS`], or a
/// torchvision `state_dict` (`.pt`, `.pth`, `.safetensors`) for [`TORCHVISION_ARCHS`].
///
/// # Errors
/// An unknown architecture (listing the known ones), an unreadable file, or one whose weights
/// do not fit the architecture (naming the layer or key).
pub fn convert(input: &Path, arch: &str, opts: &ConvertOptions, output: &Path) -> AnyResult<String> {
    if is_keras(input)? {
        return convert_keras(input, arch, opts, output);
    }
    if opts.alpha.is_some() || opts.input_shape.is_some() {
        return Err(format!("convert: --alpha and --input-shape apply to Keras files; {} is a PyTorch file", input.display()).into());
    }
    convert_torch(input, arch, output)
}

/// Keras files are HDF5 (told by content) or `.keras` zips; `torch.save` files are zips too,
/// so for zips the name decides. A `.h5` name also counts, so that a damaged one gets the HDF5
/// reader's error rather than the pickle reader's.
pub fn is_keras(input: &Path) -> AnyResult<bool> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let n = std::fs::File::open(input).and_then(|mut f| f.read(&mut head)).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let ext = input.extension().and_then(|e| e.to_str()).unwrap_or("");
    Ok(head[..n] == fovea::nn::hdf5::SIGNATURE[..] || ext.eq_ignore_ascii_case("keras") || ext.eq_ignore_ascii_case("h5"))
}

fn convert_torch(input: &Path, arch: &str, output: &Path) -> AnyResult<String> {
    if !TORCHVISION_ARCHS.contains(&arch) {
        return Err(format!("convert: unknown --arch {arch:?}, expected one of {}", TORCHVISION_ARCHS.join(", ")).into());
    }
    let state = read_state_dict(input)?;
    let weights = convert_torchvision(&state, arch).map_err(|e| format!("{}: {e}", input.display()))?;
    let classes = torchvision_classes(&state, arch)?;
    let model = torchvision_model(arch, &AppOptions { classes, ..AppOptions::default() })?;
    let report = fovea::nn::model::io::assign_by_name(&model, &weights, false, &input.display().to_string())?;
    if let Some(w) = report.unmatched.first() {
        return Err(format!("{}: no tensor for weight {w}", input.display()).into());
    }
    let arch_json = format!("{{\"class_name\":\"{}\",\"config\":{}}}", model.class_name(), model.config());
    let source = format!("torchvision {arch} from {}", input.display());
    save_weights(&model, output, &[("fovea.architecture", arch_json), (KEY_PREPROCESS, "torch".into()), ("fovea.source", source)])?;
    Ok(format!("{}: torchvision {arch}, {classes} classes, {} weights → {}", input.display(), report.loaded.len(), output.display()))
}

/// Builds the zoo's `arch` to the file's shape — its class count from the classifier's kernel
/// (no classifier: `include_top = false`), its input size from `--input-shape` or the file's
/// config — and loads the file strictly, so that any layer the two do not share is an error.
fn convert_keras(input: &Path, arch: &str, opts: &ConvertOptions, output: &Path) -> AnyResult<String> {
    let Some(&(_, mode)) = KERAS_ARCHS.iter().find(|(a, _)| *a == arch) else {
        let known: Vec<&str> = KERAS_ARCHS.iter().map(|(a, _)| *a).collect();
        return Err(format!("convert: unknown --arch {arch:?} for a Keras file, expected one of {}", known.join(", ")).into());
    };
    let what = input.display().to_string();
    let file = read_keras_weights(input)?;
    let classes = keras_classes(&file);
    let app = AppOptions {
        include_top: classes.is_some(),
        classes: classes.unwrap_or(1000),
        input_shape: opts.input_shape.or_else(|| file.config.as_ref().and_then(config_input_shape)),
        ..AppOptions::default()
    };
    let model = match (arch, opts.alpha) {
        ("mobilenet", alpha) => mobilenet(&app, alpha.unwrap_or(1.0), 1, 1e-3)?,
        ("mobilenet_v2", alpha) => mobilenet_v2(&app, alpha.unwrap_or(1.0))?,
        (_, Some(_)) => return Err(format!("convert: --alpha applies to mobilenet and mobilenet_v2, not {arch}").into()),
        _ => build_by_name(arch, &app)?,
    };
    let report = assign_keras_weights(&model, &file, &what, LoadOptions::default())?;
    let arch_json = format!("{{\"class_name\":\"{}\",\"config\":{}}}", model.class_name(), model.config());
    let source = format!("Keras {arch} from {what}");
    save_weights(&model, output, &[("fovea.architecture", arch_json), (KEY_PREPROCESS, mode.into()), ("fovea.source", source)])?;
    let top = classes.map_or("no classifier".to_string(), |c| format!("{c} classes"));
    Ok(format!("{what}: Keras {arch}, {top}, {} layers with weights → {}", report.loaded.len(), output.display()))
}

/// The class count of a `keras.applications` file: the output width of its classifier
/// (`predictions`, a Dense layer; MobileNet's `conv_preds`, a 1×1 convolution).
fn keras_classes(file: &KerasWeights) -> Option<usize> {
    let head = file.layers.iter().find(|l| l.name == "predictions" || l.name == "conv_preds")?;
    head.weights.first().and_then(|(_, kernel)| kernel.dims().last().copied())
}

/// The input size recorded in a Keras model config (its first `InputLayer`), when it is an
/// image size.
fn config_input_shape(config: &serde_json::Value) -> Option<(usize, usize, usize)> {
    let layers = config["config"]["layers"].as_array()?;
    let input = layers.iter().find(|l| l["class_name"] == "InputLayer")?;
    let shape = input["config"].get("batch_shape").or_else(|| input["config"].get("batch_input_shape"))?.as_array()?;
    match shape.iter().skip(1).map(|d| d.as_u64().map(|d| d as usize)).collect::<Option<Vec<usize>>>()?[..] {
        [h, w, c] => Some((h, w, c)),
        _ => None,
    }
}

/// Whether `path` holds a functional model (zoo / converted) rather than a `Sequential`.
pub fn is_functional(path: &Path) -> AnyResult<bool> {
    Ok(fovea::nn::model::saved::is_functional(path)?)
}

fn preprocess_mode(path: &Path, meta: Option<&String>) -> AnyResult<Option<PreprocessMode>> {
    PreprocessMode::from_metadata(meta.map(String::as_str)).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Classifies image files with a functional model: for 1,000 outputs, the ImageNet top-`k`
/// lines `n03530642 - honeycomb 37.23%`; otherwise class numbers (and the names the file
/// stores) with probabilities.
pub fn predict_functional(
    path: &Path,
    files: &[std::path::PathBuf],
    k: usize,
    load: impl Fn(&Path, (usize, usize, usize)) -> AnyResult<Tensor>,
) -> AnyResult<()> {
    if k == 0 {
        return Err("--top-k must be at least 1".into());
    }
    if files.is_empty() {
        return Err(format!("{}: give image files to classify (--dataset applies to Sequential models)", path.display()).into());
    }
    let meta = read_weights(path)?.metadata;
    let mode = preprocess_mode(path, meta.get(KEY_PREPROCESS))?;
    // The names a `train --data` run stored, when the file has them.
    let names: Vec<String> =
        meta.get(crate::model_file::KEY_CLASS_NAMES).and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default();
    let net: Functional = load_functional(path)?;
    let shape: Vec<Option<usize>> = net.inputs().first().map(|n| n.shape().to_vec()).unwrap_or_default();
    let input = match shape.as_slice() {
        [None, Some(h), Some(w), Some(c)] | [Some(h), Some(w), Some(c)] => (*h, *w, *c),
        other => return Err(format!("{}: expected an image model (height, width, channels), got input {other:?}", path.display()).into()),
    };
    let imgs = files.iter().map(|f| load(f, input)).collect::<AnyResult<Vec<_>>>()?;
    // `load` gives [0, 1]; the preprocessing modes expect Keras's [0, 255] pixels.
    let x = Tensor::stack(&imgs.iter().collect::<Vec<_>>(), 0)?.mul_scalar(255.0)?;
    let x = match mode {
        Some(m) => preprocess_input(&x, m)?,
        None => x.div_scalar(255.0)?,
    };
    let probs = net.predict(&x, 8)?;
    let classes = *probs.dims().last().unwrap_or(&0);
    let mut rows = probs.to_vec::<f32>()?;
    rows.chunks_mut(classes.max(1)).for_each(super::as_probabilities);
    let probs = Tensor::from_vec(rows.clone(), probs.dims().to_vec(), Device::Cpu)?;
    for (i, f) in files.iter().enumerate() {
        println!("{}:", f.display());
        if classes == IMAGENET_CLASSES {
            for p in &decode_predictions(&probs.narrow(0, i, 1)?, k.min(classes))?[0] {
                println!("  {p}");
            }
        } else {
            for (c, p) in super::top_k(&rows[i * classes..(i + 1) * classes], k.min(classes)) {
                match names.get(c).filter(|_| names.len() == classes) {
                    Some(name) => println!("  {c} {name} {:.2}%", 100.0 * p),
                    None => println!("  {c} {:.2}%", 100.0 * p),
                }
            }
        }
    }
    Ok(())
}
