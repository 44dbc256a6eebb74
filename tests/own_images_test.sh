#!/bin/sh
# own_images_test.sh — the own-images workflow of the README, end to end, on a generated image
# folder in halves (train/, val/, test/): data check, a run that validates on val/ and tests on
# test/, the run extended (--resume --epochs), fine-tuned into another number of classes with a
# frozen layer (--init-from, --freeze), stopped early on the validation loss (--patience,
# --monitor loss), and predicted on as a folder. Values are checked against what the test
# computes itself: the folder's counts, the safetensors bytes, the accuracy from predict's CSV.
# Run by CTest: tests/own_images_test.sh /path/to/convnet
CN=${1:?usage: tests/own_images_test.sh /path/to/convnet}
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_own.XXXXXX") || exit 1
. "$(dirname "$0")/check.sh"
PY=/usr/bin/python3
rows() { echo $(($(wc -l <"$1") - 1)); } # CSV rows under the header

# three colour classes, noisy enough to be hard: 40 / 10 / 12 images per class
for half in train:40:1 val:10:2 test:12:3; do
    IFS=: read -r name count seed <<EOF
$half
EOF
    $PY tests/pngwrite.py "$T/shapes/$name" red green blue --count "$count" --seed "$seed" --size 10-16 --noise 200 --bright 120
done
SPEC='input 12x12x3; conv 8 3x3 pad=1; relu; conv 8 3x3 pad=1; relu; globalavgpool; dense 3'

"$CN" data check "$T/shapes" >"$T/out" 2>&1
check "data check: the halves found, exit 0" "[ $? -eq 0 ] && grep -q 'layout: image folder in halves (train/, val/, test/)' '$T/out'"

# ---- a run on the halves: val/ validates, test/ tests ----
"$CN" train -e "$SPEC" --data "$T/shapes" --epochs 3 --batch 16 --out "$T/run" >"$T/out" 2>&1
check "train on a folder in halves: exit 0" "[ $? -eq 0 ]"
check "train says which data: 120 training, val/ 30, test/ 36 images" \
    "grep -q '^training:   $T/shapes/train, 120 images of 3 classes' '$T/out' && grep -q '^validation: $T/shapes/val, 30 images' '$T/out' && grep -q '^test:       $T/shapes/test, 36 images' '$T/out'"
# the images not 12x12, counted from their PNG headers (IHDR: width, height at bytes 16..23)
check "train says how many of the 186 images it resized, and how" "$PY - '$T/shapes' '$T/out' <<'PY'
import glob, struct, sys
n = sum(struct.unpack('>II', open(f, 'rb').read()[16:24]) != (12, 12) for f in glob.glob(sys.argv[1] + '/*/*/*.png'))
want = 'resized:    %d of the 186 images to 12x12, with antialiasing' % n
sys.exit(not (0 < n < 186 and want in open(sys.argv[2]).read().split('\\n')))
PY"
check "metrics.csv: 3 epochs; steps.csv: 7 steps each (120 // 16)" \
    "[ \$(rows '$T/run/metrics.csv') -eq 3 ] && [ \$(rows '$T/run/steps.csv') -eq 21 ]"
check "validation on val/: a loss every epoch" "! cut -d, -f4 '$T/run/metrics.csv' | grep -q nan"
"$CN" train -e "$SPEC" --data "$T/shapes" --val 0.2 --out "$T/bad" >"$T/out" 2>&1
check "--val F on a folder with val/: exit 2, nothing written" "[ $? -eq 2 ] && grep -q 'has a validation half ($T/shapes/val): --val F would hold out more' '$T/out' && [ ! -e '$T/bad' ]"

# ---- extended: 3 epochs become 5 ----
"$CN" train --resume "$T/run" --epochs 5 >"$T/out" 2>&1
check "--resume --epochs 5: exit 0, says so" "[ $? -eq 0 ] && grep -q '3 of 3 epochs done; the run now has 5' '$T/out'"
check "extended: 5 epochs in metrics.csv, 35 steps in steps.csv" \
    "[ \$(rows '$T/run/metrics.csv') -eq 5 ] && [ \$(rows '$T/run/steps.csv') -eq 35 ]"

# ---- fine-tuned into two classes, conv1 frozen ----
for half in train:40:4 test:12:5; do
    IFS=: read -r name count seed <<EOF
