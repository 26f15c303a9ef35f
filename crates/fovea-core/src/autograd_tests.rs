//! Tests of the autodiff engine itself: accumulation, detach, no_grad, the tape, and the
//! book's golden examples.

use crate::testing::assert_close;
use crate::{backend_test, grad, no_grad, DType, Device, GradientTape, Tensor, Variable};

backend_test!(gradient_tape_descends_on_abs_3x_minus_6, |dev| {
    // SPEC / seed 000: minimising |3·X − 6| from X = 20 with step 1 visits 20, 17, ..., 2,
    // where the gradient is exactly 0 (TensorFlow's d|x|/dx = 0 at 0).
    let x = Variable::new("X", Tensor::scalar(20.0, dev).unwrap(), true).unwrap();
    let mut seen = vec![];
    let mut last_grad = f32::NAN;
    for _ in 0..8 {
        let tape = GradientTape::new();
        let v = x.value();
        seen.push(v.to_scalar::<f32>().unwrap());
        let loss = v.mul_scalar(3.0).unwrap().sub_scalar(6.0).unwrap().abs().unwrap();
        let g = tape.gradient(&loss, &[&v]).unwrap()[0].clone().unwrap();
        last_grad = g.to_scalar::<f32>().unwrap();
        x.assign_sub(&g).unwrap();
    }
    assert_eq!(seen, vec![20.0, 17.0, 14.0, 11.0, 8.0, 5.0, 2.0, 2.0]);
    assert_eq!(last_grad, 0.0);
});

backend_test!(gradients_accumulate_over_reuse, |dev| {
    // y = x·x + x  ⇒  dy/dx = 2x + 1
    let x = Tensor::from_vec(vec![1.0f32, -2.0, 0.5], [3], dev).unwrap().with_requires_grad(true).unwrap();
    let y = x.mul(&x).unwrap().add(&x).unwrap();
    let g = y.backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![3.0, -3.0, 2.0]);
});

backend_test!(detach_and_no_grad_stop_the_gradient, |dev| {
    let x = Tensor::from_vec(vec![2.0f32], [1], dev).unwrap().with_requires_grad(true).unwrap();
    // d/dx (x · stop(x)) = stop(x) = 2
    let y = x.mul(&x.detach()).unwrap();
    assert_eq!(y.backward().unwrap().get(&x).unwrap().to_vec::<f32>().unwrap(), vec![2.0]);
    let z = no_grad(|| x.mul(&x).unwrap());
    assert!(!z.requires_grad());
    let e = z.backward().unwrap_err().to_string();
    assert!(e.contains("does not depend on any tensor that requires a gradient"), "{e}");
});

backend_test!(grad_of_intermediates_and_unconnected_sources, |dev| {
    let a = Tensor::from_vec(vec![1.0f32, 2.0], [2], dev).unwrap().with_requires_grad(true).unwrap();
    let b = Tensor::from_vec(vec![3.0f32, 4.0], [2], dev).unwrap().with_requires_grad(true).unwrap();
    let h = a.mul_scalar(2.0).unwrap();
    let loss = h.square().unwrap().sum_all().unwrap(); // Σ (2a)²
    let g = grad(&loss, &[&h, &a, &b]).unwrap();
    assert_eq!(g[0].as_ref().unwrap().to_vec::<f32>().unwrap(), vec![4.0, 8.0]); // 2h
    assert_eq!(g[1].as_ref().unwrap().to_vec::<f32>().unwrap(), vec![8.0, 16.0]); // 8a
    assert!(g[2].is_none());
});

backend_test!(xor_mlp_learns_with_plain_gradient_descent, |dev| {
    // SPEC §2.1 #4: a 2-4-8-1 sigmoid MLP (61 parameters) learns XOR with log loss and plain
    // gradient descent. The book runs lr 0.1 for 10,000 steps; lr 1.0 for 3,000 reaches the same
    // place in a third of the test time.
    const LR: f32 = 1.0;
    crate::set_seed(0);
    let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], [4, 2], dev).unwrap();
    let t = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], [4, 1], dev).unwrap();
    let sizes = [(2, 4), (4, 8), (8, 1)];
    let params: Vec<(Variable, Variable)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &(n_in, n_out))| {
            let limit = (6.0 / (n_in + n_out) as f64).sqrt();
            let w = Tensor::random_uniform([n_in, n_out], -limit, limit, Some(10 + i as u64), dev).unwrap();
            (
                Variable::new(format!("w{i}"), w, true).unwrap(),
                Variable::new(format!("b{i}"), Tensor::zeros([n_out], DType::F32, dev).unwrap(), true).unwrap(),
            )
        })
        .collect();
    let count: usize = params.iter().map(|(w, b)| w.value().numel() + b.value().numel()).sum();
    assert_eq!(count, 61);
    let mut loss_value = f32::NAN;
    for _ in 0..3000 {
        let mut h = x.clone();
        let vals: Vec<(Tensor, Tensor)> = params.iter().map(|(w, b)| (w.value(), b.value())).collect();
        for (w, b) in &vals {
            h = h.matmul(w).unwrap().add(b).unwrap().sigmoid().unwrap();
        }
        // log loss: −mean(t·ln p + (1−t)·ln(1−p))
        let p = h.clip(1e-7, 1.0 - 1e-7).unwrap();
        let one_minus = p.neg().unwrap().add_scalar(1.0).unwrap();
        let ll = t
            .mul(&p.log().unwrap())
            .unwrap()
            .add(&t.neg().unwrap().add_scalar(1.0).unwrap().mul(&one_minus.log().unwrap()).unwrap())
            .unwrap();
        let loss = ll.mean_all().unwrap().neg().unwrap();
        loss_value = loss.to_scalar::<f32>().unwrap();
        let g = loss.backward().unwrap();
        for ((w, b), (wv, bv)) in params.iter().zip(&vals) {
            w.assign_sub(&g.get(wv).unwrap().mul_scalar(LR).unwrap()).unwrap();
            b.assign_sub(&g.get(bv).unwrap().mul_scalar(LR).unwrap()).unwrap();
        }
    }
    assert!(loss_value < 0.05, "XOR loss stayed at {loss_value}");
});

