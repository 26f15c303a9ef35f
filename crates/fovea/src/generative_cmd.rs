//! The generative commands: `fovea train autoencoder|vae|gan|dcgan|wgan|wgan-gp|cgan` (a model trained
//! through its own train step on MNIST or Fashion-MNIST, writing the generator and a sample
//! grid each epoch), `fovea generate` (a grid of samples from a saved generator) and
//! `fovea evaluate-generator` (Fréchet distance and class coverage on a classifier's features).

use clap::{Parser, ValueEnum};
use fovea::core::{DType, Device, Tensor};
use fovea::data::{fashion_mnist, mnist};
use fovea::nn::callbacks::SummaryWriter;
use fovea::nn::layers::{Dense, Flatten, Reshape};
use fovea::nn::model::io::{load_model, read_weights, save_model_with};
use fovea::nn::model::{FitOptions, Model, Sequential};
use fovea::nn::optimizers::Optimizer;
use fovea::vision::generative::gan::{dcgan_discriminator, dcgan_generator, dense_discriminator, dense_generator};
use fovea::vision::generative::visual::{
    interpolate_latents, latent_histogram, save_interpolation_strip, save_latent_manifold, DecoderOutput,
};
use fovea::vision::generative::{with_minibatch_discrimination, Autoencoder, Gan, GanLoss, Vae};
use fovea::vision::image::save_image_grid;
use std::path::{Path, PathBuf};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The metadata key of a saved generator: its latent size, classes and output range.
const GENERATOR_KEY: &str = "fovea.generator";

/// What `fovea train` can train here.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Kind {
    /// A dense autoencoder (784 → 64 → 784); `--noise` makes it denoising.
    Autoencoder,
    /// A dense VAE (784 → 512 → μ, log σ² → 512 → 784, Bernoulli decoder).
    Vae,
    /// A dense GAN.
    Gan,
    /// DCGAN: transposed convolutions with batch norm, LeakyReLU discriminator.
    Dcgan,
    /// WGAN: DCGAN's networks, critic without sigmoid, clipping ±0.01, RMSprop, 5 critic steps.
    Wgan,
    /// WGAN-GP: DCGAN's networks, gradient penalty λ = 10 instead of clipping, Adam(1e-4, 0.5,
    /// 0.9), 5 critic steps.
    WganGp,
    /// A conditional DCGAN: the one-hot label concatenated to z and to x.
    Cgan,
}

/// The datasets of 28×28 grey images.
#[derive(Clone, Copy, ValueEnum)]
pub enum Dataset {
    /// Handwritten digits.
    Mnist,
    /// Clothing.
    FashionMnist,
}

/// `fovea train autoencoder|vae|gan|dcgan|wgan|wgan-gp|cgan`.
#[derive(Parser)]
pub(crate) struct TrainArgs {
    /// The model.
    kind: Kind,
    /// The training images.
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: Dataset,
    /// Read the dataset's files from this folder instead of the cache.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Passes over the data (or `--steps` batches each).
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Batches per epoch (default: the whole training set).
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// The size of the latent code z.
    #[arg(long, default_value_t = 64)]
    latent_dim: usize,
    /// One-sided label smoothing of the real labels (GAN, DCGAN, cGAN).
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f32,
    /// Minibatch discrimination (Salimans et al. 2016) with this many kernels of 5 values,
    /// before the discriminator's head (GAN kinds).
    #[arg(long)]
    minibatch_discrimination: Option<usize>,
    /// Gaussian input noise of a denoising autoencoder.
    #[arg(long, default_value_t = 0.0)]
    noise: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write each epoch's sample grid to TensorBoard (an image summary `samples`) under
    /// this folder.
    #[arg(long)]
    tensorboard: Option<PathBuf>,
    /// Output folder: `generator.safetensors` and `samples_epoch_N.png`; an autoencoder also
    /// writes `codes_histogram.png` / `.txt`, a VAE `interpolation.png` (and
    /// `latent_manifold.png` with `--latent-dim 2`).
    #[arg(short, long)]
    output: PathBuf,
}

/// `fovea generate`.
#[derive(Parser)]
pub(crate) struct GenerateArgs {
    /// A generator written by `fovea train gan|dcgan|wgan|cgan|vae`.
    #[arg(long)]
    model: PathBuf,
    /// The number of samples.
    #[arg(short, default_value_t = 64)]
    n: usize,
    /// The class of every sample (conditional generators).
    #[arg(long)]
    label: Option<i64>,
    /// Decode `n` codes evenly spaced between two random ones, written as one row (an
    /// interpolation strip) instead of a grid.
    #[arg(long)]
    interpolate: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The PNG grid to write.
    #[arg(short, long)]
    output: PathBuf,
}

