"""The residual MLP, and the input kinds and tasks the flattening models declare."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.registry import get_registry


def build(input_shape, out_features: int, **overrides) -> nn.Module:
    e = get_registry().get("model", "resmlp")
    return e.load()(tuple(input_shape), out_features, **e.spec.resolve_params(overrides))


def blocks(model):
    return list(model.blocks)


@pytest.mark.parametrize("input_shape", [(4,), (1, 8, 8), (12, 3)])
@pytest.mark.parametrize("out_features", [1, 3])
def test_output_shape_for_every_input_kind(input_shape, out_features):
    model = build(input_shape, out_features)
    out = model(torch.randn(5, *input_shape))
    assert out.shape == (5, out_features) and out.dtype == torch.float32


@pytest.mark.parametrize("norm, cls", [("layer", nn.LayerNorm), ("batch", nn.BatchNorm1d), ("none", nn.Identity)])
def test_structure_follows_the_params(norm, cls):
    model = build((7,), 2, width=24, blocks=3, activation="gelu", dropout=0.1, norm=norm)
    assert (model.input.in_features, model.input.out_features) == (7, 24)
    assert (model.head.in_features, model.head.out_features) == (24, 2)
    assert len(blocks(model)) == 3
    for b in blocks(model):
        assert (b.linear.in_features, b.linear.out_features) == (24, 24)
        assert type(b.norm) is cls and isinstance(b.act, nn.GELU)
        assert isinstance(b.drop, nn.Dropout) and b.drop.p == 0.1
    plain = build((7,), 2, dropout=0.0)
    assert not [m for m in plain.modules() if isinstance(m, nn.Dropout)]


def test_residual_path_carries_the_input_past_each_block():
    torch.manual_seed(0)
    model = build((6,), 2, width=16, blocks=2, norm="layer").eval()
    x = torch.randn(8, 6)
    h = model.input(x)
    b = blocks(model)[0]
    torch.testing.assert_close(b(h), h + b.act(b.norm(b.linear(h))))
    # with every branch silenced, the blocks are the identity and the net is head(input(x))
    with torch.no_grad():
        for blk in blocks(model):
            blk.linear.weight.zero_()
            blk.linear.bias.zero_()
    torch.testing.assert_close(model(x), model.head(model.input(x)))
    # ... and the gradient still reaches the input projection through the skip connections
    model(x).sum().backward()
    assert model.input.weight.grad.abs().sum() > 0


def test_no_blocks_is_two_linear_layers():
    model = build((5,), 3, blocks=0)
    assert len(blocks(model)) == 0
    x1, x2 = torch.randn(4, 5), torch.randn(4, 5)
    torch.testing.assert_close(model(x1 + x2) - model(x2), model(x1) - model(torch.zeros(4, 5)), atol=1e-5,
                               rtol=1e-5)


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
def test_every_parameter_gets_a_finite_gradient(norm):
    torch.manual_seed(0)
    model = build((1, 4, 4), 3, width=8, blocks=2, dropout=0.2, norm=norm).train()
    out = model(torch.randn(16, 1, 4, 4))
    nn.functional.cross_entropy(out, torch.randint(0, 3, (16,))).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_batch_norm_uses_running_statistics_in_eval():
    torch.manual_seed(0)
    model = build((4,), 1, norm="batch").train()
    model(torch.randn(32, 4) * 3 + 1)
    model.eval()
    x = torch.randn(6, 4)
    with torch.no_grad():
        # a sample's output does not depend on the rest of its batch
        torch.testing.assert_close(model(x)[:1], model(x[:1]), rtol=1e-5, atol=1e-6)
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(x)[:2], model(x[:2]))  # in training, batch statistics are used


def test_bad_values_are_refused():
    spec = get_registry().get("model", "resmlp").spec
    with pytest.raises(Exception, match="norm"):
        spec.resolve_params({"norm": "group"})
    with pytest.raises(ValueError, match="norm"):
        get_registry().get("model", "resmlp").load()((4,), 1, norm="group")
    with pytest.raises(ValueError, match="activation"):
        get_registry().get("model", "resmlp").load()((4,), 1, activation="swishy")


@pytest.mark.parametrize("name", ["linear", "mlp", "resmlp"])
def test_flattening_models_declare_every_input_kind_and_reconstruction(name):
    spec = get_registry().get("model", name).spec
    assert set(spec.inputs) == {"tabular", "image", "sequence"}
    assert set(spec.tasks) == {"regression", "binary", "multiclass", "reconstruction"}
    model = get_registry().get("model", name).load()((12, 3), 36, **spec.resolve_params())
    x = torch.randn(4, 12, 3)
    assert model(x).shape == (4, 36)  # reconstruction: one output per input value
