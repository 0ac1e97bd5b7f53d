"""Row-indexed views over in-memory or on-disk arrays.

A :class:`RowView` pairs a backing array (a numpy array or an ``h5py.Dataset`` read lazily from disk)
with an optional vector of row indices. Taking a subset composes the indices instead of copying data,
so ``dataset.subset(rows)`` is free and a file larger than memory is only read for the rows asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RowView:
    """A lazily indexed view of the leading (object) axis of ``base``."""

    __slots__ = ("base", "rows")

    def __init__(self, base: Any, rows: np.ndarray | None = None):
        if isinstance(base, RowView):
            rows = base._compose(rows)
            base = base.base
        self.base = base
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)

    def _compose(self, rows: np.ndarray | None) -> np.ndarray | None:
        if rows is None:
            return self.rows
        rows = np.asarray(rows, dtype=np.int64)
        return rows if self.rows is None else self.rows[rows]

    @property
    def shape(self) -> tuple[int, ...]:
        n = self.base.shape[0] if self.rows is None else len(self.rows)
        return (n, *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.base.dtype)

    @property
    def ndim(self) -> int:
        return len(self.base.shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def is_lazy(self) -> bool:
        """True when the data stays on disk until read."""
        return not isinstance(self.base, np.ndarray)

    def take(self, rows: np.ndarray | slice) -> RowView:
        """A sub-view of the given rows (no data is copied or read)."""
        if isinstance(rows, slice):
            rows = np.arange(len(self))[rows]
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = np.asarray(rows, dtype=np.int64)
        n = len(self)
        if rows.size and (int(rows.min()) < -n or int(rows.max()) >= n):
            raise IndexError(f"row {int(rows.max()) if int(rows.max()) >= n else int(rows.min())} is out of range "
                             f"for {n} rows")
        rows = np.where(rows < 0, rows + n, rows)  # a slice read on disk must never see -1 (base[-1:0] is empty)
        return RowView(self.base, self._compose(rows))

    def read(self, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """Materialise the view (or the given rows of it) as a numpy array."""
        view = self if rows is None else self.take(rows)
        if view.rows is None:
            return np.asarray(view.base[...])
        if isinstance(view.base, np.ndarray):
            return view.base[view.rows]
        # h5py needs increasing indices: read the unique sorted rows once, then reorder.
        if len(view.rows) == 0:
            return np.empty((0, *view.base.shape[1:]), dtype=view.base.dtype)
        if len(view.rows) == 1 or bool((np.diff(view.rows) > 0).all()):
            return _read_sorted(view.base, view.rows)  # already increasing (blocks of a stream): no reorder copy
        uniq, inverse = np.unique(view.rows, return_inverse=True)
        return _read_sorted(view.base, uniq)[inverse]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.read()
        return arr if dtype is None else arr.astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            return self.read(key[0])[(slice(None), *key[1:])]
        if isinstance(key, (int, np.integer)):
            return self.read(np.array([key]))[0]
        return self.read(key)

    def __repr__(self) -> str:
        where = "disk" if self.is_lazy else "memory"
        return f"RowView(shape={self.shape}, dtype={self.dtype}, {where})"


def _read_sorted(base: Any, rows: np.ndarray) -> np.ndarray:
    """Rows (unique, increasing) of an on-disk array: one slice when they are consecutive, one slice per run
    when they form a few long runs (the blocks of a streamed epoch; h5py's point selections are several
    times slower than slices), else one point selection."""
    if rows[0] < 0 or rows[-1] >= base.shape[0]:  # a slice past the end would silently read fewer rows
        raise IndexError(f"rows {int(rows[0])}..{int(rows[-1])} are out of range for {base.shape[0]} rows")
    if rows[-1] - rows[0] + 1 == len(rows):
        return np.asarray(base[int(rows[0]) : int(rows[-1]) + 1])
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    if len(breaks) + 1 <= len(rows) // 8:
        return np.concatenate([np.asarray(base[int(r[0]) : int(r[-1]) + 1]) for r in np.split(rows, breaks)])
    return np.asarray(base[rows])


def as_view(values: Any) -> RowView:
    """Wrap an array-like (numpy, h5py dataset, list or RowView) as a RowView."""
    if isinstance(values, RowView):
        return values
    if isinstance(values, np.ndarray) or hasattr(values, "id"):  # h5py.Dataset has .id
        return RowView(values)
    return RowView(np.asarray(values))


def materialise(values: Any) -> np.ndarray:
    """A numpy array from any array-like, reading views."""
    return values.read() if isinstance(values, RowView) else np.asarray(values)
