"""The LSDB backend of the cross-match: the same pairs, separations and counts as astropy; HATS inputs.

LSDB's first cross-match in a process JIT-compiles hats' pixel alignment with numba (uncached, ~10 s on 2
shared cores); the tests share one process and small catalogues.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from astromodal.data.crossmatch import crossmatch_lsdb, crossmatch_tables
from astromodal.errors import ConfigError

pytest.importorskip("lsdb")

ARCSEC = 1.0 / 3600.0
RADIUS = 2.0  # arcsec


def _catalogues(seed: int = 3, n: int = 1500) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, int]]:
    """A over the whole sphere (poles and the ra = 0/360 wrap included); B = 70 % of A's objects moved by a
    known offset (0..3 arcsec, some beyond the 2" radius), plus 30 B-only objects, plus pairs of A objects
    sharing one B object (the one-to-one rule). Returns A, B and the true B id of each A id."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    ra[:4], dec[:4] = [0.002, 359.998, 10.0, 200.0], [0.0, 0.0, 89.9995, -89.9995]
    a = pd.DataFrame({"objid": np.arange(n) + 1000, "ra": ra, "dec": dec, "mag": rng.normal(17, 1, n),
                      "name": [f"a{i}" for i in range(n)]})
    has = rng.random(n) < 0.7
    has[:4] = True
    sep = rng.uniform(0.0, 3.0, n) * ARCSEC
    angle = rng.uniform(0.0, 2 * np.pi, n)
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(angle * u.rad, sep * u.deg)
    b = pd.DataFrame({"source_id": np.arange(n) + 5_000_000, "ra": moved.ra.deg, "dec": moved.dec.deg,
                      "mag": rng.normal(17, 1, n)})[has]
    extra = 30
    b = pd.concat([b, pd.DataFrame({"source_id": np.arange(extra) + 9_000_000, "ra": rng.uniform(0, 360, extra),
                                    "dec": rng.uniform(-80, 80, extra), "mag": 20.0})])
    # A objects sharing a B object: a second A object 1.5" from five true B objects (nearer or farther)
    hosts = b.iloc[10:15]
    twins = SkyCoord(hosts["ra"].to_numpy() * u.deg, hosts["dec"].to_numpy() * u.deg).directional_offset_by(
        0.3 * u.rad, 1.5 * ARCSEC * u.deg)
    a = pd.concat([a, pd.DataFrame({"objid": np.arange(5) + 9000, "ra": twins.ra.deg, "dec": twins.dec.deg,
                                    "mag": 15.0, "name": [f"t{i}" for i in range(5)]})], ignore_index=True)
    b = b.sample(frac=1.0, random_state=1).reset_index(drop=True)  # B's rows not in A's order
    truth = {int(i): int(j) for i, j, h in zip(np.arange(n) + 1000, np.arange(n) + 5_000_000, has, strict=True)
             if h}
    return a, b, truth


@pytest.fixture(scope="module")
def cats():
    return _catalogues()


def _lsdb_table(a, b, **kw) -> tuple[pd.DataFrame, dict]:
    counts, frames = crossmatch_lsdb(a, b, RADIUS, **kw)
    return pd.concat(list(frames), ignore_index=True), counts


@pytest.mark.slow  # the first LSDB cross-match in a process compiles hats code (numba): 10-20 s
def test_same_pairs_separations_and_counts_as_astropy(cats):
    a, b, truth = cats
    ref, ref_counts = crossmatch_tables(a, b, RADIUS)
    got, counts = _lsdb_table(a, b, partition_rows=150)  # several HEALPix partitions: matches across borders
    assert counts == ref_counts
    assert counts["duplicates_dropped"] >= 3 and counts["unmatched_b"] >= 30  # the cases are exercised
    assert list(got.columns) == list(ref.columns) == ["objid", "ra_a", "dec_a", "mag_a", "name", "source_id", "ra_b",
                                                      "dec_b", "mag_b", "separation_arcsec"]
    assert got["objid"].tolist() == ref["objid"].tolist()  # same pairs, in the order of A
    assert got["source_id"].tolist() == ref["source_id"].tolist()
    np.testing.assert_allclose(got["separation_arcsec"], ref["separation_arcsec"], rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(got.drop(columns="separation_arcsec"), ref.drop(columns="separation_arcsec"))
    # and the pairs are the true ones: every matched A object with a true counterpart got it
    pairs = dict(zip(got["objid"], got["source_id"], strict=True))
    true_found = [i for i in pairs if i in truth]
    assert all(pairs[i] == truth[i] for i in true_found) and len(true_found) > 0.5 * len(truth)
    assert (got["separation_arcsec"] <= RADIUS).all()


@pytest.mark.slow  # the first LSDB cross-match in a process compiles hats code (numba): 10-20 s
def test_hats_inputs_and_the_verb(cats, tmp_path):
    import lsdb

    from astromodal.cli import app

    a, b, _ = cats
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_parquet(tmp_path / "b.parquet")
    lsdb.from_dataframe(a, ra_column="ra", dec_column="dec", partition_rows=200, margin_threshold=None
                        ).write_catalog(tmp_path / "a_hats", progress_bar=False)
    lsdb.from_dataframe(b, ra_column="ra", dec_column="dec", partition_rows=200, margin_threshold=5.0
                        ).write_catalog(tmp_path / "b_hats", catalog_name="b", progress_bar=False)
    runner = CliRunner()

    def run(x, y, out, *extra):
        return runner.invoke(app, ["crossmatch", str(x), str(y), "--radius", f"{RADIUS}arcsec", "--out",
                                   str(tmp_path / out), *extra])

    ref = run(tmp_path / "a.csv", tmp_path / "b.parquet", "ref.parquet")
    same = run(tmp_path / "a.csv", tmp_path / "b.parquet", "lsdb.parquet", "--backend", "lsdb",
               "--partition-rows", "300")
    hats = run(tmp_path / "a_hats", tmp_path / "b_hats", "hats.parquet", "--backend", "lsdb")
    for result in (ref, same, hats):
        assert result.exit_code == 0, result.output
    lines = [x for x in ref.output.splitlines() if x.split(":")[0] in ("matched", "unmatched_a", "unmatched_b",
                                                                       "duplicates_dropped")]
    assert len(lines) == 4 and all(x in same.output and x in hats.output for x in lines)
    want = pd.read_parquet(tmp_path / "ref.parquet")
    got = pd.read_parquet(tmp_path / "lsdb.parquet")
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got.drop(columns="separation_arcsec"), want.drop(columns="separation_arcsec"),
                                  check_dtype=False)
    np.testing.assert_allclose(got["separation_arcsec"], want["separation_arcsec"], rtol=0, atol=1e-6)
    # a HATS A comes out in its HEALPix order: the same pairs and separations, sorted by A's id here
    from_hats = pd.read_parquet(tmp_path / "hats.parquet")
    assert list(from_hats.columns) == list(want.columns)
    from_hats = from_hats.sort_values("objid").reset_index(drop=True)
    assert from_hats["objid"].tolist() == want["objid"].tolist()
    assert from_hats["source_id"].tolist() == want["source_id"].tolist()
    np.testing.assert_allclose(from_hats["separation_arcsec"], want["separation_arcsec"], rtol=0, atol=1e-6)
    # a HATS folder with the astropy backend: one line naming the fix
    wrong = run(tmp_path / "a_hats", tmp_path / "b.parquet", "x.parquet")
    assert wrong.exit_code == 1 and "--backend lsdb" in str(wrong.exception)
    # a HATS B without a margin cache, of several partitions: refused (matches at the borders would be lost)
    with pytest.raises(ConfigError, match="without a margin cache"):
        crossmatch_lsdb(a, tmp_path / "b_hats" / "b", RADIUS)  # the catalogue without its margin
    assert not (tmp_path / "x.parquet").exists()


def test_unknown_backend_is_a_usage_error_and_lsdb_is_not_imported_at_start(tmp_path):
    a, b, _ = _catalogues(n=20)
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    from astromodal.cli import app

    result = CliRunner().invoke(app, ["crossmatch", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--out",
                                      str(tmp_path / "o.parquet"), "--backend", "healpy"])
    assert result.exit_code == 2 and not (tmp_path / "o.parquet").exists()
    probe = ("import sys; from astromodal.cli import app; import astromodal.cli.crossmatch, "
             "astromodal.data.crossmatch; print('lsdb' in sys.modules, 'dask' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "False"  # lsdb only when --backend lsdb is chosen
