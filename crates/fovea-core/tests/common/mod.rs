//! Shared helpers for fovea-core's integration tests: loading the TensorFlow reference fixtures
//! that `tools/fixtures/gen_core_fixtures.py` writes, and checking an op against one case.
//!
//! A fixture file holds several cases; tensors are keyed `<case>.<name>` (inputs, `y`, `dy`,
//! and `d<input>` for each input gradient). The file's safetensors `__metadata__` lists the cases
//! (`cases` = `a,b,c`) and their parameters as flat strings (`<case>.<param>`), so no JSON parser
//! is needed; `core_cases.json` beside the files mirrors the same parameters for people.

// Each test crate includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fovea_core::backend::PadMode;
use fovea_core::ops::padding::Padding;
use fovea_core::testing::assert_close;
use fovea_core::{Device, Result, Tensor};

/// Relative tolerance every fixture comparison uses.
pub const RTOL: f32 = 1e-5;
/// Absolute tolerance every fixture comparison uses.
pub const ATOL: f32 = 1e-6;

/// The directory holding the generated fixtures.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// Loads every tensor of fixture `file` onto the reference device, keyed by name.
pub fn load_fixture(file: &str) -> HashMap<String, Tensor> {
    load_fixture_on(file, Device::Reference)
}

/// Loads every tensor of fixture `file` onto `device`, keyed by name.
pub fn load_fixture_on(file: &str, device: Device) -> HashMap<String, Tensor> {
    Fixture::open(file, device).tensors
}

/// A decoded safetensors file: tensors by name and the `__metadata__` strings.
pub type Decoded = (HashMap<String, Tensor>, HashMap<String, String>);

/// Decodes a safetensors buffer into tensors on `device` and its `__metadata__` map, through
/// Fovea's own reader (`fovea_core::io`), so the fixtures also exercise it.
pub fn decode_safetensors(bytes: &[u8], device: Device) -> std::result::Result<Decoded, String> {
    let (tensors, meta) = fovea_core::io::read_safetensors(bytes, device).map_err(|e| e.to_string())?;
    Ok((tensors.into_iter().collect(), meta))
}

/// One fixture file: its tensors and its parameter metadata.
pub struct Fixture {
    /// File name inside [`fixture_dir`].
    pub file: String,
    /// Every tensor, keyed `<case>.<name>`.
    pub tensors: HashMap<String, Tensor>,
    /// The `__metadata__` strings, keyed `<case>.<param>` (plus `cases` and `generator`).
    pub meta: HashMap<String, String>,
}

impl Fixture {
    /// Reads `file` from [`fixture_dir`] onto `device`; panics with the path on failure.
    pub fn open(file: &str, device: Device) -> Fixture {
        let path = fixture_dir().join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("cannot read fixture {}: {e} (regenerate with tools/fixtures/gen_core_fixtures.py)", path.display())
        });
        Fixture::from_bytes(file, &bytes, device)
    }

    /// Decodes an in-memory safetensors buffer (used by the loader's own tests).
    pub fn from_bytes(file: &str, bytes: &[u8], device: Device) -> Fixture {
        let (tensors, meta) = decode_safetensors(bytes, device).unwrap_or_else(|e| panic!("{file}: {e}"));
        Fixture { file: file.to_string(), tensors, meta }
    }

    /// The cases in the order the generator wrote them.
    pub fn cases(&self) -> Vec<Case<'_>> {
        let list = self.meta.get("cases").unwrap_or_else(|| panic!("{}: metadata has no `cases` entry", self.file));
        let cases: Vec<Case<'_>> =
            list.split(',').filter(|s| !s.is_empty()).map(|name| Case { fixture: self, name: name.to_string() }).collect();
        assert!(!cases.is_empty(), "{}: no cases listed", self.file);
        cases
    }
}

/// One case of a fixture: typed access to its tensors and parameters.
pub struct Case<'a> {
    fixture: &'a Fixture,
    /// The case name (prefix of its keys).
    pub name: String,
}

