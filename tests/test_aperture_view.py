"""The ``aperture_photometry`` view and the cutout view's ``isolate`` option: exact aperture sums against
pi r^2 and photutils, asinh magnitudes against Pogson and a hand value, colours, a simulated survey, the
dumps (fingerprints) and bad options."""

from __future__ import annotations

import json

import numpy as np
import pytest

from astromodal.data.dataset import Dataset, Images
from astromodal.data.simulate import simulate_survey
from astromodal.data.views import AperturePhotometryView, CutoutView
from astromodal.errors import BadValueError, ConfigError
from astromodal.experiments import RepresentationConfig, parse_config
from astromodal.transforms.isolation import (
    SDSS_SOFTENING,
    aperture_fluxes,
    asinh_magnitudes,
    isolate_images,
)

BANDS = ("u", "g", "r", "i", "z")


def dataset(pixels: np.ndarray, pixel_scale: float = 0.396, bands=BANDS) -> Dataset:
    return Dataset(ids=np.arange(len(pixels)), images={"im": Images(pixels, bands, pixel_scale)})


def test_uniform_image_gives_pi_r_squared_in_pixels():
    ds = dataset(np.ones((2, 5, 32, 32), dtype=np.float32), pixel_scale=0.5)
    view = AperturePhotometryView(radii=[1.5, 3.0, 7.9], outputs=["fluxes"])
    flux = view.build(ds).astype(np.float64)
    assert flux.shape == (2, 3 * 5)
    expected = np.repeat(np.pi * (np.array([1.5, 3.0, 7.9]) / 0.5) ** 2, 5)  # radius-major, then band
    np.testing.assert_allclose(flux[0], expected, rtol=1e-6)
    assert view.feature_names(ds)[:6] == ["flux_u_1.5", "flux_g_1.5", "flux_r_1.5", "flux_i_1.5", "flux_z_1.5",
                                          "flux_u_3"]


def test_vectorised_sums_equal_photutils_aperture_photometry():
    from photutils.aperture import CircularAperture, aperture_photometry

    rng = np.random.default_rng(0)
    pix = rng.normal(size=(3, 2, 21, 21))
    radii = [2.3, 6.0, 10.5]
    ours = aperture_fluxes(pix, radii)
    for n in range(3):
        for b in range(2):
            for k, r in enumerate(radii):
                table = aperture_photometry(pix[n, b], CircularAperture((10.0, 10.0), r), method="exact")
                assert abs(ours[n, b, k] - float(table["aperture_sum"][0])) < 1e-10
    with pytest.raises(BadValueError, match="aperture radius 10.600 px must be in"):
        aperture_fluxes(pix, [10.6])


def test_asinh_magnitudes_match_pogson_when_bright_and_a_hand_value_at_zero():
    b = np.array([SDSS_SOFTENING[x] for x in BANDS])
    bright = np.array([1e4, 3e3, 5e3, 2e4, 8e3])  # nanomaggies, f >> b
    np.testing.assert_allclose(asinh_magnitudes(bright, b), 22.5 - 2.5 * np.log10(bright), atol=1e-4)
    # f = 0: m = -2.5 log10(b); for r, b = 1.2e-10: 2.5 x 9.920819 = 24.802048
    assert abs(asinh_magnitudes(0.0, SDSS_SOFTENING["r"]) - 24.802048) < 1e-5
    neg = asinh_magnitudes(np.array([-1.0, 0.0, 1.0]), SDSS_SOFTENING["g"])
    assert np.isfinite(neg).all() and neg[0] > neg[1] > neg[2]


def test_view_on_a_simulated_survey_gives_finite_features_of_the_documented_shape():
    ds = simulate_survey(n=60, image_size=32, neighbour_fraction=0.5, instruments=[], seed=3)
    plain = AperturePhotometryView()
    X = plain.build(ds)
    assert X.shape == (60, 2 * 5 + 2 * 5) and X.dtype == np.float32 and np.isfinite(X).all()
    names = plain.feature_names(ds)
    assert len(names) == X.shape[1] and names[10:15] == ["u-g_1.5", "g-r_1.5", "r-i_1.5", "i-z_1.5", "mag_r_1.5"]
    mags, colours = X[:, :10].reshape(60, 2, 5), X[:, 10:].reshape(60, 2, 5)
    np.testing.assert_allclose(colours[:, :, :4], mags[:, :, :-1] - mags[:, :, 1:], atol=1e-5)
    np.testing.assert_array_equal(colours[:, :, 4], mags[:, :, 2])
    for method in ("mask", "crop"):
        Xi = AperturePhotometryView(isolate=method, outputs=["fluxes"], bands=["g", "r"], radii=[3.0]).build(ds)
        assert Xi.shape == (60, 2) and np.isfinite(Xi).all()
    # without neighbours the mask changes (almost) nothing in a 3" aperture
    nn = ds.columns["n_neighbours"].values.read()
    f0 = AperturePhotometryView(outputs=["fluxes"], radii=[3.0]).build(ds)
    fm = AperturePhotometryView(outputs=["fluxes"], radii=[3.0], isolate="mask").build(ds)
    np.testing.assert_allclose(fm[nn == 0], f0[nn == 0], rtol=1e-6, atol=1e-6)


