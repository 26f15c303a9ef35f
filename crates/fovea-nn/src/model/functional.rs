//! The functional API: symbolic [`Node`]s from [`Input`], layers connected with
//! [`Connect::on`], and a [`Functional`] model over the resulting graph (many inputs and
//! outputs, shared layers, nested models).

use crate::layer::{format_shape, Layer, LayerBase, LayerRef, ShapeSpec};
use crate::model::summary::{render, SummaryRow};
use crate::model::training::{Compiled, Model};
use crate::{Error, Result};
use fovea_core::{Tensor, Variable};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

static NODE_IDS: AtomicUsize = AtomicUsize::new(1);

struct NodeInner {
    id: usize,
    shape: ShapeSpec,
    /// The layer that produced this node and the nodes it was called on; `None` for inputs.
    producer: Option<(LayerRef, Vec<Node>)>,
    /// The name of an input node.
    input_name: Option<String>,
}

/// A symbolic tensor: a shape and how it is computed from the model's inputs (Keras's
/// `KerasTensor`). Cheap to clone.
#[derive(Clone)]
pub struct Node(Arc<NodeInner>);

impl Node {
    /// The static shape, `None` for the batch.
    pub fn shape(&self) -> &ShapeSpec {
        &self.0.shape
    }

    /// A number unique to this node in the process, to key maps by node.
    pub fn id(&self) -> usize {
        self.0.id
    }

    /// The layer that computes this node and the nodes it is called on; `None` for an input.
    pub fn producer(&self) -> Option<(&LayerRef, &[Node])> {
        self.0.producer.as_ref().map(|(l, p)| (l, p.as_slice()))
    }

    /// The name of an input node; `None` for a computed one.
    pub fn input_name(&self) -> Option<&str> {
        self.0.input_name.as_deref()
    }
}

/// `keras.Input`: a model input of `shape` (batch excluded).
pub struct Input;

impl Input {
    /// A named-automatically input (`input_layer`, `input_layer_1`, ...).
    #[allow(clippy::new_ret_no_self)] // Keras's spelling; the result is a symbolic Node
    pub fn new(shape: &[usize]) -> Node {
        Self::named(shape, &crate::names::unique_name("input_layer"))
    }

    /// An input with an explicit name.
    pub fn named(shape: &[usize], name: &str) -> Node {
        let spec = std::iter::once(None).chain(shape.iter().map(|&d| Some(d))).collect();
        Node(Arc::new(NodeInner {
            id: NODE_IDS.fetch_add(1, Ordering::Relaxed),
            shape: spec,
            producer: None,
            input_name: Some(name.to_string()),
        }))
    }
}

/// Calling a layer on symbolic nodes (Keras's `layer(x)` in the functional API). The layer is
/// built from the nodes' shapes right away, so a model's weights exist once it is defined.
pub trait Connect {
    /// Applies the layer to one node.
    ///
    /// # Errors
    /// The layer's build or shape errors, naming the layer.
    fn on(self, input: &Node) -> Result<Node>
    where
        Self: Sized,
    {
        self.on_many(&[input])
    }

    /// Applies the layer to several nodes (merge layers).
    ///
    /// # Errors
    /// As [`Connect::on`].
    fn on_many(self, inputs: &[&Node]) -> Result<Node>;
}

impl Connect for LayerRef {
    fn on_many(self, inputs: &[&Node]) -> Result<Node> {
        let shapes: Vec<ShapeSpec> = inputs.iter().map(|n| n.shape().clone()).collect();
        if !self.base().is_built() {
            self.build(&shapes)?;
            self.base().mark_built();
        }
        let shape = self.compute_output_shape(&shapes)?;
        let producer = Some((self, inputs.iter().map(|n| (*n).clone()).collect()));
        Ok(Node(Arc::new(NodeInner { id: NODE_IDS.fetch_add(1, Ordering::Relaxed), shape, producer, input_name: None })))
    }
}

impl<L: Layer + 'static> Connect for L {
    fn on_many(self, inputs: &[&Node]) -> Result<Node> {
        let layer: LayerRef = Arc::new(self);
        layer.on_many(inputs)
    }
}

