"""The ``zoo`` command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_zoo

PROBE = """
import runpy, sys
sys.argv = ["zoo", *sys.argv[1:]]
try:
    runpy.run_module("zoo", run_name="__main__")
except SystemExit:
    pass
print("HEAVY:" + ",".join(m for m in ("torch", "sklearn", "numpy", "gymnasium", "matplotlib", "optuna",
                                       "tensorboard", "mlflow") if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "models", "--json"], ["info", "mlp"],
                                  ["info", "resnet"], ["info", "digits-resnet", "--json"],
                                  ["info", "cartpole-dqn"], ["info", "dqn"], ["play", "--help"], ["tune", "--help"],
                                  ["train", "--help"], ["list", "callbacks"], ["info", "mlflow"],
                                  ["info", "tensorboard", "--json"]])
def test_listing_and_help_do_not_import_torch_or_sklearn(args, tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    heavy = [line for line in out.stderr.splitlines() if line.startswith("HEAVY:")]
    assert heavy == ["HEAVY:"], out.stderr


def test_a_regression_run_is_trained_scored_predicted_and_plotted_without_scikit_learn(tmp_path):
    """Importing scikit-learn (with SciPy and pandas) costs about a second: a sine run needs none of it,
    through train, eval, predict and plot, each a real command."""
    run = tmp_path / "run"
    (tmp_path / "x.csv").write_text("0.5\n3.0\n")
    for args in (["train", "regression-mlp", "--epochs", "2", "-q", "--device", "cpu", "--out", str(run)],
                 ["eval", str(run)], ["predict", str(run), "-i", str(tmp_path / "x.csv")], ["plot", str(run)]):
        out = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300)
        heavy = [line for line in out.stderr.splitlines() if line.startswith("HEAVY:")]
        assert heavy and "torch" in heavy[0] and "sklearn" not in heavy[0], (args, out.stderr[-2000:])
    assert (run / "model.safetensors").is_file() and (run / "curves.png").is_file()


