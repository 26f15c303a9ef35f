//! A callback that shows a generator's progress: after each epoch it draws a batch of samples,
//! lays them out as one grid ([`crate::image::image_grid`]) and writes it to TensorBoard as an
//! image summary and/or to a PNG per epoch.

use crate::image::{encode_png, image_grid};
use fovea_core::Tensor;
use fovea_nn::callbacks::{Callback, CallbackContext, SummaryWriter};
use fovea_nn::model::training::Logs;
use fovea_nn::{Error, Result};
use std::path::PathBuf;

/// Produces the images of one grid, `[N, H, W, C]` in `[0, 1]` (C of 1 or 3).
pub type Sampler<'a> = Box<dyn FnMut() -> Result<Tensor> + Send + 'a>;

/// Writes a grid of samples at the end of every epoch: as a TensorBoard image (tag
/// [`SampleGrid::tag`], step = the epoch, one image per epoch) under a log directory, and/or as
/// `epoch_EEE.png` in a folder. The sampler decides what is drawn; fixed latent codes (for
/// instance [`crate::generative::visual::decode_images`] of one `z` kept for the whole run)
/// show the same samples evolving.
pub struct SampleGrid<'a> {
    sampler: Sampler<'a>,
    cols: usize,
    /// The TensorBoard tag (default `samples`).
    pub tag: String,
    writer: Option<SummaryWriter>,
    png_dir: Option<PathBuf>,
}

impl<'a> SampleGrid<'a> {
    /// A callback drawing `sampler()` in grids of `cols` columns; give it a destination with
    /// [`SampleGrid::tensorboard`] and/or [`SampleGrid::png_dir`].
    ///
    /// # Errors
    /// `Config` for `cols = 0`.
    pub fn new(sampler: impl FnMut() -> Result<Tensor> + Send + 'a, cols: usize) -> Result<Self> {
        if cols == 0 {
            return Err(Error::Config("SampleGrid: cols must be >= 1, got 0".into()));
        }
        Ok(SampleGrid { sampler: Box::new(sampler), cols, tag: "samples".into(), writer: None, png_dir: None })
    }

    /// Also writes each grid to an event file under `log_dir` (TensorBoard's IMAGES tab).
    ///
    /// # Errors
    /// `Config` when the directory or the event file cannot be created.
    pub fn tensorboard(mut self, log_dir: impl AsRef<std::path::Path>) -> Result<Self> {
        self.writer = Some(SummaryWriter::new(log_dir)?);
        Ok(self)
    }

    /// Also writes each grid to `dir/epoch_EEE.png` (the folder is created).
    ///
    /// # Errors
    /// `Config` when the folder cannot be created.
    pub fn png_dir(mut self, dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| Error::Config(format!("SampleGrid: cannot create {}: {e}", dir.display())))?;
        self.png_dir = Some(dir);
        Ok(self)
    }

    /// The event file written to, if any.
    pub fn event_file(&self) -> Option<&std::path::Path> {
        self.writer.as_ref().map(|w| w.path())
    }

    /// Draws one grid now (uint8 `[H, W, 3]`) and writes it as the given step.
    ///
    /// # Errors
    /// Errors from the sampler; `Config` naming the callback for images that cannot be laid out
    /// or written.
    pub fn write(&mut self, step: usize) -> Result<Tensor> {
        let images = fovea_core::no_grad(|| (self.sampler)())?;
        let grid = image_grid(&images, &[], self.cols).map_err(|e| Error::Config(format!("SampleGrid: {e}")))?;
        if let Some(w) = self.writer.as_mut() {
            w.image(&self.tag, &grid, step as i64)?;
            w.flush()?;
        }
        if let Some(dir) = &self.png_dir {
            let path = dir.join(format!("epoch_{step:03}.png"));
            let png = encode_png(&grid).map_err(|e| Error::Config(format!("SampleGrid: {e}")))?;
            std::fs::write(&path, png).map_err(|e| Error::Config(format!("SampleGrid: cannot write {}: {e}", path.display())))?;
        }
        Ok(grid)
    }
}

