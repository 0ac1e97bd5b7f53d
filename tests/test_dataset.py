"""The Dataset type: views, splits, tensors, validation, HDF5 round trips and schema errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from astromodal.data.dataset import Column, Dataset, Images, Spectra, Target
from astromodal.errors import BadValueError, DataFormatError


def make(n: int = 40, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    wave = np.linspace(3700, 9100, 50)
    return Dataset(
        ids=np.array([f"obj{i}" for i in range(n)]),
        ra=rng.uniform(0, 360, n),
        dec=rng.uniform(-30, 60, n),
        spectra={"lamost": Spectra(rng.normal(size=(n, 50)).astype(np.float32), wave, ivar=np.ones((n, 50)))},
        images={"sdss": Images(rng.normal(size=(n, 5, 8, 8)).astype(np.float32), ("u", "g", "r", "i", "z"))},
        columns={"parallax": Column(rng.normal(1, 0.1, n), "mas"), "g": Column(rng.normal(18, 1, n), "mag")},
        targets={
            "class": Target(np.arange(n) % 3, "class", ("star", "galaxy", "qso")),
            "redshift": Target(rng.uniform(0, 1, n), "regression", unit=""),
        },
        meta={"origin": "test"},
    )


def test_subset_is_a_view_and_composes():
    ds = make()
    sub = ds.subset([5, 2, 7]).subset([2, 0])
    assert list(sub.ids.read()) == ["obj7", "obj5"]
    assert sub.spectra["lamost"].flux.base is ds.spectra["lamost"].flux.base  # no copy
    np.testing.assert_array_equal(sub.arrays(spectra="lamost")["spectrum"], ds.spectra["lamost"].flux.read()[[7, 5]])
    assert len(ds[ds.class_codes("class") == 0]) == 14


def test_stratified_split_and_kfold_are_seeded_and_disjoint():
    ds = make(60)
    tr1, te1 = ds.split(0.2, stratify="class", seed=3)
    tr2, te2 = ds.split(0.2, stratify="class", seed=3)
    assert list(te1.ids.read()) == list(te2.ids.read())
    assert set(tr1.ids.read()).isdisjoint(te1.ids.read())
    assert np.bincount(te1.class_codes("class")).tolist() == [4, 4, 4]
    seen = []
    for tr, va in ds.kfold(5, stratify="class", seed=1):
        assert set(tr.ids.read()).isdisjoint(va.ids.read())
        seen.extend(va.ids.read())
    assert sorted(seen) == sorted(ds.ids.read())


def test_tensors_per_modality():
    ds = make(10)
    t = ds.to_tensors(spectra="lamost", images="sdss", columns=["g", "parallax"], target="class")
    assert t["spectrum"].shape == (10, 50) and t["image"].shape == (10, 5, 8, 8)
    assert t["columns"].shape == (10, 2) and t["target"].dtype.is_floating_point is False


def test_pyramid_area_averaging_conserves_mean_surface_brightness():
    pix = np.arange(2 * 1 * 64 * 64, dtype=np.float32).reshape(2, 1, 64, 64)
    im = Images(pix, ("r",), pixel_scale=0.396)
    pyr = im.pyramid()
    assert [pyr[s].size for s in (64, 32, 16, 8)] == [64, 32, 16, 8]
    assert pyr[8].pixel_scale == pytest.approx(0.396 * 8)
    np.testing.assert_allclose(pyr[8].pixels.read().mean(axis=(2, 3)), pix.mean(axis=(2, 3)), rtol=1e-6)
    # the top-left 8x8 pixel of the 8 px image is the mean of the first 8x8 block
    assert pyr[8].pixels.read()[0, 0, 0, 0] == pytest.approx(pix[0, 0, :8, :8].mean())


def test_bad_values_are_named():
    ds = make(5)
    flux = ds.spectra["lamost"].flux.read().copy()
    flux[3, 7] = np.nan
    with pytest.raises(BadValueError, match="obj3"):
        Dataset(ids=ds.ids.read(), spectra={"lamost": Spectra(flux, np.arange(50.0))})
    with pytest.raises(BadValueError, match="unknown band 'y'"):
        ds.images["sdss"].band_index("y")
    with pytest.raises(BadValueError, match="unknown class 'star2'"):
        Target.from_labels(["star", "star2"], ("star", "galaxy"))
    with pytest.raises(BadValueError, match="outside 0..2"):
        Dataset(ids=np.arange(2), targets={"c": Target(np.array([0, 3]), "class", ("a", "b", "c"))})


def test_hdf5_round_trip_lazy(tmp_path):
    ds = make(30)
    path = ds.save(tmp_path / "d.h5")
    back = Dataset.load(path)
    assert back.spectra["lamost"].flux.is_lazy
    np.testing.assert_array_equal(back.spectra["lamost"].flux.read(), ds.spectra["lamost"].flux.read())
    np.testing.assert_array_equal(back.images["sdss"].pixels.read(), ds.images["sdss"].pixels.read())
    assert list(back.ids.read()) == list(ds.ids.read())
    assert back.columns["parallax"].unit == "mas"
    assert back.targets["class"].class_names == ("star", "galaxy", "qso")
    assert back.meta["origin"] == "test"
    # a subset of the lazy file reads only those rows, in the asked order
    sub = back.subset([9, 2, 2])
    np.testing.assert_array_equal(sub.arrays(spectra="lamost")["spectrum"], ds.spectra["lamost"].flux.read()[[9, 2, 2]])
    assert not list(tmp_path.glob("*.tmp"))


def test_hdf5_errors(tmp_path):
    bad = tmp_path / "not.h5"
    bad.write_text("hello")
    with pytest.raises(DataFormatError, match="not.h5"):
        Dataset.load(bad)
    path = make(5).save(tmp_path / "d.h5")
    truncated = tmp_path / "trunc.h5"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataFormatError, match="trunc.h5"):
        Dataset.load(truncated)
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(DataFormatError, match="schema version 99 \\(newer\\)"):
        Dataset.load(path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(DataFormatError, match="not an astromodal dataset"):
        Dataset.load(other)


def test_nan_on_disk_is_caught_when_read(tmp_path):
    ds = make(6)
    path = ds.save(tmp_path / "d.h5")
    with h5py.File(path, "a") as f:
        f["spectra/lamost/flux"][4, 1] = np.inf
    back = Dataset.load(path)
    with pytest.raises(BadValueError, match="obj4"):
        back.arrays(spectra="lamost")
