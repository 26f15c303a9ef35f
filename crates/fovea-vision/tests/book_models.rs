//! The seeds' reference models against SPEC §2.2's parameter counts, the inception block's
//! shape, the sliding-window net's windows, and the FC → conv equivalence.

use fovea_core::{DType, Device, Tensor};
use fovea_nn::layers::{Conv2D, Dense, Flatten};
use fovea_nn::model::functional::{Functional, Input};
use fovea_nn::model::{Model, Sequential};
use fovea_vision::applications::{
    cifar10_cnn, count_params, dense_kernel_as_conv, inception_block_a, localization_cnn, mnist_cnn, sliding_window_net, vgg11, vgg13,
    AppOptions,
};

#[test]
fn the_books_cnns_have_the_derived_parameter_counts() {
    // conv1 832, conv2 51,264, dense1024 3,212,288, logits 10,250.
    let m = mnist_cnn(10).unwrap();
    assert_eq!(count_params(&m), 3_274_634);
    assert!(m.summary().unwrap().contains("Total params: 3,274,634"));
    // 4,864 + 102,464 + 51,232 + 65,664 + 8,256 + 650.
    assert_eq!(count_params(&cifar10_cnn(10).unwrap()), 233_130);
    // 2,432 + 51,264 + 51,232, box head 153,604, presence head 38,401.
    let loc = localization_cnn().unwrap();
    assert_eq!(count_params(&loc), 296_933);
    let out: Vec<Vec<Option<usize>>> = loc.outputs().iter().map(|n| n.shape().clone()).collect();
    assert_eq!(out, vec![vec![None, Some(4)], vec![None, Some(1)]]);
    let msg = mnist_cnn(0).err().unwrap().to_string();
    assert!(msg.contains("mnist_cnn") && msg.contains("received 0"), "{msg}");
}

#[test]
fn vgg11_and_vgg13_match_the_paper_configurations() {
    // Configurations A and B: the counts torchvision's vgg11 / vgg13 report.
    assert_eq!(count_params(&vgg11(&AppOptions::default()).unwrap()), 132_863_336);
    assert_eq!(count_params(&vgg13(&AppOptions::default()).unwrap()), 133_047_848);
}

#[test]
fn inception_block_a_makes_384_channels_with_317024_parameters() {
    let x = Input::new(&[35, 35, 384]);
    let y = inception_block_a(&x, "mixed_a").unwrap();
    assert_eq!(y.shape(), &vec![None, Some(35), Some(35), Some(384)]);
    let block = Functional::new(&[&x], &[&y]).unwrap();
    assert_eq!(count_params(&block), 317_024);
}

#[test]
fn the_sliding_window_net_scores_every_window_in_one_pass() {
    // The seeds' net: a 14×14 window gives one score vector; a 16×16 image gives 2×2, the
    // windows at offsets 0 and 2 (the pooling's stride), each equal to the net on that crop.
    let window = sliding_window_net((14, 14), 4).unwrap();
    let image_net = sliding_window_net((16, 16), 4).unwrap();
    image_net.set_weights(&window.get_weights()).unwrap();
    let image = Tensor::random_uniform([1, 16, 16, 3], 0.0, 1.0, Some(3), Device::Cpu).unwrap();
    let all = image_net.predict(&image, 1).unwrap();
    assert_eq!(all.dims(), &[1, 2, 2, 4]);
    let all = all.to_vec::<f32>().unwrap();
    for (wy, wx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let crop = image.narrow(1, 2 * wy, 14).unwrap().narrow(2, 2 * wx, 14).unwrap();
        let one = window.predict(&crop, 1).unwrap().to_vec::<f32>().unwrap();
        let at = &all[(wy * 2 + wx) * 4..(wy * 2 + wx + 1) * 4];
        for (a, b) in one.iter().zip(at) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "window ({wy}, {wx}): {one:?} vs {at:?}");
        }
    }
    let msg = sliding_window_net((13, 20), 4).err().unwrap().to_string();
    assert!(msg.contains("at least 14×14") && msg.contains("received 13×20"), "{msg}");
}

