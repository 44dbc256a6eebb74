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
run "$CN" summary --compare models/inception-naive.cnn models/inception-reduced.cnn --memory
expect_rc "summary --compare --memory" 2
expect_text "summary --compare --memory: a single net's option named" err "--memory is not taken with --compare, which compares two nets' totals"
run "$CN" summary --compare models/inception-naive.cnn models/inception-reduced.cnn --batch 2 --json
expect_json "summary --compare --batch 2: the MACs of 2 images" "d['batch'] == 2 and d['a']['macs'] == 2 * $NAIVE_MACS"
# a depthwise separable convolution (README): 3x3 per channel, then 1x1, against one full 3x3 from 64
# to 128 channels on 56x56; B/A = 1/Cout + 1/(k*k) for parameters and MACs alike
printf 'input 56x56x64\nconv 128 3x3 pad=1 bias=no\n' >"$T/full.cnn"
printf 'input 56x56x64\nconv 64 3x3 pad=1 groups=64 bias=no as depthwise\nconv 128 1x1 bias=no as pointwise\n' >"$T/sep.cnn"
FULL=$(( 64 * 9 * 128 )) SEP=$(( 64 * 9 + 64 * 128 ))
run "$CN" summary --compare "$T/full.cnn" "$T/sep.cnn"
expect_rc "summary --compare: depthwise separable" 0
expect_row "summary --compare: depthwise separable parameters" "parameters $("$PY" -c "print(f'{$FULL:,} {$SEP:,} {1/128 + 1/9:.4g}x')")"
expect_row "summary --compare: depthwise separable MACs" "multiplications (MACs) $("$PY" -c "print(f'{56 * 56 * $FULL:,} {56 * 56 * $SEP:,} {1/128 + 1/9:.4g}x')")"

# ---- trace: seed 001's XOR graph ------------------------------------------------------------------
# The notes' net: 2 inputs, a hidden layer of 2 ReLU units with bias (0, -1), one linear output,
# MSE, the four XOR samples as one batch. Their weights are printed as [[1,1],[1,-1]] but worked
# with [[1,1],[1,1]] (Goodfellow's XOR solution, and the only one that gives their H): a slip in
# the notes. Their H is once written [[0,0],[0,0],[1,0],[2,1]], another slip: the second sample
# (0,1) gives h = relu(0+1, 0+1-1) = (1, 0), as the notes' own next line has it. Their MSE is
# 1/2 (y - t)^2; convnet (and PyTorch) takes the mean of (y - t)^2. All of it is zero here.
cat >"$T/xor.txt" <<'W'
# seed 001: hidden W (out x in), hidden bias, output weights, output bias
hidden.weight = 1,1; 1,1
hidden.bias = 0,-1
out.weight = 1,-2
out.bias = 0
W
XOR='input 1x1x2; dense 2 as hidden; relu; dense 1 as out'
run "$CN" trace -e "$XOR" --weights "$T/xor.txt" --input '0,0;0,1;1,0;1,1' --target '0;1;1;0' --loss mse --lr 0.1 --json
expect_rc "trace XOR" 0
expect_json "trace XOR: z = XW^T + b by hand" "d['layers'][1]['output'] == [0, -1, 1, 0, 1, 0, 2, 1]"
expect_json "trace XOR: H after ReLU, the notes' H" "d['layers'][2]['output'] == [0, 0, 1, 0, 1, 0, 2, 1]"
expect_json "trace XOR: y = H [1, -2]^T = XOR" "d['layers'][3]['output'] == [0, 1, 1, 0]"
expect_json "trace XOR: loss 0, every gradient 0, weights unchanged" \
    "d['loss']['value'] == 0 and all(g == 0 for t in d['tensors'] for g in t['grad']) and all(t['before'] == t['after'] for t in d['tensors'])"
