"""``astromodal build cutouts``: SDSS frames (+ a catalogue) -> an astromodal Dataset HDF5 of ugriz cutouts.

    astromodal build cutouts --frames ../shared/data/sdss-frame-5band --size 64 --out cutouts.h5
    astromodal build cutouts --frames FRAMES/ --catalogue stars.csv --ra-column RA_ICRS --dec-column DE_ICRS \\
        --size 64 --out stars.h5

Each object's (5, S, S) cutout is cut with astropy ``Cutout2D`` through each band's own WCS (the bands of a
field are not pixel-aligned); without ``--catalogue`` the positions are the sources photutils detects on the
r frame. See :func:`astromodal.data.readers.sdss_frames.build_cutouts`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from astromodal.cli.build import build_app
from astromodal.cli.common import out_console, progress, stage_ticker


@build_app.command("cutouts")
def cutouts_command(
    frames: str = typer.Option(..., "--frames", help="Folder (searched recursively), glob or file of SDSS frames "
                                                     "frame-<band>-<run>-<camcol>-<field>.fits[.bz2]."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset HDF5 file to write (atomically). An existing file is "
                                                      "replaced only if astromodal wrote it and --overwrite is given."),
    catalogue: Path = typer.Option(None, "--catalogue", help="CSV / Parquet / FITS / ECSV table with ra, dec columns "
                                                             "(its numeric columns are carried through). Default: "
                                                             "the sources detected on the r frames (photutils)."),
    size: int = typer.Option(64, "--size", help="Cutout side in pixels (0.396\"/px)."),
    bands: str = typer.Option("ugriz", "--bands", help="Bands of the cutouts, in this order."),
    ra_column: str = typer.Option(None, "--ra-column", help="Right ascension column [deg] (with --dec-column); "
                                                            "default ra, RA_ICRS, RAJ2000, ... (any case)."),
    dec_column: str = typer.Option(None, "--dec-column", help="Declination column [deg] (with --ra-column)."),
    id_column: str = typer.Option(None, "--id-column", help="Object id column; default source_id, objid, specobjid, "
                                                            "obsid or id (any case), else the row number."),
    images_name: str = typer.Option("sdss", "--images-name", help="Name of the images block in the dataset."),
    on_nan: str = typer.Option("skip", "--on-nan", help="A cutout with NaN pixels: skip (and count it) or error."),
    align: str = typer.Option("pixel", "--align", help="pixel: whole-pixel cutouts (the survey's values; each band's "
                                                       "source within half a pixel of the centre, so bands can be a "
                                                       "pixel apart); subpixel: each band shifted by the source's "
                                                       "fractional offset (cubic spline) so all bands are centred "
                                                       "to a few hundredths of a pixel (no colour fringes)."),
    nsigma: float = typer.Option(3.0, "--nsigma", help="Detection: threshold in background RMS (no --catalogue)."),
    npixels: int = typer.Option(10, "--npixels", help="Detection: least connected pixels of a source."),
    fwhm: float = typer.Option(3.0, "--fwhm", help="Detection: FWHM [pixels] of the smoothing Gaussian."),
    no_deblend: bool = typer.Option(False, "--no-deblend", help="Detection: do not deblend touching sources."),
    max_sources: int = typer.Option(None, "--max-sources", help="Detection: keep the brightest N per field."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an --out file that astromodal wrote."),
    restart: bool = typer.Option(False, "--restart", help="Discard the finished fields of an earlier, different run "
                                                          "kept in OUT.parts/ and start afresh."),
) -> None:
    """Cut aligned ugriz cutouts from SDSS frames into a Dataset file (resumable, one field at a time)."""
    from astromodal.data.readers.sdss_frames import build_cutouts

    detection = {"nsigma": nsigma, "npixels": npixels, "fwhm": fwhm, "deblend": not no_deblend,
                 "max_sources": max_sources}
    with progress() as bar:
        tick = stage_ticker(bar)
        path, counts = build_cutouts(frames, out, catalogue=catalogue, size=size, bands=bands, ra_column=ra_column,
                                     dec_column=dec_column, id_column=id_column, images_name=images_name,
                                     nan=on_nan, detection=detection, overwrite=overwrite, restart=restart,
                                     progress=tick, align=align)
    if counts.get("up_to_date"):
        out_console.print(f"{path} is up to date (same frames, catalogue and settings): nothing to do; "
                          f"kept {counts.get('kept', '?')}", highlight=False)
        return
    out_console.print(f"kept {counts['kept']}, skipped near an edge {counts['skipped_edge']}, off every frame "
                      f"{counts['skipped_off']}, with NaN pixels {counts['skipped_nan']}; wrote {path}", highlight=False)
