//! Weight regularizers with Keras's formulas: `l1·Σ|w| + l2·Σw²` (no ½ on the L2 term).

use crate::{Error, Result};
use fovea_core::Tensor;
use serde::{Deserialize, Serialize};

/// An L1/L2 penalty on a weight, added to the training loss by `fit`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
            "l1_l2" => Ok(Self::l1_l2(0.01, 0.01)),
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
        let mut total = Tensor::scalar(0.0, w.device());
        if self.l1 > 0.0 {
            total = total.add(&w.abs()?.sum_all()?.mul_scalar(self.l1 as f32)?)?;
        }
        if self.l2 > 0.0 {
            total = total.add(&w.square()?.sum_all()?.mul_scalar(self.l2 as f32)?)?;
        }
        Ok(total)
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
}
