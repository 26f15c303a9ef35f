//! `fovea train autoencoder|vae|gan|cgan`, `fovea generate` and their errors, on a small fake
//! MNIST (no download).

use fovea::nn::callbacks::proto::{Kind, What};
use fovea::nn::callbacks::summary::read_events;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fovea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fovea")).args(args).output().expect("run fovea");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fovea-cli-gen-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// Eight training and three test "digits" (vertical bars), labels 0..7 and 8.
fn fake_mnist(dir: &Path) {
    let bars = |n: usize| -> Vec<u8> { (0..n * 784).map(|i| if (10..14).contains(&(i % 28)) { 250 } else { 0 }).collect() };
    std::fs::create_dir_all(dir).unwrap();
    idx(&dir.join("train-images-idx3-ubyte"), &[8, 28, 28], &bars(8));
    idx(&dir.join("train-labels-idx1-ubyte"), &[8], &[0, 1, 2, 3, 4, 5, 6, 7]);
    idx(&dir.join("t10k-images-idx3-ubyte"), &[3, 28, 28], &bars(3));
    idx(&dir.join("t10k-labels-idx1-ubyte"), &[3], &[8; 3]);
}

/// A PNG's width and height from its IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[1..4], b"PNG", "{} is not a PNG", path.display());
    (u32::from_be_bytes(b[16..20].try_into().unwrap()), u32::from_be_bytes(b[20..24].try_into().unwrap()))
}

