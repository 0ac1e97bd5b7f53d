"""astromodal.analysis: science analyses on catalogues and predictions.

* :mod:`astromodal.analysis.associations`: OB associations with DBSCAN on Galactic x, y, z or on the sky
  (:func:`find_associations`, :func:`galactic_xyz`, :func:`score_associations`, sky and x/y maps).
"""

from astromodal.analysis.associations import (
    AssociationResult,
    find_associations,
    galactic_lb,
    galactic_xyz,
    plot_sky_map,
    plot_xy_map,
    scan_associations,
    score_associations,
    truth_score,
)

__all__ = [
    "AssociationResult",
    "find_associations",
    "galactic_lb",
    "galactic_xyz",
    "plot_sky_map",
    "plot_xy_map",
    "scan_associations",
    "score_associations",
    "truth_score",
]
