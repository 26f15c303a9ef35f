//! A pickle reader for PyTorch `state_dict`s that never executes anything: it understands the
//! protocol 2–5 opcodes `torch.save` emits and builds plain values, tensors included, from a
//! short allow-list of globals. Any other `GLOBAL`, `REDUCE` target or object-building opcode is
//! an error naming it — this is what makes loading an untrusted `.pt` file safe.

use crate::{Error, Result};

/// A storage reference: the `('storage', torch.FloatStorage, '0', 'cpu', numel)` persistent id
/// that `torch.save` writes in place of the tensor data.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRef {
    /// The storage's file name under `archive/data/`.
    pub key: String,
    /// The storage class, e.g. `FloatStorage`.
    pub class: String,
}

/// A tensor view on a storage, as `torch._utils._rebuild_tensor_v2` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    /// Where the elements live.
    pub storage: StorageRef,
    /// The first element's index in the storage.
    pub offset: usize,
    /// The tensor's shape.
    pub size: Vec<usize>,
    /// Its strides, in elements.
    pub stride: Vec<usize>,
}

/// What an allowed pickle can build.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict or `OrderedDict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A tensor.
    Tensor(TensorRef),
    /// A storage reference (a persistent id).
    Storage(StorageRef),
    /// An allowed global not yet called: `module.name`.
    Global(String),
}

/// The globals a `state_dict` pickle may name; everything else is refused.
const ALLOWED: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
];

fn err(msg: impl std::fmt::Display) -> Error {
    Error::Config(format!("unpickle: {msg}"))
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end =
            self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| err("corrupt or truncated pickle (ran past the end)"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn le(&mut self, n: usize) -> Result<u64> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }
    fn line(&mut self) -> Result<String> {
        let rest = &self.b[self.at..];
        let n = rest.iter().position(|&c| c == b'\n').ok_or_else(|| err("corrupt or truncated pickle (unterminated line)"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.at += n + 1;
        Ok(s)
    }
    fn utf8(&mut self, n: usize) -> Result<String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| err("a string is not valid UTF-8"))
    }
}

fn usize_of(v: &Value, what: &str) -> Result<usize> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as usize),
        other => Err(err(format!("{what}: expected a non-negative integer, received {other:?}"))),
    }
}

fn usizes(v: &Value, what: &str) -> Result<Vec<usize>> {
    match v {
        Value::Tuple(xs) | Value::List(xs) => xs.iter().map(|x| usize_of(x, what)).collect(),
        other => Err(err(format!("{what}: expected a tuple of integers, received {other:?}"))),
    }
}

/// Calls an allowed global — the only code path that turns a `REDUCE` into a value.
fn call(global: &str, args: Vec<Value>) -> Result<Value> {
    match global {
        "collections.OrderedDict" if args.is_empty() => Ok(Value::Dict(Vec::new())),
        "torch._utils._rebuild_tensor_v2" => {
            let [storage, offset, size, stride, ..] = args.as_slice() else {
                return Err(err(format!("_rebuild_tensor_v2 expects at least 4 arguments, received {}", args.len())));
            };
            let Value::Storage(storage) = storage else {
                return Err(err(format!("_rebuild_tensor_v2 expects a storage first, received {storage:?}")));
            };
            let (size, stride) = (usizes(size, "tensor size")?, usizes(stride, "tensor stride")?);
            if size.len() != stride.len() {
                return Err(err(format!("tensor size {size:?} and stride {stride:?} differ in rank")));
            }
            Ok(Value::Tensor(TensorRef { storage: storage.clone(), offset: usize_of(offset, "storage offset")?, size, stride }))
        }
        "torch._utils._rebuild_parameter" => match args.into_iter().next() {
            Some(t @ Value::Tensor(_)) => Ok(t),
            other => Err(err(format!("_rebuild_parameter expects a tensor, received {other:?}"))),
        },
        other => {
            Err(err(format!("refusing to call {other} with {} arguments (only tensors and plain containers are allowed)", args.len())))
        }
    }
}

fn persistent(pid: Value) -> Result<Value> {
    match pid {
        Value::Tuple(t) if t.len() >= 3 && t[0] == Value::Str("storage".into()) => {
            let class = match &t[1] {
                Value::Global(g) => g.trim_start_matches("torch.").to_string(),
                other => return Err(err(format!("storage type: expected a torch storage class, received {other:?}"))),
            };
            let key = match &t[2] {
                Value::Str(s) => s.clone(),
                other => return Err(err(format!("storage key: expected a string, received {other:?}"))),
            };
            Ok(Value::Storage(StorageRef { key, class }))
        }
        other => Err(err(format!("unsupported persistent id {other:?} (expected a torch storage reference)"))),
    }
}

