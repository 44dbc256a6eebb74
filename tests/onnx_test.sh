#!/bin/sh
# onnx_test.sh — ONNX in and out (src/onnx/, cli/onnx.c), run by CTest:
#   tests/onnx_test.sh /path/to/convnet /path/to/test_onnx [big]
# "big" runs only part 2 for resnet50, vgg11_bn (224x224, 530 MB of weights) and eight more of
# torchvision's classifiers, a CTest test
# of its own that runs beside the others.
# 1. convnet's exports of nets with every op: ONNX Runtime (npm's onnxruntime-node, installed by
#    scripts/setup.sh --check into tests/onnx/node_modules) gives convnet's outputs within 1e-5
#    relative, and Debian's onnx.checker (full check, with shape inference) accepts them.
# 2. PyTorch 1.13's exports (torchvision, random weights) imported with `convnet import`: the
#    checkpoint's outputs equal PyTorch's within 1e-4 relative, batch norms kept and folded; and
#    models written node by node with what other exporters write (tests/onnx_hand.py).
# 3. The commands on an imported run: summary, export (ONNX Runtime on it, against PyTorch),
#    eval, predict, train --init-from with a new head; and the errors of a model convnet cannot
#    express or of a file that is not a model.
set -u
CN="$1"
TO="$2"
BIG="${3:-}"
PY=/usr/bin/python3
T=$(mktemp -d /tmp/cn_onnx_test_XXXXXX)
trap 'rm -rf "$T"' EXIT
failed=0
check() { # check NAME COMMAND...: runs the command, prints ok or FAIL
    if sh -c "$2" >"$T/check.out" 2>&1; then echo "ok   $1"; else echo "FAIL $1"; cat "$T/check.out"; failed=1; fi
}

if [ ! -d tests/onnx/node_modules/onnxruntime-node ]; then
    echo "FAIL ONNX Runtime is missing: scripts/setup.sh --check installs it (npm install --ignore-scripts in tests/onnx)"
    exit 1
fi

if [ "$BIG" = big ]; then
    check "PyTorch exports resnet50 and vgg11_bn" "$PY tests/onnx_torch.py '$T/torch' resnet50 vgg11_bn"
    check "import resnet50" "'$CN' import '$T/torch/resnet50.onnx' -o '$T/run-resnet50'"
    check "resnet50: convnet's outputs equal PyTorch's within 1e-4" \
        "'$TO' --check '$T/run-resnet50/model.safetensors' '$T/torch/resnet50.x.bin' '$T/torch/resnet50.y.bin' 2 1e-4"
    echo "     resnet50: $(cat "$T/check.out")"
    check "import vgg11_bn --fold-bn" "'$CN' import '$T/torch/vgg11_bn.onnx' -o '$T/run-vgg' --fold-bn"
    check "vgg11_bn folded: outputs equal PyTorch's within 1e-4" \
        "'$TO' --check '$T/run-vgg/model.safetensors' '$T/torch/vgg11_bn.x.bin' '$T/torch/vgg11_bn.y.bin' 2 1e-4"
    echo "     vgg11_bn --fold-bn: $(cat "$T/check.out")"
    TV="mnasnet0_5 densenet121 googlenet inception_v3 efficientnet_b0 regnet_y_400mf mobilenet_v3_small convnext_tiny"
    check "PyTorch exports $TV (batch norms kept)" "$PY tests/onnx_torch.py '$T/torch' $TV"
    for m in $TV; do
        check "import $m; outputs equal PyTorch's within 1e-4" \
            "'$CN' import '$T/torch/$m.onnx' -o '$T/run-$m' && '$TO' --check '$T/run-$m/model.safetensors' '$T/torch/$m.x.bin' '$T/torch/$m.y.bin' 2 1e-4"
        echo "     $m: $(tail -1 "$T/check.out")"
    done
    exit $failed
fi

# ---- 1. convnet -> ONNX Runtime, onnx.checker ----
mkdir "$T/own"
check "convnet's test nets exported" "'$TO' --write '$T/own'"
check "ONNX Runtime gives convnet's outputs within 1e-5 (every op)" "node tests/onnx/ort_check.js '$T/own' 1e-5"
cat "$T/check.out"
check "onnx.checker (full) accepts every export; IR version 8, opset 17" "$PY - '$T/own' <<'PYEOF'
import glob, sys, onnx
files = sorted(glob.glob(sys.argv[1] + '/*.onnx'))
assert files
for f in files:
    m = onnx.load(f)
    onnx.checker.check_model(m, full_check=True)
    assert m.ir_version == 8 and m.opset_import[0].version == 17, f
