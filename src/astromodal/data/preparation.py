"""The recorded preparation of a catalogue table, and its replay on another raw file.

:func:`~astromodal.data.readers.tables.read_table` records in ``Dataset.meta["preparation"]`` a *recipe*:
a JSON-able dict of everything it did to the raw file, and the derived-column steps
(:func:`~astromodal.data.readers.tables.add_colours`, ``add_absolute_magnitudes``) append themselves to
it. A model saved with its recipe can then read any raw catalogue the same way
(:func:`replay_preparation`): same renames, same columns in the same order, same derived columns, the
label (when the file has one) coded with the training classes.

Recipe keys (``kind: "table"``, ``version: 1``):

``source``         the file the recipe was made from (for information)
``rename``         ``{old: new}`` column renames applied first
``columns``        the columns read, by their short names, in order (``g`` for ``green_filter``)
``raw_columns``    ``{short name: column of the training file}`` (the aliases resolved)
``label``          ``None``, or ``{column, target, task, class_names (in code order), label_prefix}``
``id_column``      the id column of the training file (``None``: row numbers)
``ra`` / ``dec``   its position columns (``None``: no positions)
``dropna``         whether rows with NaN/inf features were dropped
``units``          units given for columns
``hdu``            the FITS HDU read
``missing_values`` feature values taken as "not measured" (NaN), or ``None``
``derived``        the derived-column steps in order, each ``{step: colours | absolute_magnitudes, ...arguments}``
``feature_columns`` every catalogue column of the prepared dataset, in order
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from astromodal.data.dataset import Dataset
from astromodal.errors import BadValueError

RECIPE_VERSION = 1

#: the keyword arguments :func:`replay_preparation` accepts
REPLAY_OVERRIDES = ("id_column", "ra", "dec", "rename", "label", "dropna", "hdu", "unseen")


def table_recipe(
    source: str,
    *,
    rename: Mapping[str, str] | None,
    columns: Sequence[str],
    raw_columns: Sequence[str],
    label: str | None,
    label_column: str | None,
    target: str | None,
    task: str,
    class_names: Sequence[str] | None,
    label_prefix: int | None,
    id_column: str | None,
    ra: str | None,
    dec: str | None,
    dropna: bool,
    units: Mapping[str, str] | None,
    hdu: int | str,
    missing_values: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The recipe of one :func:`~astromodal.data.readers.tables.read_table` call (see the module doc)."""
    return {
        "kind": "table",
        "version": RECIPE_VERSION,
        "source": str(source),
        "rename": {str(k): str(v) for k, v in (rename or {}).items()},
        "columns": list(columns),
        "raw_columns": dict(zip(columns, raw_columns, strict=True)),
        "label": None if label_column is None else {
            "column": label_column,
            "option": label,
            "target": target,
            "task": task,
            "class_names": None if class_names is None else [str(c) for c in class_names],
            "label_prefix": label_prefix,
        },
        "id_column": id_column,
        "ra": ra,
        "dec": dec,
        "dropna": bool(dropna),
        "units": {str(k): str(v) for k, v in (units or {}).items()},
        "hdu": hdu,
        "missing_values": None if not missing_values else [float(v) for v in missing_values],
        "derived": [],
        "feature_columns": list(columns),
    }


def record_step(ds: Dataset, step: dict[str, Any]) -> Dataset:
    """``ds`` with a derived-column ``step`` appended to its recipe (unchanged when it has none)."""
    recipe = ds.meta.get("preparation")
    if not isinstance(recipe, dict):
        return ds
    new = copy.deepcopy(recipe)
    new["derived"].append(step)
    new["feature_columns"] = list(ds.columns)
    ds.meta = {**ds.meta, "preparation": new}  # a new dict: the dataset it was derived from keeps its own
    return ds


def with_class_names(recipe: dict[str, Any] | None, class_names: Sequence[str]) -> dict[str, Any] | None:
    """A copy of ``recipe`` whose label is coded with ``class_names`` (e.g. after ``keep_classes``)."""
    if not isinstance(recipe, dict) or not recipe.get("label"):
        return recipe
    new = copy.deepcopy(recipe)
    new["label"]["class_names"] = [str(c) for c in class_names]
    return new


