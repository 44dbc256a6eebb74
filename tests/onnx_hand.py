"""onnx_hand.py — ONNX models written node by node (onnx.helper) with what other exporters write
and PyTorch does not, for tests/onnx_test.sh: auto_pad SAME_UPPER and VALID on Conv, MaxPool and
AveragePool (tf2onnx's, Keras' padding='same'), MaxPool padded at the end (PyTorch's ceil_mode
before opset 10), Gemm with transB=0 (weights stored in x out), and ReduceMean and ReduceMax over H and W;
and models convnet refuses, each for its message (a Split of the rows, a mean over the channels,
channels-last code it cannot express).
For each, DIR/NAME.onnx, the input NAME.x.bin (float32, its dims in NAME.x.shape) and the output
NAME.y.bin computed by PyTorch with the padding worked out by the ONNX spec's formula
(total = max((ceil(in / s) - 1) * s + k - in, 0), the odd one at the end), not by convnet's.
ONNX Runtime checks these outputs too (ort_check.js), so the reference is the standard's.
    /usr/bin/python3 tests/onnx_hand.py DIR"""
import math
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

OUT = sys.argv[1]
rng = np.random.default_rng(7)


def save(name, x, y, nodes, inits, out_dims, opset=17):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TP.FLOAT, list(x.shape))],
                          [helper.make_tensor_value_info("y", TP.FLOAT, out_dims)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    if opset <= onnx.defs.onnx_opset_version():  # Debian's onnx 1.12 knows opsets up to 17
        onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))
    x.astype(np.float32).tofile(os.path.join(OUT, name + ".x.bin"))
    y.astype(np.float32).tofile(os.path.join(OUT, name + ".y.bin"))
    with open(os.path.join(OUT, name + ".x.shape"), "w") as f:
        f.write(" ".join(str(d) for d in x.shape) + "\n")


def same_upper(size, k, s):
    """(begin, end) padding of one axis by ONNX's SAME_UPPER"""
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def padded(x, k, s, value=0.0):
    (t, b), (l, r) = same_upper(x.shape[2], k, s), same_upper(x.shape[3], k, s)
    return F.pad(x, (l, r, t, b), value=value)


os.makedirs(OUT, exist_ok=True)
# Conv: SAME_UPPER with stride 2 on an even side (0 before, 1 after) and an odd one (1 and 1),
# a 4x4 kernel at stride 1 (1 before, 2 after); VALID with stride 2
for name, size, k, s, auto in (("conv_same_s2_even", 8, 3, 2, "SAME_UPPER"), ("conv_same_s2_odd", 9, 3, 2, "SAME_UPPER"),
                               ("conv_same_k4", 7, 4, 1, "SAME_UPPER"), ("conv_valid_s2", 9, 3, 2, "VALID")):
    x = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    w = rng.standard_normal((4, 3, k, k)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    xt = torch.from_numpy(x)
    y = F.conv2d(padded(xt, k, s) if auto == "SAME_UPPER" else xt, torch.from_numpy(w), torch.from_numpy(b), stride=s)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", kernel_shape=[k, k], strides=[s, s],
                            auto_pad=auto)
    save(name, x, y.numpy(), [node], {"w": w, "b": b}, list(y.shape))
# MaxPool SAME_UPPER: the padding never wins; AveragePool SAME_UPPER without the padding in the
# divisor (ONNX's default, count_include_pad=0) and with it
for name, size, op, include in (("maxpool_same", 8, "MaxPool", None), ("avgpool_same", 8, "AveragePool", 0),
                                ("avgpool_same_counted", 7, "AveragePool", 1)):
    k, s = 3, 2
    x = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    xt = torch.from_numpy(x)
    if op == "MaxPool":
        y = F.max_pool2d(padded(xt, k, s, -math.inf), k, s)
        attrs = {}
    else:
        sums = F.avg_pool2d(padded(xt, k, s), k, s, divisor_override=1)
        counts = F.avg_pool2d(padded(torch.ones_like(xt), k, s), k, s, divisor_override=1)
        y = sums / (k * k if include else counts)
        attrs = {"count_include_pad": include}
    node = helper.make_node(op, ["x"], ["y"], name="pool", kernel_shape=[k, k], strides=[s, s], auto_pad="SAME_UPPER",
                            **attrs)
    save(name, x, y.numpy(), [node], {}, list(y.shape))
# MaxPool padded at the end only, as PyTorch writes ceil_mode at opset 9 (MaxPool had no
# ceil_mode before opset 10): 9x9, 3x3 stride 2, pads 0,0,1,1 give floor((9 + 1 - 3) / 2) + 1 = 4
# outputs a side, the same windows as ceil mode; pads 0,0,2,2 at stride 1 on 8x8 give 8, which
# ceil mode does not (6): maxpool_end_pads_other is refused (no reference output)
for name, size, s, e in (("maxpool_end_pads", 9, 2, 1), ("maxpool_end_pads_other", 8, 1, 2)):
    k = 3
    x = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    y = F.max_pool2d(F.pad(torch.from_numpy(x), (0, e, 0, e), value=-math.inf), k, s)
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[k, k], strides=[s, s], pads=[0, 0, e, e])
    save(name, x, y.numpy(), [node], {}, list(y.shape))
