//! The YOLO pieces end to end: a narrow [`tiny_yolo`] overfits 16 synthetic scenes to a high
//! COCO AP50 within seconds on the CPU.

use fovea_vision::detection::scenes::{make_scenes, DigitSource, SceneOptions};
use fovea_vision::detection::yolo::{DecodeOptions, YoloGrid};
use fovea_vision::detection::yolo_model::{evaluate_scenes, scene_anchors, tiny_yolo, train_yolo, TinyYoloOptions, YoloTrainOptions};
use std::time::Instant;

/// Ten fake digits: the four corner blocks of a 3×3 layout (so every digit's box is its whole
/// frame) plus a different subset of the five other blocks for each class.
fn fake_digits() -> (Vec<u8>, Vec<i64>) {
    let mut px = Vec::new();
    for c in 0..10u32 {
        let others = [1, 3, 4, 5, 7];
        let on = |k: usize| [0, 2, 6, 8].contains(&k) || others.iter().enumerate().any(|(b, &o)| o == k && (c + 1) >> b & 1 == 1);
        for y in 0..28 {
            for x in 0..28 {
                let inside = (2..26).contains(&y) && (2..26).contains(&x);
                px.push(if inside && on((y - 2) / 8 * 3 + (x - 2) / 8) { 255 } else { 0 });
            }
        }
    }
    (px, (0..10).collect())
}

#[test]
fn tiny_yolo_overfits_sixteen_scenes() {
    fovea_core::set_seed(0);
    let (px, labels) = fake_digits();
    let source = DigitSource { images: &px, labels: &labels, side: 28 };
    let scenes =
        make_scenes(&source, &SceneOptions { count: 16, seed: 1, digit_size: (24, 48), max_digits: 3, ..Default::default() }).unwrap();
    let grid = YoloGrid::new(16, 8.0, scene_anchors(&scenes, 3, 0).unwrap(), 10).unwrap();
    let model = tiny_yolo(&TinyYoloOptions { width: 4, ..Default::default() }).unwrap();
    let decode = DecodeOptions::default();
    let before = evaluate_scenes(&model, &grid, &scenes, &decode).unwrap().stats();
    let start = Instant::now();
    let opts = YoloTrainOptions { epochs: 60, batch_size: 8, learning_rate: 3e-3, ..Default::default() };
    let history = train_yolo(&model, &grid, &scenes, &opts, |e, l| {
        eprintln!("epoch {e}: loss {l:.3} at {:.1}s", start.elapsed().as_secs_f32());
        Ok(())
    })
    .unwrap();
    let after = evaluate_scenes(&model, &grid, &scenes, &decode).unwrap().stats();
    eprintln!("AP50 {:.3} → {:.3}, AP {:.3}, {:.1}s", before[1], after[1], after[0], start.elapsed().as_secs_f32());
    assert!(history.last().unwrap() < &(history[0] / 5.0), "{history:?}");
    assert!(before[1] < 0.1, "an untrained model should not detect: {before:?}");
    assert!(after[1] > 0.9, "AP50 {} after training: {after:?}", after[1]);
}
