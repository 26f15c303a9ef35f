#!/usr/bin/env python3
"""The hand-written server people write instead of TF Serving: FastAPI + uvicorn + PyTorch,
serving the same architectures as `fovea serve` (LeNet-5, ResNet-20 from bench/e2e/torch_e2e.py,
random weights: throughput does not depend on them) at TF Serving's predict path, row format.
Usage: fastapi_server.py PORT"""
import os
import sys

import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from torch_e2e import LeNet5, ResNet20  # noqa: E402  (also sets 2 threads)

# TORCH_THREADS=1 measured faster under concurrent load on the 2-core machine: with 2, the
# intra-op worker spins while the event loop parses JSON (see bench/README.md).
torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))

models = {"lenet5": LeNet5().eval(), "resnet20": ResNet20().eval()}
app = FastAPI()


@app.post("/v1/models/{name}:predict")
async def predict(name: str, request: Request):
    model = models.get(name)
    if model is None:
        raise HTTPException(404, f"unknown model {name}")
    body = await request.json()
    x = torch.tensor(body["instances"], dtype=torch.float32).permute(0, 3, 1, 2)
    with torch.no_grad():
        y = torch.softmax(model(x), dim=1)
    return {"predictions": y.tolist()}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
