#!/bin/sh
# Learning quality (issue 4): fmnist-small with the default recipe of `convnet train` (10 epochs,
# SGD Nesterov, one-cycle to lr 0.05, weight decay 5e-4, batch 64, 10% validation), 10 seeds,
# test accuracy of each run's best checkpoint, mean +- sample std. Two processes of one thread
# each (seeds 1-5 and 6-10) keep both cores busy; each run is the same, bit for bit, as
# `convnet train models/fmnist-small.cnn --seed S` would give on any number of threads.
# Prints every seed's accuracy, the mean +- std and the wall time.
# Usage: bench/fmnist_seeds.sh [CONVNET] [OUT]   (defaults: build/convnet, runs/bench-seeds)
set -eu
CN=${1:-build/convnet}
OUT=${2:-runs/bench-seeds}
mkdir -p "$OUT"
start=$(date +%s)
"$CN" train models/fmnist-small.cnn --seed 1 --seeds 5 --out "$OUT/a" --quiet --threads 1 >"$OUT/a.log" 2>&1 &
a=$!
"$CN" train models/fmnist-small.cnn --seed 6 --seeds 5 --out "$OUT/b" --quiet --threads 1 >"$OUT/b.log" 2>&1 &
b=$!
wait $a
wait $b
end=$(date +%s)
cat "$OUT/a.log" "$OUT/b.log"
# the ten values from the two "runs:" lines
/usr/bin/python3 - "$OUT/a.log" "$OUT/b.log" "$((end - start))" <<'PY'
import statistics, sys
vals = []
for path in sys.argv[1:3]:
    for line in open(path):
        if line.startswith("runs:"):
            vals += [float(v) for v in line.split()[1:]]
print("seeds 1-10 test accuracy (%):", " ".join(f"{v:.2f}" for v in vals))
print(f"mean {statistics.mean(vals):.2f} +- {statistics.stdev(vals):.2f} (sample std), {len(vals)} runs, "
      f"wall time {int(sys.argv[3]) // 60} min {int(sys.argv[3]) % 60} s")
PY
