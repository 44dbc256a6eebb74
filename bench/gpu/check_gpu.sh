#!/bin/sh
# check_gpu.sh BUILD DATA — `make check-gpu`: the CUDA backend on a machine with an NVIDIA GPU.
# 1. the op table and the training steps on the GPU against the reference (CN_REQUIRE_GPU=1:
#    a GPU that cannot be used fails instead of skipping), with cuDNN and with our direct
#    convolution kernels; the embedded kernels;
# 2. a short training run on Fashion-MNIST with --device cuda, its checkpoint evaluated on the
#    CPU and on the GPU (the same accuracy within rounding: checkpoints interchange), its
#    gradients.csv, gradflow of it on both devices (within 1e-4), and the run resumed on the CPU
#    for one more epoch;
# 3. fmnist-small's training steps replayed as a CUDA graph (convnet bench); one epoch of it in
#    bf16, evaluated on the CPU (above 0.80: bf16 trains);
# 4. gradcheck --device cuda on a net of every op kind (the GPU's float forward and backward
#    against the CPU's) and on fmnist-small.
# Each step has a time limit; a line per check (gpu-ok, gpu-FAIL), "N passed, N failed" last,
# exit 1 on a failure.
B=${1:-build}
DATA=${2:-/usr/share/datasets/fashion-mnist}
CN=$B/convnet
# a build carried from another machine brings the libraries it was linked with in $B/lib
# (bench/gpu/prepare.sh); cuDNN must load (its absence would quietly run our direct kernels)
[ -d "$B/lib" ] && export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CN_REQUIRE_CUDNN=1
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_gpu.XXXXXX") || exit 1
pass=0 fail=0
# gpu-ok / gpu-FAIL: apart from the test programs' own ok and FAIL lines
ok() { pass=$((pass + 1)); echo "gpu-ok   $1"; }
bad() { fail=$((fail + 1)); echo "gpu-FAIL $1"; [ -f "$T/log" ] && grep -v "^ok  " "$T/log" | tail -8; }
step() { # NAME SECONDS COMMAND...: passes when the command exits 0 within SECONDS
    name=$1 limit=$2
    shift 2
    start=$(date +%s.%N)
    timeout "$limit" "$@" >"$T/log" 2>&1
    rc=$?
    secs=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }")
    if [ $rc -eq 0 ]; then ok "$name ($secs s)"; else bad "$name: exit $rc after $secs s"; fi
    return $rc
}
accuracy() { sed -n 's/^{"accuracy":\([0-9.]*\),.*/\1/p' "$1"; } # eval --json's first field

step "op table and training steps on the GPU (CN_REQUIRE_GPU=1)" 150 env CN_REQUIRE_GPU=1 "$B/test_backend"
grep -v -E "^ok  |^  cpu " "$T/log" | head -150 # the GPU's errors per op and precision, what failed
step "the same with our direct convolution kernels (CN_NO_CUDNN=1)" 150 env CN_REQUIRE_GPU=1 CN_NO_CUDNN=1 \
    "$B/test_backend" || grep -v -E "^ok  |^  cpu " "$T/log" | head -60
step "the embedded fatbin" 30 "$B/cuda_fatbin"

if step "train fmnist-small 2 epochs on the GPU" 300 "$CN" train models/fmnist-small.cnn --data "$DATA" --epochs 2 \
    --out "$T/run" --device cuda --quiet; then
    cat "$T/log"
    step "eval of the GPU's checkpoint on the CPU" 120 "$CN" eval "$T/run" --data "$DATA" --json && cp "$T/log" "$T/cpu.json"
    step "eval of the GPU's checkpoint on the GPU" 120 "$CN" eval "$T/run" --data "$DATA" --json --device cuda &&
        cp "$T/log" "$T/gpu.json"
    if [ -f "$T/cpu.json" ] && [ -f "$T/gpu.json" ]; then
        a=$(accuracy "$T/cpu.json") g=$(accuracy "$T/gpu.json")
        if awk "BEGIN { d = $a - $g; exit !($a > 0.85 && d <= 0.002 && d >= -0.002) }"; then
            ok "accuracy on the CPU $a, on the GPU $g (above 0.85, within 0.002)"
        else
            bad "accuracy on the CPU $a, on the GPU $g (want above 0.85, within 0.002)"
        fi
    fi
    # gradients.csv, read from the device's slab at each epoch's end, and gradflow on both devices
    if python3 -c "