impl Callback for SampleGrid<'_> {
    fn on_epoch_end(&mut self, epoch: usize, _logs: &Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.write(epoch).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generative::visual::{decode_images, DecoderOutput};
    use crate::generative::Gan;
    use fovea_core::{set_seed, Device};
    use fovea_nn::activations::Activation;
    use fovea_nn::callbacks::proto::{Kind, What};
    use fovea_nn::callbacks::summary::read_events;
    use fovea_nn::layers::{Dense, Flatten, LeakyReLU, Reshape};
    use fovea_nn::model::training::{FitOptions, Model};
    use fovea_nn::model::Sequential;
    use fovea_nn::optimizers::Optimizer;

    /// A dense GAN on 4×4 images with a 4-D latent.
    fn tiny_gan() -> Gan {
        let g = Sequential::new();
        g.add(Dense::new(16).activation(Activation::Tanh)).unwrap();
        g.add(Reshape::new(&[4, 4, 1])).unwrap();
        let d = Sequential::with_input_shape(&[4, 4, 1]);
        d.add(Flatten::new()).unwrap();
        d.add(Dense::new(8)).unwrap();
        d.add(LeakyReLU::new(0.2)).unwrap();
        d.add(Dense::new(1)).unwrap();
        Gan::new(g, d, 4, None, Optimizer::adam(1e-2), Optimizer::adam(1e-2)).unwrap()
    }

    #[test]
    fn a_gan_writes_one_sample_grid_per_epoch_to_tensorboard_and_png() {
        set_seed(6);
        let gan = tiny_gan();
        let dir = std::env::temp_dir().join(format!("fovea-samplegrid-{}", std::process::id()));
        let z = Tensor::random_normal([6, 4], 0.0, 1.0, Some(3), Device::Cpu).unwrap();
        let mut callback = SampleGrid::new(|| Ok(decode_images(&gan.generator, &z, [4, 4, 1], DecoderOutput::Tanh)?), 3)
            .unwrap()
            .tensorboard(dir.join("tb"))
            .unwrap()
            .png_dir(dir.join("png"))
            .unwrap();
        let x = Tensor::random_uniform([8, 4, 4, 1], -1.0, 1.0, Some(1), Device::Cpu).unwrap();
        let opts = FitOptions { epochs: 2, batch_size: 4, verbose: 0, seed: Some(0), ..Default::default() };
        gan.fit_multi(std::slice::from_ref(&x), &[], opts, &mut [&mut callback]).unwrap();
        let events = read_events(callback.event_file().unwrap()).unwrap();
        let images: Vec<(i64, String, fovea_nn::callbacks::proto::Image)> = events
            .iter()
            .filter_map(|e| match &e.what {
                Some(What::Summary(s)) => match &s.value[0].value {
                    Some(Kind::Image(i)) => Some((e.step, s.value[0].tag.clone(), i.clone())),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(images.iter().map(|(s, t, _)| (*s, t.as_str())).collect::<Vec<_>>(), vec![(0, "samples"), (1, "samples")]);
        // 2 rows of 3 cells (4 + 4) × (4 + 4) pixels; the last grid is the trained generator's.
        let last = image_grid(&decode_images(&gan.generator, &z, [4, 4, 1], DecoderOutput::Tanh).unwrap(), &[], 3).unwrap();
        assert_eq!(last.dims(), &[16, 24, 3]);
        let (_, _, img) = &images[1];
        assert_eq!((img.height, img.width, img.colorspace), (16, 24, 3));
        let pixels = |png: &[u8]| crate::image::decode_png(png, 3, Device::Cpu).unwrap().to_vec::<u8>().unwrap();
        assert_eq!(pixels(&img.encoded_image_string), last.to_vec::<u8>().unwrap());
        assert_ne!(pixels(&images[0].2.encoded_image_string), pixels(&img.encoded_image_string), "the generator moved between epochs");
        assert_eq!(pixels(&std::fs::read(dir.join("png/epoch_001.png")).unwrap()), last.to_vec::<u8>().unwrap());
        assert!(dir.join("png/epoch_000.png").exists());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bad_samples_and_sizes_are_named() {
        assert!(SampleGrid::new(|| Ok(Tensor::zeros([1, 2, 2, 1], fovea_core::DType::F32, Device::Cpu)?), 0).is_err());
        let mut cb = SampleGrid::new(|| Ok(Tensor::zeros([2, 2, 2], fovea_core::DType::F32, Device::Cpu)?), 2).unwrap();
        let e = cb.write(0).unwrap_err().to_string();
        assert!(e.contains("SampleGrid") && e.contains("[2, 2, 2]"), "{e}");
        // A folder that cannot be made (its parent is a file).
        let file = std::env::temp_dir().join(format!("fovea-samplegrid-file-{}", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        let e = SampleGrid::new(|| Ok(Tensor::zeros([1, 2, 2, 1], fovea_core::DType::F32, Device::Cpu)?), 1)
            .unwrap()
            .png_dir(file.join("png"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("SampleGrid: cannot create"), "{e}");
        std::fs::remove_file(file).unwrap();
    }
}