PYEOF"

# ---- 2. PyTorch -> convnet ----
TORCH="resnet18 resnet18_bn squeezenet1_1 mobilenet_v2 se_resnet unet_small unet_small_static mix acts decoder norms view_flatten split_shuffle shufflenet_v2 shufflenet_v2_static convnext_mini channels_last"
check "PyTorch exports resnet18 (batch norms folded by PyTorch, and kept), squeezenet1_1, mobilenet_v2, the SE-ResNet and U-Net (batch free and fixed) of models/, four mixes of layers, x.view(x.size(0), -1), a split and a shuffle written out, ShuffleNetV2 (batch free and fixed), a small ConvNeXt and channels-last code" \
    "$PY tests/onnx_torch.py '$T/torch' $TORCH"
for m in $TORCH; do
    check "import $m" "'$CN' import '$T/torch/$m.onnx' -o '$T/run-$m'"
    check "$m: convnet's outputs equal PyTorch's within 1e-4" \
        "'$TO' --check '$T/run-$m/model.safetensors' '$T/torch/$m.x.bin' '$T/torch/$m.y.bin' 2 1e-4"
    echo "     $m: $(cat "$T/check.out")"
done
# opsets 9 and 10 (what older exporters write): Pad's pads an attribute, not an input; at 9
# ceil_mode as pads at the end, and F.relu6 as Relu and a Clip to at most 6
for opset in 9 10; do
    check "PyTorch exports the mix and F.relu6 at opset $opset (a padded average pooling a Pad node)" \
        "ONNX_OPSET=$opset $PY tests/onnx_torch.py '$T/torch$opset' mix relu6_fn"
    for m in mix relu6_fn; do
        check "import $m of opset $opset; outputs equal PyTorch's within 1e-4" \
            "'$CN' import '$T/torch$opset/$m.onnx' -o '$T/run$opset-$m' && '$TO' --check '$T/run$opset-$m/model.safetensors' '$T/torch$opset/$m.x.bin' '$T/torch$opset/$m.y.bin' 2 1e-4"
    done
done
check "F.relu6 of opset 9 read as one relu6 layer" "grep -q '^relu6 from' '$T/run9-relu6_fn/model.cnn'"
check "import resnet18_bn --fold-bn: 20 batch norms folded" \
    "'$CN' import '$T/torch/resnet18_bn.onnx' -o '$T/run-fold' --fold-bn | grep -q '20 batch norms folded'"
check "resnet18_bn folded: outputs equal PyTorch's within 1e-4" \
    "'$TO' --check '$T/run-fold/model.safetensors' '$T/torch/resnet18_bn.x.bin' '$T/torch/resnet18_bn.y.bin' 2 1e-4"
echo "     resnet18_bn --fold-bn: $(cat "$T/check.out")"

# what other exporters write (tf2onnx, Keras): auto_pad SAME_UPPER and VALID, Gemm with transB=0;
# the outputs by PyTorch with the ONNX spec's padding, and ONNX Runtime agrees with them
HAND="conv_same_s2_even conv_same_s2_odd conv_same_k4 conv_valid_s2 maxpool_same avgpool_same avgpool_same_counted maxpool_end_pads gemm_transb0 reducemean_vector reducemax_map reducemean_opset18 split_sizes_opset11 split_equal_opset18"
check "hand-written ONNX models: auto_pad SAME_UPPER and VALID, Gemm transB=0, ReduceMean and ReduceMax over H and W, Split of the channels" "$PY tests/onnx_hand.py '$T/hand'"
check "ONNX Runtime gives the reference outputs of the hand-written models within 1e-5" "node tests/onnx/ort_check.js '$T/hand' 1e-5"
for m in $HAND; do
    check "import $m; convnet's outputs equal the reference within 1e-5" \
        "'$CN' import '$T/hand/$m.onnx' -o '$T/run-$m' && '$TO' --check '$T/run-$m/model.safetensors' '$T/hand/$m.x.bin' '$T/hand/$m.y.bin' 2 1e-5"
done