def test_python_dash_m_behaves_like_the_console_script(zoo_cli, tmp_path):
    script = Path(sys.executable).with_name("zoo")
    if not script.exists():
        pytest.skip("console script not installed next to this interpreter")
    direct = subprocess.run([str(script), "list"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert direct.returncode == 0
    assert direct.stdout == zoo_cli("list").stdout


def test_list_shows_every_builtin_component(zoo_cli):
    out = zoo_cli("list")
    assert out.returncode == 0 and out.stderr == ""
    for name in ("sine", "moons", "blobs", "digits", "linear", "mlp", "cnn", "mse", "l1", "huber",
                 "cross-entropy", "bce-with-logits", "regression-mlp", "moons-mlp", "blobs-mlp", "digits-cnn"):
        assert f"  {name} " in out.stdout, name
    models = zoo_cli("list", "models").stdout
    assert "mlp" in models and "sine" not in models
    data = json.loads(zoo_cli("list", "losses", "cross*", "--json").stdout)
    assert [i["name"] for i in data["items"]] == ["cross-entropy"]
    assert data["items"][0]["tasks"] == ["binary", "multiclass"]


def test_list_filters_by_task_and_input(zoo_cli):
    data = json.loads(zoo_cli("list", "models", "--task", "multiclass", "--input", "image", "--json").stdout)
    names = {i["name"] for i in data["items"]}
    assert {"cnn", "mlp", "linear"} <= names
    assert all("multiclass" in i["tasks"] and "image" in i["inputs"] for i in data["items"])
    recipes = json.loads(zoo_cli("list", "recipes", "--input", "image", "--json").stdout)["items"]
    assert "digits-cnn" in {r["name"] for r in recipes} and "moons-mlp" not in {r["name"] for r in recipes}
    bad = zoo_cli("list", "--task", "multiclas")
    assert bad.returncode == 2 and "did you mean 'multiclass'" in bad.stderr


def test_info_explains_a_component(zoo_cli):
    out = zoo_cli("info", "mlp")
    assert out.returncode == 0
    text = out.stdout
    assert "mlp (model)" in text and "plugin:   tabular (zoo " in text
    assert "regression, binary, multiclass" in text
    hidden = next(line for line in text.splitlines() if line.split()[:1] == ["hidden"])
    assert hidden.split()[1:4] == ["int-list", "64,64", ">="]
    assert "activation" in text and "one of relu, tanh" in text
    recipe = zoo_cli("info", "regression-mlp").stdout
    assert "dataset:  sine" in recipe and "model:    mlp" in recipe and "zoo train regression-mlp" in recipe


def size_line(text: str) -> str:
    return next(line.strip() for line in text.splitlines() if line.strip().startswith("size:"))


def test_info_gives_a_models_size_for_an_input_shape(zoo_cli):
    from zoo.parts import count_macs
    from zoo.registry import get_registry

    # logistic regression on 30 features with 3 outputs: 30 x 3 weights + 3 biases; 90 multiply-accumulates
    assert size_line(zoo_cli("info", "linear", "--input-shape", "30", "--outputs", "3").stdout) == \
        "size:     for input (30,) with 3 outputs: 93 parameters, 90 multiply-accumulates"
    out = zoo_cli("info", "resnet", "--input-shape", "1,8,8")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    e = get_registry().get("model", "resnet")
    net = e.load()((1, 8, 8), 10, **e.spec.resolve_params())
    params, macs = sum(p.numel() for p in net.parameters()), count_macs(net, (1, 8, 8))
    assert macs > 1e6
    assert size_line(out.stdout) == (f"size:     for input (1, 8, 8) with 10 outputs: {params:,} parameters, "
                                     f"{macs / 1e6:.3g} M multiply-accumulates")
    # hyperparameters: --set, and a recipe's own; the JSON holds the same figures
    narrow = size_line(zoo_cli("info", "resnet", "--input-shape", "3,13,17", "--set", "widths=8,16").stdout)
    assert narrow.startswith("size:     for input (3, 13, 17) with 10 outputs (widths=8,16): ")
    data = json.loads(zoo_cli("info", "resnet", "--input-shape", "1,8,8", "--json").stdout)
    assert data[0]["size"] == {"input_shape": [1, 8, 8], "outputs": 10, "model": "vision:resnet",
                               "model_params": {"widths": [32, 64, 128], "blocks": 1, "dropout": 0.1},
                               "parameters": params, "macs": macs}
    # blobs-mlp's own mlp, 2 -> 10 -> 1: 2 x 10 + 10 + 10 x 1 + 1 parameters, 20 + 10 multiply-accumulates
    assert size_line(zoo_cli("info", "blobs-mlp", "--input-shape", "2", "--outputs", "1").stdout) == \
        "size:     for input (2,) with 1 output (hidden=10): 41 parameters, 30 multiply-accumulates"
    # without --input-shape: how to ask (a model's size depends on the input; no torch is imported for it)
    assert size_line(zoo_cli("info", "resnet").stdout) == \
        "size:     depends on the input: zoo info resnet --input-shape C,H,W (image), e.g. 1,8,8"
    assert size_line(zoo_cli("info", "digits-resnet").stdout) == \
        "size:     depends on the input: zoo info digits-resnet --input-shape C,H,W (one sample of dataset 'digits')"
    assert json.loads(zoo_cli("info", "resnet", "--json").stdout)[0]["size"] is None
    assert "size" not in json.loads(zoo_cli("info", "adam", "--json").stdout)[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--dataset", "moons", "--model", "mpl", "--loss", "cross-entropy"],
         "unknown model 'mpl'; did you mean 'mlp'?"),
        (["train", "--dataset", "moons", "--model", "cnn", "--loss", "cross-entropy"],
         "model 'cnn' cannot take dataset 'moons': the model needs image input and the dataset gives tabular"),
        (["train", "--dataset", "sine", "--model", "mlp", "--loss", "cross-entropy"],
         "loss 'cross-entropy' does not fit dataset 'sine': the dataset is a regression task"),
        (["train", "--dataset", "digits", "--model", "cnn", "--loss", "bce-with-logits"],
         "loss 'bce-with-logits' does not fit dataset 'digits': the dataset is a multiclass task"),
        (["train", "regresion-mlp"], "unknown recipe 'regresion-mlp'; did you mean 'regression-mlp'?"),
        (["train", "regression-mlp", "--set", "hiden=3"], "unknown parameter 'hiden'"),
        (["train", "regression-mlp", "--set", "model.hidden=a,b"], "hidden='a,b' is not a valid int-list"),
        (["train", "regression-mlp", "--set", "dropout"], "--set expects KEY=VALUE"),
        (["train", "regression-mlp", "--set", "model.bogus=1"], "model 'mlp' has no parameter 'bogus'"),
        (["train", "regression-mlp", "--optimizer", "adamm"], "did you mean 'adam'"),
        (["train", "regression-mlp", "--epochs", "0"], "epochs=0 must be >= 1"),
        (["train", "regression-mlp", "--device", "gpu"], "--device must be auto, cpu, cuda or cuda:N"),
        (["train", "--dataset", "moons"], "give a recipe, or --dataset and --model"),
        (["eval", "no/such/run"], "run directory no/such/run does not exist"),
        (["info", "mpl"], "nothing is called 'mpl'; did you mean 'mlp'?"),
        (["info", "cnn", "--input-shape", "1,2,2"],
         "model 'cnn' cannot be built for input shape (1, 2, 2) with 10 outputs: ValueError: cnn pools twice"),
        (["info", "lstm", "--input-shape", "1,8,8", "--outputs", "4"],
         "model 'lstm' cannot be built for input shape (1, 8, 8) with 4 outputs: ValueError: lstm needs sequence"),
        (["info", "resnet", "--input-shape", "8x8"], "--input-shape expects one sample's shape as positive integers"),
        (["info", "resnet", "--input-shape", "1,8,8", "--set", "widths=0"], "widths='0' must be >= 1"),
        (["info", "resnet", "--outputs", "3"], "--outputs only applies with --input-shape"),
        (["info", "adam", "--input-shape", "1,8,8"], "--input-shape applies to models and recipes; 'adam' is an "
                                                       "optimizer"),
        (["list", "modles"], "unknown kind 'modles'; did you mean 'models'?"),
    ],
)
def test_user_errors_are_one_clear_line(zoo_cli, args, message):
    out = zoo_cli(*args)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert message in lines[0]


