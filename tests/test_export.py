"""``zoo export`` and ``zoo.export``: real ONNX files run by onnxruntime and real ``torch.export`` programs, on
short runs trained in-process; the CLI through a subprocess."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import zoo
from helpers import run_zoo
from zoo import exporting
from zoo.errors import UsageError
from zoo.exporting import ExportError

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))
#: The ONNX tests need the export extra (pip install 'zoo[export]'); the torch.export ones run without it.
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxruntime and onnxscript (zoo[export])")
if HAS_ONNX:
    import onnx
    import onnxruntime as ort


def _train(out, *args, **kwargs):
    return zoo.train(*args, device="cpu", quiet=True, out=out, threads=1, **kwargs).dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    return {
        "moons": _train(base / "moons", "moons-mlp", params={"n_samples": 600}, epochs=2),
        "digits": _train(base / "digits", "digits-cnn", epochs=1),
        "lstm": _train(base / "lstm", "waveforms-lstm", params={"n_samples": 300}, epochs=1),
        "reg": _train(base / "reg", "regression-mlp", params={"n_samples": 300}, epochs=1),
    }


def _leftovers(directory, suffix):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(suffix) or p.name.endswith(".tmp"))


def _onnx_outputs(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


def _model_outputs(run_dir, x):
    with torch.no_grad():
        return zoo.load(run_dir)(x).numpy()


@needs_onnx
def test_onnx_takes_raw_inputs_with_a_dynamic_batch(runs):
    res = zoo.export(runs["moons"], "onnx")
    path = runs["moons"] / "model.onnx"
    assert res.path == path and path.is_file() and res.format == "onnx" and res.opset == exporting.DEFAULT_OPSET
    assert res.output.name == "logits" and res.output.columns == ["logit_0", "logit_1"]
    assert res.checked > 100 and res.max_abs_diff <= 1e-4
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["zoo.task"] == "binary" and json.loads(meta["zoo.columns"]) == ["logit_0", "logit_1"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits"]
    gen = torch.Generator().manual_seed(1)
    for n in (1, 7):  # the example batch was 3
        x = torch.randn(n, 2, generator=gen) * 1.5 + 0.5  # new raw inputs, in the data's units
        np.testing.assert_allclose(_onnx_outputs(path, x), _model_outputs(runs["moons"], x), rtol=1e-4, atol=1e-4)
    assert _leftovers(runs["moons"], ".tmp") == []


@needs_onnx
@pytest.mark.parametrize("key, shape", [("digits", (1, 8, 8)), ("lstm", (64, 1))])
def test_onnx_images_and_recurrent_networks(runs, tmp_path, key, shape):
    out = tmp_path / f"{key}.onnx"
    res = zoo.export(runs[key], "onnx", out)
    assert out.is_file() and res.max_abs_diff <= 1e-3
    gen = torch.Generator().manual_seed(2)
    for n in (1, 7):
        x = torch.rand(n, *shape, generator=gen) * (16.0 if key == "digits" else 2.0)
        got, expected = _onnx_outputs(out, x), _model_outputs(runs[key], x)
        assert got.shape == expected.shape == (n, 10 if key == "digits" else 4)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_pt2_loads_and_matches(runs, tmp_path):
    out = tmp_path / "digits.pt2"
    res = zoo.export(runs["digits"], "pt2", out)
    assert out.is_file() and res.opset is None and res.tolerance == exporting.DEFAULT_TOLERANCE["pt2"]
    module = torch.export.load(str(out)).module()
    gen = torch.Generator().manual_seed(3)
    for n in (1, 7):
        x = torch.rand(n, 1, 8, 8, generator=gen) * 16.0
        with torch.no_grad():
            np.testing.assert_allclose(module(x).numpy(), _model_outputs(runs["digits"], x), rtol=1e-6, atol=1e-6)


def test_regression_outputs_are_in_the_data_units(runs, tmp_path):
    res = zoo.export(runs["reg"], "pt2", tmp_path / "reg.pt2")
    assert res.output.name == "prediction" and res.output.columns == ["prediction"]
    module = torch.export.load(str(res.path)).module()
    x = torch.linspace(-5, 5, 7).reshape(7, 1)
    with torch.no_grad():
        got = module(x).numpy()
    expected = zoo.predict(runs["reg"], x.numpy()).values
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fmt, loader", [pytest.param("onnx", "onnxruntime", marks=needs_onnx),
                                         ("pt2", "torch.export.load")])
def test_a_corrupted_file_fails_the_check_and_is_not_kept(runs, tmp_path, monkeypatch, fmt, loader):
    def garbage(module, example, path, *args):
        path.write_bytes(b"not an exported model")

    monkeypatch.setattr(exporting, f"_export_{fmt}", garbage)
    out = tmp_path / f"bad.{fmt}"
    out.write_bytes(b"an earlier export")  # replaced only by a file that passed the check
    with pytest.raises(ExportError) as err:
        zoo.export(runs["moons"], fmt, out)
    text = str(err.value)
    assert "\n" not in text and f"cannot be loaded by {loader}" in text and "nothing was written" in text
    assert ".tmp" not in text  # the temporary file is never named: the file asked for is
    assert out.read_bytes() == b"an earlier export"
    assert _leftovers(tmp_path, ".tmp") == []


def test_data_dependent_control_flow_is_one_line(runs, tmp_path, monkeypatch):
    class Branchy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            out = self.inner(x)
            if out.sum() > 0:  # a branch on the values: no single graph
                return out
            return -out

    real = exporting._prediction_module
    monkeypatch.setattr(exporting, "_prediction_module", lambda model: Branchy(real(model)).eval())
    for fmt in ("pt2", "onnx") if HAS_ONNX else ("pt2",):
        out = tmp_path / f"branchy.{fmt}"
        with pytest.raises(ExportError) as err:
            zoo.export(runs["moons"], fmt, out)
        text = str(err.value)
        assert "\n" not in text and len(text) < 600, text
        assert "cannot be exported" in text and "data-dependent control flow" in text, text
        assert _leftovers(tmp_path, f".{fmt}") == []


def test_bad_arguments_and_missing_extra(runs, monkeypatch):
    with pytest.raises(UsageError, match="--opset 18 applies to --format onnx only"):
        zoo.export(runs["moons"], "pt2", opset=18)
    with pytest.raises(UsageError, match="tolerance"):
        zoo.export(runs["moons"], "onnx", tolerance=float("nan"))
    with pytest.raises(UsageError, match=r"written to a \.onnx file"):
        zoo.export(runs["moons"], "onnx", runs["moons"] / "m.pt2")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(UsageError, match=r"needs onnxruntime, which is not installed: pip install 'zoo\[export\]'"):
        zoo.export(runs["moons"], "onnx")


@needs_onnx
def test_cli_exports_and_a_failed_check_keeps_nothing(runs, tmp_path):
    ok = run_zoo("export", str(runs["digits"]), "--format", "pt2", "--out", "d.pt2", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "export check passed" in ok.stdout and (tmp_path / "d.pt2").is_file()
    assert "warning" not in ok.stderr.lower() and ok.stderr.strip() == ""
    # onnxruntime's kernels differ from torch's in the last bits: tolerance 0 (identical) cannot hold
    bad = run_zoo("export", str(runs["digits"]), "--format", "onnx", "--tolerance", "0", "--out", "d.onnx",
                  cwd=tmp_path)
    assert bad.returncode == 1, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: export check failed"), bad.stderr
    assert "test sample" in lines[0] and "output column 'logit_" in lines[0] and "differs" in lines[0]
    assert _leftovers(tmp_path, ".onnx") == []


def test_cli_usage_errors_are_one_line(runs, tmp_path):
    for args, text in [(("--format", "pt2", "--opset", "18"), "--opset 18 applies to --format onnx only"),
                       (("--format", "onnx", "--out", "x.txt"), "written to a .onnx file"),
                       (("--format", "tf"), "Invalid value for '--format'")]:
        res = run_zoo("export", str(runs["moons"]), *args, cwd=tmp_path, timeout=60)
        assert res.returncode == 2 and text in res.stderr, res.stderr
    missing = run_zoo("export", str(tmp_path / "nope"), "--format", "pt2", cwd=tmp_path, timeout=60)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr


def test_help_does_not_import_the_exporters():
    code = ("import sys\nfrom zoo.cli import main\n"
            "for args in (['--help'], ['export', '--help'], ['list', 'recipes']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'onnxscript', 'torch') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"
    assert "Export a run's model" in res.stdout and "--tolerance" in res.stdout  # the helps were printed
