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

Several heads: the model returns a dict ``{head: tensor}`` and the targets are a dict ``{head: raw values}``
(NaN / -1 where a target does not apply to an object); an objective (:mod:`astromodal.training.objectives`)
owns the heads (:mod:`astromodal.training.heads`), their losses and weights, and the history gains
``train_loss_<head>``, ``val_loss_<head>`` and ``val_accuracy_<head>``::

    obj = Objective([make_head("class", "categorical"), make_head("radius", "gaussian")])
    Trainer(cfg).fit(model, {"gri": gri, "urz": urz, "astrometry": pm}, {"class": c, "radius": r}, objective=obj)

A contrastive objective trains without targets (``targets=None``). ``fit`` runs named steps: prepare
(tensors, validation split), set up (device, heads, optimiser), restore (checkpoint), then per epoch
train, validate and end the epoch (best weights, early stopping, checkpoint).

Data larger than memory: with ``data: stream`` the inputs are a batch source
(:mod:`astromodal.training.batches`), e.g. ``Dataset.load(path).input_stream(views)`` over a lazy HDF5
file (a dict of arrays is wrapped as one). An epoch reads a seeded permutation of contiguous blocks of
``stream_block`` rows, ``stream_buffer`` blocks at a time in increasing row order, shuffled within that
buffer, the next buffer read in a background thread; validation reads the blocks in order. Targets stay in
memory (one value per object). Same objective, heads, history and checkpoints; with ``shuffle: false`` the
batches, and so the losses, are those of the in-memory path. ``data: memory`` (the default) is the fast
path above; a batch source given to it is read whole first::

    cfg = TrainerConfig(data="stream", stream_block=256, stream_buffer=4)
    Trainer(cfg).fit(model, Dataset.load("cutouts.h5").input_stream(views), labels)
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from torch import nn

from astromodal.errors import BadValueError, ConfigError, format_validation_error
from astromodal.training.batches import BatchSource, as_source, iter_batches
from astromodal.training.checkpoint import (
    BEST,
    LAST,
    fingerprint_differences,
    load_checkpoint,
    save_checkpoint,
    state_to_cpu,
)
from astromodal.training.losses import is_class_target

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
    #: several image inputs (gri and urz cutouts of one object): the same geometric draw for all of them
    #: (same flips, angle, shift, erased region); false: an independent draw per input
    augment_same: bool = True
    #: pairs [label_a, label_b] of the FIRST class head swapped on a training image the augmentation mirrored
    #: an odd number of times (hflip / vflip; rotations keep the label): Galaxy Zoo's clockwise (1) and
    #: anticlockwise (2) spirals, [[1, 2]]. Labels as the estimator is given them (in a benchmark the
    #: target's class codes); needs a kornia ``augment`` (only hflip / vflip mirror: rotations never swap)
    augment_flip_swap: list[list[Any]] = Field(default_factory=list)
    #: where batches come from: memory (every input one in-memory tensor, a batch an index slice: the fast
    #: path) or stream (a batch source read block by block, for data larger than memory; module text)
    data: Literal["memory", "stream"] = "memory"
    stream_block: int = Field(default=256, ge=1)  # stream: rows per contiguous block read
    stream_buffer: int = Field(default=4, ge=1)  # stream: blocks read and shuffled together

    @field_validator("augment_flip_swap")
    @classmethod
    def _flip_swap(cls, v: list[list[Any]]) -> list[list[Any]]:
        for pair in v:
            if len(pair) != 2 or str(pair[0]) == str(pair[1]):
                raise ValueError(f"augment_flip_swap: each entry is a pair of two different labels, not {pair!r}")
        labels = [str(a) for pair in v for a in pair]
        if len(set(labels)) != len(labels):
            raise ValueError(f"augment_flip_swap {v!r}: a label may appear in one pair only")
        return v

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
            raise ConfigError(format_validation_error(exc, cls, f"{where} settings")) from None


