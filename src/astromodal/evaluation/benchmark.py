"""The benchmark runner behind ``astromodal benchmark CONFIG``.

A config (:mod:`astromodal.experiments`) defines a grid of cells: dataset x representation x model x
seed. For each cell the runner splits the data (the source's own test split, or a seeded stratified
hold-out), builds the representation, fits the model through the shared estimator front (classical
and neural alike), and evaluates on the untouched test split. Under ``kfold_ensemble`` each cell trains
a fresh model per stratified fold and evaluates the averaged fold ensemble on the test split.

Every finished cell is written at once to ``cells/<cell>.json`` (atomically), so a re-run resumes:
finished cells are read back, not trained again. At the end the runner writes ``results.json``,
``results.csv``/``.parquet``, the tables, confusion matrices, ROC curves, PCA/t-SNE plots and
``report.md``/``report.html``.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.atomic import write_json
from astromodal.data.dataset import Dataset
from astromodal.data.preparation import with_class_names
from astromodal.data.sources import align_test_classes, keep_classes, load_source, paths_missing
from astromodal.errors import BadValueError, ConfigError, DataFormatError
from astromodal.evaluation.protocols import CellContext
from astromodal.evaluation.results import (
    SCORING_VERSION,
    CellResult,
    DatasetSummary,
    DataSummary,
    TargetSummary,
)
from astromodal.experiments import ExperimentConfig, ModelConfig
from astromodal.models.registry import get_model
from astromodal.transforms.representations import build_inputs, flatten_inputs


@dataclass(frozen=True)
class Cell:
    dataset: str
    representation: str
    model: ModelConfig
    seed: int
    #: the cell's protocol (the config's, with the model entry's ``protocol`` merged over it); None: the config's
    protocol: Any = None

    @property
    def label(self) -> str:
        return self.model.label or self.model.name

    @property
    def id(self) -> str:
        return f"{self.dataset}__{self.representation}__{self.label}__s{self.seed}"


@dataclass
class PreparedData:
    """One dataset split for one seed, with each representation's inputs built once."""

    train: Dataset
    test: Dataset | None  # None under cross-validation (folds are made inside each cell)
    target: str  # the primary target
    inputs_train: dict[str, dict[str, np.ndarray]]
    inputs_test: dict[str, dict[str, np.ndarray]]
    targets: list[str] = field(default_factory=list)  # every target, the primary first

    def __post_init__(self) -> None:
        self.targets = self.targets or [self.target]

    def y(self, split: str) -> dict[str, np.ndarray]:
        """``{target: values}`` of the ``train`` or ``test`` split (empty arrays without a test split)."""
        ds = self.train if split == "train" else self.test
        return {t: ds.target(t).values.read() if ds is not None else np.empty(0) for t in self.targets}


class _LazyInputs(Mapping):
    """``{representation: inputs}`` of one split, each built when first read (a sweep of many
    representations builds only those its cells use)."""

    def __init__(self, ds: Dataset, representations: Mapping[str, Any]):
        self._ds, self._reps, self._built = ds, representations, {}

    def __getitem__(self, name: str) -> dict[str, np.ndarray]:
        if name not in self._built:
            self._built[name] = build_inputs(self._ds, self._reps[name])
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._reps)

    def __len__(self) -> int:
        return len(self._reps)


class _CellContext(CellContext):
    """The protocol context of a cell whose settings are the cell's own protocol (a model entry's
    ``protocol`` merged over the config's)."""

    @property
    def settings(self) -> Any:
        return self.runner.protocol_of(self.cell)


# ---------------------------------------------------------------------- test predictions per cell
def predictions_path(cells_dir: Path, cell_id: str) -> Path:
    """Where a cell's test predictions are kept: ``cells/<cell>.predictions.npz`` beside its JSON."""
    return Path(cells_dir) / f"{cell_id}.predictions.npz"


def predictions_arrays(predictions: Mapping[str, Any], truth: Mapping[str, np.ndarray], test: Dataset,
                       snr_column: str | Sequence[str] | None = None,
                       embeddings: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The arrays saved per cell: ``ids`` of the test objects, per head ``<head>__truth`` and a categorical
    head's ``__label`` / ``__proba`` / ``__classes`` or a Gaussian head's ``__mean`` / ``__var`` /
    ``__sigma_net``, the test objects' columns ``snr_column`` (one name or several: the report's
    ``snr_column`` and ``subset`` columns; ``column__<name>``, each the dataset has), a contrastive
    model's test embeddings ``embedding__<input>`` (N, d) float32 (``pretrain_probe``) and ``__kinds__``
    (JSON: head -> kind)."""
    ids = np.asarray(test.ids.read())
    out: dict[str, np.ndarray] = {"ids": ids.astype(str) if ids.dtype == object else ids}
    kinds = {}
    for name, pred in predictions.items():
        kinds[name] = pred.kind
        out[f"{name}__truth"] = np.asarray(truth[name])
        if pred.kind == "categorical":
            out[f"{name}__label"] = np.asarray(pred.labels)
            out[f"{name}__proba"] = np.asarray(pred.proba, dtype=np.float32)
            out[f"{name}__classes"] = np.asarray(pred.classes)
        elif pred.kind == "gaussian":
            out[f"{name}__mean"] = np.asarray(pred.mean, dtype=np.float64)
            out[f"{name}__var"] = np.asarray(pred.var, dtype=np.float64)
            if pred.sigma_net is not None:
                out[f"{name}__sigma_net"] = np.asarray(pred.sigma_net, dtype=np.float64)
    for name in [snr_column] if isinstance(snr_column, str) else list(snr_column or ()):
        if name in test.columns:
            values = np.asarray(test.columns[name].values.read())
            out[f"column__{name}"] = values.astype(str) if values.dtype.kind in "OUS" else values.astype(np.float64)
    for name, z in (embeddings or {}).items():
        out[f"embedding__{name}"] = np.asarray(z, dtype=np.float32)
    out["__kinds__"] = np.asarray(json.dumps(kinds))
    return out


def write_predictions(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """``arrays`` as one compressed npz, written atomically (:func:`astromodal.atomic.atomic_path`)."""
    from astromodal.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return Path(path)


#: the key of the cell fingerprint inside a predictions file
_PRED_FINGERPRINT = "__fingerprint__"


def predictions_fingerprint(path: Path) -> str | None:
    """The cell fingerprint a predictions file was written for (None: no file, unreadable, or an older
    astromodal that wrote none)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z[_PRED_FINGERPRINT]) if _PRED_FINGERPRINT in z.files else None
    except (OSError, ValueError, EOFError):
        return None


