"""Convolutional models. Each factory takes ``(input_shape, out_features, **params)``.

``cnn`` is a fixed two-layer network for small images. ``resnet``, ``mobilenet`` and
``vgg`` are BatchNorm networks that scale with the image: they halve the feature map
only while its shorter side is at least :data:`MIN_DOWNSAMPLE` pixels (so an 8x8 digit
is halved once, a 32x32 image at every stage), add a stride-2 stem for images of
:data:`STEM_DOWNSAMPLE` pixels and more, and end in adaptive average pooling, so the
head does not depend on the image size. Their BatchNorm layers use running statistics
in eval mode; those are buffers of the state dict, so a saved model reloads exactly.
``alexnet``, ``inception``, ``densenet`` and ``efficientnet`` follow the same rules, in
:mod:`zoo_vision.families`.
"""

from __future__ import annotations

from torch import nn

#: A feature map is halved only while its shorter side has at least this many pixels.
MIN_DOWNSAMPLE = 8
#: Images whose shorter side has at least this many pixels get a stride-2 stem.
STEM_DOWNSAMPLE = 64
#: BatchNorm's running-statistics momentum: higher than torch's 0.1 so that the running
#: statistics (what eval mode uses) follow the weights within a few steps. Runs here are
#: short (about 20 steps an epoch on digits); with 0.1 a one-epoch MobileNet run
#: evaluated at chance level, and the contract's 25-step "learns" check failed.
BN_MOMENTUM = 0.2


def cnn(input_shape, out_features: int, *, channels=(32, 64), kernel_size: int = 3, pool: str = "max",
        dropout: float = 0.25) -> nn.Module:
    if len(input_shape) != 3:
        raise ValueError(f"cnn needs (channels, height, width) input, got shape {tuple(input_shape)}")
    if len(channels) != 2:
        raise ValueError(f"cnn has two conv layers; give two channel counts, not {len(channels)}")
    c, h, w = input_shape
    if h < 4 or w < 4:
        raise ValueError(f"cnn pools twice and needs images of at least 4x4, got {h}x{w}")
    Pool = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
    c1, c2 = (int(x) for x in channels)
    return nn.Sequential(
        *_same_conv(c, c1, kernel_size), nn.ReLU(), Pool(2),
        *_same_conv(c1, c2, kernel_size), nn.ReLU(), Pool(2),
        nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(c2 * (h // 2 // 2) * (w // 2 // 2), out_features),
    )


def _same_conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    """A convolution that keeps the image size; even kernels get explicit asymmetric padding."""
    if k % 2:
        return [nn.Conv2d(cin, cout, k, padding=k // 2)]
    lo, hi = (k - 1) // 2, k // 2
    return [nn.ZeroPad2d((lo, hi, lo, hi)), nn.Conv2d(cin, cout, k)]


# -- shared pieces of the BatchNorm networks -----------------------------------------------


def _image_shape(name: str, input_shape) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ValueError(f"{name} needs (channels, height, width) input, got shape {tuple(input_shape)}")
    c, h, w = (int(d) for d in input_shape)
    if min(c, h, w) < 1:
        raise ValueError(f"{name} needs a non-empty image, got shape {tuple(input_shape)}")
    return c, h, w


def _widths(name: str, widths) -> list[int]:
    widths = [int(x) for x in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"{name} needs at least one width, each >= 1, got {tuple(widths)}")
    return widths


def _halve(size: int) -> int:
    """The size after a 3x3 (or 1x1) convolution with stride 2 and padding to match."""
    return (size + 1) // 2


def _stem(cin: int, cout: int, side: int, act: type[nn.Module],
          momentum: float = BN_MOMENTUM) -> tuple[nn.Sequential, int]:
    stride = 2 if side >= STEM_DOWNSAMPLE else 1
    stem = nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout, momentum=momentum), act())
    return stem, stride


def _head(features: int, out_features: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(features, out_features))


def _conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1,
             momentum: float = BN_MOMENTUM) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, momentum=momentum)]


