"""The CSV datasets: reading, task inference, imputation, one-hot encoding, standardisation, errors."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from helpers import run_zoo

import zoo
from zoo.config import resolve
from zoo.errors import UsageError, ZooError
from zoo.registry import get_registry
from zoo_tabular import csvdata, csvinfer

DECLARED = {"csv": ("regression", "binary", "multiclass"), "csv-binary": ("binary",),
            "csv-regression": ("regression",)}


def write(path, header, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def table(n=60, seed=0):
    """Rows with a unique numeric ``id`` (to find each row again), a numeric ``x``, a text ``city``
    with a rare category ``rare`` (in one row), and targets ``label`` (a/b/c) and ``y``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = float(rng.normal(5.0, 2.0))
        city = "rare" if i == 7 else ["north", "south", "east"][i % 3]
        rows.append([str(100 + i), f"{x:.4f}", city, "abc"[i % 3], f"{2 * x + rng.normal():.4f}"])
    return ["id", "x", "city", "label", "y"], rows


def load(dataset="csv", seed=0, **params):
    e = get_registry().get("dataset", dataset)
    return e.load()(seed=seed, **e.spec.resolve_params(params))


def all_splits(s):
    return [s.split(p) for p in ("train", "val", "test")]


# -- declarations ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_declared_with_an_encoder_and_an_example(name):
    spec = get_registry().get("dataset", name).spec
    assert spec.tasks == DECLARED[name]
    assert spec.encode == "zoo_tabular.csvdata:encode"
    assert spec.example is not None
    for key in ("path", "target"):
        assert spec.params[key].required and spec.params[key].default is None
    assert spec.params["impute"].default == "none"
    assert spec.params["impute"].choices == csvdata.IMPUTE == ("none", "mean", "median", "most_frequent")
    fixed = {"path", "target", "impute", "val_size", "test_size", "delimiter"}
    if name == "csv":
        assert spec.infer_task == "zoo_tabular.csvinfer:infer"
        assert set(spec.params) == fixed | {"task"}
        assert spec.params["task"].default == "auto" and spec.params["task"].choices == csvinfer.TASKS
    else:
        assert spec.infer_task is None and set(spec.params) == fixed
    with pytest.raises(UsageError, match=rf"dataset '{name}' needs path, target"):
        spec.resolve_params({})


# -- task inference -------------------------------------------------------------------


@pytest.mark.parametrize("cells, task", [
    (["yes", "no"] * 6, "binary"),
    (["a", "b", "c"] * 4, "multiclass"),
    (["0", "1"] * 6, "binary"),
    (["1", "2", "3", "1"] * 3, "multiclass"),
    (["1.5", "2", "3", "4"] * 3, "regression"),  # not all integers
    ([str(i) for i in range(30)], "regression"),  # too many distinct integers
    ([str(i % 8) for i in range(12)], "regression"),  # 8 distinct in 12 rows: more than half
    (["1", "x"] * 6, "binary"),  # any text: labels
])
def test_infer_task(cells, task):
    assert csvdata.infer_task(cells) == task
    assert csvdata.infer_task is csvinfer.infer_task  # one rule, in the light module


@pytest.mark.parametrize("target, task", [("label", "multiclass"), ("y", "regression"), ("id", "regression")])
def test_auto_task_from_the_target_column(tmp_path, target, task):
    path = write(tmp_path / "d.csv", *table())
    s = csvdata.load(seed=0, path=path, target=target, task="auto")
    assert s.meta.task == task == s.state["task"]


