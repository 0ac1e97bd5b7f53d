"""``astromodal build ...``: build published dataset layouts from spectra.

    astromodal build astrospectra-mnist --spectra ../shared/data/lamost-dr1-sample/SampleFits \\
        --out AstroSpectra-MNIST-v2 --version v2

``--spectra`` is a folder, a glob or a file of spectrum FITS (LAMOST or SDSS, read on the common grid),
or an astromodal HDF5 file (for example from ``astromodal simulate``). The output folder is written
atomically: on any error nothing is left behind.
"""

from __future__ import annotations

from pathlib import Path

import typer

from astromodal.cli import app
from astromodal.cli.common import console, out_console

VERB = "build astrospectra-mnist"

build_app = typer.Typer(
    help="Build dataset layouts (AstroSpectra-MNIST) from spectra.", no_args_is_help=True, add_completion=False
)
app.add_typer(build_app, name="build")


@build_app.command("astrospectra-mnist")
def astrospectra_mnist_command(
    spectra: str = typer.Option(..., "--spectra", help="Spectrum FITS folder, glob or file (LAMOST/SDSS), "
                                                       "or an astromodal HDF5 file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (e.g. AstroSpectra-MNIST-v1): a new or empty "
                                                      "folder, or one astromodal wrote (replaced only with "
                                                      "--overwrite). Never a folder holding the --spectra input."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an --out folder that astromodal wrote (never a folder it did not "
                                        "write, one holding the input, '.', '~' or '/')."),
    version: str = typer.Option("v1", "--version", help="v1: star/galaxy/QSO (labels 1/2/3); v2: F/G/K stars (1/2/3)."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", help="Fraction of objects in the test split."),
    seed: int = typer.Option(0, "--seed", help="Seed of the stratified train/test split."),
    grid_size: int = typer.Option(3601, "--grid-size", help="Samples of the common log-linear wavelength grid."),
    wave_min: float = typer.Option(3700.0, "--wave-min", help="First grid wavelength [Angstrom]."),
    wave_max: float = typer.Option(9100.0, "--wave-max", help="Last grid wavelength [Angstrom]."),
    resample: str = typer.Option("flux", "--resample", help="flux (flux-conserving) or linear interpolation."),
    bin_width: int = typer.Option(5, "--bin-width", help="Mean-filter window and stride [pixels] (3601 -> 721)."),
    reader: str = typer.Option(None, "--reader", help="Force a spectrum reader (lamost, sdss)."),
    spectra_name: str = typer.Option(None, "--spectra-name", help="Spectra block of an HDF5 input (e.g. lamost)."),
    target: str = typer.Option(None, "--target", help="Class target to label by (class, spectral_type, subclass); "
                                                      "default class for v1, subclass or spectral_type for v2."),
) -> None:
    """Write the AstroSpectra-MNIST layout (28x28 PNGs, label CSVs, 721-point line vectors, provenance)."""
    from astromodal.atomic import check_output_dir
    from astromodal.data.readers.astrospectra_mnist import _check_version, write_astrospectra_mnist
    from astromodal.errors import ConfigError
    from astromodal.transforms.spectra import make_settings

    _check_version(version)
    if resample not in ("flux", "linear"):
        raise ConfigError(f"--resample must be 'flux' or 'linear', not {resample!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
    if not 0 <= seed < 2**32:
        raise ConfigError(f"--seed must be an integer from 0 to {2**32 - 1}, got {seed}")
    if not spectra.strip():
        raise ConfigError("--spectra is empty: name a folder, glob or file of spectra, or an astromodal HDF5 file")
    if bin_width > grid_size // 2 and grid_size >= 2:
        raise ConfigError(f"--bin-width {bin_width} leaves fewer than 2 values of the {grid_size}-point grid; "
                          f"it must be at most {grid_size // 2}")
    settings = make_settings({"grid_size": grid_size, "wave_min": wave_min, "wave_max": wave_max,
                              "resample": resample, "bin_width": bin_width})
    inputs = [input_root(spectra)]
    check_output_dir(out, inputs=inputs, overwrite=overwrite, verb=VERB)  # before reading anything
    path = Path(spectra)
    if path.suffix.lower() in (".h5", ".hdf5") and path.is_file():
        from astromodal.data.dataset import Dataset

        ds = Dataset.load(path)
    else:
        from astromodal.data.readers import read

        with console.status(f"reading spectra from {spectra}"):
            ds = read(spectra, reader=reader, settings=settings)
    with console.status(f"writing {out}"):
        result = write_astrospectra_mnist(ds, out, version=version, test_fraction=test_fraction, seed=seed,
                                          settings=settings, spectra_name=spectra_name, target=target,
                                          overwrite=overwrite, inputs=inputs)
    import json

    prov = json.loads((result / "provenance.json").read_text())
    counts = ", ".join(f"{split} {sum(c.values())} ({c})" for split, c in prov["counts"].items())
    dropped = sum(prov["dropped_other_classes"].values())
    out_console.print(f"AstroSpectra-MNIST {version}: {result}  {counts}"
                      + (f"; {dropped} objects of other classes dropped" if dropped else ""), highlight=False)


def input_root(spectra: str) -> Path:
    """The path a --spectra argument reads: the folder above the first wildcard of a glob, else the path."""
    parts = Path(spectra).expanduser().parts
    for i, part in enumerate(parts):
        if any(ch in part for ch in "*?["):
            return Path(*parts[:i]) if i else Path(".")
    return Path(spectra).expanduser()
