"""Evaluation: scores (:mod:`.metrics`), figures (:mod:`.plots`), Markdown/HTML reports (:mod:`.report`)
and the benchmark runner (:mod:`.benchmark`).

The figure module imports matplotlib, so it is loaded on first use: ``from astromodal.evaluation import plots``.
"""

from __future__ import annotations

from astromodal.evaluation.metrics import (
    best_threshold,
    classification_metrics,
    decide,
    markdown_table,
    regression_metrics,
    summarise_runs,
)
from astromodal.evaluation.report import Report

__all__ = [
    "Report",
    "best_threshold",
    "classification_metrics",
    "decide",
    "markdown_table",
    "regression_metrics",
    "summarise_runs",
]
