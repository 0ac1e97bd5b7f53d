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

The module only acts in training mode: after ``.eval()`` it returns its input unchanged, like dropout.
With ``seed`` set it draws from its own random stream (the global torch generator is left untouched
and the same seed gives the same sequence of augmented batches); with ``seed=None`` it uses torch's
global generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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

    def __init__(self, names: Sequence[str], ops: Sequence[nn.Module], seed: int | None = None):
        super().__init__()
        self.names = tuple(names)
        self.ops = nn.Sequential(*ops)
        self.seed = seed
        self._states: dict[str, torch.Tensor] = {}

    def reset(self) -> None:
        """Restart the seeded random stream from the beginning."""
        self._states = {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise BadValueError(
                f"augmentation expects image batches shaped (N, C, H, W), got {tuple(images.shape)}"
            )
        if not images.is_floating_point():
            raise BadValueError(f"augmentation expects floating-point pixels, got {images.dtype}")
        if not self.training or len(self.ops) == 0 or images.shape[0] == 0:
            return images
        if self.seed is None:
            return self.ops(images).to(images.dtype)
        cuda = images.device.type == "cuda"
        key = f"cuda:{images.device.index or 0}" if cuda else "cpu"
        with torch.random.fork_rng(devices=[images.device] if cuda else []):
            # own stream: seed once, then continue from where the previous call stopped
            torch.manual_seed(self.seed)
            if "cpu" in self._states:
                torch.set_rng_state(self._states["cpu"])
            if cuda and key in self._states:
                torch.cuda.set_rng_state(self._states[key], images.device)
            out = self.ops(images)
            self._states["cpu"] = torch.get_rng_state()
            if cuda:
                self._states[key] = torch.cuda.get_rng_state(images.device)
        return out.to(images.dtype)

    def extra_repr(self) -> str:
        return f"names={list(self.names)}, seed={self.seed}"


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
