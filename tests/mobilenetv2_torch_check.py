#!/usr/bin/python3
"""mobilenetv2_torch_check.py — the figures tests/test_models.c asserts for models/mobilenetv2.cnn,
computed from torchvision's mobilenet_v2 (Debian's python3-torchvision; random weights, nothing
downloaded): parameters (trainable, and batch norm's running statistics), multiply-accumulates of
the convolutions and the classifier, the output shape, and the receptive field and jump of the
last feature map (rf += (k - 1) * d * jump, jump *= stride, along the blocks' main path, which
the shortcuts never exceed). Run: /usr/bin/python3 tests/mobilenetv2_torch_check.py
"""
import torch
import torchvision


def figures(net):
    """trainable parameters, batch norm's running statistics, the MACs of the convolutions and
    linear layers (forward hooks) and the output of one 224x224x3 image of torchvision's net"""
    trainable = sum(p.numel() for p in net.parameters())
    stats = sum(b.numel() for n, b in net.named_buffers() if n.endswith(("running_mean", "running_var")))
    macs = []

    def count(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            macs.append(out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, torch.nn.Linear):
            macs.append(m.in_features * m.out_features)

    hooks = [m.register_forward_hook(count) for m in net.modules()]
    with torch.no_grad():
        y = net(torch.zeros(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    return trainable, stats, sum(macs), y


def main():
    net = torchvision.models.mobilenet_v2(weights=None, num_classes=1000).eval()
    trainable, stats, macs, y = figures(net)
    rf, jump = 1, 1
    per_block = []
    for i, block in enumerate(net.features):
        for m in block.modules():
            if isinstance(m, torch.nn.Conv2d):
                rf += (m.kernel_size[0] - 1) * m.dilation[0] * jump
                jump *= m.stride[0]
        per_block.append("%s %d/%d" % ("stem" if i == 0 else "b%d" % i if i < 18 else "features", rf, jump))
    print("receptive field/jump after each block: " + ", ".join(per_block))
    print("trainable %d, running statistics %d, total %d" % (trainable, stats, trainable + stats))
    print("MACs %d, output %s, receptive field %d, jump %d (last feature map)" % (macs, tuple(y.shape), rf, jump))


if __name__ == "__main__":
    main()
