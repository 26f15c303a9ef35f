//! Fovea's datasets: the `tf.data`-style [`pipeline::Dataset`], the IDX format, fetching and
//! caching, and MNIST. More datasets and record formats follow (see the data-pipeline issue).

#![warn(missing_docs)]

pub mod checksum;
pub mod cifar;
mod error;
pub mod fashion_mnist;
pub mod fetch;
pub mod idx;
pub mod mnist;
pub mod model_selection;
pub mod npy;
pub mod pipeline;

pub use error::{Error, Result};
pub use model_selection::{train_test_split, TestSize};
