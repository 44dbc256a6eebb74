#!/usr/bin/python3
"""PyTorch (Debian's python3-torch 1.13, CPU) on the nets of models/, timed as `convnet bench`
times convnet, and tuned as in shared/anchors/cpu_torch_fmnist_small.py:

- OPENBLAS_NUM_THREADS=1 (else OpenBLAS's threads fight PyTorch's own) and
  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824
  (else activations are mmap'ed and freed at every layer, and runs flip to 5x slower). Both
  must be set before the process starts: the script re-executes itself with them when they
  are missing;
- best of 1 and 2 threads (torch.set_num_threads);
- a warm-up, then the best of 5 repetitions.

Usage: /usr/bin/python3 bench/torch_bench.py MODEL --train|--infer [--batch N] [--threads 1,2]
           [--seconds S] [--reps R]
MODEL is fmnist-small, lenet5, resnet18-cifar, se-resnet-block, unet-small, mobilenetv2,
shufflenetv2 or convnext-tiny.
Training is a step of SGD with momentum 0.9 (lr 0.01) on the cross-entropy of random inputs
and labels (the output flattened: one row of classes a sample, as `convnet bench`); inference is the forward pass in
eval mode under torch.inference_mode(). Prints one JSON object:
{"images_per_s","ms_per_step","threads","batch","mode","params","by_threads":{"1":..,"2":..},
 "tuned":{...},"torch":"1.13..."}
"""
import json
import os
import sys

TUNING = {
    "OPENBLAS_NUM_THREADS": "1",
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824",
}
if any(os.environ.get(k) != v for k, v in TUNING.items()):
    os.environ.update(TUNING)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# trainable parameters, as `convnet summary` counts them for models/*.cnn
EXPECTED_PARAMS = {"fmnist-small": 421_642, "lenet5": 61_706, "resnet18-cifar": 11_173_962,
                   "se-resnet-block": 80_870, "unet-small": 115_234, "mobilenetv2": 3_504_872,
                   "shufflenetv2": 2_278_604, "convnext-tiny": 28_589_128}
INPUT = {"fmnist-small": (1, 28, 28), "lenet5": (1, 28, 28), "resnet18-cifar": (3, 32, 32),
         "se-resnet-block": (3, 32, 32), "unet-small": (1, 76, 76), "mobilenetv2": (3, 224, 224),
         "shufflenetv2": (3, 224, 224), "convnext-tiny": (3, 224, 224)}


def fmnist_small():
    # models/fmnist-small.cnn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def lenet5():
    # models/lenet5.cnn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5), nn.Tanh(),
        nn.Flatten(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


class BasicBlock(nn.Module):
    """Two 3x3 convs (no bias) with batch norm; a 1x1 stride-2 projection with batch norm where
    the size or the width changes; add, then ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


def resnet18_cifar():
    # models/resnet18-cifar.cnn: CIFAR stem (3x3 conv 64, no max-pool), 4 stages of 2 blocks
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10)]
    return nn.Sequential(*layers)


def se_resnet_block():
    # models/se-resnet-block.cnn: the PyTorch twin of tests/gen_torch_parity.py
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import gen_torch_parity
    return gen_torch_parity.SEResNetSmall()


def unet_small():
    # models/unet-small.cnn: the PyTorch twin of tests/gen_torch_parity.py
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import gen_torch_parity
    return gen_torch_parity.UNetSmall()


def mobilenetv2():
    # models/mobilenetv2.cnn is torchvision's mobilenet_v2 (tests/mobilenetv2_torch_check.py)
    import torchvision
    return torchvision.models.mobilenet_v2()


def shufflenetv2():
    # models/shufflenetv2.cnn is torchvision's shufflenet_v2_x1_0 (tests/shufflenetv2_torch_check.py)
    import torchvision
    return torchvision.models.shufflenet_v2_x1_0()


def convnext_tiny():
    # models/convnext-tiny.cnn is torchvision's convnext_tiny (tests/convnext_torch_check.py)
    import torchvision
    return torchvision.models.convnext_tiny()


MODELS = {"fmnist-small": fmnist_small, "lenet5": lenet5, "resnet18-cifar": resnet18_cifar,
          "se-resnet-block": se_resnet_block, "unet-small": unet_small, "mobilenetv2": mobilenetv2,
          "shufflenetv2": shufflenetv2, "convnext-tiny": convnext_tiny}


def measure(model_name, train, batch, threads, seconds, reps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = MODELS[model_name]()
    params = sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert params == EXPECTED_PARAMS[model_name], f"{model_name}: {params} parameters, expected {EXPECTED_PARAMS[model_name]}"
    x = torch.randn(batch, *INPUT[model_name])
    # as `convnet bench`: the output flattened is one row of classes a sample (unet-small's
    # 36x36x2 map: 2,592), a random label among them
    with torch.no_grad():
        classes = m(x[:1]).flatten(1).shape[1]
    y = torch.randint(0, classes, (batch,))
    if train:
        m.train()
        o = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

        def step():
            o.zero_grad()
            F.cross_entropy(m(x).flatten(1), y).backward()
            o.step()
    else:
        m.eval()

        def step():
            with torch.inference_mode():
                m(x)

    # warm-up: at least 5 steps and 0.5 s (1 step where one takes over 2 s)
    t0 = time.perf_counter()
    n = 0
    while n < 5 and not (n >= 1 and time.perf_counter() - t0 > 2) or time.perf_counter() - t0 < 0.5:
        step()
        n += 1
    steps = max(1, int(seconds / ((time.perf_counter() - t0) / n)))
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, time.perf_counter() - t)
    return {"images_per_s": batch * steps / best, "ms_per_step": 1e3 * best / steps, "steps": steps, "params": params}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", choices=sorted(MODELS))
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--train", action="store_true")
    mode.add_argument("--infer", action="store_true")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", default="1,2", help="thread counts to try, best kept (default 1,2)")
    ap.add_argument("--seconds", type=float, default=1.0, help="length of one repetition (default 1)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions, best kept (default 5)")
    a = ap.parse_args()
    by = {}
    for t in (int(s) for s in a.threads.split(",")):
        by[t] = measure(a.model, a.train, a.batch, t, a.seconds, a.reps)
    best_t = max(by, key=lambda t: by[t]["images_per_s"])
    r = by[best_t]
    print(json.dumps({
        "images_per_s": round(r["images_per_s"], 1), "ms_per_step": round(r["ms_per_step"], 4),
        "threads": best_t, "batch": a.batch, "mode": "train" if a.train else "infer", "params": r["params"],
        "by_threads": {str(t): round(v["images_per_s"], 1) for t, v in by.items()},
        "tuned": TUNING, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
