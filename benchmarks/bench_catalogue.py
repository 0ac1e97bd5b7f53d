"""`astromodal predict` over a Parquet catalogue against the model's own speed, side by side, at growing sizes.

A logistic-regression classifier (scikit-learn, on the five SDSS-like magnitudes ``u g r i z`` of a simulated
two-class table, saved with its table preparation as ``benchmark`` saves a model) is applied to Parquet
catalogues of ``--sizes`` rows (default 10^4, 10^5, 10^6; add 10000000 for 10^7: a ~0.6 GB file and a few
minutes). Each measurement runs in a fresh process, so that its start-up and peak memory are its own:

* ``startup``: interpreter start -> ``astromodal.inference.catalogue`` imported and the model loaded
  (``load_predictor``), and whether torch was imported on the way (it should not be for this model);
* ``predict``: ``predict_catalogue(model, catalogue, out, chunk_size=--chunk-size)``, the function behind
  ``astromodal predict``: streamed reading, the table preparation replayed per chunk, ids / positions, one
  fingerprinted part per chunk, the final Parquet file; its wall time and the process's peak RSS
  (``VmHWM``) next to the RSS once the model is loaded;
* ``floor``: the same model's ``predict_proba`` on the catalogue's feature matrix held in memory, in batches
  of ``--chunk-size`` rows: what the model itself costs, nothing read or written.

* ``dask_<k>`` (with ``--dask-workers 1 2``): the same ``predict_catalogue`` with ``scheduler="local"`` (a Dask
  ``distributed`` LocalCluster of k worker processes, each loading the model once), its cluster start-up
  included; ``dask_speedup`` = the 1-worker time / the time with the most workers (the target is 1.8 at 2).

``ratio`` = floor time / predict time (1 = predict costs no more than the model). Results go to
``--out`` (``results.csv``, ``results.md``; a folder this script did not write is never written into) and
standard output. Run (about a minute on two cores at the default sizes)::

    python benchmarks/bench_catalogue.py --out /tmp/bench_catalogue
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()  # before any astromodal import: the worker's start-up is measured from here

BANDS = ("u", "g", "r", "i", "z")
#: the marker's verb of this script's output folder
VERB = "benchmark bench_catalogue"


def _rss_mib() -> float:
    """This process's peak RSS in MiB: ``VmHWM`` (Linux), else ``ru_maxrss``, which a child inherits from the
    process that forked it, so it never reads below the parent's peak."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _rows(n: int, seed: int):
    """``n`` rows of a two-class table (stars/quasars-like colours), 64-bit ids, positions."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    g = rng.uniform(16, 21, n)
    mags = {"u": g + 1.2 - 0.9 * y + 0.2 * rng.normal(size=n), "g": g,
            "r": g - 0.4 + 0.1 * y + 0.1 * rng.normal(size=n), "i": g - 0.6 + 0.1 * rng.normal(size=n),
            "z": g - 0.7 + 0.15 * rng.normal(size=n)}
    return pd.DataFrame({"objid": np.int64(1237645941824356000) + np.arange(n, dtype=np.int64) * 3 + seed,
                         "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-10, 70, n), **mags,
                         "class": np.where(y == 1, "QSO", "STAR")})


def make_model(folder: Path) -> Path:
    from astromodal.data.readers.tables import read_table
    from astromodal.experiments import RepresentationConfig
    from astromodal.inference.catalogue import save_predictor
    from astromodal.training.estimator import make_estimator
    from astromodal.transforms.representations import build_inputs, input_shapes

    train = folder / "train.csv"
    _rows(5000, 0).to_csv(train, index=False)
    ds = read_table(train, features=list(BANDS), label="class")
    rep = RepresentationConfig(kind="columns", columns=list(BANDS))
    X = build_inputs(ds, rep)
    est = make_estimator("logistic_regression").fit(X["columns"], ds.targets["class"].values.read())
    return save_predictor(folder / "model", est, rep, "class", "classification",
                          list(ds.targets["class"].class_names), "classical", input_shapes(X),
                          preparation=ds.meta["preparation"])


def make_catalogue(path: Path, n: int, block: int = 1_000_000) -> Path:
    """A Parquet catalogue written ``block`` rows at a time (row groups of 100,000), the class column dropped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for k, start in enumerate(range(0, n, block)):
        table = pa.Table.from_pandas(_rows(min(block, n - start), 1 + k).drop(columns=["class"]), preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=100_000)
    writer.close()
    return path


