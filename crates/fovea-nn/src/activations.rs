//! Activation functions by Keras name, for the `activation=` argument of layers and for the
//! `Activation` layer.

use crate::{Error, Result};
use fovea_core::Tensor;
use serde::{Deserialize, Serialize};

/// An activation function with Keras's name and default parameters.
///
/// Deserialising goes through [`Activation::from_name`], so every layer config accepts the
/// aliases Keras writes (Keras 3's `"silu"`, `null` for linear), not only Fovea's own names.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// The identity (`None` / `"linear"` in Keras).
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// ELU with alpha 1.
    Elu,
    /// SELU.
    Selu,
    /// `ln(1 + e^x)`.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// Exact GELU (Keras default `approximate=False`).
    Gelu,
    /// Keras 3's hard sigmoid.
    HardSigmoid,
    /// `x·sigmoid(x)` (`"swish"` or `"silu"`).
    Swish,
    /// Leaky ReLU with Keras's `activations.leaky_relu` slope 0.2.
    LeakyRelu,
    /// `e^x`.
    Exponential,
    /// Softmax over the last axis.
    Softmax,
    /// Log-softmax over the last axis.
    LogSoftmax,
}

impl Activation {
    /// Looks an activation up by its Keras name.
    ///
    /// # Errors
    /// `Config` for an unknown name, listing the known ones.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "linear" | "none" | "" => Activation::Linear,
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "elu" => Activation::Elu,
            "selu" => Activation::Selu,
            "softplus" => Activation::Softplus,
            "softsign" => Activation::Softsign,
            "gelu" => Activation::Gelu,
            "hard_sigmoid" => Activation::HardSigmoid,
            "swish" | "silu" => Activation::Swish,
            "leaky_relu" => Activation::LeakyRelu,
            "exponential" => Activation::Exponential,
            "softmax" => Activation::Softmax,
            "log_softmax" => Activation::LogSoftmax,
            other => {
                return Err(Error::Config(format!(
                    "unknown activation {other:?}; known: linear, relu, relu6, sigmoid, tanh, elu, selu, softplus, softsign, gelu, hard_sigmoid, swish, silu, leaky_relu, exponential, softmax, log_softmax"
                )))
            }
        })
    }

    /// Applies the activation.
    ///
    /// # Errors
    /// Core errors (non-float input).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Linear => x.clone(),
            Activation::Relu => x.relu()?,
            Activation::Relu6 => x.relu6()?,
            Activation::Sigmoid => x.sigmoid()?,
            Activation::Tanh => x.tanh()?,
            Activation::Elu => x.elu(1.0)?,
            Activation::Selu => x.selu()?,
            Activation::Softplus => x.softplus()?,
            Activation::Softsign => x.softsign()?,
            Activation::Gelu => x.gelu(false)?,
            Activation::HardSigmoid => x.hard_sigmoid()?,
            Activation::Swish => x.swish()?,
            Activation::LeakyRelu => x.leaky_relu(0.2)?,
            Activation::Exponential => x.exp()?,
            Activation::Softmax => x.softmax(-1)?,
            Activation::LogSoftmax => x.log_softmax(-1)?,
        })
    }
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        // `None` in Python is Keras's spelling of the identity.
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Activation::Linear),
            Some(name) => Activation::from_name(&name).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::Device;

    #[test]
    fn names_map_to_core_ops() {
        let x = Tensor::from_vec(vec![-1.0f32, 0.5], [2], Device::Cpu).unwrap();
        assert_eq!(Activation::from_name("relu").unwrap().apply(&x).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 0.5]);
        assert_eq!(Activation::from_name("linear").unwrap().apply(&x).unwrap().to_vec::<f32>().unwrap(), vec![-1.0, 0.5]);
        assert_eq!(Activation::from_name("silu").unwrap(), Activation::Swish);
        let lr = Activation::LeakyRelu.apply(&x).unwrap().to_vec::<f32>().unwrap();
        assert!((lr[0] + 0.2).abs() < 1e-7);
        let e = Activation::from_name("relu7").unwrap_err().to_string();
        assert!(e.contains("unknown activation \"relu7\"") && e.contains("relu6"), "{e}");
        assert_eq!(serde_json::to_string(&Activation::HardSigmoid).unwrap(), "\"hard_sigmoid\"");
    }

    #[test]
    fn serde_accepts_every_keras_alias() {
        // Keras 3 writes "silu" for swish; layer configs parse with serde, not from_name.
        assert_eq!(serde_json::from_str::<Activation>("\"silu\"").unwrap(), Activation::Swish);
        assert_eq!(serde_json::from_str::<Activation>("null").unwrap(), Activation::Linear);
        for a in [Activation::HardSigmoid, Activation::LogSoftmax, Activation::Relu6, Activation::Linear] {
            assert_eq!(serde_json::from_str::<Activation>(&serde_json::to_string(&a).unwrap()).unwrap(), a);
        }
        let e = serde_json::from_str::<Activation>("\"relu7\"").unwrap_err().to_string();
        assert!(e.contains("unknown activation \"relu7\""), "{e}");
    }
}
