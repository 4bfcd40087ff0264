"""``python -m bench quality``: every recipe's test score against scikit-learn peers, over seeds.

For each recipe and seed (0 to 9 by default) it trains the recipe with
``zoo.train(recipe, seed=s, quiet=True, out=<tmp>)`` and, on the same splits
(``zoo.parts.load_data`` for ``zoo.config.resolve(recipe, seed=s)``: seeded,
stratified for classification, features standardised with the training split's
statistics), fits scikit-learn peers and scores them on the same test split:

- classification: ``SVC``, ``LogisticRegression``, ``MLPClassifier`` (the recipe's
  hidden sizes and activation where it has them), ``HistGradientBoostingClassifier``,
  ``KNeighborsClassifier`` (5 neighbours, scikit-learn's default);
- regression: ``SVR``, ``Ridge``, ``MLPRegressor``, ``HistGradientBoostingRegressor``,
  ``KNeighborsRegressor`` (15 neighbours, as the project's reference), each on
  standardised targets mapped back (``TransformedTargetRegressor``), as the zoo's loss
  is computed on standardised targets;
- reconstruction: ``PCA`` with as many components as the recipe's code, reconstructing,
  and the training mean.

The peers are fitted on the training and validation splits together: the zoo uses the
validation split to pick its best epoch, the peers (at scikit-learn's default
hyperparameters) have no use for it. Sequences ``(T, F)`` and images are flattened for
them. Scores: accuracy for classification, MSE for the ``sine`` regression (lower is
better, 1.0 is the noise floor) and for reconstruction, R² for the other regressions.

Besides each seed's test score it records validation scores: the zoo run's own
(``run.metrics["val"]``, on the split that picked its best epoch) and, for every peer, a
second fit on the training split alone scored on the validation split, so that both
sides' validation figures come from models that never saw it in training. Recipe
defaults are chosen on validation scores (``python -m bench tune``), never on test.

The table gives mean ± std and min-max over the seeds for the zoo and for the best peer
(the peer with the best mean test score), the gap between the means, on how many seeds
the zoo is at least as good as that peer, and "matches": the zoo's mean is at least the
best peer's (at most, for MSE), with no tolerance.

It prints the table and writes ``quality.json`` and ``quality.md`` (default
``bench/results``), both with every seed of every side. ``--recipes a,b`` limits the
recipes, ``--seeds N`` takes seeds 0..N-1, ``--quick`` (one seed, 2 epochs, small peer
iteration caps) only checks that everything runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import report

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
QUICK_EPOCHS = 2
#: Seeds 0..N-1 of a full run: enough that a recipe matching its peer by a hair on a few
#: seeds is told from one that matches it on average.
DEFAULT_SEEDS = 10
#: A recipe whose zoo runs take longer than this (seconds, mean) is flagged as slow.
SLOW_RUN = 60.0

#: The project's stated targets: the best scikit-learn peer's test score averaged over 3
#: seeds of a stratified 80/20 split with standardised features. Keyed by dataset; a
#: ``when`` dict names the dataset parameters the figure holds for.
REFERENCES: dict[str, dict[str, Any]] = {
    "iris": {"value": 0.989, "peer": "SVC"},
    "wine": {"value": 1.000, "peer": "SVC"},
    "breast-cancer": {"value": 0.985, "peer": "LogisticRegression"},
    "diabetes": {"value": 0.403, "peer": "Ridge"},
    "digits": {"value": 0.984, "peer": "SVC"},
    "moons": {"value": 0.864, "peer": "SVC", "when": {"noise": 0.4}},
    "sine": {"value": 1.086, "peer": "kNN (15)"},
}
#: Regression datasets scored by test MSE (a known noise floor) rather than R².
MSE_REGRESSION = {"sine"}
LOWER_IS_BETTER = {"mse"}

COLUMNS = ("recipe", "metric", "zoo (mean ± std)", "zoo (min–max)", "best peer", "peer (mean ± std)",
           "peer (min–max)", "gap", "seeds zoo ≥ peer", "matches", "zoo s/run", "peer s/fit", "reference")
SKLEARN_ACTIVATIONS = {"tanh": "tanh", "relu": "relu", "sigmoid": "logistic", "identity": "identity"}


# -- the peers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    name: str
    build: Callable[[], Any]  # a fresh, unfitted estimator
    params: dict[str, Any]


def metric_for(cfg: dict[str, Any], task: str) -> str:
    if task in ("binary", "multiclass"):
        return "accuracy"
    if task == "reconstruction" or cfg["dataset"] in MSE_REGRESSION:
        return "mse"
    return "r2"


def mlp_shape(cfg: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    """The recipe's hidden sizes and activation where its model has them; else scikit-learn's (100,) relu."""
    mp = cfg["model_params"]
    hidden = mp.get("hidden")
    if isinstance(hidden, (list, tuple)) and hidden:
        sizes = tuple(int(h) for h in hidden)
    elif isinstance(hidden, int) and hidden > 0:
        sizes = (hidden,)
    else:
        sizes = (100,)
    return sizes, SKLEARN_ACTIVATIONS.get(mp.get("activation", "relu"), "relu")


class PCAReconstruction:
    """Reconstruct inputs through ``k`` principal components (the linear autoencoder)."""

    def __init__(self, k: int, seed: int) -> None:
        self.k, self.seed = k, seed

    def fit(self, X, y=None):
        from sklearn.decomposition import PCA

        self.pca_ = PCA(n_components=self.k, random_state=self.seed).fit(X)
        return self

    def predict(self, X):
        return self.pca_.inverse_transform(self.pca_.transform(X))


def peers_for(cfg: dict[str, Any], task: str, quick: bool) -> list[Peer]:
    """The scikit-learn peers of a recipe's task, at their defaults except where noted."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    seed = cfg["seed"]
    sizes, act = mlp_shape(cfg)
    mlp = {"hidden_layer_sizes": sizes, "activation": act, "max_iter": 20 if quick else 1000, "random_state": seed}
    hgb = {"max_iter": 10 if quick else 100, "random_state": seed}
    mlp_name = f"MLP ({', '.join(map(str, sizes))}{'' if act == 'relu' else ' ' + act})"
    if task in ("binary", "multiclass"):
        return [
            Peer("SVC", lambda: SVC(), {}),
            Peer("LogisticRegression", lambda: LogisticRegression(max_iter=5000), {"max_iter": 5000}),
            Peer(mlp_name, lambda: MLPClassifier(**mlp), mlp),
            Peer("HistGradientBoosting", lambda: HistGradientBoostingClassifier(**hgb), hgb),
            Peer("kNN (5)", lambda: KNeighborsClassifier(n_neighbors=5), {"n_neighbors": 5}),
        ]
    if task == "regression":
        def scaled(est: Callable[[], Any]) -> Callable[[], Any]:
            return lambda: TransformedTargetRegressor(regressor=est(), transformer=StandardScaler())

        return [
            Peer("SVR", scaled(lambda: SVR()), {}),
            Peer("Ridge", scaled(lambda: Ridge()), {}),
            Peer(mlp_name, scaled(lambda: MLPRegressor(**mlp)), mlp),
            Peer("HistGradientBoosting", scaled(lambda: HistGradientBoostingRegressor(**hgb)), hgb),
            Peer("kNN (15)", scaled(lambda: KNeighborsRegressor(n_neighbors=15)), {"n_neighbors": 15}),
        ]
    if task == "reconstruction":
        k = int(cfg["model_params"].get("latent") or 16)
        return [
            Peer(f"PCA (k={k})", lambda: PCAReconstruction(k, seed), {"n_components": k}),
            Peer("mean", lambda: DummyRegressor(strategy="mean"), {}),
        ]
    raise ValueError(f"no scikit-learn peers for task {task!r}")


