"""Loss functions of the trainer, with the class balancing used in the studies.

* ``bce_logits``: binary cross-entropy on one logit per object (study C: OB star or not), optionally
  with the balanced positive weight ``n_neg / n_pos`` so that the rare class counts as much as the common one;
* ``cross_entropy``: K-class softmax cross-entropy, optionally with balanced class weights
  ``n / (K * n_k)`` (the scikit-learn convention);
* ``gaussian_nll``: for a regression head returning ``(mean, raw variance)`` per object (study B: stellar
  radius with its uncertainty); the raw variance goes through a softplus so that it is positive;
* ``mse``: mean squared error for a plain regression output.

``"auto"`` picks ``bce_logits`` for one output and 0/1 class codes, ``cross_entropy`` for K >= 2
outputs and integer class codes, ``gaussian_nll`` for two outputs and a real-valued target and ``mse``
for one output and a real-valued target. Class targets are integer codes 0..K-1; regression targets
are floating point (that is how the trainer tells the two tasks apart).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from astromodal.errors import BadValueError, ConfigError

LOSSES = ("auto", "cross_entropy", "bce_logits", "gaussian_nll", "mse")

#: added to the softplus of the raw variance so that the variance never reaches zero
VAR_EPS = 1e-6


def gaussian_nll_rows(mean: torch.Tensor, var: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-object Gaussian negative log-likelihood without the constant: ``log(var)/2 + (target-mean)^2/(2 var)``."""
    return 0.5 * torch.log(var) + (target - mean) ** 2 / (2.0 * var)