def test_binary_classes_and_class_names(tmp_path):
    header, rows = table()
    rows = [r[:3] + [["no", "yes"][i % 2]] + r[4:] for i, r in enumerate(rows)]
    s = load("csv-binary", path=write(tmp_path / "b.csv", header, rows), target="label")
    assert (s.meta.task, s.meta.class_names, s.state["classes"]) == ("binary", ("no", "yes"), ["no", "yes"])
    # csv with task=auto makes two text labels a binary task; task=multiclass two classes of a multiclass task
    a = load("csv", path=str(tmp_path / "b.csv"), target="label")
    assert (a.meta.task, a.meta.num_classes, a.meta.class_names) == ("binary", 2, ("no", "yes"))
    m = load("csv", path=str(tmp_path / "b.csv"), target="label", task="multiclass")
    assert (m.meta.task, m.meta.num_classes) == ("multiclass", 2)
    # integer labels sort by value
    rows = [r[:3] + [str([10, 9, 2][i % 3])] + r[4:] for i, r in enumerate(rows)]
    assert load(path=write(tmp_path / "i.csv", header, rows), target="label").meta.class_names == ("2", "9", "10")


# -- encoding and standardisation -------------------------------------------------------


def raw_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_one_hot_categories_come_from_the_training_rows_only(tmp_path):
    path = write(tmp_path / "d.csv", *table())
    seen = {}
    for seed in range(6):
        s = load(path=path, target="label", seed=seed)
        st = s.state
        assert st["columns"] == ["id", "x", "city", "y"] and st["numeric"] == ["id", "x", "y"]
        cats = st["categories"]["city"]
        assert st["features"] == ["id", "x", *(f"city={c}" for c in cats), "y"]
        assert json.loads(json.dumps(st)) == st  # JSON-able
        mean, std = s.preprocess["mean"], s.preprocess["std"]
        ids = {p: torch.round(X[:, 0] * std[0] + mean[0]).long().tolist() for p, X in
               zip(("train", "val", "test"), (s.train[0], s.val[0], s.test[0]))}
        rare_in_train = 107 in ids["train"]
        seen[rare_in_train] = True
        assert ("rare" in cats) == rare_in_train
        assert set(cats) - {"rare"} == {"north", "south", "east"}
        onehot = slice(2, 2 + len(cats))
        for part, (X, _) in zip(("train", "val", "test"), all_splits(s)):
            block = X[:, onehot]
            assert set(block.unique().tolist()) <= {0.0, 1.0}  # one-hot columns are not standardised
            for row_id, hot in zip(ids[part], block.sum(1).tolist()):
                assert hot == (0.0 if row_id == 107 and not rare_in_train else 1.0)
    assert seen == {True: True, False: True}  # both cases happened


def test_numeric_columns_standardised_with_training_statistics(tmp_path):
    header, rows = table()
    path = write(tmp_path / "d.csv", header, rows)
    s = load(path=path, target="label", seed=1)
    mean, std = s.preprocess["mean"], s.preprocess["std"]
    assert mean.dtype == std.dtype == torch.float32 and mean.shape == (len(s.state["features"]),)
    Xtr = s.train[0].double()
    for j in (0, 1, len(mean) - 1):  # id, x, y
        assert abs(Xtr[:, j].mean()) < 1e-5 and abs(Xtr[:, j].std(unbiased=False) - 1) < 1e-4
    assert torch.equal(mean[2:-1], torch.zeros(len(mean) - 3)) and torch.equal(std[2:-1], torch.ones(len(mean) - 3))
    # the mean is the training rows' mean, not the whole file's
    by_id = {int(r[0]): float(r[1]) for r in rows}
    train_ids = torch.round(s.train[0][:, 0].double() * std[0] + mean[0]).long().tolist()
    assert float(mean[1]) == pytest.approx(np.mean([by_id[i] for i in train_ids]), rel=1e-5)
    assert abs(float(mean[1]) - np.mean(list(by_id.values()))) > 1e-3


