"""The one training loop behind every neural model of astromodal.

Design decision: a lean training loop of our own instead of PyTorch Lightning. Survey data are held in
memory as batched tensors (spectra ``(N, L)``, images ``(N, C, H, W)``, catalogue columns ``(N, F)``), so
each epoch is one ``torch.randperm`` from a seeded generator and index slices of the big tensors: no
``DataLoader``, no worker processes, no per-object Python. Lightning's ``Trainer`` adds seconds of import
time and per-step callback machinery that would eat into the throughput target (at least 0.85 of a bare
PyTorch loop, see ``benchmarks/bench_trainer.py``), and the features needed here are few: optimiser and
learning-rate schedule, early stopping on the validation loss, keeping the best weights, mixed precision,
atomic checkpoints with resume, and a progress bar over epochs.

    cfg = TrainerConfig(max_epochs=50, optimizer="adamw", lr=1e-4, scheduler="onecycle", max_lr=1e-3,
                        loss="bce_logits", class_weight="balanced")
    result = Trainer(cfg).fit(model, {"spectrum": flux, "context": ctx}, labels)
    logits = Trainer(cfg).predict(model, {"spectrum": flux_new, "context": ctx_new})

Class targets are integer codes (int64) and regression targets floating point; that is how the trainer
tells the tasks apart (validation accuracy, stratified validation split, the ``"auto"`` loss).
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from torch import nn

from astromodal.errors import BadValueError, ConfigError
from astromodal.training.checkpoint import BEST, LAST, load_checkpoint, save_checkpoint, state_to_cpu
from astromodal.training.losses import is_class_target, make_loss, resolve_loss

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class TrainerConfig(BaseModel):
    """Every setting of the training loop; an unknown key is an error naming the key."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    max_epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=256, ge=1)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    momentum: float = Field(default=0.937, ge=0, lt=1)  # sgd only (always Nesterov)
    scheduler: Literal["none", "onecycle", "cosine"] = "none"
    max_lr: float = Field(default=1e-3, gt=0)  # onecycle peak learning rate
    warmup_epochs: int = Field(default=0, ge=0)  # cosine: linear warm-up epochs
    min_lr: float = Field(default=1e-5, ge=0)  # cosine: final learning rate
    patience: int | None = Field(default=10, ge=1)  # early stopping; None disables
    loss: Literal["auto", "cross_entropy", "bce_logits", "gaussian_nll", "mse"] = "auto"
    class_weight: Literal["balanced"] | None = None
    device: str = "auto"
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"
    #: image models: train in the channels-last memory layout (the model and the 4-D inputs), which
    #: oneDNN and cuDNN convolutions run faster, most of all with bf16-mixed (benchmarks/README.md);
    #: the model is handed back in the usual layout
    channels_last: bool = False
    seed: int = 0
    num_threads: int | None = Field(default=None, ge=1)
    progress: bool = True
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    shuffle: bool = True
    checkpoint_dir: str | None = None
    drop_last: bool = False
    augment: list[str] = Field(default_factory=list)  # kornia augmentations of image batches (training only)
    augment_p: float = Field(default=0.5, ge=0, le=1)  # probability of each augmentation

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not _DEVICE_RE.match(v):
            raise ValueError(f"device must be auto, cpu, mps, cuda or cuda:N, not {v!r}")
        return v

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, v: Any) -> Any:
        # YAML may give the number: 32 -> "32", 16 -> "16-mixed" (Lightning's convention)
        return {32: "32", 16: "16-mixed", "16": "16-mixed", "bf16": "bf16-mixed"}.get(v, v)

    @field_validator("checkpoint_dir", mode="before")
    @classmethod
    def _path(cls, v: Any) -> Any:
        return str(v) if isinstance(v, Path) else v

    @classmethod
    def from_options(cls, options: dict[str, Any] | None = None, where: str = "trainer") -> TrainerConfig:
        """Validate a dict of settings; errors become ONE line (:class:`ConfigError`) naming each bad key,
        with the allowed keys when a key is unknown."""
        try:
            return cls(**(options or {}))
        except ValidationError as exc:
            parts = []
            unknown = False
            for err in exc.errors():
                key = ".".join(str(p) for p in err["loc"])
                if err["type"] == "extra_forbidden":
                    unknown = True
                    parts.append(f"unknown key {key!r}")
                else:
                    parts.append(f"{key!r}: " + " ".join(str(err["msg"]).split()))
            if unknown:
                parts.append("allowed keys: " + ", ".join(sorted(cls.model_fields)))
            raise ConfigError(f"{where} settings: " + "; ".join(parts)) from None


