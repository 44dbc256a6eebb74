#!/bin/sh
# run.sh — `make bench-mpi`: data-parallel training measured on this machine and modelled for a
# cluster (issue 17). Measures, one thread per process, images/s and the communication per step
# of fmnist-small (batch 64) and resnet18-cifar (batch 32) for one process unsharded, one process
# of 2 shards and 2 processes of a shard each (mpirun -np 2); the MPI transport's α and β
# (alpha_beta.c); and one process of 2 threads (a node). Then bench/mpi/model.py checks its
# communication model against the 2-process runs and projects 1 to 512 nodes on 25 and 100 Gb/s
# links: a table, and bench/mpi/out/scaling.svg. About 3 minutes.
# Usage: sh bench/mpi/run.sh [CONVNET (default build/convnet)] [SECONDS per run (default 5)]
CN=${1:-build/convnet}
S=${2:-5}
OUT=bench/mpi/out
MPIRUN="mpirun --allow-run-as-root --oversubscribe --mca btl self,vader"
set -e
mkdir -p "$OUT"
mpicc -O2 -o "$OUT/alpha_beta" bench/mpi/alpha_beta.c
$MPIRUN -np 2 "$OUT/alpha_beta" >"$OUT/alpha_beta.json"
for w in fmnist-small:64 resnet18-cifar:32; do
    m=${w%:*} b=${w#*:}
    echo "bench-mpi: $m, batch $b" >&2
    "$CN" summary "models/$m.cnn" --json >"$OUT/$m-summary.json"
    set -- bench "models/$m.cnn" --train --batch "$b" --seconds "$S" --json
    OMP_NUM_THREADS=1 "$CN" "$@" --threads 1 >"$OUT/$m-1.json"
    OMP_NUM_THREADS=1 "$CN" "$@" --threads 1 --shards 2 >"$OUT/$m-1x2.json"
    $MPIRUN -np 2 -x OMP_NUM_THREADS=1 "$CN" "$@" --threads 1 --shards 2 >"$OUT/$m-2.json"
    "$CN" "$@" --threads 2 --shards 1 >"$OUT/$m-node.json"
done
/usr/bin/python3 bench/mpi/model.py "$OUT"
