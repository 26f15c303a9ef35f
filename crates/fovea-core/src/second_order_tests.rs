//! Second derivatives through `grad_with_graph` for the ops a convolutional or conditional
//! WGAN-GP critic meets: softmax, concat and slices, transposes, pooling, batch norm and the
//! fused epilogues, transposed and depthwise convolutions. Each test checks the gradient of a
//! scalar function of the first gradient against central finite differences (`gradcheck` on
//! the map `inputs → ∇₀ f(inputs)`, so mixed second derivatives in every input are checked).

use crate::ops::conv::Conv2dOptions;
use crate::ops::conv_transpose::Conv2dTransposeOptions;
use crate::ops::pad::PadMode;
use crate::ops::padding::Padding;
use crate::testing::{assert_tensor_close, gradcheck, rand};
use crate::{enable_grad, grad, grad_with_graph, Device, Result, Tensor};

const R: Device = Device::Reference;

/// `inputs → ∇ f(inputs)` with respect to the first input, recorded so that `gradcheck` can
/// differentiate it. Finite differences pass plain tensors (inside `no_grad`): make them leaves.
fn first_gradient(f: impl Fn(&[Tensor]) -> Result<Tensor>) -> impl Fn(&[Tensor]) -> Result<Tensor> {
    move |xs| {
        enable_grad(|| {
            let xs: Vec<Tensor> =
                xs.iter().map(|t| if t.requires_grad() { Ok(t.clone()) } else { t.with_requires_grad(true) }).collect::<Result<_>>()?;
            let y = f(&xs)?;
            Ok(grad_with_graph(&y, &[&xs[0]])?.remove(0).expect("the target depends on the first input"))
        })
    }
}

/// `Σ w ⊙ tanh(t)`: a smooth, non-linear readout, so a linear op's adjoint meets a nonzero
/// second derivative on both sides.
fn readout(t: &Tensor, seed: u64) -> Result<Tensor> {
    let w = rand(t.dims(), -1.0, 1.0, seed, t.device());
    t.tanh()?.mul(&w)?.sum_all()
}

/// Distinct values 0.01 apart in a scrambled order, so no pooling window holds a near-tie
/// that a finite-difference step could flip. `numel` must be coprime with 97.
fn distinct(dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i * 97) % n) as f32 * 0.01 - n as f32 * 0.005).collect();
    Tensor::from_vec(v, dims.to_vec(), R).unwrap()
}

#[test]
fn softmax_and_log_softmax_second_derivatives() {
    let x = rand(&[3, 4], -2.0, 2.0, 1, R);
    let f = |t: &[Tensor]| {
        let w = rand(&[3, 4], -1.0, 1.0, 2, R);
        t[0].softmax(-1)?.mul(&w)?.sum_all()?.add(&t[0].log_softmax(0)?.square()?.mul(&w)?.sum_all()?)
    };
    gradcheck(first_gradient(f), &[x], 1e-3, 2e-3).unwrap();
}

#[test]
fn concat_slices_and_transposes_second_derivatives() {
    // A conditional critic's input: the image next to constant label channels, then cut.
    let (x, y) = (rand(&[2, 3, 4], -1.0, 1.0, 3, R), rand(&[2, 3, 2], -1.0, 1.0, 4, R));
    let f = |t: &[Tensor]| {
        let joined = Tensor::concat(&[&t[0], &t[1]], -1)?; // [2, 3, 6]
        let cut = joined.narrow(-1, 1, 4)?.slice(&[0, 1, 0], &[2, 2, -1])?; // [2, 2, 4]
        let strided = joined.strided_slice(&[0, -1, 5], &[2, isize::MIN, 0], &[1, -2, -2])?; // [2, 2, 3]
        let moved = cut.transpose(1, 2)?.permute(&[2, 0, 1])?; // [2, 2, 4]
        let padded = strided.pad(&[(0, 0), (1, 0), (0, 1)], PadMode::Constant(0.0))?.flip(&[1])?; // [2, 3, 4]
        readout(&moved, 5)?.add(&readout(&padded, 6)?)
    };
    gradcheck(first_gradient(f), &[x.clone(), y.clone()], 1e-3, 2e-3).unwrap();
    // The same with the second input differentiated first: its slice of the concat's adjoint.
    gradcheck(first_gradient(|t: &[Tensor]| f(&[t[1].clone(), t[0].clone()])), &[y, x], 1e-3, 2e-3).unwrap();
}

#[test]
fn reflect_pad_gather_and_reductions_second_derivatives() {
    let x = rand(&[2, 5], -1.0, 1.0, 7, R);
    let idx = Tensor::from_vec(vec![4i64, 0, 0, 2], [4], R).unwrap();
    let f = |t: &[Tensor]| {
        let reflected = t[0].pad(&[(0, 0), (2, 1)], PadMode::Reflect)?;
        let gathered = t[0].gather(&idx, 1)?;
        let extremes = t[0].max(&[1], false)?.sub(&t[0].min(&[0], false)?.sum_all()?)?;
        let picked = t[0].gt(&t[0].zeros_like())?.select(&t[0].square()?, &t[0].maximum(&t[0].mul_scalar(0.5)?)?)?;
        readout(&reflected, 8)?.add(&readout(&gathered, 9)?)?.add(&readout(&extremes, 10)?)?.add(&readout(&picked, 11)?)
    };
    gradcheck(first_gradient(f), &[x], 1e-3, 2e-3).unwrap();
}

