//! Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs",
//! §3.2): a discriminator layer that lets each sample see how close it is to the rest of its
//! batch, so a generator collapsed onto a few modes is easy to tell apart from real data.

use fovea_core::{Tensor, Variable};
use fovea_nn::initializers::Initializer;
use fovea_nn::layer::{format_shape, single_input, single_shape, Layer, LayerBase, LayerRef, ShapeSpec};
use fovea_nn::model::Sequential;
use fovea_nn::{Error, Result};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

/// The minibatch-discrimination layer. For features `x` of shape `[N, A]` and a learned
/// tensor `T` (`[A, B·C]`, the `kernel`):
///
/// ```text
/// M_i      = x_i · T, read as B rows of C values       (M: [N, B, C])
/// c_b(i,j) = exp(−‖M_{i,b} − M_{j,b}‖₁)                  (an L1 distance per row b)
/// o(x_i)_b = Σ_j c_b(i, j)                              (over the whole batch, j = i included)
/// output   = concat(x, o(x))                            ([N, A + B])
/// ```
///
/// As in the paper, the sum includes `j = i` (a constant 1 per row). Composed from recorded
/// ops (matmul, broadcast differences, abs, exp, sums, concat), so it is differentiable in `x`
/// and `T`, twice included (`grad_with_graph`, for a gradient penalty). Place it on the
/// flattened features before a discriminator's last dense layer.
pub struct MinibatchDiscrimination {
    base: LayerBase,
    num_kernels: usize,
    kernel_dim: usize,
    initializer: Initializer,
    kernel: OnceLock<Variable>,
}

impl MinibatchDiscrimination {
    /// A layer with `num_kernels` (B) rows of `kernel_dim` (C) values per sample; the kernel
    /// starts as `N(0, 0.05²)` (Keras's `random_normal`).
    pub fn new(num_kernels: usize, kernel_dim: usize) -> Self {
        MinibatchDiscrimination {
            base: LayerBase::new("MinibatchDiscrimination"),
            num_kernels,
            kernel_dim,
            initializer: Initializer::RandomNormal { mean: 0.0, stddev: 0.05 },
            kernel: OnceLock::new(),
        }
    }

    /// The same layer with another kernel initializer.
    pub fn kernel_initializer(mut self, initializer: Initializer) -> Self {
        self.initializer = initializer;
        self
    }

    /// The same layer under another name.
    ///
    /// # Errors
    /// `Layer` for an empty name.
    pub fn named(self, name: &str) -> Result<Self> {
        self.base.set_name(name)?;
        Ok(self)
    }

    /// The kernel `T` (`[A, B·C]`), once built.
    pub fn kernel(&self) -> Option<Variable> {
        self.kernel.get().cloned()
    }

    fn features(&self, shape: &ShapeSpec) -> Result<usize> {
        match shape.as_slice() {
            [_, Some(a)] => Ok(*a),
            _ => Err(self.base.error(format!(
                "expected flattened features of rank 2 (batch, features) with a known feature count, got shape {} (add a Flatten before it)",
                format_shape(shape)
            ))),
        }
    }

    /// Rebuilds the layer from its [`Layer::config`] (the registry's factory).
    ///
    /// # Errors
    /// `Config` for a missing or malformed entry.
    pub fn from_config(c: &Value) -> Result<LayerRef> {
        let count = |key: &str| {
            c.get(key)
                .and_then(Value::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| Error::Config(format!("MinibatchDiscrimination config: expected a non-negative integer {key:?}, got {c}")))
        };
        let mut layer = MinibatchDiscrimination::new(count("num_kernels")?, count("kernel_dim")?);
        if let Some(init) = c.get("kernel_initializer") {
            layer.initializer = serde_json::from_value(init.clone())
                .map_err(|e| Error::Config(format!("MinibatchDiscrimination config: bad kernel_initializer {init}: {e}")))?;
        }
        Ok(Arc::new(layer))
    }
}

