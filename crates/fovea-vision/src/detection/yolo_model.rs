//! A compact YOLO detector and its training loop, for grayscale scenes such as
//! [`super::scenes`]' MNIST detection scenes.
//!
//! [`tiny_yolo`] is a plain conv stack (3×3 conv, batch norm, leaky ReLU; three 2×2 poolings)
//! giving a stride-8 grid, topped by a 1×1 conv with `B·(5 + C)` outputs per cell: for 128×128×1
//! inputs, a 16×16 grid. [`train_yolo`] is a custom loop (gradient tape, Adam) over
//! [`super::yolo::yolo_loss`]; [`evaluate_scenes`] scores a model with COCOeval.

use super::anchors::kmeans_anchors;
use super::coco::{CocoAnnotation, CocoCategory, CocoDataset, CocoImage};
use super::cocoeval::{evaluate, CocoEval};
use super::scenes::Scene;
use super::yolo::{decode, detections_to_coco, encode_targets, yolo_loss, DecodeOptions, Detection, GtBox, YoloGrid, YoloLossOptions};
use fovea_core::ops::padding::Padding;
use fovea_core::{no_grad, Device, GradientTape, Tensor};
use fovea_nn::layer::Layer;
use fovea_nn::layers::{BatchNormalization, Conv2D, LeakyReLU, MaxPooling2D};
use fovea_nn::model::Sequential;
use fovea_nn::optimizers::Optimizer;
use fovea_nn::{Error, Result};

/// The shape of a [`tiny_yolo`] model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TinyYoloOptions {
    /// `(height, width, channels)` of the input; height and width multiples of 8.
    pub input_shape: (usize, usize, usize),
    /// Filters of the first conv; the others are 2, 4, 8, 8 and 16 times it.
    pub width: usize,
    /// Anchors per cell (`B`).
    pub anchors: usize,
    /// Classes (`C`).
    pub classes: usize,
    /// Initial bias of every objectness output: σ(−4.5) ≈ 0.011, about the share of anchors
    /// holding an object, so the no-object term does not swamp the first steps (RetinaNet's
    /// prior).
    pub objectness_bias: f32,
    /// Batch-norm momentum of the moving statistics inference uses. Below Keras's 0.99 because
    /// short runs (hundreds of steps) otherwise end with statistics still near their initial
    /// values, and inference then sees nothing.
    pub bn_momentum: f32,
}

impl Default for TinyYoloOptions {
    fn default() -> Self {
        TinyYoloOptions { input_shape: (128, 128, 1), width: 16, anchors: 3, classes: 10, objectness_bias: -4.5, bn_momentum: 0.9 }
    }
}

/// Builds the detector: for the defaults (128×128×1, width 16, 3 anchors, 10 classes) 553,341
/// parameters and a `(N, 16, 16, 45)` output.
///
/// # Errors
/// `Config` when the input sides are not positive multiples of 8 or a count is zero.
pub fn tiny_yolo(opts: &TinyYoloOptions) -> Result<Sequential> {
    let (h, w, c) = opts.input_shape;
    if h == 0 || w == 0 || h % 8 != 0 || w % 8 != 0 || c == 0 || opts.width == 0 || opts.anchors == 0 || opts.classes == 0 {
        return Err(Error::Config(format!(
            "tiny_yolo: needs input sides that are positive multiples of 8 (the grid stride) and non-zero counts, got input {:?}, width {}, {} anchors, {} classes",
            opts.input_shape, opts.width, opts.anchors, opts.classes
        )));
    }
    let model = Sequential::with_input_shape(&[h, w, c]);
    let block = |filters: usize| -> Result<()> {
        // No conv bias: the batch norm's shift replaces it.
        model.add(Conv2D::new(filters, (3, 3)).padding(Padding::Same).use_bias(false))?;
        model.add(BatchNormalization::new().momentum(opts.bn_momentum))?;
        model.add(LeakyReLU::new(0.1))
    };
    for (k, mult) in [1, 2, 4, 8, 8, 16].into_iter().enumerate() {
        block(opts.width * mult)?;
        if k < 3 {
            model.add(MaxPooling2D::new((2, 2)))?;
        }
    }
    let per_anchor = 5 + opts.classes;
    model.add(Conv2D::new(opts.anchors * per_anchor, (1, 1)))?;
    model.build_for(&[h, w, c])?;
    let head = model.layers().pop().expect("the head was just added");
    let bias = head.weights().into_iter().find(|v| v.name().ends_with("bias")).expect("the head conv has a bias");
    let init: Vec<f32> = (0..opts.anchors * per_anchor).map(|k| if k % per_anchor == 4 { opts.objectness_bias } else { 0.0 }).collect();
    bias.assign(&Tensor::from_vec(init, vec![opts.anchors * per_anchor], bias.value().device())?)?;
    Ok(model)
}

