"""model.py — the cost of a data-parallel training step against the number of processes, from
the α–β model of the transport, checked against the runs of bench/mpi/run.sh and projected to
1..512 nodes. Usage: python3 bench/mpi/model.py bench/mpi/out

A step of N processes (src/train/parallel.c, src/model/exec.c):
  compute   the shards' forward and backward, measured (one node = this machine's 2 cores);
  gradient  per bucket of s values (a layer's gradients, or 262,144 values and up): an
            all-reduce of its largest value (recursive doubling: ceil(log2 N) alpha) and of its
            s 64-bit integers (a ring: 2 (N-1) alpha + 2 (N-1)/N 8 s beta); these run under the
            rest of backward, about 2/3 of the compute;
  batch norm (whole-batch statistics) per layer of C channels, forward and backward: an
            all-gather of 3 C doubles per shard (Bruck: ceil(log2 N) alpha + (N-1)/N K 24 C
            beta), on the critical path; --local-bn has none;
  the step's loss: an all-gather of 3 doubles per shard.
Weak scaling: each node keeps its batch (64 images of fmnist-small, 32 of resnet18-cifar), the
global batch grows with N, one shard per node."""
import json
import math
import os
import sys

BUCKET = 1 << 18
LINKS = {  # name: (alpha s, beta s/byte): MPI over TCP on 25 Gb/s Ethernet, RDMA on 100 Gb/s
    "25 Gb/s (TCP, alpha 15 us)": (15e-6, 8 / 25e9),
    "100 Gb/s (RDMA, alpha 2 us)": (2e-6, 8 / 100e9),
}
MODELS = {"fmnist-small": 64, "resnet18-cifar": 32}


