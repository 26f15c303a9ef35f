//! Image datasets from a directory tree (`keras.utils.image_dataset_from_directory`).
//!
//! ```text
//! main_directory/
//! ├── cat/   a.png  b.jpg ...
//! └── dog/   c.png  ...
//! ```
//!
//! Each sub-folder is a class; the sorted folder names give the class indices (`cat` 0,
//! `dog` 1). Files ending in `.png`, `.jpg` or `.jpeg` (any case) are found recursively within
//! each class folder; other files are ignored. Images are decoded lazily, per element, when the
//! dataset is iterated, converted to the colour mode and resized (bilinear) to `image_size`,
//! as float32 values in `[0, 255]` — as Keras returns them.
//!
//! With `shuffle`, the file list is shuffled with `seed` before a validation split takes its
//! tail, so the training and validation subsets of the same seed never overlap; the same seed
//! gives the same split on every run (Fovea's generator, so not the same files Keras would pick).

use crate::image::{decode_image, resize, ResizeMethod};
use fovea_core::random::Rng;
use fovea_core::{DType, Device, Tensor};
use fovea_data::pipeline::{Dataset, Element, AUTOTUNE};
use fovea_data::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const OP: &str = "image_dataset_from_directory";

/// How labels are encoded (Keras's `label_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelMode {
    /// int64 class indices (`sparse_categorical_crossentropy`).
    Int,
    /// float32 one-hot vectors (`categorical_crossentropy`).
    Categorical,
    /// float32 0/1 values of shape `[1]` (`binary_crossentropy`); exactly two classes.
    Binary,
    /// No labels: the dataset yields images only.
    None,
}

/// The number of channels images are converted to (Keras's `color_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// One channel.
    Grayscale,
    /// Three channels.
    Rgb,
    /// Four channels.
    Rgba,
}

impl ColorMode {
    fn channels(self) -> usize {
        match self {
            ColorMode::Grayscale => 1,
            ColorMode::Rgb => 3,
            ColorMode::Rgba => 4,
        }
    }
}

/// Which part of a validation split to return (Keras's `subset`; for `"both"`, call twice
/// with the same seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subset {
    /// The first `1 - validation_split` of the (shuffled) files.
    Training,
    /// The last `validation_split` of them.
    Validation,
}

/// The options of [`image_dataset_from_directory`], with Keras's defaults.
#[derive(Debug, Clone)]
pub struct ImageFolderOptions {
    /// The label encoding (default `Int`).
    pub label_mode: LabelMode,
    /// Only these sub-folders, in this order (default: all, sorted).
    pub class_names: Option<Vec<String>>,
    /// The colour mode (default `Rgb`).
    pub color_mode: ColorMode,
    /// Elements per batch; `None` yields single images (default 32).
    pub batch_size: Option<usize>,
    /// `(height, width)` every image is resized to (default 256 × 256).
    pub image_size: (usize, usize),
    /// Shuffle the files (and, each epoch, the elements) (default true).
    pub shuffle: bool,
    /// The shuffling seed; required with `shuffle` and a validation split (default none: one
    /// is drawn from the global sequence).
    pub seed: Option<u64>,
    /// The fraction of files held out for validation, in (0, 1) (default none).
    pub validation_split: Option<f64>,
    /// Which part of the split to return; required with `validation_split`.
    pub subset: Option<Subset>,
}

impl Default for ImageFolderOptions {
    fn default() -> Self {
        ImageFolderOptions {
            label_mode: LabelMode::Int,
            class_names: None,
            color_mode: ColorMode::Rgb,
            batch_size: Some(32),
            image_size: (256, 256),
            shuffle: true,
            seed: None,
            validation_split: None,
            subset: None,
        }
    }
}

/// An image-folder dataset and what it was built from.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// Batches (or single elements) of `(images, labels)`, or images only with
    /// [`LabelMode::None`]. Images are float32 `[batch, height, width, channels]`.
    pub dataset: Dataset,
    /// The class names, by index.
    pub class_names: Vec<String>,
    /// The files of this subset, in the order before per-epoch shuffling.
    pub file_paths: Vec<PathBuf>,
    /// The class index of each file.
    pub labels: Vec<i64>,
}

fn bad(detail: impl Into<String>) -> Error {
    Error::Format { what: OP.into(), detail: detail.into() }
}