/// Ground-truth boxes of scenes as [`GtBox`]es (xyxy pixels).
///
/// # Errors
/// `Config` when a class is negative or a box is not finite, naming the scene and box.
pub fn scene_boxes(scenes: &[Scene]) -> Result<Vec<Vec<GtBox>>> {
    scenes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.boxes
                .iter()
                .enumerate()
                .map(|(k, &(class, [x, y, w, h]))| {
                    let bbox = [x as f32, y as f32, (x + w) as f32, (y + h) as f32];
                    if class < 0 || !bbox.iter().all(|v| v.is_finite()) {
                        return Err(Error::Config(format!(
                            "scene {i}, box {k}: class {class}, box {:?} is not a valid object",
                            [x, y, w, h]
                        )));
                    }
                    Ok(GtBox { bbox, class: class as usize })
                })
                .collect()
        })
        .collect()
}

/// Scenes as an `(N, size, size, 1)` batch scaled to `[0, 1]`.
///
/// # Errors
/// `Config` when a scene does not hold `size·size` pixels.
pub fn scene_images(scenes: &[Scene], size: usize, device: Device) -> Result<Tensor> {
    let mut v = Vec::with_capacity(scenes.len() * size * size);
    for (i, s) in scenes.iter().enumerate() {
        if s.pixels.len() != size * size {
            return Err(Error::Config(format!("scene {i} has {} pixels, not {size}×{size}", s.pixels.len())));
        }
        v.extend(s.pixels.iter().map(|&p| p as f32 / 255.0));
    }
    Ok(Tensor::from_vec(v, vec![scenes.len(), size, size, 1], device)?)
}

/// The scenes' ground truth as a COCO dataset: image ids `1..=N` in order, categories `0`…`9`
/// with ids 0–9 (as [`super::scenes::write_scenes`] writes them), annotation ids from 1.
pub fn scenes_to_coco(scenes: &[Scene], size: usize) -> CocoDataset {
    let mut ds = CocoDataset {
        images: (1..=scenes.len() as i64)
            .map(|id| CocoImage { id, file_name: String::new(), width: size as u32, height: size as u32 })
            .collect(),
        categories: (0..10).map(|c| CocoCategory { id: c, name: c.to_string(), supercategory: String::new() }).collect(),
        annotations: Vec::new(),
    };
    for (i, s) in scenes.iter().enumerate() {
        for &(class, bbox) in &s.boxes {
            let id = ds.annotations.len() as i64 + 1;
            ds.annotations.push(CocoAnnotation {
                id,
                image_id: i as i64 + 1,
                category_id: class,
                bbox,
                area: bbox[2] * bbox[3],
                iscrowd: false,
            });
        }
    }
    ds
}

/// `k` anchors by k-means (1 − IoU distance) on the scenes' box sizes.
///
/// # Errors
/// When there are fewer than `k` boxes.
pub fn scene_anchors(scenes: &[Scene], k: usize, seed: u64) -> Result<Vec<[f32; 2]>> {
    let sizes: Vec<[f32; 2]> = scenes.iter().flat_map(|s| s.boxes.iter().map(|b| [b.1[2] as f32, b.1[3] as f32])).collect();
    Ok(kmeans_anchors(&sizes, k, seed, 300)?.anchors)
}

