use super::function::*;
use crate::activations::Activation as Act;
use crate::layer::Layer;
use crate::layers::testing::{check_layer, LayerExpectations};
use fovea_core::{DType, Device, Tensor};

fn e(o: &[Option<usize>]) -> LayerExpectations {
    LayerExpectations { output: o.to_vec(), params: 0, non_trainable: 0 }
}

#[test]
fn weightless_layers_pass_the_harness() {
    check_layer(&Activation::new(Act::Tanh), &[&[3, 2]], e(&[None, Some(3), Some(2)]));
    check_layer(&LeakyReLU::new(0.3), &[&[4]], e(&[None, Some(4)]));
    check_layer(&ELU::new(1.0), &[&[4]], e(&[None, Some(4)]));
    check_layer(&Softmax::new(-1), &[&[5]], e(&[None, Some(5)]));
    check_layer(&Flatten::new(), &[&[2, 3, 4]], e(&[None, Some(24)]));
    check_layer(&Reshape::new(&[4, -1]), &[&[2, 6]], e(&[None, Some(4), Some(3)]));
    check_layer(&Permute::new(&[2, 1]), &[&[2, 3]], e(&[None, Some(3), Some(2)]));
    check_layer(&ZeroPadding2D::new((1, 2), (0, 1)), &[&[3, 3, 2]], e(&[None, Some(6), Some(4), Some(2)]));
    check_layer(&Cropping2D::new((1, 0), (1, 1)), &[&[4, 5, 2]], e(&[None, Some(3), Some(3), Some(2)]));
    check_layer(&UpSampling2D::new((2, 3)), &[&[2, 2, 1]], e(&[None, Some(4), Some(6), Some(1)]));
    check_layer(&LocalResponseNormalization::new(2, 1.0, 2e-5, 0.75), &[&[2, 2, 6]], e(&[None, Some(2), Some(2), Some(6)]));
    check_layer(&Lambda::new(|x| x.mul_scalar(2.0), |s| s.clone()), &[&[3]], e(&[None, Some(3)]));
}

#[test]
fn dropout_scales_in_training_and_is_identity_in_inference() {
    let x = Tensor::ones([100, 100], DType::F32, Device::Cpu).unwrap();
    let d = Dropout::with_seed(0.3, 7);
    assert_eq!(d.apply(std::slice::from_ref(&x), false).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    let y = d.apply(&[x], true).unwrap().to_vec::<f32>().unwrap();
    let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    assert!((zeros - 0.3).abs() < 0.02, "dropped fraction {zeros}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    // SpatialDropout2D drops whole channels of each sample.
    let s = SpatialDropout2D::new(0.5);
    let y = s.apply(&[Tensor::ones([4, 3, 3, 8], DType::F32, Device::Cpu).unwrap()], true).unwrap().to_vec::<f32>().unwrap();
    for n in 0..4 {
        for c in 0..8 {
            let vals: Vec<f32> = (0..9).map(|p| y[n * 72 + p * 8 + c]).collect();
            assert!(vals.iter().all(|&v| v == vals[0]), "channel {c} of sample {n} partly dropped");
        }
    }
    let bad = Dropout::new(1.0);
    assert!(bad
        .apply(&[Tensor::ones([2], DType::F32, Device::Cpu).unwrap()], true)
        .unwrap_err()
        .to_string()
        .contains("rate must be in [0, 1)"));
}

#[test]
fn padding_cropping_upsampling_values() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [1, 2, 2, 1], Device::Cpu).unwrap();
    let p = ZeroPadding2D::new((1, 0), (0, 1)).apply(std::slice::from_ref(&x), false).unwrap();
    assert_eq!(p.to_vec::<f32>().unwrap(), vec![0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0]);
    let c = Cropping2D::new((1, 0), (0, 1)).apply(&[p], false).unwrap();
    assert_eq!(c.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    let u = UpSampling2D::new((2, 1)).apply(&[x], false).unwrap();
    assert_eq!(u.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]);
}

#[test]
fn shape_errors_name_the_layer() {
    let r = Reshape::new(&[5]).named("rs").unwrap();
    let err = r.compute_output_shape(&[vec![None, Some(2), Some(3)]]).unwrap_err().to_string();
    assert!(err.contains("rs: cannot reshape a sample of shape (None, 2, 3) (6 values) to [5]"), "{err}");
    let p = Permute::new(&[1, 3]);
    assert!(p.compute_output_shape(&[vec![None, Some(2), Some(3)]]).unwrap_err().to_string().contains("must be a permutation"));
    let c = Cropping2D::new((2, 2), (0, 0));
    assert!(c.compute_output_shape(&[vec![None, Some(4), Some(4), Some(1)]]).unwrap_err().to_string().contains("leaves nothing"));
    let u = UpSampling2D::new((2, 2));
    assert!(u.compute_output_shape(&[vec![None, Some(4), Some(4)]]).unwrap_err().to_string().contains("rank 4"));
}

#[test]
fn bilinear_upsampling_follows_tensorflow_half_pixel_rule() {
    // [1, 2] upsampled ×2 along the width: TF gives [1, 1.25, 1.75, 2].
    let x = Tensor::from_vec(vec![1.0f32, 2.0], [1, 1, 2, 1], Device::Cpu).unwrap();
    let y = UpSampling2D::bilinear((1, 2)).apply(&[x], false).unwrap();
    assert_eq!(y.dims(), &[1, 1, 4, 1]);
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.0, 1.25, 1.75, 2.0]);
    check_layer(&UpSampling2D::bilinear((2, 2)), &[&[2, 3, 2]], e(&[None, Some(4), Some(6), Some(2)]));
}
