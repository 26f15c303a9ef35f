//! Writes the ONNX export fixtures that `tools/check_onnx_export.py` checks against
//! onnxruntime: for every zoo model at its canonical input size, and for small models that
//! exercise each exported layer (transposed convolutions with output padding, GELU and the
//! other activations, dilated, grouped, depthwise and separable convolutions, bilinear
//! upsampling, padding, cropping, merges), `NAME.onnx`, the input `NAME.input.npy` and Fovea's
//! outputs `NAME.output{i}.npy`.
//!
//! ```text
//! cargo run -p fovea --example onnx_fixture -- DIR [--small] [--keras KERAS_DIR] [NAME ...]
//! ```
//! `--small` leaves out the zoo; names pick models (default: all). `--keras KERAS_DIR` also
//! imports every `NAME.keras` there (from `tools/fixtures/gen_keras_onnx_models.py`, with its
//! `NAME.input.npy` and Keras's outputs `NAME.keras{i}.npy`), exports it, and copies Keras's
//! outputs beside Fovea's so the check compares onnxruntime with Keras too. Weights are the seeded
//! initializers with the batch-norm statistics, biases and scales set to fixed non-trivial
//! values, so the export of every weight is checked, not only of the defaults' zeros and ones.

use fovea::core::ops::padding::Padding;
use fovea::core::{set_seed, Device, Tensor};
use fovea::nn::activations::Activation as Act;
use fovea::nn::export::onnx::export_onnx;
use fovea::nn::layer::Layer;
use fovea::nn::layers::*;
use fovea::nn::model::functional::{Connect, Functional, Input, Node};
use fovea::nn::model::Sequential;
use fovea::vision::applications::{self, build_by_name, AppOptions, MODEL_NAMES};
use std::path::{Path, PathBuf};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A fixed pseudo-random sequence (xorshift), so fixtures do not depend on a random crate.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }

    fn values(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| lo + (hi - lo) * self.uniform()).collect()
    }
}

/// Sets batch-norm statistics, biases, scales and PReLU slopes to fixed values away from
/// their initial zeros and ones.
fn perturb(model: &dyn Layer, rng: &mut Rng) -> AnyResult<()> {
    for v in model.weights() {
        let name = v.name().to_string();
        let range = if name.ends_with("moving_variance") || name.ends_with("gamma") {
            (0.5, 1.5)
        } else if name.ends_with("moving_mean") || name.ends_with("beta") || name.ends_with("bias") || name.ends_with("alpha") {
            (-0.2, 0.2)
        } else {
            continue;
        };
        let t = v.value();
        v.assign(&Tensor::from_vec(rng.values(t.numel(), range.0, range.1), t.dims().to_vec(), Device::Cpu)?)?;
    }
    Ok(())
}

enum Net {
    Seq(Sequential),
    Fun(Functional),
}

impl Net {
    fn layer(&self) -> &dyn Layer {
        match self {
            Net::Seq(m) => m,
            Net::Fun(m) => m,
        }
    }

    fn input_dims(&self) -> Vec<usize> {
        let spec = match self {
            Net::Seq(m) => m.input_shape().unwrap_or_default(),
            Net::Fun(m) => m.inputs()[0].shape().clone(),
        };
        spec.iter().skip(1).map(|d| d.unwrap_or(1)).collect()
    }

    fn run(&self, x: &Tensor) -> AnyResult<Vec<Tensor>> {
        Ok(match self {
            Net::Seq(m) => vec![m.call(std::slice::from_ref(x), false)?],
            Net::Fun(m) => m.call_all(std::slice::from_ref(x), false)?,
        })
    }

    fn export(&self, path: &Path) -> AnyResult<()> {
        match self {
            Net::Seq(m) => export_onnx(m, path)?,
            Net::Fun(m) => export_onnx(m, path)?,
        }
        Ok(())
    }
}

fn zoo(name: &str) -> AnyResult<Net> {
    Ok(match name {
        "lenet5" => Net::Seq(applications::lenet5((28, 28, 1), 10)?),
        "lenet_like" => Net::Seq(applications::lenet_like((28, 28, 1), 10)?),
        "fashion_cnn" => Net::Seq(applications::fashion_mnist_cnn((28, 28, 1), 10)?),
        "resnet34_geron" => Net::Seq(applications::resnet34_geron((224, 224, 3), 10)?),
        // Segmentation: per-pixel logits. (FCN's VGG trunk, 134M parameters, would add half a
        // gigabyte to CI for layers the other models already cover.)
        // SegNet is not here: its unpooling scatters to each window's argmax, recomputed from
        // features that two runtimes compute with different rounding, so a near tie can pick
        // another position. `max_unpool` below checks the mapping on features both read as is.
        "unet_small" => Net::Fun(applications::unet_small((128, 128, 1), 11)?),
        _ => {
            let classes = if matches!(name, "resnet20" | "resnet32" | "resnet56") { 10 } else { 1000 };
            // Logits rather than the softmax: at random weights a 1,000-way softmax is nearly
            // uniform (≈ 1e-3 everywhere) and would hide differences of the network itself.
            Net::Fun(build_by_name(name, &AppOptions { classes, classifier_activation: None, ..AppOptions::default() })?)
        }
    })
}

