"""`xlir report STUDY_DIR`: a self-contained HTML page (and Markdown beside it) from a study's
files alone.

It reads metrics.json, tasks/*.json, fertility.json, environment.json, model manifests and the
xQG files; it never loads a model and never reruns anything. Significance comes from
`xlir.stats` on the per-query scores stored in each metrics.json.
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from typing import Any

from xlir import report_plots, storage
from xlir.errors import InputError, XlirError

log = logging.getLogger(__name__)

SECTIONS = ["Headline", "Per-language results", "Robustness: seen vs unseen languages",
            "Quality vs trainable parameters", "Query-generation augmentation (xQG)",
            "Tokenizer fertility", "Costs", "Environment"]


class StudyFiles:
    """Everything the report needs, read once from a study directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / "config.resolved.json").exists():
            raise XlirError(f"{self.root}: not a study directory (no config.resolved.json); "
                            "run `xlir study` first")
        self.config = _read(self.root / "config.resolved.json", keys=("methods", "seeds"))
        self.environment = _read(self.root / "environment.json", {})
        self.study = _read(self.root / "study.json", {})
        self.fertility = _read(self.root / "fertility.json", {})
        self.tasks = {p.stem: _read(p) for p in sorted((self.root / "tasks").glob("*.json"))}
        self.metrics: dict[str, dict[str, dict]] = {}  # task -> system -> metrics
        for p in sorted(self.root.glob("systems/*/*/metrics.json")):
            m = _read(p, keys=("task", "system"))
            self.metrics.setdefault(m["task"], {})[m["system"]] = m
        self.models = {p.parent.parent.name: _read(p)
                       for p in sorted(self.root.glob("systems/*/model/xlir-model.json"))}
        self.xqg_quality = _read(self.root / "xqg" / "quality.json", {})
        if not self.metrics:
            raise XlirError(f"{self.root}: no metrics.json found under systems/: nothing to report")

    def primary(self, task: str) -> str:
        return self.tasks.get(task, {}).get("primary_measure", "nDCG@10")

    def dense_systems(self) -> list[str]:
        return [f"{m['name']}-s{s}" for m in self.config["methods"] for s in self.config["seeds"]]


def _read(path: Path, default: Any = None, keys: tuple[str, ...] = ()) -> Any:
    """A study file: a JSON object (with `keys`), or `default` when the file is absent."""
    if not path.exists():
        if default is not None:
            return default
        raise XlirError(f"{path}: missing")
    data = storage.read_json(path)
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise InputError(f"not a study file (expected a JSON object with {', '.join(keys) or 'fields'})",
                         path)
    return data


def macro(metrics: dict, measure: str) -> float:
    """The macro average over languages that evaluate_run stored with the metrics."""
    return metrics["macro"].get(measure, float("nan"))


def as_result(metrics: dict):
    """The evaluate.Result stored inside a metrics.json (which carries extra keys beside it)."""
    import dataclasses

    from xlir.evaluate import Result

    return Result(**{f.name: metrics[f.name] for f in dataclasses.fields(Result) if f.name in metrics})


def significance(a: dict, b: dict, measure: str) -> dict[str, dict]:
    """Per language: does system a differ from b? Paired randomisation test, Holm-corrected
    across languages (xlir.stats.compare); the "macro" row is left out."""
    from xlir.stats import compare

    rows = compare(as_result(a), as_result(b), measure, alpha=0.05, n_permutations=2000,
                   n_resamples=200)
    return {r.language: {"delta": r.delta, "p_holm": r.p_holm,
                         "significant": bool(r.p_holm < 0.05)}
            for r in rows if r.language != "macro"}


