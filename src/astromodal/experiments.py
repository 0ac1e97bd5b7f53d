"""Validated experiment configs: every study is a YAML file under ``experiments/``.

A config names datasets (where the objects come from), representations (how a dataset becomes model
input), models, a protocol (hold-out split or k-fold with a fold ensemble), seeds and budgets.
``astromodal benchmark CONFIG`` runs it (:mod:`astromodal.evaluation.benchmark`).

Every section is a pydantic model with ``extra="forbid"``: an unknown key is an error that names the
key, where it is, and the allowed keys. Example::

    name: astrospectra_mnist_sim
    datasets:
      v1: {source: simulate, options: {n: 3000, seed: 1}, target: class}
    representations:
      line: {kind: line, spectra: lamost}
    models:
      - {name: random_forest}
      - {name: simple_cnn2, representations: [image]}
    protocol: {kind: holdout, test_fraction: 0.2}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from astromodal.errors import ConfigError

SOURCES = (
    "simulate",  # the built-in survey simulator: options are simulate_survey's arguments
    "hdf5",  # an astromodal HDF5 file: options.path
    "astrospectra_mnist",  # the published PNG layout: options.path (the -v1/-v2 folder), options.version
    "spectra_fits",  # LAMOST / SDSS spectrum FITS files: options.path (folder or glob)
    "table",  # CSV / Parquet / FITS table: options.path, features, label (and optional test_path)
    "gaia_xp_npz",  # Gaia XP continuous coefficients (npz: X, y, source_id) -> sampled spectra with GaiaXPy
    "gaia_xp_sampled",  # Gaia archive XP_SAMPLED CSV / ECSV / VOTable / Parquet: options.path
    "idx",  # MNIST-style IDX files: options.images, options.labels (and test_images / test_labels)
)

REPRESENTATIONS = (
    "line",  # spectrum -> common grid -> 5-sample mean filter -> 721 values (LineAstroSpectra)
    "image",  # the 721 vector padded and reshaped to 28 x 28 (AstroSpectra-MNIST image)
    "spectrum",  # a spectra block as it is (optionally L2-normalised), with the [max, min] context
    "columns",  # catalogue columns (features)
    "images",  # an images block of the dataset (e.g. the AstroSpectra-MNIST PNGs or survey cutouts)
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class DatasetConfig(_Strict):
    """Where objects come from and which target is learned."""

    source: Literal[SOURCES]  # type: ignore[valid-type]
    options: dict[str, Any] = Field(default_factory=dict)
    target: str = "class"
    keep_classes: list[str] | None = None  # keep only these classes of the target (e.g. F, G, K)
    max_objects: int | None = Field(default=None, ge=1)  # a seeded stratified subsample, for quick runs
    required: bool = True  # False: skip this dataset with a note when its files are missing
    #: a class of the source's own test split that the training split lacks: "error" stops the run naming it,
    #: "count_wrong" keeps its objects, scored as misclassified (the model cannot predict a class it never saw)
    unseen_test_classes: Literal["error", "count_wrong"] = "error"


class RepresentationConfig(_Strict):
    """How a dataset becomes model input."""

    kind: Literal[REPRESENTATIONS]  # type: ignore[valid-type]
    spectra: str | None = None  # spectra block name (line / image / spectrum)
    images: str | None = None  # images block name (images)
    columns: list[str] | None = None  # catalogue columns (columns)
    normalise: Literal["none", "l2", "minmax", "median", "standard"] | None = None
    context: bool = False  # add the raw [max, min] of the flux as a second input
    preprocessing: dict[str, Any] = Field(default_factory=dict)  # SpectrumPreprocessing settings
    bands: list[str] | None = None  # image bands to keep
    size: int | None = None  # image size (area-averaged)


class TrainerOptions(_Strict):
    """Budget for neural models (see :class:`astromodal.training.trainer.TrainerConfig` for all keys)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


