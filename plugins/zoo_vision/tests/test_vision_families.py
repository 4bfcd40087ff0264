"""The ``vision`` plugin's further CNN families: ``alexnet``, ``inception``, ``densenet`` and
``efficientnet`` (zoo_vision/families.py).

Built through the real registry with their declared defaults (plus overrides); nothing
is mocked. Their recipes' one-epoch runs are in test_vision_recipes.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.checkpoint import load_weights, save_weights
from zoo.errors import UsageError
from zoo.registry import get_registry

FAMILIES = ("alexnet", "inception", "densenet", "efficientnet")


def build(name: str, input_shape, out_features: int = 10, **overrides) -> nn.Module:
    e = get_registry().get("model", name)
    return e.load()(tuple(input_shape), out_features, **e.spec.resolve_params(overrides))


def pooled_map_size(model: nn.Module, input_shape) -> tuple[int, int]:
    """The feature map's (height, width) where it enters the head's adaptive average pooling (the
    last one: squeeze-and-excitation pools too)."""
    seen = []
    pool = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)][-1]
    handle = pool.register_forward_hook(lambda mod, args, out: seen.append(tuple(args[0].shape[-2:])))
    try:
        model.eval()
        with torch.no_grad():
            model(torch.randn(2, *input_shape))
    finally:
        handle.remove()
    return seen[0]


def of_type(model: nn.Module, cls) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, cls)]


# -- shapes: any image size -----------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 13, 17), (1, 32, 32), (3, 64, 64), (1, 2, 3)])
@pytest.mark.parametrize("out_features", [1, 10])
def test_output_shape(name, input_shape, out_features):
    model = build(name, input_shape, out_features).eval()
    with torch.no_grad():
        for batch in (1, 3):
            out = model(torch.randn(batch, *input_shape))
            assert out.shape == (batch, out_features) and out.dtype == torch.float32


@pytest.mark.parametrize("name,expected", [
    # input (height, width) -> the map entering the average pooling; halved only while >= 8 pixels
    ("alexnet", {(8, 8): (4, 4), (13, 17): (7, 9), (32, 32): (4, 4), (64, 64): (4, 4)}),
    ("inception", {(8, 8): (4, 4), (13, 17): (7, 9), (32, 32): (8, 8), (64, 64): (8, 8)}),
    ("densenet", {(8, 8): (4, 4), (13, 17): (7, 9), (32, 32): (8, 8), (64, 64): (8, 8)}),
    ("efficientnet", {(8, 8): (4, 4), (13, 17): (7, 9), (32, 32): (4, 4), (64, 64): (4, 4)}),
])
def test_downsampling_stops_while_the_map_is_small(name, expected):
    for (h, w), final in expected.items():
        assert pooled_map_size(build(name, (3, h, w)), (3, h, w)) == final, (h, w)


@pytest.mark.parametrize("name", FAMILIES)
def test_the_head_does_not_depend_on_the_image_size(name):
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(build(name, (3, 8, 8))) == shapes(build(name, (3, 13, 17))) == shapes(build(name, (3, 64, 64)))


@pytest.mark.parametrize("name", FAMILIES)
def test_rejects_non_image_input_clearly(name):
    with pytest.raises(ValueError, match="channels, height, width"):
        build(name, (64,))


# -- declared hyperparameters and their bounds -------------------------------------------------


@pytest.mark.parametrize("name,bad", [
    ("alexnet", {"widths": "0,8"}), ("alexnet", {"hidden": "64,0"}), ("alexnet", {"dropout": 1.0}),
    ("alexnet", {"batchnorm": "maybe"}),
    ("inception", {"widths": "32,4"}), ("inception", {"blocks": 0}), ("inception", {"reduce": 0.0}),
    ("inception", {"reduce": 1.5}), ("inception", {"dropout": -0.1}),
    ("densenet", {"growth": 0}), ("densenet", {"layers": "4,0"}), ("densenet", {"bottleneck": -1}),
    ("densenet", {"compression": 0.0}), ("densenet", {"compression": 1.1}),
    ("efficientnet", {"widths": "32,0"}), ("efficientnet", {"blocks": 0}), ("efficientnet", {"expansion": 0}),
    ("efficientnet", {"kernel_size": 4}), ("efficientnet", {"se_ratio": 1.5}), ("efficientnet", {"head": 0}),
    ("efficientnet", {"drop_path": 0.95}),
])
def test_declared_bounds_refuse_bad_values(name, bad):
    with pytest.raises(UsageError):
        get_registry().get("model", name).spec.resolve_params(bad)


@pytest.mark.parametrize("name,good", [
    ("alexnet", {"widths": "8", "hidden": "1", "dropout": 0.0, "batchnorm": False}),
    ("inception", {"widths": "8,8", "blocks": 2, "reduce": 1.0}),
    ("densenet", {"growth": 1, "layers": "1", "bottleneck": 0, "compression": 1.0}),
    ("efficientnet", {"widths": "4,4", "expansion": 1, "kernel_size": 7, "se_ratio": 0.0, "head": 1}),
])
def test_values_at_the_bounds_build_and_run(name, good):
    model = build(name, (1, 8, 8), 3, **good).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_the_factories_check_what_a_direct_caller_passes():
    from zoo_vision import families

    with pytest.raises(ValueError, match="width"):
        families.alexnet((1, 8, 8), 3, widths=())
    with pytest.raises(ValueError, match="stem width and at least one stage"):
        families.inception((1, 8, 8), 3, widths=(32,))
    with pytest.raises(ValueError, match="at least 8 output channels"):
        families.InceptionBlock(8, 4)
    with pytest.raises(ValueError, match="dense block"):
        families.densenet((1, 8, 8), 3, layers=())
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        families.efficientnet((1, 8, 8), 3, kernel_size=4)


# -- AlexNet ----------------------------------------------------------------------------------


def test_alexnet_is_a_conv_stack_with_max_pools_and_a_dropout_classifier():
    model = build("alexnet", (3, 32, 32), widths=(8, 16, 24, 24, 16), hidden=(32, 32), dropout=0.5)
    convs = of_type(model, nn.Conv2d)
    assert [c.kernel_size for c in convs] == [(5, 5)] + [(3, 3)] * 4
    assert [c.out_channels for c in convs] == [8, 16, 24, 24, 16]
    assert len(of_type(model, nn.BatchNorm2d)) == 5 and len(of_type(model, nn.BatchNorm1d)) == 2
    assert len(of_type(model, nn.MaxPool2d)) == 3  # after conv 1, 2 and 5: 32 -> 16 -> 8 -> 4
    assert [d.p for d in of_type(model, nn.Dropout)] == [0.5, 0.5]  # before each hidden layer
    assert [(fc.in_features, fc.out_features) for fc in of_type(model, nn.Linear)] == [(16 * 4, 32), (32, 32),
                                                                                        (32, 10)]
    assert len(of_type(build("alexnet", (1, 8, 8)), nn.MaxPool2d)) == 1  # 8 -> 4, then no more
    assert of_type(build("alexnet", (3, 64, 64)), nn.Conv2d)[0].stride == (2, 2)  # a large image's first conv


def test_alexnet_without_batchnorm_is_the_original_plain_stack():
    model = build("alexnet", (1, 8, 8), widths=(8, 16, 16), hidden=(), batchnorm=False)
    assert not of_type(model, nn.BatchNorm2d) and not of_type(model, nn.BatchNorm1d)
    assert all(c.bias is not None for c in of_type(model, nn.Conv2d))
    classifier = model[1]
    assert [type(m) for m in classifier] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Linear]
    assert classifier[-1].weight.std() < 0.02  # the output layer starts small


# -- Inception -------------------------------------------------------------------------------------


def test_inception_block_concatenates_four_branches():
    from zoo_vision.families import InceptionBlock

    torch.manual_seed(0)
    block = InceptionBlock(16, 64, reduce=0.5).eval()
    kernels = lambda branch: [c.kernel_size[0] for c in of_type(branch, nn.Conv2d)]  # noqa: E731
    assert kernels(block.branch1) == [1]
    assert kernels(block.branch3) == [1, 3]
    assert kernels(block.branch5) == [1, 3, 3]  # a 5x5 receptive field as two 3x3
    assert isinstance(block.branch_pool[0], nn.MaxPool2d) and kernels(block.branch_pool) == [1]
    # of 64 channels: a quarter 1x1, half 3x3, an eighth each for the 5x5 and the pool branch
    widths = [of_type(b, nn.Conv2d)[-1].out_channels
              for b in (block.branch1, block.branch3, block.branch5, block.branch_pool)]
    assert widths == [16, 32, 8, 8]
    assert [of_type(b, nn.Conv2d)[0].out_channels for b in (block.branch3, block.branch5)] == [16, 4]  # reductions
    x = torch.randn(2, 16, 5, 7)
    with torch.no_grad():
        out = block(x)
        assert out.shape == (2, 64, 5, 7)
        torch.testing.assert_close(out, torch.cat([block.branch1(x), block.branch3(x), block.branch5(x),
                                                   block.branch_pool(x)], dim=1))


def test_inception_stages_and_pools():
    from zoo_vision.families import InceptionBlock

    model = build("inception", (1, 32, 32), widths=(8, 16, 24, 32), blocks=2)
    blocks = of_type(model, InceptionBlock)
    assert [b.out_channels for b in blocks] == [16, 16, 24, 24, 32, 32]
    assert len([m for m in of_type(model, nn.MaxPool2d) if m.stride == 2]) == 2  # before stages 2 and 3
    assert len([m for m in of_type(build("inception", (1, 8, 8)), nn.MaxPool2d) if m.stride == 2]) == 1


# -- DenseNet -----------------------------------------------------------------------------------------


def test_densenet_layers_grow_the_channels_and_transitions_compress_them():
    from zoo_vision.families import DenseLayer, Transition

    model = build("densenet", (1, 8, 8), growth=4, layers=(2, 3), compression=0.5)
    # stem 2 x growth = 8; block 1: 8 + 2 x 4 = 16; transition: 8 (and 8 -> 4 pixels); block 2: 8 + 3 x 4 = 20
    assert [layer.body[0].num_features for layer in of_type(model, DenseLayer)] == [8, 12, 8, 12, 16]
    (transition,) = of_type(model, Transition)
    assert (transition[2].in_channels, transition[2].out_channels) == (16, 8)
    assert isinstance(transition[-1], nn.AvgPool2d)
    assert of_type(model, nn.Linear)[0].in_features == 20
    # pre-activation: BN-ReLU-conv1x1 (bottleneck, 4 x growth) then BN-ReLU-conv3x3 (growth)
    body = of_type(model, DenseLayer)[0].body
    assert [type(m) for m in body] == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d] * 2
    assert (body[2].kernel_size, body[2].out_channels, body[5].kernel_size, body[5].out_channels) == \
        ((1, 1), 16, (3, 3), 4)
    plain = build("densenet", (1, 8, 8), growth=4, layers=(2,), bottleneck=0)
    assert [c.kernel_size for c in of_type(plain, nn.Conv2d)] == [(3, 3)] * 3  # stem and two 3x3
    small = build("densenet", (1, 8, 8), layers=(1, 1, 1))
    assert [len(t) for t in of_type(small, Transition)] == [4, 3]  # the second does not pool a 4x4 map


def test_dense_layer_passes_its_input_through():
    from zoo_vision.families import DenseLayer

    layer = DenseLayer(6, growth=5).eval()
    x = torch.randn(3, 6, 4, 5)
    with torch.no_grad():
        out = layer(x)
    assert out.shape == (3, 11, 4, 5) and torch.equal(out[:, :6], x)


# -- EfficientNet ---------------------------------------------------------------------------------


def test_efficientnet_mbconv_blocks():
    from zoo_vision.families import MBConv, SqueezeExcite

    model = build("efficientnet", (1, 8, 8), widths=(8, 8, 16), blocks=2, expansion=3, se_ratio=0.25)
    blocks = of_type(model, MBConv)
    assert len(blocks) == 4
    assert [b.residual for b in blocks] == [True, True, False, True]  # 8->8, 8->8, 8->16 (and 8 -> 4 px), 16->16
    first, third = blocks[0], blocks[2]
    assert len(of_type(first, nn.Conv2d)) == 2 + 2  # no expansion in the first stage: depthwise, projection, SE
    expand, depthwise, *se, project = of_type(third, nn.Conv2d)
    assert (expand.kernel_size, expand.out_channels) == ((1, 1), 24)  # expansion 3 x 8 input channels
    assert depthwise.groups == depthwise.in_channels == 24 and depthwise.stride == (2, 2)
    assert [c.out_channels for c in se] == [2, 24]  # squeeze to 0.25 x the block's 8 input channels
    assert (project.kernel_size, project.out_channels) == ((1, 1), 16)
    assert isinstance(third.body[-1], nn.BatchNorm2d)  # the projection is linear
    assert of_type(third, nn.SiLU) and len(of_type(model, SqueezeExcite)) == 4
    no_se = build("efficientnet", (1, 8, 8), widths=(8, 8, 16), se_ratio=0.0)
    assert not of_type(no_se, SqueezeExcite)


def test_mbconv_residual_and_squeeze_excitation():
    from zoo_vision.families import MBConv, SqueezeExcite

    torch.manual_seed(0)
    x = torch.randn(4, 8, 6, 6)
    block = MBConv(8, 8, expansion=4).eval()
    with torch.no_grad():
        torch.testing.assert_close(block(x), block.body(x) + x)
        nn.init.zeros_(block.body[-1].weight)  # the projection's BN outputs its bias only
        nn.init.zeros_(block.body[-1].bias)
        torch.testing.assert_close(block(x), x)  # a silenced body leaves the identity path
    se = SqueezeExcite(8, 2).eval()
    with torch.no_grad():
        gate = se.gate(x)
        assert gate.shape == (4, 8, 1, 1) and ((gate > 0) & (gate < 1)).all()
        torch.testing.assert_close(se(x), x * gate)


def test_mbconv_stochastic_depth_skips_whole_samples_in_training_only():
    from zoo_vision.families import MBConv

    torch.manual_seed(0)
    x = torch.randn(64, 8, 4, 4)
    block = MBConv(8, 8, expansion=2, drop_path=0.5).train()
    with torch.no_grad():
        out, body = block(x), block.body(x)  # the same batch: the same batch statistics
    skipped = (out == x).flatten(1).all(1)
    assert 10 < int(skipped.sum()) < 54
    torch.testing.assert_close(out[~skipped], body[~skipped] / 0.5 + x[~skipped])
    block.eval()
    with torch.no_grad():
        torch.testing.assert_close(block(x), block.body(x) + x)
    assert MBConv(8, 16, drop_path=0.5).drop_path == 0.0  # no residual, nothing to skip to
    model = build("efficientnet", (1, 8, 8), widths=(8, 8, 16), blocks=2, drop_path=0.3)
    rates = [b.drop_path for b in of_type(model, MBConv)]
    assert rates == pytest.approx([0.0, 0.1, 0.0, 0.3])  # rising over the blocks; the third has no residual


# -- BatchNorm, state dict, gradients, dropout ----------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_batchnorm_uses_running_statistics_in_eval_mode(name):
    torch.manual_seed(0)
    model = build(name, (1, 8, 8), dropout=0.0)
    x = torch.randn(16, 1, 8, 8) * 3 + 1
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()
    with torch.no_grad():
        whole, part = model(x), model(x[:4])
    torch.testing.assert_close(part, whole[:4], rtol=1e-4, atol=1e-5)  # a sample's output ignores its batch


@pytest.mark.parametrize("name", FAMILIES)
def test_state_dict_reloads_bit_identically(name, tmp_path):
    torch.manual_seed(0)
    model = build(name, (3, 13, 17))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 13, 17) * 2 + 0.5)  # move any running statistics off their start
    save_weights(model, tmp_path / "m.safetensors")
    torch.manual_seed(1)
    fresh = build(name, (3, 13, 17))
    load_weights(fresh, tmp_path / "m.safetensors")
    model.eval()
    fresh.eval()
    x = torch.randn(5, 3, 13, 17)
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))


@pytest.mark.parametrize("name", FAMILIES)
def test_dropout_is_the_declared_one_and_off_in_eval(name):
    model = build(name, (1, 8, 8), dropout=0.3)
    assert {d.p for d in of_type(model, nn.Dropout)} == {0.3}
    model.eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


# -- a short training run ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_a_small_one_learns_digits_in_a_few_epochs(name, tmp_path):
    small = {"alexnet": {"widths": "16,32,32", "hidden": "64"}, "inception": {"widths": "16,32,32"},
             "densenet": {"growth": 8, "layers": "2,2"}, "efficientnet": {"widths": "16,16,32", "blocks": 1}}
    run = zoo.train(dataset="digits", model=name, loss="cross-entropy", params=small[name], epochs=3, lr=0.003,
                    batch_size=32, optimizer="adamw", quiet=True, threads=1, out=tmp_path / "run")
    assert run.metrics["test"]["accuracy"] > 0.8  # ten classes; chance is 0.1
