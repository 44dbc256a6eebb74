#!/usr/bin/python3
"""act_torch_check.py KIND X... -- `convnet calc act KIND X... --slope 0.2 --alpha 0.7 --json` (on
stdin) against PyTorch's autograd (Debian's python3-torch), in double: f(x) and f'(x) of an
elementwise activation, or softmax's Jacobian (torch.autograd.functional.jacobian), each within
1e-6 (a float's rounding). Run by tests/cli_test.sh; exits 1 with the difference."""
import json
import sys

import torch
import torch.nn.functional as F

ACTS = {"relu": torch.relu, "leakyrelu": lambda v: F.leaky_relu(v, 0.2), "sigmoid": torch.sigmoid, "tanh": torch.tanh,
        "relu6": F.relu6, "hardsigmoid": F.hardsigmoid, "hardswish": F.hardswish, "silu": F.silu, "gelu": F.gelu,
        "elu": lambda v: F.elu(v, 0.7)}


def main():
    kind, xs, got = sys.argv[1], [float(v) for v in sys.argv[2:]], json.load(sys.stdin)
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    if kind == "softmax":
        y = torch.softmax(x, 0)
        want, have = y.tolist() + sum(torch.autograd.functional.jacobian(lambda v: torch.softmax(v, 0), x).tolist(), []), \
            got["result"] + sum(got["jacobian"], [])
    else:
        y = ACTS[kind](x)
        y.sum().backward()  # dL/dx_i = f'(x_i): the derivative at each x
        want, have = y.tolist() + x.grad.tolist(), got["result"] + got["derivative"]
    bad = [(a, b) for a, b in zip(have, want) if not abs(a - b) <= 1e-6 * max(1.0, abs(b))]
    if bad or len(have) != len(want):
        sys.exit(f"act_torch_check {kind}: convnet against PyTorch {bad[:4]} ({len(have)} values, {len(want)} wanted)")


if __name__ == "__main__":
    main()
