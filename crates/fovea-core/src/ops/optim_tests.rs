//! Tests of [`apply_update`] and the clipping ops: every rule on every backend against the
//! reference, the composed default against the fused CPU kernel, hand-computed first steps,
//! copy-on-write of shared buffers, and errors.

use super::*;
use crate::backend::cpu::CpuBackend;
use crate::backend::Backend;
use crate::testing::{assert_close, rand};
use crate::{backend_test, Device, HostData};

/// Every family and option, with scalars a third step of Keras's defaults would resolve to.
fn rules() -> Vec<(&'static str, UpdateRule)> {
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-7);
    let t = 3.0f64;
    let alpha = 0.01 * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
    let adam = |amsgrad, weight_decay| UpdateRule::Adam { lr: 0.01, alpha, beta_1: b1, beta_2: b2, epsilon: eps, amsgrad, weight_decay };
    let rms = |momentum, centered| UpdateRule::RmsProp { lr: 0.01, rho: 0.9, momentum, epsilon: eps, centered, weight_decay: 0.0 };
    let sgd = |momentum, nesterov, weight_decay| UpdateRule::Sgd { lr: 0.1, momentum, nesterov, weight_decay };
    vec![
        ("sgd", sgd(0.0, false, 0.0)),
        ("sgd_weight_decay", sgd(0.0, false, 0.01)),
        ("sgd_momentum", sgd(0.9, false, 0.0)),
        ("sgd_nesterov", sgd(0.9, true, 0.0)),
        ("adam", adam(false, 0.0)),
        ("adam_amsgrad", adam(true, 0.0)),
        ("adamw", adam(false, 0.004)),
        (
            "nadam",
            UpdateRule::Nadam {
                lr: 0.01,
                beta_1: b1,
                beta_2: b2,
                epsilon: eps,
                m_coef: 0.95,
                g_coef: 0.08,
                v_coef: 333.7,
                weight_decay: 0.0,
            },
        ),
        ("rmsprop", rms(0.0, false)),
        ("rmsprop_momentum", rms(0.5, false)),
        ("rmsprop_centered", rms(0.0, true)),
        ("rmsprop_momentum_centered", rms(0.5, true)),
        ("adagrad", UpdateRule::Adagrad { lr: 0.1, epsilon: eps, weight_decay: 0.0 }),
        ("adadelta", UpdateRule::Adadelta { lr: 1.0, rho: 0.95, epsilon: eps, weight_decay: 0.0 }),
        ("adamax", UpdateRule::Adamax { lr: 0.01, beta_1: b1, beta_2: b2, epsilon: eps, correction: 1.0 - b1.powf(t), weight_decay: 0.0 }),
    ]
}

/// The variable and slots after three updates with fixed random gradients on `dev`.
fn three_steps(rule: &UpdateRule, n: usize, dev: Device) -> Vec<Vec<f32>> {
    let var = Variable::new("w", rand(&[n], -1.0, 1.0, 1, dev), true).unwrap();
    let init = if matches!(rule, UpdateRule::Adagrad { .. }) { 0.1 } else { 0.0 };
    let mut slots: Vec<Tensor> = (0..rule.slot_count()).map(|_| Tensor::full([n], init, DType::F32, dev).unwrap()).collect();
    for step in 0..3 {
        let g = rand(&[n], -1.0, 1.0, 10 + step, dev);
        apply_update(rule, &var, &g, &mut slots).unwrap();
    }
    std::iter::once(var.value()).chain(slots).map(|t| t.to_vec::<f32>().unwrap()).collect()
}

/// `|a − b| <= 1e-6·max|b|`: relative to the tensor's scale, since a slot element can cancel
/// to near zero where f32 and f64 temporaries differ by an ulp of the operands.
fn close_to_scale(what: &str, actual: &[f32], expected: &[f32]) {
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert_close(what, actual, expected, 1e-6, 1e-6 * scale);
}

backend_test!(every_rule_matches_the_reference, |dev| {
    // 150,000 elements take the CPU kernel's parallel path; 37 its single-piece one.
    for n in [37, 150_000] {
        for (name, rule) in rules() {
            let got = three_steps(&rule, n, dev);
            let want = three_steps(&rule, n, Device::Reference);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                close_to_scale(&format!("{name} (n={n}) tensor {i} on {dev}"), g, w);
            }
        }
    }
});

