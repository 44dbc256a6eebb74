#!/bin/sh
# cli_test.sh — the convnet command line as a user sees it: exit status (0 ok, 1 error in the
# user's input, 2 bad usage), messages on stderr, --help, the worksheet arithmetic of
# `summary --explain`, JSON that parses, memory/fit sections, and `calc`.
# Run by CTest from the repository root: tests/cli_test.sh /path/to/convnet
# Every expected number is computed here (shell arithmetic or python), not copied from output.
# Prints one line per check and ends with "N passed, M failed"; exits 1 if any failed.

CN=${1:?usage: tests/cli_test.sh /path/to/convnet}
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP

. "$(dirname "$0")/cli_lib.sh"

[ -x "$CN" ] || { echo "FAIL $CN is not an executable"; echo "0 passed, 1 failed"; exit 1; }
[ -x "$PY" ] || bad "$PY is needed for the JSON checks"

# ---- numbers of the worked example, computed here -------------------------------------------
# input 64x64x3; conv 32 3x3 pad=1
O=$(( (64 - 3 + 2 * 1) / 1 + 1 ))             # 64
PARAMS=$(( (3 * 3 * 3 + 1) * 32 ))              # 896
MACS=$(( 64 * 64 * 32 * 3 * 3 * 3 ))            # 3538944
MACS_TEXT=$("$PY" -c "print(f'{$MACS:,}')")     # 3,538,944
SPEC='input 64x64x3; conv 32 3x3 pad=1'

# ---- top level --------------------------------------------------------------------------------
run "$CN" --help
expect_rc "convnet --help" 0
expect_text "convnet --help prints usage on stdout" out "usage: convnet"
expect_text "convnet --help lists summary" out "summary"
expect_text "convnet --help lists calc" out "calc"
expect_empty "convnet --help: stderr empty" err

# every command of the list takes --help: its usage on stdout, exit 0, nothing on stderr
for c in $(sed -n '/^commands:/,/^$/s/^  \([a-z]*\) .*/\1/p' "$T/out"); do
    run "$CN" "$c" --help
    expect_rc "$c --help" 0
    expect_text "$c --help: its usage" out "usage: convnet $c"
    expect_empty "$c --help: stderr empty" err
done

run "$CN"
expect_rc "convnet with no command" 2
expect_text "convnet with no command: usage on stderr" err "usage: convnet"

run "$CN" sumary -e "$SPEC"
expect_rc "unknown command 'sumary'" 2
expect_text "unknown command: did you mean" err "unknown command 'sumary' (did you mean 'summary'?)"
expect_empty "unknown command: stdout empty" out

# trace --weights with the text itself in place of a file: the same working as from the file
run "$CN" trace models/xor-seed001.cnn --weights models/xor-seed001.txt --input '0,0;0,1' --target '0;1' --loss mse
cp "$T/out" "$T/trace_file.out"
run "$CN" trace models/xor-seed001.cnn --weights "$(cat models/xor-seed001.txt)" --input '0,0;0,1' --target '0;1' --loss mse
expect_rc "trace --weights TEXT" 0
if cmp -s "$T/out" "$T/trace_file.out"; then ok "trace --weights TEXT: the working of the file's weights"; else bad "trace --weights TEXT differs from the file's" "$(shown)"; fi
run "$CN" trace -e 'input 1x1x2; dense 1' --weights 'dense1.weight = 1,1' --input '0,1'
expect_rc "trace --weights TEXT missing a tensor" 1
expect_text "trace --weights TEXT missing a tensor, named" err "--weights: no values for dense1.bias (1, 1 values)"

# memory past the machine's: the size said in units a person reads
run "$CN" bench -e 'input 20000000x20000000x1' --batch 65536
expect_rc "bench: inputs past 64 bits of bytes" 1
expect_text "bench: inputs past 64 bits of bytes, said" err "out of memory (the random inputs of 65536 images of 400000000000000 values: past 64 bits of bytes)"

# '' names no file: a usage error, not ": cannot open" or ": cannot create"
run "$CN" train -e "$SPEC" --out ''
expect_rc "train --out ''" 2
expect_text "train --out '': said" err "convnet train: --out needs a value, got ''"
run "$CN" summary ''
expect_rc "summary ''" 2
expect_text "summary '': said" err "convnet summary: an empty argument ('') names nothing"

run "$CN" frobnicate
expect_rc "unknown command 'frobnicate'" 2
expect_text "unknown command, no suggestion" err "unknown command 'frobnicate'"

VERSION=$(sed -n 's/^#define CN_VERSION "\(.*\)"$/\1/p' include/convnet.h)
run "$CN" --version
expect_rc "convnet --version" 0
expect_line "--version prints 'convnet $VERSION'" out "convnet $VERSION"

# ---- summary: usage -------------------------------------------------------------------------
run "$CN" summary --help
expect_rc "summary --help" 0
expect_text "summary --help prints usage" out "usage: convnet summary"
expect_text "summary --help lists the conv layer" out "conv FILTERS KxK"

run "$CN" help summary
expect_rc "convnet help summary" 0
expect_text "convnet help summary prints usage" out "usage: convnet summary"

run "$CN" summary
expect_rc "summary without a spec" 2
expect_text "summary without a spec: says so" err "give a spec file or -e TEXT"

run "$CN" summary -e "$SPEC" --bogus
expect_rc "summary --bogus (unknown option)" 2
expect_text "unknown option named on stderr" err "unknown option '--bogus'"

run "$CN" summary -e "$SPEC" --explian
expect_rc "summary --explian" 2
expect_text "--explian: did you mean --explain" err "(did you mean '--explain'?)"

run "$CN" summary -e
expect_rc "summary -e without its text (missing argument)" 2
expect_text "summary -e: needs a value" err "-e needs a value"

run "$CN" summary -e "$SPEC" --fit
expect_rc "summary --fit without a size (missing argument)" 2
expect_text "summary --fit: needs a value" err "--fit needs a value"

run "$CN" summary -e "$SPEC" --batch 0
expect_rc "summary --batch 0" 2
expect_text "--batch 0: message names --batch" err "--batch"

# a number out of a double's range, or not a number at all: said apart
run "$CN" train -e "$SPEC" --lr 1e400 --out "$T/lr-huge"
expect_rc "train --lr 1e400" 2
expect_text "train --lr 1e400: not finite" err "--lr must be a finite number, got '1e400'"
# settings that need no data: refused before a folder is made or the data read (exit 2)
for bad in "--val -0.1|--val -0.1: it must be in [0, 0.9]" "--val 0.95|--val 0.95: it must be in [0, 0.9]" \
    "--lr 0|optimizer: lr 0: it must be > 0" "--momentum 1|optimizer: momentum 1: it must be >= 0 and below 1" \
    "--weight-decay -1|optimizer: weight decay -1: it must be >= 0" "--clip -1|optimizer: clip -1: it must be >= 0" \
    "--weight-decay 1e39|optimizer: weight decay 1e+39: it must be >= 0, and below float's largest, 3.4e38" \
    "--label-smoothing 1.5|--label-smoothing 1.5: it must lie in [0, 1)" \
    "--shards 3 --batch 2|--shards 3 of a batch of 2: a shard needs an image at least" \
    "--warmup 100|--warmup: one-cycle (the default schedule) takes none" \
    "--schedule cosine --step-size 5|--step-size is the step schedule's: give --schedule step with it"; do
    args=${bad%%|*}
    # shellcheck disable=SC2086 # the settings are words
    run "$CN" train -e "$SPEC" $args --data "$T/no-such-data" --out "$T/refused"
    expect_rc "train $args" 2
    expect_text "train $args: said" err "convnet train: ${bad#*|}"
    if [ -e "$T/refused" ]; then bad "train $args: no folder made" "$(ls -la "$T/refused")"; else ok "train $args: no folder made"; fi
done
run "$CN" train -e "$SPEC" --lr fast --out "$T/lr-word"
expect_rc "train --lr fast" 2
expect_text "train --lr fast: not a number" err "--lr must be a number, got 'fast'"

run "$CN" summary -e "$SPEC" --fit 8XB
expect_rc "summary --fit 8XB" 2
run "$CN" summary -e "$SPEC" --fit 0
expect_rc "summary --fit 0 (nothing fits)" 2
expect_text "summary --fit 0: said" err "size must be a number above 0, in bytes or with a unit"
run "$CN" summary -e "$SPEC" --fit 1000000000
expect_rc "summary --fit in bytes" 0

run "$CN" summary -e "$SPEC" --optimizer adm
expect_rc "summary --optimizer adm" 2

run "$CN" summary "$T/x.cnn" -e "$SPEC"
expect_rc "summary with a file and -e" 2

# ---- summary: errors in the user's spec (exit 1, convnet: FILE:LINE:COL: message) -------
printf 'input 28x28x1\nconv2d 32 3x3\n' >"$T/bad.cnn"
run "$CN" summary "$T/bad.cnn"
expect_rc "malformed spec file" 1
expect_line "malformed spec file: FILE:LINE:COL message" err \
    "convnet: $T/bad.cnn:2:1: unknown layer 'conv2d' (did you mean 'conv'?)"
expect_empty "malformed spec file: stdout empty" out

# line 4; conv 1..4 _5 4 6 _7 7x7 8
printf '# a tiny net\ninput 5x5x1\nrelu\nconv 4 7x7\n' >"$T/big.cnn"
run "$CN" summary "$T/big.cnn"
expect_rc "kernel larger than the input" 1
expect_line "kernel larger than the input: message" err \
    "convnet: $T/big.cnn:4:8: conv: kernel 7x7 larger than padded input 5x5"

# i1..t5 _6 28x28x1 7..13 ;14 _15 conv 16..19 _20 8 21 _22 3x3 23..25 ;26 _27 rellu 28
run "$CN" summary -e 'input 28x28x1; conv 8 3x3; rellu'
expect_rc "malformed -e text" 1
expect_line "malformed -e text: -e:LINE:COL" err "convnet: -e:1:28: unknown layer 'rellu' (did you mean 'relu'?)"

run "$CN" summary "$T/does-not-exist.cnn"
expect_rc "missing spec file" 1
expect_text "missing spec file: cannot open" err "convnet: $T/does-not-exist.cnn: cannot open"

