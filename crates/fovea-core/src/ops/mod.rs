//! Tensor operations, one module per op family, each holding the op's forward pass, its
//! backward pass and its tests side by side. Ops are methods on [`crate::Tensor`].

pub mod batch_norm;
pub mod binary;
pub mod concat;
pub mod conv;
pub mod conv_depthwise;
pub mod conv_nd;
pub mod conv_transpose;
pub mod index;
pub mod logic;
pub mod lrn;
pub mod matmul;
pub mod optim;
pub mod pad;
pub mod padding;
pub mod permute;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod slice;
pub mod softmax;
pub mod tile;
pub mod unary;
