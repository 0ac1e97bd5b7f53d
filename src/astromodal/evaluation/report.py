"""A run report written twice from the same blocks: ``report.md`` (Markdown) and ``report.html``.

Collect headings, paragraphs, tables, figures, code (for example the exact command that reproduces
the run) and metric dictionaries, then :meth:`Report.write` a folder. The HTML page is one
self-contained file (inline CSS, no JavaScript, no extra dependency, every figure embedded as a base64
``data:`` URI), so ``report.html`` can be mailed alone; the Markdown links figures by paths relative to
the folder, so the folder can be moved or archived as a whole. All text is HTML-escaped; inside
paragraphs and table cells ``**bold**`` and ```code``` are the only Markdown rendered in HTML.

    rep = Report("Star/galaxy/QSO classification")
    rep.code("astromodal benchmark experiments/astrospectra_mnist.yaml")
    rep.table([{"model": "random_forest", "accuracy": 0.912}], ["model", "accuracy"])
    rep.image("figures/cm_random_forest.png", "Confusion matrix, rows = true class")
    md_path, html_path = rep.write("runs/quick")
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from astromodal.atomic import write_text
from astromodal.evaluation.metrics import format_cell, markdown_table

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1, h2, h3 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; }
code { font-family: Menlo, Consolas, monospace; font-size: .9em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
"""

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".svg": "image/svg+xml", ".webp": "image/webp"}


def _inline_html(text: str) -> str:
    """Escape text, then render ``**bold**`` and ```code``` spans."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


class Report:
    """An ordered list of blocks rendered to Markdown and HTML."""

    def __init__(self, title: str):
        self.title = str(title)
        self.blocks: list[tuple[str, Any]] = []

    # ------------------------------------------------------------------ blocks
    def heading(self, text: str, level: int = 2) -> Report:
        """A section heading; level 1 is the title level, 2..6 sections."""
        self.blocks.append(("heading", (str(text), min(max(int(level), 1), 6))))
        return self

    def paragraph(self, text: str) -> Report:
        self.blocks.append(("paragraph", str(text)))
        return self

    def table(self, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
              floatfmt: str = ".3f") -> Report:
        """A table of dict rows; ``columns`` default to every key in first-seen order."""
        rows = [dict(r) for r in rows]
        cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
        self.blocks.append(("table", (rows, cols, floatfmt)))
        return self

    def image(self, path: str | os.PathLike[str], caption: str = "") -> Report:
        """A figure; ``path`` should be relative to the report folder (absolute paths inside it are made relative)."""
        self.blocks.append(("image", (Path(path), str(caption))))
        return self

    def code(self, text: str) -> Report:
        """A verbatim block, for example the exact command that reproduces the run."""
        self.blocks.append(("code", str(text)))
        return self

    def metrics(self, values: dict[str, Any], floatfmt: str = ".4f") -> Report:
        """A metrics dictionary as tables: scalars in one (metric, value) table; a dict of dicts (such as
        ``per_class``) as its own table; a list of lists (such as ``confusion_matrix``) as a matrix."""
        scalars = [{"metric": k, "value": v} for k, v in values.items() if not isinstance(v, (dict, list, tuple))]
        if scalars:
            self.table(scalars, ["metric", "value"], floatfmt)
        for key, v in values.items():
            if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
                rows = [{key: name, **inner} for name, inner in v.items()]
                self.table(rows, None, floatfmt)
            elif isinstance(v, dict):
                self.table([{"metric": f"{key}.{k}", "value": x} for k, x in v.items()], ["metric", "value"], floatfmt)
            elif isinstance(v, (list, tuple)) and v and all(isinstance(r, (list, tuple)) for r in v):
                n = max(len(r) for r in v)
                rows = [{key: f"row {i}", **{str(j): x for j, x in enumerate(r)}} for i, r in enumerate(v)]
                self.table(rows, [key, *map(str, range(n))], floatfmt)
            elif isinstance(v, (list, tuple)):
                self.table([{"metric": key, "value": ", ".join(format_cell(x, floatfmt) for x in v)}],
                           ["metric", "value"])
        return self

    # ------------------------------------------------------------------ rendering
    def _link(self, path: Path, folder: Path | None) -> str:
        if path.is_absolute() and folder is not None:
            try:
                path = path.resolve().relative_to(folder.resolve())
            except ValueError:
                pass
        return quote(path.as_posix())

    def to_markdown(self, folder: Path | None = None) -> str:
        parts = [f"# {self.title}\n"]
        for kind, value in self.blocks:
            if kind == "heading":
                text, level = value
                parts.append(f"{'#' * level} {text}\n")
            elif kind == "paragraph":
                parts.append(value + "\n")
            elif kind == "table":
                rows, cols, floatfmt = value
                parts.append(markdown_table(rows, cols, floatfmt) if cols else "(empty table)\n")
            elif kind == "image":
                path, caption = value
                alt = caption.replace("[", "(").replace("]", ")")
                parts.append(f"![{alt}]({self._link(path, folder)})\n" + (f"\n*{caption}*\n" if caption else ""))
            elif kind == "code":
                fence = "````" if "```" in value else "```"
                parts.append(f"{fence}\n{value}\n{fence}\n")
        return "\n".join(parts)

    def _data_uri(self, path: Path, folder: Path | None) -> str | None:
        """The figure file as a base64 ``data:`` URI, or None when it cannot be read."""
        import base64

        file = path if path.is_absolute() or folder is None else Path(folder) / path
        mime = _MIME.get(file.suffix.lower())
        if mime is None:
            return None
        try:
            data = file.read_bytes()
        except OSError:
            return None
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    def to_html(self, folder: Path | None = None, embed: bool = True) -> str:
        """The HTML page; with ``embed`` every figure that can be read is embedded as a ``data:`` URI
        (a figure file that is missing keeps its relative link)."""
        esc = html.escape
        body = [f"<h1>{esc(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                text, level = value
                body.append(f"<h{level}>{esc(text)}</h{level}>")
            elif kind == "paragraph":
                body.append(f"<p>{_inline_html(value)}</p>")
            elif kind == "table":
                rows, cols, floatfmt = value
                head = "".join(f"<th>{esc(str(c))}</th>" for c in cols)
                lines = [
                    "<tr>" + "".join(f"<td>{_inline_html(format_cell(r.get(c), floatfmt, markdown=False))}</td>"
                                     for c in cols) + "</tr>"
                    for r in rows
                ]
                body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(lines)
                            + "\n</tbody>\n</table>")
            elif kind == "image":
                path, caption = value
                uri = self._data_uri(path, folder) if embed else None
                src = uri if uri is not None else esc(self._link(path, folder), quote=True)
                cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
                body.append(f'<figure><img src="{src}" alt="{esc(caption, quote=True)}">{cap}</figure>')
            elif kind == "code":
                body.append(f"<pre><code>{esc(value)}</code></pre>")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{esc(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body)
            + "\n</body>\n</html>\n"
        )

    def write(self, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``report.md`` and ``report.html`` into ``folder`` (created if needed), each atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        md_path, html_path = folder / "report.md", folder / "report.html"
        write_text(md_path, self.to_markdown(folder))
        write_text(html_path, self.to_html(folder))
        return md_path, html_path
