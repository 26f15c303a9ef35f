//! Generative models: the reparameterization and KL terms against finite differences and
//! closed forms, VAE / autoencoder training through their own train steps, and GAN steps
//! (which networks move, WGAN clipping, conditional labels, shape checks).

use fovea_core::testing::{gradcheck, rand};
use fovea_core::{set_seed, DType, Device, Tensor};
use fovea_nn::activations::Activation;
use fovea_nn::layer::Layer;
use fovea_nn::layers::{Dense, Flatten, Reshape};
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use fovea_vision::generative::gan::{dense_discriminator, dense_generator};
use fovea_vision::generative::*;

const R: Device = Device::Reference;

#[test]
fn reparameterize_gradients_match_finite_differences() {
    let eps = rand(&[3, 4], -2.0, 2.0, 3, R);
    let (mu, lv) = (rand(&[3, 4], -1.0, 1.0, 1, R), rand(&[3, 4], -2.0, 1.0, 2, R));
    gradcheck(|x| Ok(reparameterize(&x[0], &x[1], &eps).unwrap()), &[mu, lv], 1e-3, 1e-3).unwrap();
}

#[test]
fn kl_and_reconstruction_gradients_match_finite_differences() {
    let (mu, lv) = (rand(&[3, 2], -1.0, 1.0, 4, R), rand(&[3, 2], -2.0, 1.0, 5, R));
    gradcheck(|x| Ok(gaussian_kl(&x[0], &x[1]).unwrap()), &[mu, lv], 1e-3, 1e-3).unwrap();
    let target = rand(&[2, 5], 0.0, 1.0, 6, R);
    gradcheck(|x| Ok(bernoulli_nll(&target, &x[0]).unwrap()), &[rand(&[2, 5], -3.0, 3.0, 7, R)], 1e-3, 1e-3).unwrap();
}

#[test]
fn kl_matches_the_closed_form_per_dimension() {
    let (mu, lv) = (vec![0.5f32, -1.0, 0.0, 2.0], vec![0.0f32, -1.0, 1.5, 0.3]);
    // KL(N(μ,σ²) ‖ N(0,1)) = ½(σ² + μ² − 1 − ln σ²) per dimension; two samples of two dims.
    let want: f64 = mu.iter().zip(&lv).map(|(&m, &l)| 0.5 * ((l as f64).exp() + (m as f64).powi(2) - 1.0 - l as f64)).sum::<f64>() / 2.0;
    let got = gaussian_kl(&Tensor::from_vec(mu, [2, 2], R).unwrap(), &Tensor::from_vec(lv, [2, 2], R).unwrap()).unwrap();
    assert!((got.to_scalar::<f32>().unwrap() as f64 - want).abs() < 1e-5, "{got:?} vs {want}");
    let e = gaussian_kl(&Tensor::zeros([2, 2], DType::F32, R).unwrap(), &Tensor::zeros([2, 3], DType::F32, R).unwrap()).unwrap_err();
    assert!(e.to_string().contains("[2, 2] and [2, 3]"), "{e}");
}