#[test]
fn max_and_average_pooling_second_derivatives() {
    let x = distinct(&[2, 5, 5, 3]);
    for padding in [Padding::Valid, Padding::Same] {
        let f = |t: &[Tensor]| {
            let m = t[0].max_pool2d((2, 2), (2, 2), padding.clone())?;
            let a = t[0].avg_pool2d((3, 3), (2, 2), padding.clone())?;
            readout(&m.mul_scalar(3.0)?, 12)?.add(&readout(&a.mul_scalar(3.0)?, 13)?)
        };
        gradcheck(first_gradient(f), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap_or_else(|e| panic!("{padding:?}: {e}"));
    }
    // Third derivatives run through `pool2d_grad`'s own backward (the average pooling again):
    // x → ∇ₓ Σ (∇ₓ f)², checked by finite differences like the others.
    let f = |x: &Tensor| readout(&x.avg_pool2d((2, 2), (1, 1), Padding::Same)?.mul_scalar(3.0)?, 14);
    let second = |xs: &[Tensor]| {
        enable_grad(|| {
            let x = if xs[0].requires_grad() { xs[0].clone() } else { xs[0].with_requires_grad(true)? };
            let g1 = grad_with_graph(&f(&x)?, &[&x])?.remove(0).expect("connected");
            Ok(grad_with_graph(&g1.square()?.sum_all()?, &[&x])?.remove(0).expect("connected"))
        })
    };
    gradcheck(second, &[distinct(&[1, 3, 3, 2])], 1e-3, 3e-3).unwrap();
}

#[test]
fn batch_norm_second_derivatives_and_the_recorded_gradient_equals_the_fused_one() {
    let (x, gamma, beta) = (rand(&[3, 2, 2, 3], -1.5, 1.5, 15, R), rand(&[3], 0.5, 1.5, 16, R), rand(&[3], -0.5, 0.5, 17, R));
    let f = |t: &[Tensor]| readout(&t[0].batch_norm_train(Some(&t[1]), Some(&t[2]), 1e-3)?.0, 18);
    gradcheck(first_gradient(f), &[x.clone(), gamma.clone(), beta.clone()], 1e-3, 3e-3).unwrap();
    let bare = |t: &[Tensor]| readout(&t[0].batch_norm_train(None, None, 1e-3)?.0.mul_scalar(0.7)?, 19);
    gradcheck(first_gradient(bare), std::slice::from_ref(&x), 1e-3, 3e-3).unwrap();
    // The recorded first gradient is the fused kernel's, for every input, on both host backends.
    for dev in [R, Device::Cpu] {
        let leaves: Vec<Tensor> = [&x, &gamma, &beta].iter().map(|t| t.to(dev).unwrap().with_requires_grad(true).unwrap()).collect();
        let refs: Vec<&Tensor> = leaves.iter().collect();
        let f = |t: &[Tensor]| t[0].batch_norm_train(Some(&t[1]), Some(&t[2]), 1e-3).unwrap().0.tanh().unwrap().sum_all().unwrap();
        let fused = grad(&f(&leaves), &refs).unwrap();
        let recorded = enable_grad(|| grad_with_graph(&f(&leaves), &refs)).unwrap();
        for (a, b) in fused.iter().zip(&recorded) {
            assert_tensor_close(&format!("batch norm gradient on {dev:?}"), b.as_ref().unwrap(), a.as_ref().unwrap(), 1e-4, 1e-5);
        }
    }
}

#[test]
fn channel_affine_and_bias_relu_second_derivatives() {
    let (x, scale, shift) = (rand(&[2, 3, 4], -1.0, 1.0, 20, R), rand(&[4], 0.5, 1.5, 21, R), rand(&[4], -0.5, 0.5, 22, R));
    let f = |t: &[Tensor]| readout(&t[0].channel_affine(&t[1], &t[2])?, 23);
    gradcheck(first_gradient(f), &[x.clone(), scale, shift.clone()], 1e-3, 2e-3).unwrap();
    // ReLU is piecewise linear: square it so the second derivative is not 0. Inputs stay away
    // from the kink.
    let away = x.abs().unwrap().add_scalar(0.2).unwrap().mul(&Tensor::from_vec(vec![1.0f32, -1.0, 1.0, -1.0], [4], R).unwrap()).unwrap();
    let relu = |t: &[Tensor]| t[0].bias_add_relu(&t[1])?.square()?.mul(&rand(&[2, 3, 4], -1.0, 1.0, 24, R))?.sum_all();
    gradcheck(first_gradient(relu), &[away, shift.mul_scalar(0.1).unwrap()], 1e-3, 2e-3).unwrap();
}

#[test]
fn transposed_depthwise_and_separable_convolution_second_derivatives() {
    let x = rand(&[1, 3, 3, 2], -1.0, 1.0, 25, R);
    let k = rand(&[3, 3, 2, 2], -0.5, 0.5, 26, R); // [kh, kw, c_out, c_in]
    let opts = Conv2dTransposeOptions { strides: (2, 2), padding: Padding::Same, ..Default::default() };
    let f = |t: &[Tensor]| readout(&t[0].conv2d_transpose(&t[1], &opts)?, 27);
    gradcheck(first_gradient(f), &[x.clone(), k], 1e-3, 2e-3).unwrap();
    let (dw, pw) = (rand(&[2, 2, 2, 2], -0.7, 0.7, 28, R), rand(&[1, 1, 4, 3], -0.7, 0.7, 29, R));
    let conv = Conv2dOptions { padding: Padding::Same, ..Default::default() };
    let depthwise = |t: &[Tensor]| readout(&t[0].depthwise_conv2d(&t[1], &conv)?, 30);
    gradcheck(first_gradient(depthwise), &[x.clone(), dw.clone()], 1e-3, 2e-3).unwrap();
    let separable = |t: &[Tensor]| readout(&t[0].separable_conv2d(&t[1], &t[2], &conv)?, 31);
    gradcheck(first_gradient(separable), &[x, dw, pw], 1e-3, 2e-3).unwrap();
}

#[test]
fn a_conditional_dcgan_critic_penalty_matches_finite_differences() {
    // The whole path of a conditional DCGAN critic's gradient penalty: label channels
    // concatenated to the image, a strided conv, batch norm, leaky ReLU, a flatten and a dense
    // head. The penalty Σ(∇ₓ D)² is differentiated in the critic's weights.
    let x = distinct(&[2, 5, 5, 1]);
    let labels = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], [2, 1, 1, 2], R).unwrap().broadcast_to([2, 5, 5, 2]).unwrap();
    let (k, gamma, w) = (rand(&[3, 3, 3, 2], -0.5, 0.5, 32, R), rand(&[2], 0.5, 1.5, 33, R), rand(&[8, 1], -0.5, 0.5, 34, R));
    let penalty = |p: &[Tensor]| {
        enable_grad(|| {
            let x = x.with_requires_grad(true)?;
            let h = Tensor::concat(&[&x, &labels], -1)?.conv2d(&p[0], &Conv2dOptions { strides: (2, 2), ..Default::default() })?;
            let h = h.batch_norm_train(Some(&p[1]), None, 1e-3)?.0.leaky_relu(0.2)?;
            let critic = h.reshape(&[2, -1])?.matmul(&p[2])?.sum_all()?;
            let g = grad_with_graph(&critic, &[&x])?.remove(0).expect("connected");
            g.square()?.sum_all()
        })
    };
    gradcheck(penalty, &[k, gamma, w], 1e-3, 3e-3).unwrap();
}

