//! Fovea's datasets: the `tf.data`-style [`pipeline::Dataset`]; fetching and caching
//! ([`fetch`], MD5-checked); MNIST and Fashion-MNIST (the [`idx`] format), CIFAR-10/100 (the
//! [`cifar`] binary format), [`iris`]; NumPy [`npy`]/`.npz` arrays and [`csv`] tables; and a stratified
//! [`train_test_split`]. Image folders live in `fovea-vision` (they need image decoding).

#![warn(missing_docs)]

pub mod checksum;
pub mod cifar;
pub mod csv;
mod error;
pub mod fashion_mnist;
pub mod fetch;
pub mod idx;
pub mod iris;
pub mod mnist;
pub mod model_selection;
pub mod npy;
pub mod pipeline;
pub mod tfrecord;

pub use error::{Error, Result};
pub use model_selection::{train_test_split, TestSize};
