"""Star-formation rates from the Halpha line of SDSS spectra (Kennicutt 1998), study D's physical check.

    SFR [Msun/yr] = 7.9e-42 L(Halpha) [erg/s]      (Kennicutt 1998, ARA&A 36, 189; Salpeter IMF 0.1-100 Msun)
    L(Halpha)     = 4 pi d_L(z)^2 F(Halpha)         (d_L from an astropy cosmology; Planck18 by default)

F is the SPZLINE HDU's Gaussian line area ``LINEAREA`` of ``LINENAME == 'H_alpha'`` (1e-17 erg/s/cm2)
with its error ``LINEAREA_ERR``; the SDSS pipeline (idlspec2d) writes ``LINEAREA_ERR`` = -1 where a line
was not fitted (e.g. quasars) and -2 where it lies outside the spectrum. The Kennicutt constant is the
simulator's (:data:`astromodal.data.simulate.galaxies.KENNICUTT_HALPHA`, one definition), so simulated
line fluxes and these real ones follow the same calibration. Quantities carry astropy units throughout.

Each spectrum gets a ``status``:

* ``detected``: LINEAREA_ERR > 0 and S/N = LINEAREA / LINEAREA_ERR >= ``min_snr`` (3): L, SFR, log SFR;
* ``low_snr``: fitted but S/N < ``min_snr``: no SFR, a 3-sigma upper limit ``sfr_3sigma_limit`` instead;
* ``outside_spectrum``: Halpha's observed wavelength LINEWAVE (1 + z) (vacuum) is beyond the spectrum's
  wavelength range (above z ~ 0.40 for SDSS-I/II, red end ~ 9200 A; ~ 0.58 for BOSS, ~ 10400 A):
  reported as such, no number;
* ``not_measured``: no H_alpha row, or LINEAREA_ERR <= 0 although the line is in range.

Aperture: the SDSS fibre is 3" across (2" for BOSS); the line flux, and so the SFR, is the fibre's,
a LOWER LIMIT for the whole galaxy (MPA-JHU's total SFRs add an aperture correction from the photometry
outside the fibre). Dust: ``sfr`` is not corrected. ``sfr_dust`` corrects it with the Balmer decrement
where Halpha and Hbeta both have S/N >= ``min_snr``: E(B-V)_gas = 2.5 / (k(Hbeta) - k(Halpha))
log10((F(Halpha) / F(Hbeta)) / 2.86) (case B, T = 10^4 K), A(Halpha) = k(Halpha) E(B-V)_gas with the
Calzetti et al. (2000) curve k' (R'_V = 4.05; :func:`astromodal.data.simulate.physics.calzetti_k`, the
curve the simulator attenuates with), set to 0 when the decrement is below 2.86 (within the noise);
SFR_dust = SFR 10^(0.4 A(Halpha)). Stellar Balmer absorption under the lines is not corrected here
(LINEAREA is fitted above the pipeline's continuum model, which includes it to first order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import pandas as pd

from astromodal.data.simulate.galaxies import HALPHA_HBETA, KENNICUTT_HALPHA
from astromodal.data.simulate.physics import calzetti_k
from astromodal.errors import DataFormatError

#: Kennicutt (1998): SFR per unit Halpha luminosity, Salpeter IMF
KENNICUTT = KENNICUTT_HALPHA * u.Msun / u.yr / (u.erg / u.s)
#: the unit of SPZLINE's LINEAREA
SPZLINE_FLUX_UNIT = 1e-17 * u.erg / u.s / u.cm**2
#: vacuum rest wavelengths (Angstrom) used when a file lacks LINEWAVE
REST_WAVE = {"H_alpha": 6564.61, "H_beta": 4862.68}
#: the fibre diameter (arcsec) of the two SDSS spectrographs
FIBRE_ARCSEC = {"SDSS": 3.0, "BOSS": 2.0}
APERTURE_CAVEAT = ("fibre SFR: the Halpha flux is what the 3\" (SDSS) or 2\" (BOSS) fibre collected, so the SFR is "
                   "a lower limit for the whole galaxy (no aperture correction)")


def cosmology_name(cosmology: Any) -> str:
    """A cosmology's name with its H0 and Om0, for reports."""
    name = getattr(cosmology, "name", None) or type(cosmology).__name__
    return f"{name} (H0 = {cosmology.H0.value:.2f} km/s/Mpc, Om0 = {cosmology.Om0:.5f})"


def _default_cosmology(cosmology: Any) -> Any:
    if cosmology is not None:
        return cosmology
    from astropy.cosmology import Planck18

    return Planck18


def line_luminosity(flux: u.Quantity, z: float | np.ndarray, cosmology: Any = None) -> u.Quantity:
    """L = 4 pi d_L(z)^2 F in erg/s; ``flux`` a Quantity (erg/s/cm2 or equivalent), ``cosmology`` an astropy
    cosmology (default Planck18)."""
    d_l = _default_cosmology(cosmology).luminosity_distance(z)
    return (4.0 * np.pi * d_l**2 * flux).to(u.erg / u.s)


