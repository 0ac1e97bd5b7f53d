"""Survey frames -> model images (astromodal.transforms.images, the SDSS frame reader, the rgb view), by hand
values: WCS cutout alignment in rotated, shifted bands, the ROI crop, Lupton RGB, resizing, detection."""

from __future__ import annotations

import bz2
import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from astromodal.data.dataset import Dataset, Images
from astromodal.data.readers.sdss_frames import Frame, read_fields, read_frame
from astromodal.errors import BadValueError, ConfigError, DataFormatError
from astromodal.transforms import images as tim

SCALE = 0.396 / 3600.0
RA0, DEC0 = 150.0, 0.0


def make_wcs(crpix, rot_deg=0.0, crval=(RA0, DEC0)):
    """A TAN WCS, east to the left, rotated by ``rot_deg``; CRPIX is FITS 1-based."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = list(crpix)
    c, s = np.cos(np.radians(rot_deg)), np.sin(np.radians(rot_deg))
    w.wcs.cd = SCALE * np.array([[-c, s], [s, c]])
    return w


def gaussian(shape, x0, y0, amp=100.0, sigma=1.5):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return amp * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))


def hand_pixel(wcs, dra_arcsec, ddec_arcsec):
    """0-based pixel of (RA0 + dra, DEC0 + ddec) by hand: CRPIX - 1 + CD^-1 (xi, eta); at dec 0 and a few arcsec
    the TAN projection is linear to 1e-9 px."""
    xi_eta = np.array([dra_arcsec, ddec_arcsec]) / 3600.0
    dx, dy = np.linalg.solve(wcs.wcs.cd, xi_eta)
    return wcs.wcs.crpix[0] - 1 + dx, wcs.wcs.crpix[1] - 1 + dy


def centroid(img):
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    return float((img * xx).sum() / img.sum()), float((img * yy).sum() / img.sum())


def two_band_field(shape=(200, 240)):
    """r: plain WCS; g: rotated by 30 degrees and shifted. A source at CRVAL and one 8", -5" from it."""
    wr = make_wcs((101.25, 91.25))
    wg = make_wcs((120.6, 70.9), rot_deg=30.0)
    field = {}
    for band, w in (("r", wr), ("g", wg)):
        x1, y1 = hand_pixel(w, 8.0, -5.0)
        data = gaussian(shape, w.wcs.crpix[0] - 1, w.wcs.crpix[1] - 1) + gaussian(shape, x1, y1)
        field[band] = Frame(None, band, 1, 1, 1, data.astype(np.float32), w)
    return field


def test_a_source_at_known_ra_dec_lands_on_the_centre_of_every_band():
    field = two_band_field()
    ra = [RA0, RA0 + 8.0 / 3600, RA0 + 0.5, RA0]
    dec = [DEC0, DEC0 - 5.0 / 3600, DEC0, DEC0 + 85 * SCALE]  # third: off every frame; fourth: near the edge
    pix, ok, counts = tim.cutouts_from_frames(field, ra, dec, size=64, bands=("g", "r"))
    assert pix.shape == (4, 2, 64, 64) and pix.dtype == np.float32
    assert ok.tolist() == [True, True, False, False]
    assert counts == {"kept": 2, "skipped_edge": 1, "skipped_off": 1, "skipped_nan": 0}
    # even S: the centre is (S - 1) / 2 = 31.5; CRVAL is at 0-based pixel CRPIX - 1 (r: 100.25, 90.25; g: 119.6,
    # 69.9), and Cutout2D cuts whole pixels so the source sits at the fractional part: 31.25 / 31.6, 31.9
    # (a one-pixel origin slip, as in the study's public code, would put it at 30.25 or 32.25)
    for b, expected in ((1, (31.25, 31.25)), (0, (31.6, 31.9))):
        cut = pix[0, b].copy()
        cut[cut < 1e-3] = 0  # the second source is 9" away: outside a 3 px radius
        yy, xx = np.mgrid[:64, :64]
        near = np.hypot(xx - 31.5, yy - 31.5) < 6
        c = centroid(np.where(near, cut, 0.0))
        np.testing.assert_allclose(c, expected, atol=0.02)
    # the offset source, through a rotated WCS: within half a pixel of the centre in both bands
    for b in (0, 1):
        yy, xx = np.mgrid[:64, :64]
        c = centroid(np.where(np.hypot(xx - 31.5, yy - 31.5) < 6, pix[1, b], 0.0))
        assert abs(c[0] - 31.5) <= 0.5 and abs(c[1] - 31.5) <= 0.5, (b, c)


def test_odd_sizes_centre_on_the_middle_pixel():
    field = two_band_field()
    pix, ok, _ = tim.cutouts_from_frames(field, [RA0], [DEC0], size=33, bands=("r", "g"))
    assert ok.all()
    yy, xx = np.mgrid[:33, :33]
    c_r = centroid(np.where(np.hypot(xx - 16, yy - 16) < 6, pix[0, 0], 0.0))
    np.testing.assert_allclose(c_r, (16.25, 16.25), atol=0.02)  # centre pixel 16, source at 100.25 -> 16.25
    # g: pixel (119.6, 69.9) -> the nearest pixels 120, 70 are the centre: (15.6, 15.9)
    c_g = centroid(np.where(np.hypot(xx - 16, yy - 16) < 6, pix[0, 1], 0.0))
    np.testing.assert_allclose(c_g, (15.6, 15.9), atol=0.02)


def test_nan_pixels_are_skipped_and_counted_or_one_error_line():
    field = two_band_field()
    field["g"].data[69, 119] = np.nan
    pix, ok, counts = tim.cutouts_from_frames(field, [RA0], [DEC0], size=16, bands=("r", "g"))
    assert not ok.any() and counts["skipped_nan"] == 1 and counts["kept"] == 0
    with pytest.raises(BadValueError, match=r"object 'star-1' \(row 0\).*NaN.*band g") as exc:
        tim.cutouts_from_frames(field, [RA0], [DEC0], size=16, bands=("r", "g"), nan="error", ids=["star-1"])
    assert "\n" not in str(exc.value)


def test_an_object_is_taken_from_the_first_field_holding_it_whole():
    near_edge = {"r": Frame(None, "r", 1, 1, 1, np.ones((100, 100), np.float32), make_wcs((5.0, 50.0)))}
    whole = {"r": Frame(None, "r", 1, 1, 2, 2 * np.ones((100, 100), np.float32), make_wcs((50.0, 50.0)))}
    pix, ok, counts = tim.cutouts_from_frames([near_edge, whole], [RA0], [DEC0], size=20, bands=("r",))
    assert ok.all() and counts["kept"] == 1 and float(pix[0, 0, 0, 0]) == 2.0


# ------------------------------------------------------------------------------------------- the frame reader
def _write_frame(path, data, wcs=None, compress=False):
    header = wcs.to_header() if wcs is not None else fits.Header()
    raw = fits.HDUList([fits.PrimaryHDU(data.astype(np.float32), header=header)])
    if compress:
        import io

        buf = io.BytesIO()
        raw.writeto(buf)
        path.write_bytes(bz2.compress(buf.getvalue()))
    else:
        raw.writeto(path)
    return path


def test_frame_reader_reads_bz2_nanomaggies_and_wcs(tmp_path):
    w = make_wcs((101.25, 91.25))
    data = gaussian((50, 60), 10.0, 20.0)
    p = _write_frame(tmp_path / "frame-r-000094-1-0012.fits.bz2", data, w, compress=True)
    frame = read_frame(p)
    assert (frame.band, frame.run, frame.camcol, frame.field) == ("r", 94, 1, 12)
    assert frame.data.dtype == np.float32 and frame.shape == (50, 60)
    np.testing.assert_array_equal(frame.data, data.astype(np.float32))
    x, y = frame.to_pixel([RA0], [DEC0])
    np.testing.assert_allclose([x[0], y[0]], [100.25, 90.25], atol=1e-9)  # FITS CRPIX 1-based -> 0-based
    assert abs(frame.pixel_scale - 0.396) < 1e-9


def test_a_frame_without_celestial_wcs_is_one_line_naming_it(tmp_path):
    p = _write_frame(tmp_path / "frame-g-000094-1-0012.fits", np.zeros((10, 10)))
    with pytest.raises(DataFormatError, match="frame-g-000094-1-0012.fits: no celestial WCS") as exc:
        read_frame(p)
    assert "\n" not in str(exc.value)
    _write_frame(tmp_path / "frame-r-000094-1-0012.fits", np.zeros((10, 10)), make_wcs((5, 5)))
    with pytest.raises(DataFormatError, match=r"1 bad SDSS frame: .*frame-g-000094-1-0012.fits: no celestial WCS"):
        read_fields(tmp_path, bands="gr")


# ------------------------------------------------------------------------------------------- detection
def test_detection_finds_injected_sources_at_their_ra_dec():
    rng = np.random.default_rng(1)
    w = make_wcs((150.0, 120.0))
    shape = (240, 300)
    truth = [(60.3, 50.7, 50.0), (200.1, 150.4, 20.0), (120.8, 190.2, 8.0)]  # x, y, amplitude
    data = rng.normal(0, 0.05, shape) + sum(gaussian(shape, x, y, a, 1.6) for x, y, a in truth)
    frame = Frame(None, "r", 1, 1, 1, data.astype(np.float32), w)
    table = tim.detect_sources_on(frame, nsigma=5.0, npixels=8, box_size=32)
    assert len(table) == 3
    assert list(table["flux"]) == sorted(table["flux"], reverse=True)  # brightest first
    for (x, y, _), row in zip(truth, table, strict=True):
        assert abs(row["x"] - x) < 0.1 and abs(row["y"] - y) < 0.1
        sky = w.pixel_to_world(x, y)
        assert abs(row["ra"] - sky.ra.deg) * 3600 < 0.05 and abs(row["dec"] - sky.dec.deg) * 3600 < 0.05


# ------------------------------------------------------------------------------------------- band combinations
def test_table_a1_names_and_parsing():
    names = tim.TABLE_A1_COMBINATIONS
    assert len(names) == 25 and len(set(names)) == 25 and tim.PAPER_COMBINATION not in names
    parts = [tim.parse_combination(n) for n in names]
    assert sum(len(p[0]) == 3 and len(p[1]) == 3 for p in parts) == 15
    assert sum(len(p[0]) == 3 and len(p[1]) == 2 for p in parts) == 10
    # every 3+3 pair reuses exactly one band; every 3+2 pair uses the five bands once
    assert all(len(set(a) & set(b)) == 1 for a, b in parts[:15])
    assert all(sorted(a + b) == sorted("ugriz") for a, b in parts[15:])
    assert tim.parse_combination("gru+iuz") == ["gru", "iuz"] and tim.parse_combination("gri") == ["gri"]
    for bad in ("grx+uz", "ggr+uz", "gri+", "g", "griz"):
        with pytest.raises(ConfigError, match="unknown band combination") as exc:
            tim.parse_combination(bad)
        assert repr(bad) in str(exc.value) and "\n" not in str(exc.value)


# ------------------------------------------------------------------------------------------- Lupton RGB
def test_lupton_rgb_by_hand():
    # astropy's Lupton stretch: y = asinh(Q x / stretch) * 0.1 / asinh(0.1 Q), as 8 bits (truncated) / 255.
    # A grey pixel of 1 nanomaggy in g, r, i: asinh(16) * 0.1 / asinh(0.8) = 0.4731 -> 120 / 255; 0.2 -> 65 / 255
    px = np.zeros((2, 5, 4, 4))
    px[0, 1:4] = 1.0
    px[1, 1:4] = 0.2
    out = tim.lupton_rgb(px, "ugriz", "gri")
    assert out.shape == (2, 3, 4, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], 120 / 255, rtol=1e-6)
    np.testing.assert_allclose(out[1], 65 / 255, rtol=1e-6)
    # RGB order, reddest band red: only i bright -> channel 0 alone; only g -> channel 2 alone
    for band, channel in ((3, 0), (1, 2)):
        one = np.zeros((1, 5, 2, 2))
        one[0, band] = 1.0
        rgb = tim.lupton_rgb(one, "ugriz", "gri")[0, :, 0, 0]
        assert rgb[channel] > 0 and np.count_nonzero(rgb) == 1, (band, rgb)
    # a 2-band part is (b1, mean, b2) as (blue, green, red): u = 0, z = 0.6 is the 3-band image (0, 0.3, 0.6)
    uz = np.zeros((1, 5, 2, 2))
    uz[0, 4] = 0.6
    three = np.zeros((1, 3, 2, 2))
    three[0, 1], three[0, 2] = 0.3, 0.6
    np.testing.assert_array_equal(tim.lupton_rgb(uz, "ugriz", "uz"), tim.lupton_rgb(three, "gri", "gri"))
    # objects are mapped in blocks: each is exactly astropy's make_lupton_rgb(i, r, g) of that object alone
    from astropy.visualization import make_lupton_rgb

    rnd = np.random.default_rng(5).normal(0.2, 0.5, (4, 5, 8, 8))
    block = tim.lupton_rgb(rnd, "ugriz", "gri", Q=8, stretch=0.5, minimum=0)
    for k in range(4):
        alone = make_lupton_rgb(rnd[k, 3], rnd[k, 2], rnd[k, 1], minimum=0, stretch=0.5, Q=8)
        np.testing.assert_array_equal(block[k], np.moveaxis(alone, -1, 0) / np.float32(255))
    with pytest.raises(ConfigError, match="unknown band combination 'gxz'"):
        tim.lupton_rgb(px, "ugriz", "gxz")
    with pytest.raises(BadValueError, match="needs band u"):
        tim.lupton_rgb(px[:, 1:], "griz", "urz")


# ------------------------------------------------------------------------------------------- ROI
def _shells(size=64):
    """Chebyshev shell index k of every pixel: the centred window of side 2k holds shells 1..k."""
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    return (np.maximum(np.abs(yy - c), np.abs(xx - c)) + 0.5).astype(int)


def test_roi_side_by_hand():
    k = _shells()
    # a bright square ring: shells >= 5 valid, shells 1-4 (the central 8x8 = 64 px) invalid
    ring = np.where(k >= 5, 1.0, 0.0)
    # paper (fraction of the whole window): side 6: 36/36, 8: 64/64, 10: 64/100, 12: 64/144, 14: 64/196,
    # 16: 64/256 = 0.25, 18: 64/324 = 0.198 <= 0.2 -> 18
    assert tim.roi_side(ring) == 18
    # the new ring's own fraction: the ring of side 10 (shell 5) is all valid -> 10
    assert tim.roi_side(ring, variant="ring") == 10
    # public code: the 12x12 start box is 64/144 = 0.44 invalid at 0.11 (> 0.2): the start box
    assert tim.roi_side(ring, variant="public_code") == 12
    # a bright disc of radius 8 around the centre: the paper's rule stops at once (the 6x6 centre is valid)
    yy, xx = np.mgrid[:64, :64]
    disc = (np.hypot(yy - 31.5, xx - 31.5) <= 8).astype(float)
    assert tim.roi_side(disc) == 6
    # public code on the disc: 12x12 valid (corners at 7.78 px); the ring of side 14 (offsets 6.5) has
    # 2 x 10 + 2 x 10 = 40 of 52 pixels within 8 px: 12/52 = 0.23 > 0.2 blank -> stop at 14
    assert tim.roi_side(disc, variant="public_code") == 14
    # extent (grow while the new ring is mostly valid): the same 14 for radius 8 (start 6 and the rings of 8, 10,
    # 12 valid); radius 5: the ring of side 10 (offsets 4.5) has 8 of 20 column and 8 of 16 row pixels within
    # 5 px: 20/36 invalid -> stop at 10; the square ring's all-invalid centre is the start window
    assert tim.roi_side(disc, variant="extent") == 14
    small = (np.hypot(yy - 31.5, xx - 31.5) <= 5).astype(float)
    assert tim.roi_side(small, variant="extent") == 10 and tim.roi_side(small, variant="public_code") == 12
    assert tim.roi_side(ring, variant="extent") == 6
    # a faint centre grows to the whole image; thresholds apply as "<= alpha"
    assert tim.roi_side(np.zeros((64, 64))) == 64
    assert tim.roi_side(np.full((64, 64), 0.05)) == 64 and tim.roi_side(np.full((64, 64), 0.0501)) == 6
    with pytest.raises(ConfigError, match="unknown ROI variant"):
        tim.roi_side(disc, variant="code")


def _reference_side(r, l, alpha, beta, variant):  # noqa: E741 (the paper's name)
    """The ROI rules as plain loops over rings (the paper's incremental counting), for comparison."""
    size = r.shape[0]
    if variant in ("extent", "public_code"):
        start, a0, top = (l, alpha, size) if variant == "extent" else (12, 0.11, min(62, size))
        lo, hi = tim.roi_window(size, start)
        if (r[lo:hi, lo:hi] <= a0).mean() > beta:
            return start
        side = start
        while side + 2 <= top:
            lo, hi = tim.roi_window(size, side + 2)
            ring = np.ones((side + 2, side + 2), bool)
            ring[1:-1, 1:-1] = False
            side += 2
            if (r[lo:hi, lo:hi] <= alpha)[ring].mean() > beta:
                break
        return side
    side = l
    lo, hi = tim.roi_window(size, side)
    bad, total = int((r[lo:hi, lo:hi] <= alpha).sum()), side * side
    frac = bad / total
    while frac > beta and side < size:
        new = min(size, side + 2)
        lo, hi = tim.roi_window(size, new)
        ring_bad = int((r[lo:hi, lo:hi] <= alpha).sum()) - bad
        ring_total = new * new - total
        bad, total, side = bad + ring_bad, new * new, new
        frac = bad / total if variant == "paper" else ring_bad / ring_total
    return side


@pytest.mark.parametrize("variant", tim.ROI_VARIANTS)
def test_roi_sides_equal_the_ring_by_ring_rule(variant):
    rng = np.random.default_rng(3)
    for size in (20, 33, 64):
        yy, xx = np.mgrid[:size, :size]
        c = (size - 1) / 2
        radius = rng.uniform(1, size / 2, 40)
        imgs = np.exp(-np.hypot(yy - c, xx - c)[None] ** 2 / (2 * radius[:, None, None] ** 2))
        imgs = imgs * rng.uniform(0.02, 1, (40, 1, 1)) + rng.normal(0, 0.02, (40, size, size))
        got = tim.roi_sides(imgs, 6, 0.05, 0.2, variant)
        want = [_reference_side(im, 6, 0.05, 0.2, variant) for im in imgs]
        assert got.tolist() == want


def test_roi_crop_crops_every_channel_then_resizes():
    k = _shells()
    r = np.stack([np.where(k >= 5, 1.0, 0.0), np.ones((64, 64))])  # sides 18 and 6
    pixels = np.arange(2 * 2 * 64 * 64, dtype=np.float32).reshape(2, 2, 64, 64)
    out, sides = tim.roi_crop(pixels, r, size=6)
    assert sides.tolist() == [18, 6] and out.shape == (2, 2, 6, 6)
    np.testing.assert_array_equal(out[1], pixels[1, :, 29:35, 29:35])  # centred 6x6: rows 29..34
    np.testing.assert_allclose(out[0], pixels[0, :, 23:41, 23:41].reshape(2, 6, 3, 6, 3).mean(axis=(2, 4)))
    assert tim.roi_window(64, 18) == (23, 41)


def test_resize_bilinear_up_area_down():
    x = np.array([[[[0.0, 4.0], [8.0, 12.0]]]], dtype=np.float32)
    up = tim.resize_images(x, 4)
    # align_corners=False: samples at 1/4 and 3/4 of a pixel: 0, 1, 3, 4 along a row of 0 .. 4
    np.testing.assert_allclose(up[0, 0, 0], [0, 1, 3, 4])
    np.testing.assert_allclose(up[0, 0, :, 0], [0, 2, 6, 8])
    big = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(tim.resize_images(big, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert tim.resize_images(big, 4) is not big and np.array_equal(tim.resize_images(big, 4), big)


# ------------------------------------------------------------------------------------------- the rgb view
def _image_ds(n=3, size=16):
    rng = np.random.default_rng(0)
    px = rng.uniform(0, 0.02, (n, 5, size, size)).astype(np.float32)
    px[:, :, size // 2 - 3: size // 2 + 3, size // 2 - 3: size // 2 + 3] += 2.0
    return Dataset(np.arange(n), images={"sdss": Images(px, tuple("ugriz"))})


def test_rgb_view_builds_lupton_images_with_roi_and_size():
    from astromodal.experiments import RepresentationConfig

    ds = _image_ds()
    rep = RepresentationConfig(inputs={"gri": {"kind": "rgb", "images": "sdss", "bands": "gri", "size": 8},
                                       "urz": {"kind": "rgb", "bands": "urz", "roi": True, "size": 32},
                                       "uz": {"kind": "rgb", "bands": "uz"}})
    X = ds.inputs(rep.views())
    assert {k: v.shape for k, v in X.items()} == {"gri": (3, 3, 8, 8), "urz": (3, 3, 32, 32), "uz": (3, 3, 16, 16)}
    px = ds.images["sdss"].pixels.read()
    full = tim.lupton_rgb(px, "ugriz", "gri")
    np.testing.assert_allclose(X["gri"], tim.resize_images(full, 8))
    # the ROI is found on the r channel of the Lupton gri image (its green channel), the same for every part
    sides = [tim.roi_side(full[k, 1]) for k in range(3)]
    assert sides == [6, 6, 6]
    urz = tim.lupton_rgb(px, "ugriz", "urz")
    np.testing.assert_allclose(X["urz"], tim.resize_images(urz[:, :, 5:11, 5:11], 32), rtol=1e-6)
    assert X["gri"].dtype == np.float32 and 0 <= X["gri"].min() and X["gri"].max() <= 1
    # roi: true and the default settings are one fingerprint; the dump round-trips
    a = RepresentationConfig(inputs={"x": {"kind": "rgb", "bands": "gri", "roi": True}}).model_dump()
    b = RepresentationConfig(inputs={"x": {"kind": "rgb", "bands": "gri",
                                           "roi": {"l": 6, "alpha": 0.05, "beta": 0.2, "variant": "paper"}}}).model_dump()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert RepresentationConfig(**json.loads(json.dumps(a))).model_dump() == a


def test_rgb_view_unknown_band_combination_is_one_config_error_line():
    from astromodal.experiments import parse_config

    cfg = {"name": "x", "datasets": {"d": {"source": "simulate"}}, "models": [{"name": "random_forest"}],
           "representations": {"r": {"inputs": {"gri": {"kind": "rgb", "bands": "gqz"}}}}}
    with pytest.raises(ConfigError, match="unknown band combination 'gqz'") as exc:
        parse_config(cfg)
    assert "\n" not in str(exc.value) and "'gri'" in str(exc.value)


def test_subpixel_alignment_centres_the_source_in_every_band():
    """Whole pixels leave the source at (31.25, 31.25) in r and (31.6, 31.9) in g (the test above); subpixel
    alignment puts both on (31.5, 31.5) within 0.03 px and keeps the flux."""
    field = two_band_field()
    whole, _, _ = tim.cutouts_from_frames(field, [RA0], [DEC0], size=64, bands=("g", "r"))
    pix, ok, counts = tim.cutouts_from_frames(field, [RA0], [DEC0], size=64, bands=("g", "r"), align="subpixel")
    assert ok.all() and counts["kept"] == 1 and pix.dtype == np.float32
    yy, xx = np.mgrid[:64, :64]
    near = np.hypot(xx - 31.5, yy - 31.5) < 6
    for b in (0, 1):
        c = centroid(np.where(near, pix[0, b], 0.0))
        np.testing.assert_allclose(c, (31.5, 31.5), atol=0.03)
        assert pix[0, b][near].sum() == pytest.approx(whole[0, b][near].sum(), rel=5e-3)
    # the g and r centroids now agree (whole pixels: 0.35 and 0.65 px apart)
    cg, cr = centroid(np.where(near, pix[0, 0], 0.0)), centroid(np.where(near, pix[0, 1], 0.0))
    assert abs(cg[0] - cr[0]) < 0.05 and abs(cg[1] - cr[1]) < 0.05
    with pytest.raises(ConfigError, match="align must be one of pixel, subpixel"):
        tim.cutouts_from_frames(field, [RA0], [DEC0], size=64, bands=("g", "r"), align="lanczos")
