"""``zoo predict`` and ``zoo.inference.predict_file`` on real runs trained in-process."""

from __future__ import annotations

import csv
import io
import json
import shutil

import numpy as np
import pytest
import torch

import zoo
from helpers import run_zoo
from zoo import rundir as runs
from zoo.config import entries_for
from zoo.data import split_arrays
from zoo.parts import load_data
from zoo.saved import load_run_model
from zoo.errors import UsageError
from zoo.inference import predict_file


def _train(out, *args, **kwargs):
    return zoo.train(*args, device="cpu", quiet=True, out=out, **kwargs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("predict")
    return {
        "reg": _train(base / "reg", "regression-mlp", params={"n_samples": 300}, epochs=2).dir,
        "moons": _train(base / "moons", "moons-mlp", params={"n_samples": 300}, epochs=1).dir,
        "blobs": _train(base / "blobs", "blobs-mlp", params={"n_samples": 300}, epochs=1).dir,
        "digits": _train(base / "digits", dataset="digits", model="linear", loss="cross-entropy", epochs=1).dir,
    }


def raw_and_standardised_test(run_dir):
    """The test split twice: as the dataset made it before standardisation, and as the model saw it."""
    cfg = runs.read_config(run_dir)
    combo = entries_for(cfg)
    standardised = load_data(combo, cfg).test[0]
    if cfg["dataset"] == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        p = cfg["dataset_params"]
        raw = split_arrays(d.data, d.target, task="multiclass", seed=cfg["seed"], val_size=p["val_size"],
                           test_size=p["test_size"], standardize=None, input_shape=(1, 8, 8)).test[0]
    else:
        raw = load_data(combo, {**cfg, "dataset_params": {**cfg["dataset_params"], "standardize": False}}).test[0]
    return raw.numpy(), standardised


def model_outputs(run_dir, X):
    """The saved model's outputs, in the data's units, for inputs already standardised as in training."""
    model = load_run_model(run_dir, "cpu")[0]
    with torch.no_grad():
        return model.to_data_units(model.net.eval()(X)).float()


def parse(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def write_csv(path, X, header=None):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        if header:
            w.writerow(header)
        w.writerows(X.reshape(len(X), -1).tolist())
    return path


def test_regression_round_trip_applies_the_stored_preprocessing(trained, tmp_path):
    run = trained["reg"]
    raw, std = raw_and_standardised_test(run)
    assert not np.allclose(raw, std.numpy())  # the inputs really are in different units
    expected = model_outputs(run, std).reshape(-1).numpy()
    with_header = predict_file(run, write_csv(tmp_path / "x.csv", raw, ["x"]))
    without = predict_file(run, write_csv(tmp_path / "y.csv", raw))
    assert with_header == without
    header, rows = parse(with_header)
    assert header == ["prediction"] and len(rows) == len(raw)
    np.testing.assert_allclose([float(r[0]) for r in rows], expected, rtol=1e-5, atol=1e-5)
    # the stored mean/std, not statistics of the new inputs: predicting 3 rows gives the same 3 values
    _, few = parse(predict_file(run, write_csv(tmp_path / "few.csv", raw[:3])))
    np.testing.assert_allclose([float(r[0]) for r in few], expected[:3], rtol=1e-5, atol=1e-5)


def test_softmax_classification_labels_and_probabilities(trained, tmp_path):
    run = trained["moons"]
    raw, std = raw_and_standardised_test(run)
    out = tmp_path / "pred.csv"
    text = predict_file(run, write_csv(tmp_path / "in.csv", raw, ["a", "b"]), output=out)
    assert out.read_text() == text
    header, rows = parse(text)
    assert header == ["label", "prob_0", "prob_1"]
    probs = np.array([[float(v) for v in r[1:]] for r in rows])
    expected = torch.softmax(model_outputs(run, std), dim=1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert [r[0] for r in rows] == [str(i) for i in expected.argmax(1)]


def test_sigmoid_for_a_binary_target_loss(trained, tmp_path):
    run = trained["blobs"]
    raw, std = raw_and_standardised_test(run)
    header, rows = parse(predict_file(run, write_csv(tmp_path / "in.csv", raw)))
    assert header == ["label", "prob_0", "prob_1"]
    logits = model_outputs(run, std).reshape(-1)
    np.testing.assert_allclose([float(r[2]) for r in rows], torch.sigmoid(logits).numpy(), atol=1e-5)
    assert [r[0] for r in rows] == ["1" if v > 0 else "0" for v in logits.tolist()]


def test_npy_inputs_in_either_shape_for_an_image_run(trained, tmp_path):
    run = trained["digits"]
    raw, std = raw_and_standardised_test(run)
    assert raw.shape[1:] == (1, 8, 8)
    np.save(tmp_path / "full.npy", raw)
    np.save(tmp_path / "flat.npy", raw.reshape(len(raw), -1).astype(np.float64))
    full = predict_file(run, tmp_path / "full.npy")
    assert predict_file(run, tmp_path / "flat.npy") == full
    assert predict_file(run, write_csv(tmp_path / "flat.csv", raw)) == full
    header, rows = parse(full)
    assert header == ["label", *(f"prob_{d}" for d in range(10))]
    expected = torch.softmax(model_outputs(run, std), dim=1).numpy()
    np.testing.assert_allclose(np.array([[float(v) for v in r[1:]] for r in rows]), expected, atol=1e-5)


def test_user_mistakes_are_one_line_usage_errors(trained, tmp_path):
    moons, digits = trained["moons"], trained["digits"]
    cases = [
        (moons, write_csv(tmp_path / "wide.csv", np.ones((2, 3)), ["a", "b", "c"]),
         "has 3 columns .* expects 2 features per row"),
        (moons, write_csv(tmp_path / "wide2.csv", np.ones((2, 3))), "line 1 has 3 values .* expects 2 features"),
        (digits, write_csv(tmp_path / "d.csv", np.ones((2, 10))), "has 10 values .* expects 64 features .*1x8x8"),
        (moons, tmp_path / "missing.csv", "input file .*missing.csv does not exist"),
        (moons, tmp_path / "data.txt", "unsupported input file type '.txt'; use .csv or .npy"),
    ]
    (tmp_path / "data.txt").write_text("1,2\n")
    (tmp_path / "cell.csv").write_text("x,y\n1,2\n3,oops\n")
    cases.append((moons, tmp_path / "cell.csv", "line 3, column 2: 'oops' is not a number"))
    (tmp_path / "empty.csv").write_text("1,\n")
    cases.append((moons, tmp_path / "empty.csv", "line 1, column 2: an empty cell is not a number"))
    np.save(tmp_path / "bad.npy", np.ones((4, 7, 7)))
    cases.append((digits, tmp_path / "bad.npy",
                   r"shape \(4, 7, 7\) but the model expects \(N, 1, 8, 8\) or \(N, 8, 8\) or \(N, 64\)"))
    no_model = tmp_path / "no-model"
    shutil.copytree(moons, no_model)
    (no_model / runs.WEIGHTS).unlink()
    cases.append((no_model, write_csv(tmp_path / "ok.csv", np.ones((2, 2))), "has no model.safetensors"))
    for run, path, pattern in cases:
        with pytest.raises(UsageError, match=pattern) as info:
            predict_file(run, path)
        assert "\n" not in str(info.value)


def test_cli_writes_stdout_or_a_file_and_reports_errors(trained, tmp_path):
    run = trained["moons"]
    raw, _ = raw_and_standardised_test(run)
    inp = write_csv(tmp_path / "in.csv", raw[:5], ["x0", "x1"])
    expected = predict_file(run, inp)
    out = run_zoo("predict", str(run), "--input", str(inp), "--device", "cpu", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
    bad = write_csv(tmp_path / "bad.csv", np.ones((2, 5)))
    out = run_zoo("predict", str(run), "--input", str(bad), "--output", str(tmp_path / "never.csv"), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: {bad} line 1 has 5 values but the model expects 2 features per row"]
    assert not (tmp_path / "never.csv").exists()


# -- runs whose dataset encodes raw rows (the csv datasets) ----------------------------------


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A classification CSV with a unique numeric id, a numeric and a categorical feature."""
    base = tmp_path_factory.mktemp("predict-csv")
    rng = np.random.default_rng(0)
    path = base / "train.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "size", "colour", "kind"])
        for i in range(60):
            colour = ["red", "green", "blue"][i % 3]
            size = rng.normal(0.0, 1.0) + {"red": 1.5, "green": 0.0, "blue": -1.5}[colour]
            w.writerow([i, f"{size:.4f}", colour, "big" if size > 0.5 else "small" if size < -0.5 else "mid"])
    run = _train(base / "run", dataset="csv", model="mlp", loss="cross-entropy",
                 params={"path": str(path), "target": "kind"}, epochs=2)
    return run.dir, path


def test_csv_run_predicts_raw_rows_with_a_header_including_an_unseen_category(csv_run, tmp_path):
    run, _ = csv_run
    assert (run / runs.PREPROCESS_STATE).is_file()
    inp = tmp_path / "new.csv"
    inp.write_text("colour,size,id\nred,1.2,3\npurple,0.1,4\n\ngreen,-0.7,5\n")  # any column order; blank line
    header, rows = parse(predict_file(run, inp))
    assert header == ["label", "prob_big", "prob_mid", "prob_small"]
    assert len(rows) == 3 and all(r[0] in ("big", "mid", "small") for r in rows)
    probs = np.array([[float(v) for v in r[1:]] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    # the same as the model on the encoded, standardised rows: an unseen colour is all zeros
    from zoo_tabular.csvdata import encode

    state = json.loads((run / runs.PREPROCESS_STATE).read_text())
    assert state["categories"]["colour"] == ["blue", "green", "red"]
    raw = encode([{"id": "3", "size": "1.2", "colour": "red"}, {"id": "4", "size": "0.1", "colour": "purple"},
                  {"id": "5", "size": "-0.7", "colour": "green"}], state)
    np.testing.assert_array_equal(raw[1], [4.0, np.float32(0.1), 0.0, 0.0, 0.0])
    model = load_run_model(run, "cpu")[0]
    expected = torch.softmax(model_outputs(run, model.standardize(torch.from_numpy(raw))), dim=1)
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-6)
    assert [r[0] for r in rows] == [state["classes"][i] for i in expected.argmax(1).tolist()]


def test_csv_predictions_on_the_training_file_equal_the_model_on_its_splits(csv_run, tmp_path):
    run, path = csv_run
    header, rows = parse(predict_file(run, path))  # the raw training file, target column included
    probs = np.array([[float(v) for v in r[1:]] for r in rows])
    cfg = runs.read_config(run)
    splits = load_data(entries_for(cfg), cfg)
    pre = splits.preprocess
    for part in ("train", "val", "test"):
        X = splits.split(part)[0]
        ids = torch.round(X[:, 0] * pre["std"][0] + pre["mean"][0]).long().numpy()  # the id column, raw
        expected = torch.softmax(model_outputs(run, X), dim=1).numpy()
        np.testing.assert_allclose(probs[ids], expected, atol=1e-6)


def test_csv_run_input_mistakes_are_one_line_usage_errors(csv_run, tmp_path):
    run, _ = csv_run
    cases = {
        "nocol.csv": ("id,colour\n1,red\n", r"missing column 'size'; the model was trained on the columns id, "
                      "size, colour, and the first line must be a header naming them"),
        "typo.csv": ("id,sise,colour\n1,2,red\n", r"missing column 'size' \(is 'sise' meant to be 'size'\?\)"),
        "noheader.csv": ("1,2,red\n3,4,blue\n", "missing columns .* the first line must be a header naming them"),
        "numbers.csv": ("1,2,3\n", "has no header row .*needs a first line naming the columns"),
        "otherheader.csv": ("a,b,c\n1,2,red\n", "missing columns 'id', 'size', 'colour'; the model was trained"),
        "cell.csv": ("id,size,colour\n1,2,red\n2,big,red\n", "data row 2, column 'size': 'big' is not a number"),
        "ragged.csv": ("id,size,colour\n1,2\n", "line 2 has 2 values but the header names 3 columns"),
        "headeronly.csv": ("id,size,colour\n", "has no data rows"),
    }
    for name, (text, pattern) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(UsageError, match=pattern) as info:
            predict_file(run, tmp_path / name)
        assert "\n" not in str(info.value)
        assert str(info.value).startswith(str(tmp_path / name))
    out = run_zoo("predict", str(run), "--input", str(tmp_path / "typo.csv"), cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1
