"""``--track NAME`` from the command line and config files: an alias of ``--callback NAME`` (the run records
it the same way), ``--set track.KEY=VALUE`` for the enabled trackers' parameters, and the one-line error
when the tracking library is not installed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import run_zoo

# The real ``zoo`` command with a library made unimportable (as when it is not installed: a None entry in
# sys.modules makes every import of it fail).
WITHOUT = """
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
sys.argv = ["zoo", *sys.argv[2:]]
runpy.run_module("zoo", run_name="__main__")
"""


@pytest.mark.parametrize("tracker,modules,package", [
    ("tensorboard", "tensorboard,torch.utils.tensorboard", "tensorboard"),
    ("mlflow", "mlflow", "mlflow"),
])
def test_a_tracker_whose_library_is_missing_is_one_line_naming_the_extra(tmp_path, tracker, modules, package):
    out = subprocess.run([sys.executable, "-c", WITHOUT, modules, "train", "moons-mlp", "--epochs", "1",
                          "--device", "cpu", "--track", tracker, "--out", "r"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: tracking with ") and f"needs the {package} package" in lines[0]
    assert lines[0].endswith("pip install 'zoo[track]'")
    assert not (tmp_path / "r").exists()  # refused before any data was loaded or any file made


def _printed(tmp_path, *args):
    out = run_zoo("train", "moons-mlp", *args, "--print-config", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_track_is_recorded_as_the_callback_it_is_and_track_set_reaches_the_trackers(tmp_path):
    tracked = _printed(tmp_path, "--track", "tensorboard", "--track", "mlflow", "--set", "track.uri=http://h:5000",
                       "--set", "track.images=false")
    assert tracked["callbacks"] == [
        {"name": "tensorboard", "plugin": "track", "dir": "tensorboard", "images": False},
        {"name": "mlflow", "plugin": "track", "uri": "http://h:5000", "experiment": "", "artifacts": True},
    ]
    as_callbacks = _printed(tmp_path, "--callback", "tensorboard", "--callback", "mlflow",
                            "--set", "callback.mlflow.uri=http://h:5000", "--set", "callback.tensorboard.images=false")
    assert as_callbacks == tracked

    # a config file's track list (a name alone, or tables), overridden by --set track.KEY
    (tmp_path / "exp.toml").write_text('recipe = "moons-mlp"\n'
                                       'track = ["tensorboard", {name = "mlflow", uri = "http://h:5000"}]\n')
    out = run_zoo("train", "--config", "exp.toml", "--set", "track.uri=http://other:5000", "--print-config",
                  "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [c["name"] for c in doc["callbacks"]] == ["tensorboard", "mlflow"]
    assert doc["callbacks"][1]["uri"] == "http://other:5000"
    (tmp_path / "one.yaml").write_text("recipe: moons-mlp\ntrack: mlflow\n")
    out = run_zoo("train", "--config", "one.yaml", "--print-config", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0 and [c["name"] for c in json.loads(out.stdout)["callbacks"]] == ["mlflow"]


@pytest.mark.parametrize("args,message", [
    (["--set", "track.uri=x"], "--set track.uri=x: no tracker is enabled with --track; add --track NAME"),
    (["--track", "mlflow", "--set", "track.ur=x"], "no enabled tracker has a parameter 'ur'; did you mean 'uri'?"),
    (["--track", "tensorboard", "--set", "track.uri=x"], "(their parameters: tensorboard: dir, images)"),
    (["--track", "mlflow", "--set", "track.uri=x", "--set", "callback.mlflow.uri=y"], "is given twice"),
    (["--track", "tensorbord"], "unknown callback 'tensorbord'; did you mean 'tensorboard'?"),
    (["--track", "mlflow", "--callback", "mlflow"], "callback 'mlflow' is enabled twice"),
    (["--track", "mlflow", "--set", "track.artifacts=maybe"], "callback 'mlflow': artifacts='maybe' is not a valid"),
])
def test_track_mistakes_are_usage_errors_before_anything_runs(tmp_path, args, message):
    out = run_zoo("train", "moons-mlp", *args, "--print-config", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: ") and message in out.stderr and len(out.stderr.splitlines()) == 1


def test_a_resume_keeps_the_runs_own_trackers(tmp_path):
    out = run_zoo("train", "--resume", "somewhere", "--track", "mlflow", cwd=tmp_path)
    assert out.returncode == 2 and "not --track" in out.stderr


def test_zoo_info_and_list_show_the_trackers(tmp_path):
    listed = json.loads(run_zoo("list", "callbacks", "--json", cwd=tmp_path).stdout)
    assert {("mlflow", "track"), ("tensorboard", "track")} <= {(i["name"], i["plugin"]) for i in listed["items"]}
    info = run_zoo("info", "mlflow", cwd=tmp_path).stdout
    assert "uri" in info and "experiment" in info and "artifacts" in info
