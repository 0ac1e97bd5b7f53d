"""``astromodal models``: every registered model with its task and parameter count."""

from __future__ import annotations

import typer
from rich.table import Table

from astromodal.cli import app
from astromodal.cli.common import console


def parameter_count(spec, input_length: int, image_size: int, channels: int, n_columns: int, n_classes: int,
                    mode: str) -> int | None:
    """Trainable parameters of a neural model for the given input shape (built on the meta device: no memory)."""
    if spec.family != "neural":
        return None
    import torch

    from astromodal.models.registry import count_parameters

    shape = {"spectrum": (input_length,), "image": (channels, image_size, image_size), "columns": (n_columns,)}.get(
        spec.modality, (input_length,)
    )
    kwargs = {"input_shape": shape, "n_outputs": n_classes}
    if spec.modality == "image" and "mode" in _init_params(spec.factory):
        kwargs["mode"] = mode
    with torch.device("meta"):
        model = spec.build(**kwargs)
    return count_parameters(model)


def _short(text: str, limit: int = 70) -> str:
    """The description, cut at a word boundary."""
    first = " ".join(text.split())
    return first if len(first) <= limit else first[: limit].rsplit(" ", 1)[0] + " ..."


def _init_params(factory) -> tuple[str, ...]:
    import inspect

    try:
        return tuple(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return ()


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
) -> None:
    """List every registered model with its family, input, tasks, study and parameter count for the given input shape."""
    from astromodal.models.registry import list_models

    table = Table(title=f"astromodal models (spectrum {input_length}, image {bands}x{image_size}x{image_size}, "
                        f"{classes} output(s), {mode} mode)")
    for col in ("name", "family", "input", "tasks", "study", "parameters", "description"):
        table.add_column(col, justify="right" if col == "parameters" else "left")
    for spec in list_models(family=family, modality=modality, study=study):
        n = parameter_count(spec, input_length, image_size, bands, n_columns, classes, mode)
        table.add_row(spec.name, spec.family, spec.modality, ",".join(spec.tasks), spec.study or "",
                      "-" if n is None else f"{n:,}", _short(spec.description))
    console.print(table)