#[test]
fn the_composed_default_equals_the_fused_cpu_kernel() {
    for (name, rule) in rules() {
        let n = 1000;
        let param = rand(&[n], -1.0, 1.0, 2, Device::Cpu).storage().clone();
        let grad = rand(&[n], -1.0, 1.0, 3, Device::Cpu).storage().clone();
        // Slots start from plausible states: second moments positive, and centered RMSprop's
        // mean gradient small enough that v − a² stays a variance (not a cancellation).
        let count = rule.slot_count();
        let centered = matches!(rule, UpdateRule::RmsProp { centered: true, .. });
        let slots: Vec<Storage> = (0..count)
            .map(|i| {
                let (lo, hi) = if centered && i == count - 1 { (-0.1, 0.1) } else { (0.25, 0.5) };
                rand(&[n], lo, hi, 4 + i as u64, Device::Cpu).storage().clone()
            })
            .collect();
        let run = |fused: bool| {
            let (mut p, mut s) = (param.clone(), slots.clone());
            let mut refs: Vec<&mut Storage> = s.iter_mut().collect();
            if fused {
                CpuBackend.apply_update(&rule, &mut p, &grad, &mut refs).unwrap();
            } else {
                crate::backend::optim::compose_update(&CpuBackend, &rule, &mut p, &grad, &mut refs).unwrap();
            }
            std::iter::once(p).chain(s).map(|s| s.as_f32("test").unwrap().to_vec()).collect::<Vec<_>>()
        };
        let (fused, composed) = (run(true), run(false));
        for (i, (f, c)) in fused.iter().zip(&composed).enumerate() {
            close_to_scale(&format!("{name} tensor {i}"), f, c);
        }
    }
}

backend_test!(first_steps_by_hand, |dev| {
    let one = |rule: UpdateRule, g: f32, slots: &[f32]| {
        let var = Variable::new("w", Tensor::from_vec(vec![1.0f32], [1], dev).unwrap(), true).unwrap();
        let mut slots: Vec<Tensor> = slots.iter().map(|&s| Tensor::from_vec(vec![s], [1], dev).unwrap()).collect();
        apply_update(&rule, &var, &Tensor::from_vec(vec![g], [1], dev).unwrap(), &mut slots).unwrap();
        std::iter::once(var.value()).chain(slots).map(|t| t.to_vec::<f32>().unwrap()[0]).collect::<Vec<_>>()
    };
    // m = 0.9·0.2 − 0.1·0.5 = 0.13; w = 1 + 0.13; Nesterov: w = 1 + 0.9·0.13 − 0.05 = 1.067.
    let sgd = |nesterov| UpdateRule::Sgd { lr: 0.1, momentum: 0.9, nesterov, weight_decay: 0.0 };
    assert_close("momentum", &one(sgd(false), 0.5, &[0.2]), &[1.13, 0.13], 1e-6, 0.0);
    assert_close("nesterov", &one(sgd(true), 0.5, &[0.2]), &[1.067, 0.13], 1e-6, 0.0);
    // Adam's first step moves by lr·sign(g) (up to ε): m = 0.05, v = 2.5e-4, alpha = 0.1·√0.001/0.1.
    let alpha = 0.1 * 0.001f64.sqrt() / 0.1;
    let adam = UpdateRule::Adam { lr: 0.1, alpha, beta_1: 0.9, beta_2: 0.999, epsilon: 0.0, amsgrad: false, weight_decay: 0.0 };
    assert_close("adam", &one(adam, 0.5, &[0.0, 0.0]), &[0.9, 0.05, 2.5e-4], 1e-6, 0.0);
    // AdamW decays first: w = 1 − 1·0.5·0.1 = 0.95, then Adam's 0.1.
    let adamw = UpdateRule::Adam { lr: 0.1, alpha, beta_1: 0.9, beta_2: 0.999, epsilon: 0.0, amsgrad: false, weight_decay: 0.5 };
    assert_close("adamw", &one(adamw, 0.5, &[0.0, 0.0]), &[0.85, 0.05, 2.5e-4], 1e-6, 0.0);
    // Adagrad: acc = 0.1 + 0.25; w = 1 − 0.1·0.5/√0.35.
    let adagrad = UpdateRule::Adagrad { lr: 0.1, epsilon: 0.0, weight_decay: 0.0 };
    assert_close("adagrad", &one(adagrad, 0.5, &[0.1]), &[(1.0 - 0.05 / 0.35f64.sqrt()) as f32, 0.35], 1e-6, 0.0);
    // Adamax: m = 0.05, u = max(0.999·0.3, 0.5) = 0.5; w = 1 − 0.1·0.05/(0.1·0.5) = 0.9.
    let adamax = UpdateRule::Adamax { lr: 0.1, beta_1: 0.9, beta_2: 0.999, epsilon: 0.0, correction: 0.1, weight_decay: 0.0 };
    assert_close("adamax", &one(adamax, 0.5, &[0.0, 0.3]), &[0.9, 0.05, 0.5], 1e-6, 0.0);
});

backend_test!(updates_in_place_only_what_nobody_else_holds, |dev| {
    let var = Variable::new("w", Tensor::ones([4], DType::F32, dev).unwrap(), true).unwrap();
    let rule = UpdateRule::Sgd { lr: 1.0, momentum: 0.5, nesterov: false, weight_decay: 0.0 };
    let g = Tensor::ones([4], DType::F32, dev).unwrap();
    let mut slots = vec![Tensor::zeros([4], DType::F32, dev).unwrap()];
    // Unshared: the variable keeps its tensor (and so its id).
    let id = var.value().id();
    apply_update(&rule, &var, &g, &mut slots).unwrap();
    assert_eq!(var.value().id(), id);
    assert_eq!(var.value().to_vec::<f32>().unwrap(), vec![0.0; 4]);
    // Held elsewhere (a checkpoint, last step's graph): those copies keep their values.
    let (kept_value, kept_slot) = (var.value(), slots[0].clone());
    apply_update(&rule, &var, &g, &mut slots).unwrap();
    assert_eq!(kept_value.to_vec::<f32>().unwrap(), vec![0.0; 4]);
    assert_eq!(kept_slot.to_vec::<f32>().unwrap(), vec![-1.0; 4]);
    assert_eq!(var.value().to_vec::<f32>().unwrap(), vec![-1.5; 4]);
    assert_eq!(slots[0].to_vec::<f32>().unwrap(), vec![-1.5; 4]);
    assert!(var.value().requires_grad());
});

