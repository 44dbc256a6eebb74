#!/usr/bin/python3
"""convnet beside PyTorch and darknet, in one run: `make bench` (bench/RESULTS.md explains it).

    /usr/bin/python3 bench/run.py [--convnet build/convnet] [--quick]

1. measures the machine's fp32 peak with bench/peak.c (an FMA loop on every core);
2. times, on random data, each workload of WORKLOADS with
   - convnet: `convnet bench SPEC --json` with 1 and with 2 threads;
   - PyTorch: bench/torch_bench.py (tuned: OPENBLAS_NUM_THREADS=1, glibc malloc thresholds
     raised, best of 1 and 2 threads, warm-up then best of 5 repetitions);
   - darknet: bench/darknet_bench.c linked to Debian's libdarknet, on bench/darknet/*.cfg
     (a model without a cfg there, MobileNetV2: darknet has no ReLU6, is not run, with a footnote);
3. times convnet's SGEMM beside OpenBLAS's on the products of a training step
   (bench/gemm_bench.c, linked to both; OpenBLAS with the kernel this environment forces
   through OPENBLAS_CORETYPE, and with the one it picks itself);
   and, where this CPU has AVX-512, the same as a CPU with AVX2 only runs them: convnet with
   CONVNET_ISA=avx2 beside PyTorch with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 on
   AVX2_WORKLOADS, and the SGEMMs beside OpenBLAS's Haswell kernels;
4. prints the table (images/s, ratios, fraction of peak), the batch-1 latencies, the big 3x3
   convolutions of resnet18-cifar layer by layer, the SGEMMs, the AVX2 tables, and the issue's
   targets, MET or MISSED;
5. writes everything, with the commands that produced each number, to bench/out/results.json
   and the printed report to bench/out/report.md.

--quick shortens every repetition (for checking the harness, not for numbers).
Exit status: 0 when every measurement ran (targets missed or not), 1 when one failed.
"""
import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
PY = "/usr/bin/python3"  # Debian's, with python3-torch; not the first python3 on PATH
DARKNET_DIR = "/usr/lib/darknet"  # the Debian package: libdarknet.so and include/darknet.h

# (model, mode, batch); every model is models/MODEL.cnn and a net of bench/torch_bench.py, and
# bench/darknet/MODEL.cfg where darknet can build it
WORKLOADS = [
    ("fmnist-small", "train", 64),
    ("fmnist-small", "infer", 64),
    ("fmnist-small", "infer", 1),
    ("lenet5", "train", 64),
    ("resnet18-cifar", "train", 32),
    ("mobilenetv2", "train", 16),
]
CONVNET_THREADS = (1, 2)
# A CPU without AVX-512 (most laptops), where this one has it: convnet with CONVNET_ISA=avx2,
# PyTorch with ATen's and oneDNN's AVX2 code (their own switches), OpenBLAS's Haswell kernels
AVX2_WORKLOADS = [("fmnist-small", "train", 64), ("fmnist-small", "infer", 64), ("fmnist-small", "infer", 1),
                  ("lenet5", "train", 64), ("resnet18-cifar", "train", 32), ("mobilenetv2", "train", 16)]
AVX2_TORCH_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
OPENBLAS_VERSION = "0.3.21 (Debian's libopenblas, pthread build)"
FOOTNOTES = {
    "lenet5": "darknet (2018) has no 2x2 average pooling (its [avgpool] is global): its lenet5 "
              "cfg uses 2x2 max pooling there, the closest layer of the same shape and cost.",
    "mobilenetv2": "torchvision's mobilenet_v2 at 224x224 (depthwise convolutions, ReLU6, 1,000 classes); "
                   "no darknet run: ReLU6 is not among darknet's (2018) activations.",
}

log_lines = []


def say(line=""):
    print(line, flush=True)
    log_lines.append(line)


