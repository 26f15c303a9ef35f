//! Define-by-run reverse-mode autodiff: each op records its inputs and a backward closure
//! (see [`Tensor::from_op`]); [`Tensor::backward`] sorts the graph topologically and runs the
//! closures in reverse, summing the gradients of tensors used more than once.

use crate::{Error, Result, Tensor, TensorId};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

/// What [`Tensor::backward_with_hook`] calls with each leaf and its final gradient.
type LeafHook<'a> = dyn FnMut(&Tensor, &Tensor) -> Result<()> + 'a;

type BackwardFn = Box<dyn Fn(&[Tensor], &Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// The record an op leaves on its output: what to call to push the gradient to its inputs.
pub(crate) struct Node {
    pub(crate) name: &'static str,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) backward: BackwardFn,
}

thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread currently record the graph.
pub fn is_recording() -> bool {
    RECORDING.with(|r| r.get())
}

/// Sets whether ops on this thread record the graph, returning the previous setting.
pub(crate) fn set_recording(recording: bool) -> bool {
    RECORDING.with(|r| r.replace(recording))
}

/// Switches recording off until dropped (restoring the previous state), like `torch.no_grad()`.
/// Nothing is recorded, so each activation is freed as soon as the next op has used it.
#[must_use = "recording resumes as soon as the guard is dropped"]
pub struct NoGradGuard {
    previous: bool,
}

impl NoGradGuard {
    /// Stops recording on this thread.
    pub fn new() -> Self {
        NoGradGuard { previous: RECORDING.with(|r| r.replace(false)) }
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        RECORDING.with(|r| r.set(self.previous));
    }
}

/// Runs `f` recording the graph even inside [`no_grad`] (`torch.enable_grad`): a function that
/// takes a gradient itself (a gradient penalty) stays usable where the caller records nothing.
pub fn enable_grad<R>(f: impl FnOnce() -> R) -> R {
    let previous = set_recording(true);
    let r = f();
    set_recording(previous);
    r
}

/// Runs `f` without recording the graph (inference, optimizer updates, metrics).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard::new();
    f()
}

/// Gradients computed by a backward pass, keyed by tensor identity.
#[derive(Default, Clone)]
pub struct Gradients {
    map: HashMap<TensorId, Tensor>,
}

impl std::fmt::Debug for Gradients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gradients({} tensors)", self.map.len())
    }
}

impl Gradients {
    /// The gradient of the loss with respect to `t`, if `t` took part in computing it.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }

    /// The gradient by tensor id.
    pub fn get_id(&self, id: TensorId) -> Option<&Tensor> {
        self.map.get(&id)
    }

    /// Takes the gradient of `t` out of the store.
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.map.remove(&t.id())
    }

    /// The number of gradients held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no gradient is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Tensor {
    /// Backpropagates from this tensor, seeded with ones (so a non-scalar target is treated as
    /// the sum of its elements, as `tf.GradientTape.gradient` does), and returns the gradients of
    /// every leaf that requires one.
    ///
    /// # Errors
    /// `Autodiff` when this tensor does not depend on anything that requires a gradient, or an
    /// op's backward pass fails.
    pub fn backward(&self) -> Result<Gradients> {
        backward_impl(self, None, &HashSet::new(), false, None)
    }

    /// Backpropagates with an explicit output gradient `seed` of this tensor's shape.
    ///
    /// # Errors
    /// `ShapeMismatch` when `seed` has another shape; otherwise as [`Tensor::backward`].
    pub fn backward_with(&self, seed: &Tensor) -> Result<Gradients> {
        backward_impl(self, Some(seed), &HashSet::new(), false, None)
    }

    /// [`Tensor::backward`] that also calls `on_leaf(leaf, gradient)` as soon as each leaf's
    /// gradient is final, while the rest of the backward pass still runs: data-parallel
    /// training starts reducing the last layers' gradients before the first layers' exist
    /// (PyTorch DDP's gradient hooks). Leaves come in a deterministic order for a given graph.
    ///
    /// # Errors
    /// As [`Tensor::backward`], and any error `on_leaf` returns.
    pub fn backward_with_hook(&self, on_leaf: &mut dyn FnMut(&Tensor, &Tensor) -> Result<()>) -> Result<Gradients> {
        backward_impl(self, None, &HashSet::new(), false, Some(on_leaf))
    }
}

