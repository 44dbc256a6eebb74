#!/bin/sh
# no_avx512_test.sh — the kernels of CPUs without AVX-512: on an emulated Haswell (AVX2 and FMA:
# most laptops, AMD before Zen 4) the AVX2 micro-kernel and the AVX2 clones of the element-wise
# loops, the direct convolutions where this machine would take Winograd; on an emulated Nehalem
# (no AVX at all) the portable micro-kernel and the baseline clones. The same test programs,
# unchanged, under QEMU's user mode (`qemu-user`, which `make check` installs): the product against
# the double-precision reference, the op table on every path against the reference kernels, the
# layers' bits on 1 to 3 threads, and PyTorch's vectors. Run by CTest from the source folder:
#   tests/no_avx512_test.sh BUILD_DIR
B="$1"
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_noavx.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
case "$(uname -m)" in x86_64) ;; *) echo "SKIPPED: not an x86-64 machine"; exit 0 ;; esac
if ! command -v qemu-x86_64 >/dev/null; then
    echo "FAIL qemu-x86_64 is missing: scripts/setup.sh --check installs it (Debian's qemu-user)"
    exit 1
fi
failed=0
# qemu says which of Haswell's features its emulation lacks (none that compute): not shown.
# GOMP_SPINCOUNT set: convnet would otherwise run itself again with it (cli/main.c), natively
cpu=Haswell
emulated() {
    GOMP_SPINCOUNT=1000 qemu-x86_64 -cpu $cpu "$@" >"$T/raw" 2>&1
    rc=$?
    grep -v '^qemu-x86_64: warning: TCG' "$T/raw"
    return $rc
}

# the emulated CPU has no AVX-512, or this test would prove nothing: the engine says which
# kernel each layer runs, and a 3x3 convolution of 8 channels on 10x10 maps is F(2x2,3x3)'s
# with AVX-512, F(4x4,3x3)'s with AVX2 alone (winograd4.c's rule); bench names the vector code
emulated "$B/convnet" bench -e 'input 10x10x8; conv 8 3x3 pad=1' --batch 2 --seconds 0.01 >"$T/bench"
if grep -q '^conv1 .*F(2x2' "$T/bench" || ! grep -q '^conv1 .*winograd F(4x4,3x3)' "$T/bench" ||
    ! grep -q ' (avx2): ' "$T/bench"; then
    echo "FAIL the emulated Haswell runs AVX-512 kernels, or not AVX2's (or none named):"
    cat "$T/bench"
    failed=1
else
    echo "ok   the emulated Haswell runs AVX2's code: a 3x3 convolution of 8 channels on 10x10 runs winograd F(4x4,3x3)"
fi
tests() { # PROGRAMS...: each on the emulated $cpu
    for t in "$@"; do
        start=$(date +%s)
        if emulated "$B/$t" >"$T/$t.log"; then
            echo "ok   $t on the emulated $cpu: $(tail -n 1 "$T/$t.log") ($(($(date +%s) - start)) s)"
        else
            echo "FAIL $t on the emulated $cpu:"
            grep -v '^ok ' "$T/$t.log" | tail -n 40
            failed=1
        fi
    done
}
tests test_gemm test_backend test_cpu_ops test_torch_parity
# without AVX: the portable kernel chosen by the CPU, not forced, and the baseline clones
cpu=Nehalem
emulated "$B/convnet" bench -e 'input 8x8x1; dense 3' --batch 2 --seconds 0.01 >"$T/bench"
if grep -q ' (generic): ' "$T/bench"; then
    echo "ok   the emulated Nehalem runs the portable code"
else
    echo "FAIL the emulated Nehalem does not run the portable code:"
    cat "$T/bench"
    failed=1
fi
tests test_cpu_ops test_torch_parity
exit $failed
