//! Weights trained elsewhere: PyTorch `state_dict` files (a safe pickle reader over the
//! `torch.save` zip layout), Keras files (`.weights.h5`, legacy `.h5`, `.keras`), the layout
//! changes that map them onto Keras-style layers, and loading any weight file by layer name.

pub mod keras_config;
pub mod keras_h5;
pub mod keras_zip;
pub mod load;
pub mod pickle;
pub mod torch;
pub mod zip;
