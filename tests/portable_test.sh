#!/bin/sh
# portable_test.sh — the library builds where there is no x86, and with the other compiler:
# - every C file of src/ and of the tests compiled for 64-bit ARM by Debian's cross compiler
#   (gcc-aarch64-linux-gnu, which `make check` installs) with the warnings as errors, and nothing
#   the files use left undefined among them. The x86 paths (AVX-512 kernels, target clones) must
#   stay behind their guards, and the portable kernels and the hooks the tests call must stand
#   on their own; test_gemm, test_cpu_ops and test_torch_parity linked and run there by QEMU's
#   user mode (qemu-aarch64). Left out: the CUDA backend (its headers are x86's CUDA toolkit's), the ONNX
#   importer (generated protobuf headers), the image decoders (libjpeg's jconfig.h is per
#   architecture) and the tests that include their headers or the CUDA fatbin.
# - every C file of src/ and of the tests (but the ONNX ones) compiled for x86-64 by clang with
#   OpenMP and the warnings as errors (but clang's notes that an `omp simd` loop stayed scalar):
#   clang outlines a parallel loop into a function without its caller's target attribute, so a
#   loop with AVX-512 code inside a target("avx512f") function builds with gcc and not with clang;
#   and every cn_ function they call defined among them (but the fatbin CMake generates).
# Run by CTest from the source folder.
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_portable.XXXXXX") || exit 1
. "$(dirname "$0")/check.sh"
FLAGS="-std=c11 -O1 -Wall -Wextra -Wpedantic -Wshadow -Wno-overlength-strings -Werror -fopenmp -Iinclude -Isrc -Itests"
sources() { # $1: the paths to leave out (grep -e patterns); the sources as they lie (a tarball has no .git), in a fixed order
    find src -name '*.c' | LC_ALL=C sort | grep -v $1
    find tests -maxdepth 1 -name '*.c' | LC_ALL=C sort | while read -r f; do
        grep -q $2 "$f" || echo "$f"
    done
}
# compile NAME CC FLAGS FILES: each file into $T/NAME/; the failures and messages in $T/NAME.*
compile() {
    mkdir -p "$T/$1"
    n=0
    for f in $4; do
        n=$((n + 1))
        $2 $3 -c "$f" -o "$T/$1/$n.o" 2>>"$T/$1.errors" || echo "$f" >>"$T/$1.failed"
    done
}
# missing NAME NM EXCEPT: the cn_ names NAME's objects use and do not define, but those of the
# left-out files (EXCEPT: grep -e patterns), into $T/NAME.missing
missing() {
    $2 -u "$T/$1"/*.o | awk '{print $2}' | sort -u >"$T/$1.undefined"
    $2 --defined-only "$T/$1"/*.o | awk '{print $3}' | sort -u >"$T/$1.defined"
    comm -23 "$T/$1.undefined" "$T/$1.defined" | grep '^cn_' | grep -v $3 >"$T/$1.missing"
}

CC=aarch64-linux-gnu-gcc
NM=aarch64-linux-gnu-nm
if command -v "$CC" >/dev/null; then
    files=$(sources "-e ^src/backend/cuda/ -e ^src/onnx/ -e ^src/data/image.c$" "-e jpeglib.h -e onnx -e cn_cuda_fatbin")
    # the architecture-free headers of zlib, libpng and cJSON from the host's /usr/include
    compile arm "$CC" "$FLAGS -idirafter /usr/include" "$files"
    check "the $n C files of src/ and tests/ (but CUDA, ONNX and the image decoders) compile for aarch64 with -Werror" \
        "[ $n -ge 60 ] && [ ! -s '$T/arm.failed' ] || { cat '$T/arm.failed' '$T/arm.errors'; false; }"
    # what the left-out image decoders define (their callers are in the files above)
    missing arm "$NM" "-e ^cn_image_ -e ^cn_pixels_"
    check "every cn_ function those files call is defined among them (x86-only hooks too)" \
        "[ ! -s '$T/arm.missing' ] || { cat '$T/arm.missing'; false; }"
    # and run: the tests that need no library but libc's and OpenMP's (others read checkpoints
    # through cJSON, which has no aarch64 build here), linked against the objects of src/ and
    # run by QEMU's user mode with the cross compiler's libraries: the portable kernels on
    # another architecture (no x86 path at all), against the reference and PyTorch's vectors
    if command -v qemu-aarch64 >/dev/null; then
        n=0
        for f in $files; do
            n=$((n + 1))
            case "$f" in src/*) echo "$T/arm/$n.o" ;; tests/harness.c) echo "$T/arm/$n.o" >"$T/arm.harness" ;; esac
        done >"$T/arm.lib"
        aarch64-linux-gnu-ar rcs "$T/libarm.a" $(cat "$T/arm.lib")
        for t in test_gemm test_cpu_ops test_torch_parity; do
            n=0
            for f in $files; do n=$((n + 1)); [ "$f" = "tests/$t.c" ] && obj="$T/arm/$n.o"; done
            check "$t built for aarch64 and run by qemu-aarch64" \
                "$CC -fopenmp '$obj' \$(cat '$T/arm.harness') '$T/libarm.a' -lm -o '$T/$t' && qemu-aarch64 -L /usr/aarch64-linux-gnu '$T/$t' >'$T/$t.log' 2>&1 || { tail -n 30 '$T/$t.log'; false; }"
            tail -n 1 "$T/$t.log" | sed 's/^/     /'
        done
    else
        echo "SKIPPED: qemu-aarch64 not found (scripts/setup.sh --check installs qemu-user): the ARM build not run"
    fi
else
    echo "SKIPPED: $CC not found (scripts/setup.sh --check installs gcc-aarch64-linux-gnu)"
fi

if command -v clang >/dev/null && [ "$(uname -m)" = x86_64 ]; then
    # the CUDA backend's C files where the CUDA headers are (as CMake builds them)
    cuda=
    [ -f /usr/local/cuda/include/cuda.h ] && [ -f /usr/local/cuda/include/cudnn.h ] && cuda="-DCN_HAVE_CUDA -isystem /usr/local/cuda/include"
    pattern="-e ^src/onnx/onnx_"
    [ -n "$cuda" ] || pattern="$pattern -e ^src/backend/cuda/"
    files=$(sources "$pattern" "-e onnx")
    compile clang clang "$FLAGS -Wno-pass-failed $cuda" "$files"
    check "the $n C files of src/ and tests/ (but ONNX) compile with clang for x86-64 with -Werror" \
        "[ $n -ge 60 ] && [ ! -s '$T/clang.failed' ] || { cat '$T/clang.failed' '$T/clang.errors'; false; }"
    # (clang 14 gives an exported function's target clones an ifunc under another name)
    missing clang nm "-e ^cn_onnx_ -e ^cn_cuda_fatbin"
    check "every cn_ function they call is defined among them (the target clones too)" \
        "[ ! -s '$T/clang.missing' ] || { cat '$T/clang.missing'; false; }"
else
    echo "SKIPPED: clang not found, or not on x86-64 (scripts/setup.sh --check installs clang)"
fi
finish
