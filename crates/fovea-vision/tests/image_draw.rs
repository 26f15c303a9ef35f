//! `draw_bounding_boxes` against TensorFlow (fixtures from
//! `tools/fixtures/gen_image_aug_fixtures.py`) and `save_image_grid`'s layout and lettering.

use fovea_core::{io::load_safetensors, DType, Device, Tensor};
use fovea_vision::image::*;
use std::collections::HashMap;

fn fixtures() -> HashMap<String, Tensor> {
    load_safetensors(format!("{}/tests/fixtures/image_aug.safetensors", env!("CARGO_MANIFEST_DIR")), Device::Cpu).unwrap()
}

#[test]
fn draw_bounding_boxes_matches_tf() {
    let f = fixtures();
    let (canvas, boxes) = (&f["draw/canvas"], &f["draw/boxes"]);
    let same = |got: Tensor, key: &str| assert_eq!(got.to_vec::<f32>().unwrap(), f[key].to_vec::<f32>().unwrap(), "{key}");
    same(draw_bounding_boxes(canvas, boxes, None).unwrap(), "draw/default");
    let colors: Vec<[f32; 4]> = f["draw/colors"].to_vec::<f32>().unwrap().chunks(4).map(|c| c.try_into().unwrap()).collect();
    same(draw_bounding_boxes(canvas, boxes, Some(&colors)).unwrap(), "draw/custom");
    same(draw_bounding_boxes(&canvas.narrow(3, 0, 1).unwrap(), boxes, None).unwrap(), "draw/gray");
    let alpha = Tensor::full(vec![2, 10, 12, 1], 0.5, DType::F32, Device::Cpu).unwrap();
    same(draw_bounding_boxes(&Tensor::concat(&[canvas, &alpha], 3).unwrap(), boxes, None).unwrap(), "draw/rgba");
}

#[test]
fn draw_bounding_boxes_errors() {
    let img = Tensor::zeros(vec![1, 4, 4, 3], DType::F32, Device::Cpu).unwrap();
    let e = |b: Tensor, c: Option<&[[f32; 4]]>| draw_bounding_boxes(&img, &b, c).unwrap_err().to_string();
    let m = e(Tensor::zeros(vec![1, 4], DType::F32, Device::Cpu).unwrap(), None);
    assert!(m.contains("draw_bounding_boxes") && m.contains("[1, num_boxes, 4]") && m.contains("[1, 4]"), "{m}");
    let nan = Tensor::from_vec(vec![0.0f32, f32::NAN, 1.0, 1.0], vec![1, 1, 4], Device::Cpu).unwrap();
    let m = e(nan.clone(), None);
    assert!(m.contains("NaN in box 0 of image 0"), "{m}");
    let m = e(Tensor::zeros(vec![1, 1, 4], DType::F32, Device::Cpu).unwrap(), Some(&[]));
    assert!(m.contains("at least one colour"), "{m}");
    let m = e(Tensor::zeros(vec![1, 1, 4], DType::I64, Device::Cpu).unwrap(), None);
    assert!(m.contains("float32 boxes") && m.contains("int64"), "{m}");
    let m = draw_bounding_boxes(&img.squeeze(&[0]).unwrap(), &nan, None).unwrap_err().to_string();
    assert!(m.contains("draw_bounding_boxes") && m.contains("rank 4") && m.contains("[4, 4, 3]"), "{m}");
    let two = Tensor::zeros(vec![1, 4, 4, 2], DType::F32, Device::Cpu).unwrap();
    let m = draw_bounding_boxes(&two, &Tensor::zeros(vec![1, 1, 4], DType::F32, Device::Cpu).unwrap(), None).unwrap_err().to_string();
    assert!(m.contains("1, 3 or 4 channels") && m.contains("[1, 4, 4, 2]"), "{m}");
}

#[test]
fn image_grid_lays_out_titled_cells() {
    // Three 8×10 images: black, white, and a grey ramp; two per row.
    let mut data = vec![0.0f32; 8 * 10];
    data.extend(vec![1.0f32; 8 * 10]);
    data.extend((0..80).map(|i| (i % 10) as f32 / 9.0));
    let imgs = Tensor::from_vec(data, vec![3, 8, 10, 1], Device::Cpu).unwrap();
    let dir = std::env::temp_dir().join(format!("fovea_grid_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("grid.png");
    let grid = save_image_grid(&path, &imgs, &["I", "ok", "-"], 2).unwrap();
    // Cells are (10 + 2·2) wide and (8 + 10 title + 2·2) high: 2 columns, 2 rows.
    assert_eq!(grid.dims(), &[44, 28, 3]);
    let back = decode_png(&std::fs::read(&path).unwrap(), 3, Device::Cpu).unwrap();
    assert_eq!(back.to_vec::<u8>().unwrap(), grid.to_vec::<u8>().unwrap());
    let g = grid.to_vec::<u8>().unwrap();
    let px = |y: usize, x: usize| g[(y * 28 + x) * 3];
    // Image 0 (black) starts at (2 + 10, 2); image 1 (white) at (12, 16); image 2 at (34, 2).
    assert_eq!(px(12, 2), 0);
    assert_eq!(px(19, 11), 0);
    assert_eq!(px(12, 16), 255);
    assert_eq!((px(34, 2), px(34, 11)), (0, 255));
    // The title "I" (rows 0x0E, 0x04, ...) starts one pixel below the cell's top-left corner:
    // its top bar covers columns 1..=3 of the glyph, its stem column 2.
    assert_eq!((px(3, 2), px(3, 3), px(3, 5), px(3, 6)), (255, 0, 0, 255));
    assert_eq!((px(5, 3), px(5, 4), px(5, 5)), (255, 0, 255));
    // "-" is a full middle row (glyph row 3): five dark pixels at 24 + 1 + 3, none above.
    assert!((2..7).all(|x| px(28, x) == 0));
    assert!((2..7).all(|x| px(27, x) == 255));
    // The unused fourth cell stays white.
    assert!((24..44).all(|y| (16..28).all(|x| px(y, x) == 255)));
    let m = save_image_grid(&path, &imgs.reshape(&[3, 80]).unwrap(), &[], 2).unwrap_err().to_string();
    assert!(m.contains("save_image_grid") && m.contains("[3, 80]"), "{m}");
    let two = Tensor::zeros(vec![1, 2, 2, 2], DType::F32, Device::Cpu).unwrap();
    let m = save_image_grid(&path, &two, &[], 1).unwrap_err().to_string();
    assert!(m.contains("1 or 3 channels") && m.contains("[1, 2, 2, 2]"), "{m}");
    let m = save_image_grid(&path, &Tensor::zeros(vec![1, 2, 2, 1], DType::I64, Device::Cpu).unwrap(), &[], 1).unwrap_err().to_string();
    assert!(m.contains("float32 or uint8") && m.contains("int64"), "{m}");
    let m = save_image_grid(&path, &imgs, &["a"], 2).unwrap_err().to_string();
    assert!(m.contains("save_image_grid") && m.contains("one per image (3), got 1"), "{m}");
    let m = save_image_grid(&path, &imgs, &[], 0).unwrap_err().to_string();
    assert!(m.contains("cols >= 1"), "{m}");
    let m = save_image_grid(dir.join("no/such/dir.png"), &imgs, &[], 2).unwrap_err().to_string();
    assert!(m.contains("cannot write"), "{m}");
    std::fs::remove_dir_all(&dir).unwrap();
}
