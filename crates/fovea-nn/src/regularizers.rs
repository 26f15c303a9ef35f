//! Weight regularizers with Keras's formulas: `l1·Σ|w| + l2·Σw²` (no ½ on the L2 term).

use crate::{Error, Result};
use fovea_core::Tensor;
use serde::{Deserialize, Serialize};

/// An L1/L2 penalty on a weight, added to the training loss by `fit`.
///
/// Deserialising accepts Fovea's `{"l1", "l2"}`, a Keras name (`"l2"`), and Keras's
/// `{"class_name": "L2", "config": {"l2": 0.01}}`; a coefficient left out is 0 in Fovea's form
/// and Keras's default in the named forms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Regularizer {
    /// Coefficient of `Σ|w|`.
    pub l1: f64,
    /// Coefficient of `Σw²`.
    pub l2: f64,
}

impl Regularizer {
    /// `keras.regularizers.l1(l1)` (Keras default 0.01).
    pub fn l1(l1: f64) -> Self {
        Regularizer { l1, l2: 0.0 }
    }

    /// `keras.regularizers.l2(l2)` (Keras default 0.01).
    pub fn l2(l2: f64) -> Self {
        Regularizer { l1: 0.0, l2 }
    }

    /// `keras.regularizers.l1_l2(l1, l2)` (Keras defaults 0.01 each).
    pub fn l1_l2(l1: f64, l2: f64) -> Self {
        Regularizer { l1, l2 }
    }

    /// Looks a regularizer up by Keras name with Keras's default strength.
    ///
    /// # Errors
    /// `Config` for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "l1" => Ok(Self::l1(0.01)),
            "l2" => Ok(Self::l2(0.01)),
            // `L1L2` is the Keras class of `l1_l2`.
            "l1_l2" | "l1l2" => Ok(Self::l1_l2(0.01, 0.01)),
            other => Err(Error::Config(format!("unknown regularizer {other:?}; known: l1, l2, l1_l2"))),
        }
    }

    /// The penalty for weight `w`, as a scalar tensor that records its gradient.
    ///
    /// # Errors
    /// `Config` for a negative coefficient; core errors for a non-float weight.
    pub fn penalty(&self, w: &Tensor) -> Result<Tensor> {
        if self.l1 < 0.0 || self.l2 < 0.0 || !self.l1.is_finite() || !self.l2.is_finite() {
            return Err(Error::Config(format!("regularizer coefficients must be finite and >= 0, got l1={}, l2={}", self.l1, self.l2)));
        }
        let mut total = Tensor::scalar(0.0, w.device())?;
        if self.l1 > 0.0 {
            total = total.add(&w.abs()?.sum_all()?.mul_scalar(self.l1 as f32)?)?;
        }
        if self.l2 > 0.0 {
            total = total.add(&w.square()?.sum_all()?.mul_scalar(self.l2 as f32)?)?;
        }
        Ok(total)
    }
}

impl<'de> Deserialize<'de> for Regularizer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        use serde_json::Value;
        let v = Value::deserialize(deserializer)?;
        let coefficient = |params: &serde_json::Map<String, Value>, key: &str, default: f64| match params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x.as_f64().ok_or_else(|| D::Error::custom(format!("regularizer: {key:?} must be a number, got {x}"))),
        };
        match &v {
            Value::String(name) => Regularizer::from_name(&name.to_ascii_lowercase()).map_err(D::Error::custom),
            Value::Object(o) => match o.get("class_name").and_then(Value::as_str) {
                Some(class) => {
                    let named = Regularizer::from_name(&class.to_ascii_lowercase()).map_err(D::Error::custom)?;
                    let empty = serde_json::Map::new();
                    let params = o.get("config").and_then(Value::as_object).unwrap_or(&empty);
                    // Keras's L1 has no l2 entry and L2 no l1 entry: absent means the named default.
                    Ok(Regularizer { l1: coefficient(params, "l1", named.l1)?, l2: coefficient(params, "l2", named.l2)? })
                }
                None => Ok(Regularizer { l1: coefficient(o, "l1", 0.0)?, l2: coefficient(o, "l2", 0.0)? }),
            },
            other => Err(D::Error::custom(format!("expected a regularizer name or {{\"l1\", \"l2\"}} object, got {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::Device;

    #[test]
    fn penalties_follow_keras_formulas() {
        let w = Tensor::from_vec(vec![1.0f32, -2.0, 3.0], [3], Device::Cpu).unwrap().with_requires_grad(true).unwrap();
        // l2: 0.01 · (1 + 4 + 9) = 0.14 — no ½, unlike the TF1 book's l2_loss.
        let p = Regularizer::l2(0.01).penalty(&w).unwrap();
        assert!((p.to_scalar::<f32>().unwrap() - 0.14).abs() < 1e-7);
        let g = p.backward().unwrap();
        let gv = g.get(&w).unwrap().to_vec::<f32>().unwrap();
        fovea_core::testing::assert_close("d l2", &gv, &[0.02, -0.04, 0.06], 1e-6, 1e-8);
        let p = Regularizer::l1_l2(0.1, 0.01).penalty(&w).unwrap();
        assert!((p.to_scalar::<f32>().unwrap() - (0.6 + 0.14)).abs() < 1e-6);
        assert!(Regularizer::l1(-1.0).penalty(&w).unwrap_err().to_string().contains(">= 0"));
        assert!(Regularizer::from_name("l3").is_err());
        assert_eq!(Regularizer::from_name("l1_l2").unwrap(), Regularizer::l1_l2(0.01, 0.01));
    }

    #[test]
    fn serde_reads_keras_and_fovea_forms() {
        let read = |j: &str| serde_json::from_str::<Regularizer>(j);
        assert_eq!(read(r#"{"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.25}}"#).unwrap(), Regularizer::l2(0.25));
        assert_eq!(read(r#"{"class_name": "L1L2", "config": {"l1": 0.5, "l2": 0.0}}"#).unwrap(), Regularizer::l1_l2(0.5, 0.0));
        assert_eq!(read(r#""l1""#).unwrap(), Regularizer::l1(0.01));
        let own = Regularizer::l1_l2(0.1, 0.2);
        assert_eq!(read(&serde_json::to_string(&own).unwrap()).unwrap(), own);
        assert!(read(r#"{"class_name": "OrthogonalRegularizer", "config": {}}"#).unwrap_err().to_string().contains("unknown regularizer"));
    }
}
