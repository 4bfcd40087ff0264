"""scikit-learn estimators over zoo's training: :class:`ZooClassifier` and :class:`ZooRegressor`.

They wrap any compatible model + loss + training settings and follow scikit-learn's estimator API
(``fit``, ``predict``, ``predict_proba``/``decision_function``, ``score``, ``get_params``/``set_params``,
``classes_``, ``n_features_in_``), so they work inside ``Pipeline``, ``GridSearchCV`` and
``cross_val_score``::

    from zoo.sklearn import ZooClassifier
    clf = ZooClassifier("mlp", epochs=50, lr=0.01, params={"model.hidden": (32,)}, random_state=0)
    clf.fit(X, y).predict(X)
    GridSearchCV(clf, {"model__hidden": [(16,), (32, 32)], "lr": [0.01, 0.003]}).fit(X, y)

``fit`` trains with zoo's own engine (the training loop of ``zoo train``): ``X`` and ``y`` are
written to an ``.npz`` file in a temporary directory and trained as the ``arrays`` dataset of the
tabular plugin, with ``validation_fraction`` of the samples held out (stratified for classes) for
early stopping (``patience`` epochs without a better validation loss; the best epoch's weights are
kept). Features are standardised with the training part's statistics, inside the model (its
``input_mean``/``input_std`` buffers), so ``predict`` takes raw inputs. ``random_state`` is the run's
seed: an integer gives the same model on every fit.

``save_dir``: the fit leaves a normal run directory there (``config.json``, ``model.safetensors``,
``history.csv``, ``metrics.json``, ...) plus ``data.npz``, the arrays it was fitted on; the config
names the ``arrays`` dataset with that file as its ``path``, so ``zoo eval``, ``zoo plot``,
``zoo predict`` and :func:`zoo.load` work on it like on any run (``zoo eval`` rebuilds the same
split from the run's seed; its ``test`` split is the validation split, since the estimator keeps no
test split). ``save_dir`` must be new or empty.

Importing this module imports scikit-learn; torch is imported on the first ``fit``.
"""

from __future__ import annotations

import numbers
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

__all__ = ["ZooClassifier", "ZooRegressor"]

#: The file of a ``save_dir`` run that holds the arrays it was fitted on.
DATA_FILE = "data.npz"


def _validate(estimator, X, y: Any = "no_validation", reset: bool = True, **kwargs):
    """scikit-learn's validation of ``X`` (and ``y``, None included: a fit without targets is refused)."""
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:  # scikit-learn < 1.6
        if y is None:
            raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None") from None
        return estimator._validate_data(X, y, reset=reset, **kwargs)
    return validate_data(estimator, X, y, reset=reset, **kwargs)


