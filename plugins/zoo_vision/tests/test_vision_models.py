"""The BatchNorm networks of the ``vision`` plugin: ``resnet``, ``mobilenet`` and ``vgg``.

Built through the real registry with their declared defaults (plus overrides); nothing
is mocked.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.checkpoint import load_weights, save_weights
from zoo.registry import get_registry

NETS = ("resnet", "mobilenet", "vgg")


def build(name: str, input_shape, out_features: int = 10, **overrides) -> nn.Module:
    e = get_registry().get("model", name)
    return e.load()(tuple(input_shape), out_features, **e.spec.resolve_params(overrides))


def pooled_map_size(model: nn.Module, input_shape) -> tuple[int, int]:
    """The feature map's (height, width) where it enters the adaptive average pooling."""
    seen = []
    pool = next(m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d))
    handle = pool.register_forward_hook(lambda mod, args, out: seen.append(tuple(args[0].shape[-2:])))
    try:
        model.eval()
        with torch.no_grad():
            model(torch.randn(2, *input_shape))
    finally:
        handle.remove()
    return seen[0]


# -- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 8, 8), (1, 32, 32), (3, 32, 32), (3, 5, 7), (1, 2, 2)])
@pytest.mark.parametrize("out_features", [1, 10])
def test_output_shape(name, input_shape, out_features):
    model = build(name, input_shape, out_features).eval()
    with torch.no_grad():
        for batch in (1, 3):
            out = model(torch.randn(batch, *input_shape))
            assert out.shape == (batch, out_features) and out.dtype == torch.float32


@pytest.mark.parametrize("name,expected", [
    # (input side -> side of the map entering the average pooling)
    ("resnet", {8: 4, 32: 8, 64: 8}),
    ("mobilenet", {8: 4, 32: 8, 64: 8}),
    ("vgg", {8: 4, 32: 4, 64: 8}),
])
def test_downsampling_stops_while_the_map_is_small(name, expected):
    for side, final in expected.items():
        assert pooled_map_size(build(name, (3, side, side)), (3, side, side)) == (final, final), side


@pytest.mark.parametrize("name", NETS)
def test_the_head_does_not_depend_on_the_image_size(name):
    small, large = build(name, (3, 8, 8)), build(name, (3, 64, 64))
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(small) == shapes(large)


@pytest.mark.parametrize("name", NETS)
def test_rejects_non_image_input_and_bad_params_clearly(name):
    with pytest.raises(ValueError, match="channels, height, width"):
        build(name, (64,))
    with pytest.raises(ValueError, match="width"):
        get_registry().get("model", name).load()((1, 8, 8), 3, widths=())


# -- ResNet -------------------------------------------------------------------------------------


def test_resnet_stages_blocks_and_shortcuts():
    from zoo_vision.models import BasicBlock

    model = build("resnet", (1, 8, 8), widths=(16, 16, 32, 64), blocks=2)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 4 * 2
    projections = [b for b in blocks if not isinstance(b.shortcut, nn.Identity)]
    # a block that halves the map (8x8 -> 4x4 at the second stage) or changes the width (16 -> 32,
    # 32 -> 64) needs a projection; the first stage and every repeated block keep the identity
    assert [blocks.index(b) for b in projections] == [2, 4, 6]
    strides = [b.shortcut[0].stride for b in projections]
    assert strides == [(2, 2), (1, 1), (1, 1)]  # a 4x4 map is not halved again
    for b in projections:
        conv, bn = b.shortcut
        assert conv.kernel_size == (1, 1) and isinstance(bn, nn.BatchNorm2d)
    body = [m for m in blocks[0].body]
    assert [type(m) for m in body] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d]


def test_resnet_block_adds_its_input_identity_and_projection():
    from zoo_vision.models import BasicBlock

    torch.manual_seed(0)
    x = torch.randn(4, 8, 6, 6)
    same = BasicBlock(8, 8).eval()
    with torch.no_grad():
        expect = torch.relu(same.body(x) + x)
        torch.testing.assert_close(same(x), expect)
        nn.init.zeros_(same.body[4].weight)  # the last BN outputs its bias only
        nn.init.zeros_(same.body[4].bias)
        torch.testing.assert_close(same(x), torch.relu(x))  # a silenced body leaves the identity path
    down = BasicBlock(8, 16, stride=2).eval()
    with torch.no_grad():
        out = down(x)
        assert out.shape == (4, 16, 3, 3)
        torch.testing.assert_close(out, torch.relu(down.body(x) + down.shortcut(x)))


# -- MobileNet --------------------------------------------------------------------------------