impl Case<'_> {
    /// `file/case`, for assertion messages.
    pub fn label(&self) -> String {
        format!("{}/{}", self.fixture.file, self.name)
    }

    /// Whether the case stores tensor `key`.
    pub fn has(&self, key: &str) -> bool {
        self.fixture.tensors.contains_key(&format!("{}.{key}", self.name))
    }

    /// Tensor `key` of this case (e.g. `x`, `y`, `dy`, `dx`).
    pub fn tensor(&self, key: &str) -> Tensor {
        self.fixture.tensors.get(&format!("{}.{key}", self.name)).unwrap_or_else(|| panic!("{}: no tensor `{key}`", self.label())).clone()
    }

    /// Raw parameter string `key`.
    pub fn param(&self, key: &str) -> &str {
        self.fixture.meta.get(&format!("{}.{key}", self.name)).unwrap_or_else(|| panic!("{}: no parameter `{key}`", self.label()))
    }

    fn ints(&self, key: &str) -> Vec<i64> {
        self.param(key)
            .split(',')
            .map(|v| v.trim().parse().unwrap_or_else(|e| panic!("{}: parameter {key}={v:?}: {e}", self.label())))
            .collect()
    }

    /// An unsigned integer parameter.
    pub fn usize(&self, key: &str) -> usize {
        let v = self.ints(key);
        assert_eq!(v.len(), 1, "{}: parameter {key} should be one integer", self.label());
        usize::try_from(v[0]).unwrap_or_else(|_| panic!("{}: parameter {key} is negative", self.label()))
    }

    /// A signed integer parameter (axes).
    pub fn isize(&self, key: &str) -> isize {
        let v = self.ints(key);
        assert_eq!(v.len(), 1, "{}: parameter {key} should be one integer", self.label());
        v[0] as isize
    }

    /// A float parameter.
    pub fn f32(&self, key: &str) -> f32 {
        self.param(key).parse().unwrap_or_else(|e| panic!("{}: parameter {key}: {e}", self.label()))
    }

    /// A float parameter at f64 precision.
    pub fn f64(&self, key: &str) -> f64 {
        self.param(key).parse().unwrap_or_else(|e| panic!("{}: parameter {key}: {e}", self.label()))
    }

    /// A `(rows, cols)` parameter such as strides or dilation.
    pub fn pair(&self, key: &str) -> (usize, usize) {
        match self.usizes(key)[..] {
            [a, b] => (a, b),
            ref v => panic!("{}: parameter {key} should be a pair, got {v:?}", self.label()),
        }
    }

    /// A list of unsigned integers.
    pub fn usizes(&self, key: &str) -> Vec<usize> {
        self.ints(key)
            .into_iter()
            .map(|v| usize::try_from(v).unwrap_or_else(|_| panic!("{}: parameter {key} is negative", self.label())))
            .collect()
    }

    /// `padding` (+ `explicit` = `t,b,l,r`) as Fovea's [`Padding`].
    pub fn padding(&self) -> Padding {
        match self.param("padding") {
            "valid" => Padding::Valid,
            "same" => Padding::Same,
            "explicit" => match self.usizes("explicit")[..] {
                [t, b, l, r] => Padding::Explicit(vec![(t, b), (l, r)]),
                ref v => panic!("{}: explicit padding should be t,b,l,r, got {v:?}", self.label()),
            },
            other => panic!("{}: unknown padding {other:?}", self.label()),
        }
    }

    /// `output_padding` (`none` or `h,w`).
    pub fn output_padding(&self) -> Option<(usize, usize)> {
        match self.param("output_padding") {
            "none" => None,
            _ => Some(self.pair("output_padding")),
        }
    }

    /// `pads` (`before,after` per axis) as pairs.
    pub fn pads(&self) -> Vec<(usize, usize)> {
        let v = self.usizes("pads");
        assert!(v.chunks_exact(2).remainder().is_empty(), "{}: pads should come in pairs, got {v:?}", self.label());
        v.chunks(2).map(|p| (p[0], p[1])).collect()
    }

    /// `mode` (+ `constant`) as Fovea's [`PadMode`].
    pub fn pad_mode(&self) -> PadMode {
        match self.param("mode") {
            "constant" => PadMode::Constant(self.f64("constant")),
            "reflect" => PadMode::Reflect,
            "symmetric" => PadMode::Symmetric,
            other => panic!("{}: unknown pad mode {other:?}", self.label()),
        }
    }

    /// Names of the differentiable inputs: every stored key `k` with a gradient `dk`, in a
    /// fixed order (sorted), excluding `y`.
    pub fn grad_inputs(&self) -> Vec<String> {
        let prefix = format!("{}.", self.name);
        let mut names: Vec<String> = self
            .fixture
            .tensors
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|k| *k != "y" && !k.starts_with('d'))
            .filter(|k| self.has(&format!("d{k}")))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }
}

/// Compares `f(inputs)` and its input gradients (for the stored upstream gradient `dy`) with a
/// case, at [`RTOL`]/[`ATOL`].
///
/// `inputs` names the case's tensors passed to `f`, in order; each must have a stored gradient
/// `d<name>`. Panics naming the case, tensor and element on a mismatch.
pub fn check_case(case: &Case<'_>, inputs: &[&str], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    let label = case.label();
    let xs: Vec<Tensor> = inputs.iter().map(|n| case.tensor(n).with_requires_grad(true).expect("f32 input")).collect();
    let y = f(&xs).unwrap_or_else(|e| panic!("{label}: forward failed: {e}"));
    assert_matches(&format!("{label}.y"), &y, &case.tensor("y"));
    let grads = y.backward_with(&case.tensor("dy")).unwrap_or_else(|e| panic!("{label}: backward failed: {e}"));
    for (x, n) in xs.iter().zip(inputs) {
        let g = grads.get(x).unwrap_or_else(|| panic!("{label}: no gradient for input `{n}`"));
        assert_matches(&format!("{label}.d{n}"), g, &case.tensor(&format!("d{n}")));
    }
}

/// Shape equality plus element-wise closeness at [`RTOL`]/[`ATOL`].
pub fn assert_matches(what: &str, actual: &Tensor, expected: &Tensor) {
    assert_eq!(actual.dims(), expected.dims(), "{what}: shape {:?}, expected {:?}", actual.dims(), expected.dims());
    let a = actual.to_vec::<f32>().unwrap_or_else(|e| panic!("{what}: {e}"));
    let e = expected.to_vec::<f32>().expect("fixtures store f32");
    assert_close(what, &a, &e, RTOL, ATOL);
}
