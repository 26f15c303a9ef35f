//! Rebuilding layers and `Sequential` models from their Keras-style configs (`from_config`),
//! so a model file holds its architecture, not only its weights.
//!
//! fovea-nn knows its own layer classes. Crates above it (fovea-vision's preprocessing layers)
//! add theirs with [`register_layer_class`]: the dependency runs from them to fovea-nn, so the
//! registry is filled at run time rather than matched here (Keras's
//! `register_keras_serializable` plays the same role).

use crate::activations::Activation as Act;
use crate::initializers::Initializer;
use crate::layer::{Layer, LayerRef};
use crate::layers::*;
use crate::model::Sequential;
use crate::regularizers::Regularizer;
use crate::{Error, Result};
use fovea_core::ops::padding::Padding;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// Rebuilds one registered layer class from its config. The registry applies the `name` and
/// `trainable` entries afterwards, as for built-in classes.
pub type LayerFactory = fn(&Value) -> Result<LayerRef>;

/// The classes [`layer_from_config`] rebuilds itself; they cannot be registered over.
pub const BUILTIN_CLASSES: &[&str] = &[
    "Dense",
    "Conv2D",
    "Conv1D",
    "Conv2DTranspose",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "Conv3D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softmax",
    "Flatten",
    "Reshape",
    "Permute",
    "Dropout",
    "SpatialDropout2D",
    "ZeroPadding2D",
    "Cropping2D",
    "UpSampling2D",
    "LocalResponseNormalization",
    "BatchNormalization",
    "LayerNormalization",
    "PReLU",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Sequential",
    "Functional",
    "Lambda",
];

/// A layer class registered where it is defined, by [`crate::register_layer_class!`]: model
/// files and configs holding it load in any program linking that crate, without a set-up call.
pub struct LayerClass {
    /// The class name in configs (`Layer::class_name`).
    pub name: &'static str,
    /// Rebuilds the layer from its config.
    pub factory: LayerFactory,
}

inventory::collect!(LayerClass);

/// Registers a layer class with [`layer_from_config`] at compile time, from the crate that
/// defines it: `fovea_nn::register_layer_class!("Scale", Scale::from_config);`. A class
/// registered at run time with [`register_layer_class`] takes precedence; fovea-nn's
/// [`BUILTIN_CLASSES`] always do.
#[macro_export]
macro_rules! register_layer_class {
    ($name:expr, $factory:expr) => {
        $crate::inventory::submit! {
            $crate::model::registry::LayerClass { name: $name, factory: $factory }
        }
    };
}

/// The factory of a class registered at run time, else at compile time.
fn registered_factory(class_name: &str) -> Option<LayerFactory> {
    // Copied out, so the lock is not held while the factory runs (it may recurse).
    let runtime = extensions().read().unwrap_or_else(std::sync::PoisonError::into_inner).get(class_name).copied();
    runtime.or_else(|| inventory::iter::<LayerClass>.into_iter().find(|c| c.name == class_name).map(|c| c.factory))
}

fn extensions() -> &'static RwLock<HashMap<String, LayerFactory>> {
    static EXTENSIONS: OnceLock<RwLock<HashMap<String, LayerFactory>>> = OnceLock::new();
    EXTENSIONS.get_or_init(|| RwLock::new(HashMap::new()))
}

/// Makes [`layer_from_config`] (and so [`sequential_from_config`], functional models, model
/// files and Keras imports) rebuild layers of `class_name` with `factory`, process-wide.
///
/// Registering a class again replaces its factory, so a crate's registration function may run
/// any number of times.
///
/// # Errors
/// `Config` for an empty class name or one of [`BUILTIN_CLASSES`] (overriding those would
/// silently change how existing model files load).
pub fn register_layer_class(class_name: &str, factory: LayerFactory) -> Result<()> {
    if class_name.is_empty() || BUILTIN_CLASSES.contains(&class_name) {
        return Err(Error::Config(format!(
            "cannot register layer class {class_name:?}: expected a non-empty name that is not one of fovea-nn's built-in classes"
        )));
    }
    extensions().write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(class_name.to_string(), factory);
    Ok(())
}

/// Whether `class_name` has been registered, with [`register_layer_class`] or
/// [`crate::register_layer_class!`].
pub fn is_registered_layer_class(class_name: &str) -> bool {
    registered_factory(class_name).is_some()
}

