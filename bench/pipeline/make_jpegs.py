#!/usr/bin/env python3
"""Writes 64 photo-like 224x224 RGB JPEGs (quality 90) into DIR for the pipeline benchmark:
smooth colour fields plus texture and noise, so their entropy (and decode cost) is close to a
natural photo's. Usage: make_jpegs.py DIR  (needs numpy and tensorflow for encode_jpeg)."""
import os
import sys

import numpy as np
import tensorflow as tf

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:224, 0:224] / 224.0
for i in range(64):
    img = np.zeros((224, 224, 3))
    for c in range(3):
        fy, fx, ph = rng.uniform(0.5, 6, size=3)
        img[..., c] = 0.5 + 0.35 * np.sin(2 * np.pi * (fy * yy + fx * xx) + ph) * np.cos(3 * xx * fy)
    img += 0.08 * rng.standard_normal((224, 224, 3))
    img = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    tf.io.write_file(os.path.join(out, f"img{i:02d}.jpg"), tf.io.encode_jpeg(img, quality=90))