def test_encode_turns_raw_rows_into_the_training_features(tmp_path):
    path = write(tmp_path / "d.csv", *table())
    s = load(path=path, target="label", seed=2)
    X = torch.from_numpy(csvdata.encode(raw_rows(path), s.state))
    assert X.dtype == torch.float32
    Xs = (X - s.preprocess["mean"]) / s.preprocess["std"]
    split_X = torch.cat([s.train[0], s.val[0], s.test[0]])
    # every split row is exactly one encoded file row
    assert len(split_X) == len(Xs)
    for row in split_X:
        assert int(torch.isclose(Xs, row.expand_as(Xs), atol=1e-5).all(1).sum()) == 1
    # columns in any order, extra columns ignored, an unseen category -> zeros
    rows = [{"city": "atlantis", "label": "a", "x": "5", "id": "1", "y": "3", "extra": "?"}]
    enc = csvdata.encode(rows, s.state)
    cats = s.state["categories"]["city"]
    assert enc.shape == (1, 3 + len(cats))
    assert enc[0, 0] == 1.0 and enc[0, 1] == 5.0 and enc[0, -1] == 3.0 and not enc[0, 2:-1].any()


def test_encode_errors_name_the_column(tmp_path):
    path = write(tmp_path / "d.csv", *table())
    state = load(path=path, target="label").state
    with pytest.raises(ValueError, match=r"missing column 'x' \(is 'xx' meant to be 'x'\?\)"):
        csvdata.encode([{"id": "1", "xx": "2", "city": "north", "y": "1"}], state)
    with pytest.raises(ValueError, match="data row 2, column 'x': 'abc' is not a number"):
        csvdata.encode([{"id": "1", "x": "2", "city": "north", "y": "1"},
                        {"id": "1", "x": "abc", "city": "north", "y": "1"}], state)
    with pytest.raises(ValueError, match="data row 1, column 'city': missing value"):
        csvdata.encode([{"id": "1", "x": "2", "city": "", "y": "1"}], state)


def test_splits_are_seeded_and_stratified_and_the_delimiter_is_honoured(tmp_path):
    header, rows = table(n=90)
    path = write(tmp_path / "d.csv", header, rows)
    a, b, c = load(path=path, target="label", seed=3), load(path=path, target="label", seed=3), \
        load(path=path, target="label", seed=4)
    for (xa, ya), (xb, yb) in zip(all_splits(a), all_splits(b)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a.test[0], c.test[0])
    for _, y in all_splits(a):
        counts = torch.bincount(y, minlength=3)
        assert counts.max() - counts.min() <= 1  # 30 of each class in the file
    tabbed = write(tmp_path / "t.tsv", header, rows, delimiter="\t")
    t = load(path=tabbed, target="label", seed=3, delimiter="tab")
    assert torch.equal(t.train[0], a.train[0]) and t.state["delimiter"] == "\t"


def test_a_regression_file_trains_and_evaluates_to_the_same_numbers(tmp_path):
    path = write(tmp_path / "d.csv", *table())
    run = zoo.train(dataset="csv-regression", model="resmlp", loss="mse", params={"path": path, "target": "y"},
                    epochs=2, quiet=True, out=tmp_path / "run")
    assert json.loads((run.dir / "preprocess.json").read_text())["target"] == "y"
    assert zoo.evaluate(run.dir) == run.metrics["test"]


# -- errors: one clear line each --------------------------------------------------------


