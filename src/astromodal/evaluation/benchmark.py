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
from astromodal.data.sources import keep_classes, load_source, paths_missing
from astromodal.errors import ConfigError, DataFormatError
from astromodal.experiments import ExperimentConfig, ModelConfig
from astromodal.models.registry import get_model
from astromodal.transforms.representations import MODALITY, build_inputs, flatten_inputs


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
    ):
        self.config = config
        self.out = Path(out)
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
        cfg = self.config
        out = []
        for seed in cfg.protocol.seeds:
            for ds_name in cfg.datasets:
                for m in cfg.models:
                    if m.datasets and ds_name not in m.datasets:
                        continue
                    spec = get_model(m.name)
                    for rep_name, rep in cfg.representations.items():
                        if m.representations is not None:
                            if rep_name not in m.representations:
                                continue
                        elif spec.family == "neural" and MODALITY[rep.kind] != spec.modality:
                            continue
                        if spec.family == "neural" and MODALITY[rep.kind] != spec.modality:
                            raise ConfigError(
                                f"model {m.name!r} reads {spec.modality} input but representation {rep_name!r} "
                                f"({rep.kind}) gives {MODALITY[rep.kind]}"
                            )
                        out.append(Cell(ds_name, rep_name, m, seed))
        return out

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
            test = keep_classes(test, dcfg.target, dcfg.keep_classes) if test is not None else None
        if dcfg.max_objects and len(train) > dcfg.max_objects:
            train = _stratified_subsample(train, dcfg.target, dcfg.max_objects, seed=0)
        self._datasets[name] = (train, test)
        return train, test

    def prepare(self, ds_name: str, seed: int) -> PreparedData | None:
        loaded = self._load(ds_name)
        if loaded is None:
            return None
        full, given_test = loaded
        target = self.config.datasets[ds_name].target
        stratify = target if full.target(target).kind == "class" else None
        if self.config.protocol.kind == "cv":
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
        try:
            return TrainerConfig(**opts)
        except Exception as exc:  # pydantic ValidationError: name the bad key
            raise ConfigError(f"trainer settings for model {m.name!r}: {exc}") from None

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
        from astromodal.evaluation.metrics import classification_metrics, regression_metrics

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
        start = time.perf_counter()
        if self.config.protocol.kind == "cv":
            return self._run_cv(cell, record, X_tr, y_tr, t, task, start)
        if self.config.protocol.kind == "kfold_ensemble":
            from astromodal.training.crossval import kfold_ensemble

            cv = kfold_ensemble(lambda: self._make_estimator(cell, task), X_tr, y_tr, k=self.config.protocol.k,
                                seed=cell.seed, stratified=task == "classification")
            estimator = cv.ensemble
            record["folds"] = cv.folds if hasattr(cv, "folds") else None
            rule = self.config.protocol.threshold
            if rule != "argmax" and task == "classification" and len(t.class_names) == 2 and cv.oof_proba is not None:
                from astromodal.evaluation.metrics import best_threshold

                # chosen on the out-of-fold predictions of the training split, never on the test split
                estimator.set_threshold(best_threshold(y_tr == estimator.classes_[1], cv.oof_proba[:, 1], rule))
                record["threshold"] = {"rule": rule, "value": estimator.threshold}
        else:
            estimator = self._make_estimator(cell, task).fit(X_tr, y_tr)
        record["fit_seconds"] = round(time.perf_counter() - start, 3)
        # the size of one model (as the study tables quote it), and how many were averaged
        record["n_parameters"] = _n_parameters(estimator)
        record["n_members"] = len(getattr(estimator, "members", [estimator]))
        if self.config.save_models:
            from astromodal.inference.catalogue import save_predictor
            from astromodal.transforms.representations import input_shapes

            model_dir = self.out / "models" / cell.id
            save_predictor(model_dir, estimator, self.config.representations[cell.representation], data.target, task,
                           list(t.class_names), spec.family, input_shapes(data.inputs_train[cell.representation]))
            record["model_dir"] = str(model_dir.relative_to(self.out))
        history = getattr(estimator, "history", None)
        if history:
            record["history"] = history
        if task == "classification":
            proba = _safe_proba(estimator, X_te)
            if proba is not None:
                from astromodal.evaluation.metrics import decide

                pred = np.asarray(estimator.classes_)[decide(proba, getattr(estimator, "threshold", None))]
            else:
                pred = np.asarray(estimator.predict(X_te))
            record["metrics"] = classification_metrics(y_te, pred, proba, class_names=list(t.class_names))
            record["class_names"] = list(t.class_names)
            if proba is not None and proba.shape[1] == 2:
                record["_proba"] = proba[:, 1].tolist()
                record["_y_true"] = y_te.tolist()
        else:
            pred = np.asarray(estimator.predict(X_te)).reshape(len(y_te), -1)[:, 0]
            record["metrics"] = regression_metrics(y_te, pred)
            record["unit"] = t.unit
        return record

    def _run_cv(self, cell: Cell, record: dict[str, Any], X: Any, y: np.ndarray, t: Any, task: str,
                start: float) -> dict[str, Any]:
        """Stratified k-fold cross-validation: a fresh model per fold; out-of-fold predictions pooled."""
        from astromodal.data.splits import kfold_indices
        from astromodal.evaluation.metrics import classification_metrics, regression_metrics, summarise_runs

        def rows(X: Any, idx: np.ndarray) -> Any:
            return {k: v[idx] for k, v in X.items()} if isinstance(X, dict) else X[idx]

        labels = y if task == "classification" else None
        pooled = np.zeros(len(y), dtype=np.float64 if task == "regression" else np.int64)
        fold_scores = []
        for train_idx, val_idx in kfold_indices(len(y), self.config.protocol.k, labels, cell.seed):
            est = self._make_estimator(cell, task).fit(rows(X, train_idx), y[train_idx])
            pred = np.asarray(est.predict(rows(X, val_idx))).reshape(len(val_idx), -1)[:, 0]
            pooled[val_idx] = pred
            if task == "classification":
                fold_scores.append(float(np.mean(pred == y[val_idx])))
            else:
                fold_scores.append(float(np.sqrt(np.mean((pred - y[val_idx]) ** 2))))
        record["fit_seconds"] = round(time.perf_counter() - start, 3)
        record["n_test"] = int(len(y))
        record["fold_scores"] = fold_scores
        record["fold_summary"] = summarise_runs(fold_scores)
        record["n_parameters"] = _n_parameters(est)  # one fold's model (every fold builds the same network)
        record["n_members"] = 1
        if task == "classification":
            record["metrics"] = classification_metrics(y, pooled, None, class_names=list(t.class_names))
            record["class_names"] = list(t.class_names)
        else:
            record["metrics"] = regression_metrics(y, pooled)
            record["unit"] = t.unit
        return record

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        from astromodal.cli.common import progress

        cells = self.cells()  # validates every model and representation before anything is written
        cells_dir = self.out / "cells"
        created = not self.out.exists()
        try:
            return self._run(cells, cells_dir, progress)
        except BaseException:
            # a run that failed before finishing any cell leaves no folder behind
            if created and self.out.exists() and not any(cells_dir.glob("*.json")):
                import shutil

                shutil.rmtree(self.out, ignore_errors=True)
            raise

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


def _n_parameters(estimator: Any) -> int | None:
    n = getattr(estimator, "member_parameters", None)
    if n is None:
        n = getattr(estimator, "n_parameters", None)
    if callable(n):
        n = n()
    return int(n) if n is not None else None
