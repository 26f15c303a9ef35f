//! The `fovea` command end to end: summary, a short training run that saves weights,
//! evaluation of those weights, and clear failures for bad flags and files.

use std::process::Command;

fn fovea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fovea")).args(args).output().expect("run fovea");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn summary_prints_the_keras_table() {
    let (ok, out, _) = fovea(&["summary", "lenet5"]);
    assert!(ok);
    assert!(out.contains("│ conv2d (Conv2D)") && out.contains("Total params: 61,706 (241.04 KB)"), "{out}");
    let (ok, out, err) = fovea(&["summary", "resnet50"]);
    assert!(ok && out.contains("Total params: 25,636,712"), "{out}{err}");
    let (ok, out, err) = fovea(&["summary", "mobilenet_v2", "--no-top", "--input-shape", "96x96x3"]);
    assert!(ok && out.contains("Total params: 2,257,984"), "{out}{err}");
    // The Sequential zoo models honour --classes and --no-top too: 84·100 + 100 weights in the
    // last layer instead of 850; without the top, only the two convolutions (156 + 2,416).
    let (ok, out, err) = fovea(&["summary", "lenet5", "--classes", "100"]);
    assert!(ok && out.contains("(None, 100)") && out.contains("Total params: 69,356"), "{out}{err}");
    // VGG-16's ≈ 15.47 G multiply-accumulates per image (conv 15.35 G + FC 0.12 G), the seeds'
    // number; its first convolution is the 86,704,128 of their worked example.
    let (ok, out, err) = fovea(&["summary", "vgg16", "--flops"]);
    assert!(ok && out.contains("Total MACs per image: 15,470,264,320 (15.47 G)"), "{out}{err}");
    // The Keras table with a MACs column: parameters, then multiply-accumulates per image.
    assert!(out.lines().any(|l| l.contains("block1_conv1 (Conv2D)") && l.contains("1,792") && l.contains("86,704,128")), "{out}");
    assert!(out.contains("Total params: 138,357,544"), "{out}");
    let (ok, out, err) = fovea(&["summary", "lenet5", "--no-top"]);
    assert!(ok && !out.contains("Dense") && out.contains("Total params: 2,572"), "{out}{err}");
}

