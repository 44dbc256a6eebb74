#!/bin/sh
# cli_crash_test.sh — nothing lost on a crash, one run per folder. The fault-injection switch
# (CONVNET_FAULT=WHERE[:N], src/core/fault.c) kills `convnet train` with SIGKILL at every write
# point of a run, and at training steps in the first and the last epoch, for the default data
# (Fashion-MNIST) and for an image folder; `--resume` then ends with files byte-identical to an
# uninterrupted run's (a run killed before its first epoch ended starts again and says so), and
# leaves no temporary file. A kill during a resume is resumed too. Then the folder lock, refused
# and replaced folders, and checkpoints of other runs.
# Run by CTest: tests/cli_crash_test.sh /path/to/convnet
CN=${1:?usage: tests/cli_crash_test.sh /path/to/convnet}
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_crash.XXXXXX") || exit 1
. "$(dirname "$0")/check.sh"

SPEC='input 12x12x3; conv 4 3x3 pad=1; relu; maxpool 2x2; dropout keep=0.9; dense 3'
FSPEC='input 28x28x1; conv 2 3x3 stride=2; relu; dropout keep=0.9; dense 10'

# an image folder of three colour classes
/usr/bin/python3 tests/pngwrite.py "$T/colours" red green blue --count 32 --seed 2 --size 8-16 --noise 90 --bright 140

# the two data kinds: spec, settings, and the steps of one epoch
run_folder() { "$CN" train -e "$SPEC" --data "$T/colours" --epochs 2 --batch 8 --val 0.25 --seed 5 --flip --quiet "$@"; }
run_default() { "$CN" train -e "$FSPEC" --epochs 2 --batch 100 --val 0.9 --seed 7 --crop 1 --quiet "$@"; }
steps_folder=9   # 72 training images / 8
steps_default=60 # 6000 / 100

# the files of a run, byte for byte (metrics.csv without its seconds column)
same_run() {
    for f in last.safetensors model.safetensors run.json steps.csv gradients.csv; do cmp -s "$1/$f" "$2/$f" || return 1; done
    cut -d, -f1-6 "$1/metrics.csv" >"$T/m1" && cut -d, -f1-6 "$2/metrics.csv" >"$T/m2" && cmp -s "$T/m1" "$T/m2"
}
no_temps() { [ -z "$(ls -a "$1" | grep '\.tmp\.')" ]; }

for kind in folder default; do
    run_$kind --out "$T/$kind-ref" >/dev/null
    check "$kind: uninterrupted run" "[ $? -eq 0 ] && [ -f '$T/$kind-ref/last.safetensors' ]"
    eval "steps=\$steps_$kind"
    # WHERE:N: every write point of the first epoch and of the last, steps in both, the report;
    # the default data (70,000 images to load a run, slow under ASan) takes a step in each epoch,
    # the first checkpoint, the live report after epoch 1 and the final one (after the test accuracy)
    points="step:3 last.safetensors:rename:1 step:$((steps + 2)) report.html:rename:1 report.html:rename:3"
    [ $kind = folder ] && points="$points run.json:renamed metrics.csv:write:1 metrics.csv:rename:1
            metrics.csv:write:2 metrics.csv:rename:2 metrics.csv:renamed:2 steps.csv:write:2 steps.csv:renamed:2
            gradients.csv:write:1 gradients.csv:rename:2 gradients.csv:renamed:2
            model.safetensors:write:1
            model.safetensors:rename:1 model.safetensors:renamed:1 last.safetensors:write:1
            last.safetensors:renamed:1 metrics.csv:rename:3 last.safetensors:write:2 last.safetensors:rename:2
            last.safetensors:renamed:2"
    for point in $points; do
        d="$T/$kind-$(echo "$point" | tr ':' '-')"
        CONVNET_FAULT=$point run_$kind --out "$d" >/dev/null 2>&1
        st=$?
        "$CN" train --resume "$d" --quiet >/dev/null 2>"$T/err"
        rs=$?
        note=""
        if grep -q "starts again from the beginning" "$T/err"; then note=" (started again, said so)"; fi
        check "$kind: killed at $point (status $st), resumed$note: identical files, no temporaries" \
            "[ $st -eq 137 ] && [ $rs -eq 0 ] && same_run '$T/$kind-ref' '$d' && no_temps '$d'"
    done
    # a kill before run.json exists: nothing to resume, said so; the folder takes a new run
    d="$T/$kind-early"
    CONVNET_FAULT=run.json:rename run_$kind --out "$d" >/dev/null 2>&1
    st=$?
    "$CN" train --resume "$d" 2>"$T/err"
    rs=$?
    check "$kind: killed while writing run.json (status $st): --resume says there is nothing to resume" \
        "[ $st -eq 137 ] && [ $rs -eq 1 ] && grep -q 'nothing to resume' '$T/err'"
    run_$kind --out "$d" >/dev/null
    check "$kind: ... and the folder takes the run again: identical files, no temporaries" \
        "[ $? -eq 0 ] && same_run '$T/$kind-ref' '$d' && no_temps '$d'"
    # kills during resumes: in the last epoch, then during the resume's rewrite of metrics.csv,
    # then at its first step
    [ $kind = folder ] || continue
    d="$T/$kind-twice"
    CONVNET_FAULT=step:$((steps + 3)) run_$kind --out "$d" >/dev/null 2>&1
    s1=$?
    CONVNET_FAULT=metrics.csv:rename:1 "$CN" train --resume "$d" --quiet >/dev/null 2>&1
    s2=$?
    CONVNET_FAULT=step:1 "$CN" train --resume "$d" --quiet >/dev/null 2>&1
    s3=$?
    "$CN" train --resume "$d" --quiet >/dev/null 2>&1
    check "$kind: killed, then killed twice while resuming ($s1 $s2 $s3), resumed: identical files" \
        "[ $? -eq 0 ] && [ $s1$s2$s3 = 137137137 ] && same_run '$T/$kind-ref' '$d' && no_temps '$d'"
