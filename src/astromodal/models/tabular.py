"""A neural network for catalogue columns (magnitudes, colours, parallax, proper motions, ...).

:class:`ColumnsMLP` is a plain multilayer perceptron: for each hidden width ``h`` a Linear layer, ReLU
and dropout, then a Linear layer to ``n_outputs`` logits (or one regression output). Catalogue
quantities come in very different units and ranges (magnitudes near 20, parallaxes near 1 mas, proper
motions of tens of mas/yr), so by default each input column is first standardised with running
statistics learned from the training batches (a batch normalisation without trainable scale or shift:
it adds no trainable parameter). ``input_norm=False`` leaves the columns as given.

Parameter count for F columns, hidden widths h_1 .. h_m and K outputs:
``sum_i (h_{i-1} + 1) h_i + (h_m + 1) K`` with ``h_0 = F``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from astromodal.errors import ConfigError
from astromodal.models.registry import register_model


@register_model(
    "mlp_columns",
    modality="columns",
    study="A",
    tasks=("classification", "regression"),
    description="Multilayer perceptron on catalogue columns (Linear-ReLU-dropout blocks)",
)
class ColumnsMLP(nn.Module):
    """Multilayer perceptron on (N, F) catalogue columns, returning (N, n_outputs) logits."""

    inputs = ("columns",)

    def __init__(
        self,
        input_shape: Sequence[int],
        n_outputs: int = 3,
        hidden: Sequence[int] | int = (128, 64),
        dropout: float = 0.1,
        input_norm: bool = True,
    ):
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 1 or shape[0] < 1:
            raise ConfigError(f"mlp_columns: input_shape must be (n_columns,), got {tuple(input_shape)}")
        widths = (int(hidden),) if isinstance(hidden, int) else tuple(int(h) for h in hidden)
        if any(h < 1 for h in widths):
            raise ConfigError(f"mlp_columns: option 'hidden' must be positive widths, got {list(widths)}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"mlp_columns: option 'dropout' must be in [0, 1), got {dropout}")
        if int(n_outputs) < 1:
            raise ConfigError(f"mlp_columns: n_outputs must be >= 1, got {n_outputs}")
        self.n_features = shape[0]
        self.n_outputs = int(n_outputs)
        self.norm = nn.BatchNorm1d(self.n_features, affine=False) if input_norm else None
        layers: list[nn.Module] = []
        previous = self.n_features
        for width in widths:
            layers += [nn.Linear(previous, width), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(float(dropout)))
            previous = width
        layers.append(nn.Linear(previous, self.n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, columns: torch.Tensor) -> torch.Tensor:
        x = columns.float()
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"mlp_columns expects columns of shape (N, {self.n_features}), got {tuple(x.shape)}")
        if self.norm is not None:
            if self.training and x.shape[0] > 1:
                x = self.norm(x)
            else:  # evaluation, or a training batch of one object: use the running statistics
                x = F.batch_norm(x, self.norm.running_mean, self.norm.running_var, training=False, eps=self.norm.eps)
        return self.net(x)
