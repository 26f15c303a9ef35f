//! Fused optimizer updates: one pass over the variable, its gradient and its slots, in place.
//!
//! The arithmetic is the one Fovea's optimizers used before they moved onto the backends, and it
//! matches Keras's 3 fixtures to 1e-5: Adam and Nadam in f32 in Keras's order (zipped slices the
//! compiler vectorises; the f64 loop took 7% of a LeNet-5 training step), the other rules with
//! f64 temporaries per element. Tensors of [`super::PARALLEL_THRESHOLD`] elements or more are
//! split into fixed chunks across rayon; element-wise updates give the same result either way.

use super::PARALLEL_THRESHOLD;
use crate::ops::optim::{check_update_storages, UpdateRule};
use crate::{Error, Result, Storage};
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

/// Applies `rule` in place (see the module docs).
///
/// # Errors
/// As [`check_update_storages`].
pub(super) fn apply_update(rule: &UpdateRule, param: &mut Storage, grad: &Storage, slots: &mut [&mut Storage]) -> Result<()> {
    check_update_storages(rule, param, grad, slots)?;
    let w = param.as_f32_mut("apply_update")?;
    let g = grad.as_f32("apply_update")?;
    let mut s: Vec<&mut [f32]> = Vec::with_capacity(slots.len());
    for slot in slots.iter_mut() {
        s.push(slot.as_f32_mut("apply_update")?);
    }
    let (lr, wd) = rule.lr_and_weight_decay();
    let rule = *rule;
    match s.len() {
        0 => run::<0>(w, g, array(s)?, lr, wd, move |w, g, []| kernel0(&rule, w, g)),
        1 => run::<1>(w, g, array(s)?, lr, wd, move |w, g, [a]| kernel1(&rule, w, g, a)),
        2 => run::<2>(w, g, array(s)?, lr, wd, move |w, g, [a, b]| kernel2(&rule, w, g, a, b)),
        3 => run::<3>(w, g, array(s)?, lr, wd, move |w, g, [a, b, c]| kernel3(&rule, w, g, a, b, c)),
        n => return Err(Error::invalid("apply_update", format!("no optimizer takes {n} slots"))),
    }
    Ok(())
}

/// The slots as a fixed-size array, so each kernel names its slots.
fn array<const K: usize>(slots: Vec<&mut [f32]>) -> Result<[&mut [f32]; K]> {
    let n = slots.len();
    slots.try_into().map_err(|_| Error::invalid("apply_update", format!("expected {K} slots, got {n}")))
}

/// Runs `kernel` over matching pieces of the variable, gradient and `K` slots (all one length,
/// checked), after the decoupled weight decay `w -= w·wd·lr` on each piece.
fn run<const K: usize>(
    w: &mut [f32],
    g: &[f32],
    slots: [&mut [f32]; K],
    lr: f64,
    wd: f64,
    kernel: impl Fn(&mut [f32], &[f32], [&mut [f32]; K]) + Sync,
) {
    let piece = |w: &mut [f32], g: &[f32], s: [&mut [f32]; K]| {
        if wd != 0.0 {
            w.iter_mut().for_each(|x| *x -= (*x as f64 * wd * lr) as f32);
        }
        kernel(w, g, s);
    };
    if w.len() < PARALLEL_THRESHOLD {
        piece(w, g, slots);
    } else {
        let mut slot_chunks = slots.map(|s| s.chunks_mut(CHUNK));
        let pieces: Vec<_> = w
            .chunks_mut(CHUNK)
            .zip(g.chunks(CHUNK))
            .map(|(w, g)| (w, g, slot_chunks.each_mut().map(|c| c.next().unwrap_or_default())))
            .collect();
        pieces.into_par_iter().for_each(|(w, g, s)| piece(w, g, s));
    }
}

/// Plain SGD.
fn kernel0(rule: &UpdateRule, w: &mut [f32], g: &[f32]) {
    if let UpdateRule::Sgd { lr, .. } = *rule {
        w.iter_mut().zip(g).for_each(|(x, &gi)| *x -= (gi as f64 * lr) as f32);
    }
}

/// SGD with momentum, RMSprop without momentum or centering, Adagrad.
fn kernel1(rule: &UpdateRule, w: &mut [f32], g: &[f32], s0: &mut [f32]) {
    match *rule {
        UpdateRule::Sgd { lr, momentum, nesterov, .. } => {
            for ((x, &gi), m) in w.iter_mut().zip(g).zip(s0) {
                let mi = *m as f64 * momentum - gi as f64 * lr;
                *m = mi as f32;
                *x += if nesterov { (mi * momentum - gi as f64 * lr) as f32 } else { mi as f32 };
            }
        }
        UpdateRule::RmsProp { .. } => rmsprop(rule, w, g, s0, None, None),
        UpdateRule::Adagrad { lr, epsilon, .. } => {
            for ((x, &gi), acc) in w.iter_mut().zip(g).zip(s0) {
                let gi = gi as f64;
                let a = *acc as f64 + gi * gi;
                *acc = a as f32;
                *x -= (lr * gi / (a + epsilon).sqrt()) as f32;
            }
        }
        _ => {}
    }
}

