//! Training plots: learning curves from `fit`'s `History` and from `CsvLogger` files, the
//! confusion-matrix heat map and the prediction grid, as PNG and SVG files.

use fovea_core::{set_seed, DType, Device, Tensor};
use fovea_nn::callbacks::CsvLogger;
use fovea_nn::confusion::ConfusionMatrix;
use fovea_nn::layers::Dense;
use fovea_nn::losses::Loss;
use fovea_nn::model::{FitOptions, History, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use fovea_vision::plots::*;
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fovea-plots-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn history(pairs: &[(&str, &[f64])]) -> History {
    History { history: pairs.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect() }
}

fn keras_like() -> History {
    history(&[
        ("loss", &[1.2, 0.7, 0.5, 0.42, 0.38]),
        ("val_loss", &[1.0, 0.75, 0.6, 0.58, 0.6]),
        ("accuracy", &[0.55, 0.75, 0.83, 0.86, 0.88]),
        ("val_accuracy", &[0.6, 0.72, 0.79, 0.8, 0.8]),
    ])
}

fn decode(path: &Path) -> image::RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
}

/// Pixels of exactly `rgb` in columns `x0..x1`.
fn count(img: &image::RgbImage, rgb: [u8; 3], x0: u32, x1: u32) -> usize {
    img.enumerate_pixels().filter(|(x, _, p)| (x0..x1).contains(x) && p.0 == rgb).count()
}

/// The texts of an SVG's `<text>` elements (plotters writes each on a line of its own).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text").skip(1).map(|t| t.split_once('>').unwrap().1.split("</text>").next().unwrap().trim().to_string()).collect()
}

const TRAIN: [u8; 3] = [31, 119, 180];
const VAL: [u8; 3] = [255, 127, 14];