#[test]
fn sampling_draws_from_the_given_gaussian() {
    set_seed(1);
    let n = 20_000;
    let mu = Tensor::full([n, 1], 2.0, DType::F32, Device::Cpu).unwrap();
    let lv = Tensor::full([n, 1], 0.25f64.ln(), DType::F32, Device::Cpu).unwrap();
    let s = Sampling::new();
    let z = s.apply(&[mu.clone(), lv], true).unwrap().to_vec::<f32>().unwrap();
    let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let std = (z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    assert!((mean - 2.0).abs() < 0.02 && (std - 0.5).abs() < 0.02, "mean {mean}, std {std}");
    let e = s.apply(&[mu.clone(), Tensor::zeros([n, 2], DType::F32, Device::Cpu).unwrap()], true).unwrap_err();
    assert!(e.to_string().contains("one shape"), "{e}");
    assert!(s.apply(&[mu], true).unwrap_err().to_string().contains("expected two inputs"));
}

/// A few hundred MNIST-like 8×8 binary images: four stroke prototypes with flipped pixels.
fn digits(n: usize) -> (Tensor, Tensor) {
    let mut rng = fovea_core::random::Rng::new(9);
    let (mut x, mut y) = (Vec::with_capacity(n * 64), Vec::with_capacity(n));
    for i in 0..n {
        let c = i % 4;
        for p in 0..64 {
            let (r, k) = (p / 8, p % 8);
            let on = match c {
                0 => k == 3 || k == 4,
                1 => r == 3 || r == 4,
                2 => r == k,
                _ => r + k == 7,
            };
            let flip = rng.uniform() < 0.05;
            x.push(if on != flip { 1.0f32 } else { 0.0 });
        }
        y.push(c as i64);
    }
    (Tensor::from_vec(x, [n, 8, 8, 1], Device::Cpu).unwrap(), Tensor::from_vec(y, [n], Device::Cpu).unwrap())
}

fn opts(epochs: usize) -> FitOptions {
    FitOptions { epochs, batch_size: 32, verbose: 0, seed: Some(0), ..Default::default() }
}

#[test]
fn a_tiny_vae_lowers_its_negative_elbo() {
    set_seed(2);
    let (x, _) = digits(256);
    let enc = Sequential::new();
    enc.add(Flatten::new()).unwrap();
    enc.add(Dense::new(32).activation(Activation::Relu)).unwrap();
    let dec = Sequential::new();
    dec.add(Dense::new(32).activation(Activation::Relu)).unwrap();
    dec.add(Dense::new(64)).unwrap();
    dec.add(Reshape::new(&[8, 8, 1])).unwrap();
    let vae = Vae::new(enc, 2, dec, Optimizer::adam(0.01));
    let before = vae.evaluate_multi(std::slice::from_ref(&x), &[], 64).unwrap()["loss"];
    let h = vae.fit_multi(std::slice::from_ref(&x), &[], opts(8), &mut []).unwrap();
    let after = vae.evaluate_multi(std::slice::from_ref(&x), &[], 64).unwrap();
    // 64 pixels at ln 2 nats each is what predicting ½ everywhere costs.
    assert!(before > 30.0, "an untrained decoder is near chance: {before}");
    assert!(after["loss"] < 0.6 * before, "negative ELBO {before} -> {after:?}");
    assert!(after["kl_loss"] > 0.0 && h.history["kl_loss"].iter().all(|v| v.is_finite()));
    assert_eq!(vae.predict(&x, 64).unwrap().dims(), &[256, 8, 8, 1]);
}

#[test]
fn a_denoising_autoencoder_learns_to_reconstruct() {
    set_seed(3);
    let (x, _) = digits(256);
    let enc = Sequential::new();
    enc.add(Flatten::new()).unwrap();
    enc.add(Dense::new(8).activation(Activation::Relu)).unwrap();
    let dec = Sequential::new();
    dec.add(Dense::new(64)).unwrap();
    let ae = Autoencoder::new(enc, dec, Optimizer::adam(0.02)).denoising(0.3);
    let before = ae.evaluate_multi(std::slice::from_ref(&x), &[], 64).unwrap()["loss"];
    ae.fit_multi(std::slice::from_ref(&x), &[], opts(10), &mut []).unwrap();
    let after = ae.evaluate_multi(std::slice::from_ref(&x), &[], 64).unwrap()["loss"];
    assert!(after < 0.5 * before, "reconstruction loss {before} -> {after}");
}

fn values(m: &Sequential) -> Vec<Vec<f32>> {
    m.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect()
}

fn mnist_like(n: usize) -> (Tensor, Tensor) {
    let x = Tensor::random_uniform([n, 28, 28, 1], -1.0, 1.0, Some(4), Device::Cpu).unwrap();
    (x, Tensor::from_vec((0..n as i64).map(|i| i % 10).collect(), [n], Device::Cpu).unwrap())
}

#[test]
fn a_gan_step_trains_both_networks_and_a_frozen_one_stays_put() {
    set_seed(5);
    let g = dense_generator().unwrap();
    let gan = Gan::new(g, dense_discriminator(0).unwrap(), 8, None, Optimizer::adam(1e-3), Optimizer::adam(1e-3)).unwrap();
    let (x, _) = mnist_like(16);
    let (g0, d0) = (values(&gan.generator), values(&gan.discriminator));
    let h = gan.fit_multi(std::slice::from_ref(&x), &[], FitOptions { batch_size: 8, ..opts(1) }, &mut []).unwrap();
    assert!(h.history["d_loss"][0].is_finite() && h.history["g_loss"][0].is_finite());
    assert!(values(&gan.generator) != g0 && values(&gan.discriminator) != d0);
    gan.generator.set_trainable(false).unwrap();
    let (g1, d1) = (values(&gan.generator), values(&gan.discriminator));
    gan.fit_multi(std::slice::from_ref(&x), &[], FitOptions { batch_size: 8, ..opts(1) }, &mut []).unwrap();
    assert_eq!(values(&gan.generator), g1, "a frozen generator must not move");
    assert_ne!(values(&gan.discriminator), d1);
}

#[test]
fn wgan_critic_weights_stay_clipped() {
    set_seed(6);
    let gan =
        Gan::new(dense_generator().unwrap(), dense_discriminator(0).unwrap(), 8, None, Optimizer::rmsprop(5e-4), Optimizer::rmsprop(5e-4))
            .unwrap()
            .with_loss(GanLoss::Wasserstein { n_critic: 3, clip: 0.01 })
            .unwrap();
    let (x, _) = mnist_like(16);
    let d0 = values(&gan.discriminator);
    gan.fit_multi(std::slice::from_ref(&x), &[], FitOptions { batch_size: 8, ..opts(1) }, &mut []).unwrap();
    let d1 = values(&gan.discriminator);
    assert_ne!(d0, d1);
    let largest = d1.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    assert!(largest <= 0.01 + 1e-7, "critic weight {largest} beyond the clip");
    assert!(largest > 0.009, "some critic weights sit at the clip: {largest}");
    let bad = Gan::new(
        dense_generator().unwrap(),
        dense_discriminator(0).unwrap(),
        8,
        None,
        Optimizer::sgd(0.1, 0.0, false),
        Optimizer::sgd(0.1, 0.0, false),
    )
    .unwrap()
    .with_loss(GanLoss::Wasserstein { n_critic: 0, clip: 0.01 });
    assert!(bad.err().unwrap().to_string().contains("n_critic >= 1"));
}

#[test]
fn conditional_gan_checks_labels_and_generates_per_label() {
    set_seed(7);
    let gan =
        Gan::new(dense_generator().unwrap(), dense_discriminator(10).unwrap(), 8, Some(10), Optimizer::adam(1e-3), Optimizer::adam(1e-3))
            .unwrap();
    let (x, y) = mnist_like(16);
    let h = gan.fit_multi(std::slice::from_ref(&x), std::slice::from_ref(&y), FitOptions { batch_size: 8, ..opts(1) }, &mut []).unwrap();
    assert!(h.history["g_loss"][0].is_finite());
    assert_eq!(gan.generate(3, Some(&[7, 0, 9])).unwrap().dims(), &[3, 28, 28, 1]);
    let e = gan.generate(1, Some(&[10])).unwrap_err().to_string();
    assert!(e.contains("label 10 is out of range for a conditional model with 10 classes"), "{e}");
    let bad_y = y.add_scalar(5.0).unwrap_or_else(|_| y.cast(DType::F32).unwrap().add_scalar(5.0).unwrap());
    let e = gan.fit_multi(std::slice::from_ref(&x), &[bad_y], opts(1), &mut []).unwrap_err().to_string();
    assert!(e.contains("out of range"), "{e}");
    assert!(gan.generate(2, None).unwrap_err().to_string().contains("needs one label per sample"));
}

#[test]
fn a_generator_that_does_not_fit_the_discriminator_is_refused() {
    let d = Sequential::with_input_shape(&[32, 32, 1]);
    d.add(Flatten::new()).unwrap();
    d.add(Dense::new(1)).unwrap();
    let e = Gan::new(dense_generator().unwrap(), d, 8, None, Optimizer::adam(1e-3), Optimizer::adam(1e-3)).err().unwrap().to_string();
    assert!(e.contains("generator's output (None, 28, 28, 1) does not match the discriminator's input (None, 32, 32, 1)"), "{e}");
    let e =
        Gan::new(dense_generator().unwrap(), dense_discriminator(0).unwrap(), 8, Some(10), Optimizer::adam(1e-3), Optimizer::adam(1e-3))
            .err()
            .unwrap()
            .to_string();
    assert!(e.contains("with 10 label channels: (None, 28, 28, 11)"), "{e}");
}

mod frechet {
    use super::*;
    use fovea_vision::generative::fid::*;

    fn fixture() -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/frechet.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn floats(v: &serde_json::Value) -> Vec<f64> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
    }

    fn features(v: &serde_json::Value) -> Tensor {
        let x: Vec<f32> = floats(v).into_iter().map(|f| f as f32).collect();
        let n = x.len() / 6;
        Tensor::from_vec(x, [n, 6], Device::Cpu).unwrap()
    }

    #[test]
    fn the_square_root_matches_numpy_and_squares_back() {
        let f = fixture();
        let (a, want) = (floats(&f["sqrtm_in"]), floats(&f["sqrtm_out"]));
        let got = sqrtm_psd(&a, 5).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
        }
        for i in 0..5 {
            for j in 0..5 {
                let sq: f64 = (0..5).map(|k| got[i * 5 + k] * got[k * 5 + j]).sum();
                assert!((sq - a[i * 5 + j]).abs() < 1e-9, "root² [{i}][{j}] = {sq}, want {}", a[i * 5 + j]);
            }
        }
        let e = sqrtm_psd(&[1.0, 2.0, 0.0, 1.0], 2).unwrap_err().to_string();
        assert!(e.contains("not symmetric: a[1][0] = 0 but a[0][1] = 2"), "{e}");
        assert!(sqrtm_psd(&[1.0; 5], 2).unwrap_err().to_string().contains("expected 2×2 = 4 values, got 5"));
    }

    #[test]
    fn statistics_and_distances_match_numpy() {
        let f = fixture();
        let (a, b, c) = (features(&f["a"]), features(&f["b"]), features(&f["c"]));
        let sa = FeatureStats::of(&a).unwrap();
        for (g, w) in sa.mean.iter().zip(floats(&f["a_mean"])).chain(sa.cov.iter().zip(floats(&f["a_cov"]))) {
            assert!((g - w).abs() < 1e-9 * (1.0 + w.abs()), "{g} vs {w}");
        }
        let cases = [(&b, "fid_ab"), (&a, "fid_aa"), (&c, "fid_ac")];
        for (other, key) in cases {
            let got = frechet_distance(&sa, &FeatureStats::of(other).unwrap()).unwrap();
            let want = f[key].as_f64().unwrap();
            assert!((got - want).abs() < 1e-7 * (1.0 + want.abs()), "{key}: {got} vs numpy {want}");
        }
        let e = FeatureStats::of(&Tensor::zeros([1, 6], DType::F32, Device::Cpu).unwrap()).unwrap_err().to_string();
        assert!(e.contains("N >= 2, got shape [1, 6]"), "{e}");
    }

    #[test]
    fn coverage_counts_only_confident_predictions() {
        let p = Tensor::from_vec(vec![0.95f32, 0.05, 0.0, 0.6, 0.4, 0.0, 0.0, 0.99, 0.01, 0.92, 0.08, 0.0], [4, 3], Device::Cpu).unwrap();
        let (shares, confident) = class_coverage(&p, 0.9).unwrap();
        assert_eq!(shares, vec![2.0 / 3.0, 1.0 / 3.0, 0.0]);
        assert_eq!(confident, 0.75);
    }
}

