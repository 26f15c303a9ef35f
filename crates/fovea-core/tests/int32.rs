//! int32, TensorFlow's default label and index dtype: created, moved, cast, compared, reduced,
//! used as indices and saved like int64, on both host backends.

use fovea_core::io::{read_safetensors, write_safetensors};
use fovea_core::{DType, Device, Tensor};
use std::collections::HashMap;

const DEVICES: [Device; 2] = [Device::Cpu, Device::Reference];

fn i32s(v: &[i32], dims: &[usize], device: Device) -> Tensor {
    Tensor::from_vec(v.to_vec(), dims.to_vec(), device).unwrap()
}

#[test]
fn int32_tensors_move_and_cast_like_int64() {
    for dev in DEVICES {
        let x = i32s(&[1, -2, 3, 4, 5, -6], &[2, 3], dev);
        assert_eq!((x.dtype(), x.dtype().size_in_bytes(), x.dtype().as_str()), (DType::I32, 4, "int32"));
        assert_eq!(x.transpose(0, 1).unwrap().to_vec::<i32>().unwrap(), vec![1, 4, -2, 5, 3, -6], "{dev:?}");
        assert_eq!(x.narrow(1, 1, 2).unwrap().to_vec::<i32>().unwrap(), vec![-2, 3, 5, -6]);
        let both = Tensor::concat(&[&x, &x], 0).unwrap();
        assert_eq!((both.dims(), both.dtype()), (&[4, 3][..], DType::I32));
        // Casts follow tf.cast: exact widening, truncation toward zero from floats, wrapping from int64.
        assert_eq!(x.cast(DType::I64).unwrap().to_vec::<i64>().unwrap(), vec![1, -2, 3, 4, 5, -6]);
        assert_eq!(x.cast(DType::F32).unwrap().to_vec::<f32>().unwrap(), vec![1.0, -2.0, 3.0, 4.0, 5.0, -6.0]);
        let f = Tensor::from_vec(vec![2.9f32, -2.9, 0.0], vec![3], dev).unwrap();
        assert_eq!(f.cast(DType::I32).unwrap().to_vec::<i32>().unwrap(), vec![2, -2, 0]);
        let big = Tensor::from_vec(vec![(1i64 << 32) + 7, -1], vec![2], dev).unwrap();
        assert_eq!(big.cast(DType::I32).unwrap().to_vec::<i32>().unwrap(), vec![7, -1]);
        let b = Tensor::from_vec(vec![true, false], vec![2], dev).unwrap();
        assert_eq!(b.cast(DType::I32).unwrap().to_vec::<i32>().unwrap(), vec![1, 0]);
        assert_eq!(Tensor::full([2], 7.0, DType::I32, dev).unwrap().to_vec::<i32>().unwrap(), vec![7, 7]);
    }
}

#[test]
fn int32_arithmetic_comparisons_and_reductions() {
    for dev in DEVICES {
        let a = i32s(&[1, -2, 3, 4], &[2, 2], dev);
        let b = i32s(&[10, 20], &[2], dev);
        let sum = a.add(&b).unwrap();
        assert_eq!((sum.dtype(), sum.to_vec::<i32>().unwrap()), (DType::I32, vec![11, 18, 13, 24]), "{dev:?}");
        assert_eq!(a.mul(&a).unwrap().to_vec::<i32>().unwrap(), vec![1, 4, 9, 16]);
        assert_eq!(a.eq(&i32s(&[1, 0, 3, 0], &[2, 2], dev)).unwrap().to_vec::<bool>().unwrap(), vec![true, false, true, false]);
        assert_eq!(a.gt(&i32s(&[0], &[1], dev)).unwrap().to_vec::<bool>().unwrap(), vec![true, false, true, true]);
        assert_eq!(a.argmax(1).unwrap().to_vec::<i64>().unwrap(), vec![0, 1]);
        // Mixing int32 with int64 is refused as TensorFlow refuses it: cast one side.
        let e = a.add(&a.cast(DType::I64).unwrap()).unwrap_err().to_string();
        assert!(e.contains("int32") && e.contains("int64"), "{e}");
    }
}

#[test]
fn int32_indices_and_labels_are_accepted() {
    for dev in DEVICES {
        let x = Tensor::from_vec((0..6).map(|v| v as f32).collect(), vec![3, 2], dev).unwrap();
        let rows = i32s(&[2, 0, 2], &[3], dev);
        assert_eq!(x.index_select(0, &rows).unwrap().to_vec::<f32>().unwrap(), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0], "{dev:?}");
        assert_eq!(x.gather(&i32s(&[1], &[1], dev), 1).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 3.0, 5.0]);
        let from_i32 = Tensor::one_hot(&i32s(&[0, 2, 5], &[3], dev), 3).unwrap();
        let from_i64 = Tensor::one_hot(&rows.cast(DType::I64).unwrap(), 3).unwrap();
        assert_eq!(from_i32.to_vec::<f32>().unwrap(), vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(from_i64.dims(), from_i32.dims());
        let bad = x.index_select(0, &i32s(&[3], &[1], dev)).unwrap_err().to_string();
        assert!(bad.contains("index 3") && bad.contains("valid: 0 to 2"), "{bad}");
        let sorted = i32s(&[3, -1, 2], &[3], dev).sort(0, false).unwrap();
        assert_eq!(sorted.to_vec::<i32>().unwrap(), vec![-1, 2, 3]);
    }
}

#[test]
fn int32_tensors_round_trip_through_safetensors() {
    let x = i32s(&[i32::MIN, -1, 0, i32::MAX], &[2, 2], Device::Cpu);
    let bytes = write_safetensors(&[("labels".to_string(), x.clone())], &HashMap::new()).unwrap();
    let (back, _) = read_safetensors(&bytes, Device::Cpu).unwrap();
    let (name, t) = &back[0];
    assert_eq!((name.as_str(), t.dtype(), t.dims()), ("labels", DType::I32, &[2, 2][..]));
    assert_eq!(t.to_vec::<i32>().unwrap(), x.to_vec::<i32>().unwrap());
}
