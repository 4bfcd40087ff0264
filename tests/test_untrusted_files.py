"""Untrusted run directories and config files: no code runs, the cost is bounded, every problem is one line.

Real runs are trained in-process, their files edited by hand, and the real ``zoo`` command run on them
in a subprocess: each case must end with one ``error:`` line naming the file and what is wrong, a
non-zero exit, and no traceback (the subprocess runs with ``ZOO_DEBUG=1``, so an unexpected exception
would show its traceback and fail the test).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import zoo
from helpers import run_zoo
from zoo import checkpoint
from zoo.errors import CheckpointError, UsageError, ZooError
from zoo.spec import shown

SMALL = {"n_samples": 600}


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """A finished binary-classification run (mlp 2 -> 10 -> 1): input_mean, net.1.*, net.3.*, output_*."""
    return zoo.train("blobs-mlp", epochs=1, quiet=True, out=tmp_path_factory.mktemp("blobs") / "run")


@pytest.fixture(scope="module")
def sine(tmp_path_factory):
    """A finished regression run (mlp 1 -> 64 -> 64 -> 1)."""
    return zoo.train("regression-mlp", params=SMALL, epochs=1, quiet=True,
                     out=tmp_path_factory.mktemp("sine") / "run")


def copy_run(run, dest: Path) -> Path:
    """A copy of a run directory to edit (without its lock file, so it is not "in use" by this process)."""
    shutil.copytree(run.dir, dest, ignore=shutil.ignore_patterns("run.lock", "*.lock"))
    return dest


def edit_config(run_dir: Path, edit) -> None:
    path = run_dir / "config.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def one_error(out: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """Assert: exit ``code``, one ``error:`` line on stderr holding every fragment, no traceback."""
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert out.returncode == code, (out.returncode, out.stderr)
    return lines[0]


def save_state(run_dir: Path, edit, metadata: dict | None = None) -> None:
    """Rewrite ``model.safetensors`` (with plain safetensors, as anyone could) after ``edit(state)``."""
    path = run_dir / "model.safetensors"
    state = load_file(str(path))
    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata())
    edit(state)
    save_file(state, str(path), metadata=meta if metadata is None else {**meta, **metadata})


# -- 1. a run's config is checked on every read -----------------------------------------------------


@pytest.mark.parametrize("key, value, message", [
    ("lr", -1.0, "train.lr=-1.0 must be > 0"),
    ("batch_size", 0, "train.batch_size=0 must be >= 1"),
    ("epochs", "ten", "train.epochs='ten' is not a valid int"),
    ("threads", -5, "train.threads=-5 must be >= 0"),
])
def test_resume_refuses_a_bad_training_setting_in_config_json(blobs, tmp_path, key, value, message):
    run_dir = copy_run(blobs, tmp_path / "r")
    edit_config(run_dir, lambda d: d["train"].__setitem__(key, value))
    status = (run_dir / "run.json").read_text()
    out = run_zoo("train", "--resume", "r", "--epochs", "2", cwd=tmp_path)
    one_error(out, 2, f"{Path('r') / 'config.json'}: {message}")
    assert (run_dir / "run.json").read_text() == status  # nothing trained, nothing written


@pytest.mark.parametrize("key, value, message", [
    ("seed", 10**30, "train.seed=1000000000000000000000000000000 must be <= 4294967295"),
    ("warmup_epochs", 1e300, "train.warmup_epochs=1e+300 must be <= 1000000"),
    ("threads", 100000, "train.threads=100000 must be <= 1024"),
    ("workers", 100000, "train.workers=100000 must be <= 1024"),
    ("patience", 10**12, "train.patience=1000000000000 must be <= 1000000"),
])
def test_huge_settings_are_one_line_errors_on_every_read(blobs, tmp_path, key, value, message):
    run_dir = copy_run(blobs, tmp_path / "r")
    edit_config(run_dir, lambda d: d["train"].__setitem__(key, value))
    one_error(run_zoo("eval", "r", cwd=tmp_path), 2, f"{Path('r') / 'config.json'}: {message}")
    with pytest.raises(UsageError, match="must be <="):
        zoo.load(run_dir)


@pytest.mark.parametrize("edit, command, message", [
    (lambda d: d.__setitem__("model", 123), "eval",
     "'model' must be a name or a table with its name and parameters, not 123"),
    (lambda d: d["model"].__setitem__("name", 123), "eval", "[model] name must be a name, not 123"),
    (lambda d: d["meta"].pop("task"), "eval", "meta.task is missing"),
    (lambda d: d["meta"].__setitem__("task", "astrology"), "predict", "meta.task='astrology' must be one of"),
    (lambda d: d["meta"].__setitem__("input_shape", []), "eval", "meta.input_shape=[] must be a list of 1 to"),
    (lambda d: d["meta"].__setitem__("input_shape", [2, -1]), "eval", "meta.input_shape=-1 must be a whole number"),
    (lambda d: d["meta"].__setitem__("input_shape", [2**20, 2**20]), "eval", "values a sample, more than"),
    (lambda d: d["meta"].__setitem__("num_classes", 3), "eval", "a binary task has 2 classes"),
    (lambda d: d["meta"].__setitem__("class_names", ["a", "b", "c"]), "eval", "names 3 classes"),
    (lambda d: d["meta"].__setitem__("class_names", [["a"], "b"]), "eval", "must be a list of class names"),
    (lambda d: d.__setitem__("target", "matrix"), "eval", "target='matrix' must be one of index, binary, value"),
    (lambda d: d.__setitem__("target", "index"), "eval", "is not the layout loss 'bce-with-logits' trains on"),
    (lambda d: d.__setitem__("out_features", 7), "eval", "out_features=7 disagrees with meta"),
    (lambda d: d["model"].__setitem__("hidden", [0]), "eval", "model.hidden=[0] must be >= 1"),
    (lambda d: d["model"].__setitem__("hiddn", [3]), "eval", "model 'mlp' has no parameter 'hiddn'"),
    (lambda d: d["model"].__setitem__("name", "no-such-model"), "eval", "no-such-model"),
    (lambda d: d["train"].__setitem__("device", "tpu"), "eval", "train.device='tpu' must be"),
    (lambda d: d["train"].__setitem__("momentum", 0.5), "eval", "train.momentum=0.5 has no effect"),
])
def test_a_malformed_config_json_is_one_line_naming_the_file_and_key(blobs, tmp_path, edit, command, message):
    run_dir = copy_run(blobs, tmp_path / "r")
    edit_config(run_dir, edit)
    np.save(tmp_path / "x.npy", np.zeros((3, 2), np.float32))
    args = ("eval", "r") if command == "eval" else ("predict", "r", "--input", "x.npy")
    one_error(run_zoo(*args, cwd=tmp_path), 2, f"{Path('r') / 'config.json'}: ", message)


def test_a_config_json_that_is_not_utf8_or_not_json_is_one_line(blobs, tmp_path):
    run_dir = copy_run(blobs, tmp_path / "r")
    (run_dir / "config.json").write_bytes(b'{"model": "\xff\xfe"}')
    one_error(run_zoo("eval", "r", cwd=tmp_path), 2, "config.json is not UTF-8 text")
    (run_dir / "config.json").write_text("[" * 100000)
    one_error(run_zoo("eval", "r", cwd=tmp_path), 2, "config.json")


def test_an_intact_config_reads_back_unchanged(blobs):
    cfg = zoo.rundir.read_config(blobs.dir)
    for key in ("lr", "epochs", "batch_size", "seed", "model_params", "meta", "target", "out_features"):
        assert cfg[key] == blobs.config[key], key


# -- 2. resource bounds -------------------------------------------------------------------------------


def _limited(*argv: str, cwd: Path, limit: int) -> subprocess.CompletedProcess:
    """``python ARGV`` with at most ``limit`` bytes of address space: an allocation of gigabytes fails there."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env["ZOO_DEBUG"] = "1"
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=cap)


