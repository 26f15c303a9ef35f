//! PNG and JPEG decoding and encoding to and from uint8 `[H, W, C]` tensors (`tf.io.decode_*`).

use super::jpeg_markers::reaches_end_of_image;
use fovea_core::io::limit::{check_declared, max_decompressed_bytes};
use fovea_core::{DType, Device, Error, Result, Tensor};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Converts a decoded image to `channels` (0 keeps the file's own: 1, 2, 3 or 4).
fn to_tensor(img: DynamicImage, channels: usize, device: Device) -> Result<Tensor> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let own = img.color().channel_count() as usize;
    let c = if channels == 0 { own } else { channels };
    let data = match c {
        // libpng's fixed-point luma (png_set_rgb_to_gray with 0.299/0.587), which TF's decoder
        // asks for; the image crate's own conversion uses Rec. 709 weights instead.
        1 if own >= 3 => img
            .into_rgb8()
            .into_raw()
            .chunks_exact(3)
            .map(|p| ((9797 * p[0] as u32 + 19234 * p[1] as u32 + 3737 * p[2] as u32) >> 15) as u8)
            .collect(),
        1 => img.into_luma8().into_raw(),
        2 => img.into_luma_alpha8().into_raw(),
        3 => img.into_rgb8().into_raw(),
        _ => img.into_rgba8().into_raw(),
    };
    Tensor::from_vec(data, vec![h, w, c], device)
}

fn decode(op: &'static str, bytes: &[u8], format: Option<ImageFormat>, channels: usize, device: Device) -> Result<Tensor> {
    let limit = max_decompressed_bytes().map_err(|e| Error::invalid(op, e.to_string()))?;
    decode_limited(op, bytes, format, channels, device, limit)
}

