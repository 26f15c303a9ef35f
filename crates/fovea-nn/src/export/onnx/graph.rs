//! An ONNX graph under construction: nodes appended in execution order, weights as
//! initializers, unique value names, and the layout bookkeeping that lets the exported graph
//! keep Fovea's NHWC inputs and outputs while running convolutions in ONNX's NCHW.

use super::proto::{AttributeProto, AttributeType, NodeProto, TensorProto, DATA_TYPE_FLOAT, DATA_TYPE_INT64};
use std::collections::{HashMap, HashSet};

/// How a value's axes are ordered in the ONNX graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// As Fovea holds it (NHWC for images; any rank).
    Keras,
    /// A rank-4 image value in ONNX's channels-first order.
    Nchw,
}

/// A value of the graph: its name, layout and Fovea shape (batch excluded, channels-last).
#[derive(Clone, Debug, PartialEq)]
pub struct Val {
    /// The ONNX value name.
    pub name: String,
    /// Its axis order in the graph.
    pub layout: Layout,
    /// Its shape as Fovea sees it, without the batch axis.
    pub shape: Vec<usize>,
}

impl Val {
    /// The rank with the batch axis.
    pub fn rank(&self) -> usize {
        self.shape.len() + 1
    }

    /// The ONNX axis of Fovea's axis `axis` (negative counts from the end, batch included).
    pub fn onnx_axis(&self, axis: i64) -> i64 {
        let r = self.rank() as i64;
        let a = if axis < 0 { axis + r } else { axis };
        match (self.layout, a) {
            (Layout::Nchw, 3) => 1,
            (Layout::Nchw, 1) => 2,
            (Layout::Nchw, 2) => 3,
            _ => a,
        }
    }
}

/// The graph being built.
#[derive(Default)]
pub struct Graph {
    /// Nodes in execution order.
    pub nodes: Vec<NodeProto>,
    /// Constant tensors.
    pub initializers: Vec<TensorProto>,
    names: HashSet<String>,
    /// Values already transposed to another layout, so a value read by several convolutions is
    /// transposed once.
    converted: HashMap<(String, Layout), String>,
    /// Weight initializers already added, by layer, weight and permutation (see
    /// `layers::Ctx::init`), with their ONNX dims.
    pub weights: HashMap<String, (String, Vec<usize>)>,
}

/// ONNX names may hold any characters, but runtimes print them and tools use them as file
/// names: keep Keras's `/`-separated names, replace whitespace.
fn clean(base: &str) -> String {
    let s: String = base.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
    if s.is_empty() {
        "value".into()
    } else {
        s
    }
}

impl Graph {
    /// Reserves `name` as is (graph inputs keep their model names).
    pub fn reserve(&mut self, name: &str) {
        self.names.insert(name.to_string());
    }

    /// A value or node name not used yet: `base`, else `base_1`, `base_2`, ...
    pub fn unique(&mut self, base: &str) -> String {
        let base = clean(base);
        let mut name = base.clone();
        let mut i = 1;
        while self.names.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// Appends an `op` node reading `inputs` and returns the name of its one output, derived
    /// from `base`.
    pub fn node(&mut self, op: &str, inputs: &[&str], base: &str, attribute: Vec<AttributeProto>) -> String {
        let output = self.unique(base);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name: output.clone(),
            op_type: op.to_string(),
            attribute,
            ..Default::default()
        });
        output
    }

    /// Appends an `op` node with several outputs (`MaxPool` with its indices), named from
    /// `bases`, and returns their names.
    pub fn node_outputs(&mut self, op: &str, inputs: &[&str], bases: &[&str], attribute: Vec<AttributeProto>) -> Vec<String> {
        let outputs: Vec<String> = bases.iter().map(|b| self.unique(b)).collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.clone(),
            name: outputs[0].clone(),
            op_type: op.to_string(),
            attribute,
            ..Default::default()
        });
        outputs
    }

    /// Adds a float initializer and returns its name.
    pub fn f32_const(&mut self, base: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.unique(base);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DATA_TYPE_FLOAT,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// Adds a 1-D int64 initializer (shapes, pads, axes) and returns its name.
    pub fn i64_const(&mut self, base: &str, data: &[i64]) -> String {
        let name = self.unique(base);
        self.initializers.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: DATA_TYPE_INT64,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// `v` in `layout`: itself, or a `Transpose` of it (made once per value and layout).
    /// Only rank-4 values have an NCHW form; others are returned as they are.
    pub fn in_layout(&mut self, v: &Val, layout: Layout) -> Val {
        if v.layout == layout || v.rank() != 4 {
            return v.clone();
        }
        let key = (v.name.clone(), layout);
        let name = match self.converted.get(&key) {
            Some(n) => n.clone(),
            None => {
                let (perm, suffix) = match layout {
                    Layout::Nchw => ([0, 3, 1, 2], "nchw"),
                    Layout::Keras => ([0, 2, 3, 1], "nhwc"),
                };
                let n = self.node("Transpose", &[&v.name], &format!("{}/{suffix}", v.name), vec![ints("perm", &perm)]);
                self.converted.insert(key, n.clone());
                n
            }
        };
        Val { name, layout, shape: v.shape.clone() }
    }
}

/// An integer attribute.
pub fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i, ..Default::default() }
}

/// An integer-list attribute.
pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

/// A float attribute.
pub fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f, ..Default::default() }
}

/// A string attribute.
pub fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::String as i32, s: s.as_bytes().to_vec(), ..Default::default() }
}
