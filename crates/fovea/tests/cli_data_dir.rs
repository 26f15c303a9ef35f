//! `fovea train MODEL --data DIR` end to end on a generated image folder: Keras's "Found N
//! files" lines, a validation accuracy an easy task must reach, the saved model classifying
//! new images in `fovea predict`, `--augment`, and one clear error per bad input.

use fovea::core::{Device, Tensor};
use fovea::vision::image::encode_png;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fovea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fovea")).args(args).output().expect("run fovea");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The classes: a bright 8×8 square at the top, the middle or the bottom of a dark 28×28
/// picture. Placed on the vertical centre line, so a horizontal flip keeps the class.
const CLASSES: [&str; 3] = ["a_top", "b_middle", "c_bottom"];
const ROWS: [usize; 3] = [2, 10, 18];

/// One picture of class `c`, its square moved by up to ±2 pixels by `i`, with faint texture.
fn picture(c: usize, i: usize) -> Tensor {
    let (dy, dx) = ((i % 5) as isize - 2, ((i / 5) % 5) as isize - 2);
    let mut px = vec![0u8; 28 * 28 * 3];
    for y in 0..28 {
        for x in 0..28 {
            let inside = (0..8).contains(&(y as isize - ROWS[c] as isize - dy)) && (0..8).contains(&(x as isize - 10 - dx));
            let v = if inside { 230 } else { ((x * 7 + y * 13 + i * 3) % 40) as u8 };
            px[(y * 28 + x) * 3..][..3].copy_from_slice(&[v, v, v]);
        }
    }
    Tensor::from_vec(px, vec![28, 28, 3], Device::Cpu).unwrap()
}

fn folder(name: &str, per_class: usize) -> PathBuf {
    let root = std::env::temp_dir().join(format!("fovea-datadir-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (c, class) in CLASSES.iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..per_class {
            std::fs::write(root.join(class).join(format!("{i}.png")), encode_png(&picture(c, i)).unwrap()).unwrap();
        }
    }
    root
}

fn number_after(text: &str, key: &str) -> f64 {
    let tail = text.split(key).nth(1).unwrap_or_else(|| panic!("no {key:?} in {text}"));
    tail.split_whitespace().next().unwrap().parse().unwrap()
}