/// Adam, Nadam, Adadelta, Adamax, RMSprop with momentum or centering.
fn kernel2(rule: &UpdateRule, w: &mut [f32], g: &[f32], s0: &mut [f32], s1: &mut [f32]) {
    match *rule {
        UpdateRule::Adam { alpha, beta_1, beta_2, epsilon, .. } => {
            // Keras's f32 arithmetic, in its order.
            let alpha = alpha as f32;
            let (one_b1, one_b2, eps) = ((1.0 - beta_1) as f32, (1.0 - beta_2) as f32, epsilon as f32);
            for (((x, &gi), mi), vi) in w.iter_mut().zip(g).zip(s0).zip(s1) {
                *mi += (gi - *mi) * one_b1;
                *vi += (gi * gi - *vi) * one_b2;
                *x -= *mi * alpha / (vi.sqrt() + eps);
            }
        }
        UpdateRule::Nadam { lr, beta_1, beta_2, epsilon, m_coef, g_coef, v_coef, .. } => {
            // f32 as Adam; the per-step constants were resolved in f64.
            let (cm, cg, cv) = (m_coef as f32, g_coef as f32, v_coef as f32);
            let (lr32, eps) = (lr as f32, epsilon as f32);
            let (one_b1, one_b2) = ((1.0 - beta_1) as f32, (1.0 - beta_2) as f32);
            for (((x, &gi), mi), vi) in w.iter_mut().zip(g).zip(s0).zip(s1) {
                *mi += (gi - *mi) * one_b1;
                *vi += (gi * gi - *vi) * one_b2;
                let m_hat = cm * *mi + cg * gi;
                *x -= m_hat * lr32 / ((*vi * cv).sqrt() + eps);
            }
        }
        UpdateRule::RmsProp { momentum, .. } if momentum > 0.0 => rmsprop(rule, w, g, s0, Some(s1), None),
        UpdateRule::RmsProp { .. } => rmsprop(rule, w, g, s0, None, Some(s1)),
        UpdateRule::Adadelta { lr, rho, epsilon, .. } => {
            for (((x, &gi), ag), ad) in w.iter_mut().zip(g).zip(s0).zip(s1) {
                let gi = gi as f64;
                let a = rho * *ag as f64 + (1.0 - rho) * gi * gi;
                *ag = a as f32;
                let delta = -((*ad as f64 + epsilon).sqrt() * gi) / (a + epsilon).sqrt();
                *ad = (rho * *ad as f64 + (1.0 - rho) * delta * delta) as f32;
                *x += (lr * delta) as f32;
            }
        }
        UpdateRule::Adamax { lr, beta_1, beta_2, epsilon, correction, .. } => {
            for (((x, &gi), m), u) in w.iter_mut().zip(g).zip(s0).zip(s1) {
                let gi = gi as f64;
                let mi = *m as f64 + (gi - *m as f64) * (1.0 - beta_1);
                let ui = (beta_2 * *u as f64).max(gi.abs());
                *m = mi as f32;
                *u = ui as f32;
                *x -= (lr * mi / (correction * (ui + epsilon))) as f32;
            }
        }
        _ => {}
    }
}

/// AMSGrad and centered RMSprop with momentum.
fn kernel3(rule: &UpdateRule, w: &mut [f32], g: &[f32], s0: &mut [f32], s1: &mut [f32], s2: &mut [f32]) {
    match *rule {
        UpdateRule::Adam { alpha, beta_1, beta_2, epsilon, .. } => {
            for ((((x, &gi), m), v), vhat) in w.iter_mut().zip(g).zip(s0).zip(s1).zip(s2) {
                let gi = gi as f64;
                let mi = *m as f64 + (gi - *m as f64) * (1.0 - beta_1);
                let vi = *v as f64 + (gi * gi - *v as f64) * (1.0 - beta_2);
                *m = mi as f32;
                *v = vi as f32;
                let vmax = vi.max(*vhat as f64);
                *vhat = vmax as f32;
                *x -= (mi * alpha / (vmax.sqrt() + epsilon)) as f32;
            }
        }
        UpdateRule::RmsProp { .. } => rmsprop(rule, w, g, s0, Some(s1), Some(s2)),
        _ => {}
    }
}

/// RMSprop with its optional momentum and centering slots.
fn rmsprop(rule: &UpdateRule, w: &mut [f32], g: &[f32], vel: &mut [f32], mut mom: Option<&mut [f32]>, mut avg: Option<&mut [f32]>) {
    let UpdateRule::RmsProp { lr, rho, momentum, epsilon, .. } = *rule else { return };
    for i in 0..w.len() {
        let gi = g[i] as f64;
        let v = rho * vel[i] as f64 + (1.0 - rho) * gi * gi;
        vel[i] = v as f32;
        let denom = match avg.as_deref_mut() {
            Some(a) => {
                let ai = rho * a[i] as f64 + (1.0 - rho) * gi;
                a[i] = ai as f32;
                v - ai * ai + epsilon
            }
            None => v + epsilon,
        };
        let inc = lr * gi / denom.sqrt();
        match mom.as_deref_mut() {
            Some(m) => {
                let mi = momentum * m[i] as f64 + inc;
                m[i] = mi as f32;
                w[i] -= mi as f32;
            }
            None => w[i] -= inc as f32,
        }
    }
}