/// filters, kernel, strides, padding, output padding, dilation
type TransposeCase = (usize, (usize, usize), (usize, usize), Padding, Option<(usize, usize)>, (usize, usize));

/// Transposed convolutions: TF `same`/`valid`, output padding, even kernels, dilation and
/// strides that differ per axis, side by side as outputs of one model.
fn conv_transpose() -> AnyResult<Net> {
    let x = Input::named(&[7, 9, 3], "image");
    let mut outs = Vec::new();
    let cases: [TransposeCase; 6] = [
        (4, (3, 3), (2, 2), Padding::Same, Some((1, 1)), (1, 1)),
        (5, (4, 4), (2, 2), Padding::Same, None, (1, 1)),
        (3, (3, 3), (2, 2), Padding::Valid, Some((1, 0)), (1, 1)),
        (2, (5, 3), (3, 2), Padding::Same, Some((2, 1)), (1, 1)),
        (3, (3, 3), (1, 1), Padding::Valid, None, (2, 2)),
        (4, (2, 3), (2, 3), Padding::Same, Some((1, 2)), (1, 1)),
    ];
    for (filters, k, s, p, op, d) in cases {
        let mut l = Conv2DTranspose::new(filters, k).strides(s).padding(p).dilation_rate(d);
        if let Some(op) = op {
            l = l.output_padding(op);
        }
        outs.push(l.on(&x)?);
    }
    let refs: Vec<&Node> = outs.iter().collect();
    Ok(Net::Fun(Functional::new(&[&x], &refs)?))
}

/// Every activation, by name and as layers.
fn activations() -> AnyResult<Net> {
    let x = Input::named(&[5, 6, 4], "image");
    let h = Conv2D::new(6, (3, 3)).padding(Padding::Same).activation(Act::Gelu).on(&x)?;
    let mut outs = vec![h.clone()];
    for name in [
        "relu",
        "relu6",
        "sigmoid",
        "tanh",
        "elu",
        "selu",
        "softplus",
        "softsign",
        "gelu",
        "hard_sigmoid",
        "swish",
        "leaky_relu",
        "exponential",
        "softmax",
        "log_softmax",
    ] {
        outs.push(Activation::new(Act::from_name(name)?).on(&h)?);
    }
    outs.push(ReLU::with_max_value(0.5).on(&h)?);
    outs.push(LeakyReLU::new(0.1).on(&h)?);
    outs.push(ELU::new(0.7).on(&h)?);
    outs.push(PReLU::new().on(&h)?);
    outs.push(Softmax::new(-1).on(&h)?);
    let f = Flatten::new().on(&h)?;
    outs.push(Dense::new(7).activation(Act::Gelu).on(&f)?);
    let refs: Vec<&Node> = outs.iter().collect();
    Ok(Net::Fun(Functional::new(&[&x], &refs)?))
}

