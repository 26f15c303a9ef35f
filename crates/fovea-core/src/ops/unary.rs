//! Element-wise unary math and activations: each op's value and its derivative side by side.
//!
//! The scalar formulas here are the single definition both backends map over arrays (the
//! reference in f64, the CPU backend in f32), so forward and backward can be read together.

use crate::backend::backend;
use crate::{Error, Result, Tensor};

/// SELU constants (Klambauer et al. 2017), as in Keras.
pub(crate) const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
pub(crate) const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// An element-wise unary function on f32 tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `|x|`; derivative 0 at 0, as TensorFlow.
    Abs,
    /// -1, 0 or 1; derivative 0.
    Sign,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// `ln(1 + x)`, accurate near 0.
    Log1p,
    /// Square root.
    Sqrt,
    /// `1 / sqrt(x)`.
    Rsqrt,
    /// `x²`.
    Square,
    /// `1 / x`.
    Reciprocal,
    /// `x^p` for a scalar exponent.
    Powf(f32),
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Hyperbolic tangent.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `max(x, 0)`; derivative 0 at 0, as TensorFlow.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x` for `x > 0`, else `alpha·x`.
    LeakyRelu(f32),
    /// `x` for `x > 0`, else `alpha·(e^x − 1)`.
    Elu(f32),
    /// Scaled ELU with the self-normalising constants.
    Selu,
    /// `ln(1 + e^x)`, computed without overflow.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `x·Φ(x)`; with `approximate` the tanh form of Hendrycks & Gimpel.
    Gelu {
        /// Use the tanh approximation (Keras `approximate=True`).
        approximate: bool,
    },
    /// Keras 3's `relu6(x + 3) / 6`, i.e. `clip(x/6 + 1/2, 0, 1)`.
    HardSigmoid,
    /// `x·sigmoid(x)` (also called SiLU).
    Swish,
    /// `min(max(x, lo), hi)`; gradient 1 inside `[lo, hi]` (inclusive), as `tf.clip_by_value`.
    Clip(f32, f32),
    /// Round down; derivative 0.
    Floor,
    /// Round half to even, as `tf.round`; derivative 0.
    Round,
}

/// The float operations the scalar formulas need, for f32 and f64.
pub(crate) trait Real:
    Copy
    + PartialOrd
    + std::ops::Neg<Output = Self>
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn c(v: f64) -> Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn sqrt(self) -> Self;
    fn powf(self, p: Self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    fn floor(self) -> Self;
    fn round_ties_even(self) -> Self;
    fn erf(self) -> Self;
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            fn c(v: f64) -> Self {
                v as $t
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn powf(self, p: Self) -> Self {
                <$t>::powf(self, p)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            fn round_ties_even(self) -> Self {
                <$t>::round_ties_even(self)
            }
            fn erf(self) -> Self {
                erf_f64(self as f64) as $t
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);

/// The error function to about 1e-12: Maclaurin series near 0, asymptotic erfc beyond 3.
pub(crate) fn erf_f64(x: f64) -> f64 {
    let ax = x.abs();
    let v = if ax < 3.0 {
        // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
        let (mut term, mut sum, x2) = (ax, ax, ax * ax);
        for n in 1..80 {
            term *= -x2 / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else if ax < 6.0 {
        // erfc(x) ≈ e^{-x²}/(x√π) · Σ (-1)^n (2n-1)!! / (2x²)^n
        let x2 = ax * ax;
        let (mut term, mut sum) = (1.0, 1.0);
        for n in 1..8 {
            term *= -((2 * n - 1) as f64) / (2.0 * x2);
            sum += term;
        }
        1.0 - (-x2).exp() / (ax * std::f64::consts::PI.sqrt()) * sum
    } else {
        1.0
    };
    v.copysign(x)
}

fn sigmoid<T: Real>(x: T) -> T {
    // Two branches so e^x never overflows.
    if x >= T::c(0.0) {
        T::c(1.0) / (T::c(1.0) + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::c(1.0) + e)
    }
}

pub(crate) fn sign<T: Real>(x: T) -> T {
    if x > T::c(0.0) {
        T::c(1.0)
    } else if x < T::c(0.0) {
        T::c(-1.0)
    } else {
        x // keeps 0 as 0 and NaN as NaN
    }
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

impl UnaryOp {
    /// The op's value at `x`.
    pub(crate) fn value<T: Real>(self, x: T) -> T {
        let zero = T::c(0.0);
        let one = T::c(1.0);
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Sign => sign(x),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Log1p => x.ln_1p(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => one / x.sqrt(),
            UnaryOp::Square => x * x,
            UnaryOp::Reciprocal => one / x,
            UnaryOp::Powf(p) => x.powf(T::c(p as f64)),
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::Relu => {
                if x > zero {
                    x
                } else {
                    zero
                }
            }
            UnaryOp::Relu6 => {
                if x <= zero {
                    zero
                } else if x >= T::c(6.0) {
                    T::c(6.0)
                } else {
                    x
                }
            }
            UnaryOp::LeakyRelu(a) => {
                if x > zero {
                    x
                } else {
                    T::c(a as f64) * x
                }
            }
            UnaryOp::Elu(a) => {
                if x > zero {
                    x
                } else {
                    T::c(a as f64) * (x.exp() - one)
                }
            }
            UnaryOp::Selu => T::c(SELU_SCALE) * if x > zero { x } else { T::c(SELU_ALPHA) * (x.exp() - one) },
            // softplus(x) = max(x, 0) + ln(1 + e^{-|x|})
            UnaryOp::Softplus => (if x > zero { x } else { zero }) + (-x.abs()).exp().ln_1p(),
            UnaryOp::Softsign => x / (one + x.abs()),
            UnaryOp::Gelu { approximate: false } => T::c(0.5) * x * (one + (x * T::c(std::f64::consts::FRAC_1_SQRT_2)).erf()),
            UnaryOp::Gelu { approximate: true } => {
                let u = T::c(SQRT_2_OVER_PI) * (x + T::c(0.044715) * x * x * x);
                T::c(0.5) * x * (one + u.tanh())
            }
            UnaryOp::HardSigmoid => clip(x / T::c(6.0) + T::c(0.5), zero, one),
            UnaryOp::Swish => x * sigmoid(x),
            UnaryOp::Clip(lo, hi) => clip(x, T::c(lo as f64), T::c(hi as f64)),
            UnaryOp::Floor => x.floor(),
            UnaryOp::Round => x.round_ties_even(),
        }
    }

    /// The derivative `dy/dx` at `x`, given the forward output `y` (reused where cheaper).
    pub(crate) fn derivative<T: Real>(self, x: T, y: T) -> T {
        let zero = T::c(0.0);
        let one = T::c(1.0);
        match self {
            UnaryOp::Neg => -one,
            UnaryOp::Abs => sign(x),                                 // d|x| = sign(x), 0 at 0
            UnaryOp::Sign | UnaryOp::Floor | UnaryOp::Round => zero, // piecewise constant
            UnaryOp::Exp => y,                                       // d e^x = e^x
            UnaryOp::Log => one / x,                                 // d ln x = 1/x
            UnaryOp::Log1p => one / (one + x),
            UnaryOp::Sqrt => T::c(0.5) / y,           // d √x = 1/(2√x)
            UnaryOp::Rsqrt => T::c(-0.5) * y * y * y, // d x^-½ = -½ x^-3/2
            UnaryOp::Square => T::c(2.0) * x,
            UnaryOp::Reciprocal => -(y * y), // d 1/x = -1/x²
            UnaryOp::Powf(p) => {
                if p == 0.0 {
                    zero
                } else {
                    T::c(p as f64) * x.powf(T::c(p as f64 - 1.0))
                }
            }
            UnaryOp::Sin => x.cos(),
            UnaryOp::Cos => -x.sin(),
            UnaryOp::Tanh => one - y * y,      // d tanh = 1 - tanh²
            UnaryOp::Sigmoid => y * (one - y), // d σ = σ(1-σ)
            UnaryOp::Relu => {
                if x > zero {
                    one
                } else {
                    zero
                }
            }
            UnaryOp::Relu6 => {
                if x > zero && x < T::c(6.0) {
                    one
                } else {
                    zero
                }
            }
            UnaryOp::LeakyRelu(a) => {
                if x > zero {
                    one
                } else {
                    T::c(a as f64)
                }
            }
            UnaryOp::Elu(a) => {
                if x > zero {
                    one
                } else {
                    y + T::c(a as f64)
                }
            } // α e^x = y + α
            UnaryOp::Selu => {
                if x > zero {
                    T::c(SELU_SCALE)
                } else {
                    y + T::c(SELU_SCALE * SELU_ALPHA)
                }
            }
            UnaryOp::Softplus => sigmoid(x),
            UnaryOp::Softsign => {
                let d = one + x.abs();
                one / (d * d)
            }
            UnaryOp::Gelu { approximate: false } => {
                // d/dx xΦ(x) = Φ(x) + x φ(x)
                let cdf = T::c(0.5) * (one + (x * T::c(std::f64::consts::FRAC_1_SQRT_2)).erf());
                let pdf = (T::c(-0.5) * x * x).exp() * T::c(0.398_942_280_401_432_7);
                cdf + x * pdf
            }
            UnaryOp::Gelu { approximate: true } => {
                let u = T::c(SQRT_2_OVER_PI) * (x + T::c(0.044715) * x * x * x);
                let t = u.tanh();
                let du = T::c(SQRT_2_OVER_PI) * (one + T::c(3.0 * 0.044715) * x * x);
                T::c(0.5) * (one + t) + T::c(0.5) * x * (one - t * t) * du
            }
            UnaryOp::HardSigmoid => {
                if x > T::c(-3.0) && x < T::c(3.0) {
                    T::c(1.0 / 6.0)
                } else {
                    zero
                }
            }
            UnaryOp::Swish => {
                // d xσ(x) = σ + xσ(1-σ) = y + σ(1 - y)
                let s = sigmoid(x);
                y + s * (one - y)
            }
            UnaryOp::Clip(lo, hi) => {
                if x >= T::c(lo as f64) && x <= T::c(hi as f64) {
                    one
                } else {
                    zero
                }
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Square => "square",
            UnaryOp::Reciprocal => "reciprocal",
            UnaryOp::Powf(_) => "powf",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Relu6 => "relu6",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::Elu(_) => "elu",
            UnaryOp::Selu => "selu",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Softsign => "softsign",
            UnaryOp::Gelu { .. } => "gelu",
            UnaryOp::HardSigmoid => "hard_sigmoid",
            UnaryOp::Swish => "swish",
            UnaryOp::Clip(..) => "clip",
            UnaryOp::Floor => "floor",
            UnaryOp::Round => "round",
        }
    }
}

pub(crate) fn clip<T: Real>(x: T, lo: T, hi: T) -> T {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

impl Tensor {
    /// Applies an element-wise unary op (f32 only), recording its gradient.
    ///
    /// # Errors
    /// `DTypeMismatch` for non-f32 tensors; `InvalidArgument` for a `Clip` with `lo > hi`.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        if let UnaryOp::Clip(lo, hi) = op {
            if lo > hi || lo.is_nan() || hi.is_nan() {
                return Err(Error::invalid("clip", format!("need clip_value_min <= clip_value_max, got {lo} > {hi}")));
            }
        }
        crate::ops::check_float(op.name(), self)?;
        let be = backend(self.device())?;
        let y = be.unary(op, self.storage())?;
        Ok(Tensor::from_op(y, self.shape().clone(), self.device(), op.name(), &[self], move |inputs, out, g| {
            Ok(vec![Some(super::unary_grad::unary_grad(op, &inputs[0], out, g)?)])
        }))
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                ///
                /// # Errors
                /// `DTypeMismatch` unless the tensor is f32.
                pub fn $name(&self) -> Result<Tensor> {
                    self.unary($op)
                }
            )*
        }
    };
}

unary_methods! {
    /// `-x`.
    neg => UnaryOp::Neg;
    /// `|x|`.
    abs => UnaryOp::Abs;
    /// The sign: -1, 0 or 1.
    sign => UnaryOp::Sign;
    /// `e^x`.
    exp => UnaryOp::Exp;
    /// Natural logarithm.
    log => UnaryOp::Log;
    /// `ln(1 + x)`.
    log1p => UnaryOp::Log1p;
    /// Square root.
    sqrt => UnaryOp::Sqrt;
    /// `1 / sqrt(x)`.
    rsqrt => UnaryOp::Rsqrt;
    /// `x²`.
    square => UnaryOp::Square;
    /// `1 / x`.
    reciprocal => UnaryOp::Reciprocal;
    /// Sine.
    sin => UnaryOp::Sin;
    /// Cosine.
    cos => UnaryOp::Cos;
    /// Hyperbolic tangent.
    tanh => UnaryOp::Tanh;
    /// Logistic sigmoid.
    sigmoid => UnaryOp::Sigmoid;
    /// Rectified linear unit.
    relu => UnaryOp::Relu;
    /// ReLU capped at 6.
    relu6 => UnaryOp::Relu6;
    /// SELU with the Keras constants.
    selu => UnaryOp::Selu;
    /// `ln(1 + e^x)`.
    softplus => UnaryOp::Softplus;
    /// `x / (1 + |x|)`.
    softsign => UnaryOp::Softsign;
    /// Keras 3's hard sigmoid `clip(x/6 + 1/2, 0, 1)`.
    hard_sigmoid => UnaryOp::HardSigmoid;
    /// `x·sigmoid(x)`.
    swish => UnaryOp::Swish;
    /// Round down.
    floor => UnaryOp::Floor;
    /// Round half to even.
    round => UnaryOp::Round;
}

impl Tensor {
    /// `x^p` for a scalar exponent.
    ///
    /// # Errors
    /// `DTypeMismatch` unless f32.
    pub fn powf(&self, p: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Powf(p))
    }

    /// Leaky ReLU with slope `alpha` for negative inputs (`tf.nn.leaky_relu` default 0.2).
    ///
    /// # Errors
    /// `DTypeMismatch` unless f32.
    pub fn leaky_relu(&self, alpha: f32) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu(alpha))
    }

    /// ELU with the given `alpha` (Keras default 1.0).
    ///
    /// # Errors
    /// `DTypeMismatch` unless f32.
    pub fn elu(&self, alpha: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Elu(alpha))
    }

    /// GELU, exact (`approximate = false`, the Keras default) or the tanh approximation.
    ///
    /// # Errors
    /// `DTypeMismatch` unless f32.
    pub fn gelu(&self, approximate: bool) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu { approximate })
    }

    /// Clamps to `[lo, hi]` (`tf.clip_by_value`).
    ///
    /// # Errors
    /// `DTypeMismatch` unless f32; `InvalidArgument` when `lo > hi`.
    pub fn clip(&self, lo: f32, hi: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Clip(lo, hi))
    }
}

/// Every op the tests differentiate (Sign, Floor and Round have zero derivative everywhere).
#[cfg(test)]
pub(crate) const TEST_OPS: &[UnaryOp] = &[
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Sign,
    UnaryOp::Floor,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Log1p,
    UnaryOp::Sqrt,
    UnaryOp::Rsqrt,
    UnaryOp::Square,
    UnaryOp::Reciprocal,
    UnaryOp::Powf(2.5),
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Relu,
    UnaryOp::Relu6,
    UnaryOp::LeakyRelu(0.2),
    UnaryOp::Elu(1.3),
    UnaryOp::Selu,
    UnaryOp::Softplus,
    UnaryOp::Softsign,
    UnaryOp::Gelu { approximate: false },
    UnaryOp::Gelu { approximate: true },
    UnaryOp::HardSigmoid,
    UnaryOp::Swish,
    UnaryOp::Clip(-0.5, 1.5),
];

/// Ops defined only for positive inputs (or, for log1p, above −1).
#[cfg(test)]
fn positive_only(op: UnaryOp) -> bool {
    matches!(op, UnaryOp::Log | UnaryOp::Log1p | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Reciprocal | UnaryOp::Powf(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // Values from scipy.special.erf.
        for (x, e) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.5, 0.999_999_256_901_627_7),
            (-1.0, -0.842_700_792_949_714_9),
        ] {
            // The asymptotic branch (|x| >= 3) is good to ~1e-11 absolute, ample for f32 GELU.
            assert!((erf_f64(x) - e).abs() < 1e-10, "erf({x}) = {} vs {e}", erf_f64(x));
        }
    }

    #[test]
    fn derivatives_match_central_differences_in_f64() {
        let ops = TEST_OPS;
        // Points away from kinks (0, ±3, 6, clip bounds) where the derivative is one-sided.
        for &op in ops {
            for &x in &[0.37f64, 1.9, 2.2, 4.1, -0.8, -2.5] {
                if (positive_only(op) && x <= 0.0) || (op == UnaryOp::Log1p && x <= -1.0) {
                    continue;
                }
                let h = 1e-6;
                let numeric = (op.value(x + h) - op.value(x - h)) / (2.0 * h);
                let analytic = op.derivative(x, op.value(x));
                assert!((numeric - analytic).abs() < 1e-6 * (1.0 + numeric.abs()), "{op:?} at {x}: numeric {numeric} analytic {analytic}");
            }
        }
    }

    #[test]
    fn kinks_follow_tensorflow() {
        assert_eq!(UnaryOp::Relu.derivative(0.0f64, 0.0), 0.0);
        assert_eq!(UnaryOp::Abs.derivative(0.0f64, 0.0), 0.0);
        assert_eq!(UnaryOp::Clip(0.0, 1.0).derivative(1.0f64, 1.0), 1.0);
        assert_eq!(UnaryOp::Softplus.value(1000.0f32), 1000.0);
        assert_eq!(UnaryOp::Sigmoid.value(-1000.0f32), 0.0);
    }
}

#[cfg(test)]
mod backend_tests {
    use super::UnaryOp;
    use crate::testing::{assert_close, gradcheck};
    use crate::{backend_test, DType, Device, Tensor};

    // Points away from every kink (0, ±3, 6) so finite differences are two-sided.
    const XS: [f32; 8] = [-4.2, -2.1, -0.7, -0.2, 0.3, 1.1, 2.6, 7.5];

    backend_test!(activations_match_their_definitions, |dev| {
        let x = Tensor::from_vec(XS.to_vec(), [2, 4], dev).unwrap();
        type Reference = fn(f64) -> f64;
        let cases: Vec<(UnaryOp, Reference)> = vec![
            (UnaryOp::Relu, |v| v.max(0.0)),
            (UnaryOp::Relu6, |v| v.clamp(0.0, 6.0)),
            (UnaryOp::LeakyRelu(0.2), |v| if v > 0.0 { v } else { 0.2 * v }),
            (UnaryOp::Elu(1.0), |v| if v > 0.0 { v } else { v.exp() - 1.0 }),
            (UnaryOp::Sigmoid, |v| 1.0 / (1.0 + (-v).exp())),
            (UnaryOp::Softplus, |v| (1.0 + v.exp()).ln()),
            (UnaryOp::Softsign, |v| v / (1.0 + v.abs())),
            (UnaryOp::HardSigmoid, |v| (v / 6.0 + 0.5).clamp(0.0, 1.0)),
            (UnaryOp::Swish, |v| v / (1.0 + (-v).exp())),
            (UnaryOp::Selu, |v| 1.0507009873554805 * if v > 0.0 { v } else { 1.6732632423543772 * (v.exp() - 1.0) }),
            (UnaryOp::Tanh, f64::tanh),
            (UnaryOp::Abs, f64::abs),
            (UnaryOp::Clip(-1.0, 2.0), |v| v.clamp(-1.0, 2.0)),
        ];
        for (op, f) in cases {
            let y = x.unary(op).unwrap().to_vec::<f32>().unwrap();
            let expected: Vec<f32> = XS.iter().map(|&v| f(v as f64) as f32).collect();
            assert_close(&format!("{op:?}"), &y, &expected, 1e-6, 1e-6);
        }
    });

    backend_test!(every_unary_op_passes_gradcheck, |dev| {
        let x = Tensor::from_vec(XS.to_vec(), [8], dev).unwrap();
        let p = Tensor::from_vec(vec![0.4f32, 0.9, 1.7, 3.2], [4], dev).unwrap();
        for &op in crate::ops::unary::TEST_OPS {
            // Restricted-domain ops on positive inputs; their steps stay small near 0.
            let (input, eps) = if crate::ops::unary::positive_only(op) { (&p, 1e-4) } else { (&x, 1e-3) };
            gradcheck(|t| t[0].unary(op), std::slice::from_ref(input), eps, 3e-3).unwrap();
        }
    });

    backend_test!(unary_needs_float_and_a_valid_clip, |dev| {
        let i = Tensor::zeros([2], DType::I64, dev).unwrap();
        let e = i.relu().unwrap_err().to_string();
        assert!(e.contains("relu: expected dtype float32, bfloat16 or float16, got int64"), "{e}");
        let x = Tensor::zeros([2], DType::F32, dev).unwrap();
        let e = x.clip(1.0, -1.0).unwrap_err().to_string();
        assert!(e.contains("clip_value_min <= clip_value_max"), "{e}");
    });

    #[test]
    fn cpu_and_reference_agree_on_large_tensors() {
        // Large enough to take the CPU backend's parallel path.
        let x = crate::testing::rand(&[70_000], -5.0, 5.0, 3, Device::Cpu);
        let r = x.to(Device::Reference).unwrap();
        for op in [UnaryOp::Gelu { approximate: false }, UnaryOp::Sigmoid, UnaryOp::Softplus, UnaryOp::Elu(0.5)] {
            let (a, b) = (x.unary(op).unwrap(), r.unary(op).unwrap());
            assert_close(&format!("{op:?}"), &a.to_vec::<f32>().unwrap(), &b.to_vec::<f32>().unwrap(), 1e-5, 1e-6);
        }
    }
}