$half
EOF
    $PY tests/pngwrite.py "$T/two/$name" warm cool --count "$count" --seed "$seed" --size 12 --noise 200 --bright 120 --channels 0,2
done
"$CN" train --init-from "$T/run" --data "$T/two" --freeze conv1 --epochs 2 --batch 16 --out "$T/tuned" >"$T/out" 2>&1
check "--init-from: exit 0" "[ $? -eq 0 ]"
check "--init-from: a new last layer for 2 classes, said so" \
    "grep -q 'fine-tuning to 2 classes: the last layer of $T/run, 3 outputs, is made anew' '$T/out' && grep -q 'starting from $T/run: 4 of 6 tensors copied; initialised anew: dense1' '$T/out'"
# the tensors, read from the files' bytes: conv1 as the source's best checkpoint has it (frozen),
# conv2 copied then trained (so different), dense1 of 2 outputs
check "fine-tuned: conv1 frozen (the source's bytes), conv2 trained, dense1 2x8" "$PY - '$T/run/model.safetensors' '$T/tuned/model.safetensors' <<'PY'
import json, struct, sys
def tensors(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: (v['shape'], b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]]) for k, v in h.items() if k != '__metadata__'}
src, tuned = tensors(sys.argv[1]), tensors(sys.argv[2])
ok = src['conv1.weight'] == tuned['conv1.weight'] and src['conv1.bias'] == tuned['conv1.bias']
ok = ok and src['conv2.weight'][0] == tuned['conv2.weight'][0] and src['conv2.weight'][1] != tuned['conv2.weight'][1]
ok = ok and tuned['dense1.weight'][0] == [2, 8] and src['dense1.weight'][0] == [3, 8]
sys.exit(not ok)
PY"
# killed in its second epoch (4 steps an epoch: 72 images // 16) and resumed: the same bytes
CONVNET_FAULT=step:7 "$CN" train --init-from "$T/run" --data "$T/two" --freeze conv1 --epochs 2 --batch 16 --out "$T/killed" \
    >/dev/null 2>&1
st=$?
"$CN" train --resume "$T/killed" --quiet >/dev/null 2>&1
check "fine-tuned run killed in epoch 2 (status $st) and resumed: identical checkpoints and steps.csv" \
    "[ $st -eq 137 ] && cmp -s '$T/killed/last.safetensors' '$T/tuned/last.safetensors' && cmp -s '$T/killed/steps.csv' '$T/tuned/steps.csv'"
"$CN" train --init-from "$T/run" --data "$T/two" --freeze conv3 --out "$T/bad" >"$T/out" 2>&1
check "--freeze of a layer that is not there: exit 2, did you mean" "[ $? -eq 2 ] && grep -q \"no layer named 'conv3' (did you mean 'conv1'?)\" '$T/out'"
"$CN" train --init-from "$T/run" -e 'input 12x12x3; conv 4 5x5; globalavgpool; dense 2' --data "$T/two" --out "$T/bad" >"$T/out" 2>&1
check "--init-from a run of another net: exit 1, said so" "[ $? -eq 1 ] && grep -q 'not a run of a net like this one' '$T/out'"

"$CN" train --init-from "$T/run" --data fashion-mnist --out "$T/bad" >"$T/out" 2>&1
check "--init-from a 12x12x3 net on 28x28x1 IDX images: exit 1, said so, nothing written" \
    "[ $? -eq 1 ] && grep -q 'the images are 28x28x1 but the net.s input is 12x12x3' '$T/out' && [ ! -e '$T/bad' ]"

# ---- early stopping on the validation loss: a learning rate too small to change a float weight
# keeps the loss where epoch 1 left it, so --patience 2 stops after epoch 3 of 20 ----
"$CN" train -e "$SPEC" --data "$T/shapes" --epochs 20 --batch 16 --lr 1e-12 --optimizer sgd --schedule constant \
    --patience 2 --monitor loss --out "$T/early" >"$T/out" 2>&1
check "--patience 2 --monitor loss: stopped after epoch 3, said so" \
    "[ $? -eq 0 ] && [ \$(rows '$T/early/metrics.csv') -eq 3 ] && grep -q 'stopped early: 2 epochs without a better validation loss than epoch 1' '$T/out'"
