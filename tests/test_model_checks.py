"""The config-time checks of models: the model to use for a task, and the options a model accepts."""

from __future__ import annotations

import pytest

from astromodal.errors import ConfigError
from astromodal.models.registry import suggest_models
from astromodal.training.estimator import check_model_options, check_model_task


def test_suggest_models_names_the_regressor_twin():
    assert suggest_models("random_forest", "regression") == ["random_forest_regressor"]
    assert suggest_models("random_forest_regressor", "classification") == ["random_forest"]


def test_suggest_models_falls_back_to_the_same_family_and_modality():
    alt = suggest_models("simple_cnn1", "regression")
    assert len(alt) <= 3
    from astromodal.models.registry import get_model

    for name in alt:
        spec = get_model(name)
        assert "regression" in spec.tasks and spec.family == "neural" and spec.modality == "image"


def test_check_model_task_names_the_model_to_use():
    with pytest.raises(ConfigError, match="use 'random_forest_regressor'") as exc:
        check_model_task("random_forest", "regression", target="teff")
    assert "target 'teff' is a regression target" in str(exc.value)
    check_model_task("random_forest", "classification")  # no error


def test_check_model_options_unknown_classical_option():
    with pytest.raises(ConfigError) as exc:
        check_model_options("random_forest", {"n_trees": 10})
    text = str(exc.value)
    assert "'n_trees'" in text and "n_estimators" in text and "\n" not in text


def test_check_model_options_neural_option_set_from_the_data():
    with pytest.raises(ConfigError, match="set from the data"):
        check_model_options("mlp_columns", {"n_outputs": 3})
    with pytest.raises(ConfigError, match="unknown option"):
        check_model_options("mlp_columns", {"widths": [3]})
    check_model_options("mlp_columns", {"hidden": [8], "dropout": 0.0})  # accepted


def test_check_model_options_bad_value_of_a_known_option():
    with pytest.raises(ConfigError, match="random_forest"):
        check_model_options("random_forest", {"n_estimators": "many"})
