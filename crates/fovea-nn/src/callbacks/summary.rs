//! `SummaryWriter`: TensorBoard event files (`tf.summary.create_file_writer`) for custom training
//! loops and the [`super::tensorboard::TensorBoard`] callback.
//!
//! A file is a sequence of records ([`fovea_core::io::record`]) each holding an `Event` protobuf,
//! the first one carrying the file version. Scalars, histograms and images are written in the
//! legacy `Summary` forms (`simple_value`, `HistogramProto`, PNG `Image`) that every TensorBoard
//! reads; text is a string tensor for the `text` plugin.

use super::proto::{self, Event, HistogramProto, Kind, PluginData, Summary, SummaryMetadata, TensorProto, Value, What};
use crate::{Error, Result};
use fovea_core::io::record::write_record;
use fovea_core::{DType, Tensor};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Buckets per histogram, as `tf.summary.histogram`'s default.
pub const HISTOGRAM_BUCKETS: usize = 30;

/// Images written from one batch at most, as `tf.summary.image`'s `max_outputs`.
pub const MAX_IMAGES: usize = 3;

fn wall_time() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The host name for the file name (no dependency: the kernel's, then the environment's).
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = raw.trim().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// Writes one event file in a log directory.
pub struct SummaryWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl std::fmt::Debug for SummaryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SummaryWriter({})", self.path.display())
    }
}

