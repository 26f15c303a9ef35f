//! MNIST detection scenes: 128×128 grayscale images holding 1–5 real MNIST digits, scaled to
//! 14–56 px and placed without overlap on a noisy background, with COCO `instances` ground truth.
//!
//! Each box is the tight box around the digit's stroke pixels, those above half intensity
//! (> 127.5) after scaling, so a box hugs the visible digit rather than its 28×28 frame. Training
//! scenes draw only MNIST's training digits and test scenes only its test digits, so a detector
//! is evaluated on handwriting it has never seen. The same seed gives the same files.
//!
//! Each scene also carries a segmentation mask (0 background, 1 + digit on the digit's stroke
//! pixels, the same > 127.5 rule as the boxes), so one generator serves detection and
//! segmentation ([`crate::segmentation::data`] writes the masks).

use super::coco::{CocoAnnotation, CocoCategory, CocoDataset, CocoImage};
use fovea_core::random::Rng;
use fovea_data::{Error, Result};
use std::path::Path;

/// Which MNIST split the digits come from (and the scenes' folder and file names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SceneSplit {
    /// MNIST's 60,000 training digits.
    Train,
    /// MNIST's 10,000 test digits.
    Test,
}

impl SceneSplit {
    /// `"train"` or `"test"`.
    pub fn name(self) -> &'static str {
        match self {
            SceneSplit::Train => "train",
            SceneSplit::Test => "test",
        }
    }
}

/// How scenes are drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneOptions {
    /// Number of scenes.
    pub count: usize,
    /// Seed of everything random: digit choice, size, position, background.
    pub seed: u64,
    /// Side of the square scene in pixels.
    pub size: usize,
    /// Smallest and largest side of a scaled digit (its 28×28 frame), inclusive.
    pub digit_size: (usize, usize),
    /// Most digits per scene (at least one).
    pub max_digits: usize,
    /// Background noise: each pixel uniform in `[0, noise]` (below 128, so never a stroke).
    pub noise: u8,
}

impl Default for SceneOptions {
    fn default() -> Self {
        SceneOptions { count: 1000, seed: 0, size: 128, digit_size: (14, 56), max_digits: 5, noise: 48 }
    }
}

/// Digits to draw from: `images` is `n·side·side` grey levels, `labels` `n` classes 0–9.
#[derive(Debug, Clone, Copy)]
pub struct DigitSource<'a> {
    /// Row-major grey levels of every digit.
    pub images: &'a [u8],
    /// The class of each digit.
    pub labels: &'a [i64],
    /// Side of each digit image (28 for MNIST).
    pub side: usize,
}

/// One generated scene.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// `size·size` grey levels, row-major.
    pub pixels: Vec<u8>,
    /// `(class, [x, y, w, h])` of every digit, boxes in pixels (COCO format).
    pub boxes: Vec<(i64, [f64; 4])>,
    /// `size·size` class labels, row-major: 0 for background, `1 + digit` where that digit's
    /// scaled stroke is above half intensity; where digits overlap, the one drawn last wins.
    pub mask: Vec<u8>,
}

/// Bilinear resize of a square grey image (half-pixel centres, as `tf.image.resize`), in f32.
fn resize(src: &[u8], side: usize, out: usize) -> Vec<f32> {
    let scale = side as f32 / out as f32;
    let at = |y: usize, x: usize| src[y * side + x] as f32;
    let mut v = Vec::with_capacity(out * out);
    for oy in 0..out {
        let fy = ((oy as f32 + 0.5) * scale - 0.5).clamp(0.0, (side - 1) as f32);
        let (y0, wy) = (fy.floor() as usize, fy - fy.floor());
        let y1 = (y0 + 1).min(side - 1);
        for ox in 0..out {
            let fx = ((ox as f32 + 0.5) * scale - 0.5).clamp(0.0, (side - 1) as f32);
            let (x0, wx) = (fx.floor() as usize, fx - fx.floor());
            let x1 = (x0 + 1).min(side - 1);
            let top = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx;
            let bottom = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx;
            v.push(top * (1.0 - wy) + bottom * wy);
        }
    }
    v
}

