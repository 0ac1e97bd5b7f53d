"""The benchmark scripts' JSON results files: a file the script did not write is never replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from results_file import check_results_file, write_results_file  # noqa: E402


def test_a_users_file_is_refused_and_the_scripts_own_is_replaced_only_with_overwrite(tmp_path):
    user = tmp_path / "user.json"
    user.write_text("my notes\n")
    with pytest.raises(SystemExit, match="not written by bench_x"):
        check_results_file(user, "bench_x", overwrite=True)
    assert user.read_text() == "my notes\n"
    other = tmp_path / "other.json"
    write_results_file(other, "bench_y", {"rows": []})
    with pytest.raises(SystemExit, match="not written by bench_x"):  # another script's results are not ours
        check_results_file(other, "bench_x", overwrite=True)
    ours = tmp_path / "sub" / "ours.json"
    assert check_results_file(ours, "bench_x") == ours  # absent: fine
    write_results_file(ours, "bench_x", {"rows": [{"n": 1}]})
    assert json.loads(ours.read_text()) == {"written_by": "bench_x", "rows": [{"n": 1}]}
    with pytest.raises(SystemExit, match="--overwrite"):
        check_results_file(ours, "bench_x")
    assert check_results_file(ours, "bench_x", overwrite=True) == ours
    with pytest.raises(SystemExit, match="is a folder"):
        check_results_file(tmp_path, "bench_x", overwrite=True)
    assert check_results_file(None, "bench_x") is None
