//! ONNX export (opset 17): a built [`Sequential`] or [`Functional`] model as an ONNX
//! `ModelProto`, written with [`export_onnx`].
//!
//! The exported graph takes and returns what the Fovea model does — NHWC images, channels-last
//! features — so a caller feeds onnxruntime the same arrays. Inside, image values move to
//! ONNX's NCHW once (a `Transpose` after the input, shared by every reader) and convolutions,
//! pooling, batch norm, resizing and padding run there; a value goes back to NHWC only where
//! the order of its elements matters (`Flatten`, `Reshape`, `Dense` on images, model outputs),
//! so Keras's channels-last flatten order is kept. Kernels are converted from HWIO to OIHW,
//! TensorFlow's `same` padding becomes explicit asymmetric pads, and batch norm exports its
//! inference form (moving statistics).
//!
//! Layers are exported from their class name, config and named weights (see
//! [`layers::SUPPORTED_CLASSES`]); any other layer is a `Config` error naming the layer and its
//! type. The protobuf messages are hand-written `prost` structs ([`proto`]).

mod conv;
pub mod graph;
pub mod layers;
pub mod proto;
#[cfg(test)]
mod tests;

use crate::layer::{Layer, ShapeSpec};
use crate::model::functional::Functional;
use crate::model::Sequential;
use crate::{Error, Result};
use graph::{Graph, Layout, Val};
use prost::Message;
use proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, GraphProto, ModelProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto, DATA_TYPE_FLOAT,
};
use std::collections::HashMap;
use std::path::Path;

/// The ONNX operator set the exporter targets.
pub const OPSET: i64 = 17;
/// The ONNX IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;

/// A model the exporter can walk: [`Sequential`] and [`Functional`].
pub trait ToOnnx {
    /// The model as an ONNX `ModelProto`.
    ///
    /// # Errors
    /// `Config` naming the layer (and its type) that has no ONNX counterpart, or a model whose
    /// input shape is not fully known (build it first).
    fn to_onnx(&self) -> Result<ModelProto>;
}

impl ToOnnx for Sequential {
    fn to_onnx(&self) -> Result<ModelProto> {
        let input = self.input_shape().ok_or_else(|| {
            Error::Config("ONNX export: the Sequential model has no input shape; build it (with_input_shape or build_for) first".into())
        })?;
        // Layers added after the input shape was given build on first use; build them now.
        self.build_for(&known(&input, "input")?)?;
        let mut g = Graph::default();
        let x = graph_input(&mut g, "input", &input)?;
        let inputs = vec![value_info(&x.name, &x.shape)];
        let mut v = x;
        for (layer, shape) in self.layer_output_shapes()? {
            let shape = known(&shape, layer.name())?;
            v = layers::convert(&mut g, layer.as_ref(), std::slice::from_ref(&v), &shape)?;
        }
        let outputs = graph_outputs(&mut g, &[v], &["input".to_string()]);
        Ok(model_proto(self.name(), g, inputs, outputs))
    }
}

impl ToOnnx for Functional {
    fn to_onnx(&self) -> Result<ModelProto> {
        let mut g = Graph::default();
        let mut inputs = Vec::new();
        let mut args = Vec::new();
        for (i, node) in self.inputs().iter().enumerate() {
            let name = node.input_name().map_or_else(|| format!("input_{i}"), str::to_string);
            let v = graph_input(&mut g, &name, node.shape())?;
            inputs.push(value_info(&v.name, &v.shape));
            args.push(v);
        }
        let input_names: Vec<String> = args.iter().map(|v| v.name.clone()).collect();
        let outs = walk(&mut g, self, args)?;
        let outputs = graph_outputs(&mut g, &outs, &input_names);
        Ok(model_proto(self.name(), g, inputs, outputs))
    }
}

/// Adds the nodes of `model`'s graph called on `args` (one per model input) and returns its
/// outputs: the whole export of a functional model, and the inlining of a custom layer that
/// describes itself as one ([`Layer::as_functional`]).
pub(crate) fn walk(g: &mut Graph, model: &Functional, args: Vec<Val>) -> Result<Vec<Val>> {
    if args.len() != model.inputs().len() {
        return Err(Error::Config(format!(
            "ONNX export: model {:?} takes {} inputs, got {}",
            model.name(),
            model.inputs().len(),
            args.len()
        )));
    }
    let mut values: HashMap<usize, Val> = model.inputs().iter().map(|n| n.id()).zip(args).collect();
    for node in model.nodes() {
        let (layer, parents) = node.producer().ok_or_else(|| Error::Config("ONNX export: a computed node has no layer".into()))?;
        let args: Vec<Val> = parents
            .iter()
            .map(|p| values.get(&p.id()).cloned())
            .collect::<Option<_>>()
            .ok_or_else(|| Error::Config(format!("ONNX export: layer {:?} reads a value computed after it", layer.name())))?;
        let shape = known(node.shape(), layer.name())?;
        let y = layers::convert(g, layer.as_ref(), &args, &shape)?;
        values.insert(node.id(), y);
    }
    model
        .outputs()
        .iter()
        .map(|n| values.get(&n.id()).cloned().ok_or_else(|| Error::Config("ONNX export: an output is not computed by the graph".into())))
        .collect()
}