check "a Split of the rows: refused, saying what is supported" \
    "'$CN' import '$T/hand/split_rows.onnx' -o '$T/run-other' 2>'$T/err'; test \$? -eq 1 && grep -q \"node 0 'split' (Split): only a split of the channels (axis 1) is supported\" '$T/err'"
check "a ReduceMean over the channels: refused, saying what is supported" \
    "'$CN' import '$T/hand/reducemean_channels.onnx' -o '$T/run-other' 2>'$T/err'; test \$? -eq 1 && grep -q \"node 0 'mean' (ReduceMean): only a reduction of a map over H and W (axes 2 and 3) is supported\" '$T/err'"
check "ConvNeXt's parts read as convnet's layers (PyTorch's parameter names)" \
    "grep -q '^layernorm eps=1e-06 affine=yes over=channels from features.1.0.block.0 as features.1.0.block.2\$' '$T/run-convnext_mini/model.cnn' && grep -q '^conv 64 1x1 bias=yes from features.1.0.block.2 as features.1.0.block.3\$' '$T/run-convnext_mini/model.cnn' && grep -q '^scale from features.1.0.block.5 as features.1.0\$' '$T/run-convnext_mini/model.cnn'"
for m in "transpose_hw:node 0 't' (Transpose): only a map's Transpose to channels-last order and back (perm 0,2,3,1 and 0,3,1,2) is supported" \
         "matmul_nchw:node 0 'mm' (MatMul): MatMul of a map in (N, C, H, W) order multiplies along W: not supported" \
         "conv_channels_last:node 1 'conv' (Conv): reads a channels-last value (after a Transpose perm 0,2,3,1)" \
         "output_channels_last:the graph's output 'y' is in channels-last order (N, H, W, C)" \
         "slice_channels_last:node 1 'slice' (Slice): reads a channels-last value (after a Transpose perm 0,2,3,1)" \
         "mul_last_axis:node 0 'scale' (Mul): multiplying by a constant is supported for one value per channel"; do
    check "${m%%:*}: refused, saying what is supported" \
        "'$CN' import '$T/hand/${m%%:*}.onnx' -o '$T/run-other' 2>'$T/err'; test \$? -eq 1 && grep -qF \"${m#*:}\" '$T/err'"
done
check "a MaxPool padded at the end where ceil mode gives other outputs: refused, the pads named" \
    "'$CN' import '$T/hand/maxpool_end_pads_other.onnx' -o '$T/run-other' 2>'$T/err'; test \$? -eq 1 && grep -q \"node 0 'pool' (MaxPool): pads 0,0,2,2 at the end give 8x8 outputs of 8x8, which ceil mode does not (6x6): not supported\" '$T/err'"

# ---- 3. the commands on an imported run ----
R="$T/run-resnet18_bn"
check "summary of the imported spec: resnet18's 11,181,642 trainable parameters (PyTorch's count)" \
    "'$CN' summary '$R/model.cnn' | grep -q 'parameters: 11,191,242 total, 11,181,642 trainable'"
mkdir "$T/re"
check "export of the imported run" "'$CN' export '$R' -o '$T/re/resnet18_bn.onnx'"
cp "$T/torch/resnet18_bn.x.bin" "$T/torch/resnet18_bn.x.shape" "$T/torch/resnet18_bn.y.bin" "$T/re/"
check "ONNX Runtime on the re-export gives PyTorch's outputs within 1e-4" "node tests/onnx/ort_check.js '$T/re' 1e-4"
"$PY" tests/pngwrite.py "$T/img" red green blue --count 4 --seed 1 --size 64 >/dev/null
check "eval of the imported run" "'$CN' eval '$R' --data '$T/img' | grep -q 'accuracy'"
check "predict with the imported run" "'$CN' predict '$R' '$T/img/red/000.png' | grep -q '%'"
# a net whose output is a map (the U-Net: two classes a pixel) is no classifier: eval and predict
# say so (its 2x36x36 values were taken for 2,592 classes), and show draws the maps
U="$T/run-unet_small"
check "eval of the imported U-Net: its output is a map, not a score per class" \
    "! '$CN' eval '$U' --data '$T/img' 2>'$T/u.err' && grep -q \"model.safetensors:spec:[0-9]*:1: the net's output, head, is a map (36x36x2), not one score per class: end the net with 'dense 3' (the data has 3 classes)\" '$T/u.err'"