/// A model defined by a graph of layers from inputs to outputs (`keras.Model(inputs, outputs)`).
///
/// Its layers build their weights when they are connected, on the device current then (see
/// [`crate::layer::with_device`]); [`Layer::to`] moves the whole model afterwards.
pub struct Functional {
    base: LayerBase,
    inputs: Vec<Node>,
    outputs: Vec<Node>,
    /// Non-input nodes, each after the nodes it reads.
    order: Vec<Node>,
    /// Distinct layers in first-use order.
    layers: Vec<LayerRef>,
    /// Indices into `layers` in the order Keras lists them (see [`keras_layer_order`]).
    summary_order: Vec<usize>,
    compiled: Mutex<Option<Compiled>>,
}

/// A layer's identity, for maps keyed by layer.
fn layer_key(layer: &LayerRef) -> *const () {
    Arc::as_ptr(layer) as *const ()
}

/// The order in which Keras lists a functional model's layers (`model.layers`, `summary()`):
/// by depth — the longest path from the layer to an output, counted in calls, inputs deepest —
/// from the deepest, and among layers of one depth by their first visit in a walk from the
/// outputs (`keras.src.ops.function.map_graph`). A residual block's shortcut conv therefore comes
/// right after the main branch's first conv of the same depth, not after the whole branch.
/// `order` is the post-order walk from the outputs, `layers` the distinct layers; returns
/// indices into `layers`.
fn keras_layer_order(order: &[Node], layers: &[LayerRef], first_visit: &HashMap<*const (), usize>) -> Vec<usize> {
    let mut node_depth: HashMap<usize, usize> = HashMap::new();
    let mut layer_depth: HashMap<*const (), usize> = HashMap::new();
    // Outputs first: every node's consumers are settled before the node itself.
    for node in order.iter().rev() {
        let (layer, parents) = node.0.producer.as_ref().expect("non-input nodes have producers");
        // A shared layer takes the depth of its deepest call so far, as in Keras.
        let depth = node_depth.get(&node.id()).copied().unwrap_or(0).max(layer_depth.get(&layer_key(layer)).copied().unwrap_or(0));
        layer_depth.insert(layer_key(layer), depth);
        node_depth.insert(node.id(), depth);
        for p in parents {
            let d = node_depth.entry(p.id()).or_insert(0);
            *d = (*d).max(depth + 1);
        }
    }
    let mut idx: Vec<usize> = (0..layers.len()).collect();
    idx.sort_by_key(|&i| {
        let key = layer_key(&layers[i]);
        (std::cmp::Reverse(layer_depth.get(&key).copied().unwrap_or(0)), first_visit.get(&key).copied().unwrap_or(usize::MAX))
    });
    idx
}

impl Functional {
    /// The model from `inputs` to `outputs`.
    ///
    /// # Errors
    /// `Config` when an output depends on an input that is not listed (a disconnected graph),
    /// or when no inputs or outputs are given.
    pub fn new(inputs: &[&Node], outputs: &[&Node]) -> Result<Self> {
        if inputs.is_empty() || outputs.is_empty() {
            return Err(Error::Config("a functional model needs at least one input and one output".into()));
        }
        let input_ids: HashSet<usize> = inputs.iter().map(|n| n.id()).collect();
        let mut order = Vec::new();
        let mut seen: HashSet<usize> = HashSet::new();
        // Each layer's position in a pre-order walk from the outputs: Keras's tie-break.
        let mut first_visit: HashMap<*const (), usize> = HashMap::new();
        // Iterative post-order walk from the outputs back to the inputs.
        let mut stack: Vec<(Node, bool)> = outputs.iter().rev().map(|n| ((*n).clone(), false)).collect();
        while let Some((node, expanded)) = stack.pop() {
            if expanded {
                order.push(node);
                continue;
            }
            if !seen.insert(node.id()) || input_ids.contains(&node.id()) {
                continue;
            }
            match &node.0.producer {
                None => {
                    return Err(Error::Config(format!(
                        "graph disconnected: an output depends on input {:?} of shape {}, which is not among the model's inputs",
                        node.0.input_name.clone().unwrap_or_default(),
                        format_shape(node.shape())
                    )))
                }
                Some((layer, parents)) => {
                    let next = first_visit.len();
                    first_visit.entry(layer_key(layer)).or_insert(next);
                    stack.push((node.clone(), true));
                    for p in parents.iter().rev() {
                        stack.push((p.clone(), false));
                    }
                }
            }
        }
        let mut layers: Vec<LayerRef> = Vec::new();
        for n in &order {
            let (layer, _) = n.0.producer.as_ref().expect("non-input nodes have producers");
            if !layers.iter().any(|l| Arc::ptr_eq(l, layer)) {
                layers.push(layer.clone());
            }
        }
        let summary_order = keras_layer_order(&order, &layers, &first_visit);
        // Layers create their weights as they are connected, on their own device: the model
        // takes the device of the first layer that has weights (or the default device), and
        // brings any layer built elsewhere to it, so one model lives on one device.
        let device = layers.iter().find(|l| !l.weights().is_empty()).map_or_else(crate::layer::default_device, |l| l.device());
        let model = Functional {
            base: LayerBase::new("Functional"),
            inputs: inputs.iter().map(|n| (*n).clone()).collect(),
            outputs: outputs.iter().map(|n| (*n).clone()).collect(),
            order,
            layers,
            summary_order,
            compiled: Mutex::new(None),
        };
        model.to(device)?;
        Ok(model)
    }