def score(metric: str, y_true, y_pred) -> float:
    from sklearn import metrics as m

    if metric == "accuracy":
        return float(m.accuracy_score(y_true.reshape(-1), y_pred.reshape(-1)))
    y_true = y_true.reshape(len(y_true), -1).astype("float64")
    y_pred = y_pred.reshape(len(y_pred), -1).astype("float64")
    if metric == "mse":
        return float(m.mean_squared_error(y_true, y_pred))
    return float(m.r2_score(y_true, y_pred))


# -- one recipe ----------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, Any]:
    """Mean, std (n-1), min, max and every value."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def better_or_equal(a: float, b: float, metric: str) -> bool:
    """``a`` is at least as good as ``b``: no tolerance beyond floating-point noise (1e-9)."""
    eps = 1e-9
    return a <= b + eps if metric in LOWER_IS_BETTER else a >= b - eps


def reference_for(cfg: dict[str, Any]) -> dict[str, Any] | None:
    ref = REFERENCES.get(cfg["dataset"])
    if ref is None:
        return None
    for key, value in ref.get("when", {}).items():
        if cfg["dataset_params"].get(key) != value:
            return None
    return {"value": ref["value"], "peer": ref["peer"]}


def fit_and_score(peer: Peer, metric: str, X_fit, y_fit, X_eval, y_eval) -> tuple[float, float, bool]:
    """Fit a fresh ``peer`` estimator, score it: (score, seconds of fit and predict, did not converge)."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    est = peer.build()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(X_fit, y_fit)
        pred = np.asarray(est.predict(X_eval))
    seconds = time.perf_counter() - t0
    return score(metric, y_eval, pred), seconds, any(issubclass(w.category, ConvergenceWarning) for w in caught)