fn check(source: &DigitSource, opts: &SceneOptions) -> Result<()> {
    let bad = |detail: String| Err(Error::Format { what: "mnist-detection".into(), detail });
    let (lo, hi) = opts.digit_size;
    if source.side == 0 || source.images.len() != source.labels.len() * source.side * source.side {
        return bad(format!(
            "{} grey levels do not hold {} digits of {}×{}",
            source.images.len(),
            source.labels.len(),
            source.side,
            source.side
        ));
    }
    if source.labels.is_empty() {
        return bad("no digits to draw from".into());
    }
    if let Some(l) = source.labels.iter().find(|l| !(0..10).contains(*l)) {
        return bad(format!("digit label {l} is not 0–9"));
    }
    if lo == 0 || lo > hi || hi > opts.size || opts.max_digits == 0 {
        return bad(format!("digit sizes {lo}–{hi} px, {} digits per scene, do not fit a {} px scene", opts.max_digits, opts.size));
    }
    Ok(())
}

/// Draws `opts.count` scenes from `source`.
///
/// # Errors
/// `Format` when the source is inconsistent (sizes, labels outside 0–9, no digits) or the
/// options cannot be met (a digit larger than the scene).
pub fn make_scenes(source: &DigitSource, opts: &SceneOptions) -> Result<Vec<Scene>> {
    check(source, opts)?;
    let mut rng = Rng::new(opts.seed);
    let n = opts.size;
    let frame = source.side * source.side;
    let (lo, hi) = opts.digit_size;
    let mut scenes = Vec::with_capacity(opts.count);
    for _ in 0..opts.count {
        let mut pixels: Vec<u8> = (0..n * n).map(|_| rng.below(opts.noise as u64 + 1) as u8).collect();
        let wanted = 1 + rng.below(opts.max_digits as u64) as usize;
        let mut placed: Vec<[usize; 3]> = Vec::new(); // x, y, side of each digit's frame
        let mut boxes = Vec::new();
        let mut mask = vec![0u8; n * n];
        // A crowded scene may not fit every digit; give up on the rest after enough tries.
        for _ in 0..wanted * 50 {
            if boxes.len() == wanted {
                break;
            }
            let d = rng.below(source.labels.len() as u64) as usize;
            let s = lo + rng.below((hi - lo + 1) as u64) as usize;
            let x = rng.below((n - s + 1) as u64) as usize;
            let y = rng.below((n - s + 1) as u64) as usize;
            if placed.iter().any(|&[px, py, ps]| x < px + ps && px < x + s && y < py + ps && py < y + s) {
                continue;
            }
            let digit = resize(&source.images[d * frame..(d + 1) * frame], source.side, s);
            let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
            for (i, &v) in digit.iter().enumerate() {
                if v > 127.5 {
                    let (dy, dx) = (i / s, i % s);
                    (x0, y0, x1, y1) = (x0.min(dx), y0.min(dy), x1.max(dx + 1), y1.max(dy + 1));
                }
            }
            if x0 == usize::MAX {
                continue; // too faint to have a stroke at this size
            }
            for (i, &v) in digit.iter().enumerate() {
                let at = (y + i / s) * n + x + i % s;
                pixels[at] = pixels[at].max(v.round().clamp(0.0, 255.0) as u8);
                if v > 127.5 {
                    mask[at] = 1 + source.labels[d] as u8;
                }
            }
            placed.push([x, y, s]);
            boxes.push((source.labels[d], [(x + x0) as f64, (y + y0) as f64, (x1 - x0) as f64, (y1 - y0) as f64]));
        }
        scenes.push(Scene { pixels, boxes, mask });
    }
    Ok(scenes)
}