#[test]
fn variables_check_assignments_and_freeze() {
    let v = Variable::new("dense/kernel", Tensor::zeros([2, 2], DType::F32, Device::Cpu).unwrap(), true).unwrap();
    assert!(v.value().requires_grad());
    let e = v.assign(&Tensor::zeros([3], DType::F32, Device::Cpu).unwrap()).unwrap_err().to_string();
    assert!(e.contains("[2, 2] for variable dense/kernel") && e.contains("[3]"), "{e}");
    v.set_trainable(false).unwrap();
    assert!(!v.value().requires_grad());
    // Optimizers still write to a frozen variable when asked to directly.
    let sgd = crate::ops::optim::UpdateRule::Sgd { lr: 1.0, momentum: 0.0, nesterov: false, weight_decay: 0.0 };
    crate::ops::optim::apply_update(&sgd, &v, &Tensor::full([2, 2], -1.5, DType::F32, Device::Cpu).unwrap(), &mut []).unwrap();
    assert_close("update", &v.value().to_vec::<f32>().unwrap(), &[1.5; 4], 0.0, 0.0);
}

backend_test!(leaf_hooks_fire_once_per_leaf_last_layer_first_with_final_gradients, |dev| {
    // loss = sum(tanh(x·w1)·w2) with x reused: w2's gradient is final before w1's exists, and
    // each hook sees the same gradient the pass returns (x's accumulated over both uses).
    let x = Tensor::from_vec(vec![0.5f32, -1.0], [1, 2], dev).unwrap().with_requires_grad(true).unwrap();
    let w1 = Tensor::from_vec(vec![0.1f32, 0.2, 0.3, 0.4], [2, 2], dev).unwrap().with_requires_grad(true).unwrap();
    let w2 = Tensor::from_vec(vec![1.0f32, -1.0], [2, 1], dev).unwrap().with_requires_grad(true).unwrap();
    let h = x.matmul(&w1).unwrap().tanh().unwrap().add(&x).unwrap();
    let loss = h.matmul(&w2).unwrap().sum_all().unwrap();
    let mut seen: Vec<(crate::TensorId, Vec<f32>)> = Vec::new();
    let grads = loss
        .backward_with_hook(&mut |leaf, g| {
            seen.push((leaf.id(), g.to_vec::<f32>()?));
            Ok(())
        })
        .unwrap();
    let ids: Vec<_> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 3, "one call per leaf");
    let position = |t: &Tensor| ids.iter().position(|&i| i == t.id()).unwrap();
    assert!(position(&w2) < position(&w1), "the last layer's weight comes first");
    for (id, g) in &seen {
        assert_eq!(&grads.get_id(*id).unwrap().to_vec::<f32>().unwrap(), g);
    }
    // A failing hook stops the pass with its error.
    let e = loss.backward_with_hook(&mut |_, _| Err(crate::Error::Autodiff("stop".into()))).unwrap_err();
    assert!(e.to_string().contains("stop"), "{e}");
});

backend_test!(a_custom_op_takes_its_value_and_its_gradient_from_the_caller, |dev| {
    // y = custom(x) with value 2x and a declared gradient of 3·g (deliberately not 2·g):
    // the pass must use what the op declares.
    let x = Tensor::from_vec(vec![1.0f32, -2.0], [2], dev).unwrap().with_requires_grad(true).unwrap();
    let value = no_grad(|| x.mul_scalar(2.0)).unwrap();
    let y = crate::custom_op("triple_grad", &value, &[&x], |_, _, g| Ok(vec![Some(g.mul_scalar(3.0)?)]));
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, -4.0]);
    let loss = y.mul(&y).unwrap().sum_all().unwrap();
    // d(y²)/dy = 2y = [4, -8], times the declared 3.
    assert_eq!(loss.backward().unwrap().get(&x).unwrap().to_vec::<f32>().unwrap(), vec![12.0, -24.0]);
    // A backward returning no gradient for its input is an error naming the op.
    let bad = crate::custom_op("no_grads", &value, &[&x], |_, _, _| Ok(vec![]));
    let e = bad.sum_all().unwrap().backward().unwrap_err().to_string();
    assert!(e.contains("no_grads") && e.contains("0 gradients for 1 inputs"), "{e}");
});
