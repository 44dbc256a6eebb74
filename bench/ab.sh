#!/bin/sh
# ab.sh — two convnet binaries side by side on `make bench`'s workloads (bench/run.py's
# WORKLOADS), for a change that must not cost speed (a refactor: "within noise"). Each round
# runs every workload on A then B (then B then A in the next round, so drift hits both alike);
# prints each one's median images/s over the rounds and the ratio B/A.
# Usage: sh bench/ab.sh OLD_CONVNET NEW_CONVNET [ROUNDS (default 5)] [SECONDS per run (default 2)]
A=${1:?usage: sh bench/ab.sh OLD_CONVNET NEW_CONVNET [ROUNDS] [SECONDS]}
B=${2:?usage: sh bench/ab.sh OLD_CONVNET NEW_CONVNET [ROUNDS] [SECONDS]}
ROUNDS=${3:-5}
SECONDS_PER_RUN=${4:-2}
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_ab.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

ips() { # binary model mode batch -> images/s
    "$1" bench "models/$2.cnn" "--$3" --batch "$4" --seconds "$SECONDS_PER_RUN" --json |
        /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["images_per_s"])'
}

WORKLOADS="fmnist-small:train:64 fmnist-small:infer:64 fmnist-small:infer:1 lenet5:train:64 resnet18-cifar:train:32"
r=1
while [ $r -le "$ROUNDS" ]; do
    for w in $WORKLOADS; do
        IFS=: read -r model mode batch <<EOF
$w
EOF
        if [ $((r % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
        for side in $order; do
            eval "bin=\$$side"
            ips "$bin" "$model" "$mode" "$batch" >>"$T/$side-$model-$mode-$batch" || exit 1
        done
    done
    r=$((r + 1))
done

echo "A: $A"
echo "B: $B"
printf '%-28s %12s %12s %8s\n' workload "A img/s" "B img/s" "B/A"
for w in $WORKLOADS; do
    IFS=: read -r model mode batch <<EOF
$w
EOF
    f="$model-$mode-$batch"
    /usr/bin/python3 - "$w" "$T/A-$f" "$T/B-$f" <<'PY'
import statistics, sys
a = statistics.median(float(x) for x in open(sys.argv[2]))
b = statistics.median(float(x) for x in open(sys.argv[3]))
print(f"{sys.argv[1]:<28} {a:12.1f} {b:12.1f} {b / a:8.3f}")
PY
done
