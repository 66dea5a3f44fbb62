"""Results of record: a study folder cut down to what its report and decision table read, small
enough to commit (`results/<preset>/`), and read back by `StudyFiles` like any study folder.

`export_results(study, out)` writes:

- config.resolved.json, environment.json, study.json, fertility.json, tasks/*.json, the xQG
  records (xqg/: quality.json, selection.json, queries.done.json, leakage.json and the
  generator's qgen-manifest.json with its pairs per language and loss curves), what each
  system is (systems/*/system.json), every model manifest (systems/*/model/xlir-model.json)
  and every MAD-X language adapter's training record (systems/*/lang_adapters/*/mlm.json), as
  they are;
- every systems/*/*/metrics.json with its aggregates (per language, macro, groups, pools) for
  every measure, but `per_query` and `query_lang` moved into one table per task:
  per_query/<task>/<measure>.tsv.gz, the task's primary measure, a row per query (id,
  language, then one column per system), values as Python writes them (exact round trip).
  That is what every test of the report reads (decision table, markers); the per-query
  scores of the other measures and the TREC runs stay in the study folder. A study of 25
  systems x 22k SIB queries thus fits in a few MB instead of ~100;
- drift.json (xlir.drift), when the study folder still holds its embeddings;
- report/: report.md, its figures, decision.json, decision.csv and interaction.csv, built by
  `xlir report` from `out` itself (so a test can recompute the table from the committed files);
- RESUME.md (NOTES), hand-written, carried over from the study folder or the previous `out`;
- MANIFEST.tsv: size and sha256 of every file above.

`compare_results(study, results)` checks a rerun against results of record: every system and
task present in both, aggregates and per-query primary scores equal to `tol`.

gzip is written with mtime 0, so exporting the same study twice gives identical bytes.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from xlir import storage
from xlir.drift import write_drift
from xlir.errors import InputError, XlirError
from xlir.per_query import read_per_query, write_table
from xlir.report import build_report
from xlir.report_files import StudyFiles

PER_QUERY = "per_query"
COPIED = ("config.resolved.json", "environment.json", "study.json", "fertility.json",
          "drift.json", "xqg/quality.json", "xqg/selection.json",
          "xqg/queries.done.json", "xqg/leakage.json", "xqg/generator/qgen-manifest.json")
# Written by hand beside the results (e.g. how the study was killed and resumed): kept when the
# folder is exported again, from the study folder if it has one, else from the old `out`.
NOTES = ("RESUME.md",)


def export_results(study: str | Path, out: str | Path) -> dict:
    """Write the results of record of the study folder `study` into `out` (replaced, built
    under a temporary name: it appears complete or not at all); returns {file: bytes}."""
    study, out = Path(study), Path(out)
    if not (study / "config.resolved.json").is_file():
        raise XlirError(f"{study}: not a study directory (no config.resolved.json)")
    if any(study.glob("systems/*/embeddings")):  # drift needs them: results of record have none
        write_drift(study)
    notes = {name: (study / name if (study / name).is_file() else out / name) for name in NOTES}
    notes = {name: p.read_text(encoding="utf-8") for name, p in notes.items() if p.is_file()}
    with storage.atomic_dir(out) as tmp:
        for name in COPIED:
            if (study / name).is_file():
                _copy(study / name, tmp / name)
        for name, data in notes.items():
            storage.write_text(tmp / name, data)
        for p in (sorted(study.glob("tasks/*.json")) + sorted(study.glob("systems/*/system.json"))
                  + sorted(study.glob("systems/*/model/xlir-model.json"))
                  + sorted(study.glob("systems/*/lang_adapters/*/mlm.json"))):
            _copy(p, tmp / p.relative_to(study))
        tables: dict[tuple[str, str], dict] = {}  # (task, measure) -> {"lang": {}, system: {}}
        read: dict[Path, dict] = {}  # the study folder's own per-query tables, when it has any
        for p in sorted(study.glob("systems/*/*/metrics.json")):
            m = storage.read_json(p)
            if not isinstance(m, dict) or not {"task", "system", "primary"} <= set(m):
                raise InputError("not a metrics file (expected task, system, primary)", p)
            # A study grown from results of record holds their metrics files, whose per-query
            # scores sit in the copied per_query/ tables: read back, exported again unchanged.
            read_per_query(study, m, read)
            measure, per_query = m["primary"], m.pop("per_query", {})
            query_lang = m.pop("query_lang", {})
            if measure in per_query:
                table = tables.setdefault((m["task"], measure), {"": {}})
                table[""].update(query_lang)
                table[m["system"]] = per_query[measure]
            m["per_query_table"] = f"{PER_QUERY}/{m['task']}/{measure}.tsv.gz"
            storage.write_json(tmp / p.relative_to(study), m)
        for (task, measure), table in tables.items():
            write_table(tmp / PER_QUERY / task / f"{measure}.tsv.gz", table)
        _write_decision(tmp)
        sizes = {str(p.relative_to(tmp)): p.stat().st_size
                 for p in sorted(tmp.rglob("*")) if p.is_file()}
        storage.write_text(tmp / "MANIFEST.tsv", "file\tbytes\tsha256\n" + "".join(
            f"{f}\t{n}\t{storage.sha256_file(tmp / f)}\n" for f, n in sizes.items()))
    return sizes


def _write_decision(root: Path) -> None:
    """The report built from `root` itself: report/ holds report.md, its figures and the
    decision table (decision.json, decision.csv, interaction.csv); the self-contained
    index.html is left out (it inlines the figures again: `xlir report` rebuilds it)."""
    build_report(root, root / "report").unlink()  # the path of index.html


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def compare_results(study: str | Path, results: str | Path, tol: float = 1e-6) -> list[str]:
    """Differences between a study folder and results of record (empty: they agree to `tol`):
    every (task, system) of the results must be in the study, with its macro and per-language
    scores of every measure and its per-query primary scores equal to within `tol`."""
    new, old = StudyFiles(study), StudyFiles(results)
    mine_all = {**new.metrics, **new.held_out}  # tasks held out for a choice are results too
    diffs = []
    for task, systems in {**old.metrics, **old.held_out}.items():
        for system, ref in systems.items():
            got = mine_all.get(task, {}).get(system)
            if got is None:
                diffs.append(f"{task}/{system}: not in {study}")
                continue
            pairs = [(f"macro {k}", v, got.get("macro", {}).get(k)) for k, v in ref["macro"].items()]
            pairs += [(f"{lang} {k}", v, got.get("per_language", {}).get(lang, {}).get(k))
                      for lang, row in ref["per_language"].items() for k, v in row.items()]
            measure = ref["primary"]
            mine = got.get("per_query", {}).get(measure, {})
            pairs += [(f"query {q} {measure}", v, mine.get(q))
                      for q, v in ref["per_query"][measure].items()]
            bad = [f"{what}: {a} vs {b}" for what, a, b in pairs
                   if b is None or not _close(a, b, tol)]
            if bad:
                diffs.append(f"{task}/{system}: {len(bad)} differ, e.g. {bad[0]}")
    return diffs


def _close(a, b, tol: float) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


README_BEGIN = "<!-- answer tables: generated by `xlir results results/answer --readme`; tests/test_results_of_record.py checks them -->"
README_END = "<!-- end of answer tables -->"


def readme_tables(results: str | Path, grouping: str = "pretraining") -> str:
    """The README's answer, in Markdown, from results of record alone (report/decision.json):
    the change of every tuned method against the zero-shot model per task and language group,
    then the answer, each method's change minus full fine-tuning's, with its decision; then
    the learning-rate choice, and the same two tables for each other family of one-seed
    methods (those that are not learning-rate variants)."""
    table = storage.read_json(Path(results) / "report" / "decision.json")
    full = table["settings"]["full"]
    lines = _family_tables(table, "core", grouping, "", full)
    lines += _lr_lines(table)
    variants = {r["label"] for r in table.get("selection", [])}
    for family in dict.fromkeys(r.get("family", "core") for r in table["answer"]):
        methods = {r["method"] for r in table["answer"] if r.get("family") == family}
        if family != "core" and not methods & variants:
            seeds = sorted({r["n_seeds"] for r in table["answer"] if r.get("family") == family})
            lines += [""] + _family_tables(table, family, grouping, f"Family '{family}' ("
                                           f"{'/'.join(map(str, seeds))} seed each, its own Holm "
                                           f"family; {full} over all its seeds). ", full)
    lines += _swap_lines(table, grouping)
    lines += _xqg_lines(table, grouping)
    return "\n".join(lines) + "\n"


def _ci(r: dict, value: str) -> str:
    """`+0.012 [-0.003, +0.027]`: a value and its 95% CI ('-' where undefined)."""
    lo = "-" if r["ci_low"] is None else f"{r['ci_low']:+.3f}"
    hi = "-" if r["ci_high"] is None else f"{r['ci_high']:+.3f}"
    return f"{r[value]:+.3f} [{lo}, {hi}]"


def _swap_lines(table: dict, grouping: str) -> list[str]:
    """MAD-X with the language-adapter swap against its twin: all languages, each group of
    `grouping`, then each language (Holm over the task's languages)."""
    rows = [r for r in table.get("swap", []) if r["grouping"] in ("all", grouping, "language")]
    lines = []
    for method, twin in dict.fromkeys((r["method"], r["twin"]) for r in rows):
        mine = [r for r in rows if (r["method"], r["twin"]) == (method, twin)]
        lines += ["", f"MAD-X with the language-adapter swap ({method}) against the same task "
                  f"adapter without it ({twin}), {mine[0]['n_seeds']} seed, paired per query: "
                  f"{method} - {twin} [95% CI], p (per language: Holm over the languages):", "",
                  "| task | languages | queries | swap - no swap | p | verdict |",
                  "|---|---|---|---|---|---|"]
        for r in mine:
            where = r["group"] if r["grouping"] in ("all", "language") else f"{r['group']} ({grouping})"
            lines.append(f"| {r['task']} | {where} | {r['n_queries']:,} | {_ci(r, 'estimate')} | "
                         f"{_p_verdict(r)} |")
    return lines


def _xqg_lines(table: dict, grouping: str) -> list[str]:
    """Each xQG base system at its alpha chosen on the held-out task against itself without
    augmentation: all languages, those with generated questions and the others, the groups of
    `grouping`, then each language (Holm over the task's languages)."""
    rows = [r for r in table.get("xqg", []) if r["grouping"] in ("all", "xqg", grouping, "language")]
    if not rows:
        return []
    first = rows[0]
    lines = ["", f"xQG: every {first['task']} passage fused with questions generated in other "
             f"languages, (1-a)p + a*sum(q); each base system and its alpha chosen on "
             f"{first['select_on']} (held out). Augmented - not augmented on {first['task']} "
             f"[95% CI], p (per language: Holm over the languages):", "",
             "| base system | alpha | languages | queries | xQG - none | p | verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("n_queries") is None:
            lines.append(f"| {r['base']} | {r['alpha']:g} | all | | | | {r['verdict']} |")
            continue
        if r["grouping"] == "xqg":
            where = ("languages questions were generated in" if r["group"] == "generated"
                     else "the other languages")
        else:
            where = r["group"] if r["grouping"] in ("all", "language") else f"{r['group']} ({grouping})"
        lines.append(f"| {r['base']} | {r['alpha']:g} | {where} | {r['n_queries']:,} | "
                     f"{_ci(r, 'estimate')} | {_p_verdict(r)} |")
    return lines


def _p_verdict(r: dict) -> str:
    """`0.0045 | **swap hurts**` or `0.3668 | n.d. (MDE 0.031)`: p (Holm where corrected) and
    the verdict cell of a paired-contrast row."""
    p = r["p_holm"] if r.get("p_holm") is not None else r["p"]
    word = ("n.d." + ("" if r["mde"] is None else f" (MDE {r['mde']:.3f})")
            if r["verdict"].startswith("no difference") else f"**{r['verdict']}**")
    return f"{p:.4f} | {word}"


def _family_tables(table: dict, family: str, grouping: str, intro: str, full: str) -> list[str]:
    """delta(m, g) against zero-shot, then delta(m, g) - delta(full, g) with the decision."""
    mine = lambda r: r["grouping"] == grouping and r.get("family", "core") == family  # noqa: E731
    delta = [r for r in table["delta"] if mine(r)]
    answer = [r for r in table["answer"] if mine(r)]
    columns = list(dict.fromkeys((r["task"], r["group"]) for r in delta))
    methods = list(dict.fromkeys(r["method"] for r in delta))

    def cell(r: dict | None, value: str) -> str:
        return "" if r is None else _ci(r, value)

    def word(r: dict) -> str:
        if r["verdict"].startswith("no difference"):
            return "n.d." + ("" if r["mde"] is None else f" (MDE {r['mde']:.3f})")
        return "**more robust**" if r["verdict"].startswith("more") else "**less robust**"

    head = "| method | " + " | ".join(f"{t} {g}" for t, g in columns) + " |"
    rule = "|---|" + "---|" * len(columns)
    d = {(r["method"], r["task"], r["group"]): r for r in delta}
    a = {(r["method"], r["task"], r["group"]): r for r in answer}
    lines = [f"{intro}Change against the zero-shot model, delta(m, g) [95% CI], languages "
             f"grouped by {grouping}:", "", head, rule]
    lines += ["| " + m + " | " + " | ".join(cell(d.get((m, t, g)), "estimate")
                                         for t, g in columns) + " |" for m in methods]
    lines += ["", f"{intro}The answer, delta(m, g) - delta({full}, g) [95% CI] and the decision "
              "(Holm over the methods; n.d. = no difference detectable at the minimum detectable "
              "effect, 80% power):", "", head, rule]
    for m in dict.fromkeys(r["method"] for r in answer):
        lines.append("| " + m + " | " + " | ".join(
            (cell(r, "answer") + " " + word(r)) if (r := a.get((m, t, g))) else ""
            for t, g in columns) + " |")
    return lines


def _lr_lines(table: dict) -> list[str]:
    """The learning-rate choice on held-out English dev and each rate's unseen change."""
    choice, sens = table.get("selection", []), table.get("sensitivity", [])
    if not choice:
        return []
    tasks = [t for t in dict.fromkeys(r["task"] for r in sens) if t != choice[0]["task"]]
    unseen = {(r["label"], r["task"]): r for r in sens if r["group"] == "unseen"}

    first = choice[0]
    lines = ["", f"Learning rates at seed {first['seed']}: {first['task']} {first['measure']} "
             "(held out from training; the dev choice in bold) and, as delta [95% CI], the "
             "change in unseen languages:", "",
             "| method | lr | " + first["task"] + " | vs fixed lr | "
             + " | ".join(f"{t} unseen" for t in tasks if any(k[1] == t for k in unseen)) + " |"]
    shown = [t for t in tasks if any(k[1] == t for k in unseen)]
    lines.append("|---|---|---|---|" + "---|" * len(shown))
    for r in choice:
        lr = "-" if r["lr"] is None else f"{r['lr']:g}"
        score = f"**{r['score']:.3f}**" if r["chosen"] else f"{r['score']:.3f}"
        versus = "fixed beforehand" if r["reference"] else _ci(r, "diff")
        lines.append(f"| {r['method']} | {lr} | {score} | {versus} | " + " | ".join(
            _ci(u, "estimate") if (u := unseen.get((r["label"], t))) else "" for t in shown)
            + " |")
    return lines