    /// Names the model.
    ///
    /// # Errors
    /// As [`LayerBase::set_name`].
    pub fn named(self, name: &str) -> Result<Self> {
        self.base.set_name(name)?;
        Ok(self)
    }

    /// The layers, in the order the graph first uses them.
    pub fn layers(&self) -> &[LayerRef] {
        &self.layers
    }

    /// Every computed (non-input) node, each after the nodes it reads: the order the model
    /// runs its layer calls in (exporters walk the graph in this order).
    pub fn nodes(&self) -> &[Node] {
        &self.order
    }

    /// The input nodes.
    pub fn inputs(&self) -> &[Node] {
        &self.inputs
    }

    /// The output nodes.
    pub fn outputs(&self) -> &[Node] {
        &self.outputs
    }

    /// The layer named `name`.
    ///
    /// # Errors
    /// `Layer` listing the layer names when none matches.
    pub fn get_layer(&self, name: &str) -> Result<LayerRef> {
        self.layers.iter().find(|l| l.name() == name).cloned().ok_or_else(|| {
            let names: Vec<&str> = self.layers.iter().map(|l| l.name()).collect();
            self.base.error(format!("no layer named {name:?}; layers: {names:?}"))
        })
    }

    /// Runs the graph and returns every output.
    ///
    /// # Errors
    /// `Layer` for a wrong number of inputs; errors from the layers.
    pub fn call_all(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        // The whole graph on the pool: its ops then fork-join there (see `fovea_core::threads`).
        fovea_core::on_pool(|| self.call_all_here(inputs, training))
    }

    /// The only consumer of node `i`'s output, when it has exactly one and is not a model output.
    fn sole_consumer(&self, i: usize, consumers: &HashMap<usize, Vec<usize>>, last_use: &HashMap<usize, usize>) -> Option<usize> {
        let id = self.order[i].id();
        match consumers.get(&id).map(Vec::as_slice) {
            Some(&[j]) if last_use.get(&id) == Some(&j) => Some(j),
            _ => None,
        }
    }

    /// Inference-only fusion of `conv/dense (linear) → BatchNormalization [→ relu]`: the layer's
    /// bias folds into the batch norm's shift and the three per-channel passes (bias add, batch
    /// norm, ReLU) become one (ResNet-50: about 15% of inference was those passes). Returns the
    /// nodes it computed after `i` (the last one holds the value) and that value, or `None` when
    /// node `i` does not start such a chain (or a layer is not built yet).
    fn fused_chain(
        &self,
        i: usize,
        args: &[Tensor],
        consumers: &HashMap<usize, Vec<usize>>,
        last_use: &HashMap<usize, usize>,
    ) -> Result<Option<(Vec<usize>, Tensor)>> {
        let producer = |k: usize| &self.order[k].0.producer.as_ref().expect("non-input nodes have producers").0;
        let Some(j) = self.sole_consumer(i, consumers, last_use) else { return Ok(None) };
        if !producer(i).base().is_built() || !producer(j).base().is_built() {
            return Ok(None);
        }
        let Some(affine) = producer(j).inference_affine() else { return Ok(None) };
        let (scale, shift) = affine?;
        let relu = self.sole_consumer(j, consumers, last_use).filter(|&k| producer(k).is_plain_relu());
        let ids = std::iter::once(j).chain(relu).map(|k| self.order[k].id()).collect();
        // A convolution applies the map itself, while its output is in cache.
        if let Some(y) = producer(i).call_with_affine(args, &scale, &shift, relu.is_some()) {
            return Ok(Some((ids, y?)));
        }
        let Some(linear) = producer(i).call_without_bias(args) else { return Ok(None) };
        let (z, bias) = linear?;
        // (z + b)·s + t = z·s + (t + b·s)
        let shift = match bias {
            Some(b) => shift.add(&b.mul(&scale)?)?,
            None => shift,
        };
        let y = if relu.is_some() { z.channel_affine_relu(&scale, &shift)? } else { z.channel_affine(&scale, &shift)? };
        Ok(Some((ids, y)))
    }

