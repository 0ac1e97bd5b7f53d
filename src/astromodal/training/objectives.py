"""Training objectives: what the trainer minimises, from the model outputs and the encoded targets.

An objective is an ``nn.Module`` (its own parameters, e.g. a learnable temperature, are trained with
the model's) called as ``total, parts = objective(outputs, targets)``; ``parts`` are the named
components shown in the history (``loss_class``, ``loss_radius``, ``loss_contrastive``).

* ``supervised`` (:class:`Objective`): owns the heads (:mod:`astromodal.training.heads`) and their
  weights; ``total = sum_h weight_h * loss_h``, each head's loss a mean over the rows that have its
  target (NaN / -1 rows contribute nothing);
* ``contrastive`` (:class:`ContrastiveObjective`): symmetric InfoNCE between two embedding outputs
  (CLIP, Radford et al. 2021): both L2-normalised, logits ``exp(s) * a @ b.T`` with a learnable
  log-scale ``s`` initialised to ``log(1 / 0.07)`` and clamped to at most ``log(100)``, cross-entropy
  of each row against its own pair in both directions, averaged; targets are ignored.

Adding one is one decorated class, ``@register_objective("name")``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from astromodal.errors import BadValueError, ConfigError
from astromodal.registry import Registry
from astromodal.training.heads import Head

__all__ = ["OBJECTIVES", "ContrastiveObjective", "Objective", "make_objective", "register_objective"]

OBJECTIVES: Registry[type[nn.Module]] = Registry("objective")


def register_objective(name: str) -> Any:
    """Class decorator: register an objective class under ``name``."""

    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        cls.name = name  # type: ignore[attr-defined]
        return OBJECTIVES.add(name, cls)

    return decorator


def make_objective(name: str, **options: Any) -> nn.Module:
    """The registered objective ``name`` built with ``options``."""
    try:
        return OBJECTIVES.get(name)(**options)
    except TypeError as exc:
        raise ConfigError(f"objective {name!r}: {exc}") from None


def _output(outputs: torch.Tensor | Mapping[str, torch.Tensor], name: str, n_heads: int) -> torch.Tensor:
    if isinstance(outputs, torch.Tensor):
        if n_heads != 1:
            raise BadValueError(f"the model returned one tensor but the objective has {n_heads} heads: "
                                "return a dict {head name: tensor}")
        return outputs
    try:
        return outputs[name]
    except KeyError:
        raise BadValueError(f"the model returned the outputs {sorted(outputs)} but there is no {name!r}") from None


@register_objective("supervised")
class Objective(nn.Module):
    """Supervised heads: ``total = sum_h weight_h * loss_h``, ``parts = {"loss_<head>": loss_h}``."""

    name = "supervised"

    def __init__(self, heads: Mapping[str, Head] | Sequence[Head], weights: Mapping[str, float] | None = None):
        super().__init__()
        items = list(heads.values()) if isinstance(heads, Mapping) else list(heads)
        if not items:
            raise ConfigError("a supervised objective needs at least one head")
        self.heads: dict[str, Head] = {h.name: h for h in items}
        if len(self.heads) != len(items):
            raise ConfigError(f"two heads share a name: {[h.name for h in items]}")
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(self.heads))
        if unknown:
            raise ConfigError(f"loss weights for unknown heads {unknown}; heads: {list(self.heads)}")
        for name, w in weights.items():
            self.heads[name].weight = float(w)

    @property
    def weights(self) -> dict[str, float]:
        return {n: h.weight for n, h in self.heads.items()}

    def forward(self, outputs: torch.Tensor | Mapping[str, torch.Tensor],
                targets: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total: torch.Tensor | None = None
        parts: dict[str, torch.Tensor] = {}
        for name, head in self.heads.items():
            if name not in targets:
                raise BadValueError(f"no target for the head {name!r}; targets given: {sorted(targets)}")
            loss = head.loss(_output(outputs, name, len(self.heads)).float(), targets[name])
            parts[f"loss_{name}"] = loss
            term = loss if head.weight == 1.0 else head.weight * loss
            total = term if total is None else total + term
        assert total is not None
        return total, parts

    def state(self) -> dict[str, Any]:
        """JSON-ready: the objective's name and every head's state (classes, target mean / std, weight)."""
        return {"objective": self.name, "heads": {n: h.state() for n, h in self.heads.items()}}


@register_objective("contrastive")
class ContrastiveObjective(nn.Module):
    """Symmetric InfoNCE between the embeddings ``outputs[pair[0]]`` and ``outputs[pair[1]]`` (see the module)."""

    name = "contrastive"

    def __init__(self, pair: Sequence[str] = ("a", "b"), temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        if isinstance(pair, str) or len(pair) != 2:
            raise ConfigError(f"contrastive objective: pair must name two model outputs, not {pair!r}")
        if not (temperature > 0 and 1.0 / temperature <= max_scale):
            raise ConfigError(f"contrastive objective: temperature must be > 0 and 1/temperature <= {max_scale}")
        self.pair = (str(pair[0]), str(pair[1]))
        self.max_log_scale = math.log(max_scale)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.heads: dict[str, Head] = {}

    @property
    def temperature(self) -> float:
        """The current temperature ``1 / exp(clamped log-scale)``."""
        return float(torch.exp(-self.logit_scale.detach().clamp(max=self.max_log_scale)))

    def forward(self, outputs: Mapping[str, torch.Tensor],
                targets: Any = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if isinstance(outputs, torch.Tensor):
            raise BadValueError(f"a contrastive objective needs a dict of two embeddings {list(self.pair)}")
        a = F.normalize(_output(outputs, self.pair[0], 2).float(), dim=1)
        b = F.normalize(_output(outputs, self.pair[1], 2).float(), dim=1)
        logits = self.logit_scale.clamp(max=self.max_log_scale).exp() * (a @ b.T)
        labels = torch.arange(len(a), device=a.device)
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        return loss, {"loss_contrastive": loss}

    def state(self) -> dict[str, Any]:
        return {"objective": self.name, "pair": list(self.pair), "max_log_scale": self.max_log_scale}
