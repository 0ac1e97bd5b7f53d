"""Models that read several named inputs: four fusion strategies, a generic fusion network and a
two-encoder contrastive pair.

Every model here takes its input names from the model option ``inputs`` (per instance, so one class serves
any representation: ``options: {inputs: [gri, urz, astrometry]}``) and the per-object shape of every input
from ``input_shapes`` (set by the estimator from the data). Each input gets its own encoder, chosen by
its per-object shape (the *default* encoder, :class:`_Encoder`):

* ``(C, H, W)`` (cutouts): ``len(channels)`` blocks of Conv3x3 (padding 1, no bias) - BatchNorm - ReLU -
  MaxPool 2, then a global average pool -> ``channels[-1]`` features;
* ``(L,)`` with ``L > 64`` or ``(C, L)`` (spectra): the same blocks in 1-D (kernel 5, padding 2) ->
  ``channels[-1]`` features;
* ``(F,)`` with ``F <= 64`` (catalogue columns): Linear(F, hidden) - ReLU -> ``hidden`` features.

Parameter count of one default image encoder with C input bands and widths c_1..c_m:
``E(C) = sum_i (9 c_{i-1} c_i + 2 c_i)`` (convolutions without bias, BatchNorm scale and shift), c_0 = C;
a spectrum encoder has ``5`` in place of ``9`` (kernel 5) and c_0 = 1 for an ``(L,)`` input; a column
encoder ``(F + 1) hidden``. Below, ``f_m`` is the width of input m's features, ``h`` = ``hidden`` and the
heads are ``{head: n_h}`` (``n_outputs`` an int is the single head ``out``).

Fusion strategies (study D: image cutout ``(5, S, S)`` + spectrum ``(L,)``, optionally columns ``(F,)``)
--------------------------------------------------------------------------------------------------------

Each needs at least two inputs (one per modality) and ends in the same block: Linear(width, h) - ReLU -
Dropout, then one Linear(h, n_h) per head; ``n_outputs`` an int gives one ``(N, n)`` tensor, a dict
``{head: n}`` a dict of tensors (e.g. ``{"class": 3, "sfr": 2}`` for a categorical and a Gaussian head).

* ``early_fusion`` (:class:`EarlyFusion`, input level): the inputs are joined *before* one shared network.
  With image inputs (all of one size S_h x S_w; their channels stacked), every other input x_m (flattened
  to F_m values) is mapped by one Linear(F_m, k S_h S_w) to ``k = extra_channels`` extra image channels,
  a learned "spectral image" ``reshape(W_m x_m + b_m, (k, S_h, S_w))``; these are concatenated with the
  image on the channel axis and a shared 2-D conv trunk (the default encoder's blocks over
  ``C + k M'`` channels, M' the number of non-image inputs) reads the result. Without image inputs the
  1-D inputs are stacked as channels when they are all sequences of one length L (``(sum C_m, L)``, read
  by the 1-D conv blocks), and otherwise flattened and concatenated into one vector (conv blocks when it
  is longer than 64, else Linear-ReLU). The choice keeps the "one network over one joined input" of early
  fusion for any mix of inputs; the mapping layer is the only modality-specific part, and it is large for
  long spectra: ``(L + 1) k S^2`` weights (4,620-sample spectra at S = 16: 1.18 M for k = 1).
  Parameters (default trunk, widths c_1..c_m, one image of C bands and M' other inputs)::

      sum_m' (F_m' + 1) k S_h S_w  +  E(C + k M')  +  (c_m + 1) h  +  sum_h (h + 1) n_h

* ``intermediate_fusion`` (:class:`IntermediateFusion`, feature level): one encoder per input, the
  features concatenated, ``z = [e_1(x_1), ..., e_M(x_M)]``, then the shared block. The behaviour of
  ``multi_input_net`` (same layers and parameter count, ``sum_m enc_m + (sum_m f_m + 1) h + sum_h (h+1) n_h``),
  which it is kept as, except that ``intermediate_fusion`` refuses a single input.
* ``late_fusion`` (:class:`LateFusion`, decision level): one full predictor per input (its encoder, its
  own Linear(f_m, h) - ReLU - Dropout and its own heads), combined per head with learned weights
  ``w_{h,m} = softmax_m(a_{h,m})`` (``a`` initialised to 0: equal weights 1/M)::

      out_h = sum_m w_{h,m} out_{h,m}

  The raw outputs are combined as they are: for a Gaussian head ``[mu, raw variance]`` the mean and the
  variance-before-softplus are each the weighted sum (a mixture of the raw numbers, not a mixture of the
  predictive distributions; the heads apply their link afterwards), for a class head the logits.
  :meth:`LateFusion.modality_weights` returns ``{head: {input: w}}`` for a report.
  Parameters: ``sum_m [enc_m + (f_m + 1) h + sum_h (h + 1) n_h] + (number of heads) M``.
* ``cross_attention_fusion`` (:class:`CrossAttentionFusion`): image patch tokens (the default image
  encoder's last feature map before the global pool, ``S / 2^m`` squared positions of ``c_m`` channels)
  and spectrum tokens (the 1-D encoder's feature sequence, ``L / 2^m`` positions), each projected by a
  Linear(c_m, d) to ``d = d_model`` plus a learned positional embedding (one ``(T, d)`` table per input,
  initialised N(0, 0.02^2)). Two ``nn.MultiheadAttention`` (batch_first, ``n_heads``, dropout) run in
  parallel on the projected tokens I and S::

      I' = LayerNorm(I + MHA_I(query=I, key=S, value=S))     S' = LayerNorm(S + MHA_S(query=S, key=I, value=I))

  then ``[mean_t I', mean_t S']`` (plus the features of any column input, which attend to nothing) goes to
  the shared block. Several image inputs have their tokens concatenated on the image side, several
  sequences on the spectrum side. It needs at least one image ``(C, H, W)`` and one sequence input
  (``(L,)`` with L > 64, or ``(C, L)``).

Interchangeable encoders
------------------------

The option ``encoders: {input: "default" | <registered model name>}`` (with optional
``encoder_options: {input: {option: value}}``) of ``intermediate_fusion``, ``late_fusion``,
``cross_attention_fusion`` and ``multi_input_net`` replaces an input's default encoder by any registered
single-input neural network whose modality fits the input's shape (``(C, H, W)``: an image model such as
``simple_cnn1``, ``resnet18``, ``scnet`` (3 bands only); ``(L,)``: a spectrum model such as ``cnn1d``,
``starnet``, ``deep_ann`` or the columns model ``mlp_columns``; ``(C, L)``: the default encoder only, as
every registered 1-D network reads ``(L,)``). It is built
through the registry with ``input_shape`` = that input's per-object shape and ``n_outputs = hidden``, and
its output (the network's last linear layer, no activation added) is that input's ``hidden`` features:
any classifier becomes an encoder. Models reading a second input (``context``) cannot encode one input
and are refused. In ``cross_attention_fusion`` a registered encoder gives a feature *vector*, not a
sequence: it becomes a single token of its side (projected to d, with its own positional vector), so
the other side's queries attend to one key with weight 1 (the attention then adds a learned projection
of that vector to every token); the default encoders keep the full token sequences.
``early_fusion`` has no per-input encoders (the inputs are joined first): its shared network is chosen
by ``trunk: "default" | <registered model>`` (+ ``trunk_options``), built on the joined shape
(``(C + k M', S, S)`` with images: any registered image model).

In a config::

    models:
      - name: late_fusion
        options: {inputs: [image, spectrum], encoders: {spectrum: cnn1d}}
      - name: early_fusion
        options: {inputs: [image, spectrum], extra_channels: 2, trunk: simple_cnn1}
      - name: cross_attention_fusion
        options: {inputs: [image, spectrum], d_model: 32, n_heads: 4}

Other models
------------

:class:`MultiInputNet` (``multi_input_net``, study B) is the intermediate fusion above and also takes a
single input. :class:`ContrastivePair` (``contrastive_pair``) encodes exactly two inputs, each projected
by a Linear layer to ``embed_dim``; ``forward`` returns ``{input_a: z_a, input_b: z_b}`` for a contrastive
objective (symmetric InfoNCE, :mod:`astromodal.training.objectives`), and the embeddings are what
``transform`` reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from astromodal.errors import AstromodalError, ConfigError
from astromodal.models.registry import MODELS, get_model, list_models, register_model

#: a 1-D input longer than this is a spectrum (convolutional encoder); shorter ones are catalogue columns
SPECTRUM_MIN_LENGTH = 64

#: the encoder option value meaning "the default encoder of this input's shape"
DEFAULT_ENCODER = "default"


def _blocks(dim: int, c_in: int, channels: Sequence[int]) -> nn.Sequential:
    conv, norm, pool = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if dim == 2 else (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d)
    k = 3 if dim == 2 else 5
    layers: list[nn.Module] = []
    for c in channels:
        layers += [conv(c_in, c, k, padding=k // 2, bias=False), norm(c), nn.ReLU(inplace=True), pool(2)]
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1) if dim == 2 else nn.AdaptiveAvgPool1d(1), nn.Flatten()]
    return nn.Sequential(*layers)


def _kind(name: str, shape: Sequence[int]) -> str:
    """``"image"`` for (C, H, W), ``"sequence"`` for (C, L) or (L,) with L > 64, ``"columns"`` for (F,)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3:
        return "image"
    if len(shape) == 2 or (len(shape) == 1 and shape[0] > SPECTRUM_MIN_LENGTH):
        return "sequence"
    if len(shape) == 1:
        return "columns"
    raise ConfigError(f"input {name!r}: per-object shape {list(shape)} is none of (F,), (L,), (C, L), (C, H, W)")


