#!/usr/bin/python3
"""checkpoint_torch_check.py DIR -- PyTorch reads a convnet checkpoint (run by tests/test_checkpoint.c).

Reads DIR/model.safetensors with nothing but struct + json (not the safetensors package), builds the
net its stored spec describes in PyTorch (conv, batchnorm, relu, maxpool, flatten, dense), loads every
tensor by name, runs DIR/input.bin (int32 N, C, H, W, then N*C*H*W float32, little-endian) in eval mode
and prints the logits, one per line. Exits non-zero when torch is missing or anything does not fit:
the C test fails then, it does not skip.
"""
import json
import struct
import sys

try:
    import torch
    from torch import nn
except ImportError as e:
    sys.exit(f"checkpoint_torch_check: cannot import torch ({e}); install python3-torch")


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = bytearray(blob[8 + n:])
    tensors = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", name
        begin, end = e["data_offsets"]
        t = torch.frombuffer(data, dtype=torch.float32, count=(end - begin) // 4, offset=begin)
        tensors[name] = t.reshape(e["shape"]).clone()
    return meta, tensors


def pair(text):
    h, _, w = text.partition("x")
    return (int(h), int(w or h))


def build(spec, tensors):
    """nn.Sequential for a chain spec; layer names as convnet gives them (type + counter)."""
    layers, seen, counters, channels = [], set(), {}, None
    statements = [st for line in spec.splitlines() for st in line.split("#")[0].split(";")]  # comments may hold ';'
    for line in statements:
        words = line.split()
        if not words:
            continue
        kind, args = words[0], words[1:]
        keys = dict(a.split("=", 1) for a in args if "=" in a)
        pos = [a for a in args if "=" not in a]
        counters[kind] = counters.get(kind, 0) + 1
        name = f"{kind}{counters[kind]}"
        if kind == "input":
            channels = int(pos[0].split("x")[2])
            continue
        if kind == "conv":
            k = pair(pos[1])
            s = int(keys.get("stride", 1))
            m = nn.Conv2d(channels, int(pos[0]), k, stride=s, padding=int(keys.get("pad", 0)),
                          bias=keys.get("bias", "yes") != "no")
            channels = int(pos[0])
        elif kind == "batchnorm":
            m = nn.BatchNorm2d(channels, eps=float(keys.get("eps", 1e-5)))
        elif kind == "relu":
            m = nn.ReLU()
        elif kind == "sigmoid":
            m = nn.Sigmoid()
        elif kind == "tanh":
            m = nn.Tanh()
        elif kind == "maxpool":
            k = pair(pos[0])
            m = nn.MaxPool2d(k, stride=int(keys.get("stride", k[0])), padding=int(keys.get("pad", 0)))
        elif kind == "flatten":
            m = nn.Flatten()
        elif kind == "dense":
            w = tensors[f"{name}.weight"]
            m = nn.Linear(w.shape[1], int(pos[0]), bias=keys.get("bias", "yes") != "no")
        else:
            sys.exit(f"checkpoint_torch_check: layer type '{kind}' not handled here")
        state = m.state_dict()
        for key in state:
            if key == "num_batches_tracked":  # PyTorch's counter; convnet does not keep it
                continue
            if f"{name}.{key}" not in tensors:
                sys.exit(f"checkpoint_torch_check: no tensor {name}.{key} in the file")
            state[key] = tensors[f"{name}.{key}"]
            seen.add(f"{name}.{key}")
        m.load_state_dict(state)
        layers.append(m)
    params = {k for k in tensors if not k.endswith((".momentum_buffer", ".exp_avg", ".exp_avg_sq"))}
    if params != seen:
        sys.exit(f"checkpoint_torch_check: tensors not used: {sorted(params - seen)}")
    return nn.Sequential(*layers)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: checkpoint_torch_check.py DIR")
    d = sys.argv[1]
    meta, tensors = read_safetensors(f"{d}/model.safetensors")
    net = build(meta["spec"], tensors).eval()
    with open(f"{d}/input.bin", "rb") as f:
        raw = f.read()
    shape = struct.unpack("<4i", raw[:16])
    x = torch.frombuffer(bytearray(raw[16:]), dtype=torch.float32).reshape(shape)
    with torch.no_grad():
        y = net(x)
    for v in y.flatten().tolist():
        print(f"{v:.9g}")


if __name__ == "__main__":
    main()
