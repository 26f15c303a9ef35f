#!/usr/bin/env python3
"""PyTorch DDP (gloo) side of bench/distributed/run.sh: the same ResNet-20 as bench/e2e, one
thread per process, channels_last, SGD, `--batch` images per replica per step, 5 warm-up and
`--steps` timed steps; replica 0 prints one JSON line with the median step time.
Usage: ddp_resnet20.py --world 2 [--batch 64] [--steps 20]"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from torch_e2e import ResNet20  # noqa: E402


def replica(rank, world, batch, steps, port):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(ResNet20().to(memory_format=torch.channels_last))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(1 + rank)
    x = torch.rand(batch, 3, 32, 32, generator=g).to(memory_format=torch.channels_last)
    y = torch.arange(batch) % 10
    times = []
    for step in range(5 + steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if step >= 5:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    if rank == 0:
        grad_bytes = sum(p.numel() * 4 for p in model.parameters())
        print(json.dumps({"bench": "torch_ddp_gloo", "version": torch.__version__, "workload": "resnet20_train",
                          "replicas": world, "batch_per_replica": batch, "median_step_s": round(median, 4),
                          "images_per_s": round(batch * world / median, 1), "allreduce_bytes_per_step": grad_bytes}),
              flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--port", type=int, default=29533)
    a = p.parse_args()
    mp.spawn(replica, args=(a.world, a.batch, a.steps, a.port), nprocs=a.world, join=True)
