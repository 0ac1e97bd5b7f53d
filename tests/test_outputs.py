"""Outputs never destroy what astromodal did not write (issue 10, item 1).

Every verb checks ``--out`` before any work: a folder holding a user's file, the current folder, the
home folder, ``/`` and a folder that is or holds an input are refused with one line; a folder the tool
wrote is replaced only with ``--overwrite``. The user's files stay byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from astromodal.data.dataset import Column, Dataset, Spectra, Target
from astromodal.transforms.spectra import SpectrumPreprocessing

MARKER = ".astromodal-output.json"


# ------------------------------------------------------------------------------------------- helpers
def cli(monkeypatch, capsys, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run the real entry point ``astromodal.cli.main`` in-process: (exit status, stdout, stderr)."""
    from astromodal.cli import main

    monkeypatch.setattr(sys, "argv", ["astromodal", *map(str, args)])
    if cwd is not None:
        monkeypatch.chdir(cwd)
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # a bug: status -1 and its traceback on stderr, as the user would see it
        code = -1
        print(traceback.format_exc(), file=sys.stderr)
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with the sha256 of its bytes ('dir' for folders)."""
    return {str(p.relative_to(folder)): ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*"))}


def predictions(path: Path, n: int = 60, seed: int = 0) -> Path:
    """A small predictions table: two tight groups of stars plus field stars."""
    rng = np.random.default_rng(seed)
    lon = np.concatenate([rng.normal(80, 0.1, 25), rng.normal(200, 0.1, 25), rng.uniform(0, 360, n - 50)])
    lat = np.concatenate([rng.normal(1, 0.1, 25), rng.normal(-1, 0.1, 25), rng.uniform(-60, 60, n - 50)])
    d = np.concatenate([np.full(25, 1.0), np.full(25, 2.0), rng.uniform(0.5, 4, n - 50)])
    frame = pd.DataFrame({"source_id": np.arange(n), "l": lon, "b": lat, "parallax": 1 / d,
                          "parallax_error": 0.01 / d, "prob_massive": np.full(n, 0.9)})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return path


def spectra_h5(path: Path, n: int = 12) -> Path:
    """A tiny astromodal HDF5 with LAMOST-grid spectra and a class target (a build input)."""
    grid = SpectrumPreprocessing().grid()
    rng = np.random.default_rng(0)
    flux = 1 + rng.uniform(0, 1, (n, 1)) * grid / 9100 + 0.05 * rng.normal(size=(n, len(grid)))
    ds = Dataset(np.array([f"o{i}" for i in range(n)]), spectra={"lamost": Spectra(flux.astype(np.float32), grid)},
                 targets={"class": Target.from_labels(np.array(["star", "galaxy", "qso"])[np.arange(n) % 3])})
    path.parent.mkdir(parents=True, exist_ok=True)
    return ds.save(path)


def benchmark_config(folder: Path) -> Path:
    """A one-cell benchmark config on a tiny table (fast)."""
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    X = rng.normal(size=(90, 3)) + 3.0 * np.eye(3)[y]
    Dataset(np.arange(90), columns={f"c{k}": Column(X[:, k]) for k in range(3)},
            targets={"class": Target(y, "class", ("a", "b", "c"))}).save(folder / "t.h5")
    cfg = {"name": "tiny", "datasets": {"t": {"source": "hdf5", "options": {"path": str(folder / "t.h5")}}},
           "representations": {"cols": {"kind": "columns", "columns": ["c0", "c1", "c2"]}},
           "models": [{"name": "logistic_regression"}], "report": {"embeddings": []}}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture()
def sandbox(tmp_path):
    """A user's project: inputs for every verb and a folder holding the user's own notes."""
    proj = tmp_path / "proj"
    predictions(proj / "pred.parquet")
    spectra_h5(proj / "spectra.h5")
    benchmark_config(proj)
    (proj / "mine").mkdir()
    (proj / "mine" / "notes.txt").write_text("my thesis notes\n")
    (proj / "paper.txt").write_text("draft\n")
    return proj


def verb_args(verb: str, proj: Path, out: Path | str) -> list[str]:
    return {
        "quickstart": ["quickstart", "--out", out, "--n", "100", "--epochs", "1"],
        "build": ["build", "astrospectra-mnist", "--spectra", proj / "spectra.h5", "--out", out],
        "associations": ["associations", proj / "pred.parquet", "--out", out, "--mode", "sky", "--eps", "1",
                         "--min-samples", "5"],
        "benchmark": ["benchmark", proj / "tiny.yaml", "--out", out],
    }[verb]


FOLDER_VERBS = ("quickstart", "build", "associations", "benchmark")


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), err
    for needle in needles:
        assert needle in lines[-1], err


# --------------------------------------------------------------------------- a user's folder is safe
@pytest.mark.parametrize("verb", FOLDER_VERBS)
def test_a_folder_holding_a_user_file_is_never_wiped(verb, sandbox, monkeypatch, capsys):
    before = snapshot(sandbox)
    code, _, err = cli(monkeypatch, capsys, *verb_args(verb, sandbox, sandbox / "mine"))
    assert_one_line_error(code, err, str(sandbox / "mine"), "notes.txt", "choose another --out")
    assert snapshot(sandbox) == before  # byte-identical, nothing added
    # --overwrite does not change that: astromodal did not write the folder
    code, _, err = cli(monkeypatch, capsys, *verb_args(verb, sandbox, sandbox / "mine"), "--overwrite")
    assert_one_line_error(code, err, "notes.txt")
    assert snapshot(sandbox) == before


@pytest.mark.parametrize("verb", FOLDER_VERBS)
def test_out_dot_is_refused(verb, sandbox, monkeypatch, capsys):
    before = snapshot(sandbox)
    code, _, err = cli(monkeypatch, capsys, *verb_args(verb, sandbox, "."), "--overwrite", cwd=sandbox)
    assert_one_line_error(code, err, "current folder")
    assert snapshot(sandbox) == before


def test_out_home_and_root_are_refused(sandbox, monkeypatch, capsys):
    from astromodal.atomic import check_output_dir
    from astromodal.errors import ConfigError

    home = sandbox / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    before = snapshot(sandbox)
    code, _, err = cli(monkeypatch, capsys, *verb_args("associations", sandbox, home), "--overwrite")
    assert_one_line_error(code, err, "home folder")
    with pytest.raises(ConfigError, match="root folder"):
        check_output_dir("/", overwrite=True)
    with pytest.raises(ConfigError, match="home folder"):
        check_output_dir("~", overwrite=True)
    with pytest.raises(ConfigError, match="home folder"):
        check_output_dir(sandbox, overwrite=True)  # a folder holding the home folder
    assert snapshot(sandbox) == before


# --------------------------------------------------------------------------------- inputs are safe
def test_build_never_deletes_its_input_spectra(tmp_path, monkeypatch, capsys):
    proj = tmp_path / "proj"
    (proj / "fits").mkdir(parents=True)
    for i in range(3):
        (proj / "fits" / f"spec-{i}.fits").write_bytes(b"SIMPLE  =                    T" + bytes([i]) * 50)
    before = snapshot(tmp_path)
    for spectra in (proj / "fits", f"{proj}/fits/*.fits", proj / "fits" / "spec-0.fits"):
        code, _, err = cli(monkeypatch, capsys, "build", "astrospectra-mnist", "--spectra", spectra, "--out", proj,
                           "--overwrite")
        assert_one_line_error(code, err, "input")
        assert snapshot(tmp_path) == before


def test_associations_never_deletes_its_input(sandbox, monkeypatch, capsys):
    before = snapshot(sandbox)
    code, _, err = cli(monkeypatch, capsys, "associations", sandbox / "pred.parquet", "--out", sandbox, "--overwrite")
    assert_one_line_error(code, err, "input", "pred.parquet")
    assert snapshot(sandbox) == before


def test_an_input_inside_a_tool_written_folder_is_safe(sandbox, monkeypatch, capsys):
    out = sandbox / "assoc"
    assert cli(monkeypatch, capsys, *verb_args("associations", sandbox, out))[0] == 0
    before = snapshot(sandbox)
    # the members table of the first run as the input of a second run into the same folder
    code, _, err = cli(monkeypatch, capsys, "associations", out / "members.parquet", "--out", out, "--overwrite",
                       "--mode", "sky")
    assert_one_line_error(code, err, "input")
    assert snapshot(sandbox) == before


def test_benchmark_config_folder_is_never_the_output(sandbox, monkeypatch, capsys):
    before = snapshot(sandbox)
    code, _, err = cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", sandbox, "--overwrite")
    assert_one_line_error(code, err)
    assert snapshot(sandbox) == before


# ---------------------------------------------------------------------- tool-written folders, files
def test_a_tool_written_folder_is_replaced_only_with_overwrite(sandbox, monkeypatch, capsys):
    out = sandbox / "assoc"
    code, stdout, err = cli(monkeypatch, capsys, *verb_args("associations", sandbox, out))
    assert code == 0, err
    marker = json.loads((out / MARKER).read_text())
    assert marker["verb"] == "associations" and marker["version"] and marker["created_utc"].endswith("Z")
    assert "summary.json" in marker["entries"]
    first = snapshot(out)
    code, _, err = cli(monkeypatch, capsys, *verb_args("associations", sandbox, out), "--eps", "2")
    assert_one_line_error(code, err, "was written by astromodal associations", "--overwrite")
    assert snapshot(out) == first
    code, _, err = cli(monkeypatch, capsys, *verb_args("associations", sandbox, out), "--eps", "2", "--overwrite")
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["eps"] == 2.0
    assert not [p for p in sandbox.iterdir() if p.name.startswith(".assoc")]  # no temporary folder left
    # a file the user added to the tool's folder is never deleted, even with --overwrite
    (out / "my-plot-notes.txt").write_text("keep me")
    before = snapshot(sandbox)
    code, _, err = cli(monkeypatch, capsys, *verb_args("associations", sandbox, out), "--overwrite")
    assert_one_line_error(code, err, "my-plot-notes.txt")
    assert snapshot(sandbox) == before


def test_an_empty_folder_is_fine(sandbox, monkeypatch, capsys):
    out = sandbox / "empty"
    out.mkdir()
    code, _, err = cli(monkeypatch, capsys, *verb_args("associations", sandbox, out))
    assert code == 0, err
    assert (out / "groups.csv").is_file() and (out / MARKER).is_file()


def test_out_is_a_file_where_a_folder_is_expected_and_the_reverse(sandbox, monkeypatch, capsys):
    before = snapshot(sandbox)
    for verb in FOLDER_VERBS:
        code, _, err = cli(monkeypatch, capsys, *verb_args(verb, sandbox, sandbox / "paper.txt"), "--overwrite")
        assert_one_line_error(code, err, "paper.txt", "a folder is expected")
    code, _, err = cli(monkeypatch, capsys, "simulate", "--out", sandbox / "mine", "--n", "20", "--no-images")
    assert_one_line_error(code, err, "a file is expected")
    code, _, err = cli(monkeypatch, capsys, "simulate", "--out", sandbox / "paper.txt" / "x.h5", "--n", "20")
    assert_one_line_error(code, err, "is a file")
    assert snapshot(sandbox) == before


def test_simulate_replaces_only_its_own_file_with_overwrite(sandbox, monkeypatch, capsys):
    user = sandbox / "mine" / "survey.h5"
    user.write_bytes(b"not an astromodal dataset")
    before = snapshot(sandbox)
    for extra in ((), ("--overwrite",)):
        code, _, err = cli(monkeypatch, capsys, "simulate", "--out", user, "--n", "20", "--no-images", *extra)
        assert_one_line_error(code, err, "survey.h5", "not written by astromodal")
        assert snapshot(sandbox) == before
    # an input dataset astromodal wrote is still an input: --overwrite never makes it writable by build
    own = sandbox / "sim.h5"
    assert cli(monkeypatch, capsys, "simulate", "--out", own, "--n", "20", "--no-images")[0] == 0
    code, _, err = cli(monkeypatch, capsys, "simulate", "--out", own, "--n", "20", "--no-images")
    assert_one_line_error(code, err, "--overwrite")
    assert cli(monkeypatch, capsys, "simulate", "--out", own, "--n", "30", "--no-images", "--overwrite")[0] == 0
    assert len(Dataset.load(own)) == 30


def test_benchmark_resumes_in_place_and_refuses_others(sandbox, monkeypatch, capsys):
    from astromodal.errors import ConfigError
    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import load_config

    out = sandbox / "run"
    code, stdout, err = cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", out)
    assert code == 0, err
    assert json.loads((out / MARKER).read_text())["verb"] == "benchmark"
    assert "logistic_regression" in stdout and "accuracy" in stdout  # the summary is a result: stdout
    code, _, err = cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", out)
    assert code == 0, err  # resumed in place
    code, _, err = cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", out, "--no-resume")
    assert_one_line_error(code, err, "--overwrite")
    assert cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", out, "--no-resume",
               "--overwrite")[0] == 0
    # a file the user puts into the benchmark folder survives another verb's --overwrite
    (out / "my-summary.txt").write_text("mine")
    assert cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", out)[0] == 0  # resumes
    code, _, err = cli(monkeypatch, capsys, *verb_args("associations", sandbox, out), "--overwrite")
    assert_one_line_error(code, err, "my-summary.txt")
    assert (out / "my-summary.txt").read_text() == "mine" and (out / "report.md").is_file()
    # the Python API is as safe as the command line
    before = snapshot(sandbox)
    with pytest.raises(ConfigError, match="notes.txt"):
        BenchmarkRunner(load_config(sandbox / "tiny.yaml"), sandbox / "mine").run()
    assert snapshot(sandbox) == before


def test_an_interrupted_benchmark_is_replaced_but_a_user_file_added_to_it_is_not(sandbox, monkeypatch, capsys):
    """A run killed after its cells (while writing the report) has claimed its entries in the marker:
    --overwrite replaces its folder, but a file the user put into it during the run is never the tool's."""
    from astromodal.evaluation import benchmark_report

    out = sandbox / "run"

    def killed(*args, **kwargs):
        (out / "draft.txt").write_text("mine")  # the user saves a file into the folder while it runs
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(benchmark_report, "write_benchmark_report", killed)
        code, _, _ = cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", out)
    assert code != 0 and (out / "cells").is_dir()
    code, _, err = cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", out,
                       "--no-resume", "--overwrite")
    assert_one_line_error(code, err, "draft.txt")
    assert (out / "draft.txt").read_text() == "mine"
    (out / "draft.txt").unlink()  # moved away by the user: now the interrupted run's folder is replaced
    code, _, err = cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", out,
                       "--no-resume", "--overwrite")
    assert code == 0, err
    assert (out / "report.md").is_file()


