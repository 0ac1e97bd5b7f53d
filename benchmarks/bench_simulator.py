"""Speed of the survey simulator: objects per second for the whole survey and per modality.

* ``survey``: everything on (three spectrographs, 64 x 64 u g r i z cutouts, photometry, astrometry);
* ``catalogue``: model spectra, photometry and astrometry only (no instrument spectra, no images) - the
  floor every configuration pays;
* ``<instrument>`` / ``images``: the catalogue plus that one modality; its marginal rate (objects per
  second of the extra time alone) is printed beside it.

Each configuration is run ``--repeat`` times and the fastest run counts. Batches run on
$ASTROMODAL_SIM_THREADS threads (default: min(2, cores)). Run:

    python benchmarks/bench_simulator.py --n 5000

End to end (issue 15): ``--stream 10000,100000,1000000`` runs ``astromodal simulate`` in a subprocess for each
size, catalogue only (``--columns-only``, Parquet) and with every modality (HDF5, ``--codec lzf``; add sizes to
``--stream-full`` to choose them), and prints objects/s with the file written and the peak RSS of the process
tree (``os.wait4``); ``--codecs`` times the HDF5 codecs (gzip level 1, lzf, none) on the arrays of 1,000
simulated objects with every modality (write speed, read speed, size ratio). ``--workers`` is passed to
``astromodal simulate``. Only these two parts run when either is given.

    python benchmarks/bench_simulator.py --codecs --stream 10000,100000,1000000 --stream-full 10000,100000
"""

from __future__ import annotations

import argparse
import os
import time

from results_file import check_results_file, write_results_file

from astromodal.data.simulate import simulate_survey

SCRIPT = "benchmarks/bench_simulator.py"


