#!/bin/sh
# prepare.sh — run HERE (the machine without a GPU) before the device call of DEVICE.md:
# builds build-gpu/ (Release, CUDA backend required, only the programs the GPU run needs; the
# objects stay in build-gpu-obj/),
# copies beside them the shared libraries they were linked with that a bare CUDA image lacks
# (build-gpu/lib: zlib, libpng, libjpeg, cJSON, libgomp; glibc is the image's own), and
# Fashion-MNIST into .devdata/ (git-ignored). Both are carried to the device; the tree and the
# carried paths must stay under 64 MiB together, which this checks.
set -e
cd "$(dirname "$0")/../.."
# built in build-gpu-obj/, then only what the device runs copied into a fresh build-gpu/ (a build
# folder's objects and other programs would not fit in the call)
cmake -S . -B build-gpu-obj -DCMAKE_BUILD_TYPE=Release -DCN_CUDA=ON -DCN_WERROR=ON >/dev/null
cmake --build build-gpu-obj -j 2 --target convnet test_backend cuda_fatbin
rm -rf build-gpu
mkdir -p build-gpu/lib .devdata
cp build-gpu-obj/convnet build-gpu-obj/test_backend build-gpu-obj/cuda_fatbin build-gpu/
ldd build-gpu/convnet build-gpu/test_backend | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
    grep -v -E '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' | while read -r lib; do
    cp -L "$lib" build-gpu/lib/
done
cp -L "${DATA:-/usr/share/datasets/fashion-mnist}"/*-ubyte.gz .devdata/
# what travels: the tracked and untracked-not-ignored files, build-gpu's programs and libraries, the data
# (one du over all the names: xargs would split them and print a total per batch)
tree=$(git ls-files -co --exclude-standard -z | du --files0-from=- -cb 2>/dev/null | tail -1 | cut -f1)
carried=$(du -cb build-gpu .devdata | tail -1 | cut -f1)
echo "tree $((tree >> 20)) MiB + carried $((carried >> 20)) MiB (build-gpu: $(du -sh build-gpu | cut -f1), .devdata: $(du -sh .devdata | cut -f1))"
[ $((tree + carried)) -lt $((62 << 20)) ] || { echo "over the 64 MiB the device call takes" >&2; exit 1; }
ls build-gpu/lib
