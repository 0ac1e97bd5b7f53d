"""SCNet and Multi-Modal SCNet (MMSCNet) of study B (MESCR; seed 002, public code yuu250/MESCR).

Two registered models share one trunk and one head block:

* ``mmscnet`` (:class:`MMSCNet`, the paper's Figure 2): two RGB cutouts (``branches: [gri, urz]``, the
  input names of the Lupton composites) and one catalogue input (``numeric_input: astrometry``, exactly
  the two columns parallax, proper motion in that order);
* ``scnet`` (:class:`SCNet`): the single-branch network over one RGB image (input ``image``, or the
  option ``inputs: [name]``).

Layers (``BC`` = :func:`~astromodal.models.images2d.conv_bn_act`: Conv 3 x 3, padding 1, no bias, then
BatchNorm and ReLU; every channel count below is multiplied by ``width``, rounded, at least 1)::

    branch (one per RGB input):  BC(3->64, s2), CBAM(64), BC(64), BC(64), BC(64->128, s2), BC(128), BC(128)
    concatenate the branches:    256 channels (128 for scnet's single branch)
    shared stage:                CBAM(256), BC(256) x3, BC(256->512, s2), BC(512) x2, BC(512->1024, s2),
                                 BC(1024), CBAM(1024), BC(1024); flatten
    image projection:            Linear(flat, 1024) ReLU, Linear(1024, 512) ReLU     (``projection``)
    numeric branch:              Linear(2, 64) ReLU, Linear(64, 32) ReLU             (``numeric``)
    fusion:                      concatenate (512 + 32), Linear(544, 256) ReLU, Dropout(0.2)  (``fusion``)
    heads:                       one Linear(256, n) per head of ``n_outputs``

CBAM (Woo et al. 2018) on C channels: channel attention ``sigmoid(MLP(avgpool x) + MLP(maxpool x))``
with one shared MLP of 1 x 1 convolutions without bias, C -> max(1, C // 16) -> C with a ReLU between;
then spatial attention ``sigmoid(Conv7x7([mean_c x, max_c x]))`` (2 -> 1 channel, padding 3, with a bias,
no batch norm: as the public code's CBAM); each multiplies the features. Parameters: ``2 C max(1, C//16)
+ 2 * 49 + 1``.

The four stride-2 convolutions halve each side as ``s -> (s + 1) // 2`` (padding 1), so the flattened
width is ``1024 w * s4(H) * s4(W)`` with ``s4`` that map applied four times: 16,384 at 64 px (4 x 4),
4,096 at 32 px, 1,024 at 8 px (8 -> 4 -> 2 -> 1 -> 1: a 3 x 3 stride-2 convolution with padding 1 never
takes a side below 1 pixel, so the paper's fixed trunk runs on any size >= 1 px and needs no adaptive
pool). It is computed from the input shape, not from a trial forward pass, so the models build on the
``meta`` device. Larger inputs grow the projection: 224 px gives 14 x 14 x 1024 = 200,704 features (the
paper's resolution sweep 8 ... 224 with its fixed trunk).

Outputs: ``n_outputs`` an int gives one ``(N, n)`` tensor; a mapping ``{head: n}`` (the estimator's
heads: a categorical head ``n_classes`` logits, a Gaussian head 2) gives ``{head: (N, n)}``. The network
returns raw numbers: softmax of the class logits and ``softplus(raw) + 1e-6`` of the Gaussian head's
second output (the radius variance of Figure 2) are applied by the heads
(:mod:`astromodal.training.heads`), and the loss is the heads' cross-entropy + Gaussian NLL
``log(s2)/2 + (y - mu)^2 / (2 s2)``.

Table 2 ablation as one option, ``numeric``: ``both`` (parallax and pm: numeric branch 2 -> 64 -> 32),
``parallax`` (column 0 only: 1 -> 64 -> 32), ``pm`` (column 1 only), ``none`` (image only: no numeric
branch, the fusion layer reads the 512 image features; the numeric input is not declared, may be
absent, and is ignored when given).

Parameters at width 1.0 and 64 x 64 px (tests/test_scnet.py has the arithmetic): one branch 445,859;
the shared stage 31,410,886; the MMSCNet trunk 32,302,604; the image projection 17,303,040; the numeric
branch 2,272; the fusion layer 139,520; with a 5-class head and a Gaussian head (1,285 + 514)
**49,749,235** in all (``numeric: parallax`` or ``pm``: 64 fewer; ``none``: 2,272 + 8,192 fewer). SCNet
(one branch; its shared stage starts with CBAM128 and BC(128->256): 31,109,830), the same projection, the
fusion layer 512 -> 256 and the same two heads: 48,991,856. At width 0.125 (CPU configs) the 64 px
flatten is 128 x 4 x 4 = 2,048.

Choices the paper leaves open (made here, each an option where it matters):

- activations: ReLU after every dense layer of the projection, the numeric branch and the fusion
  (Figure 2 names no activation; the public code has ReLU in the projection and fusion);
- dropout 0.2 (``dropout``) after each fusion dense layer only, as the public code; none in the trunk;
- one fusion dense layer of 256 units (``fusion: [256]``; the paper says "dense layers" without sizes);
- the image projection 16,384 -> 1024 -> 512 (``projection``; the paper also mentions 128 as the last size);
- CBAM's 7 x 7 spatial convolution has a bias and no batch norm (the public code's CBAM; Woo et al.'s own
  code uses a bias-free convolution + BatchNorm there); the channel MLP has no biases;
- SCNet's single branch feeds a shared stage whose first CBAM / convolution take 128 channels (the
  two-branch stage takes 256); everything else is the same trunk.

Defects of the public code (yuu250/MESCR), not reproduced:

- its MMSCNet defines the projection 16,384 -> 1024 -> 128 but never calls it, so the layer after the
  fusion receives 16,416 inputs where it expects 128: its forward pass cannot run as committed
  (here the projection is applied);
- its numeric branch is Linear(2, 64) -> Linear(64, 32) with no activation between (one linear map of
  rank <= 2); here a ReLU follows each layer;
- its loss adds a constant +5 to the Gaussian NLL (no effect on the gradients, only on the reported
  loss); the heads here use the plain NLL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from astromodal.errors import BadValueError, ConfigError
from astromodal.models.images2d import conv_bn_act
from astromodal.models.registry import register_model

__all__ = ["CBAM", "MMSCNet", "NUMERIC", "SCNet", "branch_layers", "shared_stage", "trunk_side"]

#: the ``numeric`` option (Table 2): which columns of the numeric input (parallax = 0, pm = 1) are used
NUMERIC: dict[str, tuple[int, ...]] = {"both": (0, 1), "parallax": (0,), "pm": (1,), "none": ()}
#: the stride-2 convolutions of the trunk (two in each branch, two in the shared stage)
N_STRIDE2 = 4


def _scaled(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


def trunk_side(side: int) -> int:
    """The side of the trunk's last feature map for an input side ``side`` (``s -> (s + 1) // 2`` four times)."""
    for _ in range(N_STRIDE2):
        side = (side + 1) // 2
    return side


