//! The [`Layer`] trait — Keras's layer contract — and [`LayerBase`], the state every layer
//! shares (name, trainable flag, weights created through one path, extra losses).
//!
//! A custom layer, as Keras's subclassing guide writes one: weights created in `build` once
//! the input shape is known, the computation in `call`, a config that rebuilds it, and one
//! registration line so that model files holding it load anywhere the crate is linked.
//!
//! ```
//! use fovea_core::{Tensor, Variable};
//! use fovea_nn::initializers::Initializer;
//! use fovea_nn::layer::{single_input, single_shape, Layer, LayerBase, LayerRef, ShapeSpec};
//! use fovea_nn::layers::Dense;
//! use fovea_nn::model::io::{load_model, save_model};
//! use fovea_nn::model::{Model, Sequential};
//! use std::sync::{Arc, OnceLock};
//!
//! /// `x · w` per feature: one trainable scale per input feature.
//! struct Scale {
//!     base: LayerBase,
//!     w: OnceLock<Variable>,
//! }
//!
//! impl Scale {
//!     fn new() -> Self {
//!         Scale { base: LayerBase::new("Scale"), w: OnceLock::new() }
//!     }
//!     fn from_config(_config: &serde_json::Value) -> fovea_nn::Result<LayerRef> {
//!         Ok(Arc::new(Scale::new()))
//!     }
//! }
//!
//! impl Layer for Scale {
//!     fn base(&self) -> &LayerBase {
//!         &self.base
//!     }
//!     fn class_name(&self) -> &'static str {
//!         "Scale"
//!     }
//!     fn build(&self, input_shapes: &[ShapeSpec]) -> fovea_nn::Result<()> {
//!         let features = single_shape(&self.base, input_shapes)?.last().copied().flatten();
//!         let features = features.ok_or_else(|| self.base.error("the feature axis must be known"))?;
//!         let w = self.base.add_weight("scale", &[features], &Initializer::Ones, true, None)?;
//!         let _ = self.w.set(w);
//!         Ok(())
//!     }
//!     fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> fovea_nn::Result<ShapeSpec> {
//!         Ok(single_shape(&self.base, input_shapes)?.clone())
//!     }
//!     fn call(&self, inputs: &[Tensor], _training: bool) -> fovea_nn::Result<Tensor> {
//!         let w = self.w.get().ok_or_else(|| self.base.error("called before build"))?;
//!         Ok(single_input(&self.base, inputs)?.mul(&w.value())?)
//!     }
//!     fn config(&self) -> serde_json::Value {
//!         serde_json::json!({"name": self.name(), "trainable": self.trainable()})
//!     }
//! }
//!
//! fovea_nn::register_layer_class!("Scale", Scale::from_config);
//!
//! fn main() -> fovea_nn::Result<()> {
//!     let model = Sequential::with_input_shape(&[3]);
//!     model.add(Scale::new())?;
//!     model.add(Dense::new(2))?;
//!     model.build_for(&[3])?;
//!     let path = std::env::temp_dir().join(format!("scale-doc-{}.safetensors", std::process::id()));
//!     save_model(&model, &path)?;
//!     let back = load_model(&path)?;
//!     std::fs::remove_file(&path).ok();
//!     let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], vec![1, 3], fovea_core::Device::Cpu)?;
//!     assert_eq!(back.predict(&x, 1)?.to_vec::<f32>()?, model.predict(&x, 1)?.to_vec::<f32>()?);
//!     assert_eq!(back.layers()[0].class_name(), "Scale");
//!     Ok(())
//! }
//! ```

use crate::regularizers::Regularizer;
use crate::{initializers::Initializer, Error, Result};
use fovea_core::{random, Device, Tensor, Variable};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

thread_local! {
    /// The device new layers and models start on in this thread (see [`with_device`]).
    static DEFAULT_DEVICE: Cell<Device> = const { Cell::new(Device::Cpu) };
}