/// Options of [`train_yolo`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YoloTrainOptions {
    /// Passes over the scenes.
    pub epochs: usize,
    /// Scenes per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Anchors overlapping an object by more than this get no no-object loss.
    pub ignore_threshold: f32,
    /// Seed of the per-epoch shuffle.
    pub seed: u64,
    /// The loss's weights and variants.
    pub loss: YoloLossOptions,
}

impl Default for YoloTrainOptions {
    fn default() -> Self {
        YoloTrainOptions {
            epochs: 10,
            batch_size: 16,
            learning_rate: 1e-3,
            ignore_threshold: 0.5,
            seed: 0,
            loss: YoloLossOptions::default(),
        }
    }
}

/// Trains `model` on `scenes` with a gradient tape and Adam; after each epoch calls
/// `on_epoch(epoch, mean_loss)`, whose error stops training (a callback can evaluate, save a
/// checkpoint or print). Returns the mean loss of each epoch.
///
/// # Errors
/// `Config` for an empty scene list, zero batch size, or a model whose output does not fit
/// `grid`; errors of the targets (bad boxes), the loss, the optimizer or the callback; `Config`
/// when the loss becomes NaN (a diverged run, named with its epoch and step).
pub fn train_yolo(
    model: &Sequential,
    grid: &YoloGrid,
    scenes: &[Scene],
    opts: &YoloTrainOptions,
    mut on_epoch: impl FnMut(usize, f32) -> Result<()>,
) -> Result<Vec<f32>> {
    if scenes.is_empty() || opts.batch_size == 0 {
        return Err(Error::Config(format!(
            "train_yolo: needs scenes and a batch size, got {} scenes, batch {}",
            scenes.len(),
            opts.batch_size
        )));
    }
    let side = grid.image_size() as usize;
    let device = model.weights().first().map(|v| v.value().device()).unwrap_or(Device::Cpu);
    let gts = scene_boxes(scenes)?;
    let mut optimizer = Optimizer::adam(opts.learning_rate);
    let mut order: Vec<usize> = (0..scenes.len()).collect();
    let mut rng = opts.seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut history = Vec::with_capacity(opts.epochs);
    for epoch in 0..opts.epochs {
        // Fisher–Yates with a xorshift: reproducible without touching the global seed.
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let (mut total, mut steps) = (0f32, 0usize);
        for (step, idx) in order.chunks(opts.batch_size).enumerate() {
            let batch: Vec<Scene> = idx.iter().map(|&i| scenes[i].clone()).collect();
            let batch_gt: Vec<Vec<GtBox>> = idx.iter().map(|&i| gts[i].clone()).collect();
            let x = scene_images(&batch, side, device)?;
            let targets = encode_targets(grid, &batch_gt, opts.ignore_threshold, device)?;
            let tape = GradientTape::new();
            let out = model.apply(&[x], true)?;
            let loss = yolo_loss(grid, &out, &targets, &opts.loss)?.total;
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Err(Error::Config(format!("train_yolo: loss is {value} at epoch {epoch}, step {step}; lower the learning rate")));
            }
            let vars = model.trainable_weights();
            let values: Vec<Tensor> = vars.iter().map(|v| v.value()).collect();
            let grads = tape.gradient(&loss, &values.iter().collect::<Vec<_>>())?;
            let pairs: Vec<(Tensor, fovea_core::Variable)> = grads.into_iter().zip(vars).filter_map(|(g, v)| g.map(|g| (g, v))).collect();
            optimizer.apply_gradients(&pairs)?;
            total += value;
            steps += 1;
        }
        let mean = total / steps as f32;
        history.push(mean);
        on_epoch(epoch, mean)?;
    }
    Ok(history)
}

