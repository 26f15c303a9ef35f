//! Weights trained elsewhere: Keras files (`.weights.h5`, legacy `.h5`, `.keras`), and loading any weight file by layer name.

pub mod keras_config;
pub mod keras_h5;
pub mod keras_zip;
pub mod load;