@dataclass
class TrainResult:
    """What a fit did: one dict per epoch and the epoch whose weights were kept."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float | None = None  # the monitored loss (train loss when there is no validation set)
    stopped_early: bool = False
    monitor: str = "val_loss"
    loss: str = ""
    n_outputs: int | dict[str, int] = 0  # the model's output width (per output for a dict-output model)
    resumed_from_epoch: int | None = None
    n_train: int = 0  # objects trained on (after any validation hold-out)
    n_val: int = 0  # objects in the validation set
    objective: Any = None  # the objective trained (its heads fitted: classes, target mean / std)


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
    def _optimizer(self, model: nn.Module, objective: nn.Module | None = None) -> torch.optim.Optimizer:
        """The optimiser over the model's trainable parameters and the objective's own (a contrastive
        temperature; a group of its own without weight decay, as in CLIP)."""
        c = self.config
        params: Any = [p for p in model.parameters() if p.requires_grad]
        extra = [p for p in objective.parameters() if p.requires_grad] if objective is not None else []
        if extra:
            params = [{"params": params}, {"params": extra, "weight_decay": 0.0}]
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
        inputs: dict[str, Any],
        targets: Any = None,
        val_inputs: dict[str, Any] | None = None,
        val_targets: Any = None,
        augment: nn.Module | None = None,
        objective: nn.Module | None = None,
        *,
        force_augment: Any = None,
        groups: Any = None,
    ) -> TrainResult:
        """Train ``model`` in place and restore its best weights; returns the per-epoch history.

        ``targets``: a tensor / array (one head, today's single-target training: the loss from
        ``loss`` / ``class_weight`` of the config, targets already class codes or scaled values), a dict
        ``{head name: raw values}`` (the heads of ``objective``, or default heads by target type; heads not
        yet fitted are fitted on the training part; NaN / -1 rows are masked per head), or None for an
        objective without targets (contrastive). The objective's own parameters are trained too.

        Without a validation set, a seeded (stratified on the first class head) ``val_fraction`` of the
        training objects is held out; with ``val_fraction=0`` the training loss is monitored instead.
        ``augment`` (a module mapping a batch tensor to an augmented one) is applied in training only, to
        the inputs named in its ``inputs`` attribute, else to the model's first input; the config's
        ``augment`` names apply to every image (4-D) input.

        ``force_augment`` (N,) bool: training objects augmented at least once in every epoch (a drawn
        duplicate of a resample ensemble's member; needs an augmentation that takes a ``force`` mask, see
        :mod:`astromodal.transforms.augment`; validation objects are never augmented). ``groups`` (N,): the
        source row of each object; the held-out ``val_fraction`` is then drawn over whole groups (the copies
        of one row never straddle training and validation), stratified on the group's first class label.
        """
        c = self.config
        if c.num_threads:
            torch.set_num_threads(c.num_threads)
        device = resolve_device(c.device)
        split = self._prepare(model, inputs, targets, val_inputs, val_targets, objective, force_augment, groups)
        run = self._setup(model, split, device, augment, objective)
        self._restore(run)
        with _EpochBar(c.progress, c.max_epochs, run.start_epoch) as bar:
            for epoch in range(run.start_epoch, c.max_epochs):
                if run.result.stopped_early:
                    break
                t0 = time.perf_counter()
                rec = self._train_epoch(run)
                rec = {"epoch": epoch + 1, **rec, **self._validate(run)}
                rec["lr"] = rec.pop("lr")
                rec["seconds"] = round(time.perf_counter() - t0, 4)
                run.result.history.append(rec)
                self._end_epoch(run, rec, epoch)
                bar.update(rec)
        if run.best_state is not None:
            model.load_state_dict(run.best_state)
            if run.best_objective:
                run.objective.load_state_dict(run.best_objective)
        if run.channels_last:
            model.to(memory_format=torch.contiguous_format)
        model.eval()
        return run.result

    # ---- step 1: tensors, targets and the validation split (CPU)
    def _prepare(self, model: nn.Module, inputs: dict[str, Any], targets: Any, val_inputs: dict[str, Any] | None,
                 val_targets: Any, objective: nn.Module | None, force: Any = None, groups: Any = None) -> _Split:
        c = self.config
        keys = self._keys(model, inputs, "training inputs")
        x_tr = self._input_set(inputs, keys)
        if targets is None and objective is None:
            raise ConfigError("training without targets needs an objective (e.g. the contrastive one)")
        y_tr = _targets(targets, objective)
        n = len(next(iter(y_tr.values()))) if y_tr else _n_rows(x_tr)
        for k, rows in _lengths(x_tr).items():
            if rows != n:
                raise BadValueError(f"input {k!r} has {rows} rows but the target has {n}")
        for k, v in y_tr.items():
            if len(v) != n:
                raise BadValueError(f"target {k!r} has {len(v)} rows but the inputs have {n}")
        force = _row_flags(force, n, "force_augment", bool)
        groups = _row_flags(groups, n, "groups", None)
        if (val_inputs is None and val_targets is not None) or (val_inputs is not None and y_tr and val_targets is None):
            raise BadValueError("give both val_inputs and val_targets, or neither")
        if val_inputs is not None:
            vkeys = self._keys(model, val_inputs, "validation inputs")
            y_va = _targets(val_targets, objective) if y_tr else {}
            missing = sorted(set(y_tr) - set(y_va))
            if missing:
                raise BadValueError(f"the validation targets lack {missing}")
            return _Split(x_tr, y_tr, self._input_set(val_inputs, vkeys), y_va, _flags(force))
        if c.val_fraction == 0:
            return _Split(x_tr, y_tr, None, None, _flags(force))
        strata = _strata(y_tr, objective)
        if groups is None:
            tr_idx, va_idx = _validation_split(n, c.val_fraction, strata, c.seed)
        else:  # over whole groups (the copies of one drawn row), then back to rows in their order
            _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
            g_tr, _ = _validation_split(len(first), c.val_fraction, None if strata is None else strata[first], c.seed)
            in_tr = np.isin(inverse, g_tr)
            tr_idx, va_idx = np.flatnonzero(in_tr), np.flatnonzero(~in_tr)
        tr_i, va_i = torch.from_numpy(tr_idx), torch.from_numpy(va_idx)
        pick = _rows_picker(tr_idx, tr_i)
        pick_va = _rows_picker(va_idx, va_i)
        return _Split(_take(x_tr, tr_idx, tr_i), {k: pick(v) for k, v in y_tr.items()},
                      _take(x_tr, va_idx, va_i), {k: pick_va(v) for k, v in y_tr.items()},
                      None if force is None else _flags(force[tr_idx]))

    def _input_set(self, inputs: Any, keys: tuple[str, ...]) -> dict[str, torch.Tensor] | BatchSource:
        """The inputs ``keys``: in-memory tensors (``data: memory``; a batch source is read whole), or a batch
        source (``data: stream``; a dict of arrays is wrapped as one)."""
        if self.config.data == "stream":
            return as_source(inputs).select(keys)
        if isinstance(inputs, BatchSource):
            inputs = inputs.select(keys).read_all()
        return {k: _as_tensor(inputs[k], k) for k in keys}

    # ---- step 2: device, layout, objective and heads, optimiser, augmentation
    def _setup(self, model: nn.Module, split: _Split, device: torch.device, augment: nn.Module | None,
               objective: nn.Module | None) -> _Run:
        c = self.config
        n_tr = _n_rows(split.x_tr)
        bs = c.batch_size
        steps = n_tr // bs if c.drop_last else math.ceil(n_tr / bs)
        if steps == 0:
            raise BadValueError(f"drop_last with batch_size {bs} leaves no batch of the {n_tr} training objects")
        torch.manual_seed(c.seed)  # dropout and other in-model randomness
        gen = torch.Generator().manual_seed(c.seed)
        model.to(device)
        x_tr, x_va = _on_device(split.x_tr, device), _on_device(split.x_va, device)
        shapes = _per_object(x_tr)
        channels_last = c.channels_last and any(len(s) == 3 for s in shapes.values())
        if channels_last:  # once for the whole in-memory set: batches indexed from it keep the layout
            model.to(memory_format=torch.channels_last)
            x_tr = _channels_last(x_tr) if isinstance(x_tr, dict) else x_tr  # a stream: per batch
            x_va = _channels_last(x_va) if isinstance(x_va, dict) else x_va
        model.eval()
        with torch.no_grad():
            probe = model(**_first_rows(x_tr, device, channels_last))
        objective, loss_name = self._objective(objective, probe, split)
        y_tr, y_va = _encode(objective, split.y_tr), _encode(objective, split.y_va)
        for name, head in objective.heads.items():
            head.complete = bool(head.valid(y_tr[name]).all()) and (y_va is None or bool(head.valid(y_va[name]).all()))
        y_tr = {k: v.to(device) for k, v in y_tr.items()}
        y_va = None if y_va is None else {k: v.to(device) for k, v in y_va.items()}
        objective.to(device)
        opt = self._optimizer(model, objective)
        amp_dtype, use_scaler = resolve_precision(c.precision, device)
        augment, aug_keys = self._augmentation(augment, shapes, device)
        swap = _flip_swap_codes(c.augment_flip_swap, objective, augment)
        n_outputs = _widths(probe)
        result = TrainResult(monitor="val_loss" if x_va is not None else "train_loss", loss=loss_name,
                             n_outputs=n_outputs, n_train=n_tr, n_val=0 if x_va is None else _n_rows(x_va),
                             objective=objective)
        fingerprint = {"n_train": n_tr, "shapes": {k: list(v) for k, v in shapes.items()},
                       "n_outputs": n_outputs, "loss": loss_name, "objective": objective.state(), "seed": c.seed,
                       "batch_size": bs, "drop_last": c.drop_last}  # the steps per epoch and the schedule
        if c.data == "stream":  # the order of the batches depends on these
            fingerprint.update(data=c.data, stream_block=c.stream_block, stream_buffer=c.stream_buffer)
        if split.force_tr is not None:  # which rows are forced (a member's drawn duplicates): a new draw differs
            fingerprint["force_augment"] = hashlib.sha256(split.force_tr.numpy().tobytes()).hexdigest()[:16]
        if swap is not None:  # the labels swapped on mirrored images
            fingerprint["augment_flip_swap"] = [swap[0], swap[1].tolist(), swap[2].tolist()]
        return _Run(model, objective, device, amp_dtype, opt, self._scheduler(opt, steps),
                    torch.amp.GradScaler(device.type) if use_scaler else None, gen, x_tr, y_tr, x_va, y_va, steps,
                    augment, aug_keys, channels_last, result, fingerprint,
                    Path(c.checkpoint_dir) if c.checkpoint_dir else None,
                    force=None if split.force_tr is None else split.force_tr.to(device), swap=swap)

    def _objective(self, objective: nn.Module | None, probe: Any, split: _Split) -> tuple[nn.Module, str]:
        """The objective (today's single head from the config when none is given), its heads fitted on
        the training targets and checked against the model's output widths."""
        from astromodal.training.heads import default_head
        from astromodal.training.objectives import Objective

        c = self.config
        y = split.y_tr
        if objective is None and _LEGACY in y:
            head = default_head(_LEGACY, y[_LEGACY], c.loss, c.class_weight, n_outputs=_widths(probe),
                                standardise=False)
            objective = Objective([head])
        elif objective is None:
            loss = c.loss if len(y) == 1 else "auto"
            objective = Objective([default_head(k, v, loss, c.class_weight if _class_like(v) else None)
                                   for k, v in y.items()])
        for name, head in objective.heads.items():
            if name not in y:
                raise BadValueError(f"no target for the head {name!r}; targets given: {sorted(y)}")
            if not head.fitted:
                head.fit_target(y[name])
            _check_width(head, probe, len(objective.heads))
        for name in getattr(objective, "pair", ()):
            if not isinstance(probe, dict) or name not in probe:
                given = sorted(probe) if isinstance(probe, dict) else "one tensor"
                raise BadValueError(f"the objective needs the model output {name!r}; the model returns {given}")
        heads = list(objective.heads.values())
        loss_name = heads[0].losses[0] if len(heads) == 1 else str(getattr(objective, "name", "objective"))
        if len(heads) == 1 and getattr(heads[0], "loss_name", None):
            loss_name = heads[0].loss_name
        return objective, loss_name

    def _augmentation(self, augment: nn.Module | None, shapes: dict[str, tuple[int, ...]],
                      device: torch.device) -> tuple[nn.Module | None, tuple[str, ...]]:
        c = self.config
        if augment is None and c.augment:
            from astromodal.transforms.augment import make_augmentation

            augment = make_augmentation(c.augment, p=c.augment_p, seed=c.seed)
            augment.inputs = tuple(k for k, v in shapes.items() if len(v) == 3)  # every image input
        if augment is None:
            return None, ()
        augment.to(device)
        return augment, tuple(getattr(augment, "inputs", None) or tuple(shapes)[:1])

    # ---- step 3: resume from the last checkpoint
    def _restore(self, run: _Run) -> None:
        ckpt = run.ckpt_dir
        if ckpt is not None and (ckpt / LAST).is_file():
            ck = load_checkpoint(ckpt / LAST)
            if ck.get("fingerprint") != run.fingerprint:
                differ = fingerprint_differences(ck.get("fingerprint"), run.fingerprint)
                raise ConfigError(
                    f"{ckpt / LAST}: the checkpoint was written for other data or another model or setting "
                    f"(differs in: {', '.join(differ)}); remove it or choose another checkpoint_dir"
                )
            run.model.load_state_dict(ck["model"])
            if ck.get("objective"):
                run.objective.load_state_dict(ck["objective"])
            run.opt.load_state_dict(ck["optimizer"])
            if run.sched is not None and ck.get("scheduler") is not None:
                run.sched.load_state_dict(ck["scheduler"])
            if run.scaler is not None and ck.get("scaler") is not None:
                run.scaler.load_state_dict(ck["scaler"])
            run.gen.set_state(ck["generator"])
            torch.set_rng_state(ck["torch_rng"])
            if run.device.type == "cuda" and ck.get("cuda_rng") is not None:
                torch.cuda.set_rng_state_all(ck["cuda_rng"])
            result = run.result
            result.history = list(ck["history"])
            result.best_epoch, result.stopped_early = ck["best_epoch"], bool(ck["stopped_early"])
            run.best = ck["best"] if ck["best"] is not None else math.inf
            run.bad_epochs, run.start_epoch = int(ck["bad_epochs"]), int(ck["epoch"])
            result.resumed_from_epoch = run.start_epoch
            if (ckpt / BEST).is_file():
                best = load_checkpoint(ckpt / BEST)
                run.best_state, run.best_objective = best["model"], best.get("objective")
        run.result.best_val_loss = None if math.isinf(run.best) else run.best

    # ---- step 4: one epoch of training
    def _train_epoch(self, run: _Run) -> dict[str, Any]:
        c = self.config
        model, opt = run.model, run.opt
        model.train()
        total = torch.zeros((), device=run.device)
        sums = _PartSums(run.objective, run.device) if run.per_head else None
        seen, last_lr = 0, c.lr
        for s, (idx, batch, yb) in enumerate(self._train_batches(run)):
            if run.augment is not None:
                batch = self._augment(run, batch, idx, yb)
            with torch.autocast(run.device.type, dtype=run.amp_dtype or torch.float32, enabled=run.amp_dtype is not None):
                out = model(**batch)
            loss, parts = run.objective(out, yb)
            opt.zero_grad(set_to_none=True)
            if run.scaler is not None:
                run.scaler.scale(loss).backward()
                run.scaler.step(opt)
                run.scaler.update()
            else:
                loss.backward()
                opt.step()
            if s == run.steps - 1:
                last_lr = opt.param_groups[0]["lr"]  # the rate used for the epoch's last batch
            if run.sched is not None:
                run.sched.step()
            total += loss.detach() * len(idx)
            seen += len(idx)
            if sums is not None:
                sums.add(out, parts, yb, len(idx), detach=True)
        rec: dict[str, Any] = {"train_loss": float(total / seen)}
        if sums is not None:
            rec.update({f"train_{k}": v for k, v in sums.means().items()})
        rec["lr"] = float(last_lr)
        return rec

    def _train_batches(self, run: _Run) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, Any]]]:
        """(row indices, inputs, targets) of each training batch: index slices of a seeded permutation in
        memory, or a streamed pass over blocks (module text)."""
        c = self.config
        if isinstance(run.x_tr, BatchSource):
            yield from self._stream_batches(run, run.x_tr, run.y_tr, run.gen if c.shuffle else None, c.drop_last)
            return
        n_tr, bs = run.result.n_train, c.batch_size
        perm = torch.randperm(n_tr, generator=run.gen) if c.shuffle else torch.arange(n_tr)
        perm = perm.to(run.device)
        for s in range(run.steps):
            idx = perm[s * bs: (s + 1) * bs]
            yield idx, {k: v[idx] for k, v in run.x_tr.items()}, {k: v[idx] for k, v in run.y_tr.items()}

    def _stream_batches(self, run: _Run, source: BatchSource, y: dict[str, torch.Tensor], gen: torch.Generator | None,
                        drop_last: bool) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, Any]]]:
        c = self.config
        for pos, arrays in iter_batches(source, c.batch_size, c.stream_block, c.stream_buffer, gen, drop_last):
            idx = torch.from_numpy(pos).to(run.device)
            yield idx, _batch_tensors(arrays, run.device, run.channels_last), {k: v[idx] for k, v in y.items()}

    def _val_batches(self, run: _Run) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, Any]]]:
        y = run.y_va or {}
        if isinstance(run.x_va, BatchSource):
            for _, batch, yb in self._stream_batches(run, run.x_va, y, None, False):
                yield batch, yb
            return
        n, bs = _n_rows(run.x_va), self.config.batch_size  # type: ignore[arg-type]
        for s in range(0, n, bs):
            yield {k: v[s: s + bs] for k, v in run.x_va.items()}, {k: v[s: s + bs] for k, v in y.items()}  # type: ignore[union-attr]

    def _augment(self, run: _Run, batch: dict[str, torch.Tensor], idx: torch.Tensor | None = None,
                 yb: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Augment the training batch: the forced rows (``force_augment``) at least once, and with
        ``augment_flip_swap`` the first class head's labels swapped in ``yb`` where an image was mirrored
        an odd number of times (with independent draws per input: as the first input was)."""
        aug, keys = run.augment, run.aug_keys
        kw = {} if run.force is None or idx is None or not getattr(aug, "supports_force", False) else {
            "force": run.force[idx]}
        mirrored = None
        if len(keys) > 1 and self.config.augment_same and hasattr(aug, "forward_many"):
            batch = {**batch, **dict(zip(keys, aug.forward_many([batch[k] for k in keys], **kw), strict=True))}
            mirrored = getattr(aug, "mirrored", None)
        else:
            for i, k in enumerate(keys):
                batch[k] = aug(batch[k], **kw)  # type: ignore[misc]
                if i == 0:  # independent draws per input: the label follows the first input
                    mirrored = getattr(aug, "mirrored", None)
        if run.swap is not None and yb is not None:
            name, a, b = run.swap
            yb[name] = _swap_where(yb[name], mirrored, a, b)
        return batch

    # ---- step 5: validation
    @torch.no_grad()
    def _validate(self, run: _Run) -> dict[str, Any]:
        """val_loss (and per head with several heads), val_accuracy of class heads; None without a set."""
        heads = run.objective.heads
        single_class = len(heads) == 1 and next(iter(heads.values())).task == "classification"
        if run.x_va is None:
            rec: dict[str, Any] = {"val_loss": None}
            if single_class:
                rec["val_accuracy"] = None
            if run.per_head:
                rec.update({f"val_loss_{h}": None for h in heads})
                rec.update({f"val_accuracy_{h}": None for h, hd in heads.items() if hd.task == "classification"})
            return rec
        run.model.eval()
        sums = _PartSums(run.objective, run.device)
        for batch, yb in self._val_batches(run):
            with torch.autocast(run.device.type, dtype=run.amp_dtype or torch.float32, enabled=run.amp_dtype is not None):
                out = run.model(**batch)
            _, parts = run.objective(out, yb)
            sums.add(out, parts, yb, len(batch[next(iter(batch))]))
        means, acc = sums.means(), sums.accuracies()
        rec = {"val_loss": sums.total(means)}
        if single_class:
            rec["val_accuracy"] = next(iter(acc.values()))
        if run.per_head:
            rec.update({f"val_{k}": v for k, v in means.items()})
            rec.update({f"val_accuracy_{h}": v for h, v in acc.items()})
        return rec

    # ---- step 6: best weights, early stopping, checkpoint
    def _end_epoch(self, run: _Run, rec: dict[str, Any], epoch: int) -> None:
        c, result = self.config, run.result
        if temperature := getattr(run.objective, "temperature", None):
            rec["temperature"] = temperature
        watched = rec[result.monitor] if rec[result.monitor] is not None else math.inf
        if watched < run.best:
            run.best, run.bad_epochs = watched, 0
            run.best_state = state_to_cpu(run.model.state_dict())
            run.best_objective = state_to_cpu(run.objective.state_dict())
            result.best_epoch, result.best_val_loss = epoch + 1, watched
            if run.ckpt_dir is not None:
                save_checkpoint(run.ckpt_dir / BEST, {"model": run.best_state, "objective": run.best_objective,
                                                      "epoch": epoch + 1})
        else:
            run.bad_epochs += 1
        if c.patience is not None and run.bad_epochs >= c.patience and epoch + 1 < c.max_epochs:
            result.stopped_early = True
        if run.ckpt_dir is not None:
            self._save(run, epoch)

    def _save(self, run: _Run, epoch: int) -> None:
        save_checkpoint(run.ckpt_dir / LAST, {  # type: ignore[operator]
            "model": run.model.state_dict(),
            "objective": run.objective.state_dict(),
            "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict() if run.sched is not None else None,
            "scaler": run.scaler.state_dict() if run.scaler is not None else None,
            "epoch": epoch + 1,
            "history": run.result.history,
            "best": None if math.isinf(run.best) else run.best,
            "best_epoch": run.result.best_epoch,
            "bad_epochs": run.bad_epochs,
            "stopped_early": run.result.stopped_early,
            "generator": run.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if run.device.type == "cuda" else None,
            "fingerprint": run.fingerprint,
            "config": self.config.model_dump(),
        })

    # ------------------------------------------------------------------ predict
    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: dict[str, Any],
                batch_size: int | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
        """Raw model outputs (logits, or (mean, raw variance)) for ``inputs``: eval mode, no gradients,
        in batches; a float32 CPU tensor of shape (N, n_outputs), or for a model returning a dict a dict
        of such tensors."""
        device = resolve_device(self.config.device)
        keys = self._keys(model, inputs, "inputs")
        bs = batch_size or max(self.config.batch_size, 1024)
        if isinstance(inputs, BatchSource) and len(inputs) == 0:
            inputs = inputs.select(keys).read_all()
        if isinstance(inputs, BatchSource):  # read block by block, in order
            n, c = len(inputs), self.config
            batches: Iterator[dict[str, torch.Tensor]] = (
                _batch_tensors(a, device, False)
                for _, a in iter_batches(inputs.select(keys), bs, c.stream_block, c.stream_buffer))
        else:
            x = {k: _as_tensor(inputs[k], k) for k in keys}
            n = len(x[keys[0]])
            # an empty input still goes through once, for the output width
            batches = ({k: v[s: s + bs].to(device, non_blocking=True) for k, v in x.items()}
                       for s in range(0, max(n, 1), bs))
        model.to(device)
        model.eval()
        outs: list[Any] = []
        for xb in batches:
            out = model(**xb)
            outs.append({k: v.float().cpu() for k, v in out.items()} if isinstance(out, dict) else out.float().cpu())
        if isinstance(outs[0], dict):
            return {k: _columns(torch.cat([o[k] for o in outs]), n) for k in outs[0]}
        return _columns(torch.cat(outs), n)


def _on_device(x: Any, device: torch.device) -> Any:
    """In-memory tensors moved to ``device`` (a batch source, or None, as it is)."""
    return {k: v.to(device) for k, v in x.items()} if isinstance(x, dict) else x


def _batch_tensors(arrays: dict[str, np.ndarray], device: torch.device, channels_last: bool) -> dict[str, torch.Tensor]:
    """One batch read from a source as tensors on ``device`` (checked for NaN / inf, as in memory)."""
    batch = {k: _as_tensor(v, k).to(device, non_blocking=True) for k, v in arrays.items()}
    return _channels_last(batch) if channels_last else batch


def _first_rows(x: dict[str, torch.Tensor] | BatchSource, device: torch.device, channels_last: bool) -> dict[str, Any]:
    """The first two objects, to probe the model's outputs."""
    if isinstance(x, BatchSource):
        return _batch_tensors(x.read(np.arange(min(2, len(x)))), device, channels_last)
    return {k: v[:2] for k, v in x.items()}


def _n_rows(x: dict[str, torch.Tensor] | BatchSource) -> int:
    return len(x) if isinstance(x, BatchSource) else len(next(iter(x.values())))


def _lengths(x: dict[str, torch.Tensor] | BatchSource) -> dict[str, int]:
    return {k: len(x) for k in x.keys} if isinstance(x, BatchSource) else {k: len(v) for k, v in x.items()}


def _take(x: dict[str, torch.Tensor] | BatchSource, idx: np.ndarray, idx_t: torch.Tensor) -> Any:
    return x.take(idx) if isinstance(x, BatchSource) else {k: v[idx_t] for k, v in x.items()}


def _per_object(x: dict[str, torch.Tensor] | BatchSource) -> dict[str, tuple[int, ...]]:
    """The per-object shape of each input."""
    return dict(x.shapes()) if isinstance(x, BatchSource) else {k: tuple(v.shape[1:]) for k, v in x.items()}


def _columns(out: torch.Tensor, n: int) -> torch.Tensor:
    return out.reshape(n, 1) if out.ndim == 1 else out


#: the name of the one head of today's single-target training (a plain tensor target)
_LEGACY = "target"


@dataclass
class _Split:
    """The inputs (tensors) and raw targets of training and validation, before any encoding."""

    x_tr: dict[str, torch.Tensor] | BatchSource
    y_tr: dict[str, Any]
    x_va: dict[str, torch.Tensor] | BatchSource | None
    y_va: dict[str, Any] | None
    force_tr: torch.Tensor | None = None  # (n_train,) bool, the training rows' force_augment flags


def _row_flags(values: Any, n: int, what: str, dtype: Any) -> np.ndarray | None:
    """A per-row array (``force_augment``, ``groups``) of length ``n`` as numpy (None stays None)."""
    if values is None:
        return None
    a = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
    a = a.reshape(-1) if dtype is None else a.reshape(-1).astype(dtype)
    if len(a) != n:
        raise BadValueError(f"{what} has {len(a)} entries but there are {n} training objects")
    return a


def _flags(force: np.ndarray | None) -> torch.Tensor | None:
    return None if force is None else torch.from_numpy(np.ascontiguousarray(force, dtype=bool))


def _flip_swap_codes(pairs: list[list[Any]], objective: Any, augment: Any) -> tuple[str, torch.Tensor, torch.Tensor] | None:
    """``augment_flip_swap`` as (first class head, codes a, codes b): each label matched to the head's
    classes (by value, or by its text: YAML 1 matches a class "1"); one error line for a label the head
    lacks, no class head, or an augmentation that reports no mirroring."""
    if not pairs:
        return None
    head = next((h for h in objective.heads.values() if h.task == "classification"), None)
    if head is None:
        raise ConfigError("augment_flip_swap swaps labels of a class head, and there is none")
    if augment is None or not hasattr(augment, "mirrored"):  # without hflip / vflip: nothing is ever swapped
        raise ConfigError("augment_flip_swap needs a kornia augmentation (trainer 'augment' with hflip or vflip) "
                          "that reports which images it mirrored")
    classes = [str(c) for c in np.asarray(head.classes_).tolist()]
    codes = []
    for label in (x for pair in pairs for x in pair):
        if str(label) not in classes:
            raise ConfigError(f"augment_flip_swap: label {label!r} is not a class of head {head.name!r} "
                              f"(classes {classes})")
        codes.append(classes.index(str(label)))
    return head.name, torch.tensor(codes[0::2]), torch.tensor(codes[1::2])


def _swap_where(y: torch.Tensor, mirrored: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Class codes ``y`` with a <-> b exchanged where ``mirrored`` (codes of other classes, -1, unchanged)."""
    if mirrored is None or not bool(mirrored.any()):
        return y
    out = y.clone()
    a, b = a.to(y.device), b.to(y.device)
    for ai, bi in zip(a, b, strict=True):
        out = torch.where(mirrored & (y == ai), bi, torch.where(mirrored & (y == bi), ai, out))
    return out


@dataclass
class _Run:
    """Everything one fit carries from step to step."""

    model: nn.Module
    objective: Any
    device: torch.device
    amp_dtype: torch.dtype | None
    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    gen: torch.Generator
    x_tr: dict[str, torch.Tensor] | BatchSource
    y_tr: dict[str, torch.Tensor]
    x_va: dict[str, torch.Tensor] | BatchSource | None
    y_va: dict[str, torch.Tensor] | None
    steps: int
    augment: nn.Module | None
    aug_keys: tuple[str, ...]
    channels_last: bool
    result: TrainResult
    fingerprint: dict[str, Any]
    ckpt_dir: Path | None
    force: torch.Tensor | None = None  # (n_train,) bool: rows augmented at least once per epoch
    swap: tuple[str, torch.Tensor, torch.Tensor] | None = None  # flip swap: class head, codes a, codes b
    best: float = math.inf
    bad_epochs: int = 0
    start_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    best_objective: dict[str, torch.Tensor] | None = None

    @property
    def per_head(self) -> bool:
        """History per head: with more than one head."""
        return len(self.objective.heads) > 1


class _PartSums:
    """Running sums of the objective's parts (each over the rows that have its head's target) and of the
    class heads' correct answers, for the epoch means."""

    def __init__(self, objective: Any, device: torch.device):
        self.objective = objective
        self.heads = objective.heads
        self.loss: dict[str, torch.Tensor] = {}
        self.rows: dict[str, Any] = {}
        self.hits: dict[str, torch.Tensor] = {}
        self.valid: dict[str, torch.Tensor] = {}

    def add(self, out: Any, parts: dict[str, torch.Tensor], yb: dict[str, torch.Tensor], n: int,
            detach: bool = False) -> None:
        for key, loss in parts.items():
            head = self.heads.get(key[len("loss_"):])
            rows: Any = n if head is None or head.complete else head.valid(yb[head.name]).sum()
            value = (loss.detach() if detach else loss) * rows
            self.loss[key] = value if key not in self.loss else self.loss[key] + value
            self.rows[key] = rows if key not in self.rows else self.rows[key] + rows
        if detach:  # training: losses only
            return
        for name, head in self.heads.items():
            hit = head.correct(out if isinstance(out, torch.Tensor) else out[name], yb[name])
            if hit is not None:
                self.hits[name] = hit[0] if name not in self.hits else self.hits[name] + hit[0]
                self.valid[name] = hit[1] if name not in self.valid else self.valid[name] + hit[1]

    def means(self) -> dict[str, float | None]:
        return {k: (float(v) / float(self.rows[k]) if float(self.rows[k]) > 0 else None) for k, v in self.loss.items()}

    def accuracies(self) -> dict[str, float | None]:
        return {k: (float(v) / float(self.valid[k]) if float(self.valid[k]) > 0 else None) for k, v in self.hits.items()}

    def total(self, means: dict[str, float | None]) -> float | None:
        """The monitored loss: the weighted sum of the per-head means (the one part of a single head)."""
        if len(means) == 1:
            (key, value), = means.items()
            head = self.heads.get(key[len("loss_"):])
            return value if head is None or head.weight == 1.0 or value is None else head.weight * value
        known = {k: v for k, v in means.items() if v is not None}
        if not known:
            return None
        return sum(self.heads[k[len("loss_"):]].weight * v for k, v in known.items())


def _targets(targets: Any, objective: Any) -> dict[str, Any]:
    """Targets as ``{head: values}``: a dict as given (arrays), a plain tensor / array under the one head's
    name (today's single target, kept as a tensor: float64 becomes float32)."""
    if targets is None:
        return {}
    if isinstance(targets, dict):
        return {str(k): (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
                for k, v in targets.items()}
    y = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
    if torch.is_floating_point(y) and y.dtype != torch.float32:
        y = y.float()
    heads = list(getattr(objective, "heads", None) or {})
    if objective is not None and len(heads) != 1:
        raise BadValueError(f"one target array for an objective with heads {heads}: give a dict {{head: values}}")
    return {heads[0] if heads else _LEGACY: y}


def _class_like(v: Any) -> bool:
    return np.asarray(v).dtype.kind in "biuUSO"


def _strata(y: dict[str, Any], objective: Any) -> np.ndarray | None:
    """Labels to stratify the validation split on: the first class head's (missing = a group of its own)."""
    heads = getattr(objective, "heads", None) or {}
    for name, v in y.items():
        is_class = heads[name].task == "classification" if name in heads else (
            is_class_target(v) if isinstance(v, torch.Tensor) else _class_like(v))
        if not is_class:
            continue
        if isinstance(v, torch.Tensor):
            return v.numpy()
        from astromodal.training.heads import _class_missing

        v = np.asarray(v).reshape(-1)
        missing = _class_missing(v)
        codes = np.full(len(v), -1, dtype=np.int64)
        _, codes[~missing] = np.unique(v[~missing], return_inverse=True)
        codes[missing] = codes.max() + 1 if len(codes) else 0
        return codes
    return None


def _rows_picker(idx: np.ndarray, idx_t: torch.Tensor) -> Any:
    return lambda v: v[idx_t] if isinstance(v, torch.Tensor) else np.asarray(v)[idx]


def _encode(objective: Any, y: dict[str, Any] | None) -> dict[str, torch.Tensor] | None:
    if y is None:
        return None
    return {name: head.encode(y[name]) for name, head in objective.heads.items()}


def _widths(probe: Any) -> int | dict[str, int]:
    def width(t: torch.Tensor) -> int:
        return int(t.shape[1]) if t.ndim > 1 else 1

    return {k: width(v) for k, v in probe.items()} if isinstance(probe, dict) else width(probe)


def _check_width(head: Any, probe: Any, n_heads: int) -> None:
    if isinstance(probe, dict):
        if head.name not in probe:
            raise BadValueError(f"the model returns the outputs {sorted(probe)} but there is no {head.name!r} "
                                "for the head of that name")
        out = probe[head.name]
    elif n_heads > 1:
        raise BadValueError(f"the model returns one tensor but there are {n_heads} heads: return a dict")
    else:
        out = probe
    width = int(out.shape[1]) if out.ndim > 1 else 1
    if width != head.n_outputs and not (head.kind == "point" and width >= 1):
        raise ConfigError(f"head {head.name!r}: the model's output has {width} column(s) but a {head.kind} head "
                          f"needs {head.n_outputs}")


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
