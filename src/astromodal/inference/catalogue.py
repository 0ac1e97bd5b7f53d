"""Apply a trained model (or fold ensemble) to a catalogue, in chunks, resumably.

A *model folder* is what ``astromodal benchmark`` writes for each cell when ``save_models`` is on
(``MODEL_DIR/model.json`` + ``model.pt``, or ``ensemble.json`` with member folders), plus
``predictor.json``: the representation that turns a dataset into the model's input, the target and
its class names. Nothing is unpickled for neural models (weights load with ``weights_only=True``).

The catalogue is read lazily where the format allows (astromodal HDF5) and processed ``chunk_size``
objects at a time. Each finished chunk is written to ``OUT.parts/part-NNNNN.parquet``; a re-run skips
the chunks already there, and the final Parquet file is assembled and renamed into place at the end,
so an interrupted job resumes where it stopped and never leaves a half-written output.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astromodal.atomic import atomic_path, write_json
from astromodal.data.dataset import Dataset
from astromodal.errors import BadValueError, ConfigError, DataFormatError
from astromodal.experiments import RepresentationConfig
from astromodal.transforms.representations import build_inputs, flatten_inputs

#: catalogue columns copied to the output when present
PASS_THROUGH = ("l", "b", "parallax", "parallax_error", "parallax_over_error", "distance", "pmra", "pmdec")


@dataclass
class Predictor:
    """A loaded model with the representation and classes it was trained with."""

    estimator: Any
    representation: RepresentationConfig
    target: str
    task: str
    class_names: list[str]
    family: str
    input_shapes: dict[str, list[int]]

    def inputs(self, ds: Dataset) -> Any:
        X = build_inputs(ds, self.representation)
        for key, shape in self.input_shapes.items():
            if key in X and list(X[key].shape[1:]) != list(shape):
                raise BadValueError(
                    f"input {key!r} has shape {list(X[key].shape[1:])} per object but the model was trained on "
                    f"{list(shape)} (spectrum length / image size must match the training data)"
                )
        return flatten_inputs(X) if self.family == "classical" else X

    def predict_proba(self, ds: Dataset) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(self.inputs(ds)))

    def predict(self, ds: Dataset) -> np.ndarray:
        return np.asarray(self.estimator.predict(self.inputs(ds)))


def save_predictor(model_dir: Path, estimator: Any, representation: RepresentationConfig, target: str, task: str,
                   class_names: list[str], family: str, input_shapes: dict[str, Any]) -> Path:
    """Save an estimator with what :func:`load_predictor` needs to apply it to new catalogues."""
    model_dir = Path(model_dir)
    estimator.save(model_dir)
    meta = {
        "representation": representation.model_dump(),
        "target": target,
        "task": task,
        "class_names": list(class_names),
        "family": family,
        "input_shapes": {k: list(v) for k, v in input_shapes.items()},
    }
    write_json(model_dir / "predictor.json", meta)
    return model_dir


def load_predictor(model_dir: str | Path, trust: bool = False) -> Predictor:
    """Load a model folder written by :func:`save_predictor` (``trust`` allows scikit-learn pickles)."""
    model_dir = Path(model_dir)
    meta_path = model_dir / "predictor.json"
    if not meta_path.is_file():
        raise DataFormatError(f"{model_dir}: not an astromodal model folder (no predictor.json)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{meta_path}: not valid JSON ({exc})") from None
    from astromodal.training.estimator import load_estimator

    estimator = load_estimator(model_dir, trust=trust)
    return Predictor(estimator, RepresentationConfig(**meta["representation"]), meta["target"], meta["task"],
                     meta["class_names"], meta["family"], meta.get("input_shapes", {}))


def open_catalogue(path: str | Path, reader: str | None = None, **options: Any) -> Dataset:
    """A catalogue as a Dataset: astromodal HDF5 (lazy) or any format a registered reader knows."""
    path = Path(path)
    if path.suffix in (".h5", ".hdf5"):
        return Dataset.load(path)
    from astromodal.data.readers import read

    return read(path, reader=reader, **options)


def predict_catalogue(
    model_dir: str | Path,
    catalogue: str | Path | Dataset,
    out: str | Path,
    chunk_size: int = 50_000,
    reader: str | None = None,
    trust: bool = False,
    progress: Any = None,
    keep: tuple[str, ...] | list[str] = (),
) -> Path:
    """Predict every object of ``catalogue`` and write ``out`` (Parquet): ids, positions, probabilities, label.

    ``keep``: more catalogue columns or targets to copy to the output (e.g. a simulated survey's true
    ``massive`` class and ``association_id``); an unknown name is an error listing the known ones.
    """
    if chunk_size < 1:
        raise ConfigError(f"--chunk-size must be positive (got {chunk_size})")
    predictor = load_predictor(model_dir, trust=trust)
    ds = catalogue if isinstance(catalogue, Dataset) else open_catalogue(catalogue, reader=reader)
    known = [*ds.columns, *ds.targets]
    unknown = [k for k in keep if k not in known]
    if unknown:
        raise BadValueError(f"--keep {unknown}: not a column or target of {catalogue}; known: {known}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = out.with_name(out.name + ".parts")
    parts.mkdir(exist_ok=True)
    n = len(ds)
    starts = list(range(0, n, chunk_size))
    task = progress.add_task(f"predict {out.name}", total=n) if progress is not None else None
    try:
        for i, start in enumerate(starts):
            stop = min(n, start + chunk_size)
            part = parts / f"part-{i:05d}.parquet"
            if not part.exists():
                chunk = ds.subset(np.arange(start, stop))
                table = _chunk_table(predictor, chunk, tuple(keep))
                with atomic_path(part) as tmp:
                    pq.write_table(table, tmp)
            if progress is not None:
                progress.update(task, advance=stop - start)
    except BaseException:
        if not any(parts.iterdir()):  # nothing finished: leave nothing behind (finished chunks stay for resume)
            parts.rmdir()
        raise
    files = [parts / f"part-{i:05d}.parquet" for i in range(len(starts))]
    with atomic_path(out) as tmp_out:
        if files:
            with pq.ParquetWriter(tmp_out, pq.read_schema(files[0])) as writer:
                for f in files:
                    writer.write_table(pq.read_table(f))
        else:
            pq.write_table(pa.table({"id": pa.array([], pa.string())}), tmp_out)
    shutil.rmtree(parts, ignore_errors=True)
    return out


def _chunk_table(predictor: Predictor, chunk: Dataset, keep: tuple[str, ...] = ()) -> pa.Table:
    cols: dict[str, Any] = {
        "id": np.asarray(chunk.ids.read()).astype(str),
        "ra": chunk.ra.read().astype(np.float64),
        "dec": chunk.dec.read().astype(np.float64),
    }
    for name in PASS_THROUGH:
        if name in chunk.columns:
            cols[name] = chunk.columns[name].values.read()
    if predictor.task == "classification":
        proba = predictor.predict_proba(chunk)
        for k, name in enumerate(predictor.class_names):
            cols[f"prob_{name}"] = proba[:, k].astype(np.float32)
        from astromodal.evaluation.metrics import decide

        cols["label"] = np.asarray(predictor.class_names)[decide(proba, getattr(predictor.estimator, "threshold", None))]
    else:
        cols[predictor.target] = predictor.predict(chunk).reshape(len(chunk), -1)[:, 0]
    for name in keep:
        if name in chunk.columns:
            values = chunk.columns[name].values.read()
        else:
            t = chunk.target(name)
            values = t.labels() if t.kind == "class" else t.values.read()
        cols[f"true_{name}" if name == predictor.target or name in cols else name] = np.asarray(values)
    return pa.table(cols)
