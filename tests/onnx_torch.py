"""onnx_torch.py — PyTorch's ONNX exports for tests/onnx_test.sh: Debian's torch 1.13 and
torchvision with random weights (nothing downloaded). For each model, DIR/NAME.onnx, the input
NAME.x.bin (float32, its dims in NAME.x.shape) and PyTorch's output NAME.y.bin.
    /usr/bin/python3 tests/onnx_torch.py DIR [NAME...]
Batch norms: torch.onnx.export folds them into the convolutions in eval mode (the default);
TrainingMode.PRESERVE keeps them (the *_bn models here), so convnet import sees both."""
import os
import sys
import warnings

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_torch_parity as parity  # noqa: E402  (the PyTorch twins of models/)

warnings.filterwarnings("ignore")


class Mix(nn.Module):
    """The other layers PyTorch writes as convnet's ops: LeakyReLU, Sigmoid, Tanh, average pooling
    with padding (counted, as PyTorch's default), max pooling with ceil_mode, a grouped and
    dilated conv without bias, concat, Dropout (gone in eval), Softmax."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.b = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=False)
        self.c = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(12 * 4 * 4, 6)

    def forward(self, x):
        x = nn.functional.leaky_relu(self.bn(self.a(x)), 0.2)
        x = nn.functional.avg_pool2d(x, 3, stride=2, padding=1)
        y = torch.tanh(self.b(x))
        z = torch.sigmoid(self.c(x))
        x = torch.cat([y, z], 1)
        x = nn.functional.max_pool2d(x, 3, stride=2, ceil_mode=True)
        x = nn.functional.dropout(torch.flatten(x, 1), 0.3, self.training)
        return torch.softmax(self.fc(x), 1)


class Acts(nn.Module):
    """The layers of MobileNetV2/V3 and others that PyTorch writes as convnet's newer ops: ReLU6
    (Clip), Hardswish, Hardsigmoid, ELU, PReLU, dilated max pooling, average pooling without the
    padding in its divisor, batch norm without affine parameters, adaptive average pooling to a
    size that divides the input, global max pooling."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.prelu = nn.PReLU(8)
        self.bn = nn.BatchNorm2d(8, affine=False)
        self.b = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = nn.functional.hardswish(nn.functional.relu6(self.a(x)))
        x = nn.functional.max_pool2d(self.prelu(x), 3, stride=2, padding=1, dilation=2, ceil_mode=True)
        x = nn.functional.elu(self.bn(x), 0.7)
        x = nn.functional.hardsigmoid(self.b(x))
        x = nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        x = nn.functional.adaptive_avg_pool2d(x, 4)
        x = nn.functional.adaptive_max_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class Decoder(nn.Module):
    """The decoder layers as PyTorch writes them: a grouped ConvTranspose2d with output padding
    and a dilated one, nearest and bilinear (align_corners) upsampling, reflect, replicate and
    zero padding (F.pad: its pads computed by constant arithmetic; zeros before a max pool are a
    pad layer, not the pool's padding), crops by slicing, a squeeze-and-excitation product and a
    broadcast sum."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1)
        self.up2 = nn.ConvTranspose2d(6, 4, 2, dilation=2, bias=False)
        self.head = nn.Conv2d(20, 3, 1)

    def forward(self, x):
        a = self.a(x)
        g = torch.sigmoid(nn.functional.adaptive_avg_pool2d(a, 1))
        d = self.up(a * g + g)                                                   # 16x16
        r = nn.functional.pad(self.up2(d), (1, 1, 1, 1), mode="reflect")[:, :, 3:19, 2:18]  # 20x20 cut to 16x16
        u = nn.functional.interpolate(a, scale_factor=2, mode="nearest")
        v = nn.functional.interpolate(a, scale_factor=2, mode="bilinear", align_corners=True)
        v = nn.functional.pad(v, (2, 0, 1, 0), mode="replicate")[:, :, 1:, 2:]
        x = nn.functional.max_pool2d(nn.functional.pad(torch.cat([r, u, v], 1), (1, 1, 1, 1)), 2)
        return self.head(nn.functional.interpolate(x, scale_factor=2, mode="bilinear"))


class Norms(nn.Module):
    """SiLU (Sigmoid, Mul), GELU in both forms (erf: Div, Erf, Add, Mul, Mul; tanh: nine nodes),
    LayerNorm over (C, H, W) and over a vector, GroupNorm (Reshape, InstanceNormalization,
    Shape, Reshape, Mul, Add) and InstanceNorm2d with and without affine parameters."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.ln = nn.LayerNorm([8, 6, 6])
        self.gn = nn.GroupNorm(2, 8)
        self.inn = nn.InstanceNorm2d(8, affine=True)
        self.in2 = nn.InstanceNorm2d(8)
        self.fc = nn.Linear(8, 6)
        self.ln2 = nn.LayerNorm(6, eps=1e-4)

    def forward(self, x):
        x = nn.functional.silu(self.a(x))
        x = nn.functional.gelu(self.ln(x))
        x = nn.functional.gelu(self.gn(x), approximate="tanh")
        x = self.in2(self.inn(x))
        x = self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
        return nn.functional.silu(self.ln2(x))


