#!/usr/bin/env python3
"""`fovea serve` as a TensorFlow Serving client sees it (issue 31).

Talks to the server the way TF Serving's REST API docs do (JSON over HTTP, `instances` and
`inputs`, `{"b64": ...}` images), with the Python standard library only, so CI needs no pip.

    python3 tools/check_serving.py target/release/fovea

Creates a LeNet-5 (Sequential) and a ResNet-20 (functional) with `fovea create` in TF Serving's
layout BASE/NAME/VERSION/model.safetensors, starts `fovea serve` on a free port, checks the
answers, adds a version while serving, and stops the server with SIGTERM. Exit status 0 when
every check passes.
"""

import base64
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib


def png(width, height, pixels):
    """A minimal 8-bit RGB PNG (no filter) from a flat list of bytes."""
    raw = b"".join(b"\x00" + bytes(pixels[y * width * 3:(y + 1) * width * 3]) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def call(url, body=None):
    """(status, parsed JSON) for a GET (body None) or a POST of `body` as JSON."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


def close(a, b, tol=1e-5):
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def main():
    fovea = sys.argv[1] if len(sys.argv) > 1 else "target/release/fovea"
    base = tempfile.mkdtemp(prefix="fovea-serving-")
    try:
        for name in ("lenet5", "resnet20"):
            os.makedirs(f"{base}/{name}/1")
            subprocess.run([fovea, "create", name, "-o", f"{base}/{name}/1/model.safetensors"], check=True, stdout=subprocess.DEVNULL)
        server = subprocess.Popen(
            [fovea, "serve", "--model-base-path", base, "--host", "127.0.0.1", "--port", "0", "--poll-interval-ms", "200"],
            stderr=subprocess.PIPE, text=True)
        try:
            port = None
            for line in server.stderr:
                m = re.search(r"listening on http://[\d.]+:(\d+)", line)
                if m:
                    port = int(m.group(1))
                    break
            check(port is not None, "fovea serve reports the port it listens on")
            run_checks(f"http://127.0.0.1:{port}", base)
            server.send_signal(signal.SIGTERM)
            check(server.wait(timeout=20) == 0, "SIGTERM stops the server with exit status 0")
        finally:
            if server.poll() is None:
                server.kill()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("check_serving: all checks passed")


def run_checks(url, base):
    status, body = call(f"{url}/v1/models/lenet5")
    check(status == 200 and body["model_version_status"][0] == {
        "version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}, "model status")

    status, body = call(f"{url}/v1/models/resnet20/metadata")
    sig = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    (name, spec), = sig["inputs"].items()
    dims = [d["size"] for d in spec["tensor_shape"]["dim"]]
    check(status == 200 and spec["dtype"] == "DT_FLOAT" and dims == ["-1", "32", "32", "3"], f"metadata: input {name} {dims}")

    # The row format, as TF Serving's docs post it; pixels as nested lists.
    pixels = [(i * 37) % 251 for i in range(32 * 32 * 3)]
    image = [[[pixels[(y * 32 + x) * 3 + c] / 255.0 for c in range(3)] for x in range(32)] for y in range(32)]
    flipped = [row[::-1] for row in image]
    status, body = call(f"{url}/v1/models/resnet20:predict", {"signature_name": "serving_default", "instances": [image, flipped]})
    check(status == 200 and len(body["predictions"]) == 2 and len(body["predictions"][0]) == 10, "row-format predict")
    rows = body["predictions"]
    check(all(abs(sum(r) - 1) < 1e-4 for r in rows), "each prediction is a softmax distribution")
    check(not close(rows[0], rows[1], 1e-7), "different instances give different predictions")

    status, body = call(f"{url}/v1/models/resnet20/versions/1:predict", {"inputs": [image, flipped]})
    check(status == 200 and all(close(a, b) for a, b in zip(body["outputs"], rows)), "columnar predict equals row predict")

    # The same image as a PNG: decoded and scaled to [0, 1] by the server, as Fovea trains.
    b64 = base64.b64encode(png(32, 32, pixels)).decode()
    status, body = call(f"{url}/v1/models/resnet20:predict", {"instances": [{"b64": b64}]})
    check(status == 200 and close(body["predictions"][0], rows[0]), "b64 PNG predicts as its pixels / 255")

    status, body = call(f"{url}/v1/models/nope:predict", {"instances": [image]})
    check(status == 404 and "nope" in body["error"], "unknown model: 404 with an error message")
    status, body = call(f"{url}/v1/models/lenet5:predict", {"instances": [image]})
    check(status == 400 and "[-1, 28, 28, 1], got [1, 32, 32, 3]" in body["error"], f"wrong shape: 400 naming the expected shape ({body['error']})")

    # A new version directory is served without a restart.
    os.makedirs(f"{base}/lenet5/2")
    shutil.copy(f"{base}/lenet5/1/model.safetensors", f"{base}/lenet5/2/model.safetensors.tmp")
    os.rename(f"{base}/lenet5/2/model.safetensors.tmp", f"{base}/lenet5/2/model.safetensors")
    deadline = time.time() + 30
    while call(f"{url}/v1/models/lenet5")[1]["model_version_status"][0]["version"] != "2":
        if time.time() > deadline:
            raise SystemExit("FAIL: version 2 was not picked up within 30 s")
        time.sleep(0.1)
    print("ok: version 2 serves")

    with urllib.request.urlopen(f"{url}/monitoring/prometheus/metrics", timeout=10) as r:
        text = r.read().decode()
    check('fovea_serve_requests_total{endpoint="predict",code="200"} 3' in text, "Prometheus metrics count the predictions")


if __name__ == "__main__":
    main()
