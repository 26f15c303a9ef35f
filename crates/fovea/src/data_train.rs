//! `fovea train MODEL --data DIR`: Keras's `image_dataset_from_directory` workflow from the
//! command line (one class per sub-folder, a seeded validation split held out), and
//! `--augment`: Keras's `data_augmentation` layers put at the start of the model.
//!
//! The folder becomes in-memory `(x, y)` tensors, so the rest of `fovea train` (optimizer,
//! schedule, callbacks, `-o`, `--plot`, `--history`, `--distributed`) runs as it does for the
//! built-in datasets.

use clap::{Args, ValueEnum};
use fovea::core::Tensor;
use fovea::nn::model::Sequential;
use fovea::vision::datasets::{image_dataset_from_directory, ColorMode, ImageFolderOptions, Subset};
use fovea::vision::preprocessing::{RandomContrast, RandomFlip, RandomRotation, RandomZoom};
use std::path::{Path, PathBuf};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// `--color-mode`'s values.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum ColorArg {
    /// One channel.
    Grayscale,
    /// Three channels.
    Rgb,
}

/// The image-folder and augmentation flags of `fovea train`.
#[derive(Args)]
pub struct DataArgs {
    /// Train on the PNG/JPEG images in DIR's sub-folders, one class per sub-folder (sorted by
    /// name, as Keras's `image_dataset_from_directory`); --validation-split of the files
    /// (seeded by --seed) is held out and evaluated after training.
    #[arg(long, value_name = "DIR", conflicts_with = "dataset")]
    pub data: Option<PathBuf>,
    /// With --data: the size HxW every image is resized to (default: the model's canonical
    /// input, 28x28 for the LeNets and fashion-cnn, 224x224 for resnet34).
    #[arg(long, value_name = "HxW", value_parser = parse_image_size, requires = "data")]
    image_size: Option<(usize, usize)>,
    /// With --data: the channels images are converted to (default rgb, as Keras).
    #[arg(long, value_enum, requires = "data")]
    color_mode: Option<ColorArg>,
    /// Random augmentation while training (Keras's RandomFlip horizontal, RandomRotation 0.1,
    /// RandomZoom 0.1, RandomContrast 0.1), as layers at the start of the model: they change
    /// training batches only and pass images through unchanged at evaluation and prediction.
    #[arg(long, conflicts_with = "resume")]
    pub augment: bool,
}

/// What `--data` needs to know of a `--resume`d model file.
pub struct Resumed {
    /// The file.
    pub path: PathBuf,
    /// Its input `(height, width, channels)`.
    pub input: (usize, usize, usize),
    /// The class names it stores, if any.
    pub class_names: Option<Vec<String>>,
}

/// A class folder turned into training tensors.
pub struct Folder {
    /// Training images, float32 `[n, h, w, c]` in [0, 1].
    pub x: Tensor,
    /// Their int64 class indices `[n]`.
    pub y: Tensor,
    /// The held-out images and labels, when --validation-split is above 0.
    pub validation: Option<(Tensor, Tensor)>,
    /// `(h, w, c)` and the number of classes.
    pub geometry: ((usize, usize, usize), usize),
    /// The folder, for messages.
    pub name: String,
    /// The class sub-folders' names, sorted: class `i` is `class_names[i]`.
    pub class_names: Vec<String>,
}

/// `HxW` (or `H,W`) with both sizes positive.
pub fn parse_image_size(text: &str) -> Result<(usize, usize), String> {
    let dims: Vec<usize> = text
        .split(['x', 'X', ','])
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("expected HxW like 64x64, received {text:?}"))?;
    match dims[..] {
        [h, w] if h > 0 && w > 0 => Ok((h, w)),
        _ => Err(format!("expected two positive sizes HxW like 64x64, received {text:?}")),
    }
}

/// A zoo model's canonical image size and the smallest side it can take: the LeNets'
/// unpadded 5×5 convolution after a pooling needs 12 pixels, fashion-cnn's three poolings 8;
/// resnet34 pads every stage, so any size gives it a feature map.
fn zoo_sizes(model: &str) -> ((usize, usize), usize) {
    match model {
        "lenet5" | "lenet-like" => ((28, 28), 12),
        "fashion-cnn" => ((28, 28), 8),
        _ => ((224, 224), 1),
    }
}

impl DataArgs {
    /// Reads `--data DIR` (None without it): prints Keras's "Found N files belonging to K
    /// classes." and the split. Images default to the zoo `model`'s canonical size, or to the
    /// `resumed` model file's input (size and channels), whose stored class names, if any,
    /// must be the folder's; when `built` (not `--spec`/`--resume`), the model is checked to
    /// take the images before any is decoded.
    ///
    /// # Errors
    /// One line naming the folder or the file: a missing or empty folder, one without class
    /// sub-folders, an image that cannot be decoded, a split outside [0, 1) or leaving a
    /// subset empty, images smaller than the model's minimum.
    pub fn load(
        &self,
        model: &str,
        resumed: Option<&Resumed>,
        built: bool,
        validation_split: f64,
        seed: u64,
        verbose: bool,
    ) -> AnyResult<Option<Folder>> {
        let Some(dir) = &self.data else { return Ok(None) };
        if !(0.0..1.0).contains(&validation_split) {
            return Err(format!("--validation-split must be in [0, 1) with --data, got {validation_split}").into());
        }
        let ((h, w), min) = zoo_sizes(model);
        let (h, w) = self.image_size.or(resumed.map(|r| (r.input.0, r.input.1))).unwrap_or((h, w));
        if built && h.min(w) < min {
            return Err(format!("{model} needs images of at least {min}x{min}, received --image-size {h}x{w}").into());
        }
        let split = (validation_split > 0.0).then_some(validation_split);
        let color = match (self.color_mode, resumed.map(|r| r.input.2)) {
            (Some(mode), _) => mode,
            (None, Some(1)) => ColorArg::Grayscale,
            _ => ColorArg::Rgb,
        };
        let check = |found: &[String]| match resumed {
            Some(Resumed { path, class_names: Some(saved), .. }) => {
                crate::model_file::check_class_names(path, saved, &dir.display().to_string(), found)
            }
            _ => Ok(()),
        };
        read_folder(dir, (h, w), color, split, seed, verbose, check).map(Some)
    }
}

