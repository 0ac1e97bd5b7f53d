"""`astromodal predict` over catalogues against the model's own speed, side by side, at growing sizes.

Models (``--models``, each saved the way ``benchmark`` saves a model and applied by ``predict_catalogue``, the
function behind ``astromodal predict``):

* ``logistic_regression`` and ``random_forest`` (study A's settings: entropy, depth 100, 100 trees, one core)
  trained on 20,000 rows of the real SDSS DR17 table (``$ASTROMODAL_DATA/sdss-dr17-photometry``; the five
  magnitudes ``u g r i z``) and applied to a Parquet catalogue of ``--sizes`` rows built from that table:
  its 99,999 rows repeated, with new 64-bit ids (``10**18 + row``) and no class column, row groups of
  100,000 rows. Logistic regression costs ~0.1 microsecond a row, less than reading and writing the row:
  its ratio measures astromodal's overhead alone; the forest is a model whose cost is of the order of a
  survey classifier's.
* ``cnn1d`` (the study C 1D CNN, trained one epoch on 1,500 simulated Gaia-XP-like spectra) applied to an
  astromodal HDF5 file of ``--cnn-sizes`` spectra (the simulated ones repeated with new ids; 343 points).

Per model and size, each in a fresh process (so that start-up and peak memory are its own):

* ``startup``: interpreter start -> ``astromodal.inference.catalogue`` imported and the model loaded, and whether
  torch was imported on the way (it should not be for a scikit-learn model);
* ``predict``: ``predict_catalogue(model, catalogue, out, chunk_size=--chunk-size)`` (streamed reading, the table
  preparation replayed per chunk, ids / positions, one fingerprinted part per chunk, the final Parquet file);
  wall time and peak RSS (``VmHWM``) next to the RSS once the model is loaded;
* ``floor``: the same model on the catalogue's model inputs held in memory (``predict_proba`` in batches of
  ``--chunk-size``): what the model itself costs, nothing read or written; ``ratio`` = floor / predict;
* ``dask_<k>`` (``--dask-workers 1 2``): the Dask driver on a LocalCluster of k one-thread worker processes,
  cluster start-up included; ``dask_speedup`` = the time with the fewest workers / the time with the most;
* ``--kill-rerun``: for the largest size of the first tabular model, the ``astromodal predict`` command line is
  killed (SIGKILL) at a random moment (seeded) and run again: the resumed run must end with exactly one row per
  input object, ids equal to the input's, in order; its peak RSS and the resumed chunk count are printed;
* ``--device cuda``: the neural model's rows are measured on that device too (``predict --device``); without a
  GPU the line is skipped with the reason.

Results go to ``--out`` (``results.csv``, ``results.md``; a folder this script did not write is never written into)
and standard output. Run (about two minutes on two cores at the default sizes)::

    ASTROMODAL_DATA=../shared/data python benchmarks/bench_catalogue.py --out /tmp/bench_catalogue \\
        --dask-workers 1 2
    # issue 15's 10-million-row run (a ~0.4 GB catalogue, ~10 minutes on 2 cores):
    ASTROMODAL_DATA=../shared/data python benchmarks/bench_catalogue.py --out /tmp/bench_catalogue_1e7 \\
        --models random_forest --sizes 10000000 --kill-rerun
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

T0 = time.perf_counter()  # before any astromodal import: the worker's start-up is measured from here

BANDS = ("u", "g", "r", "i", "z")
SDSS_COLUMNS = {"right_ascension_angle": "ra", "declination_angle": "dec", "ultraviolet_filter": "u",
                "green_filter": "g", "red_filter": "r", "near_infrared_filter": "i", "infrared_filter": "z"}
TABULAR = ("logistic_regression", "random_forest")
NEURAL = ("cnn1d",)
#: the marker's verb of this script's output folder
VERB = "benchmark bench_catalogue"
ID0 = 10**18  # new ids: 64-bit, beyond float64's exact integers (a float round trip would change them)


def _rss_mib() -> float:
    """This process's peak RSS in MiB: ``VmHWM`` (Linux), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