impl Layer for MinibatchDiscrimination {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "MinibatchDiscrimination"
    }

    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let a = self.features(single_shape(&self.base, input_shapes)?)?;
        if self.num_kernels == 0 || self.kernel_dim == 0 {
            return Err(self
                .base
                .error(format!("num_kernels and kernel_dim must be >= 1, got {} and {}", self.num_kernels, self.kernel_dim)));
        }
        let kernel = self.base.add_weight("kernel", &[a, self.num_kernels * self.kernel_dim], &self.initializer, true, None)?;
        let _ = self.kernel.set(kernel);
        Ok(())
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let shape = single_shape(&self.base, input_shapes)?;
        let a = self.features(shape)?;
        Ok(vec![shape[0], Some(a + self.num_kernels)])
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let x = single_input(&self.base, inputs)?;
        let kernel = self.kernel.get().ok_or_else(|| self.base.error("called before build"))?.value();
        let a = kernel.dims()[0];
        if x.rank() != 2 || x.dims()[1] != a {
            return Err(self.base.error(format!("expected features of shape [batch, {a}], got {}", x.shape())));
        }
        minibatch_features(x, &kernel, self.num_kernels, self.kernel_dim)
    }

    fn config(&self) -> Value {
        json!({
            "name": self.name(),
            "trainable": self.trainable(),
            "num_kernels": self.num_kernels,
            "kernel_dim": self.kernel_dim,
            "kernel_initializer": self.initializer,
        })
    }
}

/// The layer's computation for features `x` (`[N, A]`) and a kernel `T` (`[A, B·C]`):
/// `concat(x, o(x))` with `o(x_i)_b = Σ_j exp(−‖M_{i,b} − M_{j,b}‖₁)` ([`MinibatchDiscrimination`]).
///
/// # Errors
/// `Layer` (named `minibatch_discrimination`) when the shapes do not fit.
pub fn minibatch_features(x: &Tensor, kernel: &Tensor, num_kernels: usize, kernel_dim: usize) -> Result<Tensor> {
    let (b, c) = (num_kernels, kernel_dim);
    if x.rank() != 2 || kernel.rank() != 2 || kernel.dims()[0] != x.dims()[1] || kernel.dims()[1] != b * c {
        return Err(Error::layer(
            "minibatch_discrimination",
            format!("expected features [N, A] and a kernel [A, {b}·{c}], got {} and {}", x.shape(), kernel.shape()),
        ));
    }
    let n = x.dims()[0];
    let m = x.matmul(kernel)?.reshape_to([n, b, c])?;
    // ‖M_{i,b} − M_{j,b}‖₁ for every pair (i, j): [N, 1, B, C] − [1, N, B, C] → [N, N, B].
    let l1 = m.reshape_to([n, 1, b, c])?.sub(&m.reshape_to([1, n, b, c])?)?.abs()?.sum(&[-1], false)?;
    // d/dd exp(−d) = −exp(−d); d|u|/du = sign(u), 0 at u = 0, so the j = i terms stay constant.
    let closeness = l1.neg()?.exp()?.sum(&[1], false)?; // [N, B]
    Ok(Tensor::concat(&[x, &closeness], -1)?)
}

/// `discriminator` with a [`MinibatchDiscrimination`]`(num_kernels, kernel_dim)` layer inserted
/// before its last layer (the one-logit head of [`crate::generative::gan::dense_discriminator`]
/// and [`crate::generative::gan::dcgan_discriminator`], which it then reads `A + B` features):
/// the paper's place for it. Call it before training: a head already built (a model declared
/// with an input shape builds its layers as they are added) is rebuilt from its config with
/// fresh weights for its new input size.
///
/// # Errors
/// `Config` for a discriminator with fewer than 2 layers; the layers' errors.
pub fn with_minibatch_discrimination(discriminator: Sequential, num_kernels: usize, kernel_dim: usize) -> Result<Sequential> {
    if discriminator.layers().len() < 2 {
        return Err(Error::Config(format!(
            "with_minibatch_discrimination: expected a discriminator of 2 layers or more (features, then the head), got {} layers",
            discriminator.layers().len()
        )));
    }
    let head = discriminator.pop()?;
    let head =
        if head.weights().is_empty() { head } else { fovea_nn::model::registry::layer_from_config(head.class_name(), &head.config())? };
    discriminator.add(MinibatchDiscrimination::new(num_kernels, kernel_dim))?;
    discriminator.add_ref(head)?;
    Ok(discriminator)
}