class _Encoder(nn.Module):
    """One input's default encoder (see the module text); ``n_features`` is its output width."""

    def __init__(self, name: str, shape: Sequence[int], channels: Sequence[int], hidden: int):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        self.unsqueeze = len(shape) == 1 and shape[0] > SPECTRUM_MIN_LENGTH
        self.kind = _kind(name, shape)
        if len(shape) == 3:
            self.net: nn.Module = _blocks(2, shape[0], channels)
            self.n_features = int(channels[-1])
        elif len(shape) == 2 or self.unsqueeze:
            self.net = _blocks(1, 1 if self.unsqueeze else shape[0], channels)
            self.n_features = int(channels[-1])
        else:
            self.net = nn.Sequential(nn.Linear(shape[0], hidden), nn.ReLU(inplace=True))
            self.n_features = int(hidden)
        # token positions of the last feature map (each block halves every side, rounding down)
        side = shape[1:] if len(shape) == 3 else shape[-1:]
        self.n_tokens = math.prod(s // 2 ** len(channels) for s in side) if self.kind != "columns" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.unsqueeze(1) if self.unsqueeze else x)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map before the global pool as tokens ``(N, T, channels[-1])`` (one token of
        ``hidden`` features for a column input)."""
        if self.kind == "columns":
            return self.net(x).unsqueeze(1)
        maps = self.net[:-2](x.unsqueeze(1) if self.unsqueeze else x)  # every block, no pool / flatten
        return maps.flatten(2).transpose(1, 2)


def _fitting_modalities(shape: Sequence[int]) -> tuple[str, ...]:
    """Registry modalities of the networks that can read an input of this per-object shape (none for (C, L):
    every registered 1-D network reads (L,))."""
    return {3: ("image",), 1: ("spectrum", "columns")}.get(len(tuple(shape)), ())


def _encoder_models(shape: Sequence[int]) -> list[str]:
    """Registered single-input neural models that fit ``shape`` (the valid ``encoders`` values besides default)."""
    fits = _fitting_modalities(shape)
    return [s.name for s in list_models(family="neural")
            if s.modality in fits and len(tuple(getattr(s.factory, "inputs", ("x",)))) == 1]


class _RegisteredEncoder(nn.Module):
    """A registered network built with ``input_shape = shape`` and ``n_outputs = hidden``; its output is the
    input's ``hidden`` features (``forward(x)`` calls it with ``x`` under the input name it reads)."""

    def __init__(self, model: str, option: str, input_name: str, model_name: str, shape: Sequence[int],
                 hidden: int, options: Mapping[str, Any] | None):
        super().__init__()
        from astromodal.training.estimator import check_model_options

        shape = tuple(int(s) for s in shape)
        where = f"{model}: option {option!r} for input {input_name!r}"
        valid = ", ".join([DEFAULT_ENCODER, *_encoder_models(shape)])
        if model_name not in MODELS:
            raise ConfigError(f"{where}: unknown model {model_name!r}; valid: {valid}")
        spec = get_model(model_name)
        if spec.family != "neural" or spec.modality not in _fitting_modalities(shape):
            what = "is a classical model" if spec.family != "neural" else f"has modality {spec.modality!r}"
            raise ConfigError(f"{where}: {model_name!r} {what}, which does not fit per-object shape "
                              f"{list(shape)}; valid: {valid}")
        reads = tuple(getattr(spec.factory, "inputs", ("x",)))
        if len(reads) != 1:
            raise ConfigError(f"{where}: {model_name!r} reads {len(reads)} inputs {list(reads)}, an encoder "
                              f"reads one; valid: {valid}")
        options = dict(options or {})
        check_model_options(model_name, options, where=f"{where} ({model_name!r} options)")
        try:
            self.net = spec.build(input_shape=shape, n_outputs=int(hidden), **options)
        except AstromodalError as exc:
            raise ConfigError(f"{where}: {model_name!r} cannot encode per-object shape {list(shape)}: {exc}") from None
        self.key = str(tuple(getattr(self.net, "inputs", reads))[0])
        self.model_name = model_name
        self.kind = _kind(input_name, shape)
        self.n_features = int(hidden)
        self.n_tokens = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(**{self.key: x})


