//! Fovea's side of the image-pipeline benchmark (`bench/pipeline/run.sh`): JPEG bytes →
//! decode → random crop 192×192 → random left-right flip → bilinear resize to 224×224, mapped
//! on 2 worker threads, batched by 32 and prefetched — the same steps as the `tf.data`
//! pipeline beside it. Prints one JSON line: the median images/s of 5 windows after a warm-up.
//!
//! Run: `cargo run --release -p fovea-vision --example jpeg_pipeline -- DIR_OF_JPEGS`

use fovea_core::{Device, Tensor};
use fovea_data::pipeline::{Dataset, Element, Parallelism};
use fovea_vision::image::{decode_image, random_crop, random_flip_left_right, resize, ResizeMethod};
use std::time::Instant;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    let dir = std::env::args().nth(1).ok_or("usage: jpeg_pipeline DIR_OF_JPEGS")?;
    let mut files: Vec<_> =
        std::fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "jpg")).collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no .jpg files in {dir}").into());
    }
    // One thread for the consumer side (batching), as tf.data's private pool of 2 covers both.
    rayon::ThreadPoolBuilder::new().num_threads(1).build_global()?;
    let blobs = files
        .iter()
        .map(|f| -> AnyResult<Element> {
            let bytes = std::fs::read(f)?;
            let n = bytes.len();
            Ok(Element::Tensor(Tensor::from_vec(bytes, [n], Device::Cpu)?))
        })
        .collect::<AnyResult<Vec<_>>>()?;
    let augment = |e: Element| -> fovea_data::Result<Element> {
        let Element::Tuple(parts) = e else { unreachable!("enumerate yields pairs") };
        let index = parts[0].tensor()?.to_scalar::<i64>()? as u64;
        let bytes = parts[1].tensor()?.to_vec::<u8>()?;
        // As tf.data: crop and flip the uint8 image; resize returns float32.
        let image = decode_image(&bytes, 3, Device::Cpu)?;
        let crop = random_crop(&image, (192, 192), (index, 0))?;
        let flipped = random_flip_left_right(&crop, (index, 1))?;
        Ok(Element::Tensor(resize(&flipped, (224, 224), ResizeMethod::Bilinear, false)?))
    };
    let ds = Dataset::from_elements(blobs)
        .repeat(None)
        .enumerate(0)
        .map_parallel(augment, Parallelism::Fixed(2), true)
        .batch(32, false)
        .prefetch(2);
    let mut it = ds.iter();
    const BATCHES: usize = 40; // 1,280 images per window, as the tf.data side
    let mut window = || -> AnyResult<f64> {
        let start = Instant::now();
        for _ in 0..BATCHES {
            it.next().ok_or("the pipeline ended")??;
        }
        Ok((BATCHES * 32) as f64 / start.elapsed().as_secs_f64())
    };
    window()?;
    let mut rates = (0..5).map(|_| window()).collect::<AnyResult<Vec<_>>>()?;
    rates.sort_by(f64::total_cmp);
    println!(
        "{{\"kind\": \"result\", \"bench\": \"fovea\", \"name\": \"jpeg_decode_crop_flip_resize_224\", \"images_per_s\": {:.1}, \"best\": {:.1}}}",
        rates[2], rates[4]
    );
    Ok(())
}