/// Runs `model` in inference mode on `(N, H, W, C)` images, `batch_size` at a time, and decodes
/// detections per image.
///
/// # Errors
/// Model and [`decode`] errors (a model output that does not fit `grid`).
pub fn detect(
    model: &Sequential,
    grid: &YoloGrid,
    images: &Tensor,
    batch_size: usize,
    opts: &DecodeOptions,
) -> Result<Vec<Vec<Detection>>> {
    let n = images.dims().first().copied().unwrap_or(0);
    let mut all = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let len = batch_size.max(1).min(n - start);
        let out = no_grad(|| model.apply(&[images.narrow(0, start, len)?], false))?;
        all.extend(decode(grid, &out, opts)?);
        start += len;
    }
    Ok(all)
}

/// COCO evaluation of `model` on scenes (ground truth from [`scenes_to_coco`]).
///
/// # Errors
/// As [`detect`] and [`scene_images`].
pub fn evaluate_scenes(model: &Sequential, grid: &YoloGrid, scenes: &[Scene], opts: &DecodeOptions) -> Result<CocoEval> {
    let side = grid.image_size() as usize;
    let device = model.weights().first().map(|v| v.value().device()).unwrap_or(Device::Cpu);
    let dets = detect(model, grid, &scene_images(scenes, side, device)?, 32, opts)?;
    let gt = scenes_to_coco(scenes, side);
    let ids: Vec<i64> = gt.images.iter().map(|i| i.id).collect();
    let results = detections_to_coco(&dets, &ids, &(0..grid.num_classes as i64).collect::<Vec<_>>())?;
    Ok(evaluate(&gt, &results))
}

/// The metadata key under which [`save_detector`] stores the model's shape and grid.
pub const DETECTOR_KEY: &str = "fovea.yolo";

/// Saves a [`tiny_yolo`] model's weights with what [`load_detector`] needs to rebuild it: the
/// model options and the grid's anchors (JSON under [`DETECTOR_KEY`]).
///
/// # Errors
/// I/O errors naming the path.
pub fn save_detector(model: &Sequential, opts: &TinyYoloOptions, grid: &YoloGrid, path: impl AsRef<std::path::Path>) -> Result<()> {
    let meta = serde_json::json!({
        "input_shape": [opts.input_shape.0, opts.input_shape.1, opts.input_shape.2],
        "width": opts.width,
        "classes": opts.classes,
        "anchors": grid.anchors,
        "stride": grid.stride,
    });
    fovea_nn::model::io::save_weights(model, path, &[(DETECTOR_KEY, meta.to_string())])
}

