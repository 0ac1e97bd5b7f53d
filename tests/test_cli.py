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
