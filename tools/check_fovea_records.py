"""Checks that TensorFlow reads the TFRecord files Fovea wrote with the expected features.

Run:  /work/venvs/tf/bin/python tools/check_fovea_records.py
The files are crates/fovea-data/tests/fixtures/tfrecord/fovea_examples.tfrecord{,.gz}; the Rust
test `fovea_writes_the_committed_fixture_byte_for_byte` (crates/fovea-data/tests/tfrecord.rs)
proves Fovea writes exactly those bytes from the examples restated below. Exits non-zero on a
mismatch.
"""
import os
import sys

import numpy as np
import tensorflow as tf

DIR = os.path.join(os.path.dirname(__file__), "..", "crates", "fovea-data", "tests", "fixtures", "tfrecord")
I64_MAX = 2**63 - 1


def expected(i):
    return {
        "label": [i, -7 * i, I64_MAX - i],
        "score": [np.float32(0.5 * i), np.float32(-1.25), np.float32(1e-3)],
        "text": [b"fovea-%d" % i, bytes([0, 255, i])],
    }


def check(name, compression):
    path = os.path.join(DIR, name)
    spec = {
        "label": tf.io.FixedLenFeature([3], tf.int64),
        "score": tf.io.FixedLenFeature([3], tf.float32),
        "text": tf.io.FixedLenFeature([2], tf.string),
    }
    ds = tf.data.TFRecordDataset(path, compression_type=compression)
    n = 0
    for i, record in enumerate(ds):
        # Both parsers: the tf.io op and the protobuf class.
        parsed = tf.io.parse_single_example(record, spec)
        proto = tf.train.Example.FromString(record.numpy())
        want = expected(i)
        assert parsed["label"].numpy().tolist() == want["label"], (name, i, parsed["label"])
        assert parsed["score"].numpy().tolist() == want["score"], (name, i, parsed["score"])
        assert parsed["text"].numpy().tolist() == want["text"], (name, i, parsed["text"])
        feats = proto.features.feature
        assert sorted(feats) == ["label", "score", "text"], sorted(feats)
        assert list(feats["label"].int64_list.value) == want["label"]
        n += 1
    assert n == 3, (name, n)
    print(f"{name}: TensorFlow {tf.__version__} parsed {n} records with the expected features")


check("fovea_examples.tfrecord", "")
check("fovea_examples.tfrecord.gz", "GZIP")
print("ok")
sys.exit(0)
