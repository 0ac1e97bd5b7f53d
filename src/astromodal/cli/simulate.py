"""``astromodal simulate``: write a simulated multimodal survey to one HDF5 dataset file (or, catalogue only, a
Parquet file), block by block in flat memory (:mod:`astromodal.data.simulate.stream`)."""

from __future__ import annotations

from pathlib import Path

import typer

from astromodal.cli import app
from astromodal.cli.common import out_console, progress
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
    """The cutouts of one chunk (n x 5 bands x size^2 float32) must fit in this machine's memory: checked
    before any work, so a typo in --chunk-size or --image-size is one line, not a crash after minutes."""
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        return
    need = 4 * 5 * n * image_size**2
    if need > total:
        raise ConfigError(f"{n} objects with --image-size {image_size} need {need / 2**30:.0f} GiB for the "
                          f"cutouts alone, more than this machine's {total / 2**30:.0f} GiB; use a smaller "
                          "--chunk-size or --image-size, or --no-images")


def _chunk_size(value: int) -> int:
    """--chunk-size: a positive multiple of the block size (a usage error, exit 2, otherwise)."""
    from astromodal.data.simulate.stream import BLOCK_SIZE

    if value < BLOCK_SIZE or value % BLOCK_SIZE:
        raise typer.BadParameter(f"must be a positive multiple of the block size {BLOCK_SIZE} (objects), "
                                 f"got {value}")
    return value


@app.command("simulate")
def simulate_command(
    out: Path = typer.Option(..., "--out", "-o", help="HDF5 file to write (or a .parquet catalogue with "
                                                      "--columns-only), written atomically. An existing file "
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
    chunk_size: int = typer.Option(2000, "--chunk-size", callback=_chunk_size,
                                   help="Most objects in memory at once, a multiple of the block size 1000 "
                                        "(a block is about 140-175 MB with every modality, 0.3 MB catalogue only): "
                                        "with --workers N, up to chunk/1000 blocks are simulated in parallel; in "
                                        "one process the blocks run one after another. The survey is simulated "
                                        "in blocks of 1000 objects, each seeded from (--seed, block), so the "
                                        "values written do not depend on it."),
    columns_only: bool = typer.Option(False, "--columns-only",
                                      help="Write the catalogue only (ids, ra, dec, photometry, astrometry, quality "
                                           "columns and every target; no spectra, no images): Parquet for a "
                                           ".parquet --out, HDF5 otherwise. Magnitudes are in each survey's "
                                           "system: ugriz SDSS (u 0.04 mag fainter, z 0.02 brighter than AB), "
                                           "phot_g_mean_mag Gaia G (Vega)."),
    workers: int = typer.Option(0, "--workers", min=0,
                                help="Processes simulating blocks in parallel (0: $ASTROMODAL_SIM_WORKERS if set, "
                                     "else min(2, cores) above 4 blocks and 1 = this process otherwise). The "
                                     "values written do not depend on it. Workers hand their blocks to the "
                                     "writer through files in a private folder under /dev/shm (else $TMPDIR), "
                                     "removed at the end; one left by a killed run is removed by the next."),
    codec: str = typer.Option("lzf", "--codec", help="HDF5 compression: lzf (fast, the default; image pixels, "
                                                     "sky noise it would shrink by only 6 %, stored uncompressed), gzip "
                                                     "(level 1, everything: smaller, about 2.3x slower) or none "
                                                     "(fastest, largest)."),
) -> None:
    """Simulate a survey of stars, galaxies and quasars (spectra, images, photometry, astrometry, truth).

    The survey is built in blocks of 1000 objects (seeded from --seed and the block index; OB associations are
    drawn within each block) and written chunk by chunk, so memory does not grow with --n.
    """
    from astromodal.atomic import check_output_file
    from astromodal.data.simulate.stream import CODECS, default_workers, output_format, write_survey

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
    if codec not in CODECS:
        raise ConfigError(f"--codec must be one of {', '.join(CODECS)}, got {codec!r}")
    fmt = output_format(out, columns_only)
    _check_memory(min(n, chunk_size), 0 if no_images or columns_only else image_size)
    workers = workers or default_workers(n)
    names = [] if columns_only else [v.strip() for v in instruments.split(",") if v.strip()]
    what = ", ".join((["spectra " + "/".join(names)] if names else []) + ([] if columns_only or no_images else
                                                                         ["images"]) + ["catalogue"])
    with progress() as bar:
        task = bar.add_task(f"simulate ({what})", total=n)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done)

        def recheck() -> None:  # again: the path may have changed meanwhile
            check_output_file(out, overwrite=overwrite)

        try:
            meta = write_survey(out, n, seed, mix, columns_only=columns_only, chunk_size=chunk_size, workers=workers,
                                codec=codec, progress=tick, before_publish=recheck, snr=snr,
                                instruments=instruments, image_size=image_size, with_images=not no_images,
                                neighbour_fraction=neighbour_fraction, associations=not no_associations,
                                stellar_selection=stellar_selection)
        except MemoryError:
            extra = "" if no_images or columns_only else f" with {image_size}x{image_size} cutouts"
            hint = "" if no_images or columns_only else ", --image-size or --no-images"
            raise ConfigError(f"not enough memory to simulate chunks of {chunk_size} objects{extra}; use a smaller "
                              f"--chunk-size{hint}") from None
    out_console.print(f"wrote {n} objects ({what}; {meta['n_blocks']} blocks of {meta['block_size']}, "
                      f"{len(meta['associations'])} OB associations) to {out} ({fmt})", highlight=False)
