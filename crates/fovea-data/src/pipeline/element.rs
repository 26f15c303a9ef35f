//! One element of a pipeline: a small tree of tensors, and the row/batch surgery on such trees.

use crate::{Error, Result};
use fovea_core::backend::PadMode;
use fovea_core::{DType, Device, Tensor};

/// One element of a [`super::Dataset`]: a tensor, a tuple of elements (`(image, label)`,
/// `((image, mask), label)`) or named fields (`{"image": .., "label": ..}`), like the nested
/// structures `tf.data` carries.
#[derive(Clone, Debug)]
pub enum Element {
    /// A single tensor.
    Tensor(Tensor),
    /// An ordered group of elements.
    Tuple(Vec<Element>),
    /// Named fields, in the order given (like a Python dict).
    Dict(Vec<(String, Element)>),
}

impl From<Tensor> for Element {
    fn from(t: Tensor) -> Self {
        Element::Tensor(t)
    }
}

impl<A: Into<Element>, B: Into<Element>> From<(A, B)> for Element {
    fn from((a, b): (A, B)) -> Self {
        Element::Tuple(vec![a.into(), b.into()])
    }
}

impl<A: Into<Element>, B: Into<Element>, C: Into<Element>> From<(A, B, C)> for Element {
    fn from((a, b, c): (A, B, C)) -> Self {
        Element::Tuple(vec![a.into(), b.into(), c.into()])
    }
}

impl From<Vec<Element>> for Element {
    fn from(v: Vec<Element>) -> Self {
        Element::Tuple(v)
    }
}