run "$CN" trace -e "$XOR" --weights "$T/xor.txt" --input '0,0;0,1;1,0;1,1' --target '0;1;1;0' --loss mse --lr 0.1
expect_formula "trace XOR: sample 4's second hidden unit worked" "z2 = 1*1 + 1*1 + (-1) = 1"
expect_formula "trace XOR: ReLU of -1" "a2 = max(0, -1) = 0"
expect_formula "trace XOR: the output of sample 4" "z1 = 2*1 + 1*(-2) + 0 = 0"
"$PY" tests/trace_check.py 60 <"$T/out" >"$T/check" 2>&1
if [ $? -eq 0 ]; then ok "trace XOR: every worked line recomputes ($(head -c 60 "$T/check"))"; else bad "trace XOR: lines that do not recompute" "$(cat "$T/check")"; fi

# ---- trace: the notes' update w = 0.5 - 0.01 * 0.3 = 0.497 (seed 003) --------------------------
# one weight 0.5, input 1, target 0.35, MSE: dL/dw = 2 (0.5 - 0.35) * 1 = 0.3
echo 'w.weight = 0.5' >"$T/w.txt"
run "$CN" trace -e 'input 1x1x1; dense 1 bias=no as w' --weights "$T/w.txt" --input 1 --target 0.35 --lr 0.01
expect_rc "trace of one weight" 0
expect_formula "trace: the gradient 0.3" "dL/dw[1,1] = 0.3*1 = 0.3"
expect_formula "trace: the notes' update" "w.weight[1,1] = 0.5 - 0.01*0.3 = 0.497"

# ---- trace: cross-entropy with targets that do not sum to 1 -------------------------------------
# dL/dz_k = p_k * sum_j t_j - t_k: with t = (1, 1) and z = (1, 2), p1 = e/(e + e^2) = 0.268941,
# so dz1 = 2 p1 - 1 = -0.462117 (p1 - t1 would be -0.731059); the loss -(z1 - lse) - (z2 - lse)
printf 'o.weight = 1,0;0,1\no.bias = 0,0\n' >"$T/eye.txt"
run "$CN" trace -e 'input 1x1x2; dense 2 as o' --weights "$T/eye.txt" --input 1,2 --target 1,1 --loss ce
expect_rc "trace ce, targets summing to 2" 0
expect_formula "trace ce: the rule with the targets' sum" "dL/dz_k = (e^(z_k) / sum_j e^(z_j) * sum_j t_j - t_k) / 1"
expect_formula "trace ce: dz1 = 2 p1 - 1" "sample 1: dL/dz1 = (e^(1) / (e^(1) + e^(2)) * 2 - 1) / 1 = -0.462117"
expect_text "trace ce: the targets' sum said" err "sample 1's targets sum to 2, not 1"
"$PY" tests/trace_check.py 10 <"$T/out" >"$T/check" 2>&1
if [ $? -eq 0 ]; then ok "trace ce, targets summing to 2: every worked line recomputes"; else bad "trace ce, targets summing to 2: lines that do not recompute" "$(cat "$T/check")"; fi
# a leading zero target leaves no '+' before the first term
run "$CN" trace -e 'input 1x1x2; dense 2 as o' --weights "$T/eye.txt" --input 1,2 --target 0,1 --loss ce
expect_formula "trace ce: the loss's first term without a sign" "L = -(1*(2 - log(e^(1) + e^(2)))) / 1 = 0.313262"
expect_empty "trace ce, one-hot targets: no note" err

# ---- trace: random small nets, every worked line recomputed; one against PyTorch ----------------
# weights and inputs drawn here (seeded), in the JSON weight format
"$PY" - "$T" <<'PYEOF'
import json, random, sys
random.seed(19)
T = sys.argv[1]
def r(*shape):
    if not shape:
        return round(random.uniform(-1, 1), 3)
    return [r(*shape[1:]) for _ in range(shape[0])]
