"""The report page: sections collected as HTML and Markdown side by side, written as one folder.

`Page` holds headings, paragraphs, tables, figures and data files (the decision table as JSON
and CSV). A table wider than the page is cut into consecutive tables of at most PAGE_CHARS
characters of cell text, each repeating the first column, so no table scrolls sideways in the
HTML or runs off a Markdown viewer; a long cell wraps in the HTML. It knows nothing of studies
(report_sections fills it).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from xlir import storage
from xlir.errors import XlirError

PAGE_CHARS = 140  # cell characters per row: about the 1100 px column at .85rem
WRAP_CHARS = 40   # a longer cell wraps in the HTML (and counts as this wide)
DATA_FILES = ("decision.json", "decision.csv", "interaction.csv", "swap.csv")  # what else a report holds

CSS = """body{font-family:system-ui,sans-serif;color:#222;background:#fafafa;margin:0}
main{max-width:1100px;margin:auto;padding:1rem 2rem}h1{border-bottom:2px solid #4C72B0}
h2{margin-top:2.2rem;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.6rem 0;
font-size:.85rem}th,td{padding:.25rem .5rem;border-bottom:1px solid #e3e3e3;text-align:right;
white-space:nowrap}th:first-child,td:first-child{text-align:left}td.wrap{white-space:normal;
overflow-wrap:anywhere;min-width:12rem;text-align:left}thead th{background:#eef2f8}
figure{margin:1rem 0}img{max-width:100%;border:1px solid #eee;background:white}
.note{color:#666;font-size:.8rem;max-width:60rem}"""


class Page:
    """Collects sections as (HTML, Markdown) pairs, figures as PNG files + data URIs, and
    data files written beside them."""

    def __init__(self, out: Path):
        self.out, self.html, self.md, self.files = out, [], [], {}

    def heading(self, text: str, level: int = 2) -> None:
        anchor = text.lower().replace(" ", "-").replace(":", "").replace("(", "").replace(")", "")
        self.html.append(f'<h{level} id="{html.escape(anchor)}">{html.escape(text)}</h{level}>')
        self.md.append(f"{'#' * level} {text}\n")

    def para(self, text: str) -> None:
        self.html.append(f"<p>{html.escape(text)}</p>")
        self.md.append(text + "\n")

    def table(self, header: list[str], rows: list[list[str]], note: str = "") -> None:
        """One table, cut into several that fit the page when it is wider; `note` (what the
        table's markers and words mean) follows the last part."""
        rows = [[str(c) for c in r] for r in rows]
        for cols in column_parts(header, rows):
            head = "".join(f"<th>{html.escape(header[i])}</th>" for i in cols)
            body = "".join("<tr>" + "".join(_td(r[i]) for i in cols) + "</tr>" for r in rows)
            self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            self.md.append("| " + " | ".join(header[i] for i in cols) + " |\n|"
                           + "---|" * len(cols) + "\n"
                           + "".join("| " + " | ".join(r[i] for i in cols) + " |\n" for r in rows))
        if note:
            self.html.append(f'<p class="note">{html.escape(note)}</p>')
            self.md.append(f"_{note}_\n")

    def image(self, name: str, png: bytes, alt: str) -> None:
        self.files[name] = png
        uri = base64.b64encode(png).decode("ascii")
        self.html.append(f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{uri}">'
                         f"<figcaption>{html.escape(alt)}</figcaption></figure>")
        self.md.append(f"![{alt}]({name})\n")

    def attach(self, name: str, text: str) -> None:
        """A data file of the report folder (one of DATA_FILES)."""
        self.files[name] = text.encode("utf-8")

    def write(self, title: str) -> Path:
        """The report folder is replaced as a whole: its page, Markdown, figures and data
        always come from the same run, even when a write is killed midway."""
        doc = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
               f"{html.escape(title)}</title><style>{CSS}</style></head><body><main>"
               f"<h1>{html.escape(title)}</h1>" + "\n".join(self.html) + "</main></body></html>")
        with storage.atomic_dir(self.out) as tmp:
            for name, data in self.files.items():
                (tmp / name).write_bytes(data)
            (tmp / "report.md").write_text(f"# {title}\n\n" + "\n".join(self.md), encoding="utf-8")
            (tmp / "index.html").write_text(doc, encoding="utf-8")
            storage.make_readable(tmp)
        return self.out / "index.html"

    def check_out(self) -> None:
        """The folder is replaced as a whole: refuse one holding anything but a report."""
        if self.out.is_dir():
            foreign = [p.name for p in self.out.iterdir()
                       if p.name not in ("index.html", "report.md", *DATA_FILES)
                       and p.suffix != ".png"]
            if foreign:
                raise XlirError(f"{self.out}: not a report folder (holds {', '.join(sorted(foreign)[:3])}); "
                                "the report replaces its folder, so pick a new or empty one")


def column_parts(header: list[str], rows: list[list[str]]) -> list[list[int]]:
    """Column indices of each part of a table cut to PAGE_CHARS, the first column in every
    part; a table that fits is one part."""
    width = [min(WRAP_CHARS, max(len(c) for c in [h, *(r[i] for r in rows)])) + 3
             for i, h in enumerate(header)]
    budget = max(PAGE_CHARS - width[0], 1)
    parts: list[list[int]] = [[]]
    used = 0
    for i in range(1, len(header)):
        if parts[-1] and used + width[i] > budget:
            parts.append([])
            used = 0
        parts[-1].append(i)
        used += width[i]
    return [[0, *p] for p in parts]


def _td(cell: str) -> str:
    wrap = ' class="wrap"' if len(cell) > WRAP_CHARS else ""
    return f"<td{wrap}>{html.escape(cell)}</td>"
