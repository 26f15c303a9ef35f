//! The default [`Backend::apply_update`]: each optimizer rule composed from the backend's own
//! element-wise primitives (`binary`, `unary`), so any backend updates variables on its device
//! without a kernel of its own. It is also the reference backend's update, and with it the
//! specification the fused CPU kernel (`cpu/optim.rs`) is tested against.
//!
//! Every step is an f32 op rounded once, in Keras's order of operations; the per-step scalars
//! are rounded to f32 where they enter, as Keras's f32 variables see them.

use super::Backend;
use crate::ops::binary::BinaryOp::{self, Add, Div, Maximum, Mul, Sub};
use crate::ops::optim::{check_update_storages, UpdateRule};
use crate::ops::unary::UnaryOp;
use crate::{DType, Result, Shape, Storage};

/// The element-wise primitives of one backend over flat `[n]` storages and scalars.
struct Ops<'a, B: ?Sized> {
    b: &'a B,
    shape: Shape,
    scalar: Shape,
}

impl<B: Backend + ?Sized> Ops<'_, B> {
    /// `x op y`, both of the variable's size.
    fn bin(&self, op: BinaryOp, x: &Storage, y: &Storage) -> Result<Storage> {
        self.b.binary(op, x, &self.shape, y, &self.shape, &self.shape)
    }

    /// `x op s` for a per-step scalar, made on the device by `full` (rounded to f32 there) and
    /// broadcast by the primitive.
    fn sc(&self, op: BinaryOp, x: &Storage, s: f64) -> Result<Storage> {
        self.b.binary(op, x, &self.shape, &self.b.full(DType::F32, 1, s)?, &self.scalar, &self.shape)
    }

    fn un(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        self.b.unary(op, x)
    }

    /// `x·a + y·b`: the exponential moving averages (`ρ·v + (1 − ρ)·g²` and friends).
    fn mix(&self, x: &Storage, a: f64, y: &Storage, b: f64) -> Result<Storage> {
        self.bin(Add, &self.sc(Mul, x, a)?, &self.sc(Mul, y, b)?)
    }

    /// `m + (g − m)·k`: Keras's form of the Adam-family first (and second) moments.
    fn lerp(&self, m: &Storage, g: &Storage, k: f64) -> Result<Storage> {
        self.bin(Add, m, &self.sc(Mul, &self.bin(Sub, g, m)?, k)?)
    }
}

