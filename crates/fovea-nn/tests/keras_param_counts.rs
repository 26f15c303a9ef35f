//! Parameter counts and output shapes of Fovea's layers against Keras 3 for the same
//! configurations (fixture from `tools/fixtures/gen_layer_param_counts.py`).

use fovea_core::ops::padding::Padding;
use fovea_nn::layer::{Layer, ShapeSpec};
use fovea_nn::layers::*;

fn case(name: &str) -> (Vec<usize>, Box<dyn Layer>) {
    let same = Padding::Same;
    match name {
        "dense_10_on_3072" => (vec![3072], Box::new(Dense::new(10))),
        "dense_4_on_2x3" => (vec![2, 3], Box::new(Dense::new(4))),
        "dense_4_nobias_on_3" => (vec![3], Box::new(Dense::new(4).use_bias(false))),
        "conv2d_10_k5_on_32x32x3" => (vec![32, 32, 3], Box::new(Conv2D::new(10, (5, 5)))),
        "conv2d_4_k3_s2_same_g2_on_7x7x2" => (vec![7, 7, 2], Box::new(Conv2D::new(4, (3, 3)).strides((2, 2)).padding(same).groups(2))),
        "conv1d_3_k3_d2_on_9x2" => (vec![9, 2], Box::new(Conv1D::new(3, 3).dilation_rate((1, 2)))),
        "conv3d_4_k3_same_on_4x4x4x2" => (vec![4, 4, 4, 2], Box::new(Conv3D::new(4, (3, 3, 3)).padding(same))),
        "conv2dtranspose_1_k4_s2_same_on_14x14x3" => {
            (vec![14, 14, 3], Box::new(Conv2DTranspose::new(1, (4, 4)).strides((2, 2)).padding(same)))
        }
        "conv2dtranspose_2_k3_s2_op1_on_3x3x2" => {
            (vec![3, 3, 2], Box::new(Conv2DTranspose::new(2, (3, 3)).strides((2, 2)).output_padding((1, 1))))
        }
        "depthwise_k3_m2_same_on_5x5x3" => (vec![5, 5, 3], Box::new(DepthwiseConv2D::new((3, 3), 2).padding(same))),
        "separable_4_k3_on_5x5x3" => (vec![5, 5, 3], Box::new(SeparableConv2D::new(4, (3, 3)))),
        "batchnorm_on_3x3x4" => (vec![3, 3, 4], Box::new(BatchNormalization::new())),
        "layernorm_on_5" => (vec![5], Box::new(LayerNormalization::new())),
        "prelu_on_4" => (vec![4], Box::new(PReLU::new())),
        "maxpool_2_on_6x6x3" => (vec![6, 6, 3], Box::new(MaxPooling2D::new((2, 2)))),
        "avgpool_3_s2_same_on_7x7x2" => (vec![7, 7, 2], Box::new(AveragePooling2D::new((3, 3)).strides((2, 2)).padding(same))),
        "gap_on_3x3x5" => (vec![3, 3, 5], Box::new(GlobalAveragePooling2D::new())),
        "upsampling_2x3_on_2x2x1" => (vec![2, 2, 1], Box::new(UpSampling2D::new((2, 3)))),
        "zeropad_on_3x3x2" => (vec![3, 3, 2], Box::new(ZeroPadding2D::new((1, 2), (0, 1)))),
        "cropping_on_4x5x2" => (vec![4, 5, 2], Box::new(Cropping2D::new((1, 0), (1, 1)))),
        other => panic!("fixture case {other} has no Fovea counterpart"),
    }
}

#[test]
fn every_layer_counts_parameters_like_keras() {
    let text = std::fs::read_to_string(format!("{}/tests/fixtures/layer_params.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 20);
    for c in cases {
        let name = c["case"].as_str().unwrap();
        let (shape, layer) = case(name);
        let spec: ShapeSpec = std::iter::once(None).chain(shape.iter().map(|&d| Some(d))).collect();
        layer.build(std::slice::from_ref(&spec)).unwrap();
        let count = |vs: Vec<fovea_core::Variable>| vs.iter().map(|v| v.value().numel()).sum::<usize>();
        assert_eq!(count(layer.weights()) as u64, c["total"].as_u64().unwrap(), "{name}: total parameters");
        assert_eq!(count(layer.non_trainable_weights()) as u64, c["non_trainable"].as_u64().unwrap(), "{name}: non-trainable");
        let out: Vec<Option<u64>> = layer.compute_output_shape(&[spec]).unwrap().iter().map(|d| d.map(|v| v as u64)).collect();
        let want: Vec<Option<u64>> = c["output_shape"].as_array().unwrap().iter().map(|d| d.as_u64()).collect();
        assert_eq!(out, want, "{name}: output shape");
    }
}