def _errors(tmp_path):
    header, rows = table(n=30)
    ok = write(tmp_path / "ok.csv", header, rows)
    holes = [list(r) for r in rows]
    holes[3][1] = ""
    holes[5][2] = "NA"
    single = [r[:3] + ["single" if i == 4 else r[3]] + r[4:] for i, r in enumerate(rows)]
    pair = [r[:3] + ["pair" if i in (4, 9) else r[3]] + r[4:] for i, r in enumerate(rows)]
    return [
        ("csv", {"path": "", "target": "label"}, "no CSV file given: set the dataset's path and target column"),
        ("csv", {"path": str(tmp_path / "nope.csv"), "target": "label"}, "CSV file .*nope.csv does not exist"),
        ("csv", {"path": ok, "target": "lable"},
         r"has no column 'lable' \(its columns: id, x, city, label, y\); did you mean 'label'\?"),
        ("csv", {"path": ok, "target": ""}, "no target column given: set target=COLUMN"),
        ("csv", {"path": write(tmp_path / "holes.csv", header, holes), "target": "label"},
         r"holes.csv line 5: missing value in column 'x' \(an empty cell\); fill it in or drop the row, or set "
         "impute=mean, median or most_frequent"),
        ("csv-regression", {"path": ok, "target": "label"},
         r"the target column 'label' is not numeric \(.*line 2: 'a'\), so it cannot be a regression target"),
        ("csv", {"path": write(tmp_path / "single.csv", header, single), "target": "label"},
         r"class 'single' of the target 'label' has a single sample \(.*single.csv line 6\)"),
        ("csv", {"path": write(tmp_path / "pair.csv", header, pair), "target": "label"},
         "class 'pair' of the target 'label' has only 2 samples; .* need at least 3 of every class"),
        ("csv", {"path": write(tmp_path / "few.csv", header, rows[:5]), "target": "label"},
         "few.csv has only 5 data rows; at least 10 are needed"),
        ("csv", {"path": ok, "target": "y", "task": "multiclass"},
         r"the target column 'y' holds numbers that are not class labels .*; train it as regression"),
        ("csv", {"path": ok, "target": "id", "task": "binary"},
         r"the target column 'id' has 30 classes \('100', '101', .*not the 2 of a binary task"),
        ("csv", {"path": ok, "target": "id", "task": "multiclass"},
         r"class '100' .* single sample .* looks like a regression target"),
        ("csv", {"path": ok, "target": "label", "task": "regression"},
         r"the target column 'label' is not numeric .*train it as classification \(the dataset csv with "
         "task=multiclass"),
        ("csv-binary", {"path": ok, "target": "label"},
         r"the target column 'label' has 3 classes \('a', 'b', 'c'\), not the 2 of a binary task"),
        ("csv", {"path": write(tmp_path / "semi.csv", ["a;b;label"], [["1;2;x"]] * 12), "target": "label"},
         r"has no column 'label' \(its columns: a;b;label\) \(is the delimiter ';'\? set delimiter=;\)"),
    ]


def test_every_file_problem_is_a_one_line_value_error(tmp_path):
    (tmp_path / "ragged.csv").write_text("a,b,label\n1,2,x\n1,2\n")
    cases = _errors(tmp_path) + [
        ("csv", {"path": str(tmp_path / "ragged.csv"), "target": "label"},
         "ragged.csv line 3 has 2 values but the header names 3 columns"),
        ("csv", {"path": str(tmp_path), "target": "label"}, "is not a file"),
        ("csv", {"path": str(tmp_path / "ok.csv"), "target": "label", "delimiter": ";;"},
         "delimiter must be one character"),
    ]
    for dataset, params, pattern in cases:
        with pytest.raises(ValueError, match=pattern) as info:
            load(dataset, **params)
        assert "\n" not in str(info.value), str(info.value)


def test_the_engine_reports_a_bad_file_as_the_dataset_failing_to_load(tmp_path):
    with pytest.raises(ZooError) as info:
        zoo.train(dataset="csv", model="mlp", loss="cross-entropy", params={"path": str(tmp_path / "nope.csv"),
                  "target": "label"}, epochs=1, quiet=True, out=tmp_path / "run")
    message = str(info.value)
    assert message == f"dataset 'csv': CSV file {tmp_path / 'nope.csv'} does not exist"
    assert "\n" not in message


# -- task=auto: the light inference zoo train runs before loading --------------------------


def _column(path, header, values, n_features=1):
    """A file with ``n_features`` numeric features and the target column ``t`` holding ``values``."""
    rows = [[f"{i * 0.5:.1f}"] * n_features + [v] for i, v in enumerate(values)]
    return write(path, [f"f{j}" for j in range(n_features)] + [header], rows)


