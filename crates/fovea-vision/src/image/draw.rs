//! Drawing on images: `tf.image.draw_bounding_boxes`, and [`save_image_grid`], which writes a
//! batch as one titled PNG for looking at data and augmentations.

use super::{convert_image_dtype, encode_png, require_f32};
use fovea_core::{DType, Device, Error, Result, Tensor};

/// TF's default box colours (RGBA), cycled through by box index.
const DEFAULT_COLORS: [[f32; 4]; 10] = [
    [1.0, 1.0, 0.0, 1.0], // yellow
    [0.0, 0.0, 1.0, 1.0], // blue
    [1.0, 0.0, 0.0, 1.0], // red
    [0.0, 1.0, 0.0, 1.0], // lime
    [0.5, 0.0, 0.5, 1.0], // purple
    [0.5, 0.5, 0.0, 1.0], // olive
    [0.5, 0.0, 0.0, 1.0], // maroon
    [0.0, 0.0, 0.5, 1.0], // navy
    [0.0, 1.0, 1.0, 1.0], // aqua
    [1.0, 0.0, 1.0, 1.0], // fuchsia
];

/// Draws one-pixel box outlines (`tf.image.draw_bounding_boxes`).
///
/// `images` is `[N, H, W, C]` with C of 1, 3 or 4; `boxes` is `[N, B, 4]` of normalised
/// `[y1, x1, y2, x2]`, each coordinate mapped to the pixel `trunc(y·(H−1))`. Box `b` takes colour
/// `b mod len(colors)` (only the first C entries of each RGBA colour are used); `None` uses TF's
/// ten default colours, all with a first channel of 1 on grey images. As in TF, an inverted box
/// (`y1 > y2` or `x1 > x2` after the mapping) or one wholly outside is skipped, and a box partly
/// outside has only its inside edges drawn, clipped to the image. Not differentiable.
///
/// # Errors
/// `RankMismatch`/`ShapeMismatch` for other shapes, `DTypeMismatch` unless f32, and
/// `InvalidArgument` for an empty colour list or a NaN coordinate.
pub fn draw_bounding_boxes(images: &Tensor, boxes: &Tensor, colors: Option<&[[f32; 4]]>) -> Result<Tensor> {
    const OP: &str = "draw_bounding_boxes";
    if images.rank() != 4 {
        return Err(Error::rank(OP, "4 (N, H, W, C) for images", images.shape()));
    }
    require_f32(OP, images)?;
    let [n, h, w, c] = [images.dims()[0], images.dims()[1], images.dims()[2], images.dims()[3]];
    if !matches!(c, 1 | 3 | 4) {
        return Err(Error::shape(OP, "images with 1, 3 or 4 channels", images.shape()));
    }
    if boxes.rank() != 3 || boxes.dims()[0] != n || boxes.dims()[2] != 4 {
        return Err(Error::shape(OP, format!("boxes of shape [{n}, num_boxes, 4]"), boxes.shape()));
    }
    if boxes.dtype() != DType::F32 {
        return Err(Error::dtype(OP, "float32 boxes", boxes.dtype()));
    }
    let mut table: Vec<[f32; 4]> = match colors {
        Some([]) => return Err(Error::invalid(OP, "expected at least one colour, got an empty list")),
        Some(list) => list.to_vec(),
        None => DEFAULT_COLORS.to_vec(),
    };
    if colors.is_none() && c == 1 {
        table.iter_mut().for_each(|col| col[0] = 1.0);
    }
    let bx = boxes.to_vec::<f32>()?;
    if let Some(i) = bx.iter().position(|v| v.is_nan()) {
        return Err(Error::invalid(
            OP,
            format!(
                "expected box coordinates that are numbers, got NaN in box {} of image {}",
                i / 4 % boxes.dims()[1],
                i / 4 / boxes.dims()[1]
            ),
        ));
    }
    let nb = boxes.dims()[1];
    let mut px = images.to_vec::<f32>()?;
    let (hi, wi) = (h as i64, w as i64);
    for b in 0..n {
        for k in 0..nb {
            let bb = &bx[(b * nb + k) * 4..(b * nb + k + 1) * 4];
            let color = table[k % table.len()];
            // f32 products truncated toward zero, as TF's static_cast<int64>.
            let (r0, c0) = ((bb[0] * (h as f32 - 1.0)) as i64, (bb[1] * (w as f32 - 1.0)) as i64);
            let (r1, c1) = ((bb[2] * (h as f32 - 1.0)) as i64, (bb[3] * (w as f32 - 1.0)) as i64);
            if r0 > r1 || c0 > c1 || r0 >= hi || r1 < 0 || c0 >= wi || c1 < 0 {
                continue;
            }
            let (r0c, r1c, c0c, c1c) = (r0.max(0), r1.min(hi - 1), c0.max(0), c1.min(wi - 1));
            let mut put = |r: i64, col: i64| {
                let at = ((b * h + r as usize) * w + col as usize) * c;
                px[at..at + c].copy_from_slice(&color[..c]);
            };
            for j in c0c..=c1c {
                if r0 >= 0 {
                    put(r0, j);
                }
                if r1 < hi {
                    put(r1, j);
                }
            }
            for i in r0c..=r1c {
                if c0 >= 0 {
                    put(i, c0);
                }
                if c1 < wi {
                    put(i, c1);
                }
            }
        }
    }
    Tensor::from_vec(px, images.shape().clone(), images.device())
}

