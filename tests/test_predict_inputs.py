"""``astromodal predict`` builds only the inputs the model reads: an image-only variant of a representation
that also has catalogue columns (``mmscnet`` with ``numeric: none``) predicts on a catalogue without them."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from astromodal.errors import AstromodalError
from astromodal.inference.catalogue import load_predictor, predict_catalogue


def _data(path, n=200, with_extra=True, seed=0):
    from astromodal.data.dataset import Column, Dataset, Target

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 3)) + 2.0 * np.eye(2, 3)[y]
    cols = {f"c{k}": Column(X[:, k]) for k in range(3)}
    if with_extra:
        cols["parallax"] = Column(rng.normal(size=n))
    Dataset(ids=np.arange(n), ra=rng.uniform(0, 360, n), dec=rng.uniform(-60, 60, n), columns=cols,
            targets={"class": Target(y, "class", ("star", "galaxy"))}).save(path)


def _train(tmp_path, reads):
    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import parse_config

    path = tmp_path / "train.h5"
    if not path.exists():
        _data(path)
    cfg = parse_config({"name": "inputs", "protocol": {"kind": "holdout", "seeds": [0]}, "save_models": True,
                        "datasets": {"d": {"source": "hdf5", "options": {"path": str(path)}, "target": "class"}},
                        "representations": {"r": {"inputs": {
                            "cols": {"kind": "columns", "columns": ["c0", "c1", "c2"]},
                            "astrometry": {"kind": "columns", "columns": ["parallax"]}}}},
                        "models": [{"name": "multi_input_net", "options": {"inputs": reads, "hidden": 8}}],
                        "report": {"embeddings": []}, "trainer": {"max_epochs": 2, "batch_size": 64}})
    (cell,) = BenchmarkRunner(cfg, tmp_path / f"run_{len(reads)}").run()["cells"]
    return tmp_path / f"run_{len(reads)}" / cell["model_dir"]


def test_a_model_that_reads_part_of_its_representation_predicts_without_the_rest(tmp_path):
    model = _train(tmp_path, ["cols"])
    assert load_predictor(model).read_inputs() == ("cols",)
    cat = tmp_path / "no_parallax.h5"
    _data(cat, n=50, with_extra=False, seed=1)
    out = pq.read_table(predict_catalogue(model, cat, tmp_path / "p.parquet", log=lambda s: None)).to_pandas()
    assert len(out) == 50 and {"prob_star", "prob_galaxy", "label"} <= set(out.columns)
    # the same rows as predicting on a catalogue that has the unused column too
    full = tmp_path / "with_parallax.h5"
    _data(full, n=50, with_extra=True, seed=1)
    ref = pq.read_table(predict_catalogue(model, full, tmp_path / "q.parquet", log=lambda s: None)).to_pandas()
    np.testing.assert_array_equal(out["prob_star"], ref["prob_star"])


def test_a_model_that_reads_every_input_still_needs_them_all(tmp_path):
    model = _train(tmp_path, ["cols", "astrometry"])
    assert load_predictor(model).read_inputs() is None
    cat = tmp_path / "no_parallax.h5"
    _data(cat, n=20, with_extra=False)
    with pytest.raises(AstromodalError, match="parallax"):
        predict_catalogue(model, cat, tmp_path / "p.parquet", log=lambda s: None)