# ------------------------------------------------------------------------------------ the mechanism
def test_atomic_dir_rechecks_before_replacing(tmp_path):
    from astromodal.atomic import atomic_dir, is_tool_written
    from astromodal.errors import ConfigError

    out = tmp_path / "out"
    with atomic_dir(out, verb="test") as tmp:
        (tmp / "a.txt").write_text("1")
    assert is_tool_written(out)
    with pytest.raises(ConfigError), atomic_dir(out, overwrite=True, verb="test") as tmp:
        (tmp / "b.txt").write_text("2")
        (out / MARKER).unlink()  # meanwhile the folder stopped being astromodal's
        (out / "user.txt").write_text("mine")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "user.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the temporary folder is gone


def test_is_tool_written_knows_its_own_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from astromodal.atomic import check_output_file, is_tool_written
    from astromodal.errors import ConfigError

    h5 = Dataset(np.arange(3)).save(tmp_path / "d.h5")
    (tmp_path / "other.h5").write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    pq.write_table(pa.table({"a": [1]}).replace_schema_metadata({b"astromodal": b"{}"}), tmp_path / "p.parquet")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "user.parquet")
    assert is_tool_written(h5) and is_tool_written(tmp_path / "p.parquet")
    assert not is_tool_written(tmp_path / "other.h5") and not is_tool_written(tmp_path / "user.parquet")
    assert not is_tool_written(tmp_path / "missing.h5") and not is_tool_written(tmp_path)
    assert check_output_file(h5, overwrite=True) == h5
    with pytest.raises(ConfigError, match="--overwrite"):
        check_output_file(h5)
    with pytest.raises(ConfigError, match="is the input"):
        check_output_file(h5, inputs=[h5], overwrite=True)
    with pytest.raises(ConfigError, match="not written by astromodal"):
        check_output_file(tmp_path / "user.parquet", overwrite=True)


