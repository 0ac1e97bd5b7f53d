"""Study B's whole image path on a REAL SDSS field, with a model trained on the simulator.

    python benchmarks/real_frame_mescr.py --model runs/mescr_sim/models/sim__mescr__numeric=none__s0 \\
        --out runs/real_frame_mescr

The field is ``$ASTROMODAL_DATA/sdss-frame-5band`` (run 2820, camcol 3, field 122: five bz2 frames, each
band with its own WCS). The steps are the user's commands:

1. ``astromodal build cutouts --frames FIELD --size 64 --out OUT/cutouts.h5 --align subpixel``: sources
   detected on the r frame with photutils, aligned (5, 64, 64) ugriz cutouts with astropy ``Cutout2D`` from
   each band's WCS, each band shifted onto the centre; the same with whole pixels (``--align pixel``,
   ``OUT/cutouts_pixel.h5``) to measure what the shift buys: the offset of each band's centroid from the r
   band's on the brightest compact sources, and both Lupton grids;
2. the Lupton et al. (2004) gri / urz composites (Q = 8, stretch = 0.5) of the brightest sources with the
   region of interest the model reads (``roi`` of its ``rgb`` views), as a PNG grid;
3. ``astromodal predict MODEL OUT/cutouts.h5 --out OUT/predictions.parquet --layout heads``.

No labels exist for these sources (most are galaxies and faint stars, while the model knows A-M stars
only): the predictions are shown, not scored. One star of the field has three SDSS spectra
(RA 38.3018, Dec -0.1339); its spectroscopic class from those files is printed beside its prediction.
The model must read images only (the field has no Gaia astrometry): e.g. the ``numeric=none`` variant
of ``experiments/mescr_sim.yaml`` (``save_models: true`` there).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("ASTROMODAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
STAR = (38.3018, -0.1339)
#: the marker's verb of this script's output folder, and the entries it writes there
VERB = "benchmark real_frame_mescr"
OUTPUTS = ("cutouts.h5", "cutouts.h5.parts", "cutouts_pixel.h5", "cutouts_pixel.h5.parts", "lupton_gri_urz.png",
           "predictions.parquet", "predictions.parquet.parts", "summary.json")


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)


def lupton_grid(cutouts: dict[str, Path], model: Path, path: Path, n: int = 8) -> list[int]:
    """The gri / urz composites (with the model's ROI) of ``n`` detections evenly spaced in brightness rank
    among the brightest 5 n (the very brightest are saturated stars with bleed trails), one row each and
    one column per composite and cutout file (``{label: cutouts.h5}``, e.g. whole-pixel and subpixel
    alignment side by side: the same objects, by id)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astromodal.data.dataset import Dataset
    from astromodal.data.views import view_class

    rep = json.loads((model / "predictor.json").read_text())["representation"]["inputs"]
    names = [k for k, v in rep.items() if v.get("kind") == "rgb"]
    sets = {label: Dataset.load(f) for label, f in cutouts.items()}
    first = next(iter(sets.values()))
    common = set(np.asarray(first.ids.read()).tolist())
    for ds in sets.values():
        common &= set(np.asarray(ds.ids.read()).tolist())
    ids0 = np.asarray(first.ids.read())
    flux = np.asarray(first.columns["det_flux"].values.read())
    ranked = [i for i in np.argsort(-flux) if ids0[i] in common][: 5 * n]
    chosen = [int(ids0[ranked[k]]) for k in np.unique(np.linspace(0, len(ranked) - 1, n).round().astype(int))]
    columns = []  # (title, images of the chosen ids in order)
    for k in names:
        for label, ds in sets.items():
            where = {int(v): i for i, v in enumerate(np.asarray(ds.ids.read()).tolist())}
            sub = ds.subset(np.asarray([where[c] for c in chosen]))
            columns.append((f"{k} ({label})", view_class("rgb").model_validate(rep[k]).build(sub)))
    fig, axes = plt.subplots(len(chosen), len(columns), figsize=(1.7 * len(columns), 1.7 * len(chosen)),
                             squeeze=False)
    for j, oid in enumerate(chosen):
        for i, (title, images) in enumerate(columns):
            ax = axes[j, i]
            ax.imshow(np.clip(images[j].transpose(1, 2, 0), 0, 1), origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_title(title, fontsize=7)
            if i == 0:
                ax.set_ylabel(f"id {oid}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return chosen


def band_offsets(cutouts: Path, n: int = 40, radius: float = 4.0) -> dict[str, float]:
    """Median distance (pixels) of each band's light centroid from the r band's, within ``radius`` px of the
    centre, over the ``n`` brightest detections (each band's cutout median subtracted first)."""
    from astromodal.data.dataset import Dataset

    ds = Dataset.load(cutouts, lazy=False)
    im = ds.images["sdss"]
    flux = np.asarray(ds.columns["det_flux"].values.read())
    rows = np.argsort(-flux)[:n]
    pix = np.asarray(im.pixels)[rows].astype(np.float64)
    size = pix.shape[-1]
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2.0
    near = np.hypot(xx - c, yy - c) <= radius
    cents = np.zeros(pix.shape[:2] + (2,))
    for i in range(pix.shape[0]):
        for b in range(pix.shape[1]):
            img = np.clip(pix[i, b] - np.median(pix[i, b]), 0, None) * near
            tot = img.sum()
            cents[i, b] = ((img * xx).sum() / tot, (img * yy).sum() / tot) if tot > 0 else (np.nan, np.nan)
    r = list(im.bands).index("r")
    return {b: round(float(np.nanmedian(np.hypot(*(cents[:, k] - cents[:, r]).T))), 3)
            for k, b in enumerate(im.bands) if k != r}


def star_class() -> str:
    """The SDSS spectroscopic class of the field's one star with spectra (from its SPECOBJ / SPALL HDU)."""
    from astropy.io import fits

    out = []
    for f in sorted((DATA / "sdss-frame-5band").glob("spec-*.fits")):
        with fits.open(f) as h:
            t = h[2].data
            names = [c.upper() for c in t.columns.names]
            cls = str(t["CLASS"][0]).strip() if "CLASS" in names else "?"
            sub = str(t["SUBCLASS"][0]).strip() if "SUBCLASS" in names else "?"
            out.append(f"{f.stem}: {cls} {sub}")
    return "; ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="a saved image-only model folder (predictor.json)")
    ap.add_argument("--out", type=Path, required=True, help="a new folder for cutouts, grid and predictions")
    ap.add_argument("--grid", type=int, default=8, help="sources shown in the Lupton grid")
    ap.add_argument("--overwrite", action="store_true", help="replace the folder of an earlier run of this script")
    args = ap.parse_args()
    field = DATA / "sdss-frame-5band"
    if not field.is_dir():
        sys.exit(f"{field}: not found (set ASTROMODAL_DATA)")
    from astromodal.atomic import check_output_dir, claim_entries

    # a folder this script did not write is never written into (its own earlier run: --overwrite)
    check_output_dir(args.out, inputs=[field, args.model], overwrite=args.overwrite, verb=VERB)
    if args.overwrite and args.out.exists():
        import shutil

        shutil.rmtree(args.out)  # check_output_dir: only files this script wrote are in it
    args.out.mkdir(parents=True)
    claim_entries(args.out, VERB, OUTPUTS)
    cutouts, pred = args.out / "cutouts.h5", args.out / "predictions.parquet"
    whole = args.out / "cutouts_pixel.h5"
    run(["astromodal", "build", "cutouts", "--frames", str(field), "--size", "64", "--out", str(cutouts),
         "--align", "subpixel"])
    run(["astromodal", "build", "cutouts", "--frames", str(field), "--size", "64", "--out", str(whole),
         "--align", "pixel"])
    lupton_grid({"whole px": whole, "subpixel": cutouts}, args.model, args.out / "lupton_gri_urz.png", args.grid)
    offsets = {"subpixel": band_offsets(cutouts), "pixel": band_offsets(whole)}
    run(["astromodal", "predict", str(args.model), str(cutouts), "--out", str(pred), "--layout", "heads",
         "--keep", "det_flux"])
    import pandas as pd

    table = pd.read_parquet(pred)
    head = [c for c in table.columns if c.startswith("prob_")]
    label = next(c for c in table.columns if f"prob_{table[c].iloc[0]}" in head) if head else None
    d = np.hypot((table["ra"] - STAR[0]) * np.cos(np.radians(STAR[1])), table["dec"] - STAR[1]) * 3600
    k = int(np.argmin(d.to_numpy()))
    summary = {
        "sources_predicted": len(table),
        "median_band_centroid_offset_from_r_px": offsets,
        "predicted_classes": table[label].value_counts().to_dict() if label else {},
        "log_radius_quantiles_16_50_84": [float(q) for q in np.nanpercentile(table["log_radius"], [16, 50, 84])]
        if "log_radius" in table else None,
        "star_with_spectra": {"separation_arcsec": round(float(d.iloc[k]), 3),
                              "prediction": {c: (v.item() if hasattr(v, "item") else v)
                                             for c, v in table.iloc[k].items()},
                              "sdss_spectra": star_class()},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    from astromodal.errors import AstromodalError

    try:
        main()
    except AstromodalError as exc:  # one line, never a traceback
        raise SystemExit(f"error: {exc}") from None