/// The device layers and models created now start on: `Cpu`, or the one an enclosing
/// [`with_device`] gives.
pub fn default_device() -> Device {
    DEFAULT_DEVICE.with(Cell::get)
}

/// Runs `f` with `device` as the [`default_device`] of this thread (`with tf.device(...)` in
/// Keras): layers and models created inside start there, so a functional model — whose layers
/// create their weights as they are connected — is built on the device directly rather than on
/// the CPU and then moved. The previous default comes back afterwards, also on panic.
pub fn with_device<R>(device: Device, f: impl FnOnce() -> R) -> R {
    struct Restore(Device);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEFAULT_DEVICE.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DEFAULT_DEVICE.with(|d| d.replace(device)));
    f()
}

/// Moves a variable to `device`, keeping its identity (layers, optimizers and gradient maps
/// hold it by handle).
///
/// # Errors
/// `DeviceUnavailable` when `device` has no backend — checked first, because
/// `Variable::set_device` treats an unavailable device as a bug.
pub fn move_variable(variable: &Variable, device: Device) -> Result<()> {
    if variable.value().device() == device {
        return Ok(());
    }
    fovea_core::backend::backend(device)?;
    Ok(variable.set_device(device)?)
}

/// A static shape whose unknown dimensions (the batch) are `None`: Keras's `(None, 28, 28, 1)`.
pub type ShapeSpec = Vec<Option<usize>>;

/// Formats a [`ShapeSpec`] as Keras prints it: `(None, 28, 28, 1)`.
pub fn format_shape(shape: &[Option<usize>]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.map_or("None".to_string(), |v| v.to_string())).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// A layer: lazily built from its input shapes, then called on tensors.
///
/// Methods take `&self` (state lives behind interior mutability) so one layer can be shared by
/// several places of a functional model, as in Keras.
pub trait Layer: Send + Sync {
    /// The shared layer state.
    fn base(&self) -> &LayerBase;

    /// The Keras class name (`"Dense"`, `"Conv2D"`).
    fn class_name(&self) -> &'static str;