# eval's top-k accuracy (src/train/trainer.c ranks the net's outputs) against predict's lists of
# the 3 classes, most likely first (src/infer/model.c, on probabilities), for a linear net of the
# mean colour as initialised (seed 4), whose true classes come first, second and third
"$CN" train -e 'input 12x12x3; globalavgpool; dense 3' --data "$T/shapes" --epochs 1 --batch 16 --lr 1e-9 --seed 4 \
    --quiet --out "$T/linear" >/dev/null 2>&1
"$CN" eval "$T/linear" --json >"$T/eval.json" 2>/dev/null
"$CN" predict "$T/linear" "$T/shapes/test" --top 3 --json >"$T/pred.json" 2>/dev/null
check "eval --json's top_accuracy: the share of test/ images whose class is among predict's k first" "$PY - '$T/eval.json' '$T/pred.json' <<'PY'
import json, os, sys
e, p = (json.load(open(f)) for f in sys.argv[1:3])
rank = [[q['name'] for q in r['predictions']].index(os.path.basename(os.path.dirname(r['image']))) for r in p]
want = [sum(r <= k for r in rank) / len(rank) for k in range(3)]
ok = len(p) == e['count'] == 36 and all(abs(a - b) < 1e-6 for a, b in zip(e['top_accuracy'], want))
sys.exit(not (ok and len(e['top_accuracy']) == 3 and 0 < want[0] < want[1] < 1 and e['top_accuracy'][0] == e['accuracy']))
PY"
check "eval --json's most_confused: the largest cells off the confusion matrix's diagonal, most first" "$PY - '$T/eval.json' <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
m = e['confusion']
cells = sorted((-m[t][p], t, p) for t in range(3) for p in range(3) if t != p and m[t][p] > 0)[:5]
want = [{'true': t, 'predicted': p, 'count': -n} for n, t, p in cells]
sys.exit(not (e['most_confused'] == want and len(want) >= 2))
PY"
"$CN" eval "$T/linear" --brightness 0 --json >"$T/black.json" 2>/dev/null
check "eval --json's most_confused, every image black (one prediction): equal counts by true class" "$PY - '$T/black.json' <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
m, p = e['most_confused'], next(c['class'] for c in e['per_class'] if c['predicted'])
others = [t for t in range(3) if t != p]
sys.exit(not (m == [{'true': t, 'predicted': p, 'count': 12} for t in others] and e['per_class'][p]['predicted'] == 36))
PY"
"$CN" eval "$T/linear" >"$T/out" 2>&1
check "eval: top-2 accuracy said (of 3 classes; top-3 would be all)" \
    "grep -q '^top-2 accuracy [0-9.]*% (the true class among the k most likely)$' '$T/out'"
check "eval: the most frequent mistake said first, with its share of its class" "$PY - '$T/eval.json' '$T/out' <<'PY'
import json, sys
e, text = json.load(open(sys.argv[1])), open(sys.argv[2]).read().split('\\n')
names = [c['name'] for c in e['per_class']]
first = e['most_confused'][0]
t, p, n = first['true'], first['predicted'], first['count']
want = '%8d  %s -> %s (%.2f%% of the %s images)' % (n, names[t], names[p], 100 * n / e['per_class'][t]['count'], names[t])
i = text.index('the most frequent mistakes (true class -> predicted class)')
sys.exit(text[i + 1] != want)
PY"

# ---- predict on a folder: the accuracy from its CSV is eval's ----
"$CN" predict "$T/tuned" "$T/two/test" --csv "$T/pred.csv" >"$T/out" 2>&1
check "predict FOLDER: exit 0, names the model and the images" "[ $? -eq 0 ] && grep -q '^$T/tuned: 24 images from $T/two/test' '$T/out'"
"$CN" eval "$T/tuned" --json >"$T/eval.json" 2>/dev/null
# csv_is_eval CSV JSON N: predict's CSV has N rows, and their accuracy (class name = folder name)
# is eval --json's, of N images
csv_is_eval() {
    $PY - "$1" "$2" "$3" <<'PY'
import csv, json, os, sys
rows = list(csv.DictReader(open(sys.argv[1])))
right = sum(r['name'] == os.path.basename(os.path.dirname(r['image'])) for r in rows)
e, n = json.load(open(sys.argv[2])), int(sys.argv[3])
sys.exit(not (len(rows) == n and e['count'] == n and abs(right / n - e['accuracy']) < 1e-6))
PY
}
check "predict's CSV: 24 rows, their accuracy (class name = folder name) is eval's on test/" "csv_is_eval '$T/pred.csv' '$T/eval.json' 24"
# the same with test-time augmentation: predict makes the views from its inputs (src/infer/model.c),
# eval from the data set's images (src/data/batch.c)
"$CN" predict "$T/tuned" "$T/two/test" --tta flip-shift --csv "$T/pred.csv" >"$T/out" 2>&1
check "predict --tta flip-shift: exit 0, says so" \
    "[ $? -eq 0 ] && grep -q '24 images from $T/two/test, each in 10 views: itself, its mirror image' '$T/out'"