def _encoder_choice(model: str, inputs: Sequence[str], encoders: Any, encoder_options: Any
                    ) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """The checked options ``encoders`` and ``encoder_options`` as ``({input: name}, {input: options})``."""
    if encoders is None:
        encoders = {}
    if not isinstance(encoders, Mapping):
        raise ConfigError(f"{model}: option 'encoders' must be a mapping {{input: 'default' | model name}}, "
                          f"got {encoders!r}")
    extra = [k for k in encoders if k not in inputs]
    if extra:
        raise ConfigError(f"{model}: option 'encoders' names input(s) {extra} not in 'inputs' {list(inputs)}")
    bad = {k: v for k, v in encoders.items() if not isinstance(v, str)}
    if bad:
        raise ConfigError(f"{model}: option 'encoders' values must be model names or 'default', got {bad}")
    choice = {str(k): str(v) for k, v in encoders.items()}
    options = {} if encoder_options is None else encoder_options
    if not isinstance(options, Mapping) or not all(isinstance(v, Mapping) for v in options.values()):
        raise ConfigError(f"{model}: option 'encoder_options' must be a mapping {{input: {{option: value}}}}, "
                          f"got {encoder_options!r}")
    stray = [k for k in options if choice.get(str(k), DEFAULT_ENCODER) == DEFAULT_ENCODER]
    if stray:
        raise ConfigError(f"{model}: option 'encoder_options' given for input(s) {stray} without a registered "
                          "encoder in option 'encoders' (the default encoder takes 'channels' and 'hidden')")
    return choice, {str(k): dict(v) for k, v in options.items()}