def replay_preparation(recipe: dict[str, Any], path: str | Path | Any, *, source_name: str | None = None,
                       **overrides: Any) -> Dataset:
    """Read a RAW table file (or a DataFrame) and prepare it exactly as ``recipe`` records.

    The result has exactly the recipe's ``feature_columns``, in order. The label is read when the file
    has the recorded label column: coded with the recorded class names (a class outside them is an error
    naming it and its count; ``unseen="append"`` keeps it as an extra class), else the dataset has no
    target. ``overrides`` for the new file: ``id_column``, ``ra``, ``dec`` (column names), ``rename``
    (``{old: new}``, replaces the recorded renames), ``label`` (a column name, or ``False`` to ignore
    the label), ``dropna``, ``hdu``, ``unseen`` (``error`` | ``append``). ``source_name``: how messages
    name a DataFrame given as ``path`` (default ``table``).
    """
    import pandas as pd

    from astromodal.data.readers.tables import (
        add_absolute_magnitudes,
        add_colours,
        load_frame,
        read_table,
        rename_columns,
        resolve_column,
    )

    if not isinstance(recipe, dict) or recipe.get("kind") != "table":
        raise BadValueError(f"not a table preparation recipe: {str(recipe)[:80]!r}")
    if int(recipe.get("version", 0)) > RECIPE_VERSION:
        raise BadValueError(f"table preparation recipe version {recipe.get('version')} is newer than this "
                            f"astromodal reads ({RECIPE_VERSION}); upgrade astromodal")
    unknown = sorted(set(overrides) - set(REPLAY_OVERRIDES))
    if unknown:
        raise BadValueError(f"replay_preparation: unknown option(s) {unknown}; allowed: {list(REPLAY_OVERRIDES)}")
    hdu = overrides.get("hdu", recipe.get("hdu", 1))
    if isinstance(path, pd.DataFrame):
        frame, where = path.reset_index(drop=True), source_name or "table"
    else:
        frame, where = load_frame(path, hdu=hdu), str(path)

    def has(frame: pd.DataFrame, name: str | None) -> bool:
        if name is None:
            return False
        try:
            resolve_column(frame, name)
        except BadValueError:
            return False
        return True

    if "rename" in overrides:  # given for this file: applied as given
        frame = rename_columns(frame, overrides["rename"], where)
    else:  # the training file's renames, where this file still has the old name (and not yet the new one)
        todo = {old: new for old, new in recipe.get("rename", {}).items() if has(frame, old) and not has(frame, new)}
        frame = rename_columns(frame, todo, where)
    id_column = overrides.get("id_column", recipe.get("id_column") if has(frame, recipe.get("id_column")) else None)
    ra = overrides.get("ra", recipe.get("ra") if has(frame, recipe.get("ra")) else "ra")
    dec = overrides.get("dec", recipe.get("dec") if has(frame, recipe.get("dec")) else "dec")
    lab = recipe.get("label") or {}
    label = overrides.get("label", lab.get("column") if has(frame, lab.get("column")) else None)
    if label is False or not lab:
        label = None
    task = lab.get("task", "class")
    ds = read_table(frame, features=list(recipe["columns"]), label=label, id_column=id_column, ra=ra, dec=dec,
                    task=task, target_name=lab.get("target"), dropna=overrides.get("dropna", recipe.get("dropna", False)),
                    units=recipe.get("units") or None, label_prefix=lab.get("label_prefix") if label else None,
                    source_name=where, missing_values=recipe.get("missing_values"))
    if label is not None and task == "class" and lab.get("class_names") is not None:
        tname = lab["target"]
        recoded = ds.targets[tname].recode(lab["class_names"], unseen=overrides.get("unseen", "error"),
                                           where=f"{where}: label column {label!r}")
        ds = ds.with_targets({tname: recoded})
    for step in recipe.get("derived", []):
        args = {k: v for k, v in step.items() if k != "step"}
        if step.get("step") == "colours":
            ds = add_colours(ds, **args)
        elif step.get("step") == "absolute_magnitudes":
            ds = add_absolute_magnitudes(ds, **args)
        else:
            raise BadValueError(f"table preparation recipe: unknown derived step {step.get('step')!r}")
    wanted = list(recipe["feature_columns"])
    missing = [c for c in wanted if c not in ds.columns]
    if missing:
        raise BadValueError(f"{where}: the preparation did not give the training column(s) {missing}; "
                            f"it gave {list(ds.columns)}")
    meta = {**ds.meta, "source": where, "preparation": copy.deepcopy(recipe)}
    return replace(ds, columns={c: ds.columns[c] for c in wanted}, meta=meta, validate=False)
