//! Tests of the latent-space pictures: sizes, and every tile equal to the decoder's own image
//! for the code it stands for.

use super::*;
use crate::generative::Vae;
use crate::image::convert_image_dtype;
use fovea_core::set_seed;
use fovea_nn::activations::Activation;
use fovea_nn::layers::{Dense, Flatten, Reshape};
use fovea_nn::model::Sequential;
use fovea_nn::optimizers::Optimizer;

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("fovea-visual-{}-{name}", std::process::id()))
}

/// A VAE with a 2-D latent whose decoder makes 5×4 images.
fn vae_2d() -> Vae {
    set_seed(4);
    let enc = Sequential::new();
    enc.add(Flatten::new()).unwrap();
    enc.add(Dense::new(6).activation(Activation::Relu)).unwrap();
    let dec = Sequential::new();
    dec.add(Dense::new(6).activation(Activation::Tanh)).unwrap();
    dec.add(Dense::new(20).kernel_initializer(fovea_nn::initializers::Initializer::RandomNormal { mean: 0.0, stddev: 2.0 })).unwrap();
    dec.add(Reshape::new(&[5, 4, 1])).unwrap();
    dec.build_for(&[2]).unwrap();
    Vae::new(enc, 2, dec, Optimizer::adam(1e-3))
}

/// Grey values of tile `k` in a grid canvas without titles (`save_image_grid` pads 2 pixels).
fn tile(canvas: &Tensor, k: usize, cols: usize, h: usize, w: usize) -> Vec<u8> {
    let cw = canvas.dims()[1];
    let bytes = canvas.to_vec::<u8>().unwrap();
    let (x0, y0) = ((k % cols) * (w + 4) + 2, (k / cols) * (h + 4) + 2);
    (0..h).flat_map(|y| (0..w).map(move |x| (y, x))).map(|(y, x)| bytes[((y0 + y) * cw + x0 + x) * 3]).collect()
}

/// The decoder's image for one code, as the bytes a grid shows.
fn decoded(vae: &Vae, z: &[f32]) -> Vec<u8> {
    let z = Tensor::from_vec(z.to_vec(), [1, z.len()], Device::Cpu).unwrap();
    let img = decode_images(&vae.decoder, &z, [5, 4, 1], DecoderOutput::Logits).unwrap();
    convert_image_dtype(&img, DType::U8, true).unwrap().to_vec::<u8>().unwrap()
}

#[test]
fn normal_quantiles_match_known_values() {
    // scipy.stats.norm.ppf
    for (p, q) in [
        (0.5, 0.0),
        (0.975, 1.959_963_984_540_054),
        (0.05, -1.644_853_626_951_472_2),
        (0.001, -3.090_232_306_167_813_5),
        (0.9, 1.281_551_565_544_600_5),
    ] {
        assert!((normal_quantile(p) - q).abs() < 1e-8, "ppf({p}) = {} vs {q}", normal_quantile(p));
    }
    assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
    assert!(normal_quantile(1.5).is_nan());
}

#[test]
fn the_manifold_grid_decodes_each_tile_at_its_gaussian_quantile() {
    let vae = vae_2d();
    let path = tmp("manifold.png");
    let n = 3;
    let canvas = save_latent_manifold(&path, &vae.decoder, n, [5, 4, 1], DecoderOutput::Logits).unwrap();
    // 3 × 3 cells of (5 + 4) × (4 + 4) pixels.
    assert_eq!(canvas.dims(), &[27, 24, 3]);
    let png = crate::image::decode_png(&std::fs::read(&path).unwrap(), 3, Device::Cpu).unwrap();
    assert_eq!(png.to_vec::<u8>().unwrap(), canvas.to_vec::<u8>().unwrap());
    std::fs::remove_file(&path).unwrap();
    let q = [normal_quantile(0.05) as f32, 0.0, normal_quantile(0.95) as f32];
    let codes = manifold_codes(n).unwrap().to_vec::<f32>().unwrap();
    for r in 0..n {
        for c in 0..n {
            let k = r * n + c;
            // z₁ grows to the right, z₂ upwards.
            let z = [q[c], q[n - 1 - r]];
            assert!(
                (codes[2 * k] - z[0]).abs() < 1e-6 && (codes[2 * k + 1] - z[1]).abs() < 1e-6,
                "tile {k}: {:?}",
                &codes[2 * k..2 * k + 2]
            );
            assert_eq!(tile(&canvas, k, n, 5, 4), decoded(&vae, &z), "tile ({r}, {c})");
        }
    }
    // Distinct codes give distinct pictures here (the decoder is not constant).
    assert_ne!(tile(&canvas, 0, n, 5, 4), tile(&canvas, 8, n, 5, 4));
}

#[test]
fn a_decoder_without_a_2d_latent_is_named() {
    let dec = Sequential::new();
    dec.add(Dense::new(20)).unwrap();
    dec.build_for(&[3]).unwrap();
    let e = save_latent_manifold(tmp("bad.png"), &dec, 2, [5, 4, 1], DecoderOutput::Logits).unwrap_err().to_string();
    assert!(e.contains("the decoder must take 2-D latent codes [N, 2]"), "{e}");
    let e = decode_images(&dec, &Tensor::zeros([2, 3], DType::F32, Device::Cpu).unwrap(), [4, 4, 1], DecoderOutput::Tanh)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 images of 4×4×1 values") && e.contains("[2, 20]"), "{e}");
    assert!(manifold_codes(0).is_err());
}

