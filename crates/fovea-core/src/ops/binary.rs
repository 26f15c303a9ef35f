//! Element-wise binary arithmetic with NumPy broadcasting, and its gradients (reduced back to
//! each input's shape over the broadcast axes).

use crate::backend::backend;
use crate::shape::broadcast_shapes;
use crate::{DType, Error, Result, Tensor};

/// An element-wise binary op. Arithmetic keeps the input dtype; comparisons and logical ops
/// return bool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b` (floor division for integers, as Python's `//`).
    Div,
    /// `a ^ b` (f32 only).
    Pow,
    /// Larger of the two.
    Maximum,
    /// Smaller of the two.
    Minimum,
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
    /// Logical and (bool only).
    And,
    /// Logical or (bool only).
    Or,
}

impl BinaryOp {
    /// Whether the op returns bool.
    pub fn is_predicate(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::And | BinaryOp::Or
        )
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Eq => "equal",
            BinaryOp::Ne => "not_equal",
            BinaryOp::Lt => "less",
            BinaryOp::Le => "less_equal",
            BinaryOp::Gt => "greater",
            BinaryOp::Ge => "greater_equal",
            BinaryOp::And => "logical_and",
            BinaryOp::Or => "logical_or",
        }
    }

    /// The arithmetic value for floats (comparisons give 1.0 / 0.0).
    pub(crate) fn value_f32(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            // NaN propagates, as in TensorFlow.
            BinaryOp::Maximum => {
                if a.is_nan() || a >= b {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Minimum => {
                if a.is_nan() || a <= b {
                    a
                } else {
                    b
                }
            }
            _ => self.compare(a, b) as u8 as f32,
        }
    }

    /// The arithmetic value for integers; division floors (the op rejects zero divisors first).
    pub(crate) fn value_i64(self, a: i64, b: i64) -> i64 {
        match self {
            BinaryOp::Add => a.wrapping_add(b),
            BinaryOp::Sub => a.wrapping_sub(b),
            BinaryOp::Mul => a.wrapping_mul(b),
            BinaryOp::Div => a.div_euclid(b) - if b < 0 && a.rem_euclid(b) != 0 { 1 } else { 0 },
            BinaryOp::Maximum => a.max(b),
            BinaryOp::Minimum => a.min(b),
            _ => self.compare(a, b) as i64,
        }
    }

    /// The predicate value.
    pub(crate) fn compare<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            BinaryOp::Eq => a == b,
            BinaryOp::Ne => a != b,
            BinaryOp::Lt => a < b,
            BinaryOp::Le => a <= b,
            BinaryOp::Gt => a > b,
            BinaryOp::Ge => a >= b,
            _ => false,
        }
    }
}

