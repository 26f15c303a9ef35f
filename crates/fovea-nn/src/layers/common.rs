//! What layers with a kernel share: the Keras arguments `activation`, `use_bias`, the
//! kernel/bias initializers and regularizers, and the builder methods that set them.

use crate::activations::Activation;
use crate::initializers::Initializer;
use crate::layer::LayerBase;
use crate::regularizers::Regularizer;
use crate::Result;
use fovea_core::Variable;
use serde_json::json;

/// Kernel-layer arguments with Keras's defaults.
#[derive(Debug, Clone)]
pub struct KernelArgs {
    /// Applied to the output (default linear).
    pub activation: Activation,
    /// Whether a bias is added (default true).
    pub use_bias: bool,
    /// Kernel initializer (default glorot_uniform).
    pub kernel_initializer: Initializer,
    /// Bias initializer (default zeros).
    pub bias_initializer: Initializer,
    /// Kernel penalty.
    pub kernel_regularizer: Option<Regularizer>,
    /// Bias penalty.
    pub bias_regularizer: Option<Regularizer>,
    /// Kernel constraint, applied after each update.
    pub kernel_constraint: Option<crate::constraints::Constraint>,
    /// Bias constraint, applied after each update.
    pub bias_constraint: Option<crate::constraints::Constraint>,
}

impl Default for KernelArgs {
    fn default() -> Self {
        KernelArgs {
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            kernel_constraint: None,
            bias_constraint: None,
        }
    }
}

impl KernelArgs {
    /// Creates `kernel` (and `bias` when used) through the layer's one weight path.
    ///
    /// # Errors
    /// Initializer errors.
    pub fn create(&self, base: &LayerBase, kernel_shape: &[usize], bias_len: usize) -> Result<(Variable, Option<Variable>)> {
        let kernel = base.add_weight("kernel", kernel_shape, &self.kernel_initializer, true, self.kernel_regularizer)?;
        let bias = if self.use_bias {
            Some(base.add_weight("bias", &[bias_len], &self.bias_initializer, true, self.bias_regularizer)?)
        } else {
            None
        };
        if let Some(c) = &self.kernel_constraint {
            c.clone().attach(&kernel);
        }
        if let (Some(c), Some(b)) = (&self.bias_constraint, &bias) {
            c.clone().attach(b);
        }
        Ok((kernel, bias))
    }

    /// The layer's epilogue on its pre-activation `y`: `activation(y + bias)`. Bias and ReLU
    /// run as one fused pass (`Tensor::bias_add_relu`), the commonest case in CNNs.
    ///
    /// # Errors
    /// Errors from the ops.
    pub fn bias_and_activation(&self, y: fovea_core::Tensor, bias: Option<&Variable>) -> Result<fovea_core::Tensor> {
        match (bias, self.activation) {
            (Some(b), Activation::Relu) => Ok(y.bias_add_relu(&b.value())?),
            (Some(b), _) => self.activation.apply(&y.add(&b.value())?),
            (None, _) => self.activation.apply(&y),
        }
    }

    /// These arguments as Keras config entries.
    pub fn config(&self) -> serde_json::Value {
        json!({
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer,
            "bias_regularizer": self.bias_regularizer,
            "kernel_constraint": self.kernel_constraint,
            "bias_constraint": self.bias_constraint,
        })
    }
}

/// Merges two JSON objects (the layer's own entries and the shared ones).
pub fn merge_config(mut own: serde_json::Value, shared: serde_json::Value) -> serde_json::Value {
    if let (Some(a), serde_json::Value::Object(b)) = (own.as_object_mut(), shared) {
        a.extend(b);
    }
    own
}

/// Builder methods for a layer struct with `base: LayerBase` and `args: KernelArgs` fields.
macro_rules! kernel_builders {
    ($ty:ty) => {
        impl $ty {
            /// Names the layer.
            ///
            /// # Errors
            /// As [`crate::layer::LayerBase::set_name`].
            pub fn named(self, name: &str) -> $crate::Result<Self> {
                self.base.set_name(name)?;
                Ok(self)
            }

            /// Sets the activation.
            pub fn activation(mut self, activation: $crate::activations::Activation) -> Self {
                self.args.activation = activation;
                self
            }

            /// Whether to add a bias (default true).
            pub fn use_bias(mut self, use_bias: bool) -> Self {
                self.args.use_bias = use_bias;
                self
            }

            /// The kernel initializer (default glorot_uniform).
            pub fn kernel_initializer(mut self, init: $crate::initializers::Initializer) -> Self {
                self.args.kernel_initializer = init;
                self
            }

            /// The bias initializer (default zeros).
            pub fn bias_initializer(mut self, init: $crate::initializers::Initializer) -> Self {
                self.args.bias_initializer = init;
                self
            }

            /// A penalty on the kernel.
            pub fn kernel_regularizer(mut self, r: $crate::regularizers::Regularizer) -> Self {
                self.args.kernel_regularizer = Some(r);
                self
            }

            /// A penalty on the bias.
            pub fn bias_regularizer(mut self, r: $crate::regularizers::Regularizer) -> Self {
                self.args.bias_regularizer = Some(r);
                self
            }

            /// A constraint on the kernel, applied after each update.
            pub fn kernel_constraint(mut self, c: $crate::constraints::Constraint) -> Self {
                self.args.kernel_constraint = Some(c);
                self
            }

            /// A constraint on the bias, applied after each update.
            pub fn bias_constraint(mut self, c: $crate::constraints::Constraint) -> Self {
                self.args.bias_constraint = Some(c);
                self
            }
        }
    };
}
pub(crate) use kernel_builders;