def test_unknown_command_suggests(zoo_cli):
    out = zoo_cli("trian")
    assert out.returncode == 2 and "did you mean 'train'?" in out.stderr


def test_cuda_request_without_cuda_is_a_clear_error(zoo_cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = zoo_cli("train", "blobs-mlp", "--device", "cuda")
    assert out.returncode == 2 and "CUDA is not available" in out.stderr and "Traceback" not in out.stderr


def test_train_then_eval_a_combination(zoo_cli, tmp_path):
    out = zoo_cli("train", "--dataset", "moons", "--model", "mlp", "--loss", "cross-entropy", "--epochs", "2",
                  "--set", "n_samples=400", "--set", "hidden=8", "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert "epoch 1/2" in out.stderr and "epoch 2/2" in out.stderr
    assert out.stdout.splitlines()[0].startswith("val ") and "accuracy" in out.stdout and "f1" in out.stdout
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("moons-mlp-cross-entropy-")
    run = runs[0]
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.json", "checkpoints", "config.json", "history.csv", "metrics.json", "model.safetensors", "run.json"]
    (generation,) = (run / "checkpoints").iterdir()
    assert sorted(p.name for p in generation.iterdir()) == [
        "callbacks.safetensors", "last.safetensors", "procedure.safetensors", "rng.safetensors", "trainer.json"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["hidden"] == [8] and cfg["dataset"]["n_samples"] == 400 and cfg["train"]["seed"] == 3
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,train_loss,val_loss,val_accuracy") and len(history) == 3
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary files left
    metrics = json.loads((run / "metrics.json").read_text())
    ev = zoo_cli("eval", str(run), "--json")
    assert ev.returncode == 0, ev.stderr
    got = json.loads(ev.stdout)
    assert got.pop("split") == "test"
    assert got == pytest.approx(metrics["test"], abs=1e-12)
    val = json.loads(zoo_cli("eval", str(run), "--split", "val", "--json", "--device", "cpu").stdout)
    assert val["accuracy"] == pytest.approx(metrics["val"]["accuracy"])
    # a second run never reuses the first one's directory
    again = zoo_cli("train", "--dataset", "moons", "--model", "mlp", "--loss", "cross-entropy", "--epochs", "1",
                    "--set", "n_samples=400", "-q")
    assert again.returncode == 0 and len(list((tmp_path / "runs").iterdir())) == 2


def test_out_never_overwrites_a_run(zoo_cli, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "model.safetensors").write_bytes(b"precious")
    out = zoo_cli("train", "blobs-mlp", "--epochs", "1", "--out", "taken")
    assert out.returncode == 2 and "already exists" in out.stderr
    assert (tmp_path / "taken" / "model.safetensors").read_bytes() == b"precious"


def test_eval_of_a_directory_that_is_not_a_run(zoo_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    out = zoo_cli("eval", "empty")
    assert out.returncode == 2 and "is not a zoo run directory" in out.stderr
