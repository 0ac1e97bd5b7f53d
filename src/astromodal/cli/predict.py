"""``astromodal predict MODEL_DIR CATALOG --out PRED.parquet``: apply a trained model to a catalogue."""

from __future__ import annotations

from pathlib import Path

import typer

from astromodal.cli import app
from astromodal.cli.common import console, progress


@app.command("predict")
def predict_command(
    model_dir: Path = typer.Argument(..., help="A model folder written by `astromodal benchmark` with save_models: true "
                                               "(models/<cell>/), holding a single model or a fold ensemble."),
    catalog: Path = typer.Argument(..., help="The catalogue: an astromodal HDF5 file, or any file a reader knows "
                                             "(Gaia XP sampled CSV/ECSV/VOTable/Parquet, spectrum FITS folder, tables)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file: id, ra, dec (and l, b, parallax when present), "
                                                      "prob_<class> per class and the predicted label."),
    chunk_size: int = typer.Option(50_000, help="Objects per chunk (memory use grows with it)."),
    reader: str = typer.Option(None, help="Force a reader by name (see the readers list in the README)."),
    trust: bool = typer.Option(False, help="Allow loading scikit-learn models, which are pickles: only for model folders you made."),
    keep: list[str] = typer.Option(None, "--keep", help="Also copy this catalogue column or target to the output "
                                                        "(repeatable), e.g. --keep association_id; the predicted target "
                                                        "itself is written as true_<name>."),
) -> None:
    """Predict class probabilities and labels for every object of CATALOG, in chunks with a progress bar.

    Finished chunks are kept beside OUT (OUT.parts/) until the end, so an interrupted run resumes where it stopped.
    """
    from astromodal.inference.catalogue import predict_catalogue

    with progress() as bar:
        path = predict_catalogue(model_dir, catalog, out, chunk_size=chunk_size, reader=reader, trust=trust, progress=bar,
                                 keep=tuple(keep or ()))
    console.print(f"[green]predictions:[/green] {path}")
