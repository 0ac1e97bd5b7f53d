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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.atomic import write_json
from astromodal.data.dataset import Dataset
from astromodal.data.preparation import with_class_names
from astromodal.data.sources import align_test_classes, keep_classes, load_source, paths_missing
from astromodal.errors import ConfigError, DataFormatError
from astromodal.experiments import ExperimentConfig, ModelConfig
from astromodal.models.registry import get_model
from astromodal.transforms.representations import build_inputs, flatten_inputs


@dataclass(frozen=True)
class Cell:
    dataset: str
    representation: str
    model: ModelConfig
    seed: int

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
    target: str
    inputs_train: dict[str, dict[str, np.ndarray]]
    inputs_test: dict[str, dict[str, np.ndarray]]


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
        #: callables ``f(report, runner)`` adding sections to the report before it is written
        self.report_hooks: list[Any] = []
        self._datasets: dict[str, tuple[Dataset, Dataset | None]] = {}

    # ------------------------------------------------------------------ cells
    def cells(self) -> list[Cell]:
        self.validate()  # every config problem, before any data is loaded or any cell trained
        cfg = self.config
        reps = self._model_representations()
        out = []
        for seed in cfg.protocol.seeds:
            for ds_name in cfg.datasets:
                for i, m in enumerate(cfg.models):
                    if m.datasets and ds_name not in m.datasets:
                        continue
                    out += [Cell(ds_name, rep_name, m, seed) for rep_name in reps[i]]
        return out

    def _model_representations(self) -> list[list[str]]:
        """Per model, the representations it runs on, checked from the config alone: its declared inputs
        must be among a representation's input names. A model listing ``representations:`` where one lacks
        an input is an error naming the missing inputs; without the list a neural model runs on every
        representation that has its inputs (an error when none has them), a classical one on every one."""
        cfg = self.config
        keys = {r: list(rc.views()) for r, rc in cfg.representations.items()}  # bad view options stop here
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
                out.append([r for r in cfg.representations if r in m.representations])
                continue
            fits = [r for r in cfg.representations if need is None or set(need) <= set(keys[r])]
            if not fits:
                raise ConfigError(f"{where} reads input(s) {list(need or ())} but no representation gives them all: "
                                  + "; ".join(f"{r!r} gives {k}" for r, k in keys.items()))
            out.append(fits)
        return out

    def check_tasks(self, cells: list[Cell]) -> None:
        """Load each dataset (cached for the run) and check that every cell's model does its target's task:
        ``random_forest`` on a regression target is one line naming ``random_forest_regressor``."""
        from astromodal.training.estimator import check_model_task

        seen: set[tuple[str, str]] = set()
        for cell in cells:
            if (cell.dataset, cell.model.name) in seen:
                continue
            seen.add((cell.dataset, cell.model.name))
            loaded = self._load(cell.dataset)
            if loaded is None:  # an optional dataset whose files are missing: skipped with a note
                continue
            target = self.config.datasets[cell.dataset].target
            kind = loaded[0].target(target).kind
            try:
                check_model_task(cell.model.name, "classification" if kind == "class" else "regression", target)
            except ConfigError as exc:
                raise ConfigError(f"dataset {cell.dataset!r}: {exc}") from None

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
        train, test = load_source(dcfg.source, dcfg.options, self.base)
        if dcfg.keep_classes:
            train = keep_classes(train, dcfg.target, dcfg.keep_classes)
        if test is not None:  # the source's own test split: its labels coded BY NAME with the training classes
            files = test.meta.get("source") or ", ".join(test.meta.get("source_files", [])) or "(the source's test split)"
            where = f"dataset {name!r}: test file {files}"
            test = align_test_classes(train, test, dcfg.target, dcfg.unseen_test_classes, dcfg.keep_classes, where)
            unseen = test.target(dcfg.target).unseen_classes(train.target(dcfg.target).class_names) \
                if train.target(dcfg.target).kind == "class" else {}
            if unseen:
                self.notes.append(f"{where}: class(es) " + ", ".join(f"{c} ({n:,} objects)" for c, n in unseen.items())
                                  + " never seen in training, scored as misclassified (unseen_test_classes: count_wrong)")
        if dcfg.max_objects and len(train) > dcfg.max_objects:
            train = _stratified_subsample(train, dcfg.target, dcfg.max_objects, seed=0)
        if isinstance(train.meta.get("preparation"), dict) and train.target(dcfg.target).kind == "class":
            # the class mapping a saved model predicts with (after keep_classes)
            train.meta = {**train.meta, "preparation": with_class_names(train.meta["preparation"],
                                                                       train.target(dcfg.target).class_names)}
        self._datasets[name] = (train, test)
        return train, test

    def prepare(self, ds_name: str, seed: int) -> PreparedData | None:
        loaded = self._load(ds_name)
        if loaded is None:
            return None
        full, given_test = loaded
        target = self.config.datasets[ds_name].target
        stratify = target if full.target(target).kind == "class" else None
        from astromodal.evaluation.protocols import get_protocol

        if not get_protocol(self.config.protocol.kind).uses_test_split:  # e.g. cv: every object scored out of fold
            train, test = full, None
        elif given_test is not None:
            train, test = full, given_test
        else:
            train, test = full.split(self.config.protocol.test_fraction, stratify=stratify, seed=seed)
        reps = self.config.representations
        return PreparedData(
            train,
            test,
            target,
            {r: build_inputs(train, rc) for r, rc in reps.items()},
            {r: build_inputs(test, rc) for r, rc in reps.items()} if test is not None else {},
        )

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
            check_model_options(m.name, m.options, where=where)
            if spec.family == "classical" and m.trainer:
                raise ConfigError(f"{where}: 'trainer' settings are for neural models; {m.name!r} is a classical "
                                  "(scikit-learn) model: set its options under 'options'")

    def _make_estimator(self, cell: Cell, task: str) -> Any:
        from astromodal.training.estimator import make_estimator

        spec = get_model(cell.model.name)
        options = dict(cell.model.options)
        if spec.family == "classical":
            options.setdefault("random_state", cell.seed)
            return make_estimator(cell.model.name, options, task=task)
        return make_estimator(cell.model.name, options, trainer=self._trainer_config(cell.model, cell.seed), task=task,
                              standardise=cell.model.standardise)

    def run_cell(self, cell: Cell, data: PreparedData) -> dict[str, Any]:
        """One cell's record: the shared keys, then what its protocol (``protocol.kind``) adds."""
        t = data.train.target(data.target)
        task = "classification" if t.kind == "class" else "regression"
        X_tr = data.inputs_train[cell.representation]
        X_te = data.inputs_test.get(cell.representation)
        y_tr = data.train.target(data.target).values.read()
        y_te = data.test.target(data.target).values.read() if data.test is not None else np.empty(0)
        spec = get_model(cell.model.name)
        if spec.family == "classical":
            X_tr = flatten_inputs(X_tr)
            X_te = flatten_inputs(X_te) if X_te is not None else None
        record: dict[str, Any] = {
            "cell": cell.id,
            "dataset": cell.dataset,
            "representation": cell.representation,
            "model": cell.label,
            "model_name": cell.model.name,
            "family": spec.family,
            "seed": cell.seed,
            "n_train": int(len(y_tr)),
            "n_test": int(len(y_te)),
            "task": task,
        }
        from astromodal.evaluation.protocols import CellContext, get_protocol

        # the protocol (evaluation/protocols.py) trains and scores the cell
        ctx = CellContext(self, cell, data, task, t, spec, X_tr, y_tr, X_te, y_te, record, time.perf_counter())
        return get_protocol(self.config.protocol.kind).run(ctx)

    def _add_baseline(self, record: dict[str, Any], y_train: np.ndarray, y_test: np.ndarray,
                      y_base: np.ndarray | None = None) -> None:
        """The trivial baseline (training majority class / training mean) on the same test objects, in
        ``record["baseline"]``, and ``record["beats_baseline"]``; a cell that does not beat it is a warning."""
        from astromodal.evaluation.metrics import beats_baseline, trivial_baseline

        task = record["task"]
        record["baseline"] = trivial_baseline(y_train, y_test, task, record.get("class_names"), y_base=y_base)
        record["beats_baseline"] = beats_baseline(task, record["metrics"], record["baseline"])
        if not record["beats_baseline"]:
            from astromodal.progress import console

            console.print(f"warning: {baseline_text(record)}", markup=False, highlight=False, soft_wrap=True)

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        from astromodal.atomic import MARKER, check_output_dir, read_marker, write_marker
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
        before = {p.name for p in self.out.iterdir()} - {MARKER}
        marker = read_marker(self.out) or {}
        recorded = marker.get("entries") if marker.get("verb") == "benchmark" else None
        if marker.get("verb") != "benchmark":
            write_marker(self.out, "benchmark")
        try:
            results = self._run(cells, cells_dir, progress)
            # the marker records what the runs wrote, so a file a user adds later is never replaced
            now = {p.name for p in self.out.iterdir()} - {MARKER}
            ours = (set(recorded) if isinstance(recorded, list) else before) | (now - before)
            write_marker(self.out, "benchmark", sorted(ours & now))
            return results
        except BaseException:
            # a run that failed before finishing any cell leaves no folder behind (an empty folder it was
            # given stays, emptied again: everything in it was written by this run)
            if was_empty and self.out.exists() and not any(cells_dir.glob("*.json")):
                import shutil

                if created:
                    shutil.rmtree(self.out, ignore_errors=True)
                else:
                    for child in self.out.iterdir():
                        if child.is_dir():
                            shutil.rmtree(child, ignore_errors=True)
                        else:
                            child.unlink(missing_ok=True)
            raise

    def _data_paths(self) -> list[Path]:
        """The dataset files and folders the config reads (the output folder may never be or hold one)."""
        from astromodal.data.sources import _PATH_KEYS, resolve_path

        return [resolve_path(d.options[k], self.base) for d in self.config.datasets.values() for k in _PATH_KEYS
                if isinstance(d.options.get(k), (str, Path))]

    def fingerprint(self, cell: Cell) -> str:
        """A digest of every setting that decides a cell's result (data, representation, model, protocol,
        seed, and for networks the trainer settings; not the report settings or the device): a finished
        cell is reused only when it matches."""
        import hashlib

        cfg = self.config
        payload = {
            "dataset": cfg.datasets[cell.dataset].model_dump(),
            "representation": cfg.representations[cell.representation].model_dump(),
            "model": cell.model.model_dump(),
            "protocol": cfg.protocol.model_dump(exclude={"seeds"}),
            "seed": cell.seed,
        }
        if get_model(cell.model.name).family == "neural":  # trainer settings decide only the networks
            payload["trainer"] = cfg.trainer
            # command-line trainer settings that change the numbers (not the device)
            payload["overrides"] = {k: v for k, v in self.trainer_overrides.items() if k != "device"}
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _run(self, cells: list[Cell], cells_dir: Path, progress: Any) -> dict[str, Any]:
        self.check_tasks(cells)  # a classifier on a regression target (or the reverse): before any cell trains
        cells_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.out / "config.json", self.config.model_dump())
        records: list[dict[str, Any]] = []
        prepared: dict[tuple[str, int], PreparedData | None] = {}
        changed: list[str] = []
        with progress() as bar:
            task = bar.add_task(f"benchmark {self.config.name}", total=len(cells))
            for cell in cells:
                path = cells_dir / f"{cell.id}.json"
                fingerprint = self.fingerprint(cell)
                if self.resume and path.exists():
                    old = json.loads(path.read_text())
                    # records written before fingerprints existed carry none and are reused
                    if old.get("fingerprint", fingerprint) == fingerprint:
                        records.append(_with_intervals(old))  # cells written before intervals existed
                        bar.update(task, advance=1, description=f"{cell.id} (done before)")
                        continue
                    changed.append(cell.id)
                key = (cell.dataset, cell.seed)
                if key not in prepared:
                    prepared[key] = self.prepare(cell.dataset, cell.seed)
                data = prepared[key]
                if data is None:
                    bar.update(task, advance=1)
                    continue
                bar.update(task, description=cell.id)
                record = _with_intervals(self.run_cell(cell, data))
                record["fingerprint"] = fingerprint
                write_json(path, record)
                records.append(record)
                bar.update(task, advance=1)
        if not records and cells:
            raise DataFormatError("no cell could run: " + "; ".join(self.notes or ["every dataset was skipped"]))
        if changed:
            self.notes.append(f"{len(changed)} finished cell(s) were trained again because their settings changed: "
                              + ", ".join(changed))
        from astromodal.evaluation.benchmark_report import write_benchmark_report

        results = write_benchmark_report(self, records, prepared)
        return results


