"""The JSON results file of a benchmark script (``--out`` / ``--json``): checked before any work, written atomically.

A JSON file carries no astromodal marker of its own, so the file records its writer: ``{"written_by": "<script>",
...}``. An existing file is replaced only when that script wrote it and ``--overwrite`` is given; anything
else at that path (a user's file, another script's results) is refused with one line, before any work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def check_results_file(path: str | Path | None, script: str, overwrite: bool = False) -> Path | None:
    """``path`` if the script may write it (absent, or its own earlier results with ``overwrite``); else one line,
    exit status 1."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise SystemExit(f"{path} is a folder; a results file is expected: choose another path")
    if path.exists() or path.is_symlink():
        try:
            ours = json.loads(path.read_text()).get("written_by") == script
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise SystemExit(f"{path} exists and was not written by {script}; it is never replaced: choose another path")
        if not overwrite:
            raise SystemExit(f"{path} holds an earlier run of {script}; pass --overwrite to replace it")
    return path


def write_results_file(path: Path | None, script: str, payload: dict[str, Any]) -> None:
    """Write ``{"written_by": script, **payload}`` to ``path`` atomically (nothing when ``path`` is None)."""
    if path is None:
        return
    from astromodal.atomic import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"written_by": script, **payload})