/// Builds Flatten → Dense(units) on h×w×c features and the h×w VALID conv with the reshaped
/// kernel, and returns the largest difference between their outputs on random images.
fn dense_vs_conv((h, w, c): (usize, usize, usize), units: usize, images: usize) -> f32 {
    let fc = Sequential::with_input_shape(&[h, w, c]);
    fc.add(Flatten::new()).unwrap();
    fc.add(Dense::new(units)).unwrap();
    fc.build_for(&[h, w, c]).unwrap();
    let conv = Sequential::with_input_shape(&[h, w, c]);
    conv.add(Conv2D::new(units, (h, w))).unwrap();
    conv.build_for(&[h, w, c]).unwrap();
    let [kernel, bias] = &fc.get_weights()[..] else { panic!("dense kernel and bias") };
    conv.set_weights(&[dense_kernel_as_conv(kernel, (h, w, c)).unwrap(), bias.clone()]).unwrap();
    let x = Tensor::random_uniform([images, h, w, c], -1.0, 1.0, Some(9), Device::Cpu).unwrap();
    let a = fc.predict(&x, images).unwrap().to_vec::<f32>().unwrap();
    let b = conv.predict(&x, images).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(a.len(), images * units);
    assert_eq!(b.len(), a.len(), "the conv gives 1×1×{units} per image");
    a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max)
}

#[test]
fn a_dense_layer_after_flatten_equals_a_valid_convolution_of_the_same_kernel() {
    // The seeds' FC 400 on 5×5×16 features (LeNet's C5).
    let worst = dense_vs_conv((5, 5, 16), 400, 3);
    assert!(worst < 1e-4, "{worst}");
    let kernel = Tensor::zeros([400, 400], DType::F32, Device::Cpu).unwrap();
    let e = dense_kernel_as_conv(&kernel, (4, 5, 16)).unwrap_err().to_string();
    assert!(e.contains("expected a kernel of [320, units]") && e.contains("[400, 400]"), "{e}");
}

#[test]
fn vgg_fc4096_on_7x7x512_equals_a_7x7_valid_convolution() {
    // SPEC §3: VGG's first classifier layer (102.8 M weights) as the conv that lets the network
    // slide over larger images. Sums of 25,088 products: float32 reordering stays under 1e-3.
    let worst = dense_vs_conv((7, 7, 512), 4096, 2);
    assert!(worst < 1e-3, "{worst}");
}

mod lecun {
    use super::*;
    use fovea_core::testing::gradcheck;
    use fovea_vision::applications::{c3_kernel, lenet5_original, rbf, subsample, C3_CONNECTIONS};

    #[test]
    fn the_original_lenet5_has_lecuns_60840_parameters_layer_by_layer() {
        let m = lenet5_original().unwrap();
        let per_layer: Vec<usize> = m.layers().iter().map(|l| count_params(l.as_ref())).filter(|&n| n > 0).collect();
        // C1, S2, C3 (60 connections of 5×5 + 16 biases), S4, C5, F6, RBF output.
        assert_eq!(per_layer, vec![156, 12, 1_516, 32, 48_120, 10_164, 840]);
        assert_eq!(count_params(&m), 60_840);
        let x = Tensor::random_uniform([2, 32, 32, 1], 0.0, 1.0, Some(1), Device::Cpu).unwrap();
        assert_eq!(m.predict(&x, 2).unwrap().dims(), &[2, 10]);
    }

    #[test]
    fn c3_reads_only_the_maps_of_table_one() {
        assert_eq!(C3_CONNECTIONS.iter().map(|c| c.len()).sum::<usize>(), 60);
        let w = Tensor::random_uniform([1500], -1.0, 1.0, Some(2), Device::Cpu).unwrap();
        let k = c3_kernel(&w).unwrap();
        assert_eq!(k.dims(), &[5, 5, 6, 16]);
        let k = k.to_vec::<f32>().unwrap();
        for out in 0..16 {
            for input in 0..6 {
                let taps: Vec<f32> = (0..25).map(|t| k[(t * 6 + input) * 16 + out]).collect();
                let connected = C3_CONNECTIONS[out].contains(&input);
                assert_eq!(taps.iter().all(|v| *v == 0.0), !connected, "map {out} from S2 map {input}");
            }
        }
        // Every connected weight appears exactly once in the kernel.
        let mut used: Vec<f32> = k.iter().copied().filter(|v| *v != 0.0).collect();
        let mut all = w.to_vec::<f32>().unwrap();
        used.sort_by(f32::total_cmp);
        all.sort_by(f32::total_cmp);
        assert_eq!(used, all);
    }

