"""Classical (scikit-learn) models: the twelve classifiers of study A, extras, and tree regressors.

Each model is registered as a factory ``(random_state=0, **options) -> unfitted estimator``. The
registry's ``default_options`` hold the settings the study used, so an experiment config overrides
any of them by name (``options: {max_depth: 5}``); an unknown or invalid option is a
:class:`~astromodal.errors.ConfigError` naming the model and the option.

Study A (AstroSpectra-MNIST / LineAstroSpectra) reports one row per classifier in its Table 1; its
public benchmark page (github.com/zzuwqk/AstroSpectra-MNIST_benchmark, Table 1-2) lists the settings of
every row, and the defaults here are the settings whose accuracies are the ones in Table 1:

================================  ==========================================================
decision_tree                     gini, max_depth 10, splitter best
extra_tree                        gini, max_depth 10, splitter random
gaussian_nb                       equal class priors 1/K
gradient_boosting                 log-loss, max_depth 10, 100 trees (the best classical model)
kneighbors                        1 nearest neighbour, Euclidean (p = 2), uniform weights
linear_svc                        C 1, squared hinge, one-vs-rest, L2
logistic_regression               C 100, one-vs-rest, L2 (max_iter 5000 so that it converges)
mlp                               ReLU, hidden layers (100, 10)
passive_aggressive                C 100 (PA-I)
perceptron                        L1 penalty
random_forest                     entropy, max_depth 100, 100 trees
sgd                               modified Huber loss, L2
================================  ==========================================================

Study D's single-modality baselines are the tree regressors (``decision_tree_regressor``,
``random_forest_regressor``, ``gradient_boosting_regressor``, ``hist_gradient_boosting_regressor``); its
probes of frozen contrastive embeddings (protocol ``pretrain_probe``) are ``kneighbors_regressor`` (k 10,
distance-weighted), ``ridge`` and ``mlp_regressor`` (128-64 ReLU, early stopping).

Models without ``predict_proba`` (LinearSVC, Perceptron, passive-aggressive, hinge-loss SGD) are
handled by the estimator front end, which falls back to their decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Perceptron, Ridge, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier

from astromodal.errors import ConfigError
from astromodal.models.registry import register_model

#: The twelve classifiers of study A, in the order of its Table 1.
CLASSICAL_SUITE_A: tuple[str, ...] = (
    "decision_tree",
    "extra_tree",
    "gaussian_nb",
    "gradient_boosting",
    "kneighbors",
    "linear_svc",
    "logistic_regression",
    "mlp",
    "passive_aggressive",
    "perceptron",
    "random_forest",
    "sgd",
)

#: Tree regressors (study D's single-modality baselines).
TREE_REGRESSORS: tuple[str, ...] = (
    "decision_tree_regressor",
    "extra_trees_regressor",
    "gradient_boosting_regressor",
    "hist_gradient_boosting_regressor",
    "random_forest_regressor",
)


class UniformPriorGaussianNB(GaussianNB):
    """Gaussian naive Bayes with equal prior probability for every class seen in training (study A's
    ``priors = [1/K, ..., 1/K]``), so that rare classes are not penalised by their rarity.
    ``uniform_priors=False`` gives the usual priors from the training class frequencies."""

    _parameter_constraints: dict = {**GaussianNB._parameter_constraints, "uniform_priors": ["boolean"]}

    def __init__(self, *, var_smoothing: float = 1e-9, uniform_priors: bool = True):
        self.var_smoothing = var_smoothing
        self.uniform_priors = uniform_priors

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> UniformPriorGaussianNB:
        k = len(np.unique(np.asarray(y)))
        self.priors = np.full(k, 1.0 / k) if self.uniform_priors else None
        return super().fit(X, y, sample_weight=sample_weight)

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> UniformPriorGaussianNB:
        if not hasattr(self, "classes_"):
            k = len(np.unique(np.asarray(classes if classes is not None else y)))
            self.priors = np.full(k, 1.0 / k) if self.uniform_priors else None
        return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight)


def _sklearn_at_least(major: int, minor: int) -> bool:
    parts = sklearn.__version__.split(".")
    return (int(parts[0]), int(parts[1])) >= (major, minor)


def _validated(name: str, estimator: Any) -> Any:
    """Check the option values now (scikit-learn would only complain at fit time)."""
    inner = getattr(estimator, "estimator", None)
    for est in (estimator, inner):
        if est is None or not hasattr(est, "_validate_params"):
            continue
        try:
            est._validate_params()
        except ValueError as exc:
            raise ConfigError(f"model {name!r}: invalid option: {exc}") from None
    return estimator


def _construct(name: str, cls: type, random_state: int | None, options: dict[str, Any]) -> Any:
    params = dict(options)
    if random_state is not None and "random_state" in cls().get_params():
        params["random_state"] = random_state
    try:
        est = cls(**params)
    except TypeError as exc:
        valid = sorted(cls().get_params())
        raise ConfigError(f"model {name!r}: {exc}; valid options: {', '.join(valid)}") from None
    return _validated(name, est)


def _simple(
    name: str,
    cls: type,
    *,
    study: str | None = "A",
    tasks: tuple[str, ...] = ("classification",),
    description: str,
    **defaults: Any,
) -> Callable[..., Any]:
    """Register the factory of a scikit-learn estimator whose options are its constructor arguments."""

    def factory(random_state: int | None = 0, **options: Any) -> Any:
        return _construct(name, cls, random_state, options)

    factory.__name__ = f"build_{name}"
    factory.__doc__ = f"{description} (scikit-learn {cls.__name__}; options are its constructor arguments)."
    register_model(name, modality="columns", family="classical", tasks=tasks, study=study,
                   description=description, **defaults)(factory)
    return factory


# ---------------------------------------------------------------------- study A classifiers
_simple("decision_tree", DecisionTreeClassifier, description="Decision tree (study A: gini, depth 10)",
        criterion="gini", max_depth=10, splitter="best")
_simple("extra_tree", ExtraTreeClassifier, description="Extremely randomised single tree (study A: gini, depth 10)",
        criterion="gini", max_depth=10, splitter="random")
_simple("gaussian_nb", UniformPriorGaussianNB, description="Gaussian naive Bayes with equal class priors (study A)",
        uniform_priors=True)
_simple("gradient_boosting", GradientBoostingClassifier,
        description="Gradient-boosted trees (study A's best: depth 10, 100 trees)",
        loss="log_loss", max_depth=10, n_estimators=100)
_simple("kneighbors", KNeighborsClassifier, description="k nearest neighbours (study A: k = 1, Euclidean)",
        n_neighbors=1, p=2, weights="uniform")
_simple("linear_svc", LinearSVC, description="Linear support vector machine (study A: C 1, one-vs-rest)",
        C=1.0, loss="squared_hinge", penalty="l2")
_simple("mlp", MLPClassifier, description="scikit-learn multilayer perceptron (study A: ReLU, 100-10 hidden units)",
        hidden_layer_sizes=(100, 10), activation="relu")
_simple("perceptron", Perceptron, description="Perceptron (study A: L1 penalty)", penalty="l1")
_simple("random_forest", RandomForestClassifier, description="Random forest (study A: entropy, depth 100, 100 trees)",
        criterion="entropy", max_depth=100, n_estimators=100)
_simple("sgd", SGDClassifier, description="Linear model by stochastic gradient descent (study A: modified Huber, L2)",
        loss="modified_huber", penalty="l2")


@register_model("logistic_regression", modality="columns", family="classical", study="A",
                description="Logistic regression (study A: C 100, one-vs-rest, L2)",
                C=100.0, multi_class="ovr", max_iter=5000)
def build_logistic_regression(random_state: int | None = 0, multi_class: str = "ovr", **options: Any) -> Any:
    """Logistic regression with an L2 penalty (scikit-learn's default); ``multi_class="ovr"`` fits one
    binary model per class (as the study), ``"multinomial"`` one softmax model. Other options are
    LogisticRegression's arguments."""
    if multi_class not in ("ovr", "multinomial"):
        raise ConfigError(f"model 'logistic_regression': multi_class must be 'ovr' or 'multinomial', not {multi_class!r}")
    base = _construct("logistic_regression", LogisticRegression, random_state, options)
    return OneVsRestClassifier(base) if multi_class == "ovr" else base


@register_model("passive_aggressive", modality="columns", family="classical", study="A",
                description="Passive-aggressive linear classifier, PA-I (study A: C 100)", C=100.0)
def build_passive_aggressive(random_state: int | None = 0, C: float = 100.0, **options: Any) -> Any:
    """Passive-aggressive classifier (PA-I, hinge loss) with aggressiveness ``C``. From scikit-learn 1.8
    it is an SGDClassifier with ``learning_rate="pa1"``, ``eta0 = C`` and no penalty (the replacement of
    the deprecated PassiveAggressiveClassifier); other options are that class's arguments."""
    if _sklearn_at_least(1, 8):
        params = {"loss": "hinge", "penalty": None, "learning_rate": "pa1", "eta0": C, **options}
        return _construct("passive_aggressive", SGDClassifier, random_state, params)
    from sklearn.linear_model import PassiveAggressiveClassifier

    return _construct("passive_aggressive", PassiveAggressiveClassifier, random_state, {"C": C, **options})


# ---------------------------------------------------------------------- extras and regressors
_simple("hist_gradient_boosting", HistGradientBoostingClassifier, study=None,
        description="Histogram gradient boosting (fast; an extra beside study A's suite)")

_simple("random_forest_regressor", RandomForestRegressor, study="D", tasks=("regression",),
        description="Random forest regressor (study D baseline)", n_estimators=100)
_simple("decision_tree_regressor", DecisionTreeRegressor, study="D", tasks=("regression",),
        description="Decision tree regressor (study D single-modality baseline)")
_simple("extra_trees_regressor", ExtraTreesRegressor, study="D", tasks=("regression",),
        description="Extremely randomised trees regressor (study D baseline)", n_estimators=100)
_simple("gradient_boosting_regressor", GradientBoostingRegressor, study="D", tasks=("regression",),
        description="Gradient-boosted tree regressor (study D baseline)", n_estimators=100)
_simple("hist_gradient_boosting_regressor", HistGradientBoostingRegressor, study="D", tasks=("regression",),
        description="Histogram gradient-boosted tree regressor (study D baseline)")

# ---------------------------------------------------------------------- probes of frozen embeddings (study D)
_simple("kneighbors_regressor", KNeighborsRegressor, study="D", tasks=("regression",),
        description="k nearest neighbours regressor (study D probe of frozen embeddings: k = 10, distance-weighted)",
        n_neighbors=10, weights="distance")
_simple("ridge", Ridge, study="D", tasks=("regression",),
        description="Ridge regression (a linear probe of frozen embeddings)", alpha=1.0)
_simple("mlp_regressor", MLPRegressor, study="D", tasks=("regression",),
        description="scikit-learn multilayer perceptron regressor (study D MLP probe: 128-64 ReLU)",
        hidden_layer_sizes=(128, 64), activation="relu", max_iter=500, early_stopping=True)


@register_model("soft_vote", modality="columns", family="classical", study=None,
                description="Soft vote of classical models: the mean of their class probabilities")
def build_soft_vote(random_state: int | None = 0, members: list[dict[str, Any]] | None = None,
                    weights: list[float] | None = None) -> Any:
    """scikit-learn's ``VotingClassifier(voting="soft")`` over registered classical models.

    ``members``: a list of ``{name: <registered classical model>, options: {...}}`` (at least two, each
    with class probabilities); ``weights``: one per member (default equal). Every member gets the same
    ``random_state``.
    """
    from sklearn.ensemble import VotingClassifier

    from astromodal.models.registry import get_model

    if not members or len(members) < 2:
        raise ConfigError("model 'soft_vote': give at least two members, e.g. members: "
                          "[{name: hist_gradient_boosting}, {name: random_forest}]")
    estimators = []
    for k, member in enumerate(members):
        if not isinstance(member, dict) or "name" not in member or set(member) - {"name", "options"}:
            raise ConfigError(f"model 'soft_vote': member {k} must be {{name: ..., options: {{...}}}}, got {member!r}")
        spec = get_model(member["name"])
        if spec.family != "classical" or spec.name == "soft_vote":
            raise ConfigError(f"model 'soft_vote': member {member['name']!r} is not a classical model")
        est = spec.build(random_state=random_state, **member.get("options", {}))
        if not hasattr(est, "predict_proba"):
            raise ConfigError(f"model 'soft_vote': member {member['name']!r} gives no class probabilities; "
                              "a soft vote needs them")
        estimators.append((f"{k}_{member['name']}", est))
    if weights is not None and len(weights) != len(estimators):
        raise ConfigError(f"model 'soft_vote': {len(weights)} weights for {len(estimators)} members")
    return VotingClassifier(estimators, voting="soft", weights=weights)
