//! The detection commands: `fovea evaluate-detections` (COCO metrics of a results file) and
//! `fovea data make mnist-detection` (synthetic scenes from MNIST).

use clap::{Args, ValueEnum};
use fovea::data::mnist;
use fovea::vision::detection::coco::{read_results, CocoDataset};
use fovea::vision::detection::cocoeval::evaluate;
use fovea::vision::detection::scenes::{write_mnist_scenes, SceneOptions, SceneSplit};
use std::path::PathBuf;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// `fovea evaluate-detections`.
#[derive(Args)]
pub struct EvaluateArgs {
    /// Ground truth: a COCO `instances` JSON file.
    #[arg(long)]
    gt: PathBuf,
    /// Detections: a COCO results JSON file (a list of {image_id, category_id, bbox, score}).
    #[arg(long)]
    dt: PathBuf,
    /// Print one JSON object (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl) at
    /// full precision instead of pycocotools' 12 lines.
    #[arg(long)]
    json: bool,
}

/// Prints COCOeval's (bbox) summary of `--dt` against `--gt`.
pub fn evaluate_detections(args: EvaluateArgs) -> AnyResult<()> {
    let gt = CocoDataset::read(&args.gt)?;
    let dt = read_results(&args.dt, &gt)?;
    let ev = evaluate(&gt, &dt);
    let text = if args.json { format!("{}\n", ev.stats_json_text()) } else { ev.summary_text() };
    print_quietly(&text)
}

/// Writes to stdout; a reader that closed the pipe early (`| head -1`) ends the command quietly
/// rather than with `print!`'s panic.
fn print_quietly(text: &str) -> AnyResult<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// What `fovea data make` can generate.
#[derive(Clone, Copy, ValueEnum)]
pub enum MakeDataset {
    /// 128×128 scenes of 1–5 MNIST digits with COCO boxes.
    MnistDetection,
    /// The same scenes with masks: OUT/<split>/images/*.png and OUT/<split>/masks/*.png (pixel
    /// value 0 background, 1 + digit on its strokes).
    MnistSegmentation,
}

/// The split a generated dataset draws from.
#[derive(Clone, Copy, ValueEnum)]
pub enum SplitName {
    /// MNIST's training digits.
    Train,
    /// MNIST's test digits.
    Test,
}

/// `fovea data make`.
#[derive(Args)]
pub struct MakeArgs {
    /// The dataset to generate.
    #[arg(value_enum)]
    dataset: MakeDataset,
    /// Output folder: images go to OUT/<split>/, boxes to OUT/instances_<split>.json.
    #[arg(long)]
    out: PathBuf,
    /// Number of scenes.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Seed; the same seed writes the same files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Which MNIST digits to use: training scenes never show a test digit.
    #[arg(long, value_enum, default_value = "train")]
    split: SplitName,
    /// Read MNIST's IDX files from this folder instead of the data directory (no download).
    #[arg(long)]
    mnist_dir: Option<PathBuf>,
}

/// Generates the scenes and prints where they went.
pub fn make(args: MakeArgs) -> AnyResult<()> {
    let data = match &args.mnist_dir {
        Some(dir) => mnist::load_from(dir, fovea::core::Device::Cpu)?,
        None => mnist::load(fovea::core::Device::Cpu)?,
    };
    let split = match args.split {
        SplitName::Train => SceneSplit::Train,
        SplitName::Test => SceneSplit::Test,
    };
    if let MakeDataset::MnistSegmentation = args.dataset {
        let dir = crate::segmentation_cmd::make_segmentation(&data, split, args.count, args.seed, &args.out)?;
        return print_quietly(&format!("wrote {} scenes to {} (images/ and masks/)\n", args.count, dir.display()));
    }
    let opts = SceneOptions { count: args.count, seed: args.seed, ..Default::default() };
    let ds = write_mnist_scenes(&args.out, split, &data, &opts)?;
    print_quietly(&format!(
        "wrote {} scenes with {} digits to {} (boxes in {})\n",
        ds.images.len(),
        ds.annotations.len(),
        args.out.join(split.name()).display(),
        args.out.join(format!("instances_{}.json", split.name())).display()
    ))
}