/// Dilated, grouped, depthwise and separable convolutions, pooling with TF `same` padding on
/// odd sizes, batch norm, LRN, layer norm, padding, cropping, upsampling, merges and reshapes.
fn layers_mix() -> AnyResult<Net> {
    let x = Input::named(&[11, 13, 4], "image");
    let a = Conv2D::new(8, (3, 3)).padding(Padding::Same).dilation_rate((2, 2)).on(&x)?;
    let a = BatchNormalization::new().on(&a)?;
    let b = Conv2D::new(8, (3, 3)).padding(Padding::Same).groups(2).activation(Act::Relu).on(&x)?;
    let c = SeparableConv2D::new(8, (3, 3)).depth_multiplier(2).padding(Padding::Same).on(&x)?;
    let d = DepthwiseConv2D::new((3, 3), 2).padding(Padding::Same).on(&x)?;
    let sum = Add::new().on_many(&[&a, &b, &c])?;
    let diff = Subtract::new().on_many(&[&sum, &d])?;
    let m = Multiply::new().on_many(&[&diff, &a])?;
    let avg = Average::new().on_many(&[&m, &b])?;
    let mx = Maximum::new().on_many(&[&avg, &c])?;
    let mn = Minimum::new().on_many(&[&mx, &d])?;
    let cat = Concatenate::new(-1).on_many(&[&mn, &a])?;
    let lrn = LocalResponseNormalization::new(2, 1.0, 1e-2, 0.75).on(&cat)?;
    let pool = MaxPooling2D::new((3, 3)).strides((2, 2)).padding(Padding::Same).on(&lrn)?;
    let apool = AveragePooling2D::new((3, 3)).strides((2, 2)).padding(Padding::Same).on(&lrn)?;
    let pad = ZeroPadding2D::new((1, 2), (0, 1)).on(&apool)?;
    let crop = Cropping2D::new((1, 0), (2, 1)).on(&pad)?;
    let up_bilinear = UpSampling2D::bilinear((2, 3)).on(&crop)?;
    let up_nearest = UpSampling2D::new((2, 2)).on(&pool)?;
    let strided = DepthwiseConv2D::new((3, 3), 1).strides((2, 2)).padding(Padding::Same).on(&lrn)?;
    let gmax = GlobalMaxPooling2D::new().on(&up_bilinear)?;
    let gavg = GlobalAveragePooling2D::new().keepdims(true).on(&up_nearest)?;
    let r = Reshape::new(&[-1, 4]).on(&gmax)?;
    let perm = Permute::new(&[2, 1]).on(&r)?;
    let ln = LayerNormalization::new().on(&perm)?;
    let drop = Dropout::new(0.5).on(&ln)?;
    let flat = Flatten::new().on(&strided)?;
    let bn1 = BatchNormalization::new().on(&flat)?;
    let dense = Dense::new(10).activation(Act::Softmax).on(&bn1)?;
    Ok(Net::Fun(Functional::new(&[&x], &[&drop, &gavg, &dense, &up_bilinear])?))
}

/// Keras preprocessing layers in front of a convolution: per-channel rescaling, adapted and
/// given normalization statistics, and a random flip (the identity at inference).
fn preprocessing() -> AnyResult<Net> {
    use fovea::vision::preprocessing::{CenterCrop, Normalization, RandomFlip, Rescaling, Resizing};
    let x = Input::named(&[6, 7, 3], "image");
    let h = Rescaling::per_channel(vec![0.5f32, 2.0, -1.0], 0.25f32)?.on(&x)?;
    let adapted = Normalization::new(&[-1]);
    let sample = Tensor::from_vec(Rng(3).values(4 * 6 * 7 * 3, -2.0, 3.0), [4, 6, 7, 3], Device::Cpu)?;
    adapted.adapt(&sample)?;
    let h = adapted.on(&h)?;
    let h = RandomFlip::new("horizontal")?.on(&h)?;
    let h = Conv2D::new(4, (3, 3)).padding(Padding::Same).on(&h)?;
    let y = Normalization::new(&[-1]).with_stats(&[0.1, -0.2, 0.3, 0.0], &[1.5, 0.5, 2.0, 1.0])?.on(&h)?;
    let crop = CenterCrop::new(3, 4)?.on(&y)?;
    let up = Resizing::new(11, 9)?.on(&y)?;
    let down = Resizing::new(4, 5)?.on(&y)?;
    let nearest = Resizing::new(13, 10)?.interpolation("nearest")?.on(&y)?;
    // Conv1D over the rows of a feature map: [N, 6·7, 4] sequences.
    let seq = Reshape::new(&[42, 4]).on(&y)?;
    let c1 = Conv1D::new(5, 3).padding(Padding::Same).dilation_rate((1, 2)).activation(Act::Tanh).on(&seq)?;
    let c2 = Conv1D::new(3, 4).strides((1, 3)).on(&seq)?;
    Ok(Net::Fun(Functional::new(&[&x], &[&y, &crop, &up, &down, &nearest, &c1, &c2])?))
}

/// Transfer learning's shape: a functional base nested in a Sequential, itself nested in a
/// functional model.
fn nested() -> AnyResult<Net> {
    let x = Input::named(&[9, 9, 3], "base_input");
    let h = Conv2D::new(6, (3, 3)).strides((2, 2)).padding(Padding::Same).activation(Act::Relu).on(&x)?;
    let h = BatchNormalization::new().on(&h)?;
    let base = Functional::new(&[&x], &[&h])?;
    let seq = Sequential::with_input_shape(&[9, 9, 3]);
    seq.add(base)?;
    seq.add(GlobalAveragePooling2D::new())?;
    seq.add(Dense::new(4).activation(Act::Softmax))?;
    seq.build_for(&[9, 9, 3])?;
    let outer_in = Input::named(&[9, 9, 3], "image");
    let y = seq.on(&outer_in)?;
    Ok(Net::Fun(Functional::new(&[&outer_in], &[&y])?))
}

