"""Helpers shared by the CLI verbs: the consoles and progress bars, defined in :mod:`astromodal.progress`
(atomic outputs: :mod:`astromodal.atomic`).

Results and tables go to stdout (:data:`out_console`), so ``astromodal models | grep cnn`` works;
progress, status and log lines go to stderr (:data:`console`).
"""

from __future__ import annotations

from astromodal.progress import console, out_console, progress, stage_ticker

__all__ = ["console", "out_console", "progress", "stage_ticker"]