def run_recipe(recipe: str, seeds: list[int], *, epochs: int | None, quick: bool, log: Callable[[str], None]) -> dict:
    """Train ``recipe`` over ``seeds``, fit the peers on the same splits, summarise both.

    Per seed: the zoo run's test and validation scores; each peer's test score (fitted on
    train + validation) and validation score (a second fit on train alone).
    """
    import numpy as np

    import zoo
    from zoo.config import entries_for, resolve
    from zoo.data import is_tensor_split
    from zoo.parts import load_data

    zoo_values, zoo_val, zoo_seconds, best_epochs = [], [], [], []
    peer_values: dict[str, list[float]] = {}
    peer_val: dict[str, list[float]] = {}
    peer_seconds: dict[str, list[float]] = {}
    peer_params: dict[str, dict] = {}
    peer_notes: dict[str, set] = {}
    metric = task = cfg = None
    for seed in seeds:
        settings = {"seed": seed} if epochs is None else {"seed": seed, "epochs": epochs}
        cfg = resolve(recipe, **settings)
        workdir = Path(tempfile.mkdtemp(prefix="zoo-quality-"))
        try:
            t0 = time.perf_counter()
            run = zoo.train(recipe, quiet=True, out=workdir / "run", **settings)
            seconds = time.perf_counter() - t0
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        task = run.config["meta"]["task"]
        metric = metric_for(cfg, task)
        if (run.config["dataset_params"], run.config["seed"]) != (cfg["dataset_params"], cfg["seed"]):
            raise RuntimeError(f"{recipe}: the zoo run's data settings differ from the resolved config's")
        zoo_values.append(float(run.metrics["test"][metric]))
        zoo_val.append(float(run.metrics["val"][metric]))
        zoo_seconds.append(seconds)
        best_epochs.append(run.best_epoch)
        log(f"{recipe} seed {seed}: zoo {metric} test {zoo_values[-1]:.4f} (val {zoo_val[-1]:.4f}) in {seconds:.1f} s")

        splits = load_data(entries_for(cfg), cfg)
        if not all(is_tensor_split(splits.split(s)) for s in ("train", "val", "test")):
            raise RuntimeError(f"{recipe}: its dataset is not held in memory; the peers need arrays")
        flat = lambda t: t.numpy().reshape(len(t), -1)  # noqa: E731 - sequences and images flattened
        (Xtr, ytr), (Xva, yva), (Xte, yte) = splits.train, splits.val, splits.test
        X_train, y_train = flat(Xtr), ytr.numpy()
        X_val, y_val = flat(Xva), yva.numpy()
        X_test, y_test = flat(Xte), yte.numpy()
        if task in ("binary", "multiclass"):
            y_train = y_train.reshape(-1)
        elif y_train.ndim == 2 and y_train.shape[1] == 1:
            y_train = y_train[:, 0]
        y_val_fit = y_val.reshape(len(y_val), *y_train.shape[1:])
        X_fit, y_fit = np.concatenate([X_train, X_val]), np.concatenate([y_train, y_val_fit])
        for peer in peers_for(cfg, task, quick):
            value, seconds, unconverged = fit_and_score(peer, metric, X_fit, y_fit, X_test, y_test)
            val_value, _, val_unconverged = fit_and_score(peer, metric, X_train, y_train, X_val, y_val)
            peer_values.setdefault(peer.name, []).append(value)
            peer_val.setdefault(peer.name, []).append(val_value)
            peer_seconds.setdefault(peer.name, []).append(seconds)
            peer_params[peer.name] = {k: list(v) if isinstance(v, tuple) else v for k, v in peer.params.items()}
            if unconverged or val_unconverged:
                fits = " and ".join(n for n, bad in (("test", unconverged), ("validation", val_unconverged)) if bad)
                peer_notes.setdefault(peer.name, set()).add(f"{fits} fit did not converge on seed {seed}")
        log(f"{recipe} seed {seed}: peers test " + ", ".join(f"{n} {v[-1]:.4f}" for n, v in peer_values.items()))

    peers = []
    for name, values in peer_values.items():
        s = summary(values)
        peers.append({"name": name, **s, "val": summary(peer_val[name]),
                      "seconds_mean": statistics.fmean(peer_seconds[name]), "seconds": peer_seconds[name],
                      "params": peer_params[name], "notes": sorted(peer_notes.get(name, ()))})
    lower = metric in LOWER_IS_BETTER
    best = min(peers, key=lambda p: p["mean"]) if lower else max(peers, key=lambda p: p["mean"])
    zoo_side = {**summary(zoo_values), "val": summary(zoo_val), "seconds_mean": statistics.fmean(zoo_seconds),
                "seconds": zoo_seconds, "best_epochs": best_epochs}
    at_least = sum(better_or_equal(z, b, metric) for z, b in zip(zoo_values, best["values"]))
    notes = []
    if zoo_side["seconds_mean"] > SLOW_RUN:
        notes.append(f"slow: a zoo run takes {zoo_side['seconds_mean']:.0f} s on average (over {SLOW_RUN:.0f} s)")
    return {
        "recipe": recipe, "dataset": cfg["dataset"], "model": cfg["model"], "loss": cfg["loss"], "task": task,
        "metric": metric, "lower_is_better": lower, "seeds": list(seeds), "epochs": cfg["epochs"],
        "zoo": zoo_side, "peers": peers, "best_peer": best["name"],
        "matches": better_or_equal(zoo_side["mean"], best["mean"], metric),
        "gap": zoo_side["mean"] - best["mean"],
        "seeds_at_least_peer": at_least,
        "reference": reference_for(cfg), "notes": notes,
    }


