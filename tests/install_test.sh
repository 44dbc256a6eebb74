#!/bin/sh
# install_test.sh — convnet used as users use an installed library (issue 16): `cmake --install`
# (what `make install` runs) into a staged DESTDIR; libconvnet.so exports exactly the functions of
# convnet.h, with its soname; the examples built through `pkg-config --cflags --libs convnet` and
# through CMake's find_package(convnet), each against the shared and the static library; their
# output checked: summary's totals (worked out by hand in its comment), train_bars learning,
# classify printing what `convnet predict` prints for a run trained here by the installed binary;
# then scripts/uninstall.sh (`make uninstall`) leaving nothing behind.
# Run by CTest: tests/install_test.sh BUILD_DIR /path/to/convnet, with CC the compiler that built
# the library (the static library needs that compiler's OpenMP runtime); cc when unset.
B=${1:?usage: tests/install_test.sh BUILD_DIR /path/to/convnet}
CC=${CC:-cc}
export CC # CMake's examples build takes it too
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_install.XXXXXX") || exit 1
. "$(dirname "$0")/check.sh"
S=$T/stage
# the build folder's own manifest (a user's `make install`) is put back at the end
[ -f "$B/install_manifest.txt" ] && cp "$B/install_manifest.txt" "$T/manifest.saved"
DESTDIR=$S cmake --install "$B" >"$T/out" 2>&1
check "cmake --install into DESTDIR: exit 0" "[ $? -eq 0 ]"
cp "$B/install_manifest.txt" "$T/manifest"
if [ -f "$T/manifest.saved" ]; then cp "$T/manifest.saved" "$B/install_manifest.txt"; else rm -f "$B/install_manifest.txt"; fi

version=$(sed -n 's/^#define CN_VERSION "\([0-9.]*\)"$/\1/p' include/convnet.h)
pc=$(find "$S" -name convnet.pc)
libdir=$(dirname "$(dirname "$pc")")
prefix=$(sed -n 's/^prefix=//p' "$pc")
check "installed: the binary, header, libconvnet.so.$version with its links, libconvnet.a, convnet.pc, the CMake package, the models" \
    "[ -x '$S$prefix/bin/convnet' ] && [ -f '$S$prefix/include/convnet.h' ] && [ -f '$libdir/libconvnet.so.$version' ] && \
     [ \"\$(readlink '$libdir/libconvnet.so.0')\" = libconvnet.so.$version ] && [ \"\$(readlink '$libdir/libconvnet.so')\" = libconvnet.so.0 ] && \
     [ -f '$libdir/libconvnet.a' ] && [ -f '$libdir/cmake/convnet/convnetConfig.cmake' ] && [ -f '$S$prefix/share/convnet/models/fmnist-small.cnn' ]"
check "soname libconvnet.so.0" "readelf -d '$libdir/libconvnet.so' | grep -q 'Library soname: \[libconvnet.so.0\]'"
# every function the header declares (its declarations, comments removed by the preprocessor) and nothing else
$CC -E -P "$S$prefix/include/convnet.h" | grep -o 'cn_[a-z0-9_]*[ ]*(' | tr -d ' (' | sort -u >"$T/declared"
nm -D --defined-only "$libdir/libconvnet.so" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u >"$T/exported"
check "libconvnet.so exports the header's $(wc -l <"$T/declared") functions, and no other" \
    "[ \$(wc -l <'$T/declared') -gt 100 ] && cmp -s '$T/declared' '$T/exported' || diff '$T/declared' '$T/exported'"
check "libconvnet.a is position-independent (no text relocations in the .so made of it)" \
    "! readelf -d '$libdir/libconvnet.so' | grep -q TEXTREL"

# a run to classify with, trained by the installed binary on generated colour images
/usr/bin/python3 tests/pngwrite.py "$T/shapes" red green blue --count 12 --seed 4 --size 10-16 --noise 200 --bright 120
LD_LIBRARY_PATH=$libdir "$S$prefix/bin/convnet" train -e 'input 12x12x3; conv 4 3x3 pad=1; relu; globalavgpool; dense 3' \
    --data "$T/shapes" --epochs 2 --batch 12 --out "$T/run" --quiet >"$T/out" 2>&1
check "the installed convnet trains a run" "[ $? -eq 0 ] && [ -f '$T/run/model.safetensors' ]"
IMGS="$T/shapes/red/000.png $T/shapes/green/003.png $T/shapes/blue/011.png"
# (predict's lines on how an image was resized are its own: examples/classify.c prints the classes)
LD_LIBRARY_PATH=$libdir "$S$prefix/bin/convnet" predict "$T/run" $IMGS | tail -n +2 | grep -v '^  (the image: ' >"$T/predict"

