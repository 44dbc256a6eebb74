#!/bin/sh
# deb_test.sh — the Debian package installed and removed for real (root; changes the system, so
# not part of `make check`): `make deb`, `apt install ./convnet_*.deb`, the installed convnet,
# libconvnet.so.0 through pkg-config and the CMake package (examples/classify.c printing what the
# installed `convnet predict` prints), then `apt remove convnet` leaving none of its files.
# Run from the source folder: scripts/deb_test.sh   (about 2 minutes on 2 cores)
set -u
[ "$(id -u)" -eq 0 ] || { echo "deb_test: run as root (apt install)" >&2; exit 1; }
dpkg -s convnet >/dev/null 2>&1 && { echo "deb_test: convnet is installed already; apt remove convnet first" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_deb.XXXXXX") || exit 1
. tests/check.sh
make deb >"$T/make.log" 2>&1
check "make deb: a package" "[ $? -eq 0 ] && ls convnet_*.deb >/dev/null"
deb=$(ls convnet_*.deb | tail -1)
apt-get install -y "./$deb" >"$T/apt.log" 2>&1
check "apt install ./$deb" "[ $? -eq 0 ] && dpkg -s convnet | grep -q '^Status: install ok installed'"
dpkg -L convnet >"$T/files"
/usr/bin/python3 tests/pngwrite.py "$T/shapes" red green blue --count 8 --seed 2 --size 12 --noise 200 --bright 120
convnet train -e 'input 12x12x3; conv 4 3x3 pad=1; relu; globalavgpool; dense 3' --data "$T/shapes" --epochs 1 \
    --batch 8 --out "$T/run" --quiet >"$T/train.log" 2>&1
check "the installed convnet trains" "[ $? -eq 0 ] && [ -f '$T/run/model.safetensors' ]"
convnet predict "$T/run" "$T/shapes/red/000.png" "$T/shapes/blue/001.png" | tail -n +2 >"$T/predict"
# shellcheck disable=SC2046
cc examples/classify.c $(pkg-config --cflags --libs convnet) -o "$T/classify" &&
    "$T/classify" "$T/run" "$T/shapes/red/000.png" "$T/shapes/blue/001.png" >"$T/classify.out"
check "classify through the system's pkg-config and libconvnet.so.0: predict's output" \
    "ldd '$T/classify' | grep -q 'libconvnet.so.0 => /lib' && [ -s '$T/predict' ] && cmp -s '$T/classify.out' '$T/predict'"
cmake -S examples -B "$T/cm" >"$T/cm.log" 2>&1 && cmake --build "$T/cm" >>"$T/cm.log" 2>&1
check "find_package(convnet) from /usr: the examples build" "[ $? -eq 0 ] && '$T/cm/summary' | grep -qx 'total params 41418, MACs 483328'"
apt-get remove -y convnet >"$T/remove.log" 2>&1
check "apt remove convnet: removed" "[ $? -eq 0 ] && ! dpkg -s convnet >/dev/null 2>&1"
left=0
while IFS= read -r f; do if [ -f "$f" ] || [ -L "$f" ]; then left=$((left + 1)); echo "left: $f"; fi; done <"$T/files"
check "none of its $(wc -l <"$T/files") paths' files left" "[ $left -eq 0 ] && [ ! -e /usr/share/convnet ] && [ ! -e /usr/include/convnet.h ]"
finish
