//! CIFAR-10 and CIFAR-100 in their binary format (`cifar-10-binary.tar.gz`,
//! `cifar-100-binary.tar.gz`): fixed-size records of label byte(s) then a 32×32 RGB image as
//! three 1,024-byte planes (red, green, blue), rows top to bottom. CIFAR-10 records have one
//! label byte (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`); CIFAR-100 records
//! have a coarse (20 superclasses) then a fine (100 classes) label byte (`train.bin`, `test.bin`).
//!
//! Images come out channels-last, uint8 `[N, 32, 32, 3]`, as `keras.datasets.cifar10` gives
//! them; labels as int64 `[N]` (Keras's are `[N, 1]`).

use crate::fetch::{check_md5, data_dir, download, have};
use crate::mnist::Split;
use crate::{Error, Result};
use fovea_core::{Device, Tensor};
use std::io::Read;
use std::path::{Path, PathBuf};

const SIDE: usize = 32;
const IMAGE_BYTES: usize = SIDE * SIDE * 3;

/// Which CIFAR variant a file holds: it fixes the record layout and the label ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// One label byte (0..10) per record.
    Cifar10,
    /// A coarse (0..20) and a fine (0..100) label byte per record.
    Cifar100,
}

impl Variant {
    /// The number of label bytes before each image.
    pub fn label_bytes(self) -> usize {
        match self {
            Variant::Cifar10 => 1,
            Variant::Cifar100 => 2,
        }
    }

    /// The size of one record in bytes (3,073 or 3,074).
    pub fn record_bytes(self) -> usize {
        self.label_bytes() + IMAGE_BYTES
    }

    fn name(self) -> &'static str {
        match self {
            Variant::Cifar10 => "CIFAR-10",
            Variant::Cifar100 => "CIFAR-100",
        }
    }
}

/// Which CIFAR-100 labels to return (Keras's `label_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelMode {
    /// The 100 classes.
    Fine,
    /// The 20 superclasses.
    Coarse,
}

/// The records of one CIFAR binary file.
#[derive(Debug, Clone)]
pub struct Records {
    /// Images, uint8 `[N, 32, 32, 3]`.
    pub images: Tensor,
    /// The class labels (CIFAR-10) or fine labels (CIFAR-100), int64 `[N]`.
    pub labels: Tensor,
    /// The coarse labels of CIFAR-100, int64 `[N]`; `None` for CIFAR-10.
    pub coarse_labels: Option<Tensor>,
}

/// Parses the bytes of a CIFAR binary file; `what` names it in errors.
///
/// # Errors
/// `Format` naming `what` when the length is not a positive whole number of records (a
/// truncated file) or a label is out of range (a corrupt one, or the wrong variant).
pub fn parse_records(bytes: &[u8], variant: Variant, what: &str, device: Device) -> Result<Records> {
    let rec = variant.record_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(rec) {
        return Err(Error::format(
            what,
            format!(
                "{} bytes is not a whole number of {rec}-byte {} records ({} full records and {} bytes over: truncated or corrupt)",
                bytes.len(),
                variant.name(),
                bytes.len() / rec,
                bytes.len() % rec
            ),
        ));
    }
    let n = bytes.len() / rec;
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let (mut fine, mut coarse) = (Vec::with_capacity(n), Vec::new());
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        let check = |v: u8, limit: u8, kind: &str| -> Result<i64> {
            if v >= limit {
                return Err(Error::format(
                    what,
                    format!("record {i} has {kind} label {v}; {} {kind} labels are 0..{limit} (corrupt file, or not {0})", variant.name()),
                ));
            }
            Ok(v as i64)
        };
        match variant {
            Variant::Cifar10 => fine.push(check(r[0], 10, "class")?),
            Variant::Cifar100 => {
                coarse.push(check(r[0], 20, "coarse")?);
                fine.push(check(r[1], 100, "fine")?);
            }
        }
        // Planes [3, 32, 32] → pixels [32, 32, 3].
        let img = &r[variant.label_bytes()..];
        for p in 0..SIDE * SIDE {
            pixels.extend([img[p], img[SIDE * SIDE + p], img[2 * SIDE * SIDE + p]]);
        }
    }
    Ok(Records {
        images: Tensor::from_vec(pixels, vec![n, SIDE, SIDE, 3], device)?,
        labels: Tensor::from_vec(fine, vec![n], device)?,
        coarse_labels: match variant {
            Variant::Cifar10 => None,
            Variant::Cifar100 => Some(Tensor::from_vec(coarse, vec![n], device)?),
        },
    })
}

/// Reads a CIFAR binary file.
///
/// # Errors
/// `Io` naming the file; `Format` as [`parse_records`].
pub fn read_records(path: &Path, variant: Variant, device: Device) -> Result<Records> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_records(&bytes, variant, &path.display().to_string(), device)
}

