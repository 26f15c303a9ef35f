//! GANs (SPEC §3.15): a generator and a discriminator with separate variables and optimizers,
//! alternating updates in the model's own [`Model::train_step`]; the standard (non-saturating)
//! loss with optional one-sided label smoothing, or WGAN's critic loss with weight clipping and
//! several critic steps; conditioning on a one-hot label concatenated to z and to x.

use fovea_core::ops::padding::Padding;
use fovea_core::{DType, Tensor, Variable};
use fovea_nn::activations::Activation;
use fovea_nn::constraints::Constraint;
use fovea_nn::layer::{format_shape, Layer, LayerBase, ShapeSpec};
use fovea_nn::layers::{BatchNormalization, Conv2D, Conv2DTranspose, Dense, Flatten, LeakyReLU, ReLU, Reshape};
use fovea_nn::losses::{Loss, LossKind};
use fovea_nn::model::training::{Batch, Logs};
use fovea_nn::model::{Compiled, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use fovea_nn::{Error, Result};
use std::sync::Mutex;

/// The adversarial objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GanLoss {
    /// Binary cross-entropy on the discriminator's logits, the generator's loss non-saturating
    /// (`−log D(G(z))`); real labels are `1 − label_smoothing` (one-sided smoothing).
    Standard {
        /// How far below 1 the real labels are (0: none; 0.1 is the usual trick).
        label_smoothing: f32,
    },
    /// WGAN: the critic maximizes `mean(D(x)) − mean(D(G(z)))`, its weights clipped to
    /// `±clip` after each update, with `n_critic` critic updates per generator update.
    Wasserstein {
        /// Critic updates per generator update (5 in the paper).
        n_critic: usize,
        /// The clipping bound of every critic weight (0.01).
        clip: f32,
    },
    /// WGAN-GP: the critic loss plus `gp_weight·mean((‖∇ₓ̂ D(x̂)‖ − 1)²)` at random points x̂
    /// between real and fake samples, instead of clipping; differentiating the penalty needs
    /// the critic's backward pass recorded ([`fovea_core::grad_with_graph`]).
    WassersteinGp {
        /// Critic updates per generator update (5).
        n_critic: usize,
        /// The penalty's weight λ (10).
        gp_weight: f32,
    },
}

/// A GAN: `fit` on real samples (and integer labels for a conditional GAN) trains both networks.
pub struct Gan {
    base: LayerBase,
    /// Noise (with the one-hot label appended when conditional) to samples.
    pub generator: Sequential,
    /// Samples (with the one-hot label appended) to one logit, or one critic score for WGAN.
    pub discriminator: Sequential,
    /// The size of the noise vector z.
    pub latent_dim: usize,
    /// The number of classes of a conditional GAN.
    pub num_classes: Option<usize>,
    /// The objective.
    pub loss: GanLoss,
    g_opt: Mutex<Optimizer>,
    d_opt: Mutex<Optimizer>,
    compiled: Mutex<Option<Compiled>>,
}

/// `x` with the one-hot labels appended: on the last axis of a `[N, F]` tensor, or as constant
/// channels of a `[N, H, W, C]` image.
fn condition(x: &Tensor, one_hot: Option<&Tensor>) -> Result<Tensor> {
    let Some(y) = one_hot else { return Ok(x.clone()) };
    let y = match x.rank() {
        4 => {
            let d = x.dims();
            y.reshape(&[d[0] as isize, 1, 1, -1])?.broadcast_to([d[0], d[1], d[2], y.dims()[1]])?
        }
        _ => y.clone(),
    };
    Ok(Tensor::concat(&[x, &y], -1)?)
}

/// The shape of a sample after conditioning on `classes` labels.
fn conditioned(shape: &ShapeSpec, classes: usize) -> ShapeSpec {
    let mut s = shape.clone();
    if let Some(Some(last)) = s.last_mut() {
        *last += classes;
    }
    s
}

fn bce(label: f32, logits: &Tensor) -> Result<Tensor> {
    let loss = Loss::from(LossKind::BinaryCrossentropy { from_logits: true, label_smoothing: 0.0 });
    loss.compute(&Tensor::full(logits.shape().clone(), label as f64, DType::F32, logits.device())?, logits, None)
}

