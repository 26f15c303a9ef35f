//! Autoencoders and the variational autoencoder (SPEC §3.15): the reparameterization
//! ([`Sampling`]), the Gaussian KL term, and models whose own [`Model::train_step`] `fit` drives.

use fovea_core::{DType, Tensor, Variable};
use fovea_nn::layer::{single_shape, Layer, LayerBase, ShapeSpec};
use fovea_nn::layers::Dense;
use fovea_nn::model::training::{Batch, Logs};
use fovea_nn::model::{Compiled, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use fovea_nn::{Error, Result};
use std::sync::Mutex;

/// `z = μ + exp(½·logσ²)·ε`, differentiable in `mu` and `log_var` for a fixed noise `eps`.
///
/// # Errors
/// `Layer` (named `sampling`) when the three shapes differ.
pub fn reparameterize(mu: &Tensor, log_var: &Tensor, eps: &Tensor) -> Result<Tensor> {
    if mu.shape() != log_var.shape() || mu.shape() != eps.shape() {
        return Err(Error::layer(
            "sampling",
            format!("expected μ, log σ² and ε of one shape, got {}, {} and {}", mu.shape(), log_var.shape(), eps.shape()),
        ));
    }
    // dz/dμ = 1, dz/dlogσ² = ½·σ·ε: both come from the composed ops' own gradients.
    Ok(mu.add(&log_var.mul_scalar(0.5)?.exp()?.mul(eps)?)?)
}

/// The KL divergence of `N(μ, σ²)` from `N(0, I)`, summed over the latent axis and averaged over
/// the batch: `−½·Σ(1 + logσ² − μ² − σ²)`.
///
/// # Errors
/// `Layer` when the shapes differ or are not `[batch, latent]`.
pub fn gaussian_kl(mu: &Tensor, log_var: &Tensor) -> Result<Tensor> {
    if mu.shape() != log_var.shape() || mu.rank() != 2 {
        return Err(Error::layer(
            "gaussian_kl",
            format!("expected μ and log σ² of one shape [batch, latent], got {} and {}", mu.shape(), log_var.shape()),
        ));
    }
    let n = mu.dims()[0].max(1) as f32;
    let inner = log_var.add_scalar(1.0)?.sub(&mu.square()?)?.sub(&log_var.exp()?)?;
    Ok(inner.sum_all()?.mul_scalar(-0.5 / n)?)
}

/// Binary cross-entropy of `logits` against targets in `[0, 1]`, summed over each sample's
/// values and averaged over the batch — a Bernoulli decoder's negative log-likelihood in nats,
/// the reconstruction term of the ELBO. `softplus(l) − x·l` is the stable form of
/// `−x·ln σ(l) − (1−x)·ln(1−σ(l))`.
///
/// # Errors
/// `Layer` when the element counts differ.
pub fn bernoulli_nll(targets: &Tensor, logits: &Tensor) -> Result<Tensor> {
    if targets.numel() != logits.numel() || targets.dims().first() != logits.dims().first() {
        return Err(Error::layer(
            "reconstruction",
            format!("expected a reconstruction of the input's shape {}, got {}", targets.shape(), logits.shape()),
        ));
    }
    let logits = logits.reshape_to(targets.shape().clone())?;
    let n = targets.dims()[0].max(1) as f32;
    Ok(logits.softplus()?.sub(&targets.mul(&logits)?)?.sum_all()?.mul_scalar(1.0 / n)?)
}

/// The reparameterization layer of a VAE (`Sampling` in the Keras VAE example): called on
/// `[μ, log σ²]`, it draws `ε ~ N(0, I)` from the global seed sequence and returns
/// [`reparameterize`]`(μ, log σ², ε)`, in training and inference alike.
pub struct Sampling {
    base: LayerBase,
}

impl Default for Sampling {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampling {
    /// A sampling layer named `sampling`, `sampling_1`, ...
    pub fn new() -> Self {
        Sampling { base: LayerBase::new("Sampling") }
    }
}

impl Layer for Sampling {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "Sampling"
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        match input_shapes {
            [mu, log_var] if mu == log_var => Ok(mu.clone()),
            _ => Err(self.base.error(format!("expected two inputs [μ, log σ²] of one shape, got {input_shapes:?}"))),
        }
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let [mu, log_var] = inputs else {
            return Err(self.base.error(format!("expected two inputs [μ, log σ²], got {}", inputs.len())));
        };
        let eps = Tensor::random_normal(mu.shape().clone(), 0.0, 1.0, None, mu.device())?;
        reparameterize(mu, log_var, &eps).map_err(|e| self.base.error(e.to_string()))
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name() })
    }
}