/// Where a CIFAR dataset comes from and what its directory must hold.
#[derive(Debug, Clone, Copy)]
pub struct CifarSource {
    /// The directory name under the data directory.
    pub name: &'static str,
    /// The variant.
    pub variant: Variant,
    /// The canonical archive URL.
    pub url: &'static str,
    /// The archive's published MD5.
    pub md5: &'static str,
    /// The folder inside the archive that holds the files.
    pub folder: &'static str,
    /// The training files, in order.
    pub train: &'static [&'static str],
    /// The test file.
    pub test: &'static str,
    /// Records per file (10,000 in every CIFAR-10 file; 50,000 and 10,000 for CIFAR-100).
    pub records: &'static [usize],
    /// Text files kept beside the data (class names).
    pub extras: &'static [&'static str],
}

/// CIFAR-10: 50,000 training and 10,000 test images in 10 classes.
pub const CIFAR10: CifarSource = CifarSource {
    name: "cifar10",
    variant: Variant::Cifar10,
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
    folder: "cifar-10-batches-bin",
    train: &["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
    test: "test_batch.bin",
    records: &[10_000, 10_000, 10_000, 10_000, 10_000, 10_000],
    extras: &["batches.meta.txt"],
};

/// CIFAR-100: 50,000 training and 10,000 test images in 100 classes (20 superclasses).
pub const CIFAR100: CifarSource = CifarSource {
    name: "cifar100",
    variant: Variant::Cifar100,
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8",
    folder: "cifar-100-binary",
    train: &["train.bin"],
    test: "test.bin",
    records: &[50_000, 10_000],
    extras: &["fine_label_names.txt", "coarse_label_names.txt"],
};

/// The CIFAR-10 class names, by label.
pub const CIFAR10_CLASS_NAMES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

impl CifarSource {
    /// Every data file with its expected record count, training files first.
    pub fn files(&self) -> Vec<(&'static str, usize)> {
        self.train.iter().chain([&self.test]).copied().zip(self.records.iter().copied()).collect()
    }

    /// The archive's file name (`cifar-10-binary.tar.gz`).
    pub fn archive_name(&self) -> &'static str {
        self.url.rsplit('/').next().unwrap_or(self.url)
    }

    fn check_size(&self, len: usize, records: usize, what: &str) -> Result<()> {
        let want = records * self.variant.record_bytes();
        if len != want {
            return Err(Error::format(
                what,
                format!("expected {records} records = {want} bytes, found {len} bytes (truncated or corrupt)"),
            ));
        }
        Ok(())
    }
}

/// Installs the data files of `src` from the bytes of its `.tar.gz` archive into `dir`, each
/// validated (size, labels) and written atomically.
///
/// # Errors
/// `Format` naming the archive (or its member) when the checksum, the gzip stream, a size or a
/// label is wrong, or a file is missing from it.
pub fn install_archive(src: &CifarSource, dir: &Path, archive: &[u8], origin: &str, check_checksum: bool) -> Result<()> {
    if check_checksum {
        check_md5(archive, Some(src.md5), origin)?;
    }
    let files = src.files();
    let mut found = Vec::new();
    let mut tar = tar::Archive::new(crate::fetch::gunzip_bounded(archive, origin)?);
    for entry in tar.entries().map_err(|e| Error::format(origin, format!("corrupt archive: {e}")))? {
        let mut entry = entry.map_err(|e| Error::stream(origin, "corrupt archive", e))?;
        let path = entry.path().map_err(|e| Error::format(origin, e.to_string()))?.to_path_buf();
        let Some(name) = path.strip_prefix(src.folder).ok().and_then(|p| p.to_str()).map(str::to_string) else { continue };
        let expected = files.iter().find(|(f, _)| *f == name).map(|&(_, n)| n);
        if expected.is_none() && !src.extras.contains(&name.as_str()) {
            continue;
        }
        let what = format!("{origin}:{}", path.display());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| Error::stream(&what, "corrupt archive", e))?;
        if let Some(n) = expected {
            src.check_size(data.len(), n, &what)?;
            parse_records(&data, src.variant, &what, Device::Cpu)?;
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        fovea_core::io::write_atomic(dir.join(&name), &data)?;
        found.push(name);
    }
    let missing: Vec<&str> = files.iter().map(|&(f, _)| f).filter(|f| !found.iter().any(|g| g == f)).collect();
    if !missing.is_empty() {
        return Err(Error::format(origin, format!("the archive has no {} under {}/", missing.join(", "), src.folder)));
    }
    Ok(())
}

/// Makes sure every data file of `src` is in `data_dir()/<name>` (validated) and returns that
/// directory. The archive is taken from the directory itself when someone put it there
/// (`<dir>/cifar-10-binary.tar.gz`), else downloaded with `curl`; its MD5 is checked either way.
///
/// # Errors
/// `Format` naming a corrupt file already in the cache; `Missing` with what was tried and where
/// to put which files when nothing could provide them.
pub fn fetch(src: &CifarSource) -> Result<PathBuf> {
    fetch_into(src, &data_dir().join(src.name))
}

