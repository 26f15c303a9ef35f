//! `fovea evaluate-detections` against pycocotools' output, and `fovea data make
//! mnist-detection` on a small fake MNIST (no download).

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