/// Decodes within `limit`: the pixels the header declares (width × height × channels × bytes
/// per sample, and the tensor's width × height × `channels`) are checked against it before
/// anything is allocated or inflated; the decoder itself inflates no more rows than declared.
fn decode_limited(
    op: &'static str,
    bytes: &[u8],
    format: Option<ImageFormat>,
    channels: usize,
    device: Device,
    limit: u64,
) -> Result<Tensor> {
    if !matches!(channels, 0 | 1 | 3 | 4) {
        return Err(Error::invalid(op, format!("expected channels 0, 1, 3 or 4, got {channels}")));
    }
    let cannot = |e: image::ImageError| Error::invalid(op, format!("cannot decode {} bytes as an image: {e}", bytes.len()));
    let mut reader = ImageReader::new(Cursor::new(bytes));
    match format {
        Some(f) => reader.set_format(f),
        None => reader = reader.with_guessed_format().map_err(|e| cannot(e.into()))?,
    }
    let kind = match reader.format() {
        Some(ImageFormat::Png) => "PNG",
        Some(ImageFormat::Jpeg) => "JPEG",
        _ => "image",
    };
    // Data that is not a JPEG at all is left to the decoder, whose error says so.
    if kind == "JPEG" && bytes.starts_with(&[0xFF, 0xD8]) && !reaches_end_of_image(bytes) {
        return Err(Error::invalid(
            op,
            format!("the JPEG data is truncated or corrupt: its {} bytes end before the end-of-image marker", bytes.len()),
        ));
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(limit);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(cannot)?;
    let (w, h) = decoder.dimensions();
    let color = decoder.color_type();
    let own = u64::from(color.channel_count());
    let out = u64::from(w) * u64::from(h) * if channels == 0 { own } else { channels as u64 };
    let declared = decoder.total_bytes().max(out);
    check_declared(
        || format!("a {w}×{h} {kind} with {own} channel(s) of {} byte(s)", color.bytes_per_pixel() as u64 / own.max(1)),
        declared,
        limit,
    )
    .map_err(|e| Error::invalid(op, e.to_string()))?;
    let img = DynamicImage::from_decoder(decoder).map_err(cannot)?;
    to_tensor(img, channels, device)
}

/// Decodes a PNG into a uint8 `[H, W, C]` tensor (`tf.io.decode_png`); `channels` 0 keeps the
/// file's channel count (a grey+alpha PNG gives 2). 16-bit PNGs are reduced to 8 bits.
///
/// # Errors
/// `InvalidArgument` for corrupt or non-PNG data, `channels` other than 0, 1, 3, 4, or pixels
/// over the decompression limit ([`decode_image_with_limit`]).
pub fn decode_png(bytes: &[u8], channels: usize, device: Device) -> Result<Tensor> {
    decode("decode_png", bytes, Some(ImageFormat::Png), channels, device)
}

/// Decodes a JPEG into a uint8 `[H, W, C]` tensor (`tf.io.decode_jpeg`). Decoders differ in
/// chroma upsampling and IDCT rounding, so values may differ from libjpeg's by a few levels.
///
/// # Errors
/// `InvalidArgument` for corrupt or non-JPEG data, `channels` other than 0, 1, 3, 4, or pixels
/// over the decompression limit ([`decode_image_with_limit`]).
pub fn decode_jpeg(bytes: &[u8], channels: usize, device: Device) -> Result<Tensor> {
    decode("decode_jpeg", bytes, Some(ImageFormat::Jpeg), channels, device)
}

/// Decodes a PNG or JPEG, detected from its signature (`tf.io.decode_image` for still images).
///
/// # Errors
/// `InvalidArgument` for unrecognised or corrupt data, `channels` other than 0, 1, 3, 4, or
/// pixels over the decompression limit ([`decode_image_with_limit`]).
pub fn decode_image(bytes: &[u8], channels: usize, device: Device) -> Result<Tensor> {
    decode("decode_image", bytes, None, channels, device)
}

/// [`decode_image`] within an explicit decompression limit instead of the global one
/// ([`fovea_core::io::limit`]): an image whose header declares more than `limit` bytes of
/// pixels is refused before any of it is inflated.
///
/// # Errors
/// As [`decode_image`]; `InvalidArgument` naming the dimensions and the limit for an image
/// over it.
pub fn decode_image_with_limit(bytes: &[u8], channels: usize, device: Device, limit: u64) -> Result<Tensor> {
    decode_limited("decode_image", bytes, None, channels, device, limit)
}

/// Checks a uint8 `[H, W, C]` image and returns its dims and bytes.
fn image_bytes(op: &'static str, image: &Tensor, allowed: &[usize]) -> Result<(u32, u32, usize, Vec<u8>)> {
    if image.rank() != 3 {
        return Err(Error::rank(op, "3 (H, W, C)", image.shape()));
    }
    if image.dtype() != DType::U8 {
        return Err(Error::dtype(op, "uint8 (use convert_image_dtype on float images)", image.dtype()));
    }
    let d = image.dims();
    if !allowed.contains(&d[2]) {
        return Err(Error::shape(op, format!("a channel axis of size {allowed:?}"), image.shape()));
    }
    if d[0] == 0 || d[1] == 0 {
        return Err(Error::invalid(op, format!("expected a non-empty image, got shape {}", image.shape())));
    }
    Ok((d[1] as u32, d[0] as u32, d[2], image.to_vec::<u8>()?))
}

fn color_type(c: usize) -> image::ExtendedColorType {
    match c {
        1 => image::ExtendedColorType::L8,
        2 => image::ExtendedColorType::La8,
        3 => image::ExtendedColorType::Rgb8,
        _ => image::ExtendedColorType::Rgba8,
    }
}

/// Encodes a uint8 `[H, W, C]` image (C = 1, 2, 3 or 4) as PNG (`tf.io.encode_png`).
///
/// # Errors
/// `RankMismatch`, `DTypeMismatch` or `ShapeMismatch` for a bad image; `InvalidArgument` if
/// the encoder fails.
pub fn encode_png(image: &Tensor) -> Result<Vec<u8>> {
    const OP: &str = "encode_png";
    let (w, h, c, data) = image_bytes(OP, image, &[1, 2, 3, 4])?;
    let mut out = Vec::new();
    image::ImageEncoder::write_image(image::codecs::png::PngEncoder::new(&mut out), &data, w, h, color_type(c))
        .map_err(|e| Error::invalid(OP, format!("encoder failed: {e}")))?;
    Ok(out)
}

/// Encodes a uint8 `[H, W, C]` image (C = 1 or 3) as baseline JPEG with `quality` in 1..=100
/// (`tf.io.encode_jpeg`).
///
/// # Errors
/// As [`encode_png`]; `InvalidArgument` for a quality outside 1..=100.
pub fn encode_jpeg(image: &Tensor, quality: u8) -> Result<Vec<u8>> {
    const OP: &str = "encode_jpeg";
    if !(1..=100).contains(&quality) {
        return Err(Error::invalid(OP, format!("expected quality in 1..=100, got {quality}")));
    }
    let (w, h, c, data) = image_bytes(OP, image, &[1, 3])?;
    let mut out = Vec::new();
    image::ImageEncoder::write_image(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality), &data, w, h, color_type(c))
        .map_err(|e| Error::invalid(OP, format!("encoder failed: {e}")))?;
    Ok(out)
}