LOAD = "import sys, zoo\ntry:\n    zoo.load('r')\nexcept zoo.ZooError as exc:\n    sys.exit(f'error: {exc}')\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS bounds memory as meant on Linux only")
def test_a_huge_input_shape_is_refused_from_the_weights_header_before_anything_large_is_built(sine, tmp_path):
    # regression-mlp is 1 -> 64 -> 64 -> 1: with 20 million inputs its first layer alone is 5 GB
    limit = 1536 * 2**20
    np.savez(tmp_path / "t.npz", X=np.zeros((3, 1), np.float32), y=np.zeros(3, np.float32))
    control = _limited("-m", "zoo", "eval", str(sine.dir), "--input", "t.npz", cwd=tmp_path, limit=limit)
    if control.returncode != 0:
        pytest.skip(f"zoo does not start within {limit >> 20} MiB of address space here: {control.stderr[-200:]}")
    run_dir = copy_run(sine, tmp_path / "r")
    edit_config(run_dir, lambda d: d["meta"].__setitem__("input_shape", [20_000_000]))
    for argv in (("-m", "zoo", "eval", "r"), ("-m", "zoo", "eval", "r", "--input", "t.npz"), ("-c", LOAD)):
        out = _limited(*argv, cwd=tmp_path, limit=limit)
        one_error(out, 1, "do not fit the model", "input_mean (file (1,), model (20000000,))",
                  "net.1.weight (file (64, 1), model (64, 20000000))")


