//! Fovea's vision layer: `tf.image` ops and augmentation ([`image`]), Keras preprocessing
//! layers ([`preprocessing`]), the model zoo ([`applications`]), training plots ([`plots`]),
//! object detection ([`detection`]) and semantic segmentation ([`segmentation`]).

#![warn(missing_docs)]

pub mod applications;
pub mod datasets;
pub mod detection;
pub mod image;
pub mod plots;
pub mod preprocessing;
pub mod segmentation;
