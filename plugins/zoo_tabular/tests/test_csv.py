"""The CSV datasets: reading, task inference, one-hot encoding, standardisation, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import zoo
from zoo.errors import ZooError
from zoo.registry import get_registry
from zoo_tabular import csvdata

DECLARED = {"csv": "multiclass", "csv-binary": "binary", "csv-regression": "regression"}


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
    assert spec.tasks == (DECLARED[name],)
    assert spec.encode == "zoo_tabular.csvdata:encode"
    assert spec.example is not None and spec.params["path"].default == ""
    assert set(spec.params) == {"path", "target", "val_size", "test_size", "delimiter"}


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
    # the classification dataset takes the same file as two classes of a multiclass task
    m = load("csv", path=str(tmp_path / "b.csv"), target="label")
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
        ("csv", {"path": ""}, "no CSV file given: set the dataset's path and target column"),
        ("csv", {"path": str(tmp_path / "nope.csv"), "target": "label"}, "CSV file .*nope.csv does not exist"),
        ("csv", {"path": ok, "target": "lable"},
         r"has no column 'lable' \(its columns: id, x, city, label, y\); did you mean 'label'\?"),
        ("csv", {"path": ok}, "no target column given: set target=COLUMN"),
        ("csv", {"path": write(tmp_path / "holes.csv", header, holes), "target": "label"},
         r"holes.csv line 5: missing value in column 'x' \(an empty cell\); fill it in or drop the row"),
        ("csv-regression", {"path": ok, "target": "label"},
         r"the target column 'label' is not numeric \(.*line 2: 'a'\), so it cannot be a regression target"),
        ("csv", {"path": write(tmp_path / "single.csv", header, single), "target": "label"},
         r"class 'single' of the target 'label' has a single sample \(.*single.csv line 6\)"),
        ("csv", {"path": write(tmp_path / "pair.csv", header, pair), "target": "label"},
         "class 'pair' of the target 'label' has only 2 samples; .* need at least 3 of every class"),
        ("csv", {"path": write(tmp_path / "few.csv", header, rows[:5]), "target": "label"},
         "few.csv has only 5 data rows; at least 10 are needed"),
        ("csv", {"path": ok, "target": "y"},
         r"the target column 'y' holds numbers that are not class labels .*; train it as regression"),
        ("csv", {"path": ok, "target": "id"}, r"class '100' .* single sample .* looks like a regression target"),
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