def read_predictions(path: Path, fingerprint: str | None = None) -> dict[str, Any] | None:
    """A cell's saved test predictions: ``{"ids", "kinds", "heads": {head: {truth, label | mean, ...}},
    "columns": {name: values}, "embeddings": {input: (N, d)}}``; None when the cell has none (or the file does not read), and when
    ``fingerprint`` is given and the file was written for another run of the cell (a crash between the
    predictions and the cell JSON must never pair one run's predictions with another's scores)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return None
    written_for = data.pop(_PRED_FINGERPRINT, None)
    if fingerprint is not None and written_for is not None and str(written_for) != fingerprint:
        return None
    kinds = json.loads(str(data.pop("__kinds__", "{}")))
    heads: dict[str, dict[str, np.ndarray]] = {h: {} for h in kinds}
    columns, embeddings = {}, {}
    for key, value in data.items():
        if key.startswith("column__"):
            columns[key[len("column__"):]] = value
        elif key.startswith("embedding__"):
            embeddings[key[len("embedding__"):]] = value
        elif "__" in key:
            head, what = key.rsplit("__", 1)
            heads.setdefault(head, {})[what] = value
    return {"ids": data.get("ids"), "kinds": kinds, "heads": heads, "columns": columns, "embeddings": embeddings}


class BenchmarkRunner:
    """Runs every cell of an experiment config and writes its report folder."""

    def __init__(
        self,
        config: ExperimentConfig,
        out: Path,
        config_path: Path | None = None,
        device: str | None = None,
        precision: str | None = None,
        channels_last: bool | None = None,
        resume: bool = True,
        command: str | None = None,
        overwrite: bool = False,
        inputs: tuple[Any, ...] | list[Any] = (),
    ):
        self.config = config
        self.out = Path(out)
        #: write into a folder another astromodal run wrote (other verb, or ``resume=False``); never a foreign one
        self.overwrite = overwrite
        #: paths the run reads (the config file is added): ``out`` may never be or contain one
        self.inputs = [*inputs, *([config_path] if config_path else [])]
        self.base = config_path.parent if config_path else Path.cwd()
        self.resume = resume
        self.trainer_overrides = {k: v for k, v in (("device", device), ("precision", precision),
                                                    ("channels_last", channels_last)) if v is not None}
        self.command = command or "astromodal " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        self.notes: list[str] = []
        #: callables ``f(report, context)`` adding sections to the report before it is written (``context``: a
        #: :class:`~astromodal.evaluation.benchmark_report.ReportContext`: the output folder, config, results,
        #: data summary and the loaded training datasets)
        self.report_hooks: list[Any] = []
        self._datasets: dict[str, tuple[Dataset, Dataset | None]] = {}
        #: (cell id, arrays) of the test predictions of the cell :meth:`run_cell` scored last
        self._pending_predictions: tuple[str, dict[str, np.ndarray]] | None = None

    # ------------------------------------------------------------------ cells
    def cells(self) -> list[Cell]:
        self.validate()  # every config problem, before any data is loaded or any cell trained
        cfg = self.config
        reps = self._model_representations()
        protocols = [cfg.protocol_for(m) for m in cfg.models]
        seeds = list(dict.fromkeys(s for p in [cfg.protocol, *protocols] for s in p.seeds))
        out = []
        for seed in seeds:
            for ds_name in cfg.datasets:
                for i, m in enumerate(cfg.models):
                    if (m.datasets and ds_name not in m.datasets) or seed not in protocols[i].seeds:
                        continue
                    out += [Cell(ds_name, rep_name, m, seed, protocols[i]) for rep_name in reps[i]]
        return out

    def protocol_of(self, cell: Cell) -> Any:
        """The cell's protocol settings (ProtocolConfig)."""
        return cell.protocol if cell.protocol is not None else self.config.protocol_for(cell.model)

    def _model_representations(self) -> list[list[str]]:
        """Per model, the representations it runs on, checked from the config alone: its declared inputs
        must be among a representation's input names. A model listing ``representations:`` where one lacks
        an input is an error naming the missing inputs; without the list a neural model runs on every
        representation that has its inputs (an error when none has them), a classical one on every one."""
        cfg = self.config
        keys = {r: list(rc.views()) for r, rc in cfg.representations.items()}  # bad view options stop here
        swept = set(cfg.sweep_representations)  # run only with the models of their sweep (added below)
        plain = [r for r in cfg.representations if r not in swept]
        out = []
        for m in cfg.models:
            need = get_model(m.name).declared_inputs(m.options)
            where = f"model {m.label or m.name!r}"
            if m.representations is not None:
                for r in m.representations:
                    missing = [k for k in need or () if k not in keys[r]]
                    if missing:
                        raise ConfigError(f"{where} reads input(s) {missing} that representation {r!r} lacks "
                                          f"(its inputs: {keys[r]})")
                out.append([r for r in plain if r in m.representations])
                continue
            fits = [r for r in plain if need is None or set(need) <= set(keys[r])]
            if not fits:
                raise ConfigError(f"{where} reads input(s) {list(need or ())} but no representation gives them all: "
                                  + "; ".join(f"{r!r} gives {k}" for r, k in keys.items() if r in plain))
            out.append(fits)
        self._add_sweep_representations(out, keys)
        return out

    def _add_sweep_representations(self, out: list[list[str]], keys: dict[str, list[str]]) -> None:
        """Each representation sweep's variants join the models of that sweep: those named in its ``models``,
        by default every entry (not itself a sweep variant) that runs on the sweep's base representation."""
        cfg = self.config
        made = set(cfg.sweep_model_labels)
        for s in cfg.sweeps or []:
            if s.representation is None:
                continue
            variants = [s.label(t) for t, _ in s.points()]
            chosen = 0
            for i, m in enumerate(cfg.models):
                label = m.label or m.name
                if s.models is not None and label not in s.models:
                    continue
                if s.models is None and (label in made or s.representation not in out[i]):
                    continue
                need = get_model(m.name).declared_inputs(m.options) or ()
                for r in variants:
                    missing = [k for k in need if k not in keys[r]]
                    if missing:
                        raise ConfigError(f"sweep {s.name!r}: model {label!r} reads input(s) {missing} that variant "
                                          f"{r!r} lacks (its inputs: {keys[r]})")
                out[i] += variants
                chosen += 1
            if not chosen:
                raise ConfigError(f"sweep {s.name!r}: no model entry runs on representation {s.representation!r}; "
                                  "name the models with 'models'")

    def check_tasks(self, cells: list[Cell]) -> None:
        """Load each dataset (cached for the run) and check that every cell's model does its target's task:
        ``random_forest`` on a regression target is one line naming ``random_forest_regressor``."""
        from astromodal.training.estimator import check_model_task

        seen: set[tuple[str, str]] = set()
        for cell in cells:
            p = self.protocol_of(cell)
            probe = p.probe if p.kind == "pretrain_probe" else None
            name = probe or cell.model.name  # under pretrain_probe the probe predicts the targets
            if (cell.dataset, name) in seen:
                continue
            seen.add((cell.dataset, name))
            loaded = self._load(cell.dataset)
            if loaded is None:  # an optional dataset whose files are missing: skipped with a note
                continue
            for target in self.config.datasets[cell.dataset].targets:  # every head's task
                kind = loaded[0].target(target).kind
                try:
                    check_model_task(name, "classification" if kind == "class" else "regression", target)
                except ConfigError as exc:
                    raise ConfigError(f"dataset {cell.dataset!r}: {exc}") from None

    def _check_report_data(self) -> None:
        """The columns, targets and blocks the report's ``comparisons`` and ``exploratory`` read exist in the
        loaded datasets (one ConfigError line naming the key and what the dataset has)."""
        from astromodal.evaluation.benchmark_report import check_report_data

        rc = self.config.report
        if not (any(c.subset for c in rc.comparisons or []) or rc.exploratory is not None):
            return  # nothing to check: no dataset loaded for it
        loaded = {n: d[0] for n in self.config.datasets if (d := self._load(n))}
        check_report_data(self.config, loaded)

    # ------------------------------------------------------------------ data
    def _load(self, name: str) -> tuple[Dataset, Dataset | None] | None:
        if name in self._datasets:
            return self._datasets[name]
        dcfg = self.config.datasets[name]
        missing = paths_missing(dcfg.options, self.base)
        if missing and not dcfg.required:
            self.notes.append(f"dataset {name!r} skipped: {', '.join(missing)} not found")
            self._datasets[name] = None  # type: ignore[assignment]
            return None
        train, test = load_source(dcfg.source, dcfg.options, self.base, cuts=dcfg.cuts, name=name)
        primary = dcfg.primary
        missing = [t for t in dcfg.targets if t not in train.targets]
        if missing:  # one line naming the targets and those the dataset has
            raise BadValueError(f"dataset {name!r}: unknown target(s) {missing}; it has targets {list(train.targets)}")
        if dcfg.keep_classes:
            train = keep_classes(train, primary, dcfg.keep_classes)
        if len(dcfg.targets) == 1:  # one regression target: the objects it does not apply to cannot be learnt
            train = self._applicable(name, train, primary, "")
        if test is not None:
            test = self._align_test(name, train, test)
            if len(dcfg.targets) == 1:
                test = self._applicable(name, test, primary, " (its test file)")
        if dcfg.max_objects and len(train) > dcfg.max_objects:
            train = _stratified_subsample(train, primary, dcfg.max_objects, seed=0)
        if isinstance(train.meta.get("preparation"), dict) and train.target(primary).kind == "class":
            # the class mapping a saved model predicts with (after keep_classes)
            train.meta = {**train.meta, "preparation": with_class_names(train.meta["preparation"],
                                                                       train.target(primary).class_names)}
        self._datasets[name] = (train, test)
        return train, test

    def _applicable(self, name: str, ds: Dataset, target: str, where: str) -> Dataset:
        """``ds`` without the objects whose only target, a regression one, does not apply (NaN: a quasar's SFR,
        a galaxy's stellar radius), with a note counting them and a step in ``meta["selection"]``. With several
        targets (heads) such objects stay: they are masked in that head's loss and scores. (Class targets are
        left as they are: an unseen test class is scored, ``unseen_test_classes``.)"""
        from astromodal.evaluation.protocols import valid_rows

        t = ds.target(target)
        if t.kind == "class":
            return ds
        ok = valid_rows(t.values.read(), "regression")
        if ok.all():
            return ds
        if not ok.any():
            raise BadValueError(f"dataset {name!r}{where}: target {target!r} has no value for any of its "
                                f"{len(ds):,} objects")
        self.notes.append(f"dataset {name!r}{where}: {int((~ok).sum()):,} of {len(ds):,} objects have no "
                          f"{target!r} (NaN: the target does not apply to them) and are left out")
        sub = ds.subset(np.flatnonzero(ok))
        selection = list(ds.meta.get("selection") or [{"cut": "input", "kept": len(ds)}])
        sub.meta = {**sub.meta, "selection": [*selection, {"cut": f"{target} applies (finite)", "kept": len(sub)}]}
        return sub

    def _align_test(self, name: str, train: Dataset, test: Dataset) -> Dataset:
        """The source's own test split with each class target coded BY NAME with the training classes (a test
        class never trained on: an error, or with ``unseen_test_classes: count_wrong`` a note)."""
        dcfg = self.config.datasets[name]
        files = test.meta.get("source") or ", ".join(test.meta.get("source_files", [])) or "(the source's test split)"
        where = f"dataset {name!r}: test file {files}"
        for i, target in enumerate(dcfg.targets):
            keep = dcfg.keep_classes if i == 0 else None
            test = align_test_classes(train, test, target, dcfg.unseen_test_classes, keep, where)
            unseen = test.target(target).unseen_classes(train.target(target).class_names) \
                if train.target(target).kind == "class" else {}
            if unseen:
                self.notes.append(f"{where}: class(es) " + ", ".join(f"{c} ({n:,} objects)" for c, n in unseen.items())
                                  + " never seen in training, scored as misclassified (unseen_test_classes: count_wrong)")
        return test

    def prepare(self, ds_name: str, seed: int, protocol: Any = None) -> PreparedData | None:
        """The dataset split for ``seed`` under ``protocol`` (default the config's): the test split depends
        only on the dataset, the seed and ``test_fraction`` (never on the protocol's kind), so models with
        protocols of their own are tested on the same objects. Each representation's inputs are built when
        first read."""
        loaded = self._load(ds_name)
        if loaded is None:
            return None
        full, given_test = loaded
        targets = self.config.datasets[ds_name].targets
        target = targets[0]
        stratify = target if full.target(target).kind == "class" else None
        from astromodal.evaluation.protocols import get_protocol

        protocol = protocol or self.config.protocol
        if not get_protocol(protocol.kind).uses_test_split:  # e.g. cv: every object scored out of fold
            train, test = full, None
        elif given_test is not None:
            train, test = full, given_test
        else:
            train, test = full.split(protocol.test_fraction, stratify=stratify, seed=seed)
        reps = self.config.representations
        return PreparedData(
            train,
            test,
            target,
            _LazyInputs(train, reps),
            _LazyInputs(test, reps) if test is not None else {},
            targets,
        )

    def _split_key(self, cell: Cell) -> tuple[Any, ...]:
        """What decides a cell's split: dataset, seed, whether its protocol has a test split, test_fraction."""
        from astromodal.evaluation.protocols import get_protocol

        p = self.protocol_of(cell)
        return (cell.dataset, cell.seed, get_protocol(p.kind).uses_test_split, p.test_fraction)

    # ------------------------------------------------------------------ one cell
    def _trainer_config(self, m: ModelConfig, seed: int) -> Any:
        from astromodal.training.trainer import TrainerConfig

        opts = {**self.config.trainer, **m.trainer, **self.trainer_overrides, "seed": seed}
        opts.setdefault("progress", False)
        return TrainerConfig.from_options(opts, where=f"model {m.label or m.name!r}: trainer")

    def validate(self) -> None:
        """Check every setting that can be checked without data, each error ONE line naming the key (and
        the model) and the allowed keys: the global trainer settings, each model's trainer overrides (with
        the command-line ones) and the options each model's constructor accepts (the inputs named in
        ``standardise`` are checked when the config is read). Called by :meth:`cells`, so ``run()`` and
        ``astromodal benchmark`` stop here before any data is loaded or anything is written."""
        from astromodal.training.estimator import check_model_options
        from astromodal.training.trainer import TrainerConfig

        cfg = self.config
        # the config's trainer section with the command-line settings (--device, --precision, ...)
        TrainerConfig.from_options({**cfg.trainer, **self.trainer_overrides}, where="trainer")
        for i, m in enumerate(cfg.models):
            where = f"model {m.label or m.name!r} (models[{i}])"
            spec = get_model(m.name)
            if m.trainer:
                TrainerConfig.from_options({**cfg.trainer, **m.trainer, **self.trainer_overrides},
                                           where=f"{where}: trainer")
            try:
                check_model_options(m.name, m.options, where=where)
            except ConfigError as exc:
                made = cfg.sweep_of(model=m.label or m.name)  # a sweep's variant: say which
                if made is None:
                    raise
                raise ConfigError(f"sweep {made[0]!r} variant {m.label!r}: {exc}") from None
            if spec.family == "classical" and m.trainer:
                raise ConfigError(f"{where}: 'trainer' settings are for neural models; {m.name!r} is a classical "
                                  "(scikit-learn) model: set its options under 'options'")
            self._check_objective(m, spec, where)
        for i, m in enumerate(cfg.models):
            p = cfg.protocol_for(m)
            if p.kind == "pretrain_probe":
                where = "protocol probe" if m.protocol is None else f"model {m.label or m.name!r} (models[{i}]): protocol probe"
                check_model_options(p.probe, p.probe_options, where=where)

    def _check_objective(self, m: ModelConfig, spec: Any, where: str) -> None:
        """A model with its own ``objective`` is for (and required by) the ``pretrain_probe`` protocol."""
        probing = self.config.protocol_for(m).kind == "pretrain_probe"
        if m.objective is not None and spec.family == "classical":
            raise ConfigError(f"{where}: an 'objective' is for neural models; {m.name!r} is a classical model")
        if probing and m.objective is None:
            raise ConfigError(f"{where}: protocol pretrain_probe fits each model by an objective of its own, "
                              "without targets: set e.g. 'objective: contrastive' on the model")
        if m.objective is not None and not probing:
            raise ConfigError(f"{where}: a model with an 'objective' learns embeddings, not the targets: use "
                              "protocol kind pretrain_probe (its probe predicts the targets)")

    def _make_probe(self, cell: Cell, task: str) -> Any:
        """A fresh probe (``protocol.probe``) for the embeddings of ``cell``'s model, predicting its targets."""
        from astromodal.training.estimator import make_estimator

        p, dcfg = self.protocol_of(cell), self.config.datasets[cell.dataset]
        options = dict(p.probe_options)
        heads = dcfg.head_specs()
        extra = {"target_name": dcfg.target} if heads is None else {"heads": heads}
        if get_model(p.probe).family == "classical":
            options.setdefault("random_state", cell.seed)
            return make_estimator(p.probe, options, task=task, **extra)
        return make_estimator(p.probe, options, trainer=self._trainer_config(cell.model, cell.seed), task=task,
                              **extra)

    def _make_estimator(self, cell: Cell, task: str) -> Any:
        from astromodal.experiments import standardised_inputs
        from astromodal.training.estimator import make_estimator

        spec = get_model(cell.model.name)
        options = dict(cell.model.options)
        dcfg = self.config.datasets[cell.dataset]
        heads = dcfg.head_specs()
        # a single target names its one head after the target (predict_heads keys are target names)
        extra = {"target_name": dcfg.target} if heads is None else {"heads": heads}
        if spec.family == "classical":
            options.setdefault("random_state", cell.seed)
            return make_estimator(cell.model.name, options, task=task, **extra)
        standardise = standardised_inputs(cell.model, self.config.representations[cell.representation])
        if cell.model.objective is not None:  # an encoder trained without targets (pretrain_probe)
            extra = {"objective": cell.model.objective}
        return make_estimator(cell.model.name, options, trainer=self._trainer_config(cell.model, cell.seed), task=task,
                              standardise=standardise, **extra)

    def run_cell(self, cell: Cell, data: PreparedData) -> CellResult:
        """One cell's typed result: the shared keys, then what its protocol (``protocol.kind``) adds."""
        from astromodal.evaluation.protocols import get_protocol

        t = data.train.target(data.target)
        task = "classification" if t.kind == "class" else "regression"
        X_tr = data.inputs_train[cell.representation]
        X_te = data.inputs_test.get(cell.representation)
        heads_tr, heads_te = data.y("train"), data.y("test")
        several = self.config.datasets[cell.dataset].head_specs() is not None
        # one target without heads: the estimator is fitted with the array (its single-head behaviour)
        y_tr, y_te = (heads_tr, heads_te) if several else (heads_tr[data.target], heads_te[data.target])
        spec = get_model(cell.model.name)
        if spec.family == "classical":
            X_tr = flatten_inputs(X_tr)
            X_te = flatten_inputs(X_te) if X_te is not None else None
        record: dict[str, Any] = {
            "cell": cell.id, "dataset": cell.dataset, "representation": cell.representation, "model": cell.label,
            "model_name": cell.model.name, "family": spec.family, "seed": cell.seed,
            "n_train": int(len(heads_tr[data.target])), "n_test": int(len(heads_te[data.target])), "task": task,
        }
        # the protocol (evaluation/protocols.py) trains and scores the cell
        ctx = _CellContext(self, cell, data, task, t, spec, X_tr, y_tr, X_te, y_te, record, time.perf_counter(),
                           heads_tr, heads_te)
        record = get_protocol(self.protocol_of(cell).kind).run(ctx)
        predictions = record.pop("_test_predictions", None)  # finish_on_test's per-head test predictions
        embeddings = record.pop("_test_embeddings", None)  # pretrain_probe: the frozen encoders' test embeddings
        result = CellResult.model_validate(record)
        result = result.set_heads(result.heads) if result.heads else result
        if predictions and data.test is not None:
            self._pending_predictions = (cell.id, predictions_arrays(predictions, heads_te, data.test,
                                                                     self.config.report.saved_columns(),
                                                                     embeddings=embeddings))
        return result

    # ------------------------------------------------------------------ the run
    #: the top-level entries a benchmark run writes into its folder, claimed in the marker BEFORE they are
    #: created (astromodal.atomic.claim_entries): an interrupted run can be replaced with --overwrite, and a
    #: file a user adds to the folder is never counted as the tool's
    ENTRIES = ("cells", "config.json", "models", "figures", "report.html", "report.md", "results.csv",
               "results.json", "results.parquet")

    def run(self) -> dict[str, Any]:
        from astromodal.atomic import (
            MARKER,
            check_output_dir,
            claim_entries,
            read_marker,
            recorded_entries,
            write_marker,
        )
        from astromodal.progress import progress

        cells = self.cells()  # validates every model and representation before anything is written
        # the output rule (astromodal.atomic): a foreign folder, an input, ".", "~" or "/" are refused;
        # a benchmark folder is resumed in place; another tool-written one only with overwrite
        check_output_dir(self.out, inputs=[*self.inputs, *self._data_paths()], overwrite=self.overwrite,
                         verb="benchmark", resume=self.resume)
        cells_dir = self.out / "cells"
        created = not self.out.exists()
        was_empty = created or not any(self.out.iterdir())
        self.out.mkdir(parents=True, exist_ok=True)
        claim_entries(self.out, "benchmark", self.ENTRIES)
        try:
            results = self._run(cells, cells_dir, progress)
            # the marker keeps the claimed entries that exist (never a file a user added during the run)
            now = {p.name for p in self.out.iterdir()} - {MARKER}
            write_marker(self.out, "benchmark", sorted(set(recorded_entries(read_marker(self.out)) or []) & now))
            return results
        except BaseException:
            if was_empty and self.out.exists() and not any(cells_dir.glob("*.json")):
                self._remove_output(created)
            raise

    def _remove_output(self, created: bool) -> None:
        """A run that failed before finishing any cell leaves no folder behind: the entries it claimed are
        removed (an empty folder it was given stays; a file a user added meanwhile is kept)."""
        import shutil

        from astromodal.atomic import MARKER

        for name in (*self.ENTRIES, MARKER):
            child = self.out / name
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        if created and not any(self.out.iterdir()):
            self.out.rmdir()

    def _data_paths(self, dataset: str | None = None) -> list[Path]:
        """The dataset files and folders the config reads (the output folder may never be or hold one); of
        one ``dataset``, or of all."""
        from astromodal.data.sources import _PATH_KEYS, resolve_path

        chosen = [self.config.datasets[dataset]] if dataset else list(self.config.datasets.values())
        return [resolve_path(d.options[k], self.base) for d in chosen for k in _PATH_KEYS
                if isinstance(d.options.get(k), (str, Path))]

    def _data_stamps(self, dataset: str) -> list[Any]:
        """Size and modification time of every file a dataset reads (the files of a folder, recursively): a
        file changed in place after a cell finished makes that cell's fingerprint differ, so a resume trains
        it again instead of reusing numbers of the old data. Read once per dataset and run."""
        cache = self.__dict__.setdefault("_stamp_cache", {})
        if dataset in cache:
            return cache[dataset]
        stamps: list[Any] = []
        for path in self._data_paths(dataset):
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for f in files:
                st = f.stat() if f.exists() else None
                stamps.append([str(f), None if st is None else st.st_size, None if st is None else st.st_mtime_ns])
        cache[dataset] = stamps
        return stamps

    def fingerprint(self, cell: Cell) -> str:
        """A digest of every setting that decides a cell's result (data settings and the size and time of its
        files, representation, model, protocol, seed, and for networks the trainer settings; not the report
        settings or the device): a finished
        cell is reused only when it matches (and when it was scored by this :data:`SCORING_VERSION`)."""
        import hashlib

        cfg = self.config
        payload = {
            "dataset": cfg.datasets[cell.dataset].model_dump(),
            "representation": cfg.representations[cell.representation].model_dump(),
            "model": cell.model.model_dump(),
            "protocol": self.protocol_of(cell).model_dump(exclude={"seeds"}),
            "seed": cell.seed,
            "scoring": SCORING_VERSION,  # a cell scored by an older version is scored again
            "data_files": self._data_stamps(cell.dataset),  # data changed in place: trained again
        }
        if get_model(cell.model.name).family == "neural":  # trainer settings decide only the networks
            payload["trainer"] = cfg.trainer
            # command-line trainer settings that change the numbers (not the device)
            payload["overrides"] = {k: v for k, v in self.trainer_overrides.items() if k != "device"}
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _run(self, cells: list[Cell], cells_dir: Path, progress: Any) -> dict[str, Any]:
        self.check_tasks(cells)  # a classifier on a regression target (or the reverse): before any cell trains
        self._check_report_data()  # the report's subset columns and exploratory target: before any cell trains
        cells_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.out / "config.json", self.config.model_dump())
        results: list[CellResult] = []
        prepared: dict[tuple[str, int], PreparedData | None] = {}
        changed: list[str] = []
        with progress() as bar:
            task = bar.add_task(f"benchmark {self.config.name}", total=len(cells))
            for cell in cells:
                path = cells_dir / f"{cell.id}.json"
                fingerprint = self.fingerprint(cell)
                old = self._finished(path, fingerprint, changed, cell.id)
                if old is not None:
                    results.append(old)
                    bar.update(task, advance=1, description=f"{cell.id} (done before)")
                    continue
                bar.update(task, description=cell.id)
                self._pending_predictions = None
                result = self._train(cell, prepared)
                if result is not None:
                    result.fingerprint = fingerprint
                    # the test predictions first: a cell JSON on disk always has its predictions beside it
                    pred_path = predictions_path(cells_dir, cell.id)
                    if self._pending_predictions is not None:
                        write_predictions(pred_path, {**self._pending_predictions[1],
                                                      _PRED_FINGERPRINT: np.asarray(fingerprint)})
                    else:
                        pred_path.unlink(missing_ok=True)  # never the predictions of an older run of the cell
                    write_json(path, result.to_record())
                    results.append(result)
                bar.update(task, advance=1)
        if not results and cells:
            raise DataFormatError("no cell could run: " + "; ".join(self.notes or ["every dataset was skipped"]))
        if changed:
            self.notes.append(f"{len(changed)} finished cell(s) were trained again because their settings changed "
                              "(or an older version scored them): " + ", ".join(changed))
        return self._write_report(results, prepared)

    def _finished(self, path: Path, fingerprint: str, changed: list[str], cell_id: str) -> CellResult | None:
        """The cell's earlier result when it may be reused: written by this scoring version with the same
        settings (the same fingerprint); a cell without a fingerprint, or one that does not read back as a
        result, is trained again."""
        if not (self.resume and path.exists()):
            return None
        from pydantic import ValidationError

        try:
            old = CellResult.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError):  # not JSON, or not a cell result
            old = None
        if old is not None and old.fingerprint == fingerprint:
            written_for = predictions_fingerprint(predictions_path(path.parent, cell_id))
            if written_for is None or written_for == fingerprint:  # none, or an older astromodal's: kept
                return old
            # the predictions beside it are another run's (a crash between the two files): trained again
        changed.append(cell_id)
        return None

    def _train(self, cell: Cell, prepared: dict[tuple[Any, ...], PreparedData | None]) -> CellResult | None:
        """Train and score one cell (its dataset split prepared once per dataset, seed and test split);
        None for a skipped dataset."""
        key = self._split_key(cell)
        if key not in prepared:
            prepared[key] = self.prepare(cell.dataset, cell.seed, self.protocol_of(cell))
        data = prepared[key]
        return None if data is None else self.run_cell(cell, data)

    # ------------------------------------------------------------------ what the report reads
    def data_summary(self) -> DataSummary:
        """Per dataset that was loaded: its source, sizes and, per target, kind, classes and counts."""
        out = []
        for name, dcfg in self.config.datasets.items():
            loaded = self._load(name)  # cached; loaded here when every cell was done before
            if not loaded:
                continue
            train, test = loaded
            out.append(DatasetSummary(name=name, source=dcfg.source, n_train=len(train),
                                      n_test=None if test is None else len(test),
                                      targets=[_target_summary(t, train, test) for t in dcfg.targets]))
        return DataSummary(datasets=out)

    def embedding_sets(self, prepared: dict[tuple[str, int], PreparedData | None]) -> list[Any]:
        """The training inputs of every representation of every dataset with a class (primary) target, for
        the report's PCA / t-SNE maps (first seed's split)."""
        from astromodal.evaluation.benchmark_report import EmbeddingSet

        cfg, out = self.config, []
        if not cfg.report.embeddings:
            return out
        plain = [r for r in cfg.representations if r not in set(cfg.sweep_representations)]
        for name, dcfg in cfg.datasets.items():
            data = next((d for k, d in prepared.items() if k[:2] == (name, cfg.protocol.seeds[0]) and d is not None),
                        None)
            if data is None:
                loaded = self._load(name)  # cached; loaded here when every cell was done before
                if not loaded:
                    continue
                train = loaded[0]
                inputs: Any = _LazyInputs(train, cfg.representations)
            else:
                train, inputs = data.train, data.inputs_train
            t = train.target(dcfg.primary)
            if t.kind != "class":
                continue
            out += [EmbeddingSet(name, r, flatten_inputs(inputs[r]), t.values.read(), list(t.class_names))
                    for r in plain]
        return out

    def _write_report(self, results: list[CellResult], prepared: dict[tuple[str, int], PreparedData | None]) -> dict[str, Any]:
        from astromodal.evaluation.benchmark_report import write_benchmark_report

        datasets = {n: loaded[0] for n in self.config.datasets if (loaded := self._datasets.get(n))}
        return write_benchmark_report(results, self.data_summary(), self.config, self.out, command=self.command,
                                      notes=self.notes, hooks=self.report_hooks,
                                      embeddings=self.embedding_sets(prepared), datasets=datasets)


