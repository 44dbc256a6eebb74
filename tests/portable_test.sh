#!/bin/sh
# portable_test.sh — the library builds where there is no x86: every C file of src/ and of the
# tests compiled for 64-bit ARM by Debian's cross compiler (gcc-aarch64-linux-gnu, which `make
# check` installs) with the warnings as errors, and nothing the files use left undefined among
# them. The x86 paths (AVX-512 kernels, target clones) must stay behind their guards, and the
# portable kernels and the hooks the tests call must stand on their own. Left out: the CUDA
# backend (its headers are x86's CUDA toolkit's), the ONNX importer (generated protobuf
# headers), the image decoders (libjpeg's jconfig.h is per architecture) and the tests that
# include their headers or the CUDA fatbin. Run by CTest from the source folder.
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_portable.XXXXXX") || exit 1
. "$(dirname "$0")/check.sh"
CC=aarch64-linux-gnu-gcc
NM=aarch64-linux-gnu-nm
if ! command -v "$CC" >/dev/null; then
    echo "SKIPPED: $CC not found (scripts/setup.sh --check installs gcc-aarch64-linux-gnu)"
    exit 0
fi
# the sources as they lie (a tarball has no .git), in a fixed order
files=$(find src -name '*.c' | LC_ALL=C sort | grep -v -e '^src/backend/cuda/' -e '^src/onnx/' -e '^src/data/image.c$')
tests=$(find tests -maxdepth 1 -name '*.c' | LC_ALL=C sort | while read -r f; do
    grep -q -e 'jpeglib.h' -e 'onnx' -e 'cn_cuda_fatbin' "$f" || echo "$f"
done)
n=0
for f in $files $tests; do
    n=$((n + 1))
    # the architecture-free headers of zlib, libpng and cJSON from the host's /usr/include
    $CC -std=c11 -O1 -Wall -Wextra -Wpedantic -Wshadow -Wno-overlength-strings -Werror -fopenmp \
        -Iinclude -Isrc -Itests -idirafter /usr/include -c "$f" -o "$T/$n.o" 2>>"$T/errors" || echo "$f" >>"$T/failed"
done
check "the $n C files of src/ and tests/ (but CUDA, ONNX and the image decoders) compile for aarch64 with -Werror" \
    "[ $n -ge 60 ] && [ ! -s '$T/failed' ] || { cat '$T/failed' '$T/errors'; false; }"
$NM -u "$T"/*.o | awk '{print $2}' | sort -u >"$T/undefined"
$NM --defined-only "$T"/*.o | awk '{print $3}' | sort -u >"$T/defined"
# what the left-out image decoders define (their callers are in the files above)
comm -23 "$T/undefined" "$T/defined" | grep '^cn_' | grep -v -e '^cn_image_' -e '^cn_pixels_' >"$T/missing"
check "every cn_ function those files call is defined among them (x86-only hooks too)" \
    "[ ! -s '$T/missing' ] || { cat '$T/missing'; false; }"
finish
