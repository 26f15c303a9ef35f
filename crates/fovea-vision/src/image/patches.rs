//! `tf.image.extract_patches`: every (strided, dilated) window of an image laid out along the
//! channel axis.

use super::{as_batch, unbatch};
use fovea_core::backend::PadMode;
use fovea_core::ops::padding::Padding;
use fovea_core::{Error, Result, Tensor};

/// One spatial axis: the output length and the padding before.
fn axis(op: &'static str, what: &str, len: usize, k: usize, s: usize, r: usize, same: bool) -> Result<(usize, usize, usize)> {
    let ke = (k - 1) * r + 1;
    if same {
        let out = len.div_ceil(s);
        let total = ((out - 1) * s + ke).saturating_sub(len);
        Ok((out, total / 2, total))
    } else if len >= ke {
        Ok(((len - ke) / s + 1, 0, 0))
    } else {
        Err(Error::invalid(op, format!("with VALID padding the dilated window ({ke}) must fit in the {what} ({len})")))
    }
}

/// Extracts `sizes = (kh, kw)` patches every `strides` pixels, sampling every `rates`-th pixel
/// inside a patch (`tf.image.extract_patches` with `sizes=[1, kh, kw, 1]` etc.).
///
/// Returns `[N, out_h, out_w, kh·kw·C]`, each patch flattened in (row, column, channel) order.
/// `Padding::Same` zero-pads as TF (the odd pixel at the bottom/right); `Padding::Valid` keeps
/// only windows inside the image. Differentiable (a gather).
///
/// # Errors
/// `RankMismatch` unless rank 3 or 4; `InvalidArgument` for a zero size, stride or rate,
/// explicit padding, or a VALID window larger than the image.
pub fn extract_patches(
    images: &Tensor,
    sizes: (usize, usize),
    strides: (usize, usize),
    rates: (usize, usize),
    padding: &Padding,
) -> Result<Tensor> {
    const OP: &str = "extract_patches";
    let (x, single) = as_batch(OP, images)?;
    for (name, (a, b)) in [("sizes", sizes), ("strides", strides), ("rates", rates)] {
        if a == 0 || b == 0 {
            return Err(Error::invalid(OP, format!("expected positive {name}, got ({a}, {b})")));
        }
    }
    let same = match padding {
        Padding::Same => true,
        Padding::Valid => false,
        Padding::Explicit(p) => return Err(Error::invalid(OP, format!("expected VALID or SAME padding, got explicit {p:?}"))),
    };
    let [n, h, w, c] = [x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]];
    let (oh, top, th) = axis(OP, "height", h, sizes.0, strides.0, rates.0, same)?;
    let (ow, left, tw) = axis(OP, "width", w, sizes.1, strides.1, rates.1, same)?;
    let padded = if th + tw > 0 { x.pad(&[(0, 0), (top, th - top), (left, tw - left), (0, 0)], PadMode::Constant(0.0))? } else { x };
    let (hp, wp) = (h + th, w + tw);
    let mut idx = Vec::with_capacity(oh * ow * sizes.0 * sizes.1);
    for oy in 0..oh {
        for ox in 0..ow {
            for ki in 0..sizes.0 {
                for kj in 0..sizes.1 {
                    idx.push(((oy * strides.0 + ki * rates.0) * wp + ox * strides.1 + kj * rates.1) as i64);
                }
            }
        }
    }
    let m = idx.len();
    let flat = padded.reshape(&[n as isize, (hp * wp) as isize, c as isize])?;
    let picked = flat.index_select(1, &Tensor::from_vec(idx, vec![m], padded.device())?)?;
    unbatch(picked.reshape(&[n as isize, oh as isize, ow as isize, (sizes.0 * sizes.1 * c) as isize])?, single)
}