def load(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def shape(summary):
    """bucket sizes (in backward's order) and batch norm channel counts of a net"""
    buckets, pending = [], 0
    for layer in reversed(summary["layers"]):
        if layer["trainable"] == 0:
            continue
        pending += layer["trainable"]
        if pending >= BUCKET:
            buckets.append(pending)
            pending = 0
    if pending:
        buckets.append(pending)
    bn = [l["output"][1] for l in summary["layers"] if l["type"] == "batchnorm"]
    return buckets, bn


def comm(n, shards, buckets, bn, alpha, beta, local_bn=False):
    """(gradient seconds, critical-path seconds) of one step on n processes"""
    if n == 1:
        return 0.0, 0.0
    lg = math.ceil(math.log2(n))
    grad = sum(lg * alpha + 2 * (n - 1) * alpha + 2 * (n - 1) / n * 8 * s * beta for s in buckets)
    crit = lg * alpha + (n - 1) / n * shards * 24 * beta  # the loss
    if not local_bn:
        crit += sum(2 * (lg * alpha + (n - 1) / n * shards * 24 * c * beta) for c in bn)
    return grad, crit


def svg(curves, path):
    """efficiency (%) against nodes, log2 x axis, one polyline per curve"""
    w, h, l, b = 640, 360, 60, 40
    xs = [2 ** k for k in range(10)]
    px = lambda n: l + (w - l - 20) * math.log2(n) / 9
    py = lambda e: h - b - (h - b - 20) * e / 100
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
             f'<rect width="{w}" height="{h}" fill="white"/>']
    for e in range(0, 101, 20):
        parts.append(f'<line x1="{l}" x2="{w - 20}" y1="{py(e)}" y2="{py(e)}" stroke="#ddd"/>')
        parts.append(f'<text x="{l - 6}" y="{py(e) + 4}" text-anchor="end">{e}%</text>')
    for n in xs:
        parts.append(f'<text x="{px(n)}" y="{h - b + 16}" text-anchor="middle">{n}</text>')
    parts.append(f'<text x="{(w + l) / 2}" y="{h - 6}" text-anchor="middle">nodes (one process of 2 cores each, weak scaling)</text>')
    parts.append(f'<text x="{l}" y="14">scaling efficiency: per-node images/s against one node, modelled</text>')
    for i, (label, pts) in enumerate(curves):
        c = colours[i % len(colours)]
        d = " ".join(f"{px(n):.1f},{py(e):.1f}" for n, e in pts)
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{d}"/>')
        parts.append(f'<text x="{l + 10}" y="{h - b - 12 - 14 * i}" fill="{c}">{label}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main(out):
    ab = load(out, "alpha_beta.json")
    print(f"MPI on this machine (shared memory, 2 processes): alpha {ab['alpha_s'] * 1e6:.2f} us, "
          f"beta {ab['beta_s_per_byte'] * 1e9:.3f} ns/byte ({1 / ab['beta_s_per_byte'] / 1e9:.1f} GB/s)\n")
    print("measured, one thread per process (convnet bench --train --threads 1):\n")
    print("| model | batch | run | images/s | ms/step | communication ms/step: process 0 (waits included) "
          "| the least of any process | modelled |")
    print("|---|--:|---|--:|--:|--:|--:|--:|")
    curves, rows = [], []
    for m, batch in MODELS.items():
        buckets, bn = shape(load(out, f"{m}-summary.json"))
        one, onex2, two = load(out, f"{m}-1.json"), load(out, f"{m}-1x2.json"), load(out, f"{m}-2.json")
        g, c = comm(2, 2, buckets, bn, ab["alpha_s"], ab["beta_s_per_byte"])
        for label, r, model in (("1 process", one, "-"), ("1 process, 2 shards", onex2, "-"),
                                ("2 processes (mpirun -np 2)", two, f"{(g + c) * 1e3:.2f}")):
            print(f"| {m} | {batch} | {label} | {r['images_per_s']:.0f} | {r['ms_per_step']:.1f} | "
                  f"{r.get('comm_ms_per_step', 0):.2f} | {r.get('comm_least_ms_per_step', 0):.2f} | {model} |")
        rows.append((m, one, onex2, two))
    print()
    for m, one, onex2, two in rows:
        print(f"{m}: 2 processes run {two['images_per_s'] / one['images_per_s']:.2f}x one unsharded process "
              f"and {two['images_per_s'] / onex2['images_per_s']:.2f}x one process of the same 2 shards")
    print("(a process's communication time includes its waits for the others; the last to arrive at each "
          "exchange waits least, so the least of any process is nearest the transfers the model counts)\n")
    for m, batch in MODELS.items():
        buckets, bn = shape(load(out, f"{m}-summary.json"))
        node = load(out, f"{m}-node.json")
        t = node["ms_per_step"] / 1e3
        print(f"{m}: a node (2 threads, batch {batch}) computes a step in {t * 1e3:.1f} ms; "
              f"{sum(buckets):,} gradients in {len(buckets)} buckets ({sum(buckets) * 8 / 1e6:.1f} MB of integers), "
              f"{len(bn)} batch norm layers\n")
        print("| nodes | link | comm ms (gradient / batch norm) | step ms, no overlap | step ms, overlapped | "
              "images/s | efficiency | with --local-bn |")
        print("|--:|---|--:|--:|--:|--:|--:|--:|")
        for name, (alpha, beta) in LINKS.items():
            pts = []
            for k in range(10):
                n = 2 ** k
                g, c = comm(n, n, buckets, bn, alpha, beta)
                gl, cl = comm(n, n, buckets, bn, alpha, beta, local_bn=True)
                step = t + c + max(0.0, g - 2 / 3 * t)
                step_local = t + cl + max(0.0, gl - 2 / 3 * t)
                eff = 100 * t / step
                pts.append((n, eff))
                if n in (1, 2, 8, 64, 512):
                    print(f"| {n} | {name.split(' (')[0]} | {g * 1e3:.2f} / {c * 1e3:.2f} | {(t + g + c) * 1e3:.1f} | "
                          f"{step * 1e3:.1f} | {n * batch / step:,.0f} | {eff:.0f}% | {100 * t / step_local:.0f}% |")
            curves.append((f"{m}, {name}", pts))
        print()
    svg(curves, os.path.join(out, "scaling.svg"))
    print(f"plot: {os.path.join(out, 'scaling.svg')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/mpi/out")