    /// Creates the weights for inputs of these shapes (without the batch dimension resolved).
    /// Called once, before the first call; layers without weights keep the default.
    ///
    /// # Errors
    /// `Layer` naming the layer when the shapes are unusable (wrong rank, unknown channels).
    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let _ = input_shapes;
        Ok(())
    }

    /// The output shape for inputs of these shapes.
    ///
    /// # Errors
    /// `Layer` naming the layer when the shapes are unusable.
    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec>;

    /// The forward pass; `training` switches dropout and batch statistics.
    ///
    /// # Errors
    /// `Layer` naming the layer for bad inputs; core errors from the ops.
    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor>;

    /// The constructor arguments as Keras-style JSON (`get_config`).
    fn config(&self) -> serde_json::Value;

    /// The layer's name.
    fn name(&self) -> &str {
        self.base().name()
    }

    /// Every weight, in Keras order (e.g. kernel then bias).
    fn weights(&self) -> Vec<Variable> {
        self.base().weights()
    }

    /// Whether the layer's weights are updated by training.
    fn trainable(&self) -> bool {
        self.base().trainable()
    }

    /// Freezes (`false`) or unfreezes the layer; frozen weights count as non-trainable.
    ///
    /// # Errors
    /// Core errors from re-flagging the variables (never for float weights).
    fn set_trainable(&self, trainable: bool) -> Result<()> {
        self.base().set_trainable(trainable)
    }

    /// The weights training updates.
    fn trainable_weights(&self) -> Vec<Variable> {
        self.weights().into_iter().filter(|v| v.trainable()).collect()
    }

    /// The weights training does not update (frozen ones, moving statistics).
    fn non_trainable_weights(&self) -> Vec<Variable> {
        self.weights().into_iter().filter(|v| !v.trainable()).collect()
    }

    /// The extra loss terms of the last call: weight regularization penalties and `add_loss`.
    ///
    /// # Errors
    /// Core errors while computing a penalty.
    fn losses(&self) -> Result<Vec<Tensor>> {
        self.base().losses()
    }

    /// For fusing at inference: a layer whose output is `linear(x) + bias` per channel (a
    /// convolution or dense layer with a linear activation) returns `linear(x)` and the bias,
    /// so a following per-channel map can absorb the bias. `None` when the layer is not of that
    /// form (the default). Called only on built layers.
    ///
    /// # Errors
    /// As [`Layer::call`].
    fn call_without_bias(&self, _inputs: &[Tensor]) -> Option<Result<(Tensor, Option<Tensor>)>> {
        None
    }

    /// For fusing at inference: `linear(x)·scale + shift` per output channel (then ReLU when
    /// `relu`) as one op, with the layer's own bias folded into `shift`, where the layer can
    /// (a 2-D convolution with a linear activation); `None` otherwise (the default), and the
    /// caller then uses [`Layer::call_without_bias`]. Called only on built layers.
    ///
    /// # Errors
    /// As [`Layer::call`].
    fn call_with_affine(&self, _inputs: &[Tensor], _scale: &Tensor, _shift: &Tensor, _relu: bool) -> Option<Result<Tensor>> {
        None
    }

    /// For fusing at inference: the per-channel `(scale, shift)` this layer applies in inference
    /// mode (`y = x·scale + shift` on the last axis), as a `BatchNormalization` does with its
    /// moving statistics; `None` otherwise (the default). Called only on built layers.
    ///
    /// # Errors
    /// Core errors while folding the statistics.
    fn inference_affine(&self) -> Option<Result<(Tensor, Tensor)>> {
        None
    }

    /// The device this layer's weights live on and new ones are created on.
    fn device(&self) -> Device {
        self.base().device()
    }

    /// Moves every weight (moving statistics included) to `device` and creates later weights
    /// there (`model.to(device)`). Layers that hold other layers override this to move those
    /// too, so an unbuilt sublayer also builds on the new device.
    ///
    /// # Errors
    /// `DeviceUnavailable` when `device` has no backend; the layer is then left where it was.
    fn to(&self, device: Device) -> Result<()> {
        self.base().to(device)?;
        for v in self.weights() {
            move_variable(&v, device)?;
        }
        Ok(())
    }

    /// For exporters (ONNX): a custom layer made of other layers returns its computation as a
    /// functional model over those same layers (sharing their weights) for inputs of these
    /// shapes, which an exporter inlines in place of the layer; `None` (the default) for a layer
    /// that is not such a composition.
    ///
    /// # Errors
    /// As [`Layer::compute_output_shape`].
    fn as_functional(&self, _input_shapes: &[ShapeSpec]) -> Option<Result<crate::model::functional::Functional>> {
        None
    }

    /// Whether this layer is exactly `relu` (`Activation("relu")`), for fusing at inference.
    fn is_plain_relu(&self) -> bool {
        self.class_name() == "Activation" && self.config()["activation"] == "relu"
    }

    /// Builds on first use, checks the inputs, and calls.
    ///
    /// # Errors
    /// As [`Layer::build`] and [`Layer::call`].
    fn apply(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        if !self.base().is_built() {
            let shapes: Vec<ShapeSpec> = inputs
                .iter()
                .map(|t| std::iter::once(None).chain(t.dims()[1.min(t.rank())..].iter().map(|&d| Some(d))).collect())
                .collect();
            self.build(&shapes)?;
            self.base().mark_built();
        }
        self.base().clear_call_losses();
        fovea_core::profile::span(
            "forward",
            || format!("{} ({})", self.name(), self.class_name()),
            || crate::mixed_precision::call_under(self.base().dtype_policy(), inputs, |inputs| self.call(inputs, training)),
        )
    }
}