#[test]
fn interpolation_strips_run_from_one_code_to_the_other() {
    let vae = vae_2d();
    let (z0, z1) = ([-1.5f32, 0.5], [2.0f32, -1.0]);
    let a = Tensor::from_vec(z0.to_vec(), [2], Device::Cpu).unwrap();
    let b = Tensor::from_vec(z1.to_vec(), [1, 2], Device::Cpu).unwrap();
    let z = interpolate_latents(&a, &b, 5).unwrap();
    assert_eq!(z.dims(), &[5, 2]);
    let zs = z.to_vec::<f32>().unwrap();
    assert_eq!(&zs[..2], &z0);
    assert_eq!(&zs[8..], &z1);
    assert!((zs[4] - 0.25).abs() < 1e-6 && (zs[5] + 0.25).abs() < 1e-6, "the midpoint: {:?}", &zs[4..6]);
    let path = tmp("strip.png");
    let canvas = save_interpolation_strip(&path, &vae.decoder, &a, &b, 5, [5, 4, 1], DecoderOutput::Logits).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(canvas.dims(), &[9, 40, 3]); // one row of 5 cells 9 × 8
    for k in 0..5 {
        assert_eq!(tile(&canvas, k, 5, 5, 4), decoded(&vae, &zs[2 * k..2 * k + 2]), "tile {k}");
    }
    let e = interpolate_latents(&a, &Tensor::zeros([3], DType::F32, Device::Cpu).unwrap(), 4).unwrap_err().to_string();
    assert!(e.contains("two codes of one size") && e.contains("[3]"), "{e}");
    assert!(interpolate_latents(&a, &b, 1).unwrap_err().to_string().contains("at least 2 steps"));
}

#[test]
fn the_code_histogram_counts_values_and_draws_proportional_bars() {
    // Values 0, 1, 1, 2, 2, 2, 3, ..., 3 (4 of 3) over 4 bins of width 0.75 from 0 to 3.
    let codes = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0], [5, 2], Device::Cpu).unwrap();
    let h = latent_histogram(&codes, 4).unwrap();
    assert_eq!(h.counts, vec![1, 2, 3, 4]);
    assert_eq!(h.edges(), vec![0.0, 0.75, 1.5, 2.25, 3.0]);
    let table = h.to_table();
    assert_eq!(table.lines().count(), 5);
    assert!(table.lines().nth(4).unwrap().ends_with(&format!("      4  {}", "#".repeat(40))), "{table}");
    assert!(table.lines().nth(1).unwrap().contains("[   0.0000,    0.7500)        1  ##########"), "{table}");
    // Bars of 40 · count / 4 pixels: 10, 20, 30 and 40 of the chart's 40 rows.
    let chart = h.render(40).unwrap();
    assert_eq!(chart.dims(), &[40, 32, 3]);
    let px = chart.to_vec::<u8>().unwrap();
    for (k, want) in [10usize, 20, 30, 40].into_iter().enumerate() {
        let blue = (0..40).filter(|&y| px[(y * 32 + 8 * k + 3) * 3] == 31).count();
        assert_eq!(blue, want, "bar {k}");
        assert_eq!(px[(39 * 32 + 8 * k) * 3], 255, "the gap left of bar {k} stays white");
    }
    let (png, txt) = (tmp("hist.png"), tmp("hist.txt"));
    h.save(&png, 40).unwrap();
    h.save(&txt, 40).unwrap();
    let decoded = crate::image::decode_png(&std::fs::read(&png).unwrap(), 3, Device::Cpu).unwrap();
    assert_eq!(decoded.to_vec::<u8>().unwrap(), px);
    assert_eq!(std::fs::read_to_string(&txt).unwrap(), table);
    std::fs::remove_file(png).unwrap();
    std::fs::remove_file(txt).unwrap();
    // A constant code is one bin, as TensorBoard's; bad input is an error.
    let one = latent_histogram(&Tensor::full([3], 2.0, DType::F32, Device::Cpu).unwrap(), 2).unwrap();
    assert_eq!((one.lo, one.hi, one.counts.clone()), (2.0, 2.0, vec![3]));
    assert_eq!(one.render(10).unwrap().dims(), &[10, 8, 3]);
    let nan = Tensor::from_vec(vec![1.0f32, f32::NAN], [2], Device::Cpu).unwrap();
    let e = latent_histogram(&nan, 3).unwrap_err().to_string();
    assert!(e.contains("latent_histogram") && e.contains("expected finite values, got NaN"), "{e}");
    let empty = Tensor::zeros([0, 2], DType::F32, Device::Cpu).unwrap();
    assert!(latent_histogram(&empty, 3).unwrap_err().to_string().contains("expected at least one value"));
    assert!(latent_histogram(&codes, 0).unwrap_err().to_string().contains("need at least 1 bin, got 0"));
    assert!(h.render(0).unwrap_err().to_string().contains("a height of at least 1 pixel"));
    let e = h.save("/nonexistent-dir/h.png", 10).unwrap_err().to_string();
    assert!(e.contains("cannot write /nonexistent-dir/h.png"), "{e}");
}

#[test]
fn a_trained_autoencoders_codes_histogram_covers_every_code() {
    let vae = vae_2d();
    let x = Tensor::random_uniform([8, 3, 3, 1], 0.0, 1.0, Some(3), Device::Cpu).unwrap();
    let (mu, _) = vae.encode(&x, false).unwrap();
    let h = latent_histogram(&mu, 5).unwrap();
    assert_eq!(h.counts.iter().sum::<usize>(), 16, "8 samples × 2 latent units");
}
