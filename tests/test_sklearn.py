"""The scikit-learn estimators (zoo.sklearn): scikit-learn's own estimator checks, the meta-estimators they
must work in (Pipeline, GridSearchCV, cross_val_score), labels of any kind, and a fit saved as a run
directory that zoo.load, zoo predict and zoo eval read like any other."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from helpers import run_zoo  # noqa: E402
from sklearn.datasets import load_iris, make_classification, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import zoo  # noqa: E402
from zoo.sklearn import ZooClassifier, ZooRegressor  # noqa: E402

#: Tiny fits: the estimator checks fit some hundred times.
SMALL = {"epochs": 20, "lr": 0.03, "batch_size": 16, "params": {"model.hidden": (16,)}}

_FLOAT32 = ("predictions are computed in float32, as by the saved run (zoo predict); a matrix product over a "
            "different number of rows may differ in the last bits (about 5e-7), above the check's 1e-7 tolerance")

EXPECTED_FAILED = {"check_methods_subset_invariance": _FLOAT32}


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@parametrize_with_checks([ZooClassifier(**SMALL), ZooRegressor(**SMALL)],
                         expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- parameters ------------------------------------------------------------------------------


def test_params_nested_names_and_clone():
    from sklearn.base import clone

    given = {"model.hidden": (8,)}
    clf = ZooClassifier(params=given, lr=0.01)
    assert clf.get_params()["model__hidden"] == (8,) and "model__hidden" not in clf.get_params(deep=False)
    clf.set_params(model__hidden=(4, 4), optimizer__weight_decay=0.1, lr=0.02)
    assert clf.params == {"model.hidden": (4, 4), "optimizer.weight_decay": 0.1} and clf.lr == 0.02
    assert given == {"model.hidden": (8,)}  # the caller's dict is never changed
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    with pytest.raises(ValueError, match="Invalid parameter"):
        clf.set_params(hidden=3)


def test_bad_hyperparameter_is_a_value_error_at_fit():
    X, y = make_classification(40, 4, random_state=0)
    with pytest.raises(ValueError, match="hidden=.x. is not a valid"):
        ZooClassifier(epochs=1, params={"model.hidden": "x"}).fit(X, y)
    with pytest.raises(ValueError, match="validation_fraction"):
        ZooClassifier(epochs=1, validation_fraction=1.5).fit(X, y)


# -- meta-estimators -----------------------------------------------------------------------------


def test_pipeline_grid_search_and_cross_val_score():
    X, y = load_iris(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", ZooClassifier(random_state=0, **SMALL))])
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.85

    grid = GridSearchCV(ZooClassifier(random_state=0, **{**SMALL, "epochs": 10}),
                        {"model__hidden": [(4,), (16,)], "lr": [0.003, 0.03]}, cv=2)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"model__hidden", "lr"}
    assert len(grid.cv_results_["params"]) == 4 and np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_estimator_.params["model.hidden"] == grid.best_params_["model__hidden"]

    scores = cross_val_score(ZooRegressor(random_state=0, **SMALL), *make_regression(90, 4, noise=5,
                                                                                     random_state=0), cv=3)
    assert scores.shape == (3,) and scores.min() > 0.5


def test_fits_are_deterministic_with_a_random_state():
    X, y = make_classification(80, 5, random_state=1)
    a = ZooClassifier(random_state=3, **SMALL).fit(X, y).predict_proba(X)
    b = ZooClassifier(random_state=3, **SMALL).fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)


def test_early_stopping_on_the_validation_split():
    X, y = make_classification(200, 5, random_state=2)
    clf = ZooClassifier(random_state=0, epochs=200, patience=3, lr=0.05, params={"model.hidden": (16,)}).fit(X, y)
    assert clf.n_iter_ < 200 and clf.best_epoch_ == clf.n_iter_ - 3
    assert all("val_loss" in row for row in clf.history_)


# -- labels and outputs --------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [None, "bce-with-logits"])
def test_string_labels_binary(loss):
    X, y = make_classification(120, 4, random_state=0)
    labels = np.array(["no", "yes"])[y]
    clf = ZooClassifier(loss=loss, random_state=0, **SMALL).fit(X, labels)
    assert list(clf.classes_) == ["no", "yes"] and clf.n_features_in_ == 4
    pred = clf.predict(X)
    assert set(pred) <= {"no", "yes"} and (pred == labels).mean() > 0.8
    proba, score = clf.predict_proba(X), clf.decision_function(X)
    assert proba.shape == (120, 2) and np.allclose(proba.sum(1), 1) and score.shape == (120,)
    assert np.array_equal(pred, clf.classes_[(score > 0).astype(int)])


def test_multiclass_integer_labels_and_multi_output_regression():
    X, y = load_iris(return_X_y=True)
    clf = ZooClassifier(random_state=0, **SMALL).fit(X, y * 10 + 5)
    assert list(clf.classes_) == [5, 15, 25] and clf.decision_function(X).shape == (150, 3)
    assert set(clf.predict(X)) <= {5, 15, 25}

    X, y = make_regression(100, 4, n_targets=2, random_state=0)
    reg = ZooRegressor(random_state=0, **SMALL).fit(X, y)
    assert reg.predict(X).shape == (100, 2) and reg.n_outputs_ == 2 and reg.score(X, y) > 0.5
    assert ZooRegressor(random_state=0, **SMALL).fit(X, y[:, 0]).predict(X).shape == (100,)


# -- save_dir: a normal run directory -----------------------------------------------------------


def test_save_dir_is_a_run_that_zoo_loads_predicts_and_evaluates(tmp_path):
    import torch

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    run_dir = tmp_path / "iris-run"
    clf = ZooClassifier(random_state=0, save_dir=run_dir, **SMALL).fit(X, names)
    assert clf.run_dir_ == str(run_dir)
    for name in ("config.json", "model.safetensors", "history.csv", "metrics.json", "run.json", "data.npz"):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["dataset"]["name"] == "arrays" and config["dataset"]["path"] == str((run_dir / "data.npz").resolve())

    model = zoo.load(run_dir)
    with torch.no_grad():
        logits = model(torch.as_tensor(X, dtype=torch.float32)).double().numpy()
    assert np.allclose(logits, clf.decision_function(X), atol=1e-6)
    assert model.classes == ["setosa", "versicolor", "virginica"]

    np.save(tmp_path / "x.npy", X[:5].astype(np.float32))
    out = run_zoo("predict", str(run_dir), "--input", str(tmp_path / "x.npy"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0].startswith("label,prob_setosa") and [r.split(",")[0] for r in rows[1:]] == list(clf.predict(X[:5]))

    # zoo eval rebuilds the validation split from data.npz and the run's seed
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert zoo.evaluate(run_dir, split="val")["accuracy"] == pytest.approx(saved["val"]["accuracy"])

    with pytest.raises(zoo.ZooError, match="not an empty directory"):
        ZooClassifier(random_state=0, save_dir=run_dir, **SMALL).fit(X, names)


def test_importing_zoo_and_zoo_help_do_not_import_the_estimators():
    code = ("import sys, zoo; assert 'zoo.sklearn' not in sys.modules and 'torch' not in sys.modules\n"
            "from zoo.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'zoo.sklearn' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