check "predict with the imported U-Net: the same, and where its maps are drawn" \
    "! '$CN' predict '$U' '$T/img/red/000.png' 2>'$T/u.err' && grep -q \"is a map (36x36x2), not one score per class: end the net with 'globalavgpool'\$\" '$T/u.err' && grep -q 'convnet show .* --activations IMAGE' '$T/u.err'"
check "show draws the imported U-Net's output maps" \
    "'$CN' show '$U' --activations '$T/img/red/000.png' --layer head -o '$T/u.png' | grep -q '2 maps of head (36x36'"
check "train --init-from the imported run: a new head of 3 classes, 1 epoch" \
    "'$CN' train --init-from '$R' --data '$T/img' --epochs 1 --batch 4 --out '$T/tuned' && test -f '$T/tuned/model.safetensors'"
# convnet's own export imported back: the normalisation and class names come with it
check "export of a trained run, imported back" \
    "'$CN' export '$T/tuned' -o '$T/rt.onnx' && '$CN' import '$T/rt.onnx' -o '$T/rt' | grep -qx 'class names: blue, green, red'"
check "the imported run's norm_mean, norm_std, class_names and resize are the trained run's" \
    "$PY - '$T/tuned/model.safetensors' '$T/rt/model.safetensors' <<'PYEOF'
import json, struct, sys
def meta(f):
    b = open(f, 'rb').read()
    return json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])['__metadata__']
a, b = meta(sys.argv[1]), meta(sys.argv[2])
assert a['class_names'] == 'blue\\ngreen\\nred', a['class_names']
assert a['resize'] == 'antialias', a.get('resize')
for k in ('norm_mean', 'norm_std', 'class_names', 'resize'):
    assert a[k] == b[k], (k, a[k], b[k])
PYEOF"
check "the exported model's norm_mean and norm_std: a value per input channel (3), the checkpoint's; its resize" \
    "$PY - '$T/rt.onnx' '$T/tuned/model.safetensors' <<'PYEOF'
import json, onnx, struct, sys
m = {p.key: p.value for p in onnx.load(sys.argv[1]).metadata_props}
b = open(sys.argv[2], 'rb').read()
c = json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])['__metadata__']
for k in ('norm_mean', 'norm_std'):
    assert m[k].split(',') == c[k].split(',')[:3], (k, m[k], c[k])
assert m['resize'] == c['resize'] == 'antialias', (m['resize'], c['resize'])
PYEOF"
# $WITH_META IN OUT KEY VALUE...: the ONNX model IN with those metadata values (Python's escapes:
# \n a new line, \x1b an escape), as OUT
WITH_META="$PY $T/with_meta.py"
cat >"$T/with_meta.py" <<'PYEOF'
import sys, onnx
m = onnx.load(sys.argv[1])
new = {k: v.encode().decode('unicode_escape') for k, v in zip(sys.argv[3::2], sys.argv[4::2])}
for p in m.metadata_props:
    if p.key in new:
        p.value = new[p.key]
onnx.save(m, sys.argv[2])
PYEOF
check "import of a model whose metadata has one mean and 4 stds (convnet's export before 2026-12-07): both kept" \
    "$WITH_META '$T/rt.onnx' '$T/onemean.onnx' norm_mean 0.25 norm_std 0.5,0.75,0.125,1 &&
'$CN' import '$T/onemean.onnx' -o '$T/onemean' 2>'$T/err' && ! grep -q note '$T/err' && $PY -c \"
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
m = json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])['__metadata__']
assert m['norm_mean'] == '0.25,0.25,0.25,0' and m['norm_std'] == '0.5,0.75,0.125,1', m
\" '$T/onemean/model.safetensors'"
check "predict with it: the trained run's lines, class names and all" \
    "'$CN' predict '$T/tuned' '$T/img/red/000.png' '$T/img/blue/001.png' | tail -n +2 >'$T/p1' && '$CN' predict '$T/rt' '$T/img/red/000.png' '$T/img/blue/001.png' | tail -n +2 >'$T/p2' && grep -q '%  red' '$T/p1' && cmp '$T/p1' '$T/p2'"
