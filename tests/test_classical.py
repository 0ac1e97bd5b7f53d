"""The classical suite of study A (settings, overrides, fitting) and the neural MLP for catalogue columns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import r2_score

from astromodal.errors import ConfigError
from astromodal.models.classical import CLASSICAL_SUITE_A, TREE_REGRESSORS, UniformPriorGaussianNB
from astromodal.models.registry import build_model, count_parameters, get_model, list_models
from astromodal.models.tabular import ColumnsMLP


def blobs(n=150, f=6, sep=6.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, f)) + sep * np.eye(3, f)[y]
    return X, y


def test_suite_is_the_twelve_of_study_a_in_table_order():
    assert CLASSICAL_SUITE_A == (
        "decision_tree", "extra_tree", "gaussian_nb", "gradient_boosting", "kneighbors", "linear_svc",
        "logistic_regression", "mlp", "passive_aggressive", "perceptron", "random_forest", "sgd",
    )
    for name in CLASSICAL_SUITE_A:
        spec = get_model(name)
        assert (spec.family, spec.modality, spec.study, spec.tasks) == ("classical", "columns", "A", ("classification",))
    study_a_classical = {s.name for s in list_models(family="classical", study="A")}
    assert study_a_classical == set(CLASSICAL_SUITE_A)
    assert get_model("hist_gradient_boosting").family == "classical"
    for name in TREE_REGRESSORS:
        spec = get_model(name)
        assert spec.tasks == ("regression",) and spec.study == "D"


@pytest.mark.parametrize("name", [*CLASSICAL_SUITE_A, "hist_gradient_boosting"])
def test_every_classifier_fits_a_separable_problem(name):
    X, y = blobs()
    model = build_model(name)
    model.fit(X[:90], y[:90])
    assert np.mean(model.predict(X[90:]) == y[90:]) >= 0.9
    clone(model)  # a valid scikit-learn estimator (the k-fold code clones models)


def test_study_a_settings_are_the_defaults():
    gb = build_model("gradient_boosting")
    assert (gb.max_depth, gb.n_estimators, gb.loss) == (10, 100, "log_loss")
    assert get_model("gradient_boosting").default_options == {"loss": "log_loss", "max_depth": 10, "n_estimators": 100}
    rf = build_model("random_forest")
    assert (rf.criterion, rf.max_depth, rf.n_estimators) == ("entropy", 100, 100)
    dt = build_model("decision_tree")
    assert (dt.criterion, dt.max_depth, dt.splitter) == ("gini", 10, "best")
    assert build_model("extra_tree").splitter == "random"
    knn = build_model("kneighbors")
    assert (knn.n_neighbors, knn.p, knn.weights) == (1, 2, "uniform")
    assert tuple(build_model("mlp").hidden_layer_sizes) == (100, 10)
    assert build_model("perceptron").penalty == "l1"
    assert build_model("sgd").loss == "modified_huber"
    lr = build_model("logistic_regression")  # one-vs-rest, C = 100
    assert type(lr).__name__ == "OneVsRestClassifier" and lr.estimator.C == 100.0 and lr.estimator.max_iter >= 1000
    assert type(build_model("logistic_regression", multi_class="multinomial")).__name__ == "LogisticRegression"
    pa = build_model("passive_aggressive")
    assert pa.get_params().get("eta0", pa.get_params().get("C")) == 100.0


def test_options_override_defaults_and_bad_options_are_named():
    gb = build_model("gradient_boosting", max_depth=3)
    assert (gb.max_depth, gb.n_estimators) == (3, 100)
    rf = build_model("random_forest", n_estimators=7, random_state=5)
    assert (rf.n_estimators, rf.criterion, rf.random_state) == (7, "entropy", 5)
    pa = build_model("passive_aggressive", C=0.5).get_params()
    assert pa.get("eta0", pa.get("C")) == 0.5
    with pytest.raises(ConfigError, match="'random_forest'.*n_trees"):
        build_model("random_forest", n_trees=10)
    with pytest.raises(ConfigError, match="'decision_tree'.*criterion"):
        build_model("decision_tree", criterion="purity")
    with pytest.raises(ConfigError, match="multi_class"):
        build_model("logistic_regression", multi_class="crammer")


def test_passive_aggressive_equals_the_classic_algorithm():
    sklearn_pa = pytest.importorskip("sklearn.linear_model")
    if not hasattr(sklearn_pa, "PassiveAggressiveClassifier"):
        pytest.skip("scikit-learn without PassiveAggressiveClassifier")
    import warnings

    X, y = blobs(sep=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sklearn_pa.PassiveAggressiveClassifier(C=100.0, random_state=0).fit(X, y)
    ours = build_model("passive_aggressive").fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_)


def test_gaussian_nb_uses_equal_priors():
    # 90 objects of class 0, 10 of class 1: frequency priors would be 0.9 / 0.1, the study's are 1/2 each
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(90, int), np.ones(10, int)]
    X = rng.normal(size=(100, 2)) + 3.0 * y[:, None]
    nb = build_model("gaussian_nb").fit(X, y)
    np.testing.assert_allclose(nb.class_prior_, [0.5, 0.5])
    freq = UniformPriorGaussianNB(uniform_priors=False).fit(X, y)
    np.testing.assert_allclose(freq.class_prior_, [0.9, 0.1])
    # equal priors move the decision boundary towards the frequent class: the midpoint goes to the rare class more
    mid = np.full((1, 2), 1.5)
    assert nb.predict_proba(mid)[0, 1] > freq.predict_proba(mid)[0, 1]


@pytest.mark.parametrize("name", TREE_REGRESSORS)
def test_tree_regressors_fit(name):
    X, _ = blobs(n=200, f=4, sep=0.0, seed=3)
    y = 2.0 * X[:, 0] - X[:, 1]
    model = build_model(name).fit(X[:150], y[:150])
    assert r2_score(y[150:], model.predict(X[150:])) > 0.8


# ---------------------------------------------------------------------- neural MLP on columns
def test_mlp_columns_parameter_count_and_shape():
    spec = get_model("mlp_columns")
    assert (spec.family, spec.modality, spec.tasks) == ("neural", "columns", ("classification", "regression"))
    model = build_model("mlp_columns", input_shape=(5,), n_outputs=3)
    assert ColumnsMLP.inputs == ("columns",)
    # (5 + 1) * 128 = 768;  (128 + 1) * 64 = 8256;  (64 + 1) * 3 = 195;  total 9219
    # (the input standardisation has running statistics but no trainable parameter)
    assert count_parameters(model) == 768 + 8256 + 195 == 9219
    model.eval()
    assert model(columns=torch.zeros(7, 5)).shape == (7, 3)
    # one hidden layer of 16 on 4 columns, one regression output: (4 + 1) * 16 + (16 + 1) * 1 = 97
    small = build_model("mlp_columns", input_shape=(4,), n_outputs=1, hidden=[16], dropout=0.0)
    assert count_parameters(small) == 97
    assert small(columns=torch.zeros(2, 4)).shape == (2, 1)
    small.train()
    assert small(columns=torch.ones(1, 4)).shape == (1, 1)  # a training batch of one object works
    with pytest.raises(ConfigError, match="input_shape"):
        build_model("mlp_columns", input_shape=(3, 4))
    with pytest.raises(ConfigError, match="dropout"):
        build_model("mlp_columns", input_shape=(3,), dropout=1.5)


def test_mlp_columns_learns_unscaled_catalogue_columns():
    torch.manual_seed(0)
    X, y = blobs(n=300, f=4, sep=3.0)
    X = X * np.array([0.3, 10.0, 100.0, 1.0]) + np.array([20.0, 1.0, -50.0, 1000.0])  # mag-, mas-, mas/yr-like
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    model = build_model("mlp_columns", input_shape=(4,), n_outputs=3, hidden=(32,))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        model.train()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(columns=Xt[:200]), yt[:200])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(columns=Xt[200:]).argmax(1) == yt[200:]).float().mean().item()
    assert acc >= 0.9


def test_soft_vote_is_the_mean_of_member_probabilities():
    from astromodal.models.registry import build_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    members = [{"name": "logistic_regression"}, {"name": "random_forest", "options": {"n_estimators": 10}}]
    vote = build_model("soft_vote", members=members).fit(X, y)
    parts = [build_model(m["name"], **m.get("options", {})).fit(X, y).predict_proba(X[:20]) for m in members]
    np.testing.assert_allclose(vote.predict_proba(X[:20]), (parts[0] + parts[1]) / 2, rtol=1e-10)
    weighted = build_model("soft_vote", members=members, weights=[3, 1]).fit(X, y)
    np.testing.assert_allclose(weighted.predict_proba(X[:20]), (3 * parts[0] + parts[1]) / 4, rtol=1e-10)
    with pytest.raises(ConfigError, match="'linear_svc' gives no class probabilities"):
        build_model("soft_vote", members=[{"name": "linear_svc"}, {"name": "random_forest"}])
    with pytest.raises(ConfigError, match="at least two members"):
        build_model("soft_vote", members=[{"name": "random_forest"}])
    with pytest.raises(ConfigError, match="not a classical model"):
        build_model("soft_vote", members=[{"name": "cnn1d"}, {"name": "random_forest"}])
