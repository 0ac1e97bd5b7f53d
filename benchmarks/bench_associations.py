"""Association finding at scale: peak memory and time of ``astromodal associations`` on a synthetic
million-row prediction table, read in blocks (``--chunk-rows``) against the whole table at once.

The table mimics study C's application step (a classifier's ``prob_massive`` over Gaia DR3 sources):
N rows, of which a fraction ``--candidates`` (1 % by default) are predicted massive (prob_massive >= 0.5)
and sit in OB associations of 60 stars (10 pc rms, at 0.5-3 kpc in the Galactic plane: the scale of the
associations of Wright 2020, New Astron. Rev. 90, 101549) or in the field; the other rows are uniform on
the sky with low probabilities. Parallaxes are 1/d mas with 2 % errors (Gaia DR3 G < 13 precision,
Lindegren et al. 2021, A&A 649, A2). The numbers shape the workload only; no result depends on them.

Each measurement runs in its own process, after a warm-up call (imports): ``rss_growth_mb`` is the rise of
the peak resident memory (Linux VmHWM, reset through /proc/self/clear_refs) during the call itself;
``tracemalloc_peak_mb`` counts only Python/numpy allocations (not Arrow's buffers, which back the
DataFrames read from Parquet), so RSS is the measure that matters:

    nice -n 19 python benchmarks/bench_associations.py --rows 100000 1000000 --out benchmarks/results/associations.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import check_results_file, write_results_file

SCRIPT = "benchmarks/bench_associations.py"


def make_table(path: Path, n: int, candidates: float = 0.01, seed: int = 0, row_group: int = 100_000) -> int:
    """Write the synthetic prediction table to ``path`` (Parquet, row groups of ``row_group`` rows);
    returns the number of candidates (prob_massive >= 0.5)."""
    import astropy.units as u
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(seed)
    n_cand = int(round(candidates * n))
    n_assoc = max(1, n_cand // 120)  # half the candidates in associations of 60 stars, half in the field
    per = 60
    lc = rng.uniform(0, 360, n_assoc)
    dc = rng.uniform(0.5, 3.0, n_assoc)
    x0, y0 = dc * np.cos(np.radians(lc)), dc * np.sin(np.radians(lc))
    centres = np.stack([x0, y0, rng.normal(0, 0.03, n_assoc)], 1)
    pts = (centres[:, None, :] + rng.normal(0, 0.010, (n_assoc, per, 3))).reshape(-1, 3)[:n_cand]
    n_field = n_cand - len(pts)
    if n_field > 0:
        d = rng.uniform(0.3, 4.0, n_field)
        lf = rng.uniform(0, 360, n_field)
        bf = rng.normal(0, 3, n_field)
        pts = np.concatenate([pts, np.stack([d * np.cos(np.radians(bf)) * np.cos(np.radians(lf)),
                                             d * np.cos(np.radians(bf)) * np.sin(np.radians(lf)),
                                             d * np.sin(np.radians(bf))], 1)])
    dist = np.linalg.norm(pts, axis=1)
    lon = np.degrees(np.arctan2(pts[:, 1], pts[:, 0])) % 360.0
    lat = np.degrees(np.arcsin(pts[:, 2] / dist))
    gal = SkyCoord(l=lon * u.deg, b=lat * u.deg, frame="galactic").icrs
    cand_rows = np.sort(rng.choice(n, n_cand, replace=False))
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    plx = rng.uniform(0.1, 3.0, n)
    prob = rng.uniform(0, 0.49, n)
    ra[cand_rows], dec[cand_rows] = gal.ra.deg, gal.dec.deg
    plx[cand_rows] = 1.0 / dist
    prob[cand_rows] = rng.uniform(0.5, 1.0, n_cand)
    frame = pd.DataFrame({"source_id": np.arange(n, dtype=np.int64) + 10**15, "ra": ra, "dec": dec,
                          "parallax": plx, "parallax_error": 0.02 * plx, "phot_g_mean_mag": rng.uniform(6, 13, n),
                          "bp_rp": rng.normal(0.3, 0.5, n), "prob_massive": prob})
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group)
    return n_cand


_CHILD = r"""
import json, sys, time, tracemalloc
from pathlib import Path
path, chunk = Path(sys.argv[1]), int(sys.argv[2])
from astromodal.analysis.associations import find_associations, find_associations_chunked
from astromodal.cli.associations import iter_catalogue_frames, load_catalogue_frame, select_predicted
import numpy as np, pandas as pd


def hwm_mb():  # this process's peak resident memory since the last reset (Linux /proc)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


warm_path = path.with_name("warm.parquet")  # the warm-up: imports, astropy's frame-graph caches
find_associations_chunked(iter_catalogue_frames(warm_path, 10), None, mode="xyz", eps=0.05, min_samples=2)
find_associations(load_catalogue_frame(warm_path), mode="xyz", eps=0.05, min_samples=2)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak: what follows is the call alone
base = hwm_mb()
tracemalloc.start()
t = time.perf_counter()
if chunk > 0:
    res, _ = find_associations_chunked(iter_catalogue_frames(path, chunk),
                                       lambda b: select_predicted(b, None, "prob_massive", 0.5)[0],
                                       mode="xyz", eps=0.05, min_samples=10)
else:  # the whole table at once (the path before --chunk-rows)
    frame, _ = select_predicted(load_catalogue_frame(path), None, "prob_massive", 0.5)
    res = find_associations(frame, mode="xyz", eps=0.05, min_samples=10)
wall = time.perf_counter() - t
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"wall_s": wall, "tracemalloc_peak_mb": peak / 2**20, "rss_base_mb": base,
                  "rss_peak_mb": hwm_mb(), "rss_growth_mb": hwm_mb() - base, "n_groups": res.summary["n_groups"],
                  "n_selected": res.summary["n_stars"]}))
"""


def measure(path: Path, chunk: int) -> dict:
    """Run one measurement in a fresh process (``warm.parquet`` next to ``path``: the warm-up table)."""
    if not path.with_name("warm.parquet").exists():
        make_table(path.with_name("warm.parquet"), 2000, 0.05, seed=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(chunk)], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--candidates", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the rows to this JSON file (never one this script did not write)")
    parser.add_argument("--overwrite", action="store_true", help="replace this script's earlier --out file")
    args = parser.parse_args()
    out = check_results_file(args.out, SCRIPT, args.overwrite)  # before any work
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            path = Path(tmp) / f"pred_{n}.parquet"
            t = time.perf_counter()
            n_cand = make_table(path, n, args.candidates)
            made = time.perf_counter() - t
            for chunk in (args.chunk_rows, 0):
                m = measure(path, chunk)
                row = {"rows": n, "candidates": n_cand, "chunk_rows": chunk or "whole", "table_mb":
                       path.stat().st_size / 2**20, "make_s": made, **m}
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_results_file(out, SCRIPT, {"rows": rows})


if __name__ == "__main__":
    main()
