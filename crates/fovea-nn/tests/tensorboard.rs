//! The TensorBoard callback inside `fit`: Keras's run layout and tag names, and values equal to
//! the `History` and the weights. (tools/check_tensorboard.py has TensorBoard's own reader
//! check the committed fixture that `examples/tensorboard_fixture.rs` writes.)

use fovea_core::{set_seed, Device, Tensor};
use fovea_nn::callbacks::proto::{Event, Kind, What};
use fovea_nn::callbacks::summary::read_events;
use fovea_nn::callbacks::{TensorBoard, UpdateFreq};
use fovea_nn::layers::{Conv2D, Dense, Flatten, Softmax};
use fovea_nn::losses::Loss;
use fovea_nn::model::{FitOptions, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn model() -> Sequential {
    set_seed(3);
    let m = Sequential::with_input_shape(&[4, 4, 1]);
    m.add(Conv2D::new(2, (3, 3))).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(2)).unwrap();
    m.add(Softmax::new(-1)).unwrap();
    m.compile(Optimizer::adam(0.01), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();
    m
}

fn data() -> (Tensor, Tensor) {
    let x = Tensor::random_uniform([16, 4, 4, 1], 0.0, 1.0, Some(5), Device::Cpu).unwrap();
    let y = Tensor::from_vec((0..16).map(|i| (i % 2) as i64).collect::<Vec<_>>(), vec![16], Device::Cpu).unwrap();
    (x, y)
}

fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// tag → [(step, value)] for every summary value in the file.
fn values(events: &[Event]) -> BTreeMap<String, Vec<(i64, Kind)>> {
    let mut out: BTreeMap<String, Vec<(i64, Kind)>> = BTreeMap::new();
    for e in events {
        if let Some(What::Summary(s)) = &e.what {
            for v in &s.value {
                out.entry(v.tag.clone()).or_default().push((e.step, v.value.clone().unwrap()));
            }
        }
    }
    out
}

fn scalars(v: &BTreeMap<String, Vec<(i64, Kind)>>, tag: &str) -> Vec<(i64, f32)> {
    v[tag]
        .iter()
        .map(|(s, k)| match k {
            Kind::SimpleValue(x) => (*s, *x),
            other => panic!("{tag}: expected a scalar, got {other:?}"),
        })
        .collect()
}

#[test]
fn fit_writes_keras_runs_and_tags_with_the_history_values() {
    let dir = std::env::temp_dir().join(format!("fovea-tb-fit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let m = model();
    let (x, y) = data();
    let conv = m.get_layer("conv2d").unwrap();
    let probe = x.narrow(0, 0, 1).unwrap();
    let mut tb = TensorBoard::new(&dir)
        .histogram_freq(1)
        .update_freq(UpdateFreq::Batches(1))
        .write_images(true)
        .with_sample_images(x.narrow(0, 0, 4).unwrap())
        .with_feature_maps("conv2d/feature_maps", move |_| conv.apply(std::slice::from_ref(&probe), false));
    let opts = FitOptions { epochs: 2, batch_size: 6, validation_split: 0.25, verbose: 0, seed: Some(0), ..Default::default() };
    let h = m.fit_with_callbacks(&x, &y, opts, &mut [&mut tb]).unwrap();
    drop(tb);

    let train = values(&read_events(only_file(&dir.join("train"))).unwrap());
    let val = values(&read_events(only_file(&dir.join("validation"))).unwrap());
    let as_f32 = |k: &str| h.history[k].iter().enumerate().map(|(i, v)| (i as i64, *v as f32)).collect::<Vec<_>>();
    assert_eq!(scalars(&train, "epoch_loss"), as_f32("loss"));
    assert_eq!(scalars(&train, "epoch_accuracy"), as_f32("accuracy"));
    assert_eq!(scalars(&train, "epoch_learning_rate"), as_f32("learning_rate"));
    assert_eq!(scalars(&val, "epoch_loss"), as_f32("val_loss"));
    assert_eq!(scalars(&val, "epoch_accuracy"), as_f32("val_accuracy"));
    assert!(!train.contains_key("epoch_val_loss") && !val.contains_key("epoch_learning_rate"));
    // 12 training samples in batches of 6: global batches 1..=4, the last of each epoch equal
    // to the epoch's loss (it averages the whole epoch so far).
    let batch = scalars(&train, "batch_loss");
    assert_eq!(batch.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!((batch[1].1, batch[3].1), (as_f32("loss")[0].1, as_f32("loss")[1].1));

    // Histograms at epochs 0 and 1 of every weight; the last equals the final weights.
    let kernel = m.get_layer("dense").unwrap().weights()[0].value().to_vec::<f32>().unwrap();
    match &train["dense/kernel/histogram"][..] {
        [(0, _), (1, Kind::Histo(last))] => {
            assert_eq!(last.num, kernel.len() as f64);
            let sum: f64 = kernel.iter().map(|&v| v as f64).sum();
            assert!((last.sum - sum).abs() < 1e-6, "{} vs {sum}", last.sum);
            assert_eq!(last.bucket.iter().sum::<f64>(), kernel.len() as f64);
        }
        other => panic!("expected two histograms, got {other:?}"),
    }
    assert!(train.contains_key("conv2d/bias/histogram"));
    // Images as Keras shapes them: a 2-filter conv kernel [3, 3, 1, 2] gives one 3x3 image per
    // filter; the dense bias [2] a 2x1 column.
    for (tag, (h, w)) in
        [("conv2d/kernel/image/1", (3, 3)), ("dense/bias/image", (2, 1)), ("input_images/2", (4, 4)), ("conv2d/feature_maps", (2, 5))]
    {
        match &train[tag][0].1 {
            Kind::Image(i) => assert_eq!((i.height, i.width), (h, w), "{tag}"),
            other => panic!("{tag}: expected an image, got {other:?}"),
        }
    }
    // Dense kernel [8, 2] (2x2x2 conv outputs flattened): longer side first, so Keras transposes it to 2 x 8.
    match &train["dense/kernel/image"][0].1 {
        Kind::Image(i) => assert_eq!((i.height, i.width), (2, 8)),
        other => panic!("expected an image, got {other:?}"),
    }
    match &train["model_config"][0].1 {
        Kind::Tensor(t) => assert!(String::from_utf8_lossy(&t.string_val[0]).contains("\"Conv2D\"")),
        other => panic!("expected text, got {other:?}"),
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn update_freq_zero_batches_is_a_named_error() {
    let dir = std::env::temp_dir().join(format!("fovea-tb-zero-{}", std::process::id()));
    let m = model();
    let (x, y) = data();
    let mut tb = TensorBoard::new(&dir).update_freq(UpdateFreq::Batches(0));
    let e = m.fit_with_callbacks(&x, &y, FitOptions { verbose: 0, ..Default::default() }, &mut [&mut tb]).unwrap_err();
    assert_eq!(e.to_string(), "invalid configuration: TensorBoard: update_freq Batches(n) needs n >= 1, got 0");
}

#[test]
fn the_committed_fixture_reads_back() {
    // tools/check_tensorboard.py checks it with TensorBoard's EventAccumulator.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tensorboard");
    for run in ["custom", "fit/train", "fit/validation"] {
        let events = read_events(only_file(&root.join(run))).unwrap();
        assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())), "{run}");
        assert!(events.len() > 2, "{run}");
    }
}
