"""Training speed of MMSCNet (study B, MESCR) through the project's trainer against a bare PyTorch floor.

* floor: a bare loop over the same in-memory tensors: a seeded permutation, index-sliced batches,
  forward, cross-entropy + Gaussian NLL (variance ``softplus(raw) + 1e-6``), backward, SGD step;
* astromodal: ``Trainer.fit`` with the class (categorical) and radius (gaussian) heads of
  :mod:`astromodal.training.heads` on the same tensors (its shuffling, per-epoch bookkeeping and
  best-weight keeping included; no validation split, no scheduler, no augmentation, as the floor).

Both train the same model (``mmscnet`` built with the same seed, options below), the same number of
samples per epoch, batch size and epochs, with the paper's optimiser (SGD, Nesterov, momentum 0.937,
weight decay 1e-5, lr 1e-3), interleaved in one run (best of ``--repeat``), and report training samples
per second and their ratio, by the wall clock and by the process's CPU time (with one thread the CPU
time is the work done, and does not count the time other processes of a shared machine held the cores;
the figure to read on a busy machine). It also counts the training FLOPs of one sample at the paper's
width 1.0 and 64 px (``torch.utils.flop_counter`` on the meta device: convolutions and matrix products,
forward + backward; element-wise work is not counted) and turns them into the GPU time of the paper's
recipe (six members, 9,000 draws each, 8:2 train/validation, 200 epochs) at stated sustained rates.

    OMP_NUM_THREADS=1 python benchmarks/bench_mescr.py --n 512 --epochs 2 --repeat 3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from astromodal.models.registry import build_model, count_parameters
from astromodal.training.heads import make_head
from astromodal.training.objectives import Objective
from astromodal.training.trainer import Trainer, TrainerConfig

N_CLASSES = 5  # A F G K M
#: the paper's recipe (seed-methods.md B): six members, 9,000 draws per member, 8:2 train/validation, 200 epochs
PAPER = {"members": 6, "draws": 9000, "train_fraction": 0.8, "epochs": 200}


def make_data(n: int, side: int, seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, N_CLASSES, n)
    gri = rng.random((n, 3, side, side), dtype=np.float32) * 0.5
    urz = rng.random((n, 3, side, side), dtype=np.float32) * 0.5
    gri[np.arange(n), cls % 3, side // 2 - 2: side // 2 + 2, side // 2 - 2: side // 2 + 2] += 0.5
    astrometry = rng.normal(size=(n, 2)).astype(np.float32)
    radius = (cls - 2.0 + 0.3 * astrometry[:, 0] + 0.1 * rng.normal(size=n)).astype(np.float32)  # standardised
    x = {"gri": torch.from_numpy(gri), "urz": torch.from_numpy(urz), "astrometry": torch.from_numpy(astrometry)}
    return x, torch.from_numpy(cls), torch.from_numpy(radius)


def model(side: int, width: float, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    shapes = {"gri": (3, side, side), "urz": (3, side, side), "astrometry": (2,)}
    return build_model("mmscnet", input_shape=shapes["gri"], input_shapes=shapes,
                       n_outputs={"class": N_CLASSES, "radius": 2}, width=width)


def sgd(net: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.937, nesterov=True, weight_decay=1e-5)


def floor(x: dict[str, torch.Tensor], cls: torch.Tensor, radius: torch.Tensor, epochs: int, batch: int,
          side: int, width: float) -> tuple[float, float]:
    net = model(side, width)
    opt = sgd(net)
    gen = torch.Generator().manual_seed(0)
    n = len(cls)
    net.train()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            idx = perm[i: i + batch]
            out = net(**{k: v[idx] for k, v in x.items()})
            mu, var = out["radius"][:, 0], F.softplus(out["radius"][:, 1]) + 1e-6
            nll = 0.5 * (torch.log(var) + (radius[idx] - mu) ** 2 / var).mean()
            loss = F.cross_entropy(out["class"], cls[idx]) + nll
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return n * epochs / (time.perf_counter() - start), n * epochs / (time.process_time() - cpu)


def astromodal_trainer(x: dict[str, torch.Tensor], cls: torch.Tensor, radius: torch.Tensor, epochs: int,
                       batch: int, side: int, width: float) -> tuple[float, float]:
    cfg = TrainerConfig(max_epochs=epochs, batch_size=batch, optimizer="sgd", lr=1e-3, momentum=0.937,
                        weight_decay=1e-5, scheduler="none", patience=None, progress=False, device="cpu",
                        seed=0, val_fraction=0.0)
    heads = [make_head("class", {"kind": "categorical"}), make_head("radius", {"kind": "gaussian", "standardise": False})]
    net = model(side, width)
    start, cpu = time.perf_counter(), time.process_time()
    Trainer(cfg).fit(net, x, {"class": cls.numpy(), "radius": radius.numpy()}, objective=Objective(heads))
    n = len(cls) * epochs
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def flops_per_sample(side: int = 64, width: float = 1.0) -> dict[str, float]:
    """Forward and training (forward + backward) FLOPs of one sample, counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = model(side, width)
        x = {"gri": torch.empty(2, 3, side, side), "urz": torch.empty(2, 3, side, side), "astrometry": torch.empty(2, 2)}
        with FlopCounterMode(display=False) as fwd:
            net(**x)
        with FlopCounterMode(display=False) as train:
            out = net(**x)
            (out["class"].sum() + out["radius"].sum()).backward()
    return {"forward": fwd.get_total_flops() / 2, "train": train.get_total_flops() / 2,
            "parameters": float(count_parameters(net))}


