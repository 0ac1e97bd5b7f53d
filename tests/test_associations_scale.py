"""Association finding at scale: blocks of rows give the result of the whole table; memory bounded at 10^6 rows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from astromodal.analysis.associations import _renumber_by_size, find_associations, find_associations_chunked


def _stars(seed: int = 0) -> pd.DataFrame:
    """Three tight clusters (one across l = 0/360) and a field, as ra/dec; a probability column (a fifth of
    the rows below 0.5), some parallaxes too uncertain for the cut and two negative ones."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(seed)
    lon, lat, d = [], [], []
    for lc, bc, dc in [(359.8, 0.5, 1.0), (80.2, 0.8, 1.5), (287.6, -0.7, 2.3)]:
        lon.append((lc + rng.normal(0, 0.15, 40)) % 360)
        lat.append(bc + rng.normal(0, 0.15, 40))
        d.append(dc + rng.normal(0, 0.02, 40))
    lon.append(rng.uniform(0, 360, 60))
    lat.append(rng.uniform(-60, 60, 60))
    d.append(rng.uniform(0.5, 4.0, 60))
    icrs = SkyCoord(l=np.concatenate(lon) * u.deg, b=np.concatenate(lat) * u.deg, frame="galactic").icrs
    d = np.concatenate(d)
    n = len(d)
    frame = pd.DataFrame({"source_id": np.arange(n) + 10**12, "ra": icrs.ra.deg, "dec": icrs.dec.deg,
                          "parallax": 1.0 / d, "parallax_error": 0.01 / d, "prob_massive": rng.uniform(0.5, 1, n)})
    frame.loc[rng.choice(n, n // 5, replace=False), "prob_massive"] = 0.2
    frame.loc[5:9, "parallax_error"] = frame.loc[5:9, "parallax"]  # parallax / error = 1: cut
    frame.loc[[11, 12], "parallax"] = -0.1
    return frame


def _blocks(frame: pd.DataFrame, size: int):
    for at in range(0, len(frame), size):
        yield frame.iloc[at:at + size]  # the index: the rows' numbers in the input


@pytest.mark.parametrize("mode,eps", [("xyz", 0.1), ("sky", 0.5)])
def test_blocks_give_the_result_of_the_whole_table(mode, eps):
    frame = _stars()
    chosen = frame[frame["prob_massive"] >= 0.5]
    whole = find_associations(chosen, mode=mode, eps=eps, min_samples=8)
    got, selected = find_associations_chunked(_blocks(frame, 17), lambda b: b[b["prob_massive"] >= 0.5], mode=mode,
                                              eps=eps, min_samples=8)
    assert whole.summary["n_groups"] == 3
    if mode == "xyz":  # the parallax cut is exercised
        assert whole.summary["n_cut"] == int(chosen.index.isin([5, 6, 7, 8, 9, 11, 12]).sum()) > 0
    assert got.summary == whole.summary
    np.testing.assert_array_equal(got.labels, whole.labels)
    pd.testing.assert_frame_equal(got.members, whole.members)
    pd.testing.assert_frame_equal(got.groups, whole.groups)
    pd.testing.assert_frame_equal(selected, chosen)  # the selected rows, with their input row numbers
    # and the labels are scikit-learn's DBSCAN on the same points by brute force (no tree), renumbered by size
    from sklearn.cluster import DBSCAN

    used = whole.members["used"].to_numpy()
    m = whole.members[used]
    if mode == "xyz":
        pts, model = m[["x_kpc", "y_kpc", "z_kpc"]].to_numpy(), DBSCAN(eps=eps, min_samples=8, algorithm="brute")
    else:
        pts = np.radians(m[["b", "l"]].to_numpy())
        model = DBSCAN(eps=np.radians(eps), min_samples=8, metric="haversine", algorithm="brute")
    raw = np.full(len(used), -1)
    raw[used] = model.fit_predict(pts)
    np.testing.assert_array_equal(got.labels, _renumber_by_size(raw))


def test_the_verb_gives_the_same_files_for_any_chunk_rows_and_names_input_rows(tmp_path):
    from astromodal.cli import app

    frame = _stars(1)
    frame.to_csv(tmp_path / "pred.csv", index=False)
    frame.to_parquet(tmp_path / "pred.parquet", row_group_size=40)
    outs = {}
    for name, source, chunk in (("whole", "pred.csv", "1000000"), ("csv7", "pred.csv", "7"),
                                ("pq13", "pred.parquet", "13")):
        out = tmp_path / name
        result = CliRunner().invoke(app, ["associations", str(tmp_path / source), "--out", str(out), "--eps", "0.1",
                                          "--min-samples", "8", "--chunk-rows", chunk, "--query", "source_id >= 0"])
        assert result.exit_code == 0, result.output
        outs[name] = out
    summaries = {k: json.loads((v / "summary.json").read_text()) for k, v in outs.items()}
    for k in ("csv7", "pq13"):
        assert {**summaries[k], "input": None} == {**summaries["whole"], "input": None}
        pd.testing.assert_frame_equal(pd.read_parquet(outs[k] / "members.parquet"),
                                      pd.read_parquet(outs["whole"] / "members.parquet"))
        assert (outs[k] / "groups.csv").read_text() == (outs["whole"] / "groups.csv").read_text()
    sel = summaries["whole"]["selection"]
    assert sel["n_before"] == len(frame) and sel["n_selected"] == int((frame["prob_massive"] >= 0.5).sum())
    # a bad value in a later block names its row in the file; a query no block matches says so
    frame.loc[frame.index[frame["prob_massive"] >= 0.5][-1], "parallax"] = np.nan
    bad_row = int(frame.index[frame["parallax"].isna()][0])
    frame.to_csv(tmp_path / "bad.csv", index=False)
    result = CliRunner().invoke(app, ["associations", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "b"),
                                      "--chunk-rows", "9"])
    assert result.exit_code == 1 and f"rows [{bad_row}]" in str(result.exception)
    result = CliRunner().invoke(app, ["associations", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "b"),
                                      "--chunk-rows", "9", "--query", "source_id < 0"])
    assert result.exit_code == 1 and "no row matches --query" in str(result.exception)
    assert not (tmp_path / "b").exists()


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_associations.py"
    spec = importlib.util.spec_from_file_location("bench_associations", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset the RSS peak")
def test_memory_is_bounded_at_a_million_rows(tmp_path):
    """10^6 prediction rows (8 numeric columns: 61 MiB as arrays), 1 % candidates, read 50,000 rows at a time:
    the peak resident memory of the call rises by less than 100 MiB (measured ~48 MiB; the whole-table path
    rises by ~210 MiB: benchmarks/bench_associations.py), in a fresh process after a warm-up call."""
    bench = _bench()
    path = tmp_path / "pred.parquet"
    n_cand = bench.make_table(path, 1_000_000, 0.01, row_group=100_000)
    got = bench.measure(path, 50_000)
    assert got["n_selected"] == n_cand == 10_000 and got["n_groups"] >= 50
    assert got["rss_growth_mb"] < 100.0, got


def test_an_hdf5_catalogue_is_read_in_blocks_with_the_result_of_the_whole_file(tmp_path):
    from astromodal.cli import app
    from astromodal.cli.associations import iter_catalogue_frames, load_catalogue_frame
    from astromodal.data.dataset import Column, Dataset

    frame = _stars(2)
    cols = {c: Column(frame[c].to_numpy(), "mas" if c.startswith("parallax") else "")
            for c in ("parallax", "parallax_error", "prob_massive")}
    Dataset(frame["source_id"].to_numpy(), frame["ra"].to_numpy(), frame["dec"].to_numpy(),
            columns=cols).save(tmp_path / "pred.h5")
    blocks = list(iter_catalogue_frames(tmp_path / "pred.h5", 23))
    assert [len(b) for b in blocks] == [23] * (len(frame) // 23) + [len(frame) % 23]
    assert blocks[1].index[0] == 23  # each block indexed by its rows' numbers in the file
    pd.testing.assert_frame_equal(pd.concat(blocks), load_catalogue_frame(tmp_path / "pred.h5"))
    outs = {}
    for chunk in ("1000000", "23"):
        out = tmp_path / f"h5_{chunk}"
        result = CliRunner().invoke(app, ["associations", str(tmp_path / "pred.h5"), "--out", str(out), "--eps", "0.1",
                                          "--min-samples", "8", "--chunk-rows", chunk])
        assert result.exit_code == 0, result.output
        outs[chunk] = out
    whole, blocked = (json.loads((outs[k] / "summary.json").read_text()) for k in ("1000000", "23"))
    assert whole["n_groups"] == 3 and blocked == whole
    pd.testing.assert_frame_equal(pd.read_parquet(outs["23"] / "members.parquet"),
                                  pd.read_parquet(outs["1000000"] / "members.parquet"))


def test_the_chunked_form_takes_the_settings_of_the_whole_one_and_refuses_unknown_ones():
    from astromodal.errors import ConfigError

    frame = _stars(3)
    got, _ = find_associations_chunked(_blocks(frame, 50), eps=0.1, min_samples=8, parallax_over_error_min=5.0)
    whole = find_associations(frame, eps=0.1, min_samples=8, parallax_over_error_min=5.0)
    assert got.summary == whole.summary and whole.summary["n_groups"] == 3
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['epsilon'\]; known: .*'eps'"):
        find_associations_chunked(_blocks(frame, 50), epsilon=0.1)
