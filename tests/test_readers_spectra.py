"""Spectrum readers: LAMOST and SDSS FITS (real samples and small synthetic files), the reader registry,
bad input named precisely."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from astromodal.data.readers import get_reader, list_readers, read
from astromodal.errors import AstromodalError, ConfigError, DataFormatError

COEFF0, COEFF1 = 3.5682, 1e-4


def write_lamost(path, cls="STAR", sub="G2", z=0.0001, n=3904, flux=None, ivar=None, ra=10.0, dec=-5.0):
    i = np.arange(n)
    wave = 10 ** (COEFF0 + COEFF1 * i)
    data = np.zeros((5, n), dtype=np.float32)
    data[0] = 100 + 0.01 * wave if flux is None else flux
    data[1] = 1.0 if ivar is None else ivar
    hdu = fits.PrimaryHDU(data)
    hdu.header.update({"COEFF0": COEFF0, "COEFF1": COEFF1, "CLASS": cls, "SUBCLASS": sub, "Z": z,
                       "RA": ra, "DEC": dec})
    hdu.writeto(path)
    return path


def write_sdss(path, cls="QSO", z=2.5, n=4000, info="SPALL"):
    loglam = 3.55 + 1e-4 * np.arange(n)
    coadd = fits.BinTableHDU.from_columns([
        fits.Column(name="flux", format="E", array=np.full(n, 3.0)),
        fits.Column(name="loglam", format="E", array=loglam),
        fits.Column(name="ivar", format="E", array=np.ones(n)),
        fits.Column(name="and_mask", format="J", array=np.zeros(n, dtype=np.int32)),
    ], name="COADD")
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="CLASS", format="6A", array=np.array([cls])),
        fits.Column(name="Z", format="E", array=np.array([z])),
        fits.Column(name="PLATE", format="J", array=np.array([1234])),
        fits.Column(name="MJD", format="J", array=np.array([56000])),
        fits.Column(name="FIBERID", format="J", array=np.array([77])),
        fits.Column(name="PLUG_RA", format="D", array=np.array([150.5])),
        fits.Column(name="PLUG_DEC", format="D", array=np.array([2.25])),
    ], name=info)
    fits.HDUList([fits.PrimaryHDU(), coadd, table]).writeto(path)
    return path


# ------------------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_lamost_sample(shared_data):
    folder = shared_data / "lamost-dr1-sample" / "SampleFits"
    ds = read(folder)
    assert len(ds) == 176
    assert ds.meta["reader"] == "lamost" and len(ds.meta["source_files"]) == 176
    s = ds.spectra["lamost"]
    assert s.flux.shape == (176, 3601) and s.instrument == "LAMOST"
    assert s.wavelength[0] == pytest.approx(3700) and s.wavelength[-1] == pytest.approx(9100)
    counts = ds.summary()["targets"]["subclass"]["counts"]
    assert counts == {"A": 40, "F": 46, "G": 34, "K": 38, "M": 18}
    assert ds.summary()["targets"]["class"]["counts"] == {"star": 176}
    assert ds.ids.read()[0] == "spec-55862-B6212_sp06-003"
    assert ds.ra.read()[0] == pytest.approx(99.316263) and ds.dec.read()[0] == pytest.approx(27.23237)
    assert ds.targets["redshift"].values.read()[0] == pytest.approx(-7.138e-05)
    # native coverage: 10**(3.5682) .. 10**(3.5682 + 3903e-4) = 3700.4 .. 9088.7 A; beyond it masked
    native_hi = 10 ** (COEFF0 + COEFF1 * 3903)
    assert native_hi == pytest.approx(9088.66, abs=0.01)
    mask = s.mask.read()
    assert mask[:, s.wavelength > native_hi + 1.2].all()
    assert (s.ivar.read()[mask] == 0).all() and np.isfinite(s.flux.read()).all()
    # the raw file's wavelength solution
    hdr = fits.getheader(folder / "spec-55862-B6212_sp06-003.fits")
    wave = 10 ** (hdr["COEFF0"] + hdr["COEFF1"] * np.arange(hdr["NAXIS1"]))
    assert round(wave[0]) == 3700 and round(wave[-1]) == 9089


@pytest.mark.realdata
def test_real_sdss_spectra(shared_data):
    ds = read(shared_data / "sdss-spectra-images", reader="sdss")
    assert len(ds) == 15
    labels = ds.targets["class"].labels()
    z = ds.targets["redshift"].values.read()
    assert (labels == "qso").sum() == 1 and (labels == "galaxy").sum() == 14
    assert z[labels == "qso"][0] == pytest.approx(2.5623, abs=1e-3)
    assert 0.028 < z[labels == "galaxy"].min() < 0.029 and 0.60 < z.max() < 2.6
    ids = ds.ids.read().tolist()
    assert "5290-55862-0984" in ids
    row = ids.index("5290-55862-0984")
    assert ds.columns["plate"].values.read()[row] == 5290 and ds.columns["fiberid"].values.read()[row] == 984
    assert ds.spectra["sdss"].flux.shape == (15, 3601)
    # SDSS-I spectra start near 3800 A: the common grid below it is masked
    legacy = ds.columns["plate"].values.read() < 1000
    wave = ds.spectra["sdss"].wavelength
    assert ds.spectra["sdss"].mask.read()[legacy][:, wave < 3790].all()
    # auto-detection picks the sdss reader for these files
    one = read(shared_data / "sdss-spectra-images" / "problematic" / "spectra")
    assert one.meta["reader"] == "sdss" and one.targets["class"].labels().tolist() == ["qso"]


# ------------------------------------------------------------------------------------------ synthetic
def test_synthetic_lamost_and_sdss_read_and_detected(tmp_path):
    write_lamost(tmp_path / "a.fits", sub="F5")
    write_lamost(tmp_path / "b.fits", sub="K3", cls="STAR")
    write_lamost(tmp_path / "c.fits", sub="", cls="GALAXY", z=0.1)
    ds = read(tmp_path, grid_size=1001)
    assert ds.meta["reader"] == "lamost" and ds.spectra["lamost"].flux.shape == (3, 1001)
    assert ds.targets["class"].labels().tolist() == ["star", "star", "galaxy"]
    assert ds.targets["subclass"].labels().tolist() == ["F", "K", "unknown"]
    # a linear continuum 100 + 0.01 lambda survives flux-conserving resampling inside the range
    s = ds.spectra["lamost"]
    good = ~s.mask.read()[0]
    assert np.allclose(s.flux.read()[0, good], 100 + 0.01 * s.wavelength[good], rtol=2e-4)
    sd = tmp_path / "sdss"
    sd.mkdir()
    write_sdss(sd / "spec-1234-56000-0077.fits")
    q = read(sd / "*.fits")
    assert q.meta["reader"] == "sdss" and q.ids.read().tolist() == ["1234-56000-0077"]
    assert q.ra.read()[0] == 150.5 and q.targets["redshift"].values.read()[0] == pytest.approx(2.5)
    names = [r.name for r in list_readers()]
    assert {"lamost", "sdss", "idx", "astrospectra_mnist"} <= set(names)


def test_nan_pixels_are_masked_not_fatal(tmp_path):
    flux = np.full(3904, 50.0, dtype=np.float32)
    flux[1000:1010] = np.nan
    write_lamost(tmp_path / "n.fits", flux=flux)
    ds = read(tmp_path / "n.fits")
    s = ds.spectra["lamost"]
    assert np.allclose(s.flux.read(), 50.0)
    w = s.wavelength
    lo, hi = 10 ** (COEFF0 + COEFF1 * 1000), 10 ** (COEFF0 + COEFF1 * 1009)
    inside = (w > lo) & (w < hi)
    assert inside.sum() > 0 and s.mask.read()[0, inside].all() and (s.ivar.read()[0, inside] == 0).all()


@pytest.mark.parametrize("case", ["text", "truncated", "allnan", "noflux", "zeroivar"])
def test_bad_fits_named(tmp_path, case):
    path = tmp_path / "bad.fits"
    if case == "text":
        path.write_text("hello, not a FITS file\n")
    elif case == "truncated":
        write_lamost(path)
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    elif case == "allnan":
        write_lamost(path, flux=np.full(3904, np.nan, dtype=np.float32))
    elif case == "noflux":
        hdu = fits.PrimaryHDU()
        hdu.header.update({"COEFF0": COEFF0, "COEFF1": COEFF1})
        hdu.writeto(path)
    else:
        write_lamost(path, ivar=np.zeros(3904, dtype=np.float32))
    with pytest.raises(AstromodalError, match="bad.fits"):
        read(path, reader="lamost")


def test_empty_folder_and_unmatched_glob(tmp_path):
    with pytest.raises(DataFormatError, match="holds no file"):
        read(tmp_path)
    with pytest.raises(DataFormatError, match="matches no file"):
        read(tmp_path / "*.fits")
    with pytest.raises(DataFormatError, match="no such file"):
        read(tmp_path / "missing.fits")
    with pytest.raises(ConfigError, match="unknown reader 'nope'"):
        get_reader("nope")
    (tmp_path / "notes.xyz").write_text("x")
    with pytest.raises(DataFormatError, match="no file of a known type"):
        read(tmp_path)


def test_sdss_without_class_table_is_named(tmp_path):
    path = write_sdss(tmp_path / "spec-x.fits", info="OTHER")
    with pytest.raises(DataFormatError, match="spec-x.fits.*SPECOBJ or SPALL"):
        read(path, reader="sdss")