def note(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, env=None, timeout=600):
    """runs cmd (a list), returns (stdout, error or None)"""
    e = dict(os.environ)
    for k, v in (env or {}).items():  # None: unset k
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as x:
        return "", str(x)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        return p.stdout, f"exit {p.returncode}: {tail}"
    return p.stdout, None


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON object in the output")


def cmdline(cmd, env=None):
    unset = [f"-u {k}" for k, v in (env or {}).items() if v is None]
    pre = " ".join((["env"] + unset if unset else []) +
                   [f"{k}={shlex.quote(v)}" for k, v in (env or {}).items() if v is not None])
    return (pre + " " if pre else "") + " ".join(shlex.quote(c) for c in cmd)


def measure(cmd, env=None, timeout=600):
    """runs a benchmark that prints one JSON object; returns the object with "command" added,
    or {"error", "command"}"""
    out, err = run(cmd, env, timeout)
    r = {"command": cmdline(cmd, env)}
    if err is None:
        try:
            r.update(last_json(out))
        except ValueError as x:
            err = str(x)
    if err:
        r["error"] = err
        note(f"bench: failed: {r['command']}: {err}")
    return r


def convnet_best(convnet, model, mode, batch, threads, runs, seconds, env=None):
    """the best of `runs` runs of `convnet bench` on models/MODEL.cnn with `threads` threads (a
    run with an error only where all failed)"""
    best = None
    for _ in range(runs):
        r = measure([convnet, "bench", f"models/{model}.cnn", "--batch", str(batch), f"--{mode}", "--seconds",
                     str(seconds), "--threads", str(threads), "--json"], {"OMP_NUM_THREADS": str(threads), **(env or {})})
        if best is None or "error" in best or ("error" not in r and r["images_per_s"] > best["images_per_s"]):
            best = r
    return best


def cpu_has(flag):
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and f" {flag} " in line + " " for line in f)
    except OSError:
        return False


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return None


def build_peak():
    isa = ["-mavx512f", "-mfma"] if cpu_has("avx512f") else ["-mavx2", "-mfma"]
    exe = os.path.join(OUT, "peak")
    cmd = ["gcc", "-O2", "-fopenmp", *isa, "bench/peak.c", "-o", exe]
    _, err = run(cmd)
    return exe, cmdline(cmd), err


def build_darknet():
    exe = os.path.join(OUT, "darknet_bench")
    if not os.path.exists(os.path.join(DARKNET_DIR, "libdarknet.so")):
        return None, "", "Debian's darknet is not installed (scripts/setup.sh --bench installs it)"
    cmd = ["gcc", "-O2", "bench/darknet_bench.c", f"-I{DARKNET_DIR}/include", f"-L{DARKNET_DIR}", "-ldarknet", "-lm",
           f"-Wl,-rpath,{DARKNET_DIR}", "-o", exe]
    _, err = run(cmd)
    return (None if err else exe), cmdline(cmd), err


def build_gemm(convnet):
    """bench/gemm_bench.c against the library beside the convnet binary, and OpenBLAS"""
    lib = os.path.join(os.path.dirname(convnet), "libconvnet.a")
    exe = os.path.join(OUT, "gemm_bench")
    if not os.path.exists(lib):
        return None, "", f"{lib} is missing (build convnet first)"
    cmd = ["gcc", "-O2", "-std=c11", "-fopenmp", "-Iinclude", "-Isrc", "bench/gemm_bench.c", lib, "-lopenblas", "-lm",
           "-lpng", "-ljpeg", "-lz", "-lcjson", "-o", exe]
    _, err = run(cmd)
    return (None if err else exe), cmdline(cmd), err