/// Rebuilds and loads a detector written by [`save_detector`], on the CPU.
///
/// # Errors
/// `Config` naming the file when it cannot be read, lacks or has malformed [`DETECTOR_KEY`]
/// metadata (not a detector), or its weights do not fit the model it describes.
pub fn load_detector(path: impl AsRef<std::path::Path>) -> Result<(Sequential, TinyYoloOptions, YoloGrid)> {
    let path = path.as_ref();
    let file = fovea_nn::model::io::read_weights(path)?;
    let bad = |m: &str| Error::Config(format!("{}: {m}", path.display()));
    let text = file.metadata.get(DETECTOR_KEY).ok_or_else(|| bad("no YOLO metadata (fovea.yolo): not written by `fovea train yolo`"))?;
    let meta: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&format!("malformed fovea.yolo metadata: {e}")))?;
    let count = |k: &str| meta[k].as_u64().map(|v| v as usize).ok_or_else(|| bad(&format!("fovea.yolo metadata lacks a count {k:?}")));
    let shape: Vec<usize> =
        meta["input_shape"].as_array().map(|a| a.iter().filter_map(|v| v.as_u64().map(|v| v as usize)).collect()).unwrap_or_default();
    let anchors: Vec<[f32; 2]> = serde_json::from_value(meta["anchors"].clone()).map_err(|e| bad(&format!("fovea.yolo anchors: {e}")))?;
    let stride = meta["stride"].as_f64().ok_or_else(|| bad("fovea.yolo metadata lacks the stride"))? as f32;
    if shape.len() != 3 {
        return Err(bad("fovea.yolo input_shape is not [height, width, channels]"));
    }
    let opts = TinyYoloOptions {
        input_shape: (shape[0], shape[1], shape[2]),
        width: count("width")?,
        anchors: anchors.len(),
        classes: count("classes")?,
        ..Default::default()
    };
    let grid = YoloGrid::new(shape[0] / 8, stride, anchors, opts.classes)?;
    let model = tiny_yolo(&opts)?;
    fovea_nn::model::io::load_weights(&model, path)?;
    Ok((model, opts, grid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_model_has_a_16x16_grid_and_a_negative_objectness_prior() {
        fovea_nn::names::clear_session();
        let m = tiny_yolo(&TinyYoloOptions::default()).unwrap();
        // Convs 539,280, batch norms 4·624, head 256·45 + 45.
        assert_eq!(m.weights().iter().map(|v| v.value().numel()).sum::<usize>(), 553_341);
        let x = Tensor::zeros(vec![2, 128, 128, 1], fovea_core::DType::F32, Device::Cpu).unwrap();
        let out = m.apply(&[x], false).unwrap();
        assert_eq!(out.dims(), &[2, 16, 16, 45]);
        let bias = m.layers().pop().unwrap().weights().into_iter().find(|v| v.name().ends_with("bias")).unwrap();
        let b = bias.value().to_vec::<f32>().unwrap();
        assert_eq!((b[4], b[19], b[34], b[0], b[5]), (-4.5, -4.5, -4.5, 0.0, 0.0));
        assert!(tiny_yolo(&TinyYoloOptions { input_shape: (100, 128, 1), ..Default::default() }).is_err());
    }

    #[test]
    fn a_saved_detector_loads_with_its_grid_and_weights() {
        fovea_nn::names::clear_session();
        let opts = TinyYoloOptions { input_shape: (32, 32, 1), width: 2, anchors: 2, classes: 3, ..Default::default() };
        let m = tiny_yolo(&opts).unwrap();
        let grid = YoloGrid::new(4, 8.0, vec![[5.0, 6.0], [9.5, 7.0]], 3).unwrap();
        let dir = std::env::temp_dir().join(format!("fovea-yolo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        save_detector(&m, &opts, &grid, &path).unwrap();
        let (back, back_opts, back_grid) = load_detector(&path).unwrap();
        assert_eq!((back_opts, &back_grid), (opts, &grid));
        let x = fovea_core::testing::rand(&[1, 32, 32, 1], 0.0, 1.0, 3, Device::Cpu);
        let (a, b) = (m.apply(std::slice::from_ref(&x), false).unwrap(), back.apply(&[x], false).unwrap());
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        // A weight file without the metadata is refused with a reason.
        fovea_nn::model::io::save_weights(&m, &path, &[]).unwrap();
        assert!(load_detector(&path).err().expect("refused").to_string().contains("not written by"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scene_conversions_check_their_input() {
        let s = Scene { pixels: vec![0; 16], boxes: vec![(3, [1.0, 1.0, 2.0, 2.0])], mask: vec![0; 16] };
        assert_eq!(scene_boxes(std::slice::from_ref(&s)).unwrap()[0][0], GtBox { bbox: [1.0, 1.0, 3.0, 3.0], class: 3 });
        assert!(scene_images(std::slice::from_ref(&s), 5, Device::Cpu).is_err());
        let bad = Scene { pixels: vec![0; 16], boxes: vec![(-1, [1.0, 1.0, 2.0, 2.0])], mask: vec![0; 16] };
        assert!(scene_boxes(&[bad]).unwrap_err().to_string().contains("scene 0, box 0"));
        let gt = scenes_to_coco(&[s.clone(), s], 4);
        assert_eq!(gt.annotations.iter().map(|a| (a.id, a.image_id)).collect::<Vec<_>>(), vec![(1, 1), (2, 2)]);
    }
}
