#!/bin/sh
# mpi_test.sh — data-parallel training under mpirun (issue 17): 1, 2 and 3 processes give the
# weights of one process with the same shards, byte for byte (per-shard batch norm too); a
# process killed with SIGKILL ends the job within seconds and --resume (on another number of
# processes) ends with the uninterrupted run's checkpoint; processes that disagree stop at the
# start. Run by CTest where MPI was found: tests/mpi_test.sh /path/to/convnet
CN=${1:?usage: tests/mpi_test.sh /path/to/convnet}
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_mpi.XXXXXX") || exit 1
. "$(dirname "$0")/check.sh"
# one thread per process: two cores shared by up to three processes
export OMP_NUM_THREADS=1
MPIRUN="mpirun --allow-run-as-root --oversubscribe --mca btl self,vader"

# batch norm (whole-batch statistics), dropout (per-shard draws), crop and flip (draws for the
# whole batch on every process), 549,000 weights of dense 700 in 3 buckets of the gradient sum;
# 6 shards of 32 images: 6,6,5,5,5,5 rows
SPEC='input 28x28x1; conv 4 3x3 pad=1; batchnorm; relu; maxpool 2x2; dropout keep=0.9; dense 700; relu; dense 10'
SMALL='input 28x28x1; conv 4 3x3 pad=1; batchnorm; relu; maxpool 2x2; dense 10'
set -- --epochs 1 --val 0.9 --batch 32 --seed 3 --crop 1 --flip --shards 6 --quiet

"$CN" train -e "$SPEC" "$@" --out "$T/one" >"$T/one.log" 2>&1
check "one process, 6 shards" "[ -f '$T/one/last.safetensors' ]"
for n in 1 2 3; do
    $MPIRUN -np $n "$CN" train -e "$SPEC" "$@" --out "$T/np$n" >"$T/np$n.log" 2>&1
    check "mpirun -np $n: the same checkpoint as one process, byte for byte" \
        "cmp -s '$T/one/last.safetensors' '$T/np$n/last.safetensors' && cmp -s '$T/one/model.safetensors' '$T/np$n/model.safetensors'"
    check "mpirun -np $n: the same losses, step by step" "cmp -s '$T/one/steps.csv' '$T/np$n/steps.csv'"
    check "mpirun -np $n: the same gradients.csv (the summed gradient of the epoch's last step)" \
        "cmp -s '$T/one/gradients.csv' '$T/np$n/gradients.csv'"
done
check "the first process alone writes the run (one report, no stray files)" \
    "[ \"\$(ls '$T/np3')\" = \"\$(ls '$T/one')\" ]"

# not the same as the unsharded run (the test would pass vacuously if sharding did nothing)
"$CN" train -e "$SPEC" --epochs 1 --val 0.9 --batch 32 --seed 3 --crop 1 --flip --quiet --out "$T/plain" >/dev/null 2>&1
check "sharding changes the arithmetic (another checkpoint than the unsharded run's)" \
    "! cmp -s '$T/one/last.safetensors' '$T/plain/last.safetensors'"

"$CN" train -e "$SMALL" "$@" --local-bn --out "$T/local1" >/dev/null 2>&1
$MPIRUN -np 2 "$CN" train -e "$SMALL" "$@" --local-bn --out "$T/local2" >/dev/null 2>&1
"$CN" train -e "$SMALL" "$@" --out "$T/whole_bn" >/dev/null 2>&1
check "--local-bn: 2 processes = 1, byte for byte" "cmp -s '$T/local1/last.safetensors' '$T/local2/last.safetensors'"
check "--local-bn differs from whole-batch statistics" "! cmp -s '$T/local1/last.safetensors' '$T/whole_bn/last.safetensors'"

# the default shards (one per 16 images) do not depend on the number of processes
$MPIRUN -np 1 "$CN" train -e "$SMALL" --epochs 1 --val 0.9 --batch 32 --quiet --out "$T/d1" >/dev/null 2>&1
$MPIRUN -np 2 "$CN" train -e "$SMALL" --epochs 1 --val 0.9 --batch 32 --quiet --out "$T/d2" >/dev/null 2>&1
check "default shards: mpirun -np 2 = -np 1, byte for byte" "cmp -s '$T/d1/last.safetensors' '$T/d2/last.safetensors'"

# an image folder: decoded where the shards run, each image once per pass, somewhere
/usr/bin/python3 "$(dirname "$0")/pngwrite.py" "$T/col" red green blue --count 40 --seed 2 --size 8-16 --noise 90 --bright 140
FSPEC='input 8x8x3; conv 4 3x3 pad=1; batchnorm; relu; flatten; dense 3'
set -- --data "$T/col" --shards 4 --batch 16 --epochs 2 --val 0.2 --flip --quiet
mkdir "$T/trace"
strace -f -ff -e trace=openat -o "$T/trace/one" "$CN" train -e "$FSPEC" "$@" --out "$T/f1" >/dev/null 2>&1
strace -f -ff -e trace=openat -o "$T/trace/two" $MPIRUN -np 2 "$CN" train -e "$FSPEC" "$@" --out "$T/f2" >/dev/null 2>&1
check "image folder: 2 processes = 1, byte for byte" "cmp -s '$T/f1/last.safetensors' '$T/f2/last.safetensors'"
pngs() { for f in "$T"/trace/"$1".*; do grep -c '\.png", O_RDONLY' "$f"; done | grep -v '^0$'; }
one=$(pngs one | awk '{ s += $1 } END { print s }')
two=$(pngs two | awk '{ s += $1 } END { print s }')
most=$(pngs two | sort -n | tail -1)
check "image folder: 2 processes decode as many images as 1 ($two and $one opens: each once, somewhere)" "[ '$one' = '$two' ]"
check "image folder: the decoding is shared ($(pngs two | paste -sd' ') opens by the 2 processes)" \
    "[ \$(pngs two | wc -l) -eq 2 ] && [ $most -lt $one ]"

