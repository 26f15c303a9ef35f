//! A backend outside host memory carries a whole training step: a small CNN's forward pass,
//! loss, backward pass and SGD update run on the arena device (`fovea_core::testing::arena`)
//! with no host transfer but the explicit ones, and give the reference backend's numbers.

use fovea_core::backend::backend;
use fovea_core::ops::conv::Conv2dOptions;
use fovea_core::ops::optim::{apply_update, clip_by_global_norm, UpdateRule};
use fovea_core::ops::padding::Padding;
use fovea_core::testing::arena;
use fovea_core::{DType, Device, Error, Tensor, Variable};

struct Step {
    loss: f32,
    weights: Vec<Vec<f32>>,
}

/// One Adam step (gradients clipped to a global norm) of conv(3x3, 4) → ReLU → max-pool →
/// dense(3) → softmax cross-entropy.
fn train_step(dev: Device) -> (Step, Vec<Tensor>) {
    let x: Vec<f32> = (0..2 * 6 * 6).map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0).collect();
    let x = Tensor::from_vec(x, [2, 6, 6, 1], dev).unwrap();
    let labels = Tensor::from_vec(vec![2i64, 0], [2], dev).unwrap();
    // Made on the device from seeds: no upload.
    let w1 = Tensor::random_normal([3, 3, 1, 4], 0.0, 0.5, Some(1), dev).unwrap().with_requires_grad(true).unwrap();
    let b1 = Tensor::zeros([4], DType::F32, dev).unwrap().with_requires_grad(true).unwrap();
    let w2 = Tensor::random_uniform([36, 3], -0.3, 0.3, Some(2), dev).unwrap().with_requires_grad(true).unwrap();
    let params = [w1.clone(), b1.clone(), w2.clone()];
    let vars: Vec<Variable> = params.iter().enumerate().map(|(i, p)| Variable::new(format!("w{i}"), p.detach(), true).unwrap()).collect();

    let h = x.conv2d(&w1, &Conv2dOptions { padding: Padding::Same, ..Default::default() }).unwrap().add(&b1).unwrap().relu().unwrap();
    let h = h.max_pool2d((2, 2), (2, 2), Padding::Valid).unwrap().reshape(&[2, 36]).unwrap();
    let logits = h.matmul(&w2).unwrap();
    let target = Tensor::one_hot(&labels, 3).unwrap();
    let loss = logits.log_softmax(-1).unwrap().mul(&target).unwrap().sum_all().unwrap().neg().unwrap().div_scalar(2.0).unwrap();
    let grads = loss.backward().unwrap();
    let grads: Vec<Tensor> = params.iter().map(|p| grads.get(p).expect("a gradient for every weight").clone()).collect();
    let grads = clip_by_global_norm(&grads, 0.5).unwrap();
    let adam = UpdateRule::Adam { lr: 0.01, alpha: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false, weight_decay: 0.0 };
    for (var, g) in vars.iter().zip(&grads) {
        let mut slots = vec![Tensor::zeros(g.dims().to_vec(), DType::F32, dev).unwrap(); 2];
        apply_update(&adam, var, g, &mut slots).unwrap();
    }
    let updated: Vec<Tensor> = vars.iter().map(Variable::value).collect();
    let step = Step { loss: loss.to_scalar::<f32>().unwrap(), weights: updated.iter().map(|t| t.to_vec::<f32>().unwrap()).collect() };
    (step, updated)
}

#[test]
fn a_training_step_on_the_arena_device_transfers_only_what_was_asked() {
    let dev = arena::device(1);
    arena::reset(1);
    let (on_arena, updated) = train_step(dev);
    let t = arena::transfers(1);
    // The two explicit uploads (images, labels); the downloads are the loss scalar and the three
    // updated weights that the step asked for, nothing else.
    assert_eq!((t.uploads, t.uploaded_elements), (2, 2 * 36 + 2), "{t:?}");
    assert_eq!(t.download_sizes, vec![1, 36, 4, 108], "{t:?}");
    assert!(updated.iter().all(|w| w.device() == dev));

    let (on_reference, _) = train_step(Device::Reference);
    assert_eq!(on_arena.loss, on_reference.loss);
    assert_eq!(on_arena.weights, on_reference.weights, "the arena computes with the reference kernels");
}

#[test]
fn devices_without_a_backend_are_clear_errors() {
    let e = backend(Device::Cuda(3)).err().expect("no CUDA backend is registered in this build");
    assert!(matches!(e, Error::DeviceUnavailable { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("device cuda:3 is unavailable") && msg.contains("`cuda` feature"), "{msg}");
    let e = Tensor::zeros([2], DType::F32, Device::Cuda(0)).unwrap_err().to_string();
    assert!(e.contains("cuda:0"), "{e}");
}

#[test]
fn tensors_move_between_devices_explicitly() {
    let dev = arena::device(2);
    arena::reset(2);
    let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0], [3], Device::Cpu).unwrap().with_requires_grad(true).unwrap();
    let on_arena = x.to(dev).unwrap();
    assert_eq!(on_arena.device(), dev);
    // Mixing devices in one op is an error that names both.
    let e = on_arena.add(&x).unwrap_err().to_string();
    assert!(e.contains("custom:2") && e.contains("cpu") && e.contains(".to(device)"), "{e}");
    // The move is differentiable: the gradient comes back to the CPU.
    let loss = on_arena.square().unwrap().sum_all().unwrap();
    let g = loss.backward().unwrap();
    let dx = g.get(&x).expect("gradient flows back through the move");
    assert_eq!(dx.device(), Device::Cpu);
    assert_eq!(dx.to_vec::<f32>().unwrap(), vec![2.0, -4.0, 6.0]);
    // Printing a device tensor copies it to the host once.
    let before = arena::transfers(2).downloads;
    assert_eq!(on_arena.detach().to_string(), "tensor([ 1., -2.,  3.], shape=[3], dtype=float32, device=custom:2)");
    assert_eq!(arena::transfers(2).downloads, before + 1);
}

#[test]
fn misuse_of_the_registry_and_of_host_kernels_is_a_clear_error() {
    use fovea_core::backend::register_backend;
    use fovea_core::ops::unary::UnaryOp;
    use fovea_core::DeviceKind;
    let e = register_backend(DeviceKind::Cpu, |_| Err("never made".into())).unwrap_err().to_string();
    assert!(e.contains("built in and cannot be replaced"), "{e}");
    // A host kernel handed another backend's buffer refuses it instead of reading garbage.
    let on_arena = Tensor::zeros([3], DType::F32, arena::device(3)).unwrap();
    let e = backend(Device::Cpu).unwrap().unary(UnaryOp::Relu, on_arena.storage()).expect_err("a device buffer is not host data");
    let msg = e.to_string();
    assert!(msg.contains("device buffer (3 float32 elements)") && msg.contains(".to(device)"), "{msg}");
    assert!(on_arena.host_slice::<f32>().is_err(), "borrowing host data of a device tensor is an error");
}
