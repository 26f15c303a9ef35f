//! Fovea's vision layer: `tf.image` ops and augmentation ([`image`]), Keras preprocessing
//! layers ([`preprocessing`]) and the model zoo ([`applications`]).

#![warn(missing_docs)]

pub mod applications;
pub mod datasets;
pub mod image;
pub mod preprocessing;