/// Reads a class folder as `fovea train --data` and `fovea evaluate --data` do: prints Keras's
/// "Found N files belonging to K classes." (and the split when `validation_split` holds some
/// files out), runs `check` on the sorted class names before any image is decoded, then
/// decodes every image, resized to `h × w`, with `color`'s channels.
///
/// # Errors
/// One line naming the folder or the file: a missing or empty folder, one without class
/// sub-folders, an image that cannot be decoded, a split leaving a subset empty, and what
/// `check` returns.
pub fn read_folder(
    dir: &Path,
    (h, w): (usize, usize),
    color: ColorArg,
    split: Option<f64>,
    seed: u64,
    verbose: bool,
    check: impl FnOnce(&[String]) -> AnyResult<()>,
) -> AnyResult<Folder> {
    let color = match color {
        ColorArg::Grayscale => ColorMode::Grayscale,
        ColorArg::Rgb => ColorMode::Rgb,
    };
    let has_classes =
        std::fs::read_dir(dir).map_err(|e| format!("--data {}: {e}", dir.display()))?.filter_map(|e| e.ok()).any(|e| e.path().is_dir());
    if !has_classes {
        return Err(format!("--data {}: no class sub-folders (expected one folder of images per class)", dir.display()).into());
    }
    let options = |subset| ImageFolderOptions {
        color_mode: color,
        batch_size: Some(64),
        image_size: (h, w),
        seed: Some(seed),
        validation_split: split,
        subset,
        ..Default::default()
    };
    let named = |e: fovea::data::Error| format!("--data {}: {e}", dir.display());
    let train = image_dataset_from_directory(dir, &options(split.map(|_| Subset::Training))).map_err(named)?;
    let val = split.map(|_| image_dataset_from_directory(dir, &options(Some(Subset::Validation)))).transpose().map_err(named)?;
    let classes = train.class_names.len();
    let n_val = val.as_ref().map_or(0, |v| v.file_paths.len());
    let n_train = train.file_paths.len();
    if verbose {
        println!("Found {} files belonging to {classes} classes.", n_train + n_val);
        println!("Classes: {}", train.class_names.iter().enumerate().map(|(i, c)| format!("{i} {c}")).collect::<Vec<_>>().join(", "));
        if val.is_some() {
            println!("Using {n_train} files for training.\nUsing {n_val} files for validation.");
        }
    }
    check(&train.class_names)?;
    let (x, y) = collect(&train.dataset, dir)?;
    let validation = val.map(|v| collect(&v.dataset, dir)).transpose()?;
    let c = color_channels(color);
    Ok(Folder { x, y, validation, geometry: ((h, w, c), classes), name: dir.display().to_string(), class_names: train.class_names.clone() })
}

fn color_channels(mode: ColorMode) -> usize {
    match mode {
        ColorMode::Grayscale => 1,
        _ => 3,
    }
}

/// Decodes every batch: images scaled to [0, 1] as the rest of `fovea train`, labels as they are.
fn collect(ds: &fovea::data::pipeline::Dataset, dir: &Path) -> AnyResult<(Tensor, Tensor)> {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for e in ds.iter() {
        // The reader names the file that failed to decode.
        let e = e.map_err(|e| format!("--data {}: {e}", dir.display()))?;
        xs.push(e.get(0)?.tensor()?.div_scalar(255.0)?);
        ys.push(e.get(1)?.tensor()?.clone());
    }
    let cat = |v: &[Tensor]| Tensor::concat(&v.iter().collect::<Vec<_>>(), 0);
    Ok((cat(&xs)?, cat(&ys)?))
}

/// `net` with Keras's tutorial `data_augmentation` layers in front, seeded by `seed`. They are
/// registered preprocessing layers, so the saved model loads in `evaluate` and `predict`, where
/// they pass images through unchanged.
///
/// # Errors
/// When the layers do not accept `input` images.
pub fn augment(net: Sequential, (h, w, c): (usize, usize, usize), seed: u64) -> AnyResult<Sequential> {
    let model = Sequential::with_input_shape(&[h, w, c]);
    model.add(RandomFlip::new("horizontal")?.seed(seed))?;
    model.add(RandomRotation::new(0.1f32)?.seed(seed.wrapping_add(1)))?;
    model.add(RandomZoom::new(0.1f32, None)?.seed(seed.wrapping_add(2)))?;
    // Pixels are in [0, 1] here, not Keras's default [0, 255].
    model.add(RandomContrast::new(0.1f32)?.value_range((0.0, 1.0))?.seed(seed.wrapping_add(3)))?;
    for layer in net.layers() {
        model.add_ref(layer)?;
    }
    model.build_for(&[h, w, c])?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::parse_image_size;

    #[test]
    fn image_sizes_parse_and_bad_ones_say_what_was_received() {
        assert_eq!(parse_image_size("64x48"), Ok((64, 48)));
        assert_eq!(parse_image_size("32,32"), Ok((32, 32)));
        for bad in ["0x0", "64", "64x", "axb", "1x2x3"] {
            assert!(parse_image_size(bad).unwrap_err().contains(&format!("{bad:?}")), "{bad}");
        }
    }
}
