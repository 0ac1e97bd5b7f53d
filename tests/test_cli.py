"""The command line end to end: quickstart, models, errors as one line with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from astromodal.cli import app

runner = CliRunner()


def run_main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", *args],
                          capture_output=True, text=True)


def test_help_lists_every_verb():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for verb in ("quickstart", "simulate", "models", "build", "benchmark", "predict", "associations"):
        assert verb in result.output


def test_models_lists_parameter_counts():
    result = runner.invoke(app, ["models", "--study", "C", "--input-length", "343", "--classes", "1"])
    assert result.exit_code == 0, result.output
    assert "175,841" in result.output  # the CNN of the Gaia XP study
    assert "1,036" in result.output  # its Wide ANN


def test_quickstart_is_repeatable(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = runner.invoke(app, ["quickstart", "--out", str(out), "--n", "300", "--epochs", "2", "--seed", "3"])
        assert result.exit_code == 0, result.output
        assert "simple_cnn1" in result.stdout and "accuracy" in result.stdout  # results: stdout
        outs.append(out)
        for f in ("report.md", "report.html", "results.json", "figures/example_spectra.png", "figures/example_cutouts.png"):
            assert (out / f).is_file(), f
        md = (out / "report.md").read_text()
        assert "astromodal quickstart --out" in md and "simple_cnn1" in md
    a, b = (json.loads((o / "results.json").read_text()) for o in outs)
    assert [c["metrics"] for c in a["cells"]] == [c["metrics"] for c in b["cells"]]
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["quickstart", "--n", "5"], "--n must be at least 100"),
        (["benchmark", "no-such.yaml"], "no such experiment config"),
        (["predict", "no-model", "x.h5", "--out", "p.parquet"], "not an astromodal model folder"),
    ],
)
def test_errors_are_one_line(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert message in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert not list(tmp_path.iterdir())  # nothing half-written


# ------------------------------------------------------------------ a Unix tool (issue 10, item 7)
USAGE_ERRORS = [
    ["no-such-verb"],
    ["quickstart", "--n", "abc"],
    ["simulate"],  # --out missing
    ["simulate", "--out", "x.h5", "--n", "abc"],
    ["models", "--bogus"],
    ["build", "astrospectra-mnist", "--out", "x"],  # --spectra missing
    ["build", "no-such-layout"],
    ["benchmark"],  # CONFIG missing
    ["benchmark", "c.yaml", "--no-such-option"],
    ["predict", "model"],  # CATALOG missing
    ["associations", "pred.parquet", "--eps", "wide"],
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=lambda a: " ".join(a))
def test_usage_errors_exit_2_with_usage_and_no_traceback(tmp_path, args):
    proc = subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "Usage:" in proc.stderr and "Error" in proc.stderr, proc.stderr
    assert not list(tmp_path.iterdir())


def test_models_goes_to_stdout_uncut_in_a_pipe():
    proc = run_main("models", "--study", "C")  # stdout is a pipe here
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "cnn" in line]  # astromodal models | grep cnn
    assert any(line.split()[0] == "cnn1d" and line.split()[-1] == "175,841" for line in lines), proc.stdout
    assert all(len(line) <= 80 for line in proc.stdout.splitlines())
    assert "…" not in proc.stdout and "..." not in proc.stdout.split("\n", 1)[1]


def test_models_formats():
    import csv
    import io

    from astromodal.models.registry import list_models

    every = {s.name for s in list_models()}
    table = runner.invoke(app, ["models"])
    assert table.exit_code == 0
    names = {line.split()[0] for line in table.stdout.splitlines()[2:] if line and not line.startswith(" ")}
    assert names == every  # every name in full, one row each
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["models", "--format", "csv"]).stdout)))
    assert {r["name"] for r in rows} == every
    assert next(r for r in rows if r["name"] == "wide_ann")["parameters"] == "1036"
    data = json.loads(runner.invoke(app, ["models", "--format", "json", "--study", "C"]).stdout)
    assert {"name": "wide_ann", "parameters": 1036}.items() <= next(d for d in data if d["name"] == "wide_ann").items()
    bad = run_main("models", "--format", "xml")
    assert bad.returncode == 1 and "--format" in bad.stderr


def test_simulate_shows_progress_and_keeps_its_numbers(tmp_path):
    import os

    import numpy as np

    from astromodal.data.dataset import Dataset
    from astromodal.data.simulate import simulate_survey

    env = {**os.environ, "ASTROMODAL_NO_PROGRESS": "0", "COLUMNS": "100"}
    proc = subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", "simulate", "--out",
                           str(tmp_path / "s.h5"), "--n", "40", "--seed", "5", "--image-size", "8"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "40/40" in proc.stderr and "spectra" in proc.stderr and "images" in proc.stderr  # counts, on stderr
    assert "wrote" in proc.stdout
    seen = []
    with_progress = simulate_survey(n=40, seed=5, image_size=8, batch_size=16,
                                    progress=lambda stage, done, total: seen.append((stage, done, total)))
    plain = simulate_survey(n=40, seed=5, image_size=8, batch_size=16)
    assert ("spectra", 40, 40) in seen and ("images", 40, 40) in seen
    for name in plain.spectra:
        assert np.array_equal(with_progress.spectra[name].flux.read(), plain.spectra[name].flux.read())
    assert np.array_equal(with_progress.images["sdss"].pixels.read(), plain.images["sdss"].pixels.read())
    saved = Dataset.load(tmp_path / "s.h5")
    assert np.array_equal(saved.spectra["lamost"].flux.read(), simulate_survey(n=40, seed=5, image_size=8)
                          .spectra["lamost"].flux.read())
