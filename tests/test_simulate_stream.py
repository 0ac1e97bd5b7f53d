"""The block-wise simulator and its writers (issue 15): values independent of the chunk size, ids, round trip,
the catalogue-only Parquet file, flat memory and the CLI options."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc

import numpy as np
import pytest

from astromodal.data.dataset import Column, Dataset, Target
from astromodal.data.simulate import stream
from astromodal.data.simulate.stream import (
    block_class_counts,
    block_seed,
    concatenate_blocks,
    resolve_options,
    simulate_block,
    spool_block,
    spool_directory,
    unspool_block,
    write_survey,
)
from astromodal.data.simulate.survey import class_counts, simulate_survey
from astromodal.errors import ConfigError

B = 100  # a small block size keeps the tests fast (the CLI's is stream.BLOCK_SIZE)
FULL = {"instruments": "sdss", "image_size": 16}


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_block_seeds_and_class_counts_follow_the_rule():
    assert block_seed(7, 0) == 7 and block_seed(7, 1) == block_seed(7, 1) > 2**64
    assert len({block_seed(s, b) for s in (0, 1) for b in range(50)}) == 100
    for n, mix in ((1, (0.6, 0.25, 0.15)), (999, (0.6, 0.25, 0.15)), (123_457, (0.6, 0.25, 0.15)),
                   (10**6, (1 / 3, 1 / 3, 1 / 3)), (54_321, (0.9995, 0.0004, 0.0001))):
        counts = block_class_counts(n, mix)
        assert counts.shape == (-(-n // 1000), 3) and (counts >= 0).all()
        assert counts.sum(axis=1).tolist() == [min(1000, n - s) for s in range(0, n, 1000)]
        assert counts.sum(axis=0).tolist() == class_counts(n, np.array(mix) / sum(mix)).tolist()
    # a block's counts depend on its position only: a survey is the prefix of a longer one but for its last block
    assert np.array_equal(block_class_counts(5000, (0.5, 0.3, 0.2)), block_class_counts(5500, (0.5, 0.3, 0.2))[:5])


@pytest.mark.parametrize("codec", ["none", "lzf"])
def test_hdf5_bytes_do_not_depend_on_the_chunk_size(tmp_path, codec):
    """Uncompressed, the files are byte-identical; with lzf every value and attribute is (liblzf leaves its
    hash table uninitialised, so the compressed bytes of a chunk may differ from run to run, never its values)."""
    import h5py

    paths = []
    for chunk in (B, 3 * B):
        p = tmp_path / f"s{chunk}.h5"
        write_survey(p, 250, seed=5, chunk_size=chunk, block_size=B, codec=codec, **FULL)
        paths.append(p)
    if codec == "none":
        assert sha(paths[0]) == sha(paths[1])
    with h5py.File(paths[0]) as a, h5py.File(paths[1]) as b:
        names = _paths(a)
        assert names == _paths(b) and "images/sdss/pixels" in names and "spectra/sdss/flux" in names
        for name in names:
            assert dict(a[name].attrs) == dict(b[name].attrs), name
            if isinstance(a[name], h5py.Dataset):
                assert a[name][...].tobytes() == b[name][...].tobytes(), name
        assert a["spectra/sdss/flux"].compression == (None if codec == "none" else "lzf")


def test_parquet_bytes_do_not_depend_on_the_chunk_size(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_survey(a, 250, seed=2, chunk_size=B, block_size=B, columns_only=True)
    write_survey(b, 250, seed=2, chunk_size=2 * B, block_size=B, columns_only=True)
    assert sha(a) == sha(b)


def test_one_block_is_simulate_survey(tmp_path):
    out = tmp_path / "one.h5"
    write_survey(out, 60, seed=8, class_mix=(0.5, 0.3, 0.2), chunk_size=B, block_size=B, **FULL)
    ref = concatenate_blocks([simulate_survey(
        n=60, seed=8, class_mix=(0.5, 0.3, 0.2), instruments=("sdss",), image_size=16)])
    with Dataset.load(out).meta["_h5file"] as f:
        for key, values in ref.items():
            assert f[key][...].tobytes() == values.tobytes(), key


def test_round_trip_ids_and_associations(tmp_path):
    out = tmp_path / "s.h5"
    meta = write_survey(out, 250, seed=3, class_mix=(0.8, 0.1, 0.1), chunk_size=2 * B, block_size=B, **FULL)
    ds = Dataset.load(out)
    opts = resolve_options(False, **FULL)
    blocks = [simulate_block(b, 250, 3, (0.8, 0.1, 0.1), B, **opts) for b in range(3)]
    ref = concatenate_blocks(blocks)
    f = ds.meta["_h5file"]
    assert set(ref) <= {k for k in _paths(f)}
    for key, values in ref.items():
        if key != "columns/association_id":  # renumbered across blocks (below)
            assert f[key].dtype == values.dtype and f[key][...].tobytes() == values.tobytes(), key
    ids = ds.ids.read()
    assert ids.dtype == np.int64 and ids.tolist() == list(range(250))
    assert ds.summary()["targets"]["class"]["counts"] == {"star": 200, "galaxy": 25, "qso": 25}
    assert ds.meta["block_size"] == B and ds.meta["n_blocks"] == 3 and ds.meta["seed"] == 3 and ds.meta["n"] == 250
    # association ids: the block's own ids shifted by the groups of the earlier blocks, unique over the survey
    aid = ds.columns["association_id"].values.read()
    shift = 0
    for b, blk in enumerate(blocks):
        local = blk.columns["association_id"].values.read()
        assert np.array_equal(aid[b * B:(b + 1) * B], np.where(local >= 0, local + shift, -1))
        shift += len(blk.meta["associations"])
    groups = meta["associations"]
    assert [g["id"] for g in groups] == list(range(shift)) and ds.meta["associations"] == groups
    assert set(aid[aid >= 0].tolist()) <= {g["id"] for g in groups}


def _paths(f) -> list[str]:
    found: list[str] = []
    f.visit(lambda name: found.append(name))
    return found


def test_columns_only_parquet_schema_and_values(tmp_path):
    import pyarrow.parquet as pq

    from astromodal.atomic import is_tool_written

    pq_path, h5_path = tmp_path / "cat.parquet", tmp_path / "cat.h5"
    write_survey(pq_path, 250, seed=4, chunk_size=B, block_size=B, columns_only=True, instruments="lamost")
    write_survey(h5_path, 250, seed=4, chunk_size=B, block_size=B, columns_only=True, instruments="lamost")
    table = pq.read_table(pq_path)
    schema = table.schema
    assert schema.field("id").type == "int64" and table.column("id").to_pylist() == list(range(250))
    assert schema.names[:3] == ["id", "ra", "dec"] and table.num_rows == 250
    ds = Dataset.load(h5_path)
    assert not ds.spectra and not ds.images and "n_neighbours" not in ds.columns
    assert set(schema.names) == {"id", "ra", "dec", *ds.columns, *ds.targets}
    for name, c in ds.columns.items():
        np.testing.assert_array_equal(table.column(name).to_numpy(), c.values.read())
        assert schema.field(name).metadata[b"unit"].decode() == c.unit
    cls = schema.field("class").metadata
    assert cls[b"kind"] == b"class" and json.loads(cls[b"class_names"]) == ["star", "galaxy", "qso"]
    assert schema.field("teff").metadata[b"unit"] == b"K"
    info = json.loads(schema.metadata[b"astromodal"])
    assert info["verb"] == "simulate" and info["meta"]["stellar_selection"] == "lamost"  # auto: the instruments'
    assoc = json.loads(pq.ParquetFile(pq_path).metadata.metadata[b"astromodal.associations"])
    assert assoc == ds.meta["associations"]
    assert is_tool_written(pq_path) and is_tool_written(h5_path)
    # the catalogue of a columns-only survey is that of the same survey with spectra and no images
    spec = tmp_path / "spec.h5"
    write_survey(spec, 250, seed=4, chunk_size=B, block_size=B, instruments="lamost", with_images=False)
    full = Dataset.load(spec)
    assert list(full.spectra) == ["lamost"]
    for name, c in ds.columns.items():
        assert c.values.read().tobytes() == full.columns[name].values.read().tobytes(), name
    for name, t in ds.targets.items():
        assert t.values.read().tobytes() == full.targets[name].values.read().tobytes(), name


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("block failed")

    calls = iter([False, True])
    real = stream.simulate_survey
    monkeypatch.setattr(stream, "simulate_survey", lambda *a, **k: boom() if next(calls) else real(*a, **k))
    with pytest.raises(RuntimeError, match="block failed"):
        write_survey(tmp_path / "x.parquet", 250, chunk_size=B, block_size=B, columns_only=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="Parquet file holds the catalogue only"):
        write_survey(tmp_path / "x.parquet", 10)
    with pytest.raises(ConfigError, match="multiple of the block size"):
        write_survey(tmp_path / "x.h5", 10, chunk_size=150, block_size=B)


def _fake_survey(n, seed, class_mix, **options):
    """A stand-in for simulate_survey with its catalogue's shape (fast: the memory test is about the writer)."""
    rng = np.random.default_rng(seed)
    counts = class_counts(n, np.asarray(class_mix))
    cols = {f"c{k}": Column(rng.normal(size=n), "mag") for k in range(30)}
    cols["association_id"] = Column(np.full(n, -1, dtype=np.int64), "")
    labels = np.repeat(np.arange(3), counts)
    return Dataset(np.arange(n, dtype=np.int64), rng.uniform(0, 360, n), rng.uniform(-90, 90, n), columns=cols,
                   targets={"class": Target(labels, "class", ("star", "galaxy", "qso")),
                            "teff": Target(rng.normal(size=n), "regression", unit="K")},
                   meta={"source": "fake", "associations": [], "instruments": []})