def kennicutt_sfr(luminosity: u.Quantity) -> u.Quantity:
    """SFR = 7.9e-42 L(Halpha) [erg/s] in Msun/yr (Kennicutt 1998, Salpeter IMF)."""
    return (KENNICUTT * luminosity).to(u.Msun / u.yr)


def balmer_attenuation(halpha: float, hbeta: float, halpha_wave: float = REST_WAVE["H_alpha"],
                       hbeta_wave: float = REST_WAVE["H_beta"]) -> float:
    """A(Halpha) in mag from the observed Balmer decrement F(Halpha) / F(Hbeta) (any common flux unit):
    k(Ha) 2.5 / (k(Hb) - k(Ha)) log10(ratio / 2.86), Calzetti et al. (2000) k', rest wavelengths in
    Angstrom; 0 for a decrement at or below the case-B 2.86; NaN unless both fluxes are positive."""
    if not (halpha > 0 and hbeta > 0):
        return float("nan")
    k_ha, k_hb = float(calzetti_k(halpha_wave)), float(calzetti_k(hbeta_wave))
    ratio = halpha / hbeta
    if ratio <= HALPHA_HBETA:
        return 0.0
    return k_ha * 2.5 / (k_hb - k_ha) * math.log10(ratio / HALPHA_HBETA)


def _lines(hdul: Any, path: Path) -> dict[str, dict[str, float]]:
    names = [h.name for h in hdul]
    if "SPZLINE" not in names:
        raise DataFormatError(f"{path}: no SPZLINE HDU with the emission-line fits (HDUs: {names})")
    table = hdul["SPZLINE"].data
    cols = {c.upper(): c for c in table.columns.names}
    for need in ("LINENAME", "LINEAREA", "LINEAREA_ERR"):
        if need not in cols:
            raise DataFormatError(f"{path}: SPZLINE has no column {need} (columns: {list(table.columns.names)})")
    out = {}
    for row in table:
        name = str(row[cols["LINENAME"]]).strip()
        if name in REST_WAVE:
            out[name] = {"area": float(row[cols["LINEAREA"]]), "err": float(row[cols["LINEAREA_ERR"]]),
                         "wave": float(row[cols["LINEWAVE"]]) if "LINEWAVE" in cols else REST_WAVE[name]}
    return out


def read_spectrum_lines(path: str | Path) -> dict[str, Any]:
    """One spec-*.fits file: id, class, z, ra, dec, survey, wavelength range (Angstrom) and the H_alpha /
    H_beta SPZLINE fits (``area``, ``err`` in 1e-17 erg/s/cm2, ``wave`` the vacuum rest wavelength)."""
    from astromodal.data.readers.sdss import read_spectrum_file

    path = Path(path)
    rec = read_spectrum_file(path, "none")  # COADD, SPECOBJ / SPALL checked there, one line per problem
    from astromodal.data.readers.lamost import open_fits

    with open_fits(path) as hdul:
        lines = _lines(hdul, path)
        info = hdul["SPALL"] if "SPALL" in [h.name for h in hdul] else None
    return {"file": path, "id": rec["id"], "class": rec["class"], "z": rec["z"], "ra": rec["ra"],
            "dec": rec["dec"], "survey": "BOSS" if info is not None else "SDSS",
            "wave_min": float(np.min(rec["wave"])), "wave_max": float(np.max(rec["wave"])), "lines": lines}


