#!/bin/sh
# cli_test.sh — the commands with --device cuda on the emulated GPU (CMakeLists.txt runs it with
# LD_LIBRARY_PATH on tests/emulated_cuda's libraries): gradcheck's device check on a net of every
# op kind, a bench, a training run whose checkpoint the CPU evaluates to the accuracy the run
# itself reported and whose gradients.csv is the CPU run's, gradflow, and predict. Run by CTest: tests/emulated_cuda/cli_test.sh /path/to/convnet
CN=${1:?usage: tests/emulated_cuda/cli_test.sh /path/to/convnet}
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_emu.XXXXXX") || exit 1
. "$(dirname "$0")/../check.sh"

EVERY='input 12x10x3 as x; conv 8 3x3 pad=1; batchnorm; leakyrelu slope=0.1 as l; maxpool 3x3 stride=2 pad=1 ceil=yes;
minpool 2x2; globalavgpool as g1; conv 6 1x1 from x; sigmoid; avgpool 2x2 as p;
conv 6 3x3 stride=2 pad=same groups=2 from l; tanh as t; add p t as s; concat s p; dropout keep=0.8;
globalavgpool as g2; concat g1 g2; flatten; dense 7; softmax'
"$CN" gradcheck -e "$EVERY" --batch 3 --device cuda >"$T/out" 2>&1
check "gradcheck --device cuda: every op kind within 1e-5 of the CPU" \
    "[ $? -eq 0 ] && grep -q '^cuda (fp32) against the cpu: .*(tolerance 1e-05): ok' '$T/out'"
"$CN" bench -e 'input 8x8x1; conv 4 3x3 pad=1; relu; dense 3' --batch 4 --seconds 0.05 --device cuda --json >"$T/out" 2>&1
check "bench --device cuda --json: its steps replayed as a CUDA graph, in flight" \
    "[ $? -eq 0 ] && grep -q '\"device\":\"cuda\",\"precision\":\"fp32\"' '$T/out' && grep -q '\"graph\":true,\"in_flight\":true' '$T/out'"
CN_FLIGHT=0 "$CN" bench -e 'input 8x8x1; conv 4 3x3 pad=1; relu; dense 3' --batch 4 --seconds 0.05 --device cuda --json \
    >"$T/out" 2>&1
check "bench --device cuda with CN_FLIGHT=0: one step at a time" \
    "[ $? -eq 0 ] && grep -q '\"graph\":true,\"in_flight\":false' '$T/out'"
"$CN" gradcheck -e 'input 6x5x2; conv 3 3x3 pad=1; tanh; conv 4 3x3 stride=2; flatten; dense 5' --batch 3 --device cuda \
    --precision bf16 >"$T/out" 2>&1
check "gradcheck --device cuda --precision bf16: within 1e-2 of the CPU" \
    "[ $? -eq 0 ] && grep -q '^cuda (bf16) against the cpu: .*(tolerance 0.01): ok' '$T/out'"
"$CN" bench -e 'input 8x8x1; conv 4 3x3 pad=1; relu; dense 3' --batch 4 --seconds 0.05 --device cuda --precision bf16 \
    --json >"$T/out" 2>&1
check "bench --device cuda --precision bf16: recorded too" \
    "[ $? -eq 0 ] && grep -q '\"precision\":\"bf16\"' '$T/out' && grep -q '\"graph\":true' '$T/out'"

# a small image folder: train on the emulated GPU, evaluate on the CPU and on the GPU
/usr/bin/python3 - "$T/img" <<'PY'
import os, sys, zlib, struct, random
def png(path, rgb):
    raw = b''.join(b'\0' + bytes(rgb) * 8 for _ in range(8))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 8, 8, 8, 2, 0, 0, 0))
                           + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
random.seed(1)
for name, base in (('red', (200, 30, 30)), ('green', (30, 200, 30))):
    os.makedirs(os.path.join(sys.argv[1], name))
    for i in range(12):
        png(os.path.join(sys.argv[1], name, '%03d.png' % i), [max(0, min(255, c + random.randint(-20, 20))) for c in base])
PY
"$CN" train -e 'input 8x8x3; conv 4 3x3 pad=1; batchnorm; relu; maxpool 2x2; dense 2' --data "$T/img" --epochs 2 \
    --batch 8 --val 0.25 --out "$T/run" --device cuda --quiet >"$T/out" 2>&1
check "train --device cuda on an image folder" "[ $? -eq 0 ] && [ -f '$T/run/model.safetensors' ]"
"$CN" train -e 'input 8x8x3; conv 4 3x3 pad=1; batchnorm; relu; maxpool 2x2; dense 2' --data "$T/img" --epochs 2 \
    --batch 8 --val 0.25 --out "$T/run-cpu" --quiet >/dev/null 2>&1
