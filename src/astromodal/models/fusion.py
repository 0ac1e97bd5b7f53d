"""Models that read several named inputs: a generic fusion network and a two-encoder contrastive pair.

Both take their input names from the model option ``inputs`` (per instance, so one class serves any
representation: ``options: {inputs: [gri, urz, astrometry]}``) and the per-object shape of every input
from ``input_shapes`` (set by the estimator from the data). Each input gets its own encoder, chosen by
its per-object shape:

* ``(C, H, W)`` (cutouts): ``len(channels)`` blocks of Conv3x3 (padding 1, no bias) - BatchNorm - ReLU -
  MaxPool 2, then a global average pool -> ``channels[-1]`` features;
* ``(L,)`` with ``L > 64`` or ``(C, L)`` (spectra): the same blocks in 1-D (kernel 5, padding 2) ->
  ``channels[-1]`` features;
* ``(F,)`` with ``F <= 64`` (catalogue columns): Linear(F, hidden) - ReLU -> ``hidden`` features.

:class:`MultiInputNet` (``multi_input_net``) concatenates the encoder features (intermediate fusion),
passes them through Linear(sum, hidden) - ReLU - Dropout, and ends in one Linear layer per head:
``n_outputs`` an int gives one (N, n_outputs) tensor, a dict ``{head: n}`` gives a dict of tensors (one per
head, e.g. ``{"class": 3, "radius": 2}`` for a categorical and a Gaussian head).

:class:`ContrastivePair` (``contrastive_pair``) encodes exactly two inputs, each projected by a Linear
layer to ``embed_dim``; ``forward`` returns ``{input_a: z_a, input_b: z_b}`` for a contrastive objective
(symmetric InfoNCE, :mod:`astromodal.training.objectives`), and the embeddings are what ``transform`` reads.

Parameter count of one image encoder with C input bands and widths c_1..c_m:
``sum_i (9 c_{i-1} c_i + 2 c_i)`` (convolutions without bias, BatchNorm scale and shift), c_0 = C.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from astromodal.errors import ConfigError
from astromodal.models.registry import register_model

#: a 1-D input longer than this is a spectrum (convolutional encoder); shorter ones are catalogue columns
SPECTRUM_MIN_LENGTH = 64


def _blocks(dim: int, c_in: int, channels: Sequence[int]) -> nn.Sequential:
    conv, norm, pool = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if dim == 2 else (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d)
    k = 3 if dim == 2 else 5
    layers: list[nn.Module] = []
    for c in channels:
        layers += [conv(c_in, c, k, padding=k // 2, bias=False), norm(c), nn.ReLU(inplace=True), pool(2)]
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1) if dim == 2 else nn.AdaptiveAvgPool1d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class _Encoder(nn.Module):
    """One input's encoder (see the module text); ``n_features`` is its output width."""

    def __init__(self, name: str, shape: Sequence[int], channels: Sequence[int], hidden: int):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        self.unsqueeze = len(shape) == 1 and shape[0] > SPECTRUM_MIN_LENGTH
        if len(shape) == 3:
            self.net: nn.Module = _blocks(2, shape[0], channels)
            self.n_features = int(channels[-1])
        elif len(shape) == 2 or self.unsqueeze:
            self.net = _blocks(1, 1 if self.unsqueeze else shape[0], channels)
            self.n_features = int(channels[-1])
        elif len(shape) == 1:
            self.net = nn.Sequential(nn.Linear(shape[0], hidden), nn.ReLU(inplace=True))
            self.n_features = int(hidden)
        else:
            raise ConfigError(f"input {name!r}: per-object shape {list(shape)} is none of (F,), (L,), (C, L), (C, H, W)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.unsqueeze(1) if self.unsqueeze else x)


def _check(model: str, inputs: Any, input_shapes: Mapping[str, Any] | None, channels: Any, hidden: int,
           n_inputs: int | None = None) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if not inputs or isinstance(inputs, str):
        raise ConfigError(f"{model}: option 'inputs' (a list of the input names to read) is required")
    inputs = tuple(str(i) for i in inputs)
    if n_inputs is not None and len(inputs) != n_inputs:
        raise ConfigError(f"{model}: option 'inputs' must name exactly {n_inputs} inputs, got {list(inputs)}")
    missing = [i for i in inputs if i not in (input_shapes or {})]
    if missing:
        raise ConfigError(f"{model}: no shape for input(s) {missing} (given: {sorted(input_shapes or {})})")
    widths = (int(channels),) if isinstance(channels, int) else tuple(int(c) for c in channels)
    if not widths or any(c < 1 for c in widths) or int(hidden) < 1:
        raise ConfigError(f"{model}: options 'channels' and 'hidden' must be positive, got {channels!r}, {hidden!r}")
    return inputs, widths


@register_model(
    "multi_input_net",
    modality="multimodal",
    tasks=("classification", "regression"),
    study="B",
    description="Fusion of named inputs (cutouts, spectra, columns): one encoder each, concatenated, one layer per head",
)
class MultiInputNet(nn.Module):
    """Intermediate fusion of any named inputs with one output layer per head (see the module text)."""

    def __init__(
        self,
        input_shape: Sequence[int] | None = None,
        n_outputs: int | Mapping[str, int] = 1,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        inputs: Sequence[str] | None = None,
        channels: Sequence[int] | int = (16, 32),
        hidden: int = 64,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.inputs, widths = _check("multi_input_net", inputs, input_shapes, channels, hidden)
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"multi_input_net: option 'dropout' must be in [0, 1), got {dropout}")
        self.encoders = nn.ModuleDict({k: _Encoder(k, input_shapes[k], widths, int(hidden)) for k in self.inputs})
        width = sum(e.n_features for e in self.encoders.values())
        self.trunk = nn.Sequential(nn.Linear(width, int(hidden)), nn.ReLU(inplace=True), nn.Dropout(float(dropout)))
        self.single = not isinstance(n_outputs, Mapping)
        sizes = {"out": int(n_outputs)} if self.single else {str(k): int(v) for k, v in n_outputs.items()}
        if any(v < 1 for v in sizes.values()):
            raise ConfigError(f"multi_input_net: every head needs at least one output, got {sizes}")
        self.heads = nn.ModuleDict({k: nn.Linear(int(hidden), v) for k, v in sizes.items()})

    def forward(self, **x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        h = self.trunk(torch.cat([self.encoders[k](x[k]) for k in self.inputs], dim=1))
        if self.single:
            return self.heads["out"](h)
        return {k: head(h) for k, head in self.heads.items()}


@register_model(
    "contrastive_pair",
    modality="multimodal",
    tasks=("embedding",),
    study="D",
    description="Two encoders (e.g. image and spectrum) projected to one embedding space, for contrastive training",
)
class ContrastivePair(nn.Module):
    """Two inputs, each encoded and projected to ``embed_dim``; returns ``{a: z_a, b: z_b}``."""

    def __init__(
        self,
        input_shape: Sequence[int] | None = None,
        n_outputs: Any = None,  # unused: the outputs are embeddings
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        inputs: Sequence[str] | None = None,
        channels: Sequence[int] | int = (16, 32),
        hidden: int = 64,
        embed_dim: int = 32,
    ):
        super().__init__()
        self.inputs, widths = _check("contrastive_pair", inputs, input_shapes, channels, hidden, n_inputs=2)
        if int(embed_dim) < 1:
            raise ConfigError(f"contrastive_pair: option 'embed_dim' must be positive, got {embed_dim}")
        self.encoders = nn.ModuleDict({k: _Encoder(k, input_shapes[k], widths, int(hidden)) for k in self.inputs})
        self.projections = nn.ModuleDict({k: nn.Linear(e.n_features, int(embed_dim)) for k, e in self.encoders.items()})

    def forward(self, **x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: self.projections[k](self.encoders[k](x[k])) for k in self.inputs}
