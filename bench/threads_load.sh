#!/bin/sh
# Threads on a busy machine (issue 12): a short training run of fmnist-small (1 epoch on the first
# N Fashion-MNIST training images, 10% of them for validation, and the first N/6 test images)
# while other CPU-bound processes (`yes >/dev/null`, one and then one per core: HOGS) run beside
# it, then on the idle machine, with
#   default    what convnet does by itself: one thread per core, GOMP_SPINCOUNT=1000 (cli/main.c)
#   1thread    OMP_NUM_THREADS=1, 2threads: OMP_NUM_THREADS=2 (what --threads does; --threads
#              would also go into train_args in the checkpoint, and so change its bytes)
#   old        GOMP_SPINCOUNT=300000: libgomp's own spin, convnet's default before
#   passive    OMP_WAIT_POLICY=passive: no spinning at all
# Every setting runs REPS times, interleaved. The tables give each one's median time, its ratio to
# the lowest median of the table, and every run's time (another process's timing decides what a
# spinning thread costs, so runs spread); then whether every run's model.safetensors is
# byte-identical (it must be: the same bits on any number of threads). Exit status 1 if a run
# failed or the bits differ; the 1.5x target is reported, MET or MISSED, and leaves the status.
# Usage: bench/threads_load.sh [CONVNET]   (default build/convnet; REPS=3 N=6000 HOGS="1 nproc")
# About 3.5 minutes on 2 cores.
set -eu
CN=${1:-build/convnet}
REPS=${REPS:-3}
N=${N:-6000}
HOGS=${HOGS:-"1 $(nproc)"}
FMNIST=/usr/share/datasets/fashion-mnist
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_threads.XXXXXX")
hogs=""
trap 'for p in $hogs; do kill $p 2>/dev/null || true; done; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

# the subset: the first N training and N/6 test images, IDX files as Debian's (uncompressed)
/usr/bin/python3 - "$FMNIST" "$T/data" "$N" <<'PY'
import gzip, os, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(dst)
for half, count in (("train", n), ("t10k", n // 6)):
    for kind, head in (("images-idx3", 16), ("labels-idx1", 8)):
        b = gzip.open(f"{src}/{half}-{kind}-ubyte.gz").read()
        item = 784 if head == 16 else 1
        out = b[:4] + struct.pack(">I", count) + b[8:head] + b[head:head + count * item]
        open(f"{dst}/{half}-{kind}-ubyte", "wb").write(out)
PY

# run NAME [VAR=VALUE ...]: one training run with only the given OpenMP variables set; appends
# "NAME SECONDS" to $T/times
run() {
    name=$1
    shift
    s=$(date +%s.%N)
    if ! env -u OMP_NUM_THREADS -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$@" "$CN" train models/fmnist-small.cnn \
        --data "$T/data" --epochs 1 --quiet --out "$T/run-$name-$rep" >"$T/log" 2>&1; then
        echo "bench/threads_load.sh: $name failed:" >&2
        cat "$T/log" >&2
        exit 1
    fi
    e=$(date +%s.%N)
    echo "$name $(awk "BEGIN { print $e - $s }")" >>"$T/times"
}

# block LABEL PREFIX NAME...: the table of the settings PREFIX-NAME (median, its ratio to the lowest
# median, every run); then, under load, how far the default is from the best
block() {
    label=$1 prefix=$2
    shift 2
    echo "$label:"
    printf "  %-9s %7s %7s   %s\n" setting median "x best" "each run (s)"
    for name in "$@"; do
        grep "^$prefix-$name " "$T/times" | cut -d' ' -f2 | sort -n | awk -v name="$name" '
            { t[NR] = $1; all = all sprintf(" %.1f", $1) }
            END { print name, NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2, all }'
    done >"$T/medians"
    awk 'NR == FNR { if (!lo || $2 < lo) lo = $2; next }
         { all = $0; sub(/^[^ ]+ [^ ]+ /, "", all); printf "  %-9s %7.1f %7.2f  %s\n", $1, $2, $2 / lo, all }
         END { if (prefix != "idle") printf "  default: %.2fx the best (target: within 1.5x): %s\n", d / lo, d / lo <= 1.5 ? "MET" : "MISSED" }
         $1 == "default" { d = $2 }' prefix="$prefix" "$T/medians" "$T/medians"
}

echo "convnet train models/fmnist-small.cnn --epochs 1 on $N Fashion-MNIST images, $(nproc) cores, $REPS runs each"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$T/times"
for h in $HOGS; do
    i=0
    while [ $i -lt "$h" ]; do
        yes >/dev/null &
        hogs="$hogs $!"
        i=$((i + 1))
    done
    rep=1
    while [ "$rep" -le "$REPS" ]; do
        run "busy$h-default"
        run "busy$h-1thread" OMP_NUM_THREADS=1
        run "busy$h-2threads" OMP_NUM_THREADS=2
        run "busy$h-old" GOMP_SPINCOUNT=300000
        run "busy$h-passive" OMP_WAIT_POLICY=passive
        rep=$((rep + 1))
    done
    for p in $hogs; do kill "$p"; done
    hogs=""
done
rep=1
while [ "$rep" -le "$REPS" ]; do
    run idle-default
    run idle-1thread OMP_NUM_THREADS=1
    run idle-old GOMP_SPINCOUNT=300000
    rep=$((rep + 1))
done

for h in $HOGS; do
    echo
    block "with $h other CPU-bound process(es) (yes >/dev/null)" "busy$h" default 1thread 2threads old passive
done
echo
block "idle" idle default 1thread old

first=""
runs=0
same=yes
for f in "$T"/run-*/model.safetensors; do
    runs=$((runs + 1))
    if [ -z "$first" ]; then first=$f; elif ! cmp -s "$first" "$f"; then same=no; echo "differs: $f" >&2; fi
done
echo
if [ $same = yes ]; then echo "model.safetensors: byte-identical in all $runs runs"; else echo "model.safetensors: NOT identical"; fi
[ $same = yes ]
