"""HiSS-Cube ML cube layout: a hand-made file written with h5py (not the writer) reads as a Dataset; the
error propagation across zooms by hand; write -> read round trips (hand-built and simulated datasets); bad
input one line each; the optional image errors of Images and the astromodal HDF5 file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from astromodal.data.dataset import Column, Dataset, Images, Spectra, Target
from astromodal.data.readers import hisscube as hc
from astromodal.errors import ConfigError, DataFormatError

N = 2
L = 4620
S = 64


def _hand_cube(path, n=N, side=S, length=L, zooms=4, target_count=None, bad_shape_zoom=None, drop_errors=False):
    """A cube in the reference layout written directly with h5py (error_ds object references, no metadata)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        dense = f.create_group("dense_cube")
        dense.attrs["target_count"] = n if target_count is None else target_count
        for z in range(zooms):
            s = side // 2 ** z if z != bad_shape_zoom else side // 2 ** z + 1
            g = dense.create_group(f"{z}/ml_image")
            g.attrs["NX_class"] = "NXdata"
            im = g.create_dataset(f"cutout_3d_cube_zoom_{z}", data=rng.normal(size=(n, 5, s, s)).astype("<f4"))
            if not drop_errors:
                err = g.create_dataset("errors", data=np.full((n, 5, s, s), 0.5, dtype="<f4"))
                im.attrs["error_ds"] = err.ref
            g = dense.create_group(f"{z}/ml_spectrum")
            m = length // 2 ** z
            flux = np.full((n, m), 2e-17, dtype="<f4")
            sigma = np.full((n, m), 1e-18, dtype="<f4")
            flux[0, :3] = np.nan  # outside the spectrum's coverage (the reference writes NaN)
            sigma[0, :3] = np.nan
            sigma[1, 5] = 0.0  # a zero sigma: masked
            sp = g.create_dataset(f"spectral_1d_cube_zoom_{z}", data=flux)
            err = g.create_dataset("errors", data=sigma)
            sp.attrs["error_ds"] = err.ref
    return path


def test_hand_made_cube_reads_as_dataset(tmp_path):
    path = _hand_cube(tmp_path / "ref.h5")
    ds = hc.read_cube(path)
    assert len(ds) == N and list(ds.ids.read()) == [0, 1] and np.isnan(ds.ra.read()).all()
    assert list(ds.images) == ["image_z0", "image_z1", "image_z2", "image_z3"]
    assert list(ds.spectra) == ["spectrum_z0", "spectrum_z1", "spectrum_z2", "spectrum_z3"]
    with h5py.File(path) as f:
        raw = f["dense_cube/1/ml_image/cutout_3d_cube_zoom_1"][...]
    im1 = ds.images["image_z1"]
    assert im1.pixels.shape == (N, 5, 32, 32) and im1.bands == tuple("ugriz") and im1.pixel_scale == pytest.approx(0.792)
    np.testing.assert_array_equal(im1.pixels.read(), raw)
    np.testing.assert_array_equal(im1.errors.read(), 0.5)
    lengths = [ds.spectra[f"spectrum_z{z}"].n_pixels for z in range(4)]
    assert lengths == [4620, 2310, 1155, 577]
    s0 = ds.spectra["spectrum_z0"]
    assert s0.unit == "1e-17 erg / (s cm2 Angstrom)"
    np.testing.assert_allclose(s0.wavelength, np.linspace(3839.7244, 8914.597, 4620))
    w = s0.wavelength
    np.testing.assert_allclose(ds.spectra["spectrum_z1"].wavelength[:2], [(w[0] + w[1]) / 2, (w[2] + w[3]) / 2])
    flux, ivar, mask = s0.flux.read(), s0.ivar.read(), s0.mask.read()
    # file values x 1e17; ivar = 1 / (0.1)^2 = 100; NaN flux / NaN or zero sigma masked with flux 0, ivar 0
    np.testing.assert_allclose(flux[1, 10], 2.0, rtol=1e-6)
    np.testing.assert_allclose(ivar[1, 10], 100.0, rtol=1e-5)
    assert mask[0, :3].all() and (flux[0, :3] == 0).all() and (ivar[0, :3] == 0).all()
    assert mask[1, 5] and ivar[1, 5] == 0 and mask.sum() == 4
    # lazy: the same values read on use
    lz = hc.read_cube(path, lazy=True)
    np.testing.assert_array_equal(lz.spectra["spectrum_z2"].ivar.read(), ds.spectra["spectrum_z2"].ivar.read())
    assert lz.spectra["spectrum_z0"].flux.is_lazy
    lz.meta["_h5file"].close()


