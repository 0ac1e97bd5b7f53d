"""One registry type for models, readers, dataset sources and CLI verbs; one read_json; one formatter of
pydantic errors. Each toy entry registered here is removed again."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typer.testing import CliRunner

from astromodal.data.dataset import Column, Dataset
from astromodal.errors import ConfigError, DataFormatError
from astromodal.registry import Registry


# ---------------------------------------------------------------------- the generic type
def test_every_pluggable_table_is_one_registry():
    from astromodal.cli import VERBS
    from astromodal.data.readers import READERS
    from astromodal.data.sources import SOURCES
    from astromodal.models.registry import MODELS

    for reg, some in ((MODELS, "random_forest"), (READERS, "lamost"), (SOURCES, "table"), (VERBS, "benchmark")):
        assert isinstance(reg, Registry) and some in reg and some in reg.names()
    assert {"build", "models", "predict"} <= set(VERBS.names())  # a command group counts as a verb


def test_registry_loads_its_modules_on_first_lookup_and_unregisters():
    reg: Registry[int] = Registry("gadget", modules=("json",))
    reg.add("x", 1, colour="blue")
    assert reg.get("x") == 1 and reg["x"] == 1 and reg.meta("x") == {"colour": "blue"} and len(reg) == 1
    assert reg.values() == [1] and list(reg) == ["x"] and [1] not in reg
    reg.add("x", 1)  # the same entry again: allowed (a module reload)
    with pytest.raises(ValueError, match="gadget 'x' is already registered"):
        reg.add("x", 2)
    reg.unregister("x")
    reg.unregister("x")  # absent: nothing
    with pytest.raises(ConfigError, match=r"^unknown gadget 'x'; registered: $"):
        reg.get("x")


# ---------------------------------------------------------------------- one decorated thing each
def test_registering_a_model_is_one_decorated_class():
    from torch import nn

    from astromodal.models.registry import MODELS, build_model, get_model, list_models, register_model

    @register_model("toy_registry_model", modality="columns", study="Z", hidden=3)
    class ToyModel(nn.Module):
        """A toy for the registry test."""

        inputs = ("columns",)

        def __init__(self, input_shape, n_outputs=1, hidden=2):
            super().__init__()
            self.net = nn.Linear(input_shape[0], hidden)

    try:
        spec = get_model("toy_registry_model")
        assert spec.factory is ToyModel and spec.description == "A toy for the registry test."
        assert [s.name for s in list_models(study="Z")] == ["toy_registry_model"]
        assert build_model("toy_registry_model", input_shape=(4,)).net.out_features == 3
        with pytest.raises(ValueError, match="already registered"):
            register_model("toy_registry_model", modality="columns")(nn.Linear)
    finally:
        MODELS.unregister("toy_registry_model")
    with pytest.raises(ConfigError, match="unknown model 'toy_registry_model'; registered: .*random_forest"):
        get_model("toy_registry_model")


def test_registering_a_reader_is_one_decorated_function(tmp_path):
    from astromodal.data.readers import READERS, get_reader, read, register_reader

    @register_reader("toy_registry_reader", suffixes=(".TOY",))
    def read_toy(path):
        """Numbers, one per line, as column x."""
        x = np.loadtxt(path, ndmin=1)
        return Dataset(ids=np.arange(len(x)), columns={"x": Column(x)})

    (tmp_path / "a.toy").write_text("1\n2\n3\n")
    try:
        assert get_reader("toy_registry_reader").suffixes == (".toy",)
        ds = read(tmp_path / "a.toy")  # chosen by its suffix
        np.testing.assert_array_equal(ds.columns["x"].values.read(), [1.0, 2.0, 3.0])
    finally:
        READERS.unregister("toy_registry_reader")
    with pytest.raises(DataFormatError, match="no file of a known type"):
        read(tmp_path / "a.toy")
    with pytest.raises(ConfigError, match="unknown reader 'toy_registry_reader'; registered: .*lamost"):
        get_reader("toy_registry_reader")


def test_registering_a_source_is_one_decorated_function():
    from astromodal.data.sources import SOURCES, load_source, source

    @source("toy_registry_source", options=("n",))
    def _toy(options):
        n = int(options["n"])
        return Dataset(ids=np.arange(n), columns={"x": Column(np.arange(float(n)))}), None

    try:
        train, test = load_source("toy_registry_source", {"n": 4})
        assert len(train) == 4 and test is None
        with pytest.raises(ConfigError, match=r"dataset source 'toy_registry_source': unknown option\(s\) \['m'\]; "
                                              r"allowed: \['n'\]"):
            load_source("toy_registry_source", {"n": 4, "m": 1})
    finally:
        SOURCES.unregister("toy_registry_source")
    with pytest.raises(ConfigError, match="unknown dataset source 'toy_registry_source'; registered: .*table"):
        load_source("toy_registry_source", {})


def test_sources_that_declare_options_refuse_others(tmp_path):
    from astromodal.data.sources import load_source

    with pytest.raises(ConfigError, match=r"dataset source 'hdf5': unknown option\(s\) \['lazy'\]; allowed: \['path'\]"):
        load_source("hdf5", {"path": str(tmp_path / "x.h5"), "lazy": True})


def test_registering_a_verb_is_one_decorated_function():
    from astromodal.cli import VERBS, app

    @app.command("toy-registry-verb")
    def toy(n: int = typer.Option(1, help="a number")) -> None:
        print(f"toy {n}")

    try:
        assert VERBS.get("toy-registry-verb") is toy
        result = CliRunner().invoke(app, ["toy-registry-verb", "--n", "3"])
        assert result.exit_code == 0 and "toy 3" in result.output
        with pytest.raises(ValueError, match="verb 'models' is already registered"):
            app.command("models")(lambda: None)  # typer alone would keep both silently
    finally:
        VERBS.unregister("toy-registry-verb")
        app.registered_commands[:] = [c for c in app.registered_commands if c.name != "toy-registry-verb"]


# ---------------------------------------------------------------------- read_json
def test_read_json_names_the_path_in_one_line(tmp_path):
    from astromodal.atomic import read_json, write_json

    good = write_json(tmp_path / "good.json", {"a": np.int64(1)})
    assert read_json(good) == {"a": 1}
    (tmp_path / "list.json").write_text("[1, 2]")
    assert read_json(tmp_path / "list.json", want_object=False) == [1, 2]
    (tmp_path / "bad.json").write_text('{"a": 1,\n')
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    cases = [(tmp_path / "missing.json", "missing.json: not found$"),
             (tmp_path / "bad.json", r"bad.json: not valid JSON \(.*line 2 column 1"),
             (tmp_path / "bin.json", "bin.json: not valid JSON"),
             (tmp_path / "list.json", "list.json: not a JSON object but an array"),
             (tmp_path, "a folder, not a JSON file")]
    for path, message in cases:
        with pytest.raises(DataFormatError, match=message) as info:
            read_json(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(DataFormatError, match=r"not found \(not a saved astromodal model folder\?\)"):
        read_json(tmp_path / "model.json", hint="not a saved astromodal model folder?")


# ---------------------------------------------------------------------- format_validation_error
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Inner(_Strict):
    kind: Literal["inner"] = "inner"
    size: int = 1
    bands: list[str] = Field(default_factory=list)


class _Outer(_Strict):
    lr: float = Field(1e-3, gt=0)
    items: dict[str, _Inner] = Field(default_factory=dict)
    layers: list[_Inner] | None = None


def _error(data):
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate(data)
    return info.value


def test_format_validation_error_names_each_bad_key_and_the_allowed_ones():
    from astromodal.errors import format_validation_error

    msg = format_validation_error(_error({"epochs": 3, "lr": -1}), _Outer, "trainer settings")
    assert msg == ("trainer settings: 'lr': Input should be greater than 0; "
                   "unknown key 'epochs'; allowed keys here: items, layers, lr")
    # nested sections (a dict of models, a list of models): the allowed keys of that section
    msg = format_validation_error(_error({"items": {"a": {"sise": 2}}, "layers": [{"size": "x", "bandz": 1}]}), _Outer)
    assert "unknown key 'items.a.sise'; allowed keys here: bands, kind, size" in msg
    assert "'layers.0.size': Input should be a valid integer" in msg
    assert "unknown key 'layers.0.bandz'; allowed keys here: bands, kind, size" in msg and "\n" not in msg
    # two unknown keys of one section: the allowed keys once, after the last
    msg = format_validation_error(_error({"a": 1, "b": 2}), _Outer, "x")
    assert msg == "x: unknown key 'a'; unknown key 'b'; allowed keys here: items, layers, lr"
    # no model given: the keys without the allowed ones
    assert format_validation_error(_error({"a": 1}), None, "x") == "x: unknown key 'a'"


def test_format_validation_error_of_the_trainer_and_config_models():
    from astromodal.errors import format_validation_error
    from astromodal.experiments import ExperimentConfig
    from astromodal.training.trainer import TrainerConfig

    with pytest.raises(ValidationError) as info:
        TrainerConfig(epochs=3)
    msg = format_validation_error(info.value, TrainerConfig, "trainer settings")
    assert msg.startswith("trainer settings: unknown key 'epochs'; allowed keys here: ") and "max_epochs" in msg
    with pytest.raises(ValidationError) as info:
        ExperimentConfig.model_validate({"name": "x", "datasets": {"d": {"source": "simulate", "opts": {}}}})
    msg = format_validation_error(info.value, ExperimentConfig)
    assert "unknown key 'datasets.d.opts'; allowed keys here: " in msg and "keep_classes, max_objects, options" in msg
    assert "'models': Field required" in msg and "\n" not in msg
