#!/usr/bin/python3
"""convnext_torch_check.py — the figures tests/test_models.c asserts for models/convnext-tiny.cnn,
computed from torchvision's convnext_tiny (Debian's python3-torchvision; random weights, nothing
downloaded): its parameters, the multiply-accumulates of its Conv2d and Linear layers (a Linear
on the channels-last map counted at every position; the blocks' layer_scale, element-wise,
counted neither here nor by convnet), the output shape, how its Conv2d and Linear weights start
(trunc_normal_(std=0.02), whose cut at +-2 is 100 std: the largest of 28 million draws lies
past 2 std, so models/convnext-tiny.cnn writes init=normal std=0.02), and the receptive field and jump after the stem and each stage (rf += (k - 1) * d * jump, jump *= stride
along the convolutions). Run: /usr/bin/python3 tests/convnext_torch_check.py"""
import torch
import torchvision

net = torchvision.models.convnext_tiny(weights=None, num_classes=1000).eval()
params = sum(p.numel() for p in net.parameters())
macs = []


def count(m, inp, out):
    if isinstance(m, torch.nn.Conv2d):
        macs.append(out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1])
    elif isinstance(m, torch.nn.Linear):
        macs.append(out.numel() // out.shape[0] * m.in_features)  # per position on a (N, H, W, C) map


hooks = [m.register_forward_hook(count) for m in net.modules()]
with torch.no_grad():
    y = net(torch.zeros(1, 3, 224, 224))
for h in hooks:
    h.remove()

rf, jump, fields = 1, 1, []
for i, stage in enumerate(net.features):
    for m in stage.modules():
        if isinstance(m, torch.nn.Conv2d):
            rf += (m.kernel_size[0] - 1) * m.dilation[0] * jump
            jump *= m.stride[0]
    if i % 2 == 0:  # features[0] the stem, [1], [3], [5], [7] the stages, the others their downsampling
        continue
    fields.append("stage %d %d/%d" % (i // 2 + 1, rf, jump))
rf0 = 1 + (net.features[0][0].kernel_size[0] - 1)
print("receptive field/jump: stem %d/%d, %s" % (rf0, net.features[0][0].stride[0], ", ".join(fields)))
print("parameters %d" % params)
print("MACs of Conv2d and Linear %d" % sum(macs))
print("output %s" % (tuple(y.shape),))
w = torch.cat([m.weight.detach().flatten() for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))])
print("Conv2d and Linear weights: std %.5f, largest magnitude %.4f (%.1f std)" % (w.std(), w.abs().max(),
                                                                              w.abs().max() / w.std()))
