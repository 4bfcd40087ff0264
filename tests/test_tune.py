"""``zoo tune`` and ``zoo.tune``: a search on the real Optuna (SQLite storage in a temporary directory)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from helpers import run_zoo

optuna = pytest.importorskip("optuna")

#: Small and fast: 200 moons, 2 epochs, one thread.
SMALL = {"dataset.n_samples": 200, "epochs": 2, "threads": 1}
SMALL_SETS = [a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")]


def _problem(**fixed):
    from zoo.tuning import Problem

    return Problem("moons-mlp", None, {**SMALL, **fixed}, seed=0)


def test_default_space_is_derived_from_the_declarations():
    from zoo.tuning import default_space

    assert [d.text for d in default_space(_problem())] == [
        "lr=log(0.001,0.1)",  # the recipe's 0.01 / 10 .. x 10
        "batch_size=choice(16;32;64;128;256)",  # the recipe's 64 / 4 .. x 4
        "optimizer.weight_decay=log(1e-06,0.1)",
        "model.hidden=choice(15;15,15;15,15,15;30;30,30;30,30,30;60;60,60;60,60,60)",
        "model.activation=choice(relu;tanh;sigmoid;gelu;elu;leaky_relu;silu)",
        "model.dropout=float(0.0,0.99)",  # [0, 1) declared: the exclusive end moved in by 1%
    ]
    # a key fixed with --set is not searched
    assert "lr" not in [d.key for d in default_space(_problem(lr=0.02))]
    assert "model.dropout" not in [d.key for d in default_space(_problem(dropout=0.1))]


def test_space_syntax_is_parsed_and_checked_against_the_parameters():
    from zoo.tuning import build_space

    dims = build_space(["lr=log(1e-4,1e-1)", "model.hidden=choice(32;64,64)", "batch_size=int(16,128,16)",
                        "dropout=float(0,0.5)", "optimizer=choice(adam;adamw)"], _problem())
    assert [d.text for d in dims] == ["lr=log(0.0001,0.1)", "model.hidden=choice(32;64,64)",
                                      "batch_size=int(16,128,16)", "dropout=float(0.0,0.5)",
                                      "optimizer=choice(adam;adamw)"]
    assert dims[2].integer and not dims[3].integer


@pytest.mark.parametrize("item, message", [
    ("lr=float(0,0.1)", "--space lr=float(0,0.1): low end: lr=0.0 must be > 0"),
    ("model.dropout=float(0,1)", "--space model.dropout=float(0,1): high end: dropout=1.0 must be < 1"),
    ("batch_size=int(0,64)", "--space batch_size=int(0,64): low end: batch_size=0 must be >= 1"),
    ("model.activation=choice(relu;swish)", "choice swish: activation='swish' is not one of: relu, tanh"),
    ("lr=log(0,1)", "a log range needs low > 0"),
    ("lr=float(0.1,0.01)", "low 0.1 must be below high 0.01"),
    ("batch_size=int(8,16.5)", "batch_size is an integer setting; high '16.5' is not whole"),
    ("model.hidden=int(8,64)", "model.hidden is an int-list; search it with model.hidden=choice(v1;v2;...)"),
    ("lr=uniform(0.1,1)", "write lr=log(a,b), float(a,b), int(a,b) or choice(v1;v2;...)"),
    ("lr", "--space expects KEY=DIST"),
    ("lrr=log(0.001,0.1)", "did you mean 'lr'?"),
    ("momentum=float(0,0.9)", "momentum=0 has no effect with optimizer=adam"),
    ("seed=int(0,9)", "seed is not searched"),
    ("epochs=choice(2;2)", "a value is given twice"),
    ("dropout=float(0,0.2) model.dropout=float(0,0.5)", "--space model.dropout: dropout is given twice"),
    ("lr=log(0.001,0.1) train.lr=log(0.01,0.1)", "--space train.lr: lr is given twice"),
])
def test_a_bad_space_is_one_line_naming_the_key_and_the_bound(item, message):
    from zoo.errors import UsageError
    from zoo.tuning import build_space

    with pytest.raises(UsageError) as info:
        build_space(item.split(" "), _problem())
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_print_space_shows_the_space_and_trains_nothing(tmp_path):
    out = run_zoo("tune", "moons-mlp", "--print-space", "--set", "lr=0.02", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "batch_size=choice(16;32;64;128;256)"
    assert not (tmp_path / "runs").exists()


def test_the_cli_refuses_a_bad_space_before_any_trial(tmp_path):
    out = run_zoo("tune", "moons-mlp", "--space", "lr=log(1e-4,1e-1)", "--space", "model.dropout=float(0,1)",
                  *SMALL_SETS, "--dir", "study", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --space model.dropout=float(0,1): high end: dropout=1.0 must be < 1"]
    assert "Traceback" not in out.stderr and not (tmp_path / "study").exists()


def test_pruning_callback_stops_the_run_and_keeps_a_valid_run_directory(tmp_path):
    import zoo
    from zoo.tuning import OptunaPruning

    # a pruner that prunes at the first report: the run stops after epoch 1, "stopped early"
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))
    trial = study.ask()
    callback = OptunaPruning(trial, "val_loss")
    run = zoo.train("moons-mlp", params={"dataset.n_samples": 200}, epochs=3, threads=1, quiet=True,
                    out=tmp_path / "run", callbacks=[callback])
    assert callback.pruned_at == 1 and len(run.history) == 1 and run.status == "stopped early"
    assert study.trials[0].intermediate_values == {1: pytest.approx(run.history[0]["val_loss"])}
    assert zoo.evaluate(run.dir, split="val")["loss"] == pytest.approx(run.metrics["val"]["loss"], rel=1e-5)


def test_two_worker_processes_on_sqlite_then_the_best_config_retrains_alone(tmp_path):
    out = run_zoo("tune", "moons-mlp", "--trials", "4", "--jobs", "2", "--pruner", "median", *SMALL_SETS,
                  "--space", "lr=log(1e-3,1e-1)",
                  "--space", "model.hidden=choice(8;16,16)", "--storage", f"sqlite:///{tmp_path / 'shared.db'}",
                  "--study", "s", "--dir", "study", cwd=tmp_path, timeout=240)
    assert out.returncode == 0, out.stderr
    study_dir = tmp_path / "study"
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'shared.db'}")
    trials = study.get_trials()
    assert len(trials) == 4 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    workers = {k: v for k, v in study.user_attrs.items() if k.startswith("worker:")}
    assert sorted(v["worker"] for v in workers.values()) == [0, 1]  # two worker processes worked on the study
    assert len({k.rsplit(":", 1)[1] for k in workers}) == 2  # (two process ids)
    assert {t.user_attrs["worker"] for t in trials} <= {0, 1}
    for t in trials:  # every trial is a real run directory
        run_dir = Path(t.user_attrs["run_dir"])
        assert run_dir == study_dir / f"trial-{t.number:04d}"
        assert json.loads((run_dir / "run.json").read_text())["status"] in ("finished", "stopped early")
        assert (run_dir / "model.safetensors").is_file() and (run_dir / "config.json").is_file()
    rows = list(csv.DictReader((study_dir / "trials.csv").open()))
    assert [int(r["number"]) for r in rows] == [0, 1, 2, 3]
    for name in ("best.toml", "summary.json", "history.png", "importances.png"):
        assert (study_dir / name).is_file(), name
    best = study.best_trial
    assert f"best: trial {best.number}, val_loss {best.value:.6g}" in out.stdout
    assert "TRIAL" in out.stdout.splitlines()[0]

    # the best config alone re-trains the best trial exactly
    again = run_zoo("train", "--config", str(study_dir / "best.toml"), "--out", "again", "--quiet", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    retrained = json.loads((tmp_path / "again" / "metrics.json").read_text())
    original = json.loads((Path(best.user_attrs["run_dir"]) / "metrics.json").read_text())
    assert retrained["val"] == original["val"] and retrained["test"] == original["test"]


def test_a_study_resumes_to_its_total_and_is_checked_to_be_the_same_search(tmp_path):
    import zoo
    from zoo.errors import UsageError

    common = dict(params=SMALL, space=["lr=log(1e-3,1e-1)"], dir=tmp_path / "study", pruner="hyperband",
                  quiet=True, plots=False)
    first = zoo.tune("moons-mlp", trials=2, **common)
    assert [t.number for t in first.trials] == [0, 1]
    resumed = zoo.tune("moons-mlp", trials=3, **common)  # the total: one more trial
    assert [t.number for t in resumed.trials] == [0, 1, 2]
    assert resumed.trials[:2] == first.trials[:2]
    done = zoo.tune("moons-mlp", trials=3, **common)  # reached: nothing trains
    assert len(done.trials) == 3 and done.epochs_trained == resumed.epochs_trained
    assert sorted(p.name for p in (tmp_path / "study").glob("trial-*")) == ["trial-0000", "trial-0001", "trial-0002"]
    assert done.best is not None and done.best_config.is_file()
    assert done.best.value == min(t.value for t in done.trials if t.state == "COMPLETE")
    with pytest.raises(UsageError, match="study 'moons-mlp' was made with space"):
        zoo.tune("moons-mlp", trials=4, **{**common, "space": ["lr=log(1e-4,1e-1)"]})


def test_without_optuna_the_command_says_how_to_install_it(tmp_path):
    fake = tmp_path / "site" / "optuna"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named optuna')\n")
    out = run_zoo("tune", "moons-mlp", "--trials", "1", *SMALL_SETS, "--dir", "study", cwd=tmp_path,
                  env={"PYTHONPATH": str(tmp_path / "site")})
    assert out.returncode == 1
    assert out.stderr.strip() == "error: zoo tune needs optuna, which is not installed: pip install 'zoo[tune]'"