fn field<'a>(class: &str, c: &'a Value, key: &str) -> Result<&'a Value> {
    c.get(key).ok_or_else(|| Error::Config(format!("{class} config has no {key:?}")))
}

fn usize_of(class: &str, c: &Value, key: &str) -> Result<usize> {
    field(class, c, key)?
        .as_u64()
        .map(|v| v as usize)
        .ok_or_else(|| Error::Config(format!("{class} config: {key:?} must be a non-negative integer")))
}

fn f64_of(class: &str, c: &Value, key: &str) -> Result<f64> {
    field(class, c, key)?.as_f64().ok_or_else(|| Error::Config(format!("{class} config: {key:?} must be a number")))
}

fn pair(class: &str, c: &Value, key: &str) -> Result<(usize, usize)> {
    let v: Vec<usize> =
        serde_json::from_value(field(class, c, key)?.clone()).map_err(|e| Error::Config(format!("{class} config: {key:?}: {e}")))?;
    match v.as_slice() {
        [a, b] => Ok((*a, *b)),
        [a] => Ok((*a, *a)),
        _ => Err(Error::Config(format!("{class} config: {key:?} must have 1 or 2 entries, got {v:?}"))),
    }
}

fn pairs(class: &str, c: &Value, key: &str) -> Result<((usize, usize), (usize, usize))> {
    let v: Vec<(usize, usize)> =
        serde_json::from_value(field(class, c, key)?.clone()).map_err(|e| Error::Config(format!("{class} config: {key:?}: {e}")))?;
    match v.as_slice() {
        [a, b] => Ok((*a, *b)),
        _ => Err(Error::Config(format!("{class} config: {key:?} must hold two (before, after) pairs"))),
    }
}

fn parse<T: serde::de::DeserializeOwned>(class: &str, c: &Value, key: &str) -> Result<T> {
    serde_json::from_value(field(class, c, key)?.clone()).map_err(|e| Error::Config(format!("{class} config: {key:?}: {e}")))
}

fn padding(class: &str, c: &Value) -> Result<Padding> {
    match field(class, c, "padding")? {
        Value::String(s) if s == "same" => Ok(Padding::Same),
        Value::String(s) if s == "valid" => Ok(Padding::Valid),
        other => Ok(Padding::Explicit(
            serde_json::from_value(other.clone()).map_err(|e| Error::Config(format!("{class} config: padding {other}: {e}")))?,
        )),
    }
}

fn kernel_args<L>(
    class: &str,
    c: &Value,
    mut layer: L,
    set: impl Fn(L, Act, bool, Initializer, Initializer, Option<Regularizer>, Option<Regularizer>) -> L,
) -> Result<L> {
    // Keras names a depthwise (and separable) convolution's kernel arguments `depthwise_*`.
    let kernel =
        |what: &str| if c.get(format!("kernel_{what}")).is_none() { format!("depthwise_{what}") } else { format!("kernel_{what}") };
    let kernel_regularizer = match c.get(kernel("regularizer")) {
        Some(_) => parse(class, c, &kernel("regularizer"))?,
        None => None,
    };
    layer = set(
        layer,
        parse(class, c, "activation")?,
        parse(class, c, "use_bias")?,
        parse(class, c, &kernel("initializer"))?,
        parse(class, c, "bias_initializer")?,
        kernel_regularizer,
        parse(class, c, "bias_regularizer")?,
    );
    Ok(layer)
}

macro_rules! with_kernel_args {
    ($class:expr, $c:expr, $layer:expr) => {
        kernel_args($class, $c, $layer, |l, a, b, ki, bi, kr, br| {
            let l = l.activation(a).use_bias(b).kernel_initializer(ki).bias_initializer(bi);
            let l = match kr {
                Some(r) => l.kernel_regularizer(r),
                None => l,
            };
            match br {
                Some(r) => l.bias_regularizer(r),
                None => l,
            }
        })
        .and_then(|l| {
            let (kc, bc) = constraints($class, $c)?;
            let l = match kc {
                Some(k) => l.kernel_constraint(k),
                None => l,
            };
            Ok(match bc {
                Some(b) => l.bias_constraint(b),
                None => l,
            })
        })?
    };
}

