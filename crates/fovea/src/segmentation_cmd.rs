//! The segmentation commands: `fovea train unet` (a U-Net on MNIST segmentation scenes drawn
//! in memory, with mean IoU per epoch), `fovea segment` (mask PNGs for a folder of images) and
//! the writer behind `fovea data make mnist-segmentation`.

use clap::Args;
use fovea::core::{Device, Tensor};
use fovea::data::mnist;
use fovea::vision::applications::{unet_with, UNetOptions};
use fovea::vision::detection::scenes::{SceneOptions, SceneSplit};
use fovea::vision::segmentation::data::{
    mnist_segmentation_scenes, scenes_to_tensors, write_gray_png, write_segmentation_scenes, MNIST_SEGMENTATION_CLASSES,
};
use fovea::vision::segmentation::losses::PixelLossOptions;
use fovea::vision::segmentation::palette::{overlay, voc_palette, write_rgb_png};
use fovea::vision::segmentation::train::{evaluate, load_unet, predict_labels, save_unet, train_step};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Writes `count` MNIST segmentation scenes to `out/<split>/images` and `out/<split>/masks`;
/// returns the folder.
pub fn make_segmentation(data: &mnist::Split, split: SceneSplit, count: usize, seed: u64, out: &Path) -> AnyResult<PathBuf> {
    let opts = SceneOptions { count, seed, ..Default::default() };
    let scenes = mnist_segmentation_scenes(data, split, &opts)?;
    let dir = out.join(split.name());
    write_segmentation_scenes(&dir, &scenes, opts.size)?;
    Ok(dir)
}

/// The datasets `fovea train unet` knows.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SegDataset {
    /// 128×128 scenes of 1–5 MNIST digits; 11 classes (background, digits 0–9).
    MnistSegmentation,
}

/// `fovea train unet`: parsed apart from the other `train` options, which are for classifiers.
#[derive(clap::Parser)]
#[command(name = "fovea train unet", about = "Train a U-Net (unet_small by default) on MNIST segmentation scenes")]
pub struct TrainUnetArgs {
    /// The dataset (scenes drawn in memory: training digits for training, test digits for the
    /// test scenes scored after every epoch).
    #[arg(long, value_enum, default_value = "mnist-segmentation")]
    dataset: SegDataset,
    /// Passes over the training scenes.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Scenes per gradient step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Training scenes.
    #[arg(long, default_value_t = 2000)]
    train_count: usize,
    /// Test scenes (test digits), scored with mean IoU over the 11 classes after every epoch.
    #[arg(long, default_value_t = 1000)]
    val_count: usize,
    /// Filters of the first block (16: `unet_small`).
    #[arg(long, default_value_t = 16)]
    filters: usize,
    /// Poolings.
    #[arg(long, default_value_t = 3)]
    depth: usize,
    /// Loss weight of background pixels (digits weigh 1): below 1 keeps the ~95 % background
    /// from drowning the digits' gradient.
    #[arg(long, default_value_t = 1.0)]
    background_weight: f32,
    /// Stop after this many seconds of training (gradient steps, not the evaluations; checked
    /// after each step); 0: no limit.
    #[arg(long, default_value_t = 0)]
    time_limit: u64,
    /// Seed of weights, scenes and shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model file written after every epoch (.safetensors, for `fovea segment --model`).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Read MNIST's IDX files from this folder instead of the data directory.
    #[arg(long)]
    mnist_dir: Option<PathBuf>,
}

