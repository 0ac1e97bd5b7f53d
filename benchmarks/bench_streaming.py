"""Training from an HDF5 file of simulated 5-band cutouts: in memory vs streamed, side by side.

For each data size the simulated survey (``simulate_survey``, u g r i z cutouts of 64 x 64 pixels, 80 KiB
an object) is written with ``Dataset.save`` and one epoch of a small CNN is trained from the lazily
loaded file (``Dataset.load``) two ways, each in a fresh process so that its peak memory is its own:

* memory: ``Trainer(data="memory").fit(model, ds.inputs(views), y)``: every cutout read into one tensor;
* stream: ``Trainer(data="stream").fit(model, ds.input_stream(views), y)``: blocks of ``--block`` rows,
  ``--buffer`` blocks at a time (astromodal.training.batches).

It reports objects per second (the whole ``fit``: reading, one training epoch and the validation pass)
and the peak resident memory of the process (``resource.getrusage``, ``ru_maxrss``) next to the memory
after the imports. The streamed path's peak stays flat as the data grows; the in-memory one grows with
the data. Run (about two minutes on two cores)::

    python benchmarks/bench_streaming.py --sizes 2000 8000
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


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _net() -> object:
    import torch
    from torch import nn

    class SmallCNN(nn.Module):
        inputs = ("image",)

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.BatchNorm2d(5), nn.Conv2d(5, 8, 4, stride=4), nn.BatchNorm2d(8), nn.ReLU(),  # 64 -> 16 px
                nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),  # -> 8 px
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.body(image)

    torch.manual_seed(0)
    return SmallCNN()


def worker(mode: str, path: str, args: argparse.Namespace) -> dict:
    """One epoch in this process; what it measured, as a dict."""
    from astromodal.data.dataset import Dataset
    from astromodal.data.views import CutoutView
    from astromodal.training.trainer import Trainer, TrainerConfig

    model = _net()
    base = _rss_mib()
    ds = Dataset.load(path)  # lazy: the pixels stay on disk
    y = ds.class_codes("class")
    views = {"image": CutoutView(images="sdss")}
    cfg = TrainerConfig(max_epochs=1, batch_size=args.batch, val_fraction=0.1, progress=False, num_threads=args.threads,
                        data=mode, stream_block=args.block, stream_buffer=args.buffer, patience=None)
    start = time.perf_counter()
    inputs = ds.inputs(views) if mode == "memory" else ds.input_stream(views)
    result = Trainer(cfg).fit(model, inputs, y)
    seconds = time.perf_counter() - start
    return {"mode": mode, "n": len(ds), "seconds": round(seconds, 2), "objects_per_s": round(len(ds) / seconds, 1),
            "epoch_seconds": result.history[0]["seconds"], "train_loss": round(result.history[0]["train_loss"], 4),
            "rss_after_imports_mib": round(base, 1), "peak_rss_mib": round(_rss_mib(), 1)}


def make_files(sizes: list[int], folder: Path, image_size: int) -> dict[int, Path]:
    """One simulated survey of the largest size; a file per size (its first n objects)."""
    import numpy as np

    from astromodal import simulate_survey

    ds = simulate_survey(n=max(sizes), seed=0, image_size=image_size, instruments=("gaia_xp",),
                         associations=False)
    return {n: ds.subset(np.arange(n)).save(folder / f"cutouts_{n}.h5") for n in sizes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--buffer", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--make", metavar="FOLDER", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args)))
        return
    if args.make:
        make_files(args.sizes, Path(args.make), args.image_size)
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "ASTROMODAL_NO_PROGRESS": "1"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        # in a child process too: a child inherits the peak RSS of its parent at fork (ru_maxrss), so this
        # process never holds the data
        subprocess.run([sys.executable, __file__, "--make", tmp, "--sizes", *map(str, args.sizes),
                        "--image-size", str(args.image_size)], env=env, check=True)
        paths = {n: Path(tmp) / f"cutouts_{n}.h5" for n in args.sizes}
        print(f"simulated and saved {max(args.sizes)} objects in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for path in paths.values():
            mib = path.stat().st_size / 2**20
            for mode in ("memory", "stream"):
                cmd = [sys.executable, __file__, "--worker", mode, str(path), "--batch", str(args.batch),
                       "--block", str(args.block), "--buffer", str(args.buffer), "--threads", str(args.threads)]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
                rec = {**json.loads(out.stdout.strip().splitlines()[-1]), "file_mib": round(mib, 1)}
                rows.append(rec)
                print(json.dumps(rec), file=sys.stderr)
    print(f"{'n':>7} {'mode':>7} {'file MiB':>9} {'objects/s':>10} {'epoch s':>8} {'RSS base MiB':>13} "
          f"{'peak RSS MiB':>13}")
    for r in rows:
        print(f"{r['n']:>7} {r['mode']:>7} {r['file_mib']:>9} {r['objects_per_s']:>10} {r['epoch_seconds']:>8} "
              f"{r['rss_after_imports_mib']:>13} {r['peak_rss_mib']:>13}")
    print(f"(batch {args.batch}, stream_block {args.block}, stream_buffer {args.buffer}, {args.threads} threads; "
          f"raw cutouts {5 * args.image_size**2 * 4 / 1024:.0f} KiB an object)")


if __name__ == "__main__":
    main()
