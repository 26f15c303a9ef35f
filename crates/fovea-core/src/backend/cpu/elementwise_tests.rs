use super::*;
use crate::testing::assert_close;
use crate::{backend_test, Device, Tensor};

/// Deterministic values in quarter steps over [-5, 5] (so the two operands often tie), with
/// NaN, signed zeros, infinities and the kinks 6 and ±3 mixed in.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let r = (s >> 40) as u32;
            match r % 29 {
                0 => f32::NAN,
                1 => -0.0,
                2 => f32::INFINITY,
                3 => f32::NEG_INFINITY,
                4 => 6.0,
                _ => (r % 41) as f32 / 4.0 - 5.0,
            }
        })
        .collect()
}

/// Equal bits, except that any NaN matches any NaN (LLVM may fold `x * -1.0` into a negation,
/// which flips a NaN's sign bit).
fn assert_same(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "{what}: element {i} is {g:?}, expected {w:?}");
    }
}

/// Every f32 arithmetic op on `a_dims` ∘ `b_dims`, on `dev` and on the reference backend.
fn check_binary(dev: Device, a_dims: &[usize], b_dims: &[usize]) {
    let av = values(a_dims.iter().product(), 1);
    let bv = values(b_dims.iter().product(), 2);
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum, BinaryOp::Minimum, BinaryOp::Pow] {
        let run = |d: Device| {
            let a = Tensor::from_vec(av.clone(), a_dims, d).unwrap();
            let b = Tensor::from_vec(bv.clone(), b_dims, d).unwrap();
            a.binary(op, &b).unwrap()
        };
        let (got, want) = (run(dev), run(Device::Reference));
        let what = format!("{op:?} {a_dims:?} {b_dims:?}");
        assert_eq!(got.dims(), want.dims(), "{what}");
        assert_same(&what, &got.to_vec::<f32>().unwrap(), &want.to_vec::<f32>().unwrap());
    }
}

/// Each pair both ways round, so every fast path is met with its mirror.
fn check_both_ways(dev: Device, cases: &[(&[usize], &[usize])]) {
    for &(a, b) in cases {
        check_binary(dev, a, b);
        check_binary(dev, b, a);
    }
}

backend_test!(same_shape_and_scalar_sides_match_the_reference, |dev| {
    check_both_ways(
        dev,
        &[
            (&[37], &[37]),
            (&[3, 5, 7], &[3, 5, 7]),
            (&[1, 37], &[37]), // equal sizes, different ranks
            (&[1], &[1]),
            (&[], &[37]),
            (&[1], &[5, 7]),
            (&[1, 1], &[5, 7]),
        ],
    );
});

backend_test!(trailing_block_broadcasts_match_the_reference, |dev| {
    check_both_ways(
        dev,
        &[
            (&[4, 6, 5, 16], &[16]),
            (&[4, 6, 5, 16], &[1, 1, 1, 16]),
            (&[9, 13], &[13]),
            (&[3, 5, 7], &[5, 7]),
            (&[3, 5, 7], &[1, 5, 7]),
            (&[2, 3, 1], &[3, 1]),
        ],
    );
});

backend_test!(other_broadcasts_match_the_reference, |dev| {
    // Shapes the fast paths must leave to the general row walk.
    check_both_ways(dev, &[(&[3, 1], &[2]), (&[4, 1, 6], &[5, 1]), (&[5, 1], &[1, 7]), (&[2, 3, 4], &[3, 1]), (&[1, 5, 1], &[4, 5, 3])]);
});

backend_test!(large_operands_split_across_threads_match_the_reference, |dev| {
    // Past PARALLEL_THRESHOLD, with sizes off CHUNK and a block longer than CHUNK.
    check_both_ways(
        dev,
        &[(&[40_000], &[40_000]), (&[40_000], &[1]), (&[50, 30, 27], &[27]), (&[3, 20_000], &[20_000]), (&[300, 1, 130], &[7, 1])],
    );
});

