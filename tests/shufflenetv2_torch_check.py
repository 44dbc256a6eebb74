#!/usr/bin/python3
"""shufflenetv2_torch_check.py — the figures tests/test_models.c asserts for
models/shufflenetv2.cnn, computed from torchvision's shufflenet_v2_x1_0 (Debian's
python3-torchvision; random weights, nothing downloaded): parameters (trainable, and batch
norm's running statistics), multiply-accumulates of the convolutions and the classifier, the
output shape, and the receptive field and jump after the stem and each stage (rf += (k - 1) *
d * jump, jump *= stride, along each unit's second branch, the one through its convolutions,
whose field the other never exceeds). Run: /usr/bin/python3 tests/shufflenetv2_torch_check.py
"""
import os
import sys

import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mobilenetv2_torch_check import figures  # noqa: E402  (parameters, MACs, output)

import torch  # noqa: E402

net = torchvision.models.shufflenet_v2_x1_0(weights=None, num_classes=1000).eval()
trainable, stats, macs, y = figures(net)


def walk(mods, rf, jump):
    for m in mods:
        if isinstance(m, (torch.nn.Conv2d, torch.nn.MaxPool2d)):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            d = m.dilation if isinstance(m.dilation, int) else m.dilation[0]
            rf += (k - 1) * d * jump
            jump *= s
    return rf, jump


rf, jump = walk(list(net.conv1.modules()) + [net.maxpool], 1, 1)
fields = ["stem %d/%d" % (rf, jump)]
for name in ("stage2", "stage3", "stage4"):
    for unit in getattr(net, name):
        rf, jump = walk(unit.branch2.modules(), rf, jump)
    fields.append("%s %d/%d" % (name, rf, jump))
print("receptive field/jump after the stem and each stage: " + ", ".join(fields))
print("trainable %d, running statistics %d, total %d" % (trainable, stats, trainable + stats))
print("MACs %d, output %s" % (macs, tuple(y.shape)))