def timed(repeat: int, **options) -> float:
    """Fastest wall time (s) of ``simulate_survey(**options)`` over ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        simulate_survey(**options)
        best = min(best, time.perf_counter() - start)
    return best


def codecs(seed: int = 0) -> dict:
    """Write / read speed (MiB/s) and size ratio of each HDF5 codec on 1,000 simulated objects, every modality."""
    import tempfile

    import h5py

    from astromodal.data.storage import chunk_shape

    ds = simulate_survey(n=1000, seed=seed)
    arrays = {f"flux_{k}": s.flux.read() for k, s in ds.spectra.items()}
    arrays.update({f"ivar_{k}": s.ivar.read() for k, s in ds.spectra.items()})
    arrays["pixels"] = ds.images["sdss"].pixels.read()
    arrays.update({f"col_{k}": c.values.read() for k, c in ds.columns.items()})
    raw = sum(a.nbytes for a in arrays.values())
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for codec in ("gzip", "lzf", None):
            path = os.path.join(tmp, f"{codec}.h5")
            start = time.perf_counter()
            with h5py.File(path, "w") as f:
                for k, a in arrays.items():
                    kw = {"chunks": chunk_shape(a.shape, a.dtype.itemsize)}
                    if codec:
                        kw.update(compression=codec, shuffle=True, **({"compression_opts": 1} if codec == "gzip" else {}))
                    f.create_dataset(k, data=a, **kw)
            write = time.perf_counter() - start
            start = time.perf_counter()
            with h5py.File(path) as f:
                for k in f:
                    f[k][...]
            read = time.perf_counter() - start
            out[codec or "none"] = {"write_MiB_s": raw / write / 2**20, "read_MiB_s": raw / read / 2**20,
                                    "size_ratio": os.path.getsize(path) / raw, "raw_MiB": raw / 2**20}
    print(f"HDF5 codecs on 1,000 objects with every modality ({raw / 2**20:.0f} MiB), one thread")
    print(f"{'codec':<6} {'write MiB/s':>12} {'read MiB/s':>11} {'size ratio':>11}")
    for name, r in out.items():
        print(f"{name:<6} {r['write_MiB_s']:12.0f} {r['read_MiB_s']:11.0f} {r['size_ratio']:11.3f}")
    return out


def end_to_end(n: int, full: bool, workers: int, seed: int = 0) -> dict:
    """``astromodal simulate`` in a subprocess: wall time, objects/s (file written), peak RSS (MiB), file size."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        out = os.path.join(tmp, "survey.h5" if full else "catalogue.parquet")
        cmd = [sys.executable, "-c", "from astromodal.cli import main; main()", "simulate", "--n", str(n),
               "--seed", str(seed), "--out", out, "--workers", str(workers)]
        cmd += ["--codec", "lzf"] if full else ["--columns-only"]
        env = {**os.environ, "ASTROMODAL_NO_PROGRESS": "1"}
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err = proc.stderr.read().decode(errors="replace")
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"astromodal simulate failed ({proc.returncode}): {err[-2000:]}")
        size = os.path.getsize(out)
    return {"n": n, "mode": "all modalities (HDF5, lzf)" if full else "catalogue only (Parquet)",
            "seconds": wall, "objects_per_s": n / wall, "peak_rss_MiB": usage.ru_maxrss / 1024,
            "bytes_per_object": size / n, "workers": workers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="objects per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2, help="runs per configuration (fastest counts)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--json", help="also write the results to this JSON file (never one this script did not write)")
    parser.add_argument("--overwrite", action="store_true", help="replace this script's earlier --json file")
    parser.add_argument("--codecs", action="store_true", help="time the HDF5 codecs (see above)")
    parser.add_argument("--stream", default="", help="comma-separated sizes for the end-to-end catalogue-only runs")
    parser.add_argument("--stream-full", default="", help="comma-separated sizes for the end-to-end all-modality runs")
    parser.add_argument("--workers", type=int, default=1, help="--workers of astromodal simulate (end to end)")
    args = parser.parse_args()
    out = check_results_file(args.json, SCRIPT, args.overwrite)  # before any work
    if args.codecs or args.stream or args.stream_full:
        results = {"codecs": codecs(args.seed) if args.codecs else None, "end_to_end": []}
        runs = [(int(v), False) for v in args.stream.split(",") if v] + [(int(v), True) for v in args.stream_full.split(",") if v]
        if runs:
            print(f"astromodal simulate end to end (file written), workers = {args.workers}, cores = {os.cpu_count()}")
            print(f"{'mode':<28} {'n':>9} {'seconds':>8} {'objects/s':>10} {'peak RSS MiB':>13} {'bytes/object':>13}")
        for n, full in runs:
            r = end_to_end(n, full, args.workers, args.seed)
            results["end_to_end"].append(r)
            print(f"{r['mode']:<28} {n:9d} {r['seconds']:8.1f} {r['objects_per_s']:10.0f} {r['peak_rss_MiB']:13.0f} "
                  f"{r['bytes_per_object']:13.0f}", flush=True)
        write_results_file(out, SCRIPT, results)
        return

    simulate_survey(n=50, seed=args.seed)  # warm caches (grids, distance table, astropy frames)
    base = {"n": args.n, "seed": args.seed, "image_size": args.image_size}
    configs = {
        "survey": {"instruments": ("lamost", "sdss", "gaia_xp"), "with_images": True},
        "catalogue": {"instruments": (), "with_images": False},
        "lamost": {"instruments": ("lamost",), "with_images": False},
        "sdss": {"instruments": ("sdss",), "with_images": False},
        "gaia_xp": {"instruments": ("gaia_xp",), "with_images": False},
        "images": {"instruments": (), "with_images": True},
    }
    seconds = {name: timed(args.repeat, **base, **opts) for name, opts in configs.items()}
    threads = os.environ.get("ASTROMODAL_SIM_THREADS", str(min(2, os.cpu_count() or 1)))
    print(f"simulator speed, n = {args.n}, threads = {threads}, cores = {os.cpu_count()}")
    print(f"{'configuration':<12} {'seconds':>8} {'objects/s':>10} {'marginal objects/s':>20}")
    results = {}
    for name, sec in seconds.items():
        extra = sec - seconds["catalogue"]
        marginal = args.n / extra if name not in ("survey", "catalogue") and extra > 0 else None
        results[name] = {"seconds": sec, "objects_per_s": args.n / sec, "marginal_objects_per_s": marginal}
        print(f"{name:<12} {sec:8.2f} {args.n / sec:10.0f} {'' if marginal is None else f'{marginal:20.0f}'}")
    write_results_file(out, SCRIPT, {"n": args.n, "threads": threads, "results": results})


if __name__ == "__main__":
    main()
