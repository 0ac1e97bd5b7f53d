"""``astromodal realism --out DIR``: measure how far the simulator is from the real surveys."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from astromodal.cli import app
from astromodal.cli.common import console, out_console


@app.command("realism")
def realism_command(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for report.md/.html, realism.csv/.json and "
                                                      "figures/ (written atomically; a folder astromodal did not "
                                                      "write is always refused)."),
    n: int = typer.Option(5000, "--n", help="Simulated objects per real set (>= 50)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the simulation, the subsamples and the models."),
    sets: str = typer.Option("lamost,sdss,gaia_xp", "--sets",
                             help="Real sets to compare with, comma-separated: lamost, sdss, gaia_xp (a set whose "
                                  "files are missing from the real-data folder is skipped with a note)."),
    sdss_rows: int = typer.Option(20000, "--sdss-rows",
                                  help="Real SDSS rows used (a fixed-seed random subsample of the table, for speed)."),
    repeats: int = typer.Option(3, "--repeats", help="Independent simulations (seeds S, S+1, ...) the sim -> real "
                                                     "transfer is averaged over (its spread is reported)."),
    jobs: int = typer.Option(1, "--jobs", help="CPU cores for the random forests."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an --out folder an earlier astromodal run wrote (never another folder)."),
) -> None:
    """Compare simulated data with every real set in $ASTROMODAL_DATA (default ../shared/data).

    Per set: distributions side by side (histograms per class, median spectra with 16-84 % bands),
    per-feature KS statistics, a classifier two-sample test (ROC AUC, 0.5 = indistinguishable) and
    sim -> real transfer of the study's random forest beside its within-real 5-fold figure. The real
    files are only measured, never used to set the simulator.
    """
    from astromodal.atomic import atomic_dir
    from astromodal.data.sources import data_dir
    from astromodal.evaluation.realism import REAL_FILES, check_options, headline, run_realism, write_realism

    chosen = check_options(n, seed, sets, sdss_rows, repeats, jobs)  # before any work
    root = data_dir()
    inputs = [root / REAL_FILES[name] for name in chosen]
    command = "astromodal " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    with atomic_dir(out, overwrite=overwrite, inputs=inputs, verb="realism") as tmp:
        results = run_realism(tmp / "figures", n=n, seed=seed, sets=chosen, data=root,
                              log=lambda msg: console.print(msg, highlight=False, soft_wrap=True), n_jobs=jobs, sdss_rows=sdss_rows,
                              repeats=repeats)
        write_realism(tmp, results, command)
    for name, reason in results["skipped"].items():
        out_console.print(f"{name}: skipped ({reason})", highlight=False)
    for row in headline(results):
        value = row["value"]
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        out_console.print(f"  {row['set']:8s} {row['measure']:56s} {text:>6s} {row['spread']:>7s}  "
                          f"target {row['target']:<28s} met: {row['met']}".rstrip(), highlight=False)
    out_console.print(f"report: {out / 'report.md'}  (and report.html, realism.csv, realism.json)", highlight=False)