/// Runs `argv` when it is one of these commands; `None` leaves it to the main parser.
pub fn dispatch(argv: &[String]) -> Option<AnyResult<()>> {
    let kinds = KINDS;
    let (cmd, sub) = (argv.get(1).map(String::as_str), argv.get(2).map(String::as_str));
    let rest = || argv.iter().skip(2).cloned();
    match (cmd, sub) {
        (Some("train"), Some(k)) if kinds.contains(&k) => {
            let args = TrainArgs::parse_from(std::iter::once("fovea train".to_string()).chain(rest()));
            Some(fovea::core::on_pool(|| train(&args).map_err(|e| e.to_string())).map_err(Into::into))
        }
        (Some("evaluate-generator"), _) => {
            let args = EvaluateArgs::parse_from(std::iter::once("fovea evaluate-generator".to_string()).chain(rest()));
            Some(fovea::core::on_pool(|| evaluate(&args).map_err(|e| e.to_string())).map_err(Into::into))
        }
        (Some("generate"), _) => {
            let args = GenerateArgs::parse_from(std::iter::once("fovea generate".to_string()).chain(rest()));
            Some(fovea::core::on_pool(|| generate(&args).map_err(|e| e.to_string())).map_err(Into::into))
        }
        _ => None,
    }
}

/// The models `fovea train KIND` trains here.
pub const KINDS: [&str; 7] = ["autoencoder", "vae", "gan", "dcgan", "wgan", "wgan-gp", "cgan"];

/// The commands [`dispatch`] parses before clap's tree, for the completion scripts: `generate`,
/// `evaluate-generator`, and one `train KIND` per generative model.
pub fn completion_commands() -> (Vec<clap::Command>, Vec<clap::Command>) {
    use clap::CommandFactory;
    let top = vec![
        GenerateArgs::command().name("generate").about("Sample images from a generator written by `fovea train gan|dcgan|wgan|cgan|vae`"),
        EvaluateArgs::command()
            .name("evaluate-generator")
            .about("Fréchet distance and class coverage of a generator's samples against real test images"),
    ];
    let train = KINDS
        .iter()
        .map(|k| TrainArgs::command().name(*k).about(format!("Train the {k} generative model")).mut_arg("kind", |a| a.hide(true)))
        .collect();
    (top, train)
}

