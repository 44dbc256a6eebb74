#!/bin/sh
# report_test.sh — `convnet train` writes DIR/report.html and `convnet report DIR` rebuilds it:
# one self-contained file (no http(s):// reference) that headless Chromium parses into two SVG
# charts, a confusion matrix of classes x classes cells, the per-class table, the model table and
# a grid of inline PNG images, mistakes first; class names are escaped. Chromium (Debian's
# `chromium`, installed by scripts/setup.sh --check) is required: without it the test fails.
# Run by CTest: tests/report_test.sh /path/to/convnet
CN=${1:?usage: tests/report_test.sh /path/to/convnet}
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_report.XXXXXX") || exit 1
. "$(dirname "$0")/check.sh"
count() { grep -o "$1" "$2" | wc -l; }

CHROMIUM=$(command -v chromium || command -v chromium-browser)
if [ -z "$CHROMIUM" ]; then
    echo "FAIL chromium is not installed: run scripts/setup.sh --check (it installs Debian's chromium), or apt-get install chromium"
    exit 1
fi
# headless, no sandbox (root in CI), and nothing that reaches the network
chrome() {
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
        --no-first-run --no-default-browser-check --disable-sync --user-data-dir="$T/profile" "$@" 2>>"$T/chromium.log"
}

# ---- Fashion-MNIST, a tiny net, 2 epochs: train writes the report --------------------------------
"$CN" train -e 'input 28x28x1; conv 4 3x3 pad=1; relu; maxpool 2x2; dense 10' --epochs 2 --val 0.9 --batch 64 \
    --quiet --out "$T/run" >"$T/out" 2>&1
check "train exits 0" "[ $? -eq 0 ]"
check "train writes report.html" "[ -s '$T/run/report.html' ]"
check "no temporary image left in the run folder" "[ -z \"\$(ls -A '$T/run' | grep -v -e '^last.safetensors$' -e '^model.safetensors$' -e '^metrics.csv$' -e '^report.html$' -e '^run.json$' -e '^.lock$')\" ]"
check "self-contained: no http:// or https:// in the file" "! grep -qi 'https\?://' '$T/run/report.html'"
check "self-contained: no src= other than data: URLs" "! grep -o 'src=\"[^\"]*' '$T/run/report.html' | grep -qv 'src=\"data:image/png;base64,'"

mv "$T/run/report.html" "$T/by-train.html"
"$CN" report "$T/run" >"$T/out" 2>&1
check "convnet report DIR exits 0 and names the file" "[ $? -eq 0 ] && grep -q 'report: $T/run/report.html' '$T/out'"
check "convnet report rebuilds the same page" "cmp -s '$T/by-train.html' '$T/run/report.html'"

chrome --dump-dom "file://$T/run/report.html" >"$T/dom.html"
check "chromium --dump-dom exits 0" "[ $? -eq 0 ] && [ -s '$T/dom.html' ]"
check "DOM: two SVG charts" "[ \$(count '<svg class=\"chart\"' '$T/dom.html') -eq 2 ]"
check "DOM: four lines (train and validation, loss and accuracy)" "[ \$(count '<polyline class=\"series\"' '$T/dom.html') -eq 4 ]"
check "DOM: axis labels" "grep -q '>epoch</text>' '$T/dom.html' && grep -q '>accuracy (%)</text>' '$T/dom.html'"
check "DOM: confusion matrix of 10 x 10 shaded cells" "[ \$(count '<td class=\"cm\" style=\"background:' '$T/dom.html') -eq 100 ]"
check "DOM: per-class table with 10 rows" "[ \$(count '<span class=\"bar\"' '$T/dom.html') -eq 10 ]"
check "DOM: 48 inline PNG images" "[ \$(count '<img alt=\"test image [0-9]*\" src=\"data:image/png;base64,' '$T/dom.html') -eq 48 ]"
check "DOM: mistakes first (the first cell is a mistake)" "grep -o '<div class=\"cell[^\"]*\"' '$T/dom.html' | head -1 | grep -q wrong"
check "DOM: the model table lists the conv layer and the total" "grep -q '<td class=\"l\">conv</td>' '$T/dom.html' && grep -q '>total</th>' '$T/dom.html'"
check "DOM: Fashion-MNIST class names" "grep -q 'Ankle boot' '$T/dom.html'"

chrome --hide-scrollbars --screenshot="$T/shot.png" --window-size=1200,2000 "file://$T/run/report.html" >/dev/null
check "screenshot: a non-empty PNG" "[ -s '$T/shot.png' ] && [ \"\$(head -c 4 '$T/shot.png' | od -An -c | tr -d ' ')\" = '211PNG' ]"
check "screenshot: more than a blank page (> 20 KB)" "[ \$(wc -c <'$T/shot.png') -gt 20000 ]"

# ---- an image folder whose class names need escaping; no test half: the whole folder --------------
/usr/bin/python3 tests/pngwrite.py "$T/shapes" "<b>blue" "r&d \"green\"" red --count 30 --seed 2 --channels 2,1,0
"$CN" train -e 'input 12x12x3; conv 4 3x3 pad=1; relu; globalavgpool; dense 3' --data "$T/shapes" --epochs 2 \
    --batch 16 --val 0.25 --quiet --out "$T/folder" >"$T/out" 2>&1
check "train on an image folder writes report.html" "[ $? -eq 0 ] && [ -s '$T/folder/report.html' ]"
check "class names escaped in the file" "grep -q '&lt;b&gt;blue' '$T/folder/report.html' && grep -q 'r&amp;d &quot;green&quot;' '$T/folder/report.html' && ! grep -q '<b>blue' '$T/folder/report.html'"
chrome --dump-dom "file://$T/folder/report.html" >"$T/dom2.html"
check "DOM: the names stay text (no <b> element from a class name)" "! grep -q '<b>blue' '$T/dom2.html' && grep -q '&lt;b&gt;blue' '$T/dom2.html'"
check "DOM: 3 x 3 confusion cells, 48 images" "[ \$(count '<td class=\"cm\"' '$T/dom2.html') -eq 9 ] && [ \$(count '<img ' '$T/dom2.html') -eq 48 ]"

# ---- errors ---------------------------------------------------------------------------------------
"$CN" report "$T/nothing" >/dev/null 2>"$T/err"
check "report of a missing run: exit 1 naming metrics.csv" "[ $? -eq 1 ] && grep -q '$T/nothing/metrics.csv' '$T/err'"
"$CN" report >/dev/null 2>&1
check "report without a folder: exit 2" "[ $? -eq 2 ]"

[ "$fail" -eq 0 ] || { echo "chromium log:"; tail -5 "$T/chromium.log"; }
finish