def test_registered_reader_opens_a_cube(tmp_path):
    from astromodal.data.readers import choose_reader, read

    path = _hand_cube(tmp_path / "ref.h5")
    assert choose_reader(path).name == "hisscube"
    assert len(read(path)) == N and len(read(path, reader="hisscube")) == N
    # a config's dataset source, and the file counts as astromodal's own only when astromodal wrote it
    from astromodal.atomic import is_tool_written
    from astromodal.data.sources import load_source

    train, test = load_source("hisscube", {"path": str(path)})
    assert test is None and len(train) == N and "image_z3" in train.images and "spectrum_z0" in train.spectra
    assert not is_tool_written(path)
    assert is_tool_written(hc.write_cube(train, tmp_path / "ours.h5"))


@pytest.mark.parametrize("kind, match", [
    ("missing zoom", r"ref\.h5: /dense_cube/3/ml_image/cutout_3d_cube_zoom_3 is missing"),
    ("mismatched N", r"ref\.h5: /dense_cube/0/ml_image/cutout_3d_cube_zoom_0 holds 2 objects but /dense_cube "
                     r"target_count is 3"),
    ("wrong shape", r"ref\.h5: /dense_cube/2/ml_image/cutout_3d_cube_zoom_2 has shape \(2, 5, 17, 17\); expected "
                    r"\(2, 5, 16, 16\)"),
    ("no errors", r"ref\.h5: /dense_cube/0/ml_image/cutout_3d_cube_zoom_0 has no error dataset"),
])
def test_bad_cubes_are_one_line(tmp_path, kind, match):
    kw = {"missing zoom": {"zooms": 3}, "mismatched N": {"target_count": 3}, "wrong shape": {"bad_shape_zoom": 2},
          "no errors": {"drop_errors": True}}[kind]
    path = _hand_cube(tmp_path / "ref.h5", **kw)
    with pytest.raises(DataFormatError, match=match) as exc:
        hc.read_cube(path)
    assert "\n" not in str(exc.value)


def test_mismatched_n_between_zooms_and_not_a_cube(tmp_path):
    path = _hand_cube(tmp_path / "ref.h5")
    with h5py.File(path, "r+") as f:
        del f["dense_cube/2/ml_spectrum/spectral_1d_cube_zoom_2"]
        f["dense_cube/2/ml_spectrum"].create_dataset("spectral_1d_cube_zoom_2", data=np.zeros((3, 1155), "<f4"))
    with pytest.raises(DataFormatError, match=r"/dense_cube/2/ml_spectrum/spectral_1d_cube_zoom_2 holds 3 objects"):
        hc.read_cube(path)
    plain = tmp_path / "plain.h5"
    Dataset(np.arange(2), columns={"x": np.ones(2)}).save(plain)
    with pytest.raises(DataFormatError, match="an astromodal dataset file, not a HiSS-Cube ML cube"):
        hc.read_cube(plain)