"$CN" eval "$T/tuned" --tta flip-shift --json >"$T/eval.json" 2>/dev/null
check "predict --tta flip-shift's CSV: its accuracy and mean cross-entropy are eval --tta flip-shift's" \
    "$PY - '$T/pred.csv' '$T/eval.json' <<'PY'
import csv, json, math, os, sys
rows = list(csv.DictReader(open(sys.argv[1])))
right = sum(r['name'] == os.path.basename(os.path.dirname(r['image'])) for r in rows)
e = json.load(open(sys.argv[2]))
ok = len(rows) == 24 and e['tta'] == 'flip-shift' and abs(right / 24 - e['accuracy']) < 1e-6
# every image right (these classes are easy): the top class's probability is the true class's
loss = -sum(math.log(float(r['probability'])) for r in rows) / 24
sys.exit(not (ok and (right < 24 or abs(loss - e['loss']) < 2e-5)))
PY"
# images of 10 to 16 pixels for a 12x12 net: each one not 12x12 said resized, with its size
# (read here from the PNG's header), and --json gives every image's
"$CN" predict "$T/run" "$T/shapes/test" >"$T/out" 2>&1
check "predict FOLDER: the images resized are said, with their sizes from their PNG headers" "$PY - '$T/out' <<'PY'
import re, struct, sys
lines = open(sys.argv[1]).read().split('\\n')
seen = resized = 0
for i, l in enumerate(lines):
    if not l.endswith('.png'):
        continue
    w, h = struct.unpack('>II', open(l, 'rb').read()[16:24])
    said = lines[i + 1].startswith('  (the image:')
    how = ' with antialiasing' if h > 12 or w > 12 else ''  # how, where shrunk (enlarging: bilinear either way)
    want = '  (the image: %dx%d (HxW) colour; resized to 12x12%s, as the net\'s input)' % (h, w, how)
    if said != ((h, w) != (12, 12)) or (said and lines[i + 1] != want):
        sys.exit('%s: %dx%d, line %r' % (l, h, w, lines[i + 1]))
    seen, resized = seen + 1, resized + said
sys.exit(seen != 36 or not resized)
PY"
"$CN" predict "$T/run" "$T/shapes/test" --json >"$T/pred.json" 2>/dev/null
check "predict --json: each image's source size and channels, as its PNG header says" "$PY - '$T/pred.json' <<'PY'
import json, struct, sys
d = json.load(open(sys.argv[1]))
ok = len(d) == 36
for r in d:
    w, h = struct.unpack('>II', open(r['image'], 'rb').read()[16:24])
    ok = ok and r['source'] == {'h': h, 'w': w, 'channels': 3}
sys.exit(not ok)
PY"
"$CN" eval "$T/tuned" >"$T/out" 2>&1
check "eval names the test half it used" "grep -q '^$T/tuned on $T/two/test: 24 images' '$T/out'"

# ---- resizing: the run's choice kept by its checkpoints, and followed by predict, eval and a
# resumed run; a run of an older convnet (no resize key: bilinear) stays bilinear ----
check "a run's checkpoints keep resize = antialias (the default)" \
    "grep -aq '\"resize\":\"antialias\"' '$T/run/model.safetensors' && grep -aq '\"resize\":\"antialias\"' '$T/run/last.safetensors'"
# an older convnet's run: the same files without the key (the metadata checksum made again)
cp -r "$T/run" "$T/old"
for f in model last; do
    $PY - "$T/old/$f.safetensors" <<'PY'