class Relu6Fn(nn.Module):
    """F.relu6, which PyTorch writes at opset 9 as Relu and a Clip to at most 6 (Clip had no
    lower bound there), and at opset 11 on as one Clip between 0 and 6."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 3, padding=1)
        with torch.no_grad():
            self.a.weight.mul_(12)  # values above 6 as well as below 0
        self.fc = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        x = nn.functional.relu6(self.a(x))
        return self.fc(torch.flatten(nn.functional.max_pool2d(x, 2), 1))


class ViewFlatten(nn.Module):
    """x.view(x.size(0), -1) before the classifier, as older code flattens (Shape, Gather,
    Unsqueeze, Concat with -1, Reshape), and x.view(-1, 4 * 4 * 4), as PyTorch's tutorial does"""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.a(x)), 2)
        return self.fc(x.view(x.size(0), -1)) + self.fc(x.view(-1, 4 * 4 * 4))


class SplitShuffle(nn.Module):
    """ShuffleNet V2's moves written out: x.chunk(2, dim=1), torch.split (a Split node), the channel shuffle by view,
    transpose and reshape with sizes read off the tensor, x.view(x.size(0), -1), x.mean((2, 3))
    and a slice of its vector's features"""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 3, 1)
        self.fc = nn.Linear(6 * 5 * 5, 2)

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        y = torch.cat((a, self.c(b)), 1)
        p, q = torch.split(y, [2, 4], 1)  # a Split node
        y = torch.cat((q, p), 1)
        n, c, h, w = y.shape
        y = y.view(n, 3, c // 3, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.fc(y.view(y.size(0), -1)) + y.mean((2, 3))[:, 1:3]


class ChannelsLast(nn.Module):
    """Work in channels-last order between two permutes, as ConvNeXt-like code writes it: a
    LayerNorm of the last axis, Linear layers (MatMul and Add), GELU
    (tanh), a scale per channel in that order (timm's gamma), the sum of two channels-last
    values; then a matrix product of a vector by a parameter plus a bias (MatMul, Add)"""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 6, 3, padding=1)
        self.norm = nn.LayerNorm(6)
        self.up = nn.Linear(6, 12)
        self.down = nn.Linear(12, 6)
        self.gamma = nn.Parameter(torch.rand(6) + 0.5)
        self.w = nn.Parameter(torch.randn(6, 4) * 0.3)
        self.b = nn.Parameter(torch.randn(4))

    def forward(self, x):
        x = self.c(x)
        t = x.permute(0, 2, 3, 1)
        u = self.down(nn.functional.gelu(self.up(self.norm(t)), approximate="tanh"))
        t = (t + self.gamma * u).permute(0, 3, 1, 2)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(t, 1), 1) @ self.w + self.b


def convnext_mini():
    """torchvision's ConvNeXt with two small stages: the stem's and the downsampling's
    LayerNorm2d, CNBlocks (depthwise 7x7, LayerNorm, Linear, GELU, Linear, layer_scale), the head"""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    return ConvNeXt([CNBlockConfig(16, 32, 2), CNBlockConfig(32, None, 1)], num_classes=10)


