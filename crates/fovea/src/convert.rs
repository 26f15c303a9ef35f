//! `fovea convert` (PyTorch checkpoints → Fovea model files) and `fovea predict` on ImageNet
//! classifiers (functional models from the zoo or from `convert`).

use fovea::core::{Device, Tensor};
use fovea::nn::import::torch::read_state_dict;
use fovea::nn::layer::Layer;
use fovea::nn::model::functional::Functional;
use fovea::nn::model::io::{load_functional, read_weights, save_weights};
use fovea::nn::model::Model;
use fovea::vision::applications::{
    convert_torchvision, decode_predictions, preprocess_input, torchvision_classes, torchvision_model, AppOptions, PreprocessMode,
    IMAGENET_CLASSES, TORCHVISION_ARCHS,
};
use std::path::Path;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The metadata key naming the input convention of a converted model.
const KEY_PREPROCESS: &str = "fovea.preprocess";

/// Reads a torchvision `state_dict` (`.pt`, `.pth`, `.safetensors`) for `arch`, builds the
/// matching Fovea model (its class count read from the file) and writes architecture and
/// weights to `output`, loadable with `load_functional` and `fovea predict --model`.
pub fn convert(input: &Path, arch: &str, output: &Path) -> AnyResult<String> {
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

/// Whether `path` holds a functional model (zoo / converted) rather than a `Sequential`.
pub fn is_functional(path: &Path) -> AnyResult<bool> {
    let file = read_weights(path)?;
    let arch = file.metadata.get("fovea.architecture").map(String::as_str).unwrap_or("");
    Ok(arch.contains("\"class_name\":\"Functional\""))
}

fn preprocess_mode(path: &Path, meta: Option<&String>) -> AnyResult<Option<PreprocessMode>> {
    Ok(match meta.map(String::as_str) {
        None | Some("none") => None,
        Some("torch") => Some(PreprocessMode::Torch),
        Some("caffe") => Some(PreprocessMode::Caffe),
        Some("tf") => Some(PreprocessMode::Tf),
        Some(other) => return Err(format!("{}: unknown {KEY_PREPROCESS} {other:?} (torch, caffe, tf or none)", path.display()).into()),
    })
}

/// Classifies image files with a functional model: for 1,000 outputs, the ImageNet top-`k`
/// lines `n03530642 - honeycomb 37.23%`; otherwise class numbers with probabilities.
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
    let mode = preprocess_mode(path, read_weights(path)?.metadata.get(KEY_PREPROCESS))?;
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
                println!("  {c} {:.2}%", 100.0 * p);
            }
        }
    }
    Ok(())
}