impl SummaryWriter {
    /// Creates `log_dir` if needed and a new `events.out.tfevents.<secs>.<host>` file in it (with
    /// `.1`, `.2`, ... appended when a writer of the same second already made that name), then
    /// writes the file-version event.
    ///
    /// # Errors
    /// `Config` naming the directory or file when it cannot be created.
    pub fn new(log_dir: impl AsRef<Path>) -> Result<SummaryWriter> {
        let dir = log_dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::Config(format!("SummaryWriter: cannot create {}: {e}", dir.display())))?;
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let base = format!("events.out.tfevents.{secs}.{}", hostname());
        let mut path = dir.join(&base);
        let mut n = 0;
        let file = loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    n += 1;
                    path = dir.join(format!("{base}.{n}"));
                }
                Err(e) => return Err(Error::Config(format!("SummaryWriter: cannot create {}: {e}", path.display()))),
            }
        };
        let mut w = SummaryWriter { path, file: BufWriter::new(file) };
        w.event(0, What::FileVersion("brain.Event:2".into()))?;
        w.flush()?;
        Ok(w)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn event(&mut self, step: i64, what: What) -> Result<()> {
        let bytes = prost::Message::encode_to_vec(&Event { wall_time: wall_time(), step, what: Some(what) });
        write_record(&mut self.file, &bytes).map_err(|e| Error::Config(format!("SummaryWriter: cannot write {}: {e}", self.path.display())))
    }

    fn values(&mut self, step: i64, value: Vec<Value>) -> Result<()> {
        self.event(step, What::Summary(Summary { value }))
    }

    /// Writes a scalar (`tf.summary.scalar`), stored as float32 like TensorBoard's.
    ///
    /// # Errors
    /// `Config` for I/O errors.
    pub fn scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<()> {
        self.values(step, vec![Value { tag: tag.into(), metadata: None, value: Some(Kind::SimpleValue(value as f32)) }])
    }

    /// Writes a histogram of a tensor's values in [`HISTOGRAM_BUCKETS`] equal-width buckets from
    /// its minimum to its maximum (`tf.summary.histogram`); see [`histogram_of`].
    ///
    /// # Errors
    /// `Config` naming the tag for an empty tensor, or one holding NaN or infinity; `Config` for I/O.
    pub fn histogram(&mut self, tag: &str, values: &Tensor, step: i64) -> Result<()> {
        let v = values.detach().cast(DType::F32)?.to_vec::<f32>()?;
        let histo = histogram_of(&v.iter().map(|&x| x as f64).collect::<Vec<_>>(), HISTOGRAM_BUCKETS)
            .map_err(|msg| Error::Config(format!("SummaryWriter::histogram {tag:?}: {msg}")))?;
        self.values(step, vec![Value { tag: tag.into(), metadata: None, value: Some(Kind::Histo(histo)) }])
    }

    /// Writes an image (`[H, W, C]` or `[1, H, W, C]`, tagged `tag`) or the first [`MAX_IMAGES`]
    /// of a batch (`[N, H, W, C]`, tagged `tag/0`, `tag/1`, ...) as PNGs (`tf.summary.image`). `C` is 1, 3 or 4. uint8 pixels
    /// are written as they are; float pixels are taken in [0, 1], clipped, and scaled like TF's
    /// `convert_image_dtype` (`x * 255.5`, truncated).
    ///
    /// # Errors
    /// `Config` naming the tag for another rank, channel count or dtype; `Config` for I/O.
    pub fn image(&mut self, tag: &str, images: &Tensor, step: i64) -> Result<()> {
        let err = |msg: String| Error::Config(format!("SummaryWriter::image {tag:?}: {msg}"));
        let dims = images.dims().to_vec();
        let (n, h, w, c) = match dims[..] {
            [h, w, c] => (1, h, w, c),
            [n, h, w, c] => (n, h, w, c),
            _ => return Err(err(format!("expected an image [H, W, C] or a batch [N, H, W, C], got shape {dims:?}"))),
        };
        if !matches!(c, 1 | 3 | 4) || h == 0 || w == 0 {
            return Err(err(format!("expected 1, 3 or 4 channels and a non-empty image, got shape {dims:?}")));
        }
        let pixels: Vec<u8> = match images.dtype() {
            DType::U8 => images.to_vec::<u8>()?,
            DType::F32 | DType::F16 | DType::BF16 => {
                images.detach().cast(DType::F32)?.to_vec::<f32>()?.iter().map(|&x| (x.clamp(0.0, 1.0) * 255.5) as u8).collect()
            }
            other => return Err(err(format!("expected uint8 or float pixels, got dtype {other}"))),
        };
        let size = h * w * c;
        let values = (0..n.min(MAX_IMAGES))
            .map(|i| {
                let image = proto::Image {
                    height: h as i32,
                    width: w as i32,
                    colorspace: c as i32,
                    encoded_image_string: encode_png(&pixels[i * size..(i + 1) * size], h, w, c)?,
                };
                let tag = if n == 1 { tag.to_string() } else { format!("{tag}/{i}") };
                Ok(Value { tag, metadata: None, value: Some(Kind::Image(image)) })
            })
            .collect::<Result<Vec<_>>>()?;
        self.values(step, values)
    }

    /// Writes the channels of one feature map (`[H, W, C]` or `[1, H, W, C]`, any `C`) as one grey
    /// image: the channels tiled in a near-square grid with 1-pixel gaps, each stretched from
    /// its own minimum (black) to its maximum (white).
    ///
    /// # Errors
    /// `Config` naming the tag for another shape; `Config` for I/O.
    pub fn feature_maps(&mut self, tag: &str, maps: &Tensor, step: i64) -> Result<()> {
        let dims = maps.dims().to_vec();
        let (h, w, c) = match dims[..] {
            [h, w, c] | [1, h, w, c] if h * w * c > 0 => (h, w, c),
            _ => {
                return Err(Error::Config(format!(
                    "SummaryWriter::feature_maps {tag:?}: expected [H, W, C] or [1, H, W, C], got shape {dims:?}"
                )))
            }
        };
        let v = maps.detach().cast(DType::F32)?.to_vec::<f32>()?;
        let cols = (c as f64).sqrt().ceil() as usize;
        let rows = c.div_ceil(cols);
        let (gh, gw) = (rows * (h + 1) - 1, cols * (w + 1) - 1);
        let mut grid = vec![0u8; gh * gw];
        for ch in 0..c {
            let (lo, hi) = (0..h * w).map(|p| v[p * c + ch]).fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
            let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
            let (oy, ox) = (ch / cols * (h + 1), ch % cols * (w + 1));
            for y in 0..h {
                for x in 0..w {
                    grid[(oy + y) * gw + ox + x] = ((v[(y * w + x) * c + ch] - lo) * scale).round() as u8;
                }
            }
        }
        let image =
            proto::Image { height: gh as i32, width: gw as i32, colorspace: 1, encoded_image_string: encode_png(&grid, gh, gw, 1)? };
        self.values(step, vec![Value { tag: tag.into(), metadata: None, value: Some(Kind::Image(image)) }])
    }

    /// Writes text (Markdown) for TensorBoard's text plugin (`tf.summary.text`).
    ///
    /// # Errors
    /// `Config` for I/O errors.
    pub fn text(&mut self, tag: &str, text: &str, step: i64) -> Result<()> {
        let metadata = SummaryMetadata { plugin_data: Some(PluginData { plugin_name: "text".into(), content: Vec::new() }) };
        let tensor =
            TensorProto { dtype: proto::DT_STRING, tensor_shape: Some(Default::default()), string_val: vec![text.as_bytes().to_vec()] };
        self.values(step, vec![Value { tag: tag.into(), metadata: Some(metadata), value: Some(Kind::Tensor(tensor)) }])
    }

    /// Flushes written events to the file, so TensorBoard sees them.
    ///
    /// # Errors
    /// `Config` for I/O errors.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::Config(format!("SummaryWriter: cannot write {}: {e}", self.path.display())))
    }
}