#[test]
fn bad_updates_are_errors_and_change_nothing() {
    let dev = Device::Cpu;
    let var = Variable::new("dense/kernel", Tensor::ones([2, 2], DType::F32, dev).unwrap(), true).unwrap();
    let adam = rules()[4].1;
    let zeros = |shape: &[usize]| Tensor::zeros(shape.to_vec(), DType::F32, dev).unwrap();
    let g = zeros(&[2, 2]);
    let err = |g: &Tensor, slots: &mut [Tensor]| apply_update(&adam, &var, g, slots).unwrap_err().to_string();
    let e = err(&zeros(&[4]), &mut [zeros(&[2, 2]), zeros(&[2, 2])]);
    assert!(e.contains("gradient of shape [2, 2] for variable dense/kernel") && e.contains("[4]"), "{e}");
    let e = err(&g, &mut [zeros(&[2, 2])]);
    assert!(e.contains("Adam takes 2 slots, got 1"), "{e}");
    let e = err(&g, &mut [zeros(&[2, 2]), zeros(&[2, 3])]);
    assert!(e.contains("slot of shape [2, 2]"), "{e}");
    let e = err(&Tensor::zeros([2, 2], DType::I64, dev).unwrap(), &mut [zeros(&[2, 2]), zeros(&[2, 2])]);
    assert!(e.contains("float32 gradient"), "{e}");
    let e = err(&g.to(Device::Reference).unwrap(), &mut [zeros(&[2, 2]), zeros(&[2, 2])]);
    assert!(e.contains("is on cpu but its gradient is on reference"), "{e}");
    let ints = Variable::new("step", Tensor::zeros([2], DType::I64, dev).unwrap(), false).unwrap();
    let e = apply_update(&rules()[0].1, &ints, &zeros(&[2]), &mut []).unwrap_err().to_string();
    assert!(e.contains("float32 for variable step"), "{e}");
    assert_eq!(var.value().to_vec::<f32>().unwrap(), vec![1.0; 4]);
    // The backend checks storages itself too, before writing.
    let (mut p, short) = (Storage::host(HostData::F32(vec![1.0; 3])), Storage::host(HostData::F32(vec![0.0; 2])));
    for b in [&CpuBackend as &dyn Backend, &crate::backend::reference::ReferenceBackend] {
        let e = b.apply_update(&rules()[0].1, &mut p, &short, &mut []).unwrap_err().to_string();
        assert!(e.contains("3 elements") && e.contains("got 2 elements"), "{e}");
    }
    assert_eq!(p.as_f32("test").unwrap(), &[1.0; 3]);
}

backend_test!(clipping_as_keras, |dev| {
    let t = |v: Vec<f32>| Tensor::from_vec(v.clone(), [v.len()], dev).unwrap();
    // ‖[3, 4]‖ = 5: clipped to norm 1 → [0.6, 0.8]; a norm under the limit stays.
    assert_close("clipnorm", &clip_by_norm(&t(vec![3.0, 4.0]), 1.0).unwrap().to_vec::<f32>().unwrap(), &[0.6, 0.8], 1e-6, 0.0);
    assert_close("under", &clip_by_norm(&t(vec![3.0, 4.0]), 10.0).unwrap().to_vec::<f32>().unwrap(), &[3.0, 4.0], 1e-6, 0.0);
    assert_eq!(clip_by_norm(&t(vec![0.0, 0.0]), 1.0).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 0.0]);
    // Joint norm of [3] and [4] is 5: both scaled by 2/5; a zero norm scales by 1.
    let both = clip_by_global_norm(&[t(vec![3.0]), t(vec![4.0])], 2.0).unwrap();
    assert_close("global", &[both[0].to_scalar::<f32>().unwrap(), both[1].to_scalar::<f32>().unwrap()], &[1.2, 1.6], 1e-6, 0.0);
    let zero = clip_by_global_norm(&[t(vec![0.0])], 2.0).unwrap();
    assert_eq!(zero[0].to_vec::<f32>().unwrap(), vec![0.0]);
    assert!(clip_by_global_norm(&[], 1.0).unwrap().is_empty());
    assert_eq!(clip_by_value(&t(vec![-2.0, 0.25, 3.0]), 0.5).unwrap().to_vec::<f32>().unwrap(), vec![-0.5, 0.25, 0.5]);
});
