"""Spectral transforms: resampling (flux conservation, ivar propagation, masks), mean filter 3601 -> 721,
normalisation, the 28 x 28 image form and its exact inverse, Gaia XP helpers."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from astromodal.data.dataset import Dataset, Spectra
from astromodal.errors import BadValueError
from astromodal.transforms import spectra as sp


def test_settings_defaults_and_forbid_extra():
    s = sp.SpectrumPreprocessing()
    assert (s.grid_size, s.wave_min, s.wave_max, s.bin_width, s.image_side) == (3601, 3700, 9100, 5, 28)
    assert s.line_length == 721
    g = s.grid()
    assert g[0] == pytest.approx(3700) and g[-1] == pytest.approx(9100) and len(g) == 3601
    assert np.allclose(np.diff(np.log10(g)), np.log10(9100 / 3700) / 3600)
    with pytest.raises(ValidationError):
        sp.SpectrumPreprocessing(gridsize=10)
    with pytest.raises(ValidationError):
        sp.SpectrumPreprocessing(wave_min=9000, wave_max=4000)


def test_mean_filter_3601_to_721_with_partial_last_window():
    x = np.arange(3601, dtype=float)[None].repeat(2, axis=0)
    out = sp.mean_filter(x, 5)
    assert out.shape == (2, 721)
    assert out[0, 0] == 2.0  # mean of 0..4
    assert out[0, 719] == np.mean(np.arange(3595, 3600))
    assert out[0, 720] == 3600.0  # the partial window holds one pixel
    assert sp.mean_filter(np.ones((1, 12)), 5)[0].tolist() == [1.0, 1.0, 1.0]


def test_resample_flux_conserving_keeps_integrated_flux_and_propagates_ivar():
    old = np.arange(4000.0, 5000.0, 1.0)  # 1 A pixels
    rng = np.random.default_rng(0)
    flux = rng.uniform(1, 2, size=(3, len(old)))
    new = np.arange(4100.0, 4900.0, 2.0)  # 2 A pixels aligned on the old centres
    res = sp.resample(old, flux, np.full_like(flux, 4.0), new)
    # each new pixel covers half, one, half old pixel: weights 1/4, 1/2, 1/4
    i = 10
    j = int(np.flatnonzero(old == new[i])[0])
    expect = 0.25 * flux[:, j - 1] + 0.5 * flux[:, j] + 0.25 * flux[:, j + 1]
    assert np.allclose(res.flux[:, i], expect)
    assert np.allclose(res.ivar, 4.0 / 0.375)  # var = (1/16 + 1/4 + 1/16) / 4
    assert not res.mask.any()
    # integrated flux over the new range equals the old integral over the same wavelengths
    lo, hi = new[0] - 1, new[-1] + 1
    sel = (old >= lo + 0.5) & (old <= hi - 0.5)
    old_int = flux[:, sel].sum(axis=1) + 0.5 * (flux[:, np.flatnonzero(sel)[0] - 1] + flux[:, np.flatnonzero(sel)[-1] + 1])
    assert np.allclose(res.flux.sum(axis=1) * 2.0, old_int)


def test_resample_linear_is_exact_for_a_straight_line_and_shares_grids():
    old = np.linspace(4000, 6000, 501)
    flux = np.stack([2.0 + 0.001 * old, -1.0 + 0.003 * old])
    new = np.linspace(4100, 5900, 77)
    res = sp.resample(old, flux, None, new, method="linear")
    assert np.allclose(res.flux, np.stack([2.0 + 0.001 * new, -1.0 + 0.003 * new]))
    # per-object grids give the same answer
    res2 = sp.resample(np.stack([old, old + 1e-3]), flux, None, new, method="linear")
    assert np.allclose(res2.flux, res.flux, atol=1e-5)


def test_resample_masks_bad_pixels_and_range_edges():
    old = np.arange(4000.0, 5000.0, 1.0)
    flux = np.ones((1, len(old)))
    ivar = np.ones_like(flux)
    flux[0, 500] = np.nan  # NaN pixel: masked, not fatal
    ivar[0, 600] = 0.0
    new = np.arange(3990.0, 5010.0, 1.0)
    res = sp.resample(old, flux, ivar, new)
    assert np.isfinite(res.flux).all()
    assert np.allclose(res.flux, 1.0)  # bad pixels and edges interpolated from good neighbours
    bad_w = new[res.mask[0]]
    assert {4500.0, 4600.0} <= set(bad_w.tolist())
    assert (bad_w < 4000).sum() == 10 and (bad_w > 4999).sum() == 10
    assert (res.ivar[res.mask] == 0).all() and (res.ivar[~res.mask] > 0).all()


def test_fill_masked_interpolates_linearly_and_rejects_empty_rows():
    f = np.array([[0.0, 99, 99, 3.0, 4.0]])
    m = np.array([[False, True, True, False, False]])
    assert np.allclose(sp.fill_masked(f, m), [[0, 1, 2, 3, 4]])
    with pytest.raises(BadValueError, match="'x'"):
        sp.fill_masked(np.ones((1, 3)), np.ones((1, 3), bool), ids=np.array(["x"]))


def test_normalisations():
    f = np.array([[1.0, 3.0, 5.0], [2.0, 2.0, 8.0]])
    assert np.allclose(sp.normalise(f, "minmax"), [[0, 0.5, 1], [0, 0, 1]])
    assert np.allclose(sp.normalise(f, "median"), [[1 / 3, 1, 5 / 3], [1, 1, 4]])
    assert np.allclose(np.linalg.norm(sp.l2_normalise(f), axis=1), 1.0)
    assert np.allclose(sp.l2_normalise(np.array([[3.0, 4.0]])), [[0.6, 0.8]])
    assert np.allclose(sp.normalise(np.array([[1.0, 3.0]]), "standard"), [[-1.0, 1.0]])
    with pytest.raises(BadValueError, match="row 1"):
        sp.l2_normalise(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(BadValueError, match="'b'"):
        sp.normalise(np.array([[1.0, 2.0], [3.0, 3.0]]), "minmax", ids=np.array(["a", "b"]))


def test_context_and_pad_to_square():
    f = np.array([[1.0, -2.0, 5.0]])
    assert sp.context_features(f).tolist() == [[5.0, -2.0]]
    sq = sp.pad_to_square(np.arange(343.0)[None])
    assert sq.shape == (1, 19, 19)
    assert sq[0, 0, 0] == 0 and sq[0, 18, 0] == 342 and sq[0, 18, 1:].sum() == 0  # 343 = 18*19 + 1
    assert sp.pad_to_square(np.ones((2, 16))).shape == (2, 4, 4)


def test_to_image_and_exact_inverse():
    rng = np.random.default_rng(1)
    vec = rng.uniform(0, 1, size=(5, 721))
    img = sp.to_image(vec)
    assert img.shape == (5, 28, 28) and img.dtype == np.uint8
    assert img.reshape(5, -1)[:, 721:].sum() == 0  # 63 zero padding pixels
    assert img[0, 0, 0] == round(255 * vec[0, 0]) and img[0, 1, 0] == round(255 * vec[0, 28])
    back = sp.from_image(img)
    assert back.shape == (5, 721)
    assert np.abs(back - vec).max() <= 0.5 / 255 + 1e-12
    # float images in [0, 1] (as read from PNG) and (N, 1, 28, 28) / flat shapes give the same vectors
    assert np.allclose(sp.from_image((img / 255.0)[:, None]), back)
    assert np.allclose(sp.from_image(img.reshape(5, 784)), back)
    assert np.allclose(sp.from_image(img[0]), back[:1])
    with pytest.raises(BadValueError, match="row 2"):
        sp.to_image(np.vstack([vec[:2], vec[2:3] * 2]))


def _toy(n=6, length=3601):
    grid = sp.SpectrumPreprocessing().grid()[:length]
    flux = 1.0 + np.outer(np.arange(1, n + 1), grid / 1e4)
    return Dataset(np.array([f"s{i}" for i in range(n)]), spectra={"lamost": Spectra(flux, grid)})


def test_line_and_image_representations():
    ds = _toy()
    line = sp.line_representation(ds, "lamost")
    assert line.shape == (6, 721)
    assert np.allclose(line.min(axis=1), 0) and np.allclose(line.max(axis=1), 1)
    assert np.all(np.diff(line, axis=1) > 0)  # increasing continuum stays increasing
    img = sp.image_representation(ds, "lamost")
    assert img.shape == (6, 1, 28, 28) and img.min() >= 0 and img.max() <= 1
    assert np.allclose(img * 255, np.round(img * 255))  # exactly the 8-bit grey levels
    assert np.abs(sp.from_image(img[:, 0]) - line).max() <= 0.5 / 255 + 1e-12
    # a block on another grid is resampled to the common one first
    other = Dataset(np.array(["a", "b"]), spectra={"lamost": Spectra(np.tile(np.linspace(1, 2, 500), (2, 1)),
                                                       np.linspace(3600, 9200, 500))})
    out = sp.line_representation(other, "lamost", {"grid_size": 3601})
    assert out.shape == (2, 721) and np.allclose(out[:, 0], 0) and np.allclose(out[:, -1], 1)