def test_a_file_header_is_compared_before_building_and_names_every_mismatch(sine, tmp_path):
    run_dir = copy_run(sine, tmp_path / "r")
    edit_config(run_dir, lambda d: d["model"].__setitem__("hidden", [64, 32]))
    with pytest.raises(CheckpointError) as err:
        zoo.load(run_dir)
    msg = str(err.value)
    assert msg.startswith(f"weights in {run_dir / 'model.safetensors'} do not fit the model: shape mismatch: ")
    assert "net.3.weight (file (64, 64), model (32, 64))" in msg and "net.5.weight (file (1, 64), model (1, 32))" in msg


YAML_BOMB = """\
recipe: blobs-mlp
a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
model_params:
  hidden: *i
"""


def test_yaml_anchors_and_aliases_are_refused_naming_the_file_and_line(tmp_path):
    (tmp_path / "bomb.yaml").write_text(YAML_BOMB)
    one_error(run_zoo("train", "--config", "bomb.yaml", "--print-config", cwd=tmp_path), 2,
              "config file bomb.yaml line 2: YAML anchors (&name) are not accepted")
    (tmp_path / "alias.yaml").write_text("recipe: blobs-mlp\ntrain:\n  lr: 0.1\nmodel_params:\n  hidden: *x\n")
    one_error(run_zoo("train", "--config", "alias.yaml", "--print-config", cwd=tmp_path), 2,
              "config file alias.yaml line 5: YAML aliases (*name) are not accepted")
    (tmp_path / "plain.yaml").write_text("recipe: blobs-mlp\nmodel:\n  hidden: [8, 8]\n")
    out = run_zoo("train", "--config", "plain.yaml", "--print-config", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout)["model"]["hidden"] == [8, 8]


def test_a_huge_value_is_quoted_short_in_an_error(blobs, tmp_path):
    run_dir = copy_run(blobs, tmp_path / "r")
    edit_config(run_dir, lambda d: d["model"].__setitem__("hidden", [[1] * 1_000_000]))
    line = one_error(run_zoo("eval", "r", cwd=tmp_path), 2, "model.hidden=[[1, 1, 1,", "...", "is not a valid int-list")
    assert len(line) < 300
    with pytest.raises(UsageError) as err:
        zoo.evaluate(run_dir)
    assert len(str(err.value)) < 300
    edit_config(run_dir, lambda d: d["model"].__setitem__("hidden", "x" * 10_000_000))
    assert len(one_error(run_zoo("eval", "r", cwd=tmp_path), 2, "model.hidden='xxx")) < 300
    (tmp_path / "big.json").write_text(json.dumps({"recipe": "blobs-mlp", "train": {"seed": 10**1000}}))
    one_error(run_zoo("train", "--config", "big.json", "--print-config", cwd=tmp_path), 2,
              "seed=<an integer of 1001 digits> must be <= 4294967295")


def test_shown_bounds_the_length_and_the_cost_of_a_quoted_value():
    assert shown([64, 64]) == "[64, 64]" and shown("relu") == "'relu'" and shown(0.5) == "0.5"
    nested = [[list(range(1000))] * 1000] * 1000  # a billion items if printed whole
    assert len(shown(nested)) <= 80 and shown(nested).endswith("...")
    assert len(shown("x" * 10**8)) <= 80
    assert shown(10**5000) == "<an integer of over 3600 digits>"


def _npy_claiming(path: Path, rows: int) -> None:
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, 2), }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 64)