def _target_summary(name: str, train: Dataset, test: Dataset | None) -> TargetSummary:
    """One target's kind, classes or unit and counts (objects where it applies; per class)."""
    from astromodal.evaluation.protocols import valid_rows

    t = train.target(name)
    task = "classification" if t.kind == "class" else "regression"

    def counts(ds: Dataset) -> dict[str, int]:
        if t.kind != "class":
            return {}
        tt = ds.target(name)
        y = tt.values.read()
        n = np.bincount(y[valid_rows(y, task)].astype(np.int64), minlength=tt.n_classes)
        return dict(zip(tt.class_names, (int(v) for v in n), strict=True))

    def n_valid(ds: Dataset) -> int:
        return int(valid_rows(ds.target(name).values.read(), task).sum())

    return TargetSummary(name=name, kind=t.kind, class_names=list(t.class_names), unit=t.unit,
                         train_counts=counts(train), test_counts=None if test is None else counts(test),
                         n_train_valid=n_valid(train), n_test_valid=None if test is None else n_valid(test))


def _stratified_subsample(ds: Dataset, target: str, n: int, seed: int) -> Dataset:
    from astromodal.data.splits import train_test_indices

    t = ds.target(target)
    labels = t.values.read() if t.kind == "class" else None
    keep, _ = train_test_indices(len(ds), 1.0 - n / len(ds), labels, seed)
    return ds.subset(keep)


