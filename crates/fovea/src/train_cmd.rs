//! `fovea train MODEL`: a zoo model, a `--spec` config or a `--resume`d model file (Sequential
//! or functional) trained on a built-in dataset or an image folder, with the callbacks,
//! plots and files the flags ask for.

use crate::model_file::{self, ModelFile};
use crate::{build, data_train, distributed_cmd, images, model_from_spec, train_callbacks, zoo_name};
use crate::{parse_device, DatasetName, ScheduleName, ZooModel};
use fovea::core::{Device, Tensor};
use fovea::nn::losses::Loss;
use fovea::nn::mixed_precision::Policy;
use fovea::nn::model::io::save_model_with;
use fovea::nn::model::{FitOptions, Model};
use fovea::nn::optimizers::Optimizer;
use fovea::nn::schedules::LearningRate;
use fovea::vision::plots::{plot_history, CurveOptions};
use std::path::PathBuf;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// `fovea train`'s options.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The model to train.
    #[arg(value_enum, default_value = "lenet5")]
    model: ZooModel,
    /// Train this model instead: a Sequential model's JSON config (as `fovea summary NAME
    /// --config` prints it); the input shape comes from the dataset.
    #[arg(long, conflicts_with = "resume")]
    spec: Option<PathBuf>,
    /// Continue training a model file for --epochs more epochs: one saved by `fovea train -o`
    /// (architecture, weights and optimizer state), or a functional one from `fovea create`
    /// or `fovea convert` (compiled from --optimizer, --lr and --schedule when it holds no
    /// optimizer). With --data, images default to its input size and channels.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// The dataset.
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetName,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10)]
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
    /// Learning-rate schedule: `cosine` decays it to 0 over the run (Keras's CosineDecay),
    /// `constant` keeps it.
    #[arg(long, value_enum, default_value = "cosine")]
    schedule: ScheduleName,
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
    /// Where to draw the learning curves after training (.png or .svg).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Where to write the per-epoch logs as JSON (Keras's `history.history`).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    #[command(flatten)]
    callbacks: train_callbacks::CallbackArgs,
    #[command(flatten)]
    data_args: data_train::DataArgs,
    /// 0 silent, 1 progress bar (one line per epoch when not a terminal), 2 one line per epoch.
    #[arg(long, default_value_t = 1)]
    verbose: u8,
    /// Where the model's weights live and its ops run: cpu, reference (the slow
    /// specification backend), or cuda / cuda:N (in a build with a CUDA backend).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    /// Keras dtype policy: float32, or mixed_bfloat16 / mixed_float16 (layers compute in
    /// 16 bits, weights and optimizer state stay float32; float16 scales the loss).
    #[arg(long, default_value = "float32", value_parser = |s: &str| s.parse::<Policy>().map_err(|e| e.to_string()))]
    precision: Policy,
    /// Train as one replica of an MPI job (`mpirun -np N fovea train ... --distributed`):
    /// --batch-size is the global batch, split across the replicas.
    #[arg(long)]
    distributed: bool,
}

