#!/bin/sh
# device.sh — the one command for the GPU machine (bench/gpu/DEVICE.md says how to call it):
# make check-gpu's checks, then make bench-gpu's table, on a build made here by prepare.sh and
# carried (build-gpu/, .devdata/). Logs go to $OUT (they come back); the output ends with a
# compact summary: every check's line, what failed, and the benchmark table last.
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
. bench/gpu/libpath.sh # the CUDA libraries' folders
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,clocks.sm --format=csv,noheader 2>&1 | head -2
ls /usr/local/cuda-13.0/targets/x86_64-linux/lib/ 2>/dev/null | grep -E '^lib(cudnn|cublas)\.so\.[0-9]+$' | tr '\n' ' '
echo
begin=$(date +%s) # the call's 540 s: the summary must print before them
start=$(date +%s)
timeout 240 sh bench/gpu/check_gpu.sh build-gpu .devdata >"$OUT/check_gpu.log" 2>&1
check=$?
echo "check-gpu: exit $check after $(($(date +%s) - start)) s (log: check_gpu.log)"
if grep -q "^gpu-FAIL op table" "$OUT/check_gpu.log" && command -v compute-sanitizer >/dev/null; then
    # a kernel that faulted: where (memcheck on the op table, the first errors)
    LD_LIBRARY_PATH="build-gpu/lib:$LD_LIBRARY_PATH" CN_REQUIRE_GPU=1 timeout 90 compute-sanitizer --tool memcheck \
        --print-limit 8 build-gpu/test_backend >"$OUT/sanitizer.log" 2>&1
    echo "compute-sanitizer: exit $? (sanitizer.log)"
fi
start=$(date +%s)
left=$((510 - (start - begin))) # what the bench may take: its commands stop at the deadline
[ "$left" -gt 245 ] && left=245
CN_BENCH_SECONDS=1 CN_BENCH_DEADLINE=$left timeout $((left + 15)) python3 bench/gpu/run.py build-gpu .devdata \
    >"$OUT/bench_gpu.log" 2>&1
echo "bench-gpu: exit $? after $(($(date +%s) - start)) s (log: bench_gpu.log, bench_gpu.json)"
echo "---- check-gpu"
grep -E "^gpu-(ok|FAIL) |check-gpu:|SKIPPED|test_backend.c:[0-9]+|cuda_fatbin.c:[0-9]+|^convnet: " "$OUT/check_gpu.log" |
    cut -c1-220 | head -60
# the op table's errors past what each precision should give (fp32 1e-5, tf32 1e-3, bf16 1e-2)
grep -E "^  cuda .*e-0[0-4]|^  cuda-tf32 .*e-0[0-2]|^  cuda-bf16 .*e-0[0-1]|^  cuda.*(nan|inf)" "$OUT/check_gpu.log" |
    cut -c1-160 | head -20
[ -f "$OUT/sanitizer.log" ] && grep -E "Invalid|Address|at 0x|by thread|ERROR SUMMARY" "$OUT/sanitizer.log" | head -20
echo "---- bench-gpu"
grep -E "^(convnet|torch|GPU:|FAILED|TIMEOUT|no PyTorch)" "$OUT/bench_gpu.log" | cut -c1-200 | head -30
sed -n '/^bench-gpu: training images/,$p' "$OUT/bench_gpu.log"