@pytest.mark.parametrize("suffix", [".parquet", ".h5"])
def test_memory_is_flat_in_n(tmp_path, monkeypatch, suffix):
    """tracemalloc peak of the whole write (simulation stand-in + writer) at 20k and 120k objects: the
    larger survey may not need more than 2 MiB more (the whole 120k catalogue would be 32 MB). The writers
    hold one Parquet row group (ROW_GROUP_BLOCKS blocks, 17 MB by default) or one HDF5 chunk per array (1 MiB
    by default: 131,072 rows of a float64 column): smaller here, so that 20k objects already fill them."""
    from astromodal.data import storage

    monkeypatch.setattr(stream, "simulate_survey", _fake_survey)
    monkeypatch.setattr(stream, "ROW_GROUP_BLOCKS", 4)
    monkeypatch.setattr(storage, "_TARGET_CHUNK_BYTES", 1 << 16)
    peaks = []
    for n in (20_000, 120_000):
        tracemalloc.start()
        write_survey(tmp_path / f"m{n}{suffix}", n, chunk_size=2000, columns_only=True)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] - peaks[0] < 2 * 2**20, peaks


def test_cli_chunk_size_columns_only_and_output_rules(tmp_path):
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from astromodal.cli import app

    runner = CliRunner()
    out = tmp_path / "cat.parquet"
    res = runner.invoke(app, ["simulate", "--n", "40", "--seed", "1", "--columns-only", "--out", str(out),
                              "--chunk-size", "1000"])
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).num_rows == 40 and "1 blocks of 1000" in res.output
    for bad in ("0", "-1000", "1500", "abc"):
        res = runner.invoke(app, ["simulate", "--n", "10", "--out", str(tmp_path / "b.h5"), "--chunk-size", bad])
        assert res.exit_code == 2, (bad, res.output)
    assert not (tmp_path / "b.h5").exists()
    res = runner.invoke(app, ["simulate", "--n", "10", "--out", str(tmp_path / "full.parquet")])
    assert res.exit_code == 1 and "--columns-only" in str(res.exception)
    res = runner.invoke(app, ["simulate", "--n", "10", "--out", str(tmp_path / "x.h5"), "--codec", "zstd"])
    assert res.exit_code == 1 and "--codec" in str(res.exception)
    mine = tmp_path / "mine.parquet"
    mine.write_bytes(b"PAR1 not astromodal's")
    for extra in ([], ["--overwrite"]):
        res = runner.invoke(app, ["simulate", "--n", "10", "--columns-only", "--out", str(mine), *extra])
        assert res.exit_code == 1 and "not written by astromodal" in str(res.exception)
        assert mine.read_bytes() == b"PAR1 not astromodal's"
    res = runner.invoke(app, ["simulate", "--n", "10", "--columns-only", "--out", str(out)])
    assert res.exit_code == 1 and "--overwrite" in str(res.exception)
    res = runner.invoke(app, ["simulate", "--n", "12", "--columns-only", "--out", str(out), "--overwrite"])
    assert res.exit_code == 0 and pq.read_table(out).num_rows == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.parquet", "mine.parquet"]