impl Gan {
    /// A GAN from a generator taking `[N, latent_dim (+ classes)]` and a discriminator taking
    /// the generator's samples (with `classes` label channels appended when conditional); both
    /// are built here.
    ///
    /// # Errors
    /// `Config` when the generator's output shape does not match the discriminator's input
    /// shape, naming both; errors from building the networks.
    pub fn new(
        generator: Sequential,
        discriminator: Sequential,
        latent_dim: usize,
        num_classes: Option<usize>,
        g_opt: Optimizer,
        d_opt: Optimizer,
    ) -> Result<Self> {
        let classes = num_classes.unwrap_or(0);
        if num_classes == Some(0) {
            return Err(Error::Config("a conditional GAN needs at least 1 class, got 0".into()));
        }
        generator.build_for(&[latent_dim + classes])?;
        let sample: ShapeSpec = generator.compute_output_shape(&[vec![None, Some(latent_dim + classes)]])?;
        let expected = conditioned(&sample, classes);
        match discriminator.input_shape() {
            Some(d_in) if d_in != expected => {
                return Err(Error::Config(format!(
                    "the generator's output {}{} does not match the discriminator's input {}",
                    format_shape(&sample),
                    if classes > 0 { format!(" (with {classes} label channels: {})", format_shape(&expected)) } else { String::new() },
                    format_shape(&d_in)
                )))
            }
            _ => {
                let dims: Vec<usize> = expected[1..].iter().map(|d| d.unwrap_or(1)).collect();
                discriminator.build_for(&dims)?;
            }
        }
        let d_out = discriminator.compute_output_shape(&[expected])?;
        if d_out[1..] != [Some(1)] {
            return Err(Error::Config(format!(
                "the discriminator must output one score per sample (None, 1), got {}",
                format_shape(&d_out)
            )));
        }
        Ok(Gan {
            base: LayerBase::new("GAN"),
            generator,
            discriminator,
            latent_dim,
            num_classes,
            loss: GanLoss::Standard { label_smoothing: 0.0 },
            g_opt: Mutex::new(g_opt),
            d_opt: Mutex::new(d_opt),
            compiled: Mutex::new(None),
        })
    }

    /// The same GAN with another objective. WGAN attaches a `ClipByValue(±clip)` constraint to
    /// every trainable critic weight, which the optimizer applies after each update.
    ///
    /// # Errors
    /// `Config` for `n_critic = 0`, a non-positive clip or label smoothing outside `[0, 1)`.
    pub fn with_loss(mut self, loss: GanLoss) -> Result<Self> {
        match loss {
            GanLoss::Standard { label_smoothing } if !(0.0..1.0).contains(&label_smoothing) => {
                return Err(Error::Config(format!("label_smoothing must be in [0, 1), got {label_smoothing}")))
            }
            GanLoss::Wasserstein { n_critic, clip } if n_critic == 0 || clip.is_nan() || clip <= 0.0 => {
                return Err(Error::Config(format!("WGAN needs n_critic >= 1 and clip > 0, got n_critic {n_critic}, clip {clip}")))
            }
            GanLoss::WassersteinGp { n_critic, gp_weight } if n_critic == 0 || gp_weight.is_nan() || gp_weight < 0.0 => {
                return Err(Error::Config(format!(
                    "WGAN-GP needs n_critic >= 1 and gp_weight >= 0, got n_critic {n_critic}, gp_weight {gp_weight}"
                )))
            }
            GanLoss::Wasserstein { clip, .. } => {
                for v in self.discriminator.trainable_weights() {
                    Constraint::ClipByValue { min_value: -clip, max_value: clip }.attach(&v);
                    v.assign(&v.value().clip(-clip, clip)?)?;
                }
            }
            GanLoss::Standard { .. } | GanLoss::WassersteinGp { .. } => {}
        }
        self.loss = loss;
        Ok(self)
    }

    /// The one-hot encoding of integer `labels`, checked against the model's classes.
    ///
    /// # Errors
    /// `Config` for labels on an unconditional model, a missing label tensor on a conditional
    /// one, or a label outside `0..num_classes`.
    pub fn one_hot(&self, labels: Option<&Tensor>) -> Result<Option<Tensor>> {
        let (classes, labels) = match (self.num_classes, labels) {
            (None, _) => return Ok(None),
            (Some(c), Some(l)) => (c, l.cast(DType::I64)?.reshape(&[-1])?),
            (Some(c), None) => return Err(Error::Config(format!("a conditional GAN with {c} classes needs integer labels as targets"))),
        };
        if let Some(bad) = labels.to_vec::<i64>()?.into_iter().find(|&l| l < 0 || l >= classes as i64) {
            return Err(Error::Config(format!(
                "label {bad} is out of range for a conditional model with {classes} classes (0..={})",
                classes - 1
            )));
        }
        Ok(Some(Tensor::one_hot(&labels, classes)?))
    }

