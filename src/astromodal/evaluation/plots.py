"""Figures for reports: confusion matrices, ROC curves, one-to-one plots, embeddings, example spectra
and cutouts, sky maps and training curves.

Every function draws on its own :class:`matplotlib.figure.Figure` rendered by the Agg (PNG) backend,
without pyplot's global state (nothing is shown, no window opens, and plotting is safe in worker
processes), writes one PNG and returns its path. Parent folders are created. Units: wavelength in
Angstrom, RA/Dec in degrees.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from astromodal.errors import BadValueError, ConfigError

#: Largest number of points drawn in an embedding (a random subsample beyond it).
MAX_EMBED_POINTS = 3000


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    fig.clear()  # a Figure outside pyplot is freed once unreferenced; clear it explicitly anyway
    return path


def _read(a: Any, rows: np.ndarray | None = None) -> np.ndarray:
    """Rows of an array or of a lazy RowView (read in increasing row order, returned in ``rows`` order)."""
    if hasattr(a, "read") and not isinstance(a, np.ndarray):
        if rows is None:
            return np.asarray(a.read())
        rows = np.asarray(rows, dtype=np.int64)
        unique, inverse = np.unique(rows, return_inverse=True)
        return np.asarray(a.read(unique))[inverse]
    arr = np.asarray(a)
    return arr if rows is None else arr[rows]


def _class_colours(k: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


# ---------------------------------------------------------------------- classification
def plot_confusion_matrix(
    cm: Any,
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    normalise: bool = True,
    title: str = "",
) -> Path:
    """Confusion matrix (rows = true class, columns = predicted). ``normalise``: each row divided by its
    total, so the diagonal is the recall (completeness) of each class; the counts are printed beside."""
    counts = np.asarray(cm, dtype=np.float64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise BadValueError(f"confusion matrix shape {counts.shape} does not match {k} class names")
    totals = counts.sum(axis=1, keepdims=True)
    shown = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0) if normalise else counts
    size = 1.2 + 0.9 * k
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalise else max(shown.max(), 1))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class" if normalise else "objects")
    ax.set_xticks(range(k), [str(c) for c in class_names], rotation=45, ha="right")
    ax.set_yticks(range(k), [str(c) for c in class_names])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title, fontsize=10)
    threshold = 0.5 * (1 if normalise else max(shown.max(), 1))
    fontsize = 9 if k <= 6 else 7
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}\n({int(counts[i, j])})" if normalise else f"{int(counts[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if shown[i, j] > threshold else "black")
    return _save(fig, path)


def plot_roc(y_true: Any, proba: Any, class_names: Sequence[str], path: str | os.PathLike[str]) -> Path:
    """ROC curves: binary, the positive class (column 1); multiclass, one-vs-rest per class present."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != len(y):
        raise BadValueError(f"proba must have shape ({len(y)}, n_classes), got {p.shape}")
    k = p.shape[1]
    classes = [1] if k == 2 else list(range(k))
    colours = _class_colours(k)
    fig = _figure(5, 5)
    ax = fig.add_subplot()
    for c in classes:
        positive = y == c
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, p[:, c])
        auc = roc_auc_score(positive, p[:, c])
        name = class_names[c] if c < len(class_names) else str(c)
        ax.plot(fpr, tpr, color=colours[c], label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


# ---------------------------------------------------------------------- regression
def plot_one_to_one(
    y_true: Any,
    y_pred: Any,
    path: str | os.PathLike[str],
    unit: str = "",
    y_err: Any = None,
    label: str = "",
) -> Path:
    """Predicted against true value with the 1:1 line, and residuals (predicted - true) below; the
    panel states RMSE, bias, NMAD and R^2. ``y_err``: predicted 1-sigma uncertainties (error bars)."""
    from astromodal.evaluation.metrics import regression_metrics

    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    m = regression_metrics(t, p)
    err = None if y_err is None else np.asarray(y_err, dtype=np.float64).reshape(-1)
    fig = _figure(5, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    alpha = float(np.clip(300 / max(len(t), 1), 0.05, 0.8))
    if err is not None:
        top.errorbar(t, p, yerr=err, fmt="none", ecolor="grey", alpha=alpha * 0.5, lw=0.5)
    top.scatter(t, p, s=5, alpha=alpha)
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    pad = 0.03 * (hi - lo or 1.0)
    top.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=1)
    top.set_xlim(lo - pad, hi + pad)
    top.set_ylim(lo - pad, hi + pad)
    u = f" [{unit}]" if unit else ""
    name = label or "value"
    top.set_ylabel(f"predicted {name}{u}")
    r2 = "n/a" if m["r2"] is None else f"{m['r2']:.3f}"
    top.text(0.03, 0.97, f"N = {m['n']}\nRMSE = {m['rmse']:.3g}\nbias = {m['bias']:.3g}\n"
             f"NMAD = {m['nmad']:.3g}\n$R^2$ = {r2}", transform=top.transAxes, va="top", fontsize=9)
    bottom.scatter(t, p - t, s=5, alpha=alpha)
    bottom.axhline(0, color="k", lw=1)
    bottom.set_xlabel(f"true {name}{u}")
    bottom.set_ylabel("pred - true")
    return _save(fig, path)


# ---------------------------------------------------------------------- embeddings
def embed_2d(X: Any, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Two-dimensional embedding of the rows of ``X``: ``"pca"`` (first two principal components) or
    ``"tsne"`` (t-SNE with the given seed, after PCA to 50 components when there are more features)."""
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    if not np.all(np.isfinite(X)):
        raise BadValueError("cannot embed: the feature matrix contains NaN or infinite values")
    if method == "pca":
        n_comp = min(2, X.shape[0], X.shape[1])
        Z = PCA(n_components=n_comp, random_state=seed).fit_transform(X)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        if X.shape[1] > 50 and X.shape[0] > 50:
            X = PCA(n_components=50, random_state=seed).fit_transform(X)
        perplexity = float(min(30.0, max(2.0, (X.shape[0] - 1) / 3)))
        Z = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)
    else:
        raise ConfigError(f"embedding method must be 'pca' or 'tsne', not {method!r}")
    if Z.shape[1] < 2:
        Z = np.column_stack([Z, np.zeros((len(Z), 2 - Z.shape[1]))])
    return Z


def plot_embedding(
    X: Any,
    labels: Any,
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    method: str = "pca",
    seed: int = 0,
    max_points: int = MAX_EMBED_POINTS,
) -> Path:
    """PCA or t-SNE map of the objects coloured by class (a random subsample of ``max_points`` at most)."""
    X = _read(X)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(y) != len(X):
        raise BadValueError(f"embedding: {len(X)} objects but {len(y)} labels")
    if method not in ("pca", "tsne"):
        raise ConfigError(f"embedding method must be 'pca' or 'tsne', not {method!r}")
    if len(X) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), max_points, replace=False))
        X, y = X[keep], y[keep]
    Z = embed_2d(X, method, seed)
    colours = _class_colours(len(class_names))
    fig = _figure(6, 5)
    ax = fig.add_subplot()
    for c, name in enumerate(class_names):
        sel = y == c
        if sel.any():
            ax.scatter(Z[sel, 0], Z[sel, 1], s=4, alpha=0.6, color=colours[c], label=f"{name} ({int(sel.sum())})")
    axis = ("PC", "PC") if method == "pca" else ("t-SNE ", "t-SNE ")
    ax.set_xlabel(f"{axis[0]}1")
    ax.set_ylabel(f"{axis[1]}2")
    ax.set_title(f"{method.upper()} of {len(X)} objects", fontsize=10)
    ax.legend(markerscale=3, fontsize=8)
    return _save(fig, path)


def plot_embedding_values(
    X: Any,
    values: Any,
    path: str | os.PathLike[str],
    method: str = "tsne",
    seed: int = 0,
    label: str = "value",
    title: str = "",
    max_points: int = MAX_EMBED_POINTS,
) -> Path:
    """PCA or t-SNE map of the rows of ``X`` coloured by a continuous ``values`` (e.g. log SFR; rows with NaN
    values drawn grey beneath), a seeded random subsample of ``max_points`` at most."""
    X = _read(X)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(v) != len(X):
        raise BadValueError(f"embedding: {len(X)} objects but {len(v)} values")
    if len(X) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), max_points, replace=False))
        X, v = X[keep], v[keep]
    Z = embed_2d(X, method, seed)
    fig = _figure(6, 5)
    ax = fig.add_subplot()
    nan = ~np.isfinite(v)
    if nan.any():
        ax.scatter(Z[nan, 0], Z[nan, 1], s=4, color="0.8", label=f"no {label} ({int(nan.sum())})")
        ax.legend(fontsize=8)
    sc = ax.scatter(Z[~nan, 0], Z[~nan, 1], s=5, c=v[~nan], cmap="viridis", alpha=0.8)
    fig.colorbar(sc, ax=ax, label=label)
    axis = "PC" if method == "pca" else "t-SNE "
    ax.set_xlabel(f"{axis}1")
    ax.set_ylabel(f"{axis}2")
    ax.set_title(title or f"{method.upper()} of {len(X)} objects", fontsize=10)
    return _save(fig, path)


# ---------------------------------------------------------------------- data examples
def _examples(y: np.ndarray, k: int, per_class: int) -> list[np.ndarray]:
    """The first ``per_class`` rows of each class (deterministic)."""
    return [np.flatnonzero(y == c)[:per_class] for c in range(k)]


def plot_spectra_examples(
    wavelength: Any,
    flux: Any,
    labels: Any,
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    per_class: int = 2,
    unit: str = "",
    scale: bool = True,
) -> Path:
    """A few spectra of each class, one panel per class, against wavelength in Angstrom.
    ``wavelength`` is one grid (L,) or one per object (N, L). With ``scale`` each spectrum is divided by
    its median |flux| so that bright and faint objects share a panel."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    k = len(class_names)
    chosen = _examples(y, k, per_class)
    rows_all = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    flux_rows = _read(flux, rows_all)
    if scale and flux_rows.size:
        med = np.median(np.abs(flux_rows), axis=1, keepdims=True)
        flux_rows = flux_rows / np.where(med > 0, med, 1.0)
    wl = wavelength
    wl_ndim = len(getattr(wl, "shape", np.shape(wl)))
    wl_rows = _read(wl, rows_all) if wl_ndim == 2 else np.broadcast_to(_read(wl), flux_rows.shape)
    fig = _figure(9, 1.2 + 2.0 * k)
    axes = np.atleast_1d(fig.subplots(k, 1, sharex=True, squeeze=False)[:, 0])
    start = 0
    for c, (ax, rows) in enumerate(zip(axes, chosen, strict=True)):
        for j in range(len(rows)):
            ax.plot(wl_rows[start + j], flux_rows[start + j], lw=0.6, label=f"object {int(rows[j])}")
        start += len(rows)
        ax.set_ylabel("flux / median" if scale else f"flux{' [' + unit + ']' if unit else ''}", fontsize=8)
        ax.set_title(f"{class_names[c]}" + ("" if len(rows) else " (no objects)"), fontsize=9, loc="left")
        if len(rows):
            ax.legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("wavelength [Å]")
    return _save(fig, path)


def _band_index(bands: Sequence[str], name: str) -> int | None:
    for i, b in enumerate(bands):
        s = str(b).strip().lower()
        if s == name or s.endswith(("_" + name, "-" + name, ":" + name)):
            return i
    return None


def cutout_rgb(images: np.ndarray, bands: Sequence[str], q: float = 8.0, stretch: float = 0.5) -> np.ndarray:
    """Display images (N, H, W, 3) in [0, 1] from cutouts (N, B, H, W): a Lupton et al. (2004) colour
    composite with (i, r, g) as (red, green, blue) when the g, r and i bands are present, else the first
    band alone with an asinh stretch, in grey."""
    from astropy.visualization import make_lupton_rgb

    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4:
        raise BadValueError(f"cutouts must have shape (N, bands, H, W), got {images.shape}")
    idx = [_band_index(bands, b) for b in ("i", "r", "g")]
    if all(i is not None for i in idx):
        out = [make_lupton_rgb(im[idx[0]], im[idx[1]], im[idx[2]], Q=q, stretch=stretch) for im in images]
        return np.stack(out).astype(np.float64) / 255.0 if out else np.zeros((0, *images.shape[2:], 3))
    first = images[:, 0]
    lo = np.percentile(first, 1, axis=(1, 2), keepdims=True)
    hi = np.percentile(first, 99.5, axis=(1, 2), keepdims=True)
    scaled = np.clip((first - lo) / np.where(hi > lo, hi - lo, 1.0), 0, 1)
    grey = np.arcsinh(10 * scaled) / np.arcsinh(10)
    return np.repeat(grey[..., None], 3, axis=-1)


def plot_image_cutouts(
    images: Any,
    bands: Sequence[str],
    labels: Any,
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    per_class: int = 3,
) -> Path:
    """A grid of cutouts, one row per class: gri Lupton RGB (Q=8, stretch=0.5) when g, r, i exist, else
    the first band in grey."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    k = len(class_names)
    chosen = _examples(y, k, per_class)
    rows_all = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    rgb = cutout_rgb(_read(images, rows_all), bands)
    fig = _figure(1.6 * per_class + 1.0, 1.7 * k)
    axes = fig.subplots(k, per_class, squeeze=False)
    start = 0
    for c, rows in enumerate(chosen):
        for j in range(per_class):
            ax = axes[c, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(rows):
                ax.imshow(rgb[start + j], origin="lower")
                ax.set_title(f"#{int(rows[j])}", fontsize=7)
            else:
                ax.axis("off")
        axes[c, 0].set_ylabel(str(class_names[c]), fontsize=9)
        start += len(rows)
    return _save(fig, path)


# ---------------------------------------------------------------------- sky and training
def plot_sky(
    ra: Any,
    dec: Any,
    path: str | os.PathLike[str],
    values: Any = None,
    frame: str = "icrs",
    value_label: str = "",
) -> Path:
    """Positions on the sky. ``frame="icrs"``: Mollweide map of RA/Dec (degrees) with RA increasing to
    the left (as seen on the sky); ``"galactic"``: Aitoff map of l/b. ``values`` colour the points."""
    ra = np.asarray(ra, dtype=np.float64).reshape(-1)
    dec = np.asarray(dec, dtype=np.float64).reshape(-1)
    if ra.shape != dec.shape:
        raise BadValueError(f"sky plot: {ra.size} RA values but {dec.size} Dec values")
    if frame == "icrs":
        lon, lat, projection, names = ra, dec, "mollweide", ("RA", "Dec")
    elif frame == "galactic":
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        gal = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").galactic
        lon, lat, projection, names = gal.l.deg, gal.b.deg, "aitoff", ("l", "b")
    else:
        raise ConfigError(f"sky frame must be 'icrs' or 'galactic', not {frame!r}")
    # longitude 0..360 -> -180..180, flipped so that it increases to the left
    x = -np.deg2rad(((lon + 180.0) % 360.0) - 180.0)
    y = np.deg2rad(lat)
    fig = _figure(9, 5)
    ax = fig.add_subplot(projection=projection)
    if values is None:
        ax.scatter(x, y, s=2, alpha=0.5)
    else:
        sc = ax.scatter(x, y, s=2, c=np.asarray(values, dtype=np.float64).reshape(-1), cmap="viridis")
        fig.colorbar(sc, ax=ax, orientation="horizontal", fraction=0.05, pad=0.08, label=value_label)
    ticks = np.arange(-150, 181, 30)
    ax.set_xticks(np.deg2rad(ticks), [f"{int((-t) % 360)}°" for t in ticks], fontsize=7)
    ax.grid(True, alpha=0.4)
    ax.set_xlabel(f"{names[0]} [deg]")
    ax.set_ylabel(f"{names[1]} [deg]")
    return _save(fig, path)


def _history_series(history: Any) -> dict[str, np.ndarray]:
    """Per-epoch series from a dict of lists or a list of per-epoch dicts."""
    if isinstance(history, Mapping):
        series = {str(k): v for k, v in history.items() if isinstance(v, (list, tuple, np.ndarray))}
    else:
        epochs = list(history)
        keys = list(dict.fromkeys(k for e in epochs for k in e))
        series = {str(k): [e.get(k) for e in epochs] for k in keys}
    out = {}
    for k, v in series.items():
        arr = np.array([np.nan if x is None else x for x in v], dtype=object)
        try:
            out[k] = arr.astype(np.float64)
        except (TypeError, ValueError):
            continue
    return out


def plot_history(history: Any, path: str | os.PathLike[str]) -> Path:
    """Training and validation loss against epoch (and accuracy-like series in a second panel).
    ``history``: ``{"train_loss": [...], "val_loss": [...], ...}`` or ``[{"epoch": 1, "train_loss": ...}, ...]``."""
    series = _history_series(history)
    losses = {k: v for k, v in series.items() if "loss" in k}
    others = {k: v for k, v in series.items() if ("acc" in k or "f1" in k or "auc" in k) and k not in losses}
    if not losses:
        raise BadValueError(f"history has no loss series (keys: {sorted(series)})")
    n = max(len(v) for v in losses.values())
    epoch = series.get("epoch")
    if epoch is None or len(epoch) != n or np.isnan(epoch).any():
        epoch = np.arange(1, n + 1, dtype=np.float64)
    fig = _figure(6, 6.5 if others else 4)
    axes = fig.subplots(2 if others else 1, 1, sharex=True, squeeze=False)[:, 0]
    for k, v in losses.items():
        axes[0].plot(epoch[: len(v)], v, marker="o", ms=2, label=k)
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=8)
    if others:
        for k, v in others.items():
            axes[1].plot(epoch[: len(v)], v, marker="o", ms=2, label=k)
        axes[1].set_ylabel("score")
        axes[1].legend(fontsize=8)
    axes[-1].set_xlabel("epoch")
    return _save(fig, path)


# ---------------------------------------------------------------------- study B (MESCR) figures
def plot_one_to_one_density(
    y_true: Any,
    y_pred: Any,
    path: str | os.PathLike[str],
    unit: str = "",
    label: str = "",
    title: str = "",
    log: bool | None = None,
) -> Path:
    """MESCR Figure 4a: predicted against true value coloured by the density of objects (hexbin, log
    counts) with the 1:1 line dashed, and above it the histogram of the differences predicted - true.
    ``log``: logarithmic axes (default: when every value is positive and they span more than a decade, as
    radii of dwarfs and giants do)."""
    from matplotlib.colors import LogNorm

    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if len(t) != len(p) or not len(t):
        raise BadValueError(f"y_true has {len(t)} values and y_pred {len(p)}: give the same non-zero number")
    ok = np.isfinite(t) & np.isfinite(p)  # objects without the target (NaN: a galaxy has no stellar radius)
    t, p = t[ok], p[ok]
    if not len(t):
        raise BadValueError("no object has both a finite true and a finite predicted value")
    fig = _figure(5, 6.5)
    top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 3], "hspace": 0.3})
    res = p - t
    top.hist(res, bins=min(60, max(10, len(res) // 20)), color="#4c72b0", edgecolor="white")
    top.axvline(0, color="k", lw=1, ls="--")
    u = f" [{unit}]" if unit else ""
    top.set_xlabel(f"predicted - true{u}")
    top.set_ylabel("objects")
    top.set_title(title, fontsize=9)
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    if log is None:
        log = lo > 0 and hi / lo > 10
    if log:
        a, b = np.log10(lo) - 0.03, np.log10(hi) + 0.03
        hb = bottom.hexbin(t, p, gridsize=40, mincnt=1, cmap="viridis", xscale="log",
                           yscale="log", extent=(a, b, a, b))
        lo, hi = 10 ** a, 10 ** b
    else:
        pad = 0.03 * (hi - lo or 1.0)
        lo, hi = lo - pad, hi + pad
        hb = bottom.hexbin(t, p, gridsize=40, mincnt=1, cmap="viridis", extent=(lo, hi, lo, hi))
    counts = np.asarray(hb.get_array())
    if counts.size and counts.max() > 1:  # log colours (a LogNorm needs a range: not when every cell holds one)
        hb.set_norm(LogNorm(vmin=1, vmax=float(counts.max())))
    fig.colorbar(hb, ax=bottom, label="objects per cell")
    bottom.plot([lo, hi], [lo, hi], color="k", lw=1, ls="--")
    bottom.set_xlim(lo, hi)
    bottom.set_ylim(lo, hi)
    name = label or "value"
    bottom.set_xlabel(f"true {name}{u}")
    bottom.set_ylabel(f"predicted {name}{u}")
    return _save(fig, path)


def snr_bins(snr: Any, sigma_pred: Any, sigma_net: Any = None, n_bins: int = 8) -> list[dict[str, Any]]:
    """Per S/N interval (quantile edges of the finite ``snr``, at most ``n_bins``): the objects, the mean
    predicted 1-sigma ``sigma_pred`` and the mean ``sigma_net`` (the spread of the ensemble members' means;
    None without it). MESCR Figure 4b."""
    s = np.asarray(snr, dtype=np.float64).reshape(-1)
    sp = np.asarray(sigma_pred, dtype=np.float64).reshape(-1)
    sn = None if sigma_net is None else np.asarray(sigma_net, dtype=np.float64).reshape(-1)
    ok = np.isfinite(s) & np.isfinite(sp)
    if not ok.any():
        return []
    edges = np.unique(np.quantile(s[ok], np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        edges = np.array([s[ok].min(), s[ok].max() + 1e-12])
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(edges) - 2)
    out = []
    for b in range(len(edges) - 1):
        rows = ok & (which == b)
        if not rows.any():
            continue
        out.append({"snr_lo": float(edges[b]), "snr_hi": float(edges[b + 1]), "n": int(rows.sum()),
                    "snr_mean": float(np.mean(s[rows])), "sigma_pred": float(np.mean(sp[rows])),
                    "sigma_net": None if sn is None else float(np.nanmean(sn[rows]))})
    return out


def plot_sigma_vs_snr(bins: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], unit: str = "",
                      snr_name: str = "S/N", title: str = "") -> Path:
    """MESCR Figure 4b: the mean predicted 1-sigma (dots) and the mean sigma_net (line) per S/N interval
    (from :func:`snr_bins`), the interval drawn as a horizontal bar."""
    fig = _figure(5.5, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    x = np.array([b["snr_mean"] for b in bins])
    xerr = np.array([[b["snr_mean"] - b["snr_lo"] for b in bins], [b["snr_hi"] - b["snr_mean"] for b in bins]])
    ax.errorbar(x, [b["sigma_pred"] for b in bins], xerr=xerr, fmt="o", color="#4c72b0", capsize=2,
                label="sigma_pred (mean predicted 1-sigma)")
    if bins and all(b.get("sigma_net") is not None for b in bins):
        ax.plot(x, [b["sigma_net"] for b in bins], "-", color="#dd8452", label="sigma_net (spread of the members)")
    ax.set_xlabel(snr_name)
    ax.set_ylabel(f"uncertainty{f' [{unit}]' if unit else ''}")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_sweep(
    values: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    path: str | os.PathLike[str],
    xlabel: str,
    seconds: Sequence[float | None] | None = None,
    title: str = "",
    log_x: bool = False,
) -> Path:
    """A sweep's scores against its numeric values (MESCR Figure 5): one line per metric (``series``:
    name -> value per point, None where missing), and the training time per point in a second panel."""
    x = np.asarray(values, dtype=np.float64)
    panels = 2 if seconds is not None else 1
    fig = _figure(5.5, 2.8 * panels + 0.4)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    for name, ys in series.items():
        y = np.array([np.nan if v is None else float(v) for v in ys])
        axes[0].plot(x, y, "o-", label=name)
    axes[0].set_ylabel("score")
    axes[0].legend(fontsize=8)
    axes[0].set_title(title, fontsize=9)
    if seconds is not None:
        axes[1].plot(x, [np.nan if v is None else float(v) for v in seconds], "s-", color="grey")
        axes[1].set_ylabel("training time [s]")
    if log_x:
        axes[-1].set_xscale("log", base=2)
    axes[-1].set_xticks(x)
    axes[-1].set_xticklabels([f"{v:g}" for v in x])
    axes[-1].set_xlabel(xlabel)
    return _save(fig, path)


def plot_input_grid(
    images: Mapping[str, np.ndarray],
    labels: Any,
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    ids: Sequence[Any] | None = None,
) -> Path:
    """Example objects per class, each shown in every input: ``images`` maps an input name to display
    images (N, H, W, 3) in [0, 1] of the same N objects; one row per class, per object one column per input."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    names = list(images)
    k = len(class_names)
    per_class = max((int(np.sum(y == c)) for c in range(k)), default=0)
    if not names or per_class == 0:
        raise BadValueError("no images to show")
    cols = per_class * len(names)
    fig = _figure(1.3 * cols + 0.8, 1.45 * k + 0.3)
    axes = fig.subplots(k, cols, squeeze=False)
    for c in range(k):
        rows = np.flatnonzero(y == c)
        for j in range(per_class):
            for i, name in enumerate(names):
                ax = axes[c, j * len(names) + i]
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= len(rows):
                    ax.axis("off")
                    continue
                ax.imshow(np.clip(images[name][rows[j]], 0, 1), origin="lower")
                obj = f" #{ids[rows[j]]}" if ids is not None else ""
                ax.set_title(f"{name}{obj}", fontsize=6)
        axes[c, 0].set_ylabel(str(class_names[c]), fontsize=9)
    return _save(fig, path)


# ---------------------------------------------------------------------- study D (SFR) figures
def plot_heatmap(
    values: Any,
    path: str | os.PathLike[str],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    lo: Any = None,
    hi: Any = None,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    colour_label: str = "",
    fmt: str = ".3f",
) -> Path:
    """A two-axis sweep as a heat map: ``values`` (rows x columns, NaN where no cell ran) coloured, each
    square printing its value and, with ``lo`` / ``hi``, its 95 % interval ``[lo, hi]`` below it."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (len(row_labels), len(col_labels)):
        raise BadValueError(f"heat map values of shape {v.shape} for {len(row_labels)} rows and "
                            f"{len(col_labels)} columns")
    fig = _figure(1.6 + 1.35 * v.shape[1], 1.2 + 0.85 * v.shape[0])
    ax = fig.add_subplot()
    finite = v[np.isfinite(v)]
    im = ax.imshow(np.ma.masked_invalid(v), cmap="viridis", aspect="auto",
                   vmin=float(finite.min()) if finite.size else 0, vmax=float(finite.max()) if finite.size else 1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=colour_label)
    ax.set_xticks(range(v.shape[1]), [str(c) for c in col_labels])
    ax.set_yticks(range(v.shape[0]), [str(r) for r in row_labels])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    mid = float(np.mean(finite)) if finite.size else 0.0
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            if not np.isfinite(v[i, j]):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=7)
                continue
            text = f"{v[i, j]:{fmt}}"
            if lo is not None and hi is not None and np.isfinite(lo[i][j]) and np.isfinite(hi[i][j]):
                text += f"\n[{lo[i][j]:{fmt}}, {hi[i][j]:{fmt}}]"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="black" if v[i, j] >= mid else "white")
    return _save(fig, path)


def plot_median_spectra(
    wavelength: Any,
    medians: Sequence[Any],
    names: Sequence[str],
    path: str | os.PathLike[str],
    lines: Mapping[str, float] | None = None,
    xlabel: str = "wavelength [Å]",
    counts: Sequence[int] | None = None,
) -> Path:
    """One panel per group (e.g. a target bin): its median spectrum against ``wavelength`` (Angstrom), with
    the ``lines`` (name -> wavelength, in the same frame) marked by dashed verticals and named on top."""
    wl = np.asarray(wavelength, dtype=np.float64)
    k = len(medians)
    if k == 0 or k != len(names):
        raise BadValueError(f"{k} median spectra for {len(names)} names")
    fig = _figure(9, 1.0 + 1.8 * k)
    axes = fig.subplots(k, 1, sharex=True, squeeze=False)[:, 0]
    shown = {n: w for n, w in (lines or {}).items() if np.nanmin(wl) <= w <= np.nanmax(wl)}
    for i, (ax, med, name) in enumerate(zip(axes, medians, names, strict=True)):
        ax.plot(wl, np.asarray(med, dtype=np.float64), lw=0.7, color="#4c72b0")
        for w in shown.values():
            ax.axvline(w, color="#c44e52", lw=0.6, ls="--", alpha=0.7)
        n = f" ({counts[i]} objects)" if counts is not None else ""
        ax.set_title(f"{name}{n}", fontsize=9, loc="left")
        ax.set_ylabel("flux / median", fontsize=8)
    for lname, w in shown.items():
        axes[0].text(w, 1.02, lname.replace("_", " "), transform=axes[0].get_xaxis_transform(), rotation=90,
                     fontsize=6, ha="center", va="bottom", color="#c44e52")
    axes[-1].set_xlabel(xlabel)
    return _save(fig, path)


def plot_histograms(groups: Mapping[str, Any], path: str | os.PathLike[str], xlabel: str, title: str = "") -> Path:
    """Histograms of one quantity per group (step outlines on shared bins; the finite values only)."""
    vals = {g: np.asarray(v, dtype=np.float64)[np.isfinite(np.asarray(v, dtype=np.float64))] for g, v in groups.items()}
    vals = {g: v for g, v in vals.items() if len(v)}
    if not vals:
        raise BadValueError("no finite values to draw a histogram of")
    every = np.concatenate(list(vals.values()))
    edges = np.histogram_bin_edges(every, bins=min(40, max(8, len(every) // 15)))
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    colours = _class_colours(len(vals))
    for c, (g, v) in enumerate(vals.items()):
        ax.hist(v, bins=edges, histtype="step", lw=1.4, color=colours[c], label=f"{g} ({len(v)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("objects")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_box_groups(panels: Sequence[tuple[str, Mapping[str, Any]]], path: str | os.PathLike[str], ylabel: str) -> Path:
    """Box plots (median, quartiles, 1.5 IQR whiskers) of one quantity, one panel per grouping: ``panels`` is
    ``[(panel title, {group name: values})]``; each box is labelled with its count of finite values."""
    kept = []
    for title, groups in panels:
        g = {name: np.asarray(v, dtype=np.float64) for name, v in groups.items()}
        g = {name: v[np.isfinite(v)] for name, v in g.items()}
        g = {name: v for name, v in g.items() if len(v)}
        if g:
            kept.append((title, g))
    if not kept:
        raise BadValueError("no finite values to draw box plots of")
    fig = _figure(4.5 * len(kept), 4)
    axes = fig.subplots(1, len(kept), squeeze=False)[0]
    for ax, (title, g) in zip(axes, kept, strict=True):
        ax.boxplot(list(g.values()), showfliers=True, flierprops={"markersize": 2})
        ax.set_xticks(range(1, len(g) + 1), [f"{n}\n({len(v)})" for n, v in g.items()], fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel)
    return _save(fig, path)