/// Lays `[N, H, W, 1]` images out in a square grid and writes it as a grey PNG; `tanh` images
/// are in `[-1, 1]`, others in `[0, 1]`.
fn write_grid(images: &Tensor, tanh: bool, path: &Path) -> AnyResult<()> {
    let d = images.dims().to_vec();
    if d.len() != 4 || d[3] != 1 {
        return Err(format!("a sample grid needs images [N, H, W, 1], got shape {}", images.shape()).into());
    }
    let (n, h, w) = (d[0], d[1], d[2]);
    let cols = (n as f64).sqrt().ceil().max(1.0) as usize;
    let rows = n.div_ceil(cols).max(1);
    let px = images.to_vec::<f32>()?;
    let mut grid = vec![0u8; rows * h * cols * w];
    for (i, img) in px.chunks(h * w).enumerate() {
        let (r0, c0) = (i / cols * h, i % cols * w);
        for (j, &v) in img.iter().enumerate() {
            let v = if tanh { (v + 1.0) / 2.0 } else { v };
            grid[(r0 + j / w) * cols * w + c0 + j % w] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    let png = fovea::vision::image::encode_png(&Tensor::from_vec(grid, [rows * h, cols * w, 1], Device::Cpu)?)?;
    std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// Images `[N, 28, 28, 1]` as f32 in `[0, 1]` (or `[-1, 1]` for tanh generators).
fn images(raw: &Tensor, tanh: bool) -> AnyResult<Tensor> {
    let x = raw.cast(DType::F32)?.mul_scalar(1.0 / 255.0)?.reshape(&[-1, 28, 28, 1])?;
    Ok(if tanh { x.mul_scalar(2.0)?.add_scalar(-1.0)? } else { x })
}

fn load(dataset: Dataset, dir: Option<&Path>) -> AnyResult<mnist::Split> {
    Ok(match (dataset, dir) {
        (Dataset::Mnist, Some(dir)) => mnist::load_from(dir, Device::Cpu)?,
        (Dataset::Mnist, None) => mnist::load(Device::Cpu)?,
        (Dataset::FashionMnist, Some(dir)) => fashion_mnist::load_from(dir, Device::Cpu)?,
        (Dataset::FashionMnist, None) => fashion_mnist::load(Device::Cpu)?,
    })
}

fn dense_stack(units: &[usize], input: Option<&[usize]>) -> AnyResult<Sequential> {
    let s = match input {
        Some(shape) => Sequential::with_input_shape(shape),
        None => Sequential::new(),
    };
    if input.is_some_and(|s| s.len() > 1) {
        s.add(Flatten::new())?;
    }
    let last = units.len() - 1;
    for (i, &u) in units.iter().enumerate() {
        let act = if i < last { fovea::nn::activations::Activation::Relu } else { fovea::nn::activations::Activation::Linear };
        s.add(Dense::new(u).activation(act))?;
    }
    Ok(s)
}

fn train(args: &TrainArgs) -> AnyResult<()> {
    fovea::core::set_seed(args.seed);
    let data = load(args.dataset, args.data_dir.as_deref())?;
    std::fs::create_dir_all(&args.output).map_err(|e| format!("{}: {e}", args.output.display()))?;
    let gan_kind = !matches!(args.kind, Kind::Autoencoder | Kind::Vae);
    let (x, y) = (images(&data.train_images, gan_kind)?, data.train_labels.clone());
    let test = images(&data.test_images, gan_kind)?;
    let opts = |epoch: usize| FitOptions {
        epochs: epoch + 1,
        initial_epoch: epoch,
        batch_size: args.batch_size,
        steps_per_epoch: args.steps,
        seed: Some(args.seed),
        ..Default::default()
    };
    let meta = |classes: Option<usize>, tanh: bool| {
        vec![(GENERATOR_KEY, serde_json::json!({"latent_dim": args.latent_dim, "num_classes": classes, "tanh": tanh}).to_string())]
    };
    let gen_path = args.output.join("generator.safetensors");
    let grid = |epoch: usize| args.output.join(format!("samples_epoch_{}.png", epoch + 1));
    let mut board = args.tensorboard.as_ref().map(SummaryWriter::new).transpose()?;
    // The PNG just written, as a TensorBoard image of the epoch.
    let mut to_board = |epoch: usize| -> AnyResult<()> {
        if let Some(w) = board.as_mut() {
            let png = std::fs::read(grid(epoch)).map_err(|e| format!("{}: {e}", grid(epoch).display()))?;
            w.image("samples", &fovea::vision::image::decode_png(&png, 1, Device::Cpu)?, epoch as i64)?;
            w.flush()?;
        }
        Ok(())
    };
    let start = std::time::Instant::now();
    match args.kind {
        Kind::Autoencoder => {
            let enc = dense_stack(&[256, 64], Some(&[28, 28, 1]))?;
            let dec = dense_stack(&[256, 784], None)?;
            dec.add(Reshape::new(&[28, 28, 1]))?;
            let ae = Autoencoder::new(enc, dec, Optimizer::adam(1e-3)).denoising(args.noise);
            let shown = test.narrow(0, 0, test.dims()[0].min(32))?;
            for epoch in 0..args.epochs {
                ae.fit_multi(std::slice::from_ref(&x), &[], opts(epoch), &mut [])?;
                // Top half the test inputs, bottom half their reconstructions.
                let recon = ae.predict(&shown, 32)?;
                write_grid(&Tensor::concat(&[&shown, &recon], 0)?, false, &grid(epoch))?;
                to_board(epoch)?;
            }
            let loss = ae.evaluate_multi(std::slice::from_ref(&test), &[], 256)?["loss"];
            println!("test reconstruction loss {loss:.2} nats per image ({:.0} s)", start.elapsed().as_secs_f64());
            // The codes of the test images, as the seeds' histogram summary of the latent.
            let histogram = latent_histogram(&ae.encoder.predict(&test, 256)?, 30)?;
            histogram.save(args.output.join("codes_histogram.png"), 120)?;
            histogram.save(args.output.join("codes_histogram.txt"), 120)?;
            save_model_with(&ae.decoder, &gen_path, &meta(None, false))?;
        }
        Kind::Vae => {
            let enc = Sequential::with_input_shape(&[28, 28, 1]);
            enc.add(Flatten::new())?;
            enc.add(Dense::new(512).activation(fovea::nn::activations::Activation::Relu))?;
            let dec = Sequential::with_input_shape(&[args.latent_dim]);
            dec.add(Dense::new(512).activation(fovea::nn::activations::Activation::Relu))?;
            dec.add(Dense::new(784))?;
            dec.add(Reshape::new(&[28, 28, 1]))?;
            let vae = Vae::new(enc, args.latent_dim, dec, Optimizer::adam(1e-3));
            for epoch in 0..args.epochs {
                vae.fit_multi(std::slice::from_ref(&x), &[], opts(epoch), &mut [])?;
                let z = Tensor::random_normal([64, args.latent_dim], 0.0, 1.0, None, Device::Cpu)?;
                write_grid(&vae.decoder.predict(&z, 64)?.sigmoid()?, false, &grid(epoch))?;
                to_board(epoch)?;
            }
            let logs = vae.evaluate_multi(std::slice::from_ref(&test), &[], 256)?;
            println!(
                "test ELBO {:.2} nats per image (reconstruction {:.2}, KL {:.2}; one posterior sample per image) ({:.0} s)",
                -logs["loss"],
                logs["reconstruction_loss"],
                logs["kl_loss"],
                start.elapsed().as_secs_f64()
            );
            // Ten steps between the posterior means of the first two test images.
            if test.dims()[0] >= 2 {
                let (mu, _) = vae.encode(&test.narrow(0, 0, 2)?, false)?;
                let (a, b) = (mu.narrow(0, 0, 1)?, mu.narrow(0, 1, 1)?);
                save_interpolation_strip(
                    args.output.join("interpolation.png"),
                    &vae.decoder,
                    &a,
                    &b,
                    10,
                    [28, 28, 1],
                    DecoderOutput::Logits,
                )?;
            }
            if args.latent_dim == 2 {
                save_latent_manifold(args.output.join("latent_manifold.png"), &vae.decoder, 15, [28, 28, 1], DecoderOutput::Logits)?;
            }
            save_model_with(&vae.decoder, &gen_path, &meta(None, false))?;
        }
        _ => {
            let classes = (args.kind == Kind::Cgan).then_some(10);
            let c = classes.unwrap_or(0);
            let (g, d) = match args.kind {
                Kind::Gan => (dense_generator()?, dense_discriminator(c)?),
                _ => (dcgan_generator()?, dcgan_discriminator(c)?),
            };
            let d = match args.minibatch_discrimination {
                Some(b) => with_minibatch_discrimination(d, b, 5)?,
                None => d,
            };
            let (g_opt, d_opt, loss) = if args.kind == Kind::Wgan {
                (Optimizer::rmsprop(5e-4), Optimizer::rmsprop(5e-4), GanLoss::Wasserstein { n_critic: 5, clip: 0.01 })
            } else {
                let adam = || {
                    Optimizer::new(
                        fovea::nn::optimizers::Algorithm::Adam { beta_1: 0.5, beta_2: 0.999, epsilon: 1e-7, amsgrad: false },
                        2e-4,
                    )
                };
                (adam(), adam(), GanLoss::Standard { label_smoothing: args.label_smoothing })
            };
            let gan = Gan::new(g, d, args.latent_dim, classes, g_opt, d_opt)?.with_loss(loss)?;
            let targets: Vec<Tensor> = if classes.is_some() { vec![y.clone()] } else { vec![] };
            let labels: Option<Vec<i64>> = classes.map(|c| (0..64).map(|i| i % c as i64).collect());
            for epoch in 0..args.epochs {
                gan.fit_multi(std::slice::from_ref(&x), &targets, opts(epoch), &mut [])?;
                write_grid(&gan.generate(64, labels.as_deref())?, true, &grid(epoch))?;
                to_board(epoch)?;
                save_model_with(&gan.generator, &gen_path, &meta(classes, true))?;
            }
            println!("trained in {:.0} s", start.elapsed().as_secs_f64());
        }
    }
    println!("wrote {} and {} sample grids to {}", gen_path.display(), args.epochs, args.output.display());
    Ok(())
}

/// `n` samples in `[0, 1]` from a generator written by `fovea train` (one class for all when
/// `label` is given; classes in turn for a conditional generator otherwise).
fn sample(model: &Path, n: usize, label: Option<i64>, interpolate: bool) -> AnyResult<Tensor> {
    let file = read_weights(model)?;
    let meta: serde_json::Value = serde_json::from_str(
        file.metadata
            .get(GENERATOR_KEY)
            .ok_or_else(|| format!("{}: not a generator written by `fovea train` (no {GENERATOR_KEY} metadata)", model.display()))?,
    )?;
    let latent = meta["latent_dim"].as_u64().ok_or("the generator's metadata has no latent_dim")? as usize;
    let classes = meta["num_classes"].as_u64().map(|c| c as usize);
    let g = load_model(model)?;
    let mut z = if interpolate {
        let ends = Tensor::random_normal([2, latent], 0.0, 1.0, None, Device::Cpu)?;
        interpolate_latents(&ends.narrow(0, 0, 1)?, &ends.narrow(0, 1, 1)?, n)?
    } else {
        Tensor::random_normal([n, latent], 0.0, 1.0, None, Device::Cpu)?
    };
    match (classes, label) {
        (Some(c), Some(l)) if l < 0 || l >= c as i64 => {
            return Err(format!("label {l} is out of range for a conditional model with {c} classes (0..={})", c - 1).into())
        }
        (Some(c), Some(l)) => z = Tensor::concat(&[&z, &Tensor::one_hot(&Tensor::full([n], l as f64, DType::I64, Device::Cpu)?, c)?], 1)?,
        (Some(c), None) => {
            let labels: Vec<i64> = (0..n as i64).map(|i| i % c as i64).collect();
            z = Tensor::concat(&[&z, &Tensor::one_hot(&Tensor::from_vec(labels, [n], Device::Cpu)?, c)?], 1)?;
        }
        (None, Some(l)) => return Err(format!("--label {l} given, but {} is not a conditional generator", model.display()).into()),
        (None, None) => {}
    }
    let out = g.predict(&z, 64)?;
    Ok(if meta["tanh"].as_bool().unwrap_or(true) { out.add_scalar(1.0)?.mul_scalar(0.5)? } else { out.sigmoid()? })
}

fn generate(args: &GenerateArgs) -> AnyResult<()> {
    fovea::core::set_seed(args.seed);
    let images = sample(&args.model, args.n, args.label, args.interpolate)?;
    if args.interpolate {
        save_image_grid(&args.output, &images, &[], args.n)?;
        println!("wrote an interpolation strip of {} steps to {}", args.n, args.output.display());
    } else {
        write_grid(&images, false, &args.output)?;
        println!("wrote {} samples to {}", args.n, args.output.display());
    }
    Ok(())
}

/// `fovea evaluate-generator`.
#[derive(Parser)]
pub(crate) struct EvaluateArgs {
    /// A generator written by `fovea train gan|dcgan|wgan|cgan|vae`.
    #[arg(long)]
    model: PathBuf,
    /// The feature extractor: a classifier from `fovea train lenet5 --dataset mnist -o FILE`
    /// (inputs in [0, 1]); its penultimate layer gives the features.
    #[arg(long)]
    classifier: PathBuf,
    /// The real images compared against (their test split).
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: Dataset,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Generated and real samples each.
    #[arg(short, default_value_t = 1000)]
    n: usize,
    /// The probability above which a prediction counts for coverage.
    #[arg(long, default_value_t = 0.9)]
    threshold: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn evaluate(args: &EvaluateArgs) -> AnyResult<()> {
    use fovea::vision::generative::fid::{class_coverage, features_and_predictions, frechet_distance, FeatureStats};
    fovea::core::set_seed(args.seed);
    let data = load(args.dataset, args.data_dir.as_deref())?;
    let n = args.n.min(data.test_images.dims()[0]);
    let real = images(&data.test_images.narrow(0, 0, n)?, false)?;
    let fake = sample(&args.model, n, None, false)?;
    let classifier = load_model(&args.classifier)?;
    let (real_f, _) = features_and_predictions(&classifier, &real, 256)?;
    let (fake_f, fake_p) = features_and_predictions(&classifier, &fake, 256)?;
    let fd = frechet_distance(&FeatureStats::of(&real_f)?, &FeatureStats::of(&fake_f)?)?;
    let (shares, confident) = class_coverage(&fake_p, args.threshold)?;
    println!("Fréchet distance ({} features, {n} samples each): {fd:.4}", real_f.dims()[1]);
    let shares: Vec<String> = shares.iter().enumerate().map(|(k, s)| format!("{k}: {:.1}%", s * 100.0)).collect();
    println!("class coverage ({:.1}% confident at p >= {}): {}", confident * 100.0, args.threshold, shares.join(", "));
    Ok(())
}
