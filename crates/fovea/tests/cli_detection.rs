//! `fovea evaluate-detections` against pycocotools' output, `fovea data make
//! mnist-detection` / `mnist-segmentation`, `train yolo` + `detect` and `train unet` + `segment`
//! on a small fake MNIST (no download).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fovea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fovea")).args(args).output().expect("run fovea");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fovea-vision/tests/fixtures/detection")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fovea-cli-det-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn evaluate_detections_prints_pycocotools_summary_and_json() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("cocoeval_expected.json")).unwrap()).unwrap();
    for case in ["mixed", "small"] {
        let gt = fixtures().join(format!("cocoeval_{case}_gt.json"));
        let dt = fixtures().join(format!("cocoeval_{case}_dt.json"));
        let (gt, dt) = (gt.to_str().unwrap(), dt.to_str().unwrap());
        let (ok, out, err) = fovea(&["evaluate-detections", "--gt", gt, "--dt", dt]);
        assert!(ok, "{err}");
        assert_eq!(out, expected["cases"][case]["summary"].as_str().unwrap(), "{case}");
        let (ok, out, err) = fovea(&["evaluate-detections", "--gt", gt, "--dt", dt, "--json"]);
        assert!(ok, "{err}");
        let got: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let keys = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"];
        assert_eq!(got.as_object().unwrap().len(), 12);
        let at: Vec<usize> = keys.iter().map(|k| out.find(&format!("\"{k}\":")).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "keys in the documented order: {out}");
        for (i, k) in keys.iter().enumerate() {
            let want = expected["cases"][case]["stats"][i].as_f64().unwrap();
            let v = got[k].as_f64().unwrap_or_else(|| panic!("{case}: no {k} in {out}"));
            assert!((v - want).abs() <= 1e-6, "{case} {k}: {v} vs pycocotools {want}");
        }
    }
}

