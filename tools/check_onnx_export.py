#!/usr/bin/env python3
"""Checks Fovea's ONNX exports against onnxruntime.

For every NAME.onnx in DIR (written by `cargo run -p fovea --example onnx_fixture -- DIR`), runs
`onnx.checker.check_model` (full check, with shape inference), then onnxruntime on
NAME.input.npy, and compares each output with Fovea's NAME.output{i}.npy.

Tolerance, per output: max |onnx - fovea| <= 1e-4 * max(1, max |fovea|), i.e. 1e-4 absolute for
outputs of magnitude up to 1 (softmax probabilities, the small layer models' feature maps) and
1e-4 relative to the output's largest magnitude beyond that (the zoo models' logits, where the
float32 summation order of two correct implementations alone differs by more than 1e-4 absolute
once values reach the tens). The maximum absolute difference is printed for each output.

Where the fixture was imported from Keras (NAME.keras{i}.npy beside it, see
tools/fixtures/gen_keras_onnx_models.py), onnxruntime's outputs are also compared with Keras's,
with the same tolerance.

Usage: check_onnx_export.py DIR
"""

import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort

TOL = 1e-4


def check(path: pathlib.Path) -> bool:
    name = path.name[: -len(".onnx")]
    # check_model on the path (not a loaded proto) also works for models over 2 GB.
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    opset = {o.domain: o.version for o in model.opset_import}.get("", 0)
    ops = {n.op_type for n in model.graph.node}
    assert opset >= 17, f"{name}: opset {opset}, expected >= 17"
    assert "Erfc" not in ops, f"{name}: uses the non-standard Erfc op"
    for n in model.graph.node:
        for a in n.attribute:
            if a.name in ("pads", "output_padding"):
                assert min(a.ints, default=0) >= 0, f"{name}: node {n.name} has negative {a.name} {list(a.ints)}"
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = np.load(path.parent / f"{name}.input.npy")
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    ok = True
    for i, got in enumerate(outs):
        refs = [("Fovea", path.parent / f"{name}.output{i}.npy"), ("Keras", path.parent / f"{name}.keras{i}.npy")]
        for who, ref in refs:
            if ref.exists():
                ok &= compare(f"{name} output {i} vs {who}", got, np.load(ref))
    return ok


def compare(what: str, got: np.ndarray, want: np.ndarray) -> bool:
    if got.shape != want.shape:
        print(f"FAIL {what}: shape {got.shape}, expected {want.shape}")
        return False
    diff = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
    scale = max(1.0, float(np.abs(want).max()))
    good = diff <= TOL * scale
    status = "ok  " if good else "FAIL"
    print(f"{status} {what} {tuple(want.shape)}: max abs diff {diff:.3g} (max |value| {scale:.3g}, tolerance {TOL * scale:.3g})")
    return good


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    paths = sorted(pathlib.Path(sys.argv[1]).glob("*.onnx"))
    if not paths:
        print(f"no .onnx files in {sys.argv[1]}")
        return 1
    failed = [p.name for p in paths if not check(p)]
    print(f"{len(paths) - len(failed)}/{len(paths)} models match onnxruntime (tolerance {TOL} x max(1, max |output|))")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
