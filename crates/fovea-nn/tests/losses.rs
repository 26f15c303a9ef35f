//! Every loss against Keras 3: the reduced value and its gradient with respect to `y_pred`
//! (fixtures from `tools/fixtures/gen_loss_fixtures.py`).

use fovea_core::{io::load_safetensors, testing::assert_close, Device, Tensor};
use fovea_nn::losses::{Loss, LossKind, Reduction};

#[test]
fn losses_and_gradients_match_keras() {
    let f = load_safetensors(format!("{}/tests/fixtures/losses.safetensors", env!("CARGO_MANIFEST_DIR")), Device::Cpu).unwrap();
    use LossKind::*;
    let sum = |kind| Loss { kind, reduction: Reduction::Sum };
    let cases: Vec<(&str, Loss)> = vec![
        ("sparse_cce", SparseCategoricalCrossentropy { from_logits: false }.into()),
        ("sparse_cce_logits", SparseCategoricalCrossentropy { from_logits: true }.into()),
        ("sparse_cce_logits_weighted", SparseCategoricalCrossentropy { from_logits: true }.into()),
        ("sparse_cce_logits_sum", sum(SparseCategoricalCrossentropy { from_logits: true })),
        ("cce", CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 }.into()),
        ("cce_logits_smoothing", CategoricalCrossentropy { from_logits: true, label_smoothing: 0.1 }.into()),
        ("bce", BinaryCrossentropy { from_logits: false, label_smoothing: 0.0 }.into()),
        ("bce_logits_smoothing", BinaryCrossentropy { from_logits: true, label_smoothing: 0.2 }.into()),
        ("mse", MeanSquaredError.into()),
        ("mae", MeanAbsoluteError.into()),
        ("huber", Huber { delta: 1.0 }.into()),
        ("kld", KlDivergence.into()),
        ("hinge", Hinge.into()),
        ("squared_hinge", SquaredHinge.into()),
        ("categorical_hinge", CategoricalHinge.into()),
        ("log_cosh", LogCosh.into()),
        ("cosine_similarity", CosineSimilarity.into()),
        ("binary_focal", BinaryFocalCrossentropy { gamma: 2.0, alpha: None, from_logits: false, label_smoothing: 0.0 }.into()),
        (
            "binary_focal_logits_balanced",
            BinaryFocalCrossentropy { gamma: 1.5, alpha: Some(0.3), from_logits: true, label_smoothing: 0.1 }.into(),
        ),
        ("categorical_focal", CategoricalFocalCrossentropy { alpha: 0.25, gamma: 2.0, from_logits: false, label_smoothing: 0.0 }.into()),
        (
            "categorical_focal_logits",
            CategoricalFocalCrossentropy { alpha: 0.5, gamma: 1.0, from_logits: true, label_smoothing: 0.0 }.into(),
        ),
        ("weighted_bce_logits", WeightedBinaryCrossentropy { pos_weight: 3.0 }.into()),
        ("multiclass_hinge", MulticlassHinge.into()),
    ];
    for (name, loss) in cases {
        let y_true = &f[&format!("{name}.y_true")];
        let y_pred = f[&format!("{name}.y_pred")].with_requires_grad(true).unwrap();
        let w = f.get(&format!("{name}.sample_weight"));
        let value = loss.compute(y_true, &y_pred, w).unwrap();
        assert_close(name, &value.to_vec::<f32>().unwrap(), &f[&format!("{name}.loss")].to_vec::<f32>().unwrap(), 1e-5, 1e-6);
        let g = value.backward().unwrap();
        assert_close(
            &format!("d {name}"),
            &g.get(&y_pred).unwrap().to_vec::<f32>().unwrap(),
            &f[&format!("{name}.dpred")].to_vec::<f32>().unwrap(),
            1e-4,
            1e-6,
        );
    }
}

#[test]
fn loss_errors_name_the_loss_and_shapes() {
    let d = Device::Cpu;
    let p = Tensor::zeros([2, 3], fovea_core::DType::F32, d).unwrap();
    let loss = Loss::from_name("sparse_categorical_crossentropy").unwrap();
    let e = loss.compute(&Tensor::from_vec(vec![0i64, 3], [2], d).unwrap(), &p, None).unwrap_err().to_string();
    assert!(e.contains("label 3 is out of range for 3 classes"), "{e}");
    let e = loss.compute(&Tensor::from_vec(vec![0i64, 1, 2], [3], d).unwrap(), &p, None).unwrap_err().to_string();
    assert!(e.contains("labels of shape [3] do not match predictions of shape [2, 3]"), "{e}");
    let mse = Loss::from_name("mse").unwrap();
    let e = mse.compute(&Tensor::zeros([2, 4], fovea_core::DType::F32, d).unwrap(), &p, None).unwrap_err().to_string();
    assert!(e.contains("mean_squared_error: y_true shape [2, 4] does not match y_pred shape [2, 3]"), "{e}");
    assert!(Loss::from_name("focal").unwrap_err().to_string().contains("unknown loss"));
    // [N, 1] labels are accepted like [N].
    let l1 = loss.compute(&Tensor::from_vec(vec![0i64, 2], [2, 1], d).unwrap(), &p.add_scalar(0.5).unwrap(), None).unwrap();
    assert!((l1.to_scalar::<f32>().unwrap() - 3f32.ln()).abs() < 1e-6);
}
