"""Checks Fovea-written TensorBoard logs with TensorBoard's own reader (EventAccumulator).

Run:  /work/venvs/tf/bin/python tools/check_tensorboard.py [LOG_DIR]
(needs `pip install tensorboard`; TensorFlow only decodes the PNGs.) LOG_DIR defaults to
crates/fovea-nn/tests/fixtures/tensorboard, written by
`cargo run -p fovea-nn --example tensorboard_fixture -- LOG_DIR`; the values below restate the
example's. Exits non-zero on any mismatch.
"""
import json
import math
import os
import sys

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "crates", "fovea-nn", "tests", "fixtures", "tensorboard")


def load(run):
    acc = EventAccumulator(os.path.join(ROOT, run), size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def close(a, b, tol=1e-6):
    return abs(a - b) <= tol * max(1.0, abs(b))


# --- custom/: a SummaryWriter ------------------------------------------------------------------
acc = load("custom")
loss = [(e.step, e.value) for e in acc.Scalars("loss")]
assert [s for s, _ in loss] == [0, 1, 2, 3, 4], loss
assert all(v == np.float32(1.0 / (s + 1)) for s, v in loss), loss

hists = acc.Histograms("weights")
assert [h.step for h in hists] == [0, 1]
values = np.arange(100) / 10.0
for h, v in zip(hists, [values, -values]):
    hv = h.histogram_value
    # The values went through a float32 tensor.
    v32 = v.astype(np.float32).astype(np.float64)
    assert (hv.min, hv.max, hv.num) == (v32.min(), v32.max(), 100), hv
    assert close(hv.sum, v32.sum()) and close(hv.sum_squares, (v32 * v32).sum()), hv
    assert len(hv.bucket) == 30 and sum(hv.bucket) == 100, hv.bucket
    # Recount with the documented buckets: [edge_i, edge_i+1), the maximum in the last.
    edges = np.linspace(v32.min(), v32.max(), 31)
    counts, _ = np.histogram(v32, bins=edges)
    assert list(hv.bucket) == counts.tolist(), (list(hv.bucket), counts.tolist())
    assert close(hv.bucket_limit[-1], v32.max()) and close(hv.bucket_limit[0], edges[1]), hv.bucket_limit

n, y, x, c = np.meshgrid(np.arange(2), np.arange(4), np.arange(4), np.arange(3), indexing="ij")
sample = (60 * n + 16 * y + 4 * x + c).astype(np.uint8)
for i in range(2):
    (img,) = acc.Images(f"sample/{i}")
    assert (img.height, img.width) == (4, 4)
    decoded = tf.io.decode_png(img.encoded_image_string).numpy()
    assert (decoded == sample[i]).all(), (i, decoded)
(gray,) = acc.Images("gray")
want = ((np.arange(15) / 14.0).astype(np.float32) * np.float32(255.5)).astype(np.uint8).reshape(3, 5, 1)
assert (tf.io.decode_png(gray.encoded_image_string).numpy() == want).all()

(note,) = acc.Tensors("notes")
assert note.tensor_proto.string_val == [b"Fovea **TensorBoard** fixture"], note
print(f"custom: {len(loss)} scalars, {len(hists)} histograms, 3 images, 1 text read back with the written values")

# --- fit/: the TensorBoard callback ------------------------------------------------------------
expected = json.load(open(os.path.join(ROOT, "expected.json")))
history = expected["history"]
train, val = load("fit/train"), load("fit/validation")
for run, acc, prefix in [("train", train, ""), ("validation", val, "val_")]:
    names = [k[len(prefix):] for k in history if k.startswith(prefix) and (prefix or not k.startswith("val_"))]
    tags = sorted(acc.Tags()["scalars"])
    assert tags == sorted(f"epoch_{k}" for k in names), (run, tags, names)
    for k in names:
        got = [(e.step, e.value) for e in acc.Scalars(f"epoch_{k}")]
        want = [(i, float(np.float32(v))) for i, v in enumerate(history[prefix + k])]
        assert got == want, (run, k, got, want)
    print(f"fit/{run}: {tags} equal the History")
hists = train.Tags()["histograms"]
assert sorted(hists) == ["dense/bias/histogram", "dense/kernel/histogram"], hists
last = train.Histograms("dense/kernel/histogram")[-1]
kernel = np.array(expected["final_dense_kernel"], dtype=np.float32)
assert last.step == 2 and last.histogram_value.num == kernel.size, last
assert close(last.histogram_value.sum, float(kernel.astype(np.float64).sum())), (last.histogram_value.sum, kernel.sum())
assert "model_config" in train.Tags()["tensors"]
print(f"fit/train: histograms {sorted(hists)} (the last one matches the final kernel), model_config text")

# --- what the TensorBoard UI itself loads: the plugin accumulator, legacy summaries migrated ------
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.util import tensor_util

ui = plugin_event_accumulator.EventAccumulator(os.path.join(ROOT, "custom"), size_guidance={"tensors": 0})
ui.Reload()
plugins = {p: sorted(ui.PluginTagToContent(p)) for p in ["scalars", "histograms", "images", "text"]}
assert plugins == {"scalars": ["loss"], "histograms": ["weights"], "images": ["gray", "sample/0", "sample/1"], "text": ["notes"]}, plugins
ui_loss = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in ui.Tensors("loss")]
assert ui_loss == [(s, float(v)) for s, v in loss], ui_loss
print(f"TensorBoard UI loader: plugins {plugins}")
print("ok")