#[test]
fn evaluate_detections_names_the_bad_file_and_entry() {
    let dir = temp("bad");
    let gt = dir.join("gt.json");
    std::fs::write(
        &gt,
        r#"{"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}],
            "annotations": [{"id": 5, "image_id": 2, "category_id": 1, "bbox": [0, 0, 4, 4]}]}"#,
    )
    .unwrap();
    let dt = dir.join("dt.json");
    std::fs::write(&dt, "[]").unwrap();
    let (ok, _, err) = fovea(&["evaluate-detections", "--gt", gt.to_str().unwrap(), "--dt", dt.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("gt.json: annotations[0] (id 5)") && err.contains("image_id 2"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An IDX file of u8 values.
fn idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// A fake MNIST: training digits are all class 3, test digits all class 8 (bars of different
/// widths), so the categories in the output show which split was drawn.
fn fake_mnist(dir: &Path) {
    let digits = |n: usize, width: usize| -> Vec<u8> {
        (0..n * 28 * 28).map(|i| if (5..23).contains(&(i % 784 / 28)) && (10..10 + width).contains(&(i % 28)) { 250 } else { 0 }).collect()
    };
    idx(&dir.join("train-images-idx3-ubyte"), &[4, 28, 28], &digits(4, 4));
    idx(&dir.join("train-labels-idx1-ubyte"), &[4], &[3; 4]);
    idx(&dir.join("t10k-images-idx3-ubyte"), &[3, 28, 28], &digits(3, 8));
    idx(&dir.join("t10k-labels-idx1-ubyte"), &[3], &[8; 3]);
}

#[test]
fn data_make_mnist_detection_writes_deterministic_scenes() {
    let dir = temp("make");
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    fake_mnist(&mnist);
    let (a, b) = (dir.join("a"), dir.join("b"));
    for (out, split) in [(&a, "test"), (&b, "test"), (&a, "train")] {
        let args = ["data", "make", "mnist-detection", "--out", out.to_str().unwrap(), "--count", "12", "--seed", "5", "--split", split];
        let (ok, stdout, err) = fovea(&[&args[..], &["--mnist-dir", mnist.to_str().unwrap()]].concat());
        assert!(ok, "{err}");
        assert!(stdout.contains("wrote 12 scenes"), "{stdout}");
    }
    let read = |p: PathBuf| std::fs::read(p).unwrap();
    assert_eq!(read(a.join("instances_test.json")), read(b.join("instances_test.json")), "same seed, same boxes");
    assert_eq!(read(a.join("test/000007.png")), read(b.join("test/000007.png")), "same seed, same pixels");
    let cats = |file: &str| -> Vec<i64> {
        let v: serde_json::Value = serde_json::from_slice(&read(a.join(file))).unwrap();
        v["annotations"].as_array().unwrap().iter().map(|x| x["category_id"].as_i64().unwrap()).collect()
    };
    let (test, train) = (cats("instances_test.json"), cats("instances_train.json"));
    assert!(test.len() >= 12 && test.iter().all(|&c| c == 8), "test scenes use only test digits: {test:?}");
    assert!(train.len() >= 12 && train.iter().all(|&c| c == 3), "training scenes use only training digits: {train:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_yolo_then_detect_writes_coco_results_for_a_folder() {
    let dir = temp("yolo");
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    fake_mnist(&mnist);
    let (m, mnist_s) = (dir.join("m.safetensors"), mnist.to_str().unwrap().to_string());
    let args = [
        "train",
        "yolo",
        "--mnist-dir",
        &mnist_s,
        "--train-count",
        "16",
        "--val-count",
        "4",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--width",
        "2",
    ];
    let (ok, out, err) = fovea(&[&args[..], &["-o", m.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    assert!(
        out.contains("16 training and 4 validation scenes")
            && out.contains("epoch 2/2: loss")
            && out.contains("val AP ")
            && out.contains("AP50 "),
        "{out}"
    );
    let scenes = dir.join("scenes");
    let make =
        ["data", "make", "mnist-detection", "--out", scenes.to_str().unwrap(), "--count", "3", "--split", "test", "--mnist-dir", &mnist_s];
    assert!(fovea(&make).0);
    // Detect in the scenes' own folder, ids from the ground truth; score 0 keeps every box.
    let (gt, dt) = (scenes.join("instances_test.json"), dir.join("dt.json"));
    let images = scenes.join("test");
    let args = ["detect", "--model", m.to_str().unwrap(), "--images", images.to_str().unwrap(), "--out", dt.to_str().unwrap()];
    let (ok, out, err) = fovea(&[&args[..], &["--gt", gt.to_str().unwrap(), "--score-threshold", "0"]].concat());
    assert!(ok && out.contains("in 3 images"), "{out}{err}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&dt).unwrap()).unwrap();
    let dets = v.as_array().unwrap();
    assert!(!dets.is_empty() && dets.len() <= 300, "{} detections", dets.len());
    for d in dets {
        let (id, cat) = (d["image_id"].as_i64().unwrap(), d["category_id"].as_i64().unwrap());
        let b: Vec<f64> = d["bbox"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert!((1..=3).contains(&id) && (0..10).contains(&cat), "{d}");
        assert!(b[0] >= 0.0 && b[1] >= 0.0 && b[0] + b[2] <= 128.0 + 1e-3 && b[1] + b[3] <= 128.0 + 1e-3, "{d}");
    }
    let (ok, _, err) = fovea(&["evaluate-detections", "--gt", gt.to_str().unwrap(), "--dt", dt.to_str().unwrap()]);
    assert!(ok, "{err}");
    // An image of the wrong size is named, and so is a weight file that is not a detector.
    image_write(&images.join("zz_small.png"));
    let (ok, _, err) = fovea(&args);
    assert!(!ok && err.contains("zz_small.png") && err.contains("128×128×1"), "{err}");
    std::fs::remove_file(images.join("zz_small.png")).unwrap();
    let (ok, _, err) =
        fovea(&["detect", "--model", gt.to_str().unwrap(), "--images", images.to_str().unwrap(), "--out", dt.to_str().unwrap()]);
    assert!(!ok && err.contains("instances_test.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn make_segmentation_then_train_unet_and_segment_write_masks() {
    let dir = temp("unet");
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    fake_mnist(&mnist);
    let mnist_s = mnist.to_str().unwrap().to_string();
    let scenes = dir.join("scenes");
    let make = ["data", "make", "mnist-segmentation", "--out", scenes.to_str().unwrap(), "--count", "3", "--mnist-dir", &mnist_s];
    let (ok, out, err) = fovea(&[&make[..], &["--split", "test"]].concat());
    assert!(ok && out.contains("wrote 3 scenes"), "{out}{err}");
    // Test digits are all 8s: masks hold only background (0) and 1 + 8.
    let masks = scenes.join("test/masks");
    let values = |path: &Path| -> Vec<u8> {
        let bytes = std::fs::read(path).unwrap();
        fovea::vision::image::decode_image(&bytes, 1, fovea::core::Device::Cpu).unwrap().to_vec::<u8>().unwrap()
    };
    for i in 0..3 {
        let v = values(&masks.join(format!("{i:06}.png")));
        assert!(v.len() == 128 * 128 && v.iter().all(|&m| m == 0 || m == 9) && v.contains(&9), "scene {i}");
    }
    let m = dir.join("unet.safetensors");
    let train = ["train", "unet", "--mnist-dir", &mnist_s, "--train-count", "8", "--val-count", "2", "--epochs", "2", "--batch-size", "4"];
    let (ok, out, err) = fovea(&[&train[..], &["--filters", "2", "--depth", "1", "-o", m.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    assert!(out.contains("8 training and 2 test scenes") && out.contains("epoch 2/2: loss") && out.contains("val mean IoU"), "{out}");
    let pred = dir.join("pred");
    let images = scenes.join("test/images");
    let args = ["segment", "--model", m.to_str().unwrap(), "--images", images.to_str().unwrap(), "--out", pred.to_str().unwrap()];
    let over = dir.join("overlays");
    let (ok, out, err) = fovea(&[&args[..], &["--overlays", over.to_str().unwrap()]].concat());
    assert!(ok && out.contains("3 masks written"), "{out}{err}");
    let overlay =
        fovea::vision::image::decode_image(&std::fs::read(over.join("000001.png")).unwrap(), 3, fovea::core::Device::Cpu).unwrap();
    assert_eq!(overlay.dims(), &[128, 128, 3]);
    for i in 0..3 {
        let v = values(&pred.join(format!("{i:06}.png")));
        assert!(v.len() == 128 * 128 && v.iter().all(|&m| m < 11), "predicted mask {i}");
    }
    // A model file that is not a U-Net is named.
    let (ok, _, err) = fovea(&[
        "segment",
        "--model",
        images.join("000000.png").to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--out",
        pred.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("000000.png"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 10×10 grey PNG, written through `fovea data make`'s own encoder.
fn image_write(path: &Path) {
    let png = fovea::vision::image::encode_png(
        &fovea::core::Tensor::zeros(vec![10, 10, 1], fovea::core::DType::U8, fovea::core::Device::Cpu).unwrap(),
    )
    .unwrap();
    std::fs::write(path, png).unwrap();
}
