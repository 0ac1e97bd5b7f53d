"""Copy the tables of a finished run into ``benchmarks/results/<name>/`` (text only, no figures).

    python benchmarks/publish_run.py runs/sdss_photometry benchmarks/results/sdss_photometry

Writes ``report.md`` (the run's report without its image lines: figures stay in the run folder, which is
not committed) and ``results.csv`` (one row per cell). The report keeps the exact command that made it.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path


def publish(run: Path, dest: Path, keep_figures: tuple[str, ...] = ()) -> None:
    report = run / "report.md"
    if not report.is_file():
        raise SystemExit(f"{run}: no report.md (is the run finished?)")
    dest.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    dropped: str | None = None  # the caption of a dropped figure follows it as "*caption*"
    for line in report.read_text().splitlines():
        m = re.match(r"!\[(.*)\]\((.+)\)", line.strip())
        if m:
            name = Path(m.group(2)).name
            if any(re.fullmatch(p, name) for p in keep_figures):
                shutil.copyfile(run / m.group(2), dest / name)
                lines.append(line.replace(m.group(2), name))
                dropped = None
            else:
                dropped = m.group(1)
            continue
        if dropped is not None and line.strip() == f"*{dropped}*":
            continue
        lines.append(line)
    # a heading left with no content (a figures-only section) goes too
    kept: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("#"):
            following = next((x for x in lines[i + 1:] if x.strip()), None)
            if following is None or following.startswith("#") and len(following) - len(following.lstrip("#")) <= len(line) - len(line.lstrip("#")):
                continue
        kept.append(line)
    lines = kept
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"
    (dest / "report.md").write_text(text)
    if (run / "results.csv").is_file():
        shutil.copyfile(run / "results.csv", dest / "results.csv")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished benchmark run folder (with report.md)")
    ap.add_argument("dest", type=Path, help="where to write, e.g. benchmarks/results/<name>")
    ap.add_argument("--figure", action="append", default=[], help="regex of a figure file name to keep (repeatable)")
    args = ap.parse_args()
    publish(args.run, args.dest, tuple(args.figure))


if __name__ == "__main__":
    main()
