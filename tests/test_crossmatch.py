"""Cross-match (nearest, unique, within a radius), quality cuts with counts, and the crossmatch verb."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from astromodal.data.crossmatch import apply_quality_cuts, check_cuts, crossmatch, parse_radius
from astromodal.errors import BadValueError, ConfigError

ARCSEC = 1.0 / 3600.0


def test_separations_along_dec_and_along_ra_with_cos_dec():
    # A: three objects at dec 0 and three at dec 60; B: each offset by 1", 2.9", 3.1" (along dec at dec 0,
    # along ra at dec 60, where an offset of s arcsec on the sky is s / cos(60 deg) = 2 s in ra)
    offsets = np.array([1.0, 2.9, 3.1])
    a_ra = np.array([10.0, 20.0, 30.0, 10.0, 20.0, 30.0])
    a_dec = np.array([0.0, 0.0, 0.0, 60.0, 60.0, 60.0])
    b_ra = np.concatenate([a_ra[:3], a_ra[3:] + 2.0 * offsets * ARCSEC])
    b_dec = np.concatenate([offsets * ARCSEC, a_dec[3:]])
    counts: dict[str, int] = {}
    idx_a, idx_b, sep = crossmatch(a_ra, a_dec, b_ra, b_dec, 3.0, counts=counts)
    assert idx_a.tolist() == [0, 1, 3, 4] and idx_b.tolist() == [0, 1, 3, 4]  # 3.1" is outside 3"
    assert sep == pytest.approx([1.0, 2.9, 1.0, 2.9], abs=1e-6)
    assert counts == {"n_a": 6, "n_b": 6, "matched": 4, "unmatched_a": 2, "unmatched_b": 2, "duplicates_dropped": 0}
    # without the cos(dec) factor the ra offsets would be 2" and 5.8": 2.9" at dec 60 must not come out as 5.8"
    _, _, sep60 = crossmatch(a_ra[3:], a_dec[3:], b_ra[3:], b_dec[3:], 10.0)
    assert sep60 == pytest.approx([1.0, 2.9, 3.1], abs=1e-6)


def test_two_a_objects_on_one_b_keep_the_nearest_pair():
    # A0 is 2" from B0, A1 1" from B0 (both nearest to B0), A2 1" from B1; A3 ties A2 at 1" on the other side
    a_ra = np.array([0.0, 0.0, 5.0, 5.0])
    a_dec = np.array([2.0, -1.0, 1.0, -1.0]) * ARCSEC
    b_ra, b_dec = np.array([0.0, 5.0]), np.array([0.0, 0.0])
    counts: dict[str, int] = {}
    idx_a, idx_b, sep = crossmatch(a_ra, a_dec, b_ra, b_dec, 3.0, counts=counts)
    assert idx_a.tolist() == [1, 2] and idx_b.tolist() == [0, 1]  # the tie goes to the first A row (2)
    assert sep == pytest.approx([1.0, 1.0], abs=1e-6)
    assert counts["duplicates_dropped"] == 2 and counts["unmatched_a"] == 2 and counts["unmatched_b"] == 0
    assert len(set(idx_b.tolist())) == len(idx_b)  # every B object at most once


def test_crossmatch_refuses_bad_positions_and_handles_empty_sides():
    with pytest.raises(BadValueError, match=r"catalogue B: 1 position\(s\).*row 1"):
        crossmatch([0.0], [0.0], [0.0, np.nan], [0.0, 0.0], 3.0)
    with pytest.raises(BadValueError, match="catalogue A"):
        crossmatch([0.0], [91.0], [0.0], [0.0], 3.0)
    counts: dict[str, int] = {}
    idx_a, idx_b, sep = crossmatch([], [], [1.0], [1.0], 3.0, counts=counts)
    assert len(idx_a) == len(idx_b) == len(sep) == 0 and counts["unmatched_b"] == 1


def test_parse_radius_with_astropy_units():
    assert parse_radius("3arcsec") == pytest.approx(3.0)
    assert parse_radius("0.001deg") == pytest.approx(3.6)
    assert parse_radius("50 mas") == pytest.approx(0.05)
    for bad, message in (("3", "no unit"), ("3kg", "not an angle"), ("-1arcsec", "positive"), ("abc", "not an angle"),
                         ("nan arcsec", "positive")):
        with pytest.raises(ConfigError, match=message):
            parse_radius(bad)


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "parallax_over_error": [5.0, 1.0, 3.0, 2.0, 10.0, np.nan],
        "pmra_error": [0.1, 0.1, 0.3, 0.1, 0.1, 0.1],
        "pmdec_error": [0.1, 0.1, 0.1, 0.1, 0.19, 0.1],
        "ruwe": [1.0, 1.0, 1.0, 1.0, 1.5, 1.0],
        "flags": [0, 0, 2**18, 0, 0, 2**17 | 2**32],
    })


def test_quality_cuts_count_rows_kept_after_each_cut():
    cuts = {"parallax_over_error_min": 2, "pmra_error_max": 0.2, "pmdec_error_max": 0.2, "ruwe_max": 1.4,
            "drop_saturated": True}
    mask, counts = apply_quality_cuts(_table(), cuts)
    # rows: 0 passes all; 1 plx/err 1; 2 pmra_error 0.3; 3 plx/err exactly 2 (strict >); 4 ruwe 1.5; 5 NaN
    assert mask.tolist() == [True, False, False, False, False, False]
    assert counts == [{"cut": "input", "kept": 6}, {"cut": "parallax_over_error > 2", "kept": 3},
                      {"cut": "pmra_error < 0.2", "kept": 2}, {"cut": "pmdec_error < 0.2", "kept": 2},
                      {"cut": "ruwe < 1.4", "kept": 1}, {"cut": "not saturated", "kept": 1}]
    # a dict of arrays works the same; only the cuts that are set are applied
    mask, counts = apply_quality_cuts({k: v.to_numpy() for k, v in _table().items()}, {"ruwe_max": 1.4})
    assert mask.tolist() == [True, True, True, True, False, True] and [c["kept"] for c in counts] == [6, 5]


def test_saturation_from_sdss_flags_bit_18_or_a_saturated_column():
    frame = _table()
    mask, _ = apply_quality_cuts(frame, {"drop_saturated": True})
    assert mask.tolist() == [True, True, False, True, True, True]  # 2**17 | 2**32 has no bit 18
    frame["saturated"] = [True, False, False, False, False, True]  # the column wins over flags
    mask, _ = apply_quality_cuts(frame, {"drop_saturated": True})
    assert mask.tolist() == [False, True, True, True, True, False]
    mask, counts = apply_quality_cuts(frame, {"drop_saturated": False})
    assert mask.all() and counts == [{"cut": "input", "kept": 6}]


def test_parallax_over_error_from_parallax_and_its_error():
    cols = {"parallax": np.array([1.0, 1.0, -3.0]), "parallax_error": np.array([0.1, 1.0, 0.5])}
    mask, counts = apply_quality_cuts(cols, {"parallax_over_error_min": 2})
    assert mask.tolist() == [True, False, False] and counts[-1] == {"cut": "parallax_over_error > 2", "kept": 1}


def test_cut_on_a_missing_column_names_column_and_dataset():
    with pytest.raises(ConfigError, match=r"dataset 'gaia'.*'ruwe'"):
        apply_quality_cuts(_table().drop(columns="ruwe"), {"ruwe_max": 1.4}, where="dataset 'gaia'")
    with pytest.raises(ConfigError, match="'saturated' or the SDSS 'flags'"):
        apply_quality_cuts(_table().drop(columns="flags"), {"drop_saturated": True})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['ruwe'\]"):
        check_cuts({"ruwe": 1.4})
    with pytest.raises(ConfigError, match="finite number"):
        check_cuts({"ruwe_max": "low"})


def test_dataset_config_cuts_are_checked_and_absent_from_old_dumps():
    from pydantic import ValidationError

    from astromodal.experiments import DatasetConfig

    assert "cuts" not in DatasetConfig(source="simulate").model_dump()  # old fingerprints unchanged
    cfg = DatasetConfig(source="simulate", cuts={"ruwe_max": 1.4, "drop_saturated": True})
    assert cfg.cuts == {"ruwe_max": 1.4, "drop_saturated": True}
    with pytest.raises(ValidationError, match="unknown key"):
        DatasetConfig(source="simulate", cuts={"ruwe_min": 1.0})


def test_load_source_applies_cuts_and_records_the_selection(tmp_path):
    from astromodal.data.sources import load_source

    frame = _table()
    frame["label"] = ["A", "F", "G", "K", "M", "A"]
    frame.to_csv(tmp_path / "t.csv", index=False)
    train, test = load_source("table", {"path": str(tmp_path / "t.csv"), "label": "label", "dropna": False,
                                        "features": ["pmra_error", "pmdec_error", "ruwe", "flags"]},
                              cuts={"ruwe_max": 1.4, "drop_saturated": True}, name="shi")
    assert test is None and len(train) == 4
    assert train.meta["selection"] == [{"cut": "input", "kept": 6}, {"cut": "ruwe < 1.4", "kept": 5},
                                       {"cut": "not saturated", "kept": 4}]
    assert train.target("label").labels().tolist() == ["A", "F", "K", "A"]
    with pytest.raises(ConfigError, match=r"dataset 'shi'.*'parallax_over_error'"):
        load_source("table", {"path": str(tmp_path / "t.csv"), "label": "label", "features": ["ruwe"]},
                    cuts={"parallax_over_error_min": 2}, name="shi")
    sim, _ = load_source("simulate", {"n": 300, "seed": 1, "with_images": False, "instruments": []},
                         cuts={"parallax_over_error_min": 2, "ruwe_max": 1.4}, name="sim")
    kept = [c["kept"] for c in sim.meta["selection"]]
    assert kept[0] == 300 and kept[1] >= kept[2] == len(sim) > 0
    assert (sim.columns["ruwe"].values.read() < 1.4).all()
    with pytest.raises(BadValueError, match="keep no object"):
        load_source("simulate", {"n": 50, "seed": 1, "with_images": False, "instruments": []},
                    cuts={"ruwe_max": 0.1}, name="sim")


def _catalogues(tmp_path):
    a = pd.DataFrame({"objid": [1, 2, 3], "ra": [10.0, 10.0, 50.0], "dec": [0.0, 1.0, 60.0], "r": [15.0, 16.0, 17.0]})
    b = pd.DataFrame({"source_id": [11, 12, 13], "RA_ICRS": [10.0, 10.0, 50.0 + 2.0 * 2.9 * ARCSEC],
                      "DE_ICRS": [1.0 * ARCSEC, 1.0 + 3.1 * ARCSEC, 60.0], "r": [1.0, 2.0, 3.0]})
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_parquet(tmp_path / "b.parquet")
    return a, b


def test_verb_writes_the_joined_table_and_counts(tmp_path):
    import pyarrow.parquet as pq

    from astromodal.atomic import is_tool_written
    from astromodal.cli import app

    _catalogues(tmp_path)
    out = tmp_path / "m.parquet"
    args = ["crossmatch", str(tmp_path / "a.csv"), str(tmp_path / "b.parquet"), "--radius", "3arcsec", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for line in ("matched: 2", "unmatched_a: 1", "unmatched_b: 1", "duplicates_dropped: 0"):
        assert line in result.output
    joined = pd.read_parquet(out)
    assert list(joined.columns) == ["objid", "ra", "dec", "r_a", "source_id", "RA_ICRS", "DE_ICRS", "r_b",
                                    "separation_arcsec"]
    assert joined["objid"].tolist() == [1, 3] and joined["source_id"].tolist() == [11, 13]
    assert joined["separation_arcsec"].to_numpy() == pytest.approx([1.0, 2.9], abs=1e-6)
    assert is_tool_written(out) and json.loads(pq.read_schema(out).metadata[b"astromodal"])["counts"]["matched"] == 2
    again = CliRunner().invoke(app, args)  # an existing output needs --overwrite
    assert again.exit_code == 1 and "--overwrite" in str(again.exception)
    wide = CliRunner().invoke(app, [*args, "--overwrite", "--radius", "0.001deg"])  # 3.6": the 3.1" pair too
    assert wide.exit_code == 0 and "matched: 3" in wide.output and len(pd.read_parquet(out)) == 3


def test_verb_bad_input_is_one_line_and_writes_nothing(tmp_path):
    _catalogues(tmp_path)
    (tmp_path / "mine.parquet").write_bytes(b"PAR1 not astromodal's")

    def run(*extra):
        return subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", "crossmatch",
                               str(tmp_path / "a.csv"), str(tmp_path / "b.parquet"), *extra],
                              capture_output=True, text=True)

    for extra, message in (
        (["--radius", "3", "--out", str(tmp_path / "o.parquet")], "has no unit"),
        (["--radius", "3kg", "--out", str(tmp_path / "o.parquet")], "not an angle"),
        (["--ra-column-b", "ra_x", "--out", str(tmp_path / "o.parquet")], "unknown ra column 'ra_x'"),
        (["--out", str(tmp_path / "o.csv")], "Parquet"),
        (["--out", str(tmp_path / "mine.parquet"), "--overwrite"], "not written by astromodal"),
    ):
        proc = run(*extra)
        assert proc.returncode == 1, (extra, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len([x for x in proc.stderr.splitlines() if x.startswith("error:")]) == 1
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "o.csv").exists()
    assert (tmp_path / "mine.parquet").read_bytes() == b"PAR1 not astromodal's"
    # B without any usual position column
    pd.DataFrame({"x": [1.0], "y": [2.0]}).to_csv(tmp_path / "nopos.csv", index=False)
    proc = subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", "crossmatch",
                           str(tmp_path / "a.csv"), str(tmp_path / "nopos.csv"), "--out", str(tmp_path / "o.parquet")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "catalogue B: no ra column" in proc.stderr
    usage = run()  # --out missing: a usage error
    assert usage.returncode == 2