    #[test]
    fn subsampling_partial_connections_and_rbf_have_finite_difference_gradients() {
        let x = Tensor::random_uniform([2, 4, 6, 3], -1.0, 1.0, Some(3), Device::Cpu).unwrap();
        let coef = Tensor::random_uniform([3], 0.1, 0.5, Some(4), Device::Cpu).unwrap();
        let bias = Tensor::random_uniform([3], -0.5, 0.5, Some(5), Device::Cpu).unwrap();
        gradcheck(|t| subsample(&t[0], &t[1], &t[2]), &[x, coef, bias], 1e-3, 2e-2).unwrap();
        let w = Tensor::random_uniform([1500], -1.0, 1.0, Some(6), Device::Cpu).unwrap();
        gradcheck(|t| c3_kernel(&t[0]), &[w], 1e-3, 2e-2).unwrap();
        let f = Tensor::random_uniform([3, 7], -1.0, 1.0, Some(7), Device::Cpu).unwrap();
        let centres = Tensor::random_uniform([7, 4], -1.0, 1.0, Some(8), Device::Cpu).unwrap();
        gradcheck(|t| rbf(&t[0], &t[1]), &[f.clone(), centres.clone()], 1e-3, 2e-2).unwrap();
        // The RBF scores are minus squared distances: the centre itself scores 0, the best.
        let c0 = centres.narrow(1, 0, 1).unwrap().reshape(&[1, 7]).unwrap();
        let s = rbf(&c0, &centres).unwrap().to_vec::<f32>().unwrap();
        assert!(s[0].abs() < 1e-5 && s[1..].iter().all(|v| *v < s[0]), "{s:?}");
    }

    #[test]
    fn the_original_lenet5_learns_a_two_class_task_from_its_rbf_scores() {
        use fovea_nn::losses::LossKind;
        use fovea_nn::model::FitOptions;
        use fovea_nn::optimizers::Optimizer;
        // A bright 8×8 square on the left half (class 0) or the right half (class 1).
        let n = 64;
        let mut pixels = vec![0f32; n * 32 * 32];
        for i in 0..n {
            let (top, left) = (4 + (i * 7) % 16, if i % 2 == 0 { 2 + i % 6 } else { 20 + i % 4 });
            for r in top..top + 8 {
                for c in left..left + 8 {
                    pixels[i * 1024 + r * 32 + c] = 1.0;
                }
            }
        }
        let x = Tensor::from_vec(pixels, [n, 32, 32, 1], Device::Cpu).unwrap();
        let y = Tensor::from_vec((0..n).map(|i| (i % 2) as f32).collect::<Vec<_>>(), [n], Device::Cpu).unwrap();
        fovea_core::set_seed(3);
        let m = lenet5_original().unwrap();
        m.compile(Optimizer::adam(0.01), LossKind::SparseCategoricalCrossentropy { from_logits: true }.into(), &["accuracy"]).unwrap();
        let h = m.fit(&x, &y, FitOptions { epochs: 15, batch_size: 16, verbose: 0, seed: Some(1), ..Default::default() }).unwrap();
        let acc = *h.history["accuracy"].last().unwrap();
        assert!(acc > 0.95, "training accuracy {acc} after 15 epochs: {:?}", h.history["loss"]);
    }

    #[test]
    fn a_saved_lenet5_original_loads_without_any_set_up_call() {
        // Its three layer classes register themselves (fovea_nn::register_layer_class!).
        fovea_core::set_seed(5);
        let m = lenet5_original().unwrap();
        let dir = std::env::temp_dir().join(format!("fovea-lenet-original-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lenet.safetensors");
        fovea_nn::model::io::save_model(&m, &path).unwrap();
        let back = fovea_nn::model::io::load_model(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let x = Tensor::random_uniform([2, 32, 32, 1], 0.0, 1.0, Some(4), Device::Cpu).unwrap();
        assert_eq!(back.predict(&x, 2).unwrap().to_vec::<f32>().unwrap(), m.predict(&x, 2).unwrap().to_vec::<f32>().unwrap());
        let classes: Vec<&str> = back.layers().iter().map(|l| l.class_name()).collect();
        assert!(["Subsampling2D", "PartialConv2D", "RbfOutput"].iter().all(|c| classes.contains(c)), "{classes:?}");
        let bad = fovea_nn::model::registry::layer_from_config("PartialConv2D", &serde_json::json!({"connections": [[0]]}));
        assert!(bad.err().unwrap().to_string().contains("expected LeNet-5's C3 connection table"));
        let bad = fovea_nn::model::registry::layer_from_config("RbfOutput", &serde_json::json!({"units": 0}));
        assert!(bad.err().unwrap().to_string().contains("expected a positive \"units\""));
    }
}
