"""Scores on the labels the model was trained on: a separate test file's classes are coded by name with
the training classes (issue 10, item 4), and the recorded table preparation replays on a raw file (item 6)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import accuracy_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

from astromodal.cli import app
from astromodal.data.dataset import Target
from astromodal.errors import BadValueError

runner = CliRunner()
FEATURES = ["f0", "f1", "f2"]


def _frame(classes: list[str], n_per: int, seed: int) -> pd.DataFrame:
    """Three overlapping classes in three columns (a tree gets most, not all, right)."""
    rng = np.random.default_rng(seed)
    centre = {"A": 0.0, "B": 1.5, "C": 3.0, "D": 1.5}
    rows = []
    for c in classes:
        x = rng.normal(size=(n_per, 3)) + centre[c]
        rows += [{"label": c, "f0": a, "f1": b, "f2": d} for a, b, d in x]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _sklearn_tree(train: pd.DataFrame, test: pd.DataFrame, features: list[str], label: str) -> np.ndarray:
    """The registered decision_tree (gini, depth 10, seed 0) behind a StandardScaler, in plain scikit-learn."""
    model = Pipeline([("scale", StandardScaler()),
                      ("model", DecisionTreeClassifier(criterion="gini", max_depth=10, splitter="best", random_state=0))])
    model.fit(train[features].to_numpy(np.float64), train[label].astype(str).to_numpy())
    return model.predict(test[features].to_numpy(np.float64))


def _write_config(tmp_path, options: dict, target: str = "label", **dataset) -> str:
    cfg = {
        "name": "labels",
        "datasets": {"t": {"source": "table", "target": target, "options": options, **dataset}},
        "representations": {"cols": {"kind": "columns", "columns": options.get("features", FEATURES)}},
        "models": [{"name": "decision_tree"}],
        "report": {"embeddings": [], "confusion_matrices": False, "roc_curves": False},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _bench(tmp_path, config: str, out: str = "run") -> tuple[int, str, dict | None]:
    result = runner.invoke(app, ["benchmark", config, "--out", str(tmp_path / out)])
    path = tmp_path / out / "results.json"
    return result.exit_code, result.output, json.loads(path.read_text()) if path.is_file() else None


# ---------------------------------------------------------------------- Target.recode
def test_recode_by_name_onto_training_classes():
    test = Target.from_labels(["C", "A", "C"])  # coded on its own: A 0, C 1
    assert test.values.read().tolist() == [1, 0, 1]
    aligned = test.recode(["A", "B", "C"])
    assert aligned.class_names == ("A", "B", "C")
    assert aligned.values.read().tolist() == [2, 0, 2]
    assert aligned.labels().tolist() == ["C", "A", "C"]


def test_recode_unseen_class_error_names_class_and_count():
    test = Target.from_labels(["A", "D", "D", "C"])
    with pytest.raises(BadValueError, match=r"test.csv: class 'D' \(2 rows\) not among the training classes"):
        test.recode(["A", "B", "C"], where="test.csv")
    appended = test.recode(["A", "B", "C"], unseen="append")
    assert appended.class_names == ("A", "B", "C", "D")
    assert appended.values.read().tolist() == [0, 3, 3, 2]


# ---------------------------------------------------------------------- the benchmark on a test file
def test_test_file_without_a_class_scores_like_sklearn(tmp_path):
    train = _frame(["A", "B", "C"], 10, seed=1)  # 30 rows
    test = _frame(["A", "C"], 15, seed=2)  # no B: coded on its own, C would become B's code
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    config = _write_config(tmp_path, {"path": "train.csv", "test_path": "test.csv", "features": FEATURES,
                                      "label": "label"})
    code, output, results = _bench(tmp_path, config)
    assert code == 0, output
    cell = results["cells"][0]
    expected = accuracy_score(test["label"], _sklearn_tree(train, test, FEATURES, "label"))
    assert 0.5 < expected < 1.0
    assert cell["metrics"]["accuracy"] == expected
    assert cell["class_names"] == ["A", "B", "C"]
    assert cell["metrics"]["per_class"]["B"]["support"] == 0
    assert cell["metrics"]["per_class"]["C"]["support"] == 15
    # the data table counts the training and the test file apart
    md = (tmp_path / "run" / "report.md").read_text()
    assert "train classes" in md and "test classes" in md
    assert "A 10, B 10, C 10" in md and "A 15, B 0, C 15" in md


def test_unseen_test_class_is_one_line_error(tmp_path):
    train = _frame(["A", "B", "C"], 10, seed=1)
    test = _frame(["A", "C", "D"], 5, seed=2)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    config = _write_config(tmp_path, {"path": "train.csv", "test_path": "test.csv", "features": FEATURES,
                                      "label": "label"})
    result = subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", "benchmark", config,
                             "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    assert "'D' (5 rows)" in line and "test.csv" in line and "unseen_test_classes: count_wrong" in line
    assert not (tmp_path / "run" / "cells").exists() or not any((tmp_path / "run" / "cells").iterdir())


def test_unseen_test_class_counted_wrong_on_request(tmp_path):
    train = _frame(["A", "B", "C"], 10, seed=1)
    test = _frame(["A", "C", "D"], 6, seed=3)  # 18 rows, 6 of a class never trained on
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    config = _write_config(tmp_path, {"path": "train.csv", "test_path": "test.csv", "features": FEATURES,
                                      "label": "label"}, unseen_test_classes="count_wrong")
    code, output, results = _bench(tmp_path, config)
    assert code == 0, output
    cell = results["cells"][0]
    pred = _sklearn_tree(train, test, FEATURES, "label")
    known = test["label"].to_numpy() != "D"
    n_right = int(np.sum(pred[known] == test["label"].to_numpy()[known]))
    assert cell["metrics"]["accuracy"] == n_right / 18  # the D rows are kept, each one wrong
    assert cell["n_test"] == 18
    assert cell["class_names"] == ["A", "B", "C", "D"]
    assert cell["metrics"]["per_class"]["D"]["support"] == 6 and cell["metrics"]["per_class"]["D"]["recall"] == 0.0
    assert cell["metrics"]["confusion_matrix"][3][3] == 0 and sum(cell["metrics"]["confusion_matrix"][3]) == 6
    assert cell["metrics"]["roc_auc"] is None  # no probability for a class the model never saw
    assert any("'D'" in n or "D (6 objects)" in n for n in results["notes"])


def test_keep_classes_with_a_test_file_lacking_one(tmp_path):
    train = _frame(["A", "B", "C"], 10, seed=1)
    test = _frame(["A", "C", "D"], 5, seed=2)  # D is dropped by keep_classes, B is absent
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    config = _write_config(tmp_path, {"path": "train.csv", "test_path": "test.csv", "features": FEATURES,
                                      "label": "label"}, keep_classes=["C", "B", "A"])
    code, output, results = _bench(tmp_path, config)
    assert code == 0, output
    cell = results["cells"][0]
    kept = test[test["label"] != "D"]
    assert cell["n_test"] == 10 and cell["class_names"] == ["C", "B", "A"]
    assert cell["metrics"]["accuracy"] == accuracy_score(kept["label"], _sklearn_tree(train, kept, FEATURES, "label"))


def test_sdss_test_file_without_quasars_matches_sklearn(tmp_path, shared_data):
    path = shared_data / "sdss-dr17-photometry" / "StellarObjs.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    frame = pd.read_csv(path, nrows=8000)
    train = frame.iloc[:3000]
    rest = frame.iloc[3000:]
    test = rest[rest["class"] != "QSO"].iloc[:1000]
    assert set(train["class"]) == {"GALAXY", "QSO", "STAR"} and len(test) == 1000
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    raw = ["ultraviolet_filter", "green_filter", "red_filter", "near_infrared_filter", "infrared_filter", "redshift"]
    config = _write_config(tmp_path, {"path": "train.csv", "test_path": "test.csv", "label": "class",
                                      "features": ["u", "g", "r", "i", "z", "redshift"]}, target="class")
    code, output, results = _bench(tmp_path, config)
    assert code == 0, output
    expected = accuracy_score(test["class"], _sklearn_tree(train, test, raw, "class"))
    assert expected > 0.9
    assert abs(results["cells"][0]["metrics"]["accuracy"] - expected) <= 1e-12


# ---------------------------------------------------------------------- item 6: predict replays the preparation
def _photometry(n: int, seed: int) -> pd.DataFrame:
    """Raw catalogue rows: five magnitudes under survey names, classes told apart by their colours."""
    rng = np.random.default_rng(seed)
    cls = rng.choice(["STAR", "GALAXY", "QSO"], size=n)
    offset = {"STAR": 0.0, "GALAXY": 0.6, "QSO": -0.5}
    base = rng.uniform(17, 21, n)
    frame = {"objid": 1237645876861272064 + rng.permutation(10 * n)[:n].astype(np.int64),
             "RA_ICRS": rng.uniform(0, 360, n), "DE_ICRS": rng.uniform(-10, 60, n)}
    for k, band in enumerate("ugriz"):
        shift = np.array([offset[c] for c in cls]) * (2 - k) + rng.normal(0, 0.4, n)
        frame[f"mag_{band}"] = base + shift
    frame["kind"] = cls
    return pd.DataFrame(frame)


def test_saved_model_predicts_the_raw_test_file_with_the_benchmark_accuracy(tmp_path):
    train, test = _photometry(150, seed=5), _photometry(60, seed=6)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    columns = ["u", "g", "r", "i", "z", "u-g", "g-r", "r-i", "i-z"]
    options = {"path": "train.csv", "test_path": "test.csv", "features": list("ugriz"), "label": "kind",
               "target_name": "class", "colours": True, "rename": {f"mag_{b}": b for b in "ugriz"}}
    config = _write_config(tmp_path, options, target="class")
    cfg = yaml.safe_load(open(config))
    cfg["representations"]["cols"]["columns"] = columns
    cfg["save_models"] = True
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    code, output, results = _bench(tmp_path, config)
    assert code == 0, output
    cell = results["cells"][0]
    accuracy = cell["metrics"]["accuracy"]
    assert 0.5 < accuracy < 1.0
    model_dir = tmp_path / "run" / cell["model_dir"]
    recipe = json.loads((model_dir / "predictor.json").read_text())["preparation"]
    assert recipe["feature_columns"] == columns and recipe["label"]["class_names"] == ["GALAXY", "QSO", "STAR"]
    # the raw test file, not prepared: names mag_u ..., no colours
    result = runner.invoke(app, ["predict", str(model_dir), str(tmp_path / "test.csv"), "--out",
                                 str(tmp_path / "pred.parquet"), "--trust"])
    assert result.exit_code == 0, result.output
    pred = pd.read_parquet(tmp_path / "pred.parquet")
    assert len(pred) == len(test)
    assert pred["id"].astype(str).tolist() == test["objid"].astype(str).tolist()
    assert accuracy_score(test["kind"], pred["label"]) == accuracy