impl Drop for SummaryWriter {
    fn drop(&mut self) {
        let _ = self.file.flush();
    }
}

/// Reads back every event of an event file (for tests and tools; TensorBoard does the viewing).
///
/// # Errors
/// `Config` naming the file for I/O errors, a corrupt or truncated record (with its byte offset)
/// or a record that is not an `Event`.
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<Event>> {
    let path = path.as_ref();
    let err = |msg: String| Error::Config(format!("read_events: {}: {msg}", path.display()));
    let file = File::open(path).map_err(|e| err(e.to_string()))?;
    let mut reader = fovea_core::io::record::RecordReader::new(std::io::BufReader::new(file));
    let mut events = Vec::new();
    while let Some(bytes) = reader.next_record().map_err(|e| err(e.to_string()))? {
        events.push(
            <Event as prost::Message>::decode(bytes.as_slice())
                .map_err(|e| err(format!("record {} is not an Event: {e}", events.len())))?,
        );
    }
    Ok(events)
}

/// The histogram of `values` in `buckets` equal-width buckets over `[min, max]`; bucket `i`
/// holds the values in `[edge_i, edge_{i+1})`, the last one also `max`, and `bucket_limit`
/// holds the right edges. All values equal: one bucket.
///
/// # Errors
/// A message when `values` is empty or not all finite.
pub fn histogram_of(values: &[f64], buckets: usize) -> std::result::Result<HistogramProto, String> {
    if values.is_empty() {
        return Err("expected at least one value, got none".into());
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(format!("expected finite values, got {bad}"));
    }
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let n = if max > min { buckets.max(1) } else { 1 };
    let width = (max - min) / n as f64;
    let mut bucket = vec![0.0; n];
    for &v in values {
        let i = if width > 0.0 { (((v - min) / width) as usize).min(n - 1) } else { 0 };
        bucket[i] += 1.0;
    }
    let bucket_limit = (1..=n).map(|i| if i == n { max } else { min + width * i as f64 }).collect();
    Ok(HistogramProto {
        min,
        max,
        num: values.len() as f64,
        sum: values.iter().sum(),
        sum_squares: values.iter().map(|v| v * v).sum(),
        bucket_limit,
        bucket,
    })
}

/// An 8-bit PNG of `h × w × c` pixels (`c` 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), compressed by
/// the `png` crate (the same encoder fovea-vision writes images with).
///
/// # Errors
/// `Config` when the pixels do not fill `h × w × c` or the encoder refuses the size (zero or
/// over PNG's 2^31 − 1 rows or columns).
pub fn encode_png(pixels: &[u8], h: usize, w: usize, c: usize) -> Result<Vec<u8>> {
    let err = |detail: String| Error::Config(format!("encode_png: {detail}"));
    let color = match c {
        1 => png::ColorType::Grayscale,
        2 => png::ColorType::GrayscaleAlpha,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        _ => return Err(err(format!("expected 1, 2, 3 or 4 channels, got {c}"))),
    };
    if h.checked_mul(w).and_then(|p| p.checked_mul(c)) != Some(pixels.len()) {
        return Err(err(format!("expected {h}×{w}×{c} pixel bytes, got {}", pixels.len())));
    }
    let side = |v: usize| u32::try_from(v).map_err(|_| err(format!("a side of {v} pixels is too large for PNG")));
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side(w)?, side(h)?);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| err(e.to_string()))?;
    writer.write_image_data(pixels).map_err(|e| err(e.to_string()))?;
    writer.finish().map_err(|e| err(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
