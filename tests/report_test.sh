#!/bin/sh
# report_test.sh — `convnet train` writes DIR/report.html and `convnet report DIR` rebuilds it:
# one self-contained file (no http(s):// reference) that headless Chromium parses into four SVG
# charts (loss and accuracy per epoch, loss per step, the weights' gradients), a confusion matrix of classes x classes
# cells, the per-class table, the model table and a grid of inline PNG images, mistakes first;
# class names are escaped. The grid takes the mistakes (and the correct images) in turn from each
# class, so every class with mistakes is in it, and each image's tooltip names its file (IDX: its
# index). `report --data` names the folder given, neither as a test half nor as training images, and
# the Settings line is the run's current one (after `train --resume --epochs N`). During training
# the page is a live one, rewritten after every epoch: it reloads itself, says how far training is,
# and has the charts so far but no test results;
# a failure to write it warns once and training goes on. A long run's loss per step is drawn as
# at most 2000 means. Chromium (Debian's `chromium`, installed by scripts/setup.sh --check) is
# required: without it the test fails.
# Run by CTest: tests/report_test.sh /path/to/convnet
CN=${1:?usage: tests/report_test.sh /path/to/convnet}
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_report.XXXXXX") || exit 1
. "$(dirname "$0")/check.sh"
count() { grep -o "$1" "$2" | wc -l; }
# the points "x,y" of the SVG line of chart TITLE (the <polyline> after its <title>) in FILE, one a
# line; how many; how many at each height ("count:y ...", top first)
line_points() { sed -n "/<title>$1<\/title>/,/<\/svg>/p" "$2" | grep -o '<polyline[^>]*points="[^"]*"' | sed 's/.*points="//; s/"$//' | tr ' ' '\n' | grep ,; }
points() { line_points "$@" | wc -l; }
# the value ticks of chart TITLE's axis in FILE, one a line
yticks() { sed -n "/<title>$1<\/title>/,/<\/svg>/p" "$2" | grep -o 'text-anchor="end">[^<]*<' | sed 's/.*">//; s/<$//'; }
ystats() { line_points "$@" | cut -d, -f2 | sort -n | uniq -c | awk '{ printf "%s:%s ", $1, $2 }'; }
# the true classes of the image grid's mistakes in FILE, in the grid's order; the classes that the
# per-class table gives a mistake, one a line
grid_wrong() { grep -o '<div class="cell wrong" title="[^"]*"' "$1" | sed 's/.*, true //; s/"$//'; }
classes_wrong() {
    grep -o '<tr><td class="l">[0-9]* [^<]*</td><td>[0-9]*</td><td>[0-9]*</td>' "$1" |
        sed 's/<tr><td class="l">[0-9]* //; s/<\/td><td>/|/g; s/<\/td>$//' | awk -F'|' '$2 != $3 { print $1 }'
}
# Fashion-MNIST with --val 0.9: 6000 training images, 93 full batches of 64 (the last partial one is dropped)
STEPS_PER_EPOCH=$(( (60000 - 60000 * 9 / 10) / 64 ))

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
# (with --tta flip: the page gives that accuracy too)
"$CN" train -e 'input 28x28x1; conv 4 3x3 pad=1; relu; maxpool 2x2; dense 10' --epochs 2 --val 0.9 --batch 64 \
    --tta flip --quiet --out "$T/run" >"$T/out" 2>&1
check "train exits 0" "[ $? -eq 0 ]"
tta_said=$(grep -o ', [0-9.]*% with --tta flip' "$T/out" | grep -o '[0-9.]*%')
check "the page gives train's --tta flip accuracy ($tta_said)" "[ -n '$tta_said' ] && grep -q '<b>$tta_said</b> with <code>--tta flip</code>, each with its mirror image (outputs averaged)' '$T/run/report.html'"
check "train writes report.html" "[ -s '$T/run/report.html' ]"
check "no temporary file left in the run folder" "[ -z \"\$(ls -A '$T/run' | grep -v -e '^last.safetensors$' -e '^model.safetensors$' -e '^metrics.csv$' -e '^steps.csv$' -e '^gradients.csv$' -e '^report.html$' -e '^run.json$' -e '^.lock$')\" ]"
check "the page names a net given by -e by its checkpoint" "grep -q '<p class=\"meta\">$T/run/model.safetensors on ' '$T/run/report.html'"
check "the final page does not reload itself (no refresh tag, no live banner)" "! grep -qi 'http-equiv' '$T/run/report.html' && ! grep -q 'class=\"live\"' '$T/run/report.html'"
check "self-contained: no http:// or https:// in the file" "! grep -qi 'https\?://' '$T/run/report.html'"
check "self-contained: no src= other than data: URLs" "! grep -o 'src=\"[^\"]*' '$T/run/report.html' | grep -qv 'src=\"data:image/png;base64,'"

