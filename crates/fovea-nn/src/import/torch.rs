//! PyTorch `state_dict` files — `torch.save` archives (`.pt`, `.pth`) and `.safetensors` — read
//! into named tensors, plus the layout changes between PyTorch and Keras weights: convolution
//! kernels OIHW → HWIO and linear weights `[out, in]` → Dense kernels `[in, out]`.

use super::pickle::{unpickle, TensorRef, Value};
use super::zip::ZipArchive;
use crate::{Error, Result};
use fovea_core::io::read_safetensors;
use fovea_core::{Device, Tensor};
use std::path::Path;

/// Reads a PyTorch `state_dict` from `path`: a `torch.save` zip archive or a `.safetensors`
/// file, told apart by their first bytes. Floating-point tensors come back as `float32`,
/// integer ones as `int64`, in the file's order.
///
/// # Errors
/// `Config` naming the path for a missing, truncated or corrupt file, a legacy (pre-1.6,
/// non-zip) archive, a pickle that is not a flat `{name: tensor}` dict, or a refused global.
pub fn read_state_dict(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Config(format!("cannot read {what}: {e}")))?;
    state_dict_from_bytes(&bytes, &what)
}

/// [`read_state_dict`] on bytes already in memory; `what` names them in errors.
///
/// # Errors
/// As [`read_state_dict`].
pub fn state_dict_from_bytes(bytes: &[u8], what: &str) -> Result<Vec<(String, Tensor)>> {
    if bytes.starts_with(b"PK\x03\x04") {
        return from_zip(bytes, what);
    }
    // The legacy format opens with a pickled magic number, 0x1950a86a20f9469cfc6c (a LONG1 of
    // 10 bytes); a safetensors header length may also start with 0x80, so test all of it.
    if bytes.starts_with(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19") {
        return Err(Error::Config(format!(
            "{what}: a legacy (pre-1.6) torch.save file; re-save it with torch.save(sd, path) from PyTorch 1.6 or later"
        )));
    }
    let (tensors, _) = read_safetensors(bytes, Device::Cpu).map_err(|e| {
        // The sentence alone: the reader's own "safetensors: invalid argument:" would stack a
        // second prefix onto the file's.
        let why = match e {
            fovea_core::Error::InvalidArgument { msg, .. } => msg,
            other => other.to_string(),
        };
        Error::Config(format!("{what}: neither a torch.save zip archive nor a readable safetensors file ({why})"))
    })?;
    Ok(tensors)
}

