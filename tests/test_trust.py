"""What users and plugin authors met in their first hour, each pinned by a test.

Each test names the defect it guards against; they use real runs, real safetensors files,
real installed plugin distributions and the real ``zoo`` command in a subprocess.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import tomllib

import numpy as np
import pytest
import torch
import yaml

import zoo
from helpers import install_plugin, run_zoo, site_env
from zoo.errors import UsageError, ZooError

SMALL = {"n_samples": 600}


def _csv(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    return zoo.train("moons-mlp", params=SMALL, epochs=3, quiet=True, out=tmp_path_factory.mktemp("m") / "run")


# -- 1. the loaded model takes raw inputs; zoo.predict equals zoo predict ----------------------------


def test_loaded_model_python_predict_and_cli_predict_agree_on_raw_inputs(moons_run, tmp_path):
    run = moons_run
    raw = np.array([[0.5, 0.2], [1.0, -0.5], [-1.0, 1.0], [2.0, 0.4]], dtype=np.float32)
    np.save(tmp_path / "x.npy", raw)
    cli = run_zoo("predict", str(run.dir), "--input", str(tmp_path / "x.npy"), "--device", "cpu", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    api = zoo.predict(run.dir, raw)
    assert api.to_csv() == cli.stdout  # the same text, byte for byte
    assert zoo.predict(run.dir, tmp_path / "x.npy").to_csv() == cli.stdout
    assert zoo.predict(run.dir, torch.from_numpy(raw)).to_csv() == cli.stdout
    model = zoo.load(run.dir)
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(raw)), dim=1).numpy()
    header, rows = _csv(cli.stdout)
    assert header == ["label", "prob_0", "prob_1"]
    np.testing.assert_array_equal(np.array([[np.float32(v) for v in r[1:]] for r in rows]), probs.astype(np.float32))
    assert api.labels == [r[0] for r in rows] and model.classes == ["0", "1"]
    # the preprocessing really is inside the loaded model: the bare network on raw inputs disagrees
    with torch.no_grad():
        bare = torch.softmax(model.net(torch.from_numpy(raw)), dim=1).numpy()
    assert not np.allclose(bare, probs, atol=1e-3)
    assert run.model(torch.from_numpy(raw)).shape == (4, 2)  # the trained Run's model takes raw inputs too


def test_a_regression_model_loads_with_its_input_and_target_scales(tmp_path):
    run = zoo.train("regression-mlp", params=SMALL, epochs=3, quiet=True, out=tmp_path / "r")
    x = np.linspace(0.0, 20.0, 7, dtype=np.float32).reshape(-1, 1)
    with torch.no_grad():
        loaded = zoo.load(run.dir)(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(zoo.predict(run.dir, x).values, loaded)
    assert 0.0 < float(np.abs(loaded).mean()) < 30.0  # in the data's units (y runs from 0 to about 22)
    assert set(zoo.load(run.dir).state_dict()) >= {"input_mean", "input_std", "output_mean", "output_std"}


# -- 2. the loss is computed on standardised targets ------------------------------------------------


@pytest.mark.parametrize("recipe", ["regression-mlp", "diabetes-mlp"])
def test_sgd_trains_the_regression_recipes_at_their_own_learning_rate(recipe, tmp_path):
    run = zoo.train(recipe, optimizer="sgd", epochs=30, quiet=True, out=tmp_path / "r")
    losses = [row["train_loss"] for row in run.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    # the loss is on standardised targets, the metrics in the data's units
    std = float(run.model.output_std[0])
    assert std > 5
    assert run.history[-1]["val_mse"] == pytest.approx(run.history[-1]["val_loss"] * std**2, rel=1e-4)
    assert run.metrics["test"]["r2"] > 0.2  # learned: far better than predicting the mean


# -- 3. a model with the wrong output width --------------------------------------------------------

WIDE = '''
from zoo import ModelSpec, hookimpl

@hookimpl
def zoo_models():
    return [ModelSpec(name="off-by-one", summary="One output too many.", tasks=("regression", "multiclass"),
                      inputs=("tabular", "image"), impl="offbyone_impl:net"),
            ModelSpec(name="flat-only", summary="Breaks on images.", tasks=("multiclass",),
                      inputs=("tabular", "image"), impl="offbyone_impl:flat_only")]
'''
WIDE_IMPL = '''
import math
from torch import nn

def net(input_shape, out_features):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), out_features + 1))

def flat_only(input_shape, out_features):
    return nn.Linear(input_shape[0], out_features)  # takes the first dimension for the features
'''


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory):
    site = install_plugin(tmp_path_factory.mktemp("site"), "zoo-offbyone",
                          {"offbyone": WIDE, "offbyone_impl": WIDE_IMPL}, {"offbyone": "offbyone"})
    return site_env(site)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "iris", "--model", "off-by-one", "--loss", "cross-entropy"],
     "model 'off-by-one' from plugin 'offbyone' returned output of shape (8, 4) for a batch of 8 samples of shape "
     "(4,); the multiclass task with loss 'cross-entropy' needs (8, 3): one logit per class (3: 3 classes)"),
    (["--dataset", "sine", "--model", "off-by-one", "--loss", "mse"],
     "returned output of shape (8, 2) for a batch of 8 samples of shape (1,); the regression task with loss 'mse' "
     "needs (8, 1): 1 value per sample"),
    (["--dataset", "digits", "--model", "flat-only", "--loss", "cross-entropy"],
     "model 'flat-only' from plugin 'offbyone' failed on a batch of shape (8, 1, 8, 8) from dataset 'digits': "
     "RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
])
def test_a_model_with_the_wrong_output_is_refused_before_training(bad_models, tmp_path, args, message):
    out = run_zoo("train", *args, "--epochs", "1", "--out", "r", cwd=tmp_path, env=bad_models)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr
    assert not (tmp_path / "r").exists()  # refused before any file was made


# -- 4. labels: one documented mapping, checked once -------------------------------------------------

LABELS = '''
from zoo import DatasetSpec, hookimpl

@hookimpl
def zoo_datasets():
    return [DatasetSpec(name="gappy", summary="Labels 0, 1, 2 and 7.", tasks=("multiclass",), impl="labels_impl:gappy"),
            DatasetSpec(name="out-of-range", summary="A label beyond its classes.", tasks=("multiclass",),
                        impl="labels_impl:out_of_range")]
'''
LABELS_IMPL = '''
import numpy as np
import torch
from zoo.data import DataMeta, Splits, split_arrays

def _xy():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2, 7], 30)
    return rng.normal(size=(120, 2)) + y[:, None], y

def gappy(*, seed):
    X, y = _xy()
    return split_arrays(X, y, task="multiclass", seed=seed)

def out_of_range(*, seed):
    s = split_arrays(*_xy(), task="multiclass", seed=seed)
    X, y = s.train
    y = y.clone()
    y[5] = 5  # a dataset that builds its own Splits and gets a label wrong
    return Splits((X, y), s.val, s.test, DataMeta("multiclass", (2,), num_classes=4), s.preprocess)
'''


def test_labels_keep_their_names_and_a_bad_label_names_the_dataset(tmp_path):
    from zoo.data import class_indices

    site = install_plugin(tmp_path / "site", "zoo-labels", {"labels": LABELS, "labels_impl": LABELS_IMPL},
                          {"labels": "labels"})
    env = site_env(site)
    out = run_zoo("train", "--dataset", "gappy", "--model", "mlp", "--epochs", "2", "--out", "r", "-q", cwd=tmp_path,
                  env=env)
    assert out.returncode == 0, out.stderr
    np.save(tmp_path / "x.npy", np.array([[7.0, 7.0], [0.0, 0.0]], dtype=np.float32))
    pred = run_zoo("predict", "r", "--input", "x.npy", cwd=tmp_path, env=env)
    header, rows = _csv(pred.stdout)
    assert header == ["label", "prob_0", "prob_1", "prob_2", "prob_7"]
    assert [r[0] for r in rows] == ["7", "0"]  # the original label, never the index 3
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["meta"]["class_names"] == ["0", "1", "2", "7"]

    bad = run_zoo("train", "--dataset", "out-of-range", "--model", "mlp", "--out", "b", cwd=tmp_path, env=env)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and not (tmp_path / "b").exists()
    assert ("dataset 'out-of-range' from plugin 'labels' (zoo-labels 1.0): its train split holds class index 5, "
            "outside the 4 classes of its metadata (0..3)") in bad.stderr

    y, names = class_indices(["b", "a", "b"])
    assert y.tolist() == [1, 0, 1] and names == ("a", "b")
    y, names = class_indices([0, 2], class_names=("x", "y", "z"))  # indices; absent class 1 keeps its place
    assert y.tolist() == [0, 2] and names == ("x", "y", "z")
    with pytest.raises(ValueError, match="label 3 is not a class index: with 3 class names, labels must be 0..2"):
        class_indices([0, 3], class_names=("x", "y", "z"))


# -- 5. pictures of lazily read datasets; a picture never fails a finished run -----------------------


def test_plot_draws_an_image_folder_run_and_a_failed_picture_is_a_warning(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from zoo import plots
    from zoo.cli import main
    from zoo_vision.imagefolder import example

    params = example(tmp_path / "images")
    run = zoo.train(dataset="image-folder", model="cnn", params={"path": params["path"], "size": 8}, epochs=1,
                    quiet=True, out=tmp_path / "run")
    out = run_zoo("plot", str(run.dir), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(os.path.basename(p) for p in out.stdout.split()) == ["confusion.png", "curves.png"]

    def broken(*args):
        raise RuntimeError("the figure broke")

    monkeypatch.setattr(plots, "plot_confusion", broken)
    res = CliRunner().invoke(main, ["train", "--dataset", "image-folder", "--model", "cnn", "--set",
                                    f"path={params['path']}", "--set", "size=8", "--epochs", "1", "--out",
                                    str(tmp_path / "again"), "--plot", "-q"])
    assert res.exit_code == 0, res.output
    assert "warning: confusion.png could not be drawn: RuntimeError: the figure broke" in res.output
    assert (tmp_path / "again" / "curves.png").is_file() and (tmp_path / "again" / "model.safetensors").is_file()
    res = CliRunner().invoke(main, ["plot", str(tmp_path / "again")])
    assert res.exit_code == 1 and "curves.png" in res.output and "could not be drawn" in res.output


# -- 6. run files are readable by colleagues --------------------------------------------------------


def test_run_files_get_the_mode_the_umask_gives(tmp_path):
    old = os.umask(0o022)
    try:
        run = zoo.train("blobs-mlp", epochs=1, quiet=True, out=tmp_path / "r")
    finally:
        os.umask(old)
    files = {str(p.relative_to(run.dir)): stat.S_IMODE(p.stat().st_mode) for p in run.dir.rglob("*") if p.is_file()}
    dirs = {str(p.relative_to(run.dir)): stat.S_IMODE(p.stat().st_mode) for p in run.dir.rglob("*") if p.is_dir()}
    assert len(files) >= 10 and all(m == 0o644 for m in files.values()), files  # the checkpoint's files too
    assert dirs and all(m == 0o755 for m in dirs.values()), dirs


# -- 7. a recipe's components resolve in its own plugin first ---------------------------------------

MOONS_CLASH = '''
from zoo import DatasetSpec, hookimpl

@hookimpl
def zoo_datasets():
    return [DatasetSpec(name="moons", summary="Somebody else's moons.", tasks=("binary",), impl="tabclash_impl:moons")]
'''


def test_a_third_party_name_clash_does_not_break_a_builtin_recipe(tmp_path):
    site = install_plugin(tmp_path / "site", "zoo-tabclash", {"tabclash": MOONS_CLASH}, {"tabclash": "tabclash"})
    env = site_env(site)
    ok = run_zoo("train", "moons-mlp", "--set", "n_samples=300", "--epochs", "1", "--out", "r", "-q", cwd=tmp_path,
                 env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "r" / "config.json").read_text())["dataset"]["plugin"] == "tabular"
    typed = run_zoo("train", "--dataset", "moons", "--model", "mlp", cwd=tmp_path, env=env)
    assert typed.returncode == 2 and "dataset 'moons' is contributed by both" in typed.stderr
    assert "choose one as 'tabclash:moons' or 'tabular:moons'" in typed.stderr


# -- 10. bad numbers are refused up front; a non-finite value names its source ----------------------

NAN_MODEL = '''
from zoo import ModelSpec, hookimpl

@hookimpl
def zoo_models():
    return [ModelSpec(name="log-net", summary="Takes the log of a negative number.", tasks=("regression",),
                      impl="nanmodel_impl:net")]
'''
NAN_MODEL_IMPL = '''
import torch
from torch import nn

class LogNet(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.lin = nn.Linear(d, k)

    def forward(self, x):
        return torch.log(self.lin(x) - 1000.0)  # NaN: the log of a negative number

def net(input_shape, out_features):
    return LogNet(input_shape[0], out_features)
'''


@pytest.mark.parametrize("value, message", [
    ("nan", "lr=nan is not a finite number"), ("inf", "lr=inf is not a finite number"),
    ("-1", "lr=-1.0 must be > 0"), ("0", "lr=0.0 must be > 0"),
])
def test_non_finite_or_out_of_range_settings_are_refused_before_a_run_directory(tmp_path, value, message):
    out = run_zoo("train", "blobs-mlp", "--lr", value, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    with pytest.raises(UsageError, match="dropout=1.0 must be < 1"):
        zoo.train("blobs-mlp", params={"dropout": 1.0}, out=tmp_path / "x")
    with pytest.raises(UsageError, match="noise='nan' is not a finite number"):
        zoo.train("moons-mlp", params={"noise": "nan"}, out=tmp_path / "x")


def test_a_non_finite_model_output_names_the_model_not_the_learning_rate(tmp_path):
    site = install_plugin(tmp_path / "site", "zoo-nanmodel", {"nanmodel": NAN_MODEL, "nanmodel_impl": NAN_MODEL_IMPL},
                          {"nanmodel": "nanmodel"})
    out = run_zoo("train", "--dataset", "sine", "--model", "log-net", "--out", "r", cwd=tmp_path,
                  env=site_env(site))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert ("model 'log-net' from plugin 'nanmodel' returned non-finite output in epoch 1, batch 1 from finite "
            "weights and inputs") in out.stderr
    assert "learning rate" not in out.stderr


# -- 11. zoo info: failed plugins, bounds, required parameters ---------------------------------------


def test_info_names_a_failed_plugin_and_shows_bounds_and_required(tmp_path, zoo_cli):
    site = install_plugin(tmp_path / "site", "zoo-broken", {"brokenplug": "import no_such_module_here\n"},
                          {"brokenplug": "brokenplug"})
    out = zoo_cli("info", "fancy-net", env=site_env(site))
    assert out.returncode == 2 and "nothing is called 'fancy-net'" in out.stderr
    assert "it may come from a plugin that failed to load: 'brokenplug' (zoo-broken 1.0): ModuleNotFoundError" \
        in out.stderr
    text = zoo_cli("info", "csv").stdout
    path = next(line for line in text.splitlines() if line.split()[:1] == ["path"])
    assert path.split()[1:3] == ["str", "required"]
    size = next(line for line in zoo_cli("info", "image-folder").stdout.splitlines() if line.split()[:1] == ["size"])
    assert size.split()[1:5] == ["int", "32", ">=", "1"]
    split = next(line for line in zoo_cli("info", "moons").stdout.splitlines() if line.split()[:1] == ["val_size"])
    assert "0.01 to 0.9" in split


# -- 12. every training setting is discoverable ------------------------------------------------------


def test_every_training_setting_is_listed_with_type_default_and_bounds(zoo_cli):
    from zoo.settings import TRAIN_PARAMS

    info = zoo_cli("info", "train")
    assert info.returncode == 0
    lines = {line.split()[0]: line for line in info.stdout.splitlines()
             if line.startswith("  ") and len(line) > 2 and line[2] != " "}  # rows, not wrapped continuations
    for key, p in TRAIN_PARAMS.items():
        assert key in lines, key
        assert lines[key].split()[1] == p.type
    assert lines["lr"].split()[2:4] == ["0.001", ">"] and "one of 32, bf16" in lines["precision"]
    assert "clip_grad" in lines and "warmup_epochs" in lines and "checkpoint_every" in lines
    assert zoo_cli("list", "settings").stdout == info.stdout
    described = json.loads(zoo_cli("info", "train", "--json").stdout)
    assert set(described) == set(TRAIN_PARAMS) and described["compile_backend"]["used_only_with"] == {
        "compile": [True]}


# -- 13. one spelling of a config everywhere ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["toml", "yaml", "json"])
def test_print_config_round_trips_in_every_format(zoo_cli, tmp_path, fmt):
    args = ["train", "moons-mlp", "--set", "model.hidden=8,8", "--set", "dataset.noise=0.3", "--lr", "0.02"]
    printed = zoo_cli(*args, "--print-config", "--format", fmt)
    assert printed.returncode == 0, printed.stderr
    doc = {"toml": tomllib.loads, "yaml": yaml.safe_load, "json": json.loads}[fmt](printed.stdout)
    assert doc["recipe"] == "moons-mlp" and doc["model"]["hidden"] == [8, 8] and doc["dataset"]["noise"] == 0.3
    assert doc["train"]["lr"] == 0.02 and doc["loss"]["name"] == "cross-entropy"
    (tmp_path / f"c.{fmt}").write_text(printed.stdout)
    again = zoo_cli("train", "--config", f"c.{fmt}", "--print-config", "--format", "json")
    direct = zoo_cli(*args, "--print-config", "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == json.loads(direct.stdout)


def test_sections_flat_keys_and_set_spell_the_same_config(zoo_cli, tmp_path):
    (tmp_path / "sections.toml").write_text('recipe = "blobs-mlp"\n[model]\nhidden = [6]\n[train]\nepochs = 2\n')
    (tmp_path / "flat.yaml").write_text("recipe: blobs-mlp\nepochs: 2\nmodel_params:\n  hidden: [6]\n")
    outs = [zoo_cli("train", "--config", "sections.toml", "--print-config", "--format", "json"),
            zoo_cli("train", "--config", "flat.yaml", "--print-config", "--format", "json"),
            zoo_cli("train", "blobs-mlp", "--set", "model.hidden=6", "--set", "train.epochs=2", "--print-config",
                    "--format", "json")]
    assert all(o.returncode == 0 for o in outs), [o.stderr for o in outs]
    assert outs[0].stdout == outs[1].stdout == outs[2].stdout
    (tmp_path / "twice.toml").write_text('recipe = "blobs-mlp"\nepochs = 3\n[train]\nepochs = 2\n')
    twice = zoo_cli("train", "--config", "twice.toml")
    assert twice.returncode == 2 and "train.epochs is given twice" in twice.stderr


# -- 14. the default loss, repeated keys, settings the optimizer ignores -----------------------------


def test_no_loss_picks_the_tasks_default_and_says_so(zoo_cli):
    out = zoo_cli("train", "--dataset", "moons", "--model", "mlp", "--set", "n_samples=200", "--epochs", "1")
    assert out.returncode == 0, out.stderr
    assert ("note: no --loss given: using 'cross-entropy', the default loss for a binary task (from plugin "
            "'losses')") in out.stderr
    reg = zoo_cli("train", "--dataset", "sine", "--model", "linear", "--print-config", "--format", "json")
    assert json.loads(reg.stdout)["loss"]["name"] == "mse"


@pytest.mark.parametrize("args, message", [
    (["--set", "lr=0.1", "--set", "lr=0.2"], "--set lr is given twice (lr=0.1 and lr=0.2); give it once"),
    (["--lr", "0.1", "--set", "lr=0.2"], "train.lr is given twice (--lr 0.1 and --set lr=0.2); give it once"),
    (["--set", "hidden=4", "--set", "model.hidden=5"], "model.hidden is given twice"),
    (["--set", "momentum=0.9"], "momentum=0.9 has no effect with optimizer=adam: only sgd and rmsprop use momentum"),
    (["--set", "step_size=3"], "step_size=3 has no effect with schedule=none: only the step schedule uses step_size"),
])
def test_repeated_or_ignored_settings_are_refused(zoo_cli, args, message):
    out = zoo_cli("train", "blobs-mlp", *args)
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


# -- 16. quiet notebooks, a history that plots -------------------------------------------------------


def test_the_python_api_is_quiet_by_default_and_its_history_has_columns(tmp_path, capsys):
    run = zoo.train("blobs-mlp", epochs=12, out=tmp_path / "a")
    assert capsys.readouterr().err == ""  # not a terminal, not a notebook: no 12 lines on stderr
    zoo.train("blobs-mlp", epochs=12, out=tmp_path / "b", progress="lines")
    assert capsys.readouterr().err.count("\n") >= 12
    zoo.train("blobs-mlp", epochs=12, out=tmp_path / "c", progress="bar")
    bar = capsys.readouterr().err
    assert "12/12" in bar and bar.count("\n") <= 2  # one bar over the epochs, not one line each
    assert run.history["epoch"] == list(range(1, 13)) and len(run.history["val_loss"]) == 12
    assert run.history[0]["epoch"] == 1 and "val_accuracy" in run.history.columns
    with pytest.raises(KeyError, match="did you mean 'val_loss'"):
        run.history["val_los"]


def test_a_notebook_gets_one_epoch_bar():
    from zoo.progress import EpochBarReporter, api_reporter

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(api_reporter("auto", Tty()), EpochBarReporter)
    assert type(api_reporter("auto", io.StringIO())).__name__ == "Reporter"
    with pytest.raises(UsageError, match="progress='bars' is not one of"):
        api_reporter("bars")


# -- 17. image batches without a channel; scoring a new labelled file --------------------------------


def test_predict_takes_image_batches_and_eval_scores_a_labelled_file(tmp_path, zoo_cli):
    from sklearn.datasets import load_digits

    from zoo.data import split_arrays

    run = zoo.train(dataset="digits", model="linear", loss="cross-entropy", epochs=2, quiet=True, out=tmp_path / "d")
    d = load_digits()
    raw = split_arrays(d.data, d.target, task="multiclass", seed=0, val_size=0.15, test_size=0.2, standardize=None,
                       input_shape=(1, 8, 8))
    X, y = raw.test[0].numpy(), raw.test[1].numpy()
    assert zoo.predict(run.dir, X[:, 0]).to_csv() == zoo.predict(run.dir, X).to_csv()  # (N, 8, 8) is (N, 1, 8, 8)
    np.save(tmp_path / "hw.npy", X[:5, 0])
    assert zoo_cli("predict", str(run.dir), "--input", "hw.npy").returncode == 0
    np.savez(tmp_path / "test.npz", X=X, y=y)
    scored = zoo_cli("eval", str(run.dir), "--input", "test.npz", "--json")
    assert scored.returncode == 0, scored.stderr
    on_split = json.loads(zoo_cli("eval", str(run.dir), "--json").stdout)
    got = json.loads(scored.stdout)
    assert got["input"] == "test.npz"
    for key in ("loss", "accuracy", "f1_macro"):
        assert got[key] == pytest.approx(on_split[key], abs=1e-6)
    np.savez(tmp_path / "names.npz", X=X, y=np.array([str(v) for v in y]))  # labels as class names
    assert zoo.evaluate(run.dir, input=tmp_path / "names.npz")["accuracy"] == pytest.approx(on_split["accuracy"])
    with open(tmp_path / "test.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([[*x.reshape(-1).tolist(), int(t)] for x, t in zip(X, y)])
    assert zoo.evaluate(run.dir, input=tmp_path / "test.csv")["accuracy"] == pytest.approx(on_split["accuracy"])
    np.savez(tmp_path / "bad.npz", X=X, y=np.full(len(X), 12))
    bad = zoo_cli("eval", str(run.dir), "--input", "bad.npz")
    assert bad.returncode == 2 and "label '12' is not one of the run's classes" in bad.stderr


def test_eval_scores_a_labelled_regression_file_in_the_datas_units(tmp_path):
    run = zoo.train("regression-mlp", params=SMALL, epochs=2, quiet=True, out=tmp_path / "r")
    from zoo.config import entries_for
    from zoo.parts import load_data

    cfg = zoo.rundir.read_config(run.dir)
    raw = load_data(entries_for(cfg), {**cfg, "dataset_params": {**cfg["dataset_params"], "standardize": False}})
    X, y = raw.test
    np.savez(tmp_path / "t.npz", X=X.numpy(), y=y.numpy())
    scored = zoo.evaluate(run.dir, input=tmp_path / "t.npz")
    assert scored["mse"] == pytest.approx(run.metrics["test"]["mse"], rel=1e-5)
    assert scored["loss"] == pytest.approx(run.metrics["test"]["loss"], rel=1e-5)


# -- the zoo 0.1 weights still load -----------------------------------------------------------------


def test_weights_saved_by_zoo_0_1_load_into_the_raw_input_model(tmp_path):
    from zoo import checkpoint

    run = zoo.train("regression-mlp", params=SMALL, epochs=1, quiet=True, out=tmp_path / "r")
    x = torch.linspace(0, 20, 9).reshape(-1, 1)
    expected = zoo.predict(run.dir, x).values
    m = run.model
    old = {**{f"net.{k}": v for k, v in m.net.state_dict().items()}, "mean": m.output_mean, "std": m.output_std}
    checkpoint.save_weights(old, run.dir / "model.safetensors", {"format": "zoo-weights/1"})
    checkpoint.save_weights({"mean": m.input_mean, "std": m.input_std}, run.dir / "preprocess.safetensors")
    np.testing.assert_array_equal(zoo.predict(run.dir, x).values, expected)
    for name in ("checkpoint.json", "checkpoints"):  # a zoo 0.1 run has its checkpoint files at the top level
        shutil.rmtree(run.dir / name) if (run.dir / name).is_dir() else (run.dir / name).unlink()
    (run.dir / "trainer.json").write_text("{}")
    with pytest.raises(ZooError, match="holds a checkpoint in the layout of zoo 0.1, which this zoo cannot resume"):
        zoo.engine.resume(run.dir, epochs=2)


@pytest.mark.parametrize("n, test_size, seed", [(3000, 0.2, 0), (3000, 0.25, 7), (101, 0.3, 3), (7, 0.2, 11),
                                                (50, 0.5, 2)])
def test_unstratified_splits_are_scikit_learns(n, test_size, seed):
    """A regression data set is split without importing scikit-learn: into exactly the indices its
    train_test_split gives, so that no run's data moved."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from zoo.data import _train_test_split

    idx = np.arange(100, 100 + n)
    ours = _train_test_split(idx, test_size, seed, None)
    ref = train_test_split(idx, test_size=test_size, random_state=seed)
    assert all(np.array_equal(a, b) for a, b in zip(ours, ref))
