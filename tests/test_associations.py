"""DBSCAN associations: coordinates, synthetic clusters in both modes, real ALS II groups, the CLI verb."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from astromodal.analysis.associations import (
    find_associations,
    galactic_lb,
    galactic_xyz,
    score_associations,
)
from astromodal.errors import BadValueError, ConfigError


def test_galactic_xyz_hand_values():
    x, y, z = galactic_xyz([0, 90, 0, 180], [0, 0, 90, 0], [1, 1, 1, 2])
    np.testing.assert_allclose(x, [1, 0, 0, -2], atol=1e-15)
    np.testing.assert_allclose(y, [0, 1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(z, [0, 0, 1, 0], atol=1e-15)
    # distance is preserved
    x, y, z = galactic_xyz(123.0, -37.0, 2.5)
    assert np.sqrt(x**2 + y**2 + z**2) == pytest.approx(2.5)


def test_galactic_lb_of_the_galactic_centre():
    lon, lat = galactic_lb([266.40499], [-28.93617])  # Galactic centre in ICRS (Reid & Brunthaler)
    assert abs(((lon[0] + 180) % 360) - 180) < 0.01 and abs(lat[0]) < 0.01


def _synthetic(seed: int = 0):
    """Three tight clusters (one straddling l = 0/360) plus a sparse field; parallaxes in mas."""
    rng = np.random.default_rng(seed)
    centres = [(359.8, 0.5, 1.0), (80.2, 0.8, 1.5), (287.6, -0.7, 2.3)]  # l, b deg, distance kpc
    lon, lat, d, true = [], [], [], []
    for k, (lc, bc, dc) in enumerate(centres):
        n = 40
        lon.append((lc + rng.normal(0, 0.15, n)) % 360)
        lat.append(bc + rng.normal(0, 0.15, n))
        d.append(dc + rng.normal(0, 0.02, n))
        true.append(np.full(n, k))
    n_field = 60
    lon.append(rng.uniform(0, 360, n_field))
    lat.append(rng.uniform(-60, 60, n_field))
    d.append(rng.uniform(0.5, 4.0, n_field))
    true.append(np.arange(3, 3 + n_field))  # each field star its own singleton
    d = np.concatenate(d)
    frame = pd.DataFrame({"l": np.concatenate(lon), "b": np.concatenate(lat), "parallax": 1.0 / d,
                          "parallax_error": 0.01 / d})
    return frame, np.concatenate(true)


@pytest.mark.parametrize("mode,eps", [("xyz", 0.1), ("sky", 0.5)])
def test_synthetic_clusters_recovered(mode, eps):
    frame, true = _synthetic()
    res = find_associations(frame, mode=mode, eps=eps, min_samples=8)
    assert res.summary["n_groups"] == 3
    found = res.labels.copy()
    noise = found < 0
    found[noise] = 1000 + np.flatnonzero(noise)  # noise stars are singletons too
    assert score_associations(true, found) >= 0.9
    # group centres: the cluster at l = 359.8 is found across the wrap, not at l = 180
    g = res.groups.sort_values("l_deg")
    assert g["n_members"].sum() >= 110
    centres = sorted(g["l_deg"].tolist())
    assert centres[0] == pytest.approx(80.2, abs=0.2)
    assert centres[1] == pytest.approx(287.6, abs=0.2)
    assert centres[2] == pytest.approx(359.8, abs=0.2)
    if mode == "xyz":
        row = g.iloc[1]
        assert row["distance_kpc"] == pytest.approx(2.3, abs=0.05)
        x, y, _ = galactic_xyz(287.6, -0.7, 2.3)
        assert row["x_kpc"] == pytest.approx(x, abs=0.05) and row["y_kpc"] == pytest.approx(y, abs=0.05)
        assert 5 < row["spread_pc"] < 60  # 0.15 deg at 2.3 kpc ~ 6 pc per axis + 20 pc depth


def test_score_hand_values():
    assert score_associations([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(1.0)
    assert score_associations([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)


def test_parallax_cut_counts():
    frame, _ = _synthetic()
    frame.loc[:9, "parallax_error"] = frame.loc[:9, "parallax"]  # parallax/error = 1 < 3
    frame.loc[10:11, "parallax"] = -0.2
    res = find_associations(frame, mode="xyz", eps=0.1, min_samples=8)
    assert res.summary["n_cut"] == 12
    assert not res.members["used"].to_numpy()[:12].any()
    assert (res.labels[:12] == -1).all()


def test_missing_parallax_error_column_and_values():
    frame, _ = _synthetic()
    with pytest.raises(BadValueError, match="'parallax_error' is missing"):
        find_associations(frame.drop(columns="parallax_error"), mode="xyz")
    frame.loc[[4, 7], "parallax"] = np.nan
    with pytest.raises(BadValueError, match=r"'parallax' is missing \(NaN\) for 2 star\(s\), rows \[4, 7\]"):
        find_associations(frame, mode="xyz")
    res = find_associations(frame, mode="xyz", eps=0.1, min_samples=8, drop_missing=True)
    assert res.summary["n_missing"] == 2 and res.summary["n_groups"] == 3
    # sky mode needs no parallax at all
    assert find_associations(frame.drop(columns=["parallax", "parallax_error"]), mode="sky", eps=0.5,
                             min_samples=8).summary["n_groups"] == 3


def test_distance_column_in_pc_and_positions_from_radec():
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    frame, true = _synthetic()
    icrs = SkyCoord(l=frame["l"].to_numpy() * u.deg, b=frame["b"].to_numpy() * u.deg, frame="galactic").icrs
    table = pd.DataFrame({"ra": icrs.ra.deg, "dec": icrs.dec.deg, "dist_pc": 1e3 / frame["parallax"].to_numpy()})
    res = find_associations(table, mode="xyz", eps=0.1, min_samples=8, distance_column="dist_pc", distance_unit="pc")
    assert res.summary["n_groups"] == 3
    np.testing.assert_allclose(res.members["distance_kpc"], 1.0 / frame["parallax"], rtol=1e-12)
    dl = (res.members["l"] - frame["l"] + 180) % 360 - 180
    assert np.abs(dl).max() < 1e-6


def test_cli_end_to_end(tmp_path):
    from astromodal.cli import app

    frame, _ = _synthetic()
    frame["source_id"] = np.arange(len(frame))
    frame["prob_massive"] = np.where(np.arange(len(frame)) % 10 == 0, 0.2, 0.9)  # 10% not predicted massive
    frame.to_parquet(tmp_path / "pred.parquet")
    out = tmp_path / "assoc"
    result = CliRunner().invoke(app, ["associations", str(tmp_path / "pred.parquet"), "--out", str(out),
                                      "--mode", "xyz", "--eps", "0.1", "--min-samples", "8"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [".astromodal-output.json", "groups.csv", "members.parquet",
                                                      "sky_map.png", "summary.json", "xy_map.png"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selection"]["filtered"] and summary["selection"]["n_selected"] == len(frame) - 18
    assert summary["n_groups"] == 3
    members = pd.read_parquet(out / "members.parquet")
    assert len(members) == len(frame) - 18 and (members["prob_massive"] >= 0.5).all()
    groups = pd.read_csv(out / "groups.csv")
    assert groups["n_members"].sum() == (members["group"] >= 0).sum()
    assert (out / "sky_map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_missing_parallax_error_is_one_line(tmp_path, capsys):
    import sys

    from astromodal.cli import main

    frame, _ = _synthetic()
    frame.drop(columns="parallax_error").to_csv(tmp_path / "cat.csv", index=False)
    argv = sys.argv
    sys.argv = ["astromodal", "associations", str(tmp_path / "cat.csv"), "--out", str(tmp_path / "o")]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = argv
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "parallax_error" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing half-written


@pytest.mark.realdata
def test_real_als_carina_and_cygnus(shared_data):
    from astromodal.data.readers.als import read_als

    ds = read_als(shared_data / "als-ii-ob-stars" / "als_ii_b.dat")
    res = find_associations(ds, mode="sky", eps=0.5, min_samples=10)
    g = res.groups
    assert len(g) >= 2

    def nearest(l0: float, b0: float) -> float:
        dl = (g["l_deg"] - l0 + 180) % 360 - 180
        return float(np.min(np.hypot(dl * np.cos(np.radians(b0)), g["b_deg"] - b0)))

    assert nearest(287.6, -0.7) < 1.5  # Carina
    assert nearest(80.2, 0.8) < 1.5  # Cygnus OB2


def test_cli_on_a_simulated_survey_scores_against_the_true_associations(tmp_path):
    from astromodal.cli import app
    from astromodal.data.simulate import simulate_survey

    # the Gaia all-sky selection holds O/B stars (the SDSS-like default of instruments=() holds none)
    simulate_survey(n=900, seed=5, class_mix=(1, 0, 0), instruments=(), with_images=False,
                    stellar_selection="gaia").save(tmp_path / "s.h5")
    out = tmp_path / "a"
    result = CliRunner().invoke(app, ["associations", str(tmp_path / "s.h5"), "--out", str(out), "--query",
                                      "massive == 'massive'", "--eps", "0.2", "--min-samples", "8"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selection"]["query"] == "massive == 'massive'"
    members = pd.read_parquet(out / "members.parquet")
    assert (members["massive"] == "massive").all()  # the query kept the O/B stars only
    truth = summary["truth"]
    assert truth["column"] == "association_id" and truth["n_true_groups"] >= 2
    assert truth["adjusted_rand_index"] > 0.8
    assert "adjusted Rand index" in result.output
    # the same stars without the truth column: no score
    bad = CliRunner().invoke(app, ["associations", str(tmp_path / "s.h5"), "--out", str(tmp_path / "b"),
                                   "--query", "no_such_column > 1"])
    assert bad.exit_code != 0 and not (tmp_path / "b").exists()
    assert "no_such_column" in str(bad.exception) or "no_such_column" in bad.output


def test_scan_over_eps_and_min_samples():
    from astromodal.analysis.associations import scan_associations

    frame, true = _synthetic()
    frame["association_id"] = np.where(true < 3, true, -1)
    scan = scan_associations(frame, [0.001, 0.1, 5.0], [8], mode="xyz")
    assert scan[["eps", "min_samples"]].values.tolist() == [[0.001, 8], [0.1, 8], [5.0, 8]]
    by_eps = scan.set_index("eps")
    assert by_eps.loc[0.1, "n_groups"] == 3 and by_eps.loc[0.1, "adjusted_rand_index"] > 0.9
    assert by_eps.loc[0.001, "n_groups"] == 0  # too small: everything is noise
    assert by_eps.loc[5.0, "n_groups"] == 1  # too large: one group swallows all
    assert scan["adjusted_rand_index"].idxmax() == 1
    # without a truth column there is nothing to score
    assert "adjusted_rand_index" not in scan_associations(frame.drop(columns="association_id"), [0.1], [8]).columns
    with pytest.raises(ConfigError, match="at least one eps"):
        scan_associations(frame, [], [8])


def test_cli_scan_writes_scan_csv_and_rejects_bad_values(tmp_path):
    from astromodal.cli import app

    frame, true = _synthetic()
    frame["association_id"] = np.where(true < 3, true, -1)
    frame.to_csv(tmp_path / "stars.csv", index=False)
    out = tmp_path / "a"
    result = CliRunner().invoke(app, ["associations", str(tmp_path / "stars.csv"), "--out", str(out), "--eps", "0.1",
                                      "--min-samples", "8", "--scan-eps", "0.05,0.1", "--scan-min-samples", "4,8"])
    assert result.exit_code == 0, result.output
    scan = pd.read_csv(out / "scan.csv")
    assert len(scan) == 4 and "ARI" in result.output
    row = scan[(scan["eps"] == 0.1) & (scan["min_samples"] == 8)].iloc[0]
    summary = json.loads((out / "summary.json").read_text())
    assert row["adjusted_rand_index"] == pytest.approx(summary["truth"]["adjusted_rand_index"])
    bad = CliRunner().invoke(app, ["associations", str(tmp_path / "stars.csv"), "--out", str(tmp_path / "b"),
                                   "--scan-eps", "0.1,big"])
    assert bad.exit_code != 0 and "--scan-eps '0.1,big'" in str(bad.exception) and not (tmp_path / "b").exists()


def test_bad_values_name_the_input_row_and_say_infinite(tmp_path):
    import subprocess
    import sys

    frame, _ = _synthetic()
    frame["prob_massive"] = np.where(np.arange(len(frame)) < 5, 0.1, 0.9)  # rows 0-4 are not selected
    frame.loc[6, "parallax"] = np.inf
    frame.loc[9, "b"] = np.nan
    frame.to_csv(tmp_path / "pred.csv", index=False)

    def run(*extra):
        return subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", "associations",
                               str(tmp_path / "pred.csv"), "--out", str(tmp_path / "out"), *extra],
                              capture_output=True, text=True)

    proc = run("--mode", "sky")  # b is missing in input row 9 (row 4 among the selected stars)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "'b' is missing (NaN)" in proc.stderr and "rows [9]" in proc.stderr, proc.stderr
    proc = run("--drop-missing", "--mode", "xyz", "--min-samples", "3")
    assert proc.returncode == 0, proc.stderr  # inf parallax of a dropped star: left out, no error
    frame.loc[9, "b"] = 0.5
    frame.to_csv(tmp_path / "pred.csv", index=False)
    proc = run("--mode", "xyz", "--query", "l >= 0", "--overwrite")
    assert proc.returncode == 1
    assert "'parallax' is infinite" in proc.stderr and "rows [6]" in proc.stderr, proc.stderr
    frame["ra"] = frame["l"].astype(object)
    frame.loc[7, "ra"] = "n/a?"
    frame.drop(columns=["l", "b"]).assign(dec=0.0).to_csv(tmp_path / "pred.csv", index=False)
    proc = run("--mode", "sky", "--overwrite")
    assert proc.returncode == 1 and "'n/a?' in row 7" in proc.stderr, proc.stderr