def test_worker_processes_write_the_same_file(tmp_path):
    """Blocks simulated on two spawned processes (each with its own import and warm-up: the slowest test
    here) are written in block order with the same association ids: the same Parquet bytes."""
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    write_survey(one, 250, seed=9, chunk_size=2 * B, block_size=B, columns_only=True)
    write_survey(two, 250, seed=9, chunk_size=2 * B, block_size=B, columns_only=True, workers=2)
    assert sha(one) == sha(two)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_worker_allocator_setting_applies_and_changes_no_number(tmp_path):
    """The simulator workers' allocator setting (large arrays kept on the heap for reuse) is accepted by glibc,
    and a block simulated after it is the same, bit for bit (the worker file test above runs with it too)."""
    code = ("import hashlib, sys\nfrom astromodal.data.simulate.stream import keep_freed_memory\n"
            "from astromodal.data.simulate.survey import simulate_survey\n"
            "ok = keep_freed_memory() if sys.argv[1] == '1' else None\n"
            "ds = simulate_survey(n=60, seed=4, with_images=False, instruments=())\n"
            "print(ok, hashlib.sha256(ds.columns['r'].values.read().tobytes()).hexdigest())\n")
    runs = [subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, check=True).stdout.split()
            for flag in ("0", "1")]
    assert runs[1][0] == "True" and runs[0][1] == runs[1][1]