impl Tensor {
    /// Applies a binary op with broadcasting, recording the gradient for arithmetic ops.
    ///
    /// # Errors
    /// `ShapeMismatch` when the shapes do not broadcast; `DTypeMismatch` when the dtypes differ
    /// (except float32 meeting the dtype of an [`crate::autocast`] scope, which is cast) or the
    /// op does not accept them (logical ops need bool; `pow` needs a float; arithmetic is for
    /// floats and i64); `InvalidArgument` for an integer division by zero or tensors on two devices.
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        let name = op.name();
        self.same_device(name, other)?;
        if self.dtype() != other.dtype() && self.dtype().is_float() && other.dtype().is_float() {
            if let Some((a, b)) = crate::autocast::mixed_pair(self, other)? {
                return a.binary(op, &b);
            }
        }
        if self.dtype() == DType::I32 && other.dtype() == DType::I32 {
            // int32 computes in int64 and narrows back, wrapping as TensorFlow's int32 does.
            let y = self.cast(DType::I64)?.binary(op, &other.cast(DType::I64)?)?;
            return if y.dtype() == DType::I64 { y.cast(DType::I32) } else { Ok(y) };
        }
        if self.dtype() != other.dtype() {
            return Err(Error::dtype(name, format!("both operands of one dtype ({} from the first)", self.dtype()), other.dtype()));
        }
        let dtype = self.dtype();
        let ok = match op {
            BinaryOp::And | BinaryOp::Or => dtype == DType::Bool,
            BinaryOp::Pow => dtype.is_float(),
            BinaryOp::Eq | BinaryOp::Ne => true,
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => dtype != DType::Bool,
            _ => dtype.is_float() || dtype == DType::I64,
        };
        if !ok {
            let expected = match op {
                BinaryOp::And | BinaryOp::Or => "bool",
                BinaryOp::Pow => crate::ops::FLOAT_DTYPES,
                BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => "a numeric dtype",
                _ => "float32, bfloat16, float16 or int64 (cast uint8 images to float32 first)",
            };
            return Err(Error::dtype(name, expected, dtype));
        }
        let out_shape = broadcast_shapes(name, self.shape(), other.shape())?;
        let y = backend(self.device())?.binary(op, self.storage(), self.shape(), other.storage(), other.shape(), &out_shape)?;
        if op.is_predicate() || !dtype.is_float() {
            return Tensor::from_storage(y, out_shape, self.device());
        }
        Ok(Tensor::from_op(y, out_shape, self.device(), name, &[self, other], move |inputs, out, g| {
            let (a, b) = (&inputs[0], &inputs[1]);
            let (ga, gb) = match op {
                BinaryOp::Add => (g.clone(), g.clone()),
                BinaryOp::Sub => (g.clone(), g.neg()?),
                BinaryOp::Mul => (g.mul(b)?, g.mul(a)?),
                // d(a/b) = 1/b da - a/b² db
                BinaryOp::Div => (g.div(b)?, g.mul(out)?.div(b)?.neg()?),
                BinaryOp::Pow => {
                    // d a^b = b a^(b-1) da + a^b ln(a) db, with ln(a) := 0 for a <= 0 (as TF)
                    let da = g.mul(b)?.mul(&a.pow(&b.sub_scalar(1.0)?)?)?;
                    let positive = a.gt(&a.zeros_like())?;
                    let log_a = positive.select(&a.log()?, &a.zeros_like())?;
                    (da, g.mul(out)?.mul(&log_a)?)
                }
                BinaryOp::Maximum | BinaryOp::Minimum => {
                    // Ties send the gradient to the first operand, as TensorFlow.
                    let first = if op == BinaryOp::Maximum { a.ge(b)? } else { a.le(b)? };
                    let zero = g.zeros_like();
                    (first.select(g, &zero)?, first.select(&zero, g)?)
                }
                _ => unreachable!("predicates record no gradient"),
            };
            Ok(vec![Some(ga.sum_to_shape(a.shape())?), Some(gb.sum_to_shape(b.shape())?)])
        }))
    }

    fn scalar_like(&self, v: f32) -> Result<Tensor> {
        match self.dtype() {
            DType::F32 => Ok(Tensor::scalar(v, self.device())?),
            dtype @ (DType::I64 | DType::I32 | DType::F16 | DType::BF16) => Tensor::full((), v as f64, dtype, self.device()),
            other => Err(Error::dtype("scalar op", "float32, bfloat16, float16, int64 or int32", other)),
        }
    }

    /// `self + c`.
    ///
    /// # Errors
    /// As [`Tensor::add`].
    pub fn add_scalar(&self, c: f32) -> Result<Tensor> {
        self.add(&self.scalar_like(c)?)
    }

    /// `self - c`.
    ///
    /// # Errors
    /// As [`Tensor::sub`].
    pub fn sub_scalar(&self, c: f32) -> Result<Tensor> {
        self.sub(&self.scalar_like(c)?)
    }

    /// `self * c`.
    ///
    /// # Errors
    /// As [`Tensor::mul`].
    pub fn mul_scalar(&self, c: f32) -> Result<Tensor> {
        self.mul(&self.scalar_like(c)?)
    }

    /// `self / c`.
    ///
    /// # Errors
    /// As [`Tensor::div`].
    pub fn div_scalar(&self, c: f32) -> Result<Tensor> {
        self.div(&self.scalar_like(c)?)
    }
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                ///
                /// # Errors
                /// As [`Tensor::binary`].
                pub fn $name(&self, other: &Tensor) -> Result<Tensor> {
                    self.binary($op, other)
                }
            )*
        }
    };
}

