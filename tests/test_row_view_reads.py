"""RowView reads from an on-disk (h5py) array: any row order, repeats, negative and out-of-range rows."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from astromodal.data.arrays import RowView


@pytest.fixture()
def on_disk(tmp_path):
    data = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"] = data
    f = h5py.File(tmp_path / "a.h5", "r")
    yield RowView(f["x"]), data
    f.close()


@pytest.mark.parametrize("rows", [[5], [3, 4, 5], [9, 2, 2, 7], list(range(0, 16)) + list(range(24, 40)),
                                  [39, 0, 39], [-1], [-2, -1], [0, -1]])
def test_disk_reads_match_numpy(on_disk, rows):
    view, data = on_disk
    np.testing.assert_array_equal(view.read(np.array(rows)), data[np.array(rows)])


def test_negative_item_and_out_of_range_rows(on_disk):
    view, data = on_disk
    np.testing.assert_array_equal(view[-1], data[-1])
    with pytest.raises(IndexError):
        view.read(np.array([38, 39, 40]))  # never a silently short read
    with pytest.raises(IndexError):
        view.read(np.array([-41]))


def test_rows_given_to_the_constructor_past_the_end_are_refused(on_disk):
    view, _ = on_disk
    with pytest.raises(IndexError):
        RowView(view.base, np.array([38, 39, 40])).read()
