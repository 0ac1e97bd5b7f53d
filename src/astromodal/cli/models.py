"""``astromodal models``: every registered model with its task and parameter count."""

from __future__ import annotations

import csv
import json
import sys

import typer

from astromodal.cli import app


def parameter_count(spec, input_length: int, image_size: int, channels: int, n_columns: int, n_classes: int,
                    mode: str) -> int | None:
    """Trainable parameters of a neural model for the given input shape (built on the meta device: no memory);
    None for classical models and for multimodal ones (their size depends on the inputs a config gives them),
    except a model giving its own ``example_shapes(image_size)`` (scnet, mmscnet: RGB inputs of that size)."""
    example = getattr(spec.factory, "example_shapes", None)
    if spec.family != "neural" or (spec.modality == "multimodal" and example is None):
        return None
    import torch

    from astromodal.models.registry import count_parameters

    shape = {"spectrum": (input_length,), "image": (channels, image_size, image_size), "columns": (n_columns,)}.get(
        spec.modality, (input_length,)
    )
    kwargs = {"input_shape": shape, "n_outputs": n_classes}
    if example is not None:
        kwargs.update(example(image_size))
    if spec.modality == "image" and "mode" in _init_params(spec.factory):
        kwargs["mode"] = mode
    with torch.device("meta"):
        model = spec.build(**kwargs)
    return count_parameters(model)


def _init_params(factory) -> tuple[str, ...]:
    import inspect

    try:
        return tuple(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return ()


FORMATS = ("table", "csv", "json")
_COLUMNS = ("name", "family", "input", "tasks", "study", "parameters")


@app.command("models")
def models_command(
    family: str = typer.Option(None, help="Only 'neural' or 'classical' models."),
    modality: str = typer.Option(None, help="Only models reading this input: spectrum, image, columns or multimodal."),
    study: str = typer.Option(None, help="Only the models of one study: A (AstroSpectra-MNIST), B (MESCR), C (Gaia XP), D (SFR)."),
    input_length: int = typer.Option(343, help="Spectrum length used to count parameters of 1D models."),
    image_size: int = typer.Option(28, help="Image side in pixels used to count parameters of 2D models."),
    bands: int = typer.Option(1, help="Image channels (bands) used to count parameters of 2D models."),
    n_columns: int = typer.Option(5, help="Number of catalogue columns used to count parameters of tabular models."),
    classes: int = typer.Option(1, help="Outputs (classes; 1 = a binary logit or one regression value)."),
    mode: str = typer.Option("native", help="Input mode of the classic CNNs: 'native' (small images) or 'paper' (upsampled to 224 x 224)."),
    fmt: str = typer.Option("table", "--format", help="Output format: table (aligned text; the description is "
                                                      "wrapped, or left out when the terminal is narrow), csv or "
                                                      "json (every field in full)."),
) -> None:
    """List every registered model with its family, input, tasks, study and parameter count for the given input shape.

    The list goes to stdout (``astromodal models | grep cnn``); names and counts are never cut.
    """
    from astromodal.errors import ConfigError
    from astromodal.models.registry import list_models

    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    for option, value in (("--input-length", input_length), ("--image-size", image_size), ("--bands", bands),
                          ("--n-columns", n_columns), ("--classes", classes)):
        if value < 1:
            raise ConfigError(f"{option} must be a positive number, got {value}")
    if mode not in ("native", "paper"):
        raise ConfigError(f"--mode must be 'native' or 'paper', not {mode!r}")
    rows = []
    for spec in list_models(family=family, modality=modality, study=study):
        n = parameter_count(spec, input_length, image_size, bands, n_columns, classes, mode)
        rows.append({"name": spec.name, "family": spec.family, "input": spec.modality, "tasks": list(spec.tasks),
                     "study": spec.study or "", "parameters": n, "description": " ".join(spec.description.split())})
    title = (f"astromodal models (spectrum {input_length}, image {bands}x{image_size}x{image_size}, "
             f"{classes} output(s), {mode} mode)")
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*_COLUMNS, "description"])
        for r in rows:
            writer.writerow([r["name"], r["family"], r["input"], ",".join(r["tasks"]), r["study"],
                             "" if r["parameters"] is None else r["parameters"], r["description"]])
    else:
        sys.stdout.write(text_table(rows, title, _width()))


def _width() -> int:
    """The width to fit: the terminal's when stdout is one, else $COLUMNS, else 80."""
    import os
    import shutil

    if sys.stdout.isatty():
        return shutil.get_terminal_size((80, 24)).columns
    try:
        return int(os.environ.get("COLUMNS", "80"))
    except ValueError:
        return 80


def text_table(rows: list[dict], title: str, width: int = 80) -> str:
    """Aligned plain-text columns; names and counts in full, the description wrapped into the space left
    (at least 24 characters) or left out when there is none."""
    import textwrap

    cells = [[r["name"], r["family"], r["input"], ",".join(r["tasks"]), r["study"],
              "-" if r["parameters"] is None else f"{r['parameters']:,}"] for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(_COLUMNS)]
    fixed = sum(widths) + 2 * len(widths)
    room = width - fixed
    with_description = room >= 24

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if i == 5 else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "  ".join(parts)

    out = [title, line(list(_COLUMNS)) + ("  description" if with_description else "")]
    for r, c in zip(rows, cells, strict=True):
        if not with_description:
            out.append(line(c).rstrip())
            continue
        wrapped = textwrap.wrap(r["description"], room) or [""]
        out.append(line(c) + "  " + wrapped[0])
        out.extend(" " * fixed + w for w in wrapped[1:])
    return "\n".join(out) + "\n"
