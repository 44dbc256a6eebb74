#!/usr/bin/python3
"""gen_torch_parity.py — PyTorch parity vectors for convnet's training engine.

For each case below (a convnet spec, a loss and an optimizer) this script builds the same
network in PyTorch, runs forward, loss, backward and an optimizer step on one fixed batch
`steps` times (3, or 5 for the learning-rate schedules so that the schedule's shape shows),
and writes what it saw to tests/parity/<case>.bin. tests/test_torch_parity.c reads those
files, does the same with convnet and compares every tensor (relative error <= 1e-4).

Regenerate with Debian's PyTorch (python3-torch 1.13, reference only, never linked):

    /usr/bin/python3 tests/gen_torch_parity.py        # writes tests/parity/*.bin

Everything is float32 on both sides, with fixed seeds (one per case, from its name).

File format (all integers little-endian):
    magic   8 bytes "CNPARITY"
    u32     version (1)
    u32     number of records
    records, each:
        u32     name length L, then L bytes of name (ASCII, no NUL)
        u32     kind: 0 = float32 tensor, 1 = text
        u32     rank R (text: 1)
        R x i64 dims (text: its byte length)
        data    float32 little-endian, prod(dims) values, row-major; text: the bytes, no NUL

Records of a case:
    spec              text: the convnet spec
    config            text: space-separated key=value: loss= (mse|ce|ce-logits|bce-logits),
                      smoothing=, optim= (sgd|momentum|nesterov|adam|adamw), lr=, momentum=,
                      beta1=, beta2=, eps=, wd=, l1=, clip=, schedule= (constant|cosine|onecycle),
                      total=, warmup=, pct_start=, div_factor=, final_div_factor=, steps=
    x                 input (N, C, H, W)
    target            (N, K): one-hot rows for the cross-entropies, values for mse/bce
    <tensor>          every tensor of the net before training, named as convnet names them
                      ("conv1.weight", "batchnorm1.running_var"), in PyTorch's layout
    y                 output of the first forward (training mode), (N, C, H, W)
    dx                dL/dx of the first backward, (N, C, H, W)
    grad/<tensor>     dL/d<tensor> of the first backward, for every trainable tensor
    losses            (steps,) the loss before each step
    lrs               (steps,) the learning rate each step used
    final/<tensor>    every tensor after the steps (batch-norm running statistics included)
    y_eval            output of a forward in evaluation mode after the steps

Conventions followed (they are convnet's and PyTorch's both):
  - a layer without 'as NAME' is named type + counter per type (conv1, conv2, relu1);
  - dense reads its input flattened in C,H,W order (torch.flatten(x, 1));
  - pad=same is TensorFlow's: out = ceil(in / stride), the odd padded row/column bottom/right;
  - minpool is -maxpool(-x); avgpool counts padding (count_include_pad=True);
  - batch norm in training mode: batch statistics (biased variance), running variance updated
    with the unbiased one;
  - weight decay (L2) and the L1 term are added to the gradient after clipping, inside the
    optimizer (PyTorch has no L1 option: it is added to .grad after clip_grad_norm_);
  - cross-entropy on probabilities (after softmax) is -sum_j t_j log p_j averaged over samples.
"""
import math
import os
import re
import struct
import sys
import warnings
import zlib

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parity")


# ---- a small interpreter of convnet's spec language ------------------------------------------

def statements(spec):
    for line in spec.split("\n"):
        line = line.split("#")[0]
        for st in line.split(";"):
            if st.strip():
                yield st.split()


def pair(v):
    if "x" in v:
        a, b = v.split("x")
        return int(a), int(b)
    return int(v), int(v)