mv "$T/run/report.html" "$T/by-train.html"
"$CN" report "$T/run" --tta flip >"$T/out" 2>&1
check "convnet report DIR exits 0 and names the file" "[ $? -eq 0 ] && grep -q 'report: $T/run/report.html' '$T/out'"
check "convnet report DIR --tta flip rebuilds the same page (its own --tta accuracy: train's)" "cmp -s '$T/by-train.html' '$T/run/report.html'"
"$CN" report "$T/run" --quiet
check "without --tta: no such line" "grep -q 'test accuracy <b>' '$T/run/report.html' && ! grep -q 'with <code>--tta' '$T/run/report.html'"
top_said=$("$CN" eval "$T/run" | grep '^top-2 accuracy ')
check "the page's top-k accuracy line is eval's ($top_said)" \
    "[ -n '$top_said' ] && grep -qF '>$top_said</p>' '$T/run/report.html'"
"$CN" eval "$T/run" --json >"$T/eval.json"
"$CN" eval "$T/run" --top 9 >"$T/top9.txt"
"$CN" eval "$T/run" --top 40 >"$T/top40.txt"
check "eval --top 9: top-2, 3, 5 and 9 as --json's top_accuracy gives them; --top 40 of 10 classes: up to top-5" "/usr/bin/python3 - '$T/eval.json' '$T/top9.txt' '$T/top40.txt' <<'PY'
import json, sys
top = json.load(open(sys.argv[1]))['top_accuracy']
def line(ks):
    return 'top-%d accuracy %.2f%%, ' % (ks[0], 100 * top[ks[0] - 1]) + ', '.join('top-%d %.2f%%' % (k, 100 * top[k - 1]) for k in ks[1:])
said = [next(l for l in open(f) if l.startswith('top-')) for f in sys.argv[2:4]]
want = [line([2, 3, 5, 9]), line([2, 3, 5])]
sys.exit(not (len(top) == 10 and top[9] == 1 and all(s == w + ' (the true class among the k most likely)\\n' for s, w in zip(said, want))))
PY"
check "the page's most frequent mistakes are eval --json's" "/usr/bin/python3 - '$T/eval.json' '$T/run/report.html' <<'PY'
import json, sys
e, page = json.load(open(sys.argv[1])), open(sys.argv[2]).read()
names = [c['name'] for c in e['per_class']]
said = ', '.join('%s as %s %d' % (names[m['true']], names[m['predicted']], m['count']) for m in e['most_confused'])
sys.exit(not (len(e['most_confused']) == 5 and '>The most frequent mistakes: ' + said + '.</p>' in page))
PY"
"$CN" report "$T/run" --tta flip-shift --quiet
tta_eval=$("$CN" eval "$T/run" --tta flip-shift --json | grep -o '"accuracy": *[0-9.]*' | head -1 | grep -o '[0-9.]*$')
check "report --tta flip-shift gives eval --tta flip-shift's accuracy ($tta_eval)" \
    "[ -n '$tta_eval' ] && grep -q \"<b>\$(awk 'BEGIN { printf \"%.2f\", 100 * $tta_eval }')%</b> with <code>--tta flip-shift</code>, each in 10 views\" '$T/run/report.html'"
"$CN" report "$T/run" --tta flop >"$T/out" 2>&1
check "report --tta flop: exit 2, naming the nearest choice" "[ $? -eq 2 ] && grep -q \"unknown 'flop' (did you mean 'flip'?)\" '$T/out'"
"$CN" report "$T/run" --tta flip --quiet