def models():
    tv = torchvision.models
    return {
        "resnet18": (lambda: tv.resnet18(num_classes=10), 64, False),
        "resnet18_bn": (lambda: tv.resnet18(num_classes=10), 64, True),
        "resnet50": (lambda: tv.resnet50(num_classes=10), 64, False),
        "squeezenet1_1": (lambda: tv.squeezenet1_1(num_classes=10), 64, False),
        "vgg11_bn": (lambda: tv.vgg11_bn(num_classes=10), 224, True),  # 7x7 before its classifier
        "mix": (Mix, 17, True),
        "acts": (Acts, 16, True),
        "relu6_fn": (Relu6Fn, 8, False),
        "mobilenet_v2": (lambda: tv.mobilenet_v2(num_classes=10), 64, False),
        # the other torchvision classifiers whose ops convnet has (batch norms kept): MNASNet
        # (ends in x.mean([2, 3]), a ReduceMean), DenseNet (concatenations), GoogLeNet (ceil-mode
        # pooling, concatenations), Inception v3 (1x7 and 7x1 kernels), EfficientNet (SiLU,
        # squeeze-and-excitation), RegNetY (grouped convolutions, SE), MobileNetV3 (Hardswish,
        # Hardsigmoid gates)
        "mnasnet0_5": (lambda: tv.mnasnet0_5(num_classes=10), 64, True),
        "densenet121": (lambda: tv.densenet121(num_classes=10), 64, True),
        "googlenet": (lambda: tv.googlenet(num_classes=10, aux_logits=False, init_weights=True), 64, True),
        "inception_v3": (lambda: tv.inception_v3(num_classes=10, aux_logits=False, init_weights=True), 96, True),
        "efficientnet_b0": (lambda: tv.efficientnet_b0(num_classes=10), 64, True),
        "regnet_y_400mf": (lambda: tv.regnet_y_400mf(num_classes=10), 64, True),
        "mobilenet_v3_small": (lambda: tv.mobilenet_v3_small(num_classes=10), 64, True),
        # ShuffleNetV2: x.chunk(2, dim=1) and the channel shuffle, their sizes read off the
        # tensors (Shape, Gather, arithmetic), the batch free; and exported with every size fixed
        "shufflenet_v2": (lambda: tv.shufflenet_v2_x0_5(num_classes=10), 64, True),
        "shufflenet_v2_static": (lambda: tv.shufflenet_v2_x0_5(num_classes=10), 64, True, "static"),
        "decoder": (Decoder, 8, False, "static"),
        "norms": (Norms, 6, False),
        "se_resnet": (parity.SEResNetSmall, 32, True),  # models/se-resnet-block.cnn
        # models/unet-small.cnn, 1 channel in; its crops read the maps' sizes, which PyTorch writes
        # as Shape, Gather and arithmetic, the batch free (folded on import), and as the Slices'
        # constants where every size is fixed
        "unet_small": (parity.UNetSmall, (1, 76), False),
        "unet_small_static": (parity.UNetSmall, (1, 76), False, "static"),
        "view_flatten": (ViewFlatten, 8, False),
        "split_shuffle": (lambda: SplitShuffle(), (6, 5), False),
        # ConvNeXt: channels-last LayerNorm, Linear layers as MatMul, layer_scale (big: convnext_tiny)
        "convnext_mini": (convnext_mini, 32, False),
        "convnext_tiny": (lambda: tv.convnext_tiny(num_classes=10), 64, False),
        "channels_last": (ChannelsLast, 6, False),
    }


def randomize(model):
    """batch-norm statistics, scales and shifts drawn too, so that they matter"""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            if m.affine:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.5, 0.5)
        if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
        if isinstance(m, nn.PReLU):
            m.weight.data.uniform_(-0.5, 0.5)
        if hasattr(m, "layer_scale"):  # ConvNeXt's CNBlock: 1e-6 at first, which hides the block
            m.layer_scale.data.uniform_(0.5, 1.5)


# the opset written (ONNX_OPSET: 9 and 10 keep Pad's pads and Clip's bounds as attributes)
OPSET = int(os.environ.get("ONNX_OPSET", "17"))


def main():
    out, names = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for name, (make, size, keep_bn, *static) in models().items():
        if names and name not in names:
            continue
        model = make()
        randomize(model)
        model.eval()
        channels, size = size if isinstance(size, tuple) else (3, size)
        x = torch.randn(2, channels, size, size)
        with torch.no_grad():
            y = model(x)
        mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
        torch.onnx.export(model, x, os.path.join(out, name + ".onnx"), opset_version=OPSET, training=mode,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes=None if static else {"input": {0: "N"}})
        x.numpy().tofile(os.path.join(out, name + ".x.bin"))
        y.numpy().tofile(os.path.join(out, name + ".y.bin"))
        with open(os.path.join(out, name + ".x.shape"), "w") as f:
            f.write(" ".join(str(d) for d in x.shape) + "\n")


if __name__ == "__main__":
    main()
