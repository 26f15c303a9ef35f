//! `image_dataset_from_directory` on tiny PNG/JPEG trees written to a temporary directory:
//! class indices from sorted folder names, labels matched to pixels, Keras's validation-split
//! semantics, label and colour modes, and errors that name the option or the file.

use fovea_core::{DType, Device, Tensor};
use fovea_data::pipeline::Element;
use fovea_vision::datasets::{image_dataset_from_directory, ColorMode, ImageFolderOptions, LabelMode, Subset};
use fovea_vision::image::{encode_jpeg, encode_png};
use std::path::{Path, PathBuf};

/// The solid colour of each class: red cats, green dogs, blue zebras.
const COLOURS: [[u8; 3]; 3] = [[200, 0, 0], [0, 100, 0], [0, 0, 50]];

fn solid(rgb: [u8; 3], h: usize, w: usize) -> Tensor {
    Tensor::from_vec(rgb.iter().copied().cycle().take(h * w * 3).collect::<Vec<_>>(), vec![h, w, 3], Device::Cpu).unwrap()
}

/// cat: 3 PNGs (one in a nested folder) and a text file; dog: 2 PNGs; zebra: 1 PNG; a stray
/// file at the top level. Sizes differ so that resizing is exercised.
fn tree(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("fovea-imgdir-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (c, class) in ["cat", "dog", "zebra"].iter().enumerate() {
        std::fs::create_dir_all(root.join(class).join("more")).unwrap();
        let count = 3 - c;
        for i in 0..count {
            let sub = if c == 0 && i == 2 { "more/" } else { "" };
            let png = encode_png(&solid(COLOURS[c], 3 + i, 5)).unwrap();
            std::fs::write(root.join(class).join(format!("{sub}{i}.PNG")), png).unwrap();
        }
    }
    std::fs::write(root.join("cat/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("README"), "stray").unwrap();
    root
}

fn options() -> ImageFolderOptions {
    ImageFolderOptions { image_size: (4, 4), batch_size: Some(4), seed: Some(1), ..Default::default() }
}

fn pairs(e: &Element) -> (Tensor, Tensor) {
    (e.get(0).unwrap().tensor().unwrap().clone(), e.get(1).unwrap().tensor().unwrap().clone())
}

#[test]
fn folders_become_classes_and_every_image_keeps_its_label() {
    let root = tree("basic");
    let f = image_dataset_from_directory(&root, &options()).unwrap();
    assert_eq!(f.class_names, ["cat", "dog", "zebra"]);
    assert_eq!(f.file_paths.len(), 6);
    let mut sorted = f.labels.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 0, 0, 1, 1, 2]);
    let batches = f.dataset.collect().unwrap();
    assert_eq!(batches.len(), 2, "6 images in batches of 4: 4 + 2");
    let mut seen = 0;
    for b in &batches {
        let (x, y) = pairs(b);
        assert_eq!((x.dims()[1..].to_vec(), x.dtype(), y.dtype()), (vec![4, 4, 3], DType::F32, DType::I64));
        let px = x.to_vec::<f32>().unwrap();
        for (k, &label) in y.to_vec::<i64>().unwrap().iter().enumerate() {
            // A solid image resizes to the same solid colour, as float32 in [0, 255].
            let want: Vec<f32> = COLOURS[label as usize].iter().map(|&v| v as f32).cycle().take(48).collect();
            assert_eq!(&px[k * 48..(k + 1) * 48], &want[..]);
            seen += 1;
        }
    }
    assert_eq!(seen, 6);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn validation_split_takes_the_tail_of_the_seeded_shuffle() {
    let root = tree("split");
    let opts = |subset, seed| ImageFolderOptions { validation_split: Some(0.34), subset: Some(subset), seed: Some(seed), ..options() };
    let train = image_dataset_from_directory(&root, &opts(Subset::Training, 7)).unwrap();
    let val = image_dataset_from_directory(&root, &opts(Subset::Validation, 7)).unwrap();
    // int(0.34 * 6) = 2 validation files, as Keras counts them.
    assert_eq!((train.file_paths.len(), val.file_paths.len()), (4, 2));
    let mut all: Vec<&PathBuf> = train.file_paths.iter().chain(&val.file_paths).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6, "the subsets are disjoint and cover every file");
    let again = image_dataset_from_directory(&root, &opts(Subset::Validation, 7)).unwrap();
    assert_eq!(again.file_paths, val.file_paths);
    // Labels follow their files through the shuffle.
    for (p, &l) in val.file_paths.iter().zip(&val.labels) {
        assert!(p.starts_with(root.join(["cat", "dog", "zebra"][l as usize])));
    }
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn label_and_colour_modes_follow_keras() {
    let root = tree("modes");
    let base = ImageFolderOptions { shuffle: false, ..options() };
    let first = |o: ImageFolderOptions| image_dataset_from_directory(&root, &o).unwrap().dataset.collect().unwrap().remove(0);
    // Unshuffled, files come in class order: cat 0, 1, more/2, then dog 0, ...
    let (_, y) = pairs(&first(ImageFolderOptions { label_mode: LabelMode::Categorical, ..base.clone() }));
    assert_eq!(y.dims(), &[4, 3]);
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![1., 0., 0., 1., 0., 0., 1., 0., 0., 0., 1., 0.]);
    let images = first(ImageFolderOptions { label_mode: LabelMode::None, color_mode: ColorMode::Grayscale, ..base.clone() });
    let x = images.tensor().unwrap();
    assert_eq!(x.dims(), &[4, 4, 4, 1]);
    // libpng's luma of (200, 0, 0): (9797 · 200) >> 15 = 59.
    assert_eq!(x.to_vec::<f32>().unwrap()[0], 59.0);
    let rgba = first(ImageFolderOptions { label_mode: LabelMode::None, color_mode: ColorMode::Rgba, batch_size: None, ..base.clone() });
    assert_eq!(rgba.tensor().unwrap().to_vec::<f32>().unwrap()[..4], [200.0, 0.0, 0.0, 255.0]);
    // Binary labels with two classes chosen by name, in the order given.
    let two = ImageFolderOptions { label_mode: LabelMode::Binary, class_names: Some(vec!["dog".into(), "cat".into()]), ..base.clone() };
    let f = image_dataset_from_directory(&root, &two).unwrap();
    let (_, y) = pairs(&f.dataset.collect().unwrap()[0]);
    assert_eq!((y.dims(), y.to_vec::<f32>().unwrap()), (&[4, 1][..], vec![0., 0., 1., 1.]));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn same_size_images_keep_their_exact_pixels_and_jpegs_load() {
    let root = std::env::temp_dir().join(format!("fovea-imgdir-exact-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(root.join("b")).unwrap();
    let ramp = Tensor::from_vec((0..2 * 3 * 3).map(|v| (v * 14) as u8).collect::<Vec<_>>(), vec![2, 3, 3], Device::Cpu).unwrap();
    std::fs::write(root.join("a/ramp.png"), encode_png(&ramp).unwrap()).unwrap();
    std::fs::write(root.join("b/x.jpeg"), encode_jpeg(&solid([128, 128, 128], 8, 8), 95).unwrap()).unwrap();
    let o = ImageFolderOptions { image_size: (2, 3), shuffle: false, batch_size: None, ..Default::default() };
    let els = image_dataset_from_directory(&root, &o).unwrap().dataset.collect().unwrap();
    let (x, _) = pairs(&els[0]);
    assert_eq!(x.to_vec::<f32>().unwrap(), (0..18).map(|v| (v * 14) as f32).collect::<Vec<_>>());
    let (x, y) = pairs(&els[1]);
    assert_eq!((x.dims(), y.to_vec::<i64>().unwrap()), (&[2, 3, 3][..], vec![1]));
    assert!(x.to_vec::<f32>().unwrap().iter().all(|v| (v - 128.0).abs() <= 2.0), "a flat grey JPEG stays grey");
    std::fs::remove_dir_all(root).unwrap();
}

fn err(root: &Path, o: ImageFolderOptions) -> String {
    image_dataset_from_directory(root, &o).unwrap_err().to_string()
}

#[test]
fn bad_options_and_files_say_what_is_wrong() {
    let root = tree("errors");
    let e = err(&root, ImageFolderOptions { validation_split: Some(0.2), ..options() });
    assert!(e.starts_with("image_dataset_from_directory: validation_split and subset go together"), "{e}");
    let e = err(&root, ImageFolderOptions { validation_split: Some(0.2), subset: Some(Subset::Training), seed: None, ..options() });
    assert!(e.contains("give a seed"), "{e}");
    let e = err(&root, ImageFolderOptions { validation_split: Some(1.5), subset: Some(Subset::Training), ..options() });
    assert!(e.contains("validation_split must be between 0 and 1, received 1.5"), "{e}");
    let e = err(&root, ImageFolderOptions { label_mode: LabelMode::Binary, ..options() });
    assert!(e.contains("label_mode Binary needs exactly 2 classes, found 3"), "{e}");
    let e = err(&root, ImageFolderOptions { class_names: Some(vec!["cat".into(), "horse".into()]), ..options() });
    assert!(e.contains("\"horse\" is not one of [\"cat\", \"dog\", \"zebra\"]"), "{e}");
    let e = err(&root.join("dog/more"), options());
    assert!(e.contains("no images found in") && e.contains("dog/more"), "{e}");
    let e = err(&root.join("nowhere"), options());
    assert!(e.contains("nowhere"), "{e}");
    // A corrupt image is an Err item naming the file.
    std::fs::write(root.join("dog/1.PNG"), b"\x89PNG broken").unwrap();
    let o = ImageFolderOptions { shuffle: false, ..options() };
    let e = image_dataset_from_directory(&root, &o).unwrap().dataset.collect().unwrap_err().to_string();
    assert!(e.contains("dog/1.PNG") && e.contains("cannot decode"), "{e}");
    std::fs::remove_dir_all(root).unwrap();
}