# a file that does not decode, met by one process: its error, and the job ends
cp -r "$T/col" "$T/bad"
printf 'junk' >"$T/bad/green/004.png"
$MPIRUN -np 2 "$CN" train -e "$FSPEC" --data "$T/bad" --batch 16 --epochs 1 --val 0.2 --out "$T/badrun" --quiet \
    >"$T/bad.log" 2>&1
check "a corrupt image under mpirun: the file named, the job ended" \
    "[ $? -ne 0 ] && grep -q 'bad/green/004.png: not a PNG or JPEG image' '$T/bad.log' && grep -q 'ending the job' '$T/bad.log'"

# kill -9 of one process in the middle of a 4-epoch run under the default shards (4 of the
# batch of 64, kept with the run's settings), resumed on 3 processes; the same run in one
# process with --shards 4 is the reference
set -- --epochs 4 --val 0.9 --batch 64 --seed 5 --quiet
"$CN" train -e "$SMALL" "$@" --shards 4 --out "$T/whole" >/dev/null 2>&1
$MPIRUN -np 2 "$CN" train -e "$SMALL" "$@" --out "$T/killed" >"$T/killed.log" 2>&1 &
job=$!
i=0
while [ ! -f "$T/killed/last.safetensors" ] && [ $i -lt 1200 ] && kill -0 $job 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
sleep 0.3
victim=$(pgrep -f -- "--out $T/killed" | while read -r p; do [ "$(cat /proc/$p/comm 2>/dev/null)" = convnet ] && echo "$p"; done | tail -1)
start=$(date +%s)
kill -9 "$victim" 2>/dev/null
wait $job
status=$?
took=$(($(date +%s) - start))
check "a process killed: the job ends within 10 s (took ${took} s), not a hang" "[ $took -le 10 ]"
check "... with a failure status and the killed process named" "[ $status -ne 0 ] && grep -q 'signal 9' '$T/killed.log'"
check "... no process left behind" "! pgrep -f -- '--out $T/killed' >/dev/null"
rows=$(($(wc -l <"$T/killed/metrics.csv") - 1))
check "killed part way ($rows of 4 epochs done)" "[ $rows -ge 1 ] && [ $rows -lt 4 ]"
$MPIRUN -np 3 "$CN" train --resume "$T/killed" --quiet >"$T/resume.log" 2>&1
check "--resume under mpirun -np 3 exits 0" "[ $? -eq 0 ]"
check "resumed = uninterrupted, tensor for tensor (the settings kept the default's 4 shards)" \
    "grep -q 'shards.n4' '$T/killed/run.json' && /usr/bin/python3 '$(dirname "$0")/same_tensors.py' '$T/whole/last.safetensors' '$T/killed/last.safetensors'"

# its best checkpoint damaged, the run given 2 more epochs on 2 processes: the writer reads it,
# every process drops the lost best alike (no hang, no process stopping apart), and the epochs
# to come write it again
head -c 1000 "$T/killed/model.safetensors" >"$T/cut" && mv "$T/cut" "$T/killed/model.safetensors"
$MPIRUN -np 2 "$CN" train --resume "$T/killed" --epochs 6 >"$T/lost.log" 2>&1
check "a lost best checkpoint under mpirun: said, the run ends with a best of its own" \
    "[ $? -eq 0 ] && grep -q \"model.safetensors (the best epoch's weights, epoch [0-9]*) cannot be read\" '$T/lost.log' && '$CN' eval '$T/killed' >/dev/null"

# processes that disagree stop at the start, naming what differs
$MPIRUN -np 1 "$CN" train -e "$SMALL" "$@" --seed 1 --out "$T/odd" : -np 1 "$CN" train -e "$SMALL" "$@" --seed 2 \
    --out "$T/odd" >"$T/odd.log" 2>&1
check "another seed on process 1: an error at the start" \
    "[ $? -ne 0 ] && grep -q 'process 1 of 2 has another net or starting weights' '$T/odd.log'"
$MPIRUN -np 1 "$CN" train -e "$SMALL" "$@" --out "$T/odd2" : -np 1 "$CN" train -e "$SMALL" "$@" --crop 2 \
    --out "$T/odd2" >"$T/odd2.log" 2>&1
check "other settings on process 1: an error at the start" "[ $? -ne 0 ] && grep -q 'another settings' '$T/odd2.log'"
$MPIRUN -np 3 "$CN" train -e "$SMALL" --epochs 1 --batch 32 --shards 2 --out "$T/few" >"$T/few.log" 2>&1
check "2 shards for 3 processes: refused" "[ $? -ne 0 ] && grep -q '2 shards cannot keep 3 processes busy' '$T/few.log'"
finish
