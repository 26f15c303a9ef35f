"""The PyTorch side of `fovea train vae`: the same dense VAE and recipe, for comparing test ELBOs.

784 → 512 (ReLU) → μ, log σ² (latent 16) → 512 (ReLU) → 784 logits; Bernoulli decoder;
loss = Σ BCE-with-logits over pixels + KL, averaged over the batch; Adam 1e-3 (Keras's
epsilon 1e-7), batch 64, shuffled, 5 epochs; Glorot-uniform kernels and zero biases as Keras
(and Fovea) initialize Dense layers. The test ELBO uses one posterior sample per image, as
Fovea's `test_step` does.

Run: /tmp/fovea-ci-torch-venv/bin/python bench/generative/vae_torch.py [--seed 0] [--epochs 5]
"""
import argparse
import os
import struct
import time

import numpy as np
import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--seed", type=int, default=0)
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--latent", type=int, default=16)
p.add_argument("--data", default=os.path.expanduser("~/.cache/fovea/mnist"))
a = p.parse_args()
torch.manual_seed(a.seed)
np.random.seed(a.seed)


def idx(name):
    with open(os.path.join(a.data, name), "rb") as f:
        _, _, _, rank = f.read(4)
        dims = struct.unpack(">" + "I" * rank, f.read(4 * rank))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


x_train = torch.tensor(idx("train-images-idx3-ubyte").reshape(-1, 784) / 255.0, dtype=torch.float32)
x_test = torch.tensor(idx("t10k-images-idx3-ubyte").reshape(-1, 784) / 255.0, dtype=torch.float32)


def dense(i, o):
    layer = nn.Linear(i, o)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


enc, mu, lv = nn.Sequential(dense(784, 512), nn.ReLU()), dense(512, a.latent), dense(512, a.latent)
dec = nn.Sequential(dense(a.latent, 512), nn.ReLU(), dense(512, 784))
params = [q for m in (enc, mu, lv, dec) for q in m.parameters()]
opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7)


def losses(x):
    h = enc(x)
    m, l = mu(h), lv(h)
    z = m + torch.exp(0.5 * l) * torch.randn_like(m)
    rec = nn.functional.binary_cross_entropy_with_logits(dec(z), x, reduction="sum") / x.shape[0]
    kl = -0.5 * (1 + l - m**2 - l.exp()).sum() / x.shape[0]
    return rec, kl


start = time.time()
for epoch in range(a.epochs):
    perm = torch.randperm(x_train.shape[0])
    for i in range(0, x_train.shape[0], 64):
        rec, kl = losses(x_train[perm[i : i + 64]])
        opt.zero_grad()
        (rec + kl).backward()
        opt.step()
with torch.no_grad():
    tot = [0.0, 0.0]
    for i in range(0, x_test.shape[0], 256):
        b = x_test[i : i + 256]
        rec, kl = losses(b)
        tot[0] += rec.item() * b.shape[0]
        tot[1] += kl.item() * b.shape[0]
n = x_test.shape[0]
print(f"torch seed {a.seed}: test ELBO {-(tot[0] + tot[1]) / n:.2f} nats per image (reconstruction {tot[0] / n:.2f}, KL {tot[1] / n:.2f}) ({time.time() - start:.0f} s)")
