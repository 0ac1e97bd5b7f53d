"""Speed of the survey simulator: objects per second for the whole survey and per modality.

* ``survey``: everything on (three spectrographs, 64 x 64 u g r i z cutouts, photometry, astrometry);
* ``catalogue``: model spectra, photometry and astrometry only (no instrument spectra, no images) - the
  floor every configuration pays;
* ``<instrument>`` / ``images``: the catalogue plus that one modality; its marginal rate (objects per
  second of the extra time alone) is printed beside it.

Each configuration is run ``--repeat`` times and the fastest run counts. Batches run on
$ASTROMODAL_SIM_THREADS threads (default: min(2, cores)). Run:

    python benchmarks/bench_simulator.py --n 5000
"""

from __future__ import annotations

import argparse
import json
import os
import time

from astromodal.data.simulate import simulate_survey


def timed(repeat: int, **options) -> float:
    """Fastest wall time (s) of ``simulate_survey(**options)`` over ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        simulate_survey(**options)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="objects per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2, help="runs per configuration (fastest counts)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

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
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"n": args.n, "threads": threads, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
