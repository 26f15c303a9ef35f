//! TensorFlow's padding rules for convolution and pooling windows, shared by both families.

use crate::{Error, Result};

/// How a sliding window treats the border (`padding=` in TensorFlow and Keras).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Padding {
    /// No padding: `out = ceil((in − (k−1)·d) / s)`; windows never leave the input.
    #[default]
    Valid,
    /// `out = ceil(in / s)`; the total padding is split with the odd one at the bottom/right.
    Same,
    /// Explicit `(before, after)` amounts, one pair per spatial axis:
    /// `out = floor((in + before + after − (k−1)·d − 1) / s) + 1`.
    Explicit(Vec<(usize, usize)>),
}

/// The largest (dilated) window along one axis, 2^20: far past any real network's, and small
/// enough that the padded planes a `Same` window implies can be allocated. Sizes read from a
/// file (a dilation of 2^62) are refused rather than handed to the kernels.
pub const MAX_WINDOW: usize = 1 << 20;

/// One spatial axis of a window op after resolving the padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisWindow {
    /// Output size.
    pub out: usize,
    /// Padding before (top/left).
    pub pad_before: usize,
    /// Padding after (bottom/right).
    pub pad_after: usize,
}

/// Resolves padding for spatial axis `axis` of an `op`, given input size, kernel size, stride
/// and dilation.
///
/// # Errors
/// `InvalidArgument` for a zero kernel, stride or dilation, a missing explicit pair, or a
/// (dilated) kernel larger than the padded input.
pub fn resolve_axis(
    op: &'static str,
    padding: &Padding,
    axis: usize,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Result<AxisWindow> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err(Error::invalid(op, format!("kernel size, stride and dilation must be >= 1, got kernel {kernel}, stride {stride}, dilation {dilation} on spatial axis {axis}")));
    }
    // Sizes may come from a file: every product and sum is checked.
    let overflow = || {
        Error::invalid(
            op,
            format!(
                "kernel {kernel}, stride {stride} and dilation {dilation} on spatial axis {axis} give sizes past what can be addressed"
            ),
        )
    };
    let effective = (kernel - 1).checked_mul(dilation).and_then(|e| e.checked_add(1)).ok_or_else(overflow)?;
    if effective > MAX_WINDOW {
        return Err(Error::invalid(
            op,
            format!(
                "the (dilated) kernel size {effective} on spatial axis {axis} (kernel {kernel}, dilation {dilation}) is over {MAX_WINDOW}: \
                 no network uses one, and the padding it implies could not be allocated"
            ),
        ));
    }
    let (pad_before, pad_after) = match padding {
        Padding::Valid => (0, 0),
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = out.saturating_sub(1).checked_mul(stride).and_then(|t| t.checked_add(effective)).ok_or_else(overflow)?;
            let total = total.saturating_sub(input);
            (total / 2, total - total / 2)
        }
        Padding::Explicit(pairs) => *pairs.get(axis).ok_or_else(|| {
            Error::invalid(op, format!("explicit padding needs one (before, after) pair per spatial axis, got {} pairs", pairs.len()))
        })?,
    };
    let padded = input.checked_add(pad_before).and_then(|p| p.checked_add(pad_after)).ok_or_else(overflow)?;
    if effective > padded {
        return Err(Error::invalid(
            op,
            format!("the (dilated) kernel size {effective} on spatial axis {axis} is larger than the padded input size {padded} (input {input}, padding {pad_before}+{pad_after})"),
        ));
    }
    Ok(AxisWindow { out: (padded - effective) / stride + 1, pad_before, pad_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_sizes_are_errors_not_overflows() {
        let big = 1usize << 62;
        for (k, s, d, p) in [
            (3, 1, big, Padding::Valid),
            (big, 1, 4, Padding::Same),
            (3, big, 1, Padding::Same),
            (3, 1, 1, Padding::Explicit(vec![(big, big)])),
        ] {
            // Either a clean error or a window, never an overflow panic.
            let _ = resolve_axis("t", &p, 0, 8, k, s, d);
        }
        let e = resolve_axis("t", &Padding::Valid, 0, 8, 3, 1, usize::MAX).unwrap_err().to_string();
        assert!(e.contains("give sizes past what can be addressed"), "{e}");
        let e = resolve_axis("t", &Padding::Same, 0, 8, 3, 1, 1 << 40).unwrap_err().to_string();
        assert!(
            e.contains("(dilated) kernel size 2199023255553 on spatial axis 0 (kernel 3, dilation 1099511627776) is over 1048576"),
            "{e}"
        );
    }

    #[test]
    fn same_and_valid_sizes_follow_tensorflow() {
        // SPEC §2.1 #5: 7×7 input, 3×3 kernel, stride 1, pad 1 → 7×7.
        let w = resolve_axis("t", &Padding::Explicit(vec![(1, 1)]), 0, 7, 3, 1, 1).unwrap();
        assert_eq!(w.out, 7);
        // SAME: ceil(in/s), odd padding at the end.
        let w = resolve_axis("t", &Padding::Same, 0, 28, 5, 1, 1).unwrap();
        assert_eq!((w.out, w.pad_before, w.pad_after), (28, 2, 2));
        let w = resolve_axis("t", &Padding::Same, 0, 8, 2, 2, 1).unwrap();
        assert_eq!((w.out, w.pad_before, w.pad_after), (4, 0, 0));
        let w = resolve_axis("t", &Padding::Same, 0, 7, 4, 2, 1).unwrap();
        assert_eq!((w.out, w.pad_before, w.pad_after), (4, 1, 2));
        // VALID: ceil((in − k + 1)/s).
        assert_eq!(resolve_axis("t", &Padding::Valid, 0, 14, 5, 1, 1).unwrap().out, 10);
        assert_eq!(resolve_axis("t", &Padding::Valid, 0, 7, 3, 2, 1).unwrap().out, 3);
        // Dilation: effective kernel k + (k−1)(d−1).
        assert_eq!(resolve_axis("t", &Padding::Valid, 0, 10, 3, 1, 4).unwrap().out, 2);
    }

    #[test]
    fn bad_windows_are_errors() {
        let e = resolve_axis("conv2d", &Padding::Valid, 1, 4, 5, 1, 1).unwrap_err().to_string();
        assert!(e.contains("conv2d") && e.contains("larger than the padded input size 4"), "{e}");
        let e = resolve_axis("max_pool2d", &Padding::Same, 0, 4, 2, 0, 1).unwrap_err().to_string();
        assert!(e.contains("stride") && e.contains("got kernel 2, stride 0"), "{e}");
    }
}