# ------------------------------------------------------------------------------------------ zoom arithmetic
def test_error_propagation_by_hand():
    pix = np.array([[1.0, 2.0], [3.0, 4.0]])
    sig = np.array([[1.0, 2.0], [2.0, 4.0]])
    p, s = hc.halve_image(pix, sig)
    assert p.shape == (1, 1) and p[0, 0] == pytest.approx(2.5)
    assert s[0, 0] == pytest.approx(np.sqrt(1 + 4 + 4 + 16) / 4)  # 1.25, not the mean sigma 2.25 / 2
    f, e = hc.halve_spectrum(np.array([2.0, 4.0, 1.0, np.nan, 7.0]), np.array([3.0, 4.0, 1.0, 1.0, 1.0]))
    assert f.shape == (2,) and f[0] == pytest.approx(3.0) and e[0] == pytest.approx(2.5)  # sqrt(9 + 16) / 2
    assert np.isnan(f[1])  # a pair with a missing sample is missing; the odd last sample is dropped
    np.testing.assert_allclose(hc.halve_wavelength(np.array([1.0, 2.0, 3.0, 4.0, 5.0])), [1.5, 3.5])


# ------------------------------------------------------------------------------------------ round trips
def _hand_dataset(n=3, side=8):
    rng = np.random.default_rng(1)
    grid = hc.cube_grid()
    pix = rng.normal(size=(n, 5, side, side)).astype(np.float32)
    err = rng.uniform(0.1, 1.0, size=pix.shape).astype(np.float32)
    flux = rng.uniform(1, 10, size=(n, len(grid))).astype(np.float32)
    ivar = rng.uniform(0.5, 2.0, size=flux.shape).astype(np.float32)
    mask = np.zeros(flux.shape, bool)
    mask[0, 100:104] = True
    return Dataset(
        np.array(["a", "b", "c"][:n]), np.array([10.0, 20.0, 30.0][:n]), np.array([-1.0, 0.0, 1.0][:n]),
        spectra={"sdss": Spectra(flux, grid, ivar, mask)},
        images={"sdss": Images(pix, tuple("ugriz"), 0.396, "nanomaggies", err)},
        columns={"plate": Column(np.array([1, 2, 3][:n]), ""), "mag_r": Column(np.array([17.5, 18.0, 19.0][:n]), "mag")},
        targets={"sfr": Target(np.array([0.1, np.nan, 2.0][:n]), "regression", unit="Msun/yr"),
                 "class": Target.from_labels(["GALAXY", "QSO", "GALAXY"][:n])},
        meta={"note": "hand"})


def test_write_read_round_trip_by_hand(tmp_path):
    ds = _hand_dataset()
    path = hc.write_cube(ds, tmp_path / "cube.h5")
    with h5py.File(path) as f:  # the layout itself
        assert f["dense_cube"].attrs["target_count"] == 3
        d = f["dense_cube/0/ml_spectrum/spectral_1d_cube_zoom_0"]
        assert d.dtype == np.float32 and f[d.attrs["error_ds"]].name == "/dense_cube/0/ml_spectrum/errors"
        assert f["dense_cube/3/ml_image/cutout_3d_cube_zoom_3"].shape == (3, 5, 1, 1)
        assert f["dense_cube/3/ml_spectrum/spectral_1d_cube_zoom_3"].shape == (3, 577)
        np.testing.assert_allclose(d[0, :2], ds.spectra["sdss"].flux.read()[0, :2] * 1e-17, rtol=1e-6)
    back = hc.read_cube(path)
    pix = ds.images["sdss"].pixels.read().astype(np.float64)
    err = ds.images["sdss"].errors.read().astype(np.float64)
    np.testing.assert_array_equal(back.images["image_z0"].pixels.read(), pix.astype(np.float32))
    np.testing.assert_allclose(back.images["image_z1"].pixels.read()[1, 2, 0, 0], pix[1, 2, :2, :2].mean(), rtol=1e-6)
    np.testing.assert_allclose(back.images["image_z1"].errors.read()[1, 2, 0, 0],
                               np.sqrt((err[1, 2, :2, :2] ** 2).sum()) / 4, rtol=1e-6)
    flux = ds.spectra["sdss"].flux.read().astype(np.float64)
    sig = 1 / np.sqrt(ds.spectra["sdss"].ivar.read().astype(np.float64))
    s0, s1 = back.spectra["spectrum_z0"], back.spectra["spectrum_z1"]
    np.testing.assert_allclose(s0.flux.read()[2], flux[2], rtol=1e-6)
    np.testing.assert_allclose(s0.ivar.read()[2], ds.spectra["sdss"].ivar.read()[2], rtol=1e-5)
    np.testing.assert_allclose(s1.flux.read()[2, 7], (flux[2, 14] + flux[2, 15]) / 2, rtol=1e-6)
    np.testing.assert_allclose(1 / np.sqrt(s1.ivar.read()[2, 7]), np.hypot(sig[2, 14], sig[2, 15]) / 2, rtol=1e-5)
    assert s0.mask.read()[0, 100:104].all() and s0.mask.read().sum() == 4
    assert s1.mask.read()[0, 50:52].all() and s1.mask.read().sum() == 2
    assert list(back.ids.read()) == ["a", "b", "c"] and back.ra.read().tolist() == [10.0, 20.0, 30.0]
    assert back.columns["plate"].values.read().tolist() == [1, 2, 3] and back.columns["mag_r"].unit == "mag"
    assert back.targets["class"].labels().tolist() == ["GALAXY", "QSO", "GALAXY"]
    sfr = back.targets["sfr"]
    assert sfr.kind == "regression" and sfr.unit == "Msun/yr" and np.isnan(sfr.values.read()[1])
    assert back.meta["note"] == "hand"
    # a cube-read dataset writes back as it is
    again = hc.read_cube(hc.write_cube(back, tmp_path / "again.h5"))
    for z in range(4):
        np.testing.assert_array_equal(again.images[f"image_z{z}"].errors.read(), back.images[f"image_z{z}"].errors.read())
        np.testing.assert_allclose(again.spectra[f"spectrum_z{z}"].flux.read(), back.spectra[f"spectrum_z{z}"].flux.read(),
                                   rtol=1e-6)
        np.testing.assert_array_equal(again.spectra[f"spectrum_z{z}"].mask.read(),
                                      back.spectra[f"spectrum_z{z}"].mask.read())


