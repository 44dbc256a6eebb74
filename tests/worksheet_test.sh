#!/bin/sh
# worksheet_test.sh — the worksheet commands of issue 19 as a student uses them: `calc step`
# (one optimizer update), `calc rf`, pooling windows and several kinds at once, `summary
# --compare`, the friendlier input (a family's word alone, long loss names, numbers as separate
# words, values beyond float's range, channels-first input shapes) and `trace`.
# Run by CTest from the repository root: tests/worksheet_test.sh /path/to/convnet
# Every expected number is computed here by hand or with python, not copied from the output.
CN=${1:?usage: tests/worksheet_test.sh /path/to/convnet}
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_ws.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP

. "$(dirname "$0")/cli_lib.sh"

# ---- calc step: the notes' w = 0.5 - 0.01 * 0.3 = 0.497 (seed 003) ----------------------------
run "$CN" calc step sgd --w 0.5 --grad 0.3 --lr 0.01 --explain
expect_rc "calc step sgd" 0
expect_formula "calc step sgd: the update filled in" "w = 0.5 - 0.01 * 0.3 = 0.497"
expect_line "calc step sgd: 0.497" out "0.497"

# Adam's first step from zero state, by hand: m = 0.1 g = 0.03, v = 0.001 g^2 = 9e-05,
# m_hat = 0.3, v_hat = 0.09, w = 0.5 - 0.01 * 0.3 / (0.3 + 1e-8) = 0.49 (to 6 digits)
run "$CN" calc step adam --w 0.5 --grad 0.3 --lr 0.01 --explain
expect_rc "calc step adam" 0
expect_formula "calc step adam: m" "m = 0.9 * 0 + (1 - 0.9) * 0.3 = 0.03"
expect_formula "calc step adam: v" "v = 0.999 * 0 + (1 - 0.999) * 0.3^2 = 9e-05"
expect_formula "calc step adam: m_hat" "m_hat = 0.03 / (1 - 0.9^1) = 0.3"
expect_line "calc step adam: w" out "0.49"

# momentum with a state, two weights given as separate words (one negative), by hand:
# v = 0.9*0.1 + 0.3 = 0.39, w = 0.5 - 0.01*0.39 = 0.4961; v = 0.9*0.1 - 0.2 = -0.11, w = 1.0011
run "$CN" calc step momentum --w 0.5 1 --grad 0.3 -0.2 --v 0.1 0.1 --json
expect_rc "calc step momentum, values as words" 0
expect_json "calc step momentum: weights and buffer" \
    "abs(d['result'][0] - 0.4961) < 1e-6 and abs(d['result'][1] - 1.0011) < 1e-6 and abs(d['v'][1] + 0.11) < 1e-6"

# AdamW's decoupled decay, t = 2, by hand in python (torch's rule)
run "$CN" calc step adamw --w 0.8 --grad -0.5 --lr 0.1 --weight-decay 0.1 --t 2 --m 0.2 --v 0.04 --json
expect_rc "calc step adamw" 0
expect_json "calc step adamw: w, m, v" "$(cat <<'PYEOF'
(lambda w, g, lr, wd, t, m, v: (lambda w1, m1, v1: abs(d['result'][0] - (w1 - lr * (m1 / (1 - 0.9**t)) / (math.sqrt(v1 / (1 - 0.999**t)) + 1e-8))) < 1e-6
    and abs(d['m'][0] - m1) < 1e-7 and abs(d['v'][0] - v1) < 1e-7)(w * (1 - lr * wd), 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g))(0.8, -0.5, 0.1, 0.1, 2, 0.2, 0.04)
PYEOF
)"
run "$CN" calc step sgd --w 0.5 --grad 0.3 --m 1
expect_rc "calc step sgd --m" 2
expect_text "calc step sgd --m: says which kinds keep it" err "for adam and adamw only"
run "$CN" calc step rmsprop --w 1 --grad 1
expect_rc "calc step rmsprop" 2
expect_text "calc step rmsprop: names the kinds" err "name sgd, momentum, nesterov, adam or adamw"

# ---- calc rf: 3x3, 3x3, 2x2/2, 3x3 -> rf 3, 5, 6, 10; jump 1, 1, 2, 2 ---------------------------
run "$CN" calc rf --kernels 3 3 2 3 --strides 1 1 2 1 --explain
expect_rc "calc rf" 0
expect_formula "calc rf: layer 4" "layer 4 (k 3, s 1, d 1): rf = 6 + (3 - 1) * 1 * 2 = $((6 + 2 * 2)), j = 2 * 1 = 2"
expect_line "calc rf: result" out "receptive field $((1 + 2 + 2 + 1 + 2 * 2)), jump 2"
run "$CN" calc rf --kernels 3,3 --strides 1,1 --dilations 1,2 --json
expect_json "calc rf --dilations: 1 + 2 + 2*2 = 7" "d['result'] == 7 and d['jump'] == 1 and [l['rf'] for l in d['layers']] == [3, 7]"
run "$CN" calc rf --kernels 3,3 --strides 1
expect_rc "calc rf: strides for fewer layers" 2
run "$CN" calc rf --kernels 3,0
expect_rc "calc rf: kernel 0" 2