@lru_cache(maxsize=1)
def real_sdss():
    """The real SDSS DR17 table with the columns renamed ``ra dec u g r i z class``, read once per process (the
    callers copy what they change); one clear line if absent."""
    import pandas as pd

    from astromodal.data.sources import data_dir

    path = data_dir() / "sdss-dr17-photometry" / "StellarObjs.csv"
    if not path.is_file():
        raise SystemExit(f"{path}: the real SDSS table is not there (set ASTROMODAL_DATA to the shared data folder)")
    return pd.read_csv(path).rename(columns=SDSS_COLUMNS)[["ra", "dec", *BANDS, "class"]]


def make_tabular_model(folder: Path, name: str) -> Path:
    from astromodal.data.readers.tables import read_table
    from astromodal.experiments import RepresentationConfig
    from astromodal.inference.catalogue import save_predictor
    from astromodal.training.estimator import make_estimator
    from astromodal.transforms.representations import build_inputs, input_shapes

    train = folder / "train.csv"
    real_sdss().iloc[:20_000].to_csv(train, index=False)
    ds = read_table(train, features=list(BANDS), label="class")
    rep = RepresentationConfig(kind="columns", columns=list(BANDS))
    X = build_inputs(ds, rep)
    est = make_estimator(name).fit(X["columns"], ds.targets["class"].values.read())
    return save_predictor(folder / name, est, rep, "class", "classification",
                          list(ds.targets["class"].class_names), "classical", input_shapes(X),
                          preparation=ds.meta["preparation"])


