"""Every verb against malformed inputs and output clashes (issue 10, "Done when").

Each case runs the real entry point (``astromodal.cli.main``, in-process for speed; usage errors also
run as subprocesses in tests/test_cli.py) inside a sandbox folder and asserts: no traceback, exit
status 2 for usage errors and 1 otherwise, one ``error: ...`` line, and the sandbox byte-identical
afterwards (the user's files unchanged, no half-written output, no temporary file left).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from astromodal.data.dataset import Dataset, Spectra, Target
from astromodal.transforms.spectra import SpectrumPreprocessing
from test_outputs import benchmark_config, cli, snapshot

USAGE, FAIL = 2, 1


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A user's folder with good inputs, corrupt files and a folder of the user's own notes."""
    root = tmp_path_factory.mktemp("bad-input")
    # good inputs
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"source_id": np.arange(n), "l": rng.uniform(0, 360, n), "b": rng.uniform(-5, 5, n),
                          "parallax": rng.uniform(0.5, 2, n), "parallax_error": np.full(n, 0.01),
                          "prob_massive": np.full(n, 0.9)})
    frame.to_parquet(root / "pred.parquet")
    inf = frame.copy()
    inf.loc[3, "parallax"] = np.inf
    inf.to_csv(root / "inf.csv", index=False)
    grid = SpectrumPreprocessing().grid()
    flux = 1 + rng.uniform(0, 1, (12, 1)) * grid / 9100
    Dataset(np.array([f"o{i}" for i in range(12)]), spectra={"lamost": Spectra(flux.astype(np.float32), grid)},
            targets={"class": Target.from_labels(np.array(["star", "galaxy", "qso"])[np.arange(12) % 3])}
            ).save(root / "spectra.h5")
    cfg = yaml.safe_load(benchmark_config(root).read_text())  # t.h5 and tiny.yaml
    (root / "unknown_key.yaml").write_text(yaml.safe_dump({**cfg, "colour_scheme": "blue"}))
    (root / "garbage_data.yaml").write_text(yaml.safe_dump(
        {**cfg, "datasets": {"t": {"source": "hdf5", "options": {"path": str(root / "garbage.h5")}}}}))
    (root / "bad_model.yaml").write_text(yaml.safe_dump({**cfg, "models": [{"name": "no_such_model"}]}))
    # corrupt and wrong files
    (root / "notes.txt").write_text("hello world\nthis is my text\n")
    (root / "notes.csv").write_text("hello world\nthis is my text\n")
    (root / "ab.csv").write_text("a,b\n1,2\n")
    (root / "empty.csv").write_text("")
    (root / "bin.csv").write_bytes(bytes(range(256)))
    (root / "garbage.h5").write_text("not hdf5 at all")
    (root / "truncated.h5").write_bytes((root / "t.h5").read_bytes()[:600])
    (root / "garbage.fits").write_text("SIMPLE = maybe\n")
    (root / "empty.fits").write_bytes(b"")
    (root / "garbage.parquet").write_text("PAR1 not really")
    (root / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (root / "bad.yaml").write_text("name: [unclosed\n  : : :\n")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "empty.yaml").write_text("")
    (root / "dir.csv").mkdir()
    (root / "emptydir").mkdir()
    (root / "fits").mkdir()
    (root / "fits" / "spec-1.fits").write_text("SIMPLE = no\n")
    (root / "model_as_text").write_text("I am not a model folder\n")
    (root / "fake_model").mkdir()
    (root / "fake_model" / "predictor.json").write_text("{ not json")
    (root / "fake_model" / "model.pt").write_bytes(b"\x80\x04 tampered bytes")
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("my thesis notes\n")
    (root / "proj").mkdir()
    frame.to_parquet(root / "proj" / "pred.parquet")
    _saved_models(root, cfg)
    return root


