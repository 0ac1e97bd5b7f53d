"""Batches streamed from a lazy HDF5 dataset (issue 11, "one trainer, smaller"): every view kind on a
block of rows equals those rows of the view on all, chunked standardisation statistics equal the
in-memory ones, streamed training equals in-memory training without shuffling, the block permutation
is seeded and reads whole blocks in increasing order, and a stream over a split reads only its rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from astromodal import simulate_survey
from astromodal.data.arrays import RowView
from astromodal.data.dataset import Dataset, Images
from astromodal.data.views import (
    VIEWS,
    AperturePhotometryView,
    ColumnsView,
    ContextView,
    CutoutView,
    LineView,
    RGBView,
    SpectrumImageView,
    SpectrumView,
)
from astromodal.errors import ConfigError
from astromodal.training.batches import ArrayStream, InputStream, iter_batches, stream_statistics
from astromodal.training.estimator import input_statistics
from astromodal.training.trainer import Trainer, TrainerConfig


@pytest.fixture(scope="module")
def lazy(tmp_path_factory) -> Dataset:
    """A simulated survey (spectra, 5-band 16 px cutouts, columns, AstroSpectra-MNIST images) written to
    HDF5 and loaded lazily (the arrays stay on disk)."""
    ds = simulate_survey(n=36, seed=3, image_size=16, instruments=("lamost", "gaia_xp"))
    mnist = SpectrumImageView(spectra="lamost").build(ds)
    ds = Dataset(ds.ids, ds.ra, ds.dec, ds.spectra, {**ds.images, "mnist": Images(mnist, ("grey",))}, ds.columns,
                 ds.targets, {})
    path = ds.save(tmp_path_factory.mktemp("stream") / "survey.h5")
    out = Dataset.load(path)
    assert out.images["sdss"].pixels.is_lazy and out.spectra["lamost"].flux.is_lazy
    return out


VIEW_CASES = [
    LineView(spectra="lamost"),
    LineView(images="mnist"),
    SpectrumImageView(spectra="lamost"),
    *[SpectrumView(spectra="gaia_xp", normalise=n) for n in ("none", "l2", "minmax", "median", "standard")],
    ContextView(spectra="lamost"),
    ColumnsView(columns=["parallax", "pmra", "pmdec"]),
    ColumnsView(columns=["*_err"], normalise="l2"),
    CutoutView(images="sdss"),
    CutoutView(images="sdss", bands=["g", "r", "i"], size=8),
    RGBView(images="sdss", bands="gri"),
    RGBView(images="sdss", bands="uz", roi=True, size=8),
    AperturePhotometryView(images="sdss", radii=[1.0, 2.0]),
    AperturePhotometryView(images="sdss", bands=["g", "r", "i"], outputs=["fluxes", "colours"]),
]


def test_every_shipped_view_kind_is_covered():
    shipped = {k for k in VIEWS.names() if VIEWS.get(k).__module__ == "astromodal.data.views"}
    assert shipped == {v.kind for v in VIEW_CASES}


@pytest.mark.parametrize("view", VIEW_CASES, ids=lambda v: f"{v.kind}-{v.model_dump(exclude={'kind'})}")
def test_a_view_on_some_rows_is_those_rows_of_the_view_on_all(lazy, view):
    full = view.build(lazy)
    stream = lazy.input_stream({"x": view})
    assert len(stream) == len(lazy) and stream.shapes()["x"] == full.shape[1:]
    for rows in (np.arange(5, 17), np.array([0, 3, 4, 9, 35]), np.array([30, 2, 2, 7])):
        np.testing.assert_array_equal(stream.read(rows)["x"], full[rows])
    split = np.array([1, 4, 5, 6, 20, 33])  # a stream over a subset: positions within the subset
    sub = lazy.subset(split).input_stream({"x": view})
    np.testing.assert_array_equal(sub.read(np.arange(1, 4))["x"], full[split[1:4]])
    # one pass over blocks, in order: the whole array
    got = np.concatenate([b["x"] for _, b in iter_batches(stream, 8, block=5, buffer=2)])
    np.testing.assert_array_equal(got, full)


def test_streamed_statistics_equal_the_in_memory_ones(lazy):
    views = {"image": CutoutView(images="sdss"), "astro": ColumnsView(columns=["parallax", "pmra", "phot_g_mean_mag"])}
    full = lazy.inputs(views)
    got = stream_statistics(lazy.input_stream(views), block=7, buffer=2)
    for k in views:
        want = input_statistics(full[k])
        assert got[k].keys() == want.keys()
        np.testing.assert_allclose(got[k]["mean"], want["mean"], rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(got[k]["std"], want["std"], rtol=1e-6)
    assert got["image"]["per"] == "band" and len(got["image"]["mean"]) == 5 and len(got["astro"]["std"]) == 3


class TwoInputNet(nn.Module):
    inputs = ("gri", "astro")

    def __init__(self, heads: tuple[str, ...] = ()):
        super().__init__()
        torch.manual_seed(0)
        self.heads = heads
        self.conv = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out = nn.Linear(4 + 3, 3 + 2 * len(heads))

    def forward(self, gri, astro):
        z = self.out(torch.cat([self.conv(gri), astro], 1))
        return {"class": z[:, :3], "teff": z[:, 3:5]} if self.heads else z


VIEWS2 = {"gri": CutoutView(images="sdss", bands=["g", "r", "i"]), "astro": ColumnsView(columns=["parallax", "pmra", "pmdec"])}


def _cfg(**kw) -> TrainerConfig:
    base = {"max_epochs": 2, "batch_size": 8, "shuffle": False, "progress": False, "stream_block": 5,
            "stream_buffer": 2, "val_fraction": 0.25, "patience": None}
    return TrainerConfig(**{**base, **kw})


def _losses(history: list[dict]) -> list[float]:
    return [h[k] for h in history for k in sorted(h) if k.startswith(("train_loss", "val_loss", "val_accuracy"))]


def test_streamed_training_equals_in_memory_training_without_shuffling(lazy):
    y = lazy.class_codes("class")
    memory = Trainer(_cfg()).fit(TwoInputNet(), lazy.inputs(VIEWS2), y)
    stream = Trainer(_cfg(data="stream")).fit(TwoInputNet(), lazy.input_stream(VIEWS2), y)
    assert stream.n_train == memory.n_train == 27 and stream.n_val == memory.n_val == 9
    assert _losses(stream.history) == pytest.approx(_losses(memory.history), rel=1e-6)
    # data: memory given a stream reads it whole: the same numbers
    read_whole = Trainer(_cfg()).fit(TwoInputNet(), lazy.input_stream(VIEWS2), y)
    assert _losses(read_whole.history) == pytest.approx(_losses(memory.history), rel=1e-6)
    # two heads (teff NaN for non-stars, masked), explicit validation streams, predictions
    rows_tr, rows_va = np.arange(0, 28), np.arange(28, 36)
    ys = {"class": lazy.class_codes("class"), "teff": lazy.target("teff").values.read()}
    yt, yv = ({k: v[r] for k, v in ys.items()} for r in (rows_tr, rows_va))
    mem2 = Trainer(_cfg()).fit(TwoInputNet(("teff",)), lazy.subset(rows_tr).inputs(VIEWS2), yt,
                               lazy.subset(rows_va).inputs(VIEWS2), yv)
    net = TwoInputNet(("teff",))
    str2 = Trainer(_cfg(data="stream")).fit(net, lazy.input_stream(VIEWS2, rows_tr), yt,
                                            lazy.input_stream(VIEWS2, rows_va), yv)
    assert "val_loss_teff" in str2.history[0]
    assert _losses(str2.history) == pytest.approx(_losses(mem2.history), rel=1e-6)
    streamed = Trainer(_cfg(data="stream")).predict(net, lazy.input_stream(VIEWS2))
    in_memory = Trainer(_cfg()).predict(net, lazy.inputs(VIEWS2))
    assert all(torch.allclose(streamed[k], in_memory[k], atol=1e-6) for k in in_memory)


class Recording(ArrayStream):
    """An array stream that records the positions of every read."""

    def __init__(self, arrays, log):
        super().__init__(arrays)
        self.log = log

    def _read(self, positions):
        self.log.append(positions.copy())
        return super()._read(positions)


def _epoch(seed: int, n: int = 53) -> tuple[list[np.ndarray], list[np.ndarray]]:
    log: list[np.ndarray] = []
    src = Recording({"x": np.arange(n, dtype=np.float32)[:, None]}, log)
    batches = list(iter_batches(src, 8, block=5, buffer=3, gen=torch.Generator().manual_seed(seed)))
    for pos, arrays in batches:
        np.testing.assert_array_equal(arrays["x"][:, 0], pos)  # each batch's rows are its positions' rows
    return [p for p, _ in batches], log


def test_the_block_permutation_is_seeded_and_reads_whole_blocks_in_increasing_order():
    batches, reads = _epoch(1)
    again, _ = _epoch(1)
    other, _ = _epoch(2)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=True))
    assert [len(b) for b in batches] == [8] * 6 + [5]  # ceil(53 / 8) batches, as in memory
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(53))  # every row once
    assert len(reads) == 4  # 11 blocks of 5 rows, 3 blocks a read
    for rows in reads:
        assert (np.diff(rows) > 0).all()  # increasing
        starts = np.unique(rows // 5)
        blocks = np.concatenate([np.arange(5 * s, min(5 * s + 5, 53)) for s in starts])
        np.testing.assert_array_equal(rows, blocks)  # whole blocks only
    assert not np.array_equal(np.concatenate(reads), np.arange(53))  # the blocks are permuted
    # shuffled within a buffer: the first batch mixes rows of several blocks
    assert len(np.unique(batches[0] // 5)) > 1
    # the trainer's epochs follow the seed
    x, y = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32), np.arange(40) % 2

    class ColNet(nn.Module):
        inputs = ("columns",)

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.lin = nn.Linear(3, 1)

        def forward(self, columns):
            return self.lin(columns)

    def fit(seed):
        net = ColNet()
        return _losses(Trainer(_cfg(data="stream", shuffle=True, seed=seed)).fit(net, {"columns": x}, y).history)

    assert fit(3) == fit(3) and fit(3) != fit(4)


class CountingArray:
    """An on-disk-like array (not numpy) that records which rows were read."""

    def __init__(self, values: np.ndarray):
        self.values, self.shape, self.dtype, self.read_rows = values, values.shape, values.dtype, set()

    def __getitem__(self, key):
        rows = np.arange(len(self.values))[key]
        self.read_rows.update(np.atleast_1d(rows).tolist())
        return self.values[key]


def test_a_stream_over_a_split_reads_only_its_rows():
    rng = np.random.default_rng(0)
    pixels = CountingArray(rng.normal(size=(60, 3, 8, 8)).astype(np.float32))
    y = np.arange(60) % 3
    ds = Dataset(np.arange(60), images={"im": Images(RowView(pixels), ("g", "r", "i"))},
                 targets={"class": np.asarray(y, dtype=np.float64)})
    assert ds.images["im"].pixels.is_lazy
    train, test = ds.split(0.3, seed=0)
    train_rows = set(train.ids.read().tolist())
    stream = train.input_stream({"gri": CutoutView(images="im")})

    class Net(nn.Module):
        inputs = ("gri",)

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3 * 8 * 8, 3)

        def forward(self, gri):
            return self.lin(gri.flatten(1))

    result = Trainer(_cfg(data="stream", shuffle=True, max_epochs=1)).fit(Net(), stream, y[train.ids.read()])
    assert result.n_train + result.n_val == len(train)
    assert pixels.read_rows == train_rows  # every training row was read, no test row
    assert not pixels.read_rows & set(test.ids.read().tolist())


def test_streamed_training_resumes_from_its_checkpoint(lazy, tmp_path):
    y = lazy.class_codes("class")
    cfg = {"data": "stream", "shuffle": True, "max_epochs": 4}
    full = Trainer(_cfg(**cfg)).fit(TwoInputNet(), lazy.input_stream(VIEWS2), y)
    ck = str(tmp_path / "ck")
    Trainer(_cfg(**{**cfg, "max_epochs": 2}, checkpoint_dir=ck)).fit(TwoInputNet(), lazy.input_stream(VIEWS2), y)
    resumed = Trainer(_cfg(**cfg, checkpoint_dir=ck)).fit(TwoInputNet(), lazy.input_stream(VIEWS2), y)
    assert resumed.resumed_from_epoch == 2
    assert _losses(resumed.history) == pytest.approx(_losses(full.history), rel=1e-6)
    with pytest.raises(ConfigError, match="differs in"):  # another block size: another order
        Trainer(_cfg(**cfg, checkpoint_dir=ck, stream_block=7)).fit(TwoInputNet(), lazy.input_stream(VIEWS2), y)


def test_the_data_setting_is_checked():
    with pytest.raises(ConfigError, match="'data'"):
        TrainerConfig.from_options({"data": "disk"})
    with pytest.raises(ConfigError, match="stream_block"):
        TrainerConfig.from_options({"stream_block": 0})
    assert TrainerConfig().data == "memory"
    assert isinstance(Dataset(np.arange(3), columns={"a": np.ones(3)}).input_stream(
        {"a": {"kind": "columns", "columns": ["a"]}}), InputStream)
