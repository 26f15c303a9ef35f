//! The backward kernel of the unary ops as an op of its own, `unary_grad(x, g) = f'(x)·g`, so
//! that a recorded backward pass (`grad_with_graph`) can differentiate it again: it is linear
//! in `g`, and its derivative in `x` is `f''(x)·g`, written here for every unary op but the
//! tanh approximation of GELU.

use super::unary::{UnaryOp, SELU_ALPHA, SELU_SCALE};
use crate::backend::backend;
use crate::{Error, Result, Tensor};

/// `dx = f'(x)·g` for `out = f(x)`, recording its own gradient.
pub(crate) fn unary_grad(op: UnaryOp, x: &Tensor, out: &Tensor, g: &Tensor) -> Result<Tensor> {
    let dx = backend(x.device())?.unary_grad(op, x.storage(), out.storage(), g.storage())?;
    let out = out.clone();
    Ok(Tensor::from_op(dx, x.shape().clone(), x.device(), "unary_grad", &[x, g], move |inputs, _, gg| {
        let (x, g) = (&inputs[0], &inputs[1]);
        // Linear in g: the same map applied to the incoming gradient.
        let d_g = if g.requires_grad() { Some(unary_grad(op, x, &out, gg)?) } else { None };
        let d_x = if x.requires_grad() {
            Some(match second_derivative(op, x, &out)? {
                Some(f2) => f2.mul(g)?.mul(gg)?,
                None => x.zeros_like(),
            })
        } else {
            None
        };
        Ok(vec![d_x, d_g])
    }))
}