/// `fovea train yolo`: parsed apart from the other `train` options, which are for classifiers.
#[derive(clap::Parser)]
#[command(
    name = "fovea train yolo",
    about = "Train the YOLO detector (tiny_yolo, 16×16 grid, 3 k-means anchors) on MNIST detection scenes"
)]
pub struct TrainYoloArgs {
    /// The dataset (scenes are drawn in memory: training digits for training, test digits for
    /// validation).
    #[arg(long, value_enum, default_value = "mnist-detection")]
    dataset: MakeDataset,
    /// Passes over the training scenes.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Scenes per gradient step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Training scenes.
    #[arg(long, default_value_t = 5000)]
    train_count: usize,
    /// Validation scenes, scored with COCO AP after every epoch.
    #[arg(long, default_value_t = 500)]
    val_count: usize,
    /// Filters of the first conv (16 gives the 553k-parameter model).
    #[arg(long, default_value_t = 16)]
    width: usize,
    /// Seed of weights, scenes and shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Checkpoint written after every epoch (.safetensors, for `fovea detect --model`).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Read MNIST's IDX files from this folder instead of the data directory.
    #[arg(long)]
    mnist_dir: Option<PathBuf>,
}

/// Runs `fovea train yolo ARGS…`; `args` starts after `train`, at `yolo`. Help and usage
/// errors exit through clap, as for every other command.
pub fn train_yolo(args: &[String]) -> AnyResult<()> {
    use clap::Parser;
    use fovea::vision::detection::scenes::{make_scenes, DigitSource};
    use fovea::vision::detection::yolo::{DecodeOptions, YoloGrid};
    use fovea::vision::detection::yolo_model::{
        evaluate_scenes, save_detector, scene_anchors, tiny_yolo, TinyYoloOptions, YoloTrainOptions,
    };
    let args = TrainYoloArgs::parse_from(std::iter::once("fovea train yolo".to_string()).chain(args.iter().skip(1).cloned()));
    if let MakeDataset::MnistSegmentation = args.dataset {
        return Err("train yolo: mnist-segmentation has masks, not boxes; use --dataset mnist-detection (or `fovea train unet`)".into());
    }
    fovea::core::set_seed(args.seed);
    let data = match &args.mnist_dir {
        Some(dir) => mnist::load_from(dir, fovea::core::Device::Cpu)?,
        None => mnist::load(fovea::core::Device::Cpu)?,
    };
    let scenes = |images: &fovea::core::Tensor, labels: &fovea::core::Tensor, count, seed| -> AnyResult<_> {
        let (pixels, classes) = (images.to_vec::<u8>()?, labels.to_vec::<i64>()?);
        let side = images.dims().get(1).copied().unwrap_or(0);
        Ok(make_scenes(&DigitSource { images: &pixels, labels: &classes, side }, &SceneOptions { count, seed, ..Default::default() })?)
    };
    let train = scenes(&data.train_images, &data.train_labels, args.train_count, args.seed)?;
    let val = scenes(&data.test_images, &data.test_labels, args.val_count, args.seed + 1)?;
    let opts = TinyYoloOptions { width: args.width, ..Default::default() };
    let grid = YoloGrid::new(16, 8.0, scene_anchors(&train, opts.anchors, args.seed)?, opts.classes)?;
    let model = tiny_yolo(&opts)?;
    let anchors: Vec<String> = grid.anchors.iter().map(|[w, h]| format!("{w:.1}×{h:.1}")).collect();
    println!("{} training and {} validation scenes; anchors {}", train.len(), val.len(), anchors.join(", "));
    let start = std::time::Instant::now();
    let train_opts = YoloTrainOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        seed: args.seed,
        ..Default::default()
    };
    fovea::vision::detection::yolo_model::train_yolo(&model, &grid, &train, &train_opts, |epoch, loss| {
        let seconds = start.elapsed().as_secs_f32();
        let stats = if val.is_empty() { [f64::NAN; 12] } else { evaluate_scenes(&model, &grid, &val, &DecodeOptions::default())?.stats() };
        println!("epoch {}/{}: loss {loss:.4}, val AP {:.4}, AP50 {:.4} ({seconds:.0} s)", epoch + 1, args.epochs, stats[0], stats[1]);
        if let Some(path) = &args.output {
            save_detector(&model, &opts, &grid, path)?;
        }
        Ok(())
    })?;
    if let Some(path) = &args.output {
        println!("saved {}", path.display());
    }
    Ok(())
}