# -- the report ----------------------------------------------------------------------------


def digits(value: float, metric: str) -> int:
    """3 decimals; 4 for a small MSE (reconstruction errors of a few hundredths)."""
    return 4 if metric == "mse" and abs(value) < 0.1 else 3


def fmt(value: float, metric: str, like: float | None = None) -> str:
    return f"{value:.{digits(value if like is None else like, metric)}f}"


def fmt_mean(side: dict, metric: str) -> str:
    return f"{fmt(side['mean'], metric)} ± {fmt(side['std'], metric, like=side['mean'])}"


def fmt_range(side: dict, metric: str) -> str:
    return f"{fmt(side['min'], metric, like=side['mean'])}–{fmt(side['max'], metric, like=side['mean'])}"


def fmt_gap(r: dict) -> str:
    """The zoo's mean less the best peer's, signed so that + is the zoo ahead (for MSE: lower); 4 decimals,
    so that a difference of one test point in 2000 shows."""
    ahead = -r["gap"] if r["lower_is_better"] else r["gap"]
    text = f"{abs(ahead):.4f}"
    return "0" if float(text) == 0 else f"{'+' if ahead > 0 else '−'}{text}"


def fmt_seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


def table_rows(rows: list[dict]) -> list[tuple[str, ...]]:
    out = []
    for r in rows:
        if "error" in r:
            out.append((r["recipe"], "error", r["error"], *[""] * (len(COLUMNS) - 3)))
            continue
        m = r["metric"]
        best = next(p for p in r["peers"] if p["name"] == r["best_peer"])
        ref = r["reference"]
        name = {"mse": "MSE (lower)", "r2": "R²"}.get(m, m)
        out.append((r["recipe"], name, fmt_mean(r["zoo"], m), fmt_range(r["zoo"], m), best["name"], fmt_mean(best, m),
                    fmt_range(best, m), fmt_gap(r), f"{r['seeds_at_least_peer']}/{len(r['seeds'])}",
                    "yes" if r["matches"] else "no", fmt_seconds(r["zoo"]["seconds_mean"]),
                    fmt_seconds(best["seconds_mean"]), f"{fmt(ref['value'], m)} ({ref['peer']})" if ref else "-"))
    return out


