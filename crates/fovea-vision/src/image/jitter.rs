//! The seeds' remaining augmentations, stateless like the `random_*` ops (a seed pair in, the
//! same output for the same seed): additive Gaussian noise, a random permutation of the colour
//! channels, random grayscale, and VGG's scale jittering (the shorter side drawn in 256–512).

use super::random::Seed;
use super::{as_batch, grayscale_to_rgb, require_f32, resize, rgb_to_grayscale, unbatch, ResizeMethod};
use fovea_core::random::Rng;
use fovea_core::{Error, Result, Tensor};

fn rng(seed: Seed, salt: u64) -> Rng {
    let mut r = Rng::new(seed.0 ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
    Rng::new(r.next_u64() ^ seed.1)
}

/// `images + N(0, stddev²)` drawn independently per value (Keras's `GaussianNoise` at training
/// time, as an image op).
///
/// # Errors
/// `InvalidArgument` for a negative or non-finite `stddev`; `DTypeMismatch` unless f32.
pub fn random_gaussian_noise(images: &Tensor, stddev: f32, seed: Seed) -> Result<Tensor> {
    const OP: &str = "random_gaussian_noise";
    if !(stddev >= 0.0 && stddev.is_finite()) {
        return Err(Error::invalid(OP, format!("expected a finite stddev >= 0, got {stddev}")));
    }
    require_f32(OP, images)?;
    let noise = Tensor::random_normal(images.shape().clone(), 0.0, stddev as f64, Some(rng(seed, 11).next_u64()), images.device())?;
    images.add(&noise)
}

/// The colour channels in a random order, one permutation per call (the seeds' channel swap).
///
/// # Errors
/// `RankMismatch` unless rank 3 or 4.
pub fn random_channel_swap(images: &Tensor, seed: Seed) -> Result<Tensor> {
    let (x, single) = as_batch("random_channel_swap", images)?;
    let mut order: Vec<i64> = (0..x.dims()[3] as i64).collect();
    rng(seed, 12).shuffle(&mut order);
    let index = Tensor::from_vec(order.clone(), [order.len()], x.device())?;
    unbatch(x.index_select(3, &index)?, single)
}

/// Each RGB image turned to grey (kept as three equal channels) with probability `p`, one coin
/// per image.
///
/// # Errors
/// `InvalidArgument` for `p` outside `[0, 1]`; `RankMismatch` unless rank 3 or 4; images that
/// do not have 3 channels.
pub fn random_grayscale(images: &Tensor, p: f32, seed: Seed) -> Result<Tensor> {
    const OP: &str = "random_grayscale";
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid(OP, format!("expected a probability p in [0, 1], got {p}")));
    }
    let (x, single) = as_batch(OP, images)?;
    let mut r = rng(seed, 13);
    let parts = (0..x.dims()[0])
        .map(|i| {
            let img = x.narrow(0, i, 1)?;
            if (r.uniform() as f32) < p {
                grayscale_to_rgb(&rgb_to_grayscale(&img)?)
            } else {
                Ok(img)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    unbatch(Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)?, single)
}

/// VGG's scale jittering: the batch resized (bilinear) so that its shorter side is an integer
/// drawn uniformly from `min_side..=max_side` (the seeds: 256–512), the aspect ratio kept; a
/// random crop to the training size usually follows.
///
/// # Errors
/// `InvalidArgument` unless `1 <= min_side <= max_side`; as [`resize`].
pub fn random_scale_jitter(images: &Tensor, min_side: usize, max_side: usize, seed: Seed) -> Result<Tensor> {
    const OP: &str = "random_scale_jitter";
    if min_side == 0 || min_side > max_side {
        return Err(Error::invalid(OP, format!("expected 1 <= min_side <= max_side, got {min_side} and {max_side}")));
    }
    let (x, single) = as_batch(OP, images)?;
    let (h, w) = (x.dims()[1], x.dims()[2]);
    let side = min_side + rng(seed, 14).below((max_side - min_side + 1) as u64) as usize;
    let scale = side as f64 / h.min(w) as f64;
    // The shorter side lands exactly on `side`; the longer one is rounded.
    let size =
        if h <= w { (side, ((w as f64 * scale).round() as usize).max(1)) } else { (((h as f64 * scale).round() as usize).max(1), side) };
    unbatch(resize(&x, size, ResizeMethod::Bilinear, false)?, single)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::Device;

    fn image(n: usize, h: usize, w: usize) -> Tensor {
        Tensor::random_uniform([n, h, w, 3], 0.0, 1.0, Some(4), Device::Cpu).unwrap()
    }

    #[test]
    fn noise_has_the_asked_spread_and_follows_its_seed() {
        let x = Tensor::zeros([4, 32, 32, 3], fovea_core::DType::F32, Device::Cpu).unwrap();
        let y = random_gaussian_noise(&x, 0.1, (1, 2)).unwrap().to_vec::<f32>().unwrap();
        let mean = y.iter().sum::<f32>() / y.len() as f32;
        let std = (y.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / y.len() as f32).sqrt();
        assert!(mean.abs() < 0.01 && (std - 0.1).abs() < 0.005, "mean {mean}, std {std}");
        assert_eq!(random_gaussian_noise(&x, 0.1, (1, 2)).unwrap().to_vec::<f32>().unwrap(), y);
        assert_ne!(random_gaussian_noise(&x, 0.1, (1, 3)).unwrap().to_vec::<f32>().unwrap(), y);
        assert!(random_gaussian_noise(&x, -1.0, (1, 2)).unwrap_err().to_string().contains("stddev >= 0"));
    }

    #[test]
    fn a_channel_swap_permutes_the_channels_of_the_whole_batch() {
        let x = image(2, 4, 5);
        let channel = |t: &Tensor, c: usize| t.narrow(3, c, 1).unwrap().to_vec::<f32>().unwrap();
        let mut moved = false;
        for s in 0..6 {
            let y = random_channel_swap(&x, (s, 0)).unwrap();
            // Every output channel is one input channel, each used once.
            let mut used: Vec<usize> = (0..3).map(|c| (0..3).find(|&k| channel(&y, c) == channel(&x, k)).unwrap()).collect();
            moved |= used != vec![0, 1, 2];
            used.sort_unstable();
            assert_eq!(used, vec![0, 1, 2]);
        }
        assert!(moved, "six seeds never moved a channel");
    }

    #[test]
    fn random_grayscale_greys_by_its_probability() {
        let x = image(64, 2, 2);
        let grey = |t: &Tensor, i: usize| {
            let v = t.narrow(0, i, 1).unwrap().to_vec::<f32>().unwrap();
            v.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2])
        };
        let all = random_grayscale(&x, 1.0, (5, 5)).unwrap();
        assert!((0..64).all(|i| grey(&all, i)));
        assert_eq!(random_grayscale(&x, 0.0, (5, 5)).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
        let some = random_grayscale(&x, 0.5, (5, 5)).unwrap();
        let count = (0..64).filter(|&i| grey(&some, i)).count();
        assert!((16..=48).contains(&count), "{count} of 64 grey at p = 0.5");
        assert!(random_grayscale(&x, 1.5, (5, 5)).unwrap_err().to_string().contains("[0, 1]"));
    }

    #[test]
    fn scale_jitter_puts_the_shorter_side_in_range_and_keeps_the_aspect() {
        let x = image(1, 20, 30);
        let mut sides = std::collections::BTreeSet::new();
        for s in 0..20 {
            let y = random_scale_jitter(&x, 25, 40, (s, 1)).unwrap();
            let (h, w) = (y.dims()[1], y.dims()[2]);
            assert!((25..=40).contains(&h), "{h}");
            assert_eq!(w, (30.0 * h as f64 / 20.0).round() as usize);
            sides.insert(h);
        }
        assert!(sides.len() > 5, "the side should vary with the seed: {sides:?}");
        assert!(random_scale_jitter(&x, 50, 40, (0, 0)).unwrap_err().to_string().contains("min_side <= max_side"));
    }
}
