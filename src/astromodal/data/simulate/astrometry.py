"""Positions, distances, OB associations and Gaia-like astrometry (parallax, proper motion and errors).

Model and simplifications:

* field stars fill a disc around the Sun: in-plane distance with p(d) ~ d up to a type-dependent limit
  (:data:`MAX_DISTANCE_PC`), height above the plane Laplace-distributed with a scale height of 60 pc (O/B),
  150 pc (A) or 300 pc (others); no spiral arms, no extinction, no Galactic rotation or solar motion:
  tangential velocities are isotropic Gaussians (15 km/s for O/B, 30 km/s for the others);
* galaxies and quasars are isotropic on the sky away from the plane (|b| > 15 deg) with zero true
  parallax and proper motion;
* OB associations: a fraction of the O/B stars are members of groups (>= 15 members each) with centres at
  1-3 kpc near the plane, Gaussian sizes of 10-50 pc (sigma per axis), a common space velocity
  (internal dispersion 2 km/s) and radial velocity (3 km/s);
* parallax = 1000 / d[pc] mas plus Gaussian noise; errors follow the Gaia end-of-mission law
  sigma = 1.3 sqrt(40 + 800 x + 30 x^2) micro-arcsec with x = 10^(0.4 (max(G, 13) - 15)) (0.02 mas at
  G < 13, 0.1 mas at G = 17, 0.8 mas at G = 20); proper-motion errors 1.05 and 0.95 times that per year;
* proper motion mu [mas/yr] = v_t [km/s] / (4.74047 d [kpc]), in Galactic (l, b) then rotated to ICRS.
"""

from __future__ import annotations

import numpy as np

K_PM = 4.74047  # km/s per (mas/yr * kpc)
MAX_DISTANCE_PC = {"O": 4000.0, "B": 3500.0, "A": 2500.0, "F": 2000.0, "G": 1500.0, "K": 1000.0, "M": 500.0}
GIANT_MAX_DISTANCE_PC = 4000.0


def lbd_to_xyz(l_deg: np.ndarray, b_deg: np.ndarray, d_pc: np.ndarray) -> np.ndarray:
    """Heliocentric Galactic Cartesian x, y, z (pc), shape (N, 3), from l, b (deg) and distance (pc)."""
    lr, br = np.radians(l_deg), np.radians(b_deg)
    return np.stack([d_pc * np.cos(br) * np.cos(lr), d_pc * np.cos(br) * np.sin(lr), d_pc * np.sin(br)], axis=1)