def _stratified_subsample(ds: Dataset, target: str, n: int, seed: int) -> Dataset:
    from astromodal.data.splits import train_test_indices

    t = ds.target(target)
    labels = t.values.read() if t.kind == "class" else None
    keep, _ = train_test_indices(len(ds), 1.0 - n / len(ds), labels, seed)
    return ds.subset(keep)


def _safe_proba(estimator: Any, X: Any) -> np.ndarray | None:
    try:
        proba = estimator.predict_proba(X)
    except (AttributeError, NotImplementedError):
        return None
    return None if proba is None else np.asarray(proba)


def _with_intervals(record: dict[str, Any]) -> dict[str, Any]:
    """Add the 95 % bootstrap intervals of a classification cell's accuracy, balanced accuracy and macro F1
    (from its confusion matrix) to its metrics as ``ci95``; the report's tables read them from there."""
    if record["task"] == "classification" and "ci95" not in record["metrics"]:
        from astromodal.evaluation.metrics import bootstrap_confusion

        record["metrics"]["ci95"] = bootstrap_confusion(record["metrics"]["confusion_matrix"], seed=0)
    return record


def _mean_var(estimator: Any, X: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Regression prediction and its variance (NaN where the model predicts no uncertainty)."""
    if hasattr(estimator, "predict_mean_var"):
        mean, var = estimator.predict_mean_var(X)
        mean = np.asarray(mean, dtype=np.float64).reshape(n)
        return mean, np.full(n, np.nan) if var is None else np.asarray(var, dtype=np.float64).reshape(n)
    return np.asarray(estimator.predict(X), dtype=np.float64).reshape(n, -1)[:, 0], np.full(n, np.nan)


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
    proto = data["protocol"]
    proto["k"] = 2
    if proto["kind"] == "resample_ensemble":
        proto["n_members"] = min(proto.get("n_members", 2), 2)
        w = proto.get("combine_weights")
        proto["combine_weights"] = w[: proto["n_members"]] if w and sum(w[: proto["n_members"]]) > 0 else None
    data["output"] = f"{config.output or Path('runs') / config.name}-quick"
    return ExperimentConfig.model_validate(data)