/// Runs `fovea train` with `args`.
///
/// # Errors
/// One line for a bad flag, an unreadable dataset or model file, a model that does not take
/// the data's images, or a failure while training or saving.
pub fn run(args: TrainArgs) -> AnyResult<()> {
    let TrainArgs {
        model,
        spec,
        resume,
        dataset,
        epochs,
        batch_size,
        optimizer,
        lr,
        schedule,
        validation_split,
        seed,
        limit,
        output,
        plot,
        history: history_path,
        callbacks,
        data_args,
        verbose,
        device,
        precision,
        distributed,
    } = args;
    // Before any model exists: layers take the policy when they are created.
    fovea::nn::mixed_precision::set_global_policy(precision);
    // An unusable device (no CUDA in this build, no such GPU) fails before any data is
    // read, with the backend's one-line reason.
    fovea::core::backend::backend(device)?;
    fovea::core::set_seed(seed);
    let (rank, replicas) = distributed_cmd::start(distributed)?;
    // Replica 0 prints and writes files; the others train silently beside it.
    let verbose = if rank == 0 { verbose } else { 0 };
    if limit == Some(0) {
        return Err("--limit must be at least 1".into());
    }
    // A misspelt plot path should fail now, not after the training it would have drawn.
    if let Some(p) = &plot {
        if !matches!(p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(), Some("png" | "svg")) {
            return Err(format!("--plot expects a .png or .svg file, got {}", p.display()).into());
        }
    }
    for (flag, path) in [("-o", &output), ("--plot", &plot), ("--history", &history_path)] {
        if let Some(path) = path {
            model_file::check_writable(flag, path)?;
        }
    }
    callbacks.check(validation_split)?;
    let built = spec.is_none() && resume.is_none();
    // A resumed file, Sequential or functional, is read first: its input sets --data's defaults.
    let resumed = match &resume {
        Some(path) => {
            let net = ModelFile::load(path)?;
            let input = net.input(path)?;
            Some((net, data_train::Resumed { path: path.clone(), input, class_names: model_file::class_names(path)? }))
        }
        None => None,
    };
    // A built-in dataset's image size is known before it is read (or fetched).
    if let (Some((_, r)), None) = (&resumed, &data_args.data) {
        let (shape, name) = (dataset.geometry().0, dataset.name());
        if r.input != shape {
            return Err(format!("{} takes {:?} inputs but {name} images are {shape:?}", r.path.display(), r.input).into());
        }
    }
    let (mut x, mut y, held_out, (input, classes), source, folder_classes) =
        match data_args.load(zoo_name(model), resumed.as_ref().map(|r| &r.1), built, validation_split, seed, verbose > 0)? {
            Some(f) => (f.x, f.y, f.validation.map(|v| ("Validation", v)), f.geometry, f.name, Some(f.class_names)),
            None => {
                let data = dataset.load()?;
                let test = (images(&data.test_images, dataset)?, data.test_labels.clone());
                let train = (images(&data.train_images, dataset)?, data.train_labels.clone());
                (train.0, train.1, Some(("Test", test)), dataset.geometry(), dataset.name().to_string(), None)
            }
        };
    // A folder's validation files are already held out; fit gets them as validation data.
    let validation_split = if data_args.data.is_some() { 0.0 } else { validation_split };
    if let Some(n) = limit {
        let n = n.min(x.dims()[0]);
        x = x.narrow(0, 0, n)?;
        y = y.narrow(0, 0, n)?;
    }
    let (net, what, saved_input, class_names) = match (resumed, &spec) {
        (Some((net, r)), _) => (net, r.path.display().to_string(), r.input, r.class_names),
        (None, Some(path)) => (ModelFile::Sequential(model_from_spec(path, input)?), path.display().to_string(), input, None),
        (None, None) => (ModelFile::Sequential(build(model, input, classes)?), zoo_name(model).to_string(), input, None),
    };
    let net = match net {
        ModelFile::Sequential(net) if data_args.augment => ModelFile::Sequential(data_train::augment(net, input, seed)?),
        other => other,
    };
    // The folder's class names were checked against the file's as the folder was read.
    if saved_input != input {
        return Err(format!("{what} takes {saved_input:?} inputs but {source} images are {input:?}").into());
    }
    // A folder's sorted class names go into the saved model, for `predict` and `evaluate`.
    let class_names = folder_classes.or(class_names);
    let job = Job {
        x,
        y,
        held_out,
        what,
        source,
        resumed: resume.is_some(),
        optimizer,
        lr,
        schedule,
        epochs,
        batch_size,
        validation_split,
        seed,
        verbose,
        rank,
        replicas,
        device,
        callbacks,
        output,
        history_path,
        plot,
        metadata: class_names.map(|n| model_file::class_names_metadata(&n)).into_iter().collect(),
    };
    match net {
        ModelFile::Sequential(net) => fit_and_save(&net, || Ok(net.summary()?), job),
        ModelFile::Functional(net) => fit_and_save(&net, || Ok(net.summary()?), job),
    }
}