/// The optional `kernel_constraint` and `bias_constraint` entries (absent or null: none).
fn constraints(class: &str, c: &Value) -> Result<(Option<crate::constraints::Constraint>, Option<crate::constraints::Constraint>)> {
    let one = |key: &str| match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => parse(class, c, key).map(Some),
    };
    Ok((one("kernel_constraint")?, one("bias_constraint")?))
}

/// Rebuilds a layer from its class name and config (as written by [`Layer::config`]): one of
/// [`BUILTIN_CLASSES`], or else a class added with [`register_layer_class`].
///
/// # Errors
/// `Config` naming the class for an unknown class (a `Lambda` closure cannot be restored), a
/// missing or malformed entry, or a Keras option Fovea's layer lacks (`channels_first`, an
/// activity regularizer...).
pub fn layer_from_config(class: &str, c: &Value) -> Result<LayerRef> {
    // Registered classes check their own options.
    if let (Value::Object(map), true) = (c, BUILTIN_CLASSES.contains(&class)) {
        crate::import::keras_config::unsupported_option(class, c["name"].as_str().unwrap_or("?"), map)?;
    }
    let layer: LayerRef = match class {
        "Dense" => Arc::new(with_kernel_args!(class, c, Dense::new(usize_of(class, c, "units")?))),
        "Conv2D" | "Conv1D" | "Conv2DTranspose" | "DepthwiseConv2D" | "SeparableConv2D" => {
            let k = pair(class, c, "kernel_size")?;
            let base = match class {
                "Conv2D" => Conv2D::new(usize_of(class, c, "filters")?, k),
                "Conv1D" => Conv1D::new(usize_of(class, c, "filters")?, k.1),
                "Conv2DTranspose" => Conv2DTranspose::new(usize_of(class, c, "filters")?, k),
                "DepthwiseConv2D" => DepthwiseConv2D::new(k, usize_of(class, c, "depth_multiplier")?),
                _ => SeparableConv2D::new(usize_of(class, c, "filters")?, k).depth_multiplier(usize_of(class, c, "depth_multiplier")?),
            };
            let mut l =
                base.strides(pair(class, c, "strides")?).padding(padding(class, c)?).dilation_rate(pair(class, c, "dilation_rate")?);
            if let Some(g) = c.get("groups").and_then(Value::as_u64) {
                l = l.groups(g as usize);
            }
            // Keras 3 writes `"output_padding": null` for "inferred", Fovea's default.
            if c.get("output_padding").is_some_and(|v| !v.is_null()) {
                l = l.output_padding(pair(class, c, "output_padding")?);
            }
            Arc::new(with_kernel_args!(class, c, l))
        }
        "Conv3D" => {
            let k: Vec<usize> = parse(class, c, "kernel_size")?;
            let s: Vec<usize> = parse(class, c, "strides")?;
            let d: Vec<usize> = parse(class, c, "dilation_rate")?;
            let triple = |v: &[usize], what: &str| -> Result<(usize, usize, usize)> {
                match v {
                    [a, b, c] => Ok((*a, *b, *c)),
                    _ => Err(Error::Config(format!("Conv3D config: {what} must have 3 entries, got {v:?}"))),
                }
            };
            let l = Conv3D::new(usize_of(class, c, "filters")?, triple(&k, "kernel_size")?)
                .strides(triple(&s, "strides")?)
                .dilation_rate(triple(&d, "dilation_rate")?)
                .padding(padding(class, c)?);
            Arc::new(with_kernel_args!(class, c, l))
        }
        "MaxPooling2D" => {
            Arc::new(MaxPooling2D::new(pair(class, c, "pool_size")?).strides(pair(class, c, "strides")?).padding(padding(class, c)?))
        }
        "AveragePooling2D" => {
            Arc::new(AveragePooling2D::new(pair(class, c, "pool_size")?).strides(pair(class, c, "strides")?).padding(padding(class, c)?))
        }
        "GlobalAveragePooling2D" => Arc::new(GlobalAveragePooling2D::new().keepdims(parse(class, c, "keepdims")?)),
        "GlobalMaxPooling2D" => Arc::new(GlobalMaxPooling2D::new().keepdims(parse(class, c, "keepdims")?)),
        "Activation" => Arc::new(Activation::new(parse(class, c, "activation")?)),
        "ReLU" => Arc::new(c["max_value"].as_f64().map_or_else(ReLU::new, |m| ReLU::with_max_value(m as f32))),
        "LeakyReLU" => Arc::new(LeakyReLU::new(f64_of(class, c, "negative_slope")? as f32)),
        "ELU" => Arc::new(ELU::new(f64_of(class, c, "alpha")? as f32)),
        "Softmax" => Arc::new(Softmax::new(parse(class, c, "axis")?)),
        "Flatten" => Arc::new(Flatten::new()),
        "Reshape" => Arc::new(Reshape::new(&parse::<Vec<isize>>(class, c, "target_shape")?)),
        "Permute" => Arc::new(Permute::new(&parse::<Vec<usize>>(class, c, "dims")?)),
        "Dropout" => Arc::new(match c.get("seed").and_then(Value::as_u64) {
            Some(seed) => Dropout::with_seed(f64_of(class, c, "rate")?, seed),
            None => Dropout::new(f64_of(class, c, "rate")?),
        }),
        "SpatialDropout2D" => Arc::new(SpatialDropout2D::new(f64_of(class, c, "rate")?)),
        "ZeroPadding2D" => {
            let (r, w) = pairs(class, c, "padding")?;
            Arc::new(ZeroPadding2D::new(r, w))
        }
        "Cropping2D" => {
            let (r, w) = pairs(class, c, "cropping")?;
            Arc::new(Cropping2D::new(r, w))
        }
        "UpSampling2D" => Arc::new(match c.get("interpolation").and_then(Value::as_str) {
            Some("bilinear") => UpSampling2D::bilinear(pair(class, c, "size")?),
            _ => UpSampling2D::new(pair(class, c, "size")?),
        }),
        "LocalResponseNormalization" => Arc::new(LocalResponseNormalization::new(
            usize_of(class, c, "depth_radius")?,
            f64_of(class, c, "bias")? as f32,
            f64_of(class, c, "alpha")? as f32,
            f64_of(class, c, "beta")? as f32,
        )),
        "BatchNormalization" => Arc::new(
            BatchNormalization::new()
                .momentum(f64_of(class, c, "momentum")? as f32)
                .epsilon(f64_of(class, c, "epsilon")? as f32)
                .center_scale(parse(class, c, "center")?, parse(class, c, "scale")?)
                .synchronized(c.get("synchronized").and_then(serde_json::Value::as_bool).unwrap_or(false)),
        ),
        "LayerNormalization" => Arc::new(LayerNormalization::new().epsilon(f64_of(class, c, "epsilon")? as f32)),
        "PReLU" => Arc::new(PReLU::new().alpha_initializer(parse(class, c, "alpha_initializer")?)),
        "Add" => Arc::new(Add::new()),
        "Subtract" => Arc::new(Subtract::new()),
        "Multiply" => Arc::new(Multiply::new()),
        "Average" => Arc::new(Average::new()),
        "Maximum" => Arc::new(Maximum::new()),
        "Minimum" => Arc::new(Minimum::new()),
        "Concatenate" => Arc::new(Concatenate::new(parse(class, c, "axis")?)),
        "Sequential" => Arc::new(sequential_from_config(c, None)?),
        "Functional" => Arc::new(crate::model::functional::functional_from_config(c)?),
        "Lambda" => {
            return Err(Error::Config(
                "a Lambda layer holds a Rust closure, which a model file cannot restore; rebuild it in code and load the weights".into(),
            ))
        }
        other => match registered_factory(other) {
            Some(f) => f(c)?,
            None => {
                return Err(Error::Config(format!(
                    "unknown layer type {other:?} in the model config (expected a fovea-nn layer class or one registered \
                         with register_layer_class; fovea-vision's layers register themselves when the program links fovea-vision)"
                )))
            }
        },
    };
    if let Some(name) = c.get("name").and_then(Value::as_str) {
        layer.base().set_name(name)?;
    }
    if c.get("trainable") == Some(&Value::Bool(false)) {
        layer.set_trainable(false)?;
    }
    Ok(layer)
}

