"""``astromodal crossmatch A B --radius 3arcsec --out OUT.parquet [--backend astropy|lsdb]``: pair two
catalogues by sky position (lsdb: HEALPix-partitioned, for catalogues larger than memory; imported only
when chosen)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from astromodal.cli import app
from astromodal.cli.common import console
from astromodal.errors import ConfigError

_OUT_SUFFIXES = (".parquet", ".pq")


class Backend(str, Enum):
    """``--backend``: astropy (in memory) or lsdb (HEALPix-partitioned Dask, catalogues larger than memory)."""

    astropy = "astropy"
    lsdb = "lsdb"


@app.command("crossmatch")
def crossmatch_command(
    a: Path = typer.Argument(..., help="Catalogue A (CSV, Parquet, FITS binary table, ECSV; with --backend lsdb "
                                       "also a HATS catalogue folder), e.g. SDSS stars."),
    b: Path = typer.Argument(..., help="Catalogue B (same formats), e.g. a Gaia DR3 extract; a HATS B needs a margin "
                                       "cache of at least the radius (a HATS collection), unless it has one "
                                       "partition."),
    radius: str = typer.Option("3arcsec", "--radius", help="Match radius, an angle with its unit: 3arcsec, "
                                                          "0.001deg, 500mas."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file: the columns of A, then those of B "
                                                      "(a name both have gets the suffixes), then "
                                                      "separation_arcsec; one row per matched pair, in the order "
                                                      "of A. Written atomically; an existing file is replaced "
                                                      "only with --overwrite, and only when astromodal wrote it."),
    ra_column_a: str = typer.Option(None, "--ra-column-a", help="Right ascension column of A in degrees. Default: "
                                                                "the first of ra, ra_gaia, RA_ICRS, RAJ2000, ... "
                                                                "(any case)."),
    dec_column_a: str = typer.Option(None, "--dec-column-a", help="Declination column of A in degrees (default "
                                                                  "as for --ra-column-a: dec, DE_ICRS, ...)."),
    ra_column_b: str = typer.Option(None, "--ra-column-b", help="Right ascension column of B in degrees."),
    dec_column_b: str = typer.Option(None, "--dec-column-b", help="Declination column of B in degrees."),
    suffixes: str = typer.Option("_a,_b", "--suffixes", help="Suffixes for a column name both tables have, "
                                                            "A's and B's, comma-separated."),
    hdu: int = typer.Option(1, "--hdu", help="FITS HDU holding the table (both inputs)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT when it is a file astromodal wrote (a "
                                                              "file astromodal did not write is never replaced)."),
    backend: Backend = typer.Option(Backend.astropy, "--backend", case_sensitive=False,
                                    help="astropy: both catalogues in memory (SkyCoord.match_to_catalog_sky). lsdb: "
                                         "LSDB's HEALPix-partitioned KD-tree cross-match over Dask, for catalogues "
                                         "that do not fit in memory (HATS folders are read lazily; CSV/Parquet are "
                                         "converted with lsdb.from_dataframe); the same pairs, separations and "
                                         "counts. Rows in the order of A (a HATS A: its HEALPix order)."),
    partition_rows: int = typer.Option(None, "--partition-rows", min=1,
                                       help="lsdb backend: at most this many rows in a HEALPix partition when a CSV/"
                                            "Parquet input is converted (default: lsdb's choice)."),
) -> None:
    """Match every object of A to its nearest object of B within --radius (astropy SkyCoord
    match_to_catalog_sky, or LSDB with --backend lsdb); each B object is used once: of several A objects nearest to the same B object,
    only the nearest pair is kept (the others are counted as duplicates dropped). The counts go to
    standard output."""
    from astromodal.atomic import atomic_path, check_output_file
    from astromodal.data.crossmatch import crossmatch_tables, parse_radius
    from astromodal.data.readers.tables import load_frame

    radius_arcsec = parse_radius(radius)
    parts = suffixes.split(",")
    if len(parts) != 2 or parts[0] == parts[1]:
        raise ConfigError(f"--suffixes must be two different suffixes separated by a comma, not {suffixes!r}")
    if out.suffix.lower() not in _OUT_SUFFIXES:
        raise ConfigError(f"--out {out}: the output is a Parquet file; name it with {' or '.join(_OUT_SUFFIXES)}")
    check_output_file(out, inputs=(a, b), overwrite=overwrite)
    if partition_rows is not None and backend is not Backend.lsdb:
        raise ConfigError("--partition-rows applies to --backend lsdb only")
    from astromodal.data.crossmatch import is_hats

    for path, side in ((a, "A"), (b, "B")):
        if is_hats(path) and backend is not Backend.lsdb:
            raise ConfigError(f"catalogue {side} ({path}) is a HATS catalogue folder: use --backend lsdb")
    console.print(f"reading {a} and {b}", markup=False, highlight=False)
    options = {"ra_a": ra_column_a, "dec_a": dec_column_a, "ra_b": ra_column_b, "dec_b": dec_column_b,
               "suffixes": (parts[0], parts[1])}
    if backend is Backend.lsdb:
        from astromodal.data.crossmatch import crossmatch_lsdb

        src_a = a if is_hats(a) else load_frame(a, hdu=hdu)
        src_b = b if is_hats(b) else load_frame(b, hdu=hdu)
        counts, frames = crossmatch_lsdb(src_a, src_b, radius_arcsec, partition_rows=partition_rows, **options)
    else:
        frame_a, frame_b = load_frame(a, hdu=hdu), load_frame(b, hdu=hdu)
        joined, counts = crossmatch_tables(frame_a, frame_b, radius_arcsec, **options)
        frames = iter([joined])
    import pyarrow as pa
    import pyarrow.parquet as pq

    from astromodal import __version__

    info = {"tool": "astromodal", "verb": "crossmatch", "version": __version__, "a": str(a), "b": str(b),
            "radius_arcsec": radius_arcsec, "backend": backend.value, "counts": counts}
    check_output_file(out, inputs=(a, b), overwrite=overwrite)  # again: a file saved there meanwhile is kept
    with atomic_path(out) as tmp:
        writer = None
        try:
            for piece in frames:  # one piece (astropy), or one HEALPix partition at a time (lsdb, a HATS A)
                table = pa.Table.from_pandas(piece, preserve_index=False, schema=writer.schema if writer else None)
                if writer is None:
                    metadata = {**(table.schema.metadata or {}), b"astromodal": json.dumps(info).encode()}
                    table = table.replace_schema_metadata(metadata)
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
    typer.echo(f"crossmatch: {a} ({counts['n_a']} rows) x {b} ({counts['n_b']} rows) within {radius_arcsec:g} arcsec")
    for key in ("matched", "unmatched_a", "unmatched_b", "duplicates_dropped"):
        typer.echo(f"{key}: {counts[key]}")
    typer.echo(f"written: {out}")
