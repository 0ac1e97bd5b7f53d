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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

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
    "spectrum_image",  # the 721 vector padded and reshaped to 28 x 28 (AstroSpectra-MNIST image)
    "spectrum",  # a spectra block as it is (optionally L2-normalised), with the [max, min] context
    "columns",  # catalogue columns (features)
    "cutout",  # an images block of the dataset (e.g. the AstroSpectra-MNIST PNGs or survey cutouts)
    "image",  # alias of spectrum_image (the name before views)
    "images",  # alias of cutout (the name before views)
)
#: shorthand kind -> (input name, view kind) of its main input
_SHORTHAND = {"line": ("spectrum", "line"), "spectrum_image": ("image", "spectrum_image"), "image": ("image", "spectrum_image"),
              "spectrum": ("spectrum", "spectrum"), "columns": ("columns", "columns"), "cutout": ("image", "cutout"),
              "images": ("image", "cutout")}
#: the shorthand keys each view kind takes
_SHORTHAND_KEYS = {"line": ("spectra", "images", "preprocessing"), "spectrum_image": ("spectra", "preprocessing"),
                   "spectrum": ("spectra", "normalise"), "columns": ("columns", "normalise"),
                   "cutout": ("images", "bands", "size")}


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
    """How a dataset becomes model inputs: a mapping ``inputs: {name: view}`` (:mod:`astromodal.data.views`),
    or the one-kind shorthand of the keys below (``{kind: line, spectra: lamost}``), which expands to
    fixed input names: line -> ``spectrum``; spectrum_image (alias image) -> ``image``; spectrum ->
    ``spectrum`` (+ ``context`` with ``context: true``); columns -> ``columns``; cutout (alias images) ->
    ``image``. :meth:`views` gives the ``{input name: view}`` mapping either way."""

    kind: Literal[REPRESENTATIONS] | None = None  # type: ignore[valid-type]
    spectra: str | None = None  # spectra block name (line / spectrum_image / spectrum)
    images: str | None = None  # images block name (cutout)
    columns: list[str] | None = None  # catalogue columns (columns)
    normalise: Literal["none", "l2", "minmax", "median", "standard"] | None = None
    context: bool = False  # add the raw [max, min] of the flux as a second input
    preprocessing: dict[str, Any] = Field(default_factory=dict)  # SpectrumPreprocessing settings
    bands: list[str] | None = None  # image bands to keep
    size: int | None = None  # image size (area-averaged)
    #: the mapping form: input name -> view options (``kind`` plus that kind's keys); validated when read
    inputs: dict[str, Any] | None = None

    @field_validator("inputs")
    @classmethod
    def _views(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return None
        if not v:
            raise ValueError("name at least one input")
        return {str(name): _parse_view(str(name), spec) for name, spec in v.items()}

    @model_validator(mode="after")
    def _one_form(self) -> RepresentationConfig:
        if (self.kind is None) == (self.inputs is None):
            raise ValueError("give either 'kind' (the one-kind shorthand) or 'inputs' (a mapping of input name to view)")
        if self.inputs is not None:
            extra = [k for k in ("spectra", "images", "columns", "normalise", "bands", "size", "preprocessing", "context")
                     if getattr(self, k) not in (None, {}, False)]
            if extra:
                raise ValueError(f"keys {extra} belong to the one-kind shorthand; with 'inputs' put them in a view")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # the shorthand dumps as before views (cell fingerprints and predictor.json unchanged); the mapping
        # form as its inputs only
        data = handler(self)
        return {"inputs": data["inputs"]} if self.inputs is not None else {k: v for k, v in data.items() if k != "inputs"}

    def views(self) -> dict[str, Any]:
        """``{input name: View}`` (the shorthand expanded; a bad shorthand option is one ConfigError line)."""
        if self.inputs is not None:
            return dict(self.inputs)
        name, kind = _SHORTHAND[self.kind]
        where = f"representation kind {self.kind!r}"
        out: dict[str, Any] = {}
        if kind == "spectrum" and self.context:
            out["context"] = _parse_view("context", {"kind": "context", "spectra": self.spectra}, where)
        spec = {k: getattr(self, k) for k in _SHORTHAND_KEYS[kind] if getattr(self, k) not in (None, {})}
        out[name] = _parse_view(name, {"kind": kind, **spec}, where)
        return out


def _parse_view(name: str, spec: Any, where: str | None = None) -> Any:
    """One view from its options; errors name the input, the key at fault and the allowed keys (ValueError
    inside a config, ConfigError with ``where``)."""
    from astromodal.data.views import view_class

    try:
        if not isinstance(spec, dict) or "kind" not in spec:
            raise ConfigError(f"input {name!r}: a view is a mapping with a 'kind'")
        view = view_class(spec["kind"])
        try:
            return view.model_validate(spec)
        except ValidationError as exc:
            raise ConfigError(f"input {name!r} ({spec['kind']} view): {_format_errors(exc, view)}") from None
    except ConfigError as exc:
        if where is not None:
            raise ConfigError(f"{where}: {exc}") from None
        raise ValueError(str(exc)) from None


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


_RESAMPLE_KEYS = frozenset({"n_members", "member_weights", "combine_weights"})


class ProtocolConfig(_Strict):
    #: holdout: train on a stratified split, test on the rest (or the source's own test split);
    #: cv: stratified k-fold cross-validation over all objects, metrics per fold (mean ± std) and pooled;
    #: kfold_ensemble: k-fold on the training split, a fresh model per fold, the fold ensemble tested;
    #: resample_ensemble: n_members fresh models, each on a weighted draw with replacement of the training
    #: split, their ensemble tested (MESCR); any protocol registered in astromodal.evaluation.protocols.
    kind: str = "holdout"
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    k: int = Field(default=10, ge=2)
    seeds: list[int] = Field(default_factory=lambda: [0])
    #: binary tasks under kfold_ensemble: "argmax" decides by the larger probability (p >= 0.5);
    #: "balanced_accuracy" / "f1" choose the threshold on p(class 1) that maximises that score on the
    #: out-of-fold predictions of the training split (the test split is never used to choose it)
    threshold: Literal["argmax", "balanced_accuracy", "f1"] = "argmax"
    #: resample_ensemble: number of members (MESCR: 6)
    n_members: int = Field(default=6, ge=1)
    #: resample_ensemble: draw probabilities, "uniform" (plain bagging) or "balanced" (1 / class frequency)
    member_weights: Literal["uniform", "balanced"] = "uniform"
    #: resample_ensemble: weights of the members' class probabilities (one per member; default equal);
    #: never applied to Gaussian (mean, variance) outputs, which combine unweighted (MESCR Eq. 1)
    combine_weights: list[float] | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        from astromodal.evaluation.protocols import protocol_names

        if v not in protocol_names():
            raise ValueError(f"unknown protocol {v!r}; known: {', '.join(protocol_names())}")
        return v

    @model_validator(mode="after")
    def _resample_settings(self) -> ProtocolConfig:
        extra = sorted(_RESAMPLE_KEYS & self.model_fields_set)
        if self.kind != "resample_ensemble" and extra:
            raise ValueError(f"{', '.join(extra)}: setting(s) of kind resample_ensemble, not {self.kind!r}")
        w = self.combine_weights
        if w is not None and (len(w) != self.n_members or min(w) < 0 or sum(w) <= 0):
            raise ValueError(f"combine_weights {w}: one non-negative weight per member ({self.n_members}), "
                             "not all zero")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # the resample settings only where they apply: configs of the other kinds keep their dump (and so the
        # fingerprints of their finished cells)
        data = handler(self)
        if self.kind != "resample_ensemble":
            for key in _RESAMPLE_KEYS:
                data.pop(key, None)
        return data

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
    return f"{source}: invalid experiment config: " + _format_errors(exc)


def _format_errors(exc: ValidationError, root: Any = None) -> str:
    """A pydantic error as one line: each key at fault, with the allowed keys for an unknown one."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent_loc = err["loc"][:-1]
            allowed = _allowed_keys(parent_loc, root)
            lines.append(f"unknown key '{where}'" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else ""))
        else:
            lines.append(f"'{where}': {err['msg']}")
    return "; ".join(lines)


def _allowed_keys(loc: tuple[Any, ...], root: Any = None) -> list[str]:
    """The field names of the config section at ``loc`` below ``root`` (default: the experiment config)."""
    model: Any = root or ExperimentConfig
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