/// `fovea detect`.
#[derive(Args)]
pub struct DetectArgs {
    /// A detector saved by `fovea train yolo -o`.
    #[arg(long)]
    model: PathBuf,
    /// Folder of grayscale PNG images the model's size (128×128 for the default model).
    #[arg(long)]
    images: PathBuf,
    /// Where to write the detections, a COCO results JSON file.
    #[arg(long)]
    out: PathBuf,
    /// Ground truth whose `images` give each file's id (matched by file name); without it, the
    /// n-th file in name order gets id n, as `fovea data make` numbers them.
    #[arg(long)]
    gt: Option<PathBuf>,
    /// Detections scoring at or below this are dropped.
    #[arg(long, default_value_t = 0.005)]
    score_threshold: f32,
}

/// Runs the detector on every PNG of a folder and writes COCO results.
pub fn detect(args: DetectArgs) -> AnyResult<()> {
    use fovea::vision::detection::coco::write_results;
    use fovea::vision::detection::yolo::{detections_to_coco, DecodeOptions};
    use fovea::vision::detection::yolo_model::{detect, load_detector};
    let (model, opts, grid) = load_detector(&args.model)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.images)
        .map_err(|e| format!("cannot read {}: {e}", args.images.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    let by_name: Option<std::collections::HashMap<String, i64>> = match &args.gt {
        Some(gt) => Some(CocoDataset::read(gt)?.images.iter().map(|i| (file_stem(&i.file_name), i.id)).collect()),
        None => None,
    };
    let (h, w, c) = opts.input_shape;
    let mut pixels = Vec::with_capacity(files.len() * h * w * c);
    let mut ids = Vec::with_capacity(files.len());
    for (k, path) in files.iter().enumerate() {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let img =
            fovea::vision::image::decode_image(&bytes, c, fovea::core::Device::Cpu).map_err(|e| format!("{}: {e}", path.display()))?;
        if img.dims() != [h, w, c] {
            return Err(format!("{}: the model takes {h}×{w}×{c} images, this one is {:?}", path.display(), img.dims()).into());
        }
        pixels.extend(img.to_vec::<u8>()?.into_iter().map(|p| p as f32 / 255.0));
        ids.push(match &by_name {
            Some(map) => {
                let name = file_stem(&path.to_string_lossy());
                *map.get(&name).ok_or_else(|| format!("{}: no image named {name} in --gt", path.display()))?
            }
            None => k as i64 + 1,
        });
    }
    let x = fovea::core::Tensor::from_vec(pixels, vec![files.len(), h, w, c], fovea::core::Device::Cpu)?;
    let decode = DecodeOptions { score_threshold: args.score_threshold, ..Default::default() };
    let dets = detect(&model, &grid, &x, 32, &decode)?;
    let results = detections_to_coco(&dets, &ids, &(0..opts.classes as i64).collect::<Vec<_>>())?;
    write_results(&args.out, &results)?;
    print_quietly(&format!("{} detections in {} images written to {}\n", results.len(), files.len(), args.out.display()))
}

/// A file name without folders, so `test/000001.png` in COCO matches `DIR/000001.png`.
fn file_stem(name: &str) -> String {
    std::path::Path::new(name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