PEER_COLUMNS = ("recipe", "side", "test (mean ± std)", "test (min–max)", "validation (mean ± std)", "s/fit", "note")


def peer_rows(rows: list[dict]) -> list[tuple[str, ...]]:
    """The zoo and every peer: test and validation scores (the peers' validation fit on train alone)."""
    out = []
    for r in rows:
        if "error" in r:
            continue
        m, z = r["metric"], r["zoo"]
        out.append((r["recipe"], "zoo", fmt_mean(z, m), fmt_range(z, m), fmt_mean(z["val"], m),
                    fmt_seconds(z["seconds_mean"]), "run time: a whole zoo.train"))
        for p in r["peers"]:
            note = "; ".join(["best peer (best mean test score)"] * (p["name"] == r["best_peer"]) + p["notes"])
            out.append((r["recipe"], p["name"], fmt_mean(p, m), fmt_range(p, m), fmt_mean(p["val"], m),
                        fmt_seconds(p["seconds_mean"]), note))
    return out


def seed_columns(rows: list[dict]) -> tuple[str, ...]:
    seeds = max((r["seeds"] for r in rows if "seeds" in r), key=len, default=[])
    return ("recipe", "side", "split", *(f"seed {s}" for s in seeds))


def seed_rows(rows: list[dict]) -> list[tuple[str, ...]]:
    """Every seed's score of every side, test and validation (4 decimals: one test point in 2000 shows)."""
    out = []
    n = len(seed_columns(rows)) - 3
    for r in rows:
        if "error" in r:
            continue
        for name, side in (("zoo", r["zoo"]), *((p["name"], p) for p in r["peers"])):
            for split, values in (("test", side["values"]), ("validation", side["val"]["values"])):
                cells = [f"{v:.4f}" for v in values]
                out.append((r["recipe"], name, split, *cells, *[""] * (n - len(cells))))
    return out


def text_table(columns: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    widths = [max([len(c)] + [len(b[i]) for b in body]) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(b) for b in body)])


def md_table(columns: tuple[str, ...], body: list[tuple[str, ...]]) -> list[str]:
    esc = lambda c: c.replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|",
            *("| " + " | ".join(esc(c) for c in cells) + " |" for cells in body)]


