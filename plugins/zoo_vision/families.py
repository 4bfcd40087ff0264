"""More convolutional families, scaled to small images: ``alexnet``, ``inception``,
``densenet`` and ``efficientnet``. Each factory takes ``(input_shape, out_features, **params)``.

They follow the rules of :mod:`zoo_vision.models`: a feature map is halved only while its
shorter side is at least :data:`~zoo_vision.models.MIN_DOWNSAMPLE` pixels (an 8x8 digit
is halved once, a 32x32 image at every stage), images of
:data:`~zoo_vision.models.STEM_DOWNSAMPLE` pixels and more get a stride-2 stem, and the
head starts with adaptive average pooling, so the weights do not depend on the image size
and any image of at least 1x1 pixel goes through. Every halving (a stride-2 convolution, a
3x3 stride-2 max-pool with padding 1, a 2x2 average pool with ``ceil_mode``) takes a side
``n`` to ``(n + 1) // 2``.
"""

from __future__ import annotations

import torch
from torch import nn

from .models import (BN_MOMENTUM, MIN_DOWNSAMPLE, STEM_DOWNSAMPLE, _conv_bn, _halve, _head, _image_shape, _stem,
                     _widths)

#: AlexNet's adaptive pooling output side (6x6 for 224-pixel images; small images end smaller).
ALEXNET_POOLED = 2
#: EfficientNet's BatchNorm momentum, higher than the others' BN_MOMENTUM: it stacks three
#: BatchNorms a block (24 layers with the defaults), and at BN_MOMENTUM their running
#: statistics (what eval mode uses) trailed the weights for a whole first epoch: a one-epoch
#: digits run evaluated at chance (test accuracy 0.16); at 0.3, 0.8.
EFFICIENTNET_BN_MOMENTUM = 0.3


def _conv_bn_act(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] = nn.ReLU, momentum: float = BN_MOMENTUM) -> list[nn.Module]:
    return [*_conv_bn(cin, cout, kernel, stride, groups, momentum), act(inplace=True)]


def _overlapping_pool() -> nn.MaxPool2d:
    """AlexNet's and GoogLeNet's overlapping 3x3 max-pool with stride 2 (padded: n -> (n + 1) // 2)."""
    return nn.MaxPool2d(3, stride=2, padding=1)


# -- AlexNet ------------------------------------------------------------------------------------


