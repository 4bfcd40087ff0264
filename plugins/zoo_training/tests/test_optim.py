"""The flat-buffer fused Adam gives exactly torch's fused Adam/AdamW weights."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from zoo_training.optim import FlatFusedAdam


@pytest.mark.parametrize("decoupled, cls", [(False, torch.optim.Adam), (True, torch.optim.AdamW)])
def test_bit_identical_to_torch_fused(decoupled, cls):
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2))
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    oa = cls(a.parameters(), lr=0.01, weight_decay=0.01, fused=True)
    ob = FlatFusedAdam(b.parameters(), lr=0.01, weight_decay=0.01, decoupled=decoupled)
    X, y = torch.randn(64, 3), torch.randn(64, 2)
    for i in range(40):
        for m, o in ((a, oa), (b, ob)):
            sl = slice(i % 8 * 8, (i % 8 + 1) * 8)
            loss = nn.functional.mse_loss(m(X[sl]), y[sl])
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()
        if i == 20:  # a schedule changing the learning rate between steps
            oa.param_groups[0]["lr"] = ob.param_groups[0]["lr"] = 0.003
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_state_round_trips_and_gradients_land_in_the_flat_buffer():
    m = nn.Linear(4, 2)
    opt = FlatFusedAdam(m.parameters(), lr=0.1)
    m(torch.randn(5, 4)).sum().backward()
    assert opt.grad.abs().sum() > 0 and m.weight.grad.data_ptr() == opt.grad.data_ptr()
    opt.step()
    state = opt.state_dict()
    other = FlatFusedAdam(nn.Linear(4, 2).parameters(), lr=0.5)
    other.load_state_dict(state)
    assert torch.equal(other.exp_avg, opt.exp_avg) and other.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="shape"):
        FlatFusedAdam(nn.Linear(5, 2).parameters()).load_state_dict(state)


@pytest.mark.parametrize("decoupled, cls", [(False, torch.optim.Adam), (True, torch.optim.AdamW)])
def test_a_checkpoint_moves_between_the_flat_and_torchs_fused_adam(decoupled, cls):
    """A run resumed on several processes steps torch's fused Adam; on one, the flat one: either continues the
    other's state exactly."""
    torch.manual_seed(0)
    X, y = torch.randn(64, 3), torch.randn(64, 2)

    def steps(m, o, n):
        for i in range(n):
            sl = slice(i % 8 * 8, (i % 8 + 1) * 8)
            o.zero_grad(set_to_none=True)
            nn.functional.mse_loss(m(X[sl]), y[sl]).backward()
            o.step()

    base = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2))
    flat_model, torch_model = copy.deepcopy(base), copy.deepcopy(base)
    flat = FlatFusedAdam(flat_model.parameters(), lr=0.01, weight_decay=0.01, decoupled=decoupled)
    theirs = cls(torch_model.parameters(), lr=0.01, weight_decay=0.01, fused=True)
    steps(flat_model, flat, 10)
    steps(torch_model, theirs, 10)
    # swap the states: each optimizer continues the other's run
    a, b = copy.deepcopy(torch_model), copy.deepcopy(flat_model)
    oa = FlatFusedAdam(a.parameters(), lr=0.5, weight_decay=0.01, decoupled=decoupled)
    oa.load_state_dict(theirs.state_dict())
    ob = cls(b.parameters(), lr=0.5, weight_decay=0.01, fused=True)
    ob.load_state_dict(flat.state_dict())
    assert ob.param_groups[0]["fused"] and ob.param_groups[0]["lr"] == 0.01
    for m, o in ((a, oa), (b, ob), (torch_model, theirs), (flat_model, flat)):
        steps(m, o, 10)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), torch_model.parameters()))
    assert all(torch.equal(p, q) for p, q in zip(b.parameters(), flat_model.parameters()))
