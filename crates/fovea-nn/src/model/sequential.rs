//! `Sequential`: a plain stack of layers, each feeding the next.

use crate::layer::{single_input, single_shape, Layer, LayerBase, LayerRef, ShapeSpec};
use crate::model::training::{Compiled, Model};
use crate::Result;
use fovea_core::{Tensor, Variable};
use std::sync::{Arc, Mutex, RwLock};

/// A linear stack of layers (`keras.Sequential`). Built lazily from the first input, or
/// up front when an input shape is given.
///
/// The model lives on one device: the [`crate::layer::default_device`] when it is created
/// (`Cpu` unless inside [`crate::layer::with_device`]), or the one given to
/// [`Sequential::on_device`] or [`Layer::to`]. Layers added to it are moved there, so the
/// weights they build lazily are created on that device.
pub struct Sequential {
    base: LayerBase,
    layers: RwLock<Vec<LayerRef>>,
    input_shape: RwLock<Option<ShapeSpec>>,
    compiled: Mutex<Option<Compiled>>,
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty model named `sequential`, `sequential_1`, ...
    pub fn new() -> Self {
        Sequential {
            base: LayerBase::new("Sequential"),
            layers: RwLock::new(Vec::new()),
            input_shape: RwLock::new(None),
            compiled: Mutex::new(None),
        }
    }

    /// An empty model whose inputs have this shape without the batch (`keras.Input(shape)`).
    pub fn with_input_shape(shape: &[usize]) -> Self {
        let model = Self::new();
        *model.input_shape.write().expect("lock") = Some(std::iter::once(None).chain(shape.iter().map(|&d| Some(d))).collect());
        model
    }

    /// This model placed on `device`: its layers (added now or later) keep their weights there.
    ///
    /// # Errors
    /// `DeviceUnavailable` when `device` has no backend.
    pub fn on_device(self, device: fovea_core::Device) -> Result<Self> {
        self.to(device)?;
        Ok(self)
    }

    /// Appends a layer.
    ///
    /// # Errors
    /// `Layer` when the model is already built and the new layer does not accept the current
    /// output shape.
    pub fn add(&self, layer: impl Layer + 'static) -> Result<()> {
        self.add_ref(Arc::new(layer))
    }

    /// Appends a shared layer.
    ///
    /// # Errors
    /// As [`Sequential::add`].
    pub fn add_ref(&self, layer: LayerRef) -> Result<()> {
        // Names are fixed in the order layers are added, as Keras fixes them at construction.
        let _ = layer.name();
        // One model, one device: the layer builds (or already has) its weights where the
        // model's are.
        layer.to(self.base.device())?;
        self.layers.write().expect("lock").push(layer);
        if self.base.is_built() {
            self.base.reset_built();
        }
        Ok(())
    }

    /// Removes and returns the last layer.
    ///
    /// # Errors
    /// `Layer` when the model has no layers.
    pub fn pop(&self) -> Result<LayerRef> {
        let layer = self.layers.write().expect("lock").pop().ok_or_else(|| self.base.error("pop: the model has no layers"))?;
        Ok(layer)
    }

    /// The layers in order.
    pub fn layers(&self) -> Vec<LayerRef> {
        self.layers.read().expect("lock").clone()
    }

    /// The layer with this name.
    ///
    /// # Errors
    /// `Layer` listing the names when none matches.
    pub fn get_layer(&self, name: &str) -> Result<LayerRef> {
        let layers = self.layers();
        layers.iter().find(|l| l.name() == name).cloned().ok_or_else(|| {
            let names: Vec<&str> = layers.iter().map(|l| l.name()).collect();
            self.base.error(format!("no layer named {name:?}; layers: {names:?}"))
        })
    }

    /// Builds every layer for inputs of `input_shape` (batch excluded), so the model can be
    /// summarised before it sees data.
    ///
    /// # Errors
    /// As the layers' `build`.
    pub fn build_for(&self, input_shape: &[usize]) -> Result<()> {
        let spec: ShapeSpec = std::iter::once(None).chain(input_shape.iter().map(|&d| Some(d))).collect();
        self.build(&[spec])?;
        self.base.mark_built();
        Ok(())
    }