def explanation(result: dict) -> str:
    s = result["settings"]
    return (f"Seeds {', '.join(map(str, s['seeds']))}; epochs {s['epochs'] or 'per recipe'}. Scores on each seed's "
            "test split: accuracy, R² or MSE (lower is better), mean ± std (n-1) and min–max over the seeds. Peers "
            "are scikit-learn at its defaults, fitted on the train and validation splits together (the zoo uses "
            "validation to pick its best epoch) with sequences and images flattened; regression peers learn "
            "standardised targets. Best peer: the peer with the best mean test score. gap: the zoo's mean less the "
            "best peer's, + where the zoo is better (for MSE: lower). seeds zoo ≥ peer: on how many seeds the zoo's "
            "test score is at least the best peer's on the same seed (at most, for MSE). \"matches\": the zoo's "
            "mean is at least the best peer's (at most, for MSE), with no tolerance. zoo s/run: a whole `zoo.train` "
            "(data, training, final metrics, saving, reload check); peer s/fit: the best peer's fit and predict. "
            "Reference: the project's stated target (best peer, 3 seeds). Validation scores: the zoo run's own "
            "(the split that picked its best epoch); each peer's from a second fit on the training split alone.")


def misses(rows: list[dict]) -> list[str]:
    out = []
    for r in rows:
        if "error" in r or r["matches"]:
            continue
        m = r["metric"]
        direction = "above" if r["lower_is_better"] else "below"
        out.append(f"{r['recipe']}: zoo {fmt(r['zoo']['mean'], m)} vs {r['best_peer']} "
                   f"{fmt(r['zoo']['mean'] - r['gap'], m)} ({abs(r['gap']):.4f} {direction}; zoo at least as good "
                   f"on {r['seeds_at_least_peer']}/{len(r['seeds'])} seeds)")
    return out


def narrow(rows: list[dict]) -> list[str]:
    """Recipes that match on the mean but not on every seed."""
    out = []
    for r in rows:
        if "error" in r or not r["matches"] or r["seeds_at_least_peer"] == len(r["seeds"]):
            continue
        out.append(f"{r['recipe']}: mean {fmt(r['zoo']['mean'], r['metric'])} vs {r['best_peer']} "
                   f"{fmt(r['zoo']['mean'] - r['gap'], r['metric'])} (gap {fmt_gap(r)}), but at least as good on "
                   f"only {r['seeds_at_least_peer']}/{len(r['seeds'])} seeds")
    return out


def text_report(result: dict) -> str:
    parts = [text_table(COLUMNS, table_rows(result["rows"])), "", explanation(result), "",
             "The zoo and every peer:", text_table(PEER_COLUMNS, peer_rows(result["rows"]))]
    miss = misses(result["rows"])
    parts += ["", "Where the zoo's mean does not match its best peer's:" if miss else
              "The zoo's mean matches or beats its best peer's on every recipe.", *(f"  {line}" for line in miss)]
    close = narrow(result["rows"])
    if close:
        parts += ["", "Matching on the mean, not on every seed:", *(f"  {line}" for line in close)]
    notes = [f"  {r['recipe']}: {'; '.join(r['notes'])}" for r in result["rows"] if r.get("notes")]
    if notes:
        parts += ["", "Notes:", *notes]
    if result["errors"]:
        parts += ["", "Errors:", *(f"  {k}: {v}" for k, v in result["errors"].items())]
    parts += ["", *report.machine_lines(result["machine"]), f"total: {result['seconds']:.0f} s"]
    if report.busy(result["machine"]):
        parts.append("WARNING: the machine was busy (load average above half the cores): timings are noisy")
    return "\n".join(parts)


