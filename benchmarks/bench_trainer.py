"""Training throughput of a SimpleCNN on 28 x 28 images: the project's trainer vs the floor vs the naive way.

* floor: a bare PyTorch loop over in-memory batched tensors (forward, loss, backward, step), nothing else;
* astromodal: ``Trainer.fit`` on the same in-memory tensors (with its shuffling, early-stopping bookkeeping,
  best-weight keeping and a small validation pass each epoch);
* naive: a ``torch.utils.data.DataLoader`` over a Dataset that decodes one PNG file per sample.

It also times the data path alone (shuffled batches without a model), which separates what the
in-memory design saves from the model's own compute: on a CPU the SimpleCNN's compute dominates, so
the end-to-end gain over the naive way is small there and grows with a faster device.

All three train the same architecture, batch size and number of epochs, measured in one run on the
same machine, and report training images per second. Run:

    python benchmarks/bench_trainer.py --n 20000 --epochs 2 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from astromodal.models.registry import build_model
from astromodal.training.trainer import Trainer, TrainerConfig


def make_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 1, 28, 28), dtype=np.float32) * 0.5
    x[np.arange(n), 0, y * 9 + 2, :] += 0.5  # a class-dependent bright row, so there is something to learn
    return torch.from_numpy(x), torch.from_numpy(y)


def model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("simple_cnn1", input_shape=(1, 28, 28), n_outputs=3)


def floor(x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int, fast: bool = False) -> float:
    """fast: bf16 autocast and the channels-last layout (model and the in-memory images)."""
    net = model(0)
    if fast:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    net.train()
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
                loss = loss_fn(net(image=x[idx]), y[idx])
            loss.backward()
            opt.step()
    return len(x) * epochs / (time.perf_counter() - start)


def astromodal_trainer(x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int, n_val: int,
                       fast: bool = False) -> float:
    """fast: ``precision="bf16-mixed"`` and ``channels_last=True``."""
    cfg = TrainerConfig(max_epochs=epochs, batch_size=batch, optimizer="adam", lr=1e-3, weight_decay=0.0,
                        scheduler="none", patience=None, progress=False, device="cpu", seed=0,
                        precision="bf16-mixed" if fast else "32", channels_last=fast)
    net = model(0)
    start = time.perf_counter()
    Trainer(cfg).fit(net, {"image": x}, y, {"image": x[:n_val]}, y[:n_val])
    return len(x) * epochs / (time.perf_counter() - start)


class PngDataset(torch.utils.data.Dataset):
    def __init__(self, files: list[Path], labels: np.ndarray):
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        with Image.open(self.files[i]) as im:
            arr = np.asarray(im, dtype=np.float32)[None] / 255.0
        return torch.from_numpy(arr), int(self.labels[i])


def write_pngs(x: torch.Tensor, folder: Path) -> list[Path]:
    files = []
    for i, img in enumerate((x[:, 0].numpy() * 255).round().astype(np.uint8)):
        path = folder / f"{i}.png"
        Image.fromarray(img).save(path)
        files.append(path)
    return files


def png_loader(files: list[Path], y: torch.Tensor, batch: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(PngDataset(files, y.numpy()), batch_size=batch, shuffle=True,
                                       generator=torch.Generator().manual_seed(0))


def data_path(x: torch.Tensor, y: torch.Tensor, batch: int, files: list[Path]) -> dict[str, float]:
    """Images per second of the data path alone (making shuffled batches, no model): in memory vs PNG."""
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    perm = torch.randperm(len(x), generator=gen)
    for i in range(0, len(x), batch):
        idx = perm[i : i + batch]
        _batch = (x[idx], y[idx])
    in_memory = len(x) / (time.perf_counter() - start)
    start = time.perf_counter()
    for _batch in png_loader(files, y, batch):
        pass
    png = len(x) / (time.perf_counter() - start)
    return {"in_memory_batches": in_memory, "png_dataloader": png}


def naive(x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int, files: list[Path], fast: bool = False) -> float:
    """fast: the same PNG loader with bf16 autocast and the channels-last model (like for like with the
    trainer's fast setting)."""
    loader = png_loader(files, y, batch)
    net = model(0)
    if fast:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
                loss = loss_fn(net(image=xb), yb)
            loss.backward()
            opt.step()
    return len(x) * epochs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="training images")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--n-val", type=int, default=256, help="validation images of the trainer's per-epoch pass")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions; the fastest of each counts")
    parser.add_argument("--fast", action="store_true",
                        help="also time the floor and the trainer with bf16 autocast and the channels-last layout "
                             "(trainer: precision bf16-mixed, channels_last); worth it on CPUs with AVX512-BF16 or AMX")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = make_data(args.n)
    floor(x[:1024], y[:1024], 1, args.batch)  # warm-up
    rates: dict[str, float] = {"floor": 0.0, "astromodal": 0.0, "naive": 0.0}
    if args.fast:
        rates |= {"floor_fast": 0.0, "astromodal_fast": 0.0, "naive_fast": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        files = write_pngs(x, Path(tmp))
        for _ in range(args.repeat):  # interleaved, best of each: robust to a busy machine
            rates["floor"] = max(rates["floor"], floor(x, y, args.epochs, args.batch))
            rates["astromodal"] = max(rates["astromodal"], astromodal_trainer(x, y, args.epochs, args.batch, args.n_val))
            rates["naive"] = max(rates["naive"], naive(x, y, args.epochs, args.batch, files))
            if args.fast:
                rates["floor_fast"] = max(rates["floor_fast"], floor(x, y, args.epochs, args.batch, fast=True))
                rates["astromodal_fast"] = max(rates["astromodal_fast"], astromodal_trainer(
                    x, y, args.epochs, args.batch, args.n_val, fast=True))
                rates["naive_fast"] = max(rates["naive_fast"], naive(x, y, args.epochs, args.batch, files, fast=True))
        data = data_path(x, y, args.batch, files)
    result = {
        "images_per_second": {k: round(v, 1) for k, v in rates.items()},
        "astromodal_over_floor": round(rates["astromodal"] / rates["floor"], 3),
        "astromodal_over_naive": round(rates["astromodal"] / rates["naive"], 2),
        **({"astromodal_fast_over_floor_fast": round(rates["astromodal_fast"] / rates["floor_fast"], 3),
            "astromodal_fast_over_naive": round(rates["astromodal_fast"] / rates["naive"], 2),
            "astromodal_fast_over_naive_fast": round(rates["astromodal_fast"] / rates["naive_fast"], 2)}
           if args.fast else {}),
        "data_path_images_per_second": {k: round(v, 1) for k, v in data.items()},
        "data_path_in_memory_over_png": round(data["in_memory_batches"] / data["png_dataloader"], 1),
        "settings": vars(args) | {"json": None, "torch": torch.__version__},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