/// `f''(x)`, written with `y = f(x)` where that is simpler; `None` where it is 0 almost
/// everywhere (piecewise linear or piecewise constant ops).
///
/// # Errors
/// `Autodiff` for the tanh approximation of GELU, whose second derivative is not written.
fn second_derivative(op: UnaryOp, x: &Tensor, y: &Tensor) -> Result<Option<Tensor>> {
    let positive = || x.gt(&x.zeros_like());
    Ok(Some(match op {
        UnaryOp::Neg
        | UnaryOp::Abs
        | UnaryOp::Sign
        | UnaryOp::Floor
        | UnaryOp::Round
        | UnaryOp::Relu
        | UnaryOp::Relu6
        | UnaryOp::LeakyRelu(_)
        | UnaryOp::Clip(..)
        | UnaryOp::HardSigmoid => return Ok(None),
        // (x²)'' = 2
        UnaryOp::Square => x.ones_like().mul_scalar(2.0)?,
        // (√x)'' = −¼·x^(−3/2) = −¼ / y³
        UnaryOp::Sqrt => y.mul(y)?.mul(y)?.reciprocal()?.mul_scalar(-0.25)?,
        // (x^−½)'' = ¾·x^(−5/2) = ¾·y⁵
        UnaryOp::Rsqrt => y.square()?.square()?.mul(y)?.mul_scalar(0.75)?,
        // (1/x)'' = 2/x³ = 2·y³
        UnaryOp::Reciprocal => y.mul(y)?.mul(y)?.mul_scalar(2.0)?,
        // (xᵖ)'' = p·(p − 1)·x^(p−2)
        UnaryOp::Powf(p) if p == 0.0 || p == 1.0 => return Ok(None),
        UnaryOp::Powf(p) => x.powf(p - 2.0)?.mul_scalar(p * (p - 1.0))?,
        // (eˣ)'' = y
        UnaryOp::Exp => y.clone(),
        // (ln x)'' = −1/x²
        UnaryOp::Log => x.square()?.reciprocal()?.neg()?,
        // (ln(1 + x))'' = −1/(1 + x)²
        UnaryOp::Log1p => x.add_scalar(1.0)?.square()?.reciprocal()?.neg()?,
        // sin'' = −sin, cos'' = −cos
        UnaryOp::Sin | UnaryOp::Cos => y.neg()?,
        // tanh'' = −2·y·(1 − y²)
        UnaryOp::Tanh => y.mul(&y.mul(y)?.neg()?.add_scalar(1.0)?)?.mul_scalar(-2.0)?,
        // σ'' = y·(1 − y)·(1 − 2y)
        UnaryOp::Sigmoid => {
            let one_minus = y.neg()?.add_scalar(1.0)?;
            y.mul(&one_minus)?.mul(&y.mul_scalar(-2.0)?.add_scalar(1.0)?)?
        }
        // softplus' = σ(x), so softplus'' = σ(x)·(1 − σ(x))
        UnaryOp::Softplus => {
            let s = x.sigmoid()?;
            s.mul(&s.neg()?.add_scalar(1.0)?)?
        }
        // elu = α(eˣ − 1) below 0: elu'' = α·eˣ = y + α there, 0 above
        UnaryOp::Elu(a) => positive()?.select(&x.zeros_like(), &y.add_scalar(a)?)?,
        // selu = λα(eˣ − 1) below 0: selu'' = λα·eˣ = y + λα there, 0 above
        UnaryOp::Selu => positive()?.select(&x.zeros_like(), &y.add_scalar((SELU_SCALE * SELU_ALPHA) as f32)?)?,
        // swish = x·σ: swish' = σ + x·σ(1 − σ), swish'' = σ(1 − σ)·(2 + x·(1 − 2σ))
        UnaryOp::Swish => {
            let s = x.sigmoid()?;
            let ds = s.mul(&s.neg()?.add_scalar(1.0)?)?;
            ds.mul(&x.mul(&s.mul_scalar(-2.0)?.add_scalar(1.0)?)?.add_scalar(2.0)?)?
        }
        // softsign = x/(1 + |x|): softsign' = 1/(1 + |x|)², softsign'' = −2·sign(x)/(1 + |x|)³
        UnaryOp::Softsign => x.sign()?.mul_scalar(-2.0)?.div(&x.abs()?.add_scalar(1.0)?.powf(3.0)?)?,
        // gelu = x·Φ(x): gelu' = Φ + x·φ, gelu'' = 2φ + x·φ' = φ(x)·(2 − x²), φ the normal pdf
        UnaryOp::Gelu { approximate: false } => {
            let pdf = x.square()?.mul_scalar(-0.5)?.exp()?.mul_scalar((1.0 / (2.0 * std::f64::consts::PI).sqrt()) as f32)?;
            pdf.mul(&x.square()?.neg()?.add_scalar(2.0)?)?
        }
        UnaryOp::Gelu { approximate: true } => return Err(Error::Autodiff(
            "gelu (tanh approximation): no second derivative yet, so grad_with_graph cannot differentiate through it; use the exact gelu"
                .into(),
        )),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::unary::UnaryOp;
    use crate::testing::{gradcheck, rand};
    use crate::{enable_grad, grad_with_graph, Device, Tensor};

    const R: Device = Device::Reference;

    /// `∇ₓ Σ f(x) = f'(x)` as a function of `x`: its gradient is the Hessian's diagonal f''.
    fn first_derivative(op: UnaryOp) -> impl Fn(&[Tensor]) -> crate::Result<Tensor> {
        // Finite differences evaluate it inside no_grad, with plain tensors: make them leaves.
        move |xs| {
            enable_grad(|| {
                let x = if xs[0].requires_grad() { xs[0].clone() } else { xs[0].with_requires_grad(true)? };
                Ok(grad_with_graph(&x.unary(op)?.sum_all()?, &[&x])?.remove(0).expect("connected"))
            })
        }
    }

    #[test]
    fn every_second_derivative_matches_finite_differences() {
        // Points away from the kinks (0, ±3, 6) so the differences are two-sided.
        let x = Tensor::from_vec(vec![-2.3f32, -0.7, -0.2, 0.3, 1.1, 2.6], [6], R).unwrap();
        let positive = rand(&[6], 0.4, 2.5, 3, R);
        for &op in crate::ops::unary::TEST_OPS {
            if op == (UnaryOp::Gelu { approximate: true }) {
                continue;
            }
            let domain_limited =
                matches!(op, UnaryOp::Log | UnaryOp::Log1p | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Reciprocal | UnaryOp::Powf(_));
            let input = if domain_limited { &positive } else { &x };
            gradcheck(first_derivative(op), std::slice::from_ref(input), 1e-3, 3e-3).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        }
    }

    #[test]
    fn a_second_derivative_that_is_not_written_is_named() {
        let x = rand(&[3], -1.0, 1.0, 4, R).with_requires_grad(true).unwrap();
        let g = first_derivative(UnaryOp::Gelu { approximate: true })(&[x.clone()]).unwrap();
        let e = g.sum_all().unwrap().backward().unwrap_err().to_string();
        assert!(e.contains("gelu (tanh approximation): no second derivative yet"), "{e}");
    }
}