check "summary of a run folder and of a checkpoint: the net they hold, as from its spec" \
    "'$CN' summary '$T/rt/model.cnn' | tail -n +2 >'$T/s1' && '$CN' summary '$T/rt' | tail -n +2 >'$T/s2' && '$CN' summary '$T/tuned/model.safetensors' | tail -n +2 >'$T/s3' && grep -q '^parameters: ' '$T/s1' && cmp '$T/s1' '$T/s2' && cmp '$T/s1' '$T/s3'"
check "import --mean, --std: one number for every channel, or one a channel" \
    "'$CN' import '$T/rt.onnx' -o '$T/rt1' --mean 0.5 --std 0.25 && '$CN' import '$T/rt.onnx' -o '$T/rt3' --mean 0.1,0.2,0.3 --std 0.5,0.6,0.7 && $PY - '$T' <<'PYEOF'
import json, struct, sys, numpy as np
def meta(f):
    b = open(f, 'rb').read()
    return json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])['__metadata__']
def vals(s):
    return [np.float32(v) for v in s.split(',')]
for run, mean, std in (('rt1', [0.5] * 3, [0.25] * 3), ('rt3', [0.1, 0.2, 0.3], [0.5, 0.6, 0.7])):
    m = meta(sys.argv[1] + '/' + run + '/model.safetensors')
    assert vals(m['norm_mean']) == [np.float32(v) for v in mean + [0]], m['norm_mean']
    assert vals(m['norm_std']) == [np.float32(v) for v in std + [1]], m['norm_std']
PYEOF"
check "import --mean of 2 numbers for 3 channels, --std 0: usage errors (exit 2), nothing written" \
    "'$CN' import '$T/rt.onnx' -o '$T/bad' --mean 0.1,0.2 2>'$T/err'; test \$? -eq 2 && grep -q \"mean has 2 numbers for the model's 3 input channels (give 1 or 3)\" '$T/err' && '$CN' import '$T/rt.onnx' -o '$T/bad' --std 0.5,0,1 2>'$T/err'; test \$? -eq 2 && grep -q 'a standard deviation must be >= 1e-06 (got 0)' '$T/err' && ! test -e '$T/bad'"
check "metadata a checkpoint would refuse (2 class names for 3 outputs, a std of 0): left out, each with a note" \
    "$WITH_META '$T/rt.onnx' '$T/badmeta.onnx' class_names 'a\\nb' norm_std 0,1,1,1 &&
'$CN' import '$T/badmeta.onnx' -o '$T/badmeta' 2>'$T/err' | grep -qx 'class names: none (predict names classes by number)' && grep -q 'norm_std metadata is not a number for each input channel (each std >= 1e-6): left out' '$T/err' && grep -q 'class_names metadata is not a name for each output: left out' '$T/err' && $PY -c \"
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
m = json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])['__metadata__']
assert 'class_names' not in m and m['norm_std'] == '1,1,1,1', m
\" '$T/badmeta/model.safetensors'"
# resize: the metadata's, --resize over it, antialias where a model has none (PyTorch's) or a bad one
check "import's resize: the model's (bilinear), --resize's (antialias), a bad one's note, a PyTorch model's antialias" \
    "$WITH_META '$T/rt.onnx' '$T/bil.onnx' resize bilinear && '$CN' import '$T/bil.onnx' -o '$T/bil' >/dev/null &&
'$CN' import '$T/bil.onnx' -o '$T/bil2' --resize antialias >/dev/null &&
$WITH_META '$T/rt.onnx' '$T/bic.onnx' resize bicubic && '$CN' import '$T/bic.onnx' -o '$T/bic' 2>'$T/err' >/dev/null &&
grep -q 'resize metadata is not bilinear, antialias or draft: ignored' '$T/err' && $PY - '$T' '$R' <<'PYEOF'
import json, struct, sys
def meta(f):
    b = open(f + '/model.safetensors', 'rb').read()
    return json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])['__metadata__']
got = [meta(sys.argv[1] + '/' + r)['resize'] for r in ('bil', 'bil2', 'bic')] + [meta(sys.argv[2])['resize']]
assert got == ['bilinear', 'antialias', 'antialias', 'antialias'], got
PYEOF"
check "class names with a control character (an escape code): left out, and the import says it has none" \
    "$WITH_META '$T/rt.onnx' '$T/esc.onnx' class_names 'blue\\x1b[2J\\ngreen\\nred' &&
