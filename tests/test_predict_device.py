"""`astromodal predict --device`: where a neural model runs; bad or missing devices are one line, before any work."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from astromodal.errors import ConfigError
from astromodal.inference.catalogue import check_device, load_predictor
from astromodal.training.estimator import use_device
from test_predict import frame, invoke, run_main, train, write_csv


def test_check_device_accepts_the_trainer_devices_and_refuses_others():
    for ok in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        assert check_device(ok) == ok
    for bad in ("gpu", "cuda:", "cuda:x", "CPU", ""):
        with pytest.raises(ConfigError, match="--device"):
            check_device(bad)


def test_malformed_device_is_a_usage_error_before_any_work(tmp_path):
    folder = train(tmp_path, "lr")
    csv = write_csv(tmp_path / "c.csv", frame(20))
    got = run_main("predict", str(folder), str(csv), "--out", str(tmp_path / "p.parquet"), "--device", "gpu",
                   "--trust")
    assert got.returncode == 2 and "Traceback" not in got.stderr and "--device" in got.stderr
    assert not (tmp_path / "p.parquet").exists() and not (tmp_path / "p.parquet.parts").exists()


def test_a_gpu_for_a_scikit_learn_model_is_refused_in_one_line(tmp_path):
    folder = train(tmp_path, "lr")
    csv = write_csv(tmp_path / "c.csv", frame(20))
    got = run_main("predict", str(folder), str(csv), "--out", str(tmp_path / "p.parquet"), "--device", "cuda",
                   "--trust")
    assert got.returncode != 0 and "Traceback" not in got.stderr
    assert "holds no neural network" in got.stderr and not (tmp_path / "p.parquet").exists()
    # cpu (or auto) is fine for it, and the numbers are those of a run without --device
    assert invoke(folder, csv, "--out", tmp_path / "a.parquet", "--trust").exit_code == 0
    assert invoke(folder, csv, "--out", tmp_path / "b.parquet", "--trust", "--device", "cpu").exit_code == 0
    assert pq.read_table(tmp_path / "a.parquet").equals(pq.read_table(tmp_path / "b.parquet"))


def test_neural_model_runs_on_the_asked_device(tmp_path):
    pytest.importorskip("torch")
    import torch

    folder = train(tmp_path, "mlp", model="mlp_columns", trainer={"max_epochs": 1, "batch_size": 64, "patience": None})
    pred = load_predictor(folder, device="cpu")
    assert pred.estimator.trainer.device == "cpu"
    csv = write_csv(tmp_path / "c.csv", frame(50))
    assert invoke(folder, csv, "--out", tmp_path / "auto.parquet").exit_code == 0
    assert invoke(folder, csv, "--out", tmp_path / "cpu.parquet", "--device", "cpu").exit_code == 0
    a, b = (pq.read_table(tmp_path / f"{d}.parquet") for d in ("auto", "cpu"))
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():  # auto is the CPU here
        assert a.equals(b)
    else:  # the same model on a GPU: float32 rounding apart
        np.testing.assert_allclose(a["prob_qso"].to_numpy(), b["prob_qso"].to_numpy(), atol=1e-5)
    if not torch.cuda.is_available():
        got = run_main("predict", str(folder), str(csv), "--out", str(tmp_path / "g.parquet"), "--device", "cuda")
        assert got.returncode != 0 and "Traceback" not in got.stderr and "no CUDA GPU" in got.stderr
        assert not (tmp_path / "g.parquet").exists() and not (tmp_path / "g.parquet.parts").exists()


def test_use_device_reaches_every_network_of_an_ensemble():
    pytest.importorskip("torch")
    from astromodal.training.estimator import make_estimator

    class Ensemble:  # what use_device reads: members (fold / resample ensembles), encoder + probe (probes)
        def __init__(self, members):
            self.members = members

    nets = [make_estimator("mlp_columns", task="classification") for _ in range(3)]
    assert use_device(Ensemble([nets[0], Ensemble(nets[1:])]), "cpu") == 3
    assert all(n.trainer.device == "cpu" for n in nets)
    assert use_device(make_estimator("logistic_regression"), "cpu") == 0