def make_table_catalogue(path: Path, n: int, block: int = 1_000_000) -> Path:
    """``n`` rows of the real table repeated, new int64 ids, written ``block`` rows at a time (row groups 100,000)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    real = real_sdss().drop(columns=["class"])
    writer = None
    for start in range(0, n, block):
        m = min(block, n - start)
        rows = real.iloc[np.arange(start, start + m) % len(real)].reset_index(drop=True)
        rows.insert(0, "objid", np.arange(ID0 + start, ID0 + start + m, dtype=np.int64))
        table = pa.Table.from_pandas(rows, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=100_000)
    writer.close()
    return path


@lru_cache(maxsize=1)
def _simulated_spectra():
    """The 1,500 simulated Gaia-XP-like spectra the CNN is trained on and its catalogues repeat (made once)."""
    from astromodal.data.simulate import simulate_survey

    return simulate_survey(n=1500, seed=0, instruments=("gaia_xp",), with_images=False)


def make_cnn_model(folder: Path) -> Path:
    from astromodal.experiments import RepresentationConfig
    from astromodal.inference.catalogue import save_predictor
    from astromodal.training.estimator import make_estimator
    from astromodal.transforms.representations import build_inputs, input_shapes

    ds = _simulated_spectra()
    rep = RepresentationConfig(kind="spectrum", spectra="gaia_xp")
    X = build_inputs(ds, rep)
    t = ds.targets["class"]
    est = make_estimator("cnn1d", task="classification",
                         trainer={"max_epochs": 1, "batch_size": 128, "patience": None, "seed": 0})
    est.fit(X, t.values.read())
    return save_predictor(folder / "cnn1d", est, rep, "class", "classification", list(t.class_names), "neural",
                          input_shapes(X))


def make_spectra_catalogue(path: Path, n: int, block: int = 1500) -> Path:
    """An astromodal HDF5 file of ``n`` spectra: the simulated ones repeated with new int64 ids."""
    import numpy as np

    from astromodal.data.dataset import Dataset, Spectra
    from astromodal.data.storage import DatasetAppender

    ds = _simulated_spectra()
    sp = ds.spectra["gaia_xp"]
    flux, ivar, wave = sp.flux.read(), sp.ivar.read(), np.asarray(sp.wavelength)
    ra, dec = ds.ra.read(), ds.dec.read()
    with DatasetAppender(path, n, compression=None) as out:
        for start in range(0, n, block):
            m = min(block, n - start)
            k = np.arange(start, start + m) % len(flux)
            spectra = {"gaia_xp": Spectra(flux[k], wave, ivar[k], instrument=sp.instrument, unit=sp.unit)}
            out.append(Dataset(np.arange(ID0 + start, ID0 + start + m, dtype=np.int64), ra[k], dec[k], spectra))
    return path


def worker(mode: str, model: str, catalogue: str, out: str, chunk_size: int, device: str | None) -> dict:
    from astromodal.inference.catalogue import load_predictor, predict_catalogue

    predictor = load_predictor(model, trust=True, device=device)
    loaded = time.perf_counter()
    result = {"startup_s": loaded - T0, "torch": "torch" in sys.modules, "rss_loaded_mib": _rss_mib()}
    quiet = {"chunk_size": chunk_size, "trust": True, "log": lambda s: None, "device": device}
    if mode == "predict":
        t = time.perf_counter()
        predict_catalogue(model, catalogue, out, **quiet)
        result["seconds"] = time.perf_counter() - t
    elif mode.startswith("dask:"):  # the Dask driver on a LocalCluster of that many worker processes
        t = time.perf_counter()
        predict_catalogue(model, catalogue, out, scheduler="local", workers=int(mode.split(":")[1]), **quiet)
        result["seconds"] = time.perf_counter() - t
    elif mode == "floor":  # the model alone on its inputs, built and held in memory before the clock starts
        import numpy as np

        if catalogue.endswith(".parquet"):
            import pyarrow.parquet as pq

            table = pq.read_table(catalogue, columns=list(BANDS))
            X = {"columns": np.column_stack([table[b].to_numpy() for b in BANDS]).astype(np.float64)}
            del table
            estimator, inputs = predictor.estimator, X["columns"]
            n = len(inputs)

            def batch(a, b):
                return inputs[a:b]
        else:
            from astromodal.data.storage import load_hdf5

            inputs = predictor.inputs(load_hdf5(catalogue, lazy=False))
            inputs = {k: np.asarray(v) for k, v in inputs.items()}
            estimator, n = predictor.estimator, len(next(iter(inputs.values())))

            def batch(a, b):
                return {k: v[a:b] for k, v in inputs.items()}
        t = time.perf_counter()
        for start in range(0, n, chunk_size):
            estimator.predict_proba(batch(start, start + chunk_size))
        result["seconds"] = time.perf_counter() - t
    result["rss_peak_mib"] = _rss_mib()
    return result


def _run(mode: str, model: Path, catalogue: Path, out: Path, chunk_size: int, device: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, str(model), str(catalogue), str(out),
           "--chunk-size", str(chunk_size), *(["--device", device] if device else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{mode} worker failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_rows(path: Path, n: int) -> None:
    """One row per input object in a prediction file, or the benchmark fails (never a row of its table)."""
    import pyarrow.parquet as pq

    got = pq.read_metadata(path).num_rows
    if got != n:
        raise SystemExit(f"{path}: {got} rows for {n} objects")


def _ids(path: Path, column: str):
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=[column])[column].to_numpy()


def kill_rerun(model: Path, catalogue: Path, out: Path, chunk_size: int, n: int, seed: int = 15) -> dict:
    """``astromodal predict`` killed (SIGKILL) once a random number of its chunks (seeded, 1 .. all but one) is
    finished, at whatever it is doing then, and run again with the same command."""
    import numpy as np

    cmd = [sys.executable, "-c", "from astromodal.cli import main; main()", "predict", str(model), str(catalogue),
           "--out", str(out), "--chunk-size", str(chunk_size), "--trust"]
    chunks = -(-n // chunk_size)
    target = random.Random(seed).randint(1, max(1, chunks - 1))
    parts = out.with_name(out.name + ".parts")
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = time.perf_counter()
    while first.poll() is None and (len(list(parts.glob("part-*.parquet"))) if parts.is_dir() else 0) < target:
        time.sleep(0.01)
    after = time.perf_counter() - t
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished = len(list(parts.glob("part-*.parquet"))) if parts.is_dir() else 0
    t = time.perf_counter()
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(second.pid, 0)
    stdout, stderr = second.communicate()
    if status:
        raise SystemExit(f"the rerun failed:\n{stderr}")
    rerun_s = time.perf_counter() - t
    got, want = _ids(out, "id"), _ids(catalogue, "objid")
    if len(got) != n or not np.array_equal(got, want):  # a wrong resume is a failed benchmark, never a table row
        raise SystemExit(f"the rerun after the kill wrote {len(got)} rows for {n} objects"
                         + ("" if len(got) != n else ", with ids that differ from the input's"))
    return {"killed_after_s": round(after, 1), "chunks": chunks, "parts_before_rerun": finished,
            "rerun_s": round(rerun_s, 1),
            "rerun_rss_peak_mib": round(usage.ru_maxrss / 1024.0, 1), "rows_out": int(len(got)),
            "ids_equal": True,
            "resumed": next((line.strip() for line in stderr.splitlines() if "resuming" in line), "")}


def _markdown(table) -> list[str]:
    import pandas as pd

    cols = [str(c) for c in table.columns]
    return (["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            + ["| " + " | ".join("" if v is None or v is pd.NA else str(v) for v in row) + " |"
               for row in table.itertuples(index=False)])


def _cuda_reason() -> str | None:
    """None where a CUDA GPU can run the neural rows, else why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return None if torch.cuda.is_available() else "no CUDA GPU on this machine (torch.cuda.is_available() is False)"