def _make_encoders(model: str, inputs: Sequence[str], input_shapes: Mapping[str, Any], widths: Sequence[int],
                   hidden: int, encoders: Any = None, encoder_options: Any = None) -> nn.ModuleDict:
    """One encoder per input: the default one, or the registered network named in ``encoders``."""
    choice, options = _encoder_choice(model, inputs, encoders, encoder_options)
    out: dict[str, nn.Module] = {}
    for k in inputs:
        name = choice.get(k, DEFAULT_ENCODER)
        out[k] = (_Encoder(k, input_shapes[k], widths, hidden) if name == DEFAULT_ENCODER
                  else _RegisteredEncoder(model, "encoders", k, name, input_shapes[k], hidden, options.get(k)))
    return nn.ModuleDict(out)


def _check(model: str, inputs: Any, input_shapes: Mapping[str, Any] | None, channels: Any, hidden: int,
           n_inputs: int | None = None, min_inputs: int = 1) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if not inputs or isinstance(inputs, str):
        raise ConfigError(f"{model}: option 'inputs' (a list of the input names to read) is required")
    inputs = tuple(str(i) for i in inputs)
    if n_inputs is not None and len(inputs) != n_inputs:
        raise ConfigError(f"{model}: option 'inputs' must name exactly {n_inputs} inputs, got {list(inputs)}")
    if len(inputs) < min_inputs:
        count = {2: "two"}.get(min_inputs, str(min_inputs))
        raise ConfigError(f"{model}: option 'inputs' needs at least {count} inputs (one per modality), "
                          f"got {list(inputs)}")
    missing = [i for i in inputs if i not in (input_shapes or {})]
    if missing:
        raise ConfigError(f"{model}: no shape for input(s) {missing} (given: {sorted(input_shapes or {})})")
    widths = (int(channels),) if isinstance(channels, int) else tuple(int(c) for c in channels)
    if not widths or any(c < 1 for c in widths) or int(hidden) < 1:
        raise ConfigError(f"{model}: options 'channels' and 'hidden' must be positive, got {channels!r}, {hidden!r}")
    return inputs, widths


