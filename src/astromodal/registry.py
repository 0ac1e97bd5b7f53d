"""One generic registry: a name -> entry table filled by a decorator.

Every pluggable concept (view kinds today; models, readers, sources, protocols, objectives later) is a
:class:`Registry`, so adding a thing is one decorated class::

    VIEWS = Registry("view kind")

    @VIEWS.register("cutout", description="an images block")
    class CutoutView(View): ...

    VIEWS.get("cutout")        # the class
    VIEWS.meta("cutout")       # {"description": "an images block"}
    VIEWS.names()              # sorted names

An unknown name is one line listing the registered ones (:class:`astromodal.errors.ConfigError`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from astromodal.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (``what`` names the kind in error messages, e.g. ``"view kind"``)."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator adding ``obj`` under ``name`` with free-form metadata; a name taken by another object
        is an error (re-registering the same object is allowed, e.g. on module reload)."""

        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.what} {name!r} is already registered")
            self._entries[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The entry ``name``; an unknown name is one line listing the known ones."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.what} {name!r}; registered: {', '.join(self.names())}") from None

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