# ---- summary --explain: the worksheet arithmetic ---------------------------------------------
run "$CN" summary -e "$SPEC" --explain
expect_rc "summary --explain" 0
expect_formula "--explain: output size" "O = floor((64 - 3 + 2*1)/1) + 1 = $O"
expect_formula "--explain: parameters" "params = (3*3*3 + 1)*32 = $PARAMS"
expect_formula "--explain: MACs" "MACs = 64*64*32 * 3*3*3 = $MACS_TEXT"
expect_text "summary: total multiplications (MACs) at batch 1" out "multiplications (MACs): $MACS_TEXT at batch 1"

B8=$(( 8 * MACS ))
run "$CN" summary -e "$SPEC" --batch 8
expect_rc "summary --batch 8" 0
expect_text "summary --batch 8: total MACs" out "multiplications (MACs): $("$PY" -c "print(f'{$B8:,}')") at batch 8"

# ---- summary --json ------------------------------------------------------------------------
run "$CN" summary -e "$SPEC" --json
expect_rc "summary --json" 0
expect_json "--json: layers[1].output == [1,32,64,64]" "d['layers'][1]['output'] == [1, 32, 64, 64]"
expect_json "--json: layers[0].output == [1,3,64,64]" "d['layers'][0]['output'] == [1, 3, 64, 64]"
expect_json "--json: total_params == $PARAMS" "d['total_params'] == $PARAMS"
expect_json "--json: total_macs == $MACS" "d['total_macs'] == $MACS"
expect_json "--json: layers[1].params == $PARAMS, type conv" \
    "d['layers'][1]['params'] == $PARAMS and d['layers'][1]['type'] == 'conv'"

run "$CN" summary -e "$SPEC" --json --batch 8
expect_rc "summary --json --batch 8" 0
expect_json "--json --batch 8: output == [8,32,64,64]" "d['layers'][1]['output'] == [8, 32, 64, 64]"
expect_json "--json --batch 8: total_macs == 8*$MACS" "d['total_macs'] == 8 * $MACS"

run "$CN" summary -e "$SPEC" --json --explain
expect_rc "summary --json --explain" 0
expect_json "--json --explain: still JSON, with the formula" \
    "'params = (3*3*3 + 1)*32 = $PARAMS' in d['layers'][1]['explain']"

# a name with a quote and a backslash must stay valid JSON
printf 'input 8x8x1\nconv 2 3x3\n' >"$T/we\"ird\\name.cnn"
run "$CN" summary "$T/we\"ird\\name.cnn" --json
expect_rc "summary --json of a file with \" and \\ in its name" 0
expect_json "--json: file name escaped" "d['file'].endswith('we\"ird\\\\name.cnn')"

# ---- summary --memory and --fit ---------------------------------------------------------------
# per sample: input 64*64*3 and conv 64*64*32 values kept, the conv's gradient; fp32.
# parameters, gradients and Adam's two moments: 4 * 896 bytes each.
ACT=$(( 64 * (64 * 64 * 3 + 64 * 64 * 32) * 4 ))
PB=$(( PARAMS * 4 ))
run "$CN" summary -e "$SPEC" --memory --batch 64
expect_rc "summary --memory --batch 64" 0
expect_text "--memory: section header" out "memory at batch 64"
expect_text "--memory: training part" out "training (optimizer adam)"
expect_text "--memory: inference part" out "inference:"

run "$CN" summary -e "$SPEC" --fit 8GiB
expect_rc "summary --fit 8GiB" 0
expect_text "--fit: section" out "largest batch that fits in 8.0 GiB"

run "$CN" summary -e "$SPEC" --memory --batch 64 --fit 8GiB --json
expect_rc "summary --memory --fit --json" 0
expect_json "--json: has memory and fit" "'memory' in d and 'fit' in d"
expect_json "--json memory: activations, params, optimizer state" \
    "d['memory']['batch'] == 64 and d['memory']['training']['activations'] == $ACT and \
d['memory']['training']['params'] == $PB and d['memory']['training']['param_grads'] == $PB and \
d['memory']['training']['optimizer_state'] == 2 * $PB"
# training(N) = N*(kept values + conv gradient)*4 + 4*params bytes, largest N within 8 GiB
expect_json "--json fit: budget 8 GiB and the largest training batch" \
    "d['fit']['budget'] == 8 * 2**30 and \
d['fit']['training_batch'] == (8 * 2**30 - 4 * $PB) // ((64*64*3 + 2*64*64*32) * 4)"
expect_json "--json fit: the largest inference batch" \
    "d['fit']['inference_batch'] == (8 * 2**30 - $PB) // ((64*64*3 + 64*64*32) * 4)"

# ---- calc ----------------------------------------------------------------------------------
run "$CN" calc --help
expect_rc "calc --help" 0
expect_text "calc --help prints usage" out "usage: convnet calc"

run "$CN" calc
expect_rc "calc without a quantity" 2

run "$CN" calc softmax 2 1 0.1 --json
expect_rc "calc softmax 2 1 0.1 --json" 0
# the seed notes print 0.0099 for the last one; it is 0.0986
expect_json "softmax [2,1,0.1] to 1e-5 (0.659001, 0.242433, 0.0985659)" \
    "len(d['result']) == 3 and all(abs(r - math.exp(x) / sum(math.exp(v) for v in (2, 1, 0.1))) < 1e-5 \
for r, x in zip(d['result'], (2, 1, 0.1))) and abs(d['result'][2] - 0.0985659) < 1e-5"

run "$CN" calc softmax 2 1 0.1
expect_rc "calc softmax 2 1 0.1" 0
expect_line "calc softmax: plain output" out "0.659001 0.242433 0.0985659"
# --json with --explain: the answer and, beside it, the working --explain prints, line by line
run "$CN" calc softmax 2 1 0.1 --explain --json
expect_json "calc softmax --explain --json: the result and the working's lines" \
    "abs(d['result'][0] - 0.659001) < 1e-6 and d['working'][0] == 'softmax_i = e^x_i / sum_j e^x_j' \
and '  S3 = 1.10517 / 11.2125 = 0.0985659' in d['working']"
run "$CN" calc loss ce --target '1,0,0;0,1,0' --pred '0.7,0.2,0.1;0.9,0.8,0.3' --json --explain
expect_json "calc loss ce --json --explain: per-sample losses beside the working" \
    "len(d['per_sample']) == 2 and abs(d['per_sample'][1] + math.log(0.8)) < 1e-6 and 'mean over 2 samples' in ' '.join(d['working'])"
if [ "$(grep -c 'sum to 2, not 1' "$T/err")" = 1 ]; then ok "calc --json --explain: a note said once"; else bad "calc --json --explain: a note said once" "$(shown)"; fi

ROW='10,10,10,0,0,0'
IMG="$ROW;$ROW;$ROW;$ROW;$ROW;$ROW"
EDGE='1,0,-1;1,0,-1;1,0,-1'
run "$CN" calc conv --input "$IMG" --kernel "$EDGE"
expect_rc "calc conv (vertical edge)" 0
# each output: 3 * (left column - right column) of its window: 3*(10-10), 3*(10-0), 3*(10-0), 3*(0-0)
printf '0 30 30 0\n0 30 30 0\n0 30 30 0\n0 30 30 0\n' >"$T/want"
awk '{ $1 = $1; print }' "$T/out" >"$T/got"
if cmp -s "$T/want" "$T/got"; then ok "calc conv: four rows '0 30 30 0'"; else bad "calc conv: rows" "$(shown)"; fi

run "$CN" calc conv --input "$IMG" --kernel "$EDGE" --json
expect_json "calc conv --json: 4x4 result" "d['result'] == [[0, 30, 30, 0]] * 4"
# two channels and a kernel as deep, worked by hand: y11 = (1 + 5) + (2 + 2) + 0.5 = 10.5,
# y12 = (2 + 6) + 2 + 0.5, y21 = (4 + 8) + 2 + 0.5, y22 = (5 + 9) + (2 + 2) + 0.5
run "$CN" calc conv --input '1,2,3;4,5,6;7,8,9 | 1,0,0;0,1,0;0,0,1' --kernel '1,0;0,1 | 2,2;2,2' --bias 0.5 --json
expect_json "calc conv of 2 channels, a 2-deep kernel and a bias" "d['result'] == [[10.5, 10.5], [14.5, 18.5]]"
run "$CN" calc conv --input '1,2,3;4,5,6;7,8,9 | 1,0,0;0,1,0;0,0,1' --kernel '1,0;0,1 | 2,2;2,2' --bias 0.5 --explain
expect_text "calc conv of 2 channels --explain: each channel's sum, then the bias" out "y11 = (1*1 + 2*0 + 4*0 + 5*1) + (1*2 + 0*2 + 0*2 + 1*2) + 0.5 = 10.5"
expect_text "calc conv of 2 channels --explain: the shapes" out "input 2x3x3 (channels x rows x columns), kernel 2x2x2: as deep as the input"
run "$CN" calc conv --input '1,2;3,4' --kernel '1,0;0,1 | 2,2;2,2'
expect_rc "calc conv: a kernel deeper than the input" 2
expect_text "calc conv: a kernel deeper than the input, said" err "the kernel is 2 deep but the input has 1 channel: a kernel spans every channel of its input"
run "$CN" calc conv --input '1,2;3,4 | 1,2,3' --kernel '1 | 1'
expect_rc "calc conv: channels of two sizes" 2
expect_text "calc conv: channels of two sizes, said" err "--input: channel 2 is 1x3, channel 1 2x2"
run "$CN" calc conv --input '1,2;3,4 | 1,x;3,4' --kernel '1 | 1'
expect_text "calc conv: a bad value named with its channel" err "--input, channel 2: 'x' is not a number"
run "$CN" calc pool max --input '1,2;3,4' --size 2 --bias 1
expect_rc "calc pool takes no --bias" 2
# pooling keeps the depth: each channel pooled alone, a map a channel
run "$CN" calc pool max --input '2,2,7,3;9,4,6,1;8,5,2,4;3,1,2,6 | 1,2,3,4;5,6,7,8;9,10,11,12;13,14,15,16' --size 2 --json
expect_json "calc pool of 2 channels: a map a channel" "d['result'] == [[[9, 7], [8, 6]], [[6, 8], [14, 16]]]"
run "$CN" calc pool all --input '1,2;3,4|5,6;7,8' --size 2 --json
expect_json "calc pool all of 2 channels: each kind a map a channel" "d['result'] == {'max': [[[4]], [[8]]], 'min': [[[1]], [[5]]], 'avg': [[[2.5]], [[6.5]]]}"
run "$CN" calc pool max --input '2,2,7,3;9,4,6,1;8,5,2,4;3,1,2,6 | 1,2,3,4;5,6,7,8;9,10,11,12;13,14,15,16' --size 2 --explain
expect_text "calc pool of 2 channels --explain: the depth kept" out "window 2x2: each channel pooled alone (the depth stays 2)"
expect_text "calc pool of 2 channels --explain: channel 2's windows" out "  y21 = max(9, 10, 13, 14) = 14"

