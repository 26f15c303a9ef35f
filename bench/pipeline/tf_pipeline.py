#!/usr/bin/env python3
"""tf.data side of the pipeline benchmark: decode JPEG -> random crop 192x192 -> random flip ->
resize (bilinear) to 224x224, map with 2 parallel calls, batch 32, prefetch; 2 threads.
Prints one JSON line: median images/s over 5 windows after a warm-up. Usage: tf_pipeline.py DIR"""
import glob
import json
import os
import statistics
import sys
import time

import tensorflow as tf

tf.config.threading.set_inter_op_parallelism_threads(2)
tf.config.threading.set_intra_op_parallelism_threads(2)
files = sorted(glob.glob(os.path.join(sys.argv[1], "*.jpg")))
blobs = [open(f, "rb").read() for f in files]


def augment(data, seed):
    img = tf.io.decode_jpeg(data, channels=3)
    img = tf.image.stateless_random_crop(img, (192, 192, 3), seed=seed)
    img = tf.image.stateless_random_flip_left_right(img, seed=seed)
    return tf.image.resize(img, (224, 224), method="bilinear")


ds = tf.data.Dataset.from_tensor_slices(blobs).repeat()
seeds = tf.data.Dataset.random(seed=0).batch(2)
ds = tf.data.Dataset.zip((ds, seeds)).map(augment, num_parallel_calls=2).batch(32).prefetch(2)
opts = tf.data.Options()
opts.threading.private_threadpool_size = 2
ds = ds.with_options(opts)
it = iter(ds)
BATCHES = 40  # 1,280 images per window


def window():
    start = time.perf_counter()
    for _ in range(BATCHES):
        next(it)
    return BATCHES * 32 / (time.perf_counter() - start)


window()
rates = sorted(window() for _ in range(5))
print(json.dumps({"kind": "result", "bench": "tensorflow", "version": tf.__version__, "name": "jpeg_decode_crop_flip_resize_224",
                  "images_per_s": round(statistics.median(rates), 1), "best": round(rates[-1], 1)}))
