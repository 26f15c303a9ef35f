//! Fovea's datasets: the IDX format, fetching and caching, and MNIST.
//!
//! Work in progress: pipelines (`tf.data`), more datasets and record formats follow (see the
//! data-pipeline issue).

#![warn(missing_docs)]

mod error;
pub mod fetch;
pub mod idx;
pub mod mnist;
pub mod pipeline;

pub use error::{Error, Result};