/// One weight of a layer with the flags it was created with.
struct WeightSlot {
    variable: Variable,
    /// Trainable by nature (a kernel) or not (a moving mean), before the layer's own flag.
    intrinsic_trainable: bool,
    regularizer: Option<Regularizer>,
}

/// State every layer has: a unique name, the trainable flag, its weights and extra losses.
pub struct LayerBase {
    name: std::sync::OnceLock<String>,
    class_name: &'static str,
    trainable: AtomicBool,
    built: AtomicBool,
    /// Where weights are created; changed by [`LayerBase::to`] (a model moving its layers).
    device: RwLock<Device>,
    /// The dtype policy [`Layer::apply`] runs `call` under: the global one at creation.
    policy: RwLock<crate::mixed_precision::Policy>,
    weights: RwLock<Vec<WeightSlot>>,
    call_losses: Mutex<Vec<Tensor>>,
}

impl LayerBase {
    /// State for a layer of `class_name`. Its name is the one given with [`LayerBase::set_name`],
    /// or else a fresh Keras-style one (`Conv2D` → `conv2d`, `conv2d_1`, ...) fixed the first
    /// time it is asked for — so naming a layer explicitly never uses up an automatic name.
    pub fn new(class_name: &'static str) -> Self {
        LayerBase {
            name: std::sync::OnceLock::new(),
            class_name,
            trainable: AtomicBool::new(true),
            built: AtomicBool::new(false),
            device: RwLock::new(default_device()),
            policy: RwLock::new(crate::mixed_precision::global_policy()),
            weights: RwLock::new(Vec::new()),
            call_losses: Mutex::new(Vec::new()),
        }
    }

    /// The layer's name (assigned on first use when none was given).
    pub fn name(&self) -> &str {
        self.name.get_or_init(|| crate::names::unique_name(&crate::names::snake_case(self.class_name)))
    }

    /// Names the layer.
    ///
    /// # Errors
    /// `Config` when the layer already has a name (it was used before being named) or the name
    /// is empty or contains `/`, which separates layer and weight names.
    pub fn set_name(&self, name: impl Into<String>) -> Result<()> {
        let name = name.into();
        if name.is_empty() || name.contains('/') {
            return Err(Error::Config(format!("a layer name must be non-empty and contain no '/', got {name:?}")));
        }
        if self.name.get() == Some(&name) {
            return Ok(());
        }
        self.name.set(name).map_err(|n| Error::Config(format!("cannot rename layer {:?} to {n:?}: name it before using it", self.name())))
    }

    /// Whether `build` has run.
    pub fn is_built(&self) -> bool {
        self.built.load(Ordering::SeqCst)
    }

    /// Forgets that the layer was built (a model whose layer list changed rebuilds).
    pub fn reset_built(&self) {
        self.built.store(false, Ordering::SeqCst);
    }

    /// Records that the layer is built (done by [`Layer::apply`] and by models).
    pub fn mark_built(&self) {
        self.built.store(true, Ordering::SeqCst);
    }

    /// The device new weights are created on (and the layer's own weights live on).
    pub fn device(&self) -> Device {
        *self.device.read().expect("device lock")
    }