/// Writes scenes as PNGs `out/<split>/NNNNNN.png` and their ground truth as
/// `out/instances_<split>.json` (categories `"0"`…`"9"` with ids 0–9; file names relative to
/// `out`), and returns that ground truth. Annotation and image ids start at 1.
///
/// # Errors
/// As [`make_scenes`]; `Io` when a file cannot be written.
pub fn write_scenes(out: &Path, split: SceneSplit, source: &DigitSource, opts: &SceneOptions) -> Result<CocoDataset> {
    let scenes = make_scenes(source, opts)?;
    let folder = out.join(split.name());
    std::fs::create_dir_all(&folder).map_err(|e| Error::Io { path: folder.clone(), source: e })?;
    let mut ds = CocoDataset {
        categories: (0..10).map(|c| CocoCategory { id: c, name: c.to_string(), supercategory: "digit".into() }).collect(),
        ..Default::default()
    };
    for (i, scene) in scenes.iter().enumerate() {
        let file_name = format!("{}/{:06}.png", split.name(), i);
        let path = out.join(&file_name);
        image::save_buffer_with_format(
            &path,
            &scene.pixels,
            opts.size as u32,
            opts.size as u32,
            image::ExtendedColorType::L8,
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::Io { path: path.clone(), source: std::io::Error::other(e) })?;
        let image_id = i as i64 + 1;
        ds.images.push(CocoImage { id: image_id, file_name, width: opts.size as u32, height: opts.size as u32 });
        for &(class, bbox) in &scene.boxes {
            let id = ds.annotations.len() as i64 + 1;
            ds.annotations.push(CocoAnnotation { id, image_id, category_id: class, bbox, area: bbox[2] * bbox[3], iscrowd: false });
        }
    }
    ds.write(out.join(format!("instances_{}.json", split.name())))?;
    Ok(ds)
}