backend_test!(maximum_and_minimum_propagate_nan_from_either_side, |dev| {
    let nan = f32::NAN;
    let a = Tensor::from_vec(vec![nan, 1.0, nan, 2.0, -0.0], [5], dev).unwrap();
    let b = Tensor::from_vec(vec![0.0, nan, nan, 2.0, 0.0], [5], dev).unwrap();
    let bits = |t: Tensor| t.to_vec::<f32>().unwrap().iter().map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() }).collect::<Vec<_>>();
    let want = |v: &[f32]| v.iter().map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() }).collect::<Vec<_>>();
    // Ties return `a`, so the sign of a zero comes from the left operand.
    assert_eq!(bits(a.maximum(&b).unwrap()), want(&[nan, nan, nan, 2.0, -0.0]));
    assert_eq!(bits(a.minimum(&b).unwrap()), want(&[nan, nan, nan, 2.0, -0.0]));
    let s = Tensor::scalar(nan, dev).unwrap();
    assert_eq!(bits(a.maximum(&s).unwrap()), want(&[nan; 5]));
    assert_eq!(bits(s.minimum(&a).unwrap()), want(&[nan; 5]));
    let c = Tensor::from_vec(vec![nan, 1.0], [2], dev).unwrap();
    let m = Tensor::from_vec(vec![0.0, 3.0, 5.0, nan], [2, 2], dev).unwrap();
    assert_eq!(bits(m.maximum(&c).unwrap()), want(&[nan, 3.0, nan, nan]));
    assert_eq!(bits(c.minimum(&m).unwrap()), want(&[nan, 1.0, nan, nan]));
});

/// Every op the gradient tests use, plus Round and a clip range that straddles zero.
fn unary_ops() -> impl Iterator<Item = UnaryOp> {
    crate::ops::unary::TEST_OPS.iter().copied().chain([UnaryOp::Round, UnaryOp::Clip(-1.5, 2.0)])
}

#[test]
fn unary_kernels_equal_the_f32_formulas_bit_for_bit() {
    // The specialised arms restate `UnaryOp::value` / `derivative`; any drift shows here.
    for n in [37, 40_000] {
        let (x, dy) = (values(n, 3), values(n, 4));
        for op in unary_ops() {
            let y = unary(op, &HostData::F32(x.clone())).unwrap().as_f32("test").unwrap().to_vec();
            let want: Vec<f32> = x.iter().map(|&v| op.value(v)).collect();
            assert_same(&format!("{op:?} of {n}"), &y, &want);
            let dx = unary_grad(op, &HostData::F32(x.clone()), &HostData::F32(y.clone()), &HostData::F32(dy.clone())).unwrap();
            let want: Vec<f32> = x.iter().zip(&y).zip(&dy).map(|((&x, &y), &g)| g * op.derivative(x, y)).collect();
            assert_same(&format!("{op:?} gradient of {n}"), dx.as_f32("test").unwrap(), &want);
        }
    }
}

#[test]
fn unary_kernels_match_the_reference() {
    // The reference computes in f64, so only rounding may differ; infinite inputs are left
    // out because there f32 and f64 round to different overflows (inf · 0 against inf · ε).
    let finite = |seed| HostData::F32(values(40_000, seed).into_iter().map(|v| if v.is_infinite() { 4.5 } else { v }).collect());
    let (x, dy) = (finite(5), finite(6));
    for op in unary_ops() {
        let (got, want) = (unary(op, &x).unwrap(), reference::elementwise::unary(op, &x).unwrap());
        assert_close(&format!("{op:?}"), got.as_f32("test").unwrap(), want.as_f32("test").unwrap(), 1e-5, 1e-5);
        let (got, want) = (unary_grad(op, &x, &want, &dy).unwrap(), reference::elementwise::unary_grad(op, &x, &want, &dy).unwrap());
        assert_close(&format!("{op:?} gradient"), got.as_f32("test").unwrap(), want.as_f32("test").unwrap(), 1e-5, 1e-5);
    }
}