/// A 5×7 bitmap font for ASCII 32..=95 (space to underscore): seven rows per glyph, bit 4 the
/// leftmost column. Lower-case letters are drawn as capitals; other characters as `?`.
const FONT: [[u8; 7]; 64] = [
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // ' '
    [0x04, 0x04, 0x04, 0x04, 0x00, 0x00, 0x04], // !
    [0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00], // "
    [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A], // #
    [0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04], // $
    [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03], // %
    [0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D], // &
    [0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00], // '
    [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02], // (
    [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08], // )
    [0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00], // *
    [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00], // +
    [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08], // ,
    [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00], // -
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C], // .
    [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00], // /
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], // 0
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // 1
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], // 2
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // 3
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], // 4
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // 5
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], // 6
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], // 8
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // 9
    [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00], // :
    [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08], // ;
    [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02], // <
    [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00], // =
    [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08], // >
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04], // ?
    [0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E], // @
    [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11], // A
    [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E], // B
    [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], // C
    [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C], // D
    [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], // E
    [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10], // F
    [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], // G
    [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], // H
    [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], // I
    [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C], // J
    [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], // K
    [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F], // L
    [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], // M
    [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11], // N
    [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], // O
    [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10], // P
    [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], // Q
    [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11], // R
    [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], // S
    [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04], // T
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], // U
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04], // V
    [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], // W
    [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11], // X
    [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04], // Y
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F], // Z
    [0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E], // [
    [0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00], // backslash
    [0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E], // ]
    [0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00], // ^
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F], // _
];

/// The glyph of a character (capitals for lower case, `?` for anything unknown).
fn glyph(ch: char) -> &'static [u8; 7] {
    let up = ch.to_ascii_uppercase();
    match up as u32 {
        32..=95 => &FONT[up as usize - 32],
        _ => &FONT['?' as usize - 32],
    }
}

/// Draws `text` in black on an RGB u8 canvas of width `cw` at `(x, y)`, `scale` pixels per font
/// pixel, stopping at `max_w` pixels of text.
fn draw_text(canvas: &mut [u8], cw: usize, x: usize, y: usize, text: &str, scale: usize, max_w: usize) {
    let advance = 6 * scale;
    for (i, ch) in text.chars().enumerate() {
        if (i + 1) * advance > max_w + scale {
            break;
        }
        for (row, bits) in glyph(ch).iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (x + i * advance + col * scale + dx, y + row * scale + dy);
                        canvas[(py * cw + px) * 3..(py * cw + px) * 3 + 3].fill(0);
                    }
                }
            }
        }
    }
}

