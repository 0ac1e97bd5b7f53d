"""The output rule under stress: unfinished runs, symbolic links, races, interrupts, permission and
disk errors (issue 10: never lose what the user owns; nothing half-written; one clear line).

Each test runs the real entry point (``astromodal.cli.main``) or the :mod:`astromodal.atomic` mechanism
on a small sandbox and checks that the user's files are byte-identical afterwards.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from astromodal.data.dataset import Dataset
from test_outputs import MARKER, assert_one_line_error, cli, predictions, snapshot


@pytest.fixture()
def proj(tmp_path):
    proj = tmp_path / "proj"
    predictions(proj / "pred.parquet")
    return proj


def assoc(proj: Path, out: Path | str, *extra: str) -> list:
    return ["associations", proj / "pred.parquet", "--out", out, "--mode", "sky", "--eps", "1",
            "--min-samples", "5", *extra]


def unfinished_benchmark(out: Path, claim: bool = False) -> None:
    """What an interrupted ``astromodal benchmark`` leaves: its start marker, cells/ and config.json."""
    from astromodal.atomic import write_marker

    out.mkdir(parents=True)
    if claim:
        from astromodal.atomic import claim_entries

        claim_entries(out, "benchmark", ["cells", "config.json"])  # recorded before they are created
    else:
        write_marker(out, "benchmark")  # the runner's marker at the start: no entries yet
    (out / "cells").mkdir()
    (out / "cells" / "a.json").write_text("{}")
    (out / "config.json").write_text("{}")


# ------------------------------------------------------------------------------- unfinished runs
def test_overwrite_never_deletes_a_user_file_in_an_unfinished_run_folder(proj, monkeypatch, capsys):
    out = proj / "run"
    unfinished_benchmark(out)
    (out / "my-notes.txt").write_text("mine")  # the user's file, added after the crash
    before = snapshot(proj)
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, out, "--overwrite"))
    assert_one_line_error(code, err, "my-notes.txt", "did not record")
    assert snapshot(proj) == before


def test_an_unfinished_run_that_claimed_its_entries_can_be_replaced(proj, monkeypatch, capsys):
    out = proj / "run"
    unfinished_benchmark(out, claim=True)
    (out / "my-notes.txt").write_text("mine")
    before = snapshot(proj)
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, out, "--overwrite"))
    assert_one_line_error(code, err, "my-notes.txt")  # the user's file is still never deleted
    assert snapshot(proj) == before
    (out / "my-notes.txt").unlink()
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, out, "--overwrite"))
    assert code == 0, err
    assert (out / "summary.json").is_file() and not (out / "cells").exists()
    assert json.loads((out / MARKER).read_text())["verb"] == "associations"


def test_a_marker_a_user_made_does_not_make_a_folder_replaceable(proj, monkeypatch, capsys):
    out = proj / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("chapter 1")
    (out / MARKER).write_text("")  # e.g. `touch .astromodal-output.json`, or a copied, broken marker
    before = snapshot(proj)
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, out, "--overwrite"))
    assert_one_line_error(code, err, "thesis.tex")
    assert snapshot(proj) == before


# ------------------------------------------------------------------------------- symbolic links
def test_a_link_to_an_empty_folder_is_written_through(proj, monkeypatch, capsys):
    (proj / "big-disk").mkdir()
    (proj / "out").symlink_to(proj / "big-disk")
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, proj / "out"))
    assert code == 0, err
    assert (proj / "out").is_symlink() and (proj / "big-disk" / "summary.json").is_file()


def test_a_link_to_a_tool_written_folder_is_replaced_at_its_target(proj, monkeypatch, capsys):
    real = proj / "real"
    assert cli(monkeypatch, capsys, *assoc(proj, real))[0] == 0
    (proj / "out").symlink_to(real)
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, proj / "out", "--overwrite", "--eps", "2"))
    assert code == 0, err
    assert (proj / "out").is_symlink() and os.readlink(proj / "out") == str(real)
    assert json.loads((real / "summary.json").read_text())["eps"] == 2.0
    assert sorted(p.name for p in proj.iterdir()) == ["out", "pred.parquet", "real"]  # nothing left over


def test_a_link_to_a_user_folder_is_refused(proj, monkeypatch, capsys):
    (proj / "mine").mkdir()
    (proj / "mine" / "notes.txt").write_text("keep")
    (proj / "out").symlink_to(proj / "mine")
    before = snapshot(proj)
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, proj / "out", "--overwrite"))
    assert_one_line_error(code, err, "notes.txt")
    assert snapshot(proj) == before and (proj / "out").is_symlink()


def test_a_dangling_link_and_a_loop_are_one_line_before_any_work(proj, monkeypatch, capsys):
    (proj / "dangling").symlink_to(proj / "nowhere" / "x")
    (proj / "loop1").symlink_to(proj / "loop2")
    (proj / "loop2").symlink_to(proj / "loop1")
    before = sorted(os.listdir(proj))
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, proj / "dangling"))
    assert_one_line_error(code, err, "dangling", "does not exist")
    for args in (assoc(proj, proj / "loop1"), ["simulate", "--out", proj / "loop1", "--n", "10", "--no-images"]):
        code, _, err = cli(monkeypatch, capsys, *args)
        assert_one_line_error(code, err, "loop1", "loop of symbolic links")
    assert sorted(os.listdir(proj)) == before and not (proj / "nowhere").exists()


def test_simulate_writes_through_a_link_to_its_own_file(proj, monkeypatch, capsys):
    real = proj / "survey.h5"
    assert cli(monkeypatch, capsys, "simulate", "--out", real, "--n", "10", "--no-images")[0] == 0
    (proj / "link.h5").symlink_to(real)
    code, _, err = cli(monkeypatch, capsys, "simulate", "--out", proj / "link.h5", "--n", "12", "--no-images",
                       "--overwrite")
    assert code == 0, err
    assert (proj / "link.h5").is_symlink() and len(Dataset.load(real)) == 12


def test_a_dataset_file_is_recognised_by_its_content_not_its_name(proj, monkeypatch, capsys):
    out = proj / "survey.hdf"
    assert cli(monkeypatch, capsys, "simulate", "--out", out, "--n", "10", "--no-images")[0] == 0
    code, _, err = cli(monkeypatch, capsys, "simulate", "--out", out, "--n", "12", "--no-images", "--overwrite")
    assert code == 0, err
    assert len(Dataset.load(out)) == 12


# ------------------------------------------------------------------------------- races, interrupts
def _patched_renames(monkeypatch, hook):
    """Run ``hook(src, dst, n)`` around every os.rename / os.replace (n counts the calls)."""
    real_rename, real_replace = os.rename, os.replace
    calls = {"n": 0}

    def wrap(real):
        def renamed(src, dst, *a, **kw):
            calls["n"] += 1
            hook(Path(src), Path(dst), calls["n"], lambda: real(src, dst, *a, **kw))
        return renamed

    monkeypatch.setattr(os, "rename", wrap(real_rename))
    monkeypatch.setattr(os, "replace", wrap(real_replace))


def test_a_file_added_between_the_check_and_the_swap_is_kept(tmp_path, monkeypatch):
    from astromodal.atomic import atomic_dir
    from astromodal.errors import ConfigError

    out = tmp_path / "out"
    with atomic_dir(out, verb="test") as tmp:
        (tmp / "a.txt").write_text("1")

    def hook(src, dst, n, do):
        if src == out:  # the old folder is being moved aside: the user saves a file into it just before
            (out / "user.txt").write_text("mine")
        do()

    with pytest.raises(ConfigError, match="user.txt"), atomic_dir(out, overwrite=True, verb="test") as tmp:
        (tmp / "b.txt").write_text("2")
        _patched_renames(monkeypatch, hook)
    monkeypatch.undo()
    assert (out / "user.txt").read_text() == "mine" and (out / "a.txt").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary or old folder left


@pytest.mark.parametrize("step", [1, 2, 3])
def test_ctrl_c_at_any_step_of_the_swap_loses_nothing(tmp_path, monkeypatch, step):
    from astromodal.atomic import atomic_dir

    out = tmp_path / "out"
    with atomic_dir(out, verb="test") as tmp:
        (tmp / "a.txt").write_text("old")

    def hook(src, dst, n, do):
        do()
        if n == step:  # the interrupt arrives right after this rename
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), atomic_dir(out, overwrite=True, verb="test") as tmp:
        (tmp / "a.txt").write_text("new")
        _patched_renames(monkeypatch, hook)
    monkeypatch.undo()
    # the old output or the complete new one is at out, never neither, and nothing is left beside it
    assert (out / "a.txt").read_text() in ("old", "new") and (out / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_ctrl_c_while_writing_leaves_the_old_output(proj, monkeypatch, capsys):
    out = proj / "assoc"
    assert cli(monkeypatch, capsys, *assoc(proj, out))[0] == 0
    before = snapshot(proj)
    import astromodal.analysis.associations as analysis

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(analysis, "plot_sky_map", interrupted)
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, out, "--overwrite", "--eps", "2"))
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert snapshot(proj) == before and sorted(p.name for p in proj.iterdir()) == ["assoc", "pred.parquet"]


# ------------------------------------------------------------------------- permission and disk errors
def test_an_unwritable_out_is_refused_before_any_work(proj, monkeypatch, capsys):
    real_access = os.access
    locked = proj / "locked"
    locked.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked else real_access(p, mode))
    import astromodal.analysis.associations as analysis

    def never(*a, **k):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(analysis, "find_associations", never)
    for args in (assoc(proj, locked / "out"), ["simulate", "--out", locked / "s.h5", "--n", "10", "--no-images"]):
        code, _, err = cli(monkeypatch, capsys, *args)
        assert_one_line_error(code, err, str(locked), "cannot write")
    assert list(locked.iterdir()) == []


def test_a_full_disk_mid_write_names_the_output_and_leaves_nothing(proj, monkeypatch, capsys):
    import pandas as pd

    out = proj / "assoc"
    assert cli(monkeypatch, capsys, *assoc(proj, out))[0] == 0
    before = snapshot(proj)

    def full(self, path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, out, "--overwrite", "--eps", "2"))
    assert_one_line_error(code, err, str(out / "members.parquet"), "No space left on device")
    assert ".tmp" not in err
    assert snapshot(proj) == before and sorted(p.name for p in proj.iterdir()) == ["assoc", "pred.parquet"]


@pytest.mark.parametrize("existing", [False, True])
def test_a_file_that_appears_or_changes_while_writing_is_kept(tmp_path, existing):
    from astromodal.atomic import atomic_path, write_text

    path = tmp_path / "survey.h5"
    if existing:
        write_text(path, "astromodal's old output")
    with pytest.raises(FileExistsError, match="survey.h5"), atomic_path(path) as tmp:
        tmp.write_text("new output")
        path.unlink(missing_ok=True)
        path.write_text("the user's file, saved meanwhile")
    assert path.read_text() == "the user's file, saved meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["survey.h5"]
    with atomic_path(path) as tmp:  # unchanged meanwhile: replaced as usual
        tmp.write_text("new output")
    assert path.read_text() == "new output"


def test_a_failed_run_leaves_no_empty_parent_folders(proj, monkeypatch, capsys):
    import astromodal.analysis.associations as analysis
    from astromodal.errors import BadValueError

    def broken(*a, **k):
        raise BadValueError("the plot failed")

    monkeypatch.setattr(analysis, "plot_sky_map", broken)
    code, _, err = cli(monkeypatch, capsys, *assoc(proj, proj / "new" / "deep" / "out"))
    assert_one_line_error(code, err, "the plot failed")
    from astromodal.atomic import atomic_path

    with pytest.raises(KeyboardInterrupt), atomic_path(proj / "a" / "b" / "s.h5") as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in proj.iterdir()) == ["pred.parquet"]