/// Applies `rule` with `b`'s primitives, replacing `param` and `slots` with the results.
///
/// # Errors
/// As [`check_update_storages`], and whatever `b`'s primitives return.
pub(crate) fn compose_update<B: Backend + ?Sized>(
    b: &B,
    rule: &UpdateRule,
    param: &mut Storage,
    grad: &Storage,
    slots: &mut [&mut Storage],
) -> Result<()> {
    check_update_storages(rule, param, grad, slots)?;
    let o = Ops { b, shape: Shape::from(vec![param.len()]), scalar: Shape::scalar() };
    let g = grad;
    let (lr, wd) = rule.lr_and_weight_decay();
    // Decoupled weight decay comes first, on the variable alone: w -= w·wd·lr.
    let decayed = if wd != 0.0 { Some(o.bin(Sub, param, &o.sc(Mul, param, wd * lr)?)?) } else { None };
    let w = decayed.as_ref().unwrap_or(param);
    let mut new_slots: Vec<Storage> = Vec::with_capacity(slots.len());
    let new_w = match *rule {
        UpdateRule::Sgd { momentum, nesterov, .. } => {
            let g_lr = o.sc(Mul, g, lr)?;
            if momentum == 0.0 {
                o.bin(Sub, w, &g_lr)?
            } else {
                // m = momentum·m − lr·g; w += m, or w += momentum·m − lr·g (Nesterov).
                let m = o.bin(Sub, &o.sc(Mul, slots[0], momentum)?, &g_lr)?;
                let new_w = if nesterov { o.bin(Add, w, &o.bin(Sub, &o.sc(Mul, &m, momentum)?, &g_lr)?)? } else { o.bin(Add, w, &m)? };
                new_slots.push(m);
                new_w
            }
        }
        UpdateRule::Adam { alpha, beta_1, beta_2, epsilon, amsgrad, .. } => {
            let m = o.lerp(slots[0], g, 1.0 - beta_1)?;
            let v = o.lerp(slots[1], &o.bin(Mul, g, g)?, 1.0 - beta_2)?;
            // AMSGrad divides by the running maximum of v, kept as a third slot.
            let v_hat = if amsgrad { Some(o.bin(Maximum, &v, slots[2])?) } else { None };
            let denom = o.sc(Add, &o.un(UnaryOp::Sqrt, v_hat.as_ref().unwrap_or(&v))?, epsilon)?;
            let new_w = o.bin(Sub, w, &o.bin(Div, &o.sc(Mul, &m, alpha)?, &denom)?)?;
            new_slots.extend([m, v]);
            new_slots.extend(v_hat);
            new_w
        }
        UpdateRule::Nadam { beta_1, beta_2, epsilon, m_coef, g_coef, v_coef, .. } => {
            let m = o.lerp(slots[0], g, 1.0 - beta_1)?;
            let v = o.lerp(slots[1], &o.bin(Mul, g, g)?, 1.0 - beta_2)?;
            let m_hat = o.mix(&m, m_coef, g, g_coef)?;
            let denom = o.sc(Add, &o.un(UnaryOp::Sqrt, &o.sc(Mul, &v, v_coef)?)?, epsilon)?;
            new_slots.extend([m, v]);
            o.bin(Sub, w, &o.bin(Div, &o.sc(Mul, &m_hat, lr)?, &denom)?)?
        }
        UpdateRule::RmsProp { rho, momentum, epsilon, centered, .. } => {
            let v = o.mix(slots[0], rho, &o.bin(Mul, g, g)?, 1.0 - rho)?;
            // Centered: divide by the variance estimate v − a² instead of v.
            let avg = if centered { Some(o.mix(slots[slots.len() - 1], rho, g, 1.0 - rho)?) } else { None };
            let spread = match &avg {
                Some(a) => o.sc(Add, &o.bin(Sub, &v, &o.bin(Mul, a, a)?)?, epsilon)?,
                None => o.sc(Add, &v, epsilon)?,
            };
            let inc = o.bin(Div, &o.sc(Mul, g, lr)?, &o.un(UnaryOp::Sqrt, &spread)?)?;
            new_slots.push(v);
            let new_w = if momentum > 0.0 {
                let m = o.bin(Add, &o.sc(Mul, slots[1], momentum)?, &inc)?;
                let new_w = o.bin(Sub, w, &m)?;
                new_slots.push(m);
                new_w
            } else {
                o.bin(Sub, w, &inc)?
            };
            new_slots.extend(avg);
            new_w
        }
        UpdateRule::Adagrad { epsilon, .. } => {
            let acc = o.bin(Add, slots[0], &o.bin(Mul, g, g)?)?;
            let denom = o.un(UnaryOp::Sqrt, &o.sc(Add, &acc, epsilon)?)?;
            new_slots.push(acc);
            o.bin(Sub, w, &o.bin(Div, &o.sc(Mul, g, lr)?, &denom)?)?
        }
        UpdateRule::Adadelta { rho, epsilon, .. } => {
            let a = o.mix(slots[0], rho, &o.bin(Mul, g, g)?, 1.0 - rho)?;
            // δ = −√(d + ε)·g / √(a + ε), with d the running average of past δ².
            let num = o.bin(Mul, &o.un(UnaryOp::Sqrt, &o.sc(Add, slots[1], epsilon)?)?, g)?;
            let delta = o.un(UnaryOp::Neg, &o.bin(Div, &num, &o.un(UnaryOp::Sqrt, &o.sc(Add, &a, epsilon)?)?)?)?;
            let d = o.mix(slots[1], rho, &o.bin(Mul, &delta, &delta)?, 1.0 - rho)?;
            let new_w = o.bin(Add, w, &o.sc(Mul, &delta, lr)?)?;
            new_slots.extend([a, d]);
            new_w
        }
        UpdateRule::Adamax { beta_1, beta_2, epsilon, correction, .. } => {
            let m = o.lerp(slots[0], g, 1.0 - beta_1)?;
            let u = o.bin(Maximum, &o.sc(Mul, slots[1], beta_2)?, &o.un(UnaryOp::Abs, g)?)?;
            let denom = o.sc(Mul, &o.sc(Add, &u, epsilon)?, correction)?;
            let new_w = o.bin(Sub, w, &o.bin(Div, &o.sc(Mul, &m, lr)?, &denom)?)?;
            new_slots.extend([m, u]);
            new_w
        }
    };
    *param = new_w;
    for (slot, new) in slots.iter_mut().zip(new_slots) {
        **slot = new;
    }
    Ok(())
}