/// A variational autoencoder: an encoder body, the μ and log σ² heads, [`Sampling`] and a
/// decoder producing logits of the input's shape (a Bernoulli decoder). Its own train step
/// minimizes `reconstruction_loss + kl_loss` (the negative ELBO, in nats per image) with its
/// optimizer; `fit` needs no targets and no `compile`.
pub struct Vae {
    base: LayerBase,
    /// The encoder up to the heads.
    pub encoder: Sequential,
    /// The μ head.
    pub mu: Dense,
    /// The log σ² head.
    pub log_var: Dense,
    sampling: Sampling,
    /// The decoder: latent codes to logits of an input's shape; alone, it is the generator.
    pub decoder: Sequential,
    optimizer: Mutex<Optimizer>,
    compiled: Mutex<Option<Compiled>>,
}

impl Vae {
    /// A VAE with `latent_dim` latent units from these parts, trained with `optimizer`.
    pub fn new(encoder: Sequential, latent_dim: usize, decoder: Sequential, optimizer: Optimizer) -> Self {
        Vae {
            base: LayerBase::new("VAE"),
            encoder,
            mu: Dense::new(latent_dim),
            log_var: Dense::new(latent_dim),
            sampling: Sampling::new(),
            decoder,
            optimizer: Mutex::new(optimizer),
            compiled: Mutex::new(None),
        }
    }

    /// `(μ, log σ²)` of a batch.
    ///
    /// # Errors
    /// Errors from the layers.
    pub fn encode(&self, x: &Tensor, training: bool) -> Result<(Tensor, Tensor)> {
        let h = self.encoder.apply(std::slice::from_ref(x), training)?;
        Ok((self.mu.apply(std::slice::from_ref(&h), training)?, self.log_var.apply(&[h], training)?))
    }

    /// `(reconstruction, kl)` of a batch of inputs in `[0, 1]`, both in nats per sample.
    ///
    /// # Errors
    /// Errors from the layers; `Layer` when the decoder's output does not match the input.
    pub fn losses_of(&self, x: &Tensor, training: bool) -> Result<(Tensor, Tensor)> {
        let x = x.cast(DType::F32)?;
        let (mu, log_var) = self.encode(&x, training)?;
        let z = self.sampling.apply(&[mu.clone(), log_var.clone()], training)?;
        let logits = self.decoder.apply(&[z], training)?;
        Ok((bernoulli_nll(&x, &logits)?, gaussian_kl(&mu, &log_var)?))
    }

    fn step_logs(recon: &Tensor, kl: &Tensor) -> Result<Logs> {
        let (r, k) = (recon.to_scalar::<f32>()? as f64, kl.to_scalar::<f32>()? as f64);
        Ok(Logs::from([("loss".into(), r + k), ("reconstruction_loss".into(), r), ("kl_loss".into(), k)]))
    }
}

impl Layer for Vae {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "VAE"
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        Ok(single_shape(&self.base, input_shapes)?.clone())
    }

    /// The reconstruction (probabilities) of a batch.
    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        let x = inputs.first().ok_or_else(|| self.base.error("expected one input"))?.cast(DType::F32)?;
        let (mu, log_var) = self.encode(&x, training)?;
        let z = self.sampling.apply(&[mu, log_var], training)?;
        Ok(self.decoder.apply(&[z], training)?.sigmoid()?.reshape_to(x.shape().clone())?)
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name(), "latent_dim": self.mu.config()["units"] })
    }

    fn weights(&self) -> Vec<Variable> {
        let mut w = self.encoder.weights();
        w.extend(self.mu.weights());
        w.extend(self.log_var.weights());
        w.extend(self.decoder.weights());
        w
    }
}

impl Model for Vae {
    fn compiled(&self) -> &Mutex<Option<Compiled>> {
        &self.compiled
    }

    fn train_step(&self, batch: &Batch) -> Result<Logs> {
        let x = batch.x.first().ok_or_else(|| self.base.error("expected a batch of inputs"))?;
        let (r, k) = self.losses_of(x, true)?;
        let total = r.add(&k)?;
        let logs = Self::step_logs(&r, &k)?;
        // Only the total may hold the graph, so the update can reuse the variables' buffers.
        drop((r, k));
        // Variables are listed after the forward pass, which builds the lazy layers.
        let vars = self.trainable_weights();
        self.optimizer.lock().expect("optimizer lock").minimize(|| Ok(total), &vars)?;
        Ok(logs)
    }

