"""Random augmentation of image batches (N, C, H, W) with kornia, on whatever device the batch is on.

Survey cutouts have no preferred orientation and carry noise, so the training sets of the image
studies are enlarged with rotated, flipped, shifted, noisier and partly masked copies (study B lists
rotation, flip, Gaussian noise, cutout and erase). Build a pipeline from names::

    aug = make_augmentation(["rotation", "hflip", "noise"], p=0.5, seed=3407)
    batch = aug(batch)          # same shape and dtype; each operation applied to each image with chance p

Names (each applied independently to each image with probability ``p``, in the order given):

- ``rotation``: rotation by an angle drawn uniformly in [-degrees, +degrees] (default 180), bilinear,
  corners filled with 0.
- ``hflip`` / ``vflip``: mirror left-right / top-bottom (exact pixel reversal).
- ``noise``: add Gaussian noise of standard deviation ``noise_std`` (default 0.05), in the units of
  the pixel values (images are usually normalised to about unit range first).
- ``cutout``: set a square of 1/16 of the image area (a quarter of each side) at a random place to 0
  (DeVries & Taylor 2017).
- ``erase``: set a rectangle of 2-20 % of the area with aspect ratio 0.3-3.3 to 0 (random erasing,
  Zhong et al. 2020).
- ``shift``: translate by up to ``shift`` (default 0.1) of the width / height, bilinear, zero fill.

Several image inputs of the same objects (gri and urz cutouts, four resolutions): ``aug.forward_many([a,
b])`` gives every object the same geometric draw in all of them (the trainer does so for every 4-D input
unless ``augment_same: false``).

Forced augmentation (MESCR: "data that has been sampled repeatedly will undergo data augmentation at
least once"): ``aug(batch, force=mask)`` / ``aug.forward_many([a, b], force=mask)`` with a boolean (N,)
mask. Every operation is first drawn as usual (chance ``p`` each); a forced image that drew none of
them then gets one operation chosen uniformly among the pipeline's, applied for certain (the same
choice and geometric draw for all inputs of the object). Unforced images are augmented exactly as
without the mask. After each call in training mode ``aug.applied`` (N,) int64 counts the operations
applied to each image and ``aug.mirrored`` (N,) bool is True where the image was mirrored an odd
number of times (``hflip`` / ``vflip``; rotations and shifts keep handedness), read from kornia's
``batch_prob`` parameters: a label that depends on handedness (Galaxy Zoo's clockwise / anticlockwise
spirals) can be swapped on exactly those images (the trainer's ``augment_flip_swap``).

The module only acts in training mode: after ``.eval()`` it returns its input unchanged, like dropout.
With ``seed`` set it draws from its own random stream (the global torch generator is left untouched
and the same seed gives the same sequence of augmented batches); with ``seed=None`` it uses torch's
global generator.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from astromodal.errors import BadValueError, ConfigError

__all__ = ["AUGMENTATIONS", "Augmentation", "make_augmentation"]


def _builders(degrees: float, noise_std: float, shift: float) -> dict[str, Callable[[float], nn.Module]]:
    import kornia.augmentation as K

    return {
        "rotation": lambda p: K.RandomRotation(degrees=degrees, p=p),
        "hflip": lambda p: K.RandomHorizontalFlip(p=p),
        "vflip": lambda p: K.RandomVerticalFlip(p=p),
        "noise": lambda p: K.RandomGaussianNoise(mean=0.0, std=noise_std, p=p),
        "cutout": lambda p: K.RandomErasing(scale=(0.0625, 0.0625), ratio=(1.0, 1.0), value=0.0, p=p),
        "erase": lambda p: K.RandomErasing(scale=(0.02, 0.2), ratio=(0.3, 3.3), value=0.0, p=p),
        "shift": lambda p: K.RandomAffine(degrees=0.0, translate=(shift, shift), p=p),
    }


#: the augmentation names :func:`make_augmentation` understands
AUGMENTATIONS = ("rotation", "hflip", "vflip", "noise", "cutout", "erase", "shift")


class Augmentation(nn.Module):
    """A sequence of kornia augmentations applied to (N, C, H, W) float batches; see the module doc."""

    #: the trainer passes a per-image ``force`` mask to modules that declare this
    supports_force = True
    #: operations that mirror the image (a label of handedness changes with an odd number of them)
    MIRRORS = ("hflip", "vflip")

    def __init__(self, names: Sequence[str], ops: Sequence[nn.Module], seed: int | None = None):
        super().__init__()
        self.names = tuple(names)
        self.ops = nn.Sequential(*ops)
        # the same operations applied for certain (p = 1): the one operation a forced image gets when its
        # random draw gave it none
        forced = [copy.deepcopy(op) for op in ops]
        for op in forced:
            op.p = 1.0
        self.forced_ops = nn.ModuleList(forced)
        self.seed = seed
        self._states: dict[str, torch.Tensor] = {}
        #: after a call in training mode: operations applied per image (N,) and odd mirroring (N,) bool
        self.applied: torch.Tensor | None = None
        self.mirrored: torch.Tensor | None = None

    def reset(self) -> None:
        """Restart the seeded random stream from the beginning."""
        self._states = {}

    def forward(self, images: torch.Tensor, force: torch.Tensor | None = None) -> torch.Tensor:
        self._check(images)
        return self._run([images], force)[0]

    def forward_many(self, images: Sequence[torch.Tensor], force: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Augment several image inputs of the same objects with the same geometric draw per object.

        Every operation draws its parameters once, on the first input, and applies them to all: the same
        flips, rotation angle and shift (as a fraction of the size), the same erased region (scaled to each
        input's size). Noise is drawn per pixel, independently for each input. Inputs of equal size given
        the same pixels stay equal. ``force``: see the module text."""
        images = list(images)
        for im in images:
            self._check(im)
        if len({im.shape[0] for im in images}) > 1:
            raise BadValueError(f"augmenting inputs of one object together needs equal batch sizes, got "
                                f"{[im.shape[0] for im in images]}")
        return self._run(images, force)

    def _run(self, images: list[torch.Tensor], force: torch.Tensor | None) -> list[torch.Tensor]:
        n = images[0].shape[0] if images else 0
        if not self.training or len(self.ops) == 0 or not images or n == 0:
            self.applied = self.mirrored = None
            return images
        device = images[0].device
        if force is not None:
            force = torch.as_tensor(force, device=device).reshape(-1).bool()
            if len(force) != n:
                raise BadValueError(f"the force mask has {len(force)} entries for a batch of {n} images")
        applied = torch.zeros(n, dtype=torch.int64, device=device)
        mirrored = torch.zeros(n, dtype=torch.bool, device=device)
        outs = images
        with self._stream(device):
            for name, op in zip(self.names, self.ops, strict=True):
                outs, hit = _apply(op, outs)
                applied += hit
                if name in self.MIRRORS:
                    mirrored ^= hit.bool()
            if force is not None and (rows := torch.nonzero(force & (applied == 0)).reshape(-1)).numel():
                choice = torch.randint(len(self.ops), (len(rows),)).to(device)
                for j, (name, op) in enumerate(zip(self.names, self.forced_ops, strict=True)):
                    sel = rows[choice == j]
                    if sel.numel() == 0:
                        continue
                    part, hit = _apply(op, [o[sel] for o in outs])
                    outs = [o.index_put((sel,), p.to(o.dtype)) for o, p in zip(outs, part, strict=True)]
                    applied[sel] += hit
                    if name in self.MIRRORS:
                        mirrored[sel] ^= hit.bool()
        self.applied, self.mirrored = applied, mirrored
        return [o.to(i.dtype) for o, i in zip(outs, images, strict=True)]

    @staticmethod
    def _check(images: torch.Tensor) -> None:
        if images.ndim != 4:
            raise BadValueError(
                f"augmentation expects image batches shaped (N, C, H, W), got {tuple(images.shape)}"
            )
        if not images.is_floating_point():
            raise BadValueError(f"augmentation expects floating-point pixels, got {images.dtype}")

    @contextmanager
    def _stream(self, device: torch.device) -> Iterator[None]:
        """Draw from the module's own seeded stream (continuing where the previous call stopped); the
        global generator is left alone. Without a seed: torch's global generator."""
        if self.seed is None:
            yield
            return
        cuda = device.type == "cuda"
        key = f"cuda:{device.index or 0}" if cuda else "cpu"
        with torch.random.fork_rng(devices=[device] if cuda else []):
            # own stream: seed once, then continue from where the previous call stopped
            torch.manual_seed(self.seed)
            if "cpu" in self._states:
                torch.set_rng_state(self._states["cpu"])
            if cuda and key in self._states:
                torch.cuda.set_rng_state(self._states[key], device)
            yield
            self._states["cpu"] = torch.get_rng_state()
            if cuda:
                self._states[key] = torch.cuda.get_rng_state(device)

    def extra_repr(self) -> str:
        return f"names={list(self.names)}, seed={self.seed}"