check "gradients.csv of the GPU's run: the CPU run's tensors, each rms within 1e-4 (the last step's gradient read from the device's slab)" \
    "/usr/bin/python3 -c \"
import csv
a, b = (list(csv.reader(open('$T/' + n + '/gradients.csv'))) for n in ('run-cpu', 'run'))
assert len(a) == len(b) == 1 + 2 * 3 and all(x[:2] == y[:2] for x, y in zip(a, b)), (a, b)
assert all(abs(float(x[k]) - float(y[k])) <= 1e-4 * abs(float(x[k])) for x, y in zip(a[1:], b[1:]) for k in (2, 3)), (a, b)
\""
"$CN" gradflow --weights "$T/run" --batch 16 --json >"$T/cpu.json" 2>&1
"$CN" gradflow --weights "$T/run" --batch 16 --json --device cuda >"$T/gpu.json" 2>&1
check "gradflow --device cuda: every layer's figures within 1e-5 of the CPU's" \
    "/usr/bin/python3 -c \"
import json
a, b = json.load(open('$T/cpu.json')), json.load(open('$T/gpu.json'))
assert len(a['layers']) == len(b['layers']) == 6, (a, b)
for x, y in zip(a['layers'], b['layers']):
    for k in ('output_rms', 'grad_rms', 'weight_rms', 'weight_grad_rms'):
        assert (x[k] is None) == (y[k] is None) and (x[k] is None or abs(x[k] - y[k]) <= 1e-5 * abs(x[k])), (k, x, y)
\""
"$CN" eval "$T/run" --data "$T/img" --json >"$T/cpu.json" 2>&1
"$CN" eval "$T/run" --data "$T/img" --json --device cuda >"$T/gpu.json" 2>&1
check "the GPU's checkpoint evaluated on the CPU and on the GPU: the same accuracy, top-k accuracy and loss to 1e-5" \
    "/usr/bin/python3 -c \"
import json
a, b = json.load(open('$T/cpu.json')), json.load(open('$T/gpu.json'))
assert a['count'] == 24 and a['accuracy'] == b['accuracy'] and a['top_accuracy'] == b['top_accuracy'] and abs(a['loss'] - b['loss']) <= 1e-5 * max(1, abs(a['loss'])), (a, b)
\""
for v in flip flip-shift; do
    "$CN" eval "$T/run" --data "$T/img" --json --tta $v >"$T/cpu.json" 2>&1
    "$CN" eval "$T/run" --data "$T/img" --json --tta $v --device cuda >"$T/gpu.json" 2>&1
    check "eval --tta $v on the CPU and on the GPU: the same accuracy and loss to 1e-5" \
        "/usr/bin/python3 -c \"
import json
a, b = json.load(open('$T/cpu.json')), json.load(open('$T/gpu.json'))
assert a['tta'] == b['tta'] == '$v' and a['accuracy'] == b['accuracy'] and abs(a['loss'] - b['loss']) <= 1e-5 * max(1, abs(a['loss'])), (a, b)
\""
done
"$CN" train --resume "$T/run" --epochs 3 --quiet >"$T/out" 2>&1
check "the GPU's run resumed on the CPU" "[ $? -eq 0 ]"
"$CN" train -e 'input 8x8x3; conv 4 3x3 pad=1; batchnorm; relu; maxpool 2x2; dense 2' --data "$T/img" --epochs 1 \
    --batch 8 --val 0.25 --out "$T/bf16" --device cuda --precision bf16 --quiet >"$T/out" 2>&1 &&
    "$CN" eval "$T/bf16" --data "$T/img" --json >"$T/cpu.json" 2>&1
check "train --device cuda --precision bf16: an fp32 checkpoint the CPU evaluates" \
    "[ $? -eq 0 ] && grep -q '\"count\":24' '$T/cpu.json'"
"$CN" predict "$T/run" "$T/img/green/000.png" --device cuda --json >"$T/out" 2>&1
check "predict --device cuda" "[ $? -eq 0 ] && grep -q '\"predictions\"' '$T/out'"
"$CN" predict "$T/run" "$T/img" --tta flip-shift --csv "$T/cpu.csv" >/dev/null 2>&1
"$CN" predict "$T/run" "$T/img" --tta flip-shift --csv "$T/gpu.csv" --device cuda >/dev/null 2>&1
check "predict --tta flip-shift on the CPU and on the GPU: the same classes, probabilities to 1e-5" \
    "/usr/bin/python3 -c \"
import csv
a, b = (list(csv.DictReader(open('$T/' + n + '.csv'))) for n in ('cpu', 'gpu'))
assert len(a) == len(b) == 24 and all(x['class'] == y['class'] and abs(float(x['probability']) - float(y['probability'])) <= 1e-5 for x, y in zip(a, b))
\""

finish