/// The input shape (batch excluded) an `InputLayer` entry declares (Keras 3's `batch_shape`,
/// Keras 2's `batch_input_shape`); `None` when a dimension is unknown.
fn declared_input_shape(config: &Value) -> Option<Vec<usize>> {
    let s = config.get("batch_shape").or_else(|| config.get("batch_input_shape"))?.as_array()?;
    s.iter().skip(1).map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect()
}

/// Rebuilds a `Sequential` from its config (`{"name", "layers": [{"class_name", "config"}]}`)
/// and, when known, builds it for `input_shape` (batch excluded).
///
/// Also accepts the whole document Keras's `model.to_json()` writes
/// (`{"class_name": "Sequential", "config": {...}}`), and `InputLayer` entries: their declared
/// shape is the input shape when `input_shape` is `None`, and must agree with it otherwise.
///
/// The model is built under the parameter limit for configs ([`crate::budget::max_params`]),
/// so a config declaring huge sizes is refused before its weights are allocated.
///
/// # Errors
/// As [`layer_from_config`]; `Config` for a document of another class, an `InputLayer` whose
/// shape disagrees with `input_shape`, or a model past the parameter limit.
pub fn sequential_from_config(c: &Value, input_shape: Option<&[usize]>) -> Result<Sequential> {
    crate::budget::with_config_limit(|| sequential_unlimited(c, input_shape))
}

