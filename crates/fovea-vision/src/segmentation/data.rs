//! Segmentation data: MNIST segmentation scenes (the detection scenes' masks, written as PNGs)
//! and an image + mask folder reader.
//!
//! Layout: `DIR/images/NAME.png` and `DIR/masks/NAME.png`, paired by file name; a mask is an
//! 8-bit grayscale PNG whose pixel value is the class (the ignore label, e.g. 255, allowed).

use crate::detection::scenes::{make_scenes, DigitSource, Scene, SceneOptions, SceneSplit};
use fovea_core::{Device, Tensor};
use fovea_nn::{Error, Result};
use std::path::{Path, PathBuf};

/// Classes of the MNIST segmentation scenes: background and the ten digits.
pub const MNIST_SEGMENTATION_CLASSES: usize = 11;

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("{}: {e}", path.display()))
}

/// Writes a `height`×`width` 8-bit grayscale PNG (an image, or a mask whose pixel value is the
/// class).
///
/// # Errors
/// `Config` naming the file when the values are not `height·width` or it cannot be written.
pub fn write_gray_png(path: &Path, values: &[u8], height: usize, width: usize) -> Result<()> {
    if values.len() != height * width {
        return Err(io_err(path, format!("{} values for a {height}×{width} image", values.len())));
    }
    image::save_buffer_with_format(path, values, width as u32, height as u32, image::ExtendedColorType::L8, image::ImageFormat::Png)
        .map_err(|e| io_err(path, e))
}

/// Writes `scenes` as `out/images/NNNNNN.png` (grey levels) and `out/masks/NNNNNN.png`
/// (classes), `side`×`side` each.
///
/// # Errors
/// `Config` naming the file when a folder or file cannot be written, or a scene is not
/// `side`×`side`.
pub fn write_segmentation_scenes(out: &Path, scenes: &[Scene], side: usize) -> Result<()> {
    for sub in ["images", "masks"] {
        let dir = out.join(sub);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    }
    for (i, s) in scenes.iter().enumerate() {
        let name = format!("{i:06}.png");
        if s.pixels.len() != side * side || s.mask.len() != side * side {
            return Err(Error::Config(format!(
                "scene {name}: expected {side}×{side} pixels and mask, got {} and {}",
                s.pixels.len(),
                s.mask.len()
            )));
        }
        write_gray_png(&out.join("images").join(&name), &s.pixels, side, side)?;
        write_gray_png(&out.join("masks").join(&name), &s.mask, side, side)?;
    }
    Ok(())
}

/// Draws MNIST segmentation scenes from a loaded MNIST (training digits for
/// [`SceneSplit::Train`], test digits for [`SceneSplit::Test`]).
///
/// # Errors
/// As [`make_scenes`]; a tensor error when the split is not u8 images and i64 labels.
pub fn mnist_segmentation_scenes(mnist: &fovea_data::mnist::Split, split: SceneSplit, opts: &SceneOptions) -> Result<Vec<Scene>> {
    let (images, labels) = match split {
        SceneSplit::Train => (&mnist.train_images, &mnist.train_labels),
        SceneSplit::Test => (&mnist.test_images, &mnist.test_labels),
    };
    let side = images.dims().get(1).copied().unwrap_or(0);
    let (pixels, classes) = (images.to_vec::<u8>()?, labels.to_vec::<i64>()?);
    make_scenes(&DigitSource { images: &pixels, labels: &classes, side }, opts).map_err(|e| Error::Config(e.to_string()))
}

/// Scenes as a batch: `(N, S, S, 1)` f32 images scaled to `[0, 1]` and `(N, S, S)` i64 masks.
///
/// # Errors
/// `Config` when the scenes are not all `side`×`side`.
pub fn scenes_to_tensors(scenes: &[Scene], side: usize, device: Device) -> Result<(Tensor, Tensor)> {
    let mut x = Vec::with_capacity(scenes.len() * side * side);
    let mut y = Vec::with_capacity(scenes.len() * side * side);
    for (i, s) in scenes.iter().enumerate() {
        if s.pixels.len() != side * side || s.mask.len() != side * side {
            return Err(Error::Config(format!(
                "scene {i}: expected {side}×{side} pixels and mask, got {} and {}",
                s.pixels.len(),
                s.mask.len()
            )));
        }
        x.extend(s.pixels.iter().map(|&p| f32::from(p) / 255.0));
        y.extend(s.mask.iter().map(|&m| i64::from(m)));
    }
    let n = scenes.len();
    Ok((Tensor::from_vec(x, [n, side, side, 1], device)?, Tensor::from_vec(y, [n, side, side], device)?))
}

