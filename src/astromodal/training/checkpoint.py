"""Checkpoints written atomically and read without unpickling code.

A checkpoint is a plain dictionary of tensors, numbers, strings, lists and dicts, written with
``torch.save`` to a temporary file in the same folder and renamed into place, so that a crash in the
middle of writing leaves the previous checkpoint intact. It is read back with
``torch.load(..., weights_only=True)``, which refuses anything but those plain types (no code runs).

The trainer writes ``last.pt`` (model, optimiser, scheduler, epoch, history, random-number states)
after every epoch and ``best.pt`` (model weights only) whenever the monitored loss improves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from astromodal.atomic import atomic_path
from astromodal.errors import DataFormatError

LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no code is unpickled)."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise DataFormatError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # truncated or foreign file
        raise DataFormatError(f"{path}: not a readable astromodal checkpoint ({exc})") from None


def state_to_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a model ``state_dict`` (for keeping the best weights)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def fingerprint_differences(saved: Any, current: dict[str, Any]) -> list[str]:
    """The keys of a run fingerprint whose saved and current values differ (for the refusal message)."""
    if not isinstance(saved, dict):
        return ["no fingerprint in the checkpoint"]
    return sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