mod second_order {
    use super::*;
    use fovea_core::ops::conv::Conv2dOptions;
    use fovea_core::{enable_grad, grad_with_graph};

    /// `Σ (∇ₓ f(x, w))²` for a fixed `x`: a gradient penalty's shape, differentiable in `w`.
    fn penalty(x: &Tensor, f: impl Fn(&Tensor) -> fovea_core::Result<Tensor>) -> fovea_core::Result<Tensor> {
        enable_grad(|| {
            let x = x.detach().with_requires_grad(true)?;
            let g = grad_with_graph(&f(&x)?, &[&x])?.remove(0).expect("connected");
            g.mul(&g)?.sum_all()
        })
    }

    #[test]
    fn a_dense_critic_penalty_matches_finite_differences() {
        let x = rand(&[3, 4], -1.0, 1.0, 8, R);
        let (w1, w2) = (rand(&[4, 5], -1.0, 1.0, 9, R), rand(&[5, 1], -1.0, 1.0, 10, R));
        gradcheck(|w| penalty(&x, |x| x.matmul(&w[0])?.leaky_relu(0.2)?.matmul(&w[1])?.tanh()?.sum_all()), &[w1, w2], 1e-3, 2e-3).unwrap();
    }

    #[test]
    fn a_conv_critic_penalty_matches_finite_differences() {
        let x = rand(&[2, 5, 5, 2], -1.0, 1.0, 11, R);
        let (w, v) = (rand(&[3, 3, 2, 3], -0.5, 0.5, 12, R), rand(&[2, 2, 2, 3], -1.0, 1.0, 13, R));
        let opts = Conv2dOptions { strides: (2, 2), ..Default::default() };
        gradcheck(|w| penalty(&x, |x| x.conv2d(&w[0], &opts)?.leaky_relu(0.2)?.mul(&v)?.sum_all()), &[w], 1e-3, 2e-3).unwrap();
    }