nets = {
    "dense": ("input 1x1x3; dense 4 as a; tanh; dense 2 as b; sigmoid",
              {"a.weight": r(4, 3), "a.bias": r(4), "b.weight": r(2, 4), "b.bias": r(2)}, 3, 3, 2),
    "conv": ("input 5x5x2; conv 2 3x3 pad=1 stride=2 as c; leakyrelu; avgpool 2 stride=1; flatten; dense 3 as d; softmax",
             {"c.weight": r(2, 2, 3, 3), "c.bias": r(2), "d.weight": r(3, 8), "d.bias": r(3)}, 2, 50, 3),
    "dilated": ("input 6x6x2; conv 4 3x3 dilation=2 groups=2 as c; relu; maxpool 2; flatten; dense 2 as d",
                {"c.weight": r(4, 1, 3, 3), "c.bias": r(4), "d.weight": r(2, 4), "d.bias": r(2)}, 2, 72, 2),
    "acts": ("input 1x1x6; dense 6 as a; hardswish; dense 6 as b; silu; dense 4 as c; elu alpha=0.7; dense 3 as e; relu6; dense 2 as f; hardsigmoid",
             {"a.weight": [[4 * v for v in row] for row in r(6, 6)], "a.bias": r(6), "b.weight": r(6, 6), "b.bias": r(6),
              "c.weight": r(4, 6), "c.bias": r(4), "e.weight": [[8 * v for v in row] for row in r(3, 4)], "e.bias": r(3),
              "f.weight": [[6 * v for v in row] for row in r(2, 3)], "f.bias": r(2)}, 3, 6, 2),
    "pools": ("input 7x7x2; avgpool 3x3 stride=2 pad=1 ceil=yes count_pad=no; maxpool 3x3 stride=2 pad=1 dilation=2; flatten; dense 2 as d",
              {"d.weight": r(2, 2), "d.bias": r(2)}, 2, 98, 2),
}
for name, (spec, weights, n, per, out) in nets.items():
    open("%s/%s.cnn" % (T, name), "w").write(spec.replace("; ", "\n") + "\n")
    json.dump(weights, open("%s/%s.json" % (T, name), "w"))
    open("%s/%s.x" % (T, name), "w").write(";".join(",".join(str(r()) for _ in range(per)) for _ in range(n)))
    open("%s/%s.t" % (T, name), "w").write(";".join(str(random.randrange(out)) for _ in range(n)))
PYEOF
for net in dense conv dilated pools acts; do
    loss=ce; [ $net = dense ] && loss=mse; [ $net = acts ] && loss=mse
    target=$(cat "$T/$net.t"); [ $net = dense ] && target='0.2,0.9;0.5,0.1;1,0'; [ $net = acts ] && target='0.2,0.9;0.5,0.1;1,0'
    run "$CN" trace "$T/$net.cnn" --weights "$T/$net.json" --input "$(cat "$T/$net.x")" --target "$target" --loss $loss --lr 0.05
    expect_rc "trace of a random $net net" 0
    "$PY" tests/trace_check.py 40 <"$T/out" >"$T/check" 2>&1
    if [ $? -eq 0 ]; then ok "trace $net: every worked line recomputes ($(head -c 60 "$T/check"))"
    else bad "trace $net: lines that do not recompute" "$(cat "$T/check")"; fi
done
# the conv net's numbers against PyTorch's forward, backward and SGD step on the same weights
run "$CN" trace "$T/conv.cnn" --weights "$T/conv.json" --input "$(cat "$T/conv.x")" --target "$(cat "$T/conv.t")" --loss ce --lr 0.05 --json
"$PY" - "$T" <"$T/out" >"$T/check" 2>&1 <<'PYEOF'
import json, sys
import torch
T = sys.argv[1]
d = json.load(open(T + "/out"))
w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in json.load(open(T + "/conv.json")).items()}
x = torch.tensor([[float(v) for v in row.split(",")] for row in open(T + "/conv.x").read().split(";")], dtype=torch.float64)
x = x.view(-1, 2, 5, 5)
t = torch.tensor([int(v) for v in open(T + "/conv.t").read().split(";")])
h = torch.nn.functional.conv2d(x, w["c.weight"], w["c.bias"], stride=2, padding=1)
h = torch.nn.functional.leaky_relu(h, 0.01)
h = torch.nn.functional.avg_pool2d(h, 2, stride=1)
p = torch.softmax(h.flatten(1) @ w["d.weight"].T + w["d.bias"], dim=1)
loss = torch.nn.functional.nll_loss(torch.log(p), t)
loss.backward()
err = abs(loss.item() - d["loss"]["value"]) / loss.item()
for tensor in d["tensors"]:
    g = w[tensor["name"]].grad.flatten()
    e = (torch.tensor(tensor["grad"], dtype=torch.float64) - g).abs().max().item() / (g.abs().max().item() + 1e-12)
    a = (torch.tensor(tensor["after"], dtype=torch.float64) - (w[tensor["name"]].detach().flatten() - 0.05 * g)).abs().max().item()
    err = max(err, e, a)
