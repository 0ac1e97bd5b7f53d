"""Experiment configs: validation errors name the key; every shipped study config is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from astromodal.errors import ConfigError
from astromodal.experiments import load_config, parse_config
from astromodal.models.registry import get_model

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

MINIMAL = {
    "name": "t",
    "datasets": {"d": {"source": "simulate", "options": {"n": 10}}},
    "representations": {"line": {"kind": "line", "spectra": "lamost"}},
    "models": [{"name": "random_forest"}],
}


def test_minimal_config_gets_defaults():
    cfg = parse_config(MINIMAL)
    assert cfg.protocol.kind == "holdout" and cfg.protocol.test_fraction == 0.2 and cfg.protocol.seeds == [0]
    assert cfg.datasets["d"].target == "class"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"colour": 1}, "unknown key 'colour'; allowed keys here: datasets, description"),
        ({"datasets": {"d": {"source": "simulate", "opts": {}}}}, "unknown key 'datasets.d.opts'; allowed keys here: cuts, heads, keep_classes"),
        ({"models": [{"name": "random_forest", "option": {}}]}, "unknown key 'models.0.option'"),
        ({"protocol": {"kind": "bootstrap"}}, "'protocol.kind'"),
        ({"datasets": {"d": {"source": "ftp"}}}, "'datasets.d.source'"),
        ({"models": [{"name": "random_forest", "representations": ["image"]}]}, "names representation 'image'"),
        ({"protocol": {"kind": "cv"}, "save_models": True}, "save_models: the cv protocol"),
    ],
)
def test_bad_configs_name_the_key(patch, message):
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL, **patch}, "my.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("my.yaml: invalid experiment config")


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such experiment config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_overrides_are_dotted(tmp_path):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    cfg = load_config(path, {"trainer.max_epochs": 3, "protocol.seeds": [1, 2]})
    assert cfg.trainer["max_epochs"] == 3 and cfg.protocol.seeds == [1, 2]


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid_and_name_registered_models(path):
    cfg = load_config(path)
    for m in cfg.models:
        get_model(m.name)  # raises for an unknown model