# Gemm with B stored (in, out), transB=0, as Keras' Dense kernel: y = flatten(x) . B + C
x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
w = rng.standard_normal((48, 5)).astype(np.float32)
c = rng.standard_normal(5).astype(np.float32)
y = torch.from_numpy(x).reshape(2, 48) @ torch.from_numpy(w) + torch.from_numpy(c)
save("gemm_transb0", x, y.numpy(),
     [helper.make_node("Flatten", ["x"], ["f"], name="flatten"), helper.make_node("Gemm", ["f", "w", "c"], ["y"], name="fc")],
     {"w": w, "c": c}, list(y.shape))
# ReduceMean and ReduceMax over H and W (x.mean([2, 3]), as torchvision's MNASNet ends; other
# code the max): keepdims 0 and 1, axes negative, and at opset 18 the axes an input
x = rng.standard_normal((2, 5, 6, 7)).astype(np.float32)
xt = torch.from_numpy(x)
save("reducemean_vector", x, xt.mean((2, 3)).numpy(),
     [helper.make_node("ReduceMean", ["x"], ["y"], name="mean", axes=[2, 3], keepdims=0)], {}, [2, 5])
save("reducemax_map", x, xt.amax((2, 3), keepdim=True).numpy(),
     [helper.make_node("ReduceMax", ["x"], ["y"], name="max", axes=[-1, -2])], {}, [2, 5, 1, 1])
save("reducemean_opset18", x, xt.mean((2, 3)).numpy(),
     [helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=0)], {"axes": np.array([2, 3])}, [2, 5],
     opset=18)
# a mean over the channels, which convnet has no layer for: refused (no reference output)
save("reducemean_channels", x, xt.mean(1, keepdim=True).numpy(),
     [helper.make_node("ReduceMean", ["x"], ["y"], name="mean", axes=[1])], {}, [2, 1, 6, 7])
# Split of the channels: sizes an attribute (opset 11), equal parts by num_outputs (opset 18); a
# split of the rows, which convnet has no layer for: refused (no reference output)
for name, opset, attrs, parts in (("split_sizes_opset11", 11, {"split": [1, 4]}, (1, 4)),
                                  ("split_equal_opset18", 18, {"num_outputs": 2}, (3, 2))):
    x5 = xt[:, :5]
    a, b = torch.split(x5, list(parts), 1)
    y = torch.cat((b, a), 1)
    save(name, x5.numpy(), y.numpy(),
         [helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=1, **attrs),
          helper.make_node("Concat", ["b", "a"], ["y"], name="cat", axis=1)], {}, list(y.shape), opset=opset)
save("split_rows", x, xt.numpy(),
     [helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=2, split=[3, 3]),
      helper.make_node("Concat", ["a", "b"], ["y"], name="cat", axis=2)], {}, list(x.shape), opset=11)
# channels-last order (ConvNeXt's): what convnet cannot express is refused (their outputs, by
# PyTorch, are for ONNX Runtime alone): a Transpose of other axes, a MatMul of a map in (N, C,
# H, W) order (a product along W), a Conv or a Slice of a channels-last value, a graph that ends
# channels-last, a per-channel scale on the wrong axis
w = rng.standard_normal((7, 3)).astype(np.float32)
save("transpose_hw", x, xt.transpose(2, 3).numpy(),
     [helper.make_node("Transpose", ["x"], ["y"], name="t", perm=[0, 1, 3, 2])], {}, [2, 5, 7, 6])
save("matmul_nchw", x, (xt @ torch.from_numpy(w)).numpy(),
     [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], {"w": w}, [2, 5, 6, 3])
k = rng.standard_normal((4, 6, 1, 1)).astype(np.float32)  # (N, H, W, C) read as (N, C, H, W): 6 "channels"
save("conv_channels_last", x, F.conv2d(xt.permute(0, 2, 3, 1), torch.from_numpy(k)).numpy(),
     [helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[0, 2, 3, 1]),
      helper.make_node("Conv", ["t", "k"], ["y"], name="conv", kernel_shape=[1, 1])], {"k": k}, [2, 4, 7, 5])
save("output_channels_last", x, F.relu(xt.permute(0, 2, 3, 1)).numpy(),
     [helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[0, 2, 3, 1]),
      helper.make_node("Relu", ["t"], ["y"], name="relu")], {}, [2, 6, 7, 5])
save("slice_channels_last", x, xt.permute(0, 2, 3, 1)[:, :, :, :2].permute(0, 3, 1, 2).numpy(),
     [helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[0, 2, 3, 1]),
      helper.make_node("Slice", ["t", "starts", "ends", "axes"], ["s"], name="slice"),
      helper.make_node("Transpose", ["s"], ["y"], name="back", perm=[0, 3, 1, 2])],
     {"starts": np.array([0]), "ends": np.array([2]), "axes": np.array([3])}, [2, 2, 6, 7])
s7 = rng.standard_normal(7).astype(np.float32)  # of a (N, C, H, W) map: one value per column, not per channel
save("mul_last_axis", x, (xt * torch.from_numpy(s7)).numpy(),
     [helper.make_node("Mul", ["x", "s"], ["y"], name="scale")], {"s": s7}, list(x.shape))
print("wrote 23 models")
