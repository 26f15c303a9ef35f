//! `Dataset.cache`: the first complete epoch is kept (in memory or in a file) and later epochs
//! replay it without running the upstream pipeline.
//!
//! The file format is Fovea's own, written for streaming: the magic `FOVEACACHE1`, then one
//! record per element (a tree: tag 0 = tensor with dtype, rank, dims and little-endian data;
//! tag 1 = tuple with its length; tag 2 = dict with its length and each key's UTF-8 bytes), then a footer (tag 0xFF and the element count). A file
//! without its footer is reported as truncated. The file is written under a temporary name and
//! renamed when the epoch completes, so an interrupted epoch never leaves a half cache behind.

use super::element::dtype_tag;
use super::{Cardinality, Dataset, Element, ElementIter, Node};
use crate::{Error, Result};
use fovea_core::{Device, HostData, Tensor};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const MAGIC: &[u8] = b"FOVEACACHE1";
const TAG_TENSOR: u8 = 0;
const TAG_TUPLE: u8 = 1;
const TAG_DICT: u8 = 2;
const TAG_END: u8 = 0xFF;

struct MemoryCache {
    input: Dataset,
    stored: Arc<Mutex<Option<Arc<Vec<Element>>>>>,
}

impl Node for MemoryCache {
    fn iter(&self) -> ElementIter {
        if let Some(v) = self.stored.lock().ok().and_then(|g| g.clone()) {
            return Box::new((0..v.len()).map(move |i| Ok(v[i].clone())));
        }
        let mut input = self.input.iter();
        let stored = self.stored.clone();
        let mut seen = Vec::new();
        let mut clean = true;
        Box::new(std::iter::from_fn(move || match input.next() {
            Some(Ok(e)) => {
                seen.push(e.clone());
                Some(Ok(e))
            }
            Some(Err(e)) => {
                // An epoch with errors is not a faithful copy; the next epoch runs upstream again.
                clean = false;
                Some(Err(e))
            }
            None => {
                if clean {
                    if let Ok(mut g) = stored.lock() {
                        *g = Some(Arc::new(std::mem::take(&mut seen)));
                    }
                }
                None
            }
        }))
    }

    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
}

struct FileCache {
    input: Dataset,
    path: PathBuf,
}

impl Node for FileCache {
    fn iter(&self) -> ElementIter {
        if self.path.exists() {
            return read_cache(&self.path);
        }
        let mut input = self.input.iter();
        let path = self.path.clone();
        // Unique per process and epoch, so two epochs running at once never share a file.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tmp = path.with_extension(format!("tmp-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let guard = TempFile(tmp.clone());
        let created = File::create(&tmp).map(BufWriter::new).and_then(|mut w| w.write_all(MAGIC).map(|_| w));
        let (mut writer, mut first_err) = match created {
            Ok(w) => (Some(w), None),
            Err(e) => (None, Some(Error::io(&tmp, e))),
        };
        let mut count = 0u64;
        let mut clean = true;
        Box::new(std::iter::from_fn(move || {
            // Owned by the closure, so an epoch dropped half-way removes its partial file.
            let _ = &guard;
            if let Some(e) = first_err.take() {
                writer = None;
                return Some(Err(e));
            }
            let w = writer.as_mut()?;
            match input.next() {
                Some(Ok(e)) => match write_element(w, &e, &tmp) {
                    Ok(()) => {
                        count += 1;
                        Some(Ok(e))
                    }
                    Err(err) => {
                        first_err = Some(err);
                        Some(Ok(e))
                    }
                },
                Some(Err(e)) => {
                    // An epoch with errors is not a faithful copy: it is not committed.
                    clean = false;
                    Some(Err(e))
                }
                None => {
                    let finish = if clean {
                        w.write_all(&[TAG_END])
                            .and_then(|_| w.write_all(&count.to_le_bytes()))
                            .and_then(|_| w.flush())
                            .and_then(|_| std::fs::rename(&tmp, &path))
                    } else {
                        Ok(())
                    };
                    writer = None;
                    finish.err().map(|e| Err(Error::io(&path, e)))
                }
            }
        }))
    }

    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
}

/// Removes a temporary file when dropped (after a successful rename there is nothing left to
/// remove).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_element(w: &mut impl Write, e: &Element, path: &Path) -> Result<()> {
    let io = |err| Error::io(path, err);
    match e {
        Element::Tensor(t) => {
            w.write_all(&[TAG_TENSOR, dtype_tag(t.dtype())?]).map_err(io)?;
            w.write_all(&(t.rank() as u32).to_le_bytes()).map_err(io)?;
            for &d in t.dims() {
                w.write_all(&(d as u64).to_le_bytes()).map_err(io)?;
            }
            let bytes: Vec<u8> = match t.host_view()?.as_ref() {
                HostData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                HostData::U8(v) => v.clone(),
                HostData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                HostData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                HostData::Bool(v) => v.iter().map(|&b| b as u8).collect(),
                // dtype_tag above refused these already.
                HostData::F16(_) | HostData::BF16(_) => {
                    return Err(Error::format("cache", format!("cannot cache tensors of dtype {}", t.dtype())))
                }
            };
            w.write_all(&bytes).map_err(io)
        }
        Element::Tuple(v) => {
            w.write_all(&[TAG_TUPLE]).map_err(io)?;
            w.write_all(&(v.len() as u32).to_le_bytes()).map_err(io)?;
            v.iter().try_for_each(|c| write_element(w, c, path))
        }
        Element::Dict(f) => {
            w.write_all(&[TAG_DICT]).map_err(io)?;
            w.write_all(&(f.len() as u32).to_le_bytes()).map_err(io)?;
            f.iter().try_for_each(|(k, c)| {
                w.write_all(&(k.len() as u32).to_le_bytes()).map_err(io)?;
                w.write_all(k.as_bytes()).map_err(io)?;
                write_element(w, c, path)
            })
        }
    }
}

