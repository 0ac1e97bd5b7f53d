"""Cross-match at scale: time and peak memory of ``astromodal crossmatch`` with the astropy backend (both
catalogues in memory) and the lsdb backend on HATS catalogues (read lazily, partition by partition).

Synthetic catalogues: A uniform over the sphere; B = 70 % of A's objects moved by a Gaussian offset of
0.7 arcsec per axis (of the order of the SDSS-Gaia astrometric scatter at r ~ 20, Pier et al. 2003, AJ 125,
1559), matched within 2 arcsec. The HATS catalogues are written by ``lsdb.from_dataframe`` with at most
``--partition-rows`` rows a partition (real HATS releases are partitioned the same way, by
hats-import), B with a 5 arcsec margin cache. Each run is one ``astromodal crossmatch`` process, timed
with GNU time (``%M`` = peak RSS, imports included; the lsdb backend's first cross-match in a process
also JIT-compiles hats' pixel alignment with numba, ~10-20 s on 2 shared cores):

    nice -n 19 python benchmarks/bench_crossmatch.py --rows 1000000 3000000 --out benchmarks/results/crossmatch.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import check_results_file, write_results_file

SCRIPT = "benchmarks/bench_crossmatch.py"


def make(folder: Path, n: int, partition_rows: int, seed: int = 0) -> None:
    """A and B as Parquet files and as HATS catalogues (``a_hats``; ``b_hats`` with a margin cache)."""
    import warnings

    import lsdb
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    a = pd.DataFrame({"objid": np.arange(n), "ra": ra, "dec": dec, "mag": rng.normal(17, 1, n)})
    keep = rng.random(n) < 0.7
    off = rng.normal(0, 0.7, (n, 2)) / 3600
    b = pd.DataFrame({"source_id": np.arange(n) + 10**9, "ra": (ra + off[:, 0] / np.cos(np.radians(dec))) % 360,
                      "dec": np.clip(dec + off[:, 1], -90, 90), "g": rng.normal(17, 1, n)})[keep]
    a.to_parquet(folder / "a.parquet")
    b.to_parquet(folder / "b.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "from_dataframe is not intended for large datasets"
        lsdb.from_dataframe(a, ra_column="ra", dec_column="dec", partition_rows=partition_rows,
                            margin_threshold=None).write_catalog(folder / "a_hats", catalog_name="a",
                                                                 progress_bar=False)
        lsdb.from_dataframe(b, ra_column="ra", dec_column="dec", partition_rows=partition_rows,
                            margin_threshold=5.0).write_catalog(folder / "b_hats", catalog_name="b",
                                                                progress_bar=False)


def run(args: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = ["/usr/bin/time", "-f", "TIME %e %M", sys.executable, "-c", "from astromodal.cli import main; main()",
           "crossmatch", *args, "--radius", "2arcsec"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    wall, kb = re.search(r"TIME ([0-9.]+) ([0-9]+)", proc.stderr).groups()
    counts = dict(re.findall(r"^(matched|unmatched_a|unmatched_b|duplicates_dropped): (\d+)$", proc.stdout, re.M))
    return {"wall_s": float(wall), "rss_peak_mb": int(kb) / 1024, **{k: int(v) for k, v in counts.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--partition-rows", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the rows to this JSON file (never one this script did not write)")
    parser.add_argument("--overwrite", action="store_true", help="replace this script's earlier --out file")
    args = parser.parse_args()
    out = check_results_file(args.out, SCRIPT, args.overwrite)  # before any work
    rows = []
    for n in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            t = time.perf_counter()
            make(folder, n, args.partition_rows)
            made = time.perf_counter() - t
            for name, cli in (("astropy", [str(folder / "a.parquet"), str(folder / "b.parquet")]),
                              ("lsdb_hats", [str(folder / "a_hats"), str(folder / "b_hats"), "--backend", "lsdb"])):
                row = {"rows": n, "backend": name, "partition_rows": args.partition_rows, "make_s": made,
                       **run([*cli, "--out", str(folder / f"{name}.parquet")])}
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_results_file(out, SCRIPT, {"rows": rows})


if __name__ == "__main__":
    main()