class Net:
    """Layers of a spec with their parameters, named as convnet names them."""

    def __init__(self, spec, gen):
        self.layers = []   # (name, type, positional values, keys, input names)
        self.params = {}   # name -> tensor (trainable ones require grad)
        self.trainable = []
        counters = {}
        prev = None
        shapes = {}
        for toks in statements(spec):
            kind, rest = toks[0], toks[1:]
            pos, keys, src, name = [], {}, None, None
            i = 0
            while i < len(rest):
                t = rest[i]
                if t in ("from", "as"):
                    if t == "from":
                        src = rest[i + 1]
                    else:
                        name = rest[i + 1]
                    i += 2
                    continue
                if "=" in t:
                    k, v = t.split("=", 1)
                    keys[k] = v
                else:
                    pos.append(t)
                i += 1
            if name is None:
                counters[kind] = counters.get(kind, 0) + 1
                name = "%s%d" % (kind, counters[kind])
            if kind == "input":
                h, w, c = (int(v) for v in pos[0].split("x"))
                ins, shape = [], (c, h, w)
            elif kind in ("concat", "add", "mul"):
                ins = pos
                shape = None
            else:
                ins = [src if src else prev]
                shape = None
            self.layers.append((name, kind, pos, keys, ins))
            # parameters need the input shape: run a dummy forward lazily (below)
            prev = name
            shapes[name] = shape
        self.spec = spec
        self.gen = gen
        # infer shapes with a probe forward that creates the parameters on the way
        c, h, w = shapes[self.layers[0][0]]
        self.input_shape = (c, h, w)
        with torch.no_grad():
            self.forward(torch.zeros(2, c, h, w), training=False, create=True)
        for t in self.trainable:
            t.requires_grad_(True)

    def _param(self, name, shape, kind, create, trainable=True, fan_in=1):
        if create:
            g = self.gen
            if kind == "weight":
                t = torch.randn(*shape, generator=g) * (1.0 / math.sqrt(fan_in))
            elif kind == "bias":
                t = torch.randn(*shape, generator=g) * 0.2
            elif kind == "gamma":
                t = 1.0 + 0.2 * torch.randn(*shape, generator=g)
            elif kind == "beta":
                t = 0.2 * torch.randn(*shape, generator=g)
            elif kind == "rmean":
                t = 0.3 * torch.randn(*shape, generator=g)
            elif kind == "slope":
                t = 0.25 + 0.1 * torch.randn(*shape, generator=g)
            else:  # rvar
                t = 0.5 + torch.rand(*shape, generator=g)
            t = t.float().contiguous()
            self.params[name] = t
            if trainable:
                self.trainable.append(t)
        return self.params[name]

    def forward(self, x, training, create=False):
        out = {}
        for name, kind, pos, keys, ins in self.layers:
            a = out[ins[0]] if ins else None
            if kind == "input":
                y = x
            elif kind == "conv":
                f, (kh, kw) = int(pos[0]), pair(pos[1])
                (sh, sw) = pair(keys.get("stride", "1"))
                (dh, dw) = pair(keys.get("dilation", "1"))
                groups = int(keys.get("groups", "1"))
                cin = a.shape[1]
                wt = self._param(name + ".weight", (f, cin // groups, kh, kw), "weight", create,
                                 fan_in=cin // groups * kh * kw)
                b = None
                if keys.get("bias", "yes") == "yes":
                    b = self._param(name + ".bias", (f,), "bias", create)
                a = pad_input(a, keys.get("pad", "0"), (kh, kw), (sh, sw), (dh, dw))
                y = F.conv2d(a, wt, b, stride=(sh, sw), dilation=(dh, dw), groups=groups)
            elif kind in ("maxpool", "avgpool", "minpool"):
                k = pair(pos[0])
                s = pair(keys["stride"]) if "stride" in keys else k
                p = pair(keys.get("pad", "0"))
                ceil = keys.get("ceil", "no") == "yes"
                d = pair(keys.get("dilation", "1"))
                if kind == "maxpool":
                    y = F.max_pool2d(a, k, s, p, dilation=d, ceil_mode=ceil)
                elif kind == "minpool":
                    y = -F.max_pool2d(-a, k, s, p, dilation=d, ceil_mode=ceil)
                else:
                    y = F.avg_pool2d(a, k, s, p, ceil_mode=ceil,
                                     count_include_pad=keys.get("count_pad", "yes") == "yes")
            elif kind == "globalavgpool":
                y = a.mean(dim=(2, 3), keepdim=True)
            elif kind == "globalmaxpool":
                y = F.adaptive_max_pool2d(a, 1)
            elif kind == "adaptiveavgpool":
                y = F.adaptive_avg_pool2d(a, pair(pos[0]))
            elif kind == "relu6":
                y = F.relu6(a)
            elif kind == "hardsigmoid":
                y = F.hardsigmoid(a)
            elif kind == "hardswish":
                y = F.hardswish(a)
            elif kind == "silu":
                y = F.silu(a)
            elif kind == "gelu":
                y = F.gelu(a, approximate=keys.get("approximate", "none"))
            elif kind == "elu":
                y = F.elu(a, float(keys.get("alpha", "1")))
            elif kind == "scale":  # ConvNeXt's layer_scale: (C, 1, 1) times the map
                y = a * self._param(name + ".weight", (a.shape[1],), "gamma", create).reshape(1, -1, 1, 1)
            elif kind == "prelu":
                y = F.prelu(a, self._param(name + ".weight", (a.shape[1],), "slope", create))
            elif kind in ("layernorm", "groupnorm", "instancenorm"):
                c = a.shape[1]
                affine = keys.get("affine", "no" if kind == "instancenorm" else "yes") == "yes"
                eps = float(keys.get("eps", "1e-5"))
                over_channels = keys.get("over") == "channels"
                # convnet's tensors: (C,H,W) for layernorm, (C) after a dense layer, over=channels and for the others
                shape = (c,) if kind != "layernorm" or a.shape[2] * a.shape[3] == 1 or over_channels else tuple(a.shape[1:])
                gamma = beta = None
                if affine:
                    gamma = self._param(name + ".weight", shape, "gamma", create)
                    beta = self._param(name + ".bias", shape, "beta", create)
                if over_channels:  # torchvision's LayerNorm2d: LayerNorm(C) of the channels-last map
                    y = F.layer_norm(a.permute(0, 2, 3, 1), (c,), gamma, beta, eps=eps).permute(0, 3, 1, 2)
                elif kind == "layernorm":
                    y = F.layer_norm(a, a.shape[1:], gamma.reshape(a.shape[1:]) if affine else None,
                                     beta.reshape(a.shape[1:]) if affine else None, eps=eps)
                elif kind == "groupnorm":
                    y = F.group_norm(a, int(pos[0]), gamma, beta, eps=eps)
                else:
                    y = F.instance_norm(a, weight=gamma, bias=beta, eps=eps)
            elif kind == "relu":
                y = F.relu(a)
            elif kind == "leakyrelu":
                y = F.leaky_relu(a, float(keys.get("slope", "0.01")))
            elif kind == "sigmoid":
                y = torch.sigmoid(a)
            elif kind == "tanh":
                y = torch.tanh(a)
            elif kind == "softmax":
                y = F.softmax(a, dim=1)
            elif kind == "batchnorm":
                c = a.shape[1]
                gamma = beta = None
                if keys.get("affine", "yes") == "yes":
                    gamma = self._param(name + ".weight", (c,), "gamma", create)
                    beta = self._param(name + ".bias", (c,), "beta", create)
                rm = self._param(name + ".running_mean", (c,), "rmean", create, trainable=False)
                rv = self._param(name + ".running_var", (c,), "rvar", create, trainable=False)
                y = F.batch_norm(a, rm, rv, gamma, beta, training=training,
                                 momentum=float(keys.get("momentum", "0.1")), eps=float(keys.get("eps", "1e-5")))
            elif kind == "dropout":
                assert float(keys["keep"]) == 1.0, "parity cases run without dropout"
                y = a
            elif kind == "flatten":
                y = torch.flatten(a, 1)[:, :, None, None]
            elif kind == "dense":
                u = int(pos[0])
                flat = torch.flatten(a, 1)
                wt = self._param(name + ".weight", (u, flat.shape[1]), "weight", create, fan_in=flat.shape[1])
                b = self._param(name + ".bias", (u,), "bias", create) if keys.get("bias", "yes") == "yes" else None
                y = F.linear(flat, wt, b)[:, :, None, None]
            elif kind == "concat":
                y = torch.cat([out[n] for n in ins], dim=1)
            elif kind == "add":
                y = out[ins[0]]
                for n in ins[1:]:
                    y = y + out[n]  # a (N,C,1,1) map broadcasts
            elif kind == "mul":
                y = out[ins[0]]
                for n in ins[1:]:
                    y = y * out[n]
            elif kind == "upsample":
                mode = keys.get("mode", "nearest")
                corners = (keys.get("align_corners", "no") == "yes") if mode == "bilinear" else None
                if pos:
                    sh, sw = pair(pos[0])
                    y = F.interpolate(a, scale_factor=(float(sh), float(sw)), mode=mode, align_corners=corners)
                else:
                    y = F.interpolate(a, size=pair(keys["size"]), mode=mode, align_corners=corners)
            elif kind == "deconv":
                f, (kh, kw) = int(pos[0]), pair(pos[1])
                groups = int(keys.get("groups", "1"))
                cin = a.shape[1]
                wt = self._param(name + ".weight", (cin, f // groups, kh, kw), "weight", create,
                                 fan_in=cin // groups * kh * kw)
                b = self._param(name + ".bias", (f,), "bias", create) if keys.get("bias", "yes") == "yes" else None
                y = F.conv_transpose2d(a, wt, b, stride=pair(keys.get("stride", "1")),
                                       padding=pair(keys.get("pad", "0")),
                                       output_padding=pair(keys.get("outpad", "0")), groups=groups,
                                       dilation=pair(keys.get("dilation", "1")))
            elif kind == "pad":
                h, w = a.shape[2], a.shape[3]
                t, b, l, r = sides(keys, pos, h, w, grow=True)
                mode = {"zero": "constant", "reflect": "reflect", "replicate": "replicate"}[keys.get("mode", "zero")]
                y = F.pad(a, (l, r, t, b), mode=mode)
            elif kind == "shuffle":  # torchvision's channel_shuffle
                g = int(pos[0])
                n, c, h, w = a.shape
                y = a.view(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)
            elif kind == "channels":  # a slice of the channels (x.chunk(2, dim=1)'s halves)
                s = int(keys.get("start", "0"))
                y = a[:, s:s + int(pos[0])]
            elif kind == "crop":
                h, w = a.shape[2], a.shape[3]
                t, b, l, r = sides(keys, pos, h, w, grow=False)
                y = a[:, :, t:h - b, l:w - r]
            else:
                raise ValueError("unknown layer " + kind)
            out[name] = y
        if create:
            # batch norm's probe forward ran in eval mode: the running statistics are untouched
            pass
        return out[self.layers[-1][0]]


def sides(keys, pos, h, w, grow):
    """top, bottom, left, right of pad (grow) or crop: margin (pad's positional), a size centred
    (the odd row/column at the bottom/right; crop's positional) or at crop's offset=, then the
    sides written one by one."""
    size = pos[0] if (pos and not grow) else keys.get("size")
    if size:
        sh, sw = pair(size)
        dh, dw = (sh - h, sw - w) if grow else (h - sh, w - sw)
        t, l = dh // 2, dw // 2
        if "offset" in keys:
            t, l = pair(keys["offset"])
        return t, dh - t, l, dw - l
    margin = pos[0] if (pos and grow) else keys.get("margin", "0")
    mh, mw = pair(margin)
    return (int(keys.get("top", mh)), int(keys.get("bottom", mh)), int(keys.get("left", mw)),
            int(keys.get("right", mw)))


def pad_input(a, pad, k, s, d):
    """Zero padding of conv: N, NhxNw, valid, or TensorFlow's same (extra at bottom/right)."""
    if pad == "valid":
        return a
    if pad == "same":
        pads = []
        for size, kk, ss, dd in ((a.shape[2], k[0], s[0], d[0]), (a.shape[3], k[1], s[1], d[1])):
            out = -(-size // ss)
            total = max((out - 1) * ss + (kk - 1) * dd + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return F.pad(a, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    ph, pw = pair(pad)
    return F.pad(a, (pw, pw, ph, ph))


# ---- the cases ---------------------------------------------------------------------------------

SMALL = "input 6x6x2; conv 4 3x3 pad=1; relu; maxpool 2x2; flatten; dense 3"  # optimizer cases

CASES = [
    # conv variants (MSE on the map)
    ("conv_stride_pad", "input 7x7x3; conv 4 3x3 stride=2 pad=1", "loss=mse optim=sgd lr=0.1", 3),
    ("conv_groups_dilation", "input 8x8x4; conv 6 3x3 groups=2 dilation=2 pad=2 bias=no; conv 2 1x1 bias=no",
     "loss=mse optim=sgd lr=0.1", 2),
    ("conv_same_rect", "input 7x6x2; conv 3 2x3 stride=2 pad=same; conv 2 3x1 pad=1x0 dilation=2x1",
     "loss=mse optim=sgd lr=0.1", 2),
    # pooling (a conv in front so that there are weights to train)
    ("maxpool_pad_ceil", "input 6x6x2; conv 3 3x3 pad=1; maxpool 3x3 stride=2 pad=1 ceil=yes",
     "loss=mse optim=sgd lr=0.1", 2),
    ("avgpool_pad_ceil", "input 6x6x2; conv 3 3x3 pad=1; avgpool 3x3 stride=2 pad=1 ceil=yes",
     "loss=mse optim=sgd lr=0.1", 2),
    ("minpool_pad_ceil", "input 7x7x2; conv 3 3x3; minpool 2x2 pad=1 ceil=yes; avgpool 2x2 stride=1",
     "loss=mse optim=sgd lr=0.1", 2),
    # ceil windows that would start in the right/bottom padding are dropped (PyTorch's rule)
    ("pool_rect_ceil_drop", "input 5x7x2; conv 3 1x1; maxpool 3x2 stride=3x2 pad=1 ceil=yes; "
     "avgpool 2x2 stride=1 pad=1", "loss=mse optim=sgd lr=0.1", 2),
    ("globalavgpool", "input 5x5x3; conv 4 3x3 pad=1; globalavgpool", "loss=ce-logits optim=sgd lr=0.1", 3),
    # activations, softmax, batch norm, dense, flatten, concat, add
    ("activations", "input 5x5x2; conv 3 3x3 pad=1; leakyrelu slope=0.1; conv 3 3x3 pad=1; tanh; "
     "conv 3 3x3 pad=1; sigmoid; conv 3 1x1; relu; conv 2 1x1", "loss=mse optim=sgd lr=0.1", 2),
    ("softmax_ce", "input 4x4x2; conv 3 3x3; flatten; dense 5; softmax", "loss=ce optim=sgd lr=0.1", 4),
    # (no bias in front of a batch norm: its gradient is 0, and both sides give rounding noise)
    ("batchnorm_train", "input 5x5x2; conv 4 3x3 pad=1 bias=no; batchnorm momentum=0.2; relu; conv 2 3x3 bias=no; "
     "flatten; dense 6 bias=no; batchnorm eps=1e-3; dense 3", "loss=ce-logits optim=momentum lr=0.1 momentum=0.9", 4),
    ("dense_map", "input 3x3x2; dense 6; relu; dense 4 bias=no; tanh; dense 3",
     "loss=ce-logits optim=sgd lr=0.2", 3),
    ("concat", "input 5x5x3 as x; conv 2 1x1 from x as a; conv 3 3x3 pad=1 from x as b; concat a b; "
     "conv 2 3x3 stride=2", "loss=mse optim=sgd lr=0.02", 2),
    ("add_residual", "input 5x5x3 as x; conv 3 3x3 pad=1 as a; relu; conv 3 3x3 pad=1 as b; add x b; "
     "conv 2 1x1", "loss=mse optim=sgd lr=0.1", 2),
    # optimizers (one small net, cross-entropy from logits)
    ("opt_sgd", SMALL, "loss=ce-logits optim=sgd lr=0.1", 3),
    ("opt_momentum", SMALL, "loss=ce-logits optim=momentum lr=0.1 momentum=0.9", 3),
    ("opt_nesterov", SMALL, "loss=ce-logits optim=nesterov lr=0.05 momentum=0.8", 3),
    ("opt_sgd_wd", SMALL, "loss=ce-logits optim=momentum lr=0.1 momentum=0.9 wd=0.05", 3),
    ("opt_adam", SMALL, "loss=ce-logits optim=adam lr=0.01 beta1=0.9 beta2=0.999 eps=1e-8", 3),
    ("opt_adam_l2", SMALL, "loss=ce-logits optim=adam lr=0.01 wd=0.1", 3),
    ("opt_adamw", SMALL, "loss=ce-logits optim=adamw lr=0.01 beta1=0.8 beta2=0.99 wd=0.1", 3),
    ("opt_clip", SMALL, "loss=ce-logits optim=momentum lr=0.1 momentum=0.9 clip=0.25", 3),
    ("opt_l1", SMALL, "loss=ce-logits optim=sgd lr=0.1 l1=0.01", 3),
    ("sched_onecycle", SMALL,
     "loss=ce-logits optim=adam lr=0.02 schedule=onecycle total=10 pct_start=0.3 div_factor=25 "
     "final_div_factor=1e4 steps=5", 3),
    ("sched_cosine_warmup", SMALL,
     "loss=ce-logits optim=momentum lr=0.1 momentum=0.9 schedule=cosine total=5 warmup=2 steps=5", 3),
    # losses
    ("loss_ce_smooth", SMALL, "loss=ce-logits smoothing=0.1 optim=sgd lr=0.1", 4),
    ("loss_bce_logits", SMALL, "loss=bce-logits optim=sgd lr=0.1", 3),
    ("loss_mse", "input 6x6x2; conv 4 3x3 pad=1; relu; maxpool 2x2; flatten; dense 3; sigmoid",
     "loss=mse optim=sgd lr=0.5", 3),
    # the layers of issue 15
    ("act_hard", "input 5x5x2; conv 3 3x3 pad=1; relu6; conv 3 3x3 pad=1; hardswish; conv 3 3x3 pad=1; "
     "hardsigmoid; conv 2 1x1", "loss=mse optim=sgd lr=0.1", 2),
    ("act_smooth", "input 5x5x2; conv 3 3x3 pad=1; silu; conv 3 3x3 pad=1; gelu; conv 3 3x3 pad=1; "
     "gelu approximate=tanh; conv 3 1x1; elu alpha=0.5; conv 2 1x1", "loss=mse optim=sgd lr=0.1", 2),
    ("prelu", "input 5x5x3; conv 4 3x3 pad=1; prelu; flatten; dense 6; prelu; dense 3",
     "loss=ce-logits optim=sgd lr=0.1", 3),
    ("norms", "input 5x5x4; conv 4 3x3 pad=1; groupnorm 2; relu; conv 6 3x3 pad=1 bias=no; instancenorm affine=yes; relu; "
     "conv 4 1x1 bias=no; instancenorm eps=1e-3; conv 3 3x3; layernorm; flatten; dense 6; layernorm eps=1e-3; dense 4; "
     "layernorm affine=no; dense 3", "loss=ce-logits optim=momentum lr=0.1 momentum=0.9", 3),
    ("batchnorm_no_affine", "input 5x5x2; conv 4 3x3 pad=1 bias=no; batchnorm affine=no momentum=0.2; relu; "
     "conv 2 3x3", "loss=mse optim=sgd lr=0.1", 4),
    ("pool_dilation", "input 9x9x2; conv 3 1x1; maxpool 3x3 stride=2 pad=1 dilation=2; "
     "minpool 2x2 stride=1 dilation=2x1 ceil=yes", "loss=mse optim=sgd lr=0.1", 2),
    ("avgpool_no_pad_count", "input 7x7x2; conv 3 3x3 pad=1; avgpool 3x3 stride=2 pad=1 ceil=yes count_pad=no; "
     "avgpool 2x2 stride=1 pad=1 count_pad=no", "loss=mse optim=sgd lr=0.1", 2),
    ("adaptive_globalmax", "input 7x5x2; conv 3 3x3 pad=1; adaptiveavgpool 3x2; conv 4 1x1; adaptiveavgpool 4x3; "
     "conv 3 1x1; globalmaxpool", "loss=ce-logits optim=sgd lr=0.1", 3),
    # an inverted residual block of MobileNetV2 (models/mobilenetv2.cnn), its head in small (no batch norm
    # after the head's conv: it would leave the projection's beta a zero gradient, rounding noise)
    ("mobilenetv2_block", "input 6x6x4 as x; conv 24 1x1 bias=no; batchnorm; relu6; conv 24 3x3 pad=1 groups=24 bias=no; "
     "batchnorm; relu6; conv 4 1x1 bias=no; batchnorm as p; add p x; conv 16 1x1; relu6; "
     "adaptiveavgpool 1; dense 3", "loss=ce-logits optim=momentum lr=0.05 momentum=0.9", 4),
    # a small full network
    ("full_net", "input 10x10x1; conv 4 3x3 pad=1 bias=no; batchnorm; relu; maxpool 2x2; conv 6 3x3 pad=1; relu; "
     "maxpool 2x2; flatten; dense 8; relu; dense 3", "loss=ce-logits optim=momentum lr=0.05 momentum=0.9", 4),
    # geometric layers: upsample (F.interpolate), deconv (F.conv_transpose2d), mul and add with a
    # 1x1 map broadcast, pad (F.pad), crop (slicing)
    ("upsample_nearest", "input 4x3x2; conv 3 3x3 pad=1; upsample 2; conv 2 3x3; upsample 3x2; "
     "upsample size=7x5; conv 2 1x1", "loss=mse optim=sgd lr=0.1", 2),
    ("upsample_bilinear", "input 4x3x2; conv 3 3x3 pad=1; upsample 2x3 mode=bilinear; conv 2 3x3; "
     "upsample size=7x5 mode=bilinear align_corners=yes; upsample size=4x3 mode=bilinear; "
     "upsample 2 mode=bilinear align_corners=yes; conv 2 1x1", "loss=mse optim=sgd lr=0.1", 2),
    ("deconv", "input 4x3x4; deconv 6 3x2 stride=2x1 pad=1x0 dilation=2 groups=2 bias=no; relu; "
     "deconv 3 3x3 stride=2 pad=1 outpad=1; deconv 2 2x2 stride=2", "loss=mse optim=sgd lr=0.02", 2),
    ("mul_se", "input 5x5x4 as x; conv 4 3x3 pad=1 as a; globalavgpool; conv 2 1x1; relu; conv 4 1x1; sigmoid as s; "
     "mul a s as m; add x m as r; globalavgpool as g; add r g as q; mul g x q; conv 2 1x1", "loss=mse optim=sgd lr=0.1", 2),
    # ShuffleNet V2's unit: the channels split in two halves (x.chunk(2, dim=1)), one through
    # 1x1, depthwise 3x3 and 1x1 convolutions, joined and shuffled in 2 groups; then 3 groups
    ("channels", "input 5x5x6 as x; channels 3 as a; channels 3 start=3 from x; conv 3 1x1 bias=no; batchnorm; relu; "
     "conv 3 3x3 pad=1 groups=3 bias=no; batchnorm; conv 3 1x1; relu as b; concat a b; shuffle 2; shuffle 3; "
     "conv 2 1x1", "loss=mse optim=sgd lr=0.1", 2),
    # ConvNeXt's stem and block: a patchify conv and LayerNorm2d, a depthwise 7x7 (here 3x3), a
    # LayerNorm over the channels, the inverted bottleneck of 1x1s (its Linear layers) with GELU,
    # a per-channel scale (layer_scale) and the residual; then its head, and a scale of a vector
    ("convnext_block", "input 8x8x3; conv 8 2x2 stride=2; layernorm over=channels eps=1e-6 as s; "
     "conv 8 3x3 pad=1 groups=8; layernorm over=channels eps=1e-6; conv 32 1x1; gelu; conv 8 1x1; "
     "scale init=1e-6 as b; add s b; globalavgpool; layernorm over=channels; flatten; dense 6; scale; dense 3",
     "loss=ce-logits optim=adamw lr=0.01 wd=0.05", 3),
    ("pad_crop", "input 6x5x2; conv 3 3x3 pad=1; pad 1x2 mode=reflect; conv 3 3x3; pad size=9x8 mode=replicate; "
     "crop 5x4 offset=1x2; pad 1 top=0 right=2 mode=reflect; crop margin=1 left=0; crop 3x3; pad 2; conv 2 1x1",
     "loss=mse optim=sgd lr=0.1", 2),
]

# ---- the models of models/ and their PyTorch twins ----------------------------------------------
# Each twin is written by hand as PyTorch code would write it, with its modules named as the
# spec names its layers, so that the interpreter's weights load into it by name (strict): the
# names and shapes of every tensor, and then its outputs, must agree. Its totals (parameters,
# MACs of nn.Conv2d / nn.ConvTranspose2d / nn.Linear counted by hooks, output shape) go into the
# case's torch_totals record, which tests/test_torch_parity.c compares with convnet's.

class SEResNetSmall(torch.nn.Module):
    """models/se-resnet-block.cnn: three SE basic blocks (16, 32, 64 channels), CIFAR stem."""

    def __init__(self, classes=10):
        super().__init__()
        nn = torch.nn
        self.stem_conv, self.stem_bn = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        cin = 16
        for s, c in ((1, 16), (2, 32), (3, 64)):
            stride = 1 if s == 1 else 2
            setattr(self, "s%d_conv1" % s, nn.Conv2d(cin, c, 3, stride=stride, padding=1, bias=False))
            setattr(self, "s%d_bn1" % s, nn.BatchNorm2d(c))
            setattr(self, "s%d_conv2" % s, nn.Conv2d(c, c, 3, padding=1, bias=False))
            setattr(self, "s%d_bn2" % s, nn.BatchNorm2d(c))
            setattr(self, "s%d_fc1" % s, nn.Conv2d(c, c // 4, 1))   # torchvision's SqueezeExcitation
            setattr(self, "s%d_fc2" % s, nn.Conv2d(c // 4, c, 1))
            if stride != 1 or cin != c:
                setattr(self, "s%d_proj" % s, nn.Conv2d(cin, c, 1, stride=stride, bias=False))
                setattr(self, "s%d_proj_bn" % s, nn.BatchNorm2d(c))
            cin = c
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        m = lambda name: getattr(self, name)
        x = F.relu(self.stem_bn(self.stem_conv(x)))
        for s in (1, 2, 3):
            r = F.relu(m("s%d_bn1" % s)(m("s%d_conv1" % s)(x)))
            r = m("s%d_bn2" % s)(m("s%d_conv2" % s)(r))
            gate = F.adaptive_avg_pool2d(r, 1)
            gate = torch.sigmoid(m("s%d_fc2" % s)(F.relu(m("s%d_fc1" % s)(gate))))
            short = m("s%d_proj_bn" % s)(m("s%d_proj" % s)(x)) if hasattr(self, "s%d_proj" % s) else x
            x = F.relu(r * gate + short)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))[:, :, None, None]


def center_crop(t, h, w):
    """the centre h x w of t, the odd row/column off the bottom/right (as the U-Net paper's crop)"""
    top, left = (t.shape[2] - h) // 2, (t.shape[3] - w) // 2
    return t[:, :, top:top + h, left:left + w]


class UNetSmall(torch.nn.Module):
    """models/unet-small.cnn: unpadded convolutions, skips cropped; up by ConvTranspose2d, then by
    bilinear upsampling and a 1x1 convolution."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.d1_conv1, self.d1_conv2 = nn.Conv2d(1, 16, 3), nn.Conv2d(16, 16, 3)
        self.d2_conv1, self.d2_conv2 = nn.Conv2d(16, 32, 3), nn.Conv2d(32, 32, 3)
        self.b_conv1, self.b_conv2 = nn.Conv2d(32, 64, 3), nn.Conv2d(64, 64, 3)
        self.u1_up = nn.ConvTranspose2d(64, 32, 2, stride=2)
        self.u1_conv1, self.u1_conv2 = nn.Conv2d(64, 32, 3), nn.Conv2d(32, 32, 3)
        self.u2_up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                   nn.Conv2d(32, 16, 1))
        self.u2_conv1, self.u2_conv2 = nn.Conv2d(32, 16, 3), nn.Conv2d(16, 16, 3)
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x):
        skip1 = F.relu(self.d1_conv2(F.relu(self.d1_conv1(x))))
        skip2 = F.relu(self.d2_conv2(F.relu(self.d2_conv1(F.max_pool2d(skip1, 2)))))
        x = F.relu(self.b_conv2(F.relu(self.b_conv1(F.max_pool2d(skip2, 2)))))
        up = self.u1_up(x)
        x = torch.cat([center_crop(skip2, up.shape[2], up.shape[3]), up], 1)
        x = F.relu(self.u1_conv2(F.relu(self.u1_conv1(x))))
        up = self.u2_up(x)
        x = torch.cat([center_crop(skip1, up.shape[2], up.shape[3]), up], 1)
        return self.head(F.relu(self.u2_conv2(F.relu(self.u2_conv1(x)))))


def twin_state(name):
    """the twin's tensor name for a convnet tensor name (u2_up is inside a Sequential)"""
    return name.replace("u2_up.", "u2_up.1.")


def twin_totals(twin, net, x):
    """Loads the interpreter's initial weights into the twin by name, checks its outputs against
    the interpreter's (training and evaluation mode), and returns its totals as text."""
    state = {twin_state(n): t.detach().clone() for n, t in net.params.items()}
    missing, unexpected = twin.load_state_dict(state, strict=False)
    assert not unexpected and all(m.endswith("num_batches_tracked") for m in missing), (missing, unexpected)
    params = sum(p.numel() for p in twin.parameters())
    buffers = sum(b.numel() for n, b in twin.named_buffers() if not n.endswith("num_batches_tracked"))
    macs = []

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            macs.append(out[0].numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1])
        elif isinstance(mod, torch.nn.ConvTranspose2d):
            macs.append(inp[0][0].numel() * mod.out_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1])
        elif isinstance(mod, torch.nn.Linear):
            macs.append(mod.in_features * mod.out_features)

    handles = [mod.register_forward_hook(hook) for mod in twin.modules()]
    with torch.no_grad():
        twin.eval()
        y_twin = twin(x)
        y_net = net.forward(x, training=False)
        assert torch.allclose(y_twin, y_net, rtol=1e-4, atol=1e-5), (y_twin - y_net).abs().max()
        twin.train()
        y_twin = twin(x.clone())
        y_net = net.forward(x, training=True)
        assert torch.allclose(y_twin, y_net, rtol=1e-4, atol=1e-5), (y_twin - y_net).abs().max()
    for h in handles:
        h.remove()
    per_sample = sum(macs) // 2  # per sample (the hooks count sample 0), two forwards above
    c, h, w = y_twin.shape[1:]
    return "params=%d trainable=%d macs=%d output=%dx%dx%d" % (params + buffers, params, per_sample, c, h, w)


MODELS = {"models/se-resnet-block.cnn": SEResNetSmall, "models/unet-small.cnn": UNetSmall}

CASES += [
    ("model_se_resnet", "@models/se-resnet-block.cnn", "loss=ce-logits optim=momentum lr=0.05 momentum=0.9", 2),
    ("model_unet_small", "@models/unet-small.cnn", "loss=mse optim=sgd lr=0.05", 2),
]

DEFAULTS = {"smoothing": "0", "momentum": "0.9", "beta1": "0.9", "beta2": "0.999", "eps": "1e-8", "wd": "0",
            "l1": "0", "clip": "0", "schedule": "constant", "total": "0", "warmup": "0", "pct_start": "0.3",
            "div_factor": "25", "final_div_factor": "1e4", "steps": "3"}


def parse_config(text):
    cfg = dict(DEFAULTS)
    for kv in text.split():
        k, v = kv.split("=")
        assert k in cfg or k in ("loss", "optim", "lr"), k
        cfg[k] = v
    return cfg


def lr_factor_cosine(t, warmup, total):
    """Linear warm-up from lr/warmup to lr over `warmup` steps, then (1 + cos(pi s / (total - warmup))) / 2."""
    if t < warmup:
        return (t + 1) / warmup
    s, span = t - warmup, total - warmup
    return 0.0 if s >= span else 0.5 * (1 + math.cos(math.pi * s / span))


def make_optimizer(cfg, params):
    kind, lr, wd = cfg["optim"], float(cfg["lr"]), float(cfg["wd"])
    b = (float(cfg["beta1"]), float(cfg["beta2"]))
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if kind in ("momentum", "nesterov"):
        return torch.optim.SGD(params, lr=lr, momentum=float(cfg["momentum"]), nesterov=kind == "nesterov",
                               weight_decay=wd)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=b, eps=float(cfg["eps"]), weight_decay=wd)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=b, eps=float(cfg["eps"]), weight_decay=wd)
    raise ValueError(kind)


def make_schedule(cfg, opt):
    total, warmup = int(cfg["total"]), int(cfg["warmup"])
    if cfg["schedule"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=float(cfg["lr"]), total_steps=total, pct_start=float(cfg["pct_start"]),
            anneal_strategy="cos", cycle_momentum=False, div_factor=float(cfg["div_factor"]),
            final_div_factor=float(cfg["final_div_factor"]))
    if cfg["schedule"] == "cosine":
        # PyTorch's own schedulers: LinearLR for the warm-up, CosineAnnealingLR after it
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0,
                                                 total_iters=warmup - 1)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup)
        return torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[warmup])
    assert cfg["schedule"] == "constant"
    return None


def loss_of(cfg, y, target):
    y2 = y.reshape(y.shape[0], -1)
    kind = cfg["loss"]
    if kind == "mse":
        return F.mse_loss(y2, target)
    if kind == "bce-logits":
        return F.binary_cross_entropy_with_logits(y2, target)
    labels = target.argmax(dim=1)
    if kind == "ce-logits":
        return F.cross_entropy(y2, labels, label_smoothing=float(cfg["smoothing"]))
    if kind == "ce":
        return F.nll_loss(torch.log(y2), labels)
    raise ValueError(kind)


def run_case(name, spec, config, batch):
    model_file = None
    if spec.startswith("@"):  # a file of models/
        model_file = spec[1:]
        with open(os.path.join(os.path.dirname(OUT), "..", model_file)) as f:
            spec = f.read()
    seed = zlib.crc32(name.encode())
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cfg = parse_config(config)
    net = Net(spec, gen)
    init = {k: v.detach().clone() for k, v in net.params.items()}
    c, h, w = net.input_shape
    x = torch.randn(batch, c, h, w, generator=gen).float()
    with torch.no_grad():
        probe = net.forward(x, training=False)
    k = probe[0].numel()
    if cfg["loss"] in ("ce", "ce-logits"):
        target = F.one_hot(torch.randint(0, k, (batch,), generator=gen), k).float()
    elif cfg["loss"] == "bce-logits":
        target = torch.rand(batch, k, generator=gen).float()
    else:
        target = (torch.randn(batch, k, generator=gen) * 0.5).float()
    opt = make_optimizer(cfg, net.trainable)
    sched = make_schedule(cfg, opt)
    steps = int(cfg["steps"])
    losses, lrs, rec = [], [], []
    l1, clip = float(cfg["l1"]), float(cfg["clip"])
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        xg = x.clone().requires_grad_(True)
        y = net.forward(xg, training=True)
        loss = loss_of(cfg, y, target)
        loss.backward()
        if step == 0:
            rec.append(("y", y.detach().clone()))
            rec.append(("dx", xg.grad.detach().clone()))
            for n, t in net.params.items():
                if t.requires_grad:
                    rec.append(("grad/" + n, t.grad.detach().clone()))
        losses.append(loss.item())
        lr = opt.param_groups[0]["lr"]
        if cfg["schedule"] == "cosine":
            want = float(cfg["lr"]) * lr_factor_cosine(step, int(cfg["warmup"]), int(cfg["total"]))
            assert abs(lr - want) <= 1e-12 * float(cfg["lr"]), (name, step, lr, want)
        lrs.append(lr)
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(net.trainable, clip)
        if l1 > 0:
            with torch.no_grad():
                for t in net.trainable:
                    t.grad.add_(l1 * torch.sign(t))
        opt.step()
        if sched:
            with warnings.catch_warnings():
                # SequentialLR steps CosineAnnealingLR with an epoch at the milestone (its closed form)
                warnings.simplefilter("ignore", UserWarning)
                sched.step()
    with torch.no_grad():
        y_eval = net.forward(x, training=False)
    records = [("spec", spec), ("config", config), ("x", x), ("target", target)]
    if model_file:
        # the twin starts from the weights the interpreter started from (init) and the input x
        twin_net = Net(spec, torch.Generator().manual_seed(seed))
        for n, t in init.items():
            twin_net.params[n].data.copy_(t)
        records += [("model_file", model_file), ("torch_totals", twin_totals(MODELS[model_file](), twin_net, x))]
    records += [(n, t) for n, t in init.items()]
    records += rec
    records += [("losses", torch.tensor(losses, dtype=torch.float32)),
                ("lrs", torch.tensor(lrs, dtype=torch.float32))]
    records += [("final/" + n, t.detach().clone()) for n, t in net.params.items()]
    records.append(("y_eval", y_eval))
    return records


def write(path, records):
    out = [b"CNPARITY", struct.pack("<II", 1, len(records))]
    for name, v in records:
        nb = name.encode()
        out.append(struct.pack("<I", len(nb)) + nb)
        if isinstance(v, str):
            b = v.encode()
            out.append(struct.pack("<IIq", 1, 1, len(b)) + b)
        else:
            t = v.detach().to(torch.float32).contiguous()
            out.append(struct.pack("<II", 0, t.dim()) + struct.pack("<%dq" % t.dim(), *t.shape))
            out.append(struct.pack("<%df" % t.numel(), *t.flatten().tolist()))
    with open(path, "wb") as f:
        f.write(b"".join(out))


def main():
    os.makedirs(OUT, exist_ok=True)
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names)
    # the C test lists the cases too (a missing file must fail there): keep both lists the same
    with open(os.path.join(os.path.dirname(OUT), "test_torch_parity.c")) as f:
        listed = set(re.findall(r"X\((\w+)\)", f.read()))
    if listed != set(names):
        sys.exit("gen_torch_parity.py: CASES differ from tests/test_torch_parity.c: %s" % sorted(listed ^ set(names)))
    only = sys.argv[1:]  # gen_torch_parity.py [CASE...]: those cases only
    unknown = set(only) - set(names)
    if unknown:
        sys.exit("gen_torch_parity.py: no case %s" % sorted(unknown))
    for name, spec, config, batch in CASES:
        if only and name not in only:
            continue
        recs = run_case(name, spec, config, batch)
        path = os.path.join(OUT, name + ".bin")
        write(path, recs)
        print("%-22s %5d bytes  loss %s" % (name, os.path.getsize(path),
                                            " ".join("%.5f" % v for v in dict(recs)["losses"].tolist())))


if __name__ == "__main__":
    sys.exit(main())
