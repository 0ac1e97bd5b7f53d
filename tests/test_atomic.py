"""Atomic outputs: whole or absent, with the user's ordinary permissions."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from astromodal.atomic import atomic_dir, atomic_path, write_json
from astromodal.data.dataset import Dataset


def test_files_and_folders_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        import importlib

        import astromodal.atomic as atomic

        importlib.reload(atomic)
        path = atomic.write_json(tmp_path / "a.json", {"x": np.float32(1.5), "n": np.int64(2)})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        with atomic.atomic_dir(tmp_path / "out") as tmp:
            (tmp / "f.txt").write_text("hi")
        assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
        ds = Dataset(ids=np.arange(3))
        assert stat.S_IMODE(ds.save(tmp_path / "d.h5").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_failures_leave_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "part").write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    write_json(tmp_path / "ok.json", [1])
    assert [p.name for p in tmp_path.iterdir()] == ["ok.json"]