def baseline_text(record: dict[str, Any]) -> str:
    """One line: the cell, its headline score and the trivial baseline's, e.g. for the run's warning."""
    b, m = record["baseline"], record["metrics"]
    verb = "beats" if record.get("beats_baseline") else "does not beat"
    if record["task"] == "classification":
        return (f"cell {record['cell']} {verb} the trivial baseline (always {b['value']!r}, the training split's "
                f"majority class): balanced accuracy {m['balanced_accuracy']:.3f} vs {b['metrics']['balanced_accuracy']:.3f}, "
                f"accuracy {m['accuracy']:.3f} vs {b['metrics']['accuracy']:.3f}")
    r2 = "" if m.get("r2") is None else f", R^2 {m['r2']:.3f}"
    return (f"cell {record['cell']} {verb} the trivial baseline (the training mean): RMSE {m['rmse']:.4g} vs "
            f"{b['metrics']['rmse']:.4g}{r2}")


def _n_parameters(estimator: Any) -> int | None:
    n = getattr(estimator, "member_parameters", None)
    if n is None:
        n = getattr(estimator, "n_parameters", None)
    if callable(n):
        n = n()
    return int(n) if n is not None else None


#: the budget of ``astromodal benchmark CONFIG --quick`` (see :func:`quick_overrides`)
QUICK_OBJECTS = 300
QUICK_NOTE = (f"quick run (--quick): at most {QUICK_OBJECTS} objects per dataset (seeded, stratified; a source's own "
              "test split is kept whole), 1 epoch without early stopping, k = 2 folds, 2 resample members. A smoke "
              "test of the config: its numbers are not results.")


