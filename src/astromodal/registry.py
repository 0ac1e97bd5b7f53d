"""One generic registry: a name -> entry table filled by a decorator.

Every pluggable concept (models, readers, dataset sources, view kinds, protocols, CLI verbs) is a
:class:`Registry`, so adding a thing is one decorated class or function::

    VIEWS = Registry("view kind")

    @VIEWS.register("cutout")
    class CutoutView(View): ...

    VIEWS.get("cutout")        # the class
    VIEWS.names()              # sorted names
    "cutout" in VIEWS          # True

``register(name, **meta)`` keeps free-form metadata beside an entry that is a plain function or class
(:meth:`Registry.meta`; the dataset sources record the options they accept there); registries whose
entries carry typed metadata store a spec object instead (``ModelSpec``, ``ReaderSpec``) with
:meth:`Registry.add`. ``modules`` names the modules whose import fills a registry: they are imported on
the first lookup, so a new module of models or readers is added to one list once.

An unknown name is one line listing the registered ones (:class:`astromodal.errors.ConfigError`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from astromodal.errors import ConfigError

T = TypeVar("T")


def _same(a: Any, b: Any) -> bool:
    try:
        return a is b or bool(a == b)
    except Exception:  # an entry whose == does not give a truth value
        return False


class Registry(Generic[T]):
    """Named entries of one kind (``what`` names the kind in error messages, e.g. ``"view kind"``); the
    ``modules`` are imported on the first lookup (their import registers the entries)."""

    def __init__(self, what: str, modules: tuple[str, ...] | list[str] = ()):
        self.what = what
        self.modules = tuple(modules)
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._loaded = not self.modules
        self._loading = False

    def add(self, name: str, obj: T, **meta: Any) -> T:
        """Add ``obj`` under ``name`` with free-form metadata and return it; a name taken by a different
        entry is an error (re-registering the same entry, or an equal spec, is allowed, e.g. on reload)."""
        if name in self._entries and not _same(self._entries[name], obj):
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._entries[name] = obj
        self._meta[name] = dict(meta)
        return obj

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@REG.register(name, **meta)`` above a class or function."""

        def decorator(obj: T) -> T:
            return self.add(name, obj, **meta)

        return decorator

    def unregister(self, name: str) -> None:
        """Remove ``name`` (nothing when absent), e.g. a test's toy entry."""
        self._entries.pop(name, None)
        self._meta.pop(name, None)

    def load(self) -> None:
        """Import :attr:`modules` (once); lookups call it."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for module in self.modules:
                importlib.import_module(module)
            self._loaded = True
        finally:
            self._loading = False

    def get(self, name: str) -> T:
        """The entry ``name``; an unknown name is one line listing the known ones."""
        self.load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.what} {name!r}; registered: {', '.join(self.names())}") from None

    def meta(self, name: str) -> dict[str, Any]:
        """The metadata given when ``name`` was registered (a copy)."""
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self.load()
        return sorted(self._entries)

    def values(self) -> list[T]:
        """The entries, sorted by name."""
        return [self._entries[n] for n in self.names()]

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        self.load()
        try:
            return name in self._entries
        except TypeError:  # an unhashable name is not registered
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
