//! Element-wise ops and reductions against TensorFlow's values and gradients
//! (fixtures from `tools/fixtures/gen_activation_fixtures.py`).

use fovea_core::testing::assert_close;
use fovea_core::{Device, Result, Tensor};
use std::collections::HashMap;

type Fixture = HashMap<String, Tensor>;

fn load(name: &str) -> Fixture {
    fovea_core::io::load_safetensors(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR")), Device::Cpu).unwrap()
}

fn tensor(f: &Fixture, key: &str, dev: Device) -> Tensor {
    f.get(key).unwrap_or_else(|| panic!("fixture key {key} missing")).to(dev).unwrap()
}

type Op = fn(&Tensor) -> Result<Tensor>;

const OPS: &[(&str, Op)] = &[
    ("neg", Tensor::neg),
    ("abs", Tensor::abs),
    ("sign", Tensor::sign),
    ("exp", Tensor::exp),
    ("log", Tensor::log),
    ("log1p", Tensor::log1p),
    ("sqrt", Tensor::sqrt),
    ("rsqrt", Tensor::rsqrt),
    ("square", Tensor::square),
    ("reciprocal", Tensor::reciprocal),
    ("powf_2_5", |x| x.powf(2.5)),
    ("sin", Tensor::sin),
    ("cos", Tensor::cos),
    ("tanh", Tensor::tanh),
    ("sigmoid", Tensor::sigmoid),
    ("relu", Tensor::relu),
    ("relu6", Tensor::relu6),
    ("leaky_relu_0_2", |x| x.leaky_relu(0.2)),
    ("elu", |x| x.elu(1.0)),
    ("selu", Tensor::selu),
    ("softplus", Tensor::softplus),
    ("softsign", Tensor::softsign),
    ("gelu_exact", |x| x.gelu(false)),
    ("gelu_tanh", |x| x.gelu(true)),
    ("hard_sigmoid", Tensor::hard_sigmoid),
    ("swish", Tensor::swish),
    ("clip", |x| x.clip(-1.5, 2.5)),
];

fn check_elementwise(dev: Device) {
    let f = load("activations.safetensors");
    for (name, op) in OPS {
        let x = tensor(&f, &format!("{name}.x"), dev).with_requires_grad(true).unwrap();
        let y = op(&x).unwrap();
        assert_close(
            &format!("{name} on {dev}"),
            &y.to_vec::<f32>().unwrap(),
            &tensor(&f, &format!("{name}.y"), dev).to_vec::<f32>().unwrap(),
            1e-5,
            1e-6,
        );
        let dy = tensor(&f, &format!("{name}.dy"), dev);
        let g = y.backward_with(&dy).unwrap();
        let dx = g.get(&x).map(|g| g.to_vec::<f32>().unwrap()).unwrap_or_else(|| vec![0.0; x.numel()]);
        // atol 2e-6: where an activation saturates, TF's f32 formula flushes a ~1e-6 gradient to 0.
        assert_close(&format!("d{name} on {dev}"), &dx, &tensor(&f, &format!("{name}.dx"), dev).to_vec::<f32>().unwrap(), 1e-5, 2e-6);
    }
}

#[test]
fn elementwise_ops_match_tensorflow_on_reference() {
    check_elementwise(Device::Reference);
}

#[test]
fn elementwise_ops_match_tensorflow_on_cpu() {
    check_elementwise(Device::Cpu);
}

type Reduction = fn(&Tensor, &[isize]) -> Result<Tensor>;

fn check_reductions(dev: Device) {
    let f = load("activations.safetensors");
    let reductions: &[(&str, Reduction)] = &[
        ("sum", |x, a| x.sum(a, false)),
        ("mean", |x, a| x.mean(a, false)),
        ("max", |x, a| x.max(a, false)),
        ("min", |x, a| x.min(a, false)),
        ("prod", |x, a| x.prod(a, false)),
        ("variance", |x, a| x.variance(a, false)),
        ("logsumexp", |x, a| x.logsumexp(a, false)),
    ];
    for axes in [vec![0isize], vec![1], vec![2], vec![0, 2], vec![1, 2], vec![0, 1, 2]] {
        let key = axes.iter().map(|a| a.to_string()).collect::<Vec<_>>().join("_");
        for (name, op) in reductions {
            let x = tensor(&f, "reduce.x", dev).with_requires_grad(true).unwrap();
            let y = op(&x, &axes).unwrap();
            let what = format!("{name} over {axes:?} on {dev}");
            let expected = tensor(&f, &format!("reduce.{name}.{key}.y"), dev);
            assert_eq!(y.dims(), expected.dims(), "{what}");
            assert_close(&what, &y.to_vec::<f32>().unwrap(), &expected.to_vec::<f32>().unwrap(), 1e-5, 1e-6);
            let g = y.backward_with(&tensor(&f, &format!("reduce.{name}.{key}.dy"), dev)).unwrap();
            let dx = tensor(&f, &format!("reduce.{name}.{key}.dx"), dev);
            assert_close(&format!("d {what}"), &g.get(&x).unwrap().to_vec::<f32>().unwrap(), &dx.to_vec::<f32>().unwrap(), 1e-4, 1e-6);
        }
        if axes.len() == 1 {
            let x = tensor(&f, "reduce.x", dev);
            let expected = tensor(&f, &format!("reduce.argmax.{key}.y"), dev);
            assert_eq!(x.argmax(axes[0]).unwrap().to_vec::<i64>().unwrap(), expected.to_vec::<i64>().unwrap(), "argmax {axes:?}");
        }
    }
}

#[test]
fn reductions_match_tensorflow_on_reference() {
    check_reductions(Device::Reference);
}

#[test]
fn reductions_match_tensorflow_on_cpu() {
    check_reductions(Device::Cpu);
}

/// `tf.sort`, `tf.argsort(stable=True)` and `tf.math.top_k` on tensors with many ties
/// (fixtures from `tools/fixtures/gen_sort_fixtures.py`), exact.
#[test]
fn sort_argsort_and_top_k_match_tensorflow() {
    let f: serde_json::Value = serde_json::from_str(include_str!("fixtures/sort.json")).unwrap();
    let floats = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<f32>>();
    let ints = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect::<Vec<i64>>();
    let input = |c: &serde_json::Value| {
        let shape: Vec<usize> = c["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        Tensor::from_vec(floats(&c["x"]), shape, Device::Cpu).unwrap()
    };
    let cases = f["sort"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for c in cases {
        let (x, axis, desc) = (input(c), c["axis"].as_i64().unwrap() as isize, c["descending"].as_bool().unwrap());
        assert_eq!(x.sort(axis, desc).unwrap().to_vec::<f32>().unwrap(), floats(&c["values"]), "sort {axis} {desc}");
        assert_eq!(x.argsort(axis, desc).unwrap().to_vec::<i64>().unwrap(), ints(&c["indices"]), "argsort {axis} {desc}");
    }
    for c in f["top_k"].as_array().unwrap() {
        let (v, i) = input(c).top_k(c["k"].as_u64().unwrap() as usize).unwrap();
        assert_eq!(v.to_vec::<f32>().unwrap(), floats(&c["values"]));
        assert_eq!(i.to_vec::<i64>().unwrap(), ints(&c["indices"]));
    }
}