@dataclass
class KennicuttResult:
    """``table``: one row per spectrum of the kept classes; ``excluded``: (file, class, z, reason) of the
    others; ``meta``: cosmology, constant, thresholds, caveats."""

    table: pd.DataFrame
    excluded: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _row(spec: dict[str, Any], cosmology: Any, min_snr: float) -> dict[str, Any]:
    z = spec["z"]
    ha = spec["lines"].get("H_alpha")
    hb = spec["lines"].get("H_beta")
    wave = ha["wave"] if ha else REST_WAVE["H_alpha"]
    observed = wave * (1.0 + z)
    row: dict[str, Any] = {"halpha_obs_wave": observed, "halpha_flux": np.nan, "halpha_flux_err": np.nan,
                           "halpha_snr": np.nan, "d_l_mpc": np.nan, "l_halpha": np.nan, "sfr": np.nan,
                           "log_sfr": np.nan, "sfr_3sigma_limit": np.nan, "hbeta_flux": np.nan, "hbeta_snr": np.nan,
                           "balmer_decrement": np.nan, "a_halpha": np.nan, "sfr_dust": np.nan, "log_sfr_dust": np.nan}
    d_l = _default_cosmology(cosmology).luminosity_distance(z)
    row["d_l_mpc"] = float(d_l.to_value(u.Mpc))
    if not (spec["wave_min"] <= observed <= spec["wave_max"]):
        row["status"] = "outside_spectrum"
        return row
    if ha is None or not ha["err"] > 0:
        row["status"] = "not_measured"
        return row
    row["halpha_flux"], row["halpha_flux_err"] = ha["area"], ha["err"]
    row["halpha_snr"] = ha["area"] / ha["err"]
    if row["halpha_snr"] < min_snr:
        row["status"] = "low_snr"
        limit = kennicutt_sfr(line_luminosity(3.0 * ha["err"] * SPZLINE_FLUX_UNIT, z, cosmology))
        row["sfr_3sigma_limit"] = float(limit.to_value(u.Msun / u.yr))
        return row
    row["status"] = "detected"
    lum = line_luminosity(ha["area"] * SPZLINE_FLUX_UNIT, z, cosmology)
    sfr = kennicutt_sfr(lum).to_value(u.Msun / u.yr)
    row.update(l_halpha=float(lum.to_value(u.erg / u.s)), sfr=float(sfr), log_sfr=float(np.log10(sfr)))
    if hb is not None and hb["err"] > 0:
        row["hbeta_flux"], row["hbeta_snr"] = hb["area"], hb["area"] / hb["err"]
        if row["hbeta_snr"] >= min_snr:
            row["balmer_decrement"] = ha["area"] / hb["area"]
            a_ha = balmer_attenuation(ha["area"], hb["area"], ha["wave"], hb["wave"])
            row["a_halpha"] = a_ha
            row["sfr_dust"] = float(sfr * 10 ** (0.4 * a_ha))
            row["log_sfr_dust"] = float(np.log10(row["sfr_dust"]))
    return row


def kennicutt_table(paths: str | Path | Sequence[str | Path], cosmology: Any = None, min_snr: float = 3.0,
                    classes: Sequence[str] = ("GALAXY",)) -> KennicuttResult:
    """The Kennicutt SFR of every spectrum of ``classes`` among ``paths`` (spec-*.fits files, a folder
    searched recursively, or a glob). Columns: file, id, class, z, ra, dec, survey, fibre_arcsec,
    halpha_obs_wave (Angstrom), halpha_flux, halpha_flux_err (1e-17 erg/s/cm2), halpha_snr, status,
    d_l_mpc, l_halpha (erg/s), sfr (Msun/yr, fibre, no dust correction), log_sfr, sfr_3sigma_limit,
    hbeta_flux, hbeta_snr, balmer_decrement, a_halpha (mag), sfr_dust, log_sfr_dust. Spectra of other
    classes (quasars: Halpha is not a star-formation tracer there) go to ``excluded``."""
    from astromodal.data.readers.lamost import _as_files

    cosmology = _default_cosmology(cosmology)
    files = _as_files(paths)
    if isinstance(paths, (str, Path)):  # a folder or glob: its spec-*.fits files only
        files = [p for p in files if p.name.startswith("spec-")]
        if not files:
            raise DataFormatError(f"{paths}: no spec-*.fits file")
    rows, excluded = [], []
    for f in files:
        spec = read_spectrum_lines(f)
        if spec["class"] not in classes:
            excluded.append({"file": str(f), "id": spec["id"], "class": spec["class"], "z": spec["z"],
                             "reason": f"class {spec['class']} is not one of {list(classes)}"})
            continue
        rows.append({"file": str(f), "id": spec["id"], "class": spec["class"], "z": spec["z"], "ra": spec["ra"],
                     "dec": spec["dec"], "survey": spec["survey"], "fibre_arcsec": FIBRE_ARCSEC[spec["survey"]],
                     **_row(spec, cosmology, min_snr)})
    order = ["file", "id", "class", "z", "ra", "dec", "survey", "fibre_arcsec", "halpha_obs_wave", "halpha_flux",
             "halpha_flux_err", "halpha_snr", "status", "d_l_mpc", "l_halpha", "sfr", "log_sfr", "sfr_3sigma_limit",
             "hbeta_flux", "hbeta_snr", "balmer_decrement", "a_halpha", "sfr_dust", "log_sfr_dust"]
    table = pd.DataFrame(rows, columns=order)
    meta = {"cosmology": cosmology_name(cosmology), "kennicutt": f"SFR = {KENNICUTT_HALPHA:g} L(Halpha) [erg/s], "
            "Salpeter IMF (Kennicutt 1998)", "min_snr": min_snr, "flux_unit": "1e-17 erg/s/cm2",
            "dust": "sfr: none; sfr_dust: Balmer decrement, Calzetti et al. (2000) k', case B 2.86",
            "aperture": APERTURE_CAVEAT, "n_files": len(files), "n_kept": len(table), "n_excluded": len(excluded)}
    return KennicuttResult(table, excluded, meta)


__all__ = ["APERTURE_CAVEAT", "KENNICUTT", "KennicuttResult", "SPZLINE_FLUX_UNIT", "balmer_attenuation",
           "cosmology_name", "kennicutt_sfr", "kennicutt_table", "line_luminosity", "read_spectrum_lines"]