fn is_image(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Io { path: dir.into(), source: e })?;
    for entry in entries {
        let path = entry.map_err(|e| Error::Io { path: dir.into(), source: e })?.path();
        if path.is_dir() {
            collect_images(&path, out)?;
        } else if is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn check_options(o: &ImageFolderOptions) -> Result<()> {
    if o.image_size.0 == 0 || o.image_size.1 == 0 {
        return Err(bad(format!("image_size must be positive, received {:?}", o.image_size)));
    }
    if o.batch_size == Some(0) {
        return Err(bad("batch_size must be at least 1 (or None for single images), received 0"));
    }
    match (o.validation_split, o.subset) {
        (Some(v), _) if !(v > 0.0 && v < 1.0) => return Err(bad(format!("validation_split must be between 0 and 1, received {v}"))),
        (Some(_), None) | (None, Some(_)) => {
            return Err(bad("validation_split and subset go together: give both (subset Training or Validation) or neither"))
        }
        (Some(_), Some(_)) if o.shuffle && o.seed.is_none() => {
            return Err(bad("with validation_split and shuffling, give a seed, so that the training and validation subsets do not overlap"))
        }
        _ => {}
    }
    Ok(())
}

/// Builds a dataset of the images in `directory`'s class sub-folders (see the module docs).
///
/// # Errors
/// `Format` naming the option for inconsistent options (a validation split without a subset or
/// a seed, a split outside (0, 1), a zero size), `class_names` that are not sub-folders,
/// `Binary` labels without exactly two classes, or a directory without images; `Io` naming an
/// unreadable directory. An image that fails to decode is an `Err` item of the dataset, naming
/// the file.
pub fn image_dataset_from_directory(directory: impl AsRef<Path>, options: &ImageFolderOptions) -> Result<ImageFolder> {
    let directory = directory.as_ref();
    check_options(options)?;
    let mut subdirs: Vec<String> = std::fs::read_dir(directory)
        .map_err(|e| Error::Io { path: directory.into(), source: e })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    subdirs.sort();
    let class_names = match &options.class_names {
        None => subdirs.clone(),
        Some(names) => {
            if let Some(n) = names.iter().find(|n| !subdirs.contains(n)) {
                return Err(bad(format!(
                    "class_names {names:?} must name sub-folders of {}; {n:?} is not one of {subdirs:?}",
                    directory.display()
                )));
            }
            names.clone()
        }
    };
    if options.label_mode == LabelMode::Binary && class_names.len() != 2 {
        return Err(bad(format!("label_mode Binary needs exactly 2 classes, found {}: {class_names:?}", class_names.len())));
    }
    let (mut files, mut labels) = (Vec::new(), Vec::new());
    for (c, name) in class_names.iter().enumerate() {
        let mut found = Vec::new();
        collect_images(&directory.join(name), &mut found)?;
        found.sort();
        labels.extend(std::iter::repeat_n(c as i64, found.len()));
        files.extend(found);
    }
    if files.is_empty() {
        return Err(bad(format!(
            "no images found in {} (expected .png, .jpg or .jpeg files in its class sub-folders {subdirs:?})",
            directory.display()
        )));
    }
    let seed = options.seed.unwrap_or_else(fovea_core::random::next_seed);
    if options.shuffle {
        // One permutation for files and labels, so each file keeps its label.
        let mut order: Vec<usize> = (0..files.len()).collect();
        Rng::new(seed).shuffle(&mut order);
        files = order.iter().map(|&i| files[i].clone()).collect();
        labels = order.iter().map(|&i| labels[i]).collect();
    }
    if let (Some(split), Some(subset)) = (options.validation_split, options.subset) {
        let n_val = (split * files.len() as f64) as usize;
        let cut = files.len() - n_val;
        let range = match subset {
            Subset::Training => 0..cut,
            Subset::Validation => cut..files.len(),
        };
        files = files[range.clone()].to_vec();
        labels = labels[range].to_vec();
        if files.is_empty() {
            return Err(bad(format!("validation_split {split} leaves the {subset:?} subset empty")));
        }
    }
    let dataset = build_dataset(&files, &labels, class_names.len(), options, seed)?;
    Ok(ImageFolder { dataset, class_names, file_paths: files, labels })
}

fn build_dataset(files: &[PathBuf], labels: &[i64], classes: usize, o: &ImageFolderOptions, seed: u64) -> Result<Dataset> {
    let n = files.len();
    let index = Tensor::from_vec((0..n as i64).collect::<Vec<_>>(), vec![n], Device::Cpu)?;
    let mut ds = Dataset::from_tensor_slices(index)?;
    // As Keras: a buffer of 8 batches (1,024 elements unbatched), reshuffled every epoch.
    if let (true, Some(b)) = (o.shuffle, o.batch_size) {
        ds = ds.shuffle(b * 8, Some(seed));
    } else if o.shuffle {
        ds = ds.shuffle(1024, Some(seed));
    }
    let files: Arc<Vec<PathBuf>> = Arc::new(files.to_vec());
    let labels: Arc<Vec<i64>> = Arc::new(labels.to_vec());
    let (size, channels, mode) = (o.image_size, o.color_mode.channels(), o.label_mode);
    let load = move |e: Element| -> Result<Element> {
        let i = e.tensor()?.to_vec::<i64>()?[0] as usize;
        let image = load_image(&files[i], size, channels)?;
        let label = labels[i];
        Ok(match mode {
            LabelMode::None => Element::Tensor(image),
            LabelMode::Int => (image, Tensor::from_vec(vec![label], Vec::<usize>::new(), Device::Cpu)?).into(),
            LabelMode::Categorical => {
                let mut one_hot = vec![0f32; classes];
                one_hot[label as usize] = 1.0;
                (image, Tensor::from_vec(one_hot, vec![classes], Device::Cpu)?).into()
            }
            LabelMode::Binary => (image, Tensor::from_vec(vec![label as f32], vec![1], Device::Cpu)?).into(),
        })
    };
    ds = ds.map_parallel(load, AUTOTUNE, true);
    if let Some(b) = o.batch_size {
        ds = ds.batch(b, false);
    }
    Ok(ds)
}

/// Decodes one file to float32 `[h, w, channels]` in `[0, 255]`, resized bilinearly.
fn load_image(path: &Path, (h, w): (usize, usize), channels: usize) -> Result<Tensor> {
    let name = || path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.into(), source: e })?;
    let img = decode_image(&bytes, channels, Device::Cpu).map_err(|e| Error::Format { what: name(), detail: e.to_string() })?;
    if img.dims()[..2] == [h, w] {
        return Ok(img.cast(DType::F32)?);
    }
    Ok(resize(&img, (h, w), ResizeMethod::Bilinear, false)?)
}
