//! The seeds' practice chapter, part 2 (`docs/practice.md`): an imbalanced task, the accuracy
//! paradox, three remedies (class weights, resampling, focal loss) and choosing a threshold.
//!
//! The chapter's example is 50,000 negatives against 1,000 positives; here the positives are
//! MNIST zeros and the negatives every other digit, in exactly those numbers (test: 4,900
//! against 98, the same 2%). The model is logistic regression on the pixels.
//!
//! `cargo run --release -p fovea --example practice_imbalance` (fetches MNIST on first use).

use fovea::data::mnist;
use fovea::nn::confusion::{auc, BinaryCounts, Curve};
use fovea::prelude::*;
use std::collections::BTreeMap;

/// `negatives` non-zero digits then `positives` zeros: flattened pixels in [0, 1] and 0/1 labels.
fn zero_detection(images: &Tensor, labels: &Tensor, negatives: usize, positives: usize) -> fovea::Result<(Tensor, Tensor)> {
    let digits = labels.to_vec::<i64>()?;
    let digits = &digits;
    let pick = |zero: bool, n: usize| (0..digits.len() as i64).filter(move |&i| (digits[i as usize] == 0) == zero).take(n);
    let rows: Vec<i64> = pick(false, negatives).chain(pick(true, positives)).collect();
    let idx = Tensor::from_vec(rows.clone(), vec![rows.len()], Device::Cpu)?;
    let x = images.index_select(0, &idx)?.cast(DType::F32)?.div_scalar(255.0)?.reshape(&[-1, 784])?;
    let y: Vec<f32> = (0..rows.len()).map(|i| if i < negatives { 0.0 } else { 1.0 }).collect();
    Ok((x, Tensor::from_vec(y, vec![rows.len(), 1], Device::Cpu)?))
}

fn logistic_regression(loss: &str) -> fovea::Result<Sequential> {
    set_seed(0);
    let model = Sequential::with_input_shape(&[784]);
    model.add(Dense::new(1).activation(Activation::Sigmoid))?;
    model.compile(Optimizer::adam(1e-3), Loss::from_name(loss)?, &["accuracy"])?;
    Ok(model)
}

/// Confusion counts of test-set `scores` at `threshold` (a score above it is positive).
fn counts(scores: &[f32], labels: &[f32], threshold: f32) -> fovea::Result<BinaryCounts> {
    Ok(BinaryCounts::from_scores(labels, scores, threshold)?)
}

fn report(name: &str, c: &BinaryCounts) {
    println!(
        "{name:<28} accuracy {:.4}  recall {:.3}  precision {:.3}  F1 {:.3}  (TP {} FN {} FP {})",
        c.accuracy(),
        c.tpr(),
        c.ppv(),
        c.f1(),
        c.tp,
        c.fn_,
        c.fp
    );
}

fn main() -> fovea::Result<()> {
    let data = mnist::load(Device::Cpu)?;
    let (x, y) = zero_detection(&data.train_images, &data.train_labels, 50_000, 1_000)?;
    let (test_x, test_y) = zero_detection(&data.test_images, &data.test_labels, 4_900, 98)?;
    let truth = test_y.to_vec::<f32>()?;
    let options = || FitOptions { epochs: 3, batch_size: 128, verbose: 0, seed: Some(1), ..FitOptions::default() };

    // The accuracy paradox: answering "not a zero" every time is 98% accurate and finds nothing.
    report("always negative", &counts(&vec![0.0; truth.len()], &truth, 0.5)?);

    let plain = logistic_regression("binary_crossentropy")?;
    plain.fit(&x, &y, options())?;
    let scores = plain.predict(&test_x, 512)?.to_vec::<f32>()?;
    report("plain", &counts(&scores, &truth, 0.5)?);

    // Remedy: weight the loss by class, the rare class by the imbalance ratio (Keras's class_weight).
    let weighted = logistic_regression("binary_crossentropy")?;
    let class_weight = BTreeMap::from([(0, 1.0), (1, 50.0)]);
    weighted.fit(&x, &y, FitOptions { class_weight: Some(class_weight), ..options() })?;
    report("class weights 1:50", &counts(&weighted.predict(&test_x, 512)?.to_vec::<f32>()?, &truth, 0.5)?);

    // Remedy: resample while building batches, half of each class (the minority is repeated).
    let class = |zero: bool| -> fovea::Result<Dataset> {
        let rows: Vec<i64> = (0..51_000).filter(|&i| (i >= 50_000) == zero).collect();
        let idx = Tensor::from_vec(rows.clone(), vec![rows.len()], Device::Cpu)?;
        Ok(Dataset::from_tensor_slices((x.index_select(0, &idx)?, y.index_select(0, &idx)?))?.repeat(None).shuffle(4096, Some(2)))
    };
    let balanced = Dataset::sample_from_datasets(vec![class(false)?, class(true)?], Some(vec![0.5, 0.5]), Some(3), false)?.batch(128, true);
    let resampled = logistic_regression("binary_crossentropy")?;
    let steps = FitOptions { epochs: 3, steps_per_epoch: Some(51_000 / 128), verbose: 0, ..FitOptions::default() };
    resampled.fit_source(&balanced, None, &steps, &mut [])?;
    report("balanced batches", &counts(&resampled.predict(&test_x, 512)?.to_vec::<f32>()?, &truth, 0.5)?);

    // Remedy: a loss that down-weights the easy, plentiful examples.
    let focal = logistic_regression("binary_focal_crossentropy")?;
    focal.fit(&x, &y, options())?;
    report("focal loss", &counts(&focal.predict(&test_x, 512)?.to_vec::<f32>()?, &truth, 0.5)?);

    // Choosing the threshold: sweep it on the plain model's scores, read ROC and PR.
    println!("\n{:>9} {:>7} {:>7} {:>7} {:>5} {:>5} {:>5} {:>5}", "threshold", "FPR", "TPR", "PPV", "TP", "TN", "FN", "FP");
    let thresholds: Vec<f32> = (0..=200).map(|i| i as f32 / 200.0).collect();
    let sweep = thresholds.iter().map(|&t| counts(&scores, &truth, t)).collect::<fovea::Result<Vec<_>>>()?;
    for (t, c) in thresholds.iter().zip(&sweep).step_by(20) {
        println!("{t:>9.2} {:>7.4} {:>7.4} {:>7.4} {:>5} {:>5} {:>5} {:>5}", c.fpr(), c.tpr(), c.ppv(), c.tp, c.tn, c.fn_, c.fp);
    }
    println!("ROC AUC {:.4}, PR AUC {:.4}", auc(&sweep, Curve::Roc), auc(&sweep, Curve::Pr));
    // The lowest threshold whose false-positive rate stays under 1%: the most zeros found at that cost.
    if let Some((t, c)) = thresholds.iter().zip(&sweep).find(|(_, c)| c.fpr() <= 0.01) {
        println!("threshold {t:.3} keeps FPR at {:.4} and finds {:.1}% of the zeros", c.fpr(), 100.0 * c.tpr());
    }
    Ok(())
}