def _apply(op: nn.Module, images: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One kornia operation on every input of the same objects: parameters drawn on the first input and
    reused (rescaled) for the others, per-pixel noise drawn afresh; returns the outputs and which images
    the operation was applied to ((N,) int64 0 / 1, from kornia's ``batch_prob``)."""
    first = op(images[0])
    params = dict(op._params)
    outs = [first] + [op(x) if _per_pixel(op) else op(x, params=_rescaled(params, images[0].shape, x.shape))
                      for x in images[1:]]
    hit = params["batch_prob"].reshape(-1).to(device=images[0].device) > 0.5
    if hit.numel() == 1:
        hit = hit.expand(images[0].shape[0])
    return outs, hit.to(torch.int64)


def _per_pixel(op: nn.Module) -> bool:
    """Operations whose draw is per pixel (noise): drawn afresh for each input."""
    return "gaussian_noise" in getattr(op, "_params", {})


#: parameters of kornia's operations given in pixels along the width / the height
_ALONG_W, _ALONG_H = ("xs", "widths"), ("ys", "heights")


def _rescaled(params: dict[str, torch.Tensor], shape: torch.Size, to: torch.Size) -> dict[str, torch.Tensor]:
    """The parameters drawn for an image of ``shape`` applied to one of shape ``to``: pixel quantities
    (shifts, centre, erased box) scaled by the ratio of the sizes; the same draw for the same size."""
    out = dict(params)
    out["forward_input_shape"] = torch.tensor(tuple(to))
    if tuple(shape[-2:]) == tuple(to[-2:]):
        return out
    rw, rh = to[-1] / shape[-1], to[-2] / shape[-2]
    for k in _ALONG_W:
        if k in out:
            out[k] = torch.round(out[k] * rw)
    for k in _ALONG_H:
        if k in out:
            out[k] = torch.round(out[k] * rh)
    ratio = torch.tensor([rw, rh], dtype=torch.float32)
    if "translations" in out:
        out["translations"] = out["translations"] * ratio.to(out["translations"])
    if "center" in out:
        out["center"] = (out["center"] + 0.5) * ratio.to(out["center"]) - 0.5
    return out


def make_augmentation(
    names: Sequence[str] | str,
    p: float = 0.5,
    seed: int | None = None,
    *,
    degrees: float = 180.0,
    noise_std: float = 0.05,
    shift: float = 0.1,
) -> Augmentation:
    """Pipeline of the named augmentations, each applied to each image with probability ``p``.

    ``names`` are taken from :data:`AUGMENTATIONS`; an unknown name is a :class:`ConfigError` that
    lists the allowed ones. ``seed`` gives a private, reproducible random stream.
    """
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"unknown augmentation {unknown[0]!r}; allowed: {', '.join(AUGMENTATIONS)}")
    if not 0.0 <= float(p) <= 1.0:
        raise ConfigError(f"augmentation probability p must be in [0, 1], not {p!r}")
    if noise_std < 0 or not 0.0 <= shift <= 1.0:
        raise ConfigError(f"noise_std must be >= 0 and shift in [0, 1], not {noise_std!r} and {shift!r}")
    builders = _builders(float(degrees), float(noise_std), float(shift))
    return Augmentation(names, [builders[n](float(p)) for n in names], seed=seed)