def test_simulated_galaxies_write_a_cube(tmp_path):
    from astromodal.data.simulate import simulate_survey

    ds = simulate_survey(n=5, seed=3, instruments=["sdss"], image_size=16)
    back = hc.read_cube(hc.write_cube(ds, tmp_path / "sim.h5"))
    assert len(back) == 5 and back.images["image_z3"].size == 2 and "sfr" in back.targets
    s0 = back.spectra["spectrum_z0"]
    # the simulator's SDSS grid (3800-9200 A) covers the cube grid: rebinned, nearly all samples usable
    assert s0.n_pixels == 4620 and s0.mask.read().mean() < 0.01
    np.testing.assert_allclose(back.targets["sfr"].values.read(), ds.targets["sfr"].values.read(), equal_nan=True)
    assert np.isnan(back.images["image_z0"].errors.read()).all()  # the simulator's images carry no errors


def test_output_rules(tmp_path):
    ds = _hand_dataset(n=2)
    path = hc.write_cube(ds, tmp_path / "cube.h5")
    with pytest.raises(ConfigError, match="was written by astromodal; pass --overwrite"):
        hc.write_cube(ds, path)
    hc.write_cube(ds, path, overwrite=True)
    foreign = tmp_path / "mine.h5"
    foreign.write_text("not yours")
    with pytest.raises(ConfigError, match="not written by astromodal"):
        hc.write_cube(ds, foreign, overwrite=True)
    assert foreign.read_text() == "not yours"


# ------------------------------------------------------------------------------------------ Images.errors
def test_images_errors_are_optional_and_stored(tmp_path):
    pix = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    err = np.ones_like(pix)
    im = Images(pix, ("r",), 0.396, "nanomaggies", err)
    assert Images(pix, ("r",)).errors is None
    small = im.downsample(2)
    np.testing.assert_allclose(small.errors.read(), 0.5)  # sqrt(4 x 1) / 4
    assert im.take(np.array([1])).errors.shape == (1, 1, 4, 4)
    with pytest.raises(Exception, match="image errors shape"):
        Images(pix, ("r",), errors=err[:, :, :2])
    ds = Dataset(np.array([1, 2]), images={"a": im, "b": Images(pix, ("r",))})
    back = Dataset.load(ds.save(tmp_path / "d.h5"), lazy=False)
    np.testing.assert_array_equal(back.images["a"].errors.read(), err)
    assert back.images["b"].errors is None
    assert back.subset([1]).images["a"].errors.read().shape == (1, 1, 4, 4)


