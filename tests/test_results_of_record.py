"""The committed results of record (results/answer/) and the README that quotes them: the
files are intact (MANIFEST.tsv), small, the decision table recomputes from them exactly, and
the README's answer tables and headline numbers are those of the table, to 3 decimals."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import pytest

from xlir.results import README_BEGIN, README_END, readme_tables

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results" / "answer"
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_results_are_complete_intact_and_small():
    rows = (RESULTS / "MANIFEST.tsv").read_text().splitlines()
    assert rows[0] == "file\tbytes\tsha256"
    listed = {}
    for row in rows[1:]:
        name, size, digest = row.split("\t")
        data = (RESULTS / name).read_bytes()
        assert len(data) == int(size) and hashlib.sha256(data).hexdigest() == digest, name
        listed[name] = int(size)
    on_disk = {str(p.relative_to(RESULTS)) for p in RESULTS.rglob("*") if p.is_file()}
    assert on_disk - set(listed) <= {"MANIFEST.tsv", "RESUME.md"}
    assert sum(p.stat().st_size for p in RESULTS.rglob("*") if p.is_file()) < 5_000_000
    for need in ("config.resolved.json", "environment.json", "study.json", "drift.json",
                 "report/decision.json", "report/decision.csv", "report/report.md"):
        assert need in listed, need
    assert json.loads((RESULTS / "study.json").read_text())["finished"] is True
    from xlir.data.registry import DATASETS  # the licences the study wrote, not a test's copy
    data = json.loads((RESULTS / "environment.json").read_text())["data"]
    assert {name: data[name]["licence"] for name in DATASETS} == {
        name: spec.licence for name, spec in DATASETS.items()}


def _same(a, b, path="") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), path
    else:
        assert a == b, path


@pytest.fixture(scope="module")
def recomputed():
    from xlir.report_decision import decision

    return json.loads(json.dumps(decision(RESULTS)))


def test_decision_table_recomputes_from_the_committed_files(recomputed):
    committed = json.loads((RESULTS / "report" / "decision.json").read_text())
    assert committed["answer"] and not committed["missing"]
    _same(committed, recomputed)


def test_readme_quotes_the_answer_tables_verbatim():
    start, end = README.index(README_BEGIN) + len(README_BEGIN), README.index(README_END)
    assert README[start:end].strip() == readme_tables(RESULTS).strip()


def test_readme_headline_numbers_equal_the_decision_table_to_3_decimals(recomputed):
    """Independent of the renderer: every answer cell of the README, parsed back, is a row of
    the recomputed table (estimate and CI rounded to 3 decimals, the same decision word): the
    core answer, and that of each family of one-seed methods after the learning rates."""
    block = README[README.index(README_BEGIN):README.index(README_END)]
    tables = [t for t in block.split("\n\n") if t.lstrip().startswith("| method")]
    variants = {r["label"] for r in recomputed["selection"]}
    families = [f for f in dict.fromkeys(r["family"] for r in recomputed["answer"])
                if f == "core" or not {r["method"] for r in recomputed["answer"]
                                       if r["family"] == f} & variants]
    # per family: deltas and the answer; the learning rates after the core family's
    assert len(tables) == 2 * len(families) + 1
    answer_tables = [tables[1]] + [tables[4 + 2 * i] for i in range(len(families) - 1)]
    answer = {(r["method"], f"{r['task']} {r['group']}"): r for r in recomputed["answer"]
              if r["grouping"] == "pretraining" and r["family"] in families}
    seen = 0
    for table in answer_tables:
        header, _, *rows = table.strip().splitlines()
        columns = [c.strip() for c in header.strip("|").split("|")][1:]
        for row in rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            for column, cell in zip(columns, cells[1:]):
                if not cell:
                    continue
                m = re.match(r"([+-]\d\.\d{3}) \[([+-]\d\.\d{3}), ([+-]\d\.\d{3})\] (.*)", cell)
                assert m, cell
                r = answer[cells[0], column]
                assert [float(x) for x in m.groups()[:3]] == [
                    round(r["answer"], 3), round(r["ci_low"], 3), round(r["ci_high"], 3)]
                word = m.group(4)
                assert word.startswith("n.d.") == r["verdict"].startswith("no difference")
                seen += 1
    assert seen == len(answer)


def test_readme_learning_rate_table_equals_the_recomputed_choice_to_3_decimals(recomputed):
    block = README[README.index(README_BEGIN):README.index(README_END)]
    table = [t for t in block.split("\n\n") if t.lstrip().startswith("| method")][2]
    header, _, *rows = table.strip().splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    choice = {(r["method"], r["lr"]): r for r in recomputed["selection"]}
    unseen = {(r["label"], f"{r['task']} unseen"): r for r in recomputed["sensitivity"]
              if r["group"] == "unseen"}
    assert len(rows) == len(choice) == 9
    for row in rows:
        cells = dict(zip(columns, (c.strip() for c in row.strip("|").split("|"))))
        r = choice[cells["method"], float(cells["lr"])]
        assert cells[r["task"]].strip("*") == f"{r['score']:.3f}"
        assert cells[r["task"]].startswith("**") == r["chosen"]
        for column in columns[4:]:
            u = unseen[r["label"], column]
            assert cells[column].startswith(f"{u['estimate']:+.3f} [{u['ci_low']:+.3f}, ")


def test_readme_states_the_measured_runtime_and_the_seeds():
    study = json.loads((RESULTS / "study.json").read_text())
    minutes = round(study["wall_s_total"] / 60)
    assert f"{minutes} min" in README
    config = json.loads((RESULTS / "config.resolved.json").read_text())
    assert f"seeds {', '.join(str(s) for s in config['seeds'])}" in README


def test_readme_swap_table_equals_the_recomputed_swap_rows_to_3_decimals(recomputed):
    """MAD-X with and without the language-adapter swap: every row of the README's table is a
    recomputed row (estimate, CI, p, the verdict), and every recomputed row is shown."""
    block = README[README.index(README_BEGIN):README.index(README_END)]
    tables = [t for t in block.split("\n\n") if t.lstrip().startswith("| task | languages")]
    rows = {(r["task"], r["group"] if r["grouping"] in ("all", "language")
             else f"{r['group']} ({r['grouping']})"): r for r in recomputed["swap"]
            if r["grouping"] in ("all", "pretraining", "language")}
    assert len(tables) == (1 if rows else 0)
    shown = 0
    for line in (tables[0].strip().splitlines()[2:] if tables else []):
        task, where, queries, value, p, word = (c.strip() for c in line.strip("|").split("|"))
        r = rows[task, where]
        m = re.match(r"([+-]\d\.\d{3}) \[([+-]\d\.\d{3}), ([+-]\d\.\d{3})\]$", value)
        assert m and [float(x) for x in m.groups()] == [
            round(r["estimate"], 3), round(r["ci_low"], 3), round(r["ci_high"], 3)], line
        assert float(p) == round(r["p_holm"] if r.get("p_holm") is not None else r["p"], 4)
        assert int(queries.replace(",", "")) == r["n_queries"]
        assert word.startswith("n.d.") == r["verdict"].startswith("no difference"), line
        assert word.startswith("n.d.") or word.strip("*") == r["verdict"], line
        shown += 1
    assert shown == len(rows)


def test_readme_swap_finding_quotes_the_swap_rows_and_the_adapters_records(recomputed):
    """The README's reading of the MAD-X swap: every 3-decimal number in it is a recomputed
    swap row's estimate, CI bound or MDE; the count of languages past Holm is the rows'; the
    adapters' amounts of text and MLM losses are their mlm.json files'."""
    bullet = README[README.index("- **The MAD-X language-adapter swap"):]
    bullet = " ".join(bullet[:bullet.index("\n- **")].split())
    rows = recomputed["swap"]
    quoted = {f"{v:+.3f}".lstrip("+") for r in rows for v in (r["estimate"], r["ci_low"], r["ci_high"])}
    quoted |= {f"{r['mde']:.3f}" for r in rows}
    for number in re.findall(r"(?<![\d.])-?\d\.\d{3}(?![\d.])", bullet):
        assert number in quoted | {f"{abs(float(q)):.3f}" for q in quoted}, number
    every = next(r for r in rows if r["grouping"] == "all")
    assert f"{-every['estimate']:.3f} RR@10 below" in bullet
    assert f"[{every['ci_low']:.3f}, {every['ci_high']:.3f}]" in bullet
    languages = [r for r in rows if r["grouping"] == "language"]
    hurt = sum(r["verdict"] == "swap hurts" for r in languages)
    assert f"in {hurt} of {len(languages)} languages past Holm" in bullet
    mlm = [json.loads(p.read_text()) for p in sorted(
        (RESULTS / "systems" / "madx-swap-s13" / "lang_adapters").glob("*/mlm.json"))]
    assert len(mlm) == 10
    texts = sorted(m["texts"] for m in mlm)
    first, last = sorted(m["loss_first10"] for m in mlm), sorted(m["loss_last10"] for m in mlm)
    assert f"saw {texts[0]:,}-{texts[-1]:,} sentences" in bullet
    assert f"from {first[0]:.1f}-{first[-1]:.1f} to {last[0]:.1f}-{last[-1]:.1f}" in bullet