chrome --dump-dom "file://$T/run/report.html" >"$T/dom.html"
check "chromium --dump-dom exits 0" "[ $? -eq 0 ] && [ -s '$T/dom.html' ]"
check "DOM: four SVG charts" "[ \$(count '<svg class=\"chart\"' '$T/dom.html') -eq 4 ]"
check "DOM: seven lines (train and validation, loss and accuracy; loss per step; the gradients of conv1.weight and dense1.weight)" "[ \$(count '<polyline class=\"series\"' '$T/dom.html') -eq 7 ]"
check "DOM: the weight gradients per epoch, 2 points a tensor, on a log scale, first and last named" "[ \$(points 'Weight gradients per epoch' '$T/dom.html') -eq 4 ] && grep -q '>1e-[0-9]*</text>' '$T/dom.html' && grep -q '>conv1.weight (first)<' '$T/dom.html' && grep -q '>dense1.weight (last)<' '$T/dom.html'"
check "DOM: axis labels" "grep -q '>epoch</text>' '$T/dom.html' && grep -q '>accuracy (%)</text>' '$T/dom.html' && grep -q '>step</text>' '$T/dom.html'"
check "DOM: the loss per step, one point for each of the 2 x $STEPS_PER_EPOCH steps" "[ \$(points 'Loss per step' '$T/dom.html') -eq $((2 * STEPS_PER_EPOCH)) ]"
check "DOM: confusion matrix of 10 x 10 shaded cells" "[ \$(count '<td class=\"cm\" style=\"background:' '$T/dom.html') -eq 100 ]"
check "DOM: per-class table with 10 rows" "[ \$(count '<span class=\"bar\"' '$T/dom.html') -eq 10 ]"
check "DOM: 48 inline PNG images" "[ \$(count '<img alt=\"test image [0-9]*\" src=\"data:image/png;base64,' '$T/dom.html') -eq 48 ]"
check "DOM: mistakes first (the first cell is a mistake)" "grep -o '<div class=\"cell[^\"]*\"' '$T/dom.html' | head -1 | grep -q wrong"
check "DOM: the model table lists the conv layer and the total" "grep -q '<td class=\"l\">conv</td>' '$T/dom.html' && grep -q '>total</th>' '$T/dom.html'"
check "DOM: Fashion-MNIST class names" "grep -q 'Ankle boot' '$T/dom.html'"
missed=$(classes_wrong "$T/run/report.html" | while read -r c; do grid_wrong "$T/run/report.html" | grep -qxF "$c" || echo "$c"; done)
check "the grid: every class with mistakes ($(classes_wrong "$T/run/report.html" | wc -l) in the per-class table) has one${missed:+ (missing: $missed)}" \
    "[ -z '$missed' ] && [ \$(classes_wrong '$T/run/report.html' | wc -l) -ge 2 ]"
check "DOM: each IDX image's tooltip gives its index and its classes" "[ \$(count '<div class=\"cell[^\"]*\" title=\"image [0-9]* (from 0): predicted [^\"]*, true [^\"]*\">' '$T/dom.html') -eq 48 ]"

chrome --hide-scrollbars --screenshot="$T/shot.png" --window-size=1200,2000 "file://$T/run/report.html" >/dev/null
check "screenshot: a non-empty PNG" "[ -s '$T/shot.png' ] && [ \"\$(head -c 4 '$T/shot.png' | od -An -c | tr -d ' ')\" = '211PNG' ]"
check "screenshot: more than a blank page (> 20 KB)" "[ \$(wc -c <'$T/shot.png') -gt 20000 ]"

# ---- the live page: a run stopped (SIGSTOP) at its 120th step, in its second epoch ----------------
# The fault switch stops the process at every step from the 120th on, so the run is not continued
# (SIGCONT): it is killed and resumed, which also shows the live page of a resumed run.
CONVNET_FAULT=step:120 CONVNET_FAULT_SIGNAL=STOP "$CN" train -e 'input 28x28x1; conv 4 3x3 pad=1; relu; maxpool 2x2; dense 10' \
    --epochs 3 --val 0.9 --batch 64 --quiet --out "$T/live" >"$T/out" 2>&1 &
