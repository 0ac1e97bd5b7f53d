"""The ``astromodal`` command line: one verb per user task, each a thin layer over the library.

Each verb lives in its own module of this package (listed once in ``_VERB_MODULES``) and registers itself
on :data:`app` with ``@app.command("name")`` (or ``app.add_typer(group, name=...)``); the verbs are also
the entries of the registry :data:`VERBS`, so a verb name used twice is an error. Every :class:`~astromodal.errors.AstromodalError` is printed as one clear line
(``error: ...``) with exit status 1; usage errors print typer's usage message with status 2; other
exceptions are bugs and keep their traceback. Results go to stdout, progress and logs to stderr.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from astromodal.errors import AstromodalError
from astromodal.registry import Registry

# Modules that define verbs (each adds itself to ``app``). A new verb module is added here once.
_VERB_MODULES = (
    "astromodal.cli.simulate",
    "astromodal.cli.models",
    "astromodal.cli.quickstart",
    "astromodal.cli.build",
    "astromodal.cli.benchmark",
    "astromodal.cli.predict",
    "astromodal.cli.associations",
    "astromodal.cli.realism",
    "astromodal.cli.cutouts",
    "astromodal.cli.cube",
    "astromodal.cli.crossmatch",
)

#: verb name -> its function (a command) or its typer app (a group of sub-verbs)
VERBS: Registry[Any] = Registry("verb", modules=_VERB_MODULES)


class _App(typer.Typer):
    """typer's app whose commands and command groups are also entries of :data:`VERBS`."""

    def command(self, name: str | None = None, **kwargs: Any) -> Any:
        register = super().command(name, **kwargs)

        def decorator(fn: Any) -> Any:
            VERBS.add(name or fn.__name__.lower().replace("_", "-"), fn)  # typer's default name
            return register(fn)

        return decorator

    def add_typer(self, typer_instance: typer.Typer, *, name: str | None = None, **kwargs: Any) -> None:
        if name is not None:
            VERBS.add(name, typer_instance)
        super().add_typer(typer_instance, name=name, **kwargs)


app = _App(
    name="astromodal",
    help="Machine learning on multimodal astronomical survey data: simulate or read surveys, "
    "build datasets, train and benchmark models, predict on catalogues.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from astromodal import __version__

        print(f"astromodal {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """astromodal: machine learning on multimodal astronomical survey data."""


VERBS.load()


def _usage_classes() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(ClickException, Exit, Abort) classes of every click the installed typer may raise: the standalone
    ``click`` and the copy bundled in newer typer releases (``typer._click``), when importable."""
    clicks: list[type] = []
    exits: list[type] = []
    aborts: list[type] = []
    for name in ("click", "typer._click", "typer._click.exceptions", "typer.exceptions"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        exc_mod = getattr(mod, "exceptions", mod)
        for holder in (mod, exc_mod):
            for attr, bucket in (("ClickException", clicks), ("Exit", exits), ("Abort", aborts)):
                cls = getattr(holder, attr, None)
                if isinstance(cls, type) and cls not in bucket:
                    bucket.append(cls)
    return tuple(clicks), tuple(exits), tuple(aborts)


def _kind(exc: BaseException) -> str:
    """'usage' (a click/typer ClickException), 'exit', 'abort' or '' for anything else.

    Matched by class (both clicks) and, should a future typer bundle yet another copy, by the class
    names of the exception's bases.
    """
    clicks, exits, aborts = _usage_classes()
    names = {c.__name__ for c in type(exc).__mro__}
    if isinstance(exc, exits) or ("Exit" in names and hasattr(exc, "exit_code") and not hasattr(exc, "show")):
        return "exit"
    if isinstance(exc, clicks) or ("ClickException" in names and hasattr(exc, "show")):
        return "usage"
    if isinstance(exc, aborts) or "Abort" in names:
        return "abort"
    return ""


def one_line(message: str, limit: int = 600) -> str:
    """A message as one line: its lines joined with '; ' (only the first line when that is too long, for
    example when a library appends a long listing)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else message
    joined = "; ".join(lines)
    return joined if len(joined) <= limit else lines[0] + " ..."


def main() -> None:
    """Console-script entry point.

    Exit status: 0 success; 1 an :class:`~astromodal.errors.AstromodalError` or a file-system error,
    printed as one ``error: ...`` line; 2 a usage error (unknown verb or option, missing or malformed
    argument), printed with typer's usage message; 130 interrupted. Never a traceback for these.
    """
    import os

    try:
        rv = app(standalone_mode=False)
    except AstromodalError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # e.g. `astromodal models | head -1`: the reader left; say nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:
        kind = _kind(exc)
        if kind == "exit":
            sys.exit(getattr(exc, "exit_code", 0))
        if kind == "usage":
            exc.show()  # type: ignore[attr-defined]
            sys.exit(getattr(exc, "exit_code", 2))
        if kind == "abort":
            print("aborted", file=sys.stderr)
            sys.exit(1)
        if isinstance(exc, OSError) and os.environ.get("ASTROMODAL_DEBUG") != "1":
            # the file system refused (permissions, a folder where a file is expected, disk full, ...)
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
            sys.exit(1)
        raise
    if isinstance(rv, int) and not isinstance(rv, bool) and rv != 0:  # typer returns Exit's code
        if rv == 130:
            print("interrupted", file=sys.stderr)
        sys.exit(rv)