/// [`fetch`] into an explicit directory.
///
/// # Errors
/// As [`fetch`].
pub fn fetch_into(src: &CifarSource, dir: &Path) -> Result<PathBuf> {
    let mut complete = true;
    for (file, records) in src.files() {
        let p = dir.join(file);
        match std::fs::metadata(&p) {
            Ok(m) => src.check_size(m.len() as usize, records, &p.display().to_string()).map_err(|e| match e {
                Error::Format { what, detail } => Error::format(what, format!("{detail} — delete this file and fetch again")),
                other => other,
            })?,
            Err(_) => complete = false,
        }
    }
    if complete {
        return Ok(dir.to_path_buf());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let local = dir.join(src.archive_name());
    let mut log = Vec::new();
    if local.is_file() {
        let bytes = std::fs::read(&local).map_err(|e| Error::io(&local, e))?;
        match install_archive(src, dir, &bytes, &local.display().to_string(), true) {
            Ok(()) => return Ok(dir.to_path_buf()),
            Err(e) => log.push(e.to_string()),
        }
    } else if !have("curl") {
        log.push("curl is not installed, so the archive was not downloaded".into());
    } else {
        match download(src.url, dir, src.archive_name()).and_then(|b| install_archive(src, dir, &b, src.url, true)) {
            Ok(()) => return Ok(dir.to_path_buf()),
            Err(e) => log.push(format!("{}: {e}", src.url)),
        }
    }
    let names: Vec<&str> = src.files().iter().map(|&(f, _)| f).collect();
    Err(Error::Missing(format!(
        "dataset {} is incomplete in {}.\nTried:\n  {}\nPut the archive {} (from {}, MD5 {}) into {}, or its files {} from {}/.",
        src.name,
        dir.display(),
        log.join("\n  "),
        src.archive_name(),
        src.url,
        src.md5,
        dir.display(),
        names.join(", "),
        src.folder,
    )))
}

fn load_split(src: &CifarSource, dir: &Path, files: &[&str], mode: LabelMode, device: Device) -> Result<(Tensor, Tensor)> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for f in files {
        let p = dir.join(f);
        if !p.is_file() {
            return Err(Error::Missing(format!("{f} not found in {}", dir.display())));
        }
        let r = read_records(&p, src.variant, device)?;
        images.push(r.images);
        labels.push(match (mode, r.coarse_labels) {
            (LabelMode::Coarse, Some(c)) => c,
            _ => r.labels,
        });
    }
    let cat = |v: &[Tensor]| -> Result<Tensor> {
        if v.len() == 1 {
            return Ok(v[0].clone());
        }
        Ok(Tensor::concat(&v.iter().collect::<Vec<_>>(), 0)?)
    };
    Ok((cat(&images)?, cat(&labels)?))
}

fn load_with(src: &CifarSource, dir: &Path, mode: LabelMode, device: Device) -> Result<Split> {
    let (train_images, train_labels) = load_split(src, dir, src.train, mode, device)?;
    let (test_images, test_labels) = load_split(src, dir, &[src.test], mode, device)?;
    Ok(Split { train_images, train_labels, test_images, test_labels })
}

/// Loads CIFAR-10 from `dir` (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`).
///
/// # Errors
/// `Missing` for a missing file; `Format` naming a corrupt one.
pub fn load_cifar10_from(dir: &Path, device: Device) -> Result<Split> {
    load_with(&CIFAR10, dir, LabelMode::Fine, device)
}

/// Loads CIFAR-100 from `dir` (`train.bin`, `test.bin`) with the fine or coarse labels.
///
/// # Errors
/// `Missing` for a missing file; `Format` naming a corrupt one.
pub fn load_cifar100_from(dir: &Path, mode: LabelMode, device: Device) -> Result<Split> {
    load_with(&CIFAR100, dir, mode, device)
}

/// Fetches CIFAR-10 if needed, then loads it (`keras.datasets.cifar10.load_data`).
///
/// # Errors
/// As [`fetch`] and [`load_cifar10_from`].
pub fn load_cifar10(device: Device) -> Result<Split> {
    load_cifar10_from(&fetch(&CIFAR10)?, device)
}

/// Fetches CIFAR-100 if needed, then loads it (`keras.datasets.cifar100.load_data`).
///
/// # Errors
/// As [`fetch`] and [`load_cifar100_from`].
pub fn load_cifar100(mode: LabelMode, device: Device) -> Result<Split> {
    load_cifar100_from(&fetch(&CIFAR100)?, mode, device)
}

/// The class names of a dataset directory's text file (one per line, blank lines dropped), as
/// the archives ship them (`batches.meta.txt`, `fine_label_names.txt`).
///
/// # Errors
/// `Io` naming the file.
pub fn class_names(dir: &Path, file: &str) -> Result<Vec<String>> {
    let p = dir.join(file);
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
}