def test_cutout_view_isolates_before_band_selection_and_resizing():
    ds = simulate_survey(n=20, image_size=32, neighbour_fraction=1.0, instruments=[], seed=5)
    im = ds.images["sdss"]
    iso, _ = isolate_images(im, "mask", keys=ds.ids.read())
    gr = CutoutView(bands=["g", "r"], size=16, isolate="mask").build(ds)
    np.testing.assert_allclose(gr, iso.select_bands(["g", "r"]).downsample(16).pixels.read(), rtol=1e-6)
    ri = CutoutView(bands=["r", "i"], size=16, isolate="mask").build(ds)
    np.testing.assert_array_equal(gr[:, 1], ri[:, 0])  # one block, one isolation, whichever bands are kept
    crop = CutoutView(stretch="asinh", isolate="crop", isolate_options={"dilate": 1}).build(ds)
    assert crop.shape == (20, 5, 32, 32)
    assert not np.array_equal(CutoutView().build(ds), CutoutView(isolate="mask").build(ds))


def test_dumps_without_isolation_are_unchanged_and_with_it_complete():
    assert CutoutView(images="sdss", bands=["g"]).model_dump() == {"kind": "cutout", "images": "sdss",
                                                                   "bands": ["g"], "size": None}
    a = CutoutView(isolate="mask").model_dump()
    b = CutoutView(isolate="mask", isolate_options={}).model_dump()
    assert a == b and a["isolate"] == "mask" and a["isolate_options"]["threshold"] == 2.0
    assert CutoutView.model_validate(json.loads(json.dumps(a))) == CutoutView(isolate="mask", isolate_options={})
    rep = RepresentationConfig(inputs={"p": {"kind": "aperture_photometry", "radii": [3]}})
    dump = rep.model_dump()["inputs"]["p"]
    assert "isolate" not in dump and "softening" not in dump and dump["radii"] == [3.0]


BASE = {"name": "x", "datasets": {"d": {"source": "simulate"}}, "models": [{"name": "random_forest"}]}


def config_error(view: dict) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config({**BASE, "representations": {"r": {"inputs": {"v": view}}}})
    assert "\n" not in str(e.value)
    return str(e.value)


def test_bad_options_are_one_line_errors_naming_the_option():
    assert "'isolate': Input should be 'none', 'mask' or 'crop'" in config_error({"kind": "cutout", "isolate": "blur"})
    assert "'isolate_options' given but 'isolate' is none" in config_error(
        {"kind": "cutout", "isolate_options": {"dilate": 1}})
    assert "unknown key 'isolate_options.dilation'" in config_error(
        {"kind": "cutout", "isolate": "mask", "isolate_options": {"dilation": 1}})
    assert "'outputs.0'" in config_error({"kind": "aperture_photometry", "outputs": ["flux"]})
    assert "radii (arcsec) must be positive" in config_error({"kind": "aperture_photometry", "radii": [-1]})
    ds = dataset(np.zeros((1, 3, 16, 16), dtype=np.float32), bands=("g", "r", "y"))
    with pytest.raises(ConfigError, match=r"option 'radii': \[4.0\] arcsec do not fit in the 16-pixel cutouts"):
        AperturePhotometryView(radii=[1.0, 4.0], bands=["g", "r"]).build(ds)
    with pytest.raises(ConfigError, match=r"option 'bands': images 'im' have no band\(s\) \['i'\]"):
        AperturePhotometryView(bands=["g", "i"]).build(ds)
    with pytest.raises(ConfigError, match=r"option 'softening': no asinh softening for band\(s\) \['y'\]"):
        AperturePhotometryView().build(ds)
    with pytest.raises(ConfigError, match="option 'reference': band 'r' is not among"):
        AperturePhotometryView(bands=["g", "y"], softening={"y": 1e-10}).build(ds)
    out = AperturePhotometryView(bands=["g", "y"], softening={"y": 1e-10}, outputs=["magnitudes"]).build(ds)
    np.testing.assert_allclose(out[0, :2], -2.5 * np.log10([0.9e-10, 1e-10]), rtol=1e-6)
