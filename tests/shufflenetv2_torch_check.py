#!/usr/bin/python3
"""shufflenetv2_torch_check.py — the figures tests/test_models.c asserts for
models/shufflenetv2.cnn, computed from torchvision's shufflenet_v2_x1_0 (Debian's
python3-torchvision; random weights, nothing downloaded): parameters (trainable, and batch
norm's running statistics), multiply-accumulates of the convolutions and the classifier, the
output shape, and the receptive field and jump after the stem and each stage (rf += (k - 1) *
d * jump, jump *= stride, along each unit's second branch, the one through its convolutions,
whose field the other never exceeds). Run: /usr/bin/python3 tests/shufflenetv2_torch_check.py
"""
import torch
import torchvision

net = torchvision.models.shufflenet_v2_x1_0(weights=None, num_classes=1000).eval()
trainable = sum(p.numel() for p in net.parameters())
stats = sum(b.numel() for n, b in net.named_buffers() if n.endswith(("running_mean", "running_var")))
macs = []


def count(m, inp, out):
    if isinstance(m, torch.nn.Conv2d):
        macs.append(out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1])
    elif isinstance(m, torch.nn.Linear):
        macs.append(m.in_features * m.out_features)


for m in net.modules():
    m.register_forward_hook(count)
with torch.no_grad():
    y = net(torch.zeros(1, 3, 224, 224))


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
print("MACs %d, output %s" % (sum(macs), tuple(y.shape)))