def alexnet(input_shape, out_features: int, *, widths=(32, 64, 96, 96, 64), hidden=(256,), dropout: float = 0.5,
            batchnorm: bool = True) -> nn.Module:
    """An AlexNet-style network (Krizhevsky et al., 2012): a plain stack of convolutions with
    ReLU, a 5x5 first (AlexNet's large first filter; stride 2 on images of
    ``STEM_DOWNSAMPLE`` pixels and more), then 3x3. An overlapping 3x3 stride-2 max-pool
    follows the first, the second and the last convolution while the map is at least
    ``MIN_DOWNSAMPLE`` pixels on its shorter side. Adaptive average pooling to
    ``ALEXNET_POOLED`` x ``ALEXNET_POOLED``, then the classifier: per entry of ``hidden``,
    dropout and a fully connected ReLU layer of that many units (AlexNet: 4096, 4096); a
    linear output (after dropout when there is no hidden layer).

    ``batchnorm`` puts BatchNorm after each convolution and each hidden layer, as modern
    re-implementations do. AlexNet had none (it had local response normalisation); without
    it the network needs a small learning rate (about 0.001 with Adam; at 0.01 it hardly
    learns), and with BatchNorm, more than one hidden layer makes its eval-mode outputs
    erratic early in training (the running statistics trail the fast-moving weights), hence
    one hidden layer by default. Layers start from He initialisation, which trains much
    faster than torch's default without normalisation; the output layer starts small (std 0.01).
    """
    c, h, w = _image_shape("alexnet", input_shape)
    widths = _widths("alexnet", widths)
    hidden = [int(n) for n in hidden]
    if hidden and min(hidden) < 1:
        raise ValueError(f"alexnet's hidden layers need at least one unit each, got {tuple(hidden)}")
    side = min(h, w)
    pool_after = {0, 1, len(widths) - 1}
    features: list[nn.Module] = []  # one conv-(BN-)ReLU(-pool) each: the weights' names do not depend on the size
    cin = c
    for i, width in enumerate(widths):
        kernel, stride = (5, 2 if side >= STEM_DOWNSAMPLE else 1) if i == 0 else (3, 1)
        conv = nn.Conv2d(cin, width, kernel, stride=stride, padding=kernel // 2, bias=not batchnorm)
        layer = [conv, *([nn.BatchNorm2d(width, momentum=BN_MOMENTUM)] if batchnorm else []), nn.ReLU(inplace=True)]
        side = side if stride == 1 else _halve(side)
        if i in pool_after and side >= MIN_DOWNSAMPLE:
            layer.append(_overlapping_pool())
            side = _halve(side)
        features.append(nn.Sequential(*layer))
        cin = width
    classifier: list[nn.Module] = [nn.AdaptiveAvgPool2d(ALEXNET_POOLED), nn.Flatten()]
    fan_in = cin * ALEXNET_POOLED**2
    for units in hidden:
        classifier += [nn.Dropout(dropout), nn.Linear(fan_in, units, bias=not batchnorm),
                       *([nn.BatchNorm1d(units, momentum=BN_MOMENTUM)] if batchnorm else []), nn.ReLU(inplace=True)]
        fan_in = units
    output = nn.Linear(fan_in, out_features)
    classifier += [*([] if hidden else [nn.Dropout(dropout)]), output]
    model = nn.Sequential(nn.Sequential(*features), nn.Sequential(*classifier))
    for m in model.modules():  # He initialisation: without normalisation, torch's default shrinks the signal
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not output:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    nn.init.normal_(output.weight, std=0.01)  # small outputs to start from (as AlexNet did)
    nn.init.zeros_(output.bias)
    return model


# -- Inception (GoogLeNet) ------------------------------------------------------------------------


class InceptionBlock(nn.Module):
    """GoogLeNet's Inception module (Szegedy et al., 2015), with BatchNorm: four parallel
    branches over the same input, concatenated along the channels.

    Of ``cout`` output channels, a quarter come from a 1x1 convolution, an eighth from a
    3x3 max-pool (stride 1) followed by a 1x1 projection, an eighth from a 1x1 reduction
    and two 3x3 convolutions (a 5x5 receptive field, factorised as in Inception v2), and
    the rest (about half) from a 1x1 reduction and a 3x3 convolution. A reduction has
    ``reduce`` times its branch's channels (at least one). Every convolution is
    conv-BN-ReLU.
    """

    def __init__(self, cin: int, cout: int, reduce: float = 0.5) -> None:
        super().__init__()
        if cout < 8:
            raise ValueError(f"an inception block needs at least 8 output channels (the 5x5 and pool "
                             f"branches get an eighth each), got {cout}")
        b1, b5, bp = cout // 4, cout // 8, cout // 8
        b3 = cout - b1 - b5 - bp
        r3, r5 = max(1, round(b3 * reduce)), max(1, round(b5 * reduce))
        self.branch1 = nn.Sequential(*_conv_bn_act(cin, b1, 1))
        self.branch3 = nn.Sequential(*_conv_bn_act(cin, r3, 1), *_conv_bn_act(r3, b3, 3))
        self.branch5 = nn.Sequential(*_conv_bn_act(cin, r5, 1), *_conv_bn_act(r5, b5, 3), *_conv_bn_act(b5, b5, 3))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *_conv_bn_act(cin, bp, 1))
        self.out_channels = cout

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


def inception(input_shape, out_features: int, *, widths=(32, 64, 128, 128), blocks: int = 1, reduce: float = 0.5,
              dropout: float = 0.2) -> nn.Module:
    """A GoogLeNet-style network: a conv3x3-BN-ReLU stem to ``widths[0]`` channels, then one
    stage of ``blocks`` Inception blocks per further width. Every stage after the first
    starts with an overlapping 3x3 stride-2 max-pool while the map is at least
    ``MIN_DOWNSAMPLE`` pixels on its shorter side. Average pooling, dropout and a linear
    head (GoogLeNet's auxiliary classifiers are left out).
    """
    c, h, w = _image_shape("inception", input_shape)
    widths = _widths("inception", widths)
    if len(widths) < 2:
        raise ValueError(f"inception needs a stem width and at least one stage width, got {tuple(widths)}")
    if blocks < 1:
        raise ValueError(f"inception needs at least one block per stage, got {blocks}")
    if not 0 < reduce <= 1:
        raise ValueError(f"inception's reduce must be in (0, 1], got {reduce}")
    stem, stride = _stem(c, widths[0], min(h, w), nn.ReLU)
    side = min(h, w) if stride == 1 else _halve(min(h, w))
    stages, cin = [], widths[0]
    for i, width in enumerate(widths[1:], start=1):
        layers: list[nn.Module] = []
        for _ in range(blocks):
            layers.append(InceptionBlock(cin, width, reduce))
            cin = width
        if i < len(widths) - 1 and side >= MIN_DOWNSAMPLE:  # the next stage's pool, last here: stable weight names
            layers.append(_overlapping_pool())
            side = _halve(side)
        stages.append(nn.Sequential(*layers))
    return nn.Sequential(stem, nn.Sequential(*stages), _head(cin, out_features, dropout))


