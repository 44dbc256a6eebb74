#!/usr/bin/python3
"""gradflow_torch_check.py CONVNET [DIR] -- `convnet gradflow` against PyTorch (ctest gradflow).

Writes a small MNIST-format data set (random 8x8 images, 4 classes), then for each case runs
`convnet gradflow --json` and the same batch through the same net in PyTorch (Debian's
python3-torch): the first N training images, normalised by the training images' per-channel
mean and population std (or by a checkpoint's own), a training-mode forward (batch statistics;
with --eval the running ones), the mean cross-entropy from logits, backward. Every layer's
output RMS, share of exact zeros, RMS of dL/d(output), RMS of its weight and of dL/dW must
agree (relative 1e-4), and so the first/last weight-gradient ratio. The cases: a conv /
batchnorm / relu / maxpool / tanh / sigmoid / dense chain from a run folder that `convnet
train` wrote (its net, weights, normalisation and data; in training and in evaluation mode),
the same spec with weights given as JSON, and eight sigmoid layers, whose ratio (below 1e-2)
the text output must call vanishing; eight relu layers with Kaiming's weights must not be.
Then `convnet train`'s gradients.csv: a run whose batch is the whole data set, resumed for a
second epoch, records the gradient at the weights the first epoch ended with, which PyTorch
computes from that checkpoint. And the page of --html.
Exits non-zero on any difference: the test fails, it does not skip.
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_torch_check import build, read_safetensors  # noqa: E402

try:
    import torch
except ImportError as e:
    sys.exit(f"gradflow_torch_check: cannot import torch ({e}); install python3-torch")

CONVNET = sys.argv[1]
TMP = sys.argv[2] if len(sys.argv) > 2 else None  # kept for a look; else a temporary folder
CLASSES, H, W, COUNT = 4, 8, 8, 40
failures = []


def write_idx(d):
    g = torch.Generator().manual_seed(7)
    for half, n in (("train", COUNT), ("t10k", 12)):
        px = torch.randint(0, 256, (n, H, W), generator=g, dtype=torch.uint8)
        lab = torch.randint(0, CLASSES, (n,), generator=g, dtype=torch.uint8)
        with open(f"{d}/{half}-images-idx3-ubyte", "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, H, W) + px.numpy().tobytes())
        with open(f"{d}/{half}-labels-idx1-ubyte", "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + lab.numpy().tobytes())


def read_idx(d):
    with open(f"{d}/train-images-idx3-ubyte", "rb") as f:
        raw = f.read()
    n, h, w = struct.unpack(">III", raw[4:16])
    x = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).reshape(n, 1, h, w).float() / 255
    with open(f"{d}/train-labels-idx1-ubyte", "rb") as f:
        labels = torch.frombuffer(bytearray(f.read()[8:]), dtype=torch.uint8).long()
    return x, labels


def convnet(*args):
    r = subprocess.run([CONVNET, "gradflow", *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"gradflow_torch_check: convnet gradflow {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def rms(t):
    return math.sqrt(float((t.double() ** 2).mean()))


def torch_flow(spec, tensors, data, batch, mean=None, std=None, training=True):
    """the figures of every layer, as gradflow gives them, computed by PyTorch"""
    net = build(spec, tensors).train(training)
    x, labels = read_idx(data)
    if mean is None:  # the training images' mean and population std (as convnet train takes them)
        mean, std = float(x.double().mean()), float(x.double().std(unbiased=False))
    h = ((x[:batch] - mean) / std).requires_grad_()
    outs = [h]
    for m in net:
        h = m(h)
        h.retain_grad()
        outs.append(h)
    loss = torch.nn.functional.cross_entropy(h, labels[:batch])
    loss.backward()
    mods = [None] + list(net)
    layers = []
    for o, m in zip(outs, mods):
        w = getattr(m, "weight", None) if m is not None else None
        layers.append({"output_rms": rms(o.detach()), "output_zero_fraction": float((o.detach() == 0).double().mean()),
                       "grad_rms": rms(o.grad), "weight_rms": rms(w.detach()) if w is not None else None,
                       "weight_grad_rms": rms(w.grad) if w is not None else None})
    return float(loss), layers


def close(a, b, tol=1e-4):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(abs(a), abs(b), 1e-30)


def compare(case, got, loss, want, batch):
    if not close(got["loss"], loss):
        failures.append(f"{case}: loss {got['loss']} against PyTorch's {loss}")
    if len(got["layers"]) != len(want):
        failures.append(f"{case}: {len(got['layers'])} layers against {len(want)}")
        return
    for g, t in zip(got["layers"], want):
        for key in ("output_rms", "grad_rms", "weight_rms", "weight_grad_rms"):
            if not close(g[key], t[key]):
                failures.append(f"{case}: {g['name']} {key} {g[key]} against PyTorch's {t[key]}")
        # a value at exactly 0 in one and 1e-9 in the other may differ by one element
        if abs(g["output_zero_fraction"] - t["output_zero_fraction"]) > 1.01 / (batch * 64):
            failures.append(f"{case}: {g['name']} zeros {g['output_zero_fraction']} against {t['output_zero_fraction']}")
    ws = [t["weight_grad_rms"] for t in want if t["weight_grad_rms"] is not None]
    if not close(got["first_last_weight_grad_ratio"], ws[0] / ws[-1]):
        failures.append(f"{case}: ratio {got['first_last_weight_grad_ratio']} against {ws[0] / ws[-1]}")
    print(f"{case}: {len(want)} layers agree with PyTorch (loss {loss:.6g}, ratio {ws[0] / ws[-1]:.3g})")


def main():
    data = f"{TMP}/data"
    os.makedirs(data, exist_ok=True)
    write_idx(data)
    spec = ("input 8x8x1; conv 4 3x3 pad=1; batchnorm; relu; maxpool 2x2; conv 6 3x3; tanh; flatten; "
            "dense 12; sigmoid; dense 4")
    # 1. a run folder: its net, weights, normalisation and data
    run = f"{TMP}/run"
    r = subprocess.run([CONVNET, "train", "-e", spec, "--data", data, "--epochs", "1", "--batch", "8", "--val", "0",
                        "--out", run, "--replace", "--quiet"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"gradflow_torch_check: convnet train failed:\n{r.stderr}")
    meta, tensors = read_safetensors(f"{run}/model.safetensors")
    mean, std = float(meta["norm_mean"].split(",")[0]), float(meta["norm_std"].split(",")[0])
    got = json.loads(convnet("--weights", run, "--batch", "16", "--json"))
    loss, want = torch_flow(meta["spec"], tensors, data, 16, mean, std)
    compare("run folder", got, loss, want, 16)
    got = json.loads(convnet("--weights", run, "--batch", "16", "--eval", "--json"))
    loss, want = torch_flow(meta["spec"], tensors, data, 16, mean, std, training=False)
    compare("run folder, --eval", got, loss, want, 16)
    # the spec given, the weights from the run's checkpoint (its normalisation and data too)
    got = json.loads(convnet("-e", spec, "--weights", f"{run}/model.safetensors", "--batch", "16", "--json"))
    loss, want = torch_flow(meta["spec"], tensors, data, 16, mean, std)
    compare("a spec and a checkpoint's weights", got, loss, want, 16)
    # 2. the spec, the weights as JSON (the trained ones, scaled), the data's own normalisation
    params = {k: v for k, v in tensors.items() if not k.endswith(("running_mean", "running_var"))}
    for k in params:
        params[k] = params[k] * 1.5
    with open(f"{TMP}/w.json", "w") as f:
        json.dump({k: v.flatten().tolist() for k, v in params.items()}, f)
    got = json.loads(convnet("-e", spec, "--weights", f"{TMP}/w.json", "--data", data, "--batch", "24", "--json"))
    loss, want = torch_flow(spec, {**tensors, **params}, data, 24)
    compare("JSON weights", got, loss, want, 24)
    # 3. eight sigmoid layers with Xavier's weights (PyTorch's): vanishing; eight relus with
    # Kaiming's (convnet's own, fresh): not
    deep = "input 8x8x1; flatten; " + "dense 16; sigmoid; " * 8 + "dense 4"
    torch.manual_seed(3)
    params, fan_in = {}, H * W
    for i in range(9):
        out = CLASSES if i == 8 else 16
        params[f"dense{i + 1}.weight"] = torch.nn.init.xavier_normal_(torch.empty(out, fan_in))
        params[f"dense{i + 1}.bias"] = torch.zeros(out)
        fan_in = out
    with open(f"{TMP}/deep.json", "w") as f:
        json.dump({k: v.flatten().tolist() for k, v in params.items()}, f)
    got = json.loads(convnet("-e", deep, "--weights", f"{TMP}/deep.json", "--data", data, "--json"))
    loss, want = torch_flow(deep, params, data, 40)
    compare("deep sigmoid", got, loss, want, 40)
    text = convnet("-e", deep, "--weights", f"{TMP}/deep.json", "--data", data)
    if not got["first_last_weight_grad_ratio"] < 1e-2 or "vanishing gradients" not in text:
        failures.append(f"deep sigmoid: ratio {got['first_last_weight_grad_ratio']}, text:\n{text}")
    relu = deep.replace("sigmoid", "relu")
    text = convnet("-e", relu, "--data", data)
    if "vanishing" in text or "exploding" in text:
        failures.append(f"deep relu: a verdict where none is due:\n{text}")
    print("deep relu: no verdict")
    # 4. train's gradients.csv: with the whole data set as the batch, epoch 2's one step takes the
    # gradient at the weights that epoch 1 ended with (its last.safetensors, kept aside), the same
    # whatever the order of the images; PyTorch computes it from that file
    full = f"{TMP}/full"
    for args in (["-e", spec, "--data", data, "--epochs", "1", "--batch", str(COUNT), "--val", "0", "--out", full,
                  "--replace"], ["--resume", full, "--epochs", "2"]):
        if args[0] == "--resume":
            shutil.copy(f"{full}/last.safetensors", f"{TMP}/epoch1.safetensors")
        r = subprocess.run([CONVNET, "train", *args, "--quiet"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"gradflow_torch_check: convnet train {' '.join(args)} failed:\n{r.stderr}")
    rows = [line.split(",") for line in open(f"{full}/gradients.csv").read().splitlines()]
    meta1, tensors1 = read_safetensors(f"{TMP}/epoch1.safetensors")
    _, tensors2 = read_safetensors(f"{full}/last.safetensors")
    _, at_epoch1 = torch_flow(meta1["spec"], tensors1, data, COUNT, float(meta1["norm_mean"].split(",")[0]),
                              float(meta1["norm_std"].split(",")[0]))
    weighted = [t for t in at_epoch1 if t["weight_grad_rms"] is not None]
    epoch2 = [r for r in rows[1:] if r[0] == "2"]
    if rows[0] != ["epoch", "tensor", "weight_rms", "grad_rms"] or len(epoch2) != len(weighted) or \
            len(rows) != 1 + 2 * len(weighted):
        failures.append(f"gradients.csv: {len(rows)} rows, header {rows[0]}")
    else:
        for r, t in zip(epoch2, weighted):
            if not close(float(r[3]), t["weight_grad_rms"], 2e-4) or not close(float(r[2]), rms(tensors2[r[1]]), 2e-4):
                failures.append(f"gradients.csv: {r} against PyTorch's gradient rms {t['weight_grad_rms']} and the "
                                f"weights' rms {rms(tensors2[r[1]])}")
        print(f"train's gradients.csv: epoch 2's {len(epoch2)} weight gradients agree with PyTorch")
    # the page of --html: one chart with a point for every positive gradient, the verdict, the
    # table, nothing linked from outside; parsed by Chromium where it is installed
    page = f"{TMP}/flow.html"
    convnet("-e", deep, "--weights", f"{TMP}/deep.json", "--data", data, "--html", page)
    html = open(page).read()
    points = sum(1 for t in want for k in ("grad_rms", "weight_grad_rms") if t[k])
    dom = html
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={TMP}/profile",
                              "--dump-dom", f"file://{page}"], capture_output=True, text=True, timeout=120).stdout
    drawn = dom.count('<circle class="point"')
    if (dom.count('<svg class="flow"') != 1 or drawn != points or
            "vanishing gradients" not in dom or dom.count("<tr>") != len(want) + 1 or "http" in html.replace(
                "http-equiv", "")):
        failures.append(f"--html: {drawn} points (want {points}), page:\n{dom[:800]}")
    print(f"--html: one chart of {points} points, the verdict and the table{' (Chromium)' if chromium else ''}")
    # 4. usage and the user's mistakes: exit status 2 or 1, and a message that names the problem
    def expect(case, args, rc, text, stream="err"):
        r = subprocess.run([CONVNET, "gradflow", *args], capture_output=True, text=True)
        if r.returncode != rc or text not in (r.stderr if stream == "err" else r.stdout):
            failures.append(f"{case}: exit {r.returncode} (want {rc}), no '{text}' in:\n{r.stdout}{r.stderr}")
    expect("--help", ["--help"], 0, "usage: convnet gradflow", "out")
    expect("no spec", [], 2, "give a spec file or -e TEXT")
    expect("JSON weights without a spec", ["--weights", f"{TMP}/w.json"], 2, "without a spec")
    expect("a label past the output", ["-e", "input 8x8x1; flatten; dense 3", "--data", data], 1,
           "-e:1:23: the net's output, dense1, has 3 scores, fewer than the data's 4 classes (labels 0 to 3)")
    expect("an output map", ["-e", "input 8x8x1; conv 4 1x1", "--data", data], 1,
           "-e:1:14: the net's output, conv1, is a map (8x8x4), not one score per class: end the net with 'globalavgpool'")
    expect("an input the images do not fit", ["-e", "input 28x28x1; flatten; dense 4", "--data", data], 1,
           "the images are 8x8x1 but the net's input is 28x28x1")
    expect("no such data", ["-e", deep, "--data", f"{TMP}/nowhere"], 1, f"{TMP}/nowhere")
    expect("a batch larger than the data", ["-e", deep, "--data", data, "--batch", "100"], 0,
           f"the first {COUNT} images", "out")
    expect("a checkpoint of another net", ["-e", spec.replace("dense 12", "dense 10"), "--weights", run, "--data", data],
           1, "no weights for dense1, dense2 in this checkpoint (none of that name and shape)")
    expect("a weight missing", ["-e", spec, "--weights", f"{TMP}/deep.json", "--data", data], 1, "dense1.weight: expected 288 numbers")
    print("usage and errors: as expected" if not failures else "usage and errors: see below")
    if failures:
        sys.exit("gradflow_torch_check: FAILED\n" + "\n".join(failures))
    print("gradflow_torch_check: ok")


if __name__ == "__main__":
    if TMP:
        main()
    else:
        with tempfile.TemporaryDirectory() as TMP:
            main()
