"""`xlir report STUDY_DIR`: a self-contained HTML page (and Markdown beside it) from a study's
files alone, with the decision table as decision.json, decision.csv and interaction.csv.

It reads metrics.json, tasks/*.json, fertility.json, environment.json, model manifests and the
xQG files (report_files); the answer and its tests come from xlir.robustness on the per-query
scores stored in each metrics.json (report_decision); the page is report_page, the sections
report_sections, the figures report_plots. It never loads a model and never reruns anything;
in a study folder that still holds its embeddings it first writes drift.json (xlir.drift,
numpy over the cached vectors). It also reads results of record (xlir.results).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from xlir import report_decision, report_sections, report_xqg
from xlir.report_learning import movement, variants_section
from xlir.drift import write_drift
from xlir.report_files import StudyFiles
from xlir.report_page import Page

log = logging.getLogger(__name__)

SECTIONS = ["Headline", "Learning rates and other methods", "Per-language results", "Robustness by language group",
            "Learning vs forgetting", "Quality vs trainable parameters",
            "Query-generation augmentation (xQG)", "Tokenizer fertility", "Costs", "Environment"]

__all__ = ["SECTIONS", "StudyFiles", "build_report"]


def build_report(root: str | Path, out: str | Path | None = None) -> Path:
    if any(Path(root).glob("systems/*/embeddings")):  # a study folder (not results of record)
        write_drift(root)
    files = StudyFiles(root)
    page = Page(Path(out) if out else files.root / "report")
    page.check_out()
    decision = report_decision.decision(files)
    report_sections.headline(files, page, decision)
    variants_section(files, page, decision)
    report_sections.per_language(files, page)
    report_sections.robustness(files, page, decision)
    report_sections.swap(files, page, decision)
    movement(files, page)
    for section in (report_sections.params, report_xqg.xqg, report_sections.fertility,
                    report_sections.costs, report_sections.leakage,
                    report_sections.environment):
        section(files, page)
    page.attach("decision.json", json.dumps(decision, indent=2, ensure_ascii=False) + "\n")
    page.attach("decision.csv", report_decision.to_csv(decision["answer"],
                                                       report_decision.ANSWER_COLUMNS))
    page.attach("interaction.csv", report_decision.to_csv(decision["interaction"],
                                                          report_decision.INTERACTION_COLUMNS))
    if decision["swap"]:
        page.attach("swap.csv", report_decision.to_csv(decision["swap"],
                                                       report_decision.SWAP_COLUMNS))
    path = page.write(f"xlir study report: {files.config.get('name', files.root.name)}")
    log.info("report written to %s", path)
    return path