def test_spooled_blocks_come_back_equal_and_writable(tmp_path):
    """A worker's block handed to the writer through a spool file (spectra, images, columns, targets, meta)
    comes back with equal arrays of the same dtypes, writable without touching the others, and leaves no file."""
    ds = simulate_block(1, 2 * B, seed=5, block_size=B, **resolve_options(**FULL))
    item = spool_block(ds, tmp_path / "block-1.bin")
    assert not isinstance(item, Dataset) and len(item[1]) < 100_000  # only the pickle's head goes through the pipe
    back = unspool_block(item)
    assert list(tmp_path.iterdir()) == []
    want, got = concatenate_blocks([ds]), concatenate_blocks([back])
    assert sorted(want) == sorted(got) and len(want) > 20
    for key in want:
        assert got[key].dtype == want[key].dtype and np.array_equal(got[key], want[key], equal_nan=True), key
    assert back.meta == ds.meta
    flux = next(iter(back.spectra.values())).flux.read()
    before = flux.copy()
    flux[0] += 1.0  # copy on write: the map is private
    assert not np.array_equal(flux, before)


def test_spool_falls_back_in_band_when_the_file_cannot_be_written(tmp_path):
    ds = simulate_block(0, B, seed=5, block_size=B, **resolve_options(columns_only=True))
    item = spool_block(ds, tmp_path / "missing-folder" / "block-0.bin")
    assert item is ds and unspool_block(item) is ds


@pytest.mark.skipif(stream.fcntl is None, reason="advisory locks need fcntl (POSIX)")
def test_spool_folders_of_dead_writers_are_removed(tmp_path, monkeypatch):
    """A writer killed mid-survey leaves its spool folder; the next one removes it (the kernel released the
    writer's lock on the folder's lock file) and leaves those of live writers alone, whatever process id their
    names hold (another container's writer may share /dev/shm). Folders without a lock file fall back on the
    process id in the name. A folder holding anything but a lock file and block files is never removed."""
    monkeypatch.setattr(stream.os, "statvfs", lambda path: (_ for _ in ()).throw(OSError("no shm")))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads $TMPDIR again
    # a live writer in another process: holds the lock; its name's pid is one that does not run here
    foreign = tmp_path / "astromodal-blocks-999999999-live"
    foreign.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
         " fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
         str(foreign / ".writer.lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        # a killed writer: lock file left, lock released
        dead_locked = tmp_path / "astromodal-blocks-1-dead"
        dead_locked.mkdir()
        (dead_locked / ".writer.lock").touch()
        (dead_locked / "block-3.bin").write_bytes(b"x" * 64)
        # a user's folder that shares the prefix, unlocked, its pid dead: it holds other files, so it stays
        users = tmp_path / "astromodal-blocks-1-mine"
        (users / "sub").mkdir(parents=True)
        (users / ".writer.lock").touch()
        (users / "notes.txt").write_text("mine")
        # older folders without a lock file: judged by the pid in the name
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
        stale = tmp_path / f"astromodal-blocks-{dead}-x"
        stale.mkdir()
        live = tmp_path / f"astromodal-blocks-{os.getppid()}-y"
        live.mkdir()
        other = tmp_path / "astromodal-blocks-notapid"
        other.mkdir()
        new = spool_directory()
        assert new.parent == tmp_path and new.is_dir() and str(os.getpid()) in new.name
        assert not dead_locked.exists() and not stale.exists()
        assert foreign.exists() and live.exists() and other.exists()
        assert (users / "notes.txt").read_text() == "mine" and (users / "sub").is_dir()
        # this writer's own folder survives the next writer's sweep (its lock is held), then goes on release
        again = spool_directory()
        assert new.exists() and again.exists()
        stream.release_spool(new)
        stream.release_spool(again)
        assert not new.exists() and not again.exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_worker_spool_folder_is_removed_after_the_survey(tmp_path, monkeypatch):
    """The multi-worker path leaves no spool folder behind (the folder of this process is gone after the
    survey), whatever the outcome."""
    made = []
    real = stream.spool_directory

    def spy():
        made.append(real())
        return made[-1]

    monkeypatch.setattr(stream, "spool_directory", spy)
    blocks = list(stream.iter_blocks(2 * B, seed=3, block_size=B, workers=2, **resolve_options(columns_only=True)))
    assert len(blocks) == 2 and len(made) == 1 and not made[0].exists()
    with pytest.raises(ConfigError, match="unknown simulate option"):  # a block that fails in a worker
        list(stream.iter_blocks(2 * B, seed=3, block_size=B, workers=2, no_such_option=1))
    assert len(made) == 2 and not made[1].exists()