# -- ResNet ------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a shortcut, then ReLU (He et al., 2016).

    The shortcut is the identity when the shape is kept, else a 1x1 convolution with
    the block's stride followed by BatchNorm (the "projection" shortcut).
    """

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout, 3, stride), nn.ReLU(inplace=True), *_conv_bn(cout, cout, 3))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else nn.Sequential(*_conv_bn(cin, cout, 1, stride)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


def resnet(input_shape, out_features: int, *, widths=(32, 64, 128), blocks: int = 1,
           dropout: float = 0.1) -> nn.Module:
    """A ResNet of basic blocks: a 3x3 stem, one stage per width, average pooling, a linear head.

    Every stage after the first starts with a stride-2 block while the feature map is at
    least ``MIN_DOWNSAMPLE`` pixels on its shorter side.
    """
    c, h, w = _image_shape("resnet", input_shape)
    widths = _widths("resnet", widths)
    if blocks < 1:
        raise ValueError(f"resnet needs at least one block per stage, got {blocks}")
    stem, stride = _stem(c, widths[0], min(h, w), nn.ReLU)
    side = min(h, w) if stride == 1 else _halve(min(h, w))
    stages, cin = [], widths[0]
    for i, width in enumerate(widths):
        layers = []
        for b in range(blocks):
            s = 2 if (i > 0 and b == 0 and side >= MIN_DOWNSAMPLE) else 1
            layers.append(BasicBlock(cin, width, s))
            cin = width
            if s == 2:
                side = _halve(side)
        stages.append(nn.Sequential(*layers))
    return nn.Sequential(stem, nn.Sequential(*stages), _head(cin, out_features, dropout))


# -- MobileNet ---------------------------------------------------------------------------------


class SeparableBlock(nn.Sequential):
    """A depthwise separable convolution (Howard et al., 2017): depthwise 3x3 (one filter per
    channel, ``groups == channels``) + BN + ReLU6, then pointwise 1x1 + BN + ReLU6."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(*_conv_bn(cin, cin, 3, stride, groups=cin), nn.ReLU6(inplace=True),
                         *_conv_bn(cin, cout, 1), nn.ReLU6(inplace=True))


def mobilenet(input_shape, out_features: int, *, widths=(32, 64, 128, 128, 256), width_multiplier: float = 1.0,
              dropout: float = 0.1) -> nn.Module:
    """A MobileNet (v1): a 3x3 stem to ``widths[0]`` channels, then one depthwise separable
    block per further width. A block that widens the network halves the feature map
    (except the first block, as in MobileNet) while the map is at least
    ``MIN_DOWNSAMPLE`` pixels on its shorter side. ``width_multiplier`` scales every width.
    """
    c, h, w = _image_shape("mobilenet", input_shape)
    widths = _widths("mobilenet", widths)
    if width_multiplier <= 0:
        raise ValueError(f"mobilenet's width_multiplier must be > 0, got {width_multiplier}")
    widths = [max(1, int(round(x * width_multiplier))) for x in widths]
    stem, stride = _stem(c, widths[0], min(h, w), nn.ReLU6)
    side = min(h, w) if stride == 1 else _halve(min(h, w))
    blocks, cin = [], widths[0]
    for i, width in enumerate(widths[1:]):
        s = 2 if (i > 0 and width > cin and side >= MIN_DOWNSAMPLE) else 1
        blocks.append(SeparableBlock(cin, width, s))
        cin = width
        if s == 2:
            side = _halve(side)
    return nn.Sequential(stem, nn.Sequential(*blocks), _head(cin, out_features, dropout))


# -- VGG -------------------------------------------------------------------------------------


def vgg(input_shape, out_features: int, *, widths=(32, 64, 128), convs: int = 2, dropout: float = 0.2) -> nn.Module:
    """A VGG-style plain stack (Simonyan and Zisserman, 2015): per width, ``convs`` times
    conv3x3-BN-ReLU, then a 2x2 max-pool while the feature map is at least
    ``MIN_DOWNSAMPLE`` pixels on its shorter side; average pooling and a linear head."""
    c, h, w = _image_shape("vgg", input_shape)
    widths = _widths("vgg", widths)
    if convs < 1:
        raise ValueError(f"vgg needs at least one convolution per stage, got {convs}")
    side, cin, stages = min(h, w), c, []
    for width in widths:
        layers: list[nn.Module] = []
        for _ in range(convs):
            layers += [*_conv_bn(cin, width, 3), nn.ReLU(inplace=True)]
            cin = width
        if side >= MIN_DOWNSAMPLE:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            side = _halve(side)
        stages.append(nn.Sequential(*layers))
    return nn.Sequential(nn.Sequential(*stages), _head(cin, out_features, dropout))