def test_mobilenet_convolutions_are_depthwise_separable():
    from zoo_vision.models import SeparableBlock

    model = build("mobilenet", (3, 32, 32), widths=(8, 16, 32, 32))
    blocks = [m for m in model.modules() if isinstance(m, SeparableBlock)]
    assert len(blocks) == 3
    for b in blocks:
        depthwise, pointwise = [m for m in b if isinstance(m, nn.Conv2d)]
        assert depthwise.groups == depthwise.in_channels == depthwise.out_channels  # one filter per channel
        assert depthwise.kernel_size == (3, 3) and depthwise.weight.shape[1] == 1
        assert pointwise.kernel_size == (1, 1) and pointwise.groups == 1
        assert [type(m) for m in b] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU6, nn.Conv2d, nn.BatchNorm2d, nn.ReLU6]
    assert [b[0].stride for b in blocks] == [(1, 1), (2, 2), (1, 1)]  # the first block keeps the size


def test_mobilenet_width_multiplier_scales_every_width():
    full = build("mobilenet", (1, 8, 8), widths=(16, 32, 64))
    half = build("mobilenet", (1, 8, 8), widths=(16, 32, 64), width_multiplier=0.5)
    widths = lambda m: [c.out_channels for c in m.modules() if isinstance(c, nn.Conv2d)]  # noqa: E731
    assert widths(full) == [16, 16, 32, 32, 64]
    assert widths(half) == [8, 8, 16, 16, 32]
    assert sum(p.numel() for p in half.parameters()) < 0.4 * sum(p.numel() for p in full.parameters())


# -- VGG ----------------------------------------------------------------------------------------


def test_vgg_is_a_plain_stack_of_conv_bn_relu_and_pools():
    model = build("vgg", (3, 32, 32), widths=(8, 16, 32), convs=3)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8] * 3 + [16] * 3 + [32] * 3
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) for c in convs)
    assert len([m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]) == 9
    assert len([m for m in model.modules() if isinstance(m, nn.MaxPool2d)]) == 3  # 32 -> 16 -> 8 -> 4
    small = build("vgg", (1, 8, 8), widths=(8, 16, 32))
    assert len([m for m in small.modules() if isinstance(m, nn.MaxPool2d)]) == 1  # 8 -> 4, then no more


# -- BatchNorm: eval mode, state dict, gradients ----------------------------------------------


@pytest.mark.parametrize("name", NETS)
def test_batchnorm_uses_running_statistics_in_eval_mode(name):
    torch.manual_seed(0)
    model = build(name, (1, 8, 8), dropout=0.0)
    x = torch.randn(16, 1, 8, 8) * 3 + 1
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns
    model.train()
    with torch.no_grad():
        train_out = model(x)
        assert not torch.allclose(model(x[:4]), train_out[:4], atol=1e-4)  # batch statistics in training
    assert all(int(b.num_batches_tracked) == 2 for b in bns)
    assert not torch.equal(bns[0].running_mean, torch.zeros_like(bns[0].running_mean))
    model.eval()
    before = [b.running_mean.clone() for b in bns]
    with torch.no_grad():
        whole, part = model(x), model(x[:4])
    torch.testing.assert_close(part, whole[:4], rtol=1e-4, atol=1e-5)  # a sample's output ignores its batch
    assert all(torch.equal(a, b.running_mean) for a, b in zip(before, bns))  # eval does not update them
    assert all(int(b.num_batches_tracked) == 2 for b in bns)


@pytest.mark.parametrize("name", NETS)
def test_state_dict_holds_the_batchnorm_buffers_and_reloads_bit_identically(name, tmp_path):
    torch.manual_seed(0)
    model = build(name, (3, 16, 16))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 16, 16) * 2 + 0.5)  # move the running statistics off their start
    keys = model.state_dict().keys()
    for suffix in ("running_mean", "running_var", "num_batches_tracked"):
        assert any(k.endswith(suffix) for k in keys), suffix
    save_weights(model, tmp_path / "m.safetensors")
    torch.manual_seed(1)
    fresh = build(name, (3, 16, 16))
    load_weights(fresh, tmp_path / "m.safetensors")
    model.eval()
    fresh.eval()
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))
    for k, v in model.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k


@pytest.mark.parametrize("name", NETS + ("alexnet", "inception", "densenet", "efficientnet"))
def test_every_parameter_gets_a_finite_nonzero_gradient(name):
    torch.manual_seed(0)
    model = build(name, (3, 8, 8), 4)
    model.train()
    out = model(torch.randn(8, 3, 8, 8))
    nn.functional.cross_entropy(out, torch.randint(0, 4, (8,))).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NETS)
def test_dropout_is_the_declared_one_and_off_in_eval(name):
    model = build(name, (1, 8, 8), dropout=0.5)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert [d.p for d in drops] == [0.5]
    model.eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
