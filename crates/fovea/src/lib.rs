//! Fovea: a deep-learning framework for computer vision.
//!
//! This facade re-exports the workspace crates — tensors and autodiff ([`core`]), layers,
//! models and training ([`nn`]), datasets and input pipelines ([`data`]), image ops, the model
//! zoo, detection and segmentation ([`vision`]) — and one [`Error`] that every crate's error
//! converts into. Most programs need only `use fovea::prelude::*;`:
//!
//! ```
//! use fovea::prelude::*;
//! # fn main() -> fovea::Result<()> {
//! // A small classifier of 8×8 grey images into 3 classes, as in Keras.
//! let model = Sequential::with_input_shape(&[8, 8, 1]);
//! model.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu))?;
//! model.add(Flatten::new())?;
//! model.add(Dense::new(3).activation(Activation::Softmax))?;
//! model.compile(Optimizer::adam(0.01), Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
//!
//! set_seed(7);
//! let x = Tensor::random_uniform([30, 8, 8, 1], 0.0, 1.0, None, Device::Cpu)?;
//! let y = Tensor::from_vec((0..30).map(|i| i as i64 % 3).collect::<Vec<_>>(), [30], Device::Cpu)?;
//! let history = model.fit(&x, &y, FitOptions { epochs: 2, verbose: 0, ..FitOptions::default() })?;
//! assert_eq!(history.history["loss"].len(), 2);
//! let logs = model.evaluate(&x, &y, 10)?;
//! assert!(logs["accuracy"] >= 0.0 && logs["accuracy"] <= 1.0);
//! let probs = model.predict(&x, 10)?;
//! assert_eq!(probs.dims(), &[30, 3]);
//!
//! // Saved with its architecture, weights and optimizer state; loaded back whole.
//! let path = std::env::temp_dir().join(format!("fovea-doc-{}.safetensors", std::process::id()));
//! save_model(&model, &path)?;
//! let again = load_model(&path)?;
//! assert_eq!(again.predict(&x, 10)?.to_vec::<f32>()?, probs.to_vec::<f32>()?);
//! std::fs::remove_file(&path)?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub use fovea_core as core;
pub use fovea_data as data;
pub use fovea_nn as nn;
pub use fovea_vision as vision;

/// Any error of a Fovea crate (or of the file system around it), so one `?` works across
/// them all in a program that uses several.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tensors, autodiff, devices, tensor files.
    #[error(transparent)]
    Core(#[from] fovea_core::Error),
    /// Layers, models, training, model files.
    #[error(transparent)]
    Nn(#[from] fovea_nn::Error),
    /// Datasets and input pipelines.
    #[error(transparent)]
    Data(#[from] fovea_data::Error),
    /// The file system.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The result type of [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The names most programs use: tensors, layers, models, optimizers, losses, callbacks, model
/// files, datasets and image ops.
pub mod prelude {
    pub use crate::{Error, Result};
    pub use fovea_core::ops::padding::Padding;
    pub use fovea_core::{no_grad, set_seed, DType, Device, GradientTape, Shape, Tensor, Variable};
    pub use fovea_data::pipeline::Dataset;
    pub use fovea_nn::activations::Activation;
    pub use fovea_nn::callbacks::{
        BackupAndRestore, Callback, CsvLogger, EarlyStopping, LambdaCallback, LearningRateScheduler, ModelCheckpoint, ReduceLrOnPlateau,
        TensorBoard, TerminateOnNan,
    };
    pub use fovea_nn::import::keras_config::{load_keras_json, load_keras_model, KerasModel};
    pub use fovea_nn::layer::Layer;
    pub use fovea_nn::layers::{
        Add, AveragePooling2D, BatchNormalization, Concatenate, Conv1D, Conv2D, Conv2DTranspose, Cropping2D, Dense, DepthwiseConv2D,
        Dropout, Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, Lambda, LayerNormalization, LeakyReLU, MaxPooling2D, Multiply, ReLU,
        Reshape, SeparableConv2D, Softmax, SpatialDropout2D, UpSampling2D, ZeroPadding2D,
    };
    pub use fovea_nn::losses::Loss;
    pub use fovea_nn::metrics::Metric;
    pub use fovea_nn::model::functional::{Functional, Node};
    pub use fovea_nn::model::io::{load_functional, load_model, load_weights, save_model, save_weights};
    pub use fovea_nn::model::{FitOptions, History, Logs, Model, Sequential};
    pub use fovea_nn::optimizers::Optimizer;
    pub use fovea_nn::schedules::LearningRate;
    pub use fovea_vision::applications::{build_by_name, AppOptions};
    pub use fovea_vision::image::{decode_image, encode_jpeg, encode_png, resize, ResizeMethod};
}