#[test]
fn an_op_without_a_second_derivative_is_still_named() {
    let x = rand(&[2, 3], 0.5, 1.5, 35, R).with_requires_grad(true).unwrap();
    let e = grad_with_graph(&x.prod(&[1], false).unwrap().sum_all().unwrap(), &[&x]).unwrap_err().to_string();
    assert!(e.contains("prod: no second derivative yet") && e.contains("supported: add"), "{e}");
}

#[test]
fn ops_composed_from_these_inherit_second_derivatives() {
    // LRN, sort and top-k, tile and repeat, 1-D and 3-D convolutions are compositions of the
    // ops above, so grad_with_graph goes through them too.
    let x = rand(&[2, 3, 4], 0.2, 1.2, 40, R);
    let f = |t: &[Tensor]| {
        let lrn = t[0].local_response_normalization(1, 1.0, 0.5, 0.75)?;
        let sorted = t[0].sort(-1, true)?;
        let (top, _) = t[0].top_k(2)?;
        let tiled = t[0].tile(&[1, 2, 1])?.repeat(2, 0)?;
        readout(&lrn, 41)?.add(&readout(&sorted, 42)?)?.add(&readout(&top, 43)?)?.add(&readout(&tiled, 44)?)
    };
    gradcheck(first_gradient(f), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
    let (k1, k3) = (rand(&[2, 4, 3], -0.5, 0.5, 45, R), rand(&[2, 2, 2, 1, 2], -0.5, 0.5, 46, R));
    let conv1d = |t: &[Tensor]| readout(&t[0].conv1d(&t[1], 1, Padding::Same, 1, 1)?, 47);
    gradcheck(first_gradient(conv1d), &[x.clone(), k1], 1e-3, 2e-3).unwrap();
    let v = rand(&[1, 3, 3, 3, 1], -1.0, 1.0, 48, R);
    let conv3d = |t: &[Tensor]| readout(&t[0].conv3d(&t[1], (1, 1, 1), Padding::Valid, (1, 1, 1))?, 49);
    gradcheck(first_gradient(conv3d), &[v, k3], 1e-3, 2e-3).unwrap();
}