    /// `n` samples from the generator in inference mode (for a conditional GAN, one per label).
    ///
    /// # Errors
    /// `Config` for labels out of range or a count other than `n`; errors from the generator.
    pub fn generate(&self, n: usize, labels: Option<&[i64]>) -> Result<Tensor> {
        let labels = match labels {
            Some(l) if l.len() != n => return Err(Error::Config(format!("generate: {n} samples but {} labels", l.len()))),
            Some(l) => Some(Tensor::from_vec(l.to_vec(), [n], self.device())?),
            None => None,
        };
        if self.num_classes.is_some() && labels.is_none() {
            return Err(Error::Config("generate: a conditional GAN needs one label per sample".into()));
        }
        let y = self.one_hot(labels.as_ref())?;
        let z = Tensor::random_normal([n, self.latent_dim], 0.0, 1.0, None, self.device())?;
        fovea_core::no_grad(|| self.generator.apply(&[condition(&z, y.as_ref())?], false))
    }

    fn d_loss(&self, real: &Tensor, fake: &Tensor, y: Option<&Tensor>) -> Result<Tensor> {
        let dr = self.discriminator.apply(&[condition(real, y)?], true)?;
        let df = self.discriminator.apply(&[condition(fake, y)?], true)?;
        match self.loss {
            GanLoss::Standard { label_smoothing } => Ok(bce(1.0 - label_smoothing, &dr)?.add(&bce(0.0, &df)?)?),
            GanLoss::Wasserstein { .. } => Ok(df.mean_all()?.sub(&dr.mean_all()?)?),
            GanLoss::WassersteinGp { gp_weight, .. } => {
                let gp = self.gradient_penalty(real, fake, y)?;
                Ok(df.mean_all()?.sub(&dr.mean_all()?)?.add(&gp.mul_scalar(gp_weight)?)?)
            }
        }
    }

    /// WGAN-GP's penalty `mean((‖∇ₓ̂ D(x̂)‖₂ − 1)²)` at `x̂ = ε·real + (1 − ε)·fake`, one
    /// `ε ~ U[0, 1]` per sample; differentiable in the critic's weights.
    ///
    /// # Errors
    /// `Autodiff` naming a critic op without a second derivative; errors from the critic.
    pub fn gradient_penalty(&self, real: &Tensor, fake: &Tensor, y: Option<&Tensor>) -> Result<Tensor> {
        let mut shape = vec![1; real.rank()];
        shape[0] = real.dims()[0];
        let eps = Tensor::random_uniform(shape, 0.0, 1.0, None, real.device())?;
        let mix = real.mul(&eps)?.add(&fake.mul(&eps.neg()?.add_scalar(1.0)?)?)?;
        fovea_core::enable_grad(|| {
            let x_hat = mix.detach().with_requires_grad(true)?;
            let score = self.discriminator.apply(&[condition(&x_hat, y)?], true)?.sum_all()?;
            let g = fovea_core::grad_with_graph(&score, &[&x_hat])?
                .remove(0)
                .ok_or_else(|| self.base.error("the critic's score does not depend on its input"))?;
            let axes: Vec<isize> = (1..g.rank() as isize).collect();
            // The 1e-12 keeps the norm's derivative finite where a gradient vanishes.
            let norm = g.mul(&g)?.sum(&axes, false)?.add_scalar(1e-12)?.sqrt()?;
            Ok(norm.sub_scalar(1.0)?.square()?.mean_all()?)
        })
    }

    fn g_loss(&self, fake: &Tensor, y: Option<&Tensor>) -> Result<Tensor> {
        let out = self.discriminator.apply(&[condition(fake, y)?], true)?;
        match self.loss {
            GanLoss::Standard { .. } => bce(1.0, &out),
            GanLoss::Wasserstein { .. } | GanLoss::WassersteinGp { .. } => Ok(out.mean_all()?.neg()?),
        }
    }

    fn noise(&self, n: usize, y: Option<&Tensor>) -> Result<Tensor> {
        condition(&Tensor::random_normal([n, self.latent_dim], 0.0, 1.0, None, self.device())?, y)
    }
}

impl Layer for Gan {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "GAN"
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        self.generator.compute_output_shape(input_shapes)
    }

    /// The generator's samples for noise (with one-hot labels appended when conditional).
    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        self.generator.apply(inputs, training)
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name(), "latent_dim": self.latent_dim, "num_classes": self.num_classes })
    }

    fn weights(&self) -> Vec<Variable> {
        self.generator.weights().into_iter().chain(self.discriminator.weights()).collect()
    }
}

impl Model for Gan {
    fn compiled(&self) -> &Mutex<Option<Compiled>> {
        &self.compiled
    }