/// Everything `fovea train` does once the data and the model are ready.
struct Job {
    x: Tensor,
    y: Tensor,
    held_out: Option<(&'static str, (Tensor, Tensor))>,
    what: String,
    source: String,
    resumed: bool,
    optimizer: String,
    lr: Option<f64>,
    schedule: ScheduleName,
    epochs: usize,
    batch_size: usize,
    validation_split: f64,
    seed: u64,
    verbose: u8,
    rank: usize,
    replicas: usize,
    device: Device,
    callbacks: train_callbacks::CallbackArgs,
    output: Option<PathBuf>,
    history_path: Option<PathBuf>,
    plot: Option<PathBuf>,
    metadata: Vec<(&'static str, String)>,
}

/// Compiles `net` from the flags (unless it was resumed with its own optimizer), fits it,
/// evaluates it on the held-out data and writes the files the flags ask for.
fn fit_and_save<M: Model>(net: &M, summary: impl FnOnce() -> AnyResult<String>, job: Job) -> AnyResult<()> {
    let Job { x, y, held_out, validation_split, epochs, batch_size, verbose, seed, rank, .. } = job;
    // The data stays on the host; `fit` and `evaluate` upload each batch to the model.
    net.to(job.device)?;
    // A resumed file keeps its optimizer and state; one without (`fovea create`) gets the flags'.
    if !job.resumed || !model_file::is_compiled(net) {
        let mut opt = Optimizer::from_name(&job.optimizer)?;
        let lr0 = job.lr.unwrap_or_else(|| opt.learning_rate.at(0));
        opt = match job.schedule {
            ScheduleName::Constant => opt.with_schedule(lr0.into()),
            ScheduleName::Cosine => {
                let train = x.dims()[0] - (x.dims()[0] as f64 * validation_split) as usize;
                let steps = (epochs * train.div_ceil(batch_size.max(1))) as f64;
                opt.with_schedule(LearningRate::CosineDecay {
                    initial_learning_rate: lr0,
                    decay_steps: steps.max(1.0),
                    alpha: 0.0,
                    warmup_target: None,
                    warmup_steps: 0.0,
                })
            }
        };
        net.compile(opt, Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
    }
    distributed_cmd::distribute(net)?;
    if verbose > 0 {
        println!("{}", summary()?);
        println!(
            "Training {} on {} {} images ({} held out for validation){}",
            job.what,
            x.dims()[0],
            job.source,
            match &held_out {
                Some(("Validation", (v, _))) => format!("{} more", v.dims()[0]),
                _ => format!("{:.0}%", validation_split * 100.0),
            },
            if job.replicas > 1 { format!(" with {} replicas", job.replicas) } else { String::new() }
        );
    }
    let mut callbacks = job.callbacks.build(net, rank == 0, &job.metadata);
    let mut callbacks: Vec<&mut dyn fovea::nn::callbacks::Callback> = callbacks.iter_mut().map(|c| c.as_mut() as _).collect();
    let validation_data = held_out.as_ref().filter(|(l, _)| *l == "Validation").map(|(_, v)| v.clone());
    let options = FitOptions { epochs, batch_size, validation_split, validation_data, verbose, seed: Some(seed), ..Default::default() };
    let history = net.fit_with_callbacks(&x, &y, options, &mut callbacks)?;
    if rank > 0 {
        return Ok(());
    }
    if let Some((label, (x, y))) = held_out {
        let m = net.evaluate(&x, &y, 256)?;
        println!("{label} loss: {:.4} - {label} accuracy: {:.4}", m["loss"], m["accuracy"]);
    }
    if let Some(path) = job.output {
        save_model_with(net, &path, &job.metadata)?;
        println!("Saved the model (architecture, weights, optimizer state) to {}", path.display());
    }
    if let Some(path) = job.history_path {
        history.save(&path)?;
        println!("Saved the per-epoch logs to {}", path.display());
    }
    if let Some(path) = job.plot {
        // The zoo model's name, or the --spec / --resume file's.
        let title = format!("{} on {}", job.what, job.source);
        plot_history(&history, &path, &CurveOptions { title: Some(title), ..Default::default() })?;
        println!("Saved the learning curves to {}", path.display());
    }
    Ok(())
}