def test_an_npy_header_claiming_1e13_rows_is_one_line(blobs, tmp_path):
    _npy_claiming(tmp_path / "big.npy", 10**13)
    one_error(run_zoo("predict", str(blobs.dir), "--input", "big.npy", cwd=tmp_path), 2,
              "big.npy: its header claims shape (10000000000000, 2) of float32 (80000000000000 bytes) but the file "
              "holds 64 bytes of data")
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as zf:
        zf.writestr("X.npy", (tmp_path / "big.npy").read_bytes())
        zf.writestr("y.npy", b"")
    one_error(run_zoo("eval", str(blobs.dir), "--input", "big.npz", cwd=tmp_path), 2,
              "big.npz: array 'X': its header claims shape (10000000000000, 2)")
    raw = bytearray((tmp_path / "big.npz").read_bytes())  # the archive's directory lies about the sizes too
    for at in (i for i in range(len(raw)) if raw.startswith(b"PK\x01\x02", i)):
        struct.pack_into("<I", raw, at + 24, 0xFFFFFFF0)
    (tmp_path / "lying.npz").write_bytes(bytes(raw))
    one_error(run_zoo("eval", str(blobs.dir), "--input", "lying.npz", cwd=tmp_path), 2, "lying.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    one_error(run_zoo("predict", str(blobs.dir), "--input", "objects.npy", cwd=tmp_path), 2,
              "holds Python objects (a pickled array), which zoo never loads")
    np.save(tmp_path / "ok.npy", np.zeros((4, 2), np.float32))
    assert len(zoo.predict(blobs.dir, tmp_path / "ok.npy")) == 4


# -- 3. non-finite weights and outputs, malformed aliases, unreadable files ------------------------


def test_nan_or_inf_weights_are_refused_naming_the_tensor(blobs, tmp_path):
    run_dir = copy_run(blobs, tmp_path / "r")
    save_state(run_dir, lambda s: s["net.3.weight"].__setitem__((0, 0), float("nan")))
    np.save(tmp_path / "x.npy", np.zeros((3, 2), np.float32))
    weights = Path("r") / "model.safetensors"
    one_error(run_zoo("eval", "r", cwd=tmp_path), 1, f"{weights}: net.3.weight holds NaN")
    out = run_zoo("predict", "r", "--input", "x.npy", "--output", "p.csv", cwd=tmp_path)
    one_error(out, 1, f"{weights}: net.3.weight holds NaN")
    assert not (tmp_path / "p.csv").exists() and out.stdout == ""
    save_state(run_dir, lambda s: s["input_std"].fill_(float("inf")))
    with pytest.raises(CheckpointError, match="input_std holds an infinite value"):
        zoo.load(run_dir)


def test_a_non_finite_model_output_is_refused_naming_the_run(blobs, tmp_path):
    run_dir = copy_run(blobs, tmp_path / "r")
    save_state(run_dir, lambda s: s["net.3.weight"].fill_(3e38))  # finite weights whose outputs overflow
    np.save(tmp_path / "x.npy", np.ones((3, 2), np.float32))
    one_error(run_zoo("predict", "r", "--input", "x.npy", cwd=tmp_path), 1,
              "model 'mlp' of r returned NaN or infinity for sample 0")
    one_error(run_zoo("eval", "r", cwd=tmp_path), 1, "model 'mlp' of r returned NaN or infinity")
    with pytest.raises(ZooError, match="returned NaN or infinity"):
        zoo.predict(run_dir, np.ones((2, 2), np.float32))


