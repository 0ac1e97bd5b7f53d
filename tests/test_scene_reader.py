"""The Scene layout (frames + a CSV of features and labels): reading, bad input, and experiments/scene.yaml run
end to end on a tiny generated set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from astromodal.data.readers.scene import read_scene
from astromodal.data.sources import load_source
from astromodal.errors import ConfigError, DataFormatError

CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "scene.yaml"
ENVIRONMENTS = [f"env{k}" for k in range(8)]


def make_scene(folder: Path, n: int = 40, side: int = 16, seed: int = 0) -> pd.DataFrame:
    """``n`` RGB PNG frames (side x side): indoor frames dark (level ~60), outdoor bright (~190); mfcc_0 is -1
    indoors and +1 outdoors (plus noise), mfcc_1..3 noise; 8 environments in turn (4 indoor, 4 outdoor); a
    text column ``video``. Written to ``folder/frames/`` and ``folder/scene.csv``."""
    rng = np.random.default_rng(seed)
    (folder / "frames").mkdir(parents=True)
    env = np.arange(n) % 8
    outdoor = env >= 4
    rows = []
    for i in range(n):
        level = 190.0 if outdoor[i] else 60.0
        pix = np.clip(level + 10 * env[i] % 40 + rng.normal(0, 8, (side, side, 3)), 0, 255).astype(np.uint8)
        name = f"frames/f{i:03d}.png"
        Image.fromarray(pix, "RGB").save(folder / name)
        mfcc0 = (1.0 if outdoor[i] else -1.0) + rng.normal(0, 0.2)
        rows.append({"frame": name, "video": f"v{i // 10}", "mfcc_0": mfcc0,
                     **{f"mfcc_{k}": rng.normal() for k in range(1, 4)},
                     "indoor_outdoor": "outdoor" if outdoor[i] else "indoor", "environment": ENVIRONMENTS[env[i]]})
    table = pd.DataFrame(rows)
    table.to_csv(folder / "scene.csv", index=False)
    return table


@pytest.fixture()
def scene(tmp_path) -> tuple[Path, pd.DataFrame]:
    return tmp_path / "scene", make_scene(tmp_path / "scene")


OPTS = {"file_column": "frame", "label_columns": ["indoor_outdoor", "environment"]}


def test_read_shapes_labels_and_columns(scene):
    folder, table = scene
    ds = read_scene(folder, "scene.csv", **OPTS)
    assert len(ds) == 40 and list(ds.ids.read()) == table["frame"].tolist()
    frames = ds.images["frames"]
    pix = frames.pixels.read()
    assert pix.shape == (40, 3, 16, 16) and pix.dtype == np.float32 and frames.bands == ("red", "green", "blue")
    assert 0.0 <= pix.min() and pix.max() <= 1.0
    # the file's pixels / 255, exactly
    first = np.asarray(Image.open(folder / table["frame"][0]), dtype=np.float32) / 255.0
    np.testing.assert_array_equal(pix[0], np.moveaxis(first, -1, 0))
    # default features: the numeric columns; the text column "video" left out and listed
    assert list(ds.columns) == ["mfcc_0", "mfcc_1", "mfcc_2", "mfcc_3"] and ds.meta["text_columns"] == ["video"]
    np.testing.assert_allclose(ds.columns["mfcc_0"].values.read(), table["mfcc_0"].to_numpy(), rtol=1e-12)
    io, env = ds.target("indoor_outdoor"), ds.target("environment")
    assert io.kind == env.kind == "class" and io.class_names == ("indoor", "outdoor") and env.n_classes == 8
    assert np.array_equal(io.labels(), table["indoor_outdoor"].to_numpy())
    assert np.array_equal(env.labels(), table["environment"].to_numpy())
    # the two classes differ in brightness and in mfcc_0, as built
    bright = pix.mean(axis=(1, 2, 3))
    out = io.labels() == "outdoor"
    assert bright[out].min() > bright[~out].max()
    assert ds.columns["mfcc_0"].values.read()[out].mean() > 0.5 > -0.5 > ds.columns["mfcc_0"].values.read()[~out].mean()


def test_size_glob_and_the_source(scene):
    folder, _ = scene
    ds = read_scene(folder, **OPTS, feature_columns="mfcc_[01]", size=8)  # the one CSV of the folder
    assert ds.images["frames"].pixels.shape == (40, 3, 8, 8) and list(ds.columns) == ["mfcc_0", "mfcc_1"]
    # 16 -> 8 by area averaging: the mean of each 2 x 2 block
    full = read_scene(folder, **OPTS).images["frames"].pixels.read()
    blocks = full.reshape(40, 3, 8, 2, 8, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(ds.images["frames"].pixels.read(), blocks, rtol=1e-5)
    train, test = load_source("scene", {"path": str(folder), "csv": "scene.csv", "feature_columns": ["mfcc_*"], **OPTS})
    assert test is None and len(train) == 40 and len(train.columns) == 4
    with pytest.raises(ConfigError, match="unknown option"):
        load_source("scene", {"path": str(folder), "colour": 1})
    with pytest.raises(ConfigError, match="feature_columns.*matches no column"):
        read_scene(folder, **OPTS, feature_columns="chroma_*")


def test_bad_input_one_line_each(scene):
    folder, table = scene
    csv = folder / "scene.csv"

    def rewrite(t: pd.DataFrame) -> None:
        t.to_csv(csv, index=False)

    # a row whose frame is missing: the line and the file
    (folder / table["frame"][5]).unlink()
    with pytest.raises(DataFormatError, match=r"scene.csv: line 7: frame 'frames/f005.png'") as err:
        read_scene(folder, **OPTS)
    assert "\n" not in str(err.value)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / table["frame"][5])
    # a missing label column
    rewrite(table.drop(columns=["environment"]))
    with pytest.raises(DataFormatError, match=r"scene.csv: no column\(s\) \['environment'\]"):
        read_scene(folder, **OPTS)
    # a non-numeric feature: the line, the column and the value
    bad = table.copy()
    bad["mfcc_2"] = bad["mfcc_2"].astype(str)
    bad.loc[3, "mfcc_2"] = "n/a"
    rewrite(bad)
    with pytest.raises(DataFormatError, match=r"scene.csv: line 5, feature column 'mfcc_2': 'n/a' is not a finite"):
        read_scene(folder, **OPTS)
    rewrite(table)
    # an unreadable image: the file
    (folder / table["frame"][2]).write_bytes(b"not a png")
    with pytest.raises(DataFormatError, match=r"f002.png: cannot be read as an image"):
        read_scene(folder, **OPTS)
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(folder / table["frame"][2])
    # frames of different sizes without size
    with pytest.raises(DataFormatError, match=r"f002.png: 12x12 pixels.*set size"):
        read_scene(folder, **OPTS)
    assert read_scene(folder, **OPTS, size=16).images["frames"].pixels.shape == (40, 3, 16, 16)
    # a frame listed twice; an empty label
    rewrite(pd.concat([table, table.iloc[[0]]]))
    with pytest.raises(DataFormatError, match=r"'frames/f000.png' is listed on lines \[2, 42\]"):
        read_scene(folder, **OPTS)
    empty = table.copy()
    empty.loc[9, "environment"] = ""
    rewrite(empty)
    with pytest.raises(DataFormatError, match=r"line 11: empty label in column 'environment'"):
        read_scene(folder, **OPTS)
    with pytest.raises(DataFormatError, match="no such folder"):
        read_scene(folder / "nope", **OPTS)


def test_scene_config_runs_on_the_tiny_set(tmp_path):
    from astromodal.evaluation.benchmark import BenchmarkRunner, quick_overrides
    from astromodal.experiments import load_config

    folder = tmp_path / "scene"
    make_scene(folder, n=80)
    over = {f"datasets.{d}.options.path": str(folder) for d in ("binary", "environment")}
    over.update({"report.confusion_matrices": False, "report.roc_curves": False})  # figures: time, not the point
    cfg = quick_overrides(load_config(CONFIG, over))  # as `astromodal benchmark ... --quick --set ...`
    res = BenchmarkRunner(cfg, tmp_path / "run", config_path=CONFIG, command=f"astromodal benchmark {CONFIG}").run()
    cells = {(c["dataset"], c["representation"], c["model"]) for c in res["cells"]}
    assert cells == {(d, r, m) for d in ("binary", "environment")
                     for r, m in (("audio", "tree"), ("both", "tree"), ("frames", "cnn"), ("both", "fusion"))}
    acc = {(c["dataset"], c["representation"], c["model"]): c["metrics"]["accuracy"] for c in res["cells"]}
    assert acc[("binary", "audio", "tree")] == 1.0  # mfcc_0 separates indoor from outdoor
    assert (tmp_path / "run" / "results.csv").is_file()
    md = (tmp_path / "run" / "report.md").read_text()
    assert "tree" in md and "fusion" in md and "environment" in md
