#!/bin/sh
# Large photos into a small net (--resize draft): an image folder of N JPEGs of 4000x3000 (12
# megapixels, a phone's photo: a smooth scene with grain, quality 90, 4:2:0) in two classes,
# loaded by `convnet train` for an input of SIZE (one epoch of a net that costs nothing beside
# the loading: a 4x4 conv of stride 4, pooling, a dense layer) with
#   antialias  every JPEG decoded whole, then resized (the default, torchvision's result)
#   draft      a JPEG 8x the input decoded at 1/2, 1/4 or 1/8 by libjpeg's scaled IDCT first
# and, for scale, PIL (torchvision's loader: Image.open(f).convert('RGB').resize(..., BILINEAR))
# on one thread, and on as many processes as convnet has threads (multiprocessing, as a
# DataLoader's workers). Each convnet setting runs REPS times, interleaved; the table gives the
# median seconds and images/s, and the ratios to antialias. Then how far draft's pixels are from
# the whole decode's on these files and on real photos (darknet's samples, or PHOTOS="a.jpg ..."):
# the largest and the mean difference over all the values.
# Usage: bench/jpeg_draft.sh [CONVNET]   (default build/convnet; N=16 REPS=3 SIZES="224 64")
# About a minute on 2 cores.
set -eu
CN=${1:-build/convnet}
N=${N:-16}
REPS=${REPS:-3}
SIZES=${SIZES:-"224 64"}
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_draft.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

/usr/bin/python3 - "$T/data" "$N" <<'PY'
import os, sys
import numpy as np
from PIL import Image
root, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
h, w = 3000, 4000
y, x = np.mgrid[0:h, 0:w].astype(np.float32)
for i in range(n):
    cls = ("a", "b")[i % 2]
    os.makedirs(f"{root}/{cls}", exist_ok=True)
    # a scene: broad shading, a few soft shapes, fine grain (sensor noise)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(1, 6, 3)
        img[..., c] = 128 + 70 * np.sin(x / w * fx * 3.1 + ph) * np.cos(y / h * fy * 3.1)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(100, 900)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] += rng.uniform(-60, 60, 3)
    img += rng.normal(0, 4, (h, w, 3))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(f"{root}/{cls}/{i:03d}.jpg", quality=90)
PY

threads=$("$CN" train --help >/dev/null 2>&1; nproc)
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for size in $SIZES; do
    spec="input ${size}x${size}x3; conv 4 4x4 stride=4; relu; globalavgpool; dense 2"
    for r in $(seq "$REPS"); do
        for mode in antialias draft; do
            rm -rf "$T/run"
            s=$(date +%s.%N)
            "$CN" train -e "$spec" --data "$T/data" --epochs 1 --batch 8 --resize $mode --quiet --out "$T/run" >/dev/null
            e=$(date +%s.%N)
            echo "$e - $s" | bc >>"$T/$mode.$size"
        done
    done
    /usr/bin/python3 - "$T/data" "$size" "$threads" >"$T/pil.$size" <<'PY'
import glob, sys, time
from multiprocessing import Pool
from PIL import Image
files, size, procs = sorted(glob.glob(sys.argv[1] + "/*/*.jpg")), int(sys.argv[2]), int(sys.argv[3])
def load(f):
    return Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR).tobytes()[:1]
t = time.time(); [load(f) for f in files]; one = time.time() - t
with Pool(procs) as p:
    p.map(load, files[:procs])
    t = time.time(); p.map(load, files); many = time.time() - t
print(one, many)
PY
done

echo "$N JPEGs of 4000x3000 into a net's input, $threads threads (convnet: medians of $REPS, interleaved)"
printf '%-6s %-34s %8s %9s %8s\n' input loader seconds images/s ratio
for size in $SIZES; do
    a=$(median <"$T/antialias.$size"); d=$(median <"$T/draft.$size")
    read -r p1 pn <"$T/pil.$size"
    for row in "convnet --resize antialias:$a" "convnet --resize draft:$d" "PIL, 1 process:$p1" "PIL, $threads processes:$pn"; do
        name=${row%%:*}; t=${row##*:}
        printf '%-6s %-34s %8.2f %9.1f %7.2fx\n' "${size}x$size" "$name" "$t" "$(echo "$N / $t" | bc -l)" "$(echo "$a / $t" | bc -l)"
    done
done

# draft's pixels against the whole decode's, through the C API (cn_image_load, either mode)
cat >"$T/diff.c" <<'C'
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "convnet.h"
int main(int argc, char **argv)
{
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return 1;
    int64_t s = atoi(argv[1]), n = 3 * s * s;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    double worst = 0, sum = 0, count = 0;
    for (int i = 2; i < argc; i++) {
        cn_ctx_set_resize(ctx, CN_RESIZE_ANTIALIAS);
        if (cn_image_load(ctx, argv[i], 3, s, s, a)) return 1;
        cn_ctx_set_resize(ctx, CN_RESIZE_DRAFT);
        if (cn_image_load(ctx, argv[i], 3, s, s, b)) return 1;
        for (int64_t k = 0; k < n; k++) {
            double e = fabs(a[k] - b[k]) * 255;
            worst = e > worst ? e : worst, sum += e, count++;
        }
    }
    printf("%lldx%lld: draft within %.2f/255 of the whole decode (mean %.3f/255)\n", (long long)s, (long long)s, worst,
           sum / count);
    return 0;
}
C
inc=$(dirname "$0")/../include
lib=$(dirname "$CN")/libconvnet.so
if cc -O2 -I"$inc" "$T/diff.c" "$lib" -lm -o "$T/diff" 2>/dev/null; then
    echo "these files:"
    for size in $SIZES; do LD_LIBRARY_PATH=$(dirname "$lib") "$T/diff" "$size" "$T"/data/*/*.jpg; done
    # real photos where there are some: darknet's samples (Debian's darknet), or PHOTOS="a.jpg ..."
    photos=${PHOTOS:-$(ls /usr/share/darknet/data/*.jpg 2>/dev/null || true)}
    if [ -n "$photos" ]; then
        echo "$(echo $photos | wc -w) photos ($(echo $photos | head -c 60)...):"
        for size in 224 64 32 28; do LD_LIBRARY_PATH=$(dirname "$lib") "$T/diff" "$size" $photos; done
    fi
else
    echo "(no pixel comparison: $lib not built)"
fi