fn global(module: &str, name: &str) -> Result<Value> {
    let full = format!("{module}.{name}");
    if ALLOWED.contains(&full.as_str()) {
        Ok(Value::Global(full))
    } else {
        Err(err(format!("refusing global {full} (only tensors and plain containers are allowed; the file may try to run code)")))
    }
}

/// Reads one pickle, allowing only plain values, `OrderedDict` and torch tensors.
///
/// # Errors
/// `Config` starting with `unpickle:` for a truncated or corrupt stream, an unsupported opcode
/// (named with its byte and position), or a global outside the allow-list (named).
pub fn unpickle(bytes: &[u8]) -> Result<Value> {
    let mut r = Reader { b: bytes, at: 0 };
    let mut stack: Vec<Value> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: std::collections::HashMap<u64, Value> = std::collections::HashMap::new();
    let pop = |stack: &mut Vec<Value>| stack.pop().ok_or_else(|| err("corrupt pickle (stack underflow)"));
    let pop_mark = |stack: &mut Vec<Value>, marks: &mut Vec<usize>| -> Result<Vec<Value>> {
        let m = marks.pop().ok_or_else(|| err("corrupt pickle (no mark)"))?;
        if m > stack.len() {
            return Err(err("corrupt pickle (mark past the stack)"));
        }
        Ok(stack.split_off(m))
    };
    loop {
        let pos = r.at;
        let op = r.u8()?;
        match op {
            0x80 => {
                let proto = r.u8()?;
                if !(2..=5).contains(&proto) {
                    return Err(err(format!("protocol {proto} is not supported (2 to 5)")));
                }
            }
            0x95 => {
                r.take(8)?; // FRAME: a length hint only.
            }
            b'.' => return pop(&mut stack),
            b'(' => marks.push(stack.len()),
            b'0' => {
                pop(&mut stack)?;
            }
            b'1' => {
                pop_mark(&mut stack, &mut marks)?;
            }
            b'2' => {
                let top = stack.last().cloned().ok_or_else(|| err("corrupt pickle (DUP on an empty stack)"))?;
                stack.push(top);
            }
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'K' => stack.push(Value::Int(i64::from(r.u8()?))),
            b'M' => stack.push(Value::Int(r.le(2)? as i64)),
            b'J' => stack.push(Value::Int(i64::from(r.le(4)? as u32 as i32))),
            0x8a => {
                let n = usize::from(r.u8()?);
                if n > 8 {
                    return Err(err(format!("integer of {n} bytes does not fit 64 bits")));
                }
                let raw = r.le(n)?;
                let v = if n == 0 {
                    0
                } else if n == 8 {
                    raw as i64
                } else {
                    ((raw << (64 - 8 * n)) as i64) >> (64 - 8 * n)
                };
                stack.push(Value::Int(v));
            }
            b'G' => stack.push(Value::Float(f64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes")))),
            b'X' => {
                let n = r.le(4)? as usize;
                stack.push(Value::Str(r.utf8(n)?));
            }
            0x8c => {
                let n = usize::from(r.u8()?);
                stack.push(Value::Str(r.utf8(n)?));
            }
            0x8d => {
                let n = usize::try_from(r.le(8)?).map_err(|_| err("string too long"))?;
                stack.push(Value::Str(r.utf8(n)?));
            }
            b'C' => {
                let n = usize::from(r.u8()?);
                stack.push(Value::Bytes(r.take(n)?.to_vec()));
            }
            b'B' => {
                let n = r.le(4)? as usize;
                stack.push(Value::Bytes(r.take(n)?.to_vec()));
            }
            b')' => stack.push(Value::Tuple(Vec::new())),
            b't' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if stack.len() < n {
                    return Err(err("corrupt pickle (stack underflow)"));
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b']' => stack.push(Value::List(Vec::new())),
            b'l' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::List(items));
            }
            b'}' => stack.push(Value::Dict(Vec::new())),
            b'd' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::Dict(pairs(items)?));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.push(v),
                    _ => return Err(err("APPEND onto something other than a list")),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.extend(items),
                    _ => return Err(err("APPENDS onto something other than a list")),
                }
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Dict(d)) => d.push((k, v)),
                    _ => return Err(err("SETITEM onto something other than a dict")),
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                let kv = pairs(items)?;
                match stack.last_mut() {
                    Some(Value::Dict(d)) => d.extend(kv),
                    _ => return Err(err("SETITEMS onto something other than a dict")),
                }
            }
            b'q' => {
                let k = u64::from(r.u8()?);
                memo.insert(k, stack.last().cloned().ok_or_else(|| err("corrupt pickle (memo of nothing)"))?);
            }
            b'r' => {
                let k = r.le(4)?;
                memo.insert(k, stack.last().cloned().ok_or_else(|| err("corrupt pickle (memo of nothing)"))?);
            }
            0x94 => {
                let k = memo.len() as u64;
                memo.insert(k, stack.last().cloned().ok_or_else(|| err("corrupt pickle (memo of nothing)"))?);
            }
            b'h' | b'j' => {
                let k = if op == b'h' { u64::from(r.u8()?) } else { r.le(4)? };
                stack.push(memo.get(&k).cloned().ok_or_else(|| err(format!("corrupt pickle (memo {k} unset)")))?);
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                stack.push(global(&module, &name)?);
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => stack.push(global(&m, &n)?),
                    _ => return Err(err("STACK_GLOBAL expects two strings")),
                }
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let f = pop(&mut stack)?;
                let (Value::Global(g), Value::Tuple(args)) = (f, args) else {
                    return Err(err("REDUCE expects an allowed global and an argument tuple"));
                };
                stack.push(call(&g, args)?);
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(persistent(pid)?);
            }
            b'b' => {
                // BUILD sets attributes; state_dicts only set OrderedDict's `_metadata`, which
                // holds module versions Fovea does not need.
                pop(&mut stack)?;
                match stack.last() {
                    Some(Value::Dict(_)) => {}
                    other => return Err(err(format!("BUILD on {other:?} (only dicts may be built)"))),
                }
            }
            other => {
                return Err(err(format!("unsupported opcode 0x{other:02x} ({:?}) at byte {pos}", char::from(other))));
            }
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return Err(err("corrupt pickle (odd number of dict items)"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_and_containers() {
        // pickle.dumps({'a': [1, -2, 3.5, None, True], 'b': (300, 'x')}, protocol=2)
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00N\x88eX\x01\x00\x00\x00bq\x03M,\x01X\x01\x00\x00\x00xq\x04\x86q\x05u.";
        let v = unpickle(p).unwrap();
        let want = Value::Dict(vec![
            (Value::Str("a".into()), Value::List(vec![Value::Int(1), Value::Int(-2), Value::Float(3.5), Value::None, Value::Bool(true)])),
            (Value::Str("b".into()), Value::Tuple(vec![Value::Int(300), Value::Str("x".into())])),
        ]);
        assert_eq!(v, want);
    }

    #[test]
    fn code_execution_is_refused_with_the_global_named() {
        // pickle.dumps of an object whose __reduce__ returns (os.system, ('echo pwned',)).
        let p = b"\x80\x02cposix\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
        let e = unpickle(p).unwrap_err().to_string();
        assert!(e.contains("refusing global posix.system"), "{e}");
        // The protocol-4 spelling (STACK_GLOBAL) is refused the same way.
        let p = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.";
        let e = unpickle(p).unwrap_err().to_string();
        assert!(e.contains("refusing global os.system"), "{e}");
        // builtins.eval, and an allowed global called with the wrong arguments.
        let p = b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.";
        assert!(unpickle(p).unwrap_err().to_string().contains("refusing global builtins.eval"));
        let p = b"\x80\x02ccollections\nOrderedDict\nK\x01\x85R.";
        let e = unpickle(p).unwrap_err().to_string();
        assert!(e.contains("refusing to call collections.OrderedDict with 1 arguments"), "{e}");
        // Object-building opcodes (NEWOBJ) are unsupported, named with their byte.
        let p = b"\x80\x02ccollections\nOrderedDict\n)\x81.";
        let e = unpickle(p).unwrap_err().to_string();
        assert!(e.contains("unsupported opcode 0x81"), "{e}");
    }

    #[test]
    fn truncated_and_corrupt_streams_are_errors() {
        let p = b"\x80\x02X\x10\x00\x00\x00abc";
        assert!(unpickle(p).unwrap_err().to_string().contains("truncated"));
        assert!(unpickle(b"\x80\x02.").unwrap_err().to_string().contains("stack underflow"));
        assert!(unpickle(b"\x80\x09N.").unwrap_err().to_string().contains("protocol 9"));
        assert!(unpickle(b"").unwrap_err().to_string().contains("truncated"));
    }
}