def quick_overrides(config: ExperimentConfig) -> ExperimentConfig:
    """The same config on a tiny budget, for a smoke run of every cell through the same code path: each
    dataset subsampled to :data:`QUICK_OBJECTS` (``max_objects``), neural models 1 epoch with early stopping
    off, ``k = 2``, ``n_members = 2`` (the first two ``combine_weights``), output ``<output>-quick`` (default
    ``runs/<name>-quick``, never the full run's folder)."""
    data = config.model_dump()
    for d in data["datasets"].values():
        d["max_objects"] = min(d.get("max_objects") or QUICK_OBJECTS, QUICK_OBJECTS)
    budget = {"max_epochs": 1, "patience": None}
    data["trainer"] = {**data["trainer"], **budget}
    for m in data["models"]:
        if m.get("trainer"):  # per-model overrides (neural models only) get the budget too
            m["trainer"] = {**m["trainer"], **budget}
    _quick_protocol(data["protocol"])
    for m, entry in zip(data["models"], config.models, strict=False):
        if m.get("protocol"):  # a model's own protocol: the same budget, on its effective kind
            m["protocol"] = {**m["protocol"], "k": 2}
            if config.protocol_for(entry).kind == "resample_ensemble":
                _quick_protocol(m["protocol"], config.protocol_for(entry).model_dump())
    data["output"] = f"{config.output or Path('runs') / config.name}-quick"
    return ExperimentConfig.model_validate(data)


#: --quick: rows drawn per member of a mescr ensemble (whose member count the classes fix)
QUICK_DRAW = 300


def _quick_protocol(proto: dict[str, Any], effective: dict[str, Any] | None = None) -> None:
    """k = 2 and, for a resample ensemble, 2 members (the first two combine weights) in a protocol dump."""
    proto["k"] = 2
    eff = {**(effective or proto)}
    if eff.get("kind") == "resample_ensemble" and eff.get("member_weights") == "mescr":
        # one member per class (1 + K, fixed by the classes): keep them, draw fewer rows each
        proto["draw_size"] = min(eff.get("draw_size") or QUICK_DRAW, QUICK_DRAW)
    elif eff.get("kind") == "resample_ensemble":
        proto["n_members"] = min(eff.get("n_members", 2), 2)
        w = eff.get("combine_weights")
        proto["combine_weights"] = w[: proto["n_members"]] if w and sum(w[: proto["n_members"]]) > 0 else None