done

# ---- one run per folder ----
d="$T/locked"
CONVNET_FAULT=step:2 CONVNET_FAULT_SIGNAL=STOP "$CN" train -e "$SPEC" --data "$T/colours" --epochs 2 --batch 8 \
    --val 0.25 --seed 5 --flip --quiet --out "$d" >/dev/null 2>&1 &
pid=$!
i=0 # until it stops itself at its second step, holding the lock
while [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" != T ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
run_folder --out "$d" 2>"$T/err"
check "a second run in a folder in use: exit 1, names the other process" \
    "[ $? -eq 1 ] && grep -q 'in use by another convnet process (pid $pid)' '$T/err'"
"$CN" train --resume "$d" 2>"$T/err"
check "... and so does --resume" "[ $? -eq 1 ] && grep -q 'in use by another convnet process' '$T/err'"
kill -9 $pid
wait $pid 2>/dev/null
"$CN" train --resume "$d" --quiet >/dev/null 2>&1
check "the holder killed: the lock is gone with it, and the run resumes" "[ $? -eq 0 ] && same_run '$T/folder-ref' '$d'"

cp -r "$T/folder-ref" "$T/old"
run_default --out "$T/old" 2>"$T/err"
check "a new run in a folder holding another: exit 1, says how to continue or replace" \
    "[ $? -eq 1 ] && grep -q 'holds another run' '$T/err' && grep -q -- '--replace' '$T/err'"
check "... and the old run's files are untouched" "same_run '$T/folder-ref' '$T/old'"
"$CN" train -e "$SPEC" --data "$T/colours" --epochs 1 --batch 8 --lr 1e30 --optimizer sgd --schedule constant \
    --out "$T/old" --replace 2>"$T/err"
check "--replace, then a NaN in the first epoch: no checkpoint claimed, the old one is gone" \
    "[ $? -eq 1 ] && grep -q 'no checkpoint written' '$T/err' && ! grep -q 'last good' '$T/err' && [ ! -f '$T/old/last.safetensors' ]"
run_folder --out "$T/old" --replace >/dev/null
check "--replace: the new run, identical to a run in a fresh folder" "[ $? -eq 0 ] && same_run '$T/folder-ref' '$T/old'"
"$CN" train --resume "$T/nothing-here" 2>"$T/err"
check "--resume of a missing folder: exit 1, creates nothing" "[ $? -eq 1 ] && [ ! -e '$T/nothing-here' ]"

# ---- data checked before the first step ----
mkdir -p "$T/half"
ln -s /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz "$T/half/"
"$CN" train -e "$FSPEC" --data "$T/half" --epochs 1 --val 0.9 --out "$T/half-run" >"$T/out" 2>"$T/err"
check "no test half: refused before training (no epoch row, no folder made), naming the missing file" \
    "[ $? -eq 1 ] && grep -q 't10k-images-idx3-ubyte' '$T/err' && ! grep -q '^ *1 ' '$T/out' && [ ! -e '$T/half-run' ]"
/usr/bin/python3 - "$T/half" <<'PY'
import gzip, struct, sys
n, h, w = 20, 14, 14  # a test half of 14x14 images beside 28x28 training images
with gzip.open(f"{sys.argv[1]}/t10k-images-idx3-ubyte.gz", "wb") as f:
    f.write(struct.pack(">IIII", 0x803, n, h, w) + bytes(n * h * w))
with gzip.open(f"{sys.argv[1]}/t10k-labels-idx1-ubyte.gz", "wb") as f:
    f.write(struct.pack(">II", 0x801, n) + bytes(n))
PY
"$CN" train -e "$FSPEC" --data "$T/half" --epochs 1 --val 0.9 --out "$T/half-run" >"$T/out" 2>"$T/err"
check "a test half of other images: refused before training" \
    "[ $? -eq 1 ] && grep -q 'the test images are 14x14x1, the training images 28x28x1' '$T/err' && [ ! -e '$T/half-run' ]"

# ---- names from files are not trusted ----
mkdir -p "$T/esc"
cp -r "$T/colours/red" "$T/esc/red"
cp -r "$T/colours/blue" "$T/esc/$(printf 'blue\033[31m')"
"$CN" train -e "$SPEC" --data "$T/esc" --epochs 1 --out "$T/esc-run" 2>"$T/err"
check "a class folder named with an escape code: refused before training, the name escaped in the message" \
    "[ $? -eq 1 ] && grep -qF 'blue\\x1b[31m' '$T/err' && ! grep -q \"\$(printf '\\033')\" '$T/err'"
"$CN" data check "$T/esc" >"$T/out" 2>&1
check "data check lists it, escaped; no raw escape on the terminal" \
    "grep -qF 'blue\\x1b[31m' '$T/out' && ! grep -q \"\$(printf '\\033')\" '$T/out'"

finish