# ---- calc pool: every window, and several kinds at once --------------------------------------
M='2,2,7,3;9,4,6,1;8,5,2,4;3,1,2,6'
run "$CN" calc pool all --input "$M" --size 2 --explain
expect_rc "calc pool all" 0
expect_formula "calc pool all: the max window" "y11 = max(2, 2, 9, 4) = 9"
expect_formula "calc pool all: the min window" "y12 = min(7, 3, 6, 1) = 1"
expect_formula "calc pool all: the avg window" "y22 = (2 + 4 + 2 + 6) / 4 = $("$PY" -c 'print((2 + 4 + 2 + 6) / 4)')"
run "$CN" calc pool max,avg --input "$M" --size 2 --json
expect_json "calc pool max,avg --json" "d['result'] == {'max': [[9, 7], [8, 6]], 'avg': [[4.25, 4.25], [4.25, 3.5]]}"
run "$CN" calc pool max,max --input "$M" --size 2
expect_rc "calc pool max,max" 2

# ---- friendlier input ------------------------------------------------------------------------
run "$CN" calc bce --target 1 --pred 0.5
expect_rc "calc bce" 2
expect_text "calc bce: suggests calc loss bce" err "did you mean 'calc loss bce'?"
run "$CN" calc adam
expect_text "calc adam: suggests calc step adam" err "did you mean 'calc step adam'?"
run "$CN" calc loss cross-entropy --target 0,1,0 --pred 0.2,0.7,0.1
expect_rc "calc loss cross-entropy" 0
expect_line "calc loss cross-entropy: -ln 0.7" out "$("$PY" -c 'import math; print("%.6g" % -math.log(0.7))')"
# a zero probability: log 0 taken as -100, as BCE does (PyTorch's BCELoss clamp)
run "$CN" calc loss ce --target 1,0 --pred 0,1
expect_rc "calc loss ce with p = 0" 0
expect_line "calc loss ce with p = 0: 100" out "100"
run "$CN" calc reg l2 --lambda 0.01 --weights 0.5 -1 2
expect_rc "calc reg, weights as words" 0
expect_line "calc reg, weights as words: 0.01 * (0.25 + 1 + 4)" out "$("$PY" -c 'print("%.6g" % (0.01 * (0.25 + 1 + 4)))')"
run "$CN" calc softmax 1e39 0
expect_rc "calc softmax 1e39" 2
expect_text "calc softmax 1e39: refused, not NaN" err "'1e39' is beyond the range of a float"
run "$CN" summary -e 'input 3x64x64; conv 8 3x3'
expect_rc "summary of a channels-first input" 0
expect_text "channels-first input: the warning" err "warning: -e:1: input 3x64x64 is read as height x width x channels"
expect_text "channels-first input: the fix" err "write input 64x64x3"
run "$CN" summary -e 'input 28x28x1; conv 8 3x3'
expect_empty "a HxWxC input: no warning" err

# ---- summary --compare: the 1x1 bottleneck worksheet -----------------------------------------
# naive: conv 128 3x3 and conv 32 5x5 on 192 channels; reduced: 1x1 to 64 and 16 first
NAIVE=$(( 128 * 192 * 9 + 128 + 32 * 192 * 25 + 32 ))
REDUCED=$(( 64 * 192 + 64 + 128 * 64 * 9 + 128 + 16 * 192 + 16 + 32 * 16 * 25 + 32 ))
NAIVE_MACS=$(( 32 * 32 * (128 * 192 * 9 + 32 * 192 * 25) ))
REDUCED_MACS=$(( 32 * 32 * (64 * 192 + 128 * 64 * 9 + 16 * 192 + 32 * 16 * 25) ))
run "$CN" summary --compare models/inception-naive.cnn models/inception-reduced.cnn
expect_rc "summary --compare" 0
expect_row "summary --compare: parameters" "parameters $("$PY" -c "print(f'{$NAIVE:,} {$REDUCED:,} {$REDUCED / $NAIVE:.4g}x')")"
expect_row "summary --compare: multiplications" "multiplications (MACs) $("$PY" -c "print(f'{$NAIVE_MACS:,} {$REDUCED_MACS:,} {$REDUCED_MACS / $NAIVE_MACS:.4g}x')")"
run "$CN" summary --compare models/inception-naive.cnn models/inception-reduced.cnn --json
expect_json "summary --compare --json" "d['a']['params'] == $NAIVE and d['b']['macs'] == $REDUCED_MACS and abs(d['ratio']['params'] - $REDUCED / $NAIVE) < 1e-12"
run "$CN" summary --compare models/inception-naive.cnn
expect_rc "summary --compare with one file" 2

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
