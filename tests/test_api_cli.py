"""The CLI is a shell over the Python API: ``zoo runs/list/info --json`` (a real subprocess) print exactly
what ``zoo.runs()``, ``zoo.list()`` and ``zoo.info()`` return; ``zoo train`` and ``zoo.train`` make the same
run; and ``Run.plot()`` returns Figures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import zoo
from helpers import run_zoo


def _cli_json(*args: str, cwd):
    proc = run_zoo(*args, "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _plain(value):
    """The API's value as the CLI prints it (a JSON round trip)."""
    return json.loads(json.dumps(value, default=str))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("api")
    root = base / "runs"
    run = zoo.train("moons-mlp", params={"n_samples": 300}, epochs=2, device="cpu", quiet=True, out=root / "moons")
    return base, root, run


@pytest.mark.parametrize("args", [
    (),
    ("models",),
    ("recipes", "moons*"),
    ("mlp",),  # a bare pattern
    ("models", None, "--task", "regression"),
    ("datasets", None, "--input", "image"),
    ("settings",),
])
def test_list_json_is_zoo_list(args, tmp_path):
    kind = args[0] if args else None
    pattern = args[1] if len(args) > 1 else None
    options = dict(zip(args[2::2], args[3::2]))
    task, input_kind = options.get("--task"), options.get("--input")
    cli = _cli_json("list", *[a for a in args if a is not None], cwd=tmp_path)
    api = zoo.list(kind, pattern, task=task, input=input_kind)
    if kind == "settings":
        assert cli == _plain(api) == _plain(zoo.info("train"))
        return
    assert api, "the case should list something"
    assert cli["items"] == _plain(api)


@pytest.mark.parametrize("name", ["mlp", "moons", "moons-mlp", "cross-entropy", "adam", "train"])
def test_info_json_is_zoo_info(name, tmp_path):
    assert _cli_json("info", name, cwd=tmp_path) == _plain(zoo.info(name))


def test_info_with_input_shape_agrees(tmp_path):
    cli = _cli_json("info", "mlp", "--input-shape", "2", "--outputs", "3", "--set", "hidden=8", cwd=tmp_path)
    api = zoo.info("mlp", input_shape=(2,), outputs=3, params={"hidden": "8"})
    assert cli == _plain(api)
    assert api[0]["size"]["parameters"] > 0


def test_runs_json_is_zoo_runs(trained, tmp_path, monkeypatch):
    base, root, run = trained
    rows = zoo.runs(root)
    assert [r["name"] for r in rows] == ["moons"] and rows[0]["status"] == "finished"
    assert _cli_json("runs", "--root", str(root), cwd=tmp_path) == _plain(rows)
    # the default root, runs/ in the current directory; none there yet is no rows, not an error
    monkeypatch.delenv("ZOO_RUNS_DIR", raising=False)
    monkeypatch.chdir(base)
    default = zoo.runs()
    assert [r["name"] for r in default] == ["moons"] and _cli_json("runs", cwd=base) == _plain(default)
    monkeypatch.chdir(tmp_path)
    assert _cli_json("runs", cwd=tmp_path) == _plain(zoo.runs()) == []
    with pytest.raises(zoo.ZooError):
        zoo.runs(tmp_path / "missing")


def test_errors_are_the_same(tmp_path):
    proc = run_zoo("info", "no-such-thing", "--json", cwd=tmp_path)
    assert proc.returncode != 0
    with pytest.raises(zoo.ZooError) as exc:
        zoo.info("no-such-thing")
    assert str(exc.value) in proc.stderr
    with pytest.raises(zoo.ZooError, match="unknown task"):
        zoo.list("models", task="flying")
    with pytest.raises(zoo.ZooError, match="only applies with --input-shape"):
        zoo.info("mlp", outputs=3)


def test_runs_list_info_do_not_import_torch(trained, tmp_path):
    _, root, _ = trained
    code = ("import sys, zoo; zoo.runs(sys.argv[1]); zoo.list('models'); zoo.info('mlp'); zoo.info('train'); "
            "print(','.join(m for m in ('torch', 'sklearn', 'numpy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_list_is_no_builtin_shadow():
    import builtins

    assert "list" not in zoo.__all__  # 'from zoo import *' keeps the builtin
    assert zoo.list is not builtins.list and callable(zoo.list)
    namespace: dict = {}
    exec("from zoo import *", namespace)
    assert "list" not in namespace and namespace["runs"] is zoo.runs and namespace["info"] is zoo.info


def test_help_zoo_names_every_api_function():
    doc = zoo.__doc__
    assert len(doc.splitlines()) <= 40
    for name in ("train", "resume", "evaluate", "predict", "load", "sample", "play", "tune", "export", "runs",
                 "list", "info", "Run", "RunModel", "Callback", "sklearn"):
        assert f"zoo.{name}" in doc, name


def test_run_plot_returns_the_figures_it_writes(trained):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    _, _, run = trained
    figures = run.plot()
    assert len(figures) == 2 and all(isinstance(f, Figure) for f in figures)
    assert (run.dir / "curves.png").is_file() and (run.dir / "decision.png").is_file()
    assert all(f.axes for f in figures)
    html = figures._repr_html_()  # a notebook shows the list as the pictures
    assert html.count("data:image/png;base64,") == 2
    assert run.model is not None  # still the trained module, an attribute


def test_zoo_train_and_the_train_function_make_the_same_run(tmp_path):
    """The command and the function resolve and train the same way: bit-identical weights, history and metrics."""
    import csv

    from safetensors.torch import load_file

    r = run_zoo("train", "moons-mlp", "--epochs", "2", "--set", "n_samples=400", "--out", str(tmp_path / "cli"),
                "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = zoo.train("moons-mlp", epochs=2, params={"n_samples": 400}, out=tmp_path / "api", quiet=True)
    a, b = load_file(str(tmp_path / "cli" / "model.safetensors")), load_file(str(run.dir / "model.safetensors"))
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)

    def rows(d):
        with open(d / "history.csv") as fh:
            return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(fh)]

    assert rows(tmp_path / "cli") == rows(run.dir)
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text()) == json.loads(
        (run.dir / "metrics.json").read_text())
