//! Exporting models to formats other runtimes read: [`onnx`].

pub mod onnx;