#[test]
fn train_saves_weights_that_evaluate_reproduces() {
    let dir = std::env::temp_dir().join(format!("fovea-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join("lenet5.safetensors");
    let w = weights.to_str().unwrap();
    let (ok, out, err) = fovea(&["train", "lenet5", "--epochs", "1", "--limit", "3000", "--verbose", "2", "-o", w]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Epoch 1/1") && out.contains("val_accuracy"), "{out}");
    let acc = |text: &str| -> f64 {
        let tail = text.split("Test accuracy: ").nth(1).unwrap_or_else(|| panic!("no test accuracy in {text}"));
        tail.split_whitespace().next().unwrap().parse().unwrap()
    };
    let trained = acc(&out);
    // The run is seeded: one epoch on 2,700 images gives test accuracy 0.8191 with 1 or 2
    // threads. The margin covers other CPUs' float rounding, not a training regression.
    assert!((trained - 0.8191).abs() < 0.03, "test accuracy {trained}, reference 0.8191");
    let (ok, eval_out, err) = fovea(&["evaluate", w]);
    assert!(ok, "{err}");
    assert_eq!(acc(&eval_out), trained, "evaluate must reproduce the accuracy of the saved weights");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn segmentation_and_book_models_are_in_the_zoo_commands() {
    // The small U-Net of the MNIST scenes, as Keras counts it (crates/fovea-vision/tests/segmentation.rs).
    let (ok, out, err) = fovea(&["summary", "unet_small"]);
    assert!(ok && out.contains("Total params: 484,027"), "{out}{err}");
    let (ok, out, err) = fovea(&["models", "unet_small", "segnet"]);
    assert!(ok, "{err}");
    let row = out.lines().find(|l| l.starts_with("unet_small ")).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("128x128x1") && row.contains("484,027"), "{row}");
    assert!(out.lines().any(|l| l.starts_with("segnet ") && l.contains("224x224x3")), "{out}");
    // The seeds' reference CNNs (SPEC §2.2).
    let (ok, out, err) = fovea(&["summary", "mnist_cnn"]);
    assert!(ok && out.contains("Total params: 3,274,634"), "{out}{err}");
    let (ok, out, err) = fovea(&["summary", "cifar10_cnn"]);
    assert!(ok && out.contains("Total params: 233,130"), "{out}{err}");
    // The fixed-size book models and torchvision's VGG-11/13 (SPEC §2.2's counts).
    for (name, total) in [
        ("lenet5_original", "60,840"),
        ("localization_cnn", "296,933"),
        ("inception_block_a", "317,024"),
        ("vgg11", "132,863,336"),
        ("vgg13", "133,047,848"),
    ] {
        let (ok, out, err) = fovea(&["summary", name]);
        assert!(ok && out.contains(&format!("Total params: {total}")), "{name}: {out}{err}");
    }
    let (ok, _, err) = fovea(&["summary", "inception_block_a", "--classes", "3"]);
    assert!(!ok && err.contains("inception_block_a is the book's fixed model on 35x35x384 inputs"), "{err}");
    let (ok, _, err) = fovea(&["summary", "mnist_cnn", "--input-shape", "32x32x3"]);
    assert!(!ok && err.contains("mnist_cnn is the book's model for 28x28x1 inputs"), "{err}");
    let (ok, _, err) = fovea(&["summary", "unet_small", "--no-top"]);
    assert!(!ok && err.contains("unet_small is a segmentation model"), "{err}");
}

#[test]
fn bad_input_fails_with_one_clear_line() {
    let (ok, _, err) = fovea(&["train", "--epochs", "many"]);
    assert!(!ok && err.contains("invalid value 'many' for '--epochs"), "{err}");
    let (ok, _, err) = fovea(&["train", "--optimizer", "lion", "--limit", "10"]);
    assert!(!ok && err.contains("unknown optimizer \"lion\""), "{err}");
    let (ok, _, err) = fovea(&["evaluate", "/nonexistent/w.safetensors"]);
    assert!(!ok && err.starts_with("error: ") && err.contains("/nonexistent/w.safetensors"), "{err}");
    let (ok, _, err) = fovea(&["summary", "resnet999"]);
    assert!(!ok && err.contains("unknown model \"resnet999\"") && err.contains("mobilenet_v2"), "{err}");
    let (ok, _, err) = fovea(&["summary", "resnet50", "--input-shape", "224x224"]);
    assert!(!ok && err.contains("expected three positive sizes HxWxC") && err.contains("\"224x224\""), "{err}");
}

#[cfg(not(feature = "distributed"))]
#[test]
fn distributed_training_in_a_build_without_mpi_says_how_to_get_it() {
    let (ok, out, err) = fovea(&["train", "--distributed", "--limit", "10"]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("--features distributed") && err.contains("mpirun -np N"), "{err}");
}

/// Runs `fovea` with `FOVEA_DATA_DIR` pointing at `data`, so nothing is fetched from the network.
fn fovea_in(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fovea")).env("FOVEA_DATA_DIR", data).args(args).output().expect("run fovea");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("fovea-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for &d in dims {
        v.extend((d as u32).to_be_bytes());
    }
    v.extend(data);
    v
}

/// A tiny Fashion-MNIST in the MNIST layout: image i has label i % 10 and a bright 6×6 square
/// whose position depends on the label.
fn fake_fashion_mnist(root: &std::path::Path, train: usize, test: usize) -> Vec<u8> {
    let dir = root.join("fashion-mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let image = |label: usize| -> Vec<u8> {
        let mut px = vec![0u8; 784];
        let (r0, c0) = (2 + 8 * (label / 4), 2 + 7 * (label % 4));
        for r in r0..r0 + 6 {
            for c in c0..c0 + 6 {
                px[r * 28 + c] = 255;
            }
        }
        px
    };
    for (n, images, labels) in
        [(train, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"), (test, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    {
        let ls: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let px: Vec<u8> = ls.iter().flat_map(|&l| image(l as usize)).collect();
        std::fs::write(dir.join(images), idx(&[n, 28, 28], &px)).unwrap();
        std::fs::write(dir.join(labels), idx(&[n], &ls)).unwrap();
    }
    image(0)
}

#[test]
fn fashion_mnist_in_the_data_dir_trains_evaluates_and_predicts() {
    let root = temp_dir("fashion");
    let first_test_image = fake_fashion_mnist(&root, 40, 10);
    let (ok, out, err) = fovea_in(&root, &["data", "info", "fashion-mnist"]);
    assert!(ok, "{err}");
    assert!(out.contains("train: images [40, 28, 28] uint8, labels [40] int64, per class [4, 4, 4, 4, 4, 4, 4, 4, 4, 4]"), "{out}");
    assert!(out.contains("test: images [10, 28, 28] uint8") && out.contains("t10k-labels-idx1-ubyte (18 bytes)"), "{out}");

    let model = root.join("m.safetensors");
    let m = model.to_str().unwrap();
    let (ok, out, err) = fovea_in(&root, &["train", "lenet5", "--dataset", "fashion-mnist", "--epochs", "1", "--verbose", "0", "-o", m]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Test accuracy: ") && out.contains("Saved the model"), "{out}");
    let (ok, eval, err) = fovea_in(&root, &["evaluate", m, "--dataset", "fashion-mnist"]);
    assert!(ok, "{err}");
    let line = |text: &str, prefix: &str| {
        text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {text}")).to_string()
    };
    assert_eq!(line(&eval, "Test loss"), line(&out, "Test loss"), "evaluate reproduces the test metrics of the saved model");

    let (ok, pred, err) = fovea_in(&root, &["predict", m, "--dataset", "fashion-mnist", "--limit", "3", "--top-k", "2"]);
    assert!(ok, "{err}");
    let first = line(&pred, "fashion-mnist test image 0 [label 0 T-shirt/top]: ");
    assert!(
        pred.contains("fashion-mnist test image 2 [label 2 Pullover]: ") && pred.contains("Top-1 accuracy on these 3 images: "),
        "{pred}"
    );
    let probs: Vec<f32> = first.split('(').skip(1).map(|p| p.split(')').next().unwrap().parse().unwrap()).collect();
    assert_eq!(probs.len(), 2);
    assert!(probs[0] >= probs[1] && probs[0] + probs[1] <= 1.0001, "{first}");

    // The same image as a PNG file gives the same classes and probabilities.
    let png = root.join("item.png");
    let img = fovea::core::Tensor::from_vec(first_test_image, vec![28, 28, 1], fovea::core::Device::Cpu).unwrap();
    std::fs::write(&png, fovea::vision::image::encode_png(&img).unwrap()).unwrap();
    let (ok, from_png, err) = fovea_in(&root, &["predict", m, png.to_str().unwrap(), "--dataset", "fashion-mnist", "--top-k", "2"]);
    assert!(ok, "{err}");
    let tail = |l: &str| l.split("]: ").nth(1).or_else(|| l.split(".png: ").nth(1)).unwrap().to_string();
    assert_eq!(tail(from_png.trim()), tail(&first), "{from_png}");

    let (ok, _, err) = fovea_in(&root, &["predict", m]);
    assert!(!ok && err.trim() == "error: give image files to classify, or --dataset NAME for its test images", "{err}");
    let (ok, _, err) = fovea_in(&root, &["predict", m, "--dataset", "fashion-mnist", "--top-k", "0"]);
    assert!(!ok && err.contains("--top-k must be at least 1"), "{err}");
    let (ok, _, err) = fovea_in(&root, &["predict", m, "/nonexistent/cat.png"]);
    assert!(!ok && err.starts_with("error: /nonexistent/cat.png: "), "{err}");
    let (ok, _, err) = fovea_in(&root, &["predict", m, "--dataset", "cifar10"]);
    assert!(!ok && err.contains("takes (28, 28, 1) inputs but cifar10 images are (32, 32, 3)"), "{err}");
    // Resuming a Fashion-MNIST model on CIFAR-10 images is refused before any training step.
    let cifar = root.join("cifar10");
    std::fs::create_dir_all(&cifar).unwrap();
    for b in 1..=5 {
        std::fs::write(cifar.join(format!("data_batch_{b}.bin")), cifar_record(b)).unwrap();
    }
    std::fs::write(cifar.join("test_batch.bin"), cifar_record(9)).unwrap();
    let (ok, out, err) = fovea_in(&root, &["train", "--resume", m, "--dataset", "cifar10", "--epochs", "1"]);
    assert!(!ok && err.contains(&format!("{m} takes (28, 28, 1) inputs but cifar10 images are (32, 32, 3)")), "{out}\n{err}");
    assert!(!out.contains("Epoch"), "{out}");
    std::fs::remove_dir_all(root).unwrap();
}

fn cifar_record(label: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend((0..3072).map(|i| (i % 251) as u8));
    r
}

#[test]
fn a_functional_zoo_file_resumes_on_a_dataset_and_is_saved_functional() {
    let root = temp_dir("resume-functional");
    let cifar = root.join("cifar10");
    std::fs::create_dir_all(&cifar).unwrap();
    for b in 1..=5 {
        std::fs::write(cifar.join(format!("data_batch_{b}.bin")), [cifar_record(b), cifar_record(b + 1)].concat()).unwrap();
    }
    std::fs::write(cifar.join("test_batch.bin"), [cifar_record(9), cifar_record(3)].concat()).unwrap();
    let (created, trained) = (root.join("f.safetensors"), root.join("f2.safetensors"));
    let (f, f2) = (created.to_str().unwrap(), trained.to_str().unwrap());
    let (ok, out, err) = fovea_in(&root, &["create", "resnet20", "--classes", "10", "-o", f]);
    assert!(ok && out.contains("Functional"), "{out}\n{err}");
    let train = ["train", "--dataset", "cifar10", "--limit", "6", "--epochs", "1", "--batch-size", "3", "--verbose", "2"];
    let (ok, out, err) = fovea_in(&root, &[&train[..], &["--resume", f, "-o", f2]].concat());
    assert!(ok, "{out}\n{err}");
    assert!(out.contains(&format!("Training {f} on 6 cifar10 images")) && out.contains("Epoch 1/1"), "{out}");
    assert!(out.contains("Test loss: ") && out.contains("Test accuracy: "), "{out}");
    // Saved as a functional file with its optimizer: evaluate reads it and it resumes again.
    let is_functional = fovea::nn::model::saved::is_functional(&trained).unwrap();
    assert!(is_functional, "{f2} is not a functional model file");
    assert_ne!(std::fs::read(&created).unwrap(), std::fs::read(&trained).unwrap(), "training changed nothing");
    let (ok, out, err) = fovea_in(&root, &["evaluate", f2, "--dataset", "cifar10"]);
    assert!(ok && out.contains("Test accuracy: "), "{out}\n{err}");
    let (ok, out, err) = fovea_in(&root, &[&train[..], &["--resume", f2]].concat());
    assert!(ok && out.contains(&format!("Training {f2} on 6 cifar10 images")), "{out}\n{err}");
    // A functional file that does not take the dataset's images is refused before training.
    let (ok, out, err) = fovea_in(&root, &["train", "--resume", f, "--dataset", "mnist", "--epochs", "1"]);
    assert!(!ok && err.contains(&format!("{f} takes (32, 32, 3) inputs but mnist images are (28, 28, 1)")), "{out}\n{err}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn cifar_info_and_data_errors_name_the_file() {
    let root = temp_dir("cifar");
    let dir = root.join("cifar10");
    std::fs::create_dir_all(&dir).unwrap();
    for b in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), [cifar_record(b), cifar_record(0)].concat()).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), cifar_record(9)).unwrap();
    let (ok, out, err) = fovea_in(&root, &["data", "info", "cifar10"]);
    assert!(ok, "{err}");
    assert!(out.contains("train: images [10, 32, 32, 3] uint8, labels [10] int64, per class [5, 1, 1, 1, 1, 1, 0, 0, 0, 0]"), "{out}");
    assert!(out.contains("test_batch.bin (3073 bytes)"), "{out}");
    // Géron's ResNet-34 is built for the dataset's 32×32×3 images, as Keras users build it.
    let (ok, out, err) =
        fovea_in(&root, &["train", "resnet34", "--dataset", "cifar10", "--epochs", "1", "--batch-size", "5", "--verbose", "0"]);
    assert!(ok && out.contains("Test accuracy: "), "{out}{err}");

    std::fs::write(dir.join("test_batch.bin"), &cifar_record(9)[..3000]).unwrap();
    let (ok, _, err) = fovea_in(&root, &["data", "info", "cifar10"]);
    assert!(!ok && err.contains("test_batch.bin: 3000 bytes is not a whole number of 3073-byte CIFAR-10 records"), "{err}");

    // Nothing for CIFAR-100: info says how to get it; fetch with a corrupt archive in place says
    // what went wrong and what to put where (and never touches the network).
    let (ok, _, err) = fovea_in(&root, &["data", "info", "cifar100"]);
    assert!(!ok && err.contains("train.bin not found") && err.contains("run `fovea data fetch cifar100` first"), "{err}");
    std::fs::create_dir_all(root.join("cifar100")).unwrap();
    std::fs::write(root.join("cifar100/cifar-100-binary.tar.gz"), b"not an archive").unwrap();
    let (ok, _, err) = fovea_in(&root, &["data", "fetch", "cifar100"]);
    assert!(
        !ok && err.contains("cifar-100-binary.tar.gz: checksum mismatch") && err.contains("Put the archive cifar-100-binary.tar.gz"),
        "{err}"
    );
    assert!(!root.join("cifar100/train.bin").exists());
    let (ok, _, err) = fovea_in(&root, &["data", "info", "svhn"]);
    assert!(!ok && err.contains("invalid value 'svhn'") && err.contains("fashion-mnist"), "{err}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn train_from_a_json_spec_then_resume_the_saved_model() {
    let root = temp_dir("spec");
    fake_fashion_mnist(&root, 40, 10);
    // The spec is what `summary --config` prints: the wider LeNet-like model's Sequential config.
    let (ok, config, err) = fovea(&["summary", "lenet_like", "--config"]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&config).expect("summary --config prints JSON");
    assert_eq!(json["layers"].as_array().map(Vec::len), Some(8), "{config}");
    let spec = root.join("lenet_like.json");
    std::fs::write(&spec, &config).unwrap();
    let model = root.join("m.safetensors");
    let (s, m) = (spec.to_str().unwrap(), model.to_str().unwrap());
    let (ok, out, err) = fovea_in(&root, &["train", "--spec", s, "--dataset", "fashion-mnist", "--epochs", "1", "--verbose", "1", "-o", m]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Total params: 369,174") && out.contains(&format!("Training {s} on 40")), "{out}");
    let (ok, out, err) = fovea_in(&root, &["train", "--resume", m, "--dataset", "fashion-mnist", "--epochs", "1", "--verbose", "1"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Total params: 369,174") && out.contains(&format!("Training {m} on 40")), "{out}");
    // Bad specs and resumes fail with one line naming the file.
    std::fs::write(&spec, "{\"layers\": [{\"class_name\": \"Conv9D\"}]}").unwrap();
    let (ok, _, err) = fovea_in(&root, &["train", "--spec", s, "--dataset", "fashion-mnist"]);
    assert!(!ok && err.contains(s) && err.contains("Conv9D"), "{err}");
    let (ok, _, err) = fovea_in(&root, &["train", "--resume", "/nonexistent/m.safetensors", "--dataset", "fashion-mnist"]);
    assert!(!ok && err.contains("/nonexistent/m.safetensors"), "{err}");
    let (ok, _, err) = fovea_in(&root, &["train", "--resume", m, "--spec", s]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}

#[test]
fn a_spec_with_keras_preprocessing_layers_trains_and_resumes() {
    let root = temp_dir("prep-spec");
    fake_fashion_mnist(&root, 40, 10);
    // The LeNet-like spec with a Keras augmentation and rescaling front end (fovea-vision's
    // layers, which the CLI registers with fovea-nn's registry at start-up).
    let (ok, config, err) = fovea(&["summary", "lenet_like", "--config"]);
    assert!(ok, "{err}");
    let mut json: serde_json::Value = serde_json::from_str(&config).unwrap();
    let front = serde_json::json!([
        {"class_name": "RandomFlip", "config": {"mode": "horizontal", "seed": 3, "name": "flip"}},
        {"class_name": "Rescaling", "config": {"scale": [2.0], "offset": -1.0, "name": "to_pm1"}},
    ]);
    let layers = json["layers"].as_array_mut().unwrap();
    layers.splice(0..0, front.as_array().unwrap().iter().cloned());
    let spec = root.join("augmented.json");
    std::fs::write(&spec, json.to_string()).unwrap();
    let model = root.join("m.safetensors");
    let (s, m) = (spec.to_str().unwrap(), model.to_str().unwrap());
    let (ok, out, err) = fovea_in(&root, &["train", "--spec", s, "--dataset", "fashion-mnist", "--epochs", "1", "--verbose", "1", "-o", m]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("flip (RandomFlip)") && out.contains("to_pm1 (Rescaling)") && out.contains("Total params: 369,174"), "{out}");
    // Resuming loads the model file, preprocessing layers included.
    let (ok, out, err) = fovea_in(&root, &["train", "--resume", m, "--dataset", "fashion-mnist", "--epochs", "1", "--verbose", "1"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("flip (RandomFlip)") && out.contains("to_pm1 (Rescaling)"), "{out}");
    // A bad preprocessing entry fails with one line naming the file, the class and the key.
    std::fs::write(&spec, "{\"layers\": [{\"class_name\": \"RandomFlip\", \"config\": {\"mode\": \"sideways\"}}]}").unwrap();
    let (ok, _, err) = fovea_in(&root, &["train", "--spec", s, "--dataset", "fashion-mnist"]);
    assert!(!ok && err.contains(s) && err.contains("RandomFlip") && err.contains("\"sideways\""), "{err}");
}

#[test]
fn bench_runs_one_workload_and_names_unknown_ones() {
    let started = std::time::Instant::now();
    let (ok, out, err) = fovea(&["bench", "--only", "lenet5_infer_b1", "--threads", "1"]);
    let took = started.elapsed().as_secs_f64();
    assert!(ok, "{err}");
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(line["name"], "lenet5_infer_b1");
    assert_eq!((line["batch"].as_u64(), line["params"].as_u64(), line["threads"].as_u64()), (Some(1), Some(61_706), Some(1)));
    // A warm-up and 5 timed windows of 1 s each; LeNet-5 at batch 1 runs ~6,800 images/s on
    // one thread of this test build (2-core CI), so 500 catches a slowdown of an order of
    // magnitude, not a loaded machine.
    assert!(took >= 6.0, "the bench took {took:.2} s, less than its 6 windows of 1 s");
    assert!(line["images_per_s"].as_f64().is_some_and(|r| r >= 500.0), "{out}");
    if cfg!(target_os = "linux") {
        assert!(line["peak_rss_mib"].as_f64().is_some_and(|m| m > 1.0), "{out}");
    }
    let (ok, _, err) = fovea(&["bench", "--only", "resnet99_train"]);
    assert!(!ok && err.contains("unknown workload \"resnet99_train\"") && err.contains("lenet5_train_b32"), "{err}");
    let (ok, _, err) = fovea(&["bench", "--threads", "0"]);
    assert!(!ok && err.contains("--threads must be at least 1"), "{err}");
    // An output whose folder is missing is refused before training, not after it.
    for flag in ["-o", "--plot", "--history"] {
        let (ok, out, err) = fovea(&["train", "lenet5", "--epochs", "50", "--limit", "3000", flag, "/nonexistent-dir/out.png"]);
        assert!(!ok && err.contains(flag) && err.contains("the folder /nonexistent-dir does not exist"), "{err}");
        assert!(!out.contains("Epoch 1/"), "{flag}: trained before refusing: {out}");
    }
    let (ok, list, err) = fovea(&["bench", "--list"]);
    assert!(ok && list.lines().next() == Some("lenet5_train_b32") && list.lines().any(|l| l == "resnet50_infer_b8_bf16"), "{list}{err}");
}

#[test]
fn bench_profile_writes_a_trace_of_three_steps_after_the_timed_windows() {
    let root = temp_dir("bench-profile");
    let file = root.join("bench.json");
    let (ok, out, err) = fovea(&["bench", "--only", "lenet5_train_b32", "--threads", "1", "--profile", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert!(line["images_per_s"].as_f64().is_some_and(|r| r > 0.0), "{out}");
    let trace: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let steps: Vec<_> = events.iter().filter(|e| e["cat"] == "step").collect();
    assert_eq!(steps.len(), 3, "three profiled steps, not the timed windows");
    assert!(steps.iter().all(|e| e["name"] == "lenet5_train_b32"), "{steps:?}");
    // Every training step's layers forward, backward ops and update fall inside some step.
    let within = |e: &serde_json::Value| {
        let (t, d) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
        steps.iter().any(|s| s["ts"].as_f64().unwrap() <= t && t + d <= s["ts"].as_f64().unwrap() + s["dur"].as_f64().unwrap() + 1e-3)
    };
    for (cat, name) in [("forward", "conv2d (Conv2D)"), ("backward", "conv2d"), ("optimizer", "apply_gradients")] {
        let found: Vec<_> = events.iter().filter(|e| e["cat"] == cat && e["name"].as_str().is_some_and(|n| n.starts_with(name))).collect();
        assert!(!found.is_empty() && found.len() % 3 == 0, "{cat} {name}: as many in each step, got {}", found.len());
        assert!(found.iter().all(|e| within(e)), "{cat} {name} outside the steps");
    }
    let (ok, _, err) = fovea(&["bench", "--profile", file.to_str().unwrap()]);
    assert!(!ok && err.contains("--only"), "{err}");
    let (ok, _, err) = fovea(&["bench", "--only", "lenet5_infer_b1", "--profile", "/nonexistent-dir/trace.json"]);
    assert!(!ok && err.contains("--profile") && err.contains("/nonexistent-dir"), "{err}");
}

#[test]
fn lenet5_learns_real_mnist_digits_and_predicts_a_png() {
    // The committed subset of the real MNIST (2,000 training, 500 test images), as the data
    // directory's `mnist` folder.
    let root = temp_dir("mnist-subset");
    let dir = root.join("mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist_subset");
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "gz") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let model = root.join("lenet5.safetensors");
    let m = model.to_str().unwrap();
    let (ok, out, err) = fovea_in(&root, &["train", "lenet5", "--dataset", "mnist", "--epochs", "8", "--verbose", "0", "-o", m]);
    assert!(ok, "{out}\n{err}");
    let accuracy: f64 =
        out.split("Test accuracy: ").nth(1).and_then(|t| t.split_whitespace().next()).and_then(|a| a.parse().ok()).expect("accuracy");
    assert!(accuracy > 0.90, "LeNet-5 on 1,800 real digits should beat 90% on 500 test digits: {out}");

    // The first test digit (a 7) as a PNG file is classified as a 7.
    let images = fovea::data::idx::read_idx(&fixtures.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = fovea::data::idx::read_idx(&fixtures.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let digit = images.data[..784].to_vec();
    assert_eq!(labels.data[0], 7);
    let png = root.join("digit.png");
    let img = fovea::core::Tensor::from_vec(digit, vec![28, 28, 1], fovea::core::Device::Cpu).unwrap();
    std::fs::write(&png, fovea::vision::image::encode_png(&img).unwrap()).unwrap();
    let (ok, pred, err) = fovea_in(&root, &["predict", m, png.to_str().unwrap(), "--top-k", "1"]);
    assert!(ok, "{err}");
    assert!(pred.contains("digit.png: 7 ("), "{pred}");
    // A functional model file (here a fresh ResNet-20 for 28×28×1) evaluates and predicts on a
    // dataset like a Sequential one; untrained, it is near chance on the 500 test digits.
    let functional = root.join("resnet20.safetensors");
    let f = functional.to_str().unwrap();
    let (ok, _, err) = fovea_in(&root, &["create", "resnet20", "--input-shape", "28x28x1", "-o", f]);
    assert!(ok, "{err}");
    let (ok, out, err) = fovea_in(&root, &["evaluate", f, "--dataset", "mnist"]);
    assert!(ok, "{err}");
    let untrained: f64 = out.split("Test accuracy: ").nth(1).and_then(|t| t.trim().parse().ok()).expect("accuracy");
    assert!(untrained < 0.5, "{out}");
    let (ok, pred, err) = fovea_in(&root, &["predict", f, "--dataset", "mnist", "--limit", "2"]);
    assert!(ok && pred.contains("mnist test image 1 [label 2]: ") && pred.contains("Top-1 accuracy on these 2 images"), "{pred}{err}");
    // MNIST's class names are the digits themselves: the label is printed once.
    let (ok, pred, err) = fovea_in(&root, &["predict", m, "--dataset", "mnist", "--limit", "1"]);
    assert!(ok && pred.contains("mnist test image 0 [label 7]: "), "{pred}{err}");
    // A JPEG cut short is refused, as Pillow and libjpeg refuse it, not padded and classified.
    let img3 = fovea::core::Tensor::from_vec(images.data[..784].repeat(3), vec![28, 28, 3], fovea::core::Device::Cpu).unwrap();
    let jpeg = fovea::vision::image::encode_jpeg(&img3, 95).unwrap();
    let cut = root.join("cut.jpg");
    std::fs::write(&cut, &jpeg[..jpeg.len() * 3 / 4]).unwrap();
    let (ok, _, err) = fovea_in(&root, &["predict", m, cut.to_str().unwrap()]);
    assert!(!ok && err.contains("cut.jpg") && err.contains("truncated"), "{err}");
}

#[test]
fn train_plot_writes_learning_curves() {
    let root = temp_dir("plot");
    fake_fashion_mnist(&root, 40, 10);
    let (png, json) = (root.join("curves.png"), root.join("history.json"));
    let args = [
        "train",
        "lenet5",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "2",
        "--verbose",
        "0",
        "--plot",
        png.to_str().unwrap(),
        "--history",
        json.to_str().unwrap(),
    ];
    let (ok, out, err) = fovea_in(&root, &args);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains(&format!("Saved the learning curves to {}", png.display())), "{out}");
    // The per-epoch logs come back as a History with one value per epoch for each log.
    let history = fovea::nn::model::History::load(&json).unwrap();
    for key in ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"] {
        assert_eq!(history.history.get(key).map(Vec::len), Some(2), "{key} in {:?}", history.history.keys());
    }
    let img = fovea::vision::image::decode_png(&std::fs::read(&png).unwrap(), 3, fovea::core::Device::Cpu).unwrap();
    // Panels for loss, accuracy and learning_rate, 480×360 each, under a 40-pixel title band.
    assert_eq!(img.dims(), [400, 1440, 3]);
    let px = img.to_vec::<u8>().unwrap();
    let rgb: Vec<&[u8]> = px.chunks(3).collect();
    // The training (matplotlib blue) and validation (orange) lines are drawn.
    assert!(rgb.iter().filter(|p| **p == [31, 119, 180]).count() > 100);
    assert!(rgb.iter().filter(|p| **p == [255, 127, 14]).count() > 100);

    // A path that cannot hold a plot is refused before any training.
    let (ok, out, err) = fovea_in(&root, &["train", "--dataset", "fashion-mnist", "--plot", "curves.jpg"]);
    assert!(!ok && out.is_empty() && err.trim() == "error: --plot expects a .png or .svg file, got curves.jpg", "{out}{err}");
    let svg = root.join("missing-dir/curves.svg");
    let args = ["train", "lenet5", "--dataset", "fashion-mnist", "--epochs", "1", "--verbose", "0", "--plot", svg.to_str().unwrap()];
    let (ok, out, err) = fovea_in(&root, &args);
    assert!(!ok && err.contains("the folder") && err.contains("missing-dir does not exist"), "{err}");
    assert!(!out.contains("Test accuracy"), "refused only after training: {out}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn train_on_the_reference_device_matches_the_cpu() {
    let root = temp_dir("device");
    fake_fashion_mnist(&root, 20, 10);
    let test_loss = |device: &str| -> f64 {
        let (ok, out, err) =
            fovea_in(&root, &["train", "lenet5", "--dataset", "fashion-mnist", "--epochs", "1", "--verbose", "0", "--device", device]);
        assert!(ok, "{device}: {out}\n{err}");
        let tail = out.split("Test loss: ").nth(1).unwrap_or_else(|| panic!("no test loss in {out}"));
        tail.split_whitespace().next().unwrap().parse().unwrap()
    };
    // The same seed gives the same weights and batches; the backends differ only in rounding.
    let (cpu, reference) = (test_loss("cpu"), test_loss("reference"));
    assert!((cpu - reference).abs() < 2e-4, "cpu {cpu} vs reference {reference}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn an_unavailable_or_misspelt_device_is_one_clear_error() {
    // No CUDA backend is linked into this build: refused before any data is read.
    let root = temp_dir("nodevice");
    let (ok, out, err) = fovea_in(&root, &["train", "lenet5", "--device", "cuda"]);
    assert!(!ok && out.is_empty(), "{out}\n{err}");
    assert!(err.starts_with("error: device cuda:0 is unavailable: ") && err.trim().lines().count() == 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let (ok, _, err) = fovea_in(&root, &["train", "lenet5", "--device", "tpu"]);
    assert!(!ok && err.contains("invalid value 'tpu' for '--device") && err.contains("expected cpu, reference, cuda"), "{err}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_keras_3_document_trains_as_a_spec_and_huge_or_bad_inputs_name_their_file() {
    let root = temp_dir("keras-spec");
    fake_fashion_mnist(&root, 40, 10);
    // What Keras 3's `model.to_json()` writes: the whole document with its InputLayer, "silu",
    // initializers and regularizers as {"class_name", "config"}, "output_padding": null.
    let init = |class: &str| serde_json::json!({"module": "keras.initializers", "class_name": class, "config": {"seed": null}, "registered_name": null});
    let common = |name: &str| {
        serde_json::json!({"name": name, "trainable": true, "use_bias": true, "kernel_initializer": init("GlorotUniform"),
        "bias_initializer": init("Zeros"), "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null,
        "kernel_constraint": null, "bias_constraint": null})
    };
    let layer = |class: &str, mut config: serde_json::Value, own: serde_json::Value| {
        config.as_object_mut().unwrap().extend(own.as_object().unwrap().clone());
        serde_json::json!({"module": "keras.layers", "class_name": class, "config": config, "registered_name": null})
    };
    let doc = |units: u64| {
        serde_json::json!({"module": "keras", "class_name": "Sequential", "config": {"name": "keras3", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1], "dtype": "float32", "name": "input_layer"}},
            layer("Conv2D", common("conv"), serde_json::json!({"filters": 4, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
                "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "silu",
                "kernel_regularizer": {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.0001}}})),
            layer("Conv2DTranspose", common("up"), serde_json::json!({"filters": 2, "kernel_size": [2, 2], "strides": [2, 2], "padding": "valid",
                "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "relu", "output_padding": null})),
            layer("MaxPooling2D", serde_json::json!({"name": "pool"}), serde_json::json!({"pool_size": [4, 4], "strides": [4, 4], "padding": "valid"})),
            layer("Flatten", serde_json::json!({"name": "flatten"}), serde_json::json!({})),
            layer("Dense", common("out"), serde_json::json!({"units": units, "activation": "softmax"})),
        ]}})
    };
    let spec = root.join("keras3.json");
    let s = spec.to_str().unwrap();
    std::fs::write(&spec, doc(10).to_string()).unwrap();
    let (ok, out, err) = fovea_in(&root, &["train", "--spec", s, "--dataset", "fashion-mnist", "--epochs", "1", "--verbose", "1"]);
    assert!(ok, "{out}\n{err}");
    // conv 3·3·1·4+4 = 40, up 2·2·2·4+2 = 34 (56×56×2), pool to 14×14×2, out 392·10+10 = 3,930.
    assert!(out.contains("Total params: 4,004"), "{out}");
    // A billion units: refused before allocation, in one line naming the file and the limit.
    std::fs::write(&spec, doc(1_000_000_000).to_string()).unwrap();
    let (ok, _, err) = fovea_in(&root, &["train", "--spec", s, "--dataset", "fashion-mnist"]);
    assert!(!ok && err.contains(s) && err.contains("(392000000000 parameters)") && err.contains("FOVEA_MAX_PARAMS"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A label file with a label past the ten classes is refused by `data info`, naming it.
    let labels = root.join("fashion-mnist/t10k-labels-idx1-ubyte");
    std::fs::write(&labels, idx(&[10], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 10])).unwrap();
    let (ok, _, err) = fovea_in(&root, &["data", "info", "fashion-mnist"]);
    assert!(!ok && err.contains(&format!("{}: label 9 is 10, expected a class in 0..10", labels.display())), "{err}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_reader_that_closes_the_pipe_early_ends_the_command_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    // `fovea summary resnet50 | head -1`: the table is ~100 KB, more than a pipe's 64 KB
    // buffer, so the write is still going when the reader leaves.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fovea"))
        .args(["summary", "resnet50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fovea");
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    assert_ne!(out.status.code(), Some(101), "exit 101 is a panic: {err}");
}

#[test]
fn the_zoo_is_listed_and_any_model_becomes_a_file_without_code() {
    let (ok, out, err) = fovea(&["models", "lenet5", "mobilenet_v2", "resnet20"]);
    assert!(ok, "{err}");
    let line = |name: &str| out.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {out}")).to_string();
    // Keras's counts: LeNet-5 61,706; MobileNetV2 (224×224, 1000 classes) 3,538,984.
    assert!(line("lenet5").contains("28x28x1") && line("lenet5").contains("61,706"), "{out}");
    assert!(line("mobilenet_v2").contains("224x224x3") && line("mobilenet_v2").contains("3,538,984"), "{out}");
    assert!(line("mobilenet_v2").contains("x/127.5 - 1") && line("resnet20").contains("Functional 32x32x3"), "{out}");
    assert_eq!(out.lines().count(), 4, "a header and the three models asked for: {out}");
    let (ok, _, err) = fovea(&["models", "resnet99"]);
    assert!(!ok && err.contains("unknown model \"resnet99\"") && err.contains("lenet5") && err.contains("xception"), "{err}");

    let root = temp_dir("create");
    let file = root.join("resnet20.safetensors");
    let f = file.to_str().unwrap();
    let (ok, out, err) = fovea(&["create", "resnet20", "--classes", "7", "-o", f]);
    assert!(ok && out.contains("Functional with") && out.contains(f), "{out}{err}");
    // The functional file is a model `predict` reads: seven classes, each a probability.
    let png = root.join("grey.png");
    let img = fovea::core::Tensor::full(vec![32, 32, 3], 128.0, fovea::core::DType::U8, fovea::core::Device::Cpu).unwrap();
    std::fs::write(&png, fovea::vision::image::encode_png(&img).unwrap()).unwrap();
    let (ok, pred, err) = fovea(&["predict", f, png.to_str().unwrap(), "--top-k", "7"]);
    assert!(ok, "{err}");
    let probs: Vec<f64> = pred
        .lines()
        .filter_map(|l| l.trim().strip_suffix('%'))
        .map(|l| l.split_whitespace().last().unwrap().parse::<f64>().unwrap() / 100.0)
        .collect();
    assert_eq!(probs.len(), 7, "{pred}");
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-3, "{pred}");
    let (ok, out, err) = fovea(&["create", "lenet5", "--no-top", "-o", root.join("features.safetensors").to_str().unwrap()]);
    assert!(ok && out.contains("2,572 parameters"), "{out}{err}");
    let (ok, _, err) = fovea(&["create", "lenet5", "-o", "/nonexistent-dir/m.safetensors"]);
    assert!(!ok && err.contains("/nonexistent-dir/m.safetensors"), "{err}");
}

#[test]
fn completion_scripts_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let (ok, script, err) = fovea(&["completions", shell]);
        assert!(ok, "{err}");
        for sub in ["train", "predict", "summary", "create", "models", "detect", "completions"] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        // The commands main parses before clap, and their options (fish spells `-l interpolate`), too.
        for sub in ["generate", "evaluate-generator", "serve", "yolo", "unet", "vae", "wgan-gp", "interpolate", "classifier"] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let (_, bash, _) = fovea(&["completions", "bash"]);
    // bash completes `fovea generate --` with generate's own options.
    let generate = bash.split("fovea__subcmd__generate)").nth(1).unwrap_or_else(|| panic!("no generate case in {bash}"));
    assert!(generate.split(";;").next().unwrap().contains("--interpolate"), "{generate}");
    // The commands parsed outside clap are named in the top-level help.
    let (ok, help, _) = fovea(&["--help"]);
    assert!(ok && help.contains("fovea train yolo|unet|autoencoder|vae") && help.contains("fovea generate"), "{help}");
    let (ok, _, err) = fovea(&["completions", "tcsh"]);
    assert!(!ok && err.contains("invalid value 'tcsh'") && err.contains("bash"), "{err}");
}

#[test]
fn train_flags_reach_fits_callbacks() {
    let root = temp_dir("callbacks");
    fake_fashion_mnist(&root, 40, 10);
    let (tb, csv, ckpt, trace) = (root.join("tb"), root.join("log.csv"), root.join("ckpt"), root.join("trace.json"));
    let args = [
        "train",
        "lenet5",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "3",
        "--verbose",
        "0",
        "--tensorboard",
        tb.to_str().unwrap(),
        "--csv-log",
        csv.to_str().unwrap(),
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--early-stopping",
        "5",
        "--profile",
        trace.to_str().unwrap(),
    ];
    let (ok, out, err) = fovea_in(&root, &args);
    assert!(ok, "{out}\n{err}");
    // One CSV row per epoch under Keras's header.
    let rows: Vec<String> = std::fs::read_to_string(&csv).unwrap().lines().map(str::to_string).collect();
    assert!(rows[0].starts_with("epoch,") && rows[0].contains("val_loss"), "{rows:?}");
    assert_eq!(rows.len(), 4, "{rows:?}");
    // TensorBoard's train and validation event files.
    for run in ["train", "validation"] {
        let events: Vec<_> =
            std::fs::read_dir(tb.join(run)).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(events.iter().any(|f| f.starts_with("events.out.tfevents.")), "{run}: {events:?}");
    }
    // Whole-model checkpoints that evaluate reads.
    for name in ["last.safetensors", "best.safetensors"] {
        let (ok, eval, err) = fovea_in(&root, &["evaluate", ckpt.join(name).to_str().unwrap(), "--dataset", "fashion-mnist"]);
        assert!(ok && eval.contains("Test accuracy: "), "{name}: {eval}{err}");
    }
    // A Chrome trace with LeNet's layers forward, backward ops and optimizer updates.
    let trace: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    for (cat, name) in [("forward", "conv2d (Conv2D)"), ("backward", "conv2d"), ("optimizer", "apply_gradients")] {
        assert!(events.iter().any(|e| e["cat"] == cat && e["name"].as_str().is_some_and(|n| n.starts_with(name))), "no {cat} {name}");
    }
    // An unwritable --profile path is refused before training, like -o.
    let (ok, out, err) = fovea_in(&root, &["train", "--dataset", "fashion-mnist", "--profile", "/nonexistent/dir/trace.json"]);
    assert!(!ok && out.is_empty() && err.contains("--profile") && err.contains("/nonexistent/dir"), "{out}{err}");
    // A monitor fit never logs, or validation logs without validation data, are refused first.
    let (ok, out, err) = fovea_in(&root, &["train", "--dataset", "fashion-mnist", "--early-stopping", "2", "--monitor", "val_dice"]);
    assert!(!ok && out.is_empty() && err.contains("--monitor expects loss, accuracy, val_loss or val_accuracy"), "{out}{err}");
    let no_val = ["train", "--dataset", "fashion-mnist", "--early-stopping", "2", "--validation-split", "0"];
    let (ok, out, err) = fovea_in(&root, &no_val);
    assert!(!ok && out.is_empty() && err.contains("needs validation data"), "{out}{err}");
}