export PKG_CONFIG_SYSROOT_DIR="$S" PKG_CONFIG_LIBDIR="$(dirname "$pc")"
cflags=$(echo $(pkg-config --cflags convnet)) libs=$(echo $(pkg-config --libs convnet))
# the sysroot is put before every -L: a folder of the system's (clang's libomp, Open MPI's) is
# taken back out of the stage
static_libs=$(for f in $(pkg-config --libs --static convnet | sed 's/-lconvnet/-l:libconvnet.a/'); do
    case $f in -L"$S"*) [ -d "${f#-L}" ] || f=-L${f#-L"$S"} ;; esac
    printf '%s ' "$f"
done)
check "one version, the header's CN_VERSION ($version): pkg-config's, debian/changelog's" \
    "[ -n '$version' ] && [ \"\$(pkg-config --modversion convnet)\" = '$version' ] && head -1 debian/changelog | grep -q '^convnet ($version)'"
check "pkg-config: the staged include and lib folders" \
    "[ '$cflags' = '-I$S$prefix/include' ] && [ '$libs' = '-L$libdir -lconvnet' ]"
for kind in shared static; do
    mkdir -p "$T/pc-$kind" "$T/cm-$kind"
    for ex in classify summary train_bars; do
        if [ $kind = shared ]; then l=$libs; else l=$static_libs; fi
        # shellcheck disable=SC2086
        $CC -std=c11 -Wall -Wextra -Wpedantic -Werror examples/$ex.c $cflags $l -o "$T/pc-$kind/$ex" 2>>"$T/cc.log"
    done
    cmake -S examples -B "$T/cm-$kind/build" -DCMAKE_PREFIX_PATH="$S$prefix" -DCONVNET_STATIC=$([ $kind = static ] && echo ON || echo OFF) \
        >"$T/cm-$kind/log" 2>&1 && cmake --build "$T/cm-$kind/build" >>"$T/cm-$kind/log" 2>&1
    check "cmake find_package(convnet), $kind: the examples build" "[ $? -eq 0 ] || cat '$T/cm-$kind/log'"
    for how in pc cm; do
        dir=$T/$how-$kind
        [ $how = cm ] && dir=$T/cm-$kind/build
        what="$([ $how = pc ] && echo pkg-config || echo find_package), $kind"
        if [ $kind = shared ]; then
            check "$what: linked to the staged libconvnet.so.0" \
                "LD_LIBRARY_PATH=$libdir ldd '$dir/classify' | grep -q 'libconvnet.so.0 => $libdir/libconvnet.so.0'"
        else
            check "$what: libconvnet linked in (no libconvnet.so needed)" "! readelf -d '$dir/classify' | grep -q libconvnet"
        fi
        LD_LIBRARY_PATH=$libdir "$dir/summary" >"$T/summary.out"
        # conv1 (3*3*3 + 1)*16 = 448 and dense1 (16*16*16 + 1)*10 = 40,970 parameters;
        # MACs 32*32*16 * 27 = 442,368 and 4,096*10 = 40,960
        check "$what: summary's totals" "grep -qx 'total params 41418, MACs 483328' '$T/summary.out'"
        LD_LIBRARY_PATH=$libdir "$dir/train_bars" >"$T/bars.out"
        check "$what: train_bars learns (over 90% on new images)" \
            "awk '/^accuracy on/ {exit !(\$NF + 0 > 90)}' '$T/bars.out' && grep -q '^accuracy on' '$T/bars.out'"
        # shellcheck disable=SC2086
        LD_LIBRARY_PATH=$libdir "$dir/classify" "$T/run" $IMGS >"$T/classify.out"
        check "$what: classify prints the top 3 and probabilities of convnet predict" \
            "[ -s '$T/predict' ] && cmp -s '$T/classify.out' '$T/predict' || diff '$T/classify.out' '$T/predict'"
    done
done
check "the examples compile warning-free through pkg-config" "[ ! -s '$T/cc.log' ] || cat '$T/cc.log'"

sh scripts/uninstall.sh "$T/manifest" "$S" >"$T/out" 2>&1
check "scripts/uninstall.sh (make uninstall): every installed file removed, convnet's folders too" \
    "[ -z \"\$(find '$S' -type f -o -type l)\" ] && [ ! -e '$S$prefix/share/convnet' ] && [ ! -e '$libdir/cmake/convnet' ]"
finish
