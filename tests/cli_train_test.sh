#!/bin/sh
# cli_train_test.sh — `convnet train` killed with SIGKILL in the middle of a run and resumed
# with --resume ends with a checkpoint byte-identical to an uninterrupted run's; eval and
# predict read what train wrote. Run by CTest: tests/cli_train_test.sh /path/to/convnet
CN=${1:?usage: tests/cli_train_test.sh /path/to/convnet}
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_train.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; fi; }

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
check "no temporary files left by the kill" "[ -z \"\$(ls '$T/b' | grep -v -e '^last.safetensors$' -e '^model.safetensors$' -e '^metrics.csv$')\" ]"

"$CN" train --resume "$T/b" --quiet
check "resume exits 0" "[ $? -eq 0 ]"
check "resumed = uninterrupted, byte for byte" "cmp -s '$T/a/last.safetensors' '$T/b/last.safetensors'"
check "best checkpoints equal too" "cmp -s '$T/a/model.safetensors' '$T/b/model.safetensors'"
check "metrics.csv: a row per epoch" "[ \$(wc -l <'$T/b/metrics.csv') -eq 6 ]"

"$CN" eval "$T/b" --json >"$T/eval.json"
check "eval of the run" "grep -q '\"count\":10000' '$T/eval.json'"
"$CN" train --resume "$T/b" --epochs 9 >/dev/null 2>&1
check "--resume refuses other settings (exit 2)" "[ $? -eq 2 ]"
"$CN" eval "$T/nothing" >/dev/null 2>"$T/err"
check "eval of a missing checkpoint: exit 1 with the path" "[ $? -eq 1 ] && grep -q '$T/nothing' '$T/err'"

# a learning rate that blows up: the NaN tracer's message, exit 1, no checkpoint claimed
"$CN" train -e "$SPEC" --epochs 1 --val 0.9 --lr 1e30 --optimizer sgd --schedule constant --out "$T/nan" 2>"$T/err"
check "exploding run: exit 1" "[ $? -eq 1 ]"
check "exploding run: names the first layer with a non-finite output" "grep -q \"produced a non-finite output in the forward pass\" '$T/err'"
check "exploding run: says no checkpoint was written" "grep -q 'no checkpoint written' '$T/err'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
