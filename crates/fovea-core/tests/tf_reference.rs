//! Fovea against TensorFlow: every case in `tests/fixtures/` (written by
//! `tools/fixtures/gen_core_fixtures.py`), outputs and input gradients, on both backends, at
//! `rtol 1e-5, atol 1e-6`. Parameters come from each file's metadata, never from this file.

mod common;

use common::{assert_matches, check_case, Fixture};
use fovea_core::ops::conv::Conv2dOptions;
use fovea_core::ops::conv_transpose::Conv2dTransposeOptions;
use fovea_core::{DType, Device};

/// Opens `file` on `dev` and runs `body` on each case, so one failing case names itself.
fn each_case(file: &str, dev: Device, body: impl Fn(&common::Case<'_>)) {
    let fx = Fixture::open(file, dev);
    for case in fx.cases() {
        body(&case);
    }
}

fn conv_options(case: &common::Case<'_>) -> Conv2dOptions {
    Conv2dOptions { strides: case.pair("strides"), padding: case.padding(), dilation: case.pair("dilation"), groups: case.usize("groups") }
}

fovea_core::backend_test!(conv2d_matches_tensorflow, |dev| {
    each_case("conv2d.safetensors", dev, |case| {
        let opts = conv_options(case);
        check_case(case, &["x", "w"], |t| t[0].conv2d(&t[1], &opts));
    });
});

fovea_core::backend_test!(depthwise_conv2d_matches_tensorflow, |dev| {
    each_case("depthwise_conv2d.safetensors", dev, |case| {
        let opts = conv_options(case);
        check_case(case, &["x", "w"], |t| t[0].depthwise_conv2d(&t[1], &opts));
    });
});

fovea_core::backend_test!(separable_conv2d_matches_tensorflow, |dev| {
    each_case("separable_conv2d.safetensors", dev, |case| {
        let opts = conv_options(case);
        check_case(case, &["x", "wd", "wp"], |t| t[0].separable_conv2d(&t[1], &t[2], &opts));
    });
});

fovea_core::backend_test!(conv2d_transpose_matches_keras, |dev| {
    each_case("conv2d_transpose.safetensors", dev, |case| {
        let opts = Conv2dTransposeOptions {
            strides: case.pair("strides"),
            padding: case.padding(),
            output_padding: case.output_padding(),
            dilation: case.pair("dilation"),
        };
        let (oh, ow) = case.pair("output_hw");
        check_case(case, &["x", "w"], |t| {
            let y = t[0].conv2d_transpose(&t[1], &opts)?;
            assert_eq!(&y.dims()[1..3], &[oh, ow], "{}: Keras output size", case.label());
            Ok(y)
        });
    });
});

fovea_core::backend_test!(max_pool2d_matches_tensorflow, |dev| {
    each_case("max_pool2d.safetensors", dev, |case| {
        let (k, s, p) = (case.pair("ksize"), case.pair("strides"), case.padding());
        check_case(case, &["x"], |t| t[0].max_pool2d(k, s, p.clone()));
    });
});

fovea_core::backend_test!(avg_pool2d_matches_tensorflow, |dev| {
    each_case("avg_pool2d.safetensors", dev, |case| {
        let (k, s, p) = (case.pair("ksize"), case.pair("strides"), case.padding());
        check_case(case, &["x"], |t| t[0].avg_pool2d(k, s, p.clone()));
    });
});

fovea_core::backend_test!(max_pool2d_with_argmax_matches_tensorflow, |dev| {
    each_case("max_pool_with_argmax.safetensors", dev, |case| {
        assert_eq!(case.param("include_batch_in_index"), "true");
        let (k, s, p) = (case.pair("ksize"), case.pair("strides"), case.padding());
        check_case(case, &["x"], |t| {
            let (y, argmax) = t[0].max_pool2d_with_argmax(k, s, p.clone())?;
            // Indices are exact: flat ((b·H + y)·W + x)·C + c, as TensorFlow's
            // include_batch_in_index=True.
            assert_eq!(argmax.dtype(), DType::I64, "{}: argmax dtype", case.label());
            let expected = case.tensor("argmax");
            assert_eq!(argmax.dims(), expected.dims(), "{}: argmax shape", case.label());
            assert_eq!(argmax.to_vec::<i64>()?, expected.to_vec::<i64>()?, "{}: argmax", case.label());
            Ok(y)
        });
    });
});

fovea_core::backend_test!(max_pool_depth_matches_tensorflow, |dev| {
    each_case("max_pool_depth.safetensors", dev, |case| {
        let k = case.usize("ksize");
        assert_eq!(case.usize("strides"), k, "{}: depth pooling has stride = window", case.label());
        check_case(case, &["x"], |t| t[0].max_pool_depth(k));
    });
});

fovea_core::backend_test!(local_response_normalization_matches_tensorflow, |dev| {
    each_case("local_response_normalization.safetensors", dev, |case| {
        let (r, bias, alpha, beta) = (case.usize("depth_radius"), case.f32("bias"), case.f32("alpha"), case.f32("beta"));
        check_case(case, &["x"], |t| t[0].local_response_normalization(r, bias, alpha, beta));
    });
});

fovea_core::backend_test!(pad_matches_tensorflow, |dev| {
    each_case("pad.safetensors", dev, |case| {
        let (pads, mode) = (case.pads(), case.pad_mode());
        check_case(case, &["x"], |t| t[0].pad(&pads, mode));
    });
});

fovea_core::backend_test!(softmax_matches_tensorflow, |dev| {
    each_case("softmax.safetensors", dev, |case| {
        let axis = case.isize("axis");
        check_case(case, &["x"], |t| t[0].softmax(axis));
    });
});

fovea_core::backend_test!(log_softmax_matches_tensorflow, |dev| {
    each_case("log_softmax.safetensors", dev, |case| {
        let axis = case.isize("axis");
        check_case(case, &["x"], |t| t[0].log_softmax(axis));
    });
});

// The softmax of the huge-logit slices must be finite and sum to one: a naive `exp` would give
// NaN there, which the closeness check alone would also catch, but this names the cause.
fovea_core::backend_test!(softmax_is_stable_for_huge_logits, |dev| {
    each_case("softmax.safetensors", dev, |case| {
        let y = case.tensor("x").softmax(case.isize("axis")).expect("softmax");
        let sums = y.sum(&[case.isize("axis")], false).expect("sum");
        assert_matches(&format!("{} row sums", case.label()), &sums, &sums.ones_like());
        assert!(y.to_vec::<f32>().expect("f32").iter().all(|v| v.is_finite()), "{}: non-finite softmax", case.label());
    });
});
