use super::graph::Layout;
use super::proto::*;
use super::*;
use crate::activations::Activation;
use crate::layers::{BatchNormalization, Conv2D, Conv2DTranspose, Dense, Flatten, Lambda, MaxPooling2D};
use crate::model::functional::{Connect, Input};
use fovea_core::ops::padding::Padding;

fn small_cnn() -> Sequential {
    let m = Sequential::with_input_shape(&[8, 8, 3]);
    m.add(Conv2D::new(8, (3, 3)).strides((2, 2)).padding(Padding::Same)).unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(crate::layers::Activation::new(Activation::Relu)).unwrap();
    m.add(MaxPooling2D::new((2, 2)).strides((2, 2))).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(5).activation(Activation::Softmax)).unwrap();
    m.build_for(&[8, 8, 3]).unwrap();
    m
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> &'a AttributeProto {
    n.attribute.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("{} has no attribute {name}", n.name))
}

fn f32s(t: &TensorProto) -> Vec<f32> {
    t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn model_proto_round_trips_through_prost() {
    let proto = small_cnn().to_onnx().unwrap();
    let bytes = proto.encode_to_vec();
    let back = ModelProto::decode(bytes.as_slice()).unwrap();
    assert_eq!(back, proto);
    assert_eq!((back.ir_version, back.opset_import[0].version, back.opset_import[0].domain.as_str()), (8, 17, ""));
    // A field outside Fovea's subset (ModelProto.metadata_props = 14) is skipped, not an error.
    let mut extra = bytes.clone();
    extra.extend([0x72, 0x00]);
    assert_eq!(ModelProto::decode(extra.as_slice()).unwrap(), proto);
}

#[test]
fn small_cnn_graph_has_the_expected_nodes_and_weights() {
    let m = small_cnn();
    let g = m.to_onnx().unwrap().graph.unwrap();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["Transpose", "Conv", "BatchNormalization", "Relu", "MaxPool", "Transpose", "Flatten", "MatMul", "Add", "Softmax"]);
    // The input stays NHWC with a symbolic batch; the graph moves it to NCHW once.
    let dims: Vec<_> = g.input[0]
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .map(|type_proto::Value::TensorType(t)| t.shape.clone().unwrap().dim)
        .unwrap();
    assert_eq!(dims.len(), 4);
    assert_eq!(dims[0].value, Some(tensor_shape_proto::dimension::Value::DimParam("N".into())));
    assert_eq!(dims[3].value, Some(tensor_shape_proto::dimension::Value::DimValue(3)));
    assert_eq!(attr(&g.node[0], "perm").ints, [0, 3, 1, 2]);
    // TF SAME, input 8, kernel 3, stride 2: out 4, one padding row/column, at the end.
    let conv = &g.node[1];
    assert_eq!(attr(conv, "pads").ints, [0, 0, 1, 1]);
    assert_eq!(attr(conv, "strides").ints, [2, 2]);
    // Back to NHWC before Flatten, so the feature order is Keras's.
    assert_eq!(attr(&g.node[5], "perm").ints, [0, 2, 3, 1]);
    // HWIO [3, 3, 3, 8] → OIHW [8, 3, 3, 3]: kernel[h=1, w=2, i=0, o=5] is W[5, 0, 1, 2].
    let kernel = m.layers()[0].weights()[0].value().to_vec::<f32>().unwrap();
    let w = g.initializer.iter().find(|t| t.name == conv.input[1]).unwrap();
    assert_eq!(w.dims, [8, 3, 3, 3]);
    let hwio = ((3 + 2) * 3) * 8 + 5;
    let oihw = ((5 * 3) * 3 + 1) * 3 + 2;
    assert_eq!(f32s(w)[oihw], kernel[hwio]);
    let bn = &g.node[2];
    assert_eq!(bn.input.len(), 5);
    assert_eq!(g.initializer.iter().find(|t| t.name == bn.input[3]).unwrap().dims, [8]);
    assert_eq!(g.output.len(), 1);
    assert_eq!(g.output[0].name, g.node[9].output[0]);
}

#[test]
fn transposed_convolutions_get_non_negative_pads_and_output_padding() {
    let x = Input::new(&[4, 4, 2]);
    let cases = [
        // (kernel, padding, output_padding) → (pads, output_padding) for input 4, stride 2
        (3, Padding::Same, Some((1, 1)), [0, 0, 1, 1], [0, 0]),
        (4, Padding::Same, None, [1, 1, 1, 1], [0, 0]),
        (3, Padding::Valid, Some((1, 1)), [0, 0, 0, 0], [1, 1]),
    ];
    let mut outs = Vec::new();
    for (k, p, op, _, _) in &cases {
        let mut l = Conv2DTranspose::new(3, (*k, *k)).strides((2, 2)).padding(p.clone());
        if let Some(op) = op {
            l = l.output_padding(*op);
        }
        outs.push(l.on(&x).unwrap());
    }
    let refs: Vec<_> = outs.iter().collect();
    let m = Functional::new(&[&x], &refs).unwrap();
    let g = m.to_onnx().unwrap().graph.unwrap();
    let ct: Vec<&NodeProto> = g.node.iter().filter(|n| n.op_type == "ConvTranspose").collect();
    assert_eq!(ct.len(), 3);
    for (n, (_, _, _, pads, op)) in ct.iter().zip(&cases) {
        assert_eq!(attr(n, "pads").ints, pads, "{}", n.name);
        assert_eq!(attr(n, "output_padding").ints, op, "{}", n.name);
        // Keras [kh, kw, out, in] → ONNX [in, out, kh, kw].
        let w = g.initializer.iter().find(|t| t.name == n.input[1]).unwrap();
        assert_eq!(&w.dims[..2], [2, 3]);
    }
}

