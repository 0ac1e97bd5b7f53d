"""``astromodal build cube``: SDSS spectra (several epochs per object) + SDSS frames -> a HiSS-Cube ML cube.

    astromodal build cube --spectra ../shared/data/sdss-frame-5band --frames ../shared/data/sdss-frame-5band \\
        --out cube.h5

Spectra within ``--match-radius`` (3 arcsec) of each other are one object's epochs, rebinned with ``spectres``
onto 4,620 samples over 3839.7-8914.6 Angstrom and combined by inverse-variance weighting; each object gets
its 5-band 64-pixel cutouts with per-pixel errors from the frames' noise model, and zooms 1-3 by pairwise /
2x2 averaging with propagated errors. See :mod:`astromodal.data.cube` and
:mod:`astromodal.data.readers.hisscube` (the layout).
"""

from __future__ import annotations

from pathlib import Path

import typer

from astromodal.cli.build import build_app
from astromodal.cli.common import out_console, progress, stage_ticker


@build_app.command("cube")
def cube_command(
    spectra: list[str] = typer.Option(..., "--spectra", help="SDSS spectrum files spec-*.fits, or a folder (searched "
                                                             "recursively) / glob of them (files without a COADD "
                                                             "HDU are passed over); repeat for several."),
    frames: str = typer.Option(..., "--frames", help="Folder (searched recursively), glob or file of SDSS frames "
                                                     "frame-<band>-<run>-<camcol>-<field>.fits[.bz2], all 5 bands."),
    out: Path = typer.Option(..., "--out", "-o", help="Cube HDF5 file to write (atomically). An existing file is "
                                                      "replaced only if astromodal wrote it and --overwrite is given."),
    size: int = typer.Option(64, "--size", help="Zoom-0 cutout side in pixels (a multiple of 8; HiSS-Cube: 64)."),
    match_radius: float = typer.Option(3.0, "--match-radius", help="Spectra closer than this [arcsec] are epochs of "
                                                                   "one object."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an --out file that astromodal wrote."),
) -> None:
    """Build a HiSS-Cube ML cube (4 image resolutions x 4 spectral qualities, with errors) from SDSS files."""
    from astromodal.data.cube import build_cube

    with progress() as bar:
        tick = stage_ticker(bar)
        path, counts = build_cube(spectra, frames, out, size=size, match_radius=match_radius, overwrite=overwrite,
                                  progress=tick)
    out_console.print(f"{counts['spectra']} spectra ({counts['duplicates']} copies skipped) -> {counts['objects']} objects; kept {counts['kept']}, skipped "
                      f"near an edge {counts['skipped_edge']}, off every frame {counts['skipped_off']}, with NaN "
                      f"pixels {counts['skipped_nan']}; wrote {path}", highlight=False)
