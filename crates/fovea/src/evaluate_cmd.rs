//! `fovea evaluate MODEL`: test loss and accuracy of a model file on a built-in dataset's test
//! split, or on an image folder laid out as `fovea train --data` reads it (Keras's
//! `model.evaluate(image_dataset_from_directory(...))`).

use crate::data_train::{parse_image_size, read_folder, ColorArg};
use crate::model_file::{self, ModelFile};
use crate::{images, DatasetName};
use clap::Args;
use std::path::{Path, PathBuf};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// `fovea evaluate`'s options.
#[derive(Args)]
pub struct EvaluateArgs {
    /// The model file (written by `fovea train -o`, `fovea create` or `fovea convert`).
    model: PathBuf,
    /// The dataset whose test split is evaluated.
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetName,
    /// Evaluate on the PNG/JPEG images in DIR's sub-folders instead, one class per sub-folder
    /// (sorted by name, as `fovea train --data`); they must be the classes the model was
    /// trained on.
    #[arg(long, value_name = "DIR", conflicts_with = "dataset")]
    data: Option<PathBuf>,
    /// With --data: the size HxW images are resized to (default: the model's input size,
    /// which is the only size it takes).
    #[arg(long, value_name = "HxW", value_parser = parse_image_size, requires = "data")]
    image_size: Option<(usize, usize)>,
    /// With --data: the channels images are converted to (default: the model's, grayscale
    /// for one channel and rgb for three).
    #[arg(long, value_enum, requires = "data")]
    color_mode: Option<ColorArg>,
}

/// Runs `fovea evaluate` with `args`: prints `Test loss: L - Test accuracy: A`.
///
/// # Errors
/// One line for an unreadable model file or data, a model that does not take the data's
/// images, or a folder whose classes are not the model's (their number, or the names the model
/// file stores).
pub fn run(args: EvaluateArgs) -> AnyResult<()> {
    let path = &args.model;
    let net = ModelFile::load(path)?;
    let input = net.input(path)?;
    let (x, y) = match &args.data {
        Some(dir) => folder(&args, &net, input, dir)?,
        None => {
            let dataset = args.dataset;
            if input != dataset.geometry().0 {
                let (name, shape) = (dataset.name(), dataset.geometry().0);
                return Err(format!("{} takes {input:?} inputs but {name} images are {shape:?}", path.display()).into());
            }
            let data = dataset.load()?;
            (images(&data.test_images, dataset)?, data.test_labels.clone())
        }
    };
    let test = net.evaluate(&x, &y)?;
    println!("Test loss: {:.4} - Test accuracy: {:.4}", test["loss"], test["accuracy"]);
    Ok(())
}

/// The images and labels of `--data DIR`, checked against the model before any is decoded.
fn folder(
    args: &EvaluateArgs,
    net: &ModelFile,
    (h, w, c): (usize, usize, usize),
    dir: &Path,
) -> AnyResult<(fovea::core::Tensor, fovea::core::Tensor)> {
    let path = &args.model;
    let size = args.image_size.unwrap_or((h, w));
    if size != (h, w) {
        let (sh, sw) = size;
        return Err(format!("{} takes {h}x{w} images, not --image-size {sh}x{sw}", path.display()).into());
    }
    let color = match (c, args.color_mode) {
        (1, None | Some(ColorArg::Grayscale)) => ColorArg::Grayscale,
        (3, None | Some(ColorArg::Rgb)) => ColorArg::Rgb,
        (_, Some(mode)) => {
            let mode = format!("{mode:?}").to_lowercase();
            return Err(format!("{} takes {c}-channel images, not --color-mode {mode}", path.display()).into());
        }
        _ => return Err(format!("{} takes {c}-channel images; image folders give 1 (grayscale) or 3 (rgb)", path.display()).into()),
    };
    let saved = model_file::class_names(path)?;
    let outputs = net.classes();
    let check = |found: &[String]| -> AnyResult<()> {
        if let Some(saved) = &saved {
            model_file::check_class_names(path, saved, &dir.display().to_string(), found)?;
        }
        match outputs {
            Some(k) if k != found.len() => {
                Err(format!("{} outputs {k} classes but {} holds {} class folders {found:?}", path.display(), dir.display(), found.len())
                    .into())
            }
            _ => Ok(()),
        }
    };
    let f = read_folder(dir, size, color, None, 42, true, check)?;
    Ok((f.x, f.y))
}