class CBAM(nn.Module):
    """Convolutional block attention (channel then spatial; see the module text)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, int(channels) // int(reduction))
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1, bias=False))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        pooled = torch.cat([x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)])
        a = self.mlp(pooled)  # the shared MLP over both pools in one call
        x = x * torch.sigmoid(a[:n] + a[n:])
        s = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(s))


def branch_layers(c_in: int = 3, width: float = 1.0) -> nn.Sequential:
    """One first-stage branch: BC(c_in->64, s2), CBAM64, BC64 x2, BC(64->128, s2), BC128 x2 (times ``width``)."""
    c64, c128 = _scaled(64, width), _scaled(128, width)
    return nn.Sequential(conv_bn_act(c_in, c64, 3, 2), CBAM(c64), conv_bn_act(c64, c64, 3), conv_bn_act(c64, c64, 3),
                         conv_bn_act(c64, c128, 3, 2), conv_bn_act(c128, c128, 3), conv_bn_act(c128, c128, 3))


def shared_stage(c_in: int, width: float = 1.0) -> nn.Sequential:
    """The second stage: CBAM(c_in), BC(c_in->256), BC256 x2, BC(256->512, s2), BC512 x2, BC(512->1024, s2),
    BC1024, CBAM1024, BC1024 (times ``width``; ``c_in`` already scaled)."""
    c256, c512, c1024 = _scaled(256, width), _scaled(512, width), _scaled(1024, width)
    return nn.Sequential(
        CBAM(c_in), conv_bn_act(c_in, c256, 3), conv_bn_act(c256, c256, 3), conv_bn_act(c256, c256, 3),
        conv_bn_act(c256, c512, 3, 2), conv_bn_act(c512, c512, 3), conv_bn_act(c512, c512, 3),
        conv_bn_act(c512, c1024, 3, 2), conv_bn_act(c1024, c1024, 3), CBAM(c1024), conv_bn_act(c1024, c1024, 3),
    )


def _dense(sizes: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _sizes(model: str, option: str, value: Any) -> tuple[int, ...]:
    values = (value,) if isinstance(value, int) else value
    try:
        sizes = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{model}: option {option!r} must be a list of layer sizes, not {value!r}") from None
    if any(s < 1 for s in sizes) or any(float(s) != float(v) for s, v in zip(sizes, values, strict=True)):
        raise ConfigError(f"{model}: option {option!r} must be a list of positive integers, not {value!r}")
    return sizes


def _image_shape(model: str, name: str, shape: Any) -> tuple[int, int, int]:
    if shape is None:
        raise ConfigError(f"{model}: no shape for image input {name!r}")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"{model}: input {name!r} must be an RGB image (3, H, W) per object, got {list(shape)}")
    if shape[0] != 3:
        raise ConfigError(f"{model}: input {name!r} must have 3 channels (an RGB composite), got {shape[0]} "
                          f"(per-object shape {list(shape)})")
    return shape  # type: ignore[return-value]


class _SCNetBase(nn.Module):
    """Branches -> shared stage -> projection [-> + numeric branch] -> fusion -> heads (module text)."""

    def __init__(self, model: str, branch_inputs: Sequence[str], image_shapes: Sequence[tuple[int, int, int]],
                 n_outputs: int | Mapping[str, int], numeric_input: str | None, numeric_columns: tuple[int, ...],
                 width: float, projection: Any, fusion: Any, dropout: float):
        super().__init__()
        try:
            width = float(width)
            dropout = float(dropout)
        except (TypeError, ValueError):
            raise ConfigError(f"{model}: options 'width' and 'dropout' must be numbers, got {width!r}, {dropout!r}") from None
        if not width > 0:
            raise ConfigError(f"{model}: option 'width' must be > 0, got {width}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{model}: option 'dropout' must be in [0, 1), got {dropout}")
        projection = _sizes(model, "projection", projection)
        fusion = _sizes(model, "fusion", fusion)
        sides = {s[1:] for s in image_shapes}
        if len(sides) != 1:
            raise ConfigError(f"{model}: the image inputs {list(branch_inputs)} must have one size (their feature "
                              f"maps are concatenated), got {[list(s[1:]) for s in image_shapes]}")
        h, w = next(iter(sides))
        self.model_name = model
        self.width = width
        self.branch_inputs = tuple(branch_inputs)
        self.numeric_input = numeric_input if numeric_columns else None
        self.numeric_columns = tuple(numeric_columns)
        #: the input names read (the trainer passes exactly these)
        self.inputs = (*self.branch_inputs, *([numeric_input] if numeric_columns else []))
        self.branches = nn.ModuleList([branch_layers(3, width) for _ in self.branch_inputs])
        self.stage = shared_stage(len(self.branch_inputs) * _scaled(128, width), width)
        self.n_flat = _scaled(1024, width) * trunk_side(h) * trunk_side(w)
        self.projection = _dense((self.n_flat, *projection))
        n_image = projection[-1] if projection else self.n_flat
        self.numeric = _dense((len(self.numeric_columns), 64, 32)) if self.numeric_columns else None
        n_fused = n_image + (32 if self.numeric is not None else 0)
        self.fusion = _dense((n_fused, *fusion), dropout)
        n_last = fusion[-1] if fusion else n_fused
        self.single = not isinstance(n_outputs, Mapping)
        sizes = {"out": n_outputs} if self.single else dict(n_outputs)
        try:
            sizes = {str(k): int(v) for k, v in sizes.items()}
        except (TypeError, ValueError):
            raise ConfigError(f"{model}: n_outputs must be an int or a mapping head -> int, not {n_outputs!r}") from None
        if not sizes or any(v < 1 for v in sizes.values()):
            raise ConfigError(f"{model}: every head needs at least one output, got {sizes}")
        self.heads = nn.ModuleDict({k: nn.Linear(n_last, v) for k, v in sizes.items()})

    def features(self, **x: torch.Tensor) -> torch.Tensor:
        """The fused feature vector (before the heads) of a batch of named inputs."""
        maps = [b(x[k]) for b, k in zip(self.branches, self.branch_inputs, strict=True)]
        h = self.stage(maps[0] if len(maps) == 1 else torch.cat(maps, dim=1))
        h = self.projection(torch.flatten(h, 1))
        if self.numeric is not None:
            num = x[self.numeric_input]
            num = num[:, list(self.numeric_columns)] if len(self.numeric_columns) < num.shape[1] else num
            h = torch.cat([h, self.numeric(num)], dim=1)
        return self.fusion(h)

    def forward(self, **x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        missing = [k for k in self.inputs if k not in x]
        if missing:
            raise BadValueError(f"{self.model_name}: input(s) {missing} missing from the batch (given: {sorted(x)})")
        h = self.features(**x)
        if self.single:
            return self.heads["out"](h)
        return {k: head(h) for k, head in self.heads.items()}


def _names(model: str, option: str, value: Any, n: int) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != n \
            or not all(isinstance(v, str) and v for v in value) or len(set(value)) != n:
        raise ConfigError(f"{model}: option {option!r} must be a list of {n} different input names, not {value!r}")
    return tuple(value)


def _numeric(value: Any) -> tuple[int, ...]:
    if value not in NUMERIC:
        raise ConfigError(f"mmscnet: option 'numeric' must be one of {', '.join(NUMERIC)}, not {value!r}")
    return NUMERIC[value]


@register_model(
    "mmscnet",
    modality="multimodal",
    tasks=("classification", "regression"),
    study="B",
    description="Multi-Modal SCNet (MESCR Fig. 2): gri + urz SCNet trunk with CBAM, parallax/pm branch, fusion, "
                "one output per head (options numeric: both|parallax|pm|none, width)",
)
class MMSCNet(_SCNetBase):
    """MMSCNet: two RGB branches + the (parallax, pm) branch, fused (see the module text)."""

    inputs = ("gri", "urz", "astrometry")

    def __init__(
        self,
        input_shape: Sequence[int] | None = None,
        n_outputs: int | Mapping[str, int] = 1,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        branches: Sequence[str] = ("gri", "urz"),
        numeric_input: str = "astrometry",
        numeric: str = "both",
        width: float = 1.0,
        projection: Sequence[int] = (1024, 512),
        fusion: Sequence[int] = (256,),
        dropout: float = 0.2,
    ):
        names = self.declared_inputs({"branches": branches, "numeric_input": numeric_input, "numeric": numeric})
        columns = _numeric(numeric)
        branches = names[:2]
        shapes = dict(input_shapes) if input_shapes is not None else {b: input_shape for b in branches}
        if input_shapes is None and columns:
            shapes[numeric_input] = (2,)
        missing = [k for k in names if k not in shapes]
        if missing:
            raise ConfigError(f"mmscnet: no input {missing} in the data (inputs given: {sorted(shapes)}); set the "
                              f"options 'branches' / 'numeric_input', or numeric: none for the image-only variant")
        if columns:
            nshape = [int(s) for s in shapes[numeric_input]]
            if nshape != [2]:
                raise ConfigError(f"mmscnet: numeric input {numeric_input!r} must hold exactly 2 columns (parallax, "
                                  f"pm), got per-object shape {nshape}")
        image_shapes = [_image_shape("mmscnet", b, shapes[b]) for b in branches]
        super().__init__("mmscnet", branches, image_shapes, n_outputs, numeric_input, columns, width, projection,
                         fusion, dropout)

    @staticmethod
    def declared_inputs(options: Mapping[str, Any]) -> tuple[str, ...]:
        """The input names read with ``options``: the two branches, then the numeric input unless
        ``numeric: none`` (read by :meth:`ModelSpec.declared_inputs`, so the estimator and the benchmark
        pass exactly these)."""
        branches = _names("mmscnet", "branches", options.get("branches", ("gri", "urz")), 2)
        columns = _numeric(options.get("numeric", "both"))
        numeric_input = options.get("numeric_input", "astrometry")
        if not columns:
            return branches
        if not isinstance(numeric_input, str) or not numeric_input or numeric_input in branches:
            raise ConfigError(f"mmscnet: option 'numeric_input' must be an input name other than the branches "
                              f"{list(branches)}, not {numeric_input!r}")
        return (*branches, numeric_input)

    @staticmethod
    def example_shapes(image_size: int) -> dict[str, Any]:
        """Constructor shapes for counting parameters at ``image_size`` px (``astromodal models``)."""
        side = (3, int(image_size), int(image_size))
        return {"input_shape": side, "input_shapes": {"gri": side, "urz": side, "astrometry": (2,)}}


@register_model(
    "scnet",
    modality="image",
    tasks=("classification", "regression"),
    study="B",
    description="SCNet (MESCR trunk, one RGB branch): CBAM conv trunk, projection, dense, one output per head",
)
class SCNet(_SCNetBase):
    """Single-branch SCNet over one RGB image (see the module text)."""

    inputs = ("image",)

    def __init__(
        self,
        input_shape: Sequence[int] | None = None,
        n_outputs: int | Mapping[str, int] = 1,
        inputs: Sequence[str] | None = None,
        width: float = 1.0,
        projection: Sequence[int] = (1024, 512),
        fusion: Sequence[int] = (256,),
        dropout: float = 0.2,
    ):
        names = self.inputs if inputs is None else _names("scnet", "inputs", inputs, 1)
        super().__init__("scnet", names, [_image_shape("scnet", names[0], input_shape)], n_outputs, None, (),
                         width, projection, fusion, dropout)

    @staticmethod
    def example_shapes(image_size: int) -> dict[str, Any]:
        """Constructor shapes for counting parameters at ``image_size`` px (``astromodal models``)."""
        return {"input_shape": (3, int(image_size), int(image_size))}
