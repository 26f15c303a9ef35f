use super::*;
use crate::callbacks::proto::{Kind, What};

#[test]
fn histograms_use_equal_width_buckets_from_min_to_max() {
    // Width 1 over [0, 4]: 0 | 1 | 2 | 3 and 4 (the maximum joins the last bucket).
    let h = histogram_of(&[0.0, 1.0, 2.0, 3.0, 4.0], 4).unwrap();
    assert_eq!((h.min, h.max, h.num, h.sum, h.sum_squares), (0.0, 4.0, 5.0, 10.0, 30.0));
    assert_eq!(h.bucket_limit, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(h.bucket, [1.0, 1.0, 1.0, 2.0]);
    let flat = histogram_of(&[2.5, 2.5], 30).unwrap();
    assert_eq!((flat.bucket_limit, flat.bucket), (vec![2.5], vec![2.0]));
    assert_eq!(histogram_of(&[], 30).unwrap_err(), "expected at least one value, got none");
    assert_eq!(histogram_of(&[1.0, f64::NAN], 30).unwrap_err(), "expected finite values, got NaN");
}

#[test]
fn png_images_decode_back_to_their_pixels() {
    for (c, color) in
        [(1, png::ColorType::Grayscale), (2, png::ColorType::GrayscaleAlpha), (3, png::ColorType::Rgb), (4, png::ColorType::Rgba)]
    {
        let (h, w) = (3, 5);
        let pixels: Vec<u8> = (0..h * w * c).map(|i| (i * 37 % 251) as u8).collect();
        let bytes = encode_png(&pixels, h, w, c).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut back = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut back).unwrap();
        assert_eq!((info.width, info.height, info.color_type, info.bit_depth), (w as u32, h as u32, color, png::BitDepth::Eight));
        assert_eq!(&back[..info.buffer_size()], &pixels[..], "{c} channels");
    }
    let e = encode_png(&[0; 5], 2, 2, 1).unwrap_err().to_string();
    assert!(e.contains("expected 2×2×1 pixel bytes, got 5"), "{e}");
    assert!(encode_png(&[], 0, 0, 1).unwrap_err().to_string().contains("encode_png"));
    assert!(encode_png(&[0; 4], 2, 2, 5).unwrap_err().to_string().contains("got 5"));
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fovea-summary-{}-{name}", std::process::id()))
}

#[test]
fn event_files_start_with_the_version_and_hold_the_summaries() {
    let dir = scratch("events");
    let mut w = SummaryWriter::new(&dir).unwrap();
    let name = w.path().file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("events.out.tfevents.") && name.split('.').nth(3).unwrap().parse::<u64>().is_ok(), "{name}");
    w.scalar("loss", 0.25, 3).unwrap();
    w.text("note", "**hi**", 4).unwrap();
    let img = Tensor::from_vec(vec![0.0f32, 0.5, 1.0, 2.0], vec![2, 2, 1], fovea_core::Device::Cpu).unwrap();
    w.image("img", &img, 5).unwrap();
    w.flush().unwrap();
    let second = SummaryWriter::new(&dir).unwrap();
    assert_ne!(second.path(), w.path(), "two writers never share a file");
    let events = read_events(w.path()).unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())));
    let value = |i: usize| match &events[i].what {
        Some(What::Summary(s)) => s.value[0].clone(),
        other => panic!("expected a summary, got {other:?}"),
    };
    assert_eq!((events[1].step, value(1).tag, value(1).value), (3, "loss".to_string(), Some(Kind::SimpleValue(0.25))));
    match value(2).value {
        Some(Kind::Tensor(t)) => assert_eq!((t.dtype, t.string_val), (7, vec![b"**hi**".to_vec()])),
        other => panic!("expected a string tensor, got {other:?}"),
    }
    assert_eq!(value(2).metadata.unwrap().plugin_data.unwrap().plugin_name, "text");
    match value(3).value {
        // 0.5 * 255.5 = 127.75 → 127 and 2.0 clipped to 255, as TF's convert_image_dtype.
        Some(Kind::Image(i)) => {
            assert_eq!(
                (i.height, i.width, i.colorspace, i.encoded_image_string),
                (2, 2, 1, encode_png(&[0, 127, 255, 255], 2, 2, 1).unwrap())
            )
        }
        other => panic!("expected an image, got {other:?}"),
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn feature_maps_tile_channels_each_stretched_to_full_range() {
    let dir = scratch("maps");
    let mut w = SummaryWriter::new(&dir).unwrap();
    // [1, 2, 3]: three 1x2 channels in a grid of ceil(sqrt 3) = 2 columns and 2 rows, 1-pixel
    // gaps: 3 x 5 pixels.
    let t = Tensor::from_vec(vec![1.0f32, -1.0, 4.0, 0.0, 2.0, 8.0], vec![1, 2, 3], fovea_core::Device::Cpu).unwrap();
    w.feature_maps("maps", &t, 0).unwrap();
    w.flush().unwrap();
    let events = read_events(w.path()).unwrap();
    let Some(What::Summary(s)) = &events[1].what else { panic!("expected a summary") };
    let Some(Kind::Image(img)) = &s.value[0].value else { panic!("expected an image") };
    // The channels hold (1, 0), (-1, 2), (4, 8); each stretched to its own range gives
    // (255, 0), (0, 255), (0, 255).
    assert_eq!((img.height, img.width), (3, 5));
    assert_eq!(img.encoded_image_string, encode_png(&[255, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0], 3, 5, 1).unwrap());
    let e = w.feature_maps("maps", &Tensor::from_vec(vec![1.0f32; 4], vec![2, 1, 1, 2], fovea_core::Device::Cpu).unwrap(), 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid configuration: SummaryWriter::feature_maps \"maps\": expected [H, W, C] or [1, H, W, C], got shape [2, 1, 1, 2]"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_summaries_are_named_errors() {
    let dir = scratch("errors");
    let mut w = SummaryWriter::new(&dir).unwrap();
    let t = |v: Vec<f32>, s: Vec<usize>| Tensor::from_vec(v, s, fovea_core::Device::Cpu).unwrap();
    let e = w.image("x", &t(vec![0.0; 4], vec![4]), 0).unwrap_err().to_string();
    assert_eq!(e, "invalid configuration: SummaryWriter::image \"x\": expected an image [H, W, C] or a batch [N, H, W, C], got shape [4]");
    let e = w.image("x", &t(vec![0.0; 4], vec![1, 2, 2]), 0).unwrap_err().to_string();
    assert!(e.ends_with("expected 1, 3 or 4 channels and a non-empty image, got shape [1, 2, 2]"), "{e}");
    let e = w.histogram("h", &t(vec![1.0, f32::INFINITY], vec![2]), 0).unwrap_err().to_string();
    assert_eq!(e, "invalid configuration: SummaryWriter::histogram \"h\": expected finite values, got inf");
    let e = read_events(dir.join("missing")).unwrap_err().to_string();
    assert!(e.starts_with("invalid configuration: read_events: ") && e.contains("missing"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}