    fn call_all_here(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(self.base.error(format!("expected {} input tensors, got {}", self.inputs.len(), inputs.len())));
        }
        let mut values: HashMap<usize, Tensor> = self.inputs.iter().zip(inputs).map(|(n, t)| (n.id(), t.clone())).collect();
        // Each intermediate value is dropped after its last consumer: in inference nothing else
        // holds it, so its memory goes back at once (ResNet-50 at batch 8 otherwise kept every
        // activation of the pass alive, 1.5 GB). While training, the graph keeps what backward needs.
        let mut last_use: HashMap<usize, usize> = HashMap::new();
        let mut consumers: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, node) in self.order.iter().enumerate() {
            for p in &node.0.producer.as_ref().expect("non-input nodes have producers").1 {
                last_use.insert(p.id(), i);
                consumers.entry(p.id()).or_default().push(i);
            }
        }
        for n in &self.outputs {
            last_use.insert(n.id(), usize::MAX);
        }
        let fuse = !training && !fovea_core::autograd::is_recording();
        let mut fused_away: HashSet<usize> = HashSet::new();
        for (i, node) in self.order.iter().enumerate() {
            if fused_away.contains(&node.id()) {
                continue; // computed by a fused chain
            }
            let (layer, parents) = node.0.producer.as_ref().expect("non-input nodes have producers");
            let args: Vec<Tensor> = parents.iter().map(|p| values[&p.id()].clone()).collect();
            for p in parents {
                if last_use.get(&p.id()) == Some(&i) {
                    values.remove(&p.id());
                }
            }
            if fuse {
                if let Some((fused, y)) = self.fused_chain(i, &args, &consumers, &last_use)? {
                    values.insert(*fused.last().expect("a chain has nodes"), y);
                    fused_away.extend(fused);
                    continue;
                }
            }
            let y = layer.apply(&args, training)?;
            values.insert(node.id(), y);
        }
        Ok(self.outputs.iter().map(|n| values[&n.id()].clone()).collect())
    }

    /// Every layer call in execution order: the layer, the shapes it was called on and the
    /// shape it produced (for [`crate::model::analysis`]).
    pub fn layer_calls(&self) -> Vec<(LayerRef, Vec<ShapeSpec>, ShapeSpec)> {
        self.order
            .iter()
            .filter_map(|node| {
                let (layer, parents) = node.0.producer.as_ref()?;
                Some((layer.clone(), parents.iter().map(|p| p.shape().clone()).collect(), node.shape().clone()))
            })
            .collect()
    }

    /// The Keras summary table with the "Connected to" column.
    ///
    /// # Errors
    /// Never for a model that was constructed successfully; kept fallible for symmetry.
    pub fn summary(&self) -> Result<String> {
        self.summary_table(false)
    }

    /// [`Functional::summary`] with each layer's multiply-accumulates per image (summed over
    /// its calls, for a shared layer) and their total: the seeds' `summary(show_flops)`.
    ///
    /// # Errors
    /// For sizes the count needs but the model leaves unknown.
    pub fn summary_with_flops(&self) -> Result<String> {
        self.summary_table(true)
    }

    fn summary_table(&self, flops: bool) -> Result<String> {
        let macs = if flops { Some(crate::model::analysis::functional_macs(self)?) } else { None };
        let layer_macs = |name: &str| macs.as_ref().map(|m| m.iter().filter(|r| r.name == name).map(|r| r.macs).sum());
        let count = |vs: &[Variable]| vs.iter().map(|v| v.value().numel()).sum::<usize>();
        let mut rows: Vec<SummaryRow> = self
            .inputs
            .iter()
            .map(|n| SummaryRow {
                layer: format!("{} (InputLayer)", n.0.input_name.clone().unwrap_or_default()),
                output_shape: format_shape(n.shape()),
                params: 0,
                connected_to: Some("-".into()),
                macs: macs.as_ref().map(|_| 0),
            })
            .collect();
        let node_name = |n: &Node| -> String {
            match &n.0.producer {
                None => n.0.input_name.clone().unwrap_or_default(),
                Some((l, _)) => l.name().to_string(),
            }
        };
        for layer in self.summary_order.iter().map(|&i| &self.layers[i]) {
            // The layer's first call gives the shape and the connections shown.
            let node = self
                .order
                .iter()
                .find(|n| n.0.producer.as_ref().is_some_and(|(l, _)| Arc::ptr_eq(l, layer)))
                .expect("every layer has a call");
            let (_, parents) = node.0.producer.as_ref().expect("producer");
            let connected: Vec<String> = parents.iter().map(|p| format!("{}[0][0]", node_name(p))).collect();
            rows.push(SummaryRow {
                layer: format!("{} ({})", layer.name(), layer.class_name()),
                output_shape: format_shape(node.shape()),
                params: count(&layer.weights()),
                connected_to: Some(connected.join(", ")),
                macs: layer_macs(layer.name()),
            });
        }
        Ok(render(self.name(), &rows, count(&self.trainable_weights()), count(&self.non_trainable_weights())))
    }
}

