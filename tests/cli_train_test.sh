#!/bin/sh
# cli_train_test.sh — `convnet train` killed with SIGKILL in the middle of a run and resumed
# with --resume ends with a checkpoint byte-identical to an uninterrupted run's; eval and
# predict read what train wrote. Run by CTest: tests/cli_train_test.sh /path/to/convnet
CN=${1:?usage: tests/cli_train_test.sh /path/to/convnet}
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_train.XXXXXX") || exit 1
. "$(dirname "$0")/check.sh"

SPEC='input 28x28x1; conv 4 3x3 pad=1; relu; maxpool 2x2; dropout keep=0.9; dense 10'
set -- --epochs 5 --val 0.9 --batch 32 --seed 3 --crop 1 --flip --quiet

"$CN" train -e "$SPEC" "$@" --out "$T/a"
check "uninterrupted run" "[ -f '$T/a/last.safetensors' ]"

"$CN" train -e "$SPEC" "$@" --out "$T/b" &
pid=$!
# wait for the first epoch's checkpoint, then kill -9 in the middle of the next epochs
i=0
while [ ! -f "$T/b/last.safetensors" ] && [ $i -lt 1200 ] && kill -0 $pid 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
sleep 0.2
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
rows=$(($(wc -l <"$T/b/metrics.csv") - 1))
check "killed part way ($rows of 5 epochs done)" "[ $rows -ge 1 ] && [ $rows -lt 5 ]"
check "no temporary files left by the kill" "[ -z \"\$(ls '$T/b' | grep -v -e '^last.safetensors$' -e '^model.safetensors$' -e '^metrics.csv$' -e '^steps.csv$' -e '^gradients.csv$' -e '^report.html$' -e '^run.json$')\" ]"

"$CN" train --resume "$T/b" --quiet
check "resume exits 0" "[ $? -eq 0 ]"
check "resumed = uninterrupted, byte for byte" "cmp -s '$T/a/last.safetensors' '$T/b/last.safetensors'"
check "best checkpoints equal too" "cmp -s '$T/a/model.safetensors' '$T/b/model.safetensors'"
check "steps.csv: the same rows as the uninterrupted run's (the killed epoch's steps dropped, then run again)" "cmp -s '$T/a/steps.csv' '$T/b/steps.csv' && [ \$(wc -l <'$T/b/steps.csv') -gt 5 ]"
check "metrics.csv: a row per epoch" "[ \$(wc -l <'$T/b/metrics.csv') -eq 6 ]"

# Ctrl-C (SIGINT) part way: the run says what is kept and how to go on, ends as the signal ends
# it (status 130), and --resume continues it to the uninterrupted run's bytes
"$CN" train -e "$SPEC" "$@" --out "$T/c" >/dev/null 2>"$T/c.err" &
pid=$!
i=0
while [ ! -f "$T/c/last.safetensors" ] && [ $i -lt 1200 ] && kill -0 $pid 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
kill -INT $pid 2>/dev/null
wait $pid
status=$?
check "SIGINT: exit status 130 (128 + SIGINT), as the signal ends a process" "[ $status -eq 130 ]"
check "SIGINT: what is kept and how to go on, said" "grep -qF 'convnet train: interrupted; the epochs finished are kept in $T/c (last.safetensors): \`convnet train --resume $T/c\` continues the run' '$T/c.err'"
"$CN" train --resume "$T/c" --quiet >/dev/null 2>&1
check "SIGINT, then --resume: the uninterrupted run's checkpoint, byte for byte" "cmp -s '$T/a/last.safetensors' '$T/c/last.safetensors'"

"$CN" eval "$T/b" --json >"$T/eval.json"
check "eval of the run" "grep -q '\"count\":10000' '$T/eval.json'"
"$CN" eval "$T/b" --json --threads 1 >"$T/eval1.json"
check "eval --threads 1: the same figures, bit for bit" "cmp -s '$T/eval.json' '$T/eval1.json'"
for v in flip flip-shift; do
    "$CN" eval "$T/b" --json --tta $v >"$T/tta.json"
    check "eval --tta $v: said in the JSON, and the views change the loss" "/usr/bin/python3 -c \"
import json
a, b = json.load(open('$T/eval.json')), json.load(open('$T/tta.json'))
assert a['tta'] == 'none' and b['tta'] == '$v' and b['count'] == 10000 and abs(a['loss'] - b['loss']) > 1e-4, (a['loss'], b['loss'])
\""
done
# --shift 2,-1 against the test images moved 2 px right and 1 px up by Python (zeros where they
# moved from): the same figures
mkdir -p "$T/moved" && ln -s /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
    /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz "$T/moved/"
/usr/bin/python3 - "$T/moved" <<'PY'
import gzip, sys
raw = gzip.open('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz').read()
out = bytearray(raw[:16])
for k in range(16, len(raw), 784):
    img = raw[k:k + 784]
    out += bytes(img[(y + 1) * 28 + x - 2] if y + 1 < 28 and x >= 2 else 0 for y in range(28) for x in range(28))
