"""One exception type for every user-facing failure.

Every error a user can cause (a corrupt file, a NaN flux, an unknown band or class, a bad config key)
is raised as :class:`AstromodalError` (or a subclass) with a message that names the file, row, option
or key at fault. The CLI prints the message as one line and exits with status 1; Python users can catch
it. Internal bugs stay ordinary exceptions so that they show a traceback.
"""

from __future__ import annotations

import typing
from typing import Any


class AstromodalError(Exception):
    """A problem with the user's input, named precisely (file, row, option or key)."""


class DataFormatError(AstromodalError):
    """A file is not of the expected format, is truncated, or has an incompatible schema."""


class BadValueError(AstromodalError):
    """Values that cannot be used: NaN/inf fluxes, unknown labels or band names, wrong shapes."""


class ConfigError(AstromodalError):
    """An experiment config or command-line option is invalid."""


def format_validation_error(exc: Any, model_cls: Any = None, where: str = "") -> str:
    """A pydantic ``ValidationError`` as ONE line, ``"WHERE: PART; PART"``: each bad key with its message
    (``'lr': Input should be greater than 0``), each unknown key as ``unknown key 'a.b'`` followed once per
    section by ``allowed keys here: ...`` (the fields of the section of ``model_cls`` holding it, found
    through nested models, lists, dicts, optionals and unions). Raise it as a :class:`ConfigError`::

        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, TrainerConfig, "trainer settings")) from None
    """
    errors = exc.errors()
    last_unknown = {tuple(e["loc"][:-1]): i for i, e in enumerate(errors) if e["type"] == "extra_forbidden"}
    parts = []
    for i, err in enumerate(errors):
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] != "extra_forbidden":
            parts.append(f"{key!r}: " + " ".join(str(err["msg"]).split()))
            continue
        parts.append(f"unknown key {key!r}")
        section = tuple(err["loc"][:-1])
        allowed = _allowed_keys(model_cls, section) if last_unknown[section] == i else []
        if allowed:
            parts.append("allowed keys here: " + ", ".join(allowed))
    body = "; ".join(parts) or " ".join(str(exc).split())
    return f"{where}: {body}" if where else body


def _models_in(annotation: Any) -> list[type]:
    """The pydantic model classes inside a type annotation (``list[X]``, ``dict[str, X]``, ``X | None``...)."""
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return [annotation]
    found: list[type] = []
    for arg in typing.get_args(annotation):
        found += [m for m in _models_in(arg) if m not in found]
    return found


def _allowed_keys(model_cls: Any, loc: tuple[Any, ...]) -> list[str]:
    """The field names of the section at ``loc`` below ``model_cls`` ([] when it is not a model)."""
    candidates = _models_in(model_cls)
    for part in loc:
        if isinstance(part, int) or not candidates:
            continue  # a list index
        holder = next((m for m in candidates if part in m.model_fields), None)
        if holder is not None:
            candidates = _models_in(holder.model_fields[part].annotation)
            continue
        # a union member named by its tag or class name, else a dict key (a dataset or input name)
        tagged = [m for m in candidates if m.__name__ == part
                  or any(f.default == part for f in m.model_fields.values() if isinstance(f.default, str))]
        candidates = tagged or candidates
    return sorted(candidates[0].model_fields) if candidates else []