def spec_info(convnet, model):
    """MACs per image, trainable parameters, and the 3x3 convolutions with their input widths"""
    spec = f"models/{model}.cnn"
    out, err = run([convnet, "summary", spec, "--json"])
    if err:
        return {"error": err}
    s = json.loads(out)
    with open(os.path.join(ROOT, spec)) as f:
        lines = f.read().splitlines()
    by_name = {l["name"]: l for l in s["layers"]}
    convs = {}
    for l in s["layers"]:
        if l["type"] != "conv":
            continue
        m = re.search(r"\b(\d+)x(\d+)\b", lines[l["line"] - 1].split("#")[0])
        cin = by_name[l["inputs"][0]]["output"][1]
        convs[l["name"]] = {"kernel": m.group(0) if m else "?", "cin": cin, "cout": l["output"][1],
                            "out_hw": l["output"][2:], "macs_per_image": l["macs"]}
    return {"macs": s["total_macs"], "params": s["trainable_params"], "convs": convs}


def fmt_rate(r):
    if r is None or "error" in r:
        return "n/a"
    v = r["images_per_s"]
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def ratio(a, b):
    if not a or not b or "error" in a or "error" in b:
        return None
    return a["images_per_s"] / b["images_per_s"]


def fmt_ratio(x):
    return "n/a" if x is None else (f"{x:.2f}x" if x < 10 else f"{x:.1f}x")


def pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}%"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--convnet", default="build/convnet", help="the convnet binary (default build/convnet)")
    ap.add_argument("--quick", action="store_true", help="short repetitions: checks the harness, not for numbers")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    convnet = a.convnet if os.path.isabs(a.convnet) else os.path.join(ROOT, a.convnet)
    t_start = time.time()
    failed = []
    # repetition lengths: convnet runs for at least --seconds (and 5 steps) and is run 3 times,
    # the best kept; PyTorch and darknet: warm-up, then the best of `reps` repetitions of `sec`
    cn_sec, cn_runs, sec, reps = (0.3, 1, 0.3, 2) if a.quick else (1.0, 3, 1.0, 5)
    dn_resnet_reps = min(2, reps)  # darknet takes about 10 s a training step of resnet18-cifar

    res = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name(), "cores": os.cpu_count(),
           "load_at_start": loadavg(), "quick": a.quick,
           "settings": {"cn_sec": cn_sec, "cn_runs": cn_runs, "sec": sec, "reps": reps, "dn_resnet_reps": dn_resnet_reps},
           "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(("OPENBLAS", "OMP_", "GLIBC_"))}}

    # 1. the peak
    note("bench: the fp32 peak (bench/peak.c)")
    peak_exe, peak_cmd, err = build_peak()
    res["peak"] = {"build": peak_cmd}
    if err:
        failed.append("peak")
        res["peak"]["error"] = err
        peak = None
    else:
        one = measure([peak_exe], {"OMP_NUM_THREADS": "1"})
        allc = measure([peak_exe], {"OMP_NUM_THREADS": str(os.cpu_count())})
        res["peak"].update({"one_core": one, "all_cores": allc})
        peak = allc.get("gflops")
        if peak is None:
            failed.append("peak")

    # 2. the workloads
    dn_exe, dn_cmd, dn_err = build_darknet()
    res["darknet_build"] = {"command": dn_cmd, "error": dn_err} if dn_err else {"command": dn_cmd}
    if dn_err:
        failed.append("darknet build")
        note(f"bench: darknet: {dn_err}")
    infos = {}
    rows = []
    for model, mode, batch in WORKLOADS:
        if model not in infos:
            infos[model] = spec_info(convnet, model)
            if "error" in infos[model]:
                failed.append(f"convnet summary {model}")
                note(f"bench: convnet summary {model}: {infos[model]['error']}")
        info = infos[model]
        note(f"bench: {model}, {mode}, batch {batch}")
        row = {"model": model, "mode": mode, "batch": batch, "convnet": {}}
        if info.get("macs"):
            row["flops_per_image"] = (6 if mode == "train" else 2) * info["macs"]
        for t in CONVNET_THREADS:
            # resnet18-cifar too: one run against PyTorch's best of 5 let the host's noise pick
            # PyTorch's best moment and convnet's any (the ratio wandered 1.38-1.56x in an hour)
            row["convnet"][str(t)] = convnet_best(convnet, model, mode, batch, t, cn_runs, cn_sec)
        row["pytorch"] = measure([PY, "bench/torch_bench.py", model, f"--{mode}", "--batch", str(batch),
                                  "--threads", "1,2", "--seconds", str(sec), "--reps", str(reps)])
        if info.get("params") and row["pytorch"].get("params") not in (None, info["params"]):
            row["pytorch"]["error"] = f"PyTorch's net has {row['pytorch']['params']} parameters, convnet's {info['params']}"
        if not os.path.exists(os.path.join(ROOT, f"bench/darknet/{model}.cfg")):
            row["darknet"] = {"error": "no darknet cfg", "skipped": True}
        elif dn_exe:
            dreps = dn_resnet_reps if model == "resnet18-cifar" else reps
            row["darknet"] = measure([dn_exe, f"bench/darknet/{model}.cfg", f"--{mode}", "--batch", str(batch),
                                      "--seconds", str(sec), "--reps", str(dreps)])
            if info.get("params") and row["darknet"].get("params") not in (None, info["params"]):
                row["darknet"]["error"] = f"darknet's net has {row['darknet']['params']} parameters, convnet's {info['params']}"
        else:
            row["darknet"] = {"error": dn_err or "not built"}
        if "error" in row["pytorch"]:
            failed.append(f"pytorch {model} {mode} {batch}")
        if dn_exe and "error" in row["darknet"] and not row["darknet"].get("skipped"):
            failed.append(f"darknet {model} {mode} {batch}")
        for t, r in row["convnet"].items():
            if "error" in r:
                failed.append(f"convnet {model} {mode} {batch} {t}T")
        ok = [r for r in row["convnet"].values() if "error" not in r]
        row["convnet_best"] = max(ok, key=lambda r: r["images_per_s"]) if ok else {"error": "no run"}
        rows.append(row)

    # 3. the SGEMMs: OpenBLAS as this environment runs it, then with the kernel it picks itself
    note("bench: SGEMM, convnet beside OpenBLAS (bench/gemm_bench.c)")
    gemm_exe, gemm_cmd, gemm_err = build_gemm(convnet)
    res["gemm"] = {"build": gemm_cmd, "runs": []}
    if gemm_err:
        failed.append("gemm build")
        res["gemm"]["error"] = gemm_err
    else:
        forced = os.environ.get("OPENBLAS_CORETYPE")
        for t in CONVNET_THREADS:
            for coretype in ([forced, None] if forced else [None]):
                env = {"OMP_NUM_THREADS": str(t)}
                if coretype is None:
                    env["OPENBLAS_CORETYPE"] = None  # unset: OpenBLAS picks its kernel by CPU
                r = measure([gemm_exe, str(t)], env)
                r["openblas_coretype"] = coretype or "its own choice"
                if "error" in r:
                    failed.append(f"gemm {t}T")
                res["gemm"]["runs"].append(r)

    # 3b. as a CPU without AVX-512 runs them (only where this one has it: else 2. and 3. were that)
    res["avx2"] = {"rows": [], "gemm": []}
    if cpu_has("avx512f") and cpu_has("avx2") and cpu_has("fma"):
        for model, mode, batch in AVX2_WORKLOADS:
            note(f"bench: {model}, {mode}, batch {batch}, AVX2 only")
            row = {"model": model, "mode": mode, "batch": batch, "convnet": None}
            for t in CONVNET_THREADS:
                r = convnet_best(convnet, model, mode, batch, t, cn_runs, cn_sec, {"CONVNET_ISA": "avx2"})
                if "error" in r:
                    failed.append(f"convnet avx2 {model} {mode} {batch} {t}T")
                elif row["convnet"] is None or r["images_per_s"] > row["convnet"]["images_per_s"]:
                    row["convnet"] = r
            row["pytorch"] = measure([PY, "bench/torch_bench.py", model, f"--{mode}", "--batch", str(batch),
                                      "--threads", "1,2", "--seconds", str(sec), "--reps", str(reps)], AVX2_TORCH_ENV)
            if "error" in row["pytorch"]:
                failed.append(f"pytorch avx2 {model} {mode} {batch}")
            res["avx2"]["rows"].append(row)
        if not gemm_err:
            for t in CONVNET_THREADS:
                r = measure([gemm_exe, str(t)], {"OMP_NUM_THREADS": str(t), "CONVNET_ISA": "avx2"})
                if "error" in r:
                    failed.append(f"gemm avx2 {t}T")
                res["avx2"]["gemm"].append(r)

    # 4. the report
    res["rows"] = rows
    res["load_at_end"] = loadavg()
    report(res, rows, infos, peak, failed)
    res["failed"] = failed
    res["seconds"] = round(time.time() - t_start, 1)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write("\n".join(log_lines) + "\n")
    note(f"bench: {res['seconds']:.0f} s; raw results in bench/out/results.json, this report in bench/out/report.md")
    if failed:
        note("bench: failed: " + ", ".join(failed))
    return 1 if failed else 0


