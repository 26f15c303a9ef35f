//! The built-in layers.

pub mod common;
mod dense;
#[cfg(test)]
pub(crate) mod testing;

pub use dense::Dense;