import json, struct, sys, zlib
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
m = h['__metadata__']
del m['resize']
crc = 0
for k in sorted(k for k in m if not k.startswith('crc32.') and k != 'meta_crc32'):
    crc = zlib.crc32(k.encode() + b'\0' + m[k].encode() + b'\0', crc)
m['meta_crc32'] = '%08x' % crc
text = json.dumps(h, separators=(',', ':')).encode()
text += b' ' * (-len(text) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(text)) + text + b[8 + n:])
PY
done
"$CN" predict "$T/old" "$T/shapes/test" --json >"$T/old.json" 2>"$T/out"
# (enlarging is bilinear either way, to a float's rounding: only an image wider or taller than
# 12 tells the two apart)
check "predict of a checkpoint without resize: bilinear; every image shrunk otherwise, the rest as before" \
    "$PY - '$T/pred.json' '$T/old.json' <<'PY'
import json, sys
new, old = (json.load(open(f)) for f in sys.argv[1:3])
ok, shrunk = len(new) == len(old) == 36, 0
for a, b in zip(new, old):
    p = {q['class']: q['probability'] for q in a['predictions']}
    d = max(abs(p[q['class']] - q['probability']) for q in b['predictions'])
    if a['source']['h'] > 12 or a['source']['w'] > 12:
        ok, shrunk = ok and d > 0, shrunk + 1
    else:
        ok = ok and d <= 2e-6
sys.exit(not (ok and 0 < shrunk < 36))
PY"
"$CN" predict "$T/old" "$T/shapes/test/blue" >"$T/out" 2>&1
check "predict with it says so of an image it shrinks" "grep -q 'resized to 12x12 bilinearly (no antialiasing, as in its training), as the net.s input)' '$T/out'"
"$CN" predict "$T/old" "$T/shapes/test" --csv "$T/old.csv" >/dev/null 2>&1
"$CN" eval "$T/old" --json >"$T/eval.json" 2>/dev/null
check "eval of it resizes as predict does: the accuracy of predict's CSV" "csv_is_eval '$T/old.csv' '$T/eval.json' 36"
"$CN" train --resume "$T/old" --epochs 6 --quiet >"$T/out" 2>&1
check "a resumed run of an older convnet goes on bilinear, and now says so" \
    "[ $? -eq 0 ] && grep -aq '\"resize\":\"bilinear\"' '$T/old/last.safetensors'"
"$CN" train -e "$SPEC" --data "$T/shapes" --resize bicubic --out "$T/bad" >"$T/out" 2>&1
check "--resize bicubic: exit 2, the choices named, nothing written" \
    "[ $? -eq 2 ] && grep -q \"unknown 'bicubic' (bilinear, antialias or draft)\" '$T/out' && [ ! -e '$T/bad' ]"
# --resize draft: JPEGs 8x the input (150x200 for 12x12) decoded at 1/2 to 1/8 first (tests/test_images.c
# checks the pixels); kept by the checkpoint, and predict reports the file's own size
$PY - "$T/big" <<'PY'
import os, random, sys
from PIL import Image
random.seed(3)
for k, name in enumerate(["red", "green"]):
    os.makedirs(f"{sys.argv[1]}/{name}")
    for i in range(6):
        im = Image.new("RGB", (200, 150), tuple(255 if c == k else random.randint(0, 90) for c in range(3)))
        im.save(f"{sys.argv[1]}/{name}/{i}.jpg", quality=95)
PY
"$CN" train -e "$SPEC" --data "$T/big" --epochs 1 --batch 4 --resize draft --out "$T/draft" >"$T/out" 2>&1
check "--resize draft: trained, kept by the checkpoint, the drafts counted" \
    "[ $? -eq 0 ] && grep -aq '\"resize\":\"draft\"' '$T/draft/model.safetensors' && grep -qx 'resized:    12 of the 12 images to 12x12, with antialiasing (12 JPEGs decoded at 1/2 to 1/8 first: --resize draft)' '$T/out'"
"$CN" predict "$T/draft" "$T/big/red/0.jpg" >"$T/out" 2>&1
check "predict of a draft run: the file's size, the draft said" \
    "grep -q '(the image: 150x200 (HxW) colour; resized to 12x12 with antialiasing (--resize draft: a JPEG 8x that size decoded smaller first), as the net.s input)' '$T/out'"
finish
