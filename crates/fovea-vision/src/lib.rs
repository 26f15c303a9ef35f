//! Fovea's vision layer: the model zoo now; image ops and augmentation follow (see the
//! image-ops and model-zoo issues).

#![warn(missing_docs)]

pub mod applications;
pub mod datasets;
pub mod image;