def seen_unseen_deltas(files: StudyFiles) -> dict[str, dict[str, dict[str, float]]]:
    """task -> method -> {"seen": delta, "unseen": delta} of the primary measure vs frozen."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for task, systems in files.metrics.items():
        measure = files.primary(task)
        base = next((m for s, m in systems.items() if s.startswith("frozen-")), None)
        if base is None:
            continue
        seen = base.get("seen_unseen", {})
        for system, m in systems.items():
            if system == base["system"] or system.startswith(("bm25", "hybrid-", "xqg-")):
                continue
            out.setdefault(task, {})[system] = {
                g: m.get("seen_unseen", {}).get(g, {}).get(measure, float("nan"))
                - seen.get(g, {}).get(measure, float("nan")) for g in ("seen", "unseen")}
    return out


# ---- rendering -----------------------------------------------------------------------------
class Page:
    """Collects sections as (HTML, Markdown) pairs and images as PNG files + data URIs."""

    def __init__(self, out: Path):
        self.out, self.html, self.md, self.images = out, [], [], {}

    def heading(self, text: str, level: int = 2) -> None:
        anchor = text.lower().replace(" ", "-").replace(":", "").replace("(", "").replace(")", "")
        self.html.append(f'<h{level} id="{html.escape(anchor)}">{html.escape(text)}</h{level}>')
        self.md.append(f"{'#' * level} {text}\n")

    def para(self, text: str) -> None:
        self.html.append(f"<p>{html.escape(text)}</p>")
        self.md.append(text + "\n")

    def table(self, header: list[str], rows: list[list[str]], note: str = "") -> None:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                       for r in rows)
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        self.md.append("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
                       + "".join("| " + " | ".join(str(c) for c in r) + " |\n" for r in rows))
        if note:
            self.html.append(f'<p class="note">{html.escape(note)}</p>')
            self.md.append(f"_{note}_\n")

    def image(self, name: str, png: bytes, alt: str) -> None:
        self.images[name] = png
        uri = base64.b64encode(png).decode("ascii")
        self.html.append(f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{uri}">'
                         f"<figcaption>{html.escape(alt)}</figcaption></figure>")
        self.md.append(f"![{alt}]({name})\n")

    def write(self, title: str) -> Path:
        """The report folder is replaced as a whole: its page, Markdown and figures always
        come from the same run, even when a write is killed midway."""
        doc = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
               f"{html.escape(title)}</title><style>{CSS}</style></head><body><main>"
               f"<h1>{html.escape(title)}</h1>" + "\n".join(self.html) + "</main></body></html>")
        with storage.atomic_dir(self.out) as tmp:
            for name, png in self.images.items():
                (tmp / name).write_bytes(png)
            (tmp / "report.md").write_text(f"# {title}\n\n" + "\n".join(self.md), encoding="utf-8")
            (tmp / "index.html").write_text(doc, encoding="utf-8")
            storage.make_readable(tmp)
        return self.out / "index.html"

    def check_out(self) -> None:
        """The folder is replaced as a whole: refuse one holding anything but a report."""
        if self.out.is_dir():
            foreign = [p.name for p in self.out.iterdir()
                       if p.name not in ("index.html", "report.md") and p.suffix != ".png"]
            if foreign:
                raise XlirError(f"{self.out}: not a report folder (holds {', '.join(sorted(foreign)[:3])}); "
                                "the report replaces its folder, so pick a new or empty one")


CSS = """body{font-family:system-ui,sans-serif;color:#222;background:#fafafa;margin:0}
main{max-width:1100px;margin:auto;padding:1rem 2rem}h1{border-bottom:2px solid #4C72B0}
h2{margin-top:2.2rem;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.6rem 0;
font-size:.85rem;display:block;overflow-x:auto}th,td{padding:.25rem .5rem;border-bottom:1px solid
#e3e3e3;text-align:right;white-space:nowrap}th:first-child,td:first-child{text-align:left}
thead th{background:#eef2f8}figure{margin:1rem 0}img{max-width:100%;border:1px solid #eee;
background:white}.note{color:#666;font-size:.8rem}"""


def build_report(root: str | Path, out: str | Path | None = None) -> Path:
    from xlir import report_sections

    files = StudyFiles(root)
    page = Page(Path(out) if out else files.root / "report")
    page.check_out()
    for section in (report_sections.headline, report_sections.per_language,
                    report_sections.robustness, report_sections.params,
                    report_sections.xqg, report_sections.fertility,
                    report_sections.costs, report_sections.environment):
        section(files, page)
    path = page.write(f"xlir study report: {files.config.get('name', files.root.name)}")
    log.info("report written to %s", path)
    return path