/// An image + mask folder, read whole.
#[derive(Debug, Clone)]
pub struct MaskFolder {
    /// The paired file names, sorted.
    pub names: Vec<String>,
    /// `(N, H, W, C)` u8 images.
    pub images: Tensor,
    /// `(N, H, W)` u8 class maps (the ignore label kept as it is).
    pub masks: Tensor,
}

fn png_names(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, format!("cannot read the folder: {e}")))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.to_ascii_lowercase().ends_with(".png"))
        .collect();
    names.sort();
    Ok(names)
}

/// Reads the mask at `path`: an 8-bit grayscale PNG whose values are the classes, or a colour
/// (Pascal VOC palette) PNG whose colours are; every class must be below `classes` or equal to
/// `ignore_label`. Returns `(height, width, values)`.
///
/// # Errors
/// `Config` naming the file when it cannot be read or decoded, holds a colour outside VOC's
/// palette or a value that is neither a class nor the ignore label, or has another pixel format.
pub fn read_mask(path: &Path, classes: usize, ignore_label: Option<u8>) -> Result<(usize, usize, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, format!("cannot read the mask: {e}")))?;
    let img = image::load_from_memory(&bytes).map_err(|e| io_err(path, format!("not a decodable mask image: {e}")))?;
    // Grey masks hold the class itself; colour masks (Pascal VOC's indexed PNGs decode to RGB)
    // are mapped back to classes through VOC's palette.
    let (w, h, values) = match img {
        image::DynamicImage::ImageLuma8(gray) => (gray.width() as usize, gray.height() as usize, gray.into_raw()),
        image::DynamicImage::ImageRgb8(_) | image::DynamicImage::ImageRgba8(_) => {
            let rgb = img.to_rgb8();
            let (w, h) = (rgb.width() as usize, rgb.height() as usize);
            (w, h, super::palette::colors_to_labels(rgb.as_raw(), w, &super::palette::voc_palette(), &path.display().to_string())?)
        }
        other => {
            return Err(io_err(
                path,
                format!("expected an 8-bit grayscale mask (pixel value = class) or a VOC palette mask, got {:?}", other.color()),
            ));
        }
    };
    if let Some((i, &v)) = values.iter().enumerate().find(|&(_, &v)| v as usize >= classes && Some(v) != ignore_label) {
        let ignore = ignore_label.map(|l| format!(" or the ignore label {l}")).unwrap_or_default();
        return Err(io_err(
            path,
            format!("label {v} at pixel (row {}, column {}) is not a class 0 to {}{ignore}", i / w, i % w, classes - 1),
        ));
    }
    Ok((h, w, values))
}

/// Reads every `dir/images/*.png` with its `dir/masks/` namesake, images decoded to `channels`
/// channels; all pairs must share one size.
///
/// # Errors
/// `Config` naming the file for: a missing folder or mask, a mask whose size differs from its
/// image, images of different sizes, a label value outside the classes (other than the ignore
/// label), or an undecodable file; and when the folder holds no image.
pub fn read_mask_folder(dir: &Path, channels: usize, classes: usize, ignore_label: Option<u8>) -> Result<MaskFolder> {
    let (image_dir, mask_dir) = (dir.join("images"), dir.join("masks"));
    let names = png_names(&image_dir)?;
    if names.is_empty() {
        return Err(io_err(&image_dir, "no PNG images"));
    }
    let (mut pixels, mut labels, mut size) = (Vec::new(), Vec::new(), None);
    for name in &names {
        let image_path = image_dir.join(name);
        let mask_path: PathBuf = mask_dir.join(name);
        if !mask_path.exists() {
            return Err(io_err(&mask_path, format!("missing mask for image {}", image_path.display())));
        }
        let bytes = std::fs::read(&image_path).map_err(|e| io_err(&image_path, e))?;
        let img = crate::image::decode_image(&bytes, channels, Device::Cpu).map_err(|e| io_err(&image_path, e))?;
        let (h, w) = (img.dims()[0], img.dims()[1]);
        let (mh, mw, mask) = read_mask(&mask_path, classes, ignore_label)?;
        if (mh, mw) != (h, w) {
            return Err(io_err(&mask_path, format!("mask is {mh}×{mw} (height×width) but its image {} is {h}×{w}", image_path.display())));
        }
        match size {
            None => size = Some((h, w)),
            Some(s) if s != (h, w) => {
                return Err(io_err(&image_path, format!("image is {h}×{w}, the folder's first image is {}×{}", s.0, s.1)));
            }
            _ => {}
        }
        pixels.extend(img.to_vec::<u8>()?);
        labels.extend(mask);
    }
    let (h, w) = size.expect("at least one image");
    let n = names.len();
    Ok(MaskFolder {
        names,
        images: Tensor::from_vec(pixels, [n, h, w, channels], Device::Cpu)?,
        masks: Tensor::from_vec(labels, [n, h, w], Device::Cpu)?,
    })
}
