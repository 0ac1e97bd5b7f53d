"""``astromodal predict MODEL_DIR CATALOG --out PRED.parquet``: apply a trained model to a catalogue."""

from __future__ import annotations

from pathlib import Path

import typer

from astromodal.cli import app
from astromodal.cli.common import console, progress


def _scheduler_option(value: str | None) -> str | None:
    """A bad --scheduler is a usage error (exit 2), found before any work; Dask is not imported."""
    from astromodal.errors import ConfigError
    from astromodal.inference.dask_driver import check_scheduler

    try:
        return check_scheduler(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc).removeprefix(f"--scheduler {value!r}: ")) from None


def _device_option(value: str | None) -> str | None:
    """A malformed --device is a usage error (exit 2), found before any work; torch is not imported."""
    from astromodal.errors import ConfigError
    from astromodal.inference.catalogue import check_device

    try:
        return None if value is None else check_device(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc).removeprefix(f"--device {value!r}: ")) from None


@app.command("predict")
def predict_command(
    model_dir: Path = typer.Argument(..., help="A model folder written by `astromodal benchmark` with save_models: true "
                                               "(models/<cell>/), holding a single model or a fold ensemble."),
    catalog: Path = typer.Argument(..., help="The catalogue: an astromodal HDF5 file, or any file a reader knows "
                                             "(Gaia XP sampled CSV/ECSV/VOTable/Parquet, spectrum FITS folder, tables)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file: id, ra, dec (and l, b, parallax when present) "
                                                      "and the predictions. A one-head model: prob_<class> per class "
                                                      "and the predicted label (regression: <target>, and "
                                                      "<target>_sigma for a Gaussian head). Several heads (or "
                                                      "--layout heads): every head, a class head as <head> (the label) "
                                                      "and prob_<class>, a Gaussian head as <head> and <head>_err, a "
                                                      "point head as <head>; an ensemble adds <head>_sigma_net. An "
                                                      "existing file is replaced only with --overwrite, and only when "
                                                      "astromodal wrote it."),
    chunk_size: int = typer.Option(50_000, help="Objects per chunk (memory use grows with it, not with the catalogue: "
                                                "CSV, Parquet and FITS tables are read this many rows at a time, "
                                                "HDF5 lazily; each chunk is written as its own part)."),
    reader: str = typer.Option(None, help="Force a reader by name (see the readers list in the README); an unknown "
                                          "name is an error listing the known ones."),
    trust: bool = typer.Option(False, help="Allow loading scikit-learn models, which are pickles: only for model folders you made."),
    keep: list[str] = typer.Option(None, "--keep", help="Also copy this catalogue column or target to the output "
                                                        "(repeatable), e.g. --keep association_id, or a pattern such as "
                                                        "'psfMag_*' for every column it matches; a predicted target "
                                                        "itself is written as true_<name>. Each column keeps "
                                                        "its own type (64-bit ids, text). A kept column with the name of "
                                                        "an output column (--keep ra) is an error: see --rename."),
    id_column: str = typer.Option(None, "--id-column", help="The column holding object ids (written as int64 or text, "
                                                            "never floats). Default: the first of source_id, objid, "
                                                            "specobjid, obsid, id present (any case), else the "
                                                            "dataset's ids (row numbers for a table)."),
    ra_column: str = typer.Option(None, "--ra-column", help="Right ascension column in degrees (with --dec-column). "
                                                            "Default: the first pair found of ra/dec, ra_gaia/dec_gaia, "
                                                            "RA_ICRS/DE_ICRS, RAJ2000/DEJ2000, ... (any case); with no "
                                                            "positions at all the output has no ra/dec (a warning says so)."),
    dec_column: str = typer.Option(None, "--dec-column", help="Declination column in degrees (with --ra-column)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT when it is a file astromodal wrote (a file "
                                                              "astromodal did not write is never replaced)."),
    restart: bool = typer.Option(False, "--restart", help="Discard the finished chunks of an earlier run in OUT.parts/ "
                                                          "and start afresh (needed when the model, catalogue, chunk "
                                                          "size or options changed). Only the chunk files of "
                                                          "the run's plan are removed: any other file there is "
                                                          "refused, never deleted."),
    rename: list[str] = typer.Option(None, "--rename", help="Name an output column otherwise, OLD=NEW (repeatable), e.g. "
                                                            "--rename id=objid --rename class=spectral_class --rename "
                                                            "radius_sigma_net=sigma_net (MESCR's Table A2). OLD is one "
                                                            "of astromodal's own columns, else a --keep column; two "
                                                            "columns with one name are an error."),
    layout: str = typer.Option("auto", "--layout", help="auto: a one-head model writes its classic columns (prob_<class> "
                                                        "+ label, <target> + <target>_sigma), a model with several heads "
                                                        "every head; heads: every model the per-head way (<head>, "
                                                        "prob_<class>, <head>_err, <head>_sigma_net)."),
    recalibrate: bool = typer.Option(True, "--recalibrate/--no-recalibrate",
                                     help="A model trained with protocol.recalibrate carries a temperature (class "
                                          "probabilities) and a variance scale (Gaussian uncertainties) fitted on "
                                          "held-out training rows: applied by default (said on standard error and "
                                          "kept in the file's metadata); --no-recalibrate writes the raw model "
                                          "outputs. Labels and means are the same either way."),
    scheduler: str = typer.Option("sequential", "--scheduler", callback=_scheduler_option,
                                  help="sequential (default: one chunk after another, no Dask); threads, processes "
                                       "(Dask on this machine, --workers of them), local (a Dask distributed "
                                       "LocalCluster of --workers processes) or tcp://host:port (a running Dask "
                                       "scheduler whose workers see the same files). Each chunk is written as the "
                                       "same part whatever the scheduler, so any run resumes any other."),
    workers: int = typer.Option(None, "--workers", min=1, help="Threads / processes / LocalCluster workers for "
                                                                "--scheduler threads|processes|local (default: one "
                                                                "per core)."),
    out_format: str = typer.Option("file", "--out-format", help="file: one Parquet file at OUT; dataset: a folder "
                                                                "of Parquet files, one per chunk (part-NNNNN.parquet, "
                                                                "with _common_metadata); hats: a HATS catalogue "
                                                                "(LSDB: lsdb.read_hats(OUT), for cross-matching at "
                                                                "scale; needs sky positions)."),
    device: str = typer.Option(None, "--device", callback=_device_option,
                               help="Where a neural model runs: auto (the default: a CUDA or Apple MPS GPU when "
                                    "one exists, else the CPU), cpu, cuda, cuda:N or mps; every Dask worker uses "
                                    "the same. A device that is not there is one error line; a scikit-learn model "
                                    "runs on the CPU (any other device is refused)."),
    linear: list[str] = typer.Option(None, "--linear", help="HEAD=NAME (repeatable): a regression head in dex (a "
                                                            "log10 quantity) also written as NAME = 10**HEAD with "
                                                            "NAME_err = ln(10) NAME HEAD_err (first order) and, for an "
                                                            "ensemble, NAME_sigma_net; e.g. --linear log_radius=radius "
                                                            "for MESCR's radius in Rsun. Implies the per-head layout."),
) -> None:
    """Predict every head (class labels and probabilities, values with their uncertainty) for every object of
    CATALOG, in chunks with a progress bar.

    Finished chunks are kept beside OUT (OUT.parts/) until the end, with a fingerprint of the run (model,
    catalogue, chunk size, options, output columns): rerunning the same command after an interruption
    resumes where it stopped; a changed run is refused unless --restart is given.
    """
    from astromodal.inference.catalogue import parse_renames, predict_catalogue

    renames = parse_renames(rename)  # a malformed --rename is refused before any work
    linears = parse_renames(linear, "--linear", "log_radius=radius")
    with progress() as bar:
        path = predict_catalogue(model_dir, catalog, out, chunk_size=chunk_size, reader=reader, trust=trust, progress=bar,
                                 keep=tuple(keep or ()), id_column=id_column, ra_column=ra_column,
                                 dec_column=dec_column, overwrite=overwrite, restart=restart,
                                 rename=renames, layout=layout, recalibrate=recalibrate, linear=linears,
                                 scheduler=scheduler, workers=workers, out_format=out_format, device=device,
                                 log=lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True))
    import pyarrow.parquet as pq

    if out_format == "file":
        rows = pq.read_metadata(path).num_rows
    else:  # a folder: a dataset's parts, or a HATS catalogue's partitions (under dataset/Norder=*/)
        files = path.glob("part-*.parquet") if out_format == "dataset" else path.glob("dataset/Norder=*/**/*.parquet")
        rows = sum(pq.read_metadata(f).num_rows for f in files)
    typer.echo(f"predictions: {path}, {rows} rows")  # the result: standard output