def gaussian_nll(mean: torch.Tensor, var: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood without the constant: mean of ``log(var)/2 + (target-mean)^2/(2 var)``."""
    return torch.mean(gaussian_nll_rows(mean, var, target))


def gaussian_variance(raw: torch.Tensor) -> torch.Tensor:
    """Predicted variance from the raw second output of a Gaussian head: ``softplus(raw) + 1e-6``."""
    return F.softplus(raw) + VAR_EPS


def masked_mean(rows: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """(Weighted) mean of ``rows`` over the ``valid`` ones; 0 with the graph kept when none is valid.

    ``rows`` must be finite everywhere (fill the missing targets before computing them) so that the
    masked rows give zero, not NaN, gradients."""
    w = valid.to(rows.dtype) if weight is None else weight.to(rows.dtype) * valid
    return (rows * w).sum() / w.sum().clamp(min=torch.finfo(rows.dtype).tiny)


def bce_logits(output: torch.Tensor, target: torch.Tensor, pos_weight: torch.Tensor | None = None,
               valid: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of one logit per object (N, 1) or (N,) against 0/1 labels; ``valid`` (N,) bool
    masks rows out (the mean is over valid rows); without it every row counts (``F``'s own mean)."""
    logit = output.reshape(-1)
    if valid is None:
        return F.binary_cross_entropy_with_logits(logit, target.reshape(-1).to(logit.dtype), pos_weight=pos_weight)
    valid = valid.reshape(-1)
    y = torch.where(valid, target.reshape(-1), torch.zeros_like(target.reshape(-1))).to(logit.dtype)
    rows = F.binary_cross_entropy_with_logits(logit, y, pos_weight=pos_weight, reduction="none")
    return masked_mean(rows, valid)


def cross_entropy(output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  valid: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax cross-entropy of logits (N, K) against class codes, optional class weights (weighted mean,
    PyTorch's convention); ``valid`` masks rows out."""
    if valid is None:
        return F.cross_entropy(output, target.reshape(-1).long(), weight=weight)
    valid = valid.reshape(-1)
    codes = torch.where(valid, target.reshape(-1).long(), torch.zeros_like(target.reshape(-1).long()))
    rows = F.cross_entropy(output, codes, reduction="none")
    return masked_mean(rows, valid, None if weight is None else weight[codes])


def point_loss(output: torch.Tensor, target: torch.Tensor, kind: str = "mse",
               valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared (``mse``) or absolute (``l1``) error; a (N, 1) or (N, 2) output is compared through its
    first column; ``valid`` masks rows out."""
    if output.ndim == 2 and target.ndim == 1:
        output = output[:, 0]
    target = target.to(output.dtype)
    fn = F.mse_loss if kind == "mse" else F.l1_loss
    if valid is None:
        return fn(output, target)
    valid = valid.reshape(target.shape)
    rows = fn(output, torch.where(valid, target, torch.zeros_like(target)), reduction="none")
    return masked_mean(rows.reshape(-1), valid.reshape(-1))


def gaussian_nll_loss(output: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian NLL of a (N, 2) output = (mean, raw variance), variance ``softplus(raw) + 1e-6``; ``valid``
    masks rows out."""
    target = target.reshape(-1).to(output.dtype)
    var = gaussian_variance(output[:, 1])
    if valid is None:
        return gaussian_nll(output[:, 0], var, target)
    valid = valid.reshape(-1)
    rows = gaussian_nll_rows(output[:, 0], var, torch.where(valid, target, torch.zeros_like(target)))
    return masked_mean(rows, valid)


def is_class_target(y: np.ndarray | torch.Tensor) -> bool:
    """True for integer (or boolean) class codes, False for a real-valued regression target."""
    if isinstance(y, torch.Tensor):
        return not (torch.is_floating_point(y) or torch.is_complex(y))
    return np.asarray(y).dtype.kind in "biu"


def _codes(y: np.ndarray | torch.Tensor) -> np.ndarray:
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return y.reshape(-1).astype(np.int64)


def balanced_pos_weight(y: np.ndarray | torch.Tensor) -> float:
    """Positive-class weight of a balanced binary cross-entropy: ``n_neg / n_pos`` for 0/1 labels."""
    codes = _codes(y)
    n_pos = int(np.sum(codes == 1))
    n_neg = int(np.sum(codes == 0))
    if n_pos == 0:
        raise BadValueError("balanced class weight: the training target has no positive (class 1) objects")
    return n_neg / n_pos


def balanced_class_weights(y: np.ndarray | torch.Tensor, n_classes: int | None = None) -> np.ndarray:
    """Balanced weights ``n / (K * n_k)`` for class codes 0..K-1 (every class must be present)."""
    codes = _codes(y)
    k = int(n_classes if n_classes is not None else codes.max() + 1)
    counts = np.bincount(codes, minlength=k)[:k]
    if (counts == 0).any():
        missing = [int(i) for i in np.flatnonzero(counts == 0)]
        raise BadValueError(f"balanced class weights: classes {missing} have no training objects")
    return len(codes) / (k * counts.astype(np.float64))


def resolve_loss(name: str, n_outputs: int, y_train: np.ndarray | torch.Tensor) -> str:
    """The concrete loss name for ``name`` (resolving ``"auto"``), checked against outputs and target."""
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    is_class = is_class_target(y_train)
    if name == "auto":
        if is_class:
            name = "bce_logits" if n_outputs == 1 else "cross_entropy"
        else:
            name = "gaussian_nll" if n_outputs == 2 else "mse"
    if name in ("bce_logits", "cross_entropy") and not is_class:
        raise BadValueError(f"loss {name!r} needs integer class codes as target, got a real-valued target")
    if is_class and len(_codes(y_train)):
        codes = _codes(y_train)
        top = 1 if name == "bce_logits" else n_outputs - 1
        if codes.min() < 0 or codes.max() > top:
            raise BadValueError(
                f"loss {name!r} with {n_outputs} model output(s) needs class codes 0..{top}, "
                f"the target has codes {int(codes.min())}..{int(codes.max())}"
            )
    if name == "bce_logits" and n_outputs != 1:
        raise ConfigError(f"loss 'bce_logits' needs a model with 1 output, this one has {n_outputs}")
    if name == "cross_entropy" and n_outputs < 2:
        raise ConfigError("loss 'cross_entropy' needs a model with at least 2 outputs (one per class)")
    if name == "gaussian_nll" and n_outputs != 2:
        raise ConfigError(f"loss 'gaussian_nll' needs a model with 2 outputs (mean, raw variance), got {n_outputs}")
    return name


class BCELogitsLoss(nn.Module):
    """Binary cross-entropy on the logit (N, 1) or (N,) against 0/1 labels, optional positive weight."""

    def __init__(self, pos_weight: float | None = None):
        super().__init__()
        self.register_buffer("pos_weight", None if pos_weight is None else torch.tensor([pos_weight]))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return bce_logits(output, target, self.pos_weight)


class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy on logits (N, K) against class codes, optional class weights."""

    def __init__(self, weight: np.ndarray | None = None):
        super().__init__()
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(output, target, self.weight)


class MSELoss(nn.Module):
    """Mean squared error; a (N, 1) or (N, 2) output is compared through its first column."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return point_loss(output, target, "mse")


class GaussianNLLLoss(nn.Module):
    """Gaussian NLL of a (N, 2) output = (mean, raw variance); the variance is ``softplus(raw) + 1e-6``."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return gaussian_nll_loss(output, target)


def make_loss(name: str, n_outputs: int, y_train: np.ndarray | torch.Tensor,
              class_weight: str | None = None) -> nn.Module:
    """The loss module for ``name`` (``"auto"`` resolved, see the module text), balanced when asked."""
    resolved = resolve_loss(name, n_outputs, y_train)
    if class_weight not in (None, "balanced"):
        raise ConfigError(f"class_weight must be None or 'balanced', not {class_weight!r}")
    balanced = class_weight == "balanced"
    if balanced and resolved in ("gaussian_nll", "mse"):
        raise ConfigError(f"class_weight='balanced' needs a classification loss, not {resolved!r}")
    if resolved == "bce_logits":
        return BCELogitsLoss(balanced_pos_weight(y_train) if balanced else None)
    if resolved == "cross_entropy":
        return CrossEntropyLoss(balanced_class_weights(y_train, n_outputs) if balanced else None)
    if resolved == "gaussian_nll":
        return GaussianNLLLoss()
    return MSELoss()