/// Trains `kind` for 2 epochs of 2 steps; each epoch's sample grid is `grid` pixels (width,
/// height).
fn train(kind: &str, name: &str, grid: (u32, u32), extra: &[&str]) -> PathBuf {
    let dir = temp(name);
    let mnist = dir.join("mnist");
    fake_mnist(&mnist);
    let (out, tb) = (dir.join("out"), dir.join("tb"));
    let args = [
        "train",
        kind,
        "--data-dir",
        mnist.to_str().unwrap(),
        "--epochs",
        "2",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--tensorboard",
        tb.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let (ok, stdout, err) = fovea(&[&args[..], extra].concat());
    assert!(ok, "{stdout}\n{err}");
    assert_eq!(png_size(&out.join("samples_epoch_2.png")), grid);
    // The same grids as TensorBoard images, one per epoch.
    let file = std::fs::read_dir(&tb).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("tfevents")).unwrap();
    let images: Vec<(i64, String, i32, i32)> = read_events(&file)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.what {
            Some(What::Summary(s)) => match &s.value[0].value {
                Some(Kind::Image(i)) => Some((e.step, s.value[0].tag.clone(), i.width, i.height)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let (w, h) = (grid.0 as i32, grid.1 as i32);
    assert_eq!(images, vec![(0, "samples".to_string(), w, h), (1, "samples".to_string(), w, h)]);
    out
}

#[test]
fn a_conditional_gan_trains_then_generates_a_label_and_refuses_one_out_of_range() {
    let out = train("cgan", "cgan", (8 * 28, 8 * 28), &[]); // 64 samples in an 8×8 grid
    let g = out.join("generator.safetensors");
    let grid = out.join("sevens.png");
    let (ok, stdout, err) = fovea(&["generate", "--model", g.to_str().unwrap(), "-n", "9", "--label", "7", "-o", grid.to_str().unwrap()]);
    assert!(ok && stdout.contains("wrote 9 samples"), "{stdout}\n{err}");
    assert_eq!(png_size(&grid), (3 * 28, 3 * 28));
    // Six codes on a line between two random ones, all sevens: one row of 28 + 4 pixel cells.
    let strip = out.join("strip.png");
    let (ok, stdout, err) =
        fovea(&["generate", "--model", g.to_str().unwrap(), "-n", "6", "--label", "7", "--interpolate", "-o", strip.to_str().unwrap()]);
    assert!(ok && stdout.contains("wrote an interpolation strip of 6 steps"), "{stdout}\n{err}");
    assert_eq!(png_size(&strip), (6 * 32, 32));
    let (ok, _, err) =
        fovea(&["generate", "--model", g.to_str().unwrap(), "-n", "1", "--label", "7", "--interpolate", "-o", strip.to_str().unwrap()]);
    assert!(!ok && err.contains("need at least 2 steps"), "{err}");
    let (ok, _, err) = fovea(&["generate", "--model", g.to_str().unwrap(), "--label", "12", "-o", grid.to_str().unwrap()]);
    assert!(!ok && err.contains("label 12 is out of range for a conditional model with 10 classes"), "{err}");
}

#[test]
fn an_unconditional_gan_refuses_a_label_and_a_vae_is_trained_then_evaluated() {
    // With minibatch discrimination in the discriminator (0 kernels is refused by the layer).
    let out = train("gan", "gan", (8 * 28, 8 * 28), &["--minibatch-discrimination", "4"]);
    let (mnist, bad) = (out.parent().unwrap().join("mnist"), out.join("bad"));
    let args = [
        "train",
        "gan",
        "--minibatch-discrimination",
        "0",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--steps",
        "1",
        "-o",
        bad.to_str().unwrap(),
    ];
    let (ok, _, err) = fovea(&args);
    assert!(!ok && err.contains("num_kernels and kernel_dim must be >= 1, got 0 and 5"), "{err}");
    let g = out.join("generator.safetensors");
    let (ok, _, err) = fovea(&["generate", "--model", g.to_str().unwrap(), "--label", "1", "-o", out.join("x.png").to_str().unwrap()]);
    assert!(!ok && err.contains("is not a conditional generator"), "{err}");
    let dir = temp("vae");
    let mnist = dir.join("mnist");
    fake_mnist(&mnist);
    let vae_out = dir.join("out");
    let args = [
        "train",
        "vae",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--latent-dim",
        "2",
        "--epochs",
        "1",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "-o",
        vae_out.to_str().unwrap(),
    ];
    let (ok, stdout, err) = fovea(&args);
    assert!(ok && stdout.contains("test ELBO -"), "{stdout}\n{err}");
    // Ten decoded steps in one row, and the 15 × 15 manifold of the 2-D latent (cells 28 + 4).
    assert_eq!(png_size(&vae_out.join("interpolation.png")), (10 * 32, 32));
    assert_eq!(png_size(&vae_out.join("latent_manifold.png")), (15 * 32, 15 * 32));
    // The feature extractor: a LeNet-5 trained by the documented command on the same data.
    let lenet = dir.join("lenet.safetensors");
    let out = Command::new(env!("CARGO_BIN_EXE_fovea"))
        .env("FOVEA_DATA_DIR", &dir)
        .args(["train", "lenet5", "--dataset", "mnist", "--epochs", "1", "--verbose", "0", "-o", lenet.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let g = vae_out.join("generator.safetensors");
    let eval = [
        "evaluate-generator",
        "--model",
        g.to_str().unwrap(),
        "--classifier",
        lenet.to_str().unwrap(),
        "--data-dir",
        mnist.to_str().unwrap(),
        "-n",
        "3",
    ];
    let (ok, stdout, err) = fovea(&eval);
    assert!(
        ok && stdout.contains("Fréchet distance (84 features, 3 samples each): ") && stdout.contains("class coverage ("),
        "{stdout}\n{err}"
    );
    let missing = dir.join("no-such-classifier.safetensors");
    let (ok, _, err) = fovea(&[&eval[..3], &["--classifier", missing.to_str().unwrap(), "--data-dir", mnist.to_str().unwrap()]].concat());
    assert!(!ok && err.contains("no-such-classifier.safetensors"), "{err}");
    let (ok, _, err) = fovea(&["generate", "--model", mnist.join("t10k-labels-idx1-ubyte").to_str().unwrap(), "-o", "/dev/null"]);
    assert!(!ok && err.contains("t10k-labels-idx1-ubyte"), "a bad model file is named: {err}");
}

#[test]
fn an_autoencoder_trains_and_writes_its_code_histogram() {
    // The 3 test images above their 3 reconstructions: a 3 × 2 grid.
    let out = train("autoencoder", "ae", (3 * 28, 2 * 28), &[]);
    // 30 bins of 8 pixels, 120 tall; the table has a header and one line per bin.
    assert_eq!(png_size(&out.join("codes_histogram.png")), (30 * 8, 120));
    let table = std::fs::read_to_string(out.join("codes_histogram.txt")).unwrap();
    assert_eq!(table.lines().count(), 31, "{table}");
    // 3 test images × 64 code units.
    let count = |line: &str| line.split_whitespace().rev().find(|t| !t.starts_with('#')).unwrap().parse::<usize>().unwrap();
    let total: usize = table.lines().skip(1).map(count).sum();
    assert_eq!(total, 3 * 64, "{table}");
}