    /// `n_critic` (1 for the standard loss) discriminator updates on this batch of real samples
    /// against fresh fakes, then one generator update; only each network's own variables move.
    fn train_step(&self, batch: &Batch) -> Result<Logs> {
        let real = batch.x.first().ok_or_else(|| self.base.error("expected a batch of real samples"))?.cast(DType::F32)?;
        let n = real.dims()[0];
        let y = self.one_hot(batch.y.first())?;
        let d_steps = match self.loss {
            GanLoss::Wasserstein { n_critic, .. } | GanLoss::WassersteinGp { n_critic, .. } => n_critic,
            GanLoss::Standard { .. } => 1,
        };
        let mut d_value = 0.0;
        for _ in 0..d_steps {
            // The fakes are detached: the discriminator's loss must not reach the generator.
            let fake = self.generator.apply(&[self.noise(n, y.as_ref())?], true)?.detach();
            let loss = self.d_loss(&real, &fake, y.as_ref())?;
            let vars = self.discriminator.trainable_weights();
            d_value = self.d_opt.lock().expect("optimizer lock").minimize(|| Ok(loss), &vars)?.to_scalar::<f32>()? as f64;
        }
        let fake = self.generator.apply(&[self.noise(n, y.as_ref())?], true)?;
        let loss = self.g_loss(&fake, y.as_ref())?;
        drop(fake);
        let vars = self.generator.trainable_weights();
        let g_value = self.g_opt.lock().expect("optimizer lock").minimize(|| Ok(loss), &vars)?.to_scalar::<f32>()? as f64;
        Ok(Logs::from([("d_loss".into(), d_value), ("g_loss".into(), g_value)]))
    }
}

/// The image shape of MNIST-like data.
const IMAGE: [usize; 3] = [28, 28, 1];

/// A dense generator: `latent (+ classes) → 256 → 784 (tanh) → 28×28×1`.
///
/// # Errors
/// Layer errors (never for these sizes).
pub fn dense_generator() -> Result<Sequential> {
    let g = Sequential::new();
    g.add(Dense::new(256))?;
    g.add(LeakyReLU::new(0.2))?;
    g.add(Dense::new(IMAGE.iter().product()).activation(Activation::Tanh))?;
    g.add(Reshape::new(&[28, 28, 1]))?;
    Ok(g)
}

/// A dense discriminator on `28×28×(1 + classes)` images: flatten → 256 (LeakyReLU 0.2) → 1
/// logit.
///
/// # Errors
/// Layer errors (never for these sizes).
pub fn dense_discriminator(classes: usize) -> Result<Sequential> {
    let d = Sequential::with_input_shape(&[28, 28, 1 + classes]);
    d.add(Flatten::new())?;
    d.add(Dense::new(256))?;
    d.add(LeakyReLU::new(0.2))?;
    d.add(Dense::new(1))?;
    Ok(d)
}

/// DCGAN's generator for 28×28×1: `Dense(7·7·128)` → BN → ReLU → reshape → two stride-2
/// transposed convolutions (5×5; BN and ReLU between, tanh at the end).
///
/// # Errors
/// Layer errors (never for these sizes).
pub fn dcgan_generator() -> Result<Sequential> {
    let g = Sequential::new();
    g.add(Dense::new(7 * 7 * 128).use_bias(false))?;
    g.add(BatchNormalization::new())?;
    g.add(ReLU::new())?;
    g.add(Reshape::new(&[7, 7, 128]))?;
    g.add(Conv2DTranspose::new(64, (5, 5)).strides((2, 2)).padding(Padding::Same).use_bias(false))?;
    g.add(BatchNormalization::new())?;
    g.add(ReLU::new())?;
    g.add(Conv2DTranspose::new(1, (5, 5)).strides((2, 2)).padding(Padding::Same).activation(Activation::Tanh))?;
    Ok(g)
}

/// DCGAN's discriminator (or WGAN's critic) on `28×28×(1 + classes)`: two stride-2 5×5
/// convolutions with LeakyReLU(0.2), then one linear output (a logit, or a critic score).
///
/// # Errors
/// Layer errors (never for these sizes).
pub fn dcgan_discriminator(classes: usize) -> Result<Sequential> {
    let d = Sequential::with_input_shape(&[28, 28, 1 + classes]);
    d.add(Conv2D::new(64, (5, 5)).strides((2, 2)).padding(Padding::Same))?;
    d.add(LeakyReLU::new(0.2))?;
    d.add(Conv2D::new(128, (5, 5)).strides((2, 2)).padding(Padding::Same))?;
    d.add(LeakyReLU::new(0.2))?;
    d.add(Flatten::new())?;
    d.add(Dense::new(1))?;
    Ok(d)
}