/// Lays a batch out as a grid, `cols` images per row, each with its title above it in a small
/// built-in 5×7 font, on a white background, and writes it to `path` as PNG. Returns the
/// canvas (uint8 `[H, W, 3]`) it wrote: [`image_grid`]'s.
///
/// # Errors
/// As [`image_grid`]; `InvalidArgument` for an unwritable path.
pub fn save_image_grid(path: impl AsRef<std::path::Path>, images: &Tensor, titles: &[&str], cols: usize) -> Result<Tensor> {
    let grid = image_grid(images, titles, cols)?;
    let png = encode_png(&grid)?;
    let path = path.as_ref();
    std::fs::write(path, png).map_err(|e| Error::invalid("save_image_grid", format!("cannot write {}: {e}", path.display())))?;
    Ok(grid)
}

/// The canvas of [`save_image_grid`] (uint8 `[H, W, 3]`), without writing it: each image in a
/// cell padded by 2 pixels (4 from 100 pixels wide), its title above it.
///
/// `images` is `[N, H, W, C]` with C of 1 (drawn grey) or 3, either float32 in `[0, 1]`
/// (saturated) or uint8. `titles` is empty or has one entry per image; titles print in capitals
/// (the font has no lower case) and are cut to the image width. Images of 100 pixels or wider
/// get a font twice as large.
///
/// # Errors
/// `RankMismatch`/`ShapeMismatch` for other shapes, `InvalidArgument` for `cols == 0` or a
/// titles list of the wrong length; `DTypeMismatch` for other dtypes.
pub fn image_grid(images: &Tensor, titles: &[&str], cols: usize) -> Result<Tensor> {
    const OP: &str = "save_image_grid";
    if images.rank() != 4 {
        return Err(Error::rank(OP, "4 (N, H, W, C)", images.shape()));
    }
    let [n, h, w, c] = [images.dims()[0], images.dims()[1], images.dims()[2], images.dims()[3]];
    if c != 1 && c != 3 {
        return Err(Error::shape(OP, "images with 1 or 3 channels", images.shape()));
    }
    if cols == 0 || n == 0 {
        return Err(Error::invalid(OP, format!("expected cols >= 1 and at least one image, got cols={cols} and shape {}", images.shape())));
    }
    if !titles.is_empty() && titles.len() != n {
        return Err(Error::invalid(OP, format!("expected no titles or one per image ({n}), got {}", titles.len())));
    }
    let bytes = match images.dtype() {
        DType::U8 => images.to_vec::<u8>()?,
        DType::F32 => convert_image_dtype(images, DType::U8, true)?.to_vec::<u8>()?,
        other => return Err(Error::dtype(OP, "float32 or uint8 images", other)),
    };
    let scale = if w >= 100 { 2 } else { 1 };
    let (pad, title_h) = (2 * scale, if titles.is_empty() { 0 } else { 7 * scale + 3 * scale });
    let cols = cols.min(n);
    let rows = n.div_ceil(cols);
    let (cell_w, cell_h) = (w + 2 * pad, h + title_h + 2 * pad);
    let (cw, ch) = (cols * cell_w, rows * cell_h);
    let mut canvas = vec![255u8; cw * ch * 3];
    for k in 0..n {
        let (x0, y0) = ((k % cols) * cell_w + pad, (k / cols) * cell_h + pad);
        if let Some(t) = titles.get(k) {
            draw_text(&mut canvas, cw, x0, y0 + scale, t, scale, w);
        }
        for y in 0..h {
            for x in 0..w {
                let src = ((k * h + y) * w + x) * c;
                let dst = ((y0 + title_h + y) * cw + x0 + x) * 3;
                for j in 0..3 {
                    canvas[dst + j] = bytes[src + if c == 1 { 0 } else { j }];
                }
            }
        }
    }
    Tensor::from_vec(canvas, vec![ch, cw, 3], Device::Cpu)
}