'$CN' import '$T/esc.onnx' -o '$T/esc' | grep -qx 'class names: none (predict names classes by number)'"
check "an ONNX file given as a spec or a checkpoint: says so, and names convnet import" \
    "'$CN' summary '$T/rt.onnx' 2>'$T/err'; test \$? -eq 1 && grep -q 'rt.onnx: not a spec but an ONNX model: .convnet import .*rt.onnx -o DIR' '$T/err' && '$CN' eval '$T/rt.onnx' 2>'$T/err'; test \$? -eq 1 && grep -q 'rt.onnx: not a checkpoint but an ONNX model' '$T/err'"
check "train with a run folder as its spec: refused, naming --resume and --init-from" \
    "'$CN' train '$T/rt' --epochs 1 2>'$T/err'; test \$? -eq 2 && grep -q 'is a run or a checkpoint, not a spec: --resume DIR' '$T/err'"
check "import into a folder holding a run: refused without --replace" \
    "! '$CN' import '$T/torch/mix.onnx' -o '$R' 2>&1 | grep -q 'holds a run'; '$CN' import '$T/torch/mix.onnx' -o '$R' 2>&1 | grep -q 'holds a run'"

# ---- errors ----
"$PY" - "$T" <<'PYEOF' >/dev/null 2>&1
import sys, torch, torch.nn as nn
class Celu(nn.Module):  # CELU is ONNX's Celu, not a convnet op
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
    def forward(self, x):
        return nn.functional.celu(self.conv(x))
torch.onnx.export(Celu().eval(), torch.randn(1, 3, 8, 8), sys.argv[1] + "/celu.onnx", opset_version=17)
PYEOF
check "an unsupported node: its name, op type and what convnet imports; exit 1" \
    "'$CN' import '$T/celu.onnx' -o '$T/celu' 2>'$T/err'; test \$? -eq 1 && grep -q \"celu.onnx: node [0-9]* '/Celu' (Celu): op type not supported; convnet imports Conv, MaxPool\" '$T/err'"
"$PY" - "$T" <<'PYEOF' >/dev/null 2>&1
import sys, onnx
from onnx import helper, TensorProto as TP
def model(name, nodes, inits=()):  # (1, 3, 4, 4) in and out, opset 17
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TP.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [1, 3, 4, 4])], list(inits))
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), "%s/%s.onnx" % (sys.argv[1], name))
model("hsig", [helper.make_node("HardSigmoid", ["x"], ["y"], name="hs", alpha=0.2)])
model("clip", [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="c")],
      [helper.make_tensor("lo", TP.FLOAT, [], [0.0]), helper.make_tensor("hi", TP.FLOAT, [], [1.0])])
huge = TP(name="w", data_type=TP.FLOAT, dims=[2**62, 4], raw_data=bytes(16))  # 2^64 values claimed
model("huge", [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[1, 1])], [huge])
PYEOF
check "HardSigmoid other than PyTorch's: refused, naming the values" \
    "'$CN' import '$T/hsig.onnx' -o '$T/hsig' 2>'$T/err'; test \$? -eq 1 && grep -q \"node 0 'hs' (HardSigmoid): HardSigmoid with alpha=0.2 beta=0.5 is not supported\" '$T/err' && ! test -e '$T/hsig/model.cnn'"
check "Clip other than ReLU6: refused" \
    "'$CN' import '$T/clip.onnx' -o '$T/clip' 2>'$T/err'; test \$? -eq 1 && grep -q \"node 0 'c' (Clip): only Clip between constants 0 and 6 (ReLU6), or to at most 6 after a Relu, is supported\" '$T/err'"
check "an initializer whose dims multiply past 64 bits: refused as such" \
    "'$CN' import '$T/huge.onnx' -o '$T/huge' 2>'$T/err'; test \$? -eq 1 && grep -q \"initializer 'w': its dims hold more values than 64 bits count\" '$T/err'"
head -c 300 "$T/torch/mix.onnx" >"$T/cut.onnx"
check "a cut file: not an ONNX model" \
    "'$CN' import '$T/cut.onnx' -o '$T/cut' 2>'$T/err'; test \$? -eq 1 && grep -q 'cut.onnx: not an ONNX model (its protobuf does not parse)' '$T/err' && ! test -e '$T/cut/model.cnn'"
check "export without -o: usage error (exit 2)" "'$CN' export '$R'; test \$? -eq 2"

exit $failed