    fn test_step(&self, batch: &Batch) -> Option<Result<Logs>> {
        Some(batch.x.first().ok_or_else(|| self.base.error("expected a batch of inputs")).and_then(|x| {
            let (r, k) = self.losses_of(x, false)?;
            Self::step_logs(&r, &k)
        }))
    }
}

/// A (dense or convolutional) autoencoder trained to reconstruct its inputs in `[0, 1]` with a
/// Bernoulli (binary cross-entropy) loss; with `noise_stddev > 0` it is a denoising autoencoder:
/// Gaussian noise corrupts each training input (clipped back to `[0, 1]`) and the clean input
/// is the target.
pub struct Autoencoder {
    base: LayerBase,
    /// Inputs to codes; reusable as a pretrained feature extractor.
    pub encoder: Sequential,
    /// Codes to logits of the input's shape.
    pub decoder: Sequential,
    /// The standard deviation of the training noise (0: a plain autoencoder).
    pub noise_stddev: f32,
    optimizer: Mutex<Optimizer>,
    compiled: Mutex<Option<Compiled>>,
}

impl Autoencoder {
    /// An autoencoder from these parts, trained with `optimizer`.
    pub fn new(encoder: Sequential, decoder: Sequential, optimizer: Optimizer) -> Self {
        Autoencoder {
            base: LayerBase::new("Autoencoder"),
            encoder,
            decoder,
            noise_stddev: 0.0,
            optimizer: Mutex::new(optimizer),
            compiled: Mutex::new(None),
        }
    }

    /// The same autoencoder trained to remove Gaussian noise of this standard deviation.
    pub fn denoising(mut self, noise_stddev: f32) -> Self {
        self.noise_stddev = noise_stddev;
        self
    }

    fn loss_of(&self, clean: &Tensor, input: &Tensor, training: bool) -> Result<Tensor> {
        let code = self.encoder.apply(std::slice::from_ref(input), training)?;
        bernoulli_nll(clean, &self.decoder.apply(&[code], training)?)
    }
}

impl Layer for Autoencoder {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "Autoencoder"
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        Ok(single_shape(&self.base, input_shapes)?.clone())
    }

    /// The reconstruction (probabilities) of a batch.
    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        let x = inputs.first().ok_or_else(|| self.base.error("expected one input"))?.cast(DType::F32)?;
        let code = self.encoder.apply(std::slice::from_ref(&x), training)?;
        Ok(self.decoder.apply(&[code], training)?.sigmoid()?.reshape_to(x.shape().clone())?)
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name(), "noise_stddev": self.noise_stddev })
    }

    fn weights(&self) -> Vec<Variable> {
        self.encoder.weights().into_iter().chain(self.decoder.weights()).collect()
    }
}

impl Model for Autoencoder {
    fn compiled(&self) -> &Mutex<Option<Compiled>> {
        &self.compiled
    }

    fn train_step(&self, batch: &Batch) -> Result<Logs> {
        let clean = batch.x.first().ok_or_else(|| self.base.error("expected a batch of inputs"))?.cast(DType::F32)?;
        let input = if self.noise_stddev > 0.0 {
            let noise = Tensor::random_normal(clean.shape().clone(), 0.0, self.noise_stddev as f64, None, clean.device())?;
            clean.add(&noise)?.clip(0.0, 1.0)?
        } else {
            clean.clone()
        };
        let loss = self.loss_of(&clean, &input, true)?;
        // Variables are listed after the forward pass, which builds the lazy layers.
        let vars = self.trainable_weights();
        let loss = self.optimizer.lock().expect("optimizer lock").minimize(|| Ok(loss), &vars)?;
        Ok(Logs::from([("loss".into(), loss.to_scalar::<f32>()? as f64)]))
    }

    fn test_step(&self, batch: &Batch) -> Option<Result<Logs>> {
        Some(batch.x.first().ok_or_else(|| self.base.error("expected a batch of inputs")).and_then(|x| {
            let x = x.cast(DType::F32)?;
            Ok(Logs::from([("loss".into(), self.loss_of(&x, &x, false)?.to_scalar::<f32>()? as f64)]))
        }))
    }
}
