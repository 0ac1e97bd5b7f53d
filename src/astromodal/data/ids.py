"""Object ids as exact integers: the one check every reader and ``predict`` use on numeric id columns.

A floating-point type holds every integer exactly only up to ``2**(mantissa bits + 1)``: 2**24 for
float32, 2**53 for float64 (2**11 for float16). Beyond that an id stored as a float may have lost its
last digits (a 19-digit Gaia ``source_id`` always has), so such a value is refused, never rounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from astromodal.errors import AstromodalError, BadValueError


def exact_integer_limit(dtype: Any) -> int:
    """The power of two below which the float type ``dtype`` holds every integer exactly."""
    return 2 ** (int(np.finfo(dtype).nmant) + 1)


def as_int_ids(values: Any, where: str, name: str = "id", error: type[AstromodalError] = BadValueError,
               hint: str = "") -> np.ndarray:
    """Numeric ids as int64 (unsigned ids beyond the int64 range stay uint64), never a rounded value.

    ``values``: integers, booleans or floats (a float id must be finite, whole and below
    :func:`exact_integer_limit` of its own float type). Anything else raises ``error``, one line naming
    ``where``, ``name`` (e.g. ``"id column 'objid'"``), the value and its row, then ``hint``.
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            return arr.astype(np.uint64)
        return arr.astype(np.int64)
    if arr.dtype.kind != "f":
        raise error(f"{where}: {name} is of type {arr.dtype}, not integers{hint}")
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(arr) & (arr == np.round(arr))
    if not whole.all():
        row = int(np.flatnonzero(~whole)[0])
        raise error(f"{where}: {name} holds the non-integer number {float(arr[row])!r} at row {row}, not an exact "
                    f"integer (an empty cell?): ids are kept as integers or text{hint}")
    limit = exact_integer_limit(arr.dtype)
    exact = np.abs(arr) < limit
    if not exact.all():
        row = int(np.flatnonzero(~exact)[0])
        bits = int(np.log2(limit))
        raise error(f"{where}: {name} holds {float(arr[row])!r} at row {row}, beyond 2**{bits}, where {arr.dtype.name} "
                    "no longer holds every integer, so it is not an exact integer (digits may be lost): store the "
                    f"ids as integers or text{hint}")
    return arr.astype(np.int64)
