"""Kornia augmentation factory: shapes, identities, exact flips, invariants, seeded streams, errors."""

from __future__ import annotations

import pytest
import torch

from astromodal.errors import BadValueError, ConfigError
from astromodal.transforms.augment import AUGMENTATIONS, make_augmentation


def _batch(n=6, c=2, h=28, w=28, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (0.5 + torch.rand(n, c, h, w, generator=g)).to(dtype)  # strictly positive pixels


def _blob(n=8, size=28, sigma=2.5):
    """A centred Gaussian 'star' per image, all its light well inside the frame."""
    yy, xx = torch.meshgrid(
        torch.arange(size) - (size - 1) / 2, torch.arange(size) - (size - 1) / 2, indexing="ij"
    )
    img = torch.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    return img.expand(n, 1, size, size).clone()


@pytest.mark.parametrize("name", AUGMENTATIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_and_dtype_preserved(name, dtype):
    x = _batch(dtype=dtype)
    y = make_augmentation([name], p=1.0, seed=1)(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert not torch.equal(y, x)  # p = 1 changes every batch


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_p_zero_is_identity(name):
    x = _batch()
    assert torch.equal(make_augmentation([name], p=0.0, seed=2)(x), x)


def test_all_together_p_zero_and_eval_are_identity():
    x = _batch()
    assert torch.equal(make_augmentation(list(AUGMENTATIONS), p=0.0)(x), x)
    aug = make_augmentation(list(AUGMENTATIONS), p=1.0, seed=0).eval()
    assert torch.equal(aug(x), x)
    assert torch.equal(make_augmentation([], p=1.0)(x), x)


def test_flips_reverse_pixel_order_exactly():
    x = _batch()
    assert torch.equal(make_augmentation(["hflip"], p=1.0)(x), x.flip(-1))
    assert torch.equal(make_augmentation(["vflip"], p=1.0)(x), x.flip(-2))
    assert torch.equal(make_augmentation(["hflip", "vflip"], p=1.0)(x), x.flip(-1).flip(-2))


def test_half_probability_flips_some_images_and_leaves_the_rest():
    x = _batch(n=64)
    y = make_augmentation(["hflip"], p=0.5, seed=4)(x)
    flipped = (y == x.flip(-1)).flatten(1).all(1)
    kept = (y == x).flatten(1).all(1)
    assert (flipped ^ kept).all()  # each image is exactly one of the two
    assert 16 <= int(flipped.sum()) <= 48  # binomial(64, 0.5): mean 32, sd 4


def test_rotation_and_shift_conserve_the_light_of_a_centred_source():
    x = _blob()
    for name in ("rotation", "shift"):
        y = make_augmentation([name], p=1.0, seed=3)(x)
        assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.02)
    # shift moves the light centroid by at most 0.1 of the side (2.8 px), and it does move
    y = make_augmentation(["shift"], p=1.0, seed=3)(x)
    grid = torch.arange(28, dtype=torch.float32)
    cx = (y.sum((1, 2)) * grid).sum(-1) / y.sum((1, 2, 3)) - 13.5
    cy = (y.sum((1, 3)) * grid).sum(-1) / y.sum((1, 2, 3)) - 13.5
    assert (cx.abs() <= 2.8 + 0.05).all() and (cy.abs() <= 2.8 + 0.05).all()
    assert (cx.abs() + cy.abs()).max() > 0.3


def test_noise_has_the_requested_standard_deviation():
    x = _batch(n=32, c=1)
    y = make_augmentation(["noise"], p=1.0, seed=5, noise_std=0.2)(x)
    d = y - x
    assert abs(d.std().item() - 0.2) < 0.01  # 25,088 samples: relative sd of the std ~0.5 %
    assert abs(d.mean().item()) < 0.01


def test_cutout_zeroes_one_square_of_a_sixteenth_of_the_area():
    x = _batch(n=8, c=2)
    y = make_augmentation(["cutout"], p=1.0, seed=6)(x)
    zeros = y == 0
    assert (zeros.sum((2, 3)) == 49).all()  # 28 * 28 / 16 = 49 = 7 x 7 pixels in every band
    assert torch.equal(zeros[:, 0], zeros[:, 1])  # the same square in all bands
    assert torch.equal(y[~zeros], x[~zeros])  # the rest untouched
    rows = zeros[:, 0].any(2).sum(1)
    cols = zeros[:, 0].any(1).sum(1)
    assert (rows == 7).all() and (cols == 7).all()


def test_erase_zeroes_a_rectangle_of_two_to_twenty_percent():
    x = _batch(n=16, c=1)
    y = make_augmentation(["erase"], p=1.0, seed=7)(x)
    frac = (y == 0).float().mean((1, 2, 3))
    assert (frac >= 0.015).all() and (frac <= 0.22).all()  # 2-20 % up to pixel rounding


def test_seeded_streams_are_reproducible_and_leave_global_rng_alone():
    x = _batch()
    names = ["rotation", "hflip", "noise", "erase"]
    a, b = make_augmentation(names, seed=11), make_augmentation(names, seed=11)
    state = torch.get_rng_state()
    a1, a2 = a(x), a(x)
    assert torch.equal(torch.get_rng_state(), state)
    b1, b2 = b(x), b(x)
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, a2)  # the stream moves on between batches
    assert not torch.equal(a1, make_augmentation(names, seed=12)(x))
    a.reset()
    assert torch.equal(a(x), a1)


def test_errors_name_the_option():
    with pytest.raises(ConfigError, match="allowed: rotation, hflip, vflip, noise, cutout, erase, shift"):
        make_augmentation(["rotation", "mirror"])
    with pytest.raises(ConfigError, match="'mirror'"):
        make_augmentation("mirror")
    with pytest.raises(ConfigError, match="probability"):
        make_augmentation(["hflip"], p=1.5)
    aug = make_augmentation(["hflip"], p=1.0)
    with pytest.raises(BadValueError, match=r"\(N, C, H, W\)"):
        aug(torch.zeros(28, 28))
    with pytest.raises(BadValueError, match="floating"):
        aug(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
