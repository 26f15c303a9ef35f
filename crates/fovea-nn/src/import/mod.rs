//! Weights trained elsewhere: Keras files (`.weights.h5`, legacy `.h5`, `.keras`).

pub mod keras_h5;
pub mod keras_zip;
