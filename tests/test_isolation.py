"""Isolating the central object of a cutout (astromodal.transforms.isolation): a hand-made 5 x 32 x 32 cutout
with a central Gaussian source and one neighbour at a known offset; mask, crop, no source, seeds, batches,
the sigma-clipped statistics against astropy, and bad options."""

from __future__ import annotations

import numpy as np
import pytest

from astromodal.errors import ConfigError
from astromodal.transforms.isolation import (
    MIN_SKY_PIXELS,
    clipped_stats,
    isolate_central,
)

S = 32
RMS = np.array([0.06, 0.03, 0.04, 0.07, 0.2])  # per band, nanomaggies
CENTRE = ((S - 1) / 2, (S - 1) / 2)  # (y, x)
NEIGHBOUR = (CENTRE[0] - 6.0, CENTRE[1] + 9.0)  # 10.8 px away


def gaussian(y0: float, x0: float, sigma: float, flux: float) -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)
    g = np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * sigma**2))
    return flux * g / (2 * np.pi * sigma**2)


def scene(seed: int = 0, central: bool = True, neighbour: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(cutout (1, 5, S, S), the same without the neighbour)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((5, S, S)) * RMS[:, None, None]
    c = np.stack([gaussian(*CENTRE, 1.6, f) for f in (20.0, 40.0, 55.0, 65.0, 70.0)]) if central else 0.0
    n = np.stack([gaussian(*NEIGHBOUR, 1.3, f) for f in (10.0, 25.0, 35.0, 40.0, 45.0)]) if neighbour else 0.0
    return (noise + c + n)[None].astype(np.float32), (noise + c)[None].astype(np.float32)


def disc(y0: float, x0: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S]
    return (yy - y0) ** 2 + (xx - x0) ** 2 <= r * r


def test_mask_replaces_the_neighbour_by_noise_and_keeps_the_central_flux():
    cut, alone = scene()
    out, info = isolate_central(cut, "mask")
    assert out.shape == cut.shape and out.dtype == np.float32
    assert info.central_found.tolist() == [True] and info.n_segments.tolist() == [2]
    assert info.peak_offset[0] < 1.0
    region = disc(*NEIGHBOUR, 3.0)
    for b in range(5):
        before = cut[0, b][region]
        after = out[0, b][region]
        assert before.mean() > 4 * RMS[b]  # the neighbour was there
        # now background noise: mean ~0 within 4 standard errors, scatter ~ the band's rms
        assert abs(after.mean()) < 4 * RMS[b] / np.sqrt(region.sum())
        assert 0.6 * RMS[b] < after.std() < 1.5 * RMS[b]
        assert abs(info.rms[0, b] - RMS[b]) < 0.1 * RMS[b] and abs(info.background[0, b]) < 0.2 * RMS[b]
    centre = disc(*CENTRE, 4.0)
    for b in range(5):
        kept, truth = out[0, b][centre].sum(), alone[0, b][centre].sum()
        assert abs(kept - truth) < 0.01 * truth
    # only the neighbour's (dilated) segment changed, the rest is bit for bit the input
    changed = (out != cut)[0].any(axis=0)
    assert np.isclose(changed.mean(), info.replaced_fraction[0]) and 0 < info.replaced_fraction[0] < 0.2
    assert not changed[disc(*CENTRE, 3.0)].any() and changed[disc(*NEIGHBOUR, 2.0)].all()


def test_crop_sets_everything_outside_the_central_footprint_to_the_background():
    cut, _ = scene()
    out, info = isolate_central(cut, "crop", dilate=1)
    kept = (out == cut)[0].all(axis=0)
    replaced = ~kept
    assert np.isclose(replaced.mean(), info.replaced_fraction[0])
    for b in range(5):
        np.testing.assert_array_equal(out[0, b][replaced], np.float32(info.background[0, b]))
    assert kept[disc(*CENTRE, 2.5)].all()  # the central object is untouched
    assert replaced[disc(*NEIGHBOUR, 2.0)].all() and replaced[0, 0] and replaced[-1, -1]
    assert info.central_area[0] > 0 and kept.sum() >= info.central_area[0]
    assert out.shape == cut.shape  # the size is kept


def test_no_source_or_no_central_source_leaves_the_cutout_unchanged_and_says_so():
    empty, _ = scene(central=False, neighbour=False)
    only_neighbour, _ = scene(seed=1, central=False)
    both = np.concatenate([empty, only_neighbour])
    for method in ("mask", "crop"):
        out, info = isolate_central(both, method)
        np.testing.assert_array_equal(out, both)
        assert info.central_found.tolist() == [False, False] and info.n_unchanged == 2
        assert info.n_segments[1] == 1 and info.replaced_fraction.tolist() == [0.0, 0.0]
        assert info.summary()["unchanged_no_central"] == 2


def test_an_offset_central_source_is_found_within_the_radius_only():
    rng = np.random.default_rng(3)
    img = rng.standard_normal((1, 5, S, S)) * RMS[None, :, None, None]
    img[0] += np.stack([gaussian(CENTRE[0], CENTRE[1] + 5.5, 1.0, 30.0)] * 5)
    _, near = isolate_central(img, "mask", centre_radius=4.0)
    _, far = isolate_central(img, "mask", centre_radius=1.0)
    assert near.central_found[0] and not far.central_found[0]


def test_a_central_object_swallowed_by_a_bright_neighbour_is_flagged_by_its_peak_offset():
    rng = np.random.default_rng(6)
    img = rng.standard_normal((1, 5, S, S)) * RMS[None, :, None, None]
    img[0] += np.stack([gaussian(*CENTRE, 2.0, 2.0) + gaussian(CENTRE[0], CENTRE[1] + 6.0, 1.4, 2e4)] * 5)
    out, info = isolate_central(img, "mask")
    assert info.central_found[0] and info.n_segments[0] == 1  # one segment: the neighbour's, over the centre
    assert 5.0 < info.peak_offset[0] < 7.0 and info.summary()["central_peak_beyond_radius"] == 1
    np.testing.assert_array_equal(out, img)  # nothing else to remove


def test_seeds_repeat_and_an_objects_noise_does_not_depend_on_its_batch():
    a, _ = scene(seed=4)
    b, _ = scene(seed=5)
    batch = np.concatenate([a, b])
    one, _ = isolate_central(batch, "mask", seed=7, keys=[10, 11])
    two, _ = isolate_central(batch, "mask", seed=7, keys=[10, 11])
    np.testing.assert_array_equal(one, two)
    alone, _ = isolate_central(b, "mask", seed=7, keys=[11])  # b on its own: the same pixels
    np.testing.assert_array_equal(one[1], alone[0])
    other, _ = isolate_central(batch, "mask", seed=8, keys=[10, 11])
    assert not np.array_equal(one, other)
    # string ids are keyed too (CRC-32), and chunking does not change anything
    chunked, _ = isolate_central(batch, "mask", seed=7, keys=[10, 11], chunk=1)
    np.testing.assert_array_equal(chunked, one)
    isolate_central(batch, "mask", keys=np.array(["a", "b"]))


def test_detection_band_tiny_cutouts_and_background2d():
    cut, _ = scene()
    out_r, info_r = isolate_central(cut, "mask", detect="r", bands="ugriz")
    assert info_r.central_found[0] and info_r.n_segments[0] == 2
    out_2d, info_2d = isolate_central(cut, "mask", background="2d", box_size=8)
    assert info_2d.background_mode == "2d" and info_2d.n_segments[0] == 2
    # 8 x 8 (a HiSS-Cube zoom-3 cutout): border-ring background, no smoothing and no deblending
    small = cut[:, :, 12:20, 12:20].reshape(1, 5, 8, 8)
    out, info = isolate_central(small, "crop")
    assert info.background_mode == "border" and info.settings["deblend"] is False
    assert info.settings["smooth_fwhm"] == 0.0 and info.central_found[0]
    assert np.isfinite(out).all()


def test_clipped_stats_are_astropys_sigma_clipped_stats():
    from astropy.stats import sigma_clipped_stats

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 300))
    x[:, :15] += 8.0  # sources to clip
    mask = rng.random(x.shape) < 0.2
    med, std, n = clipped_stats(x, mask, sigma=3.0, maxiters=5)
    _, a_med, a_std = sigma_clipped_stats(x, mask=mask, axis=1, sigma=3.0, maxiters=5)
    np.testing.assert_allclose(med, a_med, rtol=0, atol=1e-12)
    np.testing.assert_allclose(std, a_std, rtol=1e-10)
    assert (n < (~mask).sum(axis=1)).all() and MIN_SKY_PIXELS > 0
    med, std, n = clipped_stats(np.full((1, 5), np.nan))
    assert np.isnan(med[0]) and np.isnan(std[0]) and n[0] == 0


def test_bad_options_are_one_line_errors_naming_the_option():
    cut, _ = scene()
    with pytest.raises(ConfigError, match="isolate: unknown method 'blur'; choose one of none, mask, crop"):
        isolate_central(cut, "blur")
    with pytest.raises(ConfigError, match="isolate_options: 'threshold'") as e:
        isolate_central(cut, "mask", threshold=-1)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="unknown key 'dilation'"):
        isolate_central(cut, "mask", dilation=2)
    with pytest.raises(ConfigError, match="'detect': band 'y' is not one of"):
        isolate_central(cut, "mask", detect="y", bands="ugriz")