def paper_gpu_time(flops: dict[str, float], rates_tflops: list[float]) -> dict[str, object]:
    """FLOPs of the paper's recipe (training passes + a validation forward pass each epoch) and the hours
    it takes at each sustained rate."""
    train_rows = PAPER["members"] * PAPER["draws"] * PAPER["train_fraction"] * PAPER["epochs"]
    val_rows = PAPER["members"] * PAPER["draws"] * (1 - PAPER["train_fraction"]) * PAPER["epochs"]
    total = flops["train"] * train_rows + flops["forward"] * val_rows
    return {"train_sample_passes": round(train_rows), "validation_sample_passes": round(val_rows),
            "total_pflop": round(total / 1e15, 2),
            "hours_at_sustained_tflops": {str(r): round(total / (r * 1e12) / 3600, 2) for r in rates_tflops}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512, help="training samples per epoch")
    parser.add_argument("--side", type=int, default=64, help="image side in pixels")
    parser.add_argument("--width", type=float, default=0.125, help="MMSCNet channel multiplier (1.0 = the paper)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2, help="interleaved repetitions; the fastest of each counts")
    parser.add_argument("--gpu-tflops", type=float, nargs="+", default=[50.0, 200.0],
                        help="sustained GPU rates (TFLOP/s) for the paper-recipe line")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, cls, radius = make_data(args.n, args.side)
    small = {k: v[:64] for k, v in x.items()}
    floor(small, cls[:64], radius[:64], 1, args.batch, args.side, args.width)  # warm-up
    rates = {"floor": 0.0, "astromodal": 0.0}
    cpu_rates = dict(rates)
    for _ in range(args.repeat):  # interleaved, best of each: robust to a busy machine
        for name, run in (("floor", floor), ("astromodal", astromodal_trainer)):
            wall, cpu = run(x, cls, radius, args.epochs, args.batch, args.side, args.width)
            rates[name], cpu_rates[name] = max(rates[name], wall), max(cpu_rates[name], cpu)
    bench_flops = flops_per_sample(args.side, args.width)
    paper_flops = flops_per_sample(64, 1.0)
    result = {
        "samples_per_second": {k: round(v, 1) for k, v in rates.items()},
        "astromodal_over_floor": round(rates["astromodal"] / rates["floor"], 3),
        "samples_per_cpu_second": {k: round(v, 1) for k, v in cpu_rates.items()},
        "astromodal_over_floor_cpu": round(cpu_rates["astromodal"] / cpu_rates["floor"], 3),
        "benchmark_model": {"width": args.width, "side": args.side, "parameters": int(bench_flops["parameters"]),
                            "train_gflop_per_sample": round(bench_flops["train"] / 1e9, 4),
                            "floor_gflop_per_second": round(rates["floor"] * bench_flops["train"] / 1e9, 2),
                            "floor_gflop_per_cpu_second": round(cpu_rates["floor"] * bench_flops["train"] / 1e9, 2)},
        "paper_model": {"width": 1.0, "side": 64, "parameters": int(paper_flops["parameters"]),
                        "forward_gflop_per_sample": round(paper_flops["forward"] / 1e9, 3),
                        "train_gflop_per_sample": round(paper_flops["train"] / 1e9, 3)},
        "paper_recipe_gpu": paper_gpu_time(paper_flops, args.gpu_tflops),
        "settings": vars(args) | {"json": None, "torch": torch.__version__},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
