//! Generative models (SPEC §3.15): autoencoders, the VAE and GANs, each a model whose own
//! [`fovea_nn::model::Model::train_step`] `fit` drives.

pub mod fid;
pub mod gan;
pub mod minibatch;
pub mod samples;
pub mod transfer;
pub mod vae;
pub mod visual;

pub use gan::{Gan, GanLoss};
pub use minibatch::{minibatch_features, with_minibatch_discrimination, MinibatchDiscrimination};
pub use samples::SampleGrid;
pub use vae::{bernoulli_nll, gaussian_kl, reparameterize, Autoencoder, Sampling, Vae};
