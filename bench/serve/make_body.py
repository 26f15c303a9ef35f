#!/usr/bin/env python3
"""A TF Serving row-format predict body with one random instance of shape H W C.
Usage: make_body.py H W C > body.json"""
import json
import random
import sys

h, w, c = map(int, sys.argv[1:4])
rng = random.Random(0)
instance = [[[round(rng.random(), 4) for _ in range(c)] for _ in range(w)] for _ in range(h)]
print(json.dumps({"instances": [instance]}))