/// Runs `fovea train unet ARGS…`; `args` starts after `train`, at `unet`.
pub fn train_unet(args: &[String]) -> AnyResult<()> {
    use clap::Parser;
    let args = TrainUnetArgs::parse_from(std::iter::once("fovea train unet".to_string()).chain(args.iter().skip(1).cloned()));
    let SegDataset::MnistSegmentation = args.dataset;
    if args.batch_size == 0 || args.train_count == 0 {
        return Err(format!(
            "train unet: needs a positive --batch-size and --train-count, got {} and {}",
            args.batch_size, args.train_count
        )
        .into());
    }
    fovea::core::set_seed(args.seed);
    let data = match &args.mnist_dir {
        Some(dir) => mnist::load_from(dir, Device::Cpu)?,
        None => mnist::load(Device::Cpu)?,
    };
    let scene_opts = |count, seed| SceneOptions { count, seed, ..Default::default() };
    let train = mnist_segmentation_scenes(&data, SceneSplit::Train, &scene_opts(args.train_count, args.seed))?;
    let val = mnist_segmentation_scenes(&data, SceneSplit::Test, &scene_opts(args.val_count, args.seed + 1))?;
    let side = SceneOptions::default().size;
    let (val_x, val_y) = scenes_to_tensors(&val, side, Device::Cpu)?;
    let classes = MNIST_SEGMENTATION_CLASSES;
    let opts = UNetOptions {
        input_shape: (side, side, 1),
        classes,
        filters: args.filters,
        depth: args.depth,
        batch_norm: true,
        name: if (args.filters, args.depth) == (16, 3) { "unet_small".into() } else { format!("unet_f{}_d{}", args.filters, args.depth) },
    };
    let model = unet_with(&opts)?;
    let params: usize = fovea::nn::layer::Layer::weights(&model).iter().map(|v| v.value().numel()).sum();
    println!("{}: {params} parameters; {} training and {} test scenes", opts.name, train.len(), val.len());
    let mut optimizer = fovea::nn::optimizers::Optimizer::adam(args.lr);
    let mut weights = vec![1.0; classes];
    weights[0] = args.background_weight;
    let loss = PixelLossOptions { class_weights: Some(weights), ..Default::default() };
    let live = std::io::stdout().is_terminal();
    // Training time counts the gradient steps only, so the per-epoch evaluation does not eat
    // into the --time-limit budget.
    let mut trained = std::time::Duration::ZERO;
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut rng = fovea::core::random::Rng::new(args.seed ^ 0x5eed);
    let steps = train.len().div_ceil(args.batch_size);
    let mut last = None;
    let out_of_time = |trained: std::time::Duration| args.time_limit > 0 && trained.as_secs() >= args.time_limit;
    for epoch in 0..args.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let (mut total, mut done) = (0f64, 0usize);
        for idx in order.chunks(args.batch_size) {
            let batch: Vec<_> = idx.iter().map(|&i| train[i].clone()).collect();
            let step_start = std::time::Instant::now();
            let (x, y) = scenes_to_tensors(&batch, side, Device::Cpu)?;
            total += f64::from(train_step(&model, &mut optimizer, &x, &y, &loss)?);
            trained += step_start.elapsed();
            done += 1;
            if live {
                let filled = done * 30 / steps;
                print!("\r{done}/{steps} [{}{}] loss {:.4}", "=".repeat(filled), ".".repeat(30 - filled), total / done as f64);
                std::io::stdout().flush()?;
            }
            if out_of_time(trained) {
                break;
            }
        }
        let train_s = trained.as_secs_f64();
        let m = evaluate(&model, &val_x, &val_y, classes, 32)?;
        let (miou, accuracy) = (m.mean_iou(), m.pixel_accuracy());
        last = Some(m);
        if live {
            println!();
        }
        println!(
            "epoch {}/{}: loss {:.4}, val mean IoU {:.4}, pixel accuracy {:.4} ({train_s:.0} s training)",
            epoch + 1,
            args.epochs,
            total / done.max(1) as f64,
            miou,
            accuracy
        );
        if let Some(path) = &args.output {
            save_unet(&model, &opts, path)?;
        }
        if out_of_time(trained) {
            println!("stopped: --time-limit {} s reached", args.time_limit);
            break;
        }
    }
    // The last epoch's scores are the final model's; evaluate only when no epoch ran.
    let m = match last {
        Some(m) => m,
        None => evaluate(&model, &val_x, &val_y, classes, 32)?,
    };
    let ious: Vec<String> = m.class_iou().iter().map(|v| format!("{v:.3}")).collect();
    println!("per-class IoU (background, 0–9): {}", ious.join(" "));
    if let Some(path) = &args.output {
        println!("saved {}", path.display());
    }
    Ok(())
}

/// `fovea segment`.
#[derive(Args)]
pub struct SegmentArgs {
    /// A model file from `fovea train unet -o`.
    #[arg(long)]
    model: PathBuf,
    /// Folder of PNG images of the model's size.
    #[arg(long)]
    images: PathBuf,
    /// Folder for the mask PNGs (same file names; pixel value = class).
    #[arg(long)]
    out: PathBuf,
    /// Also write overlays (classes in Pascal VOC's colours blended half over the image) here.
    #[arg(long)]
    overlays: Option<PathBuf>,
}

/// Writes one mask PNG per image of a folder.
pub fn segment(args: SegmentArgs) -> AnyResult<()> {
    let (model, opts) = load_unet(&args.model)?;
    let (h, w, c) = opts.input_shape;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.images)
        .map_err(|e| format!("cannot read {}: {e}", args.images.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no PNG images", args.images.display()).into());
    }
    let mut pixels = Vec::with_capacity(files.len() * h * w * c);
    for path in &files {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let img = fovea::vision::image::decode_image(&bytes, c, Device::Cpu).map_err(|e| format!("{}: {e}", path.display()))?;
        if img.dims() != [h, w, c] {
            return Err(format!("{}: the model takes {h}×{w}×{c} images, this one is {:?}", path.display(), img.dims()).into());
        }
        pixels.extend(img.to_vec::<u8>()?.into_iter().map(|p| f32::from(p) / 255.0));
    }
    let x = Tensor::from_vec(pixels, vec![files.len(), h, w, c], Device::Cpu)?;
    let labels = predict_labels(&model, &x, 32)?.to_vec::<i64>()?;
    for dir in std::iter::once(&args.out).chain(&args.overlays) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let (palette, pixels) = (voc_palette(), x.to_vec::<f32>()?);
    for (k, (path, mask)) in files.iter().zip(labels.chunks(h * w)).enumerate() {
        let values: Vec<u8> = mask.iter().map(|&v| v as u8).collect();
        let name = path.file_name().unwrap_or_default();
        write_gray_png(&args.out.join(name), &values, h, w)?;
        if let Some(dir) = &args.overlays {
            let image: Vec<u8> = pixels[k * h * w * c..(k + 1) * h * w * c].iter().map(|&p| (p * 255.0).round() as u8).collect();
            // Colour images keep their colours; the overlay reads grey or RGB.
            let image = if c == 3 || c == 1 { image } else { image.chunks(c).map(|p| p[0]).collect() };
            write_rgb_png(&dir.join(name), &overlay(&image, &values, &palette, 0.5)?, h, w)?;
        }
    }
    println!("{} masks written to {}", files.len(), args.out.display());
    Ok(())
}