def test_a_failed_benchmark_leaves_an_empty_folder_empty(sandbox, monkeypatch, capsys):
    cfg = yaml.safe_load((sandbox / "tiny.yaml").read_text())
    (sandbox / "broken.h5").write_text("not a dataset")
    cfg["datasets"]["t"]["options"]["path"] = str(sandbox / "broken.h5")
    (sandbox / "broken.yaml").write_text(yaml.safe_dump(cfg))
    out = sandbox / "empty"
    out.mkdir()
    code, _, err = cli(monkeypatch, capsys, "benchmark", sandbox / "broken.yaml", "--out", out)
    assert_one_line_error(code, err, "broken.h5")
    assert list(out.iterdir()) == []


def test_a_data_file_changed_in_place_is_not_resumed_with_old_numbers(sandbox, monkeypatch, capsys):
    """Resume reuses a finished cell only for the same data: the dataset file rewritten after the run makes
    the cell train again (it was reused with the old data's numbers, exit 0)."""
    import os

    out = sandbox / "run"
    assert cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", out)[0] == 0
    data = sandbox / "t.h5"
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # the file rewritten later
    code, _, err = cli(monkeypatch, capsys, "benchmark", sandbox / "tiny.yaml", "--out", out)
    assert code == 0, err
    assert "trained again because their settings changed" in (out / "report.md").read_text()