fn sequential_unlimited(c: &Value, input_shape: Option<&[usize]>) -> Result<Sequential> {
    if let Some(class) = c.get("class_name") {
        return match (class.as_str(), c.get("config")) {
            (Some("Sequential"), Some(inner)) => sequential_unlimited(inner, input_shape),
            _ => Err(Error::Config(format!(
                "expected a Sequential model config (or the {{\"class_name\": \"Sequential\", \"config\": ...}} document Keras writes), got class_name {class}"
            ))),
        };
    }
    let layers =
        c.get("layers").and_then(Value::as_array).ok_or_else(|| Error::Config("Sequential config has no \"layers\" list".into()))?;
    let is_input = |entry: &Value| entry.get("class_name").and_then(Value::as_str) == Some("InputLayer");
    let mut declared = None;
    for entry in layers.iter().filter(|e| is_input(e)) {
        let name = entry["config"]["name"].as_str().unwrap_or("InputLayer");
        let shape = declared_input_shape(&entry["config"])
            .ok_or_else(|| Error::Config(format!("InputLayer {name:?} declares no fully known \"batch_shape\"")))?;
        if let Some(given) = input_shape.filter(|g| *g != shape.as_slice()) {
            return Err(Error::Config(format!("InputLayer {name:?} declares input shape {shape:?} but the data has shape {given:?}")));
        }
        declared = Some(shape);
    }
    let input_shape = input_shape.or(declared.as_deref());
    let model = match input_shape {
        Some(s) => Sequential::with_input_shape(s),
        None => Sequential::new(),
    };
    if let Some(name) = c.get("name").and_then(Value::as_str) {
        model.base().set_name(name)?;
    }
    for (i, entry) in layers.iter().enumerate().filter(|(_, e)| !is_input(e)) {
        let class = entry
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Config(format!("layer {i} of the model config has no class_name")))?;
        model.add_ref(layer_from_config(class, entry.get("config").unwrap_or(&Value::Null))?)?;
    }
    if let Some(s) = input_shape {
        model.build_for(s)?;
        check_output_sizes(&model)?;
    }
    Ok(model)
}

/// Refuses a layer whose output for one example would hold more values than the parameter
/// limit ([`crate::budget::max_params`]): a config's `UpSampling2D` or `ZeroPadding2D` can
/// declare activations far larger than any weight, which would otherwise abort in allocation
/// at the first batch.
fn check_output_sizes(model: &Sequential) -> Result<()> {
    let limit = crate::budget::max_params()?;
    for (layer, shape) in model.layer_output_shapes()? {
        let known: Vec<usize> = shape.iter().skip(1).map(|d| d.unwrap_or(1)).collect();
        let n = fovea_core::checked_numel(&known).map_or(u64::MAX, |n| n as u64);
        if n > limit {
            return Err(Error::Config(format!(
                "layer {}: output shape {} holds {} values per example, past the limit of {limit} (set {} to raise it)",
                layer.name(),
                crate::layer::format_shape(&shape),
                if n == u64::MAX { "more".to_string() } else { n.to_string() },
                crate::budget::ENV_VAR
            )));
        }
    }
    Ok(())
}
