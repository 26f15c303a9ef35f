//! Encoded images in TFRecord files decoded inside a pipeline: TensorFlow's PNGs
//! (fovea-data's tests/fixtures/tfrecord, tools/fixtures/gen_tfrecord_fixtures.py) come out with
//! TF's pixels, and Fovea-written JPEG/PNG records read back through `decode_image`.

use fovea_core::{Device, Tensor};
use fovea_data::pipeline::{Dataset, Element};
use fovea_data::tfrecord::{Compression, Example, Feature, ReadOptions, TfRecordWriter};
use fovea_vision::image::{decode_image, encode_jpeg, encode_png};
use std::path::Path;

/// Maps `{image: bytes, ...}` to `(decoded image, label)`.
fn decode_pair(e: Element) -> fovea_data::Result<Element> {
    let bytes = e.field("image")?.tensor()?.to_vec::<u8>()?;
    let image = decode_image(&bytes, 0, Device::Cpu)?;
    let label = e.field("label")?.tensor()?.clone();
    Ok(Element::Tuple(vec![Element::Tensor(image), Element::Tensor(label)]))
}

#[test]
fn tensorflow_png_records_decode_to_tensorflows_pixels_in_the_pipeline() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fovea-data/tests/fixtures/tfrecord");
    let ds = Dataset::from_tfrecord_examples([dir.join("tf_examples.tfrecord.gz")], ReadOptions::default().gzip(), 1).map(decode_pair);
    let elements = ds.collect().unwrap();
    assert_eq!(elements.len(), 4);
    for (i, e) in elements.iter().enumerate() {
        let image = e.get(0).unwrap().tensor().unwrap();
        assert_eq!(image.dims(), &[2, 3, 3]);
        // gen_tfrecord_fixtures.py: pixel (y, x, c) = (40 i + 10 y + 3 x + c) % 256.
        let want: Vec<u8> = (0..18).map(|k| ((40 * i + 10 * (k / 9) + 3 * (k / 3 % 3) + k % 3) % 256) as u8).collect();
        assert_eq!(image.to_vec::<u8>().unwrap(), want, "example {i}");
        assert_eq!(e.get(1).unwrap().tensor().unwrap().to_vec::<i64>().unwrap(), [i as i64 * 1_000_000_007 - 2]);
    }
}

#[test]
fn fovea_written_jpeg_and_png_records_batch_after_decoding() {
    let path = std::env::temp_dir().join(format!("fovea-vision-records-{}.tfrecord", std::process::id()));
    let pixels: Vec<u8> = (0..8 * 8 * 3).map(|k| (k * 5 % 256) as u8).collect();
    let image = Tensor::from_vec(pixels.clone(), vec![8, 8, 3], Device::Cpu).unwrap();
    let mut w = TfRecordWriter::create(&path, Compression::None).unwrap();
    w.write_example(&Example::from_features([("image", Feature::bytes([encode_png(&image).unwrap()])), ("label", Feature::int64s([0]))]))
        .unwrap();
    w.write_example(&Example::from_features([
        ("image", Feature::bytes([encode_jpeg(&image, 95).unwrap()])),
        ("label", Feature::int64s([1])),
    ]))
    .unwrap();
    w.finish().unwrap();
    let batch = Dataset::from_tfrecord_examples([&path], ReadOptions::default(), 1).map(decode_pair).batch(2, false).collect().unwrap();
    let images = batch[0].get(0).unwrap().tensor().unwrap();
    assert_eq!(images.dims(), &[2, 8, 8, 3]);
    let v = images.to_vec::<u8>().unwrap();
    assert_eq!(&v[..192], &pixels[..], "PNG is lossless");
    // JPEG at quality 95: this ramp (steps of 5 levels) comes back within 15 levels.
    let worst = v[192..].iter().zip(&pixels).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(worst <= 20, "JPEG differs by up to {worst} levels");
    assert_eq!(batch[0].get(1).unwrap().tensor().unwrap().to_vec::<i64>().unwrap(), [0, 1]);
    std::fs::remove_file(path).ok();
}
