//! Fovea's vision layer: `tf.image` ops and augmentation ([`image`]), Keras preprocessing
//! layers ([`preprocessing`]), the model zoo ([`applications`]), training plots ([`plots`]),
//! object detection ([`detection`]), semantic segmentation ([`segmentation`]) and generative
//! models ([`generative`]).

#![warn(missing_docs)]

pub mod applications;
pub mod datasets;
pub mod detection;
pub mod generative;
pub mod image;
pub mod plots;
pub mod preprocessing;
pub mod segmentation;