impl Element {
    /// Named fields: `Element::dict([("image", x.into()), ("label", y.into())])`.
    pub fn dict<K: Into<String>>(fields: impl IntoIterator<Item = (K, Element)>) -> Element {
        Element::Dict(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The field `name` of a dict element.
    ///
    /// # Errors
    /// `Format` when the element is not a dict or has no such field (the message lists the fields).
    pub fn field(&self, name: &str) -> Result<&Element> {
        match self {
            Element::Dict(f) => f.iter().find(|(k, _)| k == name).map(|(_, v)| v).ok_or_else(|| {
                Error::format(
                    "element",
                    format!("no field {name:?}; the fields are {:?}", f.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()),
                )
            }),
            other => Err(Error::format("element", format!("field {name:?} requested from {}, which is not a dict", other.signature()))),
        }
    }

    /// The tensor of a leaf element.
    ///
    /// # Errors
    /// `Format` when the element is a tuple.
    pub fn tensor(&self) -> Result<&Tensor> {
        match self {
            Element::Tensor(t) => Ok(t),
            other => Err(Error::format("element", format!("expected a tensor, got {}", other.signature()))),
        }
    }

    /// The `i`-th component of a tuple element.
    ///
    /// # Errors
    /// `Format` when the element is a tensor or `i` is out of range.
    pub fn get(&self, i: usize) -> Result<&Element> {
        match self {
            Element::Tuple(v) => {
                v.get(i).ok_or_else(|| Error::format("element", format!("component {i} requested from a tuple of {} elements", v.len())))
            }
            other => Err(Error::format("element", format!("component {i} requested from {}, which is not a tuple", other.signature()))),
        }
    }

    /// The leaves in depth-first order.
    pub fn leaves(&self) -> Vec<&Tensor> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a Tensor>) {
        match self {
            Element::Tensor(t) => out.push(t),
            Element::Tuple(v) => v.iter().for_each(|e| e.collect_leaves(out)),
            Element::Dict(f) => f.iter().for_each(|(_, e)| e.collect_leaves(out)),
        }
    }

    /// A short description of the tree's structure and shapes, for error messages.
    pub fn signature(&self) -> String {
        match self {
            Element::Tensor(t) => format!("{}{}", t.dtype(), t.shape()),
            Element::Tuple(v) => format!("({})", v.iter().map(Element::signature).collect::<Vec<_>>().join(", ")),
            Element::Dict(f) => format!("{{{}}}", f.iter().map(|(k, e)| format!("{k}: {}", e.signature())).collect::<Vec<_>>().join(", ")),
        }
    }

    /// Rebuilds an element of this element's structure from leaves given in depth-first order.
    pub(crate) fn rebuild(&self, leaves: &mut impl Iterator<Item = Tensor>) -> Element {
        match self {
            // The caller always supplies one leaf per leaf of `self`.
            Element::Tensor(t) => Element::Tensor(leaves.next().unwrap_or_else(|| t.clone())),
            Element::Tuple(v) => Element::Tuple(v.iter().map(|e| e.rebuild(leaves)).collect()),
            Element::Dict(f) => Element::Dict(f.iter().map(|(k, e)| (k.clone(), e.rebuild(leaves))).collect()),
        }
    }

    /// Whether two elements have the same tree structure (not necessarily the same shapes).
    pub(crate) fn same_structure(&self, other: &Element) -> bool {
        match (self, other) {
            (Element::Tensor(_), Element::Tensor(_)) => true,
            (Element::Tuple(a), Element::Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_structure(y)),
            (Element::Dict(a), Element::Dict(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|((ka, x), (kb, y))| ka == kb && x.same_structure(y))
            }
            _ => false,
        }
    }

    /// The number of rows (size of axis 0) all leaves share.
    pub(crate) fn rows(&self, op: &str) -> Result<usize> {
        let leaves = self.leaves();
        let first = leaves.first().ok_or_else(|| Error::format(op, "the element has no tensors"))?;
        if first.rank() == 0 {
            return Err(Error::format(
                op,
                format!("expected tensors of rank >= 1 to slice along axis 0, got a scalar in {}", self.signature()),
            ));
        }
        let n = first.dims()[0];
        for t in &leaves {
            if t.rank() == 0 || t.dims()[0] != n {
                return Err(Error::format(
                    op,
                    format!("expected every component to have the same size of axis 0, got {}", self.signature()),
                ));
            }
        }
        Ok(n)
    }

    /// Row `i` of every leaf (axis 0 removed).
    pub(crate) fn row(&self, i: usize) -> Result<Element> {
        let rows = self
            .leaves()
            .into_iter()
            .map(|t| {
                let dims: Vec<usize> = t.dims()[1..].to_vec();
                Ok(t.narrow(0, i, 1)?.reshape_to(dims)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.rebuild(&mut rows.into_iter()))
    }
}

/// Stacks elements of one structure and shape into a batch (a new axis 0).
pub(crate) fn stack(elems: &[Element]) -> Result<Element> {
    let first = check_structure("batch", elems)?;
    let leaves: Vec<Vec<&Tensor>> = elems.iter().map(Element::leaves).collect();
    let mut out = Vec::with_capacity(leaves[0].len());
    for j in 0..leaves[0].len() {
        let want = leaves[0][j];
        for (i, l) in leaves.iter().enumerate() {
            if l[j].dims() != want.dims() || l[j].dtype() != want.dtype() {
                return Err(Error::format(
                    "batch",
                    format!(
                        "component {j} of element {i} is {}{}, expected {}{} like element 0 (use padded_batch for elements of different shapes)",
                        l[j].dtype(),
                        l[j].shape(),
                        want.dtype(),
                        want.shape()
                    ),
                ));
            }
        }
        let col: Vec<&Tensor> = leaves.iter().map(|l| l[j]).collect();
        out.push(Tensor::stack(&col, 0)?);
    }
    Ok(first.rebuild(&mut out.into_iter()))
}

/// Pads every element's leaves to a common shape and stacks them.
///
/// `shapes` holds, per leaf in depth-first order, the target size of each axis (`None`: the largest
/// in the batch); without it every axis pads to the batch's largest.
pub(crate) fn padded_stack(elems: &[Element], shapes: Option<&[Vec<Option<usize>>]>, value: f64) -> Result<Element> {
    let first = check_structure("padded_batch", elems)?;
    let leaves: Vec<Vec<&Tensor>> = elems.iter().map(Element::leaves).collect();
    let n_leaves = leaves[0].len();
    if let Some(s) = shapes {
        if s.len() != n_leaves {
            return Err(Error::format(
                "padded_batch",
                format!("expected {n_leaves} padded shapes (one per component of {}), got {}", first.signature(), s.len()),
            ));
        }
    }
    let mut out = Vec::with_capacity(n_leaves);
    for j in 0..n_leaves {
        let rank = leaves[0][j].rank();
        let dtype = leaves[0][j].dtype();
        for (i, l) in leaves.iter().enumerate() {
            if l[j].rank() != rank || l[j].dtype() != dtype {
                return Err(Error::format(
                    "padded_batch",
                    format!(
                        "component {j} of element {i} is {}{}, expected {dtype} of rank {rank} like element 0",
                        l[j].dtype(),
                        l[j].shape()
                    ),
                ));
            }
        }
        let mut target: Vec<usize> = (0..rank).map(|a| leaves.iter().map(|l| l[j].dims()[a]).max().unwrap_or(0)).collect();
        if let Some(s) = shapes {
            if s[j].len() != rank {
                return Err(Error::format(
                    "padded_batch",
                    format!("padded shape {:?} for component {j} has rank {}, expected rank {rank}", s[j], s[j].len()),
                ));
            }
            for (a, want) in s[j].iter().enumerate() {
                if let Some(w) = *want {
                    if w < target[a] {
                        return Err(Error::format(
                            "padded_batch",
                            format!("component {j} has size {} on axis {a}, larger than its padded size {w}", target[a]),
                        ));
                    }
                    target[a] = w;
                }
            }
        }
        let padded = leaves
            .iter()
            .map(|l| {
                let t = l[j];
                let pads: Vec<(usize, usize)> = t.dims().iter().zip(&target).map(|(&d, &w)| (0, w - d)).collect();
                if pads.iter().all(|p| p.1 == 0) {
                    Ok(t.clone())
                } else {
                    Ok(t.pad(&pads, PadMode::Constant(value))?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(Tensor::stack(&padded.iter().collect::<Vec<_>>(), 0)?);
    }
    Ok(first.rebuild(&mut out.into_iter()))
}

fn check_structure<'a>(op: &str, elems: &'a [Element]) -> Result<&'a Element> {
    let first = elems.first().ok_or_else(|| Error::format(op, "cannot batch zero elements"))?;
    for (i, e) in elems.iter().enumerate() {
        if !e.same_structure(first) {
            return Err(Error::format(
                op,
                format!("element {i} has structure {}, expected the structure of element 0, {}", e.signature(), first.signature()),
            ));
        }
    }
    Ok(first)
}

/// A scalar int64 tensor (enumerate's counter).
pub(crate) fn scalar_i64(v: i64) -> Result<Tensor> {
    Ok(Tensor::from_vec(vec![v], Vec::<usize>::new(), Device::Cpu)?)
}

/// The dtype tag used by the cache file format.
pub(crate) fn dtype_tag(d: DType) -> Result<u8> {
    Ok(match d {
        DType::F32 => 0,
        DType::U8 => 1,
        DType::I64 => 2,
        DType::Bool => 3,
        DType::I32 => 4,
        other => return Err(Error::format("cache", format!("cannot cache tensors of dtype {other}"))),
    })
}