binary_methods! {
    /// `self + other`, broadcasting.
    add => BinaryOp::Add;
    /// `self - other`, broadcasting.
    sub => BinaryOp::Sub;
    /// `self * other`, broadcasting.
    mul => BinaryOp::Mul;
    /// `self / other`, broadcasting (floor division for int64).
    div => BinaryOp::Div;
    /// `self ^ other`, broadcasting (f32).
    pow => BinaryOp::Pow;
    /// Element-wise maximum.
    maximum => BinaryOp::Maximum;
    /// Element-wise minimum.
    minimum => BinaryOp::Minimum;
    /// `self == other` as bool.
    eq => BinaryOp::Eq;
    /// `self != other` as bool.
    ne => BinaryOp::Ne;
    /// `self < other` as bool.
    lt => BinaryOp::Lt;
    /// `self <= other` as bool.
    le => BinaryOp::Le;
    /// `self > other` as bool.
    gt => BinaryOp::Gt;
    /// `self >= other` as bool.
    ge => BinaryOp::Ge;
    /// Logical and of two bool tensors.
    logical_and => BinaryOp::And;
    /// Logical or of two bool tensors.
    logical_or => BinaryOp::Or;
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gradcheck, rand};
    use crate::{backend_test, DType, Device, Tensor};

    backend_test!(broadcast_add_matches_numpy, |dev| {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3, 1], dev).unwrap();
        let b = Tensor::from_vec(vec![10.0f32, 20.0], [2], dev).unwrap();
        let c = a.add(&b).unwrap();
        assert_eq!(c.dims(), &[3, 2]);
        assert_eq!(c.to_vec::<f32>().unwrap(), vec![11.0, 21.0, 12.0, 22.0, 13.0, 23.0]);
    });

    backend_test!(arithmetic_gradients_pass_gradcheck, |dev| {
        // Broadcasting in both directions, so the gradient must be summed back.
        let a = rand(&[2, 1, 3], 0.5, 2.0, 1, dev);
        let b = rand(&[4, 1], 0.5, 2.0, 2, dev);
        for op in ["add", "sub", "mul", "div", "pow", "maximum", "minimum"] {
            gradcheck(
                |x| match op {
                    "add" => x[0].add(&x[1]),
                    "sub" => x[0].sub(&x[1]),
                    "mul" => x[0].mul(&x[1]),
                    "div" => x[0].div(&x[1]),
                    "pow" => x[0].pow(&x[1]),
                    "maximum" => x[0].maximum(&x[1]),
                    _ => x[0].minimum(&x[1]),
                },
                &[a.clone(), b.clone()],
                1e-3,
                2e-3,
            )
            .unwrap_or_else(|e| panic!("{op}: {e}"));
        }
    });

    backend_test!(gate_examples_from_the_book, |dev| {
        // SPEC §2.1 #3: add(5,6)=11, mul(2,3)=6, mul.backward(2)=[6,4], add.backward(3)=[3,3].
        let x = Tensor::scalar(2.0, dev).unwrap().with_requires_grad(true).unwrap();
        let y = Tensor::scalar(3.0, dev).unwrap().with_requires_grad(true).unwrap();
        let m = x.mul(&y).unwrap();
        assert_eq!(m.to_scalar::<f32>().unwrap(), 6.0);
        let g = m.backward_with(&Tensor::scalar(2.0, dev).unwrap()).unwrap();
        assert_eq!((g.get(&x).unwrap().to_scalar::<f32>().unwrap(), g.get(&y).unwrap().to_scalar::<f32>().unwrap()), (6.0, 4.0));
        let p = Tensor::scalar(5.0, dev).unwrap().with_requires_grad(true).unwrap();
        let q = Tensor::scalar(6.0, dev).unwrap().with_requires_grad(true).unwrap();
        let s = p.add(&q).unwrap();
        assert_eq!(s.to_scalar::<f32>().unwrap(), 11.0);
        let g = s.backward_with(&Tensor::scalar(3.0, dev).unwrap()).unwrap();
        assert_eq!((g.get(&p).unwrap().to_scalar::<f32>().unwrap(), g.get(&q).unwrap().to_scalar::<f32>().unwrap()), (3.0, 3.0));
    });

    backend_test!(comparisons_and_integer_division, |dev| {
        let a = Tensor::from_vec(vec![-7i64, 7, 6], [3], dev).unwrap();
        let b = Tensor::from_vec(vec![2i64, -2, 3], [3], dev).unwrap();
        assert_eq!(a.div(&b).unwrap().to_vec::<i64>().unwrap(), vec![-4, -4, 2]); // Python's //
        assert_eq!(a.gt(&b).unwrap().to_vec::<bool>().unwrap(), vec![false, true, true]);
        let f = Tensor::from_vec(vec![1.0f32, f32::NAN], [2], dev).unwrap();
        assert!(f.maximum(&Tensor::scalar(0.0, dev).unwrap()).unwrap().to_vec::<f32>().unwrap()[1].is_nan());
        assert_close("mul_scalar", &f.mul_scalar(2.0).unwrap().to_vec::<f32>().unwrap()[..1], &[2.0], 0.0, 0.0);
    });

    #[test]
    fn errors_name_the_op_and_both_sides() {
        let a = Tensor::zeros([2, 3], DType::F32, Device::Cpu).unwrap();
        let b = Tensor::zeros([4], DType::F32, Device::Cpu).unwrap();
        let e = a.add(&b).unwrap_err().to_string();
        assert!(e.contains("add") && e.contains("[2, 3]") && e.contains("[4]"), "{e}");
        let i = Tensor::zeros([2, 3], DType::I64, Device::Cpu).unwrap();
        let e = a.mul(&i).unwrap_err().to_string();
        assert!(e.contains("mul: expected dtype") && e.contains("int64"), "{e}");
        let e = i.div(&i).unwrap_err().to_string();
        assert!(e.contains("division by zero"), "{e}");
        let u = Tensor::zeros([2], DType::U8, Device::Cpu).unwrap();
        assert!(u.add(&u).unwrap_err().to_string().contains("cast uint8"));
        let r = Tensor::zeros([2, 3], DType::F32, Device::Reference).unwrap();
        assert!(a.add(&r).unwrap_err().to_string().contains("one device"));
    }
}