impl Layer for Functional {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "Functional"
    }

    /// The same graph (sharing the layers), so a model nested in another exports as its layers.
    fn as_functional(&self, input_shapes: &[ShapeSpec]) -> Option<Result<Functional>> {
        let declared: Vec<&ShapeSpec> = self.inputs.iter().map(Node::shape).collect();
        let same = input_shapes.len() == declared.len() && input_shapes.iter().zip(&declared).all(|(a, b)| a[1..] == b[1..]);
        if !same {
            let got: Vec<String> = input_shapes.iter().map(|s| format_shape(s)).collect();
            let want: Vec<String> = declared.iter().map(|s| format_shape(s)).collect();
            return Some(Err(self.base.error(format!("called on inputs {got:?}, but its graph is for {want:?}"))));
        }
        let inputs: Vec<&Node> = self.inputs.iter().collect();
        let outputs: Vec<&Node> = self.outputs.iter().collect();
        Some(Functional::new(&inputs, &outputs))
    }

    fn compute_output_shape(&self, _input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        match self.outputs.as_slice() {
            [o] => Ok(o.shape().clone()),
            _ => Err(self.base.error(format!("has {} outputs; use call_all", self.outputs.len()))),
        }
    }

    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        let mut outs = self.call_all(inputs, training)?;
        if outs.len() != 1 {
            return Err(self.base.error(format!("has {} outputs; use call_all", outs.len())));
        }
        Ok(outs.remove(0))
    }

    fn config(&self) -> serde_json::Value {
        let layers: Vec<serde_json::Value> =
            self.layers.iter().map(|l| serde_json::json!({"class_name": l.class_name(), "config": l.config()})).collect();
        // The graph: inputs by name and shape; each node as (layer index, input references);
        // a reference is "i<k>" for input k or "n<j>" for node j of this list.
        let node_ref = |n: &Node| -> String {
            match self.inputs.iter().position(|i| i.id() == n.id()) {
                Some(k) => format!("i{k}"),
                None => {
                    format!("n{}", self.order.iter().position(|o| o.id() == n.id()).expect("every parent is an input or an earlier node"))
                }
            }
        };
        let inputs: Vec<serde_json::Value> = self
            .inputs
            .iter()
            .map(
                |n| serde_json::json!({"name": n.0.input_name, "shape": n.shape()[1..].iter().map(|d| d.unwrap_or(0)).collect::<Vec<_>>()}),
            )
            .collect();
        let nodes: Vec<serde_json::Value> = self
            .order
            .iter()
            .map(|n| {
                let (layer, parents) = n.0.producer.as_ref().expect("producer");
                let index = self.layers.iter().position(|l| Arc::ptr_eq(l, layer)).expect("layer listed");
                serde_json::json!({"layer": index, "inputs": parents.iter().map(node_ref).collect::<Vec<_>>()})
            })
            .collect();
        let outputs: Vec<String> = self.outputs.iter().map(node_ref).collect();
        serde_json::json!({"name": self.name(), "trainable": self.trainable(), "layers": layers, "inputs": inputs, "nodes": nodes, "outputs": outputs})
    }

    fn weights(&self) -> Vec<Variable> {
        self.layers.iter().flat_map(|l| l.weights()).collect()
    }

    fn to(&self, device: fovea_core::Device) -> Result<()> {
        self.base.to(device)?;
        for l in &self.layers {
            l.to(device)?;
        }
        Ok(())
    }

    fn set_trainable(&self, trainable: bool) -> Result<()> {
        self.base.set_trainable(trainable)?;
        for l in &self.layers {
            l.set_trainable(trainable)?;
        }
        Ok(())
    }

    fn losses(&self) -> Result<Vec<Tensor>> {
        let mut out = self.base.losses()?;
        for l in &self.layers {
            out.extend(l.losses()?);
        }
        Ok(out)
    }
}