@pytest.mark.parametrize("values, task, reason", [
    (["red", "green", "blue"] * 10, "multiclass", "target 't' holds 3 text labels (blue, green, red)"),
    (["yes", "no"] * 10, "binary", "target 't' holds 2 text labels (no, yes)"),
    (["0", "1"] * 10, "binary", "target 't' holds 2 distinct integers (0, 1) in 20 rows; set task=regression"),
    ([str(i % 4) for i in range(20)], "multiclass", "target 't' holds 4 distinct integers (0, 1, 2, 3) in 20 rows"),
    ([f"{i * 1.5:.1f}" for i in range(20)], "regression", "target 't' holds 20 distinct numbers, not all integers"),
    ([str(i) for i in range(30)], "regression",
     "target 't' holds 30 distinct integers in 30 rows, more than the 15 that auto reads as classes; "
     "set task=multiclass"),
    ([f"{i}.25" for i in range(2500)], "regression", "target 't' holds more than 1000 distinct numbers"),
])
def test_infer_reads_the_target_column_and_says_what_it_saw(tmp_path, values, task, reason):
    path = _column(tmp_path / "d.csv", "t", values)
    got, why = csvinfer.infer({"path": path, "target": "t", "task": "auto", "delimiter": ","})
    assert got == task and why.startswith(reason), why
    assert csvinfer.infer_task(values) == task  # the same rule on a list of cells
    assert csvdata.load(seed=0, path=path, target="t").meta.task == task  # and the loader agrees


def test_infer_returns_an_explicit_task_without_reading_the_file(tmp_path):
    params = {"path": str(tmp_path / "not-there.csv"), "target": "t", "delimiter": ","}
    for task in ("regression", "binary", "multiclass"):
        assert csvinfer.infer({**params, "task": task}) == (task, "")


def test_infer_refuses_a_bad_file_or_target_in_one_line(tmp_path):
    header, rows = table(n=30)
    rows[4][3] = "NA"
    holes = write(tmp_path / "holes.csv", header, rows)
    ok = write(tmp_path / "ok.csv", *table(n=30))
    inf = _column(tmp_path / "inf.csv", "t", [str(i) for i in range(11)] + ["inf"])
    cases = [
        ({"path": holes, "target": "label"},
         r"holes.csv line 6: missing value in the target column 'label' \('NA'\); a target is never imputed"),
        ({"path": ok, "target": "lable"}, r"has no column 'lable' .*; did you mean 'label'\?"),
        ({"path": str(tmp_path / "nope.csv"), "target": "label"}, "CSV file .*nope.csv does not exist"),
        ({"path": ok, "target": "label", "delimiter": ";"}, r"\(is the delimiter ','\? set delimiter=,\)"),
        ({"path": inf, "target": "t"}, r"inf.csv line 13: the target 't' holds 'inf', which is not a finite number"),
        ({"path": write(tmp_path / "few.csv", header, rows[:3]), "target": "label"}, "has only 3 data rows"),
    ]
    for params, pattern in cases:
        with pytest.raises(ValueError, match=pattern) as info:
            csvinfer.infer({"task": "auto", "delimiter": ",", **params})
        assert "\n" not in str(info.value)
    # resolving a config turns it into a usage error naming the dataset, before any data is loaded
    with pytest.raises(UsageError, match=r"^dataset 'csv': .*holes.csv line 6: missing value in the target"):
        resolve(dataset="csv", model="mlp", sets={"path": holes, "target": "label"})


