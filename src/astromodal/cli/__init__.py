"""The ``astromodal`` command line: one verb per user task, each a thin layer over the library.

Each verb lives in its own module of this package and registers itself on :data:`app` with
``@app.command()``. Every :class:`~astromodal.errors.AstromodalError` is printed as one clear line
(``error: ...``) with exit status 1; other exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

from astromodal.errors import AstromodalError

app = typer.Typer(
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


# Modules that define verbs (each adds itself to ``app``). A new verb module is added here once.
_VERB_MODULES = (
    "astromodal.cli.simulate",
    "astromodal.cli.models",
    "astromodal.cli.quickstart",
    "astromodal.cli.build",
    "astromodal.cli.benchmark",
    "astromodal.cli.predict",
    "astromodal.cli.associations",
)

for _module in _VERB_MODULES:
    importlib.import_module(_module)


def main() -> None:
    """Console-script entry point."""
    try:
        app(standalone_mode=False)
    except AstromodalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
