//! The `TensorBoard` callback (`keras.callbacks.TensorBoard`): per-epoch (and every-N-batch)
//! scalars of every log under `train/` and `validation/` runs, weight histograms and images,
//! sample images, feature maps and the model configuration as text.

use super::summary::SummaryWriter;
use super::{Callback, CallbackContext};
use crate::layer::Layer;
use crate::model::training::Logs;
use crate::{Error, Result};
use fovea_core::Tensor;
use std::path::PathBuf;

/// How often `TensorBoard` writes scalars (Keras's `update_freq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateFreq {
    /// `epoch_*` scalars after each epoch only (Keras's `"epoch"`, the default).
    Epoch,
    /// Also `batch_*` scalars every this many batches (Keras's integer `update_freq`), with the
    /// 1-based global batch number as the step.
    Batches(usize),
}

/// A function of the model giving a feature map to show (`[H, W, C]` or `[1, H, W, C]`), e.g.
/// a sub-model's output on a fixed input.
pub type FeatureMapFn = Box<dyn FnMut(&dyn Layer) -> Result<Tensor> + Send>;

/// Writes TensorBoard logs during `fit`, with Keras's layout and names: `log_dir/train` holds
/// `epoch_loss`, `epoch_accuracy`, `epoch_learning_rate`, ... (step = epoch, 0-based), the
/// `batch_*` scalars, weight histograms `<layer>/<weight>/histogram` and images
/// `<layer>/<weight>/image`; `log_dir/validation` holds the `val_` logs without the prefix
/// (`epoch_loss`, ...). View with `tensorboard --logdir log_dir`.
pub struct TensorBoard {
    /// The root directory of the runs.
    pub log_dir: PathBuf,
    /// Write weight histograms every this many epochs (0: never; Keras's default).
    pub histogram_freq: usize,
    /// When to write scalars.
    pub update_freq: UpdateFreq,
    /// Write weights as images (with the histograms), shaped as Keras does: a bias as an `n × 1`
    /// column, a dense kernel as one image with the longer side horizontal, a conv kernel with
    /// one input channel as one image per filter; each stretched from its minimum to its maximum
    /// (Keras clips to [0, 1] instead, which shows most weights as black).
    pub write_images: bool,
    /// Write the model's configuration (JSON) as a text summary `model_config` at the start.
    pub write_graph: bool,
    sample_images: Option<Tensor>,
    feature_maps: Option<(String, FeatureMapFn)>,
    train: Option<SummaryWriter>,
    validation: Option<SummaryWriter>,
    global_batch: i64,
}

impl TensorBoard {
    /// Logs under `log_dir` with Keras's defaults (`histogram_freq` 0, `update_freq` epoch,
    /// `write_graph` true, `write_images` false).
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        TensorBoard {
            log_dir: log_dir.into(),
            histogram_freq: 0,
            update_freq: UpdateFreq::Epoch,
            write_images: false,
            write_graph: true,
            sample_images: None,
            feature_maps: None,
            train: None,
            validation: None,
            global_batch: 0,
        }
    }

    /// Sets `histogram_freq`.
    pub fn histogram_freq(mut self, epochs: usize) -> Self {
        self.histogram_freq = epochs;
        self
    }

    /// Sets `update_freq`.
    pub fn update_freq(mut self, freq: UpdateFreq) -> Self {
        self.update_freq = freq;
        self
    }

    /// Sets `write_images`.
    pub fn write_images(mut self, on: bool) -> Self {
        self.write_images = on;
        self
    }

    /// Writes the first images of this batch (`[N, H, W, C]`, uint8 or float in [0, 1]) once,
    /// at the start of training, as `input_images/0`, `input_images/1`, ... in `train`.
    pub fn with_sample_images(mut self, images: Tensor) -> Self {
        self.sample_images = Some(images);
        self
    }

    /// Calls `f` after every epoch and writes the feature map it returns as a grid image `tag`
    /// in `train` (see [`SummaryWriter::feature_maps`]).
    pub fn with_feature_maps(mut self, tag: &str, f: impl FnMut(&dyn Layer) -> Result<Tensor> + Send + 'static) -> Self {
        self.feature_maps = Some((tag.into(), Box::new(f)));
        self
    }

    fn train_writer(&mut self) -> Result<&mut SummaryWriter> {
        if self.train.is_none() {
            self.train = Some(SummaryWriter::new(self.log_dir.join("train"))?);
        }
        Ok(self.train.as_mut().expect("created above"))
    }

    fn log_weights(&mut self, model: &dyn Layer, epoch: i64) -> Result<()> {
        let write_images = self.write_images;
        let w = self.train_writer()?;
        for v in model.weights() {
            let name = v.name().replace(':', "_");
            let value = v.value().detach();
            w.histogram(&format!("{name}/histogram"), &value, epoch)?;
            if write_images {
                if let Some(img) = weight_image(&value)? {
                    w.image(&format!("{name}/image"), &img, epoch)?;
                }
            }
        }
        w.flush()
    }
}