def xyz_to_lbd(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`lbd_to_xyz`: l in [0, 360), b (deg), distance (pc)."""
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    d = np.sqrt(x**2 + y**2 + z**2)
    return np.degrees(np.arctan2(y, x)) % 360.0, np.degrees(np.arcsin(z / d)), d


def disc_positions(rng: np.random.Generator, d_max: np.ndarray, scale_height: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """l, b (deg) and distance (pc) of stars in a uniform disc (radius ``d_max``) with exponential heights."""
    n = len(d_max)
    d_plane = np.sqrt(rng.uniform(30.0**2, d_max**2))
    height = rng.laplace(0.0, scale_height, n)
    l_deg = rng.uniform(0.0, 360.0, n)
    xyz = np.stack([d_plane * np.cos(np.radians(l_deg)), d_plane * np.sin(np.radians(l_deg)), height], axis=1)
    return xyz_to_lbd(xyz)


def extragalactic_positions(rng: np.random.Generator, n: int, b_min: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """l, b (deg) isotropic on the sky with |b| > ``b_min``."""
    sin_b = rng.uniform(np.sin(np.radians(b_min)), 1.0, n) * rng.choice([-1.0, 1.0], n)
    return rng.uniform(0.0, 360.0, n), np.degrees(np.arcsin(sin_b))


def place_associations(rng: np.random.Generator, candidates: np.ndarray, fraction: float, min_members: int = 15,
                       mean_members: int = 25) -> tuple[np.ndarray, list[dict]]:
    """Make groups of the stars at indices ``candidates``; returns per-candidate group id (-1 = field) and groups.

    Each group dict holds id, l, b, distance_pc, size_pc (Gaussian sigma per axis), the common velocity
    (v_l, v_b, rv in km/s) and its member count. Centres are drawn at least 300 pc apart.
    """
    group_of = np.full(len(candidates), -1, dtype=np.int64)
    n_members = int(np.floor(fraction * len(candidates)))
    n_groups = n_members // mean_members if n_members >= mean_members else int(n_members >= min_members)
    if n_groups == 0:
        return group_of, []
    counts = min_members + rng.multinomial(n_members - min_members * n_groups, np.ones(n_groups) / n_groups)
    chosen = rng.permutation(len(candidates))[:n_members]
    group_of[chosen] = np.repeat(np.arange(n_groups), counts)
    centres: list[np.ndarray] = []
    groups = []
    for gid in range(n_groups):  # a loop over groups (a handful), not over stars
        for _ in range(200):
            d = rng.uniform(1000.0, 3000.0)
            lc = rng.uniform(0.0, 360.0)
            xyz = lbd_to_xyz(np.array([lc]), np.array([0.0]), np.array([d]))[0]
            xyz[2] = rng.normal(0.0, 40.0)
            if all(np.linalg.norm(xyz - c) > 300.0 for c in centres):
                break
        centres.append(xyz)
        lc, bc, dc = (float(v[0]) for v in xyz_to_lbd(xyz[None, :]))
        groups.append({"id": gid, "l": lc, "b": bc, "distance_pc": dc, "size_pc": float(rng.uniform(10.0, 50.0)),
                       "v_l": float(rng.normal(0, 15)), "v_b": float(rng.normal(0, 15)),
                       "rv": float(rng.normal(0, 15)), "n_members": int(counts[gid])})
    return group_of, groups


def member_phase_space(rng: np.random.Generator, group_of: np.ndarray, groups: list[dict]) -> dict[str, np.ndarray]:
    """l, b, distance, v_l, v_b, rv of association members (rows where ``group_of`` >= 0)."""
    gid = group_of[group_of >= 0]
    table = {k: np.array([g[k] for g in groups]) for k in ("l", "b", "distance_pc", "size_pc", "v_l", "v_b", "rv")}
    centre = lbd_to_xyz(table["l"], table["b"], table["distance_pc"])[gid]
    xyz = centre + rng.standard_normal((len(gid), 3)) * table["size_pc"][gid][:, None]
    l_deg, b_deg, d = xyz_to_lbd(xyz)
    return {
        "l": l_deg, "b": b_deg, "distance": d,
        "v_l": table["v_l"][gid] + rng.normal(0.0, 2.0, len(gid)),
        "v_b": table["v_b"][gid] + rng.normal(0.0, 2.0, len(gid)),
        "rv": table["rv"][gid] + rng.normal(0.0, 3.0, len(gid)),
    }


def parallax_error_mas(g_mag: np.ndarray) -> np.ndarray:
    """Gaia-like parallax error (mas) against G magnitude (see module docstring)."""
    x = 10 ** (0.4 * (np.maximum(g_mag, 13.0) - 15.0))
    return 1.3 * np.sqrt(40.0 + 800.0 * x + 30.0 * x**2) / 1000.0


def proper_motion_galactic(v_l: np.ndarray, v_b: np.ndarray, d_pc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mu_l* and mu_b (mas/yr) of tangential velocities (km/s) at distance d (pc): mu = v_t / (4.74047 d_kpc)."""
    d_kpc = np.asarray(d_pc) / 1000.0
    return v_l / (K_PM * d_kpc), v_b / (K_PM * d_kpc)


def galactic_to_icrs(l_deg: np.ndarray, b_deg: np.ndarray, pm_l: np.ndarray | None = None,
                     pm_b: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """ra, dec (deg) and, with proper motions given, pmra (mu_alpha*) and pmdec (mas/yr), via astropy."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    if pm_l is None:
        c = SkyCoord(l=l_deg * u.deg, b=b_deg * u.deg, frame="galactic").icrs
        return c.ra.deg, c.dec.deg
    c = SkyCoord(l=l_deg * u.deg, b=b_deg * u.deg, pm_l_cosb=pm_l * u.mas / u.yr, pm_b=pm_b * u.mas / u.yr,
                 frame="galactic").icrs
    return c.ra.deg, c.dec.deg, c.pm_ra_cosdec.to_value(u.mas / u.yr), c.pm_dec.to_value(u.mas / u.yr)


def observe_astrometry(rng: np.random.Generator, distance_pc: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray,
                       g_mag: np.ndarray) -> dict[str, np.ndarray]:
    """Catalogue astrometry: noisy parallax (true 1000 / d; 0 where d is infinite) and proper motions."""
    n = len(distance_pc)
    sig = parallax_error_mas(g_mag)
    true_plx = np.where(np.isfinite(distance_pc), 1000.0 / distance_pc, 0.0)
    plx = true_plx + rng.standard_normal(n) * sig
    out = {
        "parallax": plx, "parallax_error": sig,
        "pmra": pmra + rng.standard_normal(n) * 1.05 * sig, "pmra_error": 1.05 * sig,
        "pmdec": pmdec + rng.standard_normal(n) * 0.95 * sig, "pmdec_error": 0.95 * sig,
    }
    out["parallax_over_error"] = plx / sig
    return out


# ---------------------------------------------------------------- the Galaxy: structure, dust, kinematics
#: Sun's Galactocentric distance and height above the plane (pc), Juric et al. (2008)
R_SUN_PC, Z_SUN_PC = 8000.0, 25.0
#: Juric et al. (2008) number-density model (their "bright" fit): thin disc scale height / length (pc), thick disc
#: ones and local normalisation relative to the thin disc, halo normalisation, axis ratio and power-law index
THIN_DISC = (300.0, 2600.0)
THICK_DISC = (900.0, 3600.0, 0.12)
HALO = (0.0051, 0.64, 2.77)
#: scale height (pc) of the young (O/B) thin disc
YOUNG_DISC_HEIGHT = 60.0
POPULATIONS = ("thin_disc", "thick_disc", "halo")
#: heliocentric velocity ellipsoid (sigma_U, sigma_V, sigma_W in km/s) and asymmetric drift (km/s) of each
#: population, Bensby et al. (2003); the young disc is colder (Dehnen & Binney 1998, blue stars)
VELOCITY_ELLIPSOIDS = {"young_disc": ((20.0, 12.0, 8.0), -5.0), "thin_disc": ((35.0, 20.0, 16.0), -15.0),
                       "thick_disc": ((67.0, 38.0, 35.0), -46.0), "halo": ((160.0, 90.0, 90.0), -220.0)}
#: circular speed (km/s, IAU) and the solar motion (U, V, W) relative to the LSR (Schoenrich et al. 2010)
V_CIRC = 220.0
SOLAR_MOTION = (11.1, 12.24, 7.25)
#: dust layer: exponential scale height (pc, Drimmel & Spergel 2001) and reddening towards the Galactic poles
#: (E(B-V) ~ 0.02 mag at |b| = 90 deg in the Schlegel et al. 1998 maps), so the mid-plane reddening per unit
#: length is E_POLE / DUST_HEIGHT (0.15 mag/kpc, A_V 0.46 mag/kpc); patchiness: log-normal, 0.2 dex per sightline
DUST_HEIGHT_PC = 134.0
EBV_POLE = 0.02
DUST_PATCHINESS_DEX = 0.2


def galactocentric(l_deg: np.ndarray, b_deg: np.ndarray, d_pc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Galactocentric cylindrical radius R and height Z (pc) of points at (l, b, d); broadcasts."""
    lr, br = np.radians(l_deg), np.radians(b_deg)
    d_cos_b = d_pc * np.cos(br)
    x = d_cos_b * np.cos(lr) - R_SUN_PC
    y = d_cos_b * np.sin(lr)
    return np.sqrt(x**2 + y**2), d_pc * np.sin(br) + Z_SUN_PC


def population_densities(R: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Number densities (..., 3) of the thin disc, thick disc and halo relative to the local thin disc
    (Juric et al. 2008): rho_D = exp((R_sun - R) / L - |Z| / H), halo f_h (R_sun / sqrt(R^2 + (Z/q)^2))^n_h
    (softened within 1 kpc of the centre)."""
    return np.stack(_components(R, Z), axis=-1)


def total_density(R: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """The sum of :func:`population_densities` over the three components (the same values as
    ``population_densities(R, Z).sum(axis=-1)``, without the (..., 3) array)."""
    thin, thick, halo = _components(R, Z)
    thin += thick
    thin += halo
    return thin


def _components(R: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h1, l1 = THIN_DISC
    h2, l2, f2 = THICK_DISC
    fh, qh, nh = HALO
    dr, az = R_SUN_PC - R, np.abs(Z)
    thin = np.exp(dr / l1 - az / h1)
    thick = f2 * np.exp(dr / l2 - az / h2)
    r_h = np.maximum(np.sqrt(R**2 + (Z / qh) ** 2), 1000.0)
    halo = fh * (R_SUN_PC / r_h) ** nh
    return thin, thick, halo


def young_disc_density(R: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Density of the young (O/B) thin disc relative to its local value: the thin-disc length, 60 pc height."""
    return np.exp((R_SUN_PC - R) / THIN_DISC[1] - np.abs(Z) / YOUNG_DISC_HEIGHT)


def reddening_ebv(l_deg: np.ndarray, b_deg: np.ndarray, d_pc: np.ndarray, patch: np.ndarray | float = 1.0
                  ) -> np.ndarray:
    """E(B - V) to distance d along (l, b) through an exponential dust layer (height DUST_HEIGHT_PC):
    E = (E_pole / h) * h (1 - exp(-d |sin b| / h)) / |sin b| (-> E_pole d / h in the plane), times ``patch``."""
    sin_b = np.abs(np.sin(np.radians(b_deg)))
    h = DUST_HEIGHT_PC
    s = np.maximum(sin_b, 1e-6)
    path = np.where(sin_b * d_pc / h < 1e-6, d_pc, -np.expm1(-d_pc * s / h) * h / s)
    return EBV_POLE / h * path * patch


def survey_sightlines(rng: np.random.Generator, n: int, b_min: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` directions (l, b in deg) isotropic on the sky with |b| > ``b_min``."""
    return extragalactic_positions(rng, n, b_min)


def heliocentric_velocities(rng: np.random.Generator, l_deg: np.ndarray, b_deg: np.ndarray, d_pc: np.ndarray,
                            population: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radial velocity and tangential velocities (v_l, v_b) in km/s relative to the Sun from Galactic kinematics.

    Each star moves on the flat rotation curve (V_CIRC) minus its population's asymmetric drift, plus a Gaussian
    velocity ellipsoid (sigma_R, sigma_phi, sigma_z = sigma_U, sigma_V, sigma_W of :data:`VELOCITY_ELLIPSOIDS`,
    aligned with the Galactocentric cylinder); the Sun moves at V_CIRC plus the solar motion. ``population``
    indexes ("young_disc", *POPULATIONS).
    """
    names = ("young_disc", *POPULATIONS)
    sig = np.array([VELOCITY_ELLIPSOIDS[k][0] for k in names])[population]
    drift = np.array([VELOCITY_ELLIPSOIDS[k][1] for k in names])[population]
    lr, br = np.radians(l_deg), np.radians(b_deg)
    x = d_pc * np.cos(br) * np.cos(lr) - R_SUN_PC
    y = d_pc * np.cos(br) * np.sin(lr)
    R = np.maximum(np.hypot(x, y), 1.0)
    e_r = np.stack([x / R, y / R], axis=1)
    e_phi = np.stack([y / R, -x / R], axis=1)  # the rotation sense: +y (towards l = 90 deg) at the Sun
    n = len(d_pc)
    v_r, v_phi, v_z = (rng.standard_normal(n) * sig[:, k] for k in range(3))
    v_phi = v_phi + V_CIRC + drift
    v = e_r * v_r[:, None] + e_phi * v_phi[:, None]
    u_sun, v_sun, w_sun = SOLAR_MOTION
    dv = np.stack([v[:, 0] - u_sun, v[:, 1] - (V_CIRC + v_sun), v_z - w_sun], axis=1)
    los = np.stack([np.cos(br) * np.cos(lr), np.cos(br) * np.sin(lr), np.sin(br)], axis=1)
    e_l = np.stack([-np.sin(lr), np.cos(lr), np.zeros(n)], axis=1)
    e_b = np.stack([-np.sin(br) * np.cos(lr), -np.sin(br) * np.sin(lr), np.cos(br)], axis=1)
    return np.sum(dv * los, axis=1), np.sum(dv * e_l, axis=1), np.sum(dv * e_b, axis=1)