import csv, math, sys
rows = list(csv.reader(open('$T/run/gradients.csv')))
assert rows[0] == ['epoch', 'tensor', 'weight_rms', 'grad_rms'] and len(rows) == 1 + 2 * 4, rows
assert all(math.isfinite(float(r[3])) and float(r[3]) > 0 for r in rows[1:]), rows
" >"$T/log" 2>&1; then ok "gradients.csv: 2 epochs x 4 weights, every gradient rms finite and > 0"; else bad "gradients.csv"; fi
    step "gradflow of the GPU's run on the CPU" 120 "$CN" gradflow --weights "$T/run" --data "$DATA" --json &&
        cp "$T/log" "$T/flow-cpu.json"
    step "gradflow of the GPU's run on the GPU" 120 "$CN" gradflow --weights "$T/run" --data "$DATA" --json --device cuda &&
        cp "$T/log" "$T/flow-gpu.json"
    # dL/d(output) to 1e-2 only: where an image is flat, a Winograd convolution (the CPU's conv2,
    # perhaps cuDNN's) makes mathematically equal outputs an ulp apart, and max-pooling sends the
    # gradient to another cell of the tie (the weight gradients stay: the cells see equal patches)
    if python3 -c "
import json
a, b = json.load(open('$T/flow-cpu.json')), json.load(open('$T/flow-gpu.json'))
for x, y in zip(a['layers'], b['layers']):
    for k, tol in (('output_rms', 1e-4), ('grad_rms', 1e-2), ('weight_rms', 1e-4), ('weight_grad_rms', 1e-4)):
        assert (x[k] is None) == (y[k] is None) and (x[k] is None or abs(x[k] - y[k]) <= tol * abs(x[k])), (k, x, y)
" >"$T/log" 2>&1; then ok "gradflow: every layer's figures on the GPU within 1e-4 of the CPU's (dL/d(output) 1e-2)"
    else bad "gradflow CPU against GPU"; fi
    step "the GPU's run resumed on the CPU for a third epoch" 300 "$CN" train --resume "$T/run" --epochs 3 --quiet
fi

# the timed steps of fmnist-small replay one CUDA graph each (a capture that failed on the real
# driver would leave them unrecorded: correct, slower)
if step "bench fmnist-small batch 256 --device cuda" 120 "$CN" bench models/fmnist-small.cnn --batch 256 --seconds 0.5 \
    --device cuda --json; then
    if grep -q '"graph":true' "$T/log"; then ok "its steps replayed as a CUDA graph"; else bad "its steps were not recorded"; fi
    if grep -q '"in_flight":true' "$T/log"; then ok "its steps in flight"; else bad "its steps were not in flight"; fi
fi

# bf16 trains: one epoch, its checkpoint (fp32 master weights) evaluated on the CPU
if step "train fmnist-small 1 epoch on the GPU in bf16" 200 "$CN" train models/fmnist-small.cnn --data "$DATA" --epochs 1 \
    --out "$T/bf16" --device cuda --precision bf16 --quiet; then
    cat "$T/log"
    if step "eval of the bf16 checkpoint on the CPU" 120 "$CN" eval "$T/bf16" --data "$DATA" --json; then
        a=$(accuracy "$T/log")
        if awk "BEGIN { exit !($a > 0.80) }"; then ok "bf16: accuracy on the CPU $a (above 0.80)"
        else bad "bf16: accuracy on the CPU $a (want above 0.80)"; fi
    fi
fi

# every op kind; the strided pad=same conv pads more below than above: our direct kernels, not cuDNN
EVERY='input 12x10x3 as x; conv 8 3x3 pad=1; batchnorm; leakyrelu slope=0.1 as l; maxpool 3x3 stride=2 pad=1 ceil=yes;
minpool 2x2; globalavgpool as g1; conv 6 1x1 from x; sigmoid; avgpool 2x2 as p;
conv 6 3x3 stride=2 pad=same groups=2 from l; tanh as t; add p t as s; concat s p; dropout keep=0.8;
globalavgpool as g2; concat g1 g2; flatten; dense 7; softmax'
step "gradcheck --device cuda, every op kind" 120 "$CN" gradcheck -e "$EVERY" --batch 3 --device cuda && tail -1 "$T/log"
step "gradcheck --device cuda --precision tf32" 120 "$CN" gradcheck -e "$EVERY" --batch 3 --device cuda --precision tf32 &&
    tail -1 "$T/log"
step "gradcheck --device cuda, fmnist-small at batch 4" 120 "$CN" gradcheck models/fmnist-small.cnn --batch 4 --samples 8 \
    --device cuda && tail -1 "$T/log"

rm -rf "$T"
echo "check-gpu: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