#[test]
fn unsupported_layer_is_an_error_naming_it_and_its_type() {
    let m = Sequential::with_input_shape(&[4]);
    m.add(Dense::new(3)).unwrap();
    let l = Lambda::new(|x| x.relu(), |s| s.clone());
    l.base().set_name("my_lambda").unwrap();
    m.add(l).unwrap();
    let e = m.to_onnx().unwrap_err().to_string();
    assert!(e.contains("\"my_lambda\"") && e.contains("layer type Lambda has no ONNX counterpart") && e.contains("Conv2D"), "{e}");
    let e = Sequential::new().to_onnx().unwrap_err().to_string();
    assert!(e.contains("has no input shape"), "{e}");
}

#[test]
fn export_writes_atomically_and_keeps_the_old_file_on_failure() {
    let dir = std::env::temp_dir().join(format!("fovea-onnx-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.onnx");
    export_onnx(&small_cnn(), &path).unwrap();
    let first = std::fs::read(&path).unwrap();
    assert!(ModelProto::decode(first.as_slice()).unwrap().graph.is_some());
    // A failing export leaves the previous file whole and no temporary file behind.
    let bad = Sequential::with_input_shape(&[4]);
    bad.add(Lambda::new(|x| Ok(x.clone()), |s| s.clone())).unwrap();
    assert!(export_onnx(&bad, &path).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), first);
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [std::ffi::OsString::from("m.onnx")]);
    let e = export_onnx(&small_cnn(), dir.join("missing").join("m.onnx")).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
    let e = export_onnx(&small_cnn(), &dir).unwrap_err().to_string();
    assert!(e.contains("is a folder, expected the path of the file to write"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn layouts_follow_the_values() {
    // A Dense on images reads channels-last; a residual sum stays in NCHW.
    let x = Input::new(&[3, 3, 2]);
    let a = Conv2D::new(2, (1, 1)).on(&x).unwrap();
    let s = crate::layers::Add::new().on_many(&[&a, &x]).unwrap();
    let d = Dense::new(4).on(&s).unwrap();
    let g = Functional::new(&[&x], &[&d]).unwrap().to_onnx().unwrap().graph.unwrap();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["Transpose", "Conv", "Add", "Transpose", "MatMul", "Add"]);
    let v = graph::Val { name: "v".into(), layout: Layout::Nchw, shape: vec![3, 3, 2] };
    assert_eq!((v.onnx_axis(-1), v.onnx_axis(1), v.onnx_axis(2)), (1, 2, 3));
}

#[test]
fn nested_models_export_as_their_layers() {
    let inner = Sequential::with_input_shape(&[4, 4, 2]);
    inner.add(Conv2D::new(3, (3, 3)).padding(Padding::Same)).unwrap();
    inner.build_for(&[4, 4, 2]).unwrap();
    let outer = Sequential::with_input_shape(&[4, 4, 2]);
    outer.add(inner).unwrap();
    outer.add(Flatten::new()).unwrap();
    let g = outer.to_onnx().unwrap().graph.unwrap();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["Transpose", "Conv", "Transpose", "Flatten"]);
    assert_eq!(attr(&g.node[1], "pads").ints, [1, 1, 1, 1]);
}

#[test]
fn a_shared_layer_has_one_copy_of_its_weights() {
    let (a, b) = (Input::new(&[3]), Input::new(&[3]));
    let shared: crate::layer::LayerRef = std::sync::Arc::new(Dense::new(2));
    let (ya, yb) = (shared.clone().on(&a).unwrap(), shared.on(&b).unwrap());
    let s = crate::layers::Add::new().on_many(&[&ya, &yb]).unwrap();
    let g = Functional::new(&[&a, &b], &[&s]).unwrap().to_onnx().unwrap().graph.unwrap();
    assert_eq!(g.input.len(), 2);
    assert_eq!(g.initializer.len(), 2, "kernel and bias once: {:?}", g.initializer.iter().map(|t| &t.name).collect::<Vec<_>>());
    let matmuls: Vec<&NodeProto> = g.node.iter().filter(|n| n.op_type == "MatMul").collect();
    assert_eq!(matmuls.len(), 2);
    assert_eq!(matmuls[0].input[1], matmuls[1].input[1]);
}
