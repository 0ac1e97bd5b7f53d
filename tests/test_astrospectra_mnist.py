"""AstroSpectra-MNIST layout (write -> read round trips, CSV column detection, bad PNGs and labels) and IDX."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from astromodal.data.dataset import Dataset, Spectra, Target
from astromodal.data.readers import read
from astromodal.data.readers.astrospectra_mnist import (
    read_astrospectra_mnist,
    read_line_astrospectra,
    write_astrospectra_mnist,
)
from astromodal.data.readers.idx import read_idx, read_idx_dataset, write_idx
from astromodal.errors import BadValueError, DataFormatError
from astromodal.transforms.spectra import SpectrumPreprocessing, from_image, line_representation, to_image


def toy_dataset(n=40, seed=0):
    rng = np.random.default_rng(seed)
    grid = SpectrumPreprocessing().grid()
    classes = np.array(["star", "galaxy", "qso", "unknown"])[np.arange(n) % 4]
    types = np.array(["F", "G", "K", "M", "A"])[np.arange(n) % 5]
    slope = rng.uniform(-1, 1, size=(n, 1))
    flux = 2 + slope * (grid / 9100) + 0.1 * rng.normal(size=(n, len(grid)))
    return Dataset(np.array([f"obj{i}" for i in range(n)]), spectra={"lamost": Spectra(flux, grid)},
                   targets={"class": Target.from_labels(classes), "spectral_type": Target.from_labels(types)},
                   meta={"source_files": ["toy"]})


def test_v1_round_trip(tmp_path):
    ds = toy_dataset()
    out = write_astrospectra_mnist(ds, tmp_path / "AstroSpectra-MNIST-v1", version="v1", test_fraction=0.25, seed=3)
    names = sorted(p.name for p in out.iterdir() if p.name != ".astromodal-output.json")  # + the output marker
    assert names == ["linev1.npz", "provenance.json", "test_imagesv1", "test_labelsv1.csv",
                     "train_imagesv1", "train_labelsv1.csv"]
    assert not list(tmp_path.glob(".*.tmp"))
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["dropped_other_classes"] == {"unknown": 10}
    # 30 kept objects, 10 per class; test = ceil(0.25 * 30) = 8, stratified: 2 or 3 per class
    assert sum(prov["counts"]["train"].values()) == 22 and sum(prov["counts"]["test"].values()) == 8
    assert all(c in (2, 3) for c in prov["counts"]["test"].values())
    assert all(prov["counts"]["train"][k] + prov["counts"]["test"][k] == 10 for k in ("star", "galaxy", "qso"))
    assert prov["split_seed"] == 3 and prov["settings"]["grid_size"] == 3601 and prov["astromodal_version"]
    head = (out / "train_labelsv1.csv").read_text().splitlines()[0]
    assert head == "filename,label"
    png = next((out / "train_imagesv1").glob("*.png"))
    with Image.open(png) as im:
        assert im.mode == "L" and im.size == (28, 28)

    line = np.load(out / "linev1.npz")
    for split in ("train", "test"):
        back = read_astrospectra_mnist(out, split=split)
        assert back.meta["version"] == "v1"
        assert back.images["mnist"].pixels.shape[1:] == (1, 28, 28) and back.images["mnist"].bands == ("spectrum",)
        assert back.targets["class"].class_names == ("star", "galaxy", "qso")
        # labels read back equal the written ones (published 1..3 -> codes 0..2)
        assert np.array_equal(back.targets["class"].values.read() + 1, line[f"{split}_labels"])
        # images equal the line vectors up to 8-bit quantisation
        vec = from_image(back.images["mnist"].pixels.read())
        assert np.abs(vec - line[f"{split}_line"]).max() <= 0.5 / 255 + 1e-6
    # the written ids match the original objects' spectra
    train_ids = line["train_ids"]
    rows = [int(i[3:]) for i in train_ids]
    expect = line_representation(ds.subset(rows), "lamost")
    assert np.allclose(line["train_line"], expect, atol=1e-6)
    assert set(ds.targets["class"].labels()[rows]) <= {"star", "galaxy", "qso"}
    lr = read_line_astrospectra(out, split="test")
    assert lr.spectra["line"].flux.shape[1] == 721
    # the registry finds the folder layout
    assert len(read(out, split="test")) == len(line["test_labels"])


def test_v2_keeps_only_fgk_and_same_seed_same_split(tmp_path):
    ds = toy_dataset(50)
    a = write_astrospectra_mnist(ds, tmp_path / "a", version="v2", seed=1)
    b = write_astrospectra_mnist(ds, tmp_path / "b", version="v2", seed=1)
    prov = json.loads((a / "provenance.json").read_text())
    assert prov["target"] == "spectral_type"
    assert prov["dropped_other_classes"] == {"A": 10, "M": 10}
    tr = read_astrospectra_mnist(a)
    assert tr.targets["class"].class_names == ("F", "G", "K")
    assert len(tr) + len(read_astrospectra_mnist(a, split="test")) == 30
    assert (a / "train_labelsv2.csv").read_text() == (b / "train_labelsv2.csv").read_text()
    assert np.array_equal(np.load(a / "linev2.npz")["train_ids"], np.load(b / "linev2.npz")["train_ids"])


def _layout(root, version="v1", rows=(("a.png", 1), ("b.png", 2), ("c.png", 3)), header="filename,label"):
    folder = root / f"train_images{version}"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, _ in rows:
        Image.fromarray(rng.integers(0, 256, size=(28, 28), dtype=np.uint8)).save(folder / name)
    lines = ([header] if header else []) + [f"{f},{lab}" for f, lab in rows]
    (root / f"train_labels{version}.csv").write_text("\n".join(lines) + "\n")
    return root


def test_csv_any_column_pair_and_headerless(tmp_path):
    root = _layout(tmp_path / "x", header="")
    ds = read_astrospectra_mnist(root)
    assert ds.ids.read().tolist() == ["a", "b", "c"] and ds.targets["class"].values.read().tolist() == [0, 1, 2]
    # other column names, extra columns, label column first
    root = tmp_path / "y"
    _layout(root)
    (root / "train_labelsv1.csv").write_text("cls,note,img\n3,x,a.png\n1,y,b.png\n2,z,c.png\n")
    ds = read_astrospectra_mnist(root)
    assert ds.targets["class"].labels().tolist() == ["qso", "star", "galaxy"]
    pix = np.asarray(Image.open(root / "train_imagesv1" / "a.png"), dtype=np.float32) / 255
    assert np.array_equal(ds.images["mnist"].pixels.read()[0, 0], pix)


def test_csv_without_usable_columns_lists_them(tmp_path):
    root = _layout(tmp_path / "z")
    (root / "train_labelsv1.csv").write_text("name,kind\nq.png,star\nr.png,galaxy\n")
    with pytest.raises(DataFormatError, match=r"columns \['name', 'kind'\].*expected a column of image file names"):
        read_astrospectra_mnist(root)
    (root / "train_labelsv1.csv").write_text("name,kind\na.png,star\nb.png,galaxy\n")
    with pytest.raises(DataFormatError, match=r"no column of integer labels among columns \['name', 'kind'\]"):
        read_astrospectra_mnist(root)


def test_label_outside_version_named(tmp_path):
    root = _layout(tmp_path / "w", version="v2", rows=(("a.png", 1), ("b.png", 7)))
    with pytest.raises(BadValueError, match=r"row 2 \(b.png\): label 7.*v2"):
        read_astrospectra_mnist(root)


@pytest.mark.parametrize("case", ["size", "rgb", "corrupt"])
def test_bad_png_named(tmp_path, case):
    root = _layout(tmp_path / case)
    bad = root / "train_imagesv1" / "b.png"
    if case == "size":
        Image.fromarray(np.zeros((32, 28), np.uint8)).save(bad)
    elif case == "rgb":
        Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(bad)
    else:
        bad.write_bytes(bad.read_bytes()[:30])
    with pytest.raises(DataFormatError, match="b.png"):
        read_astrospectra_mnist(root)


def test_version_detection_errors(tmp_path):
    with pytest.raises(DataFormatError, match="train_labelsv1.csv or train_labelsv2.csv"):
        read_astrospectra_mnist(tmp_path)
    _layout(tmp_path / "AstroSpectra-MNIST-v2", version="v2")
    assert read_astrospectra_mnist(tmp_path, version="v2").meta["version"] == "v2"


def test_to_image_matches_written_png(tmp_path):
    vec = np.linspace(0, 1, 721)[None]
    img = to_image(vec)
    Image.fromarray(img[0]).save(tmp_path / "p.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "p.png")), img[0])


# ------------------------------------------------------------------------------------------ IDX
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 9, 3, 3, 0], dtype=np.uint8)
    ip = write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    lp = write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels)
    assert np.array_equal(read_idx(ip), images)
    if not suffix:  # the exact header bytes of MNIST: 0x00000803 then 7, 28, 28
        assert ip.read_bytes()[:16] == bytes.fromhex("00000803" "00000007" "0000001c" "0000001c")
    f32 = rng.normal(size=(3, 4)).astype(np.float32)
    assert np.array_equal(read_idx(write_idx(tmp_path / "f.idx", f32)), f32)
    ds = read_idx_dataset(ip, lp, class_names=[str(i) for i in range(10)])
    assert ds.images["mnist"].pixels.shape == (7, 1, 28, 28)
    assert np.allclose(ds.images["mnist"].pixels.read()[:, 0] * 255, images)
    assert ds.targets["class"].values.read().tolist() == labels.tolist()
    assert read_idx_dataset(ip, lp).targets["class"].n_classes == 10
    assert len(read(ip)) == 7  # registry: labels file found beside the images


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad-ubyte"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataFormatError, match="bad-ubyte.*not an IDX"):
        read_idx(bad)
    short = write_idx(tmp_path / "s-ubyte", np.zeros((4, 2, 2), np.uint8))
    short.write_bytes(short.read_bytes()[:-3])
    with pytest.raises(DataFormatError, match="size mismatch"):
        read_idx(short)
    ip = write_idx(tmp_path / "i-ubyte", np.zeros((3, 2, 2), np.uint8))
    lp = write_idx(tmp_path / "l-ubyte", np.array([0, 1, 5], np.uint8))
    with pytest.raises(BadValueError, match="label 5 at row 2"):
        read_idx_dataset(ip, lp, class_names=["a", "b"])
    lp2 = write_idx(tmp_path / "l2-ubyte", np.array([0, 1], np.uint8))
    with pytest.raises(DataFormatError, match="3 images but"):
        read_idx_dataset(ip, lp2)
