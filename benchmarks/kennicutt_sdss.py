"""Kennicutt (1998) star-formation rates of the real SDSS galaxy spectra (study D's physical check).

    python benchmarks/kennicutt_sdss.py [--data DIR] [--out benchmarks/results/kennicutt_sdss] [--min-snr 3]

Reads every ``spec-*.fits`` under ``$ASTROMODAL_DATA/sdss-spectra-images`` (default ``../shared/data``
beside the repository), computes SFR = 7.9e-42 L(Halpha) [erg/s] from the SPZLINE Halpha line flux and the
Planck18 luminosity distance (:func:`astromodal.analysis.sfr.kennicutt_table`), and writes
``OUT/kennicutt_sfr.csv`` (one row per galaxy spectrum; the QSO is listed in the README, not the table) and
``OUT/README.md`` (the command, the caveats, repeat observations of one object compared, and whether the
SDSS files carry an SFR of their own to compare with).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ASTROMODAL_DATA", REPO.parent / "shared" / "data"))
MATCH_ARCSEC = 3.0  # spectra within this of each other are one object's epochs


def sdss_sfr_columns(files: list[Path]) -> dict[str, list[str]]:
    """Columns whose name mentions SFR or star formation in any HDU of the files (file -> 'HDU.COLUMN')."""
    from astropy.io import fits

    found: dict[str, list[str]] = {}
    for f in files:
        with fits.open(f, memmap=True) as hdul:
            for h in hdul:
                cols = getattr(getattr(h, "columns", None), "names", None) or []
                hits = [f"{h.name}.{c}" for c in cols if "SFR" in c.upper() or "STARFORM" in c.upper()]
                hits += [f"{h.name}[{k}]" for k in h.header if "SFR" in k.upper()]
                if hits:
                    found[f.name] = hits
    return found


def group_objects(table: pd.DataFrame) -> np.ndarray:
    """An object number per row: rows within MATCH_ARCSEC on the sky are one object (friends of friends)."""
    from astropy.coordinates import SkyCoord

    c = SkyCoord(table["ra"].to_numpy(), table["dec"].to_numpy(), unit="deg")
    group = np.arange(len(table))
    for i in range(len(table)):
        near = np.flatnonzero(c[i].separation(c).arcsec < MATCH_ARCSEC)
        group[near] = group[near].min()
    _, number = np.unique(group, return_inverse=True)
    return number


def close_pairs(table: pd.DataFrame, max_arcsec: float = 60.0, max_kms: float = 500.0) -> list[str]:
    """README lines for pairs of objects closer than ``max_arcsec`` on the sky and ``max_kms`` in velocity."""
    from astropy.coordinates import SkyCoord

    objs = table.groupby("object").agg(ra=("ra", "first"), dec=("dec", "first"), z=("z", "mean"))
    c = SkyCoord(objs["ra"].to_numpy(), objs["dec"].to_numpy(), unit="deg")
    out = []
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            sep = c[i].separation(c[j]).arcsec
            dv = 299792.458 * abs(objs["z"].iloc[i] - objs["z"].iloc[j]) / (1 + objs["z"].iloc[[i, j]].mean())
            if sep < max_arcsec and dv < max_kms:
                out.append(f"Objects {objs.index[i]} and {objs.index[j]} lie {sep:.1f}\" apart with velocities "
                           f"{dv:.0f} km/s apart: two fibres on one galaxy or a close pair (not decided here), so "
                           "their SFRs are of different parts, not repeats.")
    return out


#: the marker's verb of this script's output folder
VERB = "benchmark kennicutt_sdss"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA / "sdss-spectra-images")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "kennicutt_sdss")
    ap.add_argument("--min-snr", type=float, default=3.0)
    ap.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run of this script")
    args = ap.parse_args(argv)

    from astromodal.analysis.sfr import kennicutt_table
    from astromodal.atomic import check_output_dir, claim_entries, write_text

    # a folder this script did not write (a user's README.md) is never written into
    check_output_dir(args.out, inputs=[args.data], overwrite=args.overwrite, verb=VERB, resume=True)
    args.out.mkdir(parents=True, exist_ok=True)
    claim_entries(args.out, VERB, ["kennicutt_sfr.csv", "README.md"])

    res = kennicutt_table(args.data, min_snr=args.min_snr)
    t = res.table.copy()
    files = [Path(f) for f in t["file"]]
    t["file"] = [str(f.relative_to(args.data)) for f in files]
    digest = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    first = {}
    t["duplicate_of"] = ""
    for i, d in enumerate(digest):
        if d in first:
            t.loc[i, "duplicate_of"] = t.loc[first[d], "file"]
        else:
            first[d] = i
    t.insert(2, "object", group_objects(t))
    csv = t.to_csv(index=False, float_format="%.6g")
    write_text(args.out / "kennicutt_sfr.csv", csv)

    unique = t[t["duplicate_of"] == ""]
    det = unique[unique["status"] == "detected"]
    lines = ["# Kennicutt SFR of the real SDSS galaxy spectra", "",
             f"Made by `python benchmarks/kennicutt_sdss.py --min-snr {args.min_snr:g}` "
             f"(data: `$ASTROMODAL_DATA/{args.data.name}`, {res.meta['n_files']} spec-*.fits files), "
             "`astromodal.analysis.sfr.kennicutt_table`.", "",
             f"- SFR = 7.9e-42 L(Halpha) [erg/s] (Kennicutt 1998, Salpeter IMF); L = 4 pi d_L^2 F with d_L from "
             f"astropy's {res.meta['cosmology']} at the pipeline redshift Z; F = SPZLINE LINEAREA of H_alpha "
             f"(1e-17 erg/s/cm2), detected when LINEAREA_ERR > 0 and S/N >= {args.min_snr:g}.",
             f"- {len(t)} galaxy spectra in `kennicutt_sfr.csv`; excluded: " + "; ".join(
                 f"`{Path(e['file']).relative_to(args.data)}` ({e['class']}, z = {e['z']:.3f}: Halpha does not "
                 "trace star formation in a quasar and lies far beyond the spectrum)" for e in res.excluded) + ".",
             "- Status per spectrum: " + ", ".join(f"{k} {v}" for k, v in t["status"].value_counts().items())
             + ". `outside_spectrum`: Halpha's observed wavelength 6564.6 (1 + z) A is beyond the spectrum's red "
               "end (z = 0.607: 10546 A > 10337 A), so no SFR is given, not a number.",
             ]
    dups = t[t["duplicate_of"] != ""]
    for _, r in dups.iterrows():
        lines.append(f"- `{r['file']}` is a byte-for-byte copy of `{r['duplicate_of']}` (kept in the table, "
                     "marked in `duplicate_of`; the statistics below leave it out).")
    lines += ["", "## Caveats", "",
              "- Aperture: the Halpha flux is what the fibre collected (3\" SDSS, 2\" BOSS; column "
              "`fibre_arcsec`), so every SFR here is the fibre's, a lower limit for the whole galaxy. MPA-JHU's "
              "total SFRs (study D's target) add an aperture correction from the photometry outside the fibre "
              "and are not comparable one to one.",
              "- Dust: `sfr` is not corrected. `sfr_dust` corrects it with the Balmer decrement (Hbeta S/N >= "
              f"{args.min_snr:g}; Calzetti et al. 2000 k', case B 2.86; no correction below 2.86). Stellar "
              "Balmer absorption is only handled as far as the pipeline's continuum model removes it.",
              "- The distance uses the redshift, so peculiar velocities (a few 100 km/s) move d_L of the "
              "z = 0.029 galaxies by a few per cent (SFR by twice that).", "",
              "## Objects and repeat observations", "",
              f"Spectra within {MATCH_ARCSEC:g}\" are one object (column `object`).", "",
              "| object | RA, Dec (deg) | z | spectra (detected) | log SFR [Msun/yr] mean | range (dex) | "
              "log SFR_dust mean |", "|---|---|---|---|---|---|---|"]
    for obj, g in unique.groupby("object"):
        d = g[g["status"] == "detected"]
        mean = f"{d['log_sfr'].mean():.3f}" if len(d) else "-"
        rng = f"{d['log_sfr'].max() - d['log_sfr'].min():.3f}" if len(d) > 1 else "-"
        dust = f"{d['log_sfr_dust'].mean():.3f}" if d["log_sfr_dust"].notna().any() else "-"
        lines.append(f"| {obj} | {g['ra'].iloc[0]:.4f}, {g['dec'].iloc[0]:.4f} | {g['z'].mean():.4f} | "
                     f"{len(g)} ({len(d)}) | {mean} | {rng} | {dust} |")
    lines.append("")
    lines += close_pairs(unique)
    lines += ["The range over repeat epochs measures how reproducible a fibre SFR is (pointing, seeing and flux "
              "calibration between pluggings).", "", "## Comparison with an SFR in the SDSS files", ""]
    carried = sdss_sfr_columns(files)
    if carried:
        lines.append("The files carry: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in carried.items()))
    else:
        lines.append("None of the files carries an SFR (searched every HDU's columns and headers for 'SFR'): "
                     "SPECOBJ / SPALL hold the classification and redshift, SPZLINE the line fits only. The "
                     "MPA-JHU catalogue, which would give one, is not among the shared data.")
    lines += ["", f"Detected galaxy spectra (no copies): {len(det)}; fibre SFR {det['sfr'].min():.3g}-"
              f"{det['sfr'].max():.3g} Msun/yr.", ""]
    write_text(args.out / "README.md", "\n".join(lines))
    print(t[["file", "z", "status", "halpha_snr", "sfr", "log_sfr", "sfr_dust"]].to_string(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    from astromodal.errors import AstromodalError

    try:
        raise SystemExit(main())
    except AstromodalError as exc:  # one line, never a traceback
        raise SystemExit(f"error: {exc}") from None