/// A weight as Keras's `_log_weight_as_image` shapes it (`[N, H, W, 1]`), min-max scaled to
/// [0, 1] per weight; `None` for shapes Keras skips too.
fn weight_image(w: &Tensor) -> Result<Option<Tensor>> {
    let dims: Vec<usize> = w.dims().iter().copied().filter(|&d| d != 1).collect();
    let v = w.cast(fovea_core::DType::F32)?.to_vec::<f32>()?;
    let (lo, hi) = v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let scale = if hi > lo { 1.0 / (hi - lo) } else { 0.0 };
    let norm = |x: f32| (x - lo) * scale;
    let (shape, data): (Vec<usize>, Vec<f32>) = match dims[..] {
        [n] => (vec![1, n, 1, 1], v.iter().map(|&x| norm(x)).collect()),
        [a, b] if a > b => (vec![1, b, a, 1], (0..b).flat_map(|j| (0..a).map(move |i| (i, j))).map(|(i, j)| norm(v[i * b + j])).collect()),
        [a, b] => (vec![1, a, b, 1], v.iter().map(|&x| norm(x)).collect()),
        // [kh, kw, filters] (channels last) → one [kh, kw] image per filter.
        [kh, kw, f] => (vec![f, kh, kw, 1], (0..f).flat_map(|k| (0..kh * kw).map(move |p| p * f + k)).map(|i| norm(v[i])).collect()),
        _ => return Ok(None),
    };
    Ok(Some(Tensor::from_vec(data, shape, w.device())?))
}

impl Callback for TensorBoard {
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if let UpdateFreq::Batches(0) = self.update_freq {
            return Err(Error::Config("TensorBoard: update_freq Batches(n) needs n >= 1, got 0".into()));
        }
        self.global_batch = 0;
        let config = self.write_graph.then(|| serde_json::to_string_pretty(&ctx.model.config()).unwrap_or_default());
        let images = self.sample_images.clone();
        let w = self.train_writer()?;
        if let Some(config) = config {
            // Indented four spaces: a Markdown code block, so the text plugin keeps the layout.
            let md: String = config.lines().map(|l| format!("    {l}\n")).collect();
            w.text("model_config", &md, 0)?;
        }
        if let Some(images) = images {
            w.image("input_images", &images, 0)?;
        }
        w.flush()
    }

    fn on_batch_end(&mut self, _batch: usize, logs: &Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.global_batch += 1;
        let UpdateFreq::Batches(n) = self.update_freq else { return Ok(()) };
        if self.global_batch % n as i64 != 0 {
            return Ok(());
        }
        let step = self.global_batch;
        let w = self.train_writer()?;
        for (k, v) in logs {
            w.scalar(&format!("batch_{k}"), *v, step)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let step = epoch as i64;
        let w = self.train_writer()?;
        for (k, v) in logs.iter().filter(|(k, _)| !k.starts_with("val_")) {
            w.scalar(&format!("epoch_{k}"), *v, step)?;
        }
        w.flush()?;
        if logs.keys().any(|k| k.starts_with("val_")) {
            if self.validation.is_none() {
                self.validation = Some(SummaryWriter::new(self.log_dir.join("validation"))?);
            }
            let w = self.validation.as_mut().expect("created above");
            for (k, v) in logs.iter().filter_map(|(k, v)| Some((k.strip_prefix("val_")?, v))) {
                w.scalar(&format!("epoch_{k}"), *v, step)?;
            }
            w.flush()?;
        }
        if self.histogram_freq > 0 && epoch.is_multiple_of(self.histogram_freq) {
            self.log_weights(ctx.model, step)?;
        }
        if let Some((tag, f)) = self.feature_maps.as_mut() {
            let maps = f(ctx.model)?;
            let tag = tag.clone();
            let w = self.train_writer()?;
            w.feature_maps(&tag, &maps, step)?;
            w.flush()?;
        }
        Ok(())
    }

    fn on_train_end(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        for w in self.train.iter_mut().chain(self.validation.iter_mut()) {
            w.flush()?;
        }
        Ok(())
    }
}