class _ZooEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, the fit through zoo's engine, the outputs."""

    _task_kind = ""

    def __init__(self, model: str = "mlp", loss: str | None = None, *, epochs: int = 100, batch_size: int = 32,
                 lr: float = 1e-3, optimizer: str | None = None, patience: int = 10,
                 validation_fraction: float = 0.1, random_state: Any = None, save_dir: Any = None,
                 params: dict | None = None, device: str = "cpu", verbose: bool = False) -> None:
        self.model = model
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.save_dir = save_dir
        self.params = params
        self.device = device
        self.verbose = verbose

    # -- parameters: component hyperparameters as nested names (model__hidden <-> params["model.hidden"]) --

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters; with ``deep``, also each dotted key of ``params`` spelled the
        scikit-learn way (``params={"model.hidden": (32,)}`` -> ``model__hidden``)."""
        out = super().get_params(deep=False)
        if deep and isinstance(self.params, dict):
            for key, value in self.params.items():
                if isinstance(key, str) and "." in key:
                    out[key.replace(".", "__")] = value
        return out

    def set_params(self, **params: Any) -> "_ZooEstimator":
        """Set constructor parameters, and component hyperparameters by nested name: ``model__hidden=(64,)``
        is ``params["model.hidden"]`` (a new ``params`` dict; the one given is never changed),
        ``optimizer__weight_decay``, ``train__clip_grad``, ``dataset__standardize``..."""
        nested = {k: v for k, v in params.items() if "__" in k}
        own = {k: v for k, v in params.items() if "__" not in k}
        if nested:
            base = own["params"] if "params" in own else self.params
            merged = dict(base) if isinstance(base, dict) else {}
            for key, value in nested.items():
                merged[key.replace("__", ".")] = value
            own["params"] = merged
        if own:
            super().set_params(**own)
        return self

    # -- fitting ----------------------------------------------------------------------------------

    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and 0 <= int(rs) <= 2**32 - 1:
            return int(rs)
        from sklearn.utils import check_random_state

        return int(check_random_state(rs).randint(0, 2**31 - 1))

    def _check_settings(self) -> None:
        vf = self.validation_fraction
        if isinstance(vf, bool) or not isinstance(vf, numbers.Real) or not 0 <= vf <= 0.9:
            raise ValueError(f"validation_fraction={vf!r} must be a number from 0 to 0.9 (0: no held-out "
                             "samples; early stopping then watches the training loss)")
        if self.params is not None and not isinstance(self.params, dict):
            raise ValueError(f"params must be a dict such as {{'model.hidden': (64, 64)}}, not {self.params!r}")

    def _config(self, path: Path, task: str) -> dict[str, Any]:
        from .config import resolve
        from .errors import ZooError

        sets: dict[str, Any] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in (self.params or {}).items()}
        sets.update({"dataset.path": str(path), "dataset.task": task,
                     "dataset.val_size": float(self.validation_fraction), "dataset.test_size": 0.0})
        settings: dict[str, Any] = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                                    "patience": self.patience, "seed": self._seed(), "device": self.device,
                                    "checkpoint_every": 1e9}
        if self.optimizer is not None:
            settings["optimizer"] = self.optimizer
        try:
            return resolve(dataset="arrays", model=self.model, loss=self.loss, sets=sets, note=None, **settings)
        except ZooError as exc:  # a bad hyperparameter is a ValueError to scikit-learn
            raise ValueError(f"{type(self).__name__}: {exc}") from exc

    def _train(self, X: np.ndarray, arrays: dict[str, np.ndarray], task: str) -> None:
        from . import engine
        from .errors import ZooError
        from .files import atomic_path
        from .progress import Reporter, api_reporter
        from .rundir import RunDir

        self._check_settings()
        X = np.asarray(X, dtype=np.float32)
        if not np.isfinite(X).all():
            raise ValueError("Input X holds values too large for float32 (zoo trains in float32)")
        with tempfile.TemporaryDirectory(prefix="zoo-sklearn-") as tmp:
            data = Path(tmp) / DATA_FILE
            np.savez(data, X=X, **arrays)
            cfg = self._config(data, task)
            out = Path(self.save_dir) if self.save_dir is not None else Path(tmp) / "run"
            reporter = api_reporter("lines") if self.verbose else Reporter()
            try:
                run = engine.fit(cfg, out=out, reporter=reporter)
            except engine.NonFiniteLoss as exc:
                raise ValueError(f"{type(self).__name__}: training diverged: {exc}") from exc
            except ZooError as exc:
                if isinstance(exc.__cause__, ValueError):  # the data's own complaint
                    raise ValueError(str(exc)) from exc
                raise
            if self.save_dir is not None:  # the run keeps its data, so that zoo eval can rebuild the split
                kept = (out / DATA_FILE).resolve()
                with atomic_path(kept) as tmp_file:
                    shutil.copyfile(data, tmp_file)
                config = dict(run.config)
                config["dataset_params"] = {**config["dataset_params"], "path": str(kept)}
                RunDir(out).write_config(config)
                run.config = config
        self.model_ = run.model
        self.config_ = run.config
        self.history_ = [dict(row) for row in run.history]
        self.n_iter_ = len(run.history)
        self.best_epoch_ = run.best_epoch
        self.run_dir_ = str(out) if self.save_dir is not None else None

    def _outputs(self, X) -> np.ndarray:
        """The model's outputs on raw ``X`` as float64 ``(N, k)``: logits for classes, the data's units for
        regression."""
        import torch

        from .evaluation import predict

        check_is_fitted(self, "model_")
        X = _validate(self, X, reset=False)
        Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
        device = next(iter(self.model_.parameters()), torch.empty(0)).device
        out = predict(self.model_, Xt.to(device), self.config_)
        return out.detach().double().cpu().numpy().reshape(len(X), -1)


class ZooClassifier(ClassifierMixin, _ZooEstimator):
    """A zoo model trained as a classifier (binary or multiclass; any labels: ``classes_`` holds them).

    ``model``/``loss``: installed component names (``zoo list``); without ``loss``, the task's default
    (cross-entropy). ``params``: component hyperparameters and other settings, as ``zoo.train``'s
    ``params`` (``{"model.hidden": (64, 64), "optimizer.weight_decay": 0.01, "schedule": "cosine"}``),
    also settable as nested names (``model__hidden``). ``epochs``, ``batch_size``, ``lr``,
    ``optimizer``, ``patience`` (early stopping, 0: off): training settings. ``validation_fraction``:
    the share of samples held out for early stopping and the best epoch (0: none). ``random_state``:
    the run's seed. ``save_dir``: keep the run directory there. Fitted: ``classes_``, ``n_features_in_``,
    ``model_`` (the :class:`zoo.parts.RunModel`, raw inputs in, logits out), ``config_``, ``history_``,
    ``n_iter_`` (epochs trained), ``best_epoch_``, ``run_dir_``.
    """

    def fit(self, X, y) -> "ZooClassifier":
        X, y = _validate(self, X, y)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(X) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 samples; got 1 sample")
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; y holds 1 class")
        names = np.array([str(c) for c in classes])
        if len(set(names.tolist())) != len(names):
            raise ValueError(f"{type(self).__name__}: the class labels {classes!r} are not distinct as text")
        self._train(X, {"y": y_idx.astype(np.int64), "classes": names}, "binary" if len(classes) == 2 else
                    "multiclass")
        self.classes_ = classes
        return self

    def decision_function(self, X) -> np.ndarray:
        """Class scores: ``(N,)`` for two classes (positive: ``classes_[1]``), else ``(N, n_classes)`` logits."""
        out = self._outputs(X)
        if self.config_["target"] == "binary":
            return out[:, 0]
        return out[:, 1] - out[:, 0] if out.shape[1] == 2 else out

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(N, n_classes)`` in the order of ``classes_`` (softmax, or the sigmoid of
        one logit with a binary loss such as bce-with-logits)."""
        out = self._outputs(X)
        if self.config_["target"] == "binary":
            p = 1.0 / (1.0 + np.exp(-out[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        out = out - out.max(axis=1, keepdims=True)
        e = np.exp(out)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most likely class of each sample, as the labels ``fit`` was given."""
        out = self._outputs(X)
        idx = (out[:, 0] > 0).astype(np.int64) if self.config_["target"] == "binary" else out.argmax(axis=1)
        return self.classes_[idx]


class ZooRegressor(RegressorMixin, _ZooEstimator):
    """A zoo model trained as a regressor (one target or several: ``y`` of shape ``(N,)`` or ``(N, k)``).

    Parameters as :class:`ZooClassifier`'s; the default loss is mse, computed on targets standardised
    with the training part's mean and std (predictions come back in the data's units).
    """

    def fit(self, X, y) -> "ZooRegressor":
        X, y = _validate(self, X, y, multi_output=True, y_numeric=True)
        if len(X) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 samples; got 1 sample")
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1).astype(np.float32)
        if not np.isfinite(y2).all():
            raise ValueError("Input y holds values too large for float32 (zoo trains in float32)")
        self._train(X, {"y": y2}, "regression")
        self.n_outputs_ = y2.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions in the data's units: ``(N,)`` when ``fit`` was given a 1-D ``y``, else ``(N, k)``."""
        out = self._outputs(X)
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