# -- DenseNet ---------------------------------------------------------------------------------------


def _bn_relu_conv(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    """DenseNet's pre-activation order: BN, ReLU, then the convolution."""
    return [nn.BatchNorm2d(cin, momentum=BN_MOMENTUM), nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)]


class DenseLayer(nn.Module):
    """One layer of a dense block (Huang et al., 2017): BN-ReLU-conv1x1 to ``bottleneck *
    growth`` channels (DenseNet-B; left out when ``bottleneck`` is 0), BN-ReLU-conv3x3 to
    ``growth`` new channels, concatenated to its input: every layer sees all earlier maps."""

    def __init__(self, cin: int, growth: int, bottleneck: int = 4) -> None:
        super().__init__()
        inner = bottleneck * growth
        layers = [*_bn_relu_conv(cin, inner, 1), *_bn_relu_conv(inner, growth, 3)] if bottleneck else \
            _bn_relu_conv(cin, growth, 3)
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return torch.cat([x, self.body(x)], dim=1)


class Transition(nn.Sequential):
    """Between dense blocks: BN-ReLU-conv1x1 to ``cout`` channels, then, when ``pool``, a 2x2 average pool."""

    def __init__(self, cin: int, cout: int, pool: bool) -> None:
        super().__init__(*_bn_relu_conv(cin, cout, 1), *([nn.AvgPool2d(2, ceil_mode=True)] if pool else []))


def densenet(input_shape, out_features: int, *, growth: int = 12, layers=(4, 4, 4), bottleneck: int = 4,
             compression: float = 0.5, dropout: float = 0.1) -> nn.Module:
    """A DenseNet-BC: a 3x3 convolution to ``2 * growth`` channels (stride 2 on images of
    ``STEM_DOWNSAMPLE`` pixels and more), one dense block per entry of ``layers`` (that many
    dense layers, each adding ``growth`` channels), a transition between blocks that keeps
    ``compression`` of the channels and halves the map while it is at least
    ``MIN_DOWNSAMPLE`` pixels on its shorter side; a final BN-ReLU, average pooling and a
    linear head.
    """
    c, h, w = _image_shape("densenet", input_shape)
    layers = [int(n) for n in layers]
    if not layers or min(layers) < 1:
        raise ValueError(f"densenet needs at least one dense block, each of >= 1 layer, got {tuple(layers)}")
    if growth < 1:
        raise ValueError(f"densenet's growth must be >= 1, got {growth}")
    if bottleneck < 0:
        raise ValueError(f"densenet's bottleneck must be >= 0 (0: none), got {bottleneck}")
    if not 0 < compression <= 1:
        raise ValueError(f"densenet's compression must be in (0, 1], got {compression}")
    side = min(h, w)
    stride = 2 if side >= STEM_DOWNSAMPLE else 1
    cin = 2 * growth
    parts: list[nn.Module] = [nn.Conv2d(c, cin, 3, stride=stride, padding=1, bias=False)]
    side = side if stride == 1 else _halve(side)
    for i, n in enumerate(layers):
        if i > 0:
            cout = max(1, int(cin * compression))
            pool = side >= MIN_DOWNSAMPLE
            parts.append(Transition(cin, cout, pool))
            cin, side = cout, (_halve(side) if pool else side)
        block = []
        for _ in range(n):
            block.append(DenseLayer(cin, growth, bottleneck))
            cin += growth
        parts.append(nn.Sequential(*block))
    parts += [nn.BatchNorm2d(cin, momentum=BN_MOMENTUM), nn.ReLU(inplace=True)]
    return nn.Sequential(nn.Sequential(*parts), _head(cin, out_features, dropout))