def _check_dropout(model: str, dropout: float) -> float:
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"{model}: option 'dropout' must be in [0, 1), got {dropout}")
    return float(dropout)


def _head_sizes(model: str, n_outputs: int | Mapping[str, int]) -> tuple[bool, dict[str, int]]:
    """``(single, {head: n})``: an int is the single head ``out``."""
    single = not isinstance(n_outputs, Mapping)
    sizes = {"out": int(n_outputs)} if single else {str(k): int(v) for k, v in n_outputs.items()}
    if not sizes or any(v < 1 for v in sizes.values()):
        raise ConfigError(f"{model}: every head needs at least one output, got {sizes}")
    return single, sizes


def _block(width: int, hidden: int, dropout: float) -> nn.Sequential:
    """The shared block before the heads: Linear(width, hidden) - ReLU - Dropout."""
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))


class _Heads(nn.Module):
    """One Linear(hidden, n_h) per head; ``forward`` gives a tensor (int n_outputs) or ``{head: tensor}``."""

    def __init__(self, model: str, hidden: int, n_outputs: int | Mapping[str, int]):
        super().__init__()
        self.single, sizes = _head_sizes(model, n_outputs)
        self.heads = nn.ModuleDict({k: nn.Linear(hidden, v) for k, v in sizes.items()})

    def forward(self, h: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.single:
            return self.heads["out"](h)
        return {k: head(h) for k, head in self.heads.items()}


@register_model(
    "multi_input_net",
    modality="multimodal",
    tasks=("classification", "regression"),
    study="B",
    description="Fusion of named inputs (cutouts, spectra, columns): one encoder each, concatenated, one layer per head",
)
class MultiInputNet(nn.Module):
    """Intermediate fusion of any named inputs with one output layer per head (see the module text)."""

    model_name = "multi_input_net"
    min_inputs = 1

    def __init__(
        self,
        input_shape: Sequence[int] | None = None,
        n_outputs: int | Mapping[str, int] = 1,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        inputs: Sequence[str] | None = None,
        channels: Sequence[int] | int = (16, 32),
        hidden: int = 64,
        dropout: float = 0.1,
        encoders: Mapping[str, str] | None = None,
        encoder_options: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        super().__init__()
        name = self.model_name
        self.inputs, widths = _check(name, inputs, input_shapes, channels, hidden, min_inputs=self.min_inputs)
        dropout = _check_dropout(name, dropout)
        self.encoders = _make_encoders(name, self.inputs, input_shapes, widths, int(hidden), encoders, encoder_options)
        width = sum(e.n_features for e in self.encoders.values())
        self.trunk = _block(width, int(hidden), dropout)
        self.single, sizes = _head_sizes(name, n_outputs)
        self.heads = nn.ModuleDict({k: nn.Linear(int(hidden), v) for k, v in sizes.items()})

    def forward(self, **x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        h = self.trunk(torch.cat([self.encoders[k](x[k]) for k in self.inputs], dim=1))
        if self.single:
            return self.heads["out"](h)
        return {k: head(h) for k, head in self.heads.items()}


@register_model(
    "intermediate_fusion",
    modality="multimodal",
    tasks=("classification", "regression"),
    study="D",
    description="Intermediate (feature-level) fusion: one encoder per input (default or registered), "
                "features concatenated, shared layer, one layer per head",
)
class IntermediateFusion(MultiInputNet):
    """Feature-level fusion: ``multi_input_net`` with at least two inputs (see the module text)."""

    model_name = "intermediate_fusion"
    min_inputs = 2


@register_model(
    "early_fusion",
    modality="multimodal",
    tasks=("classification", "regression"),
    study="D",
    description="Early (input-level) fusion: spectrum/columns mapped to extra image channels (or 1-D inputs "
                "joined), one shared network, one layer per head",
)
class EarlyFusion(nn.Module):
    """Input-level fusion: the inputs are joined, then one shared network (see the module text)."""

    model_name = "early_fusion"

    def __init__(
        self,
        input_shape: Sequence[int] | None = None,
        n_outputs: int | Mapping[str, int] = 1,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        inputs: Sequence[str] | None = None,
        channels: Sequence[int] | int = (16, 32),
        hidden: int = 64,
        dropout: float = 0.1,
        extra_channels: int = 1,
        trunk: str = DEFAULT_ENCODER,
        trunk_options: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        name = self.model_name
        self.inputs, widths = _check(name, inputs, input_shapes, channels, hidden, min_inputs=2)
        dropout = _check_dropout(name, dropout)
        if int(extra_channels) < 1:
            raise ConfigError(f"{name}: option 'extra_channels' must be a positive number, got {extra_channels!r}")
        self.extra = int(extra_channels)
        shapes = {k: tuple(int(s) for s in input_shapes[k]) for k in self.inputs}
        kinds = {k: _kind(k, shapes[k]) for k in self.inputs}
        self.images = tuple(k for k in self.inputs if kinds[k] == "image")
        self.others = tuple(k for k in self.inputs if kinds[k] != "image")
        self.stack = False
        if self.images:
            sizes = {k: shapes[k][1:] for k in self.images}
            if len(set(sizes.values())) > 1:
                raise ConfigError(f"{name}: the image inputs must have one size to be stacked on the channel axis, "
                                  f"got {({k: list(v) for k, v in sizes.items()})}")
            self.size = next(iter(sizes.values()))
            area = self.size[0] * self.size[1]
            self.maps = nn.ModuleDict({k: nn.Linear(math.prod(shapes[k]), self.extra * area) for k in self.others})
            joined: tuple[int, ...] = (sum(shapes[k][0] for k in self.images) + self.extra * len(self.others), *self.size)
        else:
            self.maps = nn.ModuleDict()
            lengths = {shapes[k][-1] for k in self.inputs}
            self.stack = all(kinds[k] == "sequence" for k in self.inputs) and len(lengths) == 1
            if self.stack:  # sequences of one length: channels of one (sum C, L) sequence
                joined = (sum(shapes[k][0] if len(shapes[k]) == 2 else 1 for k in self.inputs), lengths.pop())
            else:  # anything else: one flattened vector
                joined = (sum(math.prod(shapes[k]) for k in self.inputs),)
        self.joined_shape = joined
        if trunk == DEFAULT_ENCODER:
            if trunk_options:
                raise ConfigError(f"{name}: option 'trunk_options' needs a registered model in option 'trunk' "
                                  "(the default trunk takes 'channels' and 'hidden')")
            self.trunk: nn.Module = _Encoder("joined", joined, widths, int(hidden))
        elif isinstance(trunk, str):
            self.trunk = _RegisteredEncoder(name, "trunk", "joined", trunk, joined, int(hidden), trunk_options)
        else:
            raise ConfigError(f"{name}: option 'trunk' must be 'default' or a registered model name, got {trunk!r}")
        self.block = _block(self.trunk.n_features, int(hidden), dropout)
        self.heads = _Heads(name, int(hidden), n_outputs)

    def join(self, **x: torch.Tensor) -> torch.Tensor:
        """The joined input the shared network reads (``joined_shape`` per object)."""
        if self.images:
            n = x[self.images[0]].shape[0]
            parts = [x[k] for k in self.images]
            parts += [self.maps[k](x[k].flatten(1)).view(n, self.extra, *self.size) for k in self.others]
            return torch.cat(parts, dim=1)
        if self.stack:
            return torch.cat([x[k].unsqueeze(1) if x[k].dim() == 2 else x[k] for k in self.inputs], dim=1)
        return torch.cat([x[k].flatten(1) for k in self.inputs], dim=1)

    def forward(self, **x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        return self.heads(self.block(self.trunk(self.join(**x))))


@register_model(
    "late_fusion",
    modality="multimodal",
    tasks=("classification", "regression"),
    study="D",
    description="Late (decision-level) fusion: one predictor per input, outputs combined per head with "
                "learned softmax weights",
)
class LateFusion(nn.Module):
    """Decision-level fusion: ``out_h = sum_m softmax_m(a_h)_m out_{h,m}`` (see the module text)."""

    model_name = "late_fusion"

    def __init__(
        self,
        input_shape: Sequence[int] | None = None,
        n_outputs: int | Mapping[str, int] = 1,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        inputs: Sequence[str] | None = None,
        channels: Sequence[int] | int = (16, 32),
        hidden: int = 64,
        dropout: float = 0.1,
        encoders: Mapping[str, str] | None = None,
        encoder_options: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        super().__init__()
        name = self.model_name
        self.inputs, widths = _check(name, inputs, input_shapes, channels, hidden, min_inputs=2)
        dropout = _check_dropout(name, dropout)
        self.encoders = _make_encoders(name, self.inputs, input_shapes, widths, int(hidden), encoders, encoder_options)
        self.blocks = nn.ModuleDict({k: _block(e.n_features, int(hidden), dropout) for k, e in self.encoders.items()})
        self.predictors = nn.ModuleDict({k: _Heads(name, int(hidden), n_outputs) for k in self.inputs})
        self.single, sizes = _head_sizes(name, n_outputs)
        #: per head, one logit per input (softmax over the inputs gives the weights; 0 = equal weights)
        self.weight_logits = nn.ParameterDict({h: nn.Parameter(torch.zeros(len(self.inputs))) for h in sizes})

    def weights(self, head: str) -> torch.Tensor:
        """The softmax weights of ``head`` over the inputs (in ``inputs`` order)."""
        return torch.softmax(self.weight_logits[head], dim=0)

    def modality_weights(self) -> dict[str, dict[str, float]]:
        """``{head: {input: weight}}`` (each head's weights sum to 1; the single head of an int
        ``n_outputs`` is ``out``)."""
        with torch.no_grad():
            return {h: dict(zip(self.inputs, self.weights(h).tolist(), strict=True)) for h in self.weight_logits}

    def per_input(self, **x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """Each input's own raw outputs ``{input: {head: tensor}}`` before the weighting."""
        out = {}
        for k in self.inputs:
            o = self.predictors[k](self.blocks[k](self.encoders[k](x[k])))
            out[k] = {"out": o} if self.single else o
        return out

    def forward(self, **x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        outs = self.per_input(**x)
        fused = {h: sum(w * outs[k][h] for k, w in zip(self.inputs, self.weights(h), strict=True))
                 for h in self.weight_logits}
        return fused["out"] if self.single else fused


@register_model(
    "cross_attention_fusion",
    modality="multimodal",
    tasks=("classification", "regression"),
    study="D",
    description="Cross-attention fusion: image patch tokens and spectrum tokens attend to each other, "
                "mean-pooled, shared layer, one layer per head",
)
class CrossAttentionFusion(nn.Module):
    """Image tokens attend to spectrum tokens and back, both pooled and joined (see the module text)."""

    model_name = "cross_attention_fusion"

    def __init__(
        self,
        input_shape: Sequence[int] | None = None,
        n_outputs: int | Mapping[str, int] = 1,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        inputs: Sequence[str] | None = None,
        channels: Sequence[int] | int = (16, 32),
        hidden: int = 64,
        dropout: float = 0.1,
        d_model: int = 32,
        n_heads: int = 4,
        encoders: Mapping[str, str] | None = None,
        encoder_options: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        super().__init__()
        name = self.model_name
        self.inputs, widths = _check(name, inputs, input_shapes, channels, hidden, min_inputs=2)
        dropout = _check_dropout(name, dropout)
        d, heads = int(d_model), int(n_heads)
        if d < 1 or heads < 1 or d % heads:
            raise ConfigError(f"{name}: options 'd_model' and 'n_heads' must be positive with d_model divisible "
                              f"by n_heads, got d_model={d_model!r}, n_heads={n_heads!r}")
        kinds = {k: _kind(k, input_shapes[k]) for k in self.inputs}
        self.image_side = tuple(k for k in self.inputs if kinds[k] == "image")
        self.sequence_side = tuple(k for k in self.inputs if kinds[k] == "sequence")
        self.columns = tuple(k for k in self.inputs if kinds[k] == "columns")
        if not self.image_side or not self.sequence_side:
            given = ", ".join(f"{k}: {list(input_shapes[k])}" for k in self.inputs)
            raise ConfigError(f"{name}: option 'inputs' needs an image input (C, H, W) and a sequence input "
                              f"((L,) with L > {SPECTRUM_MIN_LENGTH}, or (C, L)) to attend between; got {given}")
        self.encoders = _make_encoders(name, self.inputs, input_shapes, widths, int(hidden), encoders, encoder_options)
        tokenised = self.image_side + self.sequence_side
        for k in tokenised:
            if self.encoders[k].n_tokens < 1:
                raise ConfigError(f"{name}: input {k!r} of per-object shape {list(input_shapes[k])} leaves no "
                                  f"token after {len(widths)} pooling blocks (option 'channels' {list(widths)})")
        #: tokens per input (1 for a registered encoder: its feature vector is one token)
        self.n_tokens = {k: int(self.encoders[k].n_tokens) for k in tokenised}
        self.projections = nn.ModuleDict({k: nn.Linear(self.encoders[k].n_features, d) for k in tokenised})
        self.positions = nn.ParameterDict({k: nn.Parameter(torch.empty(1, self.n_tokens[k], d)) for k in tokenised})
        for p in self.positions.values():
            nn.init.normal_(p, std=0.02)
        self.image_attention = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.sequence_attention = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.image_norm, self.sequence_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        width = 2 * d + sum(self.encoders[k].n_features for k in self.columns)
        self.block = _block(width, int(hidden), dropout)
        self.heads = _Heads(name, int(hidden), n_outputs)

    def _tokens(self, keys: Sequence[str], x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        for k in keys:
            enc = self.encoders[k]
            t = enc.tokens(x[k]) if isinstance(enc, _Encoder) else enc(x[k]).unsqueeze(1)
            parts.append(self.projections[k](t) + self.positions[k])
        return torch.cat(parts, dim=1)

    def branches(self, **x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean-pooled image-token and sequence-token outputs after cross-attention, each ``(N, d_model)``."""
        img, seq = self._tokens(self.image_side, x), self._tokens(self.sequence_side, x)
        img_out = self.image_norm(img + self.image_attention(img, seq, seq, need_weights=False)[0])
        seq_out = self.sequence_norm(seq + self.sequence_attention(seq, img, img, need_weights=False)[0])
        return img_out.mean(dim=1), seq_out.mean(dim=1)

    def forward(self, **x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        img, seq = self.branches(**x)
        z = torch.cat([img, seq, *(self.encoders[k](x[k]) for k in self.columns)], dim=1)
        return self.heads(self.block(z))


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