pid=$!
i=0
while [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" != T ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
check "the run stops itself in its second epoch" "[ \"\$(cut -d' ' -f3 /proc/$pid/stat)\" = T ] && [ \$(grep -c . '$T/live/metrics.csv') -eq 2 ]"
check "mid-run: report.html exists after the first epoch" "[ -s '$T/live/report.html' ]"
check "mid-run: self-contained (no http:// or https://, no src=)" "! grep -qi 'https\?://' '$T/live/report.html' && ! grep -q 'src=' '$T/live/report.html'"
chrome --dump-dom "file://$T/live/report.html" >"$T/dom-live.html"
check "mid-run DOM: reloads itself (meta refresh)" "grep -q '<meta http-equiv=\"refresh\" content=\"[0-9]*\">' '$T/dom-live.html'"
check "mid-run DOM: the banner with the epoch and the time" "grep -q 'training: epoch 1 of 3 done, updated at [0-9-]* [0-9:]*' '$T/dom-live.html'"
check "mid-run DOM: four SVG charts, seven lines" "[ \$(count '<svg class=\"chart\"' '$T/dom-live.html') -eq 4 ] && [ \$(count '<polyline class=\"series\"' '$T/dom-live.html') -eq 7 ]"
check "mid-run DOM: the epoch charts have epoch 1's points" "grep -q '<title>epoch 1: ' '$T/dom-live.html' && ! grep -q '<title>epoch 2: ' '$T/dom-live.html'"
check "mid-run DOM: the loss per step of the first epoch ($STEPS_PER_EPOCH points)" "[ \$(points 'Loss per step' '$T/dom-live.html') -eq $STEPS_PER_EPOCH ]"
check "mid-run DOM: no test results yet, and says when they come" "grep -q 'the test results appear when training ends' '$T/dom-live.html' && [ \$(count '<td class=\"cm\"' '$T/dom-live.html') -eq 0 ] && [ \$(count '<img ' '$T/dom-live.html') -eq 0 ]"
check "mid-run DOM: the model table" "grep -q '<td class=\"l\">conv</td>' '$T/dom-live.html' && grep -q '>total</th>' '$T/dom-live.html'"
chrome --hide-scrollbars --screenshot="$T/shot-live.png" --window-size=1200,1300 "file://$T/live/report.html" >/dev/null
check "mid-run screenshot: more than a blank page (> 20 KB)" "[ -s '$T/shot-live.png' ] && [ \$(wc -c <'$T/shot-live.png') -gt 20000 ]"
kill -9 $pid
wait $pid 2>/dev/null
cp -r "$T/live" "$T/live-broken"
"$CN" train --resume "$T/live" --quiet >"$T/out" 2>&1
check "resumed, the run ends (exit 0)" "[ $? -eq 0 ]"
chrome --dump-dom "file://$T/live/report.html" >"$T/dom-end.html"
check "at the end: no refresh tag and no banner" "! grep -qi 'http-equiv' '$T/dom-end.html' && ! grep -q 'training: epoch' '$T/dom-end.html'"
check "at the end: the test results (10 x 10 confusion cells, 48 images)" "[ \$(count '<td class=\"cm\"' '$T/dom-end.html') -eq 100 ] && [ \$(count '<img ' '$T/dom-end.html') -eq 48 ] && grep -q 'test accuracy <b>' '$T/dom-end.html'"
check "at the end: the loss per step of all 3 epochs ($((3 * STEPS_PER_EPOCH)) points, the first epoch's kept)" "[ \$(points 'Loss per step' '$T/dom-end.html') -eq $((3 * STEPS_PER_EPOCH)) ]"

# a live page that cannot be written (report.html a folder): one warning, and training goes on
rm -f "$T/live-broken/report.html" && mkdir "$T/live-broken/report.html"
"$CN" train --resume "$T/live-broken" --quiet >"$T/out" 2>"$T/err"
status=$?
check "live page not writable: one warning, naming the page" "[ \$(grep -c 'warning: .*live-broken/report.html' '$T/err') -eq 1 ]"
check "... and training goes on to the last epoch (the final report then fails: exit 1)" "[ \$(grep -c . '$T/live-broken/metrics.csv') -eq 4 ] && [ $status -eq 1 ]"

# ---- a long run's loss per step: at most 2000 points, each the mean of its bucket ------------------
# 5000 steps whose losses go 1, 2, 3, 1, 2, 3, ...: buckets of 3 steps, each of mean 2, but the
# last, of 2 steps (1, 2), of mean 1.5
cp -r "$T/run" "$T/long" && rm -f "$T/long/.lock"
awk 'BEGIN { print "epoch,step,loss,lr"; for (i = 1; i <= 5000; i++) printf "%d,%d,%d,0.01\n", (i - 1) / 2500 + 1, i, (i - 1) % 3 + 1 }' \
    >"$T/long/steps.csv"
"$CN" report "$T/long" --quiet
check "5000 steps: 1667 points (means of 3 steps) in the chart" "[ \$(points 'Loss per step' '$T/long/report.html') -eq 1667 ] && grep -q 'train, mean of 3<' '$T/long/report.html'"
set -- $(ystats 'Loss per step' "$T/long/report.html")
check "... 1666 of them at one height (mean 2) and one lower (mean 1.5)" "[ $# -eq 2 ] && [ '${1%%:*}' = 1666 ] && [ '${2%%:*}' = 1 ]"

check "no verdict on the gradients of a net that learns" "! grep -q 'Vanishing gradients' '$T/run/report.html'"
# ---- eight sigmoid layers: the report says the gradients vanish ------------------------------------
"$CN" train models/deep-sigmoid.cnn --init xavier --epochs 1 --val 0.9 --quiet --out "$T/sigmoid" >/dev/null 2>&1
check "the page names a net trained from a file by that file" "grep -q '<p class=\"meta\">models/deep-sigmoid.cnn on ' '$T/sigmoid/report.html'"
check "models/deep-sigmoid.cnn: the report's verdict, vanishing gradients at epoch 1" \
    "grep -q '<b>Vanishing gradients:</b> at epoch 1 the gradient of dense1.weight is [0-9.e-]* times that of dense9.weight' '$T/sigmoid/report.html'"

# ---- a run of an older convnet, without gradients.csv: the page has no gradient chart ---------------
cp -r "$T/run" "$T/old" && rm -f "$T/old/.lock" "$T/old/gradients.csv"
"$CN" report "$T/old" --quiet
check "a run without gradients.csv: three charts, no gradient chart" \
    "[ \$(count '<svg class=\"chart\"' '$T/old/report.html') -eq 3 ] && ! grep -q 'Weight gradients per epoch' '$T/old/report.html'"
printf 'epoch,tensor,weight_rms,grad_rms\n1,conv1.weight,0.5\n' >"$T/old/gradients.csv"
"$CN" report "$T/old" --quiet 2>"$T/err"
check "a gradients.csv cut short: exit 1 naming the file and line" "[ $? -eq 1 ] && grep -q 'old/gradients.csv:2: expected epoch,tensor,weight_rms,grad_rms' '$T/err'"

# ---- a run whose metrics.csv is gone: the page without the epoch charts, said -----------------------
cp -r "$T/run" "$T/nometrics" && rm -f "$T/nometrics/.lock" "$T/nometrics/metrics.csv"
"$CN" report "$T/nometrics" --quiet 2>"$T/err"
check "a run without metrics.csv: exit 0, said on stderr" "[ $? -eq 0 ] && grep -q 'nometrics/metrics.csv is missing: the page has no loss and accuracy per epoch' '$T/err'"
check "a run without metrics.csv: no epoch charts, said; the step and gradient charts and the test accuracy stay" \
    "[ \$(count '<svg class=\"chart\"' '$T/nometrics/report.html') -eq 2 ] && ! grep -q 'Loss per epoch' '$T/nometrics/report.html' && grep -q 'no metrics.csv: no loss and accuracy per epoch' '$T/nometrics/report.html' && grep -q 'Loss per step' '$T/nometrics/report.html' && grep -q 'test accuracy <b>[0-9.]*%</b>' '$T/nometrics/report.html' && grep -q 'best epoch (by validation accuracy) 2' '$T/nometrics/report.html'"

# ---- an image folder whose class names need escaping; no test half: the whole folder --------------
/usr/bin/python3 tests/pngwrite.py "$T/shapes" "<b>blue" "r&d \"green\"" red --count 30 --seed 2 --channels 2,1,0
"$CN" train -e 'input 12x12x3; conv 4 3x3 pad=1; relu; globalavgpool; dense 3' --data "$T/shapes" --epochs 2 \
    --batch 16 --val 0.25 --quiet --out "$T/folder" >"$T/out" 2>&1
check "train on an image folder writes report.html" "[ $? -eq 0 ] && [ -s '$T/folder/report.html' ]"
check "class names escaped in the file" "grep -q '&lt;b&gt;blue' '$T/folder/report.html' && grep -q 'r&amp;d &quot;green&quot;' '$T/folder/report.html' && ! grep -q '<b>blue' '$T/folder/report.html'"
chrome --dump-dom "file://$T/folder/report.html" >"$T/dom2.html"
check "DOM: the names stay text (no <b> element from a class name)" "! grep -q '<b>blue' '$T/dom2.html' && grep -q '&lt;b&gt;blue' '$T/dom2.html'"
check "DOM: 3 x 3 confusion cells, 48 images" "[ \$(count '<td class=\"cm\"' '$T/dom2.html') -eq 9 ] && [ \$(count '<img ' '$T/dom2.html') -eq 48 ]"
check "no test half, the run's own folder: 'training images included'" "grep -q 'accuracy (no test half: training images included) <b>[0-9.]*%</b>, loss [0-9.]* on 90 images of $T/shapes (all of it)' '$T/folder/report.html'"
check "an image's tooltip: its file and classes, escaped" "grep -q 'title=\"$T/shapes/&lt;b&gt;blue/[0-9]*.png: predicted [^\"]*, true &lt;b&gt;blue\"' '$T/folder/report.html' && grep -q 'title=\"$T/shapes/r&amp;d &quot;green&quot;/[0-9]*.png: predicted ' '$T/folder/report.html'"

# ---- a folder in halves whose test half has the colours of other classes: every test image a mistake
# circle, square and triangle are red, green and blue in train/ and val/, but blue, red and green in
# test/: a net that learns the colours predicts test/circle/* triangle, test/square/* circle and
# test/triangle/* square
/usr/bin/python3 tests/pngwrite.py "$T/split/train" circle square triangle --count 20 --seed 3 --channels 0,1,2
/usr/bin/python3 tests/pngwrite.py "$T/split/val" circle square triangle --count 10 --seed 4 --channels 0,1,2
/usr/bin/python3 tests/pngwrite.py "$T/split/test" circle square triangle --count 12 --seed 5 --channels 2,0,1
"$CN" train -e 'input 12x12x3; globalavgpool; dense 3' --data "$T/split" --epochs 4 --batch 8 --quiet --out "$T/split-run" >"$T/out" 2>&1
check "halves, colours swapped in test/: validation 100% at epoch 4, every test image a mistake" "[ $? -eq 0 ] && awk -F, 'NR == 5 && \$5 == 1 { ok = 1 } END { exit !ok }' '$T/split-run/metrics.csv' && grep -q 'test accuracy 0.00%' '$T/out'"
"$CN" report "$T/split-run" --images 12 --quiet
check "round-robin: 12 mistakes, 4 of each class (not the first 12 in file order, all circles)" \
    "[ \"\$(grid_wrong '$T/split-run/report.html' | sort | uniq -c | awk '{ printf \"%s:%s \", \$1, \$2 }')\" = '4:circle 4:square 4:triangle ' ]"
check "round-robin: each class's first mistake, then each one's second, each titled with its file" \
    "grep -o '<div class=\"cell wrong\" title=\"[^\"]*\"' '$T/split-run/report.html' | sed -n '1p;2p;3p;4p' | sed 's/.*title=\"//; s/\"$//' | tr '\\n' '|' | grep -qx '$T/split/test/circle/000.png: predicted triangle, true circle|$T/split/test/square/000.png: predicted circle, true square|$T/split/test/triangle/000.png: predicted square, true triangle|$T/split/test/circle/001.png: predicted triangle, true circle|'"
# --data: a folder given is named as given, neither "test" nor "training images"; the run's own
# page it replaces is said, with the command that writes it again
"$CN" report "$T/split-run" --data "$T/split/val" >"$T/out"
check "report --data says its page replaces the run's own" \
    "grep -qx \"(on $T/split/val, in place of the run's own page, which \\\`convnet report $T/split-run\\\` writes again)\" '$T/out'"
check "report --data split/val: 'accuracy ... on 30 images of DIR/val (--data)'" \
    "grep -q '&middot; accuracy <b>100.00%</b>, loss [0-9.]* on 30 images of $T/split/val (--data)' '$T/split-run/report.html' && ! grep -q 'training images included' '$T/split-run/report.html' && ! grep -q 'test accuracy' '$T/split-run/report.html' && grep -q '<h2>Images</h2>' '$T/split-run/report.html'"
"$CN" report "$T/split-run" --data "$T/split" --quiet
check "report --data of a folder with a test half: 'test accuracy' on its test half" \
    "grep -q '&middot; test accuracy <b>0.00%</b>, loss [0-9.]* on 36 images of $T/split/test<' '$T/split-run/report.html' && grep -q '<h2>Test images</h2>' '$T/split-run/report.html'"

# --resume --epochs 5 of the 4-epoch run: no epoch beats validation's 100% (the best stays an earlier
# epoch), so the best checkpoint keeps --epochs 4; the page gives the run's settings as they are now
"$CN" train --resume "$T/split-run" --epochs 5 --quiet >"$T/out" 2>&1
check "resumed to 5 epochs: the page says 5 epochs, the best epoch still one of the first 4" \
    "[ $? -eq 0 ] && grep -q '&middot; 5 epochs &middot; best epoch (by validation accuracy) [1-4] ' '$T/split-run/report.html'"
check "resumed to 5 epochs: Settings has --epochs 5 (last.safetensors'), not the best checkpoint's 4" \
    "grep -q '<p class=\"meta\">Settings: <code>-e input 12x12x3; globalavgpool; dense 3 --data $T/split --epochs 5 --batch 8 </code> &middot; images resized: <code>antialias</code></p>' '$T/split-run/report.html'"
mv "$T/split-run/last.safetensors" "$T/last.safetensors"
"$CN" report "$T/split-run" --quiet
check "without last.safetensors: the best checkpoint's settings (--epochs 4)" "grep -q 'Settings: <code>[^<]* --epochs 4 ' '$T/split-run/report.html'"
mv "$T/last.safetensors" "$T/split-run/last.safetensors"

# ---- --val 0: no validation, so the best epoch by the training figures and no validation line ----
"$CN" train -e 'input 12x12x3; dense 3' --data "$T/shapes" --epochs 1 --batch 16 --val 0 --quiet --out "$T/noval" >/dev/null 2>&1
check "--val 0: the best epoch by training accuracy, no validation series" \
    "grep -q 'best epoch (by training accuracy) 1' '$T/noval/report.html' && ! grep -q 'by validation' '$T/noval/report.html' && ! grep -q '>validation<' '$T/noval/report.html' && grep -q '>validation<' '$T/folder/report.html'"

# one epoch: one point a line; the loss axis not below 0 nor the accuracy's above 100, around the value
loss1=$(awk -F, 'NR == 2 { print $2 }' "$T/noval/metrics.csv")
check "one epoch: the loss axis from >= 0 ($(yticks 'Loss per epoch' "$T/noval/report.html" | tr '\n' ' ')), around the loss $loss1" \
    "[ -z \"\$(yticks 'Loss per epoch' '$T/noval/report.html' | grep -- '^-')\" ] && [ \$(yticks 'Loss per epoch' '$T/noval/report.html' | wc -l) -ge 3 ] && awk -v l=$loss1 'NR == 1 { lo = \$1 } { hi = \$1 } END { exit !(lo <= l && l <= hi && hi - lo <= l) }' \"\$(yticks 'Loss per epoch' '$T/noval/report.html' >'$T/ticks'; echo '$T/ticks')\""
check "one epoch: the accuracy axis not above 100" "[ -z \"\$(yticks 'Accuracy per epoch' '$T/noval/report.html' | awk '\$1 > 100')\" ]"

# ---- errors ---------------------------------------------------------------------------------------
"$CN" report "$T/nothing" >/dev/null 2>"$T/err"
check "report of a missing run: exit 1 naming the folder, no note of a CSV" "[ $? -eq 1 ] && grep -q '$T/nothing: cannot open' '$T/err' && ! grep -q 'csv' '$T/err'"
"$CN" report >/dev/null 2>&1
check "report without a folder: exit 2" "[ $? -eq 2 ]"

[ "$fail" -eq 0 ] || { echo "chromium log:"; tail -5 "$T/chromium.log"; }
finish
