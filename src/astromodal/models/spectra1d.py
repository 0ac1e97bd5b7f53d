"""The ten neural networks of study C: massive stars from Gaia DR3 XP sampled spectra.

Every model reads one spectrum per star as a flat vector of flux samples (the 343 XP_SAMPLED
points, 336-1020 nm, L2-normalised per star) and returns one logit per output (massive / low-mass
star with ``n_outputs=1``). Five of them also read a "context" vector: the raw ``[max, min]`` of the
flux before normalisation, which carries the brightness scale the normalisation removed.

The architectures follow the study layer by layer; with ``input_shape=(343,)`` and one output their
trainable parameter counts are exactly the published ones (:data:`PUBLISHED_PARAMETER_COUNTS`).
Flatten sizes are computed from ``input_shape``, so the same models run on spectra of any length
long enough for their pooling. Unless a docstring says otherwise convolutions are kernel 3,
padding 1 (length kept), pools are max-pools of 2 (length halved, rounded down) and LReLU is
LeakyReLU with slope 0.01. No model uses dropout: a forward pass is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from astromodal.errors import BadValueError
from astromodal.models.registry import register_model

__all__ = [
    "PUBLISHED_PARAMETER_COUNTS",
    "CNN1D",
    "CNN2DXP",
    "CNNAttention",
    "CNNGRU",
    "CNNLSTM",
    "DeepANN",
    "WideANN",
    "FCN1D",
    "StarNet",
    "StellarNet",
    "ConvStack1d",
    "ContextBranch",
    "ScaledSelfAttention1d",
]

#: Trainable parameters of each study-C model for a 343-sample spectrum and one output, as published.
PUBLISHED_PARAMETER_COUNTS: dict[str, int] = {
    "cnn1d": 175_841,
    "cnn2d_xp": 70_593,
    "cnn_attention": 710_522,
    "cnn_gru": 93_473,
    "cnn_lstm": 128_673,
    "deep_ann": 354_320,
    "wide_ann": 1_036,
    "fcn1d": 5_658_881,
    "starnet": 181_793,
    "stellarnet": 1_515_057,
}

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


def _register(name: str):
    return register_model(name, modality="spectrum", study="C", tasks=("classification", "regression"))


# --------------------------------------------------------------------------------------------------
# Shared building blocks
# --------------------------------------------------------------------------------------------------


class ConvStack1d(nn.Sequential):
    """Kernel-3 convolutions over the wavelength axis, each followed by an activation and optionally
    a max-pool of 2.

    ``channels=(1, 16, 32)`` gives two convolutions 1->16 and 16->32; ``pool`` says after which of them
    a pool follows (default: after every one); ``padding=1`` keeps the length, ``padding=0`` shortens
    it by 2 per convolution.
    """

    def __init__(
        self,
        channels: Sequence[int],
        activation: str = "leaky_relu",
        pool: Sequence[bool] | None = None,
        padding: int = 1,
    ) -> None:
        n = len(channels) - 1
        pool = tuple(pool) if pool is not None else (True,) * n
        if len(pool) != n:
            raise ValueError(f"pool needs one flag per convolution ({n}), got {len(pool)}")
        layers: list[nn.Module] = []
        for c_in, c_out, pooled in zip(channels[:-1], channels[1:], pool, strict=True):
            layers += [nn.Conv1d(c_in, c_out, kernel_size=3, padding=padding), _ACTIVATIONS[activation]()]
            if pooled:
                layers.append(nn.MaxPool1d(2))
        super().__init__(*layers)
        self.out_channels = int(channels[-1])
        self._padding = padding
        self._pool = pool

    def output_length(self, length: int) -> int:
        """Number of samples left after the stack from ``length`` input samples (may be <= 0)."""
        for pooled in self._pool:
            length = length + 2 * self._padding - 2
            if pooled:
                length //= 2
        return length


def mlp(sizes: Sequence[int], activation: str = "leaky_relu", last_activation: bool = True) -> nn.Sequential:
    """Fully connected layers ``sizes[0] -> sizes[1] -> ...``, each followed by the activation
    (except the last one when ``last_activation`` is False)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class ContextBranch(nn.Sequential):
    """The small network reading the context ``[max, min]`` of the raw flux:
    Linear 2->hidden, LReLU, [LayerNorm(hidden)], Linear hidden->out, LReLU."""

    def __init__(self, hidden: int = 64, out: int = 32, layer_norm: bool = False) -> None:
        layers: list[nn.Module] = [nn.Linear(2, hidden), nn.LeakyReLU()]
        if layer_norm:
            layers.append(nn.LayerNorm(hidden))
        layers += [nn.Linear(hidden, out), nn.LeakyReLU()]
        super().__init__(*layers)
        self.out_features = out


