"""``astromodal quickstart``: the whole path on the built-in simulator, offline, in a few minutes.

Simulates a survey, builds a star/galaxy/QSO task from its LAMOST-like spectra (as 721-point
LineAstroSpectra vectors and as 28 x 28 AstroSpectra-MNIST images), trains three classical models and
one small CNN through the benchmark runner, and writes a report folder with the accuracy table,
confusion matrices, PCA/t-SNE maps, example spectra and image cutouts per class, and the command that
reproduces it. The same seed gives the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from astromodal.atomic import atomic_dir
from astromodal.cli import app
from astromodal.cli.common import out_console


def quickstart_config(n: int, seed: int, epochs: int) -> dict[str, Any]:
    """The quickstart experiment as a config mapping (the same shape as experiments/*.yaml)."""
    return {
        "name": "quickstart",
        "description": (
            f"Star / galaxy / QSO classification of {n} simulated LAMOST-like spectra (seed {seed}): "
            "classical models on the 721-point LineAstroSpectra vectors, a small CNN on the 28 x 28 images."
        ),
        "datasets": {
            "sim": {"source": "simulate", "target": "class",
                    "options": {"n": n, "seed": seed, "instruments": ["lamost"], "image_size": 32}},
        },
        "representations": {
            "Line": {"kind": "line", "spectra": "lamost"},
            "Image": {"kind": "image", "spectra": "lamost"},
        },
        "models": [
            {"name": "logistic_regression", "representations": ["Line"]},
            {"name": "random_forest", "representations": ["Line"]},
            {"name": "hist_gradient_boosting", "representations": ["Line"]},
            {"name": "simple_cnn1", "representations": ["Image"]},
        ],
        "protocol": {"kind": "holdout", "test_fraction": 0.2, "seeds": [seed]},
        "trainer": {"max_epochs": epochs, "batch_size": 64, "lr": 1e-3, "patience": 5, "optimizer": "adam",
                    "weight_decay": 0.0},
        "report": {"embeddings": ["pca", "tsne"], "roc_curves": False},
    }


def _examples_hook(report: Any, context: Any) -> None:
    """Add example spectra and image cutouts per class to the quickstart report (``context``: the report's
    :class:`~astromodal.evaluation.benchmark_report.ReportContext`)."""
    from astromodal.evaluation import plots

    ds = context.datasets.get("sim")
    if ds is None:
        return
    target = ds.target("class")
    labels = target.values.read()
    out = context.out
    fig_dir = out / "figures"
    spec = ds.spectra["lamost"]
    report.heading("What the data look like", 2)
    path = plots.plot_spectra_examples(spec.wavelength, spec.flux.read(), labels, list(target.class_names),
                                       fig_dir / "example_spectra.png", per_class=2)
    report.image(Path(path).relative_to(out), "Example simulated LAMOST-like spectra per class")
    if ds.images:
        name = next(iter(ds.images))
        im = ds.images[name]
        path = plots.plot_image_cutouts(im.pixels.read(), list(im.bands), labels, list(target.class_names),
                                        fig_dir / "example_cutouts.png", per_class=3)
        report.image(Path(path).relative_to(out), "Simulated gri cutouts per class (Lupton RGB)")


@app.command("quickstart")
def quickstart_command(
    out: Path = typer.Option(Path("astromodal-quickstart"), "--out", "-o",
                             help="Report folder to write: a new or empty folder, or one astromodal wrote (replaced "
                                  "only with --overwrite). A folder holding other files is never touched."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an --out folder that astromodal wrote (never a folder it did not "
                                        "write, '.', '~' or '/')."),
    n: int = typer.Option(2000, "--n", help="Number of simulated objects."),
    seed: int = typer.Option(0, help="Seed of the simulation, the split and every model: the same seed gives the same numbers."),
    epochs: int = typer.Option(15, help="Maximum training epochs of the CNN."),
    device: str = typer.Option("cpu", help="Device for the CNN: cpu, cuda, mps or auto."),
) -> None:
    """Simulate a survey, train classical models and a small CNN on star/galaxy/QSO spectra, and write a report."""
    from astromodal.atomic import check_output_dir
    from astromodal.errors import ConfigError
    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import parse_config

    if n < 100:
        raise ConfigError(f"--n must be at least 100 (got {n})")
    if epochs < 1:
        raise ConfigError(f"--epochs must be at least 1 (got {epochs})")
    check_output_dir(out, overwrite=overwrite, verb="quickstart")  # before any work
    cfg = parse_config(quickstart_config(n, seed, epochs), "quickstart")
    command = f"astromodal quickstart --out {out} --n {n} --seed {seed} --epochs {epochs} --device {device}"
    with atomic_dir(out, overwrite=overwrite, verb="quickstart") as tmp:
        # the temporary folder is this run's own (marked by atomic_dir): the runner may write into it
        runner = BenchmarkRunner(cfg, tmp, device=device, resume=False, command=command, overwrite=True)
        runner.report_hooks.append(_examples_hook)
        results = runner.run()
    table = {c["model"]: c["metrics"]["accuracy"] for c in results["cells"]}
    for model, acc in table.items():  # results: stdout
        out_console.print(f"  {model:<24s} accuracy {acc:.3f}", highlight=False)
    out_console.print(f"report: {out / 'report.md'} (and report.html)", highlight=False)
