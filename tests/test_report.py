"""The report on hand-written study folders (a few metrics.json files with per-query scores,
no training): seeds are paired for the markers, the decision table states the answer and is
recomputed from the folder's files alone, and the known bugs stay fixed (costs from the
manifest's keys, systems found by label, dataset licences, tables that fit the page, markers
explained beside their tables)."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xlir.data import languages
from xlir.storage import write_json

SRC = Path(__file__).resolve().parents[1] / "src" / "xlir"
LANGS = ["fra_Latn", "hau_Latn", "swh_Latn", "ibo_Latn", "yor_Latn"]  # 3 seen, 2 unseen


def write_study(root: Path, methods: list[dict], seeds: list[int], score, langs=LANGS,
                n: int = 20, groupings: list[str] | None = None, task: str = "afriqa",
                extra_systems: tuple[str, ...] = ()) -> Path:
    """A study folder as `xlir study` leaves it. `score(label, seed, lang, i)` is query i's
    nDCG@10; `extra_systems` (bm25, hybrid-<label>-s<seed>) score as `score(name, None, ...)`."""
    config = {"name": "hand", "methods": [{"name": m["name"], "label": m.get("label", m["name"]),
                                           "options": {}, "train": {}} for m in methods],
              "seeds": seeds, "tasks": [{"name": task, "label": task, "titles": True}],
              "xqg": {"enabled": False}}
    if groupings is not None:
        config["groupings"] = groupings
    write_json(root / "config.resolved.json", config)
    write_json(root / "tasks" / f"{task}.json",
               {"name": task, "split": "test", "queries": n * len(langs), "documents": 100,
                "queries_per_language": {lang: n for lang in langs}, "primary_measure": "nDCG@10"})
    afriqa = {"repo": "masakhane-io/afriqa", "commit": "abc", "licence": "CC BY 4.0"}
    write_json(root / "environment.json", {"packages": {"numpy": np.__version__},
                                           "data": {"afriqa": afriqa}, "seeds": {"seeds": seeds}})
    systems = [(m.get("label", m["name"]), s) for m in methods for s in seeds]
    systems += [(name, None) for name in extra_systems]
    for label, seed in systems:
        name = label if seed is None else f"{label}-s{seed}"
        per_query = {f"{lang}-{i}": float(score(label, seed, lang, i)) for lang in langs
                     for i in range(n)}
        write_json(root / "systems" / name / task / "metrics.json", _metrics(name, task, per_query))
    return root


def _metrics(system: str, task: str, per_query: dict[str, float]) -> dict:
    query_lang = {q: q.rsplit("-", 1)[0] for q in per_query}
    langs = sorted(set(query_lang.values()))
    per_language = {lang: {"nDCG@10": float(np.mean([s for q, s in per_query.items()
                                                      if query_lang[q] == lang]))}
                    for lang in langs}
    groups = {g: languages.language_groups(langs, g, "me5") for g in languages.GROUPINGS}
    return {"task": task, "measures": ["nDCG@10"], "per_query": {"nDCG@10": per_query},
            "query_lang": query_lang, "per_language": per_language,
            "counts": {lang: sum(v == lang for v in query_lang.values()) for lang in langs},
            "macro": {"nDCG@10": float(np.mean([v["nDCG@10"] for v in per_language.values()]))},
            "encoder_family": "me5", "language_groups": groups, "system": system,
            "primary": "nDCG@10", "retrieve_s": 1.5, "n_queries": len(per_query),
            "pool_size": 500}


def _base(lang: str, i: int) -> float:
    rng = np.random.default_rng([sum(map(ord, lang)), i])
    return float(rng.uniform(0.3, 0.7))


def _tables(md: str) -> list[tuple[list[str], str]]:
    """Each run of consecutive Markdown tables: its lines and the line that follows it."""
    out, lines, block = [], md.splitlines(), []
    for line in lines + [""]:
        if line.startswith("|"):
            block.append(line)
        elif block and line.strip():
            out.append((block, line))
            block = []
    return out


# ---- item 2: seeds paired ---------------------------------------------------------------------
def _two_seed_score(label, seed, lang, i):
    # full-s13 is 0.3 worse than everything; lora-s42 is full-s42 query for query.
    base = _base(lang, i)
    return base - 0.3 if (label, seed) == ("full", 13) else base


def test_markers_pair_a_system_with_the_reference_of_its_seed(tmp_path):
    from xlir.report import build_report

    root = write_study(tmp_path / "study", [{"name": "frozen"}, {"name": "full"}, {"name": "lora"}],
                       [13, 42], _two_seed_score)
    md = (build_report(root).parent / "report.md").read_text(encoding="utf-8")
    md = md[md.index("## Per-language results"):md.index("## Robustness")]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()
            if line.startswith("| lora-s")}
    # The first folder found (full-s13) would mark lora-s42 better than full fine-tuning.
    assert "*" not in rows["lora-s42"], rows["lora-s42"]
    assert rows["lora-s13"].count("*") == len(LANGS)  # against full-s13: better everywhere
    full13 = next(line for line in md.splitlines() if line.startswith("| full-s13 "))
    assert full13.count(" -") == len(LANGS) and "~" not in full13  # never against itself


# ---- item 10: the decision table ---------------------------------------------------------------
METHODS = [{"name": "frozen"}, {"name": "full"}, {"name": "lora", "label": "lora-r8"},
           {"name": "bitfit"}]
SHIFT = {"full": (0.2, -0.2), "lora-r8": (0.1, 0.0), "bitfit": (0.2, -0.2)}  # (seen, unseen)


def _answer_score(label, seed, lang, i):
    if label == "frozen":
        return _base(lang, i)
    seen = languages.group_of(lang) == "seen"
    noise = np.random.default_rng([len(label), seed, LANGS.index(lang), i]).normal(0, 0.02)
    return _base(lang, i) + SHIFT[label][0 if seen else 1] + noise


@pytest.fixture(scope="module")
def answered(tmp_path_factory):
    from xlir.report import build_report

    root = write_study(tmp_path_factory.mktemp("answer") / "study", METHODS, [13, 42, 7],
                       _answer_score, groupings=["pretraining", "resource"])
    write_json(root / "systems" / "lora-r8-s13" / "model" / "xlir-model.json",
               {"format": "xlir-model", "method": "lora", "trainable_params": 294912,
                "total_params": 118000000, "saved_bytes": 1200000, "wall_time_s": 61.0,
                "peak_rss_mb": 2100.0, "leakage": {"tydi-en": {"eng_Latn": {
                    "pairs": 3696, "dropped": 5, "question": 1, "passage_id": 4,
                    "passage_text": 3}}}, "dev_leakage": {}})
    write_json(root / "systems" / "bitfit-s13" / "model" / "xlir-model.json",  # an older manifest
               {"format": "xlir-model", "method": "bitfit", "wall_time_s": 30.0})
    out = build_report(root).parent
    return root, out, (out / "report.md").read_text(encoding="utf-8")


def test_decision_table_states_the_answer(answered):
    root, out, _ = answered
    from xlir.report_decision import ANSWER_COLUMNS, decision_table

    rows = decision_table(root)
    cell = {(r["method"], r["grouping"], r["group"]): r for r in rows}
    # methods (2) x (pretraining: seen, unseen + resource: low, high), one task
    assert len(rows) == 2 * 4 and {r["task"] for r in rows} == {"afriqa"}
    lora = cell["lora-r8", "pretraining", "unseen"]
    assert lora["answer"] == pytest.approx(0.2, abs=0.02)
    assert lora["ci_low"] < lora["answer"] < lora["ci_high"] and lora["p_holm"] >= lora["p"]
    assert lora["verdict"] == "more robust than full FT"
    assert (lora["n_languages"], lora["n_queries"], lora["n_seeds"]) == (2, 40, 3)
    assert cell["lora-r8", "pretraining", "seen"]["verdict"] == "less robust"
    assert cell["bitfit", "pretraining", "unseen"]["verdict"].startswith(
        "no difference detectable at +-")
    # The files: the same rows, recomputed from the study folder alone.
    stored = json.loads((out / "decision.json").read_text())
    assert stored["answer"] == rows
    table = list(csv.DictReader(io.StringIO((out / "decision.csv").read_text())))
    assert list(table[0]) == ANSWER_COLUMNS and len(table) == len(rows)
    inter = {(r["method"], r["grouping"]): r for r in stored["interaction"]}
    assert inter["full", "pretraining"]["contrast"] == "unseen - seen"
    assert inter["full", "pretraining"]["estimate"] == pytest.approx(-0.4, abs=0.02)
    assert inter["full", "pretraining"]["verdict"] == "unseen < seen"
    assert (out / "interaction.csv").read_text().startswith("family,method,task,grouping,contrast,")


def test_headline_is_the_decision_table_with_a_sentence_per_task(answered):
    _, out, md = answered
    head = md[md.index("## Headline"):md.index("## Per-language results")]
    for grouping in ("pretraining", "resource"):
        assert f"### Answer, languages grouped by {grouping}" in head
    row = next(line for line in head.splitlines() if line.startswith("| lora-r8 |"))
    assert "more robust" in row and "less robust" in row
    assert re.search(r"\+0\.\d{3} \[\+0\.\d{3}, \+0\.\d{3}\] more robust", row)
    assert "On afriqa (nDCG@10, languages grouped by pretraining): in the seen languages " \
           "(3 languages, 60 queries) lora-r8 is less robust than full FT" in head
    assert "bitfit shows no difference detectable at ±" in head
    assert "robustness-afriqa-pretraining.png" in md
    assert (out / "robustness-afriqa-resource.png").is_file()


def test_a_labelled_method_stays_in_every_table(answered):
    _, _, md = answered
    per_language = md[md.index("## Per-language results"):md.index("## Robustness")]
    costs = md[md.index("## Costs"):md.index("## Environment")]
    for system in ("lora-r8-s13", "lora-r8-s42", "lora-r8-s7"):
        for section in (per_language, costs):
            assert any(line.startswith(f"| {system} |") for line in section.splitlines()), system
    assert "robustness-afriqa-pretraining.png" in md


def test_costs_read_the_manifest(answered):
    _, _, md = answered
    costs = md[md.index("## Costs"):md.index("## Environment")]
    row = next(line for line in costs.splitlines() if line.startswith("| lora-r8-s13 |"))
    assert "| 294,912 | 118,000,000 | 1.20 | 61 | 2100 |" in row
    assert next(line for line in costs.splitlines()
                if line.startswith("| frozen-s13 |")).startswith("| frozen-s13 | 0 (not trained) |")
    older = next(line for line in costs.splitlines() if line.startswith("| bitfit-s13 |"))
    assert older.startswith("| bitfit-s13 | - | - | - | 30 |"), older  # missing keys: never 0


def test_every_table_over_tasks_states_its_queries_and_pool(answered):
    _, _, md = answered
    captions = {"Interaction": "estimate: delta(m, A) - delta(m, B)",
                "Seeds": "Spread of the macro over seeds"}
    for what, start in captions.items():
        caption = next(line for line in md.splitlines() if start in line)
        assert "Measured on: afriqa: 100 queries against 500 documents." in caption, (what, caption)


def test_leakage_counts_reach_the_report(answered):
    _, _, md = answered
    section = md[md.index("## Leakage"):md.index("## Environment")]
    assert ("| train | tydi-en | eng_Latn | 3,696 | 5 | 1 | 4 | 3 | lora-r8-s13 |"
            in section), section
    assert "bitfit-s13" not in section  # its manifest records no check: no row is made up


def test_dataset_licences_reach_environment_json_and_the_report(answered):
    from xlir.data.registry import DATASETS
    from xlir.environment import data_sources

    _, _, md = answered
    sources = data_sources()
    assert set(sources) == set(DATASETS)
    assert all(v["licence"] and v["commit"] and v["repo"] for v in sources.values())
    assert sources["afriqa"]["licence"] == DATASETS["afriqa"].licence
    assert "| afriqa | CC BY 4.0 | repo=masakhane-io/afriqa, commit=abc |" in md


def test_every_marker_is_explained_beside_its_table(answered):
    _, _, md = answered
    marked = 0
    for block, after in _tables(md):
        cells = [c.strip() for line in block for c in line.strip("|").split("|")]
        if any(re.fullmatch(r"-?\d\.\d{3} [+\-*~]+", c) for c in cells):
            marked += 1
            assert after.startswith("_Markers: + significantly better / - significantly "
                                    "worse"), after
            for words in ("* significantly better", "~ significantly worse", "Holm"):
                assert words in after
            assert re.search(r"afriqa: 100 queries \(fra_Latn 20, hau_Latn 20", after)  # sizes
    assert marked == 1


def test_tables_fit_the_page(tmp_path):
    from xlir.report import build_report
    from xlir.report_page import PAGE_CHARS, WRAP_CHARS, column_parts

    many = sorted(languages.SEEN_SETS["me5"])[:22] + ["yor_Latn", "ibo_Latn"]
    root = write_study(tmp_path / "study", [{"name": "frozen"}, {"name": "full"},
                                            {"name": "lora", "label": "lora-with-a-long-label"}],
                       [13], lambda label, seed, lang, i: _base(lang, i) + 0.01 * len(label),
                       langs=many, n=6, groupings=["joshi"])
    md = (build_report(root).parent / "report.md").read_text(encoding="utf-8")
    for block, _ in _tables(md):
        for line in block:
            cells = line.strip("|").split("|")
            assert sum(min(len(c), WRAP_CHARS + 2) + 1 for c in cells) <= PAGE_CHARS + 4, line
    per_language = md[md.index("## Per-language results"):md.index("## Robustness")]
    headers = [line for line in per_language.splitlines() if line.startswith("| system |")]
    assert len(headers) > 2  # 24 languages cut into parts, the system column in each
    assert column_parts(["a", "b"], [["1", "2"]]) == [[0, 1]]


# ---- bad input and the shape of the code ------------------------------------------------------
def test_a_study_without_full_fine_tuning_says_why_it_has_no_answer(tmp_path):
    from xlir.report import build_report
    from xlir.report_decision import decision

    root = write_study(tmp_path / "study", [{"name": "frozen"}, {"name": "lora"}], [1],
                       lambda label, seed, lang, i: _base(lang, i), extra_systems=("bm25",))
    got = decision(root)
    assert got["answer"] == [] and got["missing"] == [
        "afriqa: no full fine-tuning run, so no answer: answer(m, g) = delta(m, g) - "
        "delta(full, g)"]
    md = (build_report(root).parent / "report.md").read_text(encoding="utf-8")
    assert "afriqa: no full fine-tuning run, so no answer" in md
    assert "| bm25 |" in md


def test_an_unknown_grouping_is_a_one_line_error_naming_the_key(tmp_path):
    from xlir.config import from_dict
    from xlir.errors import ConfigError
    from xlir.report_files import StudyFiles
    from xlir.study import StudyConfig

    assert from_dict(StudyConfig, {"tasks": [{"name": "afriqa"}]}).groupings == ["pretraining"]
    with pytest.raises(ConfigError, match=r"^groupings: unknown language grouping 'seenish'; "
                                          r"choices: \['joshi', 'pretraining', 'resource', "
                                          r"'retrieval'\]$"):
        from_dict(StudyConfig, {"tasks": [{"name": "afriqa"}], "groupings": ["seenish"]})
    config = tmp_path / "bad.yaml"
    write_json(config, {"tasks": [{"name": "afriqa"}], "groupings": ["pretraining", "seenish"],
                        "out": str(tmp_path / "out")})
    proc = subprocess.run([sys.executable, "-m", "xlir", "study", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "groupings: unknown language grouping 'seenish'" in proc.stderr
    root = write_study(tmp_path / "study", METHODS[:2], [1], lambda *a: 0.5, n=2,
                       groupings=["seenish"])
    with pytest.raises(ConfigError, match=r"config.resolved.json: groupings: unknown language "
                                          r"grouping 'seenish'"):
        StudyFiles(root)


def test_no_report_module_imports_the_report_entry_point():
    """report imports its sections; the modules below it never import it back."""
    for name in ("report_sections", "report_files", "report_page", "report_decision",
                 "report_plots", "robustness"):
        tree = ast.parse((SRC / f"{name}.py").read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "xlir.report" not in imported, name
        assert not any(isinstance(n, ast.ImportFrom) and n.module == "xlir"
                       and any(a.name == "report" for a in n.names) for n in ast.walk(tree)), name


def test_robustness_whiskers_span_each_confidence_interval(monkeypatch):
    """The robustness plot draws every bar's 95% CI as its whisker (not just some PNG): the
    vertical error segments run from each CI's low to its high end; a bar without a CI has
    none."""
    from xlir import report_plots

    figures = []
    monkeypatch.setattr(report_plots, "_png", lambda fig: figures.append(fig) or b"png")
    bars = {"lora": {"seen": (0.02, -0.01, 0.05), "unseen": (-0.04, -0.07, -0.01)},
            "bitfit": {"seen": (0.01, None, None), "unseen": (0.03, 0.0, 0.06)}}
    assert report_plots.robustness(bars, "RR@10", "pretraining") == b"png"
    ax = figures[0].axes[0]
    spans = []
    for container in ax.containers:
        if getattr(container, "errorbar", None) is not None:
            for segment in container.errorbar.lines[2][0].get_segments():
                spans.append(tuple(round(float(y), 6) for y in segment[:, 1]))
    expected = {(-0.01, 0.05), (-0.07, -0.01), (0.0, 0.06), (0.01, 0.01)}  # no CI: zero length
    assert set(spans) == expected