class ScaledSelfAttention1d(nn.Module):
    """Residual self-attention along the wavelength axis: ``x + scale * MHA(LayerNorm(x))``.

    ``x`` is (N, C, L); each of the L samples is a token of C features. ``scale`` is a learnt scalar
    initialised to 0, so the block starts as the identity and lets training switch attention on.
    """

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.attention = nn.MultiheadAttention(channels, num_heads=heads, batch_first=True)
        self.scale = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.norm(x.transpose(1, 2))  # (N, L, C)
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return x + self.scale * attended.transpose(1, 2)


class _SpectrumModel(nn.Module):
    """Common checks: ``input_shape`` is ``(L,)``, spectra are (N, L), context is (N, 2)."""

    inputs: tuple[str, ...] = ("spectrum",)

    def __init__(self, input_shape: Sequence[int], n_outputs: int = 1) -> None:
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 1 or shape[0] < 1:
            raise BadValueError(
                f"{type(self).__name__}: input_shape must be (n_samples,) for a 1D spectrum, got {tuple(input_shape)}"
            )
        if int(n_outputs) < 1:
            raise BadValueError(f"{type(self).__name__}: n_outputs must be >= 1, got {n_outputs}")
        self.input_shape = shape
        self.n_samples = shape[0]
        self.n_outputs = int(n_outputs)

    def _flat_size(self, stack: ConvStack1d) -> int:
        length = stack.output_length(self.n_samples)
        if length < 1:
            raise BadValueError(
                f"{type(self).__name__}: a spectrum of {self.n_samples} samples is too short for its "
                "convolutions and pooling (nothing left to flatten)"
            )
        return stack.out_channels * length

    def _check_spectrum(self, spectrum: torch.Tensor) -> torch.Tensor:
        if spectrum.dim() != 2 or spectrum.shape[1] != self.n_samples:
            raise BadValueError(
                f"{type(self).__name__}: 'spectrum' must be (N, {self.n_samples}), got {tuple(spectrum.shape)}"
            )
        return spectrum

    def _check_context(self, spectrum: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        if context is None:
            raise BadValueError(
                f"{type(self).__name__} needs the 'context' input (the raw [max, min] of each flux), got none"
            )
        if context.dim() != 2 or context.shape != (spectrum.shape[0], 2):
            raise BadValueError(
                f"{type(self).__name__}: 'context' must be (N, 2) = raw [max, min] of the flux with "
                f"N={spectrum.shape[0]}, got {tuple(context.shape)}"
            )
        return context.to(spectrum.dtype)


# --------------------------------------------------------------------------------------------------
# The ten models
# --------------------------------------------------------------------------------------------------


@_register("cnn1d")
class CNN1D(_SpectrumModel):
    """CNN: a two-layer 1D convolutional network on the spectrum (175,841 parameters for 343 samples).

    Conv1d 1->16, LReLU, MaxPool2; Conv1d 16->32, LReLU, MaxPool2; flatten (32 x 85 = 2,720 for 343
    samples); Linear 2720->64, LReLU; Linear 64->n_outputs.
    """

    def __init__(self, input_shape: Sequence[int], n_outputs: int = 1) -> None:
        super().__init__(input_shape, n_outputs)
        self.features = ConvStack1d((1, 16, 32))
        self.head = nn.Sequential(mlp((self._flat_size(self.features), 64)), nn.Linear(64, self.n_outputs))

    def forward(self, spectrum: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.features(self._check_spectrum(spectrum).unsqueeze(1))
        return self.head(x.flatten(1))


@_register("cnn2d_xp")
class CNN2DXP(_SpectrumModel):
    """2D-CNN: the spectrum folded into a square image (70,593 parameters for 343 samples).

    The spectrum is zero-padded at the red end to the next square number of samples (343 -> 361) and
    read row by row as a 19 x 19 image. Conv2d 1->16 (3x3, padding 1), ReLU, MaxPool 2x2; Conv2d 16->32,
    ReLU, MaxPool 2x2 (19 -> 9 -> 4); flatten (32 x 4 x 4 = 512); Linear 512->128, ReLU;
    Linear 128->n_outputs.
    """

    def __init__(self, input_shape: Sequence[int], n_outputs: int = 1) -> None:
        super().__init__(input_shape, n_outputs)
        self.side = math.isqrt(self.n_samples - 1) + 1  # smallest side with side**2 >= n_samples
        reduced = self.side // 2 // 2
        if reduced < 1:
            raise BadValueError(
                f"CNN2DXP: a spectrum of {self.n_samples} samples gives a {self.side}x{self.side} image, "
                "too small for two 2x2 poolings (need at least 10 samples)"
            )
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(mlp((32 * reduced * reduced, 128), "relu"), nn.Linear(128, self.n_outputs))

    def to_image(self, spectrum: torch.Tensor) -> torch.Tensor:
        """(N, L) spectra -> (N, 1, side, side) images, zero-padded at the end, filled row by row."""
        padded = F.pad(spectrum, (0, self.side * self.side - self.n_samples))
        return padded.reshape(-1, 1, self.side, self.side)

    def forward(self, spectrum: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.features(self.to_image(self._check_spectrum(spectrum)))
        return self.head(x.flatten(1))


@_register("cnn_attention")
class CNNAttention(_SpectrumModel):
    """CNN with attention: convolutions with a residual self-attention block, plus the context
    (710,522 parameters for 343 samples).

    Spectrum: Conv1d 1->4; ``x + scale * MultiheadAttention(LayerNorm(x))`` over the wavelength
    samples (embedding 4, 2 heads, ``scale`` a learnt scalar initialised to 0); LReLU; Conv1d 4->16,
    LReLU, MaxPool2; Conv1d 16->64, LReLU, MaxPool2; flatten (64 x 85 = 5,440); Linear 5440->128, LReLU;
    Linear 128->64, LReLU. Context: Linear 2->64, LReLU, Linear 64->32, LReLU. Concatenate (96);
    Linear 96->n_outputs.

    Differences from the public code (bananya-ml/research ``models/cnnattention.py``), none of which
    changes the parameter count: there the attention module is not ``batch_first`` and is fed
    (N, L, C) tensors, so it attends across the stars of a batch rather than along the spectrum; and
    the output passes through a final LeakyReLU, which distorts logits. Here attention runs along the
    wavelength axis and the output is a plain linear logit, as the study describes.
    """

    inputs = ("spectrum", "context")

    def __init__(self, input_shape: Sequence[int], n_outputs: int = 1) -> None:
        super().__init__(input_shape, n_outputs)
        self.stem = nn.Conv1d(1, 4, kernel_size=3, padding=1)
        self.attention = ScaledSelfAttention1d(4, heads=2)
        self.features = ConvStack1d((4, 16, 64))
        self.spectrum_head = mlp((self._flat_size(self.features), 128, 64))
        self.context_branch = ContextBranch(64, 32)
        self.output = nn.Linear(64 + 32, self.n_outputs)

    def forward(self, spectrum: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = self._check_context(self._check_spectrum(spectrum), context)
        x = F.leaky_relu(self.attention(self.stem(spectrum.unsqueeze(1))))
        x = self.spectrum_head(self.features(x).flatten(1))
        return self.output(torch.cat((x, self.context_branch(context)), dim=1))


class _CNNRecurrent(_SpectrumModel):
    """Convolutions 1->32->64 (each with a pool), then a recurrent layer reading the pooled samples
    in wavelength order; its last hidden state joins the context branch."""

    inputs = ("spectrum", "context")
    _recurrent: type[nn.Module]
    _activation: str
    _fused: int

    def __init__(self, input_shape: Sequence[int], n_outputs: int = 1) -> None:
        super().__init__(input_shape, n_outputs)
        self.features = ConvStack1d((1, 32, 64), self._activation)
        self._flat_size(self.features)  # checks the spectrum survives the pooling
        self.recurrent = self._recurrent(64, 128, batch_first=True)
        self.context_branch = ContextBranch(64, 32)
        self.head = nn.Sequential(mlp((128 + 32, self._fused)), nn.Linear(self._fused, self.n_outputs))

    def forward(self, spectrum: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = self._check_context(self._check_spectrum(spectrum), context)
        x = self.features(spectrum.unsqueeze(1)).transpose(1, 2)  # (N, L/4, 64): a sequence
        _, hidden = self.recurrent(x)
        if isinstance(hidden, tuple):  # LSTM: (h, c)
            hidden = hidden[0]
        return self.head(torch.cat((hidden[-1], self.context_branch(context)), dim=1))


@_register("cnn_gru")
class CNNGRU(_CNNRecurrent):
    """CNN-GRU: convolutions then a GRU along the spectrum, plus the context (93,473 parameters for 343).

    Spectrum: Conv1d 1->32, LReLU, MaxPool2; Conv1d 32->64, LReLU, MaxPool2; GRU(64->128) over the 85
    pooled samples, last hidden state (128). Context: Linear 2->64, LReLU, Linear 64->32, LReLU.
    Concatenate (160); Linear 160->64, LReLU; Linear 64->n_outputs.
    """

    _recurrent = nn.GRU
    _activation = "leaky_relu"
    _fused = 64


@_register("cnn_lstm")
class CNNLSTM(_CNNRecurrent):
    """CNN-LSTM: convolutions then an LSTM along the spectrum, plus the context (128,673 parameters
    for 343 samples).

    Spectrum: Conv1d 1->32, ReLU, MaxPool2; Conv1d 32->64, ReLU, MaxPool2; LSTM(64->128), last hidden
    state (128). Context: Linear 2->64, LReLU, Linear 64->32, LReLU. Concatenate (160);
    Linear 160->128, LReLU; Linear 128->n_outputs.
    """

    _recurrent = nn.LSTM
    _activation = "relu"
    _fused = 128


@_register("deep_ann")
class DeepANN(_SpectrumModel):
    """Deep ANN: a deep fully connected network on the flux samples (354,320 parameters for 343).

    ``depth`` (default 3) times Linear L->L with ReLU, then Linear L->n_outputs.
    """

    def __init__(self, input_shape: Sequence[int], n_outputs: int = 1, depth: int = 3) -> None:
        super().__init__(input_shape, n_outputs)
        if int(depth) < 1:
            raise BadValueError(f"DeepANN: depth must be >= 1, got {depth}")
        self.net = nn.Sequential(
            mlp((self.n_samples,) * (int(depth) + 1), "relu"), nn.Linear(self.n_samples, self.n_outputs)
        )

    def forward(self, spectrum: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self._check_spectrum(spectrum))


@_register("wide_ann")
class WideANN(_SpectrumModel):
    """Wide ANN: one hidden layer on the flux samples (1,036 parameters for 343 samples).

    Linear L->width (default 3), ReLU, Linear width->n_outputs.
    """

    def __init__(self, input_shape: Sequence[int], n_outputs: int = 1, width: int = 3) -> None:
        super().__init__(input_shape, n_outputs)
        if int(width) < 1:
            raise BadValueError(f"WideANN: width must be >= 1, got {width}")
        self.net = nn.Sequential(
            mlp((self.n_samples, int(width)), "relu"), nn.Linear(int(width), self.n_outputs)
        )

    def forward(self, spectrum: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self._check_spectrum(spectrum))


@_register("fcn1d")
class FCN1D(_SpectrumModel):
    """FCN: four convolutions without pooling, every sample kept, plus the context
    (5,658,881 parameters for 343 samples).

    Spectrum: Conv1d 1->16->32->64->128, each followed by LReLU, no pooling; flatten (128 x 343 =
    43,904). Context: Linear 2->64, LReLU, Linear 64->32, LReLU. Concatenate (43,936);
    Linear 43936->128, LReLU; Linear 128->n_outputs.
    """

    inputs = ("spectrum", "context")

    def __init__(self, input_shape: Sequence[int], n_outputs: int = 1) -> None:
        super().__init__(input_shape, n_outputs)
        self.features = ConvStack1d((1, 16, 32, 64, 128), pool=(False,) * 4)
        self.context_branch = ContextBranch(64, 32)
        fused = self._flat_size(self.features) + self.context_branch.out_features
        self.head = nn.Sequential(mlp((fused, 128)), nn.Linear(128, self.n_outputs))

    def forward(self, spectrum: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = self._check_context(self._check_spectrum(spectrum), context)
        x = self.features(spectrum.unsqueeze(1)).flatten(1)
        return self.head(torch.cat((x, self.context_branch(context)), dim=1))


@_register("starnet")
class StarNet(_SpectrumModel):
    """StarNet (after Fabbro et al. 2018): two unpadded convolutions and three dense layers
    (181,793 parameters for 343 samples).

    Conv1d 1->4 (kernel 3, no padding), ReLU; Conv1d 4->16 (kernel 3, no padding), ReLU, MaxPool2
    (343 -> 341 -> 339 -> 169); flatten (16 x 169 = 2,704); Linear 2704->64, ReLU; Linear 64->128, ReLU;
    Linear 128->n_outputs.
    """

    def __init__(self, input_shape: Sequence[int], n_outputs: int = 1) -> None:
        super().__init__(input_shape, n_outputs)
        self.features = ConvStack1d((1, 4, 16), "relu", pool=(False, True), padding=0)
        self.head = nn.Sequential(
            mlp((self._flat_size(self.features), 64, 128), "relu"), nn.Linear(128, self.n_outputs)
        )

    def forward(self, spectrum: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.features(self._check_spectrum(spectrum).unsqueeze(1))
        return self.head(x.flatten(1))


@_register("stellarnet")
class StellarNet(_SpectrumModel):
    """StellarNet: a three-layer CNN for stellar spectra with a layer-normalised context branch
    (1,515,057 parameters for 343 samples).

    Spectrum: Conv1d 1->64, LReLU, MaxPool2; Conv1d 64->128, LReLU, MaxPool2; Conv1d 128->256, LReLU,
    MaxPool2 (343 -> 171 -> 85 -> 42); flatten (256 x 42 = 10,752); Linear 10752->128, LReLU;
    Linear 128->64, LReLU. Context: Linear 2->16, LReLU, LayerNorm(16), Linear 16->32, LReLU.
    Concatenate (96); Linear 96->64, LReLU; Linear 64->n_outputs.
    """

    inputs = ("spectrum", "context")

    def __init__(self, input_shape: Sequence[int], n_outputs: int = 1) -> None:
        super().__init__(input_shape, n_outputs)
        self.features = ConvStack1d((1, 64, 128, 256))
        self.spectrum_head = mlp((self._flat_size(self.features), 128, 64))
        self.context_branch = ContextBranch(16, 32, layer_norm=True)
        self.head = nn.Sequential(mlp((64 + 32, 64)), nn.Linear(64, self.n_outputs))

    def forward(self, spectrum: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = self._check_context(self._check_spectrum(spectrum), context)
        x = self.spectrum_head(self.features(spectrum.unsqueeze(1)).flatten(1))
        return self.head(torch.cat((x, self.context_branch(context)), dim=1))