fn from_zip(bytes: &[u8], what: &str) -> Result<Vec<(String, Tensor)>> {
    let zip = ZipArchive::new(bytes, what)?;
    let pkl =
        zip.find("/data.pkl").ok_or_else(|| Error::Config(format!("{what}: a zip archive without data.pkl, not a torch.save file")))?;
    let prefix = pkl.name.trim_end_matches("data.pkl").to_string();
    if let Some(order) = zip.find("/byteorder") {
        let order = zip.read(order)?;
        if order != b"little" {
            return Err(Error::Config(format!("{what}: big-endian storages are not supported")));
        }
    }
    let root = unpickle(zip.read(pkl)?).map_err(|e| Error::Config(format!("{what}: {e}")))?;
    let Value::Dict(mut items) = root else {
        return Err(Error::Config(format!("{what}: expected a state_dict (a dict of tensors), the pickle holds {}", kind(&root))));
    };
    // Training checkpoints often wrap the weights: {"state_dict": {...}, "epoch": 3, ...}.
    let nested = items.iter().position(|(k, v)| matches!((k, v), (Value::Str(k), Value::Dict(_)) if k == "state_dict" || k == "model"));
    if let Some(i) = nested {
        if let (_, Value::Dict(inner)) = items.swap_remove(i) {
            items = inner;
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let Value::Str(name) = k else {
            return Err(Error::Config(format!("{what}: a state_dict key is {}, expected a string", kind(&k))));
        };
        let Value::Tensor(t) = v else {
            return Err(Error::Config(format!("{what}: {name} holds {}, expected a tensor", kind(&v))));
        };
        let entry = format!("{prefix}data/{}", t.storage.key);
        let data = zip
            .entries
            .iter()
            .find(|e| e.name == entry)
            .ok_or_else(|| Error::Config(format!("{what}: {name}: storage {entry} is missing from the archive")))?;
        let tensor = materialise(&t, zip.read(data)?).map_err(|e| Error::Config(format!("{what}: {name}: {e}")))?;
        out.push((name, tensor));
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an int",
        Value::Float(_) => "a float",
        Value::Str(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Dict(_) => "a dict",
        Value::Tensor(_) => "a tensor",
        Value::Storage(_) => "a storage",
        Value::Global(_) => "a global",
    }
}

/// Half-precision bits to `f32` (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value m · 2⁻²⁴.
            let v = m as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Gathers the strided view `t` of the raw little-endian storage `data` into a dense tensor.
fn materialise(t: &TensorRef, data: &[u8]) -> std::result::Result<Tensor, String> {
    enum Out {
        F(Vec<f32>),
        I(Vec<i64>),
    }
    let (width, float) = match t.storage.class.as_str() {
        "FloatStorage" => (4, true),
        "DoubleStorage" => (8, true),
        "HalfStorage" | "BFloat16Storage" => (2, true),
        "LongStorage" => (8, false),
        "IntStorage" => (4, false),
        "ShortStorage" => (2, false),
        "CharStorage" | "ByteStorage" | "BoolStorage" => (1, false),
        other => return Err(format!("unsupported storage type {other}")),
    };
    if !data.len().is_multiple_of(width) {
        return Err(format!("storage of {} bytes is not a whole number of {width}-byte elements", data.len()));
    }
    let n_storage = data.len() / width;
    // The sizes come from the file: checked, and every element must lie inside the storage,
    // which bounds the work and the allocation by the file's own size.
    let numel = fovea_core::checked_numel(&t.size).ok_or_else(|| format!("sizes {:?} overflow", t.size))?;
    if numel > 0 {
        let last = t
            .size
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |acc, (&n, &s)| (n - 1).checked_mul(s).and_then(|x| acc.checked_add(x)))
            .ok_or_else(|| format!("sizes {:?} with strides {:?} overflow", t.size, t.stride))?;
        if last >= n_storage {
            return Err(format!(
                "sizes {:?}, strides {:?} and offset {} reach element {last}, past the storage's {n_storage} elements (truncated file?)",
                t.size, t.stride, t.offset
            ));
        }
        // Overlapping (zero-stride) views may hold more elements than the storage, but not
        // more than the decompression limit allows in bytes.
        let limit = fovea_core::io::limit::max_decompressed_bytes().map_err(|e| e.to_string())?;
        if (numel as u64).saturating_mul(width as u64) > limit.max(data.len() as u64) {
            return Err(format!("sizes {:?} declare {numel} elements, more than the decompression limit of {limit} bytes allows", t.size));
        }
    }
    let mut idx = vec![0usize; t.size.len()];
    let mut out = if float { Out::F(Vec::with_capacity(numel)) } else { Out::I(Vec::with_capacity(numel)) };
    for _ in 0..numel {
        let at = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
        if at >= n_storage {
            return Err(format!("element {at} lies past the storage's {n_storage} elements (truncated file?)"));
        }
        let b = &data[at * width..(at + 1) * width];
        match (&mut out, t.storage.class.as_str()) {
            (Out::F(v), "FloatStorage") => v.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            (Out::F(v), "DoubleStorage") => v.push(f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32),
            (Out::F(v), "HalfStorage") => v.push(f16_to_f32(u16::from_le_bytes([b[0], b[1]]))),
            (Out::F(v), _) => v.push(f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)),
            (Out::I(v), "LongStorage") => v.push(i64::from_le_bytes(b.try_into().expect("8 bytes"))),
            (Out::I(v), "IntStorage") => v.push(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            (Out::I(v), "ShortStorage") => v.push(i64::from(i16::from_le_bytes([b[0], b[1]]))),
            (Out::I(v), "CharStorage") => v.push(i64::from(b[0] as i8)),
            (Out::I(v), _) => v.push(i64::from(b[0])),
        }
        // Row-major increment of the multi-index.
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    let shape = t.size.clone();
    match out {
        Out::F(v) => Tensor::from_vec(v, shape, Device::Cpu),
        Out::I(v) => Tensor::from_vec(v, shape, Device::Cpu),
    }
    .map_err(|e| e.to_string())
}

/// How a PyTorch weight becomes a Fovea (Keras-layout) weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// Unchanged (biases, batch-norm vectors).
    Identity,
    /// A `Conv2d` weight `[out, in, kh, kw]` → a `Conv2D` kernel `[kh, kw, in, out]`.
    Conv,
    /// A `Linear` weight `[out, in]` → a `Dense` kernel `[in, out]`.
    Linear,
    /// A `Linear` weight reading a flattened NCHW `(c, h, w)` map → a `Dense` kernel reading a
    /// flattened NHWC map: the rows are reordered from `(c, h, w)` to `(h, w, c)`.
    LinearFromChw(usize, usize, usize),
}

/// Applies `t` to the PyTorch tensor `x`.
///
/// # Errors
/// `Config` naming the transform when `x` has the wrong rank or size.
pub fn transform(x: &Tensor, t: Transform) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let bad = |want: &str| Error::Config(format!("{t:?}: expected a PyTorch weight of shape {want}, received {}", x.shape()));
    Ok(match t {
        Transform::Identity => x.clone(),
        Transform::Conv if dims.len() == 4 => x.permute(&[2, 3, 1, 0])?,
        Transform::Conv => return Err(bad("[out, in, kh, kw]")),
        Transform::Linear if dims.len() == 2 => x.transpose(0, 1)?,
        Transform::Linear => return Err(bad("[out, in]")),
        Transform::LinearFromChw(c, h, w) if dims.len() == 2 && dims[1] == c * h * w => {
            let o = dims[0] as isize;
            x.reshape(&[o, c as isize, h as isize, w as isize])?.permute(&[2, 3, 1, 0])?.reshape(&[(c * h * w) as isize, o])?
        }
        Transform::LinearFromChw(c, h, w) => return Err(bad(&format!("[out, {}]", c * h * w))),
    })
}