    #[test]
    fn second_derivatives_of_smooth_unary_ops_match_finite_differences() {
        // ∇ₓ of Σ f(x) is f'(x); its gradient is the Hessian's diagonal f''(x).
        let x = rand(&[2, 3], 0.5, 2.0, 14, R);
        let f = |x: &Tensor| -> fovea_core::Result<Tensor> {
            x.sigmoid()?.add(&x.exp()?.mul_scalar(0.3)?)?.add(&x.sqrt()?)?.add(&x.square()?.mul_scalar(0.5)?)?.add(&x.tanh()?)?.sum_all()
        };
        let hessian_diag = |xs: &[Tensor]| {
            enable_grad(|| {
                // Finite differences pass plain tensors: make them leaves to differentiate.
                let x = if xs[0].requires_grad() { xs[0].clone() } else { xs[0].with_requires_grad(true)? };
                Ok(grad_with_graph(&f(&x)?, &[&x])?.remove(0).expect("connected"))
            })
        };
        gradcheck(hessian_diag, &[x], 1e-3, 2e-3).unwrap();
    }

    #[test]
    fn an_op_without_a_second_derivative_is_named() {
        let x = rand(&[2, 3], 0.5, 1.5, 15, R).with_requires_grad(true).unwrap();
        let e = grad_with_graph(&x.prod(&[1], false).unwrap().sum_all().unwrap(), &[&x]).unwrap_err().to_string();
        assert!(e.contains("prod: no second derivative yet"), "{e}");
        let e = grad_with_graph(&x.gelu(true).unwrap().sum_all().unwrap(), &[&x])
            .and_then(|g| g[0].clone().unwrap().sum_all()?.backward().map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("gelu (tanh approximation): no second derivative yet"), "{e}");
    }

    #[test]
    fn a_wgan_gp_step_trains_the_critic_through_its_gradient_penalty() {
        set_seed(9);
        let gp =
            Gan::new(dense_generator().unwrap(), dense_discriminator(0).unwrap(), 8, None, Optimizer::adam(1e-4), Optimizer::adam(1e-4))
                .unwrap()
                .with_loss(GanLoss::WassersteinGp { n_critic: 2, gp_weight: 10.0 })
                .unwrap();
        let (x, _) = mnist_like(8);
        let fake = gp.generate(8, None).unwrap();
        let penalty = gp.gradient_penalty(&x, &fake, None).unwrap();
        assert!(penalty.requires_grad() && penalty.to_scalar::<f32>().unwrap() > 0.0);
        // The penalty alone moves the critic: its gradient reaches the critic's kernels.
        let grads = penalty.backward().unwrap();
        let kernel = gp.discriminator.weights()[0].value();
        assert!(grads.get(&kernel).is_some_and(|g| g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0));
        let h = gp.fit_multi(std::slice::from_ref(&x), &[], FitOptions { batch_size: 4, ..opts(1) }, &mut []).unwrap();
        assert!(h.history["d_loss"][0].is_finite());
    }
}