def report(res, rows, infos, peak, failed):
    def frac(row, r):
        if not peak or not r or "error" in r or "flops_per_image" not in row:
            return None
        return r["images_per_s"] * row["flops_per_image"] / (peak * 1e9)

    p1 = res["peak"].get("one_core", {}).get("gflops")
    st = res["settings"]
    say(f"## convnet, PyTorch and darknet side by side ({res['date'][:10]}{', --quick' if res['quick'] else ''})")
    say()
    say(f"Machine: {res['cpu']}, {res['cores']} cores; fp32 peak measured by bench/peak.c "
        f"({res['peak'].get('all_cores', {}).get('isa', '?')} FMA loop): "
        f"{peak if peak else 'n/a'} GFLOP/s on all cores ({p1 if p1 else 'n/a'} on one). "
        f"Load average {res['load_at_start']} at the start, {res['load_at_end']} at the end"
        + (" (other processes were running: the numbers are noisy)." if (res['load_at_start'] or 0) > 0.5
           or (res['load_at_end'] or 0) > 1.5 else "."))
    say()
    say("PyTorch " + (next((r["pytorch"].get("torch") for r in rows if "torch" in r["pytorch"]), "?"))
        + " is TUNED: OPENBLAS_NUM_THREADS=1, GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:"
        f"glibc.malloc.trim_threshold=1073741824, best of 1 and 2 threads, warm-up then best of {st['reps']} "
        f"repetitions of about {st['sec']:g} s. darknet is Debian's 0.0.0+git20180914 (libdarknet, one thread, its own "
        f"GEMM), warm-up then best of {st['reps']} repetitions ({st['dn_resnet_reps']} for resnet18-cifar). convnet: best "
        f"of {st['cn_runs']} runs of `convnet bench --seconds {st['cn_sec']:g}` with 1 and with 2 "
        "threads (--threads T, OMP_NUM_THREADS=T).")
    say()
    say("MACs per image (`convnet summary`): " + ", ".join(f"{m} {i['macs']:,}" for m, i in infos.items() if i.get("macs"))
        + ".")
    say()
    say("Images/s (higher is better); PyTorch (T): its best, with T threads. Ratios take convnet's best of 1 and 2 "
        "threads. Fraction of peak: "
        "images/s x FLOPs per image / peak, with FLOPs = 6 x MACs per image for a training step "
        "(forward 2, backward 4) and 2 x MACs for inference; MACs from `convnet summary` (conv and dense).")
    say()
    say("| model | workload | convnet 1T | convnet 2T | PyTorch (T) | darknet 1T | convnet/PyTorch | convnet/darknet "
        "| peak: convnet | peak: PyTorch | peak: darknet |")
    say("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    notes = []
    for row in rows:
        cb, pt, dn = row["convnet_best"], row["pytorch"], row["darknet"]
        wl = f"{'training' if row['mode'] == 'train' else 'inference'}, batch {row['batch']}"
        fn = ""
        if row["model"] in FOOTNOTES:
            if FOOTNOTES[row["model"]] not in notes:
                notes.append(FOOTNOTES[row["model"]])
            fn = f" [{notes.index(FOOTNOTES[row['model']]) + 1}]"
        ptt = f"{fmt_rate(pt)} ({pt['threads']})" if "error" not in pt else "n/a"
        say(f"| {row['model']} | {wl} | {fmt_rate(row['convnet'].get('1'))} | {fmt_rate(row['convnet'].get('2'))} | "
            f"{ptt} | {fmt_rate(dn)}{fn} | {fmt_ratio(ratio(cb, pt))} | {fmt_ratio(ratio(cb, dn))} | "
            f"{pct(frac(row, cb))} | {pct(frac(row, pt))} | {pct(frac(row, dn))} |")
    for i, n in enumerate(notes, 1):
        say(f"\n[{i}] {n}")
    say()

    # batch-1 latency
    lat = {}
    for row in rows:
        if row["batch"] == 1 and row["mode"] == "infer":
            def us(r):
                return None if not r or "error" in r else 1e6 / r["images_per_s"]
            lat = {"model": row["model"], "convnet": us(row["convnet_best"]), "pytorch": us(row["pytorch"]),
                   "darknet": us(row["darknet"])}
            f = (lambda v: "n/a" if v is None else f"{v:,.0f} µs")
            say(f"Batch-1 inference latency of {row['model']} (lower is better): convnet {f(lat['convnet'])}, "
                f"PyTorch {f(lat['pytorch'])} ({row['pytorch'].get('threads', '?')} thread), darknet {f(lat['darknet'])}; "
                f"convnet/PyTorch {fmt_ratio(lat['convnet'] / lat['pytorch']) if lat['convnet'] and lat['pytorch'] else 'n/a'}.")
            say()

    # per layer: time, effective GFLOP/s and the way each ran, for every net's training row
    def layer_table(row, convs, keep, title):
        """the rows of `keep`ing layers; returns the totals (MACs, forward ms, backward ms)"""
        cb = row["convnet_best"]
        say(f"{title} (training, batch {row['batch']}, {cb['threads']} thread{'s' if cb['threads'] != 1 else ''}), "
            "from `convnet bench --json`. Effective GFLOP/s: the direct algorithm's FLOPs over the time (forward "
            "2 x MACs, training 6 x MACs), so a layer that does fewer multiplications (Winograd) can pass the peak.")
        say()
        say("| layer | shape | MACs (batch) | fwd ms | bwd ms | fwd GFLOP/s | fwd % peak | fwd+bwd GFLOP/s | fwd+bwd % peak "
            "| how (convnet bench's kernel) |")
        say("|---|---|--:|--:|--:|--:|--:|--:|--:|---|")
        tm = tf = tb = 0.0
        for l in cb["layers"]:
            if l["type"] not in ("conv", "dense") or not keep(l, convs.get(l["name"])):
                continue
            c = convs.get(l["name"])
            f, b, m = l["forward_ms"], l["backward_ms"], l["macs"]
            tm, tf, tb = tm + m, tf + f, tb + b
            gf = 2 * m / (f * 1e6) if f > 0 else 0
            gt = 6 * m / ((f + b) * 1e6) if f + b > 0 else 0
            shape = f"{c['kernel']} {c['cin']}->{c['cout']}, {c['out_hw'][0]}x{c['out_hw'][1]}" if c else "dense"
            say(f"| {l['name']} | {shape} | {m:,} | {f:.2f} | {b:.2f} | "
                f"{gf:.0f} | {pct(gf / peak)} | {gt:.0f} | {pct(gt / peak)} | {l.get('kernel', '')} |")
        if tm:
            gf, gt = 2 * tm / (tf * 1e6), 6 * tm / ((tf + tb) * 1e6)
            say(f"| all of them | | {tm:,.0f} | {tf:.2f} | {tb:.2f} | {gf:.0f} | {pct(gf / peak)} | {gt:.0f} | {pct(gt / peak)} | |")
        say()
        return tm, tf, tb

    for model, batch in (("fmnist-small", 64), ("lenet5", 64)):
        r = next((r for r in rows if r["model"] == model and r["mode"] == "train" and r["batch"] == batch), None)
        if r and "layers" in r["convnet_best"] and peak:
            layer_table(r, infos.get(model, {}).get("convs", {}), lambda l, c: True,
                        f"convnet's convolutions and dense layers of {model}")
    # the big 3x3 convolutions of resnet18-cifar
    big = None
    rrow = next((r for r in rows if r["model"] == "resnet18-cifar" and r["mode"] == "train"), None)
    convs = infos.get("resnet18-cifar", {}).get("convs", {})
    if rrow and "layers" in rrow["convnet_best"] and peak:
        tm, tf, tb = layer_table(rrow, convs, lambda l, c: c and c["kernel"] == "3x3" and c["cin"] >= 64,
                                 "convnet's 3x3 convolutions of resnet18-cifar with 64 or more input channels")
        if tm:
            gf, gt = 2 * tm / (tf * 1e6), 6 * tm / ((tf + tb) * 1e6)
            big = {"fwd_gflops": gf, "train_gflops": gt, "fwd_frac": gf / peak, "train_frac": gt / peak}
    res["big_3x3"] = big

    # the SGEMMs
    runs = [r for r in res.get("gemm", {}).get("runs", []) if "error" not in r]
    if runs:
        forced_type = next((r["openblas_coretype"] for r in runs if r["openblas_coretype"] != "its own choice"), None)
        why = (f"This environment forces OPENBLAS_CORETYPE={forced_type} (older OpenBLAS builds misbehave on this "
               "processor); the last column is OpenBLAS with the kernel it picks itself, for comparison only."
               if forced_type else "OPENBLAS_CORETYPE is not set: OpenBLAS picks its kernel itself.")
        say("SGEMM, C = A.B row-major, GFLOP/s (bench/gemm_bench.c, best of 5): convnet's own (the "
            f"{runs[0].get('kernel', '?')} micro-kernel) beside OpenBLAS {OPENBLAS_VERSION}. " + why)
        say()
        say("| m x n x k | threads | convnet | % peak | OpenBLAS (forced) | OpenBLAS (its own) |")
        say("|---|--:|--:|--:|--:|--:|")
        for t in CONVNET_THREADS:
            mine = [r for r in runs if r.get("threads") == t]
            forced = next((r for r in mine if r["openblas_coretype"] != "its own choice"), None)
            own = next((r for r in mine if r["openblas_coretype"] == "its own choice"), None)
            base = forced or own
            for i, sh in enumerate(base["shapes"] if base else []):
                pk = (peak if t == os.cpu_count() else res["peak"].get("one_core", {}).get("gflops")) or None
                fo = forced["shapes"][i]["openblas_gflops"] if forced else None
                ow = own["shapes"][i]["openblas_gflops"] if own else None
                say(f"| {sh['m']} x {sh['n']} x {sh['k']} | {t} | {sh['convnet_gflops']:.0f} | "
                    f"{pct(sh['convnet_gflops'] / pk) if pk else 'n/a'} | {'n/a' if fo is None else f'{fo:.0f}'} | "
                    f"{'n/a' if ow is None else f'{ow:.0f}'} |")
        say()

    # as a CPU without AVX-512 runs them
    av = res.get("avx2", {})
    if av.get("rows"):
        say("As a CPU with AVX2 but no AVX-512 runs them (most laptops), on this one: convnet with CONVNET_ISA=avx2 "
            "(its matrix products and hand-written kernels as there; the compiler's clones of the element-wise loops "
            "still pick AVX-512 here, as the loader chooses them by the CPU), PyTorch with "
            + " ".join(f"{k}={v}" for k, v in AVX2_TORCH_ENV.items()) + " (ATen's and oneDNN's AVX2 code), "
            "each its best of 1 and 2 threads.")
        say()
        say("| workload | convnet (avx2) | PyTorch (AVX2) | ratio |")
        say("|---|--:|--:|--:|")
        for row in av["rows"]:
            c, p = row["convnet"], row["pytorch"]
            cv = c["images_per_s"] if c and "error" not in c else None
            pv = p.get("images_per_s") if "error" not in p else None
            say(f"| {row['model']} {row['mode']} batch {row['batch']} | {'n/a' if cv is None else f'{cv:.0f}'} | "
                f"{'n/a' if pv is None else f'{pv:.0f}'} | {f'{cv / pv:.2f}x' if cv and pv else 'n/a'} |")
        say()
    ag = [r for r in av.get("gemm", []) if "error" not in r]
    if ag:
        ct = os.environ.get("OPENBLAS_CORETYPE")
        say("SGEMM with AVX2 only: convnet's AVX2 micro-kernel (CONVNET_ISA=avx2) beside OpenBLAS "
            + (f"with OPENBLAS_CORETYPE={ct}" + (" (its AVX2 kernels)" if ct.lower() == "haswell" else "") if ct
               else "with the kernel it picks itself")
            + ", GFLOP/s:")
        say()
        say(f"| m x n x k | threads | convnet (avx2) | OpenBLAS ({ct or 'its own'}) | ratio |")
        say("|---|--:|--:|--:|--:|")
        for r in ag:
            for sh in r["shapes"]:
                say(f"| {sh['m']} x {sh['n']} x {sh['k']} | {r['threads']} | {sh['convnet_gflops']:.0f} | "
                    f"{sh['openblas_gflops']:.0f} | {sh['convnet_gflops'] / sh['openblas_gflops']:.2f}x |")
        say()

    # the targets of issue 18 (CPU round 2; issue 5's were the same but lenet5 and resnet18's 1.2x
    # and the big convolutions' 80% of peak)
    def row_of(model, mode, batch):
        return next((r for r in rows if (r["model"], r["mode"], r["batch"]) == (model, mode, batch)), None)
    fm, rn = row_of("fmnist-small", "train", 64), row_of("resnet18-cifar", "train", 32)
    le = row_of("lenet5", "train", 64)
    targets = [
        ("fmnist-small training >= 2x PyTorch", ratio(fm["convnet_best"], fm["pytorch"]) if fm else None, 2.0, ">=", "x"),
        ("fmnist-small training >= 15x darknet", ratio(fm["convnet_best"], fm["darknet"]) if fm else None, 15.0, ">=", "x"),
        ("batch-1 latency <= 0.3x PyTorch", lat["convnet"] / lat["pytorch"] if lat.get("convnet") and lat.get("pytorch") else None,
         0.3, "<=", "x"),
        ("lenet5 training >= 1.2x PyTorch", ratio(le["convnet_best"], le["pytorch"]) if le else None, 1.2, ">=", "x"),
        ("resnet18-cifar training >= 1.5x PyTorch", ratio(rn["convnet_best"], rn["pytorch"]) if rn else None, 1.5, ">=", "x"),
    ]
    say("Targets of issue 18:")
    say()
    say("| target | measured | |")
    say("|---|--:|---|")
    res["targets"] = []
    for name, v, goal, op, unit in targets:
        met = None if v is None else (v >= goal if op == ">=" else v <= goal)
        shown = "n/a" if v is None else (pct(v) if unit == "%" else fmt_ratio(v))
        if unit == "%" and big:
            shown += f" (forward alone {pct(big['fwd_frac'])})"
        say(f"| {name} | {shown} | {'n/a' if met is None else 'MET' if met else 'MISSED'} |")
        res["targets"].append({"target": name, "measured": v, "goal": goal, "met": met})
    say()
    if failed:
        say("Failed measurements: " + ", ".join(failed))


if __name__ == "__main__":
    sys.exit(main())