/// [`write_scenes`] from a loaded MNIST: the training digits for [`SceneSplit::Train`], the test
/// digits for [`SceneSplit::Test`].
///
/// # Errors
/// As [`write_scenes`]; a tensor error when the split's tensors are not u8 images and i64 labels.
pub fn write_mnist_scenes(out: &Path, split: SceneSplit, mnist: &fovea_data::mnist::Split, opts: &SceneOptions) -> Result<CocoDataset> {
    let (images, labels) = match split {
        SceneSplit::Train => (&mnist.train_images, &mnist.train_labels),
        SceneSplit::Test => (&mnist.test_images, &mnist.test_labels),
    };
    let side = images.dims().get(1).copied().unwrap_or(0);
    let (pixels, classes) = (images.to_vec::<u8>()?, labels.to_vec::<i64>()?);
    write_scenes(out, split, &DigitSource { images: &pixels, labels: &classes, side }, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fake digits: class c is a bright bar whose width grows with c, on a 28×28 frame.
    fn fake(classes: &[i64]) -> (Vec<u8>, Vec<i64>) {
        let mut px = Vec::new();
        for &c in classes {
            for y in 0..28 {
                for x in 0..28 {
                    let on = (4..24).contains(&y) && x >= 10 && x < 12 + c as usize;
                    px.push(if on { 255 } else { 0 });
                }
            }
        }
        (px, classes.to_vec())
    }

    #[test]
    fn scenes_hold_tight_non_overlapping_boxes() {
        let (px, labels) = fake(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let src = DigitSource { images: &px, labels: &labels, side: 28 };
        let opts = SceneOptions { count: 40, seed: 3, ..Default::default() };
        let scenes = make_scenes(&src, &opts).unwrap();
        let mut counts = [0usize; 6];
        for s in &scenes {
            assert!((1..=5).contains(&s.boxes.len()));
            counts[s.boxes.len()] += 1;
            let mut strokes = vec![false; 128 * 128];
            for (i, &p) in s.pixels.iter().enumerate() {
                strokes[i] = p > 127;
            }
            // Every stroke pixel is labelled, and only stroke pixels are (a grey level of exactly
            // 128 may come from 127.5, which is not above half).
            for (i, (&p, &m)) in s.pixels.iter().zip(&s.mask).enumerate() {
                assert!(if m > 0 { p >= 128 } else { p <= 128 }, "pixel {i}: grey {p}, mask {m}");
            }
            for (k, &(class, [x, y, w, h])) in s.boxes.iter().enumerate() {
                // The box's stroke pixels carry its class.
                let (bx, by) = (x as usize, y as usize);
                for r in by..by + h as usize {
                    for c in bx..bx + w as usize {
                        let m = s.mask[r * 128 + c];
                        assert!(m == 0 || i64::from(m) == class + 1, "mask {m} inside a box of class {class}");
                    }
                }
                assert!(x >= 0.0 && y >= 0.0 && x + w <= 128.0 && y + h <= 128.0 && w > 0.0 && h > 0.0);
                // Tight: the box's border rows and columns each hold a stroke pixel.
                let (x, y, w, h) = (x as usize, y as usize, w as usize, h as usize);
                assert!((x..x + w).any(|c| strokes[y * 128 + c]) && (x..x + w).any(|c| strokes[(y + h - 1) * 128 + c]));
                assert!((y..y + h).any(|r| strokes[r * 128 + x]) && (y..y + h).any(|r| strokes[r * 128 + x + w - 1]));
                // Digit height: 20 of 28 rows at a scale from 14 to 56 px.
                assert!((9..=41).contains(&h), "box height {h}");
                for &(_, [x2, y2, w2, h2]) in &s.boxes[k + 1..] {
                    let apart =
                        x2 as usize >= x + w || x2 as usize + w2 as usize <= x || y2 as usize >= y + h || y2 as usize + h2 as usize <= y;
                    assert!(apart, "boxes overlap");
                }
            }
        }
        assert!(counts[1] > 0 && counts[5] > 0, "1 to 5 digits: {counts:?}");
        assert_eq!(make_scenes(&src, &opts).unwrap(), scenes, "same seed, same scenes");
        assert_ne!(make_scenes(&src, &SceneOptions { seed: 4, ..opts }).unwrap(), scenes);
    }

    #[test]
    fn splits_draw_their_own_digits_and_write_coco() {
        let dir = std::env::temp_dir().join(format!("fovea-scenes-{}", std::process::id()));
        let (train_px, train_l) = fake(&[1, 1, 1]);
        let (test_px, test_l) = fake(&[7, 7]);
        let t = |v: Vec<u8>, n: usize| fovea_core::Tensor::from_vec(v, [n, 28, 28], fovea_core::Device::Cpu).unwrap();
        let l = |v: Vec<i64>| {
            let n = v.len();
            fovea_core::Tensor::from_vec(v, [n], fovea_core::Device::Cpu).unwrap()
        };
        let mnist = fovea_data::mnist::Split {
            train_images: t(train_px, 3),
            train_labels: l(train_l),
            test_images: t(test_px, 2),
            test_labels: l(test_l),
        };
        let opts = SceneOptions { count: 6, seed: 1, ..Default::default() };
        let train = write_mnist_scenes(&dir, SceneSplit::Train, &mnist, &opts).unwrap();
        let test = write_mnist_scenes(&dir, SceneSplit::Test, &mnist, &opts).unwrap();
        assert!(train.annotations.iter().all(|a| a.category_id == 1));
        assert!(test.annotations.iter().all(|a| a.category_id == 7));
        let back = CocoDataset::read(dir.join("instances_test.json")).unwrap();
        assert_eq!(back, test);
        assert_eq!(back.categories.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
        let png = std::fs::read(dir.join(&back.images[5].file_name)).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height(), img.color()), (128, 128, image::ColorType::L8));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_sources_are_errors() {
        let (px, labels) = fake(&[1, 2]);
        assert!(make_scenes(&DigitSource { images: &px[1..], labels: &labels, side: 28 }, &SceneOptions::default()).is_err());
        assert!(make_scenes(&DigitSource { images: &px, labels: &[1, 12], side: 28 }, &SceneOptions::default()).is_err());
        let big = SceneOptions { digit_size: (14, 200), ..Default::default() };
        assert!(make_scenes(&DigitSource { images: &px, labels: &labels, side: 28 }, &big).is_err());
    }
}