/// The class `fovea predict` puts first for `image`.
fn predicted(model: &Path, image: &Path) -> usize {
    let (ok, out, err) = fovea(&["predict", model.to_str().unwrap(), image.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let line = out.lines().find(|l| l.starts_with(image.to_str().unwrap())).unwrap_or_else(|| panic!("no prediction in {out}"));
    line.rsplit_once(": ").unwrap().1.split_whitespace().next().unwrap().parse().unwrap()
}

/// Fresh pictures (offsets the folder does not hold) for `predict`.
fn fresh_images(dir: &Path) -> Vec<(usize, PathBuf)> {
    (0..3)
        .map(|c| {
            let path = dir.join(format!("new_{c}.png"));
            std::fs::write(&path, encode_png(&picture(c, 7 + 40)).unwrap()).unwrap();
            (c, path)
        })
        .collect()
}

#[test]
fn a_class_folder_trains_lenet5_and_the_saved_model_predicts_new_images() {
    let root = folder("train", 40);
    let out_dir = root.with_extension("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let model = out_dir.join("m.safetensors");
    let data = root.to_str().unwrap();
    let args = [
        "train",
        "lenet5",
        "--data",
        data,
        "--color-mode",
        "grayscale",
        "--validation-split",
        "0.25",
        "--epochs",
        "4",
        "--batch-size",
        "8",
    ];
    let (ok, out, err) = fovea(&[&args[..], &["--verbose", "2", "-o", model.to_str().unwrap()]].concat());
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Found 120 files belonging to 3 classes."), "{out}");
    assert!(out.contains("Using 90 files for training.") && out.contains("Using 30 files for validation."), "{out}");
    assert!(out.contains("Classes: 0 a_top, 1 b_middle, 2 c_bottom"), "{out}");
    assert!(out.contains("Training lenet5 on 90 ") && out.contains("(30 more held out for validation)"), "{out}");
    // 28×28 (lenet5's canonical size) grey: 61,111 weights for 3 classes.
    assert!(out.contains("Total params: 61,111"), "{out}");
    assert!(!out.contains("Test accuracy"), "a folder has no test split: {out}");
    // Chance is 1/3; the squares are 8 rows apart, so the task is easy when training works.
    let val = number_after(&out, "Validation accuracy: ");
    eprintln!("--data: validation accuracy {val}");
    assert!(val > 0.9, "validation accuracy {val}\n{out}");
    for (c, image) in fresh_images(&out_dir) {
        assert_eq!(predicted(&model, &image), c, "{}", image.display());
    }
    // The same seed holds out the same files: the run is reproducible.
    let (ok, again, err) = fovea(&[&args[..], &["--verbose", "0"]].concat());
    assert!(ok, "{err}");
    assert_eq!(number_after(&again, "Validation accuracy: "), val);
    std::fs::remove_dir_all(root).unwrap();
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn augment_puts_keras_layers_in_front_and_the_saved_model_predicts() {
    let root = folder("augment", 40);
    let out_dir = root.with_extension("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let model = out_dir.join("aug.safetensors");
    let (ok, out, err) = fovea(&[
        "train",
        "lenet5",
        "--data",
        root.to_str().unwrap(),
        "--augment",
        "--validation-split",
        "0.25",
        "--epochs",
        "6",
        "--batch-size",
        "8",
        "--verbose",
        "2",
        "-o",
        model.to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    for layer in ["(RandomFlip)", "(RandomRotation)", "(RandomZoom)", "(RandomContrast)"] {
        assert!(out.contains(layer), "{layer} missing from the summary:\n{out}");
    }
    assert!(out.contains("Total params: 61,411"), "28×28 rgb by default, as Keras: {out}");
    let val = number_after(&out, "Validation accuracy: ");
    eprintln!("--data --augment: validation accuracy {val}");
    assert!(val > 0.8, "validation accuracy {val}\n{out}");
    // At prediction the augmentation layers pass images through: the saved model loads and
    // classifies clean images.
    for (c, image) in fresh_images(&out_dir) {
        assert_eq!(predicted(&model, &image), c, "{}", image.display());
    }
    std::fs::remove_dir_all(root).unwrap();
    std::fs::remove_dir_all(out_dir).unwrap();
}

/// Fails with an `error:` first line holding `expected`, never a panic.
fn fails_with(args: &[&str], expected: &str) {
    let (ok, out, err) = fovea(args);
    assert!(!ok, "{args:?} succeeded: {out}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let first = err.lines().next().unwrap_or("");
    assert!(first.starts_with("error:") && first.contains(expected), "{args:?}: expected {expected:?} in the first line of {err}");
}

#[test]
fn bad_folders_and_flags_give_one_clear_error() {
    let base = std::env::temp_dir().join(format!("fovea-datadir-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (missing, empty, flat, corrupt) = (base.join("missing"), base.join("empty"), base.join("flat"), base.join("corrupt"));
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::create_dir_all(&flat).unwrap();
    std::fs::write(flat.join("0.png"), encode_png(&picture(0, 0)).unwrap()).unwrap();
    for class in ["a", "b"] {
        std::fs::create_dir_all(corrupt.join(class)).unwrap();
        std::fs::write(corrupt.join(class).join("0.png"), encode_png(&picture(0, 0)).unwrap()).unwrap();
    }
    std::fs::write(corrupt.join("b/broken.png"), b"\x89PNG not really").unwrap();
    let p = |d: &Path| d.to_str().unwrap().to_string();
    let train = |dir: &Path, extra: &[&str]| {
        let mut a = vec!["train".to_string(), "lenet5".into(), "--data".into(), p(dir), "--epochs".into(), "1".into()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |args: Vec<String>, expected: &str| fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), expected);
    run(train(&missing, &[]), &format!("--data {}", missing.display()));
    run(train(&empty, &[]), "no class sub-folders");
    run(train(&flat, &[]), "no class sub-folders");
    run(train(&corrupt, &["--validation-split", "0.5"]), "broken.png");
    run(train(&corrupt, &["--image-size", "0x0"]), "\"0x0\"");
    run(train(&corrupt, &["--image-size", "28"]), "expected two positive sizes HxW");
    run(train(&corrupt, &["--image-size", "8x8"]), "lenet5 needs images of at least 12x12, received --image-size 8x8");
    let mut fashion = train(&corrupt, &["--image-size", "6x6"]);
    fashion[1] = "fashion-cnn".into();
    run(fashion, "fashion-cnn needs images of at least 8x8, received --image-size 6x6");
    run(train(&corrupt, &["--dataset", "mnist"]), "cannot be used with");
    run(train(&corrupt, &["--validation-split", "1.5"]), "--validation-split must be in [0, 1)");
    // The split leaves no validation file among three.
    run(train(&corrupt, &["--validation-split", "0.1"]), "Validation subset empty");
    fails_with(&["train", "lenet5", "--image-size", "32x32"], "required arguments were not provided");
    std::fs::remove_dir_all(base).unwrap();
}

/// `folder`'s pictures under other class names (or fewer classes).
fn renamed_folder(name: &str, classes: &[&str], per_class: usize) -> PathBuf {
    let root = std::env::temp_dir().join(format!("fovea-datadir-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (c, class) in classes.iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..per_class {
            std::fs::write(root.join(class).join(format!("{i}.png")), encode_png(&picture(c, i)).unwrap()).unwrap();
        }
    }
    root
}

#[test]
fn evaluate_reads_a_class_folder_and_the_model_file_keeps_its_class_names() {
    let root = folder("evaluate", 40);
    let out_dir = root.with_extension("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let model = out_dir.join("m.safetensors");
    let (m, data) = (model.to_str().unwrap(), root.to_str().unwrap());
    let train = ["train", "lenet5", "--data", data, "--color-mode", "grayscale", "--validation-split", "0.25", "--epochs", "4"];
    let (ok, out, err) = fovea(&[&train[..], &["--batch-size", "8", "--verbose", "0", "-o", m]].concat());
    assert!(ok, "{out}\n{err}");
    let val = number_after(&out, "Validation accuracy: ");
    // The whole folder (training and validation files): Keras's line, then the test metrics.
    let (ok, out, err) = fovea(&["evaluate", m, "--data", data]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Found 120 files belonging to 3 classes."), "{out}");
    let (loss, acc) = (number_after(&out, "Test loss: "), number_after(&out, "Test accuracy: "));
    eprintln!("evaluate --data: loss {loss}, accuracy {acc} (validation accuracy {val})");
    assert!(acc > 0.9 && loss.is_finite() && loss < 1.0, "loss {loss}, accuracy {acc}\n{out}");
    // predict names the class beside its index, from the model file.
    for (c, image) in fresh_images(&out_dir) {
        let (ok, out, err) = fovea(&["predict", m, image.to_str().unwrap()]);
        assert!(ok, "{err}");
        let line = out.lines().find(|l| l.starts_with(image.to_str().unwrap())).unwrap();
        let first = line.rsplit_once(": ").unwrap().1;
        assert!(first.starts_with(&format!("{c} {} (", CLASSES[c])), "{line}");
    }
    // The same pictures under other names: refused, naming both lists.
    let renamed = renamed_folder("evaluate-renamed", &["x_top", "y_middle", "z_bottom"], 2);
    let (ok, out, err) = fovea(&["evaluate", m, "--data", renamed.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        err.contains(&format!("{m} was trained on the classes [\"a_top\", \"b_middle\", \"c_bottom\"]"))
            && err.contains("holds the classes [\"x_top\", \"y_middle\", \"z_bottom\"]"),
        "{err}"
    );
    // A model file without class names: the number of classes is checked against its output.
    let fresh = out_dir.join("fresh.safetensors");
    let (ok, _, err) = fovea(&["create", "lenet5", "--classes", "3", "--input-shape", "28x28x1", "-o", fresh.to_str().unwrap()]);
    assert!(ok, "{err}");
    let two = renamed_folder("evaluate-two", &["a_top", "b_middle"], 2);
    let (ok, out, err) = fovea(&["evaluate", fresh.to_str().unwrap(), "--data", two.to_str().unwrap()]);
    assert!(!ok && err.contains(&format!("outputs 3 classes but {} holds 2 class folders", two.display())), "{out}\n{err}");
    let (ok, out, err) = fovea(&["evaluate", fresh.to_str().unwrap(), "--data", data]);
    assert!(ok && out.contains("Test accuracy: "), "{out}\n{err}");
    fails_with(&["evaluate", m, "--data", data, "--color-mode", "rgb"], "takes 1-channel images, not --color-mode rgb");
    fails_with(&["evaluate", m, "--data", data, "--image-size", "32x32"], "takes 28x28 images, not --image-size 32x32");
    fails_with(&["evaluate", m, "--data", data, "--dataset", "mnist"], "cannot be used with");
    fails_with(&["evaluate", m, "--image-size", "28x28"], "required arguments were not provided");
    fails_with(&["evaluate", m, "--data", out_dir.to_str().unwrap()], "no class sub-folders");
    for dir in [root, out_dir, renamed, two] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_functional_model_file_resumes_on_a_folder_and_keeps_training() {
    let root = folder("functional", 4);
    let out_dir = root.with_extension("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let (created, trained) = (out_dir.join("f.safetensors"), out_dir.join("f2.safetensors"));
    let (f, f2, data) = (created.to_str().unwrap(), trained.to_str().unwrap(), root.to_str().unwrap());
    let (ok, _, err) = fovea(&["create", "resnet20", "--classes", "3", "--input-shape", "16x16x3", "-o", f]);
    assert!(ok, "{err}");
    // The folder's images take the file's input size and channels (16x16 rgb) by default.
    let resume = ["train", "--data", data, "--validation-split", "0.25", "--epochs", "1", "--batch-size", "3", "--verbose", "2"];
    let (ok, out, err) = fovea(&[&resume[..], &["--resume", f, "-o", f2]].concat());
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Found 12 files belonging to 3 classes."), "{out}");
    assert!(out.contains(&format!("Training {f} on 9 ")) && out.contains("Epoch 1/1"), "{out}");
    assert!(
        out.contains("Validation accuracy: ") && out.contains(&format!("Saved the model (architecture, weights, optimizer state) to {f2}"))
    );
    assert_ne!(std::fs::read(&created).unwrap(), std::fs::read(&trained).unwrap(), "training changed nothing");
    // The saved file is functional, compiled, and names the folder's classes.
    let image = &fresh_images(&out_dir)[0].1;
    let (ok, out, err) = fovea(&["predict", f2, image.to_str().unwrap(), "--top-k", "3"]);
    assert!(ok, "{err}");
    for (c, name) in CLASSES.iter().enumerate() {
        assert!(out.lines().any(|l| l.trim_start().starts_with(&format!("{c} {name} "))), "{out}");
    }
    let (ok, out, err) = fovea(&["evaluate", f2, "--data", data]);
    assert!(ok && out.contains("Found 12 files belonging to 3 classes.") && out.contains("Test accuracy: "), "{out}\n{err}");
    // Resumed again (with its optimizer state), and refused on other classes or image sizes.
    let (ok, out, err) = fovea(&[&resume[..], &["--resume", f2]].concat());
    assert!(ok && out.contains(&format!("Training {f2} on 9 ")), "{out}\n{err}");
    let renamed = renamed_folder("functional-renamed", &["p", "q", "r"], 4);
    // Refused before any image is decoded: a broken one would otherwise be the error.
    std::fs::write(renamed.join("p/broken.png"), b"\x89PNG not really").unwrap();
    let mut other = resume.to_vec();
    other[2] = renamed.to_str().unwrap();
    fails_with(&[&other[..], &["--resume", f2]].concat(), "was trained on the classes [\"a_top\", \"b_middle\", \"c_bottom\"]");
    fails_with(&[&resume[..], &["--resume", f, "--image-size", "28x28"]].concat(), "takes (16, 16, 3) inputs but");
    for dir in [root, out_dir, renamed] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
