"""Metrics on tiny hand-made cases whose values are worked out by hand in the comments."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from astromodal.errors import BadValueError
from astromodal.evaluation.metrics import (
    bootstrap_confusion,
    classification_metrics,
    markdown_table,
    regression_metrics,
    summarise_runs,
)


def test_binary_confusion_f1_and_auc():
    y_true = [0, 0, 0, 1, 1]
    y_pred = [0, 1, 0, 1, 0]
    # rows = true: true 0 -> predicted (0, 1, 0) = 2 right, 1 wrong; true 1 -> (1, 0) = 1 right, 1 wrong
    # class 0: P = 2/3 (predicted 0 three times, 2 right), R = 2/3, F1 = 2/3
    # class 1: P = 1/2, R = 1/2, F1 = 1/2;  macro F1 = balanced accuracy = (2/3 + 1/2) / 2 = 7/12
    # AUC from p(1) = [.1 .6 .2 | .9 .4]: pairs (pos > neg): 0.9 beats 3, 0.4 beats 0.1 and 0.2 -> 5/6
    proba1 = np.array([0.1, 0.6, 0.2, 0.9, 0.4])
    m = classification_metrics(y_true, y_pred, np.stack([1 - proba1, proba1], 1), class_names=["star", "qso"])
    assert m["confusion_matrix"] == [[2, 1], [1, 1]]
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["per_class"]["star"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert m["per_class"]["qso"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["macro_f1"] == pytest.approx(7 / 12)
    assert m["balanced_accuracy"] == pytest.approx(7 / 12)
    assert m["roc_auc"] == pytest.approx(5 / 6)
    assert m["n"] == 5
    json.dumps(m)  # plain JSON types only


def test_three_class_macro_f1():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    # class 0: TP 1, predicted twice, 2 true -> P 1/2, R 1/2, F1 1/2
    # class 1: TP 2, predicted 3 times, 2 true -> P 2/3, R 1, F1 = 2 (2/3)(1) / (5/3) = 4/5
    # class 2: TP 1, predicted once, 2 true -> P 1, R 1/2, F1 2/3
    # macro F1 = (1/2 + 4/5 + 2/3) / 3 = 59/90; balanced accuracy = (1/2 + 1 + 1/2) / 3 = 2/3
    m = classification_metrics(y_true, y_pred, class_names=["STAR", "GALAXY", "QSO"])
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["macro_f1"] == pytest.approx(59 / 90)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["GALAXY"]["f1"] == pytest.approx(0.8)
    assert m["roc_auc"] is None  # no probabilities given


def test_multiclass_auc_ovr_and_absent_class():
    y = np.array([0, 0, 1, 1, 2, 2])
    perfect = np.eye(3)[y] * 0.8 + 0.1  # the true class always gets the highest score -> every OvR AUC is 1
    assert classification_metrics(y, y, perfect)["roc_auc"] == pytest.approx(1.0)
    # class 0 scores ranked backwards (true 0s get the lowest p0), others perfect: AUCs 0, 1, 1 -> mean 2/3
    p = perfect.copy()
    p[:, 0] = [0.0, 0.0, 0.9, 0.9, 0.9, 0.9]
    assert classification_metrics(y, y, p)["roc_auc"] == pytest.approx(2 / 3)
    # class 2 absent from the truth: the AUC is undefined
    assert classification_metrics([0, 1, 1], [0, 1, 2], np.full((3, 3), 1 / 3))["roc_auc"] is None
    # a class never seen still gets a confusion row/column (K from class_names)
    m = classification_metrics([0, 1], [0, 1], class_names=["a", "b", "c"])
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert m["per_class"]["c"]["support"] == 0 and m["macro_f1"] == pytest.approx(1.0)


def test_classification_errors_name_the_problem():
    with pytest.raises(BadValueError, match="outside 0..2"):
        classification_metrics([0, 3], [0, 1], class_names=["a", "b", "c"])
    with pytest.raises(BadValueError, match="2 objects but y_pred has 3"):
        classification_metrics([0, 1], [0, 1, 1])
    with pytest.raises(BadValueError, match="proba has 3 columns"):
        classification_metrics([0, 1], [0, 1], np.ones((2, 3)) / 3, class_names=["a", "b"])
    # text labels are mapped through class_names
    m = classification_metrics(["b", "a"], ["b", "b"], class_names=["a", "b"])
    assert m["confusion_matrix"] == [[0, 1], [0, 1]]


def test_regression_known_case():
    y_true = [1.0, 2.0, 3.0, 4.0]
    y_pred = [1.5, 2.0, 2.5, 5.0]
    # residuals pred - true = [0.5, 0, -0.5, 1]
    # RMSE = sqrt((0.25 + 0 + 0.25 + 1) / 4) = sqrt(0.375); MAE = 2 / 4 = 0.5; bias = 1 / 4 = 0.25
    # R^2 = 1 - SS_res / SS_tot = 1 - 1.5 / 5 = 0.7  (mean truth 2.5: 2.25 + 0.25 + 0.25 + 2.25 = 5)
    # sigma = sqrt(0.375 - 0.25^2) = sqrt(0.3125)
    # NMAD: median res = 0.25; |res - 0.25| = [0.25, 0.25, 0.75, 0.75], median 0.5 -> 1.4826 * 0.5 = 0.7413
    m = regression_metrics(y_true, y_pred)
    assert m["rmse"] == pytest.approx(math.sqrt(0.375))
    assert m["mae"] == pytest.approx(0.5)
    assert m["bias"] == pytest.approx(0.25)
    assert m["r2"] == pytest.approx(0.7)
    assert m["sigma"] == pytest.approx(math.sqrt(0.3125))
    assert m["nmad"] == pytest.approx(0.7413)
    assert m["n"] == 4
    assert m["rmse"] ** 2 == pytest.approx(m["bias"] ** 2 + m["sigma"] ** 2)


def test_nmad_ignores_outliers_sigma_does_not():
    rng = np.random.default_rng(1)
    truth = rng.uniform(0, 1, 20000)
    pred = truth + rng.normal(0, 0.2, truth.size)
    clean = regression_metrics(truth, pred)
    assert clean["nmad"] == pytest.approx(0.2, rel=0.03) and clean["sigma"] == pytest.approx(0.2, rel=0.03)
    pred[:1000] += 5.0  # 5% catastrophic outliers
    dirty = regression_metrics(truth, pred)
    assert dirty["nmad"] == pytest.approx(0.2, rel=0.1)
    assert dirty["sigma"] > 1.0


def test_regression_errors():
    with pytest.raises(BadValueError, match="row 1"):
        regression_metrics([1.0, np.nan], [1.0, 2.0])
    assert regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"] is None  # constant truth: R^2 undefined


def test_summarise_runs():
    # mean 0.9; sample std sqrt((0.01 + 0 + 0.01) / 2) = 0.1
    s = summarise_runs([0.8, 0.9, 1.0])
    assert s == pytest.approx({"mean": 0.9, "std": 0.1, "min": 0.8, "max": 1.0, "n": 3})
    assert summarise_runs([0.5])["std"] == 0.0
    with pytest.raises(BadValueError):
        summarise_runs([])


def test_markdown_table():
    rows = [{"model": "rf", "acc": 0.91234, "n": 10}, {"model": "a|b", "acc": None, "n": np.int64(3)}]
    text = markdown_table(rows, floatfmt=".2f")
    assert text == (
        "| model | acc | n |\n"
        "| --- | --- | --- |\n"
        "| rf | 0.91 | 10 |\n"
        "| a\\|b |  | 3 |\n"
    )
    assert markdown_table(rows, ["n"]).splitlines()[2] == "| 10 |"


def test_best_threshold_hand_made():
    from astromodal.evaluation.metrics import best_threshold, decide

    # p:  0.1 0.2 0.3 0.35 0.6 0.8 ; y: 0 0 1 0 1 1
    # rules "p >= u": 0.8 -> TPR 1/3, TNR 1 (BA 2/3); 0.6 -> 2/3, 1 (5/6); 0.35 -> 2/3, 2/3 (2/3);
    # 0.3 -> 1, 2/3 (5/6); 0.2 -> 1, 1/3 (2/3); 0.1 -> 1, 0 (1/2). Two ties at 5/6: u = 0.6 gives the
    # threshold (0.6 + 0.35) / 2 = 0.475, u = 0.3 gives (0.3 + 0.2) / 2 = 0.25; 0.475 is nearer 0.5.
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.8])
    assert best_threshold(y, p) == pytest.approx(0.475)
    # f1 of class 1: u = 0.3: precision 3/4, recall 1 -> 6/7 (best); u = 0.6: precision 1, recall 2/3 -> 4/5
    assert best_threshold(y, p, "f1") == pytest.approx(0.25)
    # an imbalanced case where 0.5 is poor: the positives have p 0.2 and 0.3, negatives at most 0.15
    y2 = np.array([0] * 8 + [1] * 2)
    p2 = np.array([0.01, 0.02, 0.05, 0.1, 0.12, 0.13, 0.14, 0.15, 0.2, 0.3])
    t2 = best_threshold(y2, p2)
    assert t2 == pytest.approx(0.175)
    # hard 0/1 scores (a 1-nearest-neighbour model): the threshold sits between them, so that an
    # ensemble averaging several such models decides by majority
    assert best_threshold([0, 0, 1, 1, 0], [0.0, 0.0, 1.0, 1.0, 1.0]) == pytest.approx(0.5)
    proba2 = np.stack([1 - p2, p2], axis=1)
    assert decide(proba2).tolist() == [0] * 10  # argmax: p >= 0.5 never happens
    assert decide(proba2, t2).tolist() == y2.tolist()
    assert decide(np.array([[0.2, 0.5, 0.3]]), 0.1).tolist() == [1]  # threshold only for two classes
    with pytest.raises(BadValueError, match="both present"):
        best_threshold([1, 1], [0.2, 0.3])
    with pytest.raises(BadValueError, match="unknown threshold metric"):
        best_threshold(y, p, "accuracy")


def test_bootstrap_confusion_intervals():
    # a perfect classifier: every resample is perfect
    ci = bootstrap_confusion([[30, 0], [0, 10]])
    assert ci == {"accuracy": [1.0, 1.0], "balanced_accuracy": [1.0, 1.0], "macro_f1": [1.0, 1.0]}
    # 400 objects, 360 right: the accuracy interval is the binomial one, 0.9 +- 1.96 sqrt(0.9 * 0.1 / 400)
    cm = [[180, 20], [20, 180]]
    ci = bootstrap_confusion(cm, n_boot=20000, seed=1)
    half = 1.96 * math.sqrt(0.9 * 0.1 / 400)
    assert ci["accuracy"][0] == pytest.approx(0.9 - half, abs=0.004)
    assert ci["accuracy"][1] == pytest.approx(0.9 + half, abs=0.004)
    # each interval holds its point estimate; the same seed gives the same interval
    cm = [[50, 5, 0], [10, 20, 5], [0, 2, 8]]
    point = classification_metrics(np.repeat([0, 0, 1, 1, 1, 2, 2], [50, 5, 10, 20, 5, 2, 8]),
                                   np.repeat([0, 1, 0, 1, 2, 1, 2], [50, 5, 10, 20, 5, 2, 8]))
    assert point["confusion_matrix"] == cm
    ci = bootstrap_confusion(cm)
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert ci[name][0] < point[name] < ci[name][1]
    assert ci == bootstrap_confusion(cm) and ci != bootstrap_confusion(cm, seed=3)
    # the minority class makes balanced accuracy less certain than accuracy
    assert ci["balanced_accuracy"][1] - ci["balanced_accuracy"][0] > ci["accuracy"][1] - ci["accuracy"][0]
    with pytest.raises(BadValueError, match="square"):
        bootstrap_confusion([[1, 2, 3]])
    with pytest.raises(BadValueError, match="empty"):
        bootstrap_confusion([[0, 0], [0, 0]])


def test_gaussian_uncertainty_scores_by_hand():
    # truth (0, 1, 2), predicted mean 0 everywhere, variances (1, 1, 4): sigma (1, 1, 2)
    # z = |y - mu| / sigma = (0, 1, 1)
    # NLL = mean(0.5 log(2 pi var) + z^2 / 2) = (0.5 log 2pi + 0.5 log 2pi + 0.5 + 0.5 log 8pi + 0.5) / 3
    #     = (1.5 log(2 pi) + log 2 + 1) / 3 = 1.48332...
    # 68 % interval +-0.9945 sigma holds only z = 0: 1/3; 95 % interval +-1.96 sigma holds all three: 1
    m = regression_metrics([0.0, 1.0, 2.0], [0.0, 0.0, 0.0], var=[1.0, 1.0, 4.0])
    assert m["nll"] == pytest.approx((1.5 * math.log(2 * math.pi) + math.log(2) + 1) / 3)
    assert m["coverage_68"] == pytest.approx(1 / 3) and m["coverage_95"] == 1.0
    assert m["median_sigma"] == 1.0 and m["rmse"] == pytest.approx(math.sqrt(5 / 3))
    # z = 1 exactly lies outside the central 68 % interval, z = 0.99 inside
    assert regression_metrics([0.99], [0.0], var=[1.0])["coverage_68"] == 1.0
    # no uncertainty predicted (NaN everywhere, or none given): no uncertainty scores, never made-up ones
    assert "nll" not in regression_metrics([0.0, 1.0], [0.0, 0.0], var=[np.nan, np.nan])
    assert "nll" not in regression_metrics([0.0, 1.0], [0.0, 0.0])
    with pytest.raises(BadValueError, match="row 1"):
        regression_metrics([0.0, 1.0], [0.0, 0.0], var=[1.0, 0.0])


def test_trivial_baselines_by_hand():
    from astromodal.evaluation.metrics import beats_baseline, trivial_baseline

    # training labels (0, 1, 1, 2): majority 1 ("b"); test (0, 1, 2, 2): accuracy 1/4; recalls (0, 1, 0): 1/3
    b = trivial_baseline([0, 1, 1, 2], [0, 1, 2, 2], "classification", ["a", "b", "c"])
    assert b["kind"] == "majority_class" and b["value"] == "b"
    assert b["metrics"]["accuracy"] == 0.25 and b["metrics"]["balanced_accuracy"] == pytest.approx(1 / 3)
    better = classification_metrics([0, 1, 2, 2], [0, 1, 1, 1], class_names=["a", "b", "c"])  # recalls 1, 1, 0
    worse = classification_metrics([0, 1, 2, 2], [1, 1, 1, 1], class_names=["a", "b", "c"])  # the baseline itself
    assert beats_baseline("classification", better, b) and not beats_baseline("classification", worse, b)
    # training mean 2; test (2, 4): RMSE sqrt((0 + 4) / 2) = sqrt 2, R^2 = 1 - 4 / 2 = -1
    r = trivial_baseline([1.0, 2.0, 3.0], [2.0, 4.0], "regression")
    assert r["kind"] == "training_mean" and r["value"] == 2.0
    assert r["metrics"]["rmse"] == pytest.approx(math.sqrt(2)) and r["metrics"]["r2"] == pytest.approx(-1.0)
    assert beats_baseline("regression", regression_metrics([2.0, 4.0], [2.0, 3.0]), r)  # RMSE sqrt(1/2)
    assert not beats_baseline("regression", regression_metrics([2.0, 4.0], [2.0, 2.0]), r)  # equal: not better


def test_pit_values_histogram_and_mean_sigma_by_hand():
    from astromodal.evaluation.metrics import pit_histogram, pit_values

    # truth (0, 1, -1), mean 0, variances (1, 1, 4): z = (0, 1, -0.5); Phi(0) = 0.5, Phi(1) = 0.841345,
    # Phi(-0.5) = 0.308538
    u = pit_values([0.0, 1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 4.0])
    np.testing.assert_allclose(u, [0.5, 0.8413447460685429, 0.3085375387259869], rtol=1e-12)
    # 10 equal bins: 0.05 -> bin 0, 0.15 twice -> bin 1, exactly 1 -> the last bin; fractions of 4 objects
    h = pit_histogram([0.05, 0.15, 0.15, 1.0])
    assert h["n"] == 4 and h["edges"][0] == 0.0 and h["edges"][-1] == 1.0 and len(h["edges"]) == 11
    assert h["fraction"] == [0.25, 0.5, 0, 0, 0, 0, 0, 0, 0, 0.25]
    # mean predicted sigma of sigmas (1, 1, 2): 4/3 (the median stays 1)
    m = regression_metrics([0.0, 1.0, 2.0], [0.0, 0.0, 0.0], var=[1.0, 1.0, 4.0])
    assert m["mean_sigma"] == pytest.approx(4 / 3) and m["median_sigma"] == 1.0
    with pytest.raises(BadValueError, match="row 1"):
        pit_values([0.0, 1.0], [0.0, 0.0], [1.0, np.nan])