/// SegNet's unpooling on features that are the model's input itself (exactly the same numbers
/// in both runtimes, so the same argmax), odd sizes included (the pooling floors 9 to 4).
fn max_unpool() -> AnyResult<Net> {
    let x = Input::named(&[9, 8, 3], "image");
    let pooled = MaxPooling2D::new((2, 2)).on(&x)?;
    let decoded = Conv2D::new(3, (3, 3)).padding(Padding::Same).on(&pooled)?;
    let up = fovea::vision::segmentation::unpool::MaxUnpooling2D::new((2, 2)).on_many(&[&decoded, &x])?;
    let y = Conv2D::new(4, (3, 3)).padding(Padding::Same).on(&up)?;
    Ok(Net::Fun(Functional::new(&[&x], &[&y])?))
}

const SMALL: &[&str] = &["conv_transpose", "activations", "layers_mix", "preprocessing", "nested", "max_unpool"];

fn small(name: &str) -> AnyResult<Net> {
    match name {
        "max_unpool" => max_unpool(),
        "conv_transpose" => conv_transpose(),
        "activations" => activations(),
        "preprocessing" => preprocessing(),
        "nested" => nested(),
        _ => layers_mix(),
    }
}

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().ok_or("usage: onnx_fixture DIR [--small] [NAME ...]")?);
    let only_small = args.iter().any(|a| a == "--small");
    let keras_dir = args.iter().position(|a| a == "--keras").map(|i| args.get(i + 1).ok_or("--keras needs a folder")).transpose()?;
    let picked: Vec<&String> =
        args.iter().enumerate().skip(1).filter(|(_, a)| !a.starts_with("--") && Some(*a) != keras_dir).map(|(_, a)| a).collect();
    std::fs::create_dir_all(&dir)?;
    let zoo_names: Vec<&str> = ["lenet5", "lenet_like", "fashion_cnn", "resnet34_geron"]
        .into_iter()
        .chain(MODEL_NAMES.iter().copied())
        .chain(["unet_small"])
        .collect();
    let mut names: Vec<(&str, bool)> = SMALL.iter().map(|n| (*n, true)).collect();
    if !only_small {
        names.extend(zoo_names.iter().map(|n| (*n, false)));
    }
    for (name, is_small) in names {
        if !picked.is_empty() && !picked.iter().any(|p| p.as_str() == name) {
            continue;
        }
        let started = std::time::Instant::now();
        set_seed(7);
        let net = if is_small { small(name)? } else { zoo(name)? };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        perturb(net.layer(), &mut rng)?;
        let mut dims = vec![2];
        dims.extend(net.input_dims());
        let n: usize = dims.iter().product();
        let x = Tensor::from_vec(rng.values(n, -1.0, 1.0), dims, Device::Cpu)?;
        let outputs = net.run(&x)?;
        net.export(&dir.join(format!("{name}.onnx")))?;
        fovea::data::npy::write_npy(dir.join(format!("{name}.input.npy")), &x)?;
        for (i, y) in outputs.iter().enumerate() {
            fovea::data::npy::write_npy(dir.join(format!("{name}.output{i}.npy")), y)?;
        }
        println!("{name}: {} output(s), {:.1} s", outputs.len(), started.elapsed().as_secs_f64());
    }
    if let Some(kdir) = keras_dir {
        keras_models(Path::new(kdir), &dir)?;
    }
    Ok(())
}

/// Imports, runs and exports every Keras model of `kdir` (see the module docs).
fn keras_models(kdir: &Path, dir: &Path) -> AnyResult<()> {
    use fovea::nn::import::keras_config::{load_keras_model, KerasModel};
    let mut files: Vec<PathBuf> = std::fs::read_dir(kdir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.sort();
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "keras")) {
        let name = path.file_stem().and_then(|s| s.to_str()).ok_or("a non-UTF-8 file name")?;
        let net = match load_keras_model(path)? {
            KerasModel::Sequential(m) => Net::Seq(m),
            KerasModel::Functional(m) => Net::Fun(m),
        };
        let x = fovea::data::npy::read_npy(kdir.join(format!("{name}.input.npy")), Device::Cpu)?;
        let outputs = net.run(&x)?;
        net.export(&dir.join(format!("{name}.onnx")))?;
        fovea::data::npy::write_npy(dir.join(format!("{name}.input.npy")), &x)?;
        for (i, y) in outputs.iter().enumerate() {
            fovea::data::npy::write_npy(dir.join(format!("{name}.output{i}.npy")), y)?;
            std::fs::copy(kdir.join(format!("{name}.keras{i}.npy")), dir.join(format!("{name}.keras{i}.npy")))?;
        }
        println!("{name} (Keras): {} output(s)", outputs.len());
    }
    Ok(())
}
