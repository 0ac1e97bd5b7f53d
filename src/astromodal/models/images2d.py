"""The deep image suite of study A (AstroSpectra-MNIST): two small CNNs and six classic architectures.

The AstroSpectra-MNIST images are 28 x 28 grayscale pictures of a LAMOST spectrum (the 721-value,
mean-filtered spectrum, padded and folded into 28 rows). The benchmark trains SimpleCNN1, SimpleCNN2,
LeNet-5, AlexNet, VGG16, GoogLeNet, ResNet18 and MobileNetV2 with a one-channel input and a
three-class head (Star/Galaxy/QSO or F/G/K). Every model here also accepts any number of bands
``C`` (for example five-band u g r i z cutouts) and any number of outputs.

There is no torchvision dependency: the architectures are written out below from a few shared
blocks, layer for layer as in torchvision (same widths, kernels, strides, bias and batch-norm
choices), so that their parameter counts can be checked against the published ones.

Two input modes (option ``mode``):

``"paper"``
    What the benchmark did: the image is bilinearly resampled inside ``forward`` to the size the
    architecture was designed for (224 x 224; 32 x 32 for LeNet-5, its classic input) and the
    standard architecture is used, with a ``C``-channel stem and an ``n_outputs`` head.
    ``paper_size=`` overrides the resampling size.

``"native"`` (default)
    The same families adapted to small images so that the feature maps do not vanish at 28 x 28:

    - LeNet-5: C1 gets ``padding=2`` (LeCun's own padding of 28 x 28 digits to 32 x 32), so every
      later layer sees the classic map sizes; the parameter count is the classic one.
    - AlexNet: 3 x 3 stride-1 convolutions instead of the 11 x 11/4 and 5 x 5 ones, 2 x 2 max pools
      (28 -> 14 -> 7 -> 3), a 3 x 3 adaptive pool and 1024-wide fully connected layers
      (256*3*3 -> 1024 -> 1024 -> n) instead of 9216 -> 4096 -> 4096 -> n.
    - VGG16: the 13 standard 3 x 3 convolutions, but max pools only after the first three stages
      (28 -> 14 -> 7 -> 3), a global average pool and a 512 -> 512 -> 512 -> n classifier.
    - GoogLeNet: a 3 x 3 stride-1 first convolution and no max pool before inception 3a (so 3a/3b
      run at 28 x 28, 4a-4e at 14 x 14, 5a/5b at 7 x 7); everything after the stem is standard.
    - ResNet18: a 3 x 3 stride-1 stem and no max pool (stages at 28, 14, 7, 4 pixels).
    - MobileNetV2: a stride-1 stem and a stride-1 second stage (the 24-channel one), so the stages
      run at 28, 28, 28, 14, 7, 7, 4, 4 pixels.

Global pools are adaptive wherever the standard architecture has them, so any image size works in
either mode. SimpleCNN1/2 are defined for the input size given at construction and do not resample
(their ``"paper"`` mode is the same as ``"native"``).

Documented choices where the benchmark is silent or torchvision departs from the original papers:

- GoogLeNet follows torchvision (the usual source of the benchmark's models): the "5 x 5" branch of
  each inception block uses a 3 x 3 convolution, convolutions carry batch norm (eps 1e-3), there are
  no auxiliary heads and no ``transform_input``; its dropout is 0.2.
- LeNet-5 uses tanh and parameter-free 2 x 2 average pooling (LeCun 1998 subsampling without its
  trainable coefficients), a fully connected C3 (not the original partial connection table), and
  C5 written as the equivalent fully connected layer on the 16 x 5 x 5 maps (same 48,120 weights).
- Parameter counts for 1 channel and 3 classes, ``paper`` mode (equal to torchvision's published
  3-channel/1000-class counts adjusted for stem and head): LeNet-5 61,111; AlexNet 57,000,643;
  VGG16 134,271,683; GoogLeNet 5,596,707; ResNet18 11,171,779; MobileNetV2 2,227,139.
  ``native`` mode: SimpleCNN1 420,739; SimpleCNN2 869,027; LeNet-5 61,111; AlexNet 5,663,427;
  VGG16 15,240,387; GoogLeNet 5,594,147; ResNet18 11,169,219; MobileNetV2 2,227,139.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from astromodal.errors import BadValueError, ConfigError
from astromodal.models.registry import register_model

__all__ = [
    "MODES",
    "AlexNet",
    "GoogLeNet",
    "LeNet5",
    "MobileNetV2",
    "ResNet18",
    "SimpleCNN1",
    "SimpleCNN2",
    "VGG16",
]

MODES = ("native", "paper")


# --------------------------------------------------------------------------------------------------
# Shared building blocks
# --------------------------------------------------------------------------------------------------
def conv_bn_act(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    act: type[nn.Module] | None = nn.ReLU,
    eps: float = 1e-5,
) -> nn.Sequential:
    """Convolution without bias ('same' padding for odd kernels), batch norm, then an activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=eps),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3 x 3 conv-BN layers plus an identity (or 1 x 1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_act(c_in, c_out, 3, stride),
            conv_bn_act(c_out, c_out, 3, act=None),
        )
        if stride != 1 or c_in != c_out:
            self.shortcut: nn.Module = conv_bn_act(c_in, c_out, 1, stride, act=None)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1 x 1 expansion (ratio t), 3 x 3 depthwise, linear 1 x 1 projection."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = int(round(c_in * expand))
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_act(c_in, hidden, 1, act=nn.ReLU6))
        layers += [
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
            conv_bn_act(hidden, c_out, 1, act=None),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class Inception(nn.Module):
    """GoogLeNet inception block (torchvision layout: the '5 x 5' branch uses a 3 x 3 convolution)."""

    def __init__(self, c_in: int, c1: int, c3_red: int, c3: int, c5_red: int, c5: int, pool_proj: int):
        super().__init__()

        def bc(a: int, b: int, k: int) -> nn.Sequential:
            return conv_bn_act(a, b, k, eps=1e-3)

        self.branch1 = bc(c_in, c1, 1)
        self.branch2 = nn.Sequential(bc(c_in, c3_red, 1), bc(c3_red, c3, 3))
        self.branch3 = nn.Sequential(bc(c_in, c5_red, 1), bc(c5_red, c5, 3))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), bc(c_in, pool_proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def mlp_head(sizes: Sequence[int], dropout: float = 0.5, dropout_before: Sequence[int] = ()) -> nn.Sequential:
    """Fully connected classifier ``sizes[0] -> ... -> sizes[-1]`` with ReLU between layers.

    ``dropout_before`` lists the (0-based) linear layers that are preceded by a dropout layer.
    """
    layers: list[nn.Module] = []
    n_linear = len(sizes) - 1
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if dropout and i in dropout_before:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(a, b))
        if i < n_linear - 1:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _kaiming_init(module: nn.Module, linear_std: float | None = 0.01) -> None:
    """torchvision-style initialisation: He (fan-out) convolutions, unit BN, small-normal linear layers."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------------------------------
# Common base: option checks, paper-mode resampling, features -> pool -> classifier
# --------------------------------------------------------------------------------------------------
class _ImageClassifier(nn.Module):
    """Base of the image models: ``forward(image)`` with image (N, C, H, W) returns logits (N, n_outputs)."""

    inputs = ("image",)
    #: image size (pixels) the standard architecture expects; paper mode resamples to it (None: never)
    PAPER_SIZE: int | None = 224
    #: smallest H and W accepted in native mode
    MIN_SIZE = 1

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        n_outputs: int = 3,
        mode: str = "native",
        paper_size: int | None = None,
    ):
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ConfigError(
                f"input_shape must be (channels, height, width) of positive sizes, not {input_shape!r}"
            )
        if int(n_outputs) < 1:
            raise ConfigError(f"n_outputs must be >= 1, not {n_outputs!r}")
        if mode not in MODES:
            raise ConfigError(f"option mode must be one of {MODES}, not {mode!r}")
        self.input_shape = shape
        self.in_channels = shape[0]
        self.n_outputs = int(n_outputs)
        self.mode = mode
        if paper_size is not None and int(paper_size) < 1:
            raise ConfigError(f"option paper_size must be a positive number of pixels, not {paper_size!r}")
        self.paper_size = int(paper_size) if paper_size is not None else self.PAPER_SIZE
        if self.resample_size is None and min(shape[1:]) < self.MIN_SIZE:
            raise ConfigError(
                f"{type(self).__name__} in {mode!r} mode needs images of at least {self.MIN_SIZE} x "
                f"{self.MIN_SIZE} pixels, not {shape[1]} x {shape[2]}; use mode='paper'"
            )
        self.features: nn.Module = nn.Identity()
        self.pool: nn.Module = nn.Identity()
        self.classifier: nn.Module = nn.Identity()

    @property
    def paper(self) -> bool:
        return self.mode == "paper"

    @property
    def resample_size(self) -> int | None:
        """Side of the square the input is resampled to in ``forward`` (None: used as given)."""
        return self.paper_size if self.paper else None

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 4 or image.shape[1] != self.in_channels:
            raise BadValueError(
                f"{type(self).__name__} expects images shaped (N, {self.in_channels}, H, W), "
                f"got {tuple(image.shape)}"
            )
        size = self.resample_size
        if size is not None and tuple(image.shape[-2:]) != (size, size):
            image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)
        x = self.pool(self.features(image))
        return self.classifier(torch.flatten(x, 1))


# --------------------------------------------------------------------------------------------------
# The two custom CNNs of the benchmark
# --------------------------------------------------------------------------------------------------
class _SimpleCNN(_ImageClassifier):
    PAPER_SIZE = None  # designed for the 28 x 28 images: no resampling in either mode
    MIN_SIZE = 4

    def _flat_size(self, channels: int) -> int:
        h, w = self.input_shape[1:]
        return channels * (h // 4) * (w // 4)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if tuple(image.shape[-2:]) != self.input_shape[1:]:
            raise BadValueError(
                f"{type(self).__name__} was built for {self.input_shape[1]} x {self.input_shape[2]} images, "
                f"got {tuple(image.shape[-2:])}"
            )
        return super().forward(image)


@register_model("simple_cnn1", modality="image", study="A", tasks=("classification",))
class SimpleCNN1(_SimpleCNN):
    """SimpleCNN1: two conv(3x3)+ReLU+maxpool blocks (32, 64 channels) and a 128-unit hidden layer.

    Layers for a (C, H, W) input: Conv(C->32, 3x3, pad 1), ReLU, MaxPool 2; Conv(32->64, 3x3, pad 1),
    ReLU, MaxPool 2; flatten (64 * H/4 * W/4 = 3136 at 28 x 28); Linear -> 128, ReLU; Linear -> n.
    420,739 parameters for 1 x 28 x 28 input and 3 classes.
    """

    def __init__(self, input_shape=(1, 28, 28), n_outputs=3, mode="native", paper_size=None):
        super().__init__(input_shape, n_outputs, mode, paper_size)
        c = self.in_channels
        self.features = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = mlp_head([self._flat_size(64), 128, self.n_outputs], dropout=0.0)


@register_model("simple_cnn2", modality="image", study="A", tasks=("classification",))
class SimpleCNN2(_SimpleCNN):
    """SimpleCNN2: two double-conv blocks with batch norm (32, 64 channels), dropout, a 256-unit layer.

    Layers: [Conv(C->32, 3x3, pad 1, no bias), BN, ReLU, Conv(32->32), BN, ReLU, MaxPool 2];
    [Conv(32->64), BN, ReLU, Conv(64->64), BN, ReLU, MaxPool 2]; flatten (3136 at 28 x 28);
    Dropout 0.25, Linear -> 256, ReLU, Dropout 0.5, Linear -> n.
    869,027 parameters for 1 x 28 x 28 input and 3 classes.
    """

    def __init__(self, input_shape=(1, 28, 28), n_outputs=3, mode="native", paper_size=None):
        super().__init__(input_shape, n_outputs, mode, paper_size)
        c = self.in_channels
        self.features = nn.Sequential(
            conv_bn_act(c, 32, 3), conv_bn_act(32, 32, 3), nn.MaxPool2d(2),
            conv_bn_act(32, 64, 3), conv_bn_act(64, 64, 3), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Dropout(0.25), nn.Linear(self._flat_size(64), 256), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(256, self.n_outputs),
        )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Classic architectures
# --------------------------------------------------------------------------------------------------
@register_model("lenet", modality="image", study="A", tasks=("classification",))
class LeNet5(_ImageClassifier):
    """LeNet-5: C1 6@5x5, S2 avg 2, C3 16@5x5, S4 avg 2, C5 120, F6 84, output (tanh activations).

    Paper mode resamples to the classic 32 x 32 input; native mode pads C1 by 2 pixels so a 28 x 28
    image gives the same 28/14/10/5 map sizes. An adaptive average pool to 5 x 5 before C5 (the
    identity at those sizes) lets other image sizes through. Parameters: 156 + 2,416 + 48,120 +
    10,164 + 85 n (61,111 for 1 channel and 3 classes; 61,706 for 10 classes).
    """

    PAPER_SIZE = 32
    MIN_SIZE = 10

    def __init__(self, input_shape=(1, 28, 28), n_outputs=3, mode="native", paper_size=None):
        super().__init__(input_shape, n_outputs, mode, paper_size)
        self.features = nn.Sequential(
            nn.Conv2d(self.in_channels, 6, 5, padding=0 if self.paper else 2), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        )  # fmt: skip
        self.pool = nn.AdaptiveAvgPool2d(5)
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), nn.Tanh(),  # C5: a 5 x 5 convolution over 5 x 5 maps
            nn.Linear(120, 84), nn.Tanh(),  # F6
            nn.Linear(84, self.n_outputs),
        )  # fmt: skip


@register_model("alexnet", modality="image", study="A", tasks=("classification",))
class AlexNet(_ImageClassifier):
    """AlexNet (torchvision layout): five convolutions (64, 192, 384, 256, 256) and three FC layers.

    Paper: 11x11/4 and 5x5 first convolutions, 3x3/2 max pools, 6 x 6 adaptive pool, 9216 -> 4096 ->
    4096 -> n. Native: 3 x 3 stride-1 convolutions, 2 x 2 pools, 3 x 3 adaptive pool, 2304 -> 1024 ->
    1024 -> n.
    """

    def __init__(self, input_shape=(1, 28, 28), n_outputs=3, mode="native", paper_size=None):
        super().__init__(input_shape, n_outputs, mode, paper_size)
        if self.paper:
            first = nn.Conv2d(self.in_channels, 64, 11, stride=4, padding=2)
            second = nn.Conv2d(64, 192, 5, padding=2)
            pool, side, hidden = (lambda: nn.MaxPool2d(3, 2)), 6, 4096
        else:
            first = nn.Conv2d(self.in_channels, 64, 3, padding=1)
            second = nn.Conv2d(64, 192, 3, padding=1)
            pool, side, hidden = (lambda: nn.MaxPool2d(2)), 3, 1024
        self.features = nn.Sequential(
            first, nn.ReLU(inplace=True), pool(),
            second, nn.ReLU(inplace=True), pool(),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), pool(),
        )  # fmt: skip
        self.pool = nn.AdaptiveAvgPool2d(side)
        self.classifier = mlp_head(
            [256 * side * side, hidden, hidden, self.n_outputs], 0.5, dropout_before=(0, 1)
        )


_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


@register_model("vgg16", modality="image", study="A", tasks=("classification",))
class VGG16(_ImageClassifier):
    """VGG16 (configuration D, no batch norm): 13 3x3 convolutions in five stages, three FC layers.

    Paper: a max pool after each stage, 7 x 7 adaptive pool, 25088 -> 4096 -> 4096 -> n. Native: max
    pools after the first three stages only, global average pool, 512 -> 512 -> 512 -> n.
    """

    def __init__(self, input_shape=(1, 28, 28), n_outputs=3, mode="native", paper_size=None):
        super().__init__(input_shape, n_outputs, mode, paper_size)
        cfg = list(_VGG16) if self.paper else [v for i, v in enumerate(_VGG16) if not (v == "M" and i > 10)]
        layers: list[nn.Module] = []
        c = self.in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        side, hidden = (7, 4096) if self.paper else (1, 512)
        self.pool = nn.AdaptiveAvgPool2d(side)
        self.classifier = mlp_head(
            [512 * side * side, hidden, hidden, self.n_outputs], 0.5, dropout_before=(1, 2)
        )
        _kaiming_init(self)


# (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj) for 3a, 3b | 4a..4e | 5a, 5b
_INCEPTION = (
    ((192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64)),
    (
        (480, 192, 96, 208, 16, 48, 64),
        (512, 160, 112, 224, 24, 64, 64),
        (512, 128, 128, 256, 24, 64, 64),
        (512, 112, 144, 288, 32, 64, 64),
        (528, 256, 160, 320, 32, 128, 128),
    ),
    ((832, 256, 160, 320, 32, 128, 128), (832, 384, 192, 384, 48, 128, 128)),
)


@register_model("googlenet", modality="image", study="A", tasks=("classification",))
class GoogLeNet(_ImageClassifier):
    """GoogLeNet / Inception v1 (torchvision layout, no auxiliary heads): stem, nine inception blocks.

    Paper: 7x7/2 convolution, 3x3/2 pool, 1x1 and 3x3 convolutions, 3x3/2 pool, inception 3a-3b,
    pool, 4a-4e, pool, 5a-5b, global average pool, dropout 0.2, 1024 -> n. Native: 3x3/1 first
    convolution and no pool before 3a.
    """

    def __init__(self, input_shape=(1, 28, 28), n_outputs=3, mode="native", paper_size=None):
        super().__init__(input_shape, n_outputs, mode, paper_size)

        def maxpool(k: int = 3) -> nn.Module:
            return nn.MaxPool2d(k, 2, ceil_mode=True)

        stem: list[nn.Module]
        if self.paper:
            stem = [
                conv_bn_act(self.in_channels, 64, 7, stride=2, eps=1e-3), maxpool(),
                conv_bn_act(64, 64, 1, eps=1e-3), conv_bn_act(64, 192, 3, eps=1e-3), maxpool(),
            ]  # fmt: skip
        else:
            stem = [
                conv_bn_act(self.in_channels, 64, 3, eps=1e-3),
                conv_bn_act(64, 64, 1, eps=1e-3), conv_bn_act(64, 192, 3, eps=1e-3),
            ]  # fmt: skip
        s3, s4, s5 = ([Inception(*a) for a in stage] for stage in _INCEPTION)
        self.features = nn.Sequential(*stem, *s3, maxpool(), *s4, maxpool(2), *s5)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1024, self.n_outputs))
        _kaiming_init(self)


@register_model("resnet18", modality="image", study="A", tasks=("classification",))
class ResNet18(_ImageClassifier):
    """ResNet18: stem, four stages of two basic blocks (64, 128, 256, 512 channels), global pool, FC.

    Paper: 7x7/2 stem convolution and 3x3/2 max pool. Native: 3x3/1 stem convolution, no max pool.
    """

    def __init__(self, input_shape=(1, 28, 28), n_outputs=3, mode="native", paper_size=None):
        super().__init__(input_shape, n_outputs, mode, paper_size)
        if self.paper:
            stem = [conv_bn_act(self.in_channels, 64, 7, stride=2), nn.MaxPool2d(3, 2, 1)]
        else:
            stem = [conv_bn_act(self.in_channels, 64, 3)]
        blocks: list[nn.Module] = []
        c = 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(c, width, stride), BasicBlock(width, width, 1)]
            c = width
        self.features = nn.Sequential(*stem, *blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, self.n_outputs)
        _kaiming_init(self, linear_std=None)


# (expansion t, channels c, repeats n, first stride s)
_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1))  # fmt: skip


@register_model("mobilenet_v2", modality="image", study="A", tasks=("classification",))
class MobileNetV2(_ImageClassifier):
    """MobileNetV2 (width 1.0): 32-channel stem, 17 inverted residual blocks, 1280-channel 1x1 conv.

    Paper: stride-2 stem. Native: stride-1 stem and stride-1 24-channel stage. Dropout 0.2, 1280 -> n.
    """

    def __init__(self, input_shape=(1, 28, 28), n_outputs=3, mode="native", paper_size=None):
        super().__init__(input_shape, n_outputs, mode, paper_size)
        layers: list[nn.Module] = [conv_bn_act(self.in_channels, 32, 3, 2 if self.paper else 1, act=nn.ReLU6)]
        c = 32
        for i, (t, width, n, s) in enumerate(_MOBILENET_V2):
            stride = 1 if (i == 1 and not self.paper) else s
            for j in range(n):
                layers.append(InvertedResidual(c, width, stride if j == 0 else 1, t))
                c = width
        layers.append(conv_bn_act(c, 1280, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, self.n_outputs))
        _kaiming_init(self)