/// The model's ONNX file contents.
///
/// # Errors
/// As [`ToOnnx::to_onnx`].
pub fn to_onnx_bytes<M: ToOnnx + ?Sized>(model: &M) -> Result<Vec<u8>> {
    let proto = model.to_onnx()?;
    // Protobuf messages, and so ONNX files without external data, stop at 2 GiB.
    let len = proto.encoded_len();
    if len >= i32::MAX as usize {
        return Err(Error::Config(format!(
            "ONNX export: the model encodes to {len} bytes, past protobuf's 2 GiB limit (external weight files are not written)"
        )));
    }
    Ok(proto.encode_to_vec())
}

/// Decodes an ONNX file's bytes (the messages and fields of [`proto`]; others are skipped), to
/// inspect an export.
///
/// # Errors
/// `Config` when the bytes are not a valid `ModelProto` encoding.
pub fn decode_onnx(bytes: &[u8]) -> Result<ModelProto> {
    ModelProto::decode(bytes).map_err(|e| Error::Config(format!("not an ONNX model (expected a ModelProto encoding): {e}")))
}

/// Writes `model` to `path` as an ONNX file (opset [`OPSET`]), atomically: a failed export
/// leaves no file, and an existing file is replaced only by a complete one.
///
/// ```no_run
/// use fovea_nn::export::onnx::export_onnx;
/// use fovea_nn::layers::{Conv2D, Dense, Flatten};
/// use fovea_nn::model::Sequential;
/// let model = Sequential::with_input_shape(&[28, 28, 1]);
/// model.add(Conv2D::new(8, (3, 3)))?;
/// model.add(Flatten::new())?;
/// model.add(Dense::new(10))?;
/// export_onnx(&model, "model.onnx")?;
/// # Ok::<(), fovea_nn::Error>(())
/// ```
///
/// # Errors
/// As [`ToOnnx::to_onnx`]; `Core` naming the path when it cannot be written.
pub fn export_onnx<M: ToOnnx + ?Sized>(model: &M, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if path.is_dir() {
        return Err(Error::Config(format!("ONNX export: {} is a folder, expected the path of the file to write", path.display())));
    }
    let bytes = to_onnx_bytes(model)?;
    Ok(fovea_core::io::write_atomic(path, &bytes)?)
}

/// A shape with every dimension after the batch known.
fn known(shape: &ShapeSpec, layer: &str) -> Result<Vec<usize>> {
    shape.iter().skip(1).copied().collect::<Option<Vec<_>>>().ok_or_else(|| {
        Error::Config(format!(
            "ONNX export: layer {layer:?} has output shape {} with an unknown dimension past the batch (expected a fully known shape)",
            crate::layer::format_shape(shape)
        ))
    })
}

fn graph_input(g: &mut Graph, name: &str, shape: &ShapeSpec) -> Result<Val> {
    let dims = known(shape, name)?;
    g.reserve(name);
    Ok(Val { name: name.to_string(), layout: Layout::Keras, shape: dims })
}

/// Outputs back in Fovea's layout, each a value of its own (an `Identity` where the value is a
/// graph input or already an output).
fn graph_outputs(g: &mut Graph, outs: &[Val], input_names: &[String]) -> Vec<ValueInfoProto> {
    let mut seen: Vec<String> = Vec::new();
    let mut infos = Vec::new();
    for v in outs {
        let mut v = g.in_layout(v, Layout::Keras);
        if input_names.contains(&v.name) || seen.contains(&v.name) {
            v.name = g.node("Identity", &[&v.name], &format!("{}/output", v.name), vec![]);
        }
        seen.push(v.name.clone());
        infos.push(value_info(&v.name, &v.shape));
    }
    infos
}

/// A float tensor of shape `[N, dims...]` (the batch symbolic).
fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let dim = std::iter::once(Dimension { value: Some(dimension::Value::DimParam("N".into())), ..Default::default() })
        .chain(dims.iter().map(|&d| Dimension { value: Some(dimension::Value::DimValue(d as i64)), ..Default::default() }))
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DATA_TYPE_FLOAT,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn model_proto(name: &str, g: Graph, input: Vec<ValueInfoProto>, output: Vec<ValueInfoProto>) -> ModelProto {
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "fovea".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto { node: g.nodes, name: name.to_string(), initializer: g.initializers, input, output, ..Default::default() }),
        ..Default::default()
    }
}
