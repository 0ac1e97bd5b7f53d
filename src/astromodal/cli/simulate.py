"""``astromodal simulate``: write a simulated multimodal survey to one HDF5 dataset file."""

from __future__ import annotations

from pathlib import Path

import typer

from astromodal.cli import app
from astromodal.cli.common import console, out_console, progress
from astromodal.errors import ConfigError


def _parse_mix(text: str) -> tuple[float, float, float]:
    """'0.6,0.25,0.15' -> (0.6, 0.25, 0.15); anything else is a ConfigError naming --class-mix."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--class-mix must be three comma-separated numbers (star,galaxy,qso), got {text!r}") from None
    if len(values) != 3 or any(v < 0 for v in values) or sum(values) <= 0:
        raise ConfigError(f"--class-mix must be three non-negative numbers (star,galaxy,qso) with a positive sum, "
                          f"got {text!r}")
    return values  # type: ignore[return-value]


def _check_memory(n: int, image_size: int) -> None:
    """The cutouts alone (n x 5 bands x size^2 float32) must fit in this machine's memory: checked before
    any work, so a typo in --n or --image-size is one line, not a crash after minutes."""
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        return
    need = 4 * 5 * n * image_size**2
    if need > total:
        raise ConfigError(f"--n {n} with --image-size {image_size} needs {need / 2**30:.0f} GiB for the cutouts "
                          f"alone, more than this machine's {total / 2**30:.0f} GiB; use a smaller --n or "
                          "--image-size, or --no-images")


@app.command("simulate")
def simulate_command(
    out: Path = typer.Option(..., "--out", "-o", help="HDF5 file to write (written atomically). An existing file "
                                                      "is replaced only if astromodal wrote it and --overwrite is "
                                                      "given; never a file it did not write or a folder."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an --out dataset file that astromodal wrote (never another file)."),
    n: int = typer.Option(1000, "--n", help="Number of objects to simulate (a positive integer)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives identical arrays."),
    class_mix: str = typer.Option("0.6,0.25,0.15", "--class-mix",
                                  help="Fractions of stars, galaxies and quasars, e.g. 0.6,0.25,0.15 (normalised)."),
    snr: float = typer.Option(30.0, "--snr", help="Median signal-to-noise ratio per spectral pixel."),
    instruments: str = typer.Option("lamost,sdss,gaia_xp", "--instruments",
                                    help="Spectrographs, comma-separated: lamost, sdss, gaia_xp."),
    image_size: int = typer.Option(64, "--image-size", help="Side of the u g r i z cutouts in pixels (0.396\"/px)."),
    no_images: bool = typer.Option(False, "--no-images", help="Skip the image cutouts (much smaller files)."),
    neighbour_fraction: float = typer.Option(0.1, "--neighbour-fraction",
                                             help="Fraction of cutouts with neighbouring objects off-centre."),
    no_associations: bool = typer.Option(False, "--no-associations",
                                         help="Do not place O/B stars in OB associations."),
    stellar_selection: str = typer.Option("auto", "--stellar-selection",
                                          help="Magnitude limits and footprint of the stars: sdss (SEGUE 14 < g < "
                                               "20.3, |b| > 20 deg), lamost (9 < r < 17.8, |b| > 10 deg), gaia (G < "
                                               "17.65, all sky), volume (no magnitude limit, a disc around the Sun); "
                                               "auto: that of the first instrument (sdss for images alone)."),
) -> None:
    """Simulate a survey of stars, galaxies and quasars (spectra, images, photometry, astrometry, truth)."""
    from astromodal.atomic import check_output_file
    from astromodal.data.simulate import simulate_survey

    check_output_file(out, overwrite=overwrite)  # before any work
    if n <= 0:
        raise ConfigError(f"--n must be a positive number of objects, got {n}")
    if snr <= 0:
        raise ConfigError(f"--snr must be positive, got {snr}")
    if not no_images and (image_size < 8 or image_size % 2):
        raise ConfigError(f"--image-size must be an even number of pixels >= 8, got {image_size}")
    if not 0.0 <= neighbour_fraction <= 1.0:
        raise ConfigError(f"--neighbour-fraction must be in [0, 1], got {neighbour_fraction}")
    if seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    mix = _parse_mix(class_mix)
    _check_memory(n, 0 if no_images else image_size)
    with progress() as bar:
        tasks: dict[str, int] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"simulate: {stage}", total=total)
            bar.update(tasks[stage], completed=done)

        try:
            ds = simulate_survey(n=n, seed=seed, class_mix=mix, snr=snr, instruments=instruments,
                                 image_size=image_size, with_images=not no_images,
                                 neighbour_fraction=neighbour_fraction, associations=not no_associations,
                                 stellar_selection=stellar_selection, progress=tick)
        except MemoryError:
            extra = "" if no_images else f" with {image_size}x{image_size} cutouts"
            hint = "" if no_images else ", --image-size or --no-images"
            raise ConfigError(f"not enough memory to simulate --n {n} objects{extra}; use a smaller --n{hint}") from None
    with console.status(f"writing {out}"):
        check_output_file(out, overwrite=overwrite)  # again: the path may have changed meanwhile
        path = ds.save(out)
    out_console.print(f"wrote {ds!r} to {path}", highlight=False)
