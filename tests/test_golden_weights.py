"""The engine's numbers do not move: every recipe's saved weights are bit-identical to those recorded
in ``tests/golden_weights.json`` (before the engine redesign), on the platform they were recorded on.

Bit-identity is only defined for one torch build on one CPU instruction set (kernels differ across
them), so elsewhere the test is skipped with that reason rather than compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).with_name("golden_weights.json")

SCRIPT = r"""
import hashlib, json, sys, tempfile
import zoo
from safetensors.torch import load_file

recipes, slow, epochs = json.loads(sys.argv[1]), set(json.loads(sys.argv[2])), int(sys.argv[3])

def digest(path):
    h = hashlib.sha256()
    for k, v in sorted(load_file(str(path)).items()):
        h.update(k.encode()); h.update(str(v.dtype).encode()); h.update(str(tuple(v.shape)).encode())
        h.update(v.contiguous().numpy().tobytes())
    return h.hexdigest()

out = {}
for name in recipes:
    kw = {"epochs": epochs} if name in slow else {}
    with tempfile.TemporaryDirectory() as d:
        run = zoo.train(name, seed=0, device="cpu", threads=1, quiet=True, out=f"{d}/r", **kw)
        out[name] = digest(run.dir / "model.safetensors")
print(json.dumps(out))
"""

SLOW = ["digits-cnn", "digits-resnet", "digits-mobilenet", "digits-vgg", "waveforms-lstm", "waveforms-gru",
        "waveforms-rnn", "waveforms-cnn1d", "waveform-forecast-gru"]


def test_every_recipe_trains_to_bit_identical_weights():
    import torch

    golden = json.loads(GOLDEN.read_text())
    here = {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if here != golden["platform"]:
        pytest.skip(f"the golden weights were recorded with {golden['platform']}; this is {here}, where kernels "
                    "differ, so bit-identity is not defined")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(sorted(golden["recipes"])), json.dumps(SLOW),
                          str(golden["slow_recipes_epochs"])], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    changed = sorted(name for name in golden["recipes"] if got.get(name) != golden["recipes"][name])
    assert not changed, f"recipes whose saved weights changed: {', '.join(changed)}"
