#!/bin/sh
# tta.sh [EPOCHS...] — on the GPU machine, a second call when device time is left (DEVICE.md):
# SPEC (default models/fmnist-fast.cnn; SPEC="a.cnn b.cnn" for several) trained by
# models/fmnist-fast.cnn's `# recipe:` line at several epoch counts (default 8 10 12 15), in
# PRECISION (default bf16), with --device cuda; a line each: test accuracy (plain, and with the
# recipe's --tta) and training seconds (metrics.csv's epochs). SEEDS=N (default 1) trains each
# N times (--seeds: seeds 1..N) and gives the accuracy as mean +- sample std and the mean
# seconds, since one run's accuracy moves by a few tenths with the seed. For finding the
# shortest recipe that holds 94 %: one-cycle schedules follow the epoch count, so each is its
# own run. Same carry as device.sh.
cd "$(dirname "$0")/../.." || exit 1
. bench/gpu/libpath.sh # the CUDA libraries' folders
export LD_LIBRARY_PATH="build-gpu/lib:$LD_LIBRARY_PATH"
CN=${CN:-build-gpu/convnet} DATA=${DATA:-.devdata} PRECISION=${PRECISION:-bf16} SEEDS=${SEEDS:-1} T=$(mktemp -d)
SPEC=${SPEC:-models/fmnist-fast.cnn}
recipe=$(sed -n 's/^# recipe: //p' models/fmnist-fast.cnn | sed 's/--epochs [0-9]*//')
[ $# -gt 0 ] || set -- 8 10 12 15
for spec in $SPEC; do
name=$(basename "$spec" .cnn)
for e in "$@"; do
    out="$T/$name-e$e"
    # shellcheck disable=SC2086 # the recipe's words are options
    if timeout 150 "$CN" train "$spec" $recipe --epochs "$e" --seeds "$SEEDS" --precision "$PRECISION" \
        --device cuda --data "$DATA" --out "$out" >"$out.log" 2>&1; then
        if [ "$SEEDS" -gt 1 ]; then
            acc=$(sed -n 's/.*test accuracy over [0-9]* seeds: \([0-9.]* +- [0-9.]*\) %.*/\1/p' "$out.log")
            views=$(sed -n 's/.*test accuracy with --tta \([a-z-]*\) over [0-9]* seeds: \([0-9.]* +- [0-9.]*\) %.*/, \2 % with --tta \1/p' "$out.log")
            secs=$(cat "$out"/seed-*/metrics.csv | awk -F, '$1 != "epoch" { s += $7 } END { printf "%.2f", s / '"$SEEDS"' }')
            echo "$name $PRECISION $e epochs, $SEEDS seeds: $acc % test$views, $secs s of training a run"
        else
            acc=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' "$out.log")
            views=$(sed -n 's/.*test accuracy [0-9.]*%, \([0-9.]*\)% with --tta \([a-z-]*\).*/, \1 % with --tta \2/p' "$out.log")
            secs=$(awk -F, 'NR > 1 { s += $7 } END { printf "%.2f", s }' "$out/metrics.csv")
            echo "$name $PRECISION $e epochs: $acc % test$views, $secs s of training"
        fi
    else
        echo "$name $PRECISION $e epochs: FAILED ($(tail -c 300 "$out.log"))"
    fi
done
done
rm -rf "$T"
