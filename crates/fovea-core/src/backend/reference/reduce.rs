//! Reference reductions: every input element is visited once and folded into its output slot,
//! in f64 for floats.

use crate::backend::ReduceOp;
use crate::{Error, HostData, Result, Shape};

/// For each input element, the index of the output element it folds into (reduced axes dropped).
fn output_index_map(shape: &Shape, axes: &[usize]) -> (Vec<usize>, usize) {
    let dims = shape.dims();
    let mut out_strides = vec![0usize; dims.len()];
    let mut acc = 1;
    for i in (0..dims.len()).rev() {
        if !axes.contains(&i) {
            out_strides[i] = acc;
            acc *= dims[i];
        }
    }
    let mut map = Vec::with_capacity(shape.numel());
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..shape.numel() {
        map.push(idx.iter().zip(&out_strides).map(|(i, s)| i * s).sum());
        for ax in (0..dims.len()).rev() {
            idx[ax] += 1;
            if idx[ax] < dims[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    (map, acc)
}

/// Position of each element along `axis` (for arg reductions).
fn position_along(shape: &Shape, axis: usize, flat: usize) -> usize {
    (flat / shape.strides()[axis]) % shape.dims()[axis]
}

/// Reduces `x` over `axes`; the output has the reduced axes removed (keepdims is a reshape).
pub fn reduce(op: ReduceOp, x: &HostData, shape: &Shape, axes: &[usize]) -> Result<HostData> {
    let (map, n_out) = output_index_map(shape, axes);
    let values: Vec<f64> = (0..x.len()).map(|i| x.get_f64(i)).collect();
    match op {
        ReduceOp::ArgMax | ReduceOp::ArgMin => {
            let axis = match axes {
                [a] => *a,
                _ => return Err(Error::invalid("argmax", format!("needs exactly one axis, got {axes:?}"))),
            };
            let mut best: Vec<Option<(f64, usize)>> = vec![None; n_out];
            for (i, &v) in values.iter().enumerate() {
                let slot = &mut best[map[i]];
                let better = match slot {
                    None => true,
                    // NaN wins (and stays), as in NumPy.
                    Some((b, _)) => !b.is_nan() && (v.is_nan() || if op == ReduceOp::ArgMax { v > *b } else { v < *b }),
                };
                if better {
                    *slot = Some((v, position_along(shape, axis, i)));
                }
            }
            Ok(HostData::I64(best.into_iter().map(|b| b.map_or(0, |(_, p)| p as i64)).collect()))
        }
        _ => {
            let init = match op {
                ReduceOp::Sum => 0.0,
                ReduceOp::Prod => 1.0,
                ReduceOp::Max => f64::NEG_INFINITY,
                _ => f64::INFINITY,
            };
            let mut acc = vec![init; n_out];
            for (i, &v) in values.iter().enumerate() {
                let a = &mut acc[map[i]];
                *a = match op {
                    ReduceOp::Sum => *a + v,
                    ReduceOp::Prod => *a * v,
                    ReduceOp::Max => {
                        if v.is_nan() || v > *a {
                            v
                        } else {
                            *a
                        }
                    }
                    _ => {
                        if v.is_nan() || v < *a {
                            v
                        } else {
                            *a
                        }
                    }
                };
                if v.is_nan() {
                    *a = f64::NAN;
                }
            }
            Ok(match x {
                HostData::F32(_) => HostData::F32(acc.into_iter().map(|v| v as f32).collect()),
                HostData::I64(_) => HostData::I64(acc.into_iter().map(|v| v as i64).collect()),
                HostData::I32(_) => HostData::I32(acc.into_iter().map(|v| v as i32).collect()),
                HostData::U8(_) => HostData::U8(acc.into_iter().map(|v| v as u8).collect()),
                // Accumulated in f64, rounded once to nearest even.
                HostData::F16(_) => HostData::F16(acc.into_iter().map(half::f16::from_f64).collect()),
                HostData::BF16(_) => HostData::BF16(acc.into_iter().map(half::bf16::from_f64).collect()),
                HostData::Bool(_) => return Err(Error::dtype("reduce", "a numeric dtype", x.dtype())),
            })
        }
    }
}