run "$CN" calc conv --input '1,2,3;4,5' --kernel '1'
expect_rc "calc conv with a ragged matrix" 2
expect_text "ragged matrix: which row" err "row 2 has 2 values, row 1 has 3"

run "$CN" calc sofmax 1 2
expect_rc "calc sofmax (unknown quantity)" 2
expect_text "unknown quantity: did you mean softmax" err "unknown quantity 'sofmax' (did you mean 'softmax'?)"

run "$CN" calc loss mse --target 1,0
expect_rc "calc loss without --pred" 2
expect_text "missing --pred: says so" err "--pred"

run "$CN" calc loss mse --target 1,0 --pred
expect_rc "calc loss --pred without a value" 2

# -ln(0.7)
run "$CN" calc loss ce --target 1,0,0 --pred 0.7,0.2,0.1 --json
expect_rc "calc loss ce" 0
expect_json "calc loss ce: -ln 0.7" "abs(d['result'] + math.log(0.7)) < 1e-6"
# a probability 0 for the true class: the log clamped at -100 (torch.nn.BCELoss's rule), said
run "$CN" calc loss ce --target 1,0 --pred 0,1 --explain
expect_line "calc loss ce of p = 0: 100" out "100"
expect_text "calc loss ce --explain of p = 0: the clamp said" out "a log of 0 is taken as -100, as PyTorch's BCELoss clamps its logs"
run "$CN" calc loss bce --target 1,0 --pred 0.5,1 --json
expect_json "calc loss bce, 1 - p = 0 for t = 0: (ln 2 + 100) / 2, as torch.nn.BCELoss" "abs(d['result'] - (math.log(2) + 100) / 2) < 1e-4"
run "$CN" calc loss ce --target 1,0 --pred 0.5,0.5 --explain
if grep -q 'a log of 0' "$T/out"; then bad "calc loss ce --explain: no clamp said where none applies" "$(shown)"; else ok "calc loss ce --explain: no clamp said where none applies"; fi

# probabilities that are not a distribution (scores without --logits): computed, and said
run "$CN" calc loss ce --target '1,0,0;0,1,0' --pred '0.7,0.2,0.1;0.9,0.8,0.3' --json
expect_rc "calc loss ce of scores without --logits" 0
expect_json "calc loss ce of scores without --logits: computed as given, (-ln 0.7 - ln 0.8) / 2" "abs(d['result'] + (math.log(0.7) + math.log(0.8)) / 2) < 1e-6"
expect_text "calc loss ce of scores without --logits: said" err "sample 2's probabilities (--pred) sum to 2, not 1: are they scores? then add --logits"
run "$CN" calc loss ce --target 0.5,0.6,0 --pred 0.7,0.2,0.1
expect_text "calc loss ce of targets summing to 1.1: said" err "sample 1's targets sum to 1.1, not 1"
run "$CN" calc loss ce --target 1,0,0 --pred 2,1,0.1 --logits
expect_empty "calc loss ce --logits: scores are any values, nothing said" err
run "$CN" calc loss ce --target 1,0,0 --pred 0.7,0.2,0.1
expect_empty "calc loss ce of a distribution: nothing said" err

# floor((64 - 3 + 2*1)/2) + 1 = 32
run "$CN" calc out --in 64 --kernel 3 --pad 1 --stride 2
expect_rc "calc out" 0
expect_line "calc out: 32" out "$(( (64 - 3 + 2 * 1) / 2 + 1 ))"

# Dice: 2*3 / (5 + 4) = 2/3; from masks, |A n B| = 2 of |A| = |B| = 3: 2/3 again
run "$CN" calc dice --intersection 3 --a 5 --b 4 --json
expect_rc "calc dice" 0
expect_json "calc dice: coefficient 2/3, loss 1/3" "abs(d['coefficient'] - 2 / 3) < 1e-12 and abs(d['result'] - 1 / 3) < 1e-12"
run "$CN" calc dice --target '1,1,0;0,1,0' --pred '1,0,0;0,1,1' --explain
expect_rc "calc dice of masks" 0
expect_formula "calc dice of masks: filled in" "Dice coefficient = 2|A n B| / (|A| + |B|) = 2*2 / (3 + 3) = 0.666667"
run "$CN" calc dice --target 1,0 --pred 1,0,1
expect_rc "calc dice: masks of other sizes" 2
expect_text "calc dice: says the sizes" err "masks have 2 and 3 values"
run "$CN" calc dice --target 1,0 --pred 1,0.5
expect_rc "calc dice: a mask value not 0 or 1" 2

# batch norm of 1 2 3 4: mean 2.5, biased variance 1.25, y = 2 (x - 2.5) / sqrt(1.25 + 1e-5) + 1
run "$CN" calc batchnorm 1 2 3 4 --gamma 2 --beta 1 --json
expect_rc "calc batchnorm" 0
expect_json "calc batchnorm: mean, variance, outputs" \
    "d['mean'] == 2.5 and d['var'] == 1.25 and all(abs(y - (2 * (x - 2.5) / math.sqrt(1.25 + 1e-5) + 1)) < 1e-6 for x, y in zip([1, 2, 3, 4], d['result']))"
run "$CN" calc batchnorm 1 2 3 4 --explain
expect_formula "calc batchnorm --explain: the statistics" "mean = 2.5, variance (biased, divide by 4) = 1.25"
run "$CN" calc batchnorm 3 3 3 --eps 0
expect_rc "calc batchnorm: variance 0 and eps 0" 1
expect_text "calc batchnorm: says to give eps" err "variance 0; give --eps > 0"

run "$CN" calc pool max --input '1,3,2,4;5,6,7,8;3,2,1,0;1,2,3,4' --size 2 --json
expect_rc "calc pool max" 0
expect_json "calc pool max 2x2: [[6,8],[3,4]]" "d['result'] == [[6, 8], [3, 4]]"

# gradcheck: every layer of a net with each kind of layer, as a table and as JSON
GC='input 6x6x4 as x; conv 4 3x3 groups=2 pad=1; batchnorm; relu as a; conv 4 1x1 from x; add a conv2; avgpool 3x3 stride=2 pad=1 ceil=yes; dropout keep=0.7; dense 5; softmax'
run "$CN" gradcheck -e "$GC"
expect_rc "gradcheck of a mixed net" 0
expect_text "gradcheck: a verdict line" out "(tolerance 1e-06, training mode, batch 2, seed 1): ok"
run "$CN" gradcheck -e "$GC" --json --eval
expect_rc "gradcheck --json --eval" 0
expect_json "gradcheck --json: 9 layers (the input has none), each under 1e-6" \
    "len(d['layers']) == 9 and all(l['max_rel_err'] <= 1e-6 for l in d['layers']) and d['max_rel_err'] == max(l['max_rel_err'] for l in d['layers']) and d['mode'] == 'eval'"
# no real derivative matches to 0: a zero tolerance must fail with exit 1
run "$CN" gradcheck -e 'input 4x4x1; conv 2 3x3' --tolerance 0
expect_rc "gradcheck --tolerance 0 fails" 1
expect_text "gradcheck: FAIL shown" out "FAIL"
run "$CN" gradcheck -e 'input 4x4x1; conv 2 3x3' --tolerance -1
expect_rc "gradcheck --tolerance -1" 2
expect_text "gradcheck --tolerance -1: said" err "convnet gradcheck: --tolerance -1: it must be >= 0"
run "$CN" gradcheck -e 'input 4x4x1; conv 2 3x3' --samples 0
expect_rc "gradcheck --samples 0" 2

# data check: Fashion-MNIST is clean (7,000 images per class over both halves); a folder with a
# broken, an empty and a duplicate image is not
run "$CN" data check fashion-mnist --json
expect_rc "data check fashion-mnist" 0
expect_json "data check: 70,000 images, 7,000 per class, no problems" \
    "d['files'] == 70000 and all(c['count'] == 7000 for c in d['per_class']) and d['per_class'][9]['name'] == 'Ankle boot' and d['bad_files'] == d['duplicates'] == d['bad_labels'] == 0"
expect_json "data check fashion-mnist: layout mnist, halves train 60,000 (6,000 a class) and test 10,000 (1,000)" \
    "d['layout'] == 'mnist' and [(h['name'], h['files']) for h in d['halves']] == [('train', 60000), ('test', 10000)] and all(c['count'] == n for h, n in zip(d['halves'], (6000, 1000)) for c in h['per_class']) and d['halves'][1]['per_class'][9]['name'] == 'Ankle boot' and d['leaks'] == 0"
mkdir -p "$T/imgs/cat" "$T/imgs/dog"
"$PY" - "$T/imgs" <<'PY'
import sys
sys.path.insert(0, "tests")  # the source folder: ctest runs here
from pngwrite import png
d = sys.argv[1]
png(d + "/cat/a.png", 4, 4, range(16))
png(d + "/cat/b.png", 4, 4, range(16))          # the same pixels as a.png
png(d + "/dog/c.png", 4, 4, range(100, 116))
open(d + "/dog/empty.png", "wb").close()
open(d + "/dog/notes.png", "w").write("not an image")
PY
run "$CN" data check "$T/imgs"
expect_rc "data check of a folder with problems" 1
expect_line "data check: the layout named first" out "layout: image folder (one sub-folder per class)"
# the total: the images that decode (what the classes add up to, 2 + 1), the others apart
expect_line "data check: 3 images, the 2 files that do not decode said apart" out "$T/imgs: 3 images, 2 classes (and 2 files that do not decode)"
expect_text "data check: the duplicate named" out "b.png"
expect_text "data check: the empty file named" out "empty.png"
expect_text "data check: the non-image named" out "notes.png: not a PNG or JPEG image"
run "$CN" data check "$T/nowhere"
expect_rc "data check of a missing folder" 1
# an empty class, and no images at all, are problems too (exit 1)
mkdir -p "$T/oneempty/cat" "$T/oneempty/dog" "$T/noimages/cat"
cp "$T/imgs/cat/a.png" "$T/oneempty/cat/a.png"
run "$CN" data check "$T/oneempty"
expect_rc "data check of a folder with an empty class" 1
expect_text "data check: the empty class counted" out "0 labels out of range, 1 empty class"
expect_text "data check: the empty class named" out "oneempty/dog: no images in this class folder"
run "$CN" data check "$T/oneempty" --json
expect_json "data check --json: empty_classes 1" "d['empty_classes'] == 1 and d['per_class'][1]['count'] == 0"
run "$CN" data check "$T/noimages"
expect_rc "data check of a folder without images" 1

