"""``astromodal build astrospectra-mnist`` end to end: real LAMOST folder (v2), a tiny HDF5, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from astromodal.cli import app
from astromodal.data.dataset import Dataset, Spectra, Target
from astromodal.data.readers.astrospectra_mnist import read_astrospectra_mnist
from astromodal.transforms.spectra import SpectrumPreprocessing

runner = CliRunner()


def run_main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", *args],
                          capture_output=True, text=True)


@pytest.mark.realdata
def test_build_v2_from_real_lamost(shared_data, tmp_path):
    out = tmp_path / "AstroSpectra-MNIST-v2"
    result = runner.invoke(app, ["build", "astrospectra-mnist", "--spectra",
                                 str(shared_data / "lamost-dr1-sample" / "SampleFits"),
                                 "--out", str(out), "--version", "v2", "--seed", "0"])
    assert result.exit_code == 0, result.output
    prov = json.loads((out / "provenance.json").read_text())
    # F 46, G 34, K 38 kept; A 40 and M 18 dropped
    assert prov["dropped_other_classes"] == {"A": 40, "M": 18}
    total = {k: prov["counts"]["train"][k] + prov["counts"]["test"][k] for k in ("F", "G", "K")}
    assert total == {"F": 46, "G": 34, "K": 38}
    assert sum(prov["counts"]["test"].values()) == 24  # ceil(0.2 * 118)
    assert len(prov["source_files"]) == 176
    train = read_astrospectra_mnist(out, split="train")
    test = read_astrospectra_mnist(out, split="test")
    assert len(train) == 94 and len(test) == 24
    assert train.targets["class"].class_names == ("F", "G", "K")
    assert len(list((out / "train_imagesv2").glob("*.png"))) == 94


def _tiny_h5(path):
    grid = SpectrumPreprocessing().grid()
    n = 12
    rng = np.random.default_rng(0)
    flux = 1 + rng.uniform(0, 1, (n, 1)) * grid / 9100 + 0.05 * rng.normal(size=(n, len(grid)))
    ds = Dataset(np.array([f"o{i}" for i in range(n)]),
                 spectra={"lamost": Spectra(flux.astype(np.float32), grid)},
                 targets={"class": Target.from_labels(np.array(["star", "galaxy", "qso"])[np.arange(n) % 3]),
                          "spectral_type": Target.from_labels(np.array(["F", "G", "K", "M"])[np.arange(n) % 4])})
    ds.save(path)
    return path


def test_build_from_hdf5_both_versions(tmp_path):
    h5 = _tiny_h5(tmp_path / "sim.h5")
    out1 = tmp_path / "v1"
    r = runner.invoke(app, ["build", "astrospectra-mnist", "--spectra", str(h5), "--out", str(out1),
                            "--spectra-name", "lamost", "--target", "class", "--test-fraction", "0.25"])
    assert r.exit_code == 0, r.output
    assert len(read_astrospectra_mnist(out1)) == 9 and len(read_astrospectra_mnist(out1, split="test")) == 3
    out2 = tmp_path / "v2"
    r = runner.invoke(app, ["build", "astrospectra-mnist", "--spectra", str(h5), "--out", str(out2),
                            "--version", "v2", "--target", "spectral_type", "--test-fraction", "0.34"])
    assert r.exit_code == 0, r.output
    prov = json.loads((out2 / "provenance.json").read_text())
    assert prov["dropped_other_classes"] == {"M": 3} and prov["target"] == "spectral_type"


def test_bad_input_one_line_error_and_no_output(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    proc = run_main("build", "astrospectra-mnist", "--spectra", str(empty), "--out", str(out))
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error:") and "empty" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".out.*"))

    bad = tmp_path / "fits"
    bad.mkdir()
    (bad / "spec-1.fits").write_text("not a fits file")
    proc = run_main("build", "astrospectra-mnist", "--spectra", str(bad), "--out", str(out), "--reader", "lamost")
    assert proc.returncode == 1 and "spec-1.fits" in proc.stderr and not out.exists()

    # an error while writing (v2 with no F/G/K object) leaves no half-written folder
    h5 = _tiny_h5(tmp_path / "sim.h5")
    proc = run_main("build", "astrospectra-mnist", "--spectra", str(h5), "--out", str(out), "--version", "v2",
                    "--target", "class")
    assert proc.returncode == 1 and "v2 classes" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.*"))

    proc = run_main("build", "astrospectra-mnist", "--spectra", str(h5), "--out", str(out), "--version", "v3")
    assert proc.returncode == 1 and "v3" in proc.stderr


@pytest.mark.parametrize(("extra", "needle"), [
    (["--seed", "-1"], "--seed"),
    (["--test-fraction", "0.01"], "test set"),  # 1 test object for 3 classes
    (["--bin-width", "100000"], "--bin-width"),
    (["--spectra", ""], "--spectra"),
])
def test_bad_options_name_the_option_in_one_line(tmp_path, extra, needle):
    h5 = _tiny_h5(tmp_path / "sim.h5")
    out = tmp_path / "out"
    spectra = [] if extra[0] == "--spectra" else ["--spectra", str(h5)]
    proc = run_main("build", "astrospectra-mnist", *spectra, "--out", str(out), *extra)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], proc.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["sim.h5"]
