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
    let MakeDataset::MnistDetection = args.dataset;
    let data = match &args.mnist_dir {
        Some(dir) => mnist::load_from(dir, fovea::core::Device::Cpu)?,
        None => mnist::load(fovea::core::Device::Cpu)?,
    };
    let split = match args.split {
        SplitName::Train => SceneSplit::Train,
        SplitName::Test => SceneSplit::Test,
    };
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