gzip.open(sys.argv[1] + '/t10k-images-idx3-ubyte.gz', 'wb').write(bytes(out))
PY
"$CN" eval "$T/b" --shift 2,-1 --json >"$T/shift.json"
"$CN" eval "$T/b" --data "$T/moved" --json >"$T/moved.json"
check "eval --shift 2,-1: the figures of the images moved by Python, and the shift in the JSON" "/usr/bin/python3 -c \"
import json
a, b = json.load(open('$T/shift.json')), json.load(open('$T/moved.json'))
assert a.pop('shift') == [2, -1] and b.pop('shift') == [0, 0] and a == b and a['accuracy'] < json.load(open('$T/eval.json'))['accuracy'], (a, b)
\""
# --zoom 0.9 --rotate 15 --shift -1,2 --brightness 0.8 against the same bilinear sampling in numpy
# (the formula of eval --help: about the centre, zeros outside, then the brightness, at most 1)
mkdir -p "$T/turned" && ln -s /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
    /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz "$T/turned/"
/usr/bin/python3 - "$T/turned" <<'PY'
import gzip, math, sys
import numpy as np
raw = gzip.open('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz').read()
img = np.frombuffer(raw[16:], np.uint8).reshape(-1, 28, 28).astype(np.float32) / 255
zoom, deg, dx, dy, bright = 0.9, 15.0, -1, 2, 0.8
c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
y, x = np.mgrid[0:28, 0:28].astype(np.float64)
px, py = (x - dx) - 13.5, (y - dy) - 13.5
qx, qy = 13.5 + (c * px - s * py) / zoom, 13.5 + (s * px + c * py) / zoom
x0, y0 = np.floor(qx), np.floor(qy)
out = np.zeros(img.shape, np.float64)
for j in range(4):
    sx, sy = x0 + (j & 1), y0 + (j >> 1)
    w = (qx - x0 if j & 1 else 1 - (qx - x0)) * (qy - y0 if j >> 1 else 1 - (qy - y0))
    ok = (sx >= 0) & (sx < 28) & (sy >= 0) & (sy < 28) & (w != 0)
    out[:, ok] += w[ok] * img[:, sy[ok].astype(int), sx[ok].astype(int)]
