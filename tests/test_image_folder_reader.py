"""The "folder of images + label CSV" reader (astromodal.data.readers.image_folder) and its source."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astromodal.data.readers import read
from astromodal.data.readers.image_folder import GALAXY_ZOO1_CLASSES, read_image_folder, resize_area
from astromodal.data.sources import load_source
from astromodal.errors import BadValueError, ConfigError, DataFormatError

# a 4 x 4 grey image; its 2 x 2 block means are [[2.5, 4.5], [10.5, 12.5]]
GREY = np.array([[0, 1, 4, 5], [2, 7, 3, 6], [8, 9, 12, 13], [10, 15, 11, 14]], dtype=np.uint8)


def _folder(tmp_path, rows="id,label\n17,0\n5,1\n903,1\n", ext=".png"):
    """Three 4 x 4 RGB images (ids 17, 5, 903), each channel a known pattern, and a CSV."""
    img = tmp_path / "imgs"
    img.mkdir(parents=True)
    for k, oid in enumerate((17, 5, 903)):
        rgb = np.stack([GREY + 10 * k, GREY * 2, np.full((4, 4), 40 * k, np.uint8)], axis=-1).astype(np.uint8)
        Image.fromarray(rgb, mode="RGB").save(img / f"{oid}{ext}")
    (img / "notes.txt").write_text("not an image")
    csv = tmp_path / "labels.csv"
    csv.write_text(rows)
    return img, csv


def test_reads_ids_labels_and_values(tmp_path):
    img, csv = _folder(tmp_path)
    ds = read_image_folder(img, csv, class_names={0: "elliptical", 1: "spiral"}, progress=False)
    assert ds.ids.read().dtype == np.int64
    assert ds.ids.read().tolist() == [17, 5, 903]  # CSV order
    t = ds.targets["class"]
    assert t.class_names == ("elliptical", "spiral")
    assert t.values.read().tolist() == [0, 1, 1]
    im = ds.images["image"]
    assert im.bands == ("red", "green", "blue") and im.pixels.shape == (3, 3, 4, 4)
    px = im.pixels.read()
    np.testing.assert_allclose(px[1, 0], (GREY + 10) / 255.0, rtol=1e-6)  # id 5 is k = 1
    np.testing.assert_allclose(px[2, 2], np.full((4, 4), 80 / 255.0), rtol=1e-6)
    assert ds.meta["images_without_row"] == 0 and ds.meta["rows_without_image"] == 0


def test_resize_is_the_block_mean(tmp_path):
    img, csv = _folder(tmp_path)
    ds = read_image_folder(img, csv, size=2, bands=["i", "r", "g"], progress=False, pixel_scale=0.396)
    px = ds.images["image"].pixels.read()
    assert px.shape == (3, 3, 2, 2) and ds.images["image"].bands == ("i", "r", "g")
    np.testing.assert_allclose(px[0, 0] * 255.0, [[2.5, 4.5], [10.5, 12.5]], rtol=1e-6)  # no 8-bit rounding
    np.testing.assert_allclose(px[0, 1] * 255.0, [[5.0, 9.0], [21.0, 25.0]], rtol=1e-6)
    np.testing.assert_allclose(px[2, 0] * 255.0, [[22.5, 24.5], [30.5, 32.5]], rtol=1e-6)
    assert ds.images["image"].pixel_scale == pytest.approx(0.792)
    np.testing.assert_allclose(resize_area(GREY[None].astype(np.float32), 2)[0], [[2.5, 4.5], [10.5, 12.5]])


def test_centre_crop_then_resize(tmp_path):
    img, csv = _folder(tmp_path)
    ds = read_image_folder(img, csv, crop=0.5, bands=["grey"], progress=False)  # the central 2 x 2 pixels
    grey0 = np.asarray(Image.fromarray(np.stack([GREY, GREY * 2, np.zeros((4, 4), np.uint8)], -1)).convert("L"),
                       np.float32)
    np.testing.assert_allclose(ds.images["image"].pixels.read()[0, 0] * 255, grey0[1:3, 1:3], rtol=1e-6)
    ds = read_image_folder(img, csv, crop=2, size=1, progress=False)  # 2 px crop, then its mean
    np.testing.assert_allclose(ds.images["image"].pixels.read()[0, 0, 0, 0] * 255, (7 + 3 + 9 + 12) / 4, rtol=1e-6)
    assert ds.images["image"].pixel_scale == pytest.approx(2.0)
    with pytest.raises(ConfigError, match="crop must be"):
        read_image_folder(img, csv, crop=2.5, progress=False)


def test_grey_labels_as_list_and_default_classes(tmp_path):
    img, csv = _folder(tmp_path, rows="name,kind\n903,2\n17,10\n")
    ds = read_image_folder(img, csv, id_column="name", label_column="kind", bands=["grey"], progress=False)
    assert ds.images["image"].pixels.shape == (2, 1, 4, 4)
    assert ds.targets["class"].class_names == ("2", "10")  # integers in numeric order, not "10" < "2"
    assert ds.targets["class"].values.read().tolist() == [0, 1]
    img2, csv2 = _folder(tmp_path / "b", rows="id,label\n17,0\n5,2\n903,1\n")
    ds = read_image_folder(img2, csv2, class_names=["a", "b", "c"], progress=False)
    assert ds.targets["class"].labels().tolist() == ["a", "c", "b"]


def test_limit_per_class_and_text_ids(tmp_path):
    img, csv = _folder(tmp_path, rows="id,label\n17,0\n5,1\n903,1\n")
    ds = read_image_folder(img, csv, per_class=1, progress=False)
    assert len(ds) == 2 and ds.targets["class"].values.read().tolist() == [0, 1]
    assert ds.ids.read()[0] == 17 and ds.ids.read()[1] in (5, 903)
    assert read_image_folder(img, csv, limit=2, progress=False).ids.read().tolist() == [17, 5]
    Image.fromarray(GREY).convert("RGB").save(img / "NGC_1300.jpg")
    csv.write_text("id,label\nNGC_1300,0\n17,1\n")
    ds = read_image_folder(img, csv, progress=False)
    assert ds.ids.read().tolist() == ["NGC_1300", "17"]
    assert ds.meta["images_without_row"] == 2


def test_ids_and_labels_that_only_look_like_integers(tmp_path, monkeypatch):
    """"--5", "5-", "²" are text ids / labels (were an uncaught ValueError); "007" beside "7" is refused
    before any image is read."""
    from astromodal.data.readers import image_folder

    img, csv = _folder(tmp_path)
    for odd in ("--5", "5-", "\u00b2"):
        Image.fromarray(GREY).convert("RGB").save(img / f"{odd}.png")
        csv.write_text(f"id,label\n{odd},0\n17,1\n")
        ds = read_image_folder(img, csv, progress=False)
        assert ds.ids.read().tolist() == [odd, "17"]
        csv.write_text(f"id,label\n17,{odd}\n5,1\n")
        assert read_image_folder(img, csv, progress=False).targets["class"].class_names == tuple(sorted([odd, "1"]))
    Image.fromarray(GREY).convert("RGB").save(img / "007.png")
    csv.write_text("id,label\n007,0\n7,1\n17,1\n")
    (img / "7.png").write_bytes((img / "17.png").read_bytes())
    loads = []
    monkeypatch.setattr(image_folder, "_load", lambda *a: loads.append(a) or 1 / 0)
    with pytest.raises(BadValueError, match="labels.csv: ids that differ only by leading zeros"):
        read_image_folder(img, csv, progress=False)
    assert loads == []


def test_reader_registry_and_source(tmp_path):
    img, csv = _folder(tmp_path)
    ds = read(tmp_path, reader="image_folder", images=img, size=2, progress=False)  # the one CSV in the folder
    assert len(ds) == 3 and ds.images["image"].size == 2
    train, test = load_source("image_folder", {"images": str(img / "*.png"), "labels": "labels.csv", "size": 2,
                                               "class_names": {0: "e", 1: "s"}}, base=tmp_path)
    assert test is None and train.targets["class"].class_names == ("e", "s") and len(train) == 3
    with pytest.raises(ConfigError, match="unknown option"):
        load_source("image_folder", {"images": str(img), "labels": str(csv), "resize": 2})


def test_bad_input_lines(tmp_path):
    img, csv = _folder(tmp_path)
    bad = tmp_path / "nocol.csv"
    bad.write_text("objid,class\n17,0\n")
    with pytest.raises(DataFormatError, match=r"nocol.csv: no column\(s\) \['id', 'label'\]"):
        read_image_folder(img, bad, progress=False)
    miss = tmp_path / "miss.csv"
    miss.write_text("id,label\n17,0\n42,1\n")
    with pytest.raises(DataFormatError, match=r"miss.csv: line 3: no image of id '42'"):
        read_image_folder(img, miss, progress=False)
    ds = read_image_folder(img, miss, missing="skip", progress=False)
    assert ds.ids.read().tolist() == [17] and ds.meta["rows_without_image"] == 1
    (img / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataFormatError, match=r"5.png: cannot be read as an image"):
        read_image_folder(img, csv, progress=False)
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(img / "5.png")
    with pytest.raises(DataFormatError, match=r"5.png: 5x6 pixels, but 17.png has 4x4; set size"):
        read_image_folder(img, csv, progress=False)
    dup = tmp_path / "dup.csv"
    dup.write_text("id,label\n17,0\n5,1\n17,1\n")
    with pytest.raises(DataFormatError, match=r"id '17' appears 2 times \(lines \[2, 4\]\)"):
        read_image_folder(img, dup, progress=False)
    unknown = tmp_path / "unk.csv"
    unknown.write_text("id,label\n17,0\n5,7\n")
    with pytest.raises(DataFormatError, match=r"line 3: label '7' is not among the class_names keys"):
        read_image_folder(img, unknown, class_names={0: "a", 1: "b"}, progress=False)
    with pytest.raises(ConfigError, match="bands"):
        read_image_folder(img, csv, bands=["a", "b"], progress=False)
    with pytest.raises(DataFormatError, match="no such folder"):
        read_image_folder(tmp_path / "nowhere", csv, progress=False)


@pytest.mark.realdata
def test_real_galaxy_zoo(shared_data):
    root = shared_data / "galaxyzoo1-small" / "smallGZ1"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    start = time.perf_counter()
    ds = read_image_folder(root / "Imagenes", root / "smallCSV_class.csv", id_column="OBJID", label_column="CLASS",
                           class_names=GALAXY_ZOO1_CLASSES, bands=["i", "r", "g"], size=32, limit=50,
                           progress=False)
    assert time.perf_counter() - start < 20.0
    assert len(ds) == 50 and ds.ids.read()[0] == 588848901537202306  # first CSV row, exact 18-digit id
    assert ds.images["image"].pixels.shape == (50, 3, 32, 32)
    px = ds.images["image"].pixels.read()
    assert 0.0 <= px.min() and px.max() <= 1.0 and px[:, :, 14:18, 14:18].mean() > px[:, :, :4, :4].mean()
    assert ds.targets["class"].class_names == tuple(GALAXY_ZOO1_CLASSES.values())
    assert ds.images["image"].pixel_scale == pytest.approx(423 / 32)  # the files' own pixels per resized pixel
    full = np.asarray(Image.open(root / "Imagenes" / "588848901537202306.jpeg").convert("RGB"), np.float32)
    np.testing.assert_allclose(px[0, 1, 0, 0] * 255, full[:13, :13, 1].mean(), rtol=1e-5)  # BOX: 13 or 14 px blocks


@pytest.mark.realdata
def test_shipped_galaxyzoo_config_runs(shared_data, tmp_path, monkeypatch):
    """experiments/galaxyzoo_mescr.yaml end to end on 8 images a class, one epoch, draws of 40 rows."""
    import yaml

    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import parse_config

    if not (shared_data / "galaxyzoo1-small" / "smallGZ1").is_dir():
        pytest.skip("galaxyzoo1-small not found")
    monkeypatch.setenv("ASTROMODAL_DATA", str(shared_data))
    path = Path(__file__).resolve().parents[1] / "experiments" / "galaxyzoo_mescr.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["datasets"]["gz1"]["options"]["per_class"] = 8
    raw["trainer"].update(max_epochs=1, patience=None)
    mescr = next(m for m in raw["models"] if m["label"] == "mescr")
    mescr["protocol"]["draw_size"] = 40
    res = BenchmarkRunner(parse_config(raw, str(path)), tmp_path / "run", config_path=path).run()
    cells = {c["model"]: c for c in res["cells"]}
    assert set(cells) == {"plain", "plain_wloss", "mescr"}
    assert cells["plain"]["n_members"] == 1 and cells["mescr"]["n_members"] == 7
    assert cells["mescr"]["member_names"] == ["base", *GALAXY_ZOO1_CLASSES.values()]
    assert cells["mescr"]["combine_weights"] == [0.1] + [0.15] * 6
    assert len({c["n_test"] for c in cells.values()}) == 1  # one test split for all three


def test_a_crop_of_1_0_is_the_whole_square_and_an_integer_is_pixels():
    from astromodal.data.readers.image_folder import _crop_box

    assert _crop_box(4, 4, 1.0) == (0, 0, 4, 4)  # a fraction: the whole image (was a 1-pixel square)
    assert _crop_box(6, 4, 0.5) == (2, 1, 4, 3)
    assert _crop_box(6, 4, 2) == (2, 1, 4, 3)  # pixels
