//! The built-in layers.

mod dense;
#[cfg(test)]
pub(crate) mod testing;

pub use dense::Dense;