/// Rebuilds a functional model from its config (layers, then the graph of nodes), under the
/// parameter limit for configs ([`crate::budget::max_params`]).
///
/// # Errors
/// `Config` for malformed configs, a model past the parameter limit, and as
/// [`crate::model::registry::layer_from_config`].
pub fn functional_from_config(c: &serde_json::Value) -> Result<Functional> {
    crate::budget::with_config_limit(|| functional_unlimited(c))
}

fn functional_unlimited(c: &serde_json::Value) -> Result<Functional> {
    let bad = |what: &str| Error::Config(format!("functional config: {what}"));
    let layers: Vec<LayerRef> = c["layers"]
        .as_array()
        .ok_or_else(|| bad("no \"layers\" list"))?
        .iter()
        .map(|l| crate::model::registry::layer_from_config(l["class_name"].as_str().unwrap_or(""), &l["config"]))
        .collect::<Result<_>>()?;
    let inputs: Vec<Node> = c["inputs"]
        .as_array()
        .ok_or_else(|| bad("no \"inputs\" list"))?
        .iter()
        .map(|i| {
            let shape: Vec<usize> = serde_json::from_value(i["shape"].clone()).map_err(|e| bad(&format!("input shape: {e}")))?;
            Ok(Input::named(&shape, i["name"].as_str().unwrap_or("input_layer")))
        })
        .collect::<Result<_>>()?;
    let mut nodes: Vec<Node> = Vec::new();
    let resolve = |r: &str, nodes: &[Node]| -> Result<Node> {
        let (kind, idx) = r.split_at(1);
        let i: usize = idx.parse().map_err(|_| bad(&format!("bad node reference {r:?}")))?;
        match kind {
            "i" => inputs.get(i).cloned(),
            "n" => nodes.get(i).cloned(),
            _ => None,
        }
        .ok_or_else(|| bad(&format!("node reference {r:?} points nowhere")))
    };
    for n in c["nodes"].as_array().ok_or_else(|| bad("no \"nodes\" list"))? {
        let layer = layers.get(n["layer"].as_u64().unwrap_or(u64::MAX) as usize).ok_or_else(|| bad("node names a missing layer"))?;
        let parents: Vec<Node> = n["inputs"]
            .as_array()
            .ok_or_else(|| bad("node without inputs"))?
            .iter()
            .map(|r| resolve(r.as_str().unwrap_or(""), &nodes))
            .collect::<Result<_>>()?;
        let refs: Vec<&Node> = parents.iter().collect();
        nodes.push(layer.clone().on_many(&refs)?);
    }
    let outputs: Vec<Node> = c["outputs"]
        .as_array()
        .ok_or_else(|| bad("no \"outputs\" list"))?
        .iter()
        .map(|r| resolve(r.as_str().unwrap_or(""), &nodes))
        .collect::<Result<_>>()?;
    let model = Functional::new(&inputs.iter().collect::<Vec<_>>(), &outputs.iter().collect::<Vec<_>>())?;
    if let Some(name) = c["name"].as_str() {
        model.base.set_name(name)?;
    }
    Ok(model)
}

impl Model for Functional {
    fn compiled(&self) -> &Mutex<Option<Compiled>> {
        &self.compiled
    }

    fn output_names(&self) -> Vec<String> {
        self.outputs
            .iter()
            .map(|n| match &n.0.producer {
                Some((layer, _)) => layer.name().to_string(),
                None => n.0.input_name.clone().unwrap_or_default(),
            })
            .collect()
    }

    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        self.call_all(inputs, training)?.into_iter().map(crate::mixed_precision::to_f32).collect()
    }
}