# data check of an image folder in halves: train/, val/ and test/, each of the 3 colour classes,
# 12, 4 and 5 8x8 images a class (each half from its own seed, so no image is in two halves)
"$PY" tests/pngwrite.py "$T/split/train" red green blue --count 12 --seed 1 --size 8
"$PY" tests/pngwrite.py "$T/split/val" red green blue --count 4 --seed 2 --size 8
"$PY" tests/pngwrite.py "$T/split/test" red green blue --count 5 --seed 3 --size 8
run "$CN" data check "$T/split"
expect_rc "data check of a folder in halves" 0
expect_line "data check in halves: the layout named" out "layout: image folder in halves (train/, val/, test/)"
expect_line "data check in halves: the total" out "$T/split: $((3 * (12 + 4 + 5))) images, 3 classes"
expect_row "data check in halves: a row per class, a column per half" "red 12 4 5"
expect_row "data check in halves: the images of each half" "images $((3 * 12)) $((3 * 4)) $((3 * 5))"
expect_line "data check in halves: ok" out "ok"
run "$CN" data check "$T/split" --json
expect_json "data check --json in halves: layout, each half's files and classes, the totals" \
    "d['layout'] == 'halves' and [(h['name'], h['files']) for h in d['halves']] == [('train', 36), ('val', 12), ('test', 15)] and all([(c['name'], c['count']) for c in h['per_class']] == [('blue', n), ('green', n), ('red', n)] and h['missing'] == [] for h, n in zip(d['halves'], (12, 4, 5))) and d['files'] == 63 and [c['count'] for c in d['per_class']] == [21, 21, 21] and d['leaks'] == d['duplicates'] == d['missing_classes'] == d['empty_classes'] == 0 and d['problems'] == []"
# images a level down in a class folder are the class's (as torchvision's ImageFolder reads them)
cp -r "$T/split" "$T/nested"
mkdir "$T/nested/train/red/2019"
mv "$T/nested/train/red/000.png" "$T/nested/train/red/2019/"
run "$CN" data check "$T/nested"
expect_rc "data check: a folder inside a class folder" 0
expect_row "data check: its image counted with its class" "red 12 4 5"
# halves spelt as exports spell them, named so
mkdir "$T/spelt" && cp -r "$T/split/train" "$T/spelt/Train" && cp -r "$T/split/val" "$T/spelt/valid"
run "$CN" data check "$T/spelt"
expect_line "data check: halves Train/ and valid/ read, named as spelt" out "layout: image folder in halves (Train/, valid/)"
# a test half without the blue class
cp -r "$T/split" "$T/nocls"
rm -r "$T/nocls/test/blue"
run "$CN" data check "$T/nocls"
expect_rc "data check: a class missing from test/" 1
expect_text "data check: the class and the half that lacks it named" out "nocls/test: no class folder 'blue' (train/ and val/ have one)"
expect_row "data check: '-' for the missing class" "blue 12 4 -"
run "$CN" data check "$T/nocls" --json
expect_json "data check --json: test's missing class listed" \
    "d['missing_classes'] == 1 and d['halves'][2]['missing'] == ['blue'] and d['halves'][2]['classes'] == 2 and d['halves'][0]['missing'] == []"
# an empty class in val/
cp -r "$T/split" "$T/emptyval"
rm "$T/emptyval/val/green/"*.png
run "$CN" data check "$T/emptyval"
expect_rc "data check: an empty class in val/" 1
expect_text "data check: the empty class of val/ named" out "emptyval/val/green: no images in this class folder"
run "$CN" data check "$T/emptyval" --json
expect_json "data check --json: val's empty class counted" \
    "d['empty_classes'] == 1 and d['halves'][1]['empty_classes'] == 1 and d['halves'][1]['per_class'][1] == {'class': 1, 'name': 'green', 'count': 0} and d['halves'][1]['files'] == 8"
# a half without class folders
mkdir -p "$T/notest/train" "$T/notest/test"
cp -r "$T/split/train/red" "$T/notest/train/"
run "$CN" data check "$T/notest"
expect_rc "data check: a half without images" 1
expect_text "data check: the half without images named" out "notest/test: no class sub-folders"
# a training image copied into test/: leakage
cp -r "$T/split" "$T/leak"
cp "$T/leak/train/red/003.png" "$T/leak/test/red/copy.png"
run "$CN" data check "$T/leak"
expect_rc "data check: a test image equal to a training image" 1
expect_text "data check: the leak named with both files" out "leak/test/red/copy.png: same pixels as $T/leak/train/red/003.png (in both train/ and test/: leakage)"
run "$CN" data check "$T/leak" --json
expect_json "data check --json: 1 leak, in test" \
    "d['leaks'] == d['duplicates'] == 1 and [h['leaks'] for h in d['halves']] == [0, 0, 1] and d['halves'][2]['files'] == 16"