/// An op defined outside the core (`tf.custom_gradient`): `value`, computed by the caller
/// (without recording), becomes the output of an op named `name` on `inputs`, and the backward
/// pass calls `backward(inputs, output, output_gradient)` for one gradient (or `None`) per
/// input. Data-parallel training builds its cross-replica sum this way: the value comes from
/// the network, and so does the gradient.
/// A `backward` returning the wrong number or shapes of gradients fails the backward pass
/// with an error naming `name`.
pub fn custom_op(
    name: &'static str,
    value: &Tensor,
    inputs: &[&Tensor],
    backward: impl Fn(&[Tensor], &Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    value.share_storage(value.shape().clone(), name, inputs, backward)
}

/// The gradients of `target` with respect to each of `sources` (leaves or intermediate tensors);
/// `None` for a source that `target` does not depend on.
///
/// # Errors
/// As [`Tensor::backward`].
pub fn grad(target: &Tensor, sources: &[&Tensor]) -> Result<Vec<Option<Tensor>>> {
    let keep: HashSet<TensorId> = sources.iter().map(|t| t.id()).collect();
    let grads = backward_impl(target, None, &keep, false, None)?;
    Ok(sources.iter().map(|s| grads.get(s).cloned()).collect())
}

/// [`grad`] with the backward pass itself recorded (PyTorch's `create_graph=True`, nested
/// `GradientTape`s in TensorFlow), so the gradients can be differentiated again: a gradient
/// penalty (WGAN-GP), a Hessian-vector product.
///
/// Only ops whose backward pass is composed of recorded ops take part: [`TWICE_DIFFERENTIABLE`].
/// Any other op on the path is an error naming it, never a silently constant gradient.
///
/// # Errors
/// As [`grad`]; `Autodiff` naming an op without a second derivative.
pub fn grad_with_graph(target: &Tensor, sources: &[&Tensor]) -> Result<Vec<Option<Tensor>>> {
    let keep: HashSet<TensorId> = sources.iter().map(|t| t.id()).collect();
    let grads = backward_impl(target, None, &keep, true, None)?;
    Ok(sources.iter().map(|s| grads.get(s).cloned()).collect())
}

/// The ops [`grad_with_graph`] can differentiate through: each one's backward pass is built
/// from recorded ops (binary maps, matmul, sums, reshapes, slices and their adjoints, the three
/// convolution passes), or is an op of its own whose backward is written (`unary_grad` for
/// the unary ops, `pool2d_grad` for pooling), or switches to recorded ops while a graph is
/// being recorded (the fused batch norm, channel affine and bias + ReLU).
pub const TWICE_DIFFERENTIABLE: &[&str] = &[
    // Arithmetic, reductions and data movement.
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "maximum",
    "minimum",
    "where",
    "matmul",
    "sum",
    "max",
    "min",
    "reshape",
    "permute",
    "cast",
    "to_device",
    "concat",
    "narrow",
    "slice",
    "strided_slice",
    "flip",
    "pad",
    "gather",
    "scatter_add",
    "softmax",
    // Convolutions (transposed and depthwise ones are made of these) and pooling.
    "conv2d",
    "conv2d_grad_input",
    "conv2d_grad_filter",
    "max_pool2d",
    "avg_pool2d",
    "max_pool2d_with_argmax",
    "pool2d_grad",
    // Normalization and fused epilogues.
    "batch_norm_train",
    "channel_affine",
    "bias_add_relu",
    // Unary ops (the tanh approximation of gelu errors when differentiated twice).
    "unary_grad",
    "neg",
    "abs",
    "sign",
    "floor",
    "round",
    "relu",
    "relu6",
    "leaky_relu",
    "clip",
    "hard_sigmoid",
    "square",
    "sqrt",
    "rsqrt",
    "reciprocal",
    "powf",
    "exp",
    "log",
    "log1p",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "softplus",
    "softsign",
    "elu",
    "selu",
    "swish",
    "gelu",
];

fn backward_impl(
    target: &Tensor,
    seed: Option<&Tensor>,
    keep: &HashSet<TensorId>,
    create_graph: bool,
    on_leaf: Option<&mut LeafHook>,
) -> Result<Gradients> {
    if !target.requires_grad() {
        return Err(Error::Autodiff(
            "the target does not depend on any tensor that requires a gradient (was it computed inside no_grad, or from detached tensors?)"
                .into(),
        ));
    }
    let seed = match seed {
        Some(s) if s.shape() != target.shape() => {
            return Err(Error::shape("backward", format!("a seed gradient of shape {}", target.shape()), s.shape()));
        }
        Some(s) => s.detach(),
        None => target.ones_like(),
    };
    // Hooks want weights' gradients early; a plain pass keeps its long-standing order (and so
    // the order in which gradients of reused tensors are summed).
    let order = topological_order(target, on_leaf.is_some());
    // A plain backward pass records nothing; with `create_graph` its ops record like any other.
    let previous = set_recording(create_graph);
    let result = run_backward(&order, target, seed, keep, create_graph, on_leaf);
    set_recording(previous);
    result
}

fn run_backward(
    order: &[Tensor],
    target: &Tensor,
    seed: Tensor,
    keep: &HashSet<TensorId>,
    create_graph: bool,
    mut on_leaf: Option<&mut LeafHook>,
) -> Result<Gradients> {
    let mut pending: HashMap<TensorId, Tensor> = HashMap::new();
    pending.insert(target.id(), seed);
    let mut result = Gradients::default();
    for t in order.iter().rev() {
        let Some(g) = pending.remove(&t.id()) else { continue };
        if let Some(node) = t.node() {
            if create_graph && !TWICE_DIFFERENTIABLE.contains(&node.name) {
                return Err(Error::Autodiff(format!(
                    "{}: no second derivative yet, so grad_with_graph cannot differentiate through it (supported: {})",
                    node.name,
                    TWICE_DIFFERENTIABLE.join(", ")
                )));
            }
            let input_grads = crate::profile::span("backward", || node.name.to_string(), || (node.backward)(&node.inputs, t, &g))?;
            if input_grads.len() != node.inputs.len() {
                return Err(Error::Autodiff(format!(
                    "{}: backward returned {} gradients for {} inputs",
                    node.name,
                    input_grads.len(),
                    node.inputs.len()
                )));
            }
            for (input, ig) in node.inputs.iter().zip(input_grads) {
                let Some(ig) = ig else { continue };
                if !input.requires_grad() {
                    continue;
                }
                if ig.shape() != input.shape() {
                    return Err(Error::Autodiff(format!(
                        "{}: gradient of shape {} for an input of shape {}",
                        node.name,
                        ig.shape(),
                        input.shape()
                    )));
                }
                let acc = match pending.remove(&input.id()) {
                    Some(prev) => prev.add(&ig)?,
                    None => ig,
                };
                pending.insert(input.id(), acc);
            }
            if keep.contains(&t.id()) {
                result.map.insert(t.id(), g);
            }
        } else {
            // Every consumer of a leaf comes before it in this reverse order: its gradient is
            // complete here.
            if let Some(hook) = on_leaf.as_mut() {
                hook(t, &g)?;
            }
            result.map.insert(t.id(), g);
        }
    }
    Ok(result)
}

/// Tensors reachable from `root` through recorded nodes, each after all of its inputs. With
/// `leaves_late`, each node's first input (the activation path, by the convention of every op
/// with weights) is explored before the others, so a layer's weights land as late as possible
/// in the order and as early as possible in the backward pass that walks it in reverse.
fn topological_order(root: &Tensor, leaves_late: bool) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited: HashSet<TensorId> = HashSet::new();
    // Iterative post-order DFS: deep networks would overflow a recursive one.
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.node() {
            let inputs = node.inputs.iter().filter(|i| i.requires_grad() && !visited.contains(&i.id()));
            // The stack is last in, first out: the input pushed last is explored first.
            if leaves_late {
                stack.extend(inputs.rev().map(|i| (i.clone(), false)));
            } else {
                stack.extend(inputs.map(|i| (i.clone(), false)));
            }
        }
    }
    order
}

/// A `tf.GradientTape`-style helper for custom training loops.
///
/// Recording in Fovea is always on for tensors that require a gradient, so the tape only marks
/// what to differentiate with respect to ([`GradientTape::watch`]) and asks for the gradients.
#[derive(Debug, Default)]
pub struct GradientTape {
    watched: Vec<TensorId>,
}

impl GradientTape {
    /// A new tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns `t` as a tensor that requires a gradient, to be used in the computation.
    ///
    /// # Errors
    /// `DTypeMismatch` for non-float tensors.
    pub fn watch(&mut self, t: &Tensor) -> Result<Tensor> {
        let w = if t.requires_grad() { t.clone() } else { t.with_requires_grad(true)? };
        self.watched.push(w.id());
        Ok(w)
    }

    /// The ids of the watched tensors, in watch order.
    pub fn watched(&self) -> &[TensorId] {
        &self.watched
    }

    /// The gradients of `target` with respect to `sources` (`None` where unconnected).
    ///
    /// # Errors
    /// As [`Tensor::backward`].
    pub fn gradient(&self, target: &Tensor, sources: &[&Tensor]) -> Result<Vec<Option<Tensor>>> {
        grad(target, sources)
    }
}
