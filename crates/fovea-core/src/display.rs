//! NumPy-style printing: values nested by axis, long axes elided with `...`, then the shape
//! and dtype.

use crate::{DType, HostData, Tensor};
use std::fmt;

/// Tensors with more elements than this print only `EDGE` items at each end of every axis
/// (NumPy's `threshold` and `edgeitems`).
const THRESHOLD: usize = 1000;
const EDGE: usize = 3;

fn format_value(s: &HostData, i: usize) -> String {
    match s.dtype() {
        // Halves widen exactly to f32, so they print their exact value the same way.
        DType::F32 | DType::F16 | DType::BF16 => {
            let v = s.get_f64(i) as f32;
            let text = format!("{v}");
            if v.is_finite() && !text.contains('.') && !text.contains('e') {
                format!("{text}.")
            } else {
                text
            }
        }
        DType::Bool => {
            if s.get_f64(i) != 0.0 {
                "True".into()
            } else {
                "False".into()
            }
        }
        _ => format!("{}", s.get_f64(i) as i64),
    }
}

#[allow(clippy::too_many_arguments)] // recursion state, kept flat for clarity
fn write_axis(
    f: &mut fmt::Formatter<'_>,
    t: &Tensor,
    cells: &[String],
    axis: usize,
    offset: usize,
    summarize: bool,
    width: usize,
    indent: usize,
) -> fmt::Result {
    let dims = t.dims();
    let strides = t.shape().strides();
    write!(f, "[")?;
    let n = dims[axis];
    let shown: Vec<Option<usize>> = if summarize && n > 2 * EDGE {
        (0..EDGE).map(Some).chain(std::iter::once(None)).chain((n - EDGE..n).map(Some)).collect()
    } else {
        (0..n).map(Some).collect()
    };
    for (k, item) in shown.iter().enumerate() {
        if k > 0 {
            if axis + 1 == dims.len() {
                write!(f, ", ")?;
            } else {
                write!(f, ",{}{}", "\n".repeat(dims.len() - axis - 1), " ".repeat(indent + axis + 1))?;
            }
        }
        match item {
            None => write!(f, "...")?,
            Some(i) if axis + 1 == dims.len() => write!(f, "{:>width$}", cells[offset + i * strides[axis]])?,
            Some(i) => write_axis(f, t, cells, axis + 1, offset + i * strides[axis], summarize, width, indent)?,
        }
    }
    write!(f, "]")
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PREFIX: &str = "tensor(";
        // Printing is a request for host data: a device tensor is copied over once.
        let host = self.to_host().map_err(|_| fmt::Error)?;
        let cells: Vec<String> = (0..self.numel()).map(|i| format_value(&host, i)).collect();
        if self.rank() == 0 {
            write!(f, "{PREFIX}{}", cells.first().map(String::as_str).unwrap_or(""))?;
        } else {
            let width = cells.iter().map(String::len).max().unwrap_or(0);
            write!(f, "{PREFIX}")?;
            write_axis(f, self, &cells, 0, 0, self.numel() > THRESHOLD, width, PREFIX.len())?;
        }
        write!(f, ", shape={}, dtype={}", self.shape(), self.dtype())?;
        if self.device() != crate::Device::Cpu {
            write!(f, ", device={}", self.device())?;
        }
        write!(f, ")")
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor(id={:?}, shape={}, dtype={}, device={}, requires_grad={})",
            self.id(),
            self.shape(),
            self.dtype(),
            self.device(),
            self.requires_grad()
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Tensor};

    #[test]
    fn prints_like_numpy() {
        let t = Tensor::from_vec(vec![1.0f32, 2.5, -3.0, 4.0], [2, 2], Device::Cpu).unwrap();
        assert_eq!(t.to_string(), "tensor([[ 1., 2.5],\n        [-3.,  4.]], shape=[2, 2], dtype=float32)");
        let s = Tensor::scalar(7.0, Device::Cpu).unwrap();
        assert_eq!(s.to_string(), "tensor(7., shape=[], dtype=float32)");
        let b = Tensor::full([2], 1.0, DType::Bool, Device::Cpu).unwrap();
        assert_eq!(b.to_string(), "tensor([True, True], shape=[2], dtype=bool)");
    }

    #[test]
    fn long_tensors_are_elided() {
        let t = Tensor::arange(0.0, 2000.0, 1.0, Device::Cpu).unwrap();
        let s = t.to_string();
        assert!(s.starts_with("tensor([   0.,    1.,    2., ..., 1997., 1998., 1999.]"), "{s}");
        assert!(s.ends_with("shape=[2000], dtype=float32)"), "{s}");
    }
}