// Discriminators holding the layer load from model files in any program linking fovea-vision.
fovea_nn::register_layer_class!("MinibatchDiscrimination", MinibatchDiscrimination::from_config);

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::testing::{assert_close, gradcheck, rand};
    use fovea_core::{grad_with_graph, Device};

    const R: Device = Device::Reference;

    /// The definition, element by element in f64.
    fn by_hand(x: &[f32], t: &[f32], n: usize, a: usize, b: usize, c: usize) -> Vec<f32> {
        let m: Vec<f64> = (0..n)
            .flat_map(|i| (0..b * c).map(move |k| (0..a).map(|f| x[i * a + f] as f64 * t[f * b * c + k] as f64).sum::<f64>()))
            .collect();
        let mut out = Vec::new();
        for i in 0..n {
            out.extend_from_slice(&x[i * a..(i + 1) * a]);
            for row in 0..b {
                let o: f64 = (0..n)
                    .map(|j| {
                        let d: f64 = (0..c).map(|k| (m[i * b * c + row * c + k] - m[j * b * c + row * c + k]).abs()).sum();
                        (-d).exp()
                    })
                    .sum();
                out.push(o as f32);
            }
        }
        out
    }

    #[test]
    fn outputs_follow_the_definition_and_shapes() {
        let layer = MinibatchDiscrimination::new(3, 2).named("mbd").unwrap();
        layer.to(R).unwrap();
        assert_eq!(layer.compute_output_shape(&[vec![None, Some(4)]]).unwrap(), vec![None, Some(7)]);
        let x = rand(&[5, 4], -1.0, 1.0, 1, R);
        let y = layer.apply(std::slice::from_ref(&x), true).unwrap();
        assert_eq!(y.dims(), &[5, 7]);
        let t = layer.kernel().unwrap();
        assert_eq!(t.name(), "mbd/kernel");
        assert_eq!(t.value().dims(), &[4, 6]);
        let want = by_hand(&x.to_vec::<f32>().unwrap(), &t.value().to_vec::<f32>().unwrap(), 5, 4, 3, 2);
        assert_close("minibatch features", &y.to_vec::<f32>().unwrap(), &want, 1e-5, 1e-6);
        // A batch of one sample sees only itself: each closeness is exp(0) = 1.
        let one = layer.apply(&[x.narrow(0, 0, 1).unwrap()], false).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(&one[4..], &[1.0, 1.0, 1.0]);
        // A collapsed batch (every sample equal) scores the batch size on every row.
        let same = rand(&[1, 4], -1.0, 1.0, 2, R).broadcast_to([5, 4]).unwrap();
        let y = layer.apply(&[same], false).unwrap().to_vec::<f32>().unwrap();
        assert_close("collapsed", &y[4..7], &[5.0; 3], 1e-6, 0.0);
    }

    #[test]
    fn gradients_in_the_input_and_the_kernel_match_finite_differences() {
        let (x, t) = (rand(&[4, 3], -1.0, 1.0, 3, R), rand(&[3, 6], -1.0, 1.0, 4, R));
        gradcheck(
            |v| minibatch_features(&v[0], &v[1], 2, 3).map_err(|e| fovea_core::Error::Autodiff(e.to_string())),
            &[x.clone(), t.clone()],
            1e-3,
            2e-3,
        )
        .unwrap();
        // Through the layer: the input's gradient, and the kernel receives one when training.
        let layer = MinibatchDiscrimination::new(2, 3);
        layer.to(R).unwrap();
        layer.apply(std::slice::from_ref(&x), false).unwrap();
        layer.kernel().unwrap().assign(&t).unwrap();
        gradcheck(
            |xs| layer.apply(xs, false).map_err(|e| fovea_core::Error::Autodiff(e.to_string())),
            std::slice::from_ref(&x),
            1e-3,
            2e-3,
        )
        .unwrap();
        let k = layer.kernel().unwrap().value();
        let loss = layer.apply(std::slice::from_ref(&x), true).unwrap().square().unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let want = fovea_core::grad(&minibatch_features(&x, &k, 2, 3).unwrap().square().unwrap().sum_all().unwrap(), &[&k]).unwrap();
        assert_eq!(g.get(&k).unwrap().to_vec::<f32>().unwrap(), want[0].as_ref().unwrap().to_vec::<f32>().unwrap());
    }

    #[test]
    fn a_gradient_penalty_through_the_layer_matches_finite_differences() {
        // Second derivatives: Σ(∇ₓ Σ r ⊙ mbd(x))² differentiated in x.
        let x = rand(&[3, 2], -1.0, 1.0, 5, R);
        let layer = MinibatchDiscrimination::new(2, 2);
        layer.to(R).unwrap();
        layer.apply(std::slice::from_ref(&x), false).unwrap();
        let r = rand(&[3, 4], -1.0, 1.0, 6, R);
        let first = |xs: &[Tensor]| {
            fovea_core::enable_grad(|| {
                let x = if xs[0].requires_grad() { xs[0].clone() } else { xs[0].with_requires_grad(true)? };
                let y = layer.apply(std::slice::from_ref(&x), false).map_err(|e| fovea_core::Error::Autodiff(e.to_string()))?;
                Ok(grad_with_graph(&y.tanh()?.mul(&r)?.sum_all()?, &[&x])?.remove(0).expect("connected"))
            })
        };
        gradcheck(first, &[x], 1e-3, 3e-3).unwrap();
    }

    #[test]
    fn a_conditional_wgan_gp_critic_holds_the_layer_and_reloads_from_its_config() {
        use crate::generative::{Gan, GanLoss};
        use fovea_nn::layers::{Dense, Flatten, LeakyReLU, Reshape};
        use fovea_nn::model::{registry::sequential_from_config, Sequential};
        use fovea_nn::optimizers::Optimizer;
        fovea_core::set_seed(3);
        let critic = Sequential::with_input_shape(&[4, 4, 3]); // one image channel + 2 label channels
        critic.add(Flatten::new()).unwrap();
        critic.add(Dense::new(6)).unwrap();
        critic.add(LeakyReLU::new(0.2)).unwrap();
        critic.add(MinibatchDiscrimination::new(3, 2)).unwrap();
        critic.add(Dense::new(1)).unwrap();
        let generator = Sequential::new();
        generator.add(Dense::new(16).activation(fovea_nn::activations::Activation::Tanh)).unwrap();
        generator.add(Reshape::new(&[4, 4, 1])).unwrap();
        let gan = Gan::new(generator, critic, 4, Some(2), Optimizer::adam(1e-3), Optimizer::adam(1e-3))
            .unwrap()
            .with_loss(GanLoss::WassersteinGp { n_critic: 1, gp_weight: 10.0 })
            .unwrap();
        let real = Tensor::random_uniform([3, 4, 4, 1], -1.0, 1.0, Some(1), Device::Cpu).unwrap();
        let one_hot = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0], [3, 2], Device::Cpu).unwrap();
        let fake = gan.generate(3, Some(&[0, 1, 1])).unwrap();
        // The penalty differentiates the critic's input gradient, through this layer, again.
        let penalty = gan.gradient_penalty(&real, &fake, Some(&one_hot)).unwrap();
        assert!(penalty.to_scalar::<f32>().unwrap().is_finite());
        let mbd = gan.discriminator.layers()[3].weights()[0].value();
        assert_eq!(mbd.dims(), &[6, 6]);
        let g = penalty.backward().unwrap();
        assert!(g.get(&mbd).is_some_and(|g| g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0));
        // A model file's config rebuilds the critic, this layer included.
        let twin = sequential_from_config(&gan.discriminator.config(), Some(&[4, 4, 3])).unwrap();
        for (a, b) in twin.weights().iter().zip(gan.discriminator.weights()) {
            a.assign(&b.value()).unwrap();
        }
        let x = Tensor::random_uniform([3, 4, 4, 3], -1.0, 1.0, Some(2), Device::Cpu).unwrap();
        assert_eq!(
            twin.apply(std::slice::from_ref(&x), false).unwrap().to_vec::<f32>().unwrap(),
            gan.discriminator.apply(&[x], false).unwrap().to_vec::<f32>().unwrap()
        );
    }

    #[test]
    fn the_gan_discriminators_take_the_layer_before_their_head_and_train() {
        use crate::generative::gan::{dcgan_discriminator, dense_discriminator, dense_generator};
        use crate::generative::Gan;
        use fovea_nn::model::training::{FitOptions, Model};
        use fovea_nn::optimizers::Optimizer;
        fovea_core::set_seed(8);
        let d = with_minibatch_discrimination(dcgan_discriminator(0).unwrap(), 8, 3).unwrap();
        let classes: Vec<&str> = d.layers().iter().map(|l| l.class_name()).collect();
        assert_eq!(classes[classes.len() - 3..], ["Flatten", "MinibatchDiscrimination", "Dense"]);
        d.build_for(&[28, 28, 1]).unwrap();
        // Flatten gives 7·7·128 features, the layer 8 more.
        assert_eq!(d.layers()[d.layers().len() - 1].weights()[0].value().dims(), &[7 * 7 * 128 + 8, 1]);
        let gan = Gan::new(
            dense_generator().unwrap(),
            with_minibatch_discrimination(dense_discriminator(0).unwrap(), 4, 3).unwrap(),
            8,
            None,
            Optimizer::adam(1e-3),
            Optimizer::adam(1e-3),
        )
        .unwrap();
        let t = gan.discriminator.layers()[3].weights()[0].value().to_vec::<f32>().unwrap();
        let x = Tensor::random_uniform([8, 28, 28, 1], -1.0, 1.0, Some(4), Device::Cpu).unwrap();
        let opts = FitOptions { epochs: 1, batch_size: 4, verbose: 0, seed: Some(0), ..Default::default() };
        let h = gan.fit_multi(std::slice::from_ref(&x), &[], opts, &mut []).unwrap();
        assert!(h.history["d_loss"][0].is_finite());
        assert_ne!(gan.discriminator.layers()[3].weights()[0].value().to_vec::<f32>().unwrap(), t, "the layer's kernel trains");
        // On a built discriminator the head is rebuilt for its wider input.
        let twice = with_minibatch_discrimination(d, 2, 2).unwrap();
        twice.build_for(&[28, 28, 1]).unwrap();
        let head = twice.layers().last().unwrap().clone();
        assert_eq!(head.weights()[0].value().dims(), &[7 * 7 * 128 + 8 + 2, 1]);
        assert_eq!(twice.layers().iter().filter(|l| l.class_name() == "MinibatchDiscrimination").count(), 2);
        let one = Sequential::new();
        one.add(fovea_nn::layers::Dense::new(1)).unwrap();
        let e = with_minibatch_discrimination(one, 2, 2).err().unwrap().to_string();
        assert!(e.contains("2 layers or more (features, then the head), got 1 layers"), "{e}");
    }

    #[test]
    fn bad_shapes_and_sizes_are_named_errors() {
        let layer = MinibatchDiscrimination::new(2, 2).named("mbd").unwrap();
        layer.to(R).unwrap();
        let e = layer.apply(&[rand(&[2, 3, 3], 0.0, 1.0, 7, R)], false).unwrap_err().to_string();
        assert!(e.contains("mbd: expected flattened features of rank 2") && e.contains("(None, 3, 3)"), "{e}");
        let e = MinibatchDiscrimination::new(0, 2).apply(&[rand(&[2, 3], 0.0, 1.0, 8, Device::Cpu)], false).unwrap_err().to_string();
        assert!(e.contains("num_kernels and kernel_dim must be >= 1, got 0 and 2"), "{e}");
        layer.apply(&[rand(&[2, 3], 0.0, 1.0, 9, R)], false).unwrap();
        let e = layer.apply(&[rand(&[2, 5], 0.0, 1.0, 10, R)], false).unwrap_err().to_string();
        assert!(e.contains("expected features of shape [batch, 3], got [2, 5]"), "{e}");
        let e = MinibatchDiscrimination::from_config(&json!({"num_kernels": 2})).err().unwrap().to_string();
        assert!(e.contains("\"kernel_dim\""), "{e}");
    }
}