def markdown(result: dict) -> str:
    rows = result["rows"]
    out = ["# zoo quality against scikit-learn", "", f"`{result['settings']['command']}`", "",
           *md_table(COLUMNS, table_rows(rows)), "", explanation(result)]
    miss = misses(rows)
    out += ["", "## Where the zoo's mean does not match its best peer's", ""]
    out += [f"- {line}" for line in miss] if miss else ["- none"]
    close = narrow(rows)
    out += ["", "## Matching on the mean, not on every seed", ""]
    out += [f"- {line}" for line in close] if close else ["- none"]
    out += ["", "## The zoo and every peer", "",
            "Test: fitted on train + validation (the zoo: on train, validation picking its best epoch). "
            "Validation: the zoo run's own; each peer fitted again on train alone.", "",
            *md_table(PEER_COLUMNS, peer_rows(rows)),
            "", "## Every seed", "", *md_table(seed_columns(rows), seed_rows(rows))]
    notes = [f"- {r['recipe']}: {'; '.join(r['notes'])}" for r in rows if r.get("notes")]
    if notes:
        out += ["", "## Notes", "", *notes]
    if result["errors"]:
        out += ["", "## Errors", "", *(f"- {k}: {v}" for k, v in result["errors"].items())]
    out += ["", "## Machine", "", *(f"- {line}" for line in report.machine_lines(result["machine"])),
            f"- total: {result['seconds']:.0f} s"]
    if report.busy(result["machine"]):
        out.append("- **the machine was busy (load average above half the cores): timings are noisy**")
    return "\n".join(out) + "\n"


def warm_up(recipe: str, log: Callable[[str], None]) -> None:
    """One untimed one-epoch run and the peers' imports, so the first timed run pays no first-call costs."""
    import zoo

    t = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="zoo-quality-"))
    try:
        zoo.train(recipe, quiet=True, out=workdir / "run", epochs=1)
    except Exception:  # noqa: BLE001 - the timed run reports the problem
        pass
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    peers_for({"seed": 0, "model_params": {}}, "regression", True)
    log(f"warm-up ({recipe}, 1 epoch): {time.perf_counter() - t:.1f} s")


# -- the command ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench quality",
        description="Every recipe's test score over seeds against scikit-learn peers fitted on the same splits.")
    p.add_argument("--recipes", help="comma-separated recipes (default: every installed recipe)")
    p.add_argument("--seeds", type=int, help=f"seeds 0..N-1 (default {DEFAULT_SEEDS}; 1 with --quick)")
    p.add_argument("--epochs", type=int, help=f"override every recipe's epochs (default: its own; "
                   f"{QUICK_EPOCHS} with --quick)")
    p.add_argument("--quick", action="store_true", help="one seed, 2 epochs, small peers: a smoke run, "
                   "not figures to quote")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where quality.json and quality.md go "
                   "(default: bench/results)")
    return p


def main(argv: list[str] | None = None) -> int:
    import os

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    for name in ("seeds", "epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1")

    from zoo.registry import get_registry

    reg = get_registry()
    known = [e.name for e in reg.entries("recipe")]
    if args.recipes:
        recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
        unknown = [r for r in recipes if r not in known]
        if unknown:
            parser.error(f"--recipes: unknown recipe(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    else:
        recipes = sorted(known)
    seeds = list(range(args.seeds or (1 if args.quick else DEFAULT_SEEDS)))
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else None)

    load_before = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    rows, errors = [], {}
    warm_up(recipes[0], log)
    for recipe in recipes:
        t = time.perf_counter()
        try:
            rows.append(run_recipe(recipe, seeds, epochs=epochs, quick=args.quick, log=log))
        except Exception as exc:  # noqa: BLE001 - one broken recipe must not hide the others
            errors[recipe] = f"{type(exc).__name__}: {exc}"
            rows.append({"recipe": recipe, "error": errors[recipe]})
            log(f"{recipe} failed:\n{traceback.format_exc()}")
            continue
        log(f"{recipe}: done in {time.perf_counter() - t:.1f} s")

    info = report.machine_info()
    info["load_average_before"] = load_before
    result = {
        "settings": {"command": " ".join(["python -m bench quality", *argv]), "quick": args.quick, "seeds": seeds,
                     "epochs": epochs, "recipes": recipes, "columns": list(COLUMNS)},
        "machine": info,
        "rows": rows,
        "errors": errors,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)  # written first: a closed stdout must not lose the results
    js, md = args.out / "quality.json", args.out / "quality.md"
    js.write_text(json.dumps(result, indent=2, default=report._jsonable) + "\n")
    md.write_text(markdown(result))
    report.echo(text_report(result))
    report.echo(f"\nwrote {js} and {md} ({result['seconds']} s)")
    return 1 if errors else 0
