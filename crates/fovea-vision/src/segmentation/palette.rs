//! Colour palettes for label maps: Pascal VOC's palette (how VOC ships its masks, as indexed
//! PNGs), colour-to-class decoding of RGB masks, colourised masks and overlays on images.

use fovea_nn::{Error, Result};
use std::path::Path;

/// Pascal VOC's 256-colour palette (`VOCdevkit`'s `labelcolormap`): class `i`'s colour spreads
/// the bits of `i` over the top bits of R, G and B, so 0 is black, 1 (aeroplane) `(128, 0, 0)`,
/// 15 (person) `(192, 128, 128)` and 255 (the border VOC marks to ignore) `(224, 224, 192)`.
pub fn voc_palette() -> Vec<[u8; 3]> {
    (0..256usize)
        .map(|i| {
            let (mut c, mut rgb) = (i, [0u8; 3]);
            for j in 0..8 {
                for (k, v) in rgb.iter_mut().enumerate() {
                    *v |= (((c >> k) & 1) as u8) << (7 - j);
                }
                c >>= 3;
            }
            rgb
        })
        .collect()
}

/// The class of each RGB pixel (`3·n` bytes) by its colour's index in `palette`.
///
/// # Errors
/// `Config` naming `what` (a file) and the first colour that is not in the palette, with its
/// pixel position in an image `width` wide.
pub fn colors_to_labels(rgb: &[u8], width: usize, palette: &[[u8; 3]], what: &str) -> Result<Vec<u8>> {
    let lookup: std::collections::HashMap<[u8; 3], u8> = palette.iter().enumerate().take(256).rev().map(|(i, &c)| (c, i as u8)).collect();
    rgb.chunks_exact(3)
        .enumerate()
        .map(|(i, px)| {
            let c = [px[0], px[1], px[2]];
            lookup.get(&c).copied().ok_or_else(|| {
                Error::Config(format!(
                    "{what}: colour ({}, {}, {}) at pixel (row {}, column {}) is not in the palette",
                    c[0],
                    c[1],
                    c[2],
                    i / width.max(1),
                    i % width.max(1)
                ))
            })
        })
        .collect()
}

/// The RGB image (`3·n` bytes) of a label map, each class in its palette colour.
///
/// # Errors
/// `Config` for a label without a palette entry.
pub fn colorize(labels: &[u8], palette: &[[u8; 3]]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(labels.len() * 3);
    for &l in labels {
        let c = palette
            .get(l as usize)
            .ok_or_else(|| Error::Config(format!("colorize: label {l} has no colour in a palette of {}", palette.len())))?;
        out.extend_from_slice(c);
    }
    Ok(out)
}

/// Blends the label colours over an image: `(1 − α)·image + α·colour` where the label is not
/// background (0), the image unchanged elsewhere. `image` is grey (`n` bytes) or RGB (`3·n`).
///
/// # Errors
/// `Config` when the image is neither `n` nor `3·n` bytes for `n` labels, `alpha` is outside
/// `[0, 1]`, or a label has no colour.
pub fn overlay(image: &[u8], labels: &[u8], palette: &[[u8; 3]], alpha: f32) -> Result<Vec<u8>> {
    let n = labels.len();
    let channels = match image.len() {
        l if l == n => 1,
        l if l == 3 * n => 3,
        l => {
            return Err(Error::Config(format!("overlay: expected an image of {n} (grey) or {} (RGB) bytes for {n} labels, got {l}", 3 * n)))
        }
    };
    if !(0.0..=1.0).contains(&alpha) {
        return Err(Error::Config(format!("overlay: expected alpha in [0, 1], got {alpha}")));
    }
    let colours = colorize(labels, palette)?;
    let mut out = Vec::with_capacity(3 * n);
    for i in 0..n {
        for k in 0..3 {
            let base = f32::from(image[i * channels + if channels == 3 { k } else { 0 }]);
            let v = if labels[i] == 0 { base } else { (1.0 - alpha) * base + alpha * f32::from(colours[3 * i + k]) };
            out.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    Ok(out)
}

/// Writes an RGB PNG (`3·height·width` bytes), e.g. a colourised mask or an overlay.
///
/// # Errors
/// `Config` naming the file when the size is wrong or it cannot be written.
pub fn write_rgb_png(path: &Path, rgb: &[u8], height: usize, width: usize) -> Result<()> {
    if rgb.len() != 3 * height * width {
        return Err(Error::Config(format!("{}: {} bytes for a {height}×{width} RGB image", path.display(), rgb.len())));
    }
    image::save_buffer_with_format(path, rgb, width as u32, height as u32, image::ExtendedColorType::Rgb8, image::ImageFormat::Png)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_colours_decode_to_classes_and_overlay() {
        let p = voc_palette();
        // Colours from VOCdevkit's documentation of its class colour map.
        assert_eq!((p[0], p[1], p[2], p[15], p[255]), ([0, 0, 0], [128, 0, 0], [0, 128, 0], [192, 128, 128], [224, 224, 192]));
        let rgb = [0, 0, 0, 192, 128, 128, 224, 224, 192];
        assert_eq!(colors_to_labels(&rgb, 3, &p, "m.png").unwrap(), [0, 15, 255]);
        let e = colors_to_labels(&[0, 0, 0, 1, 2, 3], 1, &p, "m.png").unwrap_err().to_string();
        assert!(e.contains("m.png: colour (1, 2, 3) at pixel (row 1, column 0) is not in the palette"), "{e}");
        assert_eq!(colorize(&[1, 15], &p).unwrap(), [128, 0, 0, 192, 128, 128]);
        // Background keeps the grey level; a labelled pixel is half grey, half colour.
        assert_eq!(overlay(&[100, 100], &[0, 1], &p, 0.5).unwrap(), [100, 100, 100, 114, 50, 50]);
        assert!(overlay(&[1, 2, 3, 4], &[0, 1], &p, 0.5)
            .unwrap_err()
            .to_string()
            .contains("expected an image of 2 (grey) or 6 (RGB) bytes"));
    }
}