out = np.minimum(out * bright, 1)
pix = np.rint(out.astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
gzip.open(sys.argv[1] + '/t10k-images-idx3-ubyte.gz', 'wb').write(raw[:16] + pix.tobytes())
PY
"$CN" eval "$T/b" --zoom 0.9 --rotate 15 --shift -1,2 --brightness 0.8 --json >"$T/view.json"
check "eval --zoom --rotate --shift --brightness: said in the JSON, and the accuracy falls" "/usr/bin/python3 -c \"
import json
a = json.load(open('$T/view.json'))
assert (a['zoom'], a['rotate'], a['shift'], a['brightness']) == (0.9, 15, [-1, 2], 0.8) and a['accuracy'] < json.load(open('$T/eval.json'))['accuracy'], a
\""
"$CN" eval "$T/b" --data "$T/turned" --json >"$T/turned.json"
# (stored as 8-bit, so within 0.2 % of accuracy and of the loss: measured 0.01 % and 0.003 %, where
# a rotation the other way moves the accuracy 7 %, a shift the other way the loss 17 %, a zoom of
# 1.1 the loss 6 %, and leaving out the brightness the loss 0.65 %)
check "... its figures those of the images turned by numpy" "/usr/bin/python3 -c \"
import json
a, b = json.load(open('$T/view.json')), json.load(open('$T/turned.json'))
assert abs(a['accuracy'] - b['accuracy']) <= 0.002 and abs(a['loss'] - b['loss']) <= 0.002 * b['loss'], (a['accuracy'], b['accuracy'], a['loss'], b['loss'])
\""
"$CN" eval "$T/b" --zoom 0 >/dev/null 2>"$T/err"
check "eval --zoom 0: a usage error" "[ $? -eq 2 ] && grep -q 'zoom takes 0.01 to 100' '$T/err'"
"$CN" eval "$T/b" --shift 28 >/dev/null 2>"$T/err"
check "eval --shift 28: a usage error, the images out of sight" "[ $? -eq 2 ] && grep -q 'moves the 28x28 images out of sight' '$T/err'"
"$CN" eval "$T/b" --tta sideways >/dev/null 2>"$T/err"
check "eval --tta sideways: a usage error (exit 2) naming the choices" "[ $? -eq 2 ] && grep -q \"unknown 'sideways'\" '$T/err'"
# train --tta flip: the test accuracy at the end both ways, the second eval --tta flip's; kept by --resume
"$CN" train -e "$SPEC" --epochs 1 --val 0.9 --batch 32 --flip --tta flip --quiet --out "$T/tta" >"$T/out" 2>&1
"$CN" eval "$T/tta" --tta flip --json >"$T/tta.json"
check "train --tta flip: the final line gives the accuracy with mirror images as eval --tta flip does" "/usr/bin/python3 -c \"
import json, re
m = re.search(r'test accuracy ([0-9.]+)%, ([0-9.]+)% with --tta flip \\(best epoch 1', open('$T/out').read())
assert m and '%.2f' % (100 * json.load(open('$T/tta.json'))['accuracy']) == m.group(2), open('$T/out').read()
\""
"$CN" train --resume "$T/tta" --epochs 2 --quiet >"$T/out" 2>&1
check "train --resume keeps --tta flip" "[ $? -eq 0 ] && grep -q '% with --tta flip (best epoch 2' '$T/out'"
"$CN" train --resume "$T/b" --lr 0.5 >/dev/null 2>&1
check "--resume refuses other settings (exit 2)" "[ $? -eq 2 ]"
"$CN" eval "$T/nothing" >/dev/null 2>"$T/err"
check "eval of a missing checkpoint: exit 1 with the path" "[ $? -eq 1 ] && grep -q '$T/nothing' '$T/err'"

# a learning rate that blows up: the NaN tracer's message, exit 1, no checkpoint claimed
"$CN" train -e "$SPEC" --epochs 1 --val 0.9 --lr 1e30 --optimizer sgd --schedule constant --out "$T/nan" 2>"$T/err"
check "exploding run: exit 1" "[ $? -eq 1 ]"
check "exploding run: names the first layer with a non-finite output" "grep -q \"produced a non-finite output in the forward pass\" '$T/err'"
check "exploding run: says no checkpoint was written" "grep -q 'no checkpoint written' '$T/err'"

# an image folder of three colour classes (PNGs of varied sizes, resized to the input): train,
# then predict and eval read the run
/usr/bin/python3 tests/pngwrite.py "$T/colours" red green blue --count 40 --seed 1 --size 10-20
"$CN" train -e 'input 12x12x3; conv 8 3x3 pad=1; relu; globalavgpool; dense 3' --data "$T/colours" --epochs 3 \
    --batch 16 --val 0.25 --out "$T/colours-run" >"$T/out" 2>&1
check "train on an image folder" "[ $? -eq 0 ] && grep -q 'no test half' '$T/out'"
"$CN" predict "$T/colours-run" "$T/colours/green/000.png" --json >"$T/pred.json"
check "predict names the folder's class" "grep -q '\"predictions\":\[{\"class\":1,\"name\":\"green\"' '$T/pred.json'"
# --device cuda: the same on a GPU; without one (or its driver, or in a build without nvcc) exit 1
# with the reason, and no run folder made
device_cuda() { # NAME: the command just run
    rc=$?
    check "$1 --device cuda: runs, or exit 1 with the reason" \
        "[ $rc -eq 0 ] || { [ $rc -eq 1 ] && grep -q '^convnet: --device cuda: ' '$T/err' && [ ! -d '$T/cuda-run' ]; }"
}
"$CN" predict "$T/colours-run" "$T/colours/green/000.png" --device cuda >"$T/out" 2>"$T/err"
device_cuda predict
"$CN" eval "$T/b" --device cuda >"$T/out" 2>"$T/err"
device_cuda eval
"$CN" train -e 'input 12x12x3; dense 3' --data "$T/colours" --epochs 1 --out "$T/cuda-run" --device cuda >"$T/out" 2>"$T/err"
device_cuda train
# --threads is the invocation's, not the run's: not kept, and a resume takes its own
"$CN" train -e 'input 12x12x3; dense 3' --data "$T/colours" --epochs 1 --threads 1 --quiet --out "$T/thr" >/dev/null 2>&1
check "a run's saved settings leave --threads out" "[ $? -eq 0 ] && ! grep -q 'threads' '$T/thr/run.json'"
"$CN" train --resume "$T/thr" --epochs 2 --threads 2 --quiet >"$T/out" 2>&1
check "--resume DIR --threads N runs" "[ $? -eq 0 ] && grep -q 'best validation accuracy' '$T/out'"
# predict on a folder (sub-folders too, non-images and a FIFO skipped) holding an unreadable file: the others
# go on, the failure is named, exit 1; the CSV holds a row per image
mkdir -p "$T/mixed/sub"
cp "$T/colours/red/000.png" "$T/mixed/a.png"
cp "$T/colours/blue/000.png" "$T/mixed/sub/b.PNG"
printf 'not an image' >"$T/mixed/broken.png"
printf 'notes' >"$T/mixed/notes.txt"
mkfifo "$T/mixed/pipe.png" # no regular file: skipped, where reading it would wait for ever
timeout 60 "$CN" predict "$T/colours-run" "$T/mixed" --csv "$T/pred.csv" >"$T/out" 2>"$T/err"
check "predict FOLDER with a broken file: exit 1, names it, goes on" \
    "[ $? -eq 1 ] && grep -q '$T/mixed/broken.png: ' '$T/err' && grep -q '1 of 3 images could not be read' '$T/err' && grep -q 'sub/b.PNG' '$T/out'"
check "predict --csv: header and a row per image, sorted, names by class, the broken one with its error" \
    "/usr/bin/python3 -c \"
import csv
rows = list(csv.reader(open('$T/pred.csv')))
names = ['blue', 'green', 'red']
ok = rows[0] == ['image', 'class', 'name', 'probability', 'error'] and [r[0] for r in rows[1:]] == ['$T/mixed/a.png', '$T/mixed/broken.png', '$T/mixed/sub/b.PNG']
ok = ok and rows[2][1:4] == ['', '', ''] and 'not a PNG or JPEG' in rows[2][4]
ok = ok and all(names[int(r[1])] == r[2] and 0 < float(r[3]) <= 1 and r[4] == '' for r in (rows[1], rows[3]))
exit(not ok)\""
# more images than a forward pass takes (16), a broken one among them: each image's row is the row
# it gets alone, in order
mkdir -p "$T/many"
for c in red green blue; do for f in "$T/colours/$c/"00[0-7].png; do cp "$f" "$T/many/$c-$(basename "$f")"; done; done
printf 'not an image' >"$T/many/green-003.png"
"$CN" predict "$T/colours-run" "$T/many" --csv "$T/many.csv" --top 1 >/dev/null 2>&1
: >"$T/alone.csv"
for f in "$T/many/"*.png; do "$CN" predict "$T/colours-run" "$f" --csv "$T/one.csv" >/dev/null 2>&1; tail -n 1 "$T/one.csv" >>"$T/alone.csv"; done
check "predict FOLDER of 24 images: every row as the image alone gives it, the broken one in its place" \
    "[ \$(wc -l <'$T/alone.csv') -eq 24 ] && tail -n +2 '$T/many.csv' | cmp -s - '$T/alone.csv' && grep -q 'green-003.png\",,,,' '$T/many.csv'"
# decoded on 1, 2 and 3 threads: the same CSV, the same lines and the same error, in order
for t in 1 2 3; do "$CN" predict "$T/colours-run" "$T/many" --csv "$T/many$t.csv" --threads $t >"$T/many$t.out" 2>"$T/many$t.err"; done
check "predict FOLDER --threads 1, 2, 3: the same CSV, output and errors" \
    "cmp -s '$T/many1.csv' '$T/many2.csv' && cmp -s '$T/many1.csv' '$T/many3.csv' && cmp -s '$T/many1.out' '$T/many3.out' && cmp -s '$T/many1.err' '$T/many3.err' && grep -q 'green-003.png: not a PNG or JPEG image' '$T/many2.err'"
"$CN" predict "$T/colours-run" "$T/colours/red/00*.png" --json >"$T/glob.json"
check "predict 'GLOB': the pattern expanded (10 images)" \
    "/usr/bin/python3 -c \"import json; d = json.load(open('$T/glob.json')); exit(not (len(d) == 10 and d[9]['image'].endswith('red/009.png')))\""
# a pattern matches case and all, as the shell's; where it matches only in another case (a
# camera's .JPG for '*.jpg'), the error says how many would and names one
mkdir -p "$T/camera" && cp "$T/colours/red/000.png" "$T/camera/IMG_0001.PNG" && cp "$T/colours/red/001.png" "$T/camera/IMG_0002.PNG"
"$CN" predict "$T/colours-run" "$T/camera/*.png" >"$T/out" 2>&1
check "predict 'GLOB' matching only in another case: exit 1, the other case said" \
    "[ $? -eq 1 ] && grep -qF '$T/camera/*.png: no file matches (the pattern is case-sensitive: 2 files would match it in other case, as $T/camera/IMG_0001.PNG)' '$T/out'"
"$CN" predict "$T/colours-run" "$T/camera/*.gif" >"$T/out" 2>&1
check "predict 'GLOB' matching nothing in any case: no file matches" \
    "[ $? -eq 1 ] && grep -qxF 'convnet: $T/camera/*.gif: no file matches' '$T/out'"
# predict FOLDER takes a folder's files by their content, as train takes a class folder's: a JPEG
# with no extension, a .jfif and a .JPE are read; photos in other formats (told by their magic
# bytes) and other files are skipped and counted on stderr, and the litter an operating system
# leaves (hidden files, Thumbs.db, desktop.ini, __MACOSX) is skipped unsaid
mkdir -p "$T/bycontent/sub" "$T/bycontent/__MACOSX" "$T/heic-only"
/usr/bin/python3 - "$T" <<'PY'
import sys
from PIL import Image
t = sys.argv[1]
im = Image.new('RGB', (15, 13), (230, 20, 30))
for name in ('photo', 'b.jfif', 'sub/c.JPE', 'same.jpg'):
    im.save(f'{t}/bycontent/{name}' if name != 'same.jpg' else f'{t}/{name}', 'JPEG')
im.save(f'{t}/bycontent/d.webp', 'WEBP')
im.save(f'{t}/bycontent/e.gif', 'GIF')
# HEIC and HEIF (brand mif1) headers: what is told apart is the first 12 bytes
open(f'{t}/bycontent/IMG_1.HEIC', 'wb').write(b'\0\0\0\x18ftypheic\0\0\0\0mif1heic')
open(f'{t}/bycontent/IMG_2.heif', 'wb').write(b'\0\0\0\x18ftypmif1\0\0\0\0mif1heic')
open(f'{t}/bycontent/notes.txt', 'w').write('not an image')
for name in ('Thumbs.db', 'desktop.ini', '.DS_Store', '__MACOSX/._photo.jpg'):
    open(f'{t}/bycontent/{name}', 'wb').write(b'litter')
open(f'{t}/heic-only/IMG_3.HEIC', 'wb').write(b'\0\0\0\x18ftypheic\0\0\0\0mif1heic')
im.save(f'{t}/heic-only/f.webp', 'WEBP')
PY
"$CN" predict "$T/colours-run" "$T/bycontent" --csv "$T/bycontent.csv" >"$T/out" 2>"$T/err"
check "predict FOLDER: a JPEG with no extension, a .jfif and a .JPE read (by content), exit 0" \
    "[ $? -eq 0 ] && grep -qxF '$T/colours-run: 3 images from $T/bycontent' '$T/out' && /usr/bin/python3 -c \"
import csv
rows = list(csv.reader(open('$T/bycontent.csv')))[1:]
exit(not ([r[0] for r in rows] == ['$T/bycontent/b.jfif', '$T/bycontent/photo', '$T/bycontent/sub/c.JPE'] and all(r[4] == '' for r in rows)))\""
"$CN" predict "$T/colours-run" "$T/same.jpg" --csv "$T/same.csv" >/dev/null 2>&1
check "... each predicted as the same bytes named .jpg are" \
    "/usr/bin/python3 -c \"
import csv
want = list(csv.reader(open('$T/same.csv')))[1][1:]
exit(not all(r[1:] == want for r in list(csv.reader(open('$T/bycontent.csv')))[1:]))\""
check "predict FOLDER: the files that are not PNG or JPEG counted by format in one line, the litter unsaid" \
    "[ \"\$(cat '$T/err')\" = 'convnet predict: note: 5 files in $T/bycontent are not PNG or JPEG and were skipped (2 HEIC, 1 WebP, 1 GIF, 1 other): convert them to JPEG or PNG' ]"
"$CN" predict "$T/colours-run" "$T/heic-only" >"$T/out" 2>"$T/err"
check "predict FOLDER of no PNG or JPEG: exit 1, the error counts what was skipped" \
    "[ $? -eq 1 ] && [ \"\$(cat '$T/err')\" = 'convnet: no PNG or JPEG images in what was given: 2 files in $T/heic-only are not PNG or JPEG (1 HEIC, 1 WebP): convert them to JPEG or PNG' ]"
"$CN" predict "$T/colours-run" "$T/bycontent/photo" "$T/bycontent/notes.txt" --csv "$T/named.csv" >"$T/out" 2>"$T/err"
check "predict FILE: a file given is tried whatever its name (no extension: read; notes.txt: its error)" \
    "[ $? -eq 1 ] && grep -qF '$T/bycontent/notes.txt: not a PNG or JPEG image' '$T/err' && grep -qF '1 of 2 images could not be read' '$T/err' && grep -q '^\"$T/bycontent/photo\",[0-2],' '$T/named.csv'"
# early stopping: a learning rate too small to change a float weight keeps the validation accuracy
# where epoch 1 left it, so --patience 2 stops after epoch 3 of 10; a resume stops there too
"$CN" train -e 'input 12x12x3; conv 4 3x3 pad=1; relu; globalavgpool; dense 3' --data "$T/colours" --epochs 10 \
    --batch 16 --val 0.25 --lr 1e-12 --optimizer sgd --schedule constant --patience 2 --out "$T/patience" >"$T/out" 2>&1
check "--patience 2: stopped after epoch 3 of 10, said so" \
    "[ $? -eq 0 ] && [ \$(wc -l <'$T/patience/metrics.csv') -eq 4 ] && grep -q 'stopped early: 2 epochs without a better validation accuracy than epoch 1' '$T/out'"
"$CN" train --resume "$T/patience" >"$T/out" 2>&1
check "--resume of a run stopped early stays stopped" \
    "[ $? -eq 0 ] && [ \$(wc -l <'$T/patience/metrics.csv') -eq 4 ] && grep -q 'stopped early' '$T/out'"
# a finished run extended: with a constant schedule, 2 epochs and then 2 more are a 4-epoch run,
# byte for byte (the kept settings say 4); fewer epochs than done are refused
set -- -e 'input 12x12x3; conv 4 3x3 pad=1; relu; globalavgpool; dense 3' --data "$T/colours" --batch 16 --val 0.25 \
    --schedule constant --quiet
"$CN" train "$@" --epochs 2 --out "$T/ext"
"$CN" train --resume "$T/ext" --epochs 4 --quiet 2>"$T/err"
check "--resume DIR --epochs 4 extends a finished 2-epoch run, says so" \
    "[ $? -eq 0 ] && grep -q '2 of 2 epochs done; the run now has 4' '$T/err' && [ \$(wc -l <'$T/ext/metrics.csv') -eq 5 ]"
"$CN" train "$@" --epochs 4 --out "$T/ext4"
# (model.safetensors: the same weights; its settings are those of the epoch that wrote it)
check "... identical to a 4-epoch run (last checkpoint, run.json, the best weights)" \
    "cmp -s '$T/ext/last.safetensors' '$T/ext4/last.safetensors' && cmp -s '$T/ext/run.json' '$T/ext4/run.json' && /usr/bin/python3 -c \"
import struct, sys
def data(p):
    b = open(p, 'rb').read()
    return b[8 + struct.unpack('<Q', b[:8])[0]:]
exit(data('$T/ext/model.safetensors') != data('$T/ext4/model.safetensors'))\""
"$CN" train --resume "$T/ext" --epochs 3 2>"$T/err"
check "--resume --epochs below the epochs done: exit 2" "[ $? -eq 2 ] && grep -q 'has trained 4 epochs already' '$T/err'"
# an image folder in two halves (train/ and test/): the test accuracy at the end, eval of the
# test half by default and saying so; --test names a test half for a plain folder; halves whose
# classes differ are refused before training
/usr/bin/python3 tests/pngwrite.py "$T/split/train" red green blue --count 30 --seed 3 --size 10-20
/usr/bin/python3 tests/pngwrite.py "$T/split/test" red green blue --count 10 --seed 4 --size 10-20
set -- -e 'input 12x12x3; conv 8 3x3 pad=1; relu; globalavgpool; dense 3' --epochs 3 --batch 16 --val 0.2
"$CN" train "$@" --data "$T/split" --out "$T/split-run" >"$T/out" 2>&1
check "train on train/ + test/: the test accuracy at the end" "[ $? -eq 0 ] && grep -q '^test accuracy' '$T/out'"
"$CN" eval "$T/split-run" >"$T/out"
check "eval of that run: the test half by default, named" "grep -q 'split-run on $T/split/test: 30 images' '$T/out'"
"$CN" train "$@" --data "$T/split/train" --test "$T/split/test" --out "$T/test-run" >"$T/out" 2>&1
check "--test DIR for a plain image folder: the test accuracy at the end" "[ $? -eq 0 ] && grep -q '^test accuracy' '$T/out'"
"$CN" eval "$T/test-run" >"$T/out"
check "eval of a --test run: the --test folder by default" "grep -q 'test-run on $T/split/test (all of it): 30 images' '$T/out'"
"$CN" eval "$T/colours-run" >"$T/out"
check "eval of a run on a plain folder: all of it, said to include the training images" \
    "grep -qxF '$T/colours-run on $T/colours (all of it: no test half, training images included): 120 images' '$T/out'"
check "the report of the split run: test accuracy on the test half" \
    "grep -q 'test accuracy <b>[0-9.]*%</b>, loss [0-9.]* on 30 images of $T/split/test' '$T/split-run/report.html' && grep -q '<h2>Test images</h2>' '$T/split-run/report.html'"
check "the report of a plain folder: no 'test' for what includes the training images" \
    "grep -q 'accuracy (no test half: training images included)' '$T/colours-run/report.html' && grep -q '<h2>Images</h2>' '$T/colours-run/report.html' && ! grep -q 'test accuracy' '$T/colours-run/report.html'"
mv "$T/split/test/blue" "$T/split/test/yellow"
"$CN" train "$@" --data "$T/split" --out "$T/split-bad" >"$T/out" 2>&1
check "halves with other classes: refused before training, naming the class, no folder made" \
    "[ $? -eq 1 ] && grep -q \"$T/split/test: class folder 'yellow' is none of the training half's 3 classes ('blue', 'green', 'red')\" '$T/out' && [ ! -e '$T/split-bad' ]"
# a test half of some of the classes (red/ alone): scored as the training half's red, class 2,
# not as class 0 (its number in that folder): the run's test accuracy is eval's of red/ alone
rm -r "$T/split/test/yellow" "$T/split/test/green"
"$CN" train "$@" --data "$T/split" --out "$T/split-red" >"$T/out" 2>&1
rc=$?
acc=$(sed -n 's/^test accuracy \([0-9.]*\)%.*/\1/p' "$T/out")
check "the run says which classes its test half holds" "grep -q '^test:       $T/split/test, 10 images of 1 of the 3 classes (red)\$' '$T/out'"
# of many classes, the few missing are named instead
/usr/bin/python3 tests/pngwrite.py "$T/many/train" a b c d e f g h --count 4 --seed 5 --size 10-12 --channels 0,1,2,0,1,2,0,1
/usr/bin/python3 tests/pngwrite.py "$T/many/test" a b c d e f g --count 2 --seed 6 --size 10-12 --channels 0,1,2,0,1,2,0
"$CN" train -e 'input 12x12x3; conv 4 3x3 pad=1; relu; globalavgpool; dense 8' --epochs 1 --batch 8 --val 0 \
    --data "$T/many" --out "$T/many-run" >"$T/out" 2>&1
check "a test half of 7 of 8 classes: the missing one named" \
    "grep -q \"^test:       $T/many/test, 14 images of 7 of the 8 classes (none of 'h')\\$\" '$T/out'"
"$CN" eval "$T/split-red" --json >"$T/red.json" 2>&1
check "a test half of red/ alone: trained, and its accuracy eval's of class 2 on 10 images" \
    "[ $rc -eq 0 ] && [ -n '$acc' ] && /usr/bin/python3 -c \"import json; d = json.load(open('$T/red.json')); exit(not (d['count'] == 10 and abs(100 * d['accuracy'] - $acc) < 0.01))\""
check "eval of that run: red/'s 10 images are class 2, red" \
    "/usr/bin/python3 -c \"import json; d = json.load(open('$T/red.json')); c = [p for p in d['per_class'] if p['count']]; exit(not (len(c) == 1 and c[0]['class'] == 2 and c[0]['name'] == 'red' and c[0]['count'] == 10))\""
"$CN" eval "$T/split-red" >"$T/out" 2>&1
check "eval's text of that run: no accuracy (recall) for the classes without images, not 0.00%" \
    "grep -q '^blue  *0  *- ' '$T/out' && grep -q '^red  *10 ' '$T/out'"
"$CN" report "$T/split-red" >/dev/null 2>&1
check "its report: the same, a dash and no bar" "grep -q '<td class=\"l\">0 blue</td><td>0</td><td>0</td><td>&ndash;</td>' '$T/split-red/report.html'"
"$CN" eval "$T/colours-run" --json >"$T/eval2.json"
check "eval on the folder: 120 images, above chance" "/usr/bin/python3 -c \"import json; d = json.load(open('$T/eval2.json')); exit(not (d['count'] == 120 and d['accuracy'] > 0.6))\""

# OpenMP threads on a busy machine (cli/main.c): unless the user set OMP_WAIT_POLICY or
# GOMP_SPINCOUNT, convnet runs itself again, once, with GOMP_SPINCOUNT=1000, in the same process
# (the pid a caller holds) with the same output and status; libgomp reports the count it read
env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose "$CN" --version >"$T/out" 2>"$T/err"
check "the default: status 0, the version alone on stdout, libgomp read GOMP_SPINCOUNT=1000 (not libgomp: no report)" \
    "[ $? -eq 0 ] && [ \$(wc -l <'$T/out') -eq 1 ] && grep -q '^convnet [0-9]' '$T/out' &&
     { ! grep -q GOMP_SPINCOUNT '$T/err' || grep GOMP_SPINCOUNT '$T/err' | tail -n 1 | grep -q \"'1000'\"; }"
env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=5000 OMP_DISPLAY_ENV=verbose "$CN" --version >/dev/null 2>"$T/err"
check "a user's GOMP_SPINCOUNT is kept (no second run)" \
    "[ \$(grep -c 'ENVIRONMENT BEGIN' '$T/err') -le 1 ] && ! grep 'GOMP_SPINCOUNT' '$T/err' | grep -qv \"'5000'\""
env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$CN" traim 2>/dev/null
check "the default: an unknown command still exits 2" "[ $? -eq 2 ]"
# the environment of a training run, read while it stops itself at its first step
for policy in "" passive; do
    env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT ${policy:+OMP_WAIT_POLICY=$policy} CONVNET_FAULT=step:1 \
        CONVNET_FAULT_SIGNAL=STOP "$CN" train -e 'input 12x12x3; conv 4 3x3 pad=1; relu; globalavgpool; dense 3' \
        --data "$T/colours" --epochs 1 --quiet --out "$T/spin-$policy" >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" != T ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    tr '\0' '\n' </proc/$pid/environ | grep -e '^GOMP_SPINCOUNT=' -e '^OMP_WAIT_POLICY=' >"$T/env"
    kill -9 $pid
    wait $pid 2>/dev/null
    if [ -z "$policy" ]; then
        check "a training run (pid kept) has GOMP_SPINCOUNT=1000 in its environment" "[ \"\$(cat '$T/env')\" = GOMP_SPINCOUNT=1000 ]"
    else
        check "a user's OMP_WAIT_POLICY=passive is kept, and no GOMP_SPINCOUNT added" "[ \"\$(cat '$T/env')\" = OMP_WAIT_POLICY=passive ]"
    fi
done


# a run resumed after a class folder was renamed: refused before any epoch, its checkpoint as it was
cp -r "$T/colours" "$T/renamed"
"$CN" train -e 'input 8x8x3; conv 4 3x3; relu; globalavgpool; dense 3' --data "$T/renamed" --epochs 1 --batch 16 --quiet --out "$T/ren" >/dev/null 2>&1
cp "$T/ren/last.safetensors" "$T/ren.before"
mv "$T/renamed/red" "$T/renamed/scarlet"
"$CN" train --resume "$T/ren" --epochs 2 >/dev/null 2>"$T/ren.err"
check "resume after a class folder was renamed: refused (exit 1), the classes then and now named, nothing trained" \
    "[ $? -eq 1 ] && grep -qF \"renamed: its classes are now 'blue', 'green', 'scarlet'; the run was started on 'blue', 'green', 'red': --resume goes on with the classes it began with\" '$T/ren.err' && cmp -s '$T/ren/last.safetensors' '$T/ren.before'"
check "... and it did not say the run now has 2 epochs (it has not)" "! grep -q 'the run now has' '$T/ren.err'"
# checked from the listings, before any image is decoded: a file that would not decode is not what is said
printf 'not an image' >"$T/renamed/blue/zz-broken.png"
"$CN" train --resume "$T/ren" --epochs 2 >/dev/null 2>"$T/ren.err"
check "... also with a broken file in the folder: the renamed class said, not the file" \
    "[ $? -eq 1 ] && grep -q \"its classes are now 'blue', 'green', 'scarlet'\" '$T/ren.err' && ! grep -q zz-broken '$T/ren.err'"
mkdir -p "$T/other-test/purple" && cp "$T/renamed/green/$(ls "$T/renamed/green" | head -1)" "$T/other-test/purple/"
"$CN" train -e 'input 8x8x3; conv 4 3x3; relu; globalavgpool; dense 3' --data "$T/renamed" --test "$T/other-test" \
    --epochs 1 --quiet --out "$T/bad-test" >/dev/null 2>"$T/ren.err"
check "a --test folder of a class the training half lacks: said before any image is decoded, nothing written" \
    "[ $? -eq 1 ] && grep -q \"class folder 'purple' is none of the training half's 3 classes\" '$T/ren.err' && ! grep -q zz-broken '$T/ren.err' && [ ! -e '$T/bad-test' ]"
rm "$T/renamed/blue/zz-broken.png"
# resumed on a training half that gained an image: said, and the run goes on; the next resume is quiet
mv "$T/renamed/scarlet" "$T/renamed/red"
cp "$T/renamed/red/$(ls "$T/renamed/red" | head -1)" "$T/renamed/red/one-more.png"
"$CN" train --resume "$T/ren" --epochs 2 --quiet >/dev/null 2>"$T/ren.err"
check "resume after an image was added: goes on, the counts then and now said" \
    "[ $? -eq 0 ] && grep -q 'the run now has 2' '$T/ren.err' && grep -q \"note: $T/renamed (all of it) now holds $(find "$T/renamed" -name '*.png' | wc -l) training images; the run began on $(($(find "$T/renamed" -name '*.png' | wc -l) - 1))\" '$T/ren.err'"
"$CN" train --resume "$T/ren" --epochs 3 --quiet >/dev/null 2>"$T/ren.err"
check "... and the next resume, on the same images, says nothing of them" "[ $? -eq 0 ] && ! grep -q 'training images' '$T/ren.err'"


# predict FOLDER lists it as a class folder is listed: nested folders in ImageFolder's order
# ("sub" < "sub b" < "sub/deeper"), a link back up not walked round again
mkdir -p "$T/pnest/sub/deeper" "$T/pnest/sub b"
for f in x.png "sub/y.png" "sub b/z.png" "sub/deeper/q.png"; do cp "$T/colours/red/$(ls "$T/colours/red" | head -1)" "$T/pnest/$f"; done
ln -s .. "$T/pnest/sub/up"
"$CN" predict "$T/ren" "$T/pnest" --csv "$T/pnest.csv" >/dev/null 2>"$T/pnest.err"
check "predict FOLDER: nested folders in ImageFolder's order, a loop walked once" \
    "[ $? -eq 0 ] && [ \"\$(tail -n +2 '$T/pnest.csv' | cut -d, -f1 | tr -d '\"' | sed 's|.*/pnest/||' | tr '\\n' ' ')\" = 'x.png sub/y.png sub b/z.png sub/deeper/q.png ' ]"


# a folder of train/ alone is an image folder of one class, "train": refused, saying what to do
mkdir -p "$T/onlytrain" && cp -r "$T/colours" "$T/onlytrain/train"
"$CN" train -e 'input 8x8x3; dense 3' --data "$T/onlytrain" --epochs 1 --batch 4 --out "$T/ot" >/dev/null 2>"$T/ot.err"
check "train/ alone: refused, saying give train/ itself or add val/ or test/" \
    "[ $? -eq 1 ] && grep -qF \"every training image is of one class, 0 ('train'): a classifier needs images of two classes or more (a train/ folder alone is no data in halves: give train/ itself, or add val/ or test/ beside it)\" '$T/ot.err'"
"$CN" data check "$T/onlytrain" >"$T/ot.out"
check "data check of train/ alone: the same said (exit 1)" \
    "[ $? -eq 1 ] && grep -qF \"one class only ('train'): a classifier needs images of two classes or more (a train/ folder alone\" '$T/ot.out'"

finish