/// Reads a cache file element by element; problems become `Err` items naming the file.
fn read_cache(path: &Path) -> ElementIter {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return Box::new(std::iter::once(Err(Error::io(path, e)))),
    };
    let mut r = Reader { r: BufReader::new(file), path: path.to_path_buf(), offset: 0 };
    let mut magic = [0u8; MAGIC.len()];
    if let Err(e) = r.exact(&mut magic).and_then(|_| {
        if magic == MAGIC {
            Ok(())
        } else {
            Err(r.corrupt(format!("expected the magic {:?}, found {:?}", String::from_utf8_lossy(MAGIC), String::from_utf8_lossy(&magic))))
        }
    }) {
        return Box::new(std::iter::once(Err(e)));
    }
    let mut count = 0u64;
    let mut done = false;
    Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let tag = match r.u8() {
            Ok(t) => t,
            Err(e) => {
                done = true;
                return Some(Err(e));
            }
        };
        if tag == TAG_END {
            done = true;
            return match r.u64() {
                Ok(n) if n == count => None,
                Ok(n) => Some(Err(r.corrupt(format!("the footer says {n} elements, the file holds {count}")))),
                Err(e) => Some(Err(e)),
            };
        }
        let out = r.element(tag, 0);
        if out.is_err() {
            done = true;
        }
        count += 1;
        Some(out)
    }))
}

struct Reader {
    r: BufReader<File>,
    path: PathBuf,
    offset: u64,
}

impl Reader {
    fn corrupt(&self, detail: String) -> Error {
        Error::format(format!("cache file {}", self.path.display()), format!("corrupt at byte {}: {detail}", self.offset))
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.r.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::format(
                    format!("cache file {}", self.path.display()),
                    format!(
                        "truncated: expected {} more bytes at byte {} (the writing epoch may have been interrupted; delete the file)",
                        buf.len(),
                        self.offset
                    ),
                )
            } else {
                Error::io(&self.path, e)
            }
        })?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.exact(&mut b)?;
        Ok(b[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn element(&mut self, tag: u8, depth: usize) -> Result<Element> {
        if depth > 64 {
            return Err(self.corrupt("elements nested deeper than 64 levels".into()));
        }
        match tag {
            TAG_TENSOR => {
                let dtype = self.u8()?;
                let rank = self.u32()? as usize;
                if rank > 16 {
                    return Err(self.corrupt(format!("tensor rank {rank} (at most 16 expected)")));
                }
                let dims = (0..rank).map(|_| self.u64().map(|d| d as usize)).collect::<Result<Vec<_>>>()?;
                let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n < 1 << 40);
                let n = n.ok_or_else(|| self.corrupt(format!("implausible tensor shape {dims:?}")))?;
                let size = match dtype {
                    0 | 4 => 4,
                    1 | 3 => 1,
                    2 => 8,
                    other => return Err(self.corrupt(format!("unknown dtype tag {other}"))),
                };
                let mut bytes = vec![0u8; n * size];
                self.exact(&mut bytes)?;
                let host = match dtype {
                    0 => HostData::F32(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
                    1 => HostData::U8(bytes),
                    2 => HostData::I64(bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()),
                    4 => HostData::I32(bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
                    _ => HostData::Bool(bytes.iter().map(|&b| b != 0).collect()),
                };
                Ok(Element::Tensor(Tensor::from_host(host, dims, Device::Cpu)?))
            }
            TAG_TUPLE => {
                let len = self.u32()?;
                let mut v = Vec::new();
                for _ in 0..len {
                    let t = self.u8()?;
                    v.push(self.element(t, depth + 1)?);
                }
                Ok(Element::Tuple(v))
            }
            TAG_DICT => {
                let len = self.u32()?;
                let mut f = Vec::new();
                for _ in 0..len {
                    let klen = self.u32()? as usize;
                    if klen > 1 << 16 {
                        return Err(self.corrupt(format!("field name of {klen} bytes")));
                    }
                    let mut key = vec![0u8; klen];
                    self.exact(&mut key)?;
                    let key = String::from_utf8(key).map_err(|_| self.corrupt("a field name is not UTF-8".into()))?;
                    let t = self.u8()?;
                    f.push((key, self.element(t, depth + 1)?));
                }
                Ok(Element::Dict(f))
            }
            other => Err(self.corrupt(format!("unknown record tag {other}"))),
        }
    }
}

impl Dataset {
    /// Keeps the first complete epoch in memory and replays it afterwards (`Dataset.cache()`).
    /// An epoch that is interrupted or yields an `Err` is not kept.
    pub fn cache(&self) -> Dataset {
        Dataset::from_node(MemoryCache { input: self.clone(), stored: Arc::new(Mutex::new(None)) })
    }

    /// Writes the first complete epoch to `path` and reads later epochs (also of a new process)
    /// from it (`Dataset.cache(filename)`). A truncated or corrupt file gives an `Err` item
    /// naming the file and the byte offset. Tensors read back live on the CPU device.
    pub fn cache_to_file(&self, path: impl AsRef<Path>) -> Dataset {
        Dataset::from_node(FileCache { input: self.clone(), path: path.as_ref().to_path_buf() })
    }
}
