"""Batch sources: model inputs read block by block, for data larger than memory.

A batch source holds ``len(source)`` objects and the input names ``keys``; ``read(positions)`` returns
``{name: array}`` for the given positions (object indices into the source), ``take(positions)`` is a
sub-source (nothing read). Two kinds:

* :class:`InputStream` (``Dataset.input_stream(views, rows)``): the views (:mod:`astromodal.data.views`)
  of a dataset applied to the rows read. A dataset loaded from HDF5 (``Dataset.load``) keeps its arrays on
  disk, so only those rows are read. Views are per object and never fitted, so a view on a block of
  rows gives exactly those rows of the view on the whole dataset (``tests/test_streaming.py``).
* :class:`ArrayStream`: a dict of row-indexable arrays (numpy, ``RowView``, ``h5py.Dataset``, tensors).

``Trainer`` with ``TrainerConfig(data="stream")`` reads a training epoch from a source without random
single-row reads (:func:`iter_batches`): the source is cut into contiguous blocks of ``stream_block``
rows, the blocks are visited in a seeded permutation, ``stream_buffer`` blocks at a time are read (each
group in increasing row order) and shuffled within that buffer, and the next group is read in a
background thread while the model trains on the current one. Validation and prediction read the blocks
in order. Memory held: about two buffers (``2 * stream_block * stream_buffer`` objects), whatever the
size of the data. Standardisation statistics of a source are computed block by block in float64
(:func:`stream_statistics`, equal to ``estimator.input_statistics`` on the whole arrays).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from astromodal.errors import BadValueError

if TYPE_CHECKING:
    import torch

    from astromodal.data.dataset import Dataset


class BatchSource:
    """Rows of named model inputs, read on demand (see the module text)."""

    keys: tuple[str, ...] = ()
    transforms: dict[str, Callable[[np.ndarray], np.ndarray]]

    def __len__(self) -> int:  # pragma: no cover - every source overrides it
        raise NotImplementedError

    def _read(self, positions: np.ndarray) -> dict[str, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def take(self, positions: np.ndarray | Sequence[int]) -> BatchSource:  # pragma: no cover
        raise NotImplementedError

    def read(self, positions: np.ndarray | Sequence[int]) -> dict[str, np.ndarray]:
        """``{name: array}`` of the objects at ``positions`` (read in that order; increasing reads fastest),
        each input passed through its transform (e.g. the estimator's standardisation) if it has one."""
        pos = np.asarray(positions, dtype=np.int64)
        out = self._read(pos)
        transforms = getattr(self, "transforms", None) or {}
        return {k: (transforms[k](v) if k in transforms else v) for k, v in out.items()}

    def read_all(self) -> dict[str, np.ndarray]:
        """Every object in memory (what ``data: memory`` does with a source)."""
        return self.read(np.arange(len(self)))

    def select(self, keys: Sequence[str]) -> BatchSource:
        """The same rows with only the inputs ``keys`` (an unknown one is an error naming it)."""
        missing = [k for k in keys if k not in self.keys]
        if missing:
            raise BadValueError(f"the batch source lacks the input(s) {missing}; it has {list(self.keys)}")
        out = copy.copy(self)
        out.keys = tuple(keys)
        out._shapes = None
        return out

    def with_transforms(self, transforms: Mapping[str, Callable[[np.ndarray], np.ndarray]]) -> BatchSource:
        """A copy whose inputs pass through ``transforms[name]`` after reading (the standardisation)."""
        out = copy.copy(self)
        out.transforms = {**(getattr(self, "transforms", None) or {}), **transforms}
        out._shapes = None
        return out

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The per-object shape of each input (from the first object)."""
        if getattr(self, "_shapes", None) is None:
            if len(self) == 0:
                raise BadValueError("the batch source holds no objects")
            self._shapes = {k: tuple(v.shape[1:]) for k, v in self.read(np.array([0])).items()}
        return self._shapes  # type: ignore[return-value]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self.keys


class InputStream(BatchSource):
    """The views of a dataset, built for the rows read (``rows``: the dataset rows it covers, default all)."""

    def __init__(self, ds: Dataset, views: Mapping[str, Any], rows: np.ndarray | Sequence[int] | None = None,
                 transforms: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None):
        from astromodal.data.views import view_class

        self.ds = ds
        self.views = {str(k): (v if hasattr(v, "build") else view_class(dict(v).get("kind"))(**dict(v)))
                      for k, v in views.items()}
        self.keys = tuple(self.views)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        if self.rows is not None and len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= len(ds)):
            raise BadValueError(f"stream rows out of range for a dataset of {len(ds)} objects")
        self.transforms = dict(transforms or {})
        self._shapes: dict[str, tuple[int, ...]] | None = None

    def __len__(self) -> int:
        return len(self.ds) if self.rows is None else len(self.rows)

    def _read(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        rows = positions if self.rows is None else self.rows[positions]
        part = self.ds.subset(rows)
        return {k: self.views[k].build(part) for k in self.keys}

    def take(self, positions: np.ndarray | Sequence[int]) -> InputStream:
        pos = np.asarray(positions, dtype=np.int64)
        out = copy.copy(self)
        out.rows = pos if self.rows is None else self.rows[pos]
        return out

    def __repr__(self) -> str:
        return f"InputStream({len(self)} objects, inputs {list(self.keys)})"


class ArrayStream(BatchSource):
    """A dict of row-indexable arrays read block by block (numpy, RowView, h5py datasets, tensors)."""

    def __init__(self, arrays: Mapping[str, Any], rows: np.ndarray | None = None):
        self.arrays = dict(arrays)
        self.keys = tuple(self.arrays)
        lengths = {k: len(v) for k, v in self.arrays.items()}
        if len(set(lengths.values())) > 1:
            raise BadValueError(f"the inputs have different numbers of rows: {lengths}")
        self.n = next(iter(lengths.values()), 0)
        self.rows = rows
        self.transforms = {}
        self._shapes = None

    def __len__(self) -> int:
        return self.n if self.rows is None else len(self.rows)

    def _read(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        rows = positions if self.rows is None else self.rows[positions]
        return {k: _rows_of(self.arrays[k], rows) for k in self.keys}

    def take(self, positions: np.ndarray | Sequence[int]) -> ArrayStream:
        pos = np.asarray(positions, dtype=np.int64)
        out = copy.copy(self)
        out.rows = pos if self.rows is None else self.rows[pos]
        return out


def _rows_of(a: Any, rows: np.ndarray) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        return a[rows].detach().cpu().numpy()
    if isinstance(a, np.ndarray):
        return a[rows]
    if len(rows) > 1 and rows[-1] - rows[0] + 1 == len(rows) and (np.diff(rows) == 1).all():
        return np.asarray(a[int(rows[0]): int(rows[-1]) + 1])  # one contiguous read
    return np.asarray(a[rows])


def as_source(inputs: Any) -> BatchSource:
    """A batch source as it is, a dict of arrays as an :class:`ArrayStream`."""
    return inputs if isinstance(inputs, BatchSource) else ArrayStream(inputs)


# ---------------------------------------------------------------------- the order of an epoch
def block_plan(n: int, block: int, buffer: int, gen: torch.Generator | None = None) -> list[np.ndarray]:
    """The reads of one pass: groups of ``buffer`` contiguous blocks of ``block`` rows, each group's rows in
    increasing order. With ``gen`` the blocks come in a seeded permutation (the caller shuffles within a
    group); without, in order (a group is then rows ``[g * block * buffer, ...)``)."""
    import torch

    starts = np.arange(0, n, block, dtype=np.int64)
    order = torch.randperm(len(starts), generator=gen).numpy() if gen is not None else np.arange(len(starts))
    groups = []
    for g in range(0, len(order), buffer):
        chosen = np.sort(starts[order[g: g + buffer]])
        groups.append(np.concatenate([np.arange(s, min(s + block, n), dtype=np.int64) for s in chosen]))
    return groups


def iter_batches(source: BatchSource, batch_size: int, block: int = 256, buffer: int = 4,
                 gen: torch.Generator | None = None, drop_last: bool = False,
                 prefetch: bool = True) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """``(positions, {name: array})`` batches over ``source``: one pass in the order of :func:`block_plan`,
    shuffled within each buffer with ``gen`` (all permutations drawn up front, so the order depends on the
    seed only). Every batch but the last holds ``batch_size`` objects (the rest of a buffer is carried into
    the next), so a pass has ``ceil(n / batch_size)`` batches (``floor`` with ``drop_last``), like the
    in-memory path; with ``gen`` None the batches are the rows ``0..n-1`` in order."""
    import torch

    n = len(source)
    groups = block_plan(n, max(1, block), max(1, buffer), gen)
    perms = [torch.randperm(len(g), generator=gen).numpy() if gen is not None else None for g in groups]
    pool = ThreadPoolExecutor(1) if prefetch and len(groups) > 1 else None
    try:
        pending = pool.submit(source.read, groups[0]) if pool is not None and groups else None
        carry: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        for i, (rows, perm) in enumerate(zip(groups, perms, strict=True)):
            arrays = pending.result() if pending is not None else source.read(rows)
            pending = pool.submit(source.read, groups[i + 1]) if pool is not None and i + 1 < len(groups) else None
            order = perm if perm is not None else np.arange(len(rows))
            start = 0
            if carry is not None:  # complete the batch begun in the previous buffer
                start = min(batch_size - len(carry[0]), len(order))
                take = order[:start]
                carry = (np.concatenate([carry[0], rows[take]]),
                         {k: np.concatenate([carry[1][k], _gather(v, take)]) for k, v in arrays.items()})
                if len(carry[0]) < batch_size:
                    continue
                yield carry
                carry = None
            while start < len(order):
                take = order[start: start + batch_size]
                part = (rows[take], {k: _gather(v, take) for k, v in arrays.items()})
                start += len(take)
                if len(take) < batch_size:
                    carry = part
                else:
                    yield part
        if carry is not None and len(carry[0]) and not drop_last:
            yield carry
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _gather(a: np.ndarray, take: np.ndarray) -> np.ndarray:
    """Rows ``take`` of a buffer (a slice, no copy, when they are consecutive)."""
    if len(take) and take[-1] - take[0] + 1 == len(take) and (len(take) == 1 or (np.diff(take) == 1).all()):
        return a[int(take[0]): int(take[-1]) + 1]
    return a[take]


# ---------------------------------------------------------------------- statistics
def stream_statistics(source: BatchSource, names: Sequence[str] | None = None, block: int = 256,
                      buffer: int = 4) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation of each input ``names`` (default all) read block by block, in the
    format of :func:`astromodal.training.estimator.input_statistics`: per band (axis 1) for inputs of 3 or
    more dimensions (``"per": "band"``), per feature for 2-D ones; std 1 where it is 0. Chunks are merged in
    float64 (Chan et al.'s pairwise update of count, mean and squared deviations), so the result equals the
    in-memory one to rounding."""
    keys = list(names) if names is not None else list(source.keys)
    if not keys:
        return {}
    sub = source.select(keys)
    acc: dict[str, list[Any]] = {}
    for rows in block_plan(len(sub), block, buffer):
        for k, v in sub.read(rows).items():
            a = np.asarray(v, dtype=np.float64)
            axes = (0, *range(2, a.ndim)) if a.ndim >= 3 else (0,)
            count = a.size // (a.shape[1] if a.ndim >= 2 else 1)
            mean = a.mean(axis=axes)
            m2 = ((a - np.expand_dims(mean, axes)) ** 2).sum(axis=axes)
            if k not in acc:
                acc[k] = [count, mean, m2, a.ndim]
                continue
            n0, mean0, m20, _ = acc[k]
            total = n0 + count
            delta = mean - mean0
            acc[k] = [total, mean0 + delta * (count / total), m20 + m2 + delta**2 * (n0 * count / total), a.ndim]
    out: dict[str, dict[str, Any]] = {}
    for k, (count, mean, m2, ndim) in acc.items():
        std = np.sqrt(m2 / count)
        out[k] = {"mean": np.atleast_1d(mean).tolist(), "std": np.atleast_1d(np.where(std > 0, std, 1.0)).tolist()}
        if ndim >= 3:
            out[k]["per"] = "band"
    return out