def test_a_tensor_the_model_itself_holds_non_finite_may_hold_it_in_the_file(tmp_path):
    class Masked(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.register_buffer("mask", torch.full((2, 2), float("-inf")).triu(1))

    path = tmp_path / "w.safetensors"
    checkpoint.save_weights(Masked(), path)
    checkpoint.load_weights(Masked(), path)
    bad = Masked()
    bad.lin.weight.data[0, 0] = float("inf")
    checkpoint.save_weights(bad, path)
    with pytest.raises(CheckpointError, match="lin.weight holds an infinite value"):
        checkpoint.load_weights(Masked(), path)


@pytest.mark.parametrize("aliases, message", [
    ("{not json", "its 'zoo.aliases' metadata is not valid JSON"),
    ("[1, 2]", "its 'zoo.aliases' metadata must map tensor names to tensor names, not [1, 2]"),
    ('{"net.3.bias": 5}', "must map tensor names to tensor names"),
    ('{"net.9.weight": "nowhere"}', "names tensors the file does not hold: net.9.weight -> nowhere"),
    ('{"net.3.bias": "net.1.bias"}', "gives a second tensor names the file already holds: net.3.bias"),
])
def test_malformed_alias_metadata_is_a_checkpoint_error(blobs, tmp_path, aliases, message):
    run_dir = copy_run(blobs, tmp_path / "r")
    save_state(run_dir, lambda s: None, {checkpoint.ALIASES_KEY: aliases})
    with pytest.raises(CheckpointError, match="zoo.aliases"):
        checkpoint.read_weights(run_dir / "model.safetensors")
    one_error(run_zoo("eval", "r", cwd=tmp_path), 1, message)


@pytest.mark.parametrize("damage", ["huge claim", "bad dtype", "bad json", "overlap"])
def test_any_header_problem_is_one_checkpoint_error(tmp_path, damage):
    entries = {
        "huge claim": {"w": {"dtype": "F32", "shape": [10**13, 2], "data_offsets": [0, 8 * 10**13]}},
        "bad dtype": {"w": {"dtype": "X99", "shape": [2], "data_offsets": [0, 8]}},
        "bad json": None,
        "overlap": {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "v": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
    }[damage]
    header = b"{not json" if entries is None else json.dumps(entries).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    for read in (checkpoint.read_weights, checkpoint.read_header, checkpoint.read_metadata):
        with pytest.raises(CheckpointError, match="is not a readable safetensors file") as err:
            read(path)
        assert "\n" not in str(err.value) and len(str(err.value)) < 400


# -- 4. dtypes: only lossless casts -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.complex64, torch.float64])
def test_weights_of_another_dtype_are_refused_naming_tensor_and_dtypes(blobs, tmp_path, dtype):
    run_dir = copy_run(blobs, tmp_path / "r")
    save_state(run_dir, lambda s: s.__setitem__("net.1.weight", s["net.1.weight"].to(dtype)))
    name = str(dtype).removeprefix("torch.")
    one_error(run_zoo("eval", "r", cwd=tmp_path), 1, "do not fit the model: dtype mismatch: "
              f"net.1.weight (file {name}, model float32)")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_load_exactly_into_a_float32_model(blobs, tmp_path, dtype):
    run_dir = copy_run(blobs, tmp_path / "r")
    save_state(run_dir, lambda s: s.update({k: v.to(dtype) for k, v in s.items() if v.is_floating_point()}))
    loaded = zoo.load(run_dir)
    rounded = {k: v.to(dtype).float() for k, v in blobs.model.state_dict().items()}
    for k, v in loaded.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, rounded[k]), k
    reference = zoo.load(blobs.dir)
    reference.load_state_dict(rounded)
    X = torch.randn(20, 2)
    assert torch.equal(loaded(X), reference(X))
    assert run_zoo("eval", "r", cwd=tmp_path).returncode == 0


def test_integer_buffers_must_match_exactly():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["1.num_batches_tracked"] = state["1.num_batches_tracked"].to(torch.int32)
    assert checkpoint.mismatch(model, state) == ["dtype mismatch: 1.num_batches_tracked (file int32, model int64)"]
    assert checkpoint.lossless_cast(torch.float16, torch.float32) and checkpoint.lossless_cast(torch.float32,
                                                                                             torch.float64)
    assert not checkpoint.lossless_cast(torch.float16, torch.bfloat16)
    assert not checkpoint.lossless_cast(torch.bfloat16, torch.float16)
    assert not checkpoint.lossless_cast(torch.int32, torch.int64) and not checkpoint.lossless_cast(torch.bool,
                                                                                                   torch.float32)


def test_zoo_0_1_weights_are_checked_against_the_header_too(sine, tmp_path):
    run_dir = copy_run(sine, tmp_path / "r")
    m = sine.model
    old = {**{f"net.{k}": v for k, v in m.net.state_dict().items()}, "mean": m.output_mean, "std": m.output_std}
    old["net.1.weight"] = torch.zeros(3, 1)
    checkpoint.save_weights(old, run_dir / "model.safetensors", {"format": "zoo-weights/1"})
    with pytest.raises(CheckpointError, match=r"\(zoo 0.1 format\) do not fit the model: shape mismatch: "
                                              r"net.1.weight \(file \(3, 1\), model \(64, 1\)\)"):
        zoo.load(run_dir)
    old["net.1.weight"] = m.net.state_dict()["1.weight"].clone()
    old["net.1.bias"] = torch.full((64,), float("nan"))
    checkpoint.save_weights(old, run_dir / "model.safetensors", {"format": "zoo-weights/1"})
    with pytest.raises(CheckpointError, match="net.1.bias holds NaN"):
        zoo.load(run_dir)