def test_infer_is_light_it_imports_neither_torch_nor_numpy(tmp_path):
    path = _column(tmp_path / "d.csv", "t", ["a", "b"] * 6)
    code = ("import sys; from zoo_tabular.csvinfer import infer; "
            f"print(infer({{'path': {path!r}, 'target': 't', 'task': 'auto', 'delimiter': ','}})[0]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'sklearn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["binary", "[]"]


def test_resolve_notes_the_inferred_task_and_its_default_loss(tmp_path):
    path = str(csvdata.write_example(tmp_path / "e.csv"))
    expected = {"grade": ("multiclass", "cross-entropy", "3 text labels (a, b, c)"),
                "passed": ("binary", "cross-entropy", "2 text labels (no, yes)"),
                "price": ("regression", "mse", "distinct numbers, not all integers")}
    for target, (task, loss, seen) in expected.items():
        notes = []
        cfg = resolve(dataset="csv", model="mlp", sets={"path": path, "target": target}, note=notes.append)
        assert (cfg["task"], cfg["loss"], cfg["dataset_params"]["task"]) == (task, loss, "auto")
        assert notes[0].startswith(f"dataset 'csv': {task} task (target '{target}' holds ") and seen in notes[0]
        assert notes[1].startswith(f"no --loss given: using '{loss}', the default loss for a {task} task")
    # an explicit task is taken as given (no note) and checked when the data loads
    notes = []
    cfg = resolve(dataset="csv", model="mlp", loss="cross-entropy",
                  sets={"path": path, "target": "passed", "task": "multiclass"}, note=notes.append)
    assert cfg["task"] == "multiclass" and notes == []
    with pytest.raises(ZooError, match="the target column 'price' holds numbers that are not class labels"):
        zoo.train(dataset="csv", model="mlp", params={"path": path, "target": "price", "task": "multiclass"},
                  epochs=1, quiet=True, out=tmp_path / "run")


# -- missing values: impute=none|mean|median|most_frequent ------------------------------------


HOLEY = ["id", "x", "rooms", "city", "label", "y"]


def holey(n=60, seed=0):
    """Rows with a unique ``id`` (never missing), a numeric ``x`` and an integer ``rooms`` and a text ``city``
    with missing cells (every missing marker), and targets ``label`` (a/b/c) and ``y``."""
    rng = np.random.default_rng(seed)
    markers = ["", "NA", "?", "nan", "null", "N/A"]
    rows = []
    for i in range(n):
        x = f"{rng.normal(5.0, 2.0):.4f}" if i % 7 != 3 else markers[i % 6]
        rooms = str(1 + int(rng.integers(0, 4))) if i % 5 != 1 else markers[(i + 1) % 6]
        city = ["north", "north", "south", "east"][i % 4] if i % 6 != 2 else markers[(i + 2) % 6]
        rows.append([str(100 + i), x, rooms, city, "abc"[i % 3], f"{rng.normal():.4f}"])
    return HOLEY, rows


def _ids(s, part):
    X = s.split(part)[0]
    return torch.round(X[:, 0].double() * float(s.preprocess["std"][0]) + float(s.preprocess["mean"][0])).long()


def _hand_fill(rows, ids, impute):
    """The fill value of x, rooms and city computed by hand from the rows with these ids."""
    by_id = {int(r[0]): r for r in rows}
    picked = [by_id[i] for i in ids]
    out = {}
    for j, name in ((1, "x"), (2, "rooms"), (3, "city")):
        values = [r[j] for r in picked if not csvinfer.is_missing(r[j])]
        if name != "city":
            values = [float(v) for v in values]
        if name == "city" or impute == "most_frequent":
            counts = Counter(values)
            top = max(counts.values())
            out[name] = min(v for v, c in counts.items() if c == top)  # the smallest on a tie
        else:
            out[name] = statistics.fmean(values) if impute == "mean" else statistics.median(values)
    return out


@pytest.mark.parametrize("impute", ["mean", "median", "most_frequent"])
def test_fill_values_are_fitted_on_the_training_rows_only(tmp_path, impute):
    header, rows = holey()
    path = write(tmp_path / "h.csv", header, rows)
    whole = _hand_fill(rows, [int(r[0]) for r in rows], impute)
    differs = False
    for seed in range(3):
        s = load(path=path, target="label", impute=impute, seed=seed)
        st = s.state
        assert st["impute"] == impute and list(st["fill"]) == ["id", "x", "rooms", "city", "y"]
        assert st["numeric"] == ["id", "x", "rooms", "y"] and json.loads(json.dumps(st)) == st
        train_ids = _ids(s, "train").tolist()
        hand = _hand_fill(rows, train_ids, impute)
        for name in ("x", "rooms"):
            assert st["fill"][name] == pytest.approx(hand[name], rel=1e-12, abs=1e-12), name
        assert st["fill"]["city"] == hand["city"]
        differs |= st["fill"]["x"] != pytest.approx(whole["x"], rel=1e-9)
        # every split's missing cells hold the training fill value; standardisation comes after imputation
        mean, std = s.preprocess["mean"].double(), s.preprocess["std"].double()
        by_id = {int(r[0]): r for r in rows}
        cats = st["categories"]["city"]
        for part in ("train", "val", "test"):
            X = s.split(part)[0].double()
            raw = X * std + mean
            for row_id, xs in zip(_ids(s, part).tolist(), raw):
                r = by_id[row_id]
                x = st["fill"]["x"] if csvinfer.is_missing(r[1]) else float(r[1])
                rooms = st["fill"]["rooms"] if csvinfer.is_missing(r[2]) else float(r[2])
                city = st["fill"]["city"] if csvinfer.is_missing(r[3]) else r[3]
                assert float(xs[1]) == pytest.approx(x, abs=1e-4) and float(xs[2]) == pytest.approx(rooms, abs=1e-4)
                assert cats[int(torch.argmax(xs[3:3 + len(cats)]))] == city
        train_x = [st["fill"]["x"] if csvinfer.is_missing(by_id[i][1]) else float(by_id[i][1]) for i in train_ids]
        assert float(mean[1]) == pytest.approx(np.mean(np.float32(train_x)), rel=1e-5)
    if impute != "most_frequent":
        assert differs  # a fit on the whole file would have been caught


def test_a_text_column_takes_its_most_frequent_training_value_under_mean_and_median(tmp_path):
    header, rows = holey()
    path = write(tmp_path / "h.csv", header, rows)
    a, b, c = (load(path=path, target="label", impute=i, seed=1).state["fill"] for i in ("mean", "median",
                                                                                          "most_frequent"))
    assert a["city"] == b["city"] == c["city"] == "north"  # half the rows are north


def test_a_missing_target_is_never_imputed(tmp_path):
    header, rows = holey()
    rows[9][4] = ""
    path = write(tmp_path / "t.csv", header, rows)
    for impute in csvdata.IMPUTE:
        with pytest.raises(ValueError, match=r"t.csv line 11: missing value in the target column 'label' "
                                             r"\(an empty cell\); a target is never imputed: fill it in or drop"):
            load(path=path, target="label", impute=impute)


def test_a_column_without_values_to_fit_is_refused(tmp_path):
    header, rows = holey()
    empty = [r[:2] + ["NA"] + r[3:] for r in rows]
    with pytest.raises(ValueError, match="every cell of column 'rooms' is missing; drop the column"):
        load(path=write(tmp_path / "e.csv", header, empty), target="label", impute="mean")


@pytest.mark.parametrize("impute", ["none", "mean", "median", "most_frequent"])
def test_training_and_zoo_predict_use_the_stored_fill_values(tmp_path, impute):
    header, rows = holey()
    if impute == "none":  # the default trains on complete rows and refuses holes in new ones
        rows = [[c if not csvinfer.is_missing(c) else "3" for c in r] for r in rows]
    path = write(tmp_path / "h.csv", header, rows)
    params = {"path": path, "target": "label"} | ({} if impute == "none" else {"impute": impute})
    run = zoo.train(dataset="csv", model="mlp", loss="cross-entropy", params=params, epochs=1, quiet=True,
                    out=tmp_path / "run")
    state = json.loads((run.dir / "preprocess.json").read_text())
    assert state["impute"] == impute
    new = [["1", "", "2", "south", "", "0"], ["2", "4.5", "NA", "?", "", "0"], ["3", "n/a", "null", "", "", "0"]]
    if impute == "none":
        assert state["fill"] == {}
        with pytest.raises(ValueError, match=r"data row 1, column 'x': missing value \(the model was trained with "
                                             "impute=none"):
            csvdata.encode([dict(zip(header, r)) for r in new], state)
        out = run_zoo("predict", str(run.dir), "--input", write(tmp_path / "new.csv", header, new), cwd=tmp_path)
        assert out.returncode != 0 and "Traceback" not in out.stderr
        assert out.stderr.strip().splitlines() == [f"error: {tmp_path / 'new.csv'}: data row 1, column 'x': missing "
                                                   "value (the model was trained with impute=none, which refuses them)"]
        return
    fill = state["fill"]
    assert fill == load(path=path, target="label", impute=impute).state["fill"]  # the run's seed is 0
    filled = [[repr(fill[name]) if isinstance(fill.get(name), float) and csvinfer.is_missing(c) else
               fill[name] if name in fill and csvinfer.is_missing(c) else c for name, c in zip(header, r)]
              for r in new]
    assert filled[0][1] == repr(fill["x"]) and filled[2][3] == fill["city"] and filled[0][4] == ""
    both = [dict(zip(header, r)) for r in new + filled]
    enc = csvdata.encode(both, state)
    assert enc[:3].tolist() == enc[3:].tolist()
    if impute != "median":
        return
    # the real command on rows with holes and the same rows filled in by hand: the same predictions
    out = run_zoo("predict", str(run.dir), "--input", write(tmp_path / "new.csv", header, new + filled),
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "label,prob_a,prob_b,prob_c" and len(lines) == 7
    got = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in got[:3]] == [r[0] for r in got[3:]]
    np.testing.assert_allclose(np.array([r[1:] for r in got[:3]], dtype=float),
                               np.array([r[1:] for r in got[3:]], dtype=float), atol=1e-6)


# -- through the real command ---------------------------------------------------------------


def test_cli_refuses_a_missing_value_by_default_with_its_line_and_column(tmp_path):
    header, rows = holey()
    path = write(tmp_path / "h.csv", header, rows)
    out = run_zoo("train", "--dataset", "csv", "--model", "mlp", "--loss", "cross-entropy", "--set", f"path={path}",
                  "--set", "target=label", "--epochs", "1", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: dataset 'csv': {path} line 3: missing value in column 'rooms' ('?'); fill it in or "
                      "drop the row, or set impute=mean, median or most_frequent"], out.stderr
    assert out.stderr.strip().splitlines()[-1] == errors[0]
    assert not (tmp_path / "run" / "model.safetensors").exists()


def _auto_files(tmp_path):
    header, rows = table(n=40)
    binary = [r[:3] + [["no", "yes"][i % 2]] + r[4:] for i, r in enumerate(rows)]
    return {
        "multiclass": (write(tmp_path / "m.csv", header, rows), "label", "cross-entropy",
                       "target 'label' holds 3 text labels (a, b, c)"),
        "binary": (write(tmp_path / "b.csv", header, binary), "label", "cross-entropy",
                   "target 'label' holds 2 text labels (no, yes)"),
        "regression": (write(tmp_path / "r.csv", header, rows), "y", "mse",
                       "target 'y' holds 40 distinct numbers, not all integers"),
    }


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_cli_task_auto_trains_the_inferred_task_with_its_default_loss_and_says_so(tmp_path, task):
    path, target, loss, reason = _auto_files(tmp_path)[task]
    out = run_zoo("train", "--dataset", "csv", "--model", "mlp", "--set", f"path={path}", "--set",
                  f"target={target}", "--epochs", "1", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    # the choices zoo train made are printed as notes on stderr
    assert f"dataset 'csv': {task} task ({reason})" in out.stderr
    assert f"no --loss given: using '{loss}', the default loss for a {task} task" in out.stderr
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    loss_name, dataset_params = _component(cfg, "loss")[0], _component(cfg, "dataset")[1]
    assert (cfg["task"], cfg["meta"]["task"], loss_name, dataset_params["task"]) == (task, task, loss, "auto")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert ("roc_auc" in json.dumps(metrics)) == (task == "binary")  # binary metrics for two text labels


def _component(cfg, comp):
    """(name, params) of a component in a run's config.json (nested tables, or the older flat keys)."""
    value = cfg[comp]
    return (value["name"], value) if isinstance(value, dict) else (value, cfg[f"{comp}_params"])

