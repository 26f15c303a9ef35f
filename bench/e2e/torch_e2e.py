#!/usr/bin/env python3
"""PyTorch side of the end-to-end benchmark (`bench/run.sh`): the workloads of `fovea bench`,
same models, same batch sizes, random data, 2 threads, channels_last; one JSON line each with
the median images/s of 5 windows (≥ 1 s) after a warm-up and the process's peak RSS.
Usage: torch_e2e.py [--only NAME]   (each workload is run in a fresh process by bench/run.sh)"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.f1, self.f2, self.f3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = torch.flatten(x.permute(0, 2, 3, 1), 1)
        return self.f3(F.relu(self.f2(F.relu(self.f1(x)))))


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        conv = lambda i, o, k: nn.Conv2d(i, o, k, padding=k // 2)
        self.convs = nn.ModuleList([conv(1, 64, 7), conv(64, 128, 3), conv(128, 128, 3), conv(128, 256, 3), conv(256, 256, 3)])
        self.f1, self.f2, self.f3 = nn.Linear(2304, 128), nn.Linear(128, 64), nn.Linear(64, 10)

    def forward(self, x):
        c = self.convs
        x = F.max_pool2d(F.relu(c[0](x)), 2)
        x = F.max_pool2d(F.relu(c[2](F.relu(c[1](x)))), 2)
        x = F.max_pool2d(F.relu(c[4](F.relu(c[3](x)))), 2)
        x = torch.flatten(x.permute(0, 2, 3, 1), 1)
        x = F.dropout(F.relu(self.f1(x)), 0.5, self.training)
        x = F.dropout(F.relu(self.f2(x)), 0.5, self.training)
        return self.f3(x)


class Block(nn.Module):
    """He et al.'s CIFAR basic block with the option-A (parameter-free) shortcut."""

    def __init__(self, i, o, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(i, o, 3, stride, 1, bias=False), nn.BatchNorm2d(o)
        self.c2, self.b2 = nn.Conv2d(o, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o)
        self.pad = o - i
        self.stride = stride

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        s = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.pad:
            s = F.pad(s, (0, 0, 0, 0, 0, self.pad))
        return F.relu(y + s)


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.b = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        blocks, i = [], 16
        for o, s in [(16, 1), (32, 2), (64, 2)]:
            for k in range(3):
                blocks.append(Block(i, o, s if k == 0 else 1))
                i = o
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.b(self.c(x))))
        return self.fc(x.mean((2, 3)))


def resnet50():
    import torchvision  # optional: only for this workload

    return torchvision.models.resnet50()


WORKLOADS = {
    "lenet5_train_b32": (LeNet5, True, 32, (1, 28, 28)),
    "lenet5_train_b128": (LeNet5, True, 128, (1, 28, 28)),
    "fashion_cnn_train_b128": (FashionCNN, True, 128, (1, 28, 28)),
    "resnet20_train_b128": (ResNet20, True, 128, (3, 32, 32)),
    "lenet5_infer_b1": (LeNet5, False, 1, (1, 28, 28)),
    "lenet5_infer_b256": (LeNet5, False, 256, (1, 28, 28)),
    "resnet20_infer_b1": (ResNet20, False, 1, (3, 32, 32)),
    "resnet20_infer_b128": (ResNet20, False, 128, (3, 32, 32)),
    "resnet50_infer_b1": (resnet50, False, 1, (3, 224, 224)),
    "resnet50_infer_b8": (resnet50, False, 8, (3, 224, 224)),
    # Mixed bf16 rows of the device-ready core issue: torch.autocast("cpu", bfloat16).
    "resnet20_train_b128_bf16": (ResNet20, True, 128, (3, 32, 32)),
    "resnet50_infer_b1_bf16": (resnet50, False, 1, (3, 224, 224)),
    "resnet50_infer_b8_bf16": (resnet50, False, 8, (3, 224, 224)),
}


def run(name):
    make, train, batch, shape = WORKLOADS[name]
    bf16 = name.endswith("_bf16")
    torch.manual_seed(0)
    model = make().to(memory_format=torch.channels_last)
    x = torch.rand(batch, *shape).to(memory_format=torch.channels_last)
    y = torch.arange(batch) % 10
    if train:
        model.train()
        opt = torch.optim.NAdam(model.parameters()) if name.startswith("fashion") else torch.optim.Adam(model.parameters())

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(x)

    def window():
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < 1.0 or n == 0:
            step()
            n += 1
        return n * batch / (time.perf_counter() - start)

    window()
    rate = statistics.median(sorted(window() for _ in range(5)))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"kind": "result", "bench": "torch", "version": torch.__version__, "name": name,
                      "images_per_s": round(rate, 1), "peak_rss_mib": round(rss, 1), "batch": batch, "threads": 2}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--only")
    a = p.parse_args()
    for n in [a.only] if a.only else WORKLOADS:
        run(n)