    /// The declared input shape, if any.
    pub fn input_shape(&self) -> Option<ShapeSpec> {
        self.input_shape.read().expect("lock").clone()
    }

    /// Each layer with its output shape, for `summary()`.
    ///
    /// # Errors
    /// When the model is not built and has no input shape.
    pub fn layer_output_shapes(&self) -> Result<Vec<(LayerRef, ShapeSpec)>> {
        let mut shape = self.input_shape().ok_or_else(|| {
            self.base
                .error("the model has no input shape yet: give one with Sequential::with_input_shape, call build_for, or fit it on data")
        })?;
        let mut out = Vec::new();
        for layer in self.layers() {
            shape = layer.compute_output_shape(&[shape])?;
            out.push((layer, shape.clone()));
        }
        Ok(out)
    }
}

impl Layer for Sequential {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "Sequential"
    }

    /// The layers chained from a new input of these shapes, so a Sequential nested in another
    /// model (a transfer-learning base) exports as its layers.
    fn as_functional(&self, input_shapes: &[ShapeSpec]) -> Option<Result<crate::model::functional::Functional>> {
        use crate::model::functional::{Connect, Functional, Input};
        let graph = || -> Result<Functional> {
            let shape = single_shape(&self.base, input_shapes)?;
            let dims: Option<Vec<usize>> = shape[1..].iter().copied().collect();
            let dims = dims.ok_or_else(|| self.base.error("needs a fully known input shape to be exported"))?;
            let x = Input::named(&dims, &format!("{}/input", self.name()));
            let y = self.layers().into_iter().try_fold(x.clone(), |h, l| l.on(&h))?;
            Functional::new(&[&x], &[&y])
        };
        Some(graph())
    }

    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let mut shape = single_shape(&self.base, input_shapes)?.clone();
        *self.input_shape.write().expect("lock") = Some(shape.clone());
        for layer in self.layers() {
            if !layer.base().is_built() {
                layer.build(&[shape.clone()])?;
                layer.base().mark_built();
            }
            shape = layer.compute_output_shape(&[shape])?;
        }
        Ok(())
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let mut shape = single_shape(&self.base, input_shapes)?.clone();
        for layer in self.layers() {
            shape = layer.compute_output_shape(&[shape])?;
        }
        Ok(shape)
    }

    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        let mut x = single_input(&self.base, inputs)?.clone();
        let layers = self.layers();
        if layers.is_empty() {
            return Err(self.base.error("the model has no layers"));
        }
        // The whole stack on the pool: its ops then fork-join there (see `fovea_core::threads`).
        fovea_core::on_pool(|| {
            for layer in layers {
                x = layer.apply(&[x], training)?;
            }
            Ok(x)
        })
    }

    fn config(&self) -> serde_json::Value {
        let layers: Vec<serde_json::Value> =
            self.layers().iter().map(|l| serde_json::json!({"class_name": l.class_name(), "config": l.config()})).collect();
        serde_json::json!({"name": self.name(), "trainable": self.trainable(), "layers": layers})
    }

    fn weights(&self) -> Vec<Variable> {
        self.layers().iter().flat_map(|l| l.weights()).collect()
    }

    fn to(&self, device: fovea_core::Device) -> Result<()> {
        self.base.to(device)?;
        for layer in self.layers() {
            layer.to(device)?;
        }
        Ok(())
    }

    fn set_trainable(&self, trainable: bool) -> Result<()> {
        self.base.set_trainable(trainable)?;
        for layer in self.layers() {
            layer.set_trainable(trainable)?;
        }
        Ok(())
    }

    fn losses(&self) -> Result<Vec<Tensor>> {
        let mut out = self.base.losses()?;
        for layer in self.layers() {
            out.extend(layer.losses()?);
        }
        Ok(out)
    }
}

impl Model for Sequential {
    fn compiled(&self) -> &Mutex<Option<Compiled>> {
        &self.compiled
    }

    fn sequential_input_shape(&self) -> Option<Option<ShapeSpec>> {
        Some(self.input_shape())
    }
}