# a small MNIST-format folder: 6 training images (labels 0 1 2 0 1 2) and 3 test images (0 1 2),
# each 2x2 of its own value
"$PY" - "$T/mnist" <<'PY'
import os, struct, sys
d = sys.argv[1]
os.makedirs(d)
for name, first, labels in (("train", 0, [0, 1, 2, 0, 1, 2]), ("t10k", 100, [0, 1, 2])):
    n = len(labels)
    open(f"{d}/{name}-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, 2, 2) + bytes(v for i in range(n) for v in [first + i] * 4))
    open(f"{d}/{name}-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + bytes(labels))
PY
run "$CN" data check "$T/mnist"
expect_rc "data check of a small MNIST folder" 0
expect_line "data check MNIST: the layout named" out "layout: MNIST-format IDX files (train-*, t10k-*)"
expect_row "data check MNIST: class 2, 2 training and 1 test images" "2 2 1"
expect_row "data check MNIST: 6 training and 3 test images" "images 6 3"
mkdir "$T/mnist-train"
cp "$T/mnist/train-"* "$T/mnist-train/"
run "$CN" data check "$T/mnist-train"
expect_rc "data check of an MNIST folder without a test half" 0
expect_line "data check MNIST: only train-* named" out "layout: MNIST-format IDX files (train-*)"
# a test half of another size (2x3): training would refuse it, so the check says so (exit 1)
mkdir "$T/mnist-sizes"
cp "$T/mnist/"* "$T/mnist-sizes/"
"$PY" -c "import struct, sys; open(sys.argv[1], 'wb').write(struct.pack('>IIII', 0x803, 3, 2, 3) + bytes(18))" \
    "$T/mnist-sizes/t10k-images-idx3-ubyte"
run "$CN" data check "$T/mnist-sizes"
expect_rc "data check: halves of two sizes" 1
expect_line "data check: the sizes named" out "$T/mnist-sizes/t10k-images-idx3-ubyte: the test half's images are 2x3, the train half's ($T/mnist-sizes/train-images-idx3-ubyte) 2x2: a net takes one size"

# bench: a short run of a small net, as JSON; every layer but the input listed with its MACs
run "$CN" bench -e 'input 8x8x1; conv 4 3x3 pad=1; relu; dense 3' --batch 4 --seconds 0.05 --json
expect_rc "bench --json" 0
expect_json "bench: rate, steps and the 3 layers with conv MACs 4*8*8*4*9" \
    "d['images_per_s'] > 0 and d['steps'] >= 5 and d['mode'] == 'train' and [l['name'] for l in d['layers']] == ['conv1', 'relu1', 'dense1'] and d['layers'][0]['macs'] == 4*8*8*4*9 and d['planned_bytes'] > 0"
run "$CN" bench -e 'input 8x8x1; conv 4 3x3 pad=1; relu; dense 3' --infer --seconds 0.05
expect_rc "bench --infer" 0
expect_text "bench --infer: says inference" out "inference"
run "$CN" bench -e 'input 8x8x1; conv 4 3x3 pad=1; relu; dense 3' --train --infer
expect_rc "bench --train --infer" 2
expect_text "bench --train --infer: said" err "convnet bench: --train or --infer, not both"
run "$CN" bench -e 'input 8x8x1; conv 4 3x3 pad=1; relu; dense 3' --seconds -1
expect_rc "bench --seconds -1" 2
expect_text "bench --seconds -1: said" err "convnet bench: --seconds -1: it must be >= 0"

# a spec where a run or a checkpoint is wanted: named as a spec, the way to a run said
printf 'input 8x8x1\nconv 4 3x3\n' >"$T/net.cnn"
for cmd in "eval" "predict|$T/net.cnn" "export|-o $T/net.onnx" "report" "show|--filters conv1 -o $T/net.png"; do
    sub=${cmd%%|*}; more=; [ "$sub" != "$cmd" ] && more=${cmd#*|}
    # shellcheck disable=SC2086 # more: the words after the spec
    run "$CN" $sub "$T/net.cnn" $more
    expect_rc "$sub of a spec" 1
    expect_text "$sub of a spec: said" err "$T/net.cnn is a spec, not a run folder or a checkpoint: train it first (convnet train $T/net.cnn)"
done
# any other text file: not taken for a checkpoint's header length
echo 'notes of the lecture, not a net' >"$T/notes.txt"
run "$CN" eval "$T/notes.txt"
expect_text "eval of a text file: said" err "$T/notes.txt: a text file, not a safetensors checkpoint"

# the CPU's vector code, named by bench (what /proc/cpuinfo says the CPU has), lowered by
# CONVNET_ISA; a value it does not know is refused before anything runs
isa=generic
if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo; then isa=avx2; fi
if grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo; then isa=avx512; fi
run "$CN" bench -e 'input 8x8x1; dense 3' --seconds 0.02
expect_text "bench names the CPU's vector code: $isa" out " ($isa): "
if [ "$isa" = avx512 ]; then
    CONVNET_ISA=avx2 run "$CN" bench -e 'input 8x8x1; dense 3' --seconds 0.02 --json
    expect_json "CONVNET_ISA=avx2: bench runs AVX2's code" "d['cpu_isa'] == 'avx2'"
fi
CONVNET_ISA=generic run "$CN" bench -e 'input 8x8x1; dense 3' --seconds 0.02 --threads 1
expect_text "CONVNET_ISA=generic: bench runs the portable code" out "1 thread (generic): "
CONVNET_ISA=sse2 run "$CN" summary -e 'input 8x8x1; dense 3'
expect_rc "CONVNET_ISA=sse2: bad usage" 2
expect_text "CONVNET_ISA=sse2: the values it takes" err "CONVNET_ISA=sse2: expected avx512, avx2 or generic"

# --device cuda: a GPU runs it; without one (or without its driver, or in a build without nvcc)
# exit 1 and the reason (train, eval and predict: tests/cli_train_test.sh)
device_cuda() { # NAME ARGS...
    name=$1
    shift
    run "$CN" "$@" --device cuda
    if [ "$rc" -eq 0 ]; then
        ok "$name --device cuda: ran on the GPU"
    else
        expect_rc "$name --device cuda without a GPU" 1
        expect_text "$name --device cuda: the reason" err "convnet: --device cuda: "
    fi
}
device_cuda bench bench -e 'input 4x4x1; dense 2' --seconds 0.05
device_cuda gradcheck gradcheck -e 'input 5x5x2; conv 3 3x3 pad=same; relu; dense 2'
run "$CN" bench -e 'input 4x4x1; dense 2' --device tpu
expect_rc "--device tpu" 2
expect_text "--device: the choices" err "--device: unknown 'tpu'"
run "$CN" bench -e 'input 4x4x1; dense 2' --seconds 0.05 --precision tf32
expect_rc "--precision tf32 on the CPU" 1
expect_text "--precision tf32 needs cuda" err "convnet: --precision tf32 needs --device cuda"
run "$CN" bench -e 'input 4x4x1; dense 2' --precision fp16
expect_rc "--precision fp16" 2

# show: a conv layer's kernels and an image's activation maps as grid PNGs. Tiny nets trained for
# one epoch on 8 generated 8x8 images. Expected sizes from the layout in convnet.h: gap 2 around
# and between cells, a label strip 12 high over each tile, cells as wide as the tile or the
# widest label (digits*8 - 2), a square grid by default.
mkdir -p "$T/show/a" "$T/show/b"
"$PY" - "$T/show" <<'PY'
import sys
sys.path.insert(0, "tests")  # the source folder: ctest runs here
from pngwrite import png
for i in range(4):
    png(f"{sys.argv[1]}/a/{i}.png", 8, 8, [x * 30 + i for y in range(8) for x in range(8)])
    png(f"{sys.argv[1]}/b/{i}.png", 8, 8, [y * 30 + i for y in range(8) for x in range(8)])
PY
# png_is NAME FILE WIDTH HEIGHT COLOUR-TYPE (0 gray, 2 RGB), from the IHDR chunk
png_is() {
    got=$("$PY" -c "import struct, sys
d = open(sys.argv[1], 'rb').read(26)
assert d[:8] == b'\x89PNG\r\n\x1a\n' and d[12:16] == b'IHDR'
w, h = struct.unpack('>II', d[16:24])
print(w, h, d[25])" "$2" 2>/dev/null)
    if [ "$got" = "$3 $4 $5" ]; then ok "$1: ${3}x$4, colour type $5"; else bad "$1: got '$got', expected '$3 $4 $5'" "$(shown)"; fi
}
run "$CN" train -e 'input 8x8x1; conv 4 3x3; relu; flatten; dense 2' --data "$T/show" --epochs 1 --batch 4 --quiet --out "$T/show_run"
expect_rc "show: train a tiny gray net" 0
# --quiet: "no progress, only the final result": one line, the result and where the run is
# (8 images: --val 0.1 holds out none, so the best is the training figures', and said so)
if [ "$(wc -l <"$T/out")" -eq 1 ] && grep -q "^best training accuracy [0-9.]*% (epoch 1, .* in $T/show_run\$" "$T/out"; then
    ok "train --quiet: only the final result's line"
else
    bad "train --quiet: only the final result's line" "$(shown)"
fi
run "$CN" train -e 'input 8x8x3; conv 3 5x5; flatten; dense 2' --data "$T/show" --epochs 1 --batch 4 --quiet --out "$T/show_rgb"
expect_rc "show: train a tiny RGB net" 0
# the 8 images of show/ made 100000x100000x3 floats: 8 * 100000 * 100000 * 3 * 4 bytes, 894 GiB
run "$CN" train -e 'input 100000x100000x3; conv 8 3x3; globalavgpool' --data "$T/show" --out "$T/huge"
expect_rc "train: images of 894 GiB" 1
expect_text "train: images of 894 GiB, said" err "out of memory ($((8 * 100000 * 100000 * 3 * 4)) bytes: 894 GiB)"
# an output that is not one score per class: refused before the run's folder is made, so that
# the spec put right trains in the same --out (a map's values were taken for classes: 72 here)
printf 'input 8x8x1\nconv 4 3x3\nrelu\nconv 2 1x1\n' >"$T/map.cnn"
run "$CN" train "$T/map.cnn" --data "$T/show" --epochs 1 --batch 4 --quiet --out "$T/map_run"
expect_rc "train: an output map" 1
expect_text "train: an output map, named with its file and line" err \
    "$T/map.cnn:4:1: the net's output, conv2, is a map (6x6x2), not one score per class: end the net with 'globalavgpool' (the data has 2 classes)"
if [ ! -e "$T/map_run" ]; then ok "train: a run refused before it starts leaves no folder"; else bad "train: a refused run left $(ls -A "$T/map_run")"; fi
run "$CN" train -e 'input 8x8x1; conv 4 3x3; relu; flatten; dense 1' --data "$T/show" --epochs 1 --batch 4 --quiet --out "$T/map_run"
expect_rc "train: fewer scores than classes" 1
expect_text "train: fewer scores than classes" err "-e:1:41: the net's output, dense1, has 1 score, fewer than the data's 2 classes (labels 0 to 1)"
run "$CN" train -e 'input 8x8x1; conv 4 3x3; relu; conv 2 1x1; globalavgpool' --data "$T/show" --epochs 1 --batch 4 --quiet --out "$T/map_run"
expect_rc "train: the spec put right, in the same --out" 0
# eval on a folder of some of the run's classes, or others: the labels go to the run's classes by
# name (a folder named by a class's number is that class), an unknown class is an error. By
# number, b/ alone was scored as class 0, 'a'.
mkdir -p "$T/only_b" "$T/b_and_c" "$T/by_number"
cp -r "$T/show/b" "$T/only_b/" && cp -r "$T/show/b" "$T/show/a" "$T/b_and_c/" && mv "$T/b_and_c/a" "$T/b_and_c/c"
cp -r "$T/show/b" "$T/by_number/1"
run "$CN" eval "$T/show_run" --data "$T/only_b" --json
expect_json "eval on b/ alone: its 4 images are the run's class 1, 'b'" \
    "d['per_class'][1]['name'] == 'b' and d['per_class'][1]['count'] == 4 and d['per_class'][0]['count'] == 0 and d['count'] == 4"
# precision, recall and F1 a class, and their averages, as scikit-learn's classification_report
# defines them, computed from the JSON's confusion matrix (here a class without images)
if "$PY" "$(dirname "$0")/class_report_check.py" <"$T/out" >"$T/py" 2>&1; then
    ok "eval --json on b/ alone: precision, recall, F1 and averages as scikit-learn's ($(cat "$T/py"))"
else
    bad "eval --json on b/ alone: precision, recall, F1 or averages" "$(cat "$T/py")"
fi
run "$CN" eval "$T/show_run" --data "$T/by_number" --json
expect_json "eval on a folder named 1/: the run's class 1" "d['per_class'][1]['count'] == 4 and d['per_class'][0]['count'] == 0"
run "$CN" eval "$T/show_run" --data "$T/b_and_c"
expect_rc "eval on a folder with a class the run does not know" 1
expect_text "eval on a folder with a class the run does not know, said" err \
    "$T/b_and_c: class folder 'c' is none of the model's 2 classes ('a', 'b')"
run "$CN" eval "$T/show_run" --data fashion-mnist
expect_rc "eval on images of another shape" 1
expect_text "eval on images of another shape: the data named" err "/usr/share/datasets/fashion-mnist: the images are 28x28x1 but the net's input is 8x8x1"
run "$CN" report "$T/show_run" --data "$T/b_and_c" --quiet
expect_rc "report --data on a folder with a class the run does not know" 1
# the classes are matched from the folder's listing, before a file is decoded: a file that would
# not decode is not what is said
printf 'not an image' >"$T/b_and_c/c/broken.png"
run "$CN" eval "$T/show_run" --data "$T/b_and_c"
expect_text "eval: the unknown class said before any image is decoded" err "class folder 'c' is none of the model's 2 classes"
run "$CN" report "$T/show_run" --data "$T/b_and_c" --quiet
expect_text "report --data: the same" err "class folder 'c' is none of the model's 2 classes"
rm "$T/b_and_c/c/broken.png"
# one class only: refused, naming it (every image would be scored right: 100 % of nothing)
run "$CN" train -e 'input 8x8x1; flatten; dense 2' --data "$T/only_b" --epochs 1 --batch 4 --quiet --out "$T/one_class"
expect_rc "train on one class" 1
expect_text "train on one class, said" err "every training image is of one class, 0 ('b'): a classifier needs images of two classes or more"
# label smoothing on a net ending in softmax: refused before the run's folder is made (it failed
# at the first step, leaving a folder that the corrected command was then refused)
run "$CN" train -e 'input 8x8x1; flatten; dense 2; softmax' --data "$T/show" --epochs 1 --batch 4 --label-smoothing 0.1 --out "$T/smooth"
expect_rc "train --label-smoothing on softmax" 1
expect_text "train --label-smoothing on softmax, said" err "label smoothing needs the net's logits, and this net ends in softmax"
if [ ! -e "$T/smooth" ]; then ok "train --label-smoothing on softmax: no folder"; else bad "train --label-smoothing on softmax: $T/smooth made"; fi
# an optimizer setting out of range: named, and no folder made
run "$CN" train -e 'input 8x8x1; flatten; dense 2' --data "$T/show" --epochs 1 --batch 4 --momentum 2 --out "$T/momentum2"
expect_rc "train --momentum 2 (a usage error)" 2
expect_text "train --momentum 2, said" err "optimizer: momentum 2: it must be >= 0 and below 1"
if [ ! -e "$T/momentum2" ]; then ok "train --momentum 2: no folder"; else bad "train --momentum 2: $T/momentum2 made"; fi
run "$CN" train -e 'input 8x8x1; flatten; dense 2' --data "$T/show" --epochs 1 --batch 4 --momentum 2 --seeds 2 --out "$T/momentum2"
expect_rc "train --momentum 2 --seeds 2 (a usage error)" 2
if [ ! -e "$T/momentum2" ]; then ok "train --momentum 2 --seeds 2: no folder"; else bad "train --momentum 2 --seeds 2: $T/momentum2 made"; fi
# a run's folder inside the image folder it trains on would be read back as a class of its own
# (the report's evaluation failed on its CSV files): refused before anything is written
run "$CN" train -e 'input 8x8x1; flatten; dense 2' --data "$T/show" --epochs 1 --batch 4 --quiet --out "$T/show/../show/run"
expect_rc "train: --out inside the image folder" 1
expect_text "train: --out inside the image folder, said" err \
    "$T/show/../show/run: the run's folder would be inside the image folder $T/show, and reading that folder again (the report, eval) would take it for a class: give an --out outside it"
if [ ! -e "$T/show/run" ]; then ok "train: --out inside the image folder: nothing written"; else bad "train: --out inside the image folder: $T/show/run made"; fi
mkdir -p "$T/halves/train" "$T/halves/test"
cp -r "$T/show/a" "$T/show/b" "$T/halves/train/" && cp -r "$T/show/a" "$T/show/b" "$T/halves/test/"
run "$CN" train -e 'input 8x8x1; flatten; dense 2' --data "$T/halves" --epochs 1 --batch 4 --quiet --out "$T/halves/test/run"
expect_rc "train: --out inside a data set's test half" 1
run "$CN" train -e 'input 8x8x1; flatten; dense 2' --data "$T/halves" --epochs 1 --batch 4 --quiet --out "$T/halves/runs/x"
expect_rc "train: --out in a data set in halves, beside its halves" 0
# a bounded last activation: the least loss cross-entropy can reach on its outputs, said before
# the first epoch (here the loss of logits [1, -1] for the class of the 1: computed by Python)
FLOOR=$("$PY" -c "import math; print(f'{-math.log(math.exp(1) / (math.exp(1) + math.exp(-1))):.4f}')")
run "$CN" train -e 'input 8x8x1; conv 4 3x3; relu; flatten; dense 2; tanh' --data "$T/show" --epochs 1 --batch 4 --out "$T/tanh_run"
expect_rc "train: a net ending in tanh" 0
expect_line "train: a net ending in tanh: its least loss, $FLOOR" out \
    "note:       the net ends in tanh: cross-entropy takes its outputs (-1 to 1) as logits, so the loss cannot fall below $FLOOR with 2 outputs; end it with a dense layer (logits) or softmax"
run "$CN" train -e 'input 8x8x1; conv 4 3x3; relu; flatten; dense 2' --data "$T/show" --epochs 1 --batch 4 --out "$T/logits_run"
if grep -q '^note:' "$T/out"; then bad "train: no note for a net ending in logits" "$(shown)"; else ok "train: no note for a net ending in logits"; fi
# no image held out: said before the first epoch, and the result named for what it is
run "$CN" train -e 'input 8x8x1; flatten; dense 2' --data "$T/show" --epochs 1 --batch 4 --out "$T/no_val"
expect_line "train with none held out: said" out "validation: none (--val 0.1 of 8 images holds out none): the best epoch is the training figures'"
expect_text "train with none held out: the best training accuracy" out "best training accuracy"
run "$CN" train -e 'input 8x8x1; flatten; dense 2' --data "$T/show" --epochs 1 --batch 4 --val 0.5 --quiet --out "$T/half_val"
expect_text "train --val 0.5: the best validation accuracy" out "best validation accuracy"
# -o DIR, as import's and show's: the same run as --out DIR (the folder is not one of its settings)
run "$CN" train -e 'input 8x8x1; conv 4 3x3; relu; conv 2 1x1; globalavgpool' --data "$T/show" --epochs 1 --batch 4 --quiet -o "$T/o_run"
expect_rc "train -o DIR" 0
if [ -f "$T/o_run/model.safetensors" ] && cmp -s "$T/o_run/model.safetensors" "$T/map_run/model.safetensors"; then
    ok "train -o DIR: the run of --out DIR, byte for byte"
else bad "train -o DIR: not the run of --out DIR" "$(ls "$T/o_run" 2>&1)"; fi
# --resume of a finished run: said, then its result again
run "$CN" train --resume "$T/o_run"
expect_rc "train --resume of a finished run" 0
expect_text "train --resume of a finished run: said" err "convnet train: $T/o_run: 1 of 1 epochs done already (--epochs N trains it further); its result again:"
run "$CN" gradflow "$T/map.cnn" --data "$T/show"
expect_rc "gradflow: an output map" 1
expect_text "gradflow: an output map" err "$T/map.cnn:4:1: the net's output, conv2, is a map (6x6x2)"
# every weight 0: no dL/dW, said (a ratio would be 0/0); a layer's init= names its draw in --explain
run "$CN" gradflow -e 'input 8x8x1; conv 4 3x3; relu; flatten; dense 2' --data "$T/show" --init zero
expect_rc "gradflow --init zero" 0
expect_line "gradflow --init zero: no weight moves" out "every dL/dW is 0: no weight would move"
run "$CN" summary -e 'input 8x8x3; conv 4 3x3 init=kaiming; relu; flatten; dense 2 init=trunc-normal std=0.1' --explain
expect_text "summary --explain: a conv's init=" out "weights start (init=kaiming): N(0, 2/fan_in) = N(0, 2/27), std 0.2722 (He et al.: for ReLU)"
expect_text "summary --explain: a dense layer's init=" out "weights start (init=trunc-normal): N(0, 0.1^2) drawn again past +-0.2 (2 std): std 0.08796"
run "$CN" show --help
expect_rc "show --help" 0
expect_text "show --help: the two forms" out "--activations IMAGE --layer LAYER -o OUT.png"

# 4 kernels 3x3 at 48/3 = 16 px a weight: 2x2 cells of 48 x (12 + 48)
run "$CN" show "$T/show_run" --filters conv1 -o "$T/f.png"
expect_rc "show --filters" 0
png_is "show --filters conv1, 1 input channel" "$T/f.png" $((2 * 48 + 3 * 2)) $((2 * (12 + 48) + 3 * 2)) 0
# 3 kernels 5x5x3 at 48/5 = 9 px: RGB, 2 columns, 2 rows of 45 x (12 + 45)
run "$CN" show "$T/show_rgb/model.safetensors" --filters conv1 -o "$T/rgb.png"
expect_rc "show --filters of an RGB layer" 0
png_is "show --filters: 3 input channels in colour" "$T/rgb.png" $((2 * 45 + 3 * 2)) $((2 * (12 + 45) + 3 * 2)) 2
run "$CN" show "$T/show_rgb" --filters conv1 --channel 2 --cols 3 --scale 2 -o "$T/ch.png"
expect_rc "show --filters --channel" 0
# one row of 3 tiles 10 px wide, 10 + 12 high
png_is "show --channel 2 --cols 3 --scale 2: gray" "$T/ch.png" $((3 * 10 + 4 * 2)) $((12 + 10 + 2 * 2)) 0
# relu1 of an 8x8 image: 4 maps 6x6 at 64/6 = 10 px
run "$CN" show "$T/show_run" --activations "$T/show/a/1.png" --layer relu1 -o "$T/act.png"
expect_rc "show --activations" 0
png_is "show --activations relu1: 4 maps 6x6" "$T/act.png" $((2 * 60 + 3 * 2)) $((2 * (12 + 60) + 3 * 2)) 0
# dense1: 2 maps 1x1 at 3 px in one column; the label (6 px) is wider than the tile (3 px)
run "$CN" show "$T/show_run" --activations "$T/show/b/0.png" --layer dense1 --scale 3 --cols 1 -o "$T/dense.png"
png_is "show --activations dense1 --cols 1" "$T/dense.png" $((6 + 2 * 2)) $((2 * (12 + 3) + 3 * 2)) 0
# maps of one value each share one scale: the larger score white, the smaller black (each map
# from its own min to max would make both black); the tiles' pixels at (2, 14) and (2, 31)
expect_text "show --activations of 1x1 maps: one scale said" out "2 maps of dense1 (1x1, one scale for all"
# the net's output layer: which tile is which class, with its score; the scores' softmax is
# predict's probabilities, and the highest is predict's class (below)
expect_text "show --activations of the output layer: its tiles named" out "its tiles are the classes' scores:"
cp "$T/out" "$T/show_scores"
run "$CN" predict "$T/show_run" "$T/show/b/0.png" --json
if "$PY" - "$T/show_scores" "$T/out" >"$T/py" 2>&1 <<'PYEOF'
import json, math, re, sys
rows = [l.split() for l in open(sys.argv[1]) if re.match(r"^ +[0-9]+  ", l)]
score = {int(r[0]): float(r[2]) for r in rows}
names = [r[1] for r in sorted(rows, key=lambda r: int(r[0]))]
top = [r for r in rows if "highest" in " ".join(r)]
p = json.load(open(sys.argv[2]))[0]["predictions"]
z = sum(math.exp(v) for v in score.values())
ok = names == ["a", "b"] and len(top) == 1 and int(top[0][0]) == p[0]["class"] and \
    all(abs(math.exp(score[q["class"]]) / z - q["probability"]) < 1e-3 for q in p)
print(score, names, p)
sys.exit(0 if ok else 1)
PYEOF
then
    ok "show --activations of the output layer: the classes a and b named, the softmax of their scores predict's probabilities, the highest its class"
else
    bad "show --activations of the output layer: the tiles' names, scores or highest" "$(cat "$T/show_scores" "$T/py")"
fi
top=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))[0]['predictions'][0]['class'])" "$T/out" 2>/dev/null)
pix=$("$PY" -c "from PIL import Image; import sys; im = Image.open(sys.argv[1]); print(im.getpixel((2, 14)), im.getpixel((2, 31)))" "$T/dense.png" 2>&1)
if { [ "$top" = 0 ] && [ "$pix" = "255 0" ]; } || { [ "$top" = 1 ] && [ "$pix" = "0 255" ]; }; then
    ok "show --activations of 1x1 maps: class $top's score white, the other black ($pix)"
else
    bad "show --activations of 1x1 maps: class $top's score white, the other black" "pixels: $pix"
fi
run "$CN" show "$T/show_run" --activations "$T/show/b/0.png" --layer input -o "$T/in.png"
expect_text "show --activations of the 1-channel input: one map, said in the singular" out "1 map of input (8x8"

run "$CN" show "$T/show_run" --filters cnv1 -o "$T/x.png"
expect_rc "show: unknown layer" 1
expect_line "show: unknown layer, did you mean" err "convnet show: no layer 'cnv1' in the net (did you mean 'conv1'?)"
# 'conv3' of a net of conv1 and conv2: both named, not the first alone as the closest
run "$CN" train -e 'input 8x8x1; conv 2 3x3; conv 2 3x3; flatten; dense 2' --data "$T/show" --epochs 1 --batch 4 --quiet --out "$T/two_convs"
run "$CN" show "$T/two_convs" --filters conv3 -o "$T/x.png"
expect_rc "show: conv3 of two convs" 1
expect_line "show: conv3 of two convs, both listed" err "convnet show: no layer 'conv3' in the net; its conv layers: conv1 conv2"
run "$CN" show "$T/show_run" --activations "$T/show/a/0.png" --layer zzzzzz -o "$T/x.png"
expect_rc "show: unknown layer, nothing close" 1
expect_text "show: the layers listed" err "its layers: input conv1 relu1 flatten1 dense1"
run "$CN" show "$T/show_run" --filters relu1 -o "$T/x.png"
expect_rc "show --filters of a relu" 1
expect_text "show --filters of a relu: says why" err "layer 'relu1' is a relu layer: --filters shows the kernels of a conv layer"
run "$CN" show "$T/show_run" --filters conv1 --channel 1 -o "$T/x.png"
expect_rc "show --channel past the input channels" 1
expect_text "show --channel past the input channels: said, in the singular" err "the filters of 'conv1' read 1 input channel (0..0)"
# grouped and depthwise filters: which input channel a tile shows
run "$CN" train -e 'input 8x8x1; conv 4 3x3 pad=1; relu; conv 4 3x3 pad=1 groups=4 as dw; conv 2 3x3 groups=2 as gr; globalavgpool' --data "$T/show" --epochs 1 --batch 4 --quiet --out "$T/groups_run"
expect_rc "train a net with grouped convolutions" 0
run "$CN" show "$T/groups_run" --filters dw -o "$T/dw.png"
expect_rc "show --filters of a depthwise layer" 0
expect_text "show --filters of a depthwise layer: each tile its own channel" out "4 filters of dw (3x3, each on its own input channel,"
run "$CN" show "$T/groups_run" --filters dw --channel 1 -o "$T/x.png"
expect_rc "show --channel of a depthwise layer" 1
expect_text "show --channel of a depthwise layer: why" err "each filter of 'dw' reads 1 input channel, its own (depthwise: groups=4, filter f reads channel f)"
run "$CN" show "$T/groups_run" --filters gr --channel 1 -o "$T/gr.png"
expect_rc "show --filters of a grouped layer" 0
expect_text "show --filters of a grouped layer: the channel of its group" out "2 filters of gr (3x3, input channel 1 of its group,"
run "$CN" show "$T/groups_run" --filters gr --channel 2 -o "$T/x.png"
expect_rc "show --channel past a group" 1
expect_text "show --channel past a group: said" err "the filters of 'gr' read 2 input channels (0..1) of their group"
run "$CN" show "$T/show_run" --activations "$T/nothing.png" --layer conv1 -o "$T/x.png"
expect_rc "show: a missing image" 1
expect_text "show: a missing image named" err "nothing.png"
run "$CN" show "$T/no_run" --filters conv1 -o "$T/x.png"
expect_rc "show: a missing checkpoint" 1
run "$CN" show "$T/show_run" --filters conv1 -o "$T/no_dir/x.png"
expect_rc "show: an unwritable output" 1
run "$CN" show "$T/show_run" --filters conv1
expect_rc "show without -o" 2
run "$CN" show "$T/show_run" --filters conv1 --activations "$T/show/a/0.png" -o "$T/x.png"
expect_rc "show --filters and --activations" 2
run "$CN" show "$T/show_run" --activations "$T/show/a/0.png" -o "$T/x.png"
expect_rc "show --activations without --layer" 2
run "$CN" show "$T/show_run" --filters conv1 --scale 0 -o "$T/x.png"
expect_rc "show --scale 0" 2
[ ! -e "$T/x.png" ] && ok "show: no picture written by a failed run" || bad "show: $T/x.png written by a failed run"

# filter: kernels on PNGs as the worksheets compute them (pixels 0..255, cross-correlation);
# the written PNG read back through the identity kernel with --print
# expect_row NAME TEXT: a stdout line that is TEXT once runs of blanks are squeezed
expect_row() {
    if tr -s ' ' <"$T/out" | sed 's/^ //' | grep -qxF -- "$2"; then ok "$1"; else bad "$1: no row '$2'" "$(shown)"; fi
}
"$PY" - "$T" <<'PY'
import sys
sys.path.insert(0, "tests")  # the source folder: ctest runs here
from pngwrite import png
d = sys.argv[1]
png(d + "/six.png", 6, 6, [10 if x < 3 else 0 for y in range(6) for x in range(6)])  # seed 001, worksheet 8
png(d + "/solid.png", 4, 4, [77] * 16)
png(d + "/thirty.png", 3, 3, [30] * 9)
png(d + "/bump.png", 4, 4, [0, 0, 0, 0, 0, 100, 50, 0, 0, 50, 200, 0, 0, 0, 0, 0])
png(d + "/one.png", 1, 1, [200, 100, 50], rgb=True)
open(d + "/vedge.txt", "w").write("1 0 -1\n1 0 -1\n1 0 -1\n")
open(d + "/ragged.txt", "w").write("1 0 -1\n1 0\n1 0 -1\n")
open(d + "/word.txt", "w").write("1 0 -1\n1 0 -1\n1 x -1\n")
open(d + "/blank.txt", "w").write("\n  \n")
PY
run "$CN" filter --help
expect_rc "filter --help" 0
expect_text "filter --help: cross-correlation, no flip" out "cross-correlation"
expect_text "filter --help: the edge kernel" out "edge      -1 -1 -1 / -1 8 -1 / -1 -1 -1"
run "$CN" --help
expect_text "top-level help lists filter" out "  filter "
# seed 001: 3*(10 - 0) = 30 where the window straddles the edge, 3*(10 - 10) = 3*(0 - 0) = 0 elsewhere
run "$CN" filter "$T/six.png" --kernel '1,0,-1;1,0,-1;1,0,-1' --print
expect_rc "filter seed 001 vertical edge" 0
expect_formula "filter: rows floor((6 + 2*0 - 3)/1) + 1 = $(( (6 - 3) / 1 + 1 ))" "rows: floor((6 + 2*0 - 3)/1) + 1 = 4"
expect_row "filter seed 001: a row 0 30 30 0" "0 $((3 * 10)) $((3 * 10)) 0"
if [ "$(tr -s ' ' <"$T/out" | sed 's/^ //' | grep -cxF "0 30 30 0")" -eq 4 ]; then ok "filter seed 001: four such rows"; else bad "filter seed 001: four rows 0 30 30 0" "$(shown)"; fi
run "$CN" filter "$T/six.png" --kernel "@$T/vedge.txt" --print
expect_row "filter --kernel @FILE: the same rows" "0 30 30 0"
run "$CN" filter "$T/six.png" --kernel "@$T/vedge.txt" --stride 2 --pad 1 --print
expect_formula "filter --stride 2 --pad 1: $(( (6 + 2 - 3) / 2 + 1 )) rows" "rows: floor((6 + 2*1 - 3)/2) + 1 = $(( (6 + 2 - 3) / 2 + 1 ))"
run "$CN" filter "$T/six.png" --kernel sobel-x --pad same --print
expect_formula "filter --pad same: ceil(6/1) = 6" "rows: ceil(6/1) = 6 (pad=same)"
# seed 002: the edge kernel sums to 0, so a solid fill gives 8*77 - 8*77 = 0
run "$CN" filter "$T/solid.png" --kernel edge --print
expect_rc "filter edge on a solid fill" 0
expect_row "filter edge: the kernel printed, 8 in the middle" "-1 8 -1"
expect_row "filter edge on a solid fill: 0 0" "0 0"
# blur = 1/9 of the sum: 9*30/9 = 30, printed as the integer it is
run "$CN" filter "$T/thirty.png" --kernel blur --print
expect_text "filter blur: 1/9 shown" out "= 1/9 *"
expect_row "filter blur of 30s: exactly 30" "30"
# sharpen 5c - (up + left + right + down): 5*100 - 100 = 400, 5*50 - 300 = -50, 5*200 - 100 = 900
run "$CN" filter "$T/bump.png" --kernel sharpen -o "$T/sharp.png"
expect_rc "filter sharpen -o" 0
expect_text "filter -o: the range and the clamping said" out "values -50..900 clamped to 0..255"
run "$CN" filter "$T/bump.png" --kernel identity --stride 9 --rescale -o "$T/single-value.png"
expect_text "filter --rescale of one value: nothing to stretch, said" out "(one value: nothing to stretch) clamped to 0..255"
run "$CN" filter "$T/sharp.png" --kernel identity --pad 1 --print
expect_row "filter sharpen, clamped in the PNG: 255 0" "255 0"
expect_row "filter sharpen, clamped in the PNG: 0 255" "0 255"
run "$CN" filter "$T/bump.png" --kernel sharpen --rescale -o "$T/sharp_r.png"
run "$CN" filter "$T/sharp_r.png" --kernel identity --pad 1 --print
R400=$("$PY" -c "print(int((400 + 50) / (900 + 50) * 255 + 0.5))")   # 121
expect_row "filter --rescale: -50..900 -> 0..255, 400 -> $R400" "$R400 0"
expect_row "filter --rescale: 900 -> 255" "0 255"
# --gray: 0.299*200 + 0.587*100 + 0.114*50 = 124.2 -> 124; without it, three channels
G=$("$PY" -c "print(round(0.299 * 200 + 0.587 * 100 + 0.114 * 50))")
run "$CN" filter "$T/one.png" --kernel identity --pad 1 --gray --print
expect_row "filter --gray: the luma $G" "$G"
run "$CN" filter "$T/one.png" --kernel identity --pad 1 --print
expect_text "filter RGB: channel B shown" out "channel B"
expect_row "filter RGB: B = 50" "50"
# a phone's JPEG stored sideways with an EXIF orientation is read as a viewer shows it: each of
# the 8 against PIL's ImageOps.exif_transpose (another implementation), pixel for pixel
"$PY" - "$T" <<'PY' >"$T/exif.want"
import sys
from PIL import Image, ImageOps
im = Image.frombytes("L", (5, 3), bytes(i * 17 for i in range(15)))
for o in range(1, 9):
    e = Image.Exif()
    e[0x0112] = o
    im.save(f"{sys.argv[1]}/exif{o}.jpg", quality=100, exif=e.tobytes())
    up = ImageOps.exif_transpose(Image.open(f"{sys.argv[1]}/exif{o}.jpg"))
    print(o, " ".join(str(v) for v in up.getdata()), up.size[1], up.size[0])
PY
: >"$T/exif.got"
for o in 1 2 3 4 5 6 7 8; do
    "$CN" filter "$T/exif$o.jpg" --kernel identity --pad 1 --print >"$T/out" 2>"$T/err"
    rows=$(sed -n 's/^rows: .* = \([0-9]*\)$/\1/p' "$T/out"); cols=$(sed -n 's/^columns: .* = \([0-9]*\)$/\1/p' "$T/out")
    echo "$o $(tail -n "$rows" "$T/out" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//') $rows $cols" >>"$T/exif.got"
done
if cmp -s "$T/exif.want" "$T/exif.got"; then ok "JPEG EXIF orientations 1-8: the pixels PIL's exif_transpose gives"
else bad "JPEG EXIF orientations 1-8 against PIL" "$(diff "$T/exif.want" "$T/exif.got" | head -8)"; fi

# errors: usage (exit 2) and bad input (exit 1), named
run "$CN" filter "$T/six.png" --kernel edg --print
expect_rc "filter unknown kernel" 2
expect_text "filter unknown kernel: did you mean" err "unknown kernel 'edg' (did you mean 'edge'?)"
run "$CN" filter "$T/six.png" --print
expect_rc "filter without --kernel" 2
run "$CN" filter --kernel edge --print
expect_rc "filter without an image" 2
run "$CN" filter "$T/six.png" --kernel edge
expect_rc "filter without -o or --print" 2
run "$CN" filter "$T/six.png" --kernel edge --pad wide --print
expect_rc "filter --pad wide" 2
run "$CN" filter "$T/six.png" --kernel edge --stride 0 --print
expect_rc "filter --stride 0" 2
run "$CN" filter "$T/six.png" --kernel "@$T/ragged.txt" --print
expect_rc "filter ragged kernel file" 1
expect_text "filter ragged kernel file: FILE:LINE" err "ragged.txt:2: row 2 has 2 values, row 1 has 3"
run "$CN" filter "$T/six.png" --kernel "@$T/word.txt" --print
expect_rc "filter kernel file with a word" 1
expect_text "filter kernel file with a word: FILE:LINE" err "word.txt:3: 'x' is not a number"
# a kernel file of blank lines is bad input (exit 1, the file named), as a word in it is
run "$CN" filter "$T/six.png" --kernel "@$T/blank.txt" --print
expect_rc "filter kernel file without numbers" 1
expect_text "filter kernel file without numbers: named" err "blank.txt: no numbers in the file (--kernel)"
# an output past an image's 2^26 pixels: refused before anything is allocated, with its size
run "$CN" filter "$T/six.png" --kernel edge --pad 10000 -o "$T/huge.png"
expect_rc "filter --pad 10000" 1
expect_text "filter --pad 10000: the output's size said" err "six.png: the output would be 20004x20004 pixels (--pad 10000, --stride 1), over the 67,108,864 an image may have"
# a comma with nothing on one side is a value missing, not a separator to skip
for v in "1,,2" ",1,2" "1,2," "1,2;3,,4"; do
    run "$CN" calc softmax "$v"
    expect_rc "calc softmax '$v'" 2
    expect_text "calc softmax '$v': the empty value said" err "an empty value (a comma with no number on one side)"
done
# a comment in -e runs to the end of the line, often the whole text: what it swallows is said
run "$CN" summary -e 'input 28x28x1 # a note; conv 8 3x3'
expect_rc "summary -e with a comment before a ';'" 0
expect_text "-e: the statement a comment swallowed named" err "convnet: note: -e: '#' starts a comment to the end of the line, so 'conv 8 3x3' after its ';' is not read"
run "$CN" summary -e 'input 28x28x1; conv 8 3x3 # a note'
expect_empty "-e with a comment at its end: no note" err
run "$CN" calc softmax @/dev/zero
expect_text "calc @/dev/zero: refused at 16 MiB" err "/dev/zero: larger than 16 MiB"
run "$CN" calc softmax "1, 2 ;3 4"
expect_rc "calc softmax: commas and blanks between values" 0
printf '0,1,0\n1,,0\n' >"$T/holes.txt"
run "$CN" filter "$T/six.png" --kernel "@$T/holes.txt" --print
expect_text "filter kernel file with an empty value: FILE:LINE" err "holes.txt:2: an empty value"
run "$CN" filter "$T/nowhere.png" --kernel edge --print
expect_rc "filter of a missing image" 1
run "$CN" filter "$T/one.png" --kernel edge --print
expect_rc "filter: kernel larger than the image" 1
expect_text "filter: kernel larger than the image, said" err "kernel 3x3 larger than the padded image 1x1"
run "$CN" filter "$T/six.png" --kernel edge -o "$T/no/such/dir/out.png"
expect_rc "filter -o into a missing folder" 1

# ---- calc: cross-entropy and softmax of logits far from 0 ------------------------------------
# three equal logits give p = 1/3 each, so the loss is ln 3 at any size; before the stable
# log-softmax, 1e17 + ln 3 rounded to 1e17 and the loss came out 0
run "$CN" calc loss ce --target 1,0,0 --pred 1e17,1e17,1e17 --logits
expect_rc "calc loss ce --logits at 1e17" 0
expect_line "calc loss ce --logits at 1e17: ln 3" out "$("$PY" -c 'import math; print("%.6g" % math.log(3))')"
run "$CN" calc loss ce --target 1,0,0 --pred 1e17,1e17,1e17 --logits --json
expect_json "calc loss ce --logits at 1e17 --json: ln 3 to 1e-12" "abs(d['result'] - math.log(3)) <= 1e-12 * math.log(3)"
# softmax of 1000 and 999: e^1000 overflows a double, so the working shifts by the largest
# score; S1 = 1 / (1 + e^-1)
run "$CN" calc softmax 1000 999 --explain
expect_rc "calc softmax 1000 999 --explain" 0
expect_line "calc softmax 1000 999 --explain: the shifted sum" out "$("$PY" -c 'import math; print("  sum = %.6g" % (1 + math.exp(-1)))')"
expect_line "calc softmax 1000 999 --explain: S1" out "$("$PY" -c 'import math; s = 1 + math.exp(-1); print("  S1 = 1 / %.6g = %.6g" % (s, 1 / s))')"

# ---- calc act: each activation's values and derivatives against PyTorch's autograd -----------------
ACT_X='-4 -1 -0.5 0 0.5 1 2.5 4 7'
for k in relu leakyrelu sigmoid tanh relu6 hardsigmoid hardswish silu gelu elu; do
    run "$CN" calc act $k $ACT_X --slope 0.2 --alpha 0.7 --json
    if "$PY" tests/act_torch_check.py $k $ACT_X <"$T/out" >"$T/py" 2>&1; then ok "calc act $k: f(x) and f'(x) as PyTorch's autograd gives them"
    else bad "calc act $k against PyTorch" "$(cat "$T/py")"; fi
done
run "$CN" calc act softmax 2 1 0.1 --json
if "$PY" tests/act_torch_check.py softmax 2 1 0.1 <"$T/out" >"$T/py" 2>&1; then
    ok "calc act softmax: the Jacobian o_i (1 - o_i), -o_i o_j (seed 004) as PyTorch's autograd gives it"
else bad "calc act softmax against PyTorch" "$(cat "$T/py")"; fi
# ---- calc dropout: the mask's values and inverted dropout's expectation ---------------------------
run "$CN" calc dropout 1 -2 3 0.5 4 --keep 0.7 --draws 20000 --json
expect_json "calc dropout --json: each value of the draw 0 or x / keep; the mean of 20000 within 5 sigma of x" \
    "all(y == 0 or abs(y - x / 0.7) <= 1e-6 * abs(x / 0.7) for y, x in zip(d['result'], [1, -2, 3, 0.5, 4])) and all(abs(m - x) <= 5 * abs(x) * math.sqrt(0.3 / 0.7 / 20000) for m, x in zip(d['mean'], [1, -2, 3, 0.5, 4])) and d['draws'] == 20000"
run "$CN" calc dropout 1 -2 3 --keep 1 --json
expect_json "calc dropout --keep 1: nothing dropped, y = x" "d['result'] == [1, -2, 3] and d['mean'] == [1, -2, 3]"
run "$CN" calc dropout 2 --keep 0.8 --explain
expect_text "calc dropout --explain: the expectation worked" out "E[y_i] = p * x_i / p + (1 - p) * 0 = x_i"
run "$CN" calc dropout 2 --keep 0
expect_rc "calc dropout --keep 0: a usage error" 2
run "$CN" calc act sigmoid 0 --explain
expect_line "calc act sigmoid 0 --explain: f' = f (1 - f) = 0.25, a sigmoid's largest slope" out "  x = 0: f = 1 / (1 + e^-x) = 1 / (1 + 1) = 0.5;  f' = f (1 - f) = 0.5 * 0.5 = 0.25"
run "$CN" calc act sigmod 1
expect_rc "calc act sigmod: a usage error" 2
expect_text "calc act sigmod: did you mean sigmoid" err "did you mean 'sigmoid'?"

# make run installs only what the main job needs; make check adds the tests' PyTorch and Chromium
run_pkgs=$(SETUP_LIST=1 sh scripts/setup.sh | tr '\n' ' ')
check_pkgs=$(SETUP_LIST=1 sh scripts/setup.sh --check | tr '\n' ' ')
case " $run_pkgs" in
*" python3-torch "* | *" chromium "*) fail=$((fail + 1)); echo "FAIL setup for make run installs test tools: $run_pkgs" ;;
*" dataset-fashion-mnist "*) pass=$((pass + 1)); echo "ok   setup for make run: the build and the data only" ;;
*) fail=$((fail + 1)); echo "FAIL setup for make run lacks the data: $run_pkgs" ;;
esac
case " $check_pkgs" in
*" python3-torch"*" chromium "*) pass=$((pass + 1)); echo "ok   setup for make check adds python3-torch and chromium" ;;
*) fail=$((fail + 1)); echo "FAIL setup for make check: $check_pkgs" ;;
esac

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