def measure(model_name: str, model: Path, catalogue: Path, n: int, tmp: Path, args, device: str | None = None) -> dict:
    import argparse as _argparse

    if model_name in NEURAL:  # the neural model's own chunk size
        args = _argparse.Namespace(**{**vars(args), "chunk_size": args.cnn_chunk_size})

    pred_out = tmp / f"pred_{model_name}_{n}.parquet"
    pred = _run("predict", model, catalogue, pred_out, args.chunk_size, device)
    floor = _run("floor", model, catalogue, tmp / "unused.parquet", args.chunk_size, device)
    _check_rows(pred_out, n)
    row = {"model": model_name, "device": device or "cpu", "rows": n, "chunk_size": args.chunk_size,
           "startup_s": round(pred["startup_s"], 3), "torch_imported": pred["torch"],
           "predict_s": round(pred["seconds"], 3), "predict_rows_per_s": round(n / pred["seconds"]),
           "floor_s": round(floor["seconds"], 4), "floor_rows_per_s": round(n / floor["seconds"]),
           "ratio": round(floor["seconds"] / pred["seconds"], 3),
           "rss_loaded_mib": round(pred["rss_loaded_mib"], 1), "rss_peak_mib": round(pred["rss_peak_mib"], 1),
           "catalogue_mib": round(catalogue.stat().st_size / 2**20, 1)}
    for k in args.dask_workers if device is None else []:
        out = tmp / f"dask{k}_{n}.parquet"
        got = _run(f"dask:{k}", model, catalogue, out, args.chunk_size)
        _check_rows(out, n)
        out.unlink()
        row[f"dask_{k}_s"] = round(got["seconds"], 3)
    if len(args.dask_workers) > 1 and device is None:
        row["dask_speedup"] = round(row[f"dask_{min(args.dask_workers)}_s"] / row[f"dask_{max(args.dask_workers)}_s"], 2)
    if args.kill_rerun and model_name in TABULAR and n == max(args.sizes) and not args.killed[0]:
        args.killed[0] = True
        row.update(kill_rerun(model, catalogue, tmp / f"killed_{n}.parquet", args.chunk_size, n))
        (tmp / f"killed_{n}.parquet").unlink()
    pred_out.unlink()
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["logistic_regression", "random_forest", "cnn1d"],
                    choices=[*TABULAR, *NEURAL])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                    help="catalogue rows for the tabular models (add 10000000 for issue 15's 10^7 run)")
    ap.add_argument("--cnn-sizes", type=int, nargs="+", default=[10_000, 100_000], help="spectra for cnn1d")
    ap.add_argument("--chunk-size", type=int, default=50_000, help="rows per chunk for the tabular models")
    ap.add_argument("--cnn-chunk-size", type=int, default=10_000,
                    help="spectra per chunk for cnn1d (10,000 spectra of 343 points: ~14 MB of flux)")
    ap.add_argument("--dask-workers", type=int, nargs="*", default=[],
                    help="also run the Dask driver (a LocalCluster) with each of these numbers of workers, e.g. 1 2")
    ap.add_argument("--kill-rerun", action="store_true",
                    help="kill `astromodal predict` at a random moment on the largest tabular size, rerun, check")
    ap.add_argument("--device", default=None, help="also measure the neural model on this device (e.g. cuda)")
    ap.add_argument("--out", type=Path, required=False, help="folder for results.csv and results.md")
    ap.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run of this script")
    ap.add_argument("--worker", nargs=4, metavar=("MODE", "MODEL", "CATALOGUE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.chunk_size, args.device)))
        return 0
    if args.out is not None:
        from astromodal.atomic import check_output_dir, claim_entries

        check_output_dir(args.out, overwrite=args.overwrite, verb=VERB, resume=True)
        args.out.mkdir(parents=True, exist_ok=True)
        claim_entries(args.out, VERB, ["results.csv", "results.md"])
    args.killed = [False]  # shared by the per-model copies of args
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="bench_catalogue_") as tmp:
        tmp = Path(tmp)
        for name in args.models:
            if name in TABULAR:
                model, sizes, make = make_tabular_model(tmp, name), args.sizes, make_table_catalogue
                suffix = "parquet"
            else:
                model, sizes, make = make_cnn_model(tmp), args.cnn_sizes, make_spectra_catalogue
                suffix = "h5"
            for n in sizes:
                catalogue = make(tmp / f"cat_{name}_{n}.{suffix}", n)
                rows.append(measure(name, model, catalogue, n, tmp, args))
                print(json.dumps(rows[-1]), flush=True)
                if name in NEURAL and args.device:
                    reason = _cuda_reason() if args.device.startswith("cuda") else None
                    if reason:
                        skipped.append(f"{name} at {n} on {args.device}: skipped, {reason}")
                        print(skipped[-1], file=sys.stderr)
                    else:
                        rows.append(measure(name, model, catalogue, n, tmp, args, device=args.device))
                        print(json.dumps(rows[-1]), flush=True)
                catalogue.unlink()
    import pandas as pd

    table = pd.DataFrame(rows).convert_dtypes()  # integer columns stay integers beside the empty cells
    command = "python benchmarks/bench_catalogue.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = ["# `astromodal predict` against the model's own speed", "",
          f"Made by `{command}` on {os.cpu_count()} cores. ratio = floor time / predict time (floor: the model's "
          "predict_proba on its inputs held in memory); RSS in MiB (peak of the predict process, and once the "
          "model is loaded); start-up: interpreter start to the model loaded.", "",
          *_markdown(table), "", *(f"- {s}" for s in skipped), ""]
    print("\n".join(md))
    if args.out is not None:
        from astromodal.atomic import write_text

        write_text(args.out / "results.csv", table.to_csv(index=False))
        write_text(args.out / "results.md", "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