def _saved_models(root: Path, cfg: dict) -> None:
    """A real saved network (root/model) and a copy whose model.pt was tampered with (root/tampered)."""
    import shutil

    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import parse_config

    run = root / "run"
    config = parse_config({**cfg, "models": [{"name": "mlp_columns"}], "save_models": True,
                           "trainer": {"max_epochs": 1, "batch_size": 32}})
    BenchmarkRunner(config, run).run()
    (folder,) = (run / "models").iterdir()
    shutil.copytree(folder, root / "model")
    shutil.copytree(folder, root / "tampered")
    weights = root / "tampered" / "model.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\x00" * 64
    weights.write_bytes(bytes(data[: len(data) * 3 // 4]))
    shutil.rmtree(run)


S = "spectra.h5"
CASES: list[tuple[str, list[str], int]] = [
    # quickstart
    ("qs-n-small", ["quickstart", "--n", "5", "--out", "o"], FAIL),
    ("qs-n-negative", ["quickstart", "--n", "-3", "--out", "o"], FAIL),
    ("qs-epochs-zero", ["quickstart", "--epochs", "0", "--out", "o"], FAIL),
    ("qs-device", ["quickstart", "--device", "toaster", "--n", "100", "--epochs", "1", "--out", "o"], FAIL),
    ("qs-out-file", ["quickstart", "--out", "notes.txt", "--n", "100", "--epochs", "1"], FAIL),
    ("qs-out-foreign", ["quickstart", "--out", "mine", "--overwrite"], FAIL),
    ("qs-out-dot", ["quickstart", "--out", ".", "--n", "100", "--epochs", "1"], FAIL),
    ("qs-n-text", ["quickstart", "--n", "abc"], USAGE),
    # simulate
    ("sim-n-zero", ["simulate", "--out", "s.h5", "--n", "0"], FAIL),
    ("sim-n-negative", ["simulate", "--out", "s.h5", "--n", "-5"], FAIL),
    ("sim-snr", ["simulate", "--out", "s.h5", "--snr", "-1"], FAIL),
    ("sim-mix-two", ["simulate", "--out", "s.h5", "--class-mix", "1,2"], FAIL),
    ("sim-mix-text", ["simulate", "--out", "s.h5", "--class-mix", "a,b,c"], FAIL),
    ("sim-instrument", ["simulate", "--out", "s.h5", "--instruments", "hubble"], FAIL),
    ("sim-image-odd", ["simulate", "--out", "s.h5", "--image-size", "7"], FAIL),
    ("sim-neighbours", ["simulate", "--out", "s.h5", "--neighbour-fraction", "2"], FAIL),
    ("sim-seed", ["simulate", "--out", "s.h5", "--seed", "-1"], FAIL),
    ("sim-out-folder", ["simulate", "--out", "mine", "--n", "10"], FAIL),
    ("sim-out-foreign", ["simulate", "--out", "notes.txt", "--n", "10", "--overwrite"], FAIL),
    ("sim-out-input", ["simulate", "--out", S, "--n", "10"], FAIL),
    ("sim-out-under-file", ["simulate", "--out", "notes.txt/s.h5", "--n", "10"], FAIL),
    ("sim-unknown-option", ["simulate", "--out", "s.h5", "--bogus"], USAGE),
    ("sim-image-huge", ["simulate", "--out", "s.h5", "--n", "20", "--image-size", "100000"], FAIL),
    # models
    ("models-format", ["models", "--format", "xml"], FAIL),
    ("models-length", ["models", "--input-length", "-1"], FAIL),
    ("models-mode", ["models", "--mode", "huge"], FAIL),
    ("models-classes-text", ["models", "--classes", "abc"], USAGE),
    # build
    ("build-text", ["build", "astrospectra-mnist", "--spectra", "notes.txt", "--out", "o"], FAIL),
    ("build-missing", ["build", "astrospectra-mnist", "--spectra", "no-such-dir", "--out", "o"], FAIL),
    ("build-garbage-h5", ["build", "astrospectra-mnist", "--spectra", "garbage.h5", "--out", "o"], FAIL),
    ("build-truncated-h5", ["build", "astrospectra-mnist", "--spectra", "truncated.h5", "--out", "o"], FAIL),
    ("build-empty-dir", ["build", "astrospectra-mnist", "--spectra", "emptydir", "--out", "o"], FAIL),
    ("build-garbage-fits", ["build", "astrospectra-mnist", "--spectra", "garbage.fits", "--out", "o"], FAIL),
    ("build-empty-fits", ["build", "astrospectra-mnist", "--spectra", "empty.fits", "--out", "o"], FAIL),
    ("build-fits-folder", ["build", "astrospectra-mnist", "--spectra", "fits", "--out", "o"], FAIL),
    ("build-png", ["build", "astrospectra-mnist", "--spectra", "garbage.png", "--out", "o"], FAIL),
    ("build-version", ["build", "astrospectra-mnist", "--spectra", S, "--out", "o", "--version", "v9"], FAIL),
    ("build-fraction", ["build", "astrospectra-mnist", "--spectra", S, "--out", "o", "--test-fraction", "1.5"], FAIL),
    ("build-resample", ["build", "astrospectra-mnist", "--spectra", S, "--out", "o", "--resample", "cubic"], FAIL),
    ("build-reader", ["build", "astrospectra-mnist", "--spectra", "fits", "--out", "o", "--reader", "hubble"], FAIL),
    ("build-grid", ["build", "astrospectra-mnist", "--spectra", S, "--out", "o", "--grid-size", "-5"], FAIL),
    ("build-spectra-name", ["build", "astrospectra-mnist", "--spectra", S, "--out", "o", "--spectra-name", "x"], FAIL),
    ("build-target", ["build", "astrospectra-mnist", "--spectra", S, "--out", "o", "--target", "colour"], FAIL),
    ("build-out-holds-input", ["build", "astrospectra-mnist", "--spectra", "fits", "--out", ".", "--overwrite"], FAIL),
    ("build-out-is-input", ["build", "astrospectra-mnist", "--spectra", "fits", "--out", "fits", "--overwrite"], FAIL),
    ("build-out-foreign", ["build", "astrospectra-mnist", "--spectra", S, "--out", "mine"], FAIL),
    ("build-no-spectra", ["build", "astrospectra-mnist", "--out", "o"], USAGE),
    ("build-seed", ["build", "astrospectra-mnist", "--spectra", S, "--out", "o", "--seed", "-1"], FAIL),
    ("build-fraction-tiny", ["build", "astrospectra-mnist", "--spectra", S, "--out", "o", "--test-fraction", "0.01"],
     FAIL),
    ("build-spectra-empty", ["build", "astrospectra-mnist", "--spectra", "", "--out", "o"], FAIL),
    ("build-bin-width", ["build", "astrospectra-mnist", "--spectra", S, "--out", "o", "--bin-width", "100000"], FAIL),
    # benchmark
    ("bench-missing", ["benchmark", "no-such.yaml", "--out", "o"], FAIL),
    ("bench-syntax", ["benchmark", "bad.yaml", "--out", "o"], FAIL),
    ("bench-list", ["benchmark", "list.yaml", "--out", "o"], FAIL),
    ("bench-empty", ["benchmark", "empty.yaml", "--out", "o"], FAIL),
    ("bench-unknown-key", ["benchmark", "unknown_key.yaml", "--out", "o"], FAIL),
    ("bench-dir", ["benchmark", "emptydir", "--out", "o"], FAIL),
    ("bench-text", ["benchmark", "notes.txt", "--out", "o"], FAIL),
    ("bench-set-syntax", ["benchmark", "tiny.yaml", "--out", "o", "--set", "nonsense"], FAIL),
    ("bench-set-unknown", ["benchmark", "tiny.yaml", "--out", "o", "--set", "colour=blue"], FAIL),
    ("bench-model", ["benchmark", "bad_model.yaml", "--out", "o"], FAIL),
    ("bench-garbage-data", ["benchmark", "garbage_data.yaml", "--out", "o"], FAIL),
    ("bench-out-file", ["benchmark", "tiny.yaml", "--out", "notes.txt"], FAIL),
    ("bench-out-foreign", ["benchmark", "tiny.yaml", "--out", "mine", "--overwrite"], FAIL),
    ("bench-out-holds-config", ["benchmark", "tiny.yaml", "--out", ".", "--overwrite"], FAIL),
    ("bench-no-config", ["benchmark"], USAGE),
    # predict
    ("predict-missing-model", ["predict", "no-such-model", S, "--out", "p.parquet"], FAIL),
    ("predict-text-model", ["predict", "model_as_text", S, "--out", "p.parquet"], FAIL),
    ("predict-bad-json-model", ["predict", "fake_model", S, "--out", "p.parquet"], FAIL),
    ("predict-tampered-model", ["predict", "tampered", "t.h5", "--out", "p.parquet"], FAIL),
    ("predict-text-catalogue", ["predict", "model", "notes.txt", "--out", "p.parquet"], FAIL),
    ("predict-garbage-catalogue", ["predict", "model", "garbage.h5", "--out", "p.parquet"], FAIL),
    ("predict-wrong-columns", ["predict", "model", "ab.csv", "--out", "p.parquet"], FAIL),
    ("predict-out-folder", ["predict", "model", "t.h5", "--out", "mine"], FAIL),
    ("predict-out-foreign", ["predict", "model", "t.h5", "--out", "notes.txt", "--overwrite"], FAIL),
    ("predict-out-is-input", ["predict", "model", "t.h5", "--out", "t.h5", "--overwrite"], FAIL),
    ("predict-chunk", ["predict", "model", "t.h5", "--out", "p.parquet", "--chunk-size", "0"], FAIL),
    ("predict-reader", ["predict", "model", "t.h5", "--out", "p.parquet", "--reader", "hubble"], FAIL),
    ("predict-no-catalogue", ["predict", "fake_model"], USAGE),
    # associations
    ("assoc-text", ["associations", "notes.txt", "--out", "o"], FAIL),
    ("assoc-text-csv", ["associations", "notes.csv", "--out", "o"], FAIL),
    ("assoc-wrong-columns", ["associations", "ab.csv", "--out", "o"], FAIL),
    ("assoc-empty-csv", ["associations", "empty.csv", "--out", "o"], FAIL),
    ("assoc-binary-csv", ["associations", "bin.csv", "--out", "o"], FAIL),
    ("assoc-garbage-fits", ["associations", "garbage.fits", "--out", "o"], FAIL),
    ("assoc-empty-fits", ["associations", "empty.fits", "--out", "o"], FAIL),
    ("assoc-garbage-parquet", ["associations", "garbage.parquet", "--out", "o"], FAIL),
    ("assoc-garbage-h5", ["associations", "garbage.h5", "--out", "o"], FAIL),
    ("assoc-truncated-h5", ["associations", "truncated.h5", "--out", "o"], FAIL),
    ("assoc-png", ["associations", "garbage.png", "--out", "o"], FAIL),
    ("assoc-dir", ["associations", "dir.csv", "--out", "o"], FAIL),
    ("assoc-missing", ["associations", "no-such.parquet", "--out", "o"], FAIL),
    ("assoc-inf", ["associations", "inf.csv", "--out", "o"], FAIL),
    ("assoc-mode", ["associations", "pred.parquet", "--out", "o", "--mode", "3d"], FAIL),
    ("assoc-eps", ["associations", "pred.parquet", "--out", "o", "--eps", "-1"], FAIL),
    ("assoc-min-samples", ["associations", "pred.parquet", "--out", "o", "--min-samples", "0"], FAIL),
    ("assoc-threshold", ["associations", "pred.parquet", "--out", "o", "--threshold", "2"], FAIL),
    ("assoc-query-column", ["associations", "pred.parquet", "--out", "o", "--query", "colour > 1"], FAIL),
    ("assoc-query-syntax", ["associations", "pred.parquet", "--out", "o", "--query", "((("], FAIL),
    ("assoc-query-empty", ["associations", "pred.parquet", "--out", "o", "--query", "b > 90"], FAIL),
    ("assoc-scan", ["associations", "pred.parquet", "--out", "o", "--scan-eps", "a,b"], FAIL),
    ("assoc-unit", ["associations", "pred.parquet", "--out", "o", "--distance-column", "parallax",
                    "--distance-unit", "furlong"], FAIL),
    ("assoc-prob-column", ["associations", "pred.parquet", "--out", "o", "--only-predicted",
                           "--probability-column", "p_ob"], FAIL),
    ("assoc-out-file", ["associations", "pred.parquet", "--out", "notes.txt"], FAIL),
    ("assoc-out-holds-input", ["associations", "pred.parquet", "--out", ".", "--overwrite"], FAIL),
    ("assoc-out-holds-input-sub", ["associations", "proj/pred.parquet", "--out", "proj", "--overwrite"], FAIL),
    ("assoc-out-foreign", ["associations", "pred.parquet", "--out", "mine", "--overwrite"], FAIL),
    ("assoc-eps-text", ["associations", "pred.parquet", "--out", "o", "--eps", "wide"], USAGE),
    ("assoc-eps-inf", ["associations", "pred.parquet", "--out", "o", "--eps", "inf"], FAIL),
    ("assoc-scan-inf", ["associations", "pred.parquet", "--out", "o", "--scan-eps", "0.5,inf"], FAIL),
    ("assoc-scan-samples-alone", ["associations", "pred.parquet", "--out", "o", "--scan-min-samples", "3"], FAIL),
    ("assoc-scan-samples-zero", ["associations", "pred.parquet", "--out", "o", "--scan-eps", "0.5",
                                 "--scan-min-samples", "0"], FAIL),
    ("assoc-quality-nan", ["associations", "pred.parquet", "--out", "o", "--min-parallax-over-error", "nan"], FAIL),
    ("assoc-all-cut", ["associations", "pred.parquet", "--out", "o", "--min-parallax-over-error", "1e9"], FAIL),
    ("assoc-not-a-probability", ["associations", "pred.parquet", "--out", "o", "--probability-column",
                                 "source_id"], FAIL),
    ("assoc-truth-missing", ["associations", "pred.parquet", "--out", "o", "--truth-column", "true_group"], FAIL),
    ("unknown-verb", ["transmogrify"], USAGE),
]


def test_there_are_at_least_40_cases_for_every_verb():
    assert len(CASES) >= 40
    verbs = {args[0] for _, args, _ in CASES}
    assert {"quickstart", "simulate", "models", "build", "benchmark", "predict", "associations"} <= verbs


@pytest.mark.parametrize(("args", "status"), [pytest.param(a, s, id=i) for i, a, s in CASES])
def test_bad_input_is_one_clear_line_and_touches_nothing(sandbox, monkeypatch, capsys, args, status):
    before = snapshot(sandbox)
    code, out, err = cli(monkeypatch, capsys, *args, cwd=sandbox)
    output = out + err
    assert "Traceback" not in output, output
    assert code == status, output
    if status == FAIL:
        lines = [line for line in output.strip().splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error: "), output
    else:
        assert "Usage:" in output, output
    assert snapshot(sandbox) == before  # the user's files unchanged, nothing half-written left
