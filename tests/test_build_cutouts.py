"""``astromodal build cutouts``: synthetic SDSS frames (5 bands, each its own WCS) and a catalogue -> a Dataset
file; detection without a catalogue; bad input (one line, nothing written); resuming; the real 5-band field."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from typer.testing import CliRunner

from astromodal.cli import app
from astromodal.data.dataset import Dataset
from astromodal.data.readers import sdss_frames
from astromodal.errors import BadValueError, ConfigError, DataFormatError

runner = CliRunner()
SCALE = 0.396 / 3600.0
SHAPE = (150, 180)
#: per band (dx, dy) shift of CRPIX and rotation [deg]: the bands are not pixel-aligned
OFFSETS = {"u": (0.3, -1.7, 0.0), "g": (2.6, 0.4, 0.05), "r": (0.0, 0.0, 0.0), "i": (-1.2, 3.1, -0.05),
           "z": (4.4, -2.2, 0.1)}


def _wcs(crval, crpix, rot):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = list(crpix)
    c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
    w.wcs.cd = SCALE * np.array([[-c, s], [s, c]])
    return w


def write_field(folder, sources, field=1, crval=(150.0, 2.0), noise=0.0, seed=0, nan_at=None):
    """Five frames frame-<b>-000094-1-<field>.fits of SHAPE with Gaussian sources at sky positions (ra, dec)."""
    rng = np.random.default_rng(seed + field)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for b, (dx, dy, rot) in OFFSETS.items():
        w = _wcs(crval, (90.5 + dx, 75.5 + dy), rot)
        data = rng.normal(0, noise, SHAPE) if noise else np.zeros(SHAPE)
        for ra, dec, amp in sources:
            x, y = w.world_to_pixel_values(ra, dec)
            data += amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
        if nan_at is not None and b == "i":
            data[nan_at] = np.nan
        fits.PrimaryHDU(data.astype(np.float32), header=w.to_header()).writeto(
            folder / f"frame-{b}-000094-1-{field:04d}.fits")
    return folder


def offset(ra0, dec0, dx_px, dy_px):
    """The sky position dx_px, dy_px r-frame pixels from (ra0, dec0) (east to the left)."""
    return ra0 - dx_px * SCALE / np.cos(np.radians(dec0)), dec0 + dy_px * SCALE


def _catalogue(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_build_from_catalogue_carries_columns_and_counts(tmp_path):
    star = offset(150.0, 2.0, 3.3, -2.6)
    edge = offset(150.0, 2.0, 80.0, 0.0)  # 90 + 80 = 170 of 180 columns: too near the edge
    frames = write_field(tmp_path / "frames", [(*star, 50.0), (*edge, 30.0)])
    cat = _catalogue(tmp_path / "cat.csv", {"objid": [11, 12, 13], "ra": [star[0], edge[0], 151.0],
                                            "dec": [star[1], edge[1], 2.0], "gmag": [17.5, np.nan, 18.0],
                                            "name": ["a", "b", "c"],
                                            "specobjid": [2**62 + 1, 2**62 + 3, 2**62 + 5]})
    out = tmp_path / "cut.h5"
    args = ["build", "cutouts", "--frames", str(frames), "--catalogue", str(cat), "--size", "32", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "kept 1, skipped near an edge 1, off every frame 1, with NaN pixels 0" in result.stdout
    ds = Dataset.load(out)
    assert ds.ids.read().tolist() == [11]
    im = ds.images["sdss"]
    assert im.bands == tuple("ugriz") and im.unit == "nanomaggies" and im.pixels.shape == (1, 5, 32, 32)
    assert abs(im.pixel_scale - 0.396) < 1e-3
    assert ds.columns["gmag"].values.read().tolist() == [17.5] and "name" not in ds.columns
    assert ds.columns["frame_field"].values.read().tolist() == [1]
    # a second 64-bit id column is carried exactly (a float64 would give 2**62)
    sid = ds.columns["specobjid"].values.read()
    assert sid.dtype == np.int64 and sid.tolist() == [2**62 + 1]
    # every band centred on the star: within half a pixel of (S - 1) / 2 = 15.5
    pix = im.pixels.read()[0]
    yy, xx = np.mgrid[:32, :32]
    for b in range(5):
        w = pix[b] / pix[b].sum()
        cx, cy = float((w * xx).sum()), float((w * yy).sum())
        assert abs(cx - 15.5) <= 0.5 and abs(cy - 15.5) <= 0.5, (b, cx, cy)
    assert ds.meta["cutouts"]["counts"] == {"kept": 1, "skipped_edge": 1, "skipped_off": 1, "skipped_nan": 0}
    ds.meta["_h5file"].close()
    # the same command again: up to date, nothing done; other settings need --overwrite
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "up to date" in again.stdout
    changed = runner.invoke(app, [*args[:-4], "--size", "16", "--out", str(out)])
    assert isinstance(changed.exception, ConfigError) and "--overwrite" in str(changed.exception)
    replaced = runner.invoke(app, [*args[:-4], "--size", "16", "--out", str(out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert Dataset.load(out, lazy=False).images["sdss"].size == 16
    assert not (tmp_path / "cut.h5.parts").exists()


def test_build_detects_sources_on_r_without_a_catalogue(tmp_path):
    pos = [offset(150.0, 2.0, dx, dy) for dx, dy in ((-40.2, -30.7), (20.4, 10.1), (45.8, -35.3))]
    frames = write_field(tmp_path / "frames", [(ra, dec, amp) for (ra, dec), amp in zip(pos, (40, 20, 10), strict=True)],
                         noise=0.05)
    out = tmp_path / "det.h5"
    result = runner.invoke(app, ["build", "cutouts", "--frames", str(frames), "--size", "24", "--out", str(out),
                                 "--nsigma", "5"])
    assert result.exit_code == 0, result.output
    ds = Dataset.load(out, lazy=False)
    assert len(ds) == 3 and set(ds.columns) >= {"det_x", "det_y", "det_flux", "det_area"}
    found = np.c_[ds.ra.read(), ds.dec.read()]
    for ra, dec in pos:  # brightest first, each within 0.05"
        d = np.hypot((found[:, 0] - ra) * np.cos(np.radians(dec)), found[:, 1] - dec) * 3600
        assert d.min() < 0.05
    assert list(ds.columns["det_flux"].values.read()) == sorted(ds.columns["det_flux"].values.read(), reverse=True)


def _no_output(tmp_path, out):
    assert not out.exists() and not (tmp_path / (out.name + ".parts")).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}")]


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    star = offset(150.0, 2.0, 0.0, 0.0)
    frames = write_field(tmp_path / "frames", [(*star, 50.0)])
    out = tmp_path / "x.h5"
    # a catalogue position off every frame: with every position off, one error line
    off = _catalogue(tmp_path / "off.csv", {"ra": [10.0, 11.0], "dec": [-5.0, -5.0]})
    r = runner.invoke(app, ["build", "cutouts", "--frames", str(frames), "--catalogue", str(off), "--out", str(out)])
    assert isinstance(r.exception, BadValueError) and "\n" not in str(r.exception)
    assert "of 2 positions, 2 off every frame" in str(r.exception) and "frames cover ra 149.9" in str(r.exception)
    _no_output(tmp_path, out)
    # a cutout with NaN pixels, with --on-nan error
    nan_frames = write_field(tmp_path / "nan", [(*star, 50.0)], nan_at=(76, 90))
    cat = _catalogue(tmp_path / "cat.csv", {"id": ["s1"], "ra": [star[0]], "dec": [star[1]]})
    r = runner.invoke(app, ["build", "cutouts", "--frames", str(nan_frames), "--catalogue", str(cat), "--size", "16",
                            "--out", str(out), "--on-nan", "error"])
    assert isinstance(r.exception, BadValueError)
    assert "object 's1' (row 0)" in str(r.exception) and "band i (frame-i-000094-1-0001.fits)" in str(r.exception)
    _no_output(tmp_path, out)
    # ... and skipped and counted by default (the only object: nothing kept is one line too)
    r = runner.invoke(app, ["build", "cutouts", "--frames", str(nan_frames), "--catalogue", str(cat), "--size", "16",
                            "--out", str(out)])
    assert isinstance(r.exception, BadValueError) and "1 with NaN pixels" in str(r.exception)
    _no_output(tmp_path, out)
    # a file astromodal did not write is never replaced
    mine = tmp_path / "mine.h5"
    mine.write_text("not yours")
    r = runner.invoke(app, ["build", "cutouts", "--frames", str(frames), "--catalogue", str(cat), "--out", str(mine),
                            "--overwrite"])
    assert isinstance(r.exception, ConfigError) and mine.read_text() == "not yours"


def test_a_frame_without_wcs_is_named_in_one_error_line(tmp_path):
    star = offset(150.0, 2.0, 0.0, 0.0)
    frames = write_field(tmp_path / "frames", [(*star, 50.0)])
    fits.PrimaryHDU(np.zeros(SHAPE, np.float32)).writeto(frames / "frame-g-000094-1-0001.fits", overwrite=True)
    cat = _catalogue(tmp_path / "cat.csv", {"ra": [star[0]], "dec": [star[1]]})
    out = tmp_path / "x.h5"
    done = subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", "build", "cutouts",
                           "--frames", str(frames), "--catalogue", str(cat), "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: 1 bad SDSS frame: ")
    assert "frame-g-000094-1-0001.fits: no celestial WCS" in lines[0] and "Traceback" not in done.stderr
    _no_output(tmp_path, out)
    with pytest.raises(DataFormatError, match="94-1-1 lacks gr"):
        (frames / "frame-g-000094-1-0001.fits").unlink()
        (frames / "frame-r-000094-1-0001.fits").unlink()
        sdss_frames.build_cutouts(frames, out, catalogue=cat, bands="ugriz")


def test_an_interrupted_run_resumes_with_the_finished_fields(tmp_path, monkeypatch):
    a = offset(150.0, 2.0, 1.2, -0.4)
    b = offset(150.2, 2.0, -2.1, 3.3)
    frames = tmp_path / "frames"
    write_field(frames, [(*a, 40.0)], field=1, crval=(150.0, 2.0))
    write_field(frames, [(*b, 40.0)], field=2, crval=(150.2, 2.0))
    cat = _catalogue(tmp_path / "cat.csv", {"ra": [a[0], b[0]], "dec": [a[1], b[1]], "mag": [17.0, 18.0]})
    fresh, _ = sdss_frames.build_cutouts(frames, tmp_path / "fresh.h5", catalogue=cat, size=16)
    read = sdss_frames.read_frame
    seen = []

    def failing(path):
        seen.append(path.name)
        if "-0002." in path.name:
            raise KeyboardInterrupt
        return read(path)

    out = tmp_path / "cut.h5"
    monkeypatch.setattr(sdss_frames, "read_frame", failing)
    with pytest.raises(KeyboardInterrupt):
        sdss_frames.build_cutouts(frames, out, catalogue=cat, size=16)
    parts = tmp_path / "cut.h5.parts"
    assert not out.exists() and sorted(p.name for p in parts.iterdir()) == ["field-94-1-1.npz", "fingerprint.json"]
    seen.clear()
    monkeypatch.setattr(sdss_frames, "read_frame", lambda p: (seen.append(p.name), read(p))[1])
    path, counts = sdss_frames.build_cutouts(frames, out, catalogue=cat, size=16)
    assert counts["kept"] == 2 and all("-0002." in n for n in seen) and len(seen) == 5  # field 1 not read again
    x, y = Dataset.load(path, lazy=False), Dataset.load(fresh, lazy=False)
    np.testing.assert_array_equal(x.images["sdss"].pixels.read(), y.images["sdss"].pixels.read())
    assert x.columns["frame_field"].values.read().tolist() == [1.0, 2.0] and not parts.exists()
    # a parts folder of another run is refused unless --restart
    parts.mkdir()
    (parts / "fingerprint.json").write_text("{}")
    (parts / "field-94-1-1.npz").write_bytes(b"x")
    with pytest.raises(ConfigError, match="another run"):
        sdss_frames.build_cutouts(frames, tmp_path / "cut.h5", catalogue=cat, size=8, overwrite=True)
    path, counts = sdss_frames.build_cutouts(frames, out, catalogue=cat, size=8, overwrite=True, restart=True)
    assert Dataset.load(path, lazy=False).images["sdss"].size == 8
    # a file put into OUT.parts while a run goes on is never removed (only this tool's entries are)
    read2 = sdss_frames.read_frame

    def dropping(p):
        (parts / "notes.txt").write_text("mine")
        return read2(p)

    monkeypatch.setattr(sdss_frames, "read_frame", dropping)
    sdss_frames.build_cutouts(frames, out, catalogue=cat, size=6, overwrite=True)
    assert sorted(q.name for q in parts.iterdir()) == ["notes.txt"] and (parts / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------------- the real field
@pytest.fixture(scope="module")
def real_field(shared_data):
    folder = shared_data / "sdss-frame-5band"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return sdss_frames.read_fields(folder)


@pytest.mark.realdata
def test_real_field_detection_cutouts_and_lupton_images(real_field):
    from astromodal.transforms import images as tim

    assert list(real_field) == [(2820, 3, 122)]
    field = real_field[(2820, 3, 122)]
    assert all(f.shape == (1489, 2048) for f in field.values())
    # the bands are not pixel-aligned: one sky position is at different pixels in each band
    xs = {b: f.to_pixel([38.3018], [-0.1339]) for b, f in field.items()}
    assert max(abs(xs[b][0][0] - xs["r"][0][0]) + abs(xs[b][1][0] - xs["r"][1][0]) for b in "ugiz") > 1
    table = tim.detect_sources_on(field["r"])
    assert len(table) > 100
    d = np.hypot((table["ra"] - 38.3018) * np.cos(np.radians(-0.1339)), table["dec"] + 0.1339) * 3600
    star = int(np.argmin(d))
    assert d[star] < 1.0  # the star of the three spectra is found
    pix, ok, counts = tim.cutouts_from_frames(field, table["ra"], table["dec"], size=64)
    assert counts["kept"] == int(ok.sum()) > 100 and counts["skipped_off"] == 0 and ok[star]
    cut = pix[star]
    yy, xx = np.mgrid[:64, :64]
    near = np.hypot(xx - 31.5, yy - 31.5) < 5
    for b in range(5):  # centred in every band, each cut through its own WCS
        img = np.where(near, np.clip(cut[b], 0, None), 0.0)
        cx, cy = (img * xx).sum() / img.sum(), (img * yy).sum() / img.sum()
        assert abs(cx - 31.5) <= 0.5 and abs(cy - 31.5) <= 0.5, (b, cx, cy)
    gri = tim.lupton_rgb(pix[ok][:20], "ugriz", "gri")
    urz = tim.lupton_rgb(pix[ok][:20], "ugriz", "urz")
    assert gri.shape == urz.shape == (20, 3, 64, 64) and 0 <= gri.min() and gri.max() <= 1
    cropped, sides = tim.roi_crop(gri, gri[:, 1], size=64)
    assert cropped.shape == gri.shape and ((sides >= 6) & (sides <= 64)).all()


@pytest.mark.realdata
def test_real_single_u_frame_reads(shared_data):
    path = shared_data / "sdss-spectra-images" / "images_medium_ds" / "frame-u-004948-3-0199.fits.bz2"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    frame = sdss_frames.read_frame(path)
    assert (frame.band, frame.run, frame.camcol, frame.field) == ("u", 4948, 3, 199)
    assert frame.shape == (1489, 2048) and abs(frame.pixel_scale - 0.396) < 0.002
    assert np.isfinite(frame.data).all()


def test_catalogue_columns_keep_integers_exact_or_refuse_in_one_line(tmp_path):
    import pandas as pd

    from astromodal.data.readers.sdss_frames import load_catalogue
    from astromodal.errors import BadValueError

    path = tmp_path / "c.parquet"
    pd.DataFrame({"ra": [1.0, 2.0], "dec": [0.0, 0.0], "flags": pd.array([3, None], dtype="Int64"),
                  "big": pd.array([2**60 + 1, 2**60 + 2], dtype="Int64")}).to_parquet(path)
    _, _, _, cols = load_catalogue(path)
    assert cols["big"].dtype == np.int64 and cols["big"].tolist() == [2**60 + 1, 2**60 + 2]
    assert cols["flags"].dtype == np.float64 and cols["flags"][0] == 3 and np.isnan(cols["flags"][1])
    pd.DataFrame({"ra": [1.0, 2.0], "dec": [0.0, 0.0],
                  "big": pd.array([2**60 + 1, None], dtype="Int64")}).to_parquet(path)
    with pytest.raises(BadValueError, match=r"c.parquet: column 'big' holds integers beyond 2\*\*53 and missing"):
        load_catalogue(path)


def test_build_cutouts_align_subpixel_is_a_setting_of_the_run(tmp_path):
    star = offset(150.0, 2.0, 3.3, -2.6)
    frames = write_field(tmp_path / "frames", [(*star, 50.0)])
    cat = _catalogue(tmp_path / "cat.csv", {"objid": [11], "ra": [star[0]], "dec": [star[1]]})
    out = tmp_path / "cut.h5"
    args = ["build", "cutouts", "--frames", str(frames), "--catalogue", str(cat), "--size", "32", "--out", str(out)]
    assert runner.invoke(app, [*args, "--align", "subpixel"]).exit_code == 0
    ds = Dataset.load(out, lazy=False)
    assert ds.meta["cutouts"]["align"] == "subpixel"
    pix = ds.images["sdss"].pixels[0]
    yy, xx = np.mgrid[:32, :32]
    for b in range(5):
        w = pix[b] / pix[b].sum()
        assert abs(float((w * xx).sum()) - 15.5) < 0.05 and abs(float((w * yy).sum()) - 15.5) < 0.05, b
    again = runner.invoke(app, args)  # whole pixels: another run, refused without --overwrite
    assert isinstance(again.exception, ConfigError) and "--overwrite" in str(again.exception)
    bad = runner.invoke(app, [*args, "--align", "nearest", "--overwrite"])
    assert bad.exit_code != 0 and "--align 'nearest': unknown" in str(bad.exception)
