"""Figures (PNG files with content, the right colours and subsampling) and the Markdown/HTML report."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from astromodal.errors import BadValueError, ConfigError
from astromodal.evaluation import plots
from astromodal.evaluation.report import Report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path, min_size=100):
    """The file is a PNG with a drawing on it (more than one grey level)."""
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        arr = np.asarray(im.convert("L"), dtype=float)
    assert min(arr.shape) >= min_size
    assert arr.std() > 1.0
    return arr


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    X = rng.normal(0, 1, (120, 20)) + 6.0 * np.eye(3, 20)[y]
    return X, y


def test_confusion_roc_one_to_one_history(tmp_path, toy):
    X, y = toy
    cm = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]])  # an empty true row must not divide by zero
    p = plots.plot_confusion_matrix(cm, ["STAR", "GALAXY", "QSO"], tmp_path / "a" / "cm.png", title="rf")
    assert p == tmp_path / "a" / "cm.png"
    _check_png(p)
    with pytest.raises(BadValueError, match="does not match 2 class names"):
        plots.plot_confusion_matrix(cm, ["a", "b"], tmp_path / "bad.png")
    proba = np.eye(3)[y] * 0.7 + 0.1
    _check_png(plots.plot_roc(y, proba, ["STAR", "GALAXY", "QSO"], tmp_path / "roc3.png"))
    yb = (y > 0).astype(int)
    _check_png(plots.plot_roc(yb, np.stack([1 - yb * 0.8, yb * 0.8], 1), ["neg", "pos"], tmp_path / "roc2.png"))
    truth = np.linspace(-1, 1, 50)
    _check_png(plots.plot_one_to_one(truth, truth + 0.1, tmp_path / "oto.png", unit="dex", y_err=np.full(50, 0.05)))
    hist_lists = {"train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7], "val_accuracy": [0.5, 0.7, 0.8]}
    hist_rows = [{"epoch": e + 1, "train_loss": a, "val_loss": b} for e, (a, b) in
                 enumerate(zip(hist_lists["train_loss"], hist_lists["val_loss"], strict=True))]
    _check_png(plots.plot_history(hist_lists, tmp_path / "h1.png"))
    _check_png(plots.plot_history(hist_rows, tmp_path / "h2.png"))
    assert plots._history_series(hist_rows)["val_loss"].tolist() == [1.1, 0.8, 0.7]
    with pytest.raises(BadValueError, match="no loss series"):
        plots.plot_history({"val_accuracy": [0.5]}, tmp_path / "h3.png")


def test_embeddings_pca_separates_and_tsne_is_seeded(tmp_path, toy):
    X, y = toy
    Z = plots.embed_2d(X, "pca")
    # three clusters 6 apart along three axes: cluster means in the PCA plane are far apart vs their spread
    means = np.array([Z[y == c].mean(0) for c in range(3)])
    spread = max(Z[y == c].std(0).max() for c in range(3))
    gaps = [np.linalg.norm(means[a] - means[b]) for a, b in ((0, 1), (0, 2), (1, 2))]
    assert min(gaps) > 4 * spread
    a = plots.embed_2d(X[:60], "tsne", seed=3)
    b = plots.embed_2d(X[:60], "tsne", seed=3)
    np.testing.assert_allclose(a, b)
    assert a.shape == (60, 2)
    with pytest.raises(ConfigError, match="'pca' or 'tsne'"):
        plots.plot_embedding(X, y, ["a", "b", "c"], tmp_path / "e.png", method="umap")
    _check_png(plots.plot_embedding(X, y, ["a", "b", "c"], tmp_path / "pca.png", method="pca"))


def test_embedding_subsamples_to_3000(tmp_path, monkeypatch):
    seen = {}

    def fake(X, method, seed):
        seen["n"] = len(X)
        return np.asarray(X)[:, :2]

    monkeypatch.setattr(plots, "embed_2d", fake)
    rng = np.random.default_rng(0)
    plots.plot_embedding(rng.normal(size=(5000, 4)), rng.integers(0, 2, 5000), ["a", "b"], tmp_path / "e.png")
    assert seen["n"] == 3000
    plots.plot_embedding(rng.normal(size=(200, 4)), rng.integers(0, 2, 200), ["a", "b"], tmp_path / "e.png")
    assert seen["n"] == 200


def test_cutout_rgb_uses_i_r_g_as_red_green_blue():
    images = np.zeros((2, 5, 8, 8))
    images[:, 3] = 5.0  # only the i band (index 3 of u g r i z) has flux
    rgb = plots.cutout_rgb(images, ("u", "g", "r", "i", "z"))
    assert rgb.shape == (2, 8, 8, 3)
    assert rgb[..., 0].min() > 0.5 and rgb[..., 1].max() == 0 and rgb[..., 2].max() == 0
    images = np.zeros((1, 5, 8, 8))
    images[0, 1] = 5.0  # only g -> only blue
    rgb = plots.cutout_rgb(images, ("SDSS_u", "SDSS_g", "SDSS_r", "SDSS_i", "SDSS_z"))
    assert rgb[..., 2].min() > 0.5 and rgb[..., :2].max() == 0
    # no g/r/i: first band in grey (three equal channels), brightest pixel white
    one = np.zeros((1, 1, 8, 8))
    one[0, 0, 4, 4] = 3.0
    grey = plots.cutout_rgb(one, ("W1",))
    assert np.array_equal(grey[..., 0], grey[..., 2]) and grey[0, 4, 4, 0] == pytest.approx(1.0)
    assert grey[0, 0, 0, 0] == 0.0


def test_spectra_cutouts_sky(tmp_path):
    rng = np.random.default_rng(1)
    wl = np.linspace(3700.0, 9000.0, 300)
    flux = rng.normal(1, 0.1, (9, 300))
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    _check_png(plots.plot_spectra_examples(wl, flux, labels, ["STAR", "GALAXY", "QSO"], tmp_path / "s.png"))
    # a per-object grid (N, L) and a class with no objects
    _check_png(plots.plot_spectra_examples(np.tile(wl, (9, 1)), flux, labels, ["a", "b", "c", "d"], tmp_path / "s2.png"))
    images = rng.gamma(2, 1, (9, 5, 16, 16))
    _check_png(plots.plot_image_cutouts(images, ("u", "g", "r", "i", "z"), labels, ["a", "b", "c"], tmp_path / "c.png"))
    with Image.open(tmp_path / "c.png") as im:
        rgb = np.asarray(im.convert("RGB"), dtype=float)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).max() > 20  # a colour composite, not grey
    ra, dec = rng.uniform(0, 360, 500), rng.uniform(-60, 60, 500)
    _check_png(plots.plot_sky(ra, dec, tmp_path / "sky.png", values=dec))
    _check_png(plots.plot_sky(ra, dec, tmp_path / "gal.png", frame="galactic"))
    with pytest.raises(ConfigError, match="icrs"):
        plots.plot_sky(ra, dec, tmp_path / "x.png", frame="fk4")


def test_report_markdown_and_html(tmp_path):
    out = tmp_path / "run"
    (out / "figures").mkdir(parents=True)
    rep = Report("Test <report> & co")
    rep.heading("Reproduce", 2).code("astromodal benchmark a.yaml --out 'x y'")
    rep.paragraph("Accuracy of 5 < 6 models, **bold** and `code`.")
    rep.table([{"model": "random_forest", "accuracy": 0.91234}, {"model": "sgd", "accuracy": 0.5}], ["model", "accuracy"])
    rep.image("figures/cm_rf.png", "Confusion <matrix>")
    rep.image(out / "figures" / "abs.png", "absolute path inside the folder")
    rep.metrics({"accuracy": 0.75, "per_class": {"STAR": {"f1": 0.5, "support": 3}},
                 "confusion_matrix": [[2, 1], [0, 3]]})
    md_path, html_path = rep.write(out)
    assert md_path == out / "report.md" and html_path == out / "report.html"
    md = md_path.read_text()
    assert "| random_forest | 0.912 |" in md and "| sgd | 0.500 |" in md
    assert "![Confusion <matrix>](figures/cm_rf.png)" in md
    assert "(figures/abs.png)" in md
    assert "| accuracy | 0.7500 |" in md and "| STAR | 0.5000 | 3 |" in md and "| row 0 | 2 | 1 |" in md
    assert "```\nastromodal benchmark a.yaml --out 'x y'\n```" in md
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<td>0.912</td>" in page and '<img src="figures/cm_rf.png"' in page
    assert "Test &lt;report&gt; &amp; co" in page and "5 &lt; 6" in page and "Confusion &lt;matrix&gt;" in page
    assert "<report>" not in page and "<matrix>" not in page
    assert "<strong>bold</strong>" in page and "<code>code</code>" in page
    assert "--out &#x27;x y&#x27;" in page
    # atomic write leaves no temporary files; a rewrite replaces the files
    assert sorted(p.name for p in out.iterdir()) == ["figures", "report.html", "report.md"]
    rep.paragraph("second version")
    rep.write(out)
    assert "second version" in (out / "report.md").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["figures", "report.html", "report.md"]


def test_report_html_is_one_self_contained_file(tmp_path):
    import base64
    import re
    from pathlib import Path

    out = tmp_path / "run"
    (out / "figures").mkdir(parents=True)
    png = plots.plot_sky(np.array([10.0, 20.0]), np.array([0.0, 5.0]), out / "figures" / "sky.png")
    rep = Report("Embedded figures")
    rep.image("figures/sky.png", "relative path")
    rep.image(out / "figures" / "sky.png", "absolute path")
    md_path, html_path = rep.write(out)
    page = html_path.read_text()
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert base64.b64decode(sources[0].split(",", 1)[1]) == Path(png).read_bytes()  # the figure's own bytes
    assert "(figures/sky.png)" in md_path.read_text()  # the Markdown keeps relative links
    # the page alone, moved away from its figures, still shows them
    alone = tmp_path / "mail" / "report.html"
    alone.parent.mkdir()
    alone.write_text(page)
    assert not re.search(r'<img src="(?!data:)', alone.read_text())
