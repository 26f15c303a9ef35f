//! Weights trained elsewhere: PyTorch `state_dict` files (a safe pickle reader over the
//! `torch.save` zip layout) and the layout changes that map them onto Keras-style layers.

pub mod pickle;
pub mod torch;
pub mod zip;
