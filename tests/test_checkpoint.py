"""Weights on disk: safetensors only, strict loading, readable mismatches, the reload check."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from torch import nn

import zoo
from zoo import checkpoint
from zoo.errors import CheckpointError
from zoo.files import atomic_path


class Tied(nn.Module):
    """An encoder/decoder whose decoder reuses the encoder's weight (a tied parameter)."""

    def __init__(self, d: int = 4, h: int = 3) -> None:
        super().__init__()
        self.enc = nn.Linear(d, h, bias=False)
        self.dec = nn.Linear(h, d, bias=False)
        self.dec.weight = self.enc.weight  # same Parameter object; used transposed below

    def forward(self, x):
        return self.enc(x) @ self.dec.weight


def test_round_trip_is_bit_identical_and_carries_metadata(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2))
    model(torch.randn(8, 3))  # updates BatchNorm running stats (buffers)
    model.eval()
    path = tmp_path / "w.safetensors"
    checkpoint.save_weights(model, path, {"model": "x"})
    fresh = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2)).eval()
    meta = checkpoint.load_weights(fresh, path)
    assert meta["model"] == "x"
    x = torch.randn(10, 3)
    assert torch.equal(model(x), fresh(x))
    for k, v in model.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k


def test_file_is_safetensors_not_pickle(tmp_path):
    path = tmp_path / "w.safetensors"
    checkpoint.save_weights(nn.Linear(2, 2), path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert set(header) >= {"weight", "bias"}
    assert not raw.startswith(b"\x80") and b"PK" not in raw[:4]  # neither a pickle nor a torch zip


def test_tied_parameters_save_once_and_load_back(tmp_path):
    torch.manual_seed(1)
    model = Tied()
    path = tmp_path / "tied.safetensors"
    checkpoint.save_weights(model, path)
    state, meta = checkpoint.read_weights(path)
    assert json.loads(meta[checkpoint.ALIASES_KEY]) == {"dec.weight": "enc.weight"}
    fresh = Tied()
    checkpoint.load_weights(fresh, path)
    assert fresh.dec.weight is fresh.enc.weight  # still tied after loading
    x = torch.randn(2, 4)
    assert torch.equal(model(x), fresh(x))


def test_mismatched_weights_fail_naming_keys_and_shapes(tmp_path):
    path = tmp_path / "w.safetensors"
    checkpoint.save_weights(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)), path)
    other = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1), nn.Linear(1, 1))
    with pytest.raises(CheckpointError) as err:
        checkpoint.load_weights(other, path)
    msg = str(err.value)
    assert "missing: 3.weight, 3.bias" in msg
    assert "0.weight (file (8, 2), model (16, 2))" in msg and "2.weight (file (1, 8), model (1, 16))" in msg
    assert "\n" not in msg
    fewer = nn.Sequential(nn.Linear(2, 8))
    with pytest.raises(CheckpointError, match=r"unexpected: 2.bias, 2.weight"):
        checkpoint.load_weights(fewer, path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupted_file_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "w.safetensors"
    checkpoint.save_weights(nn.Linear(4, 4), path)
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) - 10], "garbage": b"not a tensor file at all", "empty": b""}[damage])
    with pytest.raises(CheckpointError, match="is not a readable safetensors file"):
        checkpoint.load_weights(nn.Linear(4, 4), path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load_weights(nn.Linear(1, 1), tmp_path / "nope.safetensors")


def test_an_interrupted_write_leaves_no_file_under_the_final_name(tmp_path):
    path = tmp_path / "config.json"
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text('{"half": ')
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_a_run_reloads_to_identical_predictions(tmp_path):
    run = zoo.train("blobs-mlp", epochs=2, quiet=True, out=tmp_path / "run")
    loaded = zoo.load(run.dir)
    X = torch.randn(50, 2)
    run.model.eval()
    assert torch.equal(loaded(X), run.model(X))
    meta = checkpoint.read_metadata(run.dir / "model.safetensors")
    assert meta["model"] == "mlp" and meta["dataset"] == "blobs" and meta["zoo_version"] == zoo.__version__


def test_reload_check_fails_loudly_when_the_file_predicts_differently(tmp_path):
    from zoo.config import entries_for
    from zoo.saved import reload_check

    run = zoo.train("blobs-mlp", epochs=1, quiet=True, out=tmp_path / "run")
    state = {k: v.clone() for k, v in run.model.state_dict().items()}
    state[next(iter(state))].add_(1e-3)  # same keys and shapes, different numbers
    checkpoint.save_weights(state, run.dir / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"reload check failed: .* predicts differently"):
        reload_check(run.model, run.dir, entries_for(run.config), run.config, torch.randn(16, 2))


def test_eval_reports_a_mismatched_weights_file(tmp_path):
    from helpers import run_zoo

    run = zoo.train("blobs-mlp", epochs=1, quiet=True, out=tmp_path / "run")
    state = dict(run.model.state_dict())
    del state["net.3.bias"]
    state["net.1.weight"] = torch.zeros(7, 2)
    state["net.9.weight"] = torch.zeros(1)
    checkpoint.save_weights(state, run.dir / "model.safetensors")
    out = run_zoo("eval", str(run.dir), cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1
    assert "do not fit the model" in out.stderr and "missing: net.3.bias" in out.stderr
    assert "unexpected: net.9.weight" in out.stderr
    assert "shape mismatch: net.1.weight (file (7, 2), model (10, 2))" in out.stderr