# -- EfficientNet --------------------------------------------------------------------------------


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): average-pool each channel to one value, a
    1x1 bottleneck of ``squeeze`` channels with SiLU, a sigmoid gate per channel that
    rescales the input."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeeze, 1), nn.SiLU(inplace=True),
                                  nn.Conv2d(squeeze, channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.gate(x)


class MBConv(nn.Module):
    """EfficientNet's mobile inverted bottleneck (Tan and Le, 2019; from MobileNetV2): a 1x1
    expansion to ``expansion * cin`` channels (left out when ``expansion`` is 1), a
    depthwise ``kernel`` x ``kernel`` convolution with the block's stride, squeeze-and-
    excitation over ``se_ratio * cin`` channels (left out when 0), a linear 1x1 projection
    to ``cout``; BN after each convolution, SiLU after all but the projection. The input
    is added back (the residual) when the shape is kept; in training, each sample then
    skips the block's body with probability ``drop_path`` (stochastic depth, EfficientNet's
    "drop connect"; the kept bodies are scaled by ``1 / (1 - drop_path)``).
    """

    def __init__(self, cin: int, cout: int, expansion: int = 4, kernel: int = 3, stride: int = 1,
                 se_ratio: float = 0.25, drop_path: float = 0.0) -> None:
        super().__init__()
        if not 0 <= drop_path < 1:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path}")
        hidden, bn = cin * expansion, EFFICIENTNET_BN_MOMENTUM
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += _conv_bn_act(cin, hidden, 1, act=nn.SiLU, momentum=bn)
        layers += _conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, act=nn.SiLU, momentum=bn)
        if se_ratio > 0:
            layers.append(SqueezeExcite(hidden, max(1, int(cin * se_ratio))))
        layers += _conv_bn(hidden, cout, 1, momentum=bn)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
        self.drop_path = drop_path if self.residual else 0.0

    def forward(self, x):
        out = self.body(x)
        if not self.residual:
            return out
        if self.training and self.drop_path > 0:
            keep = 1.0 - self.drop_path
            out = out * (torch.rand(len(x), 1, 1, 1, device=x.device) < keep).to(out.dtype) / keep
        return out + x


def efficientnet(input_shape, out_features: int, *, widths=(32, 16, 24, 40, 80), blocks: int = 2,
                 expansion: int = 4, kernel_size: int = 3, se_ratio: float = 0.25, head: int = 256,
                 dropout: float = 0.2, drop_path: float = 0.0) -> nn.Module:
    """An EfficientNet-style network: a conv3x3-BN-SiLU stem to ``widths[0]`` channels, one
    stage of ``blocks`` MBConv blocks per further width (the first stage without expansion,
    as in EfficientNet-B0), a conv1x1-BN-SiLU to ``head`` channels, average pooling,
    dropout and a linear head. Every stage after the first starts with a stride-2 block
    while the map is at least ``MIN_DOWNSAMPLE`` pixels on its shorter side. The residual
    blocks' stochastic depth rises linearly from 0 at the first block to ``drop_path`` at
    the last, as in EfficientNet.
    """
    c, h, w = _image_shape("efficientnet", input_shape)
    widths = _widths("efficientnet", widths)
    if len(widths) < 2:
        raise ValueError(f"efficientnet needs a stem width and at least one stage width, got {tuple(widths)}")
    if blocks < 1:
        raise ValueError(f"efficientnet needs at least one block per stage, got {blocks}")
    if expansion < 1 or head < 1:
        raise ValueError(f"efficientnet's expansion and head must be >= 1, got {expansion} and {head}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"efficientnet's kernel_size must be odd, got {kernel_size}")
    if not 0 <= se_ratio <= 1:
        raise ValueError(f"efficientnet's se_ratio must be in [0, 1], got {se_ratio}")
    if not 0 <= drop_path < 1:
        raise ValueError(f"efficientnet's drop_path must be in [0, 1), got {drop_path}")
    stem, stride = _stem(c, widths[0], min(h, w), nn.SiLU, momentum=EFFICIENTNET_BN_MOMENTUM)
    side = min(h, w) if stride == 1 else _halve(min(h, w))
    stages, cin, n = [], widths[0], (len(widths) - 1) * blocks
    for i, width in enumerate(widths[1:]):
        layers = []
        for b in range(blocks):
            s = 2 if (i > 0 and b == 0 and side >= MIN_DOWNSAMPLE) else 1
            rate = drop_path * (i * blocks + b) / max(1, n - 1)
            layers.append(MBConv(cin, width, 1 if i == 0 else expansion, kernel_size, s, se_ratio, rate))
            cin = width
            if s == 2:
                side = _halve(side)
        stages.append(nn.Sequential(*layers))
    top = nn.Sequential(*_conv_bn_act(cin, head, 1, act=nn.SiLU, momentum=EFFICIENTNET_BN_MOMENTUM))
    return nn.Sequential(stem, nn.Sequential(*stages), top, _head(head, out_features, dropout))