    /// The layer's dtype policy (Keras's `layer.dtype_policy`): the global policy when the
    /// layer was created, unless set since.
    pub fn dtype_policy(&self) -> crate::mixed_precision::Policy {
        *self.policy.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the layer's dtype policy (Keras's `dtype=` argument), e.g. float32 for an output
    /// layer of a mixed-precision model.
    pub fn set_dtype_policy(&self, policy: crate::mixed_precision::Policy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Moves the weights this base created to `device` and creates later ones there. Weights
    /// of sublayers are the owning layer's business (see [`Layer::to`]).
    ///
    /// # Errors
    /// `DeviceUnavailable` when `device` has no backend; nothing is changed then.
    pub fn to(&self, device: Device) -> Result<()> {
        fovea_core::backend::backend(device)?;
        for slot in self.weights.read().expect("weights lock").iter() {
            move_variable(&slot.variable, device)?;
        }
        *self.device.write().expect("device lock") = device;
        Ok(())
    }

    /// Whether the layer is trainable.
    pub fn trainable(&self) -> bool {
        self.trainable.load(Ordering::SeqCst)
    }

    /// Sets the layer's trainable flag and re-flags every weight accordingly.
    ///
    /// # Errors
    /// Core errors from re-flagging.
    pub fn set_trainable(&self, trainable: bool) -> Result<()> {
        self.trainable.store(trainable, Ordering::SeqCst);
        for slot in self.weights.read().expect("weights lock").iter() {
            slot.variable.set_trainable(trainable && slot.intrinsic_trainable)?;
        }
        Ok(())
    }

    /// Creates a weight named `{layer}/{name}` from an initializer — the one path through which
    /// fresh weights are made (loading overwrites them by these names).
    ///
    /// # Errors
    /// `Config` from the initializer, and for a shape too large to allocate or past a
    /// parameter budget in force ([`crate::budget`]), checked before anything is allocated.
    pub fn add_weight(
        &self,
        name: &str,
        shape: &[usize],
        initializer: &Initializer,
        trainable: bool,
        regularizer: Option<Regularizer>,
    ) -> Result<Variable> {
        let full_name = format!("{}/{name}", self.name());
        crate::budget::charge(&full_name, shape)?;
        let value = initializer.sample(shape, random::next_seed(), self.device())?;
        let variable = Variable::new(full_name, value, trainable && self.trainable())?;
        self.weights.write().expect("weights lock").push(WeightSlot {
            variable: variable.clone(),
            intrinsic_trainable: trainable,
            regularizer,
        });
        Ok(variable)
    }

    /// Every weight in creation order.
    pub fn weights(&self) -> Vec<Variable> {
        self.weights.read().expect("weights lock").iter().map(|s| s.variable.clone()).collect()
    }

    /// Adds a loss term for the current call (Keras `add_loss`); cleared at the next call.
    pub fn add_loss(&self, loss: Tensor) {
        self.call_losses.lock().expect("losses lock").push(loss);
    }

    fn clear_call_losses(&self) {
        self.call_losses.lock().expect("losses lock").clear();
    }

    /// Regularization penalties of trainable weights plus the `add_loss` terms of the last call.
    ///
    /// # Errors
    /// Core errors while computing a penalty.
    pub fn losses(&self) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        for slot in self.weights.read().expect("weights lock").iter() {
            if let (Some(r), true) = (slot.regularizer, slot.variable.trainable()) {
                out.push(r.penalty(&slot.variable.value())?);
            }
        }
        out.extend(self.call_losses.lock().expect("losses lock").iter().cloned());
        Ok(out)
    }

    /// An error about this layer.
    pub fn error(&self, msg: impl Into<String>) -> Error {
        Error::layer(self.name().to_string(), msg)
    }
}

/// A shared handle to any layer.
pub type LayerRef = Arc<dyn Layer>;

/// Checks that a layer got exactly one input and returns it.
///
/// # Errors
/// `Layer` naming the layer otherwise.
pub fn single_input<'a>(base: &LayerBase, inputs: &'a [Tensor]) -> Result<&'a Tensor> {
    match inputs {
        [x] => Ok(x),
        _ => Err(base.error(format!("expected exactly 1 input tensor, got {}", inputs.len()))),
    }
}

/// Checks that a layer got exactly one input shape and returns it.
///
/// # Errors
/// `Layer` naming the layer otherwise.
pub fn single_shape<'a>(base: &LayerBase, shapes: &'a [ShapeSpec]) -> Result<&'a ShapeSpec> {
    match shapes {
        [s] => Ok(s),
        _ => Err(base.error(format!("expected exactly 1 input, got {}", shapes.len()))),
    }
}