#[test]
fn history_curves_render_to_png_with_both_lines_in_each_panel() {
    let dir = temp_dir("png");
    let path = dir.join("curves.png");
    plot_history(&keras_like(), &path, &CurveOptions::default()).unwrap();
    let img = decode(&path);
    // Two panels (loss, accuracy) of 480×360 under a 40-pixel title band.
    assert_eq!(img.dimensions(), (960, 400));
    for (x0, x1) in [(0, 480), (480, 960)] {
        // Each panel has a 2-pixel training and validation line in the matplotlib colours.
        assert!(count(&img, TRAIN, x0, x1) > 100, "training line in columns {x0}..{x1}");
        assert!(count(&img, VAL, x0, x1) > 100, "validation line in columns {x0}..{x1}");
    }
    // Dark pixels of text and axes in the title band and both panels, on a white ground.
    let dark = |x0: u32, x1: u32, y0: u32, y1: u32| {
        img.enumerate_pixels().filter(|(x, y, p)| (x0..x1).contains(x) && (y0..y1).contains(y) && p.0.iter().all(|&c| c < 80)).count()
    };
    assert!(dark(300, 660, 0, 40) > 50, "title");
    assert!(dark(0, 480, 40, 400) > 500 && dark(480, 960, 40, 400) > 500, "axes and labels");
    assert_eq!(img.get_pixel(2, 2).0, [255, 255, 255]);
    // Writing went through a temporary file that is gone now.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["curves.png"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn history_curves_render_to_svg_with_labels_legend_and_titles() {
    let dir = temp_dir("svg");
    let path = dir.join("curves.svg");
    let options = CurveOptions { title: Some("LeNet-5 on MNIST".into()), metrics: Some(vec!["accuracy".into()]), panel_size: (400, 300) };
    plot_history(&keras_like(), &path, &options).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains(r#"width="400" height="340""#), "{}", &svg[..200]);
    let texts = svg_texts(&svg);
    for text in ["LeNet-5 on MNIST", "accuracy", "epoch", "training", "validation"] {
        assert!(texts.iter().any(|t| t == text), "{text} missing from {texts:?}");
    }
    // Only the chosen family: no loss panel.
    assert!(!texts.iter().any(|t| t == "loss"));
    // Epoch ticks are the whole numbers 1..=5 (half-way ticks stay blank).
    let ticks: Vec<&str> = texts.iter().map(String::as_str).filter(|t| t.len() == 1).collect();
    assert_eq!(ticks, ["1", "2", "3", "4", "5"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn csv_logs_from_fit_plot_exactly_like_the_history() {
    let dir = temp_dir("csv");
    set_seed(3);
    let m = Sequential::with_input_shape(&[3]);
    m.add(Dense::new(1)).unwrap();
    m.compile(Optimizer::sgd(0.05, 0.0, false), Loss::from_name("mse").unwrap(), &["mae"]).unwrap();
    let x = Tensor::random_uniform([40, 3], -1.0, 1.0, Some(1), Device::Cpu).unwrap();
    let y = x.sum(&[1], true).unwrap();
    let mut csv = CsvLogger::new(dir.join("log.csv"));
    let opts = FitOptions { epochs: 4, batch_size: 8, verbose: 0, validation_split: 0.25, seed: Some(0), ..Default::default() };
    let h = m.fit_with_callbacks(&x, &y, opts, &mut [&mut csv]).unwrap();
    // The CSV round-trips every value exactly.
    assert_eq!(read_csv_log(dir.join("log.csv")).unwrap().history, h.history);
    let o = CurveOptions::default();
    plot_history(&h, dir.join("h.svg"), &o).unwrap();
    plot_csv_log(dir.join("log.csv"), dir.join("c.svg"), &o).unwrap();
    let (a, b) = (std::fs::read_to_string(dir.join("h.svg")).unwrap(), std::fs::read_to_string(dir.join("c.svg")).unwrap());
    assert_eq!(a, b, "the CSV log and the History draw the same figure");
    // loss, mae and learning_rate: three panels in a row, the learning rate last.
    assert!(a.contains(r#"width="1440" height="400""#));
    let texts = svg_texts(&a);
    let at = |s: &str| texts.iter().position(|t| t == s).unwrap_or_else(|| panic!("{s} missing from {texts:?}"));
    assert!(at("loss") < at("mae") && at("mae") < at("learning_rate"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn csv_log_errors_name_the_file_and_line() {
    let dir = temp_dir("csv-errors");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let e = |p: PathBuf| read_csv_log(p).unwrap_err().to_string();
    let m = e(write("a.csv", "loss,accuracy\n0.5,0.7\n"));
    assert!(m.starts_with("read_csv_log: invalid argument: ") && m.contains("a.csv: expected a header starting with `epoch`"), "{m}");
    let m = e(write("b.csv", "epoch,loss\n0,0.5\n1,0.4,9\n"));
    assert!(m.contains("b.csv: line 3: expected 2 cells like the header, got 3"), "{m}");
    let m = e(write("c.csv", "epoch,loss\n0,fast\n"));
    assert!(m.contains("c.csv: line 2: column \"loss\" holds \"fast\", not a number"), "{m}");
    let m = e(write("d.csv", ""));
    assert!(m.contains("d.csv: the file is empty"), "{m}");
    let m = e(dir.join("missing.csv"));
    assert!(m.contains("missing.csv: cannot read the file"), "{m}");
    // Empty cells (a log that appeared late) read as NaN and are left out of the lines.
    let h = read_csv_log(write("e.csv", "epoch,loss,val_loss\n0,0.5,\n1,0.4,0.45\n")).unwrap();
    assert!(h.history["val_loss"][0].is_nan() && h.history["val_loss"][1] == 0.45);
    plot_csv_log(dir.join("e.csv"), dir.join("e.png"), &CurveOptions::default()).unwrap();
    // A header with no rows is an empty history.
    let m = plot_csv_log(write("f.csv", "epoch,loss\n"), dir.join("f.png"), &CurveOptions::default()).unwrap_err().to_string();
    assert!(m.starts_with("plot_csv_log: invalid argument: the history is empty"), "{m}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn curve_errors_say_what_was_expected() {
    let dir = temp_dir("curve-errors");
    let o = CurveOptions::default();
    let m = plot_history(&History::default(), dir.join("x.png"), &o).unwrap_err().to_string();
    assert_eq!(m, "plot_history: invalid argument: the history is empty: expected at least one epoch of logs, got none");
    let m = plot_history(&history(&[("loss", &[])]), dir.join("x.png"), &o).unwrap_err().to_string();
    assert!(m.contains("the history is empty"), "{m}");
    let bad = CurveOptions { metrics: Some(vec!["precision".into()]), ..o.clone() };
    let m = plot_history(&keras_like(), dir.join("x.png"), &bad).unwrap_err().to_string();
    assert_eq!(m, "plot_history: invalid argument: unknown metric \"precision\"; the logs have: loss, accuracy");
    let tiny = CurveOptions { panel_size: (50, 300), ..o.clone() };
    let m = plot_history(&keras_like(), dir.join("x.png"), &tiny).unwrap_err().to_string();
    assert!(m.contains("between 100×100 and 4000×4000, got 50×300"), "{m}");
    let m = plot_history(&keras_like(), dir.join("x.pdf"), &o).unwrap_err().to_string();
    assert!(m.contains("expected a path ending in .png or .svg, got ") && m.ends_with("x.pdf"), "{m}");
    let unwritable = dir.join("no/such/dir/x.png");
    let m = plot_history(&keras_like(), &unwritable, &o).unwrap_err().to_string();
    assert!(m.starts_with("plot_history: invalid argument: cannot write ") && m.contains("no/such/dir/x.png"), "{m}");
    // A failed write leaves nothing behind, an earlier file included.
    std::fs::write(dir.join("keep.png"), b"old").unwrap();
    let m = plot_history(&History::default(), dir.join("keep.png"), &o).unwrap_err().to_string();
    assert!(m.contains("empty"), "{m}");
    assert_eq!(std::fs::read(dir.join("keep.png")).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

fn three_class_matrix() -> ConfusionMatrix {
    // Class 0: 6 right, 2 taken for class 1; class 1: 5 right, 1 as class 2; class 2: 4 right.
    let (mut l, mut p) = (vec![0i64; 8], vec![0i64; 6]);
    p.extend([1, 1]);
    l.extend([1; 6]);
    p.extend([1, 1, 1, 1, 1, 2]);
    l.extend([2; 4]);
    p.extend([2; 4]);
    let mut m = ConfusionMatrix::new(3);
    m.update(&Tensor::from_vec(l, [18], Device::Cpu).unwrap(), &Tensor::from_vec(p, [18], Device::Cpu).unwrap()).unwrap();
    m
}

#[test]
fn confusion_matrix_prints_counts_or_fractions_with_class_names() {
    let dir = temp_dir("confusion");
    let m = three_class_matrix();
    let names = ["cat", "dog", "horse"];
    plot_confusion_matrix(&m, &names, dir.join("cm.svg"), &ConfusionOptions::default()).unwrap();
    let texts = svg_texts(&std::fs::read_to_string(dir.join("cm.svg")).unwrap());
    // Title, the counts row by row, class names (rows then columns), axis titles, bar ticks.
    let counts = ["6", "2", "0", "0", "5", "1", "0", "0", "4"];
    assert_eq!(texts[0], "Confusion matrix");
    assert_eq!(texts[1..10], counts);
    assert_eq!(texts[10..16], ["cat", "cat", "dog", "dog", "horse", "horse"]);
    assert_eq!(texts[16..18], ["Predicted label", "True label"]);
    assert_eq!(texts[18..], ["0", "2", "4", "6"]);
    let norm = ConfusionOptions { normalize: true, title: None };
    plot_confusion_matrix(&m, &names, dir.join("n.svg"), &norm).unwrap();
    let texts = svg_texts(&std::fs::read_to_string(dir.join("n.svg")).unwrap());
    // Row fractions: 6/8, 2/8; 5/6, 1/6; 4/4; the colour bar runs up to the largest, 1.
    assert_eq!(texts[0], "Confusion matrix (normalized)");
    assert_eq!(texts[1..10], ["0.75", "0.25", "0.00", "0.00", "0.83", "0.17", "0.00", "0.00", "1.00"]);
    assert_eq!(texts[18..], ["0.00", "0.20", "0.40", "0.60", "0.80", "1.00"]);
    plot_confusion_matrix(&m, &names, dir.join("cm.png"), &ConfusionOptions::default()).unwrap();
    let img = decode(&dir.join("cm.png"));
    // The diagonal cell with the largest count (6) takes the darkest blue of the map.
    assert!(img.pixels().any(|p| p.0 == [8, 48, 107]));
    assert!(img.width() > 3 * 80 && img.height() > 3 * 80);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn confusion_matrix_errors() {
    let dir = temp_dir("confusion-errors");
    let o = ConfusionOptions::default();
    let m = plot_confusion_matrix(&three_class_matrix(), &["a", "b"], dir.join("x.png"), &o).unwrap_err().to_string();
    assert_eq!(m, "plot_confusion_matrix: invalid argument: expected no class names or one per class (3), got 2");
    let m = plot_confusion_matrix(&ConfusionMatrix::new(0), &[], dir.join("x.png"), &o).unwrap_err().to_string();
    assert!(m.contains("at least one class, got 0"), "{m}");
    let m = plot_confusion_matrix(&three_class_matrix(), &[], dir.join("gone/x.svg"), &o).unwrap_err().to_string();
    assert!(m.starts_with("plot_confusion_matrix: invalid argument: cannot write ") && m.contains("gone/x.svg"), "{m}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Four 8×8 grey squares of increasing brightness.
fn squares() -> Tensor {
    let data: Vec<f32> = (0..4).flat_map(|k| vec![k as f32 / 3.0; 64]).collect();
    Tensor::from_vec(data, vec![4, 8, 8, 1], Device::Cpu).unwrap()
}

#[test]
fn prediction_grid_frames_the_mistakes() {
    let dir = temp_dir("grid");
    let labels = Tensor::from_vec(vec![0i64, 1, 2, 1], [4], Device::Cpu).unwrap();
    let preds = Tensor::from_vec(vec![0i64, 2, 2, 1], [4], Device::Cpu).unwrap();
    let path = dir.join("grid.png");
    plot_predictions(&path, &squares(), &labels, &preds, &["zero", "one", "two"], 2).unwrap();
    let img = decode(&path);
    // 8-pixel images magnified 12× to 96; cells (96 → 110) + 16 wide, 96 + 16 + 38 tall.
    assert_eq!(img.dimensions(), (2 * 126, 40 + 2 * 150));
    // Image 3 (white, row 1 col 1) sits centred in its cell, magnified whole.
    let (x3, y3) = (126 + (126 - 96) / 2, 40 + 150 + 8);
    assert_eq!(img.get_pixel(x3, y3).0, [255; 3]);
    assert_eq!(img.get_pixel(x3 + 95, y3 + 95).0, [255; 3]);
    // Image 1 (one third grey) is wrong: red frame just outside it; image 0 is right: no frame.
    let (x1, y1) = (126 + 15, 40 + 8);
    assert_eq!(img.get_pixel(x1, y1).0, [85; 3]);
    assert_eq!(img.get_pixel(x1 - 2, y1 - 2).0, [214, 39, 40]);
    assert_eq!(img.get_pixel(15 - 2, 40 + 8 - 2).0, [255; 3]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn prediction_grid_errors() {
    let dir = temp_dir("grid-errors");
    let l = Tensor::from_vec(vec![0i64, 1, 2, 1], [4], Device::Cpu).unwrap();
    let p = dir.join("g.png");
    let e = |imgs: &Tensor, labels: &Tensor, names: &[&str], cols: usize, path: &Path| {
        plot_predictions(path, imgs, labels, labels, names, cols).unwrap_err().to_string()
    };
    let m = e(&squares(), &l, &[], 2, &dir.join("g.svg"));
    assert!(m.contains("expected a path ending in .png (the grid holds pixels), got ") && m.ends_with("g.svg"), "{m}");
    let m = e(&squares().reshape(&[4, 64]).unwrap(), &l, &[], 2, &p);
    assert!(m.contains("plot_predictions") && m.contains("rank 4") && m.contains("[4, 64]"), "{m}");
    let m = e(&squares(), &l.narrow(0, 0, 3).unwrap(), &[], 2, &p);
    assert!(m.contains("expected 4 labels, one per image, got 3"), "{m}");
    let m = e(&squares(), &l, &["a", "b"], 2, &p);
    assert!(m.contains("labels: class 2 is outside 0..2"), "{m}");
    let m = e(&squares(), &l, &[], 0, &p);
    assert!(m.contains("expected cols >= 1"), "{m}");
    let ints = Tensor::zeros(vec![4, 8, 8, 1], DType::I64, Device::Cpu).unwrap();
    let m = e(&ints, &l, &[], 2, &p);
    assert!(m.contains("float32 or uint8 images") && m.contains("int64"), "{m}");
    let m = e(&squares(), &l, &[], 2, &dir.join("nope/g.png"));
    assert!(m.starts_with("plot_predictions: invalid argument: cannot write ") && m.contains("nope/g.png"), "{m}");
    std::fs::remove_dir_all(dir).unwrap();
}