class ModelConfig(_Strict):
    name: str
    label: str | None = None  # name shown in tables (defaults to name)
    options: dict[str, Any] = Field(default_factory=dict)
    representations: list[str] | None = None  # default: every compatible representation
    datasets: list[str] | None = None  # default: every dataset
    trainer: dict[str, Any] = Field(default_factory=dict)  # per-model trainer overrides
    #: neural models: inputs standardised per feature with training-split statistics (default: columns
    #: and context; add "spectrum" for per-wavelength standardisation); classical models always are
    standardise: list[Literal["spectrum", "image", "columns", "context"]] | None = None


class ProtocolConfig(_Strict):
    #: holdout: train on a stratified split, test on the rest (or the source's own test split);
    #: cv: stratified k-fold cross-validation over all objects, metrics per fold (mean ± std) and pooled;
    #: kfold_ensemble: k-fold on the training split, a fresh model per fold, the fold ensemble tested.
    kind: Literal["holdout", "cv", "kfold_ensemble"] = "holdout"
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    k: int = Field(default=10, ge=2)
    seeds: list[int] = Field(default_factory=lambda: [0])
    #: binary tasks under kfold_ensemble: "argmax" decides by the larger probability (p >= 0.5);
    #: "balanced_accuracy" / "f1" choose the threshold on p(class 1) that maximises that score on the
    #: out-of-fold predictions of the training split (the test split is never used to choose it)
    threshold: Literal["argmax", "balanced_accuracy", "f1"] = "argmax"

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("at least one seed")
        return v


class ReportConfig(_Strict):
    confusion_matrices: bool = True
    embeddings: list[Literal["pca", "tsne"]] = Field(default_factory=lambda: ["pca", "tsne"])
    roc_curves: bool = True
    tables: Literal["astrospectra", "plain"] = "plain"  # astrospectra: Table 1 / Table 2 of study A


class ExperimentConfig(_Strict):
    name: str
    description: str = ""
    study: str | None = None
    output: str | None = None  # default: runs/<name>
    datasets: dict[str, DatasetConfig]
    representations: dict[str, RepresentationConfig]
    models: list[ModelConfig]
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    trainer: dict[str, Any] = Field(default_factory=dict)  # defaults for every neural model
    report: ReportConfig = Field(default_factory=ReportConfig)
    save_models: bool = False  # keep each cell's trained model in OUT/models/<cell>/ for `astromodal predict`

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v):
            raise ValueError("use letters, digits, '_', '-' and '.' only")
        return v

    @model_validator(mode="after")
    def _references(self) -> ExperimentConfig:
        for m in self.models:
            for r in m.representations or []:
                if r not in self.representations:
                    raise ValueError(f"model {m.name!r} names representation {r!r}; defined: {list(self.representations)}")
            for d in m.datasets or []:
                if d not in self.datasets:
                    raise ValueError(f"model {m.name!r} names dataset {d!r}; defined: {list(self.datasets)}")
        if self.save_models and self.protocol.kind == "cv":
            raise ValueError("save_models: the cv protocol scores every object out of fold and keeps no model; "
                             "use protocol.kind holdout (one model) or kfold_ensemble (a fold ensemble) to save models")
        return self


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent_loc = err["loc"][:-1]
            allowed = _allowed_keys(parent_loc)
            lines.append(f"unknown key '{where}'" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else ""))
        else:
            lines.append(f"'{where}': {err['msg']}")
    return f"{source}: invalid experiment config: " + "; ".join(lines)


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the config section at ``loc`` (for error messages)."""
    model: Any = ExperimentConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:  # a dict key such as a dataset name
            continue
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        inner = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            for a in args:
                inner += [b for b in getattr(a, "__args__", ()) if isinstance(b, type) and issubclass(b, BaseModel)]
        model = inner[0] if inner else None
    return sorted(model.model_fields) if model is not None else []


def parse_config(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a config mapping; errors name the key at fault and the allowed keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: an experiment config must be a YAML mapping, got {type(data).__name__}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate a YAML experiment config (``overrides`` are merged in, dotted keys allowed)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such experiment config")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return parse_config(data, str(path))


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key!r}: {p!r} is not a mapping")
    node[parts[-1]] = value
