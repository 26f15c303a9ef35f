#!/usr/bin/env python3
"""TensorFlow/Keras side of the end-to-end benchmark (`bench/run.sh`): the workloads of
`fovea bench` with Keras models (channels_last), random data, 2 threads; one JSON line each
with the median images/s of 5 windows (≥ 1 s) after a warm-up and the process's peak RSS.
Training steps are `model.train_on_batch` (a compiled tf.function), inference `model(x,
training=False)` through a tf.function. Usage: tf_e2e.py [--only NAME]"""
import argparse
import json
import os
import resource
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

tf.config.threading.set_inter_op_parallelism_threads(2)
tf.config.threading.set_intra_op_parallelism_threads(2)
L = tf.keras.layers


def lenet5():
    return tf.keras.Sequential([
        tf.keras.Input((28, 28, 1)),
        L.Conv2D(6, 5, padding="same", activation="relu"), L.MaxPooling2D(),
        L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(), L.Flatten(),
        L.Dense(120, activation="relu"), L.Dense(84, activation="relu"), L.Dense(10, activation="softmax"),
    ])


def fashion_cnn():
    conv = lambda f, k: L.Conv2D(f, k, padding="same", activation="relu")
    return tf.keras.Sequential([
        tf.keras.Input((28, 28, 1)), conv(64, 7), L.MaxPooling2D(), conv(128, 3), conv(128, 3), L.MaxPooling2D(),
        conv(256, 3), conv(256, 3), L.MaxPooling2D(), L.Flatten(), L.Dense(128, activation="relu"), L.Dropout(0.5),
        L.Dense(64, activation="relu"), L.Dropout(0.5), L.Dense(10, activation="softmax"),
    ])


def resnet20():
    x = inp = tf.keras.Input((32, 32, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same", use_bias=False)(x)))
    ch = 16
    for filters, stride in [(16, 1), (32, 2), (64, 2)]:
        for k in range(3):
            s = stride if k == 0 else 1
            y = L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 3, s, padding="same", use_bias=False)(x)))
            y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same", use_bias=False)(y))
            sc = L.MaxPooling2D(1, s)(x) if s > 1 else x
            if filters != ch:
                sc = L.Concatenate()([sc, L.Lambda(lambda t: tf.zeros_like(t))(sc)])
            x = L.ReLU()(L.Add()([y, sc]))
            ch = filters
    return tf.keras.Model(inp, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)))


def resnet50():
    return tf.keras.applications.ResNet50(weights=None)


WORKLOADS = {
    "lenet5_train_b32": (lenet5, True, 32, (28, 28, 1)),
    "lenet5_train_b128": (lenet5, True, 128, (28, 28, 1)),
    "fashion_cnn_train_b128": (fashion_cnn, True, 128, (28, 28, 1)),
    "resnet20_train_b128": (resnet20, True, 128, (32, 32, 3)),
    "lenet5_infer_b1": (lenet5, False, 1, (28, 28, 1)),
    "lenet5_infer_b256": (lenet5, False, 256, (28, 28, 1)),
    "resnet20_infer_b1": (resnet20, False, 1, (32, 32, 3)),
    "resnet20_infer_b128": (resnet20, False, 128, (32, 32, 3)),
    "resnet50_infer_b1": (resnet50, False, 1, (224, 224, 3)),
    "resnet50_infer_b8": (resnet50, False, 8, (224, 224, 3)),
    # Mixed bf16 rows of the device-ready core issue: Keras's mixed_bfloat16 policy.
    "resnet20_train_b128_bf16": (resnet20, True, 128, (32, 32, 3)),
    "resnet50_infer_b1_bf16": (resnet50, False, 1, (224, 224, 3)),
    "resnet50_infer_b8_bf16": (resnet50, False, 8, (224, 224, 3)),
}


def run(name):
    make, train, batch, shape = WORKLOADS[name]
    tf.keras.utils.set_random_seed(0)
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16" if name.endswith("_bf16") else "float32")
    model = make()
    x = tf.random.uniform((batch, *shape))
    y = tf.range(batch) % 10
    if train:
        model.compile(optimizer="nadam" if name.startswith("fashion") else "adam", loss="sparse_categorical_crossentropy")
        step = lambda: model.train_on_batch(x, y)
    else:
        fwd = tf.function(lambda t: model(t, training=False))
        step = lambda: fwd(x).numpy()

    def window():
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < 1.0 or n == 0:
            step()
            n += 1
        return n * batch / (time.perf_counter() - start)

    window()
    rate = statistics.median(sorted(window() for _ in range(5)))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"kind": "result", "bench": "tensorflow", "version": tf.__version__, "name": name,
                      "images_per_s": round(rate, 1), "peak_rss_mib": round(rss, 1), "batch": batch, "threads": 2}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--only")
    a = p.parse_args()
    for n in [a.only] if a.only else WORKLOADS:
        run(n)