def test_cube_dataset_in_memory_equals_the_written_file(tmp_path):
    """cube_dataset (the simulator's survey in the cube layout, no file) gives what write_cube + read_cube give:
    the same blocks, grids, masks and values (to the file's float32 rounding); targets and ids are kept."""
    from astromodal.data.simulate import simulate_survey

    ds = simulate_survey(n=40, seed=3, instruments=["sdss"], image_size=16, class_mix=[0, 1, 0])
    mem = hc.cube_dataset(ds)
    hc.write_cube(ds, tmp_path / "c.h5")
    disk = hc.read_cube(tmp_path / "c.h5")
    assert list(mem.images) == [f"image_z{z}" for z in range(4)]
    assert list(mem.spectra) == [f"spectrum_z{z}" for z in range(4)]
    for z in range(4):
        a, b = mem.spectra[f"spectrum_z{z}"], disk.spectra[f"spectrum_z{z}"]
        assert a.unit == b.unit == hc.FLUX_UNIT
        np.testing.assert_array_equal(a.wavelength, b.wavelength)
        np.testing.assert_array_equal(a.mask.read(), b.mask.read())
        np.testing.assert_allclose(a.flux.read(), b.flux.read(), rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(a.ivar.read(), b.ivar.read(), rtol=1e-5)
        ia, ib = mem.images[f"image_z{z}"], disk.images[f"image_z{z}"]
        assert ia.pixels.shape == (40, 5, 16 >> z, 16 >> z) and ia.pixel_scale == pytest.approx(ib.pixel_scale)
        np.testing.assert_array_equal(ia.pixels.read(), ib.pixels.read())
        assert ia.errors is None  # simulated cutouts carry no errors: none invented
    np.testing.assert_array_equal(mem.ids.read(), ds.ids.read())
    assert set(ds.targets) <= set(mem.targets)


def test_batched_rebinning_equals_row_by_row():
    from astromodal.data import cube as cb

    rng = np.random.default_rng(0)
    wave = np.linspace(3700.0, 9300.0, 3000)
    flux = rng.normal(10.0, 2.0, (4, wave.size))
    sigma = np.full_like(flux, 0.5)
    flux[1, 100:140] = np.nan  # a bad stretch: the bins it touches are NaN in both ways
    f, s = cb.rebin_spectra(wave, flux, sigma)
    for r in range(4):
        f1, s1 = cb.rebin_spectrum(wave, flux[r], sigma[r])
        np.testing.assert_allclose(f[r], f1, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(s[r], s1, rtol=1e-12, equal_nan=True)
    flux[2] = np.nan
    with pytest.raises(DataFormatError, match=r"object id 'c' \(row 2\): no usable sample"):
        cb.rebin_spectra(wave, flux, sigma, ids=np.array(["a", "b", "c", "d"]))
    with pytest.raises(DataFormatError, match="no overlap with the cube grid"):
        cb.rebin_spectra(wave + 20000.0, flux, sigma)


def test_simulate_source_in_the_cube_layout():
    from astromodal.data.sources import load_source

    ds, _ = load_source("simulate", {"n": 12, "seed": 1, "instruments": ["sdss"], "image_size": 16,
                                     "layout": "hisscube"})
    assert sorted(ds.images) == [f"image_z{z}" for z in range(4)] and ds.spectra["spectrum_z3"].n_pixels == 577
    assert ds.meta["layout"] == "hisscube"
    with pytest.raises(ConfigError, match="simulate option 'layout' must be survey or hisscube, got 'cube'"):
        load_source("simulate", {"n": 12, "layout": "cube"})