@dataclass
class TrainResult:
    """What a fit did: one dict per epoch and the epoch whose weights were kept."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float | None = None  # the monitored loss (train loss when there is no validation set)
    stopped_early: bool = False
    monitor: str = "val_loss"
    loss: str = ""
    n_outputs: int = 0
    resumed_from_epoch: int | None = None
    n_train: int = 0  # objects trained on (after any validation hold-out)
    n_val: int = 0  # objects in the validation set


def resolve_device(name: str) -> torch.device:
    """``auto`` = the first of cuda, mps, cpu that exists; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} was asked for but no CUDA GPU is available (use device='auto')")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device {name!r} was asked for but Apple MPS is not available (use device='auto')")
    return dev


def _channels_last(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v for k, v in inputs.items()}


def resolve_precision(precision: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use a GradScaler); unsupported mixed precision falls back to 32 with a warning."""
    if precision == "16-mixed":
        if device.type == "cuda":
            return torch.float16, True
        warnings.warn(f"precision '16-mixed' needs a CUDA device, training on {device} in 32-bit", stacklevel=3)
        return None, False
    if precision == "bf16-mixed":
        if device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported()):
            return torch.bfloat16, False
        warnings.warn(f"precision 'bf16-mixed' is not supported on {device}, training in 32-bit", stacklevel=3)
        return None, False
    return None, False


def _as_tensor(a: Any, name: str) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    if torch.is_floating_point(t) and t.dtype != torch.float32:
        t = t.float()
    if torch.is_floating_point(t) and not bool(torch.isfinite(t).all()):
        raise BadValueError(f"input {name!r} contains NaN or infinite values")
    return t


def _lr_lambda(steps_per_epoch: int, cfg: TrainerConfig) -> Any:
    total = cfg.max_epochs * steps_per_epoch
    warm = cfg.warmup_epochs * steps_per_epoch
    floor = cfg.min_lr / cfg.lr

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm - 1))  # the last step uses min_lr
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class Trainer:
    """Fits a model on in-memory tensors (see the module text); ``Trainer(cfg).fit(model, inputs, target)``."""

    def __init__(self, config: TrainerConfig | dict[str, Any] | None = None, **overrides: Any):
        if config is None or isinstance(config, dict):
            config = TrainerConfig.from_options({**(config or {}), **overrides})
        elif overrides:
            config = TrainerConfig.from_options({**config.model_dump(), **overrides})
        self.config = config

    # ------------------------------------------------------------------ building blocks
    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        c = self.config
        params = [p for p in model.parameters() if p.requires_grad]
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        if c.optimizer == "adam":
            return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=True, weight_decay=c.weight_decay)

    def _scheduler(self, opt: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
        c = self.config
        if c.scheduler == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.max_lr, total_steps=c.max_epochs * steps_per_epoch)
        if c.scheduler == "cosine":
            return torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(steps_per_epoch, c))
        return None

    @staticmethod
    def _keys(model: nn.Module, inputs: dict[str, Any], what: str) -> tuple[str, ...]:
        keys = tuple(getattr(model, "inputs", None) or tuple(inputs))
        missing = [k for k in keys if k not in inputs]
        if missing:
            raise BadValueError(f"{what} lack the model input(s) {missing}; given: {sorted(inputs)}")
        return keys

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        model: nn.Module,
        train_inputs: dict[str, Any],
        train_target: Any,
        val_inputs: dict[str, Any] | None = None,
        val_target: Any = None,
        augment: nn.Module | None = None,
    ) -> TrainResult:
        """Train ``model`` in place and restore its best weights; returns the per-epoch history.

        Without a validation set, a seeded (stratified for classes) ``val_fraction`` of the training
        objects is held out; with ``val_fraction=0`` the training loss is monitored instead. ``augment``
        (a module mapping a batch tensor to an augmented one) is applied in training only, to the inputs
        named in its ``inputs`` attribute, else to the model's first input.
        """
        c = self.config
        if c.num_threads:
            torch.set_num_threads(c.num_threads)
        device = resolve_device(c.device)
        amp_dtype, use_scaler = resolve_precision(c.precision, device)
        keys = self._keys(model, train_inputs, "training inputs")
        x_tr = {k: _as_tensor(train_inputs[k], k) for k in keys}
        y_tr = torch.as_tensor(np.asarray(train_target) if not isinstance(train_target, torch.Tensor) else train_target)
        if torch.is_floating_point(y_tr) and y_tr.dtype != torch.float32:
            y_tr = y_tr.float()
        is_class = is_class_target(y_tr)
        n = len(y_tr)
        for k, v in x_tr.items():
            if len(v) != n:
                raise BadValueError(f"input {k!r} has {len(v)} rows but the target has {n}")
        if (val_inputs is None) != (val_target is None):
            raise BadValueError("give both val_inputs and val_target, or neither")
        if val_inputs is not None:
            vkeys = self._keys(model, val_inputs, "validation inputs")
            x_va = {k: _as_tensor(val_inputs[k], k) for k in vkeys}
            y_va = torch.as_tensor(np.asarray(val_target) if not isinstance(val_target, torch.Tensor) else val_target)
            if torch.is_floating_point(y_va):
                y_va = y_va.float()
        elif c.val_fraction > 0:
            tr_idx, va_idx = _validation_split(n, c.val_fraction, y_tr.numpy() if is_class else None, c.seed)
            tr_i, va_i = torch.from_numpy(tr_idx), torch.from_numpy(va_idx)
            x_va = {k: v[va_i] for k, v in x_tr.items()}
            y_va = y_tr[va_i]
            x_tr = {k: v[tr_i] for k, v in x_tr.items()}
            y_tr = y_tr[tr_i]
        else:
            x_va, y_va = None, None
        n_tr = len(y_tr)
        bs = c.batch_size
        steps = n_tr // bs if c.drop_last else math.ceil(n_tr / bs)
        if steps == 0:
            raise BadValueError(f"drop_last with batch_size {bs} leaves no batch of the {n_tr} training objects")

        torch.manual_seed(c.seed)  # dropout and other in-model randomness
        gen = torch.Generator().manual_seed(c.seed)
        model.to(device)
        x_tr = {k: v.to(device) for k, v in x_tr.items()}
        y_tr = y_tr.to(device)
        if x_va is not None:
            x_va = {k: v.to(device) for k, v in x_va.items()}
            y_va = y_va.to(device)
        channels_last = c.channels_last and any(v.ndim == 4 for v in x_tr.values())
        if channels_last:  # once for the whole in-memory set: batches indexed from it keep the layout
            model.to(memory_format=torch.channels_last)
            x_tr = _channels_last(x_tr)
            x_va = _channels_last(x_va) if x_va is not None else None
        model.eval()
        with torch.no_grad():
            probe = model(**{k: v[:2] for k, v in x_tr.items()})
        n_outputs = int(probe.shape[1]) if probe.ndim > 1 else 1
        loss_name = resolve_loss(c.loss, n_outputs, y_tr.cpu())
        loss_fn = make_loss(loss_name, n_outputs, y_tr.cpu(), c.class_weight).to(device)
        opt = self._optimizer(model)
        sched = self._scheduler(opt, steps)
        scaler = torch.amp.GradScaler(device.type) if use_scaler else None
        if augment is None and c.augment:
            from astromodal.transforms.augment import make_augmentation

            augment = make_augmentation(c.augment, p=c.augment_p, seed=c.seed)
            augment.inputs = ("image",)
        aug_keys = tuple(getattr(augment, "inputs", None) or keys[:1]) if augment is not None else ()
        if augment is not None:
            augment.to(device)

        monitor = "val_loss" if x_va is not None else "train_loss"
        result = TrainResult(monitor=monitor, loss=loss_name, n_outputs=n_outputs, n_train=n_tr,
                             n_val=0 if y_va is None else len(y_va))
        best_state: dict[str, torch.Tensor] | None = None
        best, bad_epochs, start_epoch = math.inf, 0, 0
        ckpt_dir = Path(c.checkpoint_dir) if c.checkpoint_dir else None
        fingerprint = {"n_train": n_tr, "shapes": {k: list(v.shape[1:]) for k, v in x_tr.items()},
                       "n_outputs": n_outputs, "loss": loss_name}
        if ckpt_dir is not None and (ckpt_dir / LAST).is_file():
            ck = load_checkpoint(ckpt_dir / LAST)
            if ck.get("fingerprint") != fingerprint:
                raise ConfigError(
                    f"{ckpt_dir / LAST}: the checkpoint was written for other data or another model "
                    f"({ck.get('fingerprint')} vs {fingerprint}); remove it or choose another checkpoint_dir"
                )
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            if sched is not None and ck.get("scheduler") is not None:
                sched.load_state_dict(ck["scheduler"])
            if scaler is not None and ck.get("scaler") is not None:
                scaler.load_state_dict(ck["scaler"])
            gen.set_state(ck["generator"])
            torch.set_rng_state(ck["torch_rng"])
            if device.type == "cuda" and ck.get("cuda_rng") is not None:
                torch.cuda.set_rng_state_all(ck["cuda_rng"])
            result.history = list(ck["history"])
            result.best_epoch, result.stopped_early = ck["best_epoch"], bool(ck["stopped_early"])
            best = ck["best"] if ck["best"] is not None else math.inf
            bad_epochs, start_epoch = int(ck["bad_epochs"]), int(ck["epoch"])
            result.resumed_from_epoch = start_epoch
            if (ckpt_dir / BEST).is_file():
                best_state = load_checkpoint(ckpt_dir / BEST)["model"]
        result.best_val_loss = None if math.isinf(best) else best

        bar = _EpochBar(c.progress, c.max_epochs, start_epoch)
        with bar:
            for epoch in range(start_epoch, c.max_epochs):
                if result.stopped_early:
                    break
                t0 = time.perf_counter()
                model.train()
                perm = torch.randperm(n_tr, generator=gen) if c.shuffle else torch.arange(n_tr)
                perm = perm.to(device)
                total = torch.zeros((), device=device)
                seen, last_lr = 0, c.lr
                for s in range(steps):
                    idx = perm[s * bs: (s + 1) * bs]
                    batch = {k: v[idx] for k, v in x_tr.items()}
                    yb = y_tr[idx]
                    for k in aug_keys:
                        batch[k] = augment(batch[k])  # type: ignore[misc]
                    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                        out = model(**batch)
                    loss = loss_fn(out.float(), yb)
                    opt.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        scaler.step(opt)
                        scaler.update()
                    else:
                        loss.backward()
                        opt.step()
                    if s == steps - 1:
                        last_lr = opt.param_groups[0]["lr"]  # the rate used for the epoch's last batch
                    if sched is not None:
                        sched.step()
                    total += loss.detach() * len(idx)
                    seen += len(idx)
                train_loss = float(total / seen)
                rec: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": None,
                                       "val_accuracy": None}
                if x_va is not None:
                    rec["val_loss"], rec["val_accuracy"] = self._evaluate(
                        model, x_va, y_va, loss_fn, loss_name, amp_dtype, device)
                rec["lr"] = float(last_lr)
                rec["seconds"] = round(time.perf_counter() - t0, 4)
                if not is_class:
                    rec.pop("val_accuracy")
                result.history.append(rec)
                watched = rec[monitor]
                if watched < best:
                    best, bad_epochs = watched, 0
                    best_state = state_to_cpu(model.state_dict())
                    result.best_epoch, result.best_val_loss = epoch + 1, watched
                    if ckpt_dir is not None:
                        save_checkpoint(ckpt_dir / BEST, {"model": best_state, "epoch": epoch + 1})
                else:
                    bad_epochs += 1
                if c.patience is not None and bad_epochs >= c.patience and epoch + 1 < c.max_epochs:
                    result.stopped_early = True
                if ckpt_dir is not None:
                    save_checkpoint(ckpt_dir / LAST, {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched is not None else None,
                        "scaler": scaler.state_dict() if scaler is not None else None,
                        "epoch": epoch + 1,
                        "history": result.history,
                        "best": None if math.isinf(best) else best,
                        "best_epoch": result.best_epoch,
                        "bad_epochs": bad_epochs,
                        "stopped_early": result.stopped_early,
                        "generator": gen.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
                        "fingerprint": fingerprint,
                        "config": self.config.model_dump(),
                    })
                bar.update(rec)
        if best_state is not None:
            model.load_state_dict(best_state)
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
        model.eval()
        return result

    @torch.no_grad()
    def _evaluate(self, model: nn.Module, x: dict[str, torch.Tensor], y: torch.Tensor, loss_fn: nn.Module,
                  loss_name: str, amp_dtype: torch.dtype | None, device: torch.device) -> tuple[float, float | None]:
        model.eval()
        n = len(y)
        bs = self.config.batch_size
        total = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for s in range(0, n, bs):
            batch = {k: v[s: s + bs] for k, v in x.items()}
            yb = y[s: s + bs]
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                out = model(**batch)
            out = out.float()
            total += loss_fn(out, yb) * len(yb)
            if loss_name == "bce_logits":
                correct += ((out.reshape(-1) > 0).long() == yb.reshape(-1).long()).sum()
            elif loss_name == "cross_entropy":
                correct += (out.argmax(dim=1) == yb.reshape(-1).long()).sum()
        acc = float(correct) / n if loss_name in ("bce_logits", "cross_entropy") else None
        return float(total) / n, acc

    # ------------------------------------------------------------------ predict
    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: dict[str, Any], batch_size: int | None = None) -> torch.Tensor:
        """Raw model outputs (logits, or (mean, raw variance)) for ``inputs``: eval mode, no gradients,
        in batches; returned as a float32 CPU tensor of shape (N, n_outputs)."""
        device = resolve_device(self.config.device)
        keys = self._keys(model, inputs, "inputs")
        x = {k: _as_tensor(inputs[k], k) for k in keys}
        n = len(x[keys[0]])
        bs = batch_size or max(self.config.batch_size, 1024)
        model.to(device)
        model.eval()
        outs = []
        for s in range(0, max(n, 1), bs):  # an empty input still goes through once, for the output width
            out = model(**{k: v[s: s + bs].to(device, non_blocking=True) for k, v in x.items()})
            outs.append(out.float().cpu())
        out = torch.cat(outs)
        return out.reshape(n, 1) if out.ndim == 1 else out


def _validation_split(n: int, fraction: float, labels: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from astromodal.data.splits import train_test_indices

    if labels is not None:
        counts = np.bincount(labels.reshape(-1).astype(np.int64))
        if (counts[counts > 0] < 2).any() or round(fraction * n) < int((counts > 0).sum()):
            labels = None  # too few objects per class to stratify: plain seeded split
    return train_test_indices(n, fraction, None if labels is None else labels.reshape(-1), seed)


class _EpochBar:
    """A rich progress bar over epochs showing the latest train/validation loss (silent when disabled)."""

    def __init__(self, enabled: bool, total: int, start: int):
        self.enabled = enabled and os.environ.get("ASTROMODAL_NO_PROGRESS") != "1"
        self.total, self.start = total, start
        self.bar: Any = None

    def __enter__(self) -> _EpochBar:
        if self.enabled:
            from astromodal.progress import progress

            self.bar = progress()
            self.bar.__enter__()
            self.task = self.bar.add_task("training", total=self.total, completed=self.start)
        return self

    def update(self, rec: dict[str, Any]) -> None:
        if self.bar is None:
            return
        val = rec.get("val_loss")
        text = f"epoch {rec['epoch']} train {rec['train_loss']:.4f}" + (f" val {val:.4f}" if val is not None else "")
        self.bar.update(self.task, advance=1, description=text)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
