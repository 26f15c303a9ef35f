//! Fovea's vision layer: `tf.image` ops and augmentation ([`image`]), Keras preprocessing
//! layers ([`preprocessing`]), the model zoo ([`applications`]) and training plots ([`plots`]).

#![warn(missing_docs)]

pub mod applications;
pub mod datasets;
pub mod image;
pub mod plots;
pub mod preprocessing;