print("largest relative difference from PyTorch: %.3g" % err)
sys.exit(0 if err < 1e-5 else 1)
PYEOF
if [ $? -eq 0 ]; then ok "trace conv --json = PyTorch's loss, gradients and SGD step ($(cat "$T/check"))"
else bad "trace conv --json against PyTorch" "$(cat "$T/check")"; fi

# ---- trace: refusals ---------------------------------------------------------------------------
run "$CN" trace -e 'input 28x28x1; conv 16 3x3; dense 10' --weights "$T/w.txt" --input 1
expect_rc "trace of a large net" 1
expect_text "trace of a large net: the limit named" err "over the limit of 20000"
echo 'hidden.weight = 1,1; 1,1' >"$T/part.txt"
run "$CN" trace -e "$XOR" --weights "$T/part.txt" --input '0,0' --target 0
expect_rc "trace with a tensor missing" 1
expect_text "trace with a tensor missing: named with its shape" err "no values for hidden.bias (2, 2 values)"
printf 'hidden.weight = 1,1; 1,1\nhidden.bias 0,-1\n' >"$T/bad.txt"
run "$CN" trace -e "$XOR" --weights "$T/bad.txt" --input '0,0' --target 0
expect_text "trace with a bad weights line: file and line" err "bad.txt:2: expected 'name = values'"
printf 'hidden.weight = 1,1,1; 1,1\n' >"$T/bad.txt"
run "$CN" trace -e "$XOR" --weights "$T/bad.txt" --input '0,0' --target 0
expect_rc "trace with a ragged weight" 2
run "$CN" trace -e "$XOR" --weights "$T/xor.txt" --input '0,0,1' --target 0
expect_text "trace with the wrong input width" err "--input: 3 values a row, but input 1x1x2 takes 2"

# ---- trace --html: the graph in headless Chromium ------------------------------------------------
CHROMIUM=$(command -v chromium || command -v chromium-browser)
run "$CN" trace -e "$XOR" --weights "$T/xor.txt" --input '0,0;0,1;1,0;1,1' --target '0;1;1;0' --html "$T/trace.html"
expect_rc "trace --html" 0
if [ -z "$CHROMIUM" ]; then
    bad "trace --html: chromium is not installed (scripts/setup.sh --check installs it)"
else
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run \
        --user-data-dir="$T/profile" --dump-dom "file://$T/trace.html" >"$T/dom.html" 2>/dev/null
    # 4 samples: 4 graphs of 2 + 2 + 2 + 1 nodes; the hidden sums of sample 4 (2 and 1) in blue
    n_svg=$(grep -o '<svg class="graph"' "$T/dom.html" | wc -l)
    n_nodes=$(grep -o '<circle class="node"' "$T/dom.html" | wc -l)
    if [ "$n_svg" -eq 4 ] && [ "$n_nodes" -eq $((4 * (2 + 2 + 2 + 1))) ]; then ok "trace --html: 4 graphs, 28 nodes"
    else bad "trace --html: $n_svg graphs, $n_nodes nodes" "$(head -c 600 "$T/dom.html")"; fi
    if grep -q 'class="fwd"' "$T/dom.html" && grep -q 'class="grad"' "$T/dom.html" && grep -q '<td>hidden.weight</td>' "$T/dom.html"
    then ok "trace --html: values, gradients and the parameter table"; else bad "trace --html: parts missing"; fi
    if ! grep -qi 'https\?://' "$T/trace.html"; then ok "trace --html: self-contained"; else bad "trace --html links out"; fi
    if grep -q '<h1>One training step of the net given by -e</h1>' "$T/dom.html" && grep -qF "<pre>$XOR</pre>" "$T/dom.html"
    then ok "trace --html of -e: named so, the spec shown"; else bad "trace --html of -e: name and spec"; fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
