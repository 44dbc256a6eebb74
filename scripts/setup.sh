#!/bin/sh
# Installs the Debian packages convnet needs, only those missing; quiet when all are there.
#   scripts/setup.sh          what building and `make run` need: the compiler, the libraries,
#                             protobuf-c and Debian's onnx.proto (ONNX export and import),
#                             Open MPI's headers and library (data-parallel training), Fashion-MNIST
#   scripts/setup.sh --check  plus what the tests need: python3-torch (the PyTorch checks),
#                             chromium with fonts-liberation (the training report's test), pkgconf
#                             and binutils (the install test: pkg-config, nm, readelf), g++ (the
#                             emulated GPU of the CUDA backend's tests, where nvcc is found),
#                             python3-torchvision, python3-onnx, python3-pil (pixels of the
#                             pictures `convnet show` draws), openmpi-bin (mpirun) and strace
#                             (the MPI tests), gcc-aarch64-linux-gnu with libc6-dev-arm64-cross
#                             (a Recommends, which --no-install-recommends skips), clang and libomp-dev
#                             (the library built for ARM, and by clang: tests/portable_test.sh),
#                             qemu-user (the kernels of a CPU without AVX-512, emulated:
#                             tests/no_avx512_test.sh), and Node.js with npm, and then
#                             ONNX Runtime from npm (onnxruntime-node) into tests/onnx/node_modules
#   scripts/setup.sh --fuzz   plus clang and libFuzzer
#   scripts/setup.sh --coverage  plus gcovr (`make coverage`)
#   scripts/setup.sh --bench  plus the peers of `make bench`: darknet, python3-torch, OpenBLAS
#   scripts/setup.sh --deb    plus debhelper (`make deb`)
set -eu

need="cmake make gcc libc6-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev dataset-fashion-mnist libcjson-dev"
need="$need protobuf-c-compiler libprotobuf-c-dev libonnx-dev libopenmpi-dev"
[ "${1:-}" = "--check" ] && need="$need python3-torch chromium fonts-liberation pkgconf binutils g++ python3-torchvision python3-onnx python3-pil"
[ "${1:-}" = "--check" ] && need="$need openmpi-bin strace gcc-aarch64-linux-gnu libc6-dev-arm64-cross clang libomp-dev qemu-user"
# Node.js and npm for ONNX Runtime's test, from Debian unless a node with npm is there already
[ "${1:-}" = "--check" ] && ! command -v npm >/dev/null && need="$need nodejs npm"
[ "${1:-}" = "--fuzz" ] && need="$need clang libclang-rt-14-dev"
[ "${1:-}" = "--coverage" ] && need="$need gcovr"
[ "${1:-}" = "--bench" ] && need="$need darknet python3-torch libopenblas-dev"
[ "${1:-}" = "--deb" ] && need="$need debhelper dpkg-dev fakeroot"
# SETUP_LIST=1: print the packages this mode needs and stop (tests/cli_test.sh checks the split)
[ -n "${SETUP_LIST:-}" ] && { printf '%s\n' $need; exit 0; }

# ONNX Runtime (tests/onnx_test.sh): npm's onnxruntime-node at the version of
# tests/onnx/package-lock.json; its CPU library ships inside the package, and --ignore-scripts
# skips its install script, which only fetches GPU add-ons
install_ort() {
    [ "${1:-}" = "--check" ] || return 0
    [ -d "$(dirname "$0")/../tests/onnx/node_modules/onnxruntime-node" ] && return 0
    echo "setup: installing onnxruntime-node (npm) into tests/onnx/node_modules"
    (cd "$(dirname "$0")/../tests/onnx" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
}

missing=""
for p in $(printf '%s\n' $need | sort -u); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    install_ort "${1:-}"
    exit 0
fi

echo "setup: installing$missing"
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "setup: run as root, or install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
install_ort "${1:-}"