/// One entry of a name-mapping table: the PyTorch key, the Fovea weight name and the layout
/// change between them.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The `state_dict` key, e.g. `layer1.0.conv1.weight`.
    pub torch: String,
    /// The Fovea weight, e.g. `conv2_block1_1_conv/kernel`.
    pub fovea: String,
    /// How the tensor changes layout.
    pub transform: Transform,
}

/// Renames and re-lays-out a `state_dict` with `rules`. `arch` names the mapping in errors.
/// Batch norm's `num_batches_tracked` counters are dropped; any other key the table does not
/// know, and any key the table needs but the file lacks, is an error.
///
/// # Errors
/// `Config` naming the first missing key and the first unexpected one (a file for another
/// architecture), or a tensor whose rank does not fit its transform.
pub fn apply_rules(state: &[(String, Tensor)], rules: &[Rule], arch: &str) -> Result<Vec<(String, Tensor)>> {
    let by_key: std::collections::HashMap<&str, &Tensor> = state.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let known: std::collections::HashSet<&str> = rules.iter().map(|r| r.torch.as_str()).collect();
    let missing: Vec<&str> = rules.iter().map(|r| r.torch.as_str()).filter(|k| !by_key.contains_key(k)).collect();
    let unexpected: Vec<&str> =
        state.iter().map(|(k, _)| k.as_str()).filter(|k| !known.contains(k) && !k.ends_with("num_batches_tracked")).collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        let list = |v: &[&str]| if v.len() > 3 { format!("{}, … ({} in all)", v[..3].join(", "), v.len()) } else { v.join(", ") };
        return Err(Error::Config(format!(
            "not a {arch} state_dict: missing keys [{}]; unexpected keys [{}]",
            list(&missing),
            list(&unexpected)
        )));
    }
    rules
        .iter()
        .map(|r| {
            let t = transform(by_key[r.torch.as_str()], r.transform).map_err(|e| {
                let msg = match e {
                    Error::Config(m) => m,
                    other => other.to_string(),
                };
                Error::Config(format!("{arch}: {}: {msg}", r.torch))
            })?;
            Ok((r.fovea.clone(), t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: Vec<f32>, shape: Vec<usize>) -> Tensor {
        Tensor::from_vec(v, shape, Device::Cpu).unwrap()
    }

    #[test]
    fn layouts_change_as_keras_expects() {
        // OIHW [2, 1, 1, 2] → HWIO [1, 2, 1, 2]: kernel[0][w][0][o] = torch[o][0][0][w].
        let conv = transform(&t(vec![1., 2., 3., 4.], vec![2, 1, 1, 2]), Transform::Conv).unwrap();
        assert_eq!(conv.dims(), &[1, 2, 1, 2]);
        assert_eq!(conv.to_vec::<f32>().unwrap(), [1., 3., 2., 4.]);
        let dense = transform(&t(vec![1., 2., 3., 4., 5., 6.], vec![2, 3]), Transform::Linear).unwrap();
        assert_eq!(dense.to_vec::<f32>().unwrap(), [1., 4., 2., 5., 3., 6.]);
        // One output reading a (c=2, h=1, w=2) map: torch's input order c0w0, c0w1, c1w0, c1w1
        // becomes NHWC's w0c0, w0c1, w1c0, w1c1.
        let chw = transform(&t(vec![10., 11., 20., 21.], vec![1, 4]), Transform::LinearFromChw(2, 1, 2)).unwrap();
        assert_eq!(chw.dims(), &[4, 1]);
        assert_eq!(chw.to_vec::<f32>().unwrap(), [10., 20., 11., 21.]);
        let e = transform(&t(vec![1.; 6], vec![1, 6]), Transform::LinearFromChw(2, 1, 2)).unwrap_err().to_string();
        assert!(e.contains("expected a PyTorch weight of shape [out, 4], received [1, 6]"), "{e}");
    }

    #[test]
    fn declared_sizes_are_checked_against_the_storage() {
        use super::super::pickle::StorageRef;
        let view = |size: Vec<usize>, stride: Vec<usize>| TensorRef {
            storage: StorageRef { key: "0".into(), class: "FloatStorage".into() },
            offset: 0,
            size,
            stride,
        };
        let data = [0u8; 16]; // four f32 elements
        assert_eq!(materialise(&view(vec![2, 2], vec![2, 1]), &data).unwrap().dims(), &[2, 2]);
        // Huge sizes: an overflowing product, and one that would allocate terabytes.
        let e = materialise(&view(vec![1 << 40, 1 << 40], vec![1, 1]), &data).unwrap_err();
        assert!(e.contains("overflow"), "{e}");
        let e = materialise(&view(vec![1 << 40], vec![1]), &data).unwrap_err();
        assert!(e.contains("past the storage's 4 elements"), "{e}");
        // A zero-stride view may repeat elements, but not without bound.
        let e = materialise(&view(vec![1 << 50], vec![0]), &data).unwrap_err();
        assert!(e.contains("decompression limit"), "{e}");
        assert!(materialise(&view(vec![0, 1 << 50], vec![1, 1]), &data).unwrap().dims() == [0, 1 << 50]);
    }

    #[test]
    fn half_precision_decodes_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite() && f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn rules_rename_and_drop_batch_counters() {
        let counter = Tensor::from_vec(vec![5i64], Vec::<usize>::new(), Device::Cpu).unwrap();
        let state = vec![("fc.weight".to_string(), t(vec![1., 2.], vec![1, 2])), ("bn.num_batches_tracked".to_string(), counter)];
        let rules = [Rule { torch: "fc.weight".into(), fovea: "head/kernel".into(), transform: Transform::Linear }];
        let out = apply_rules(&state, &rules, "toy").unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].0.as_str(), out[0].1.dims()), ("head/kernel", &[2usize, 1][..]));
    }
}