def worker(mode: str, model: str, catalogue: str, out: str, chunk_size: int) -> dict:
    from astromodal.inference.catalogue import load_predictor, predict_catalogue

    predictor = load_predictor(model, trust=True)
    loaded = time.perf_counter()
    result = {"startup_s": loaded - T0, "torch": "torch" in sys.modules, "rss_loaded_mib": _rss_mib()}
    if mode == "predict":
        t = time.perf_counter()
        predict_catalogue(model, catalogue, out, chunk_size=chunk_size, trust=True, log=lambda s: None)
        result["seconds"] = time.perf_counter() - t
    elif mode.startswith("dask:"):  # the Dask driver on a LocalCluster of that many worker processes
        t = time.perf_counter()
        predict_catalogue(model, catalogue, out, chunk_size=chunk_size, trust=True, log=lambda s: None,
                          scheduler="local", workers=int(mode.split(":")[1]))
        result["seconds"] = time.perf_counter() - t
    elif mode == "floor":
        import numpy as np
        import pyarrow.parquet as pq

        table = pq.read_table(catalogue, columns=list(BANDS))
        X = np.column_stack([table[b].to_numpy() for b in BANDS]).astype(np.float64)
        del table
        t = time.perf_counter()
        for start in range(0, len(X), chunk_size):
            predictor.estimator.predict_proba(X[start:start + chunk_size])
        result["seconds"] = time.perf_counter() - t
    result["rss_peak_mib"] = _rss_mib()
    return result


def _run(mode: str, model: Path, catalogue: Path, out: Path, chunk_size: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, str(model), str(catalogue), str(out),
           "--chunk-size", str(chunk_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{mode} worker failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _markdown(table) -> list[str]:
    cols = [str(c) for c in table.columns]
    return (["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            + ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--chunk-size", type=int, default=50_000)
    ap.add_argument("--dask-workers", type=int, nargs="*", default=[],
                    help="also run the Dask driver (a LocalCluster) with each of these numbers of workers, e.g. 1 2")
    ap.add_argument("--out", type=Path, required=False, help="folder for results.csv and results.md")
    ap.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run of this script")
    ap.add_argument("--worker", nargs=4, metavar=("MODE", "MODEL", "CATALOGUE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.chunk_size)))
        return 0
    if args.out is not None:
        from astromodal.atomic import check_output_dir, claim_entries

        check_output_dir(args.out, overwrite=args.overwrite, verb=VERB, resume=True)
        args.out.mkdir(parents=True, exist_ok=True)
        claim_entries(args.out, VERB, ["results.csv", "results.md"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_catalogue_") as tmp:
        tmp = Path(tmp)
        model = make_model(tmp)
        for n in args.sizes:
            catalogue = make_catalogue(tmp / f"cat_{n}.parquet", n)
            pred = _run("predict", model, catalogue, tmp / f"pred_{n}.parquet", args.chunk_size)
            floor = _run("floor", model, catalogue, tmp / "unused.parquet", args.chunk_size)
            import pyarrow.parquet as pq

            assert pq.read_metadata(tmp / f"pred_{n}.parquet").num_rows == n
            row = {"rows": n, "chunk_size": args.chunk_size, "startup_s": round(pred["startup_s"], 3),
                   "torch_imported": pred["torch"], "predict_s": round(pred["seconds"], 3),
                   "predict_rows_per_s": round(n / pred["seconds"]), "floor_s": round(floor["seconds"], 4),
                   "floor_rows_per_s": round(n / floor["seconds"]), "ratio": round(floor["seconds"] / pred["seconds"], 3),
                   "rss_loaded_mib": round(pred["rss_loaded_mib"], 1), "rss_peak_mib": round(pred["rss_peak_mib"], 1),
                   "catalogue_mib": round(catalogue.stat().st_size / 2**20, 1)}
            for k in args.dask_workers:
                out = tmp / f"dask{k}_{n}.parquet"
                got = _run(f"dask:{k}", model, catalogue, out, args.chunk_size)
                assert pq.read_metadata(out).num_rows == n
                out.unlink()
                row[f"dask_{k}_s"] = round(got["seconds"], 3)
                row[f"dask_{k}_rows_per_s"] = round(n / got["seconds"])
            if len(args.dask_workers) > 1:
                most = max(args.dask_workers)
                row["dask_speedup"] = round(row[f"dask_{min(args.dask_workers)}_s"] / row[f"dask_{most}_s"], 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
            for f in (catalogue, tmp / f"pred_{n}.parquet"):
                f.unlink()
    import pandas as pd

    table = pd.DataFrame(rows)
    dask_flag = f" --dask-workers {' '.join(map(str, args.dask_workers))}" if args.dask_workers else ""
    md = ["# `astromodal predict` against the model's own speed", "",
          f"Made by `python benchmarks/bench_catalogue.py --sizes {' '.join(map(str, args.sizes))} --chunk-size "
          f"{args.chunk_size}{dask_flag}` on {os.cpu_count()} cores. ratio = floor time / predict time (floor: the model's "
          "predict_proba on the feature matrix held in memory); RSS in MiB (peak of the predict process, and "
          "once the model is loaded); start-up: interpreter start to the model loaded.", "",
          *_markdown(table), ""]
    print("\n".join(md))
    if args.out is not None:
        from astromodal.atomic import write_text

        write_text(args.out / "results.csv", table.to_csv(index=False))
        write_text(args.out / "results.md", "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
