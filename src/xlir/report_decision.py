"""The study's answer computed from its files alone: the decision table.

`decision(study)` reads a study folder (or its `StudyFiles`) and returns, for every task, every
grouping the study names (config `groupings`) and every group of languages under it:

- "answer": one row per (tuned method, task, grouping, group): answer(m, g) = delta(m, g) -
  delta(full, g) on the task's primary measure, each method's seeds averaged per query first,
  with its 95% CI, p and p Holm-corrected over the methods of its family (methods[].family:
  "core" is the headline; a learning-rate variant or a one-seed extra is its own family)
  compared with full, the minimum detectable effect and the verdict (xlir.robustness);
- "interaction": one row per (method, task, grouping) with a contrast pair (CONTRASTS):
  delta(m, unseen) - delta(m, seen) under "pretraining", and the like;
- "delta": delta(m, g) of full and of each tuned method, for the figures;
- "seeds": the spread of each method's macro over its seeds (3 seeds or more);
- "missing": why a task has no rows (no frozen or no full fine-tuning in the study);
- "selection" and "sensitivity": the learning rate each tuning method's variants would have
  chosen on the held-out `select_on` task, and each variant's change elsewhere (xlir.selection);
- "swap": MAD-X with the language-adapter swap (methods[].swap) against its twin, the madx
  method whose task adapter it uses (same options, train settings and seed): swap - twin on
  the primary measure per group of every grouping, over all languages ("all") and per
  language, paired per query (seeds both share averaged first), with CI, p and MDE; the
  per-language p are Holm-corrected over the task's languages;
- "xqg": each xQG base system with its passages augmented at the alpha chosen on the held-out
  task (xqg/selection.json) against the same system without, on the xQG task, grouped the
  same way plus "generated" / "other" (languages with and without generated questions).

`decision_table(study_dir)` is the answer rows alone. The result is a pure function of the
folder's files and SETTINGS (all randomness is seeded), so a committed study's table can be
recomputed and compared. `to_csv` writes rows as CSV.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from xlir import selection
from xlir.report_files import StudyFiles
from xlir.robustness import CONTRASTS, robustness, seed_average
from xlir.stats import contrast, holm, paired_differences

SETTINGS = {"alpha": 0.05, "n_resamples": 1000, "n_permutations": 2000, "seed": 0}
ANSWER_COLUMNS = ["family", "method", "task", "grouping", "group", "measure", "answer", "ci_low",
                  "ci_high", "p", "p_holm", "mde", "n_queries", "n_languages", "n_seeds",
                  "verdict", "languages"]
INTERACTION_COLUMNS = ["family", "method", "task", "grouping", "contrast", "measure", "estimate",
                       "ci_low", "ci_high", "p", "p_holm", "p_languages", "mde", "n_queries",
                       "n_languages", "n_seeds", "verdict"]
SWAP_COLUMNS = ["method", "twin", "task", "grouping", "group", "measure", "estimate", "ci_low",
                "ci_high", "p", "p_holm", "mde", "n_queries", "n_languages", "n_seeds", "verdict"]


def decision(study: str | Path | StudyFiles) -> dict:
    files = study if isinstance(study, StudyFiles) else StudyFiles(study)
    frozen, full = files.label_of("frozen"), files.label_of("full")
    out = {"settings": {**SETTINGS, "frozen": frozen, "full": full,
                        "groupings": files.groupings},
           "answer": [], "interaction": [], "delta": [], "seeds": [], "missing": [],
           "selection": [], "sensitivity": [], "swap": [], "xqg": []}
    for task in files.metrics:
        measure = files.primary(task)
        runs = {}
        for label, _ in files.methods:
            if names := files.seed_systems(label, task):
                runs[label] = [files.scores(task, n, measure) for n in names]
        lacking = [what for what, label in (("zero-shot (frozen)", frozen),
                                            ("full fine-tuning", full)) if label not in runs]
        if lacking:
            out["missing"].append(f"{task}: no {' and no '.join(lacking)} run, so no answer: "
                                  "answer(m, g) = delta(m, g) - delta(full, g)")
            continue
        for grouping in files.groupings:
            for family, labels in _families(files, runs, frozen, full):
                table = robustness({m: runs[m] for m in (frozen, full, *labels)},
                                   files.language_groups(task, grouping), full=full,
                                   frozen=frozen, contrast_groups=CONTRASTS.get(grouping),
                                   **SETTINGS)
                shown = labels if family != CORE else [full, *labels]  # full once, in core
                key = {"family": family, "task": task, "grouping": grouping}
                for group, rows in table["answer"].items():
                    out["answer"] += [_answer_row(m, key, group, measure, c, len(runs[m]))
                                      for m, c in rows.items()]
                for group, rows in table["delta"].items():
                    out["delta"] += [{"method": m, **key, "group": group, "measure": measure,
                                      **_numbers(c)} for m, c in rows.items() if m in shown]
                pair = " - ".join(CONTRASTS.get(grouping, ()))
                out["interaction"] += [{"method": m, **key, "contrast": pair, "measure": measure,
                                        **_numbers(c), "p_holm": _num(c.p_holm),
                                        "p_languages": _num(c.p_languages),
                                        "n_seeds": len(runs[m]), "verdict": c.verdict}
                                       for m, c in table["interaction"].items() if m in shown]
                if grouping == files.groupings[0]:  # the seeds do not depend on the grouping
                    out["seeds"] += [{"method": m, "task": task, "measure": measure,
                                      "n_seeds": s.n_seeds, "mean": s.mean, "sd": s.sd,
                                      "min": s.min, "max": s.max}
                                     for m, s in table["seeds"].items() if m in shown]
    out["swap"] = _swap_rows(files)
    out["xqg"] = _xqg_rows(files)
    out["selection"] = [_clean(r) for r in selection.lr_choice(files, **SETTINGS)]
    out["sensitivity"] = [_clean(r) for r in
                          selection.lr_sensitivity(files, out["selection"], **SETTINGS)]
    return out


def _swap_rows(files: StudyFiles) -> list[dict]:
    specs = files.config["methods"]
    rows = []
    for m in (m for m in specs if m.get("swap")):
        label = m.get("label") or m["name"]
        twins = [t.get("label") or t["name"] for t in specs if t["name"] == "madx"
                 and not t.get("swap") and (t.get("options") or {}) == (m.get("options") or {})
                 and (t.get("train") or {}) == (m.get("train") or {})]
        for twin in twins[:1]:
            seeds = [s for s in files.method_seeds[label] if s in files.method_seeds[twin]]
            for task in files.metrics:
                names = [(f"{label}-s{s}", f"{twin}-s{s}") for s in seeds
                         if {f"{label}-s{s}", f"{twin}-s{s}"} <= files.metrics[task].keys()]
                if not names:
                    continue
                measure = files.primary(task)
                a = seed_average([files.scores(task, x, measure) for x, _ in names])
                b = seed_average([files.scores(task, y, measure) for _, y in names])
                key = {"method": label, "twin": twin, "task": task, "measure": measure,
                       "n_seeds": len(names)}
                rows += paired_rows(files, task, a, b, key, ("swap helps", "swap hurts"))
    return rows


def _xqg_rows(files: StudyFiles) -> list[dict]:
    """Each xQG base system at the alpha chosen on the held-out task (xqg/selection.json)
    against itself without augmentation, on the xQG task: all languages, the languages that
    got generated questions and the others, each group of every grouping, each language."""
    task = files.config.get("xqg", {}).get("task")
    chosen = files.xqg_selection.get("systems", {})
    if task not in files.metrics or not chosen:
        return []
    measure, rows = files.primary(task), []
    generated = set(files.config["xqg"].get("languages") or [])
    for base, rec in chosen.items():
        alpha = float(rec["alpha"])
        key = {"base": base, "alpha": alpha, "select_on": files.xqg_selection["select_on"],
               "task": task, "measure": measure, "n_seeds": 1}
        name = f"xqg-{base}-a{alpha:g}"
        if alpha == 0 or name not in files.metrics[task] or base not in files.metrics[task]:
            rows.append({**key, "grouping": "all", "group": "all",
                         "verdict": "not augmented (alpha 0 chosen)"})
            continue
        a, b = files.scores(task, name, measure), files.scores(task, base, measure)
        extra = {"xqg": [(g, sorted(lang for lang in a if (lang in generated) == (g == "generated")))
                         for g in ("generated", "other")]}
        rows += paired_rows(files, task, a, b, key, ("xQG helps", "xQG hurts"), extra)
    return rows


def paired_rows(files: StudyFiles, task: str, a: dict, b: dict, key: dict,
                 words: tuple[str, str], extra: dict | None = None) -> list[dict]:
    """a - b paired per query (per-language score dicts): over all languages, each group of
    every grouping (and of `extra` {grouping: [(group, languages)]}), and each language
    (p Holm-corrected over the languages), with CI, p, MDE and a verdict from `words`
    (better, worse) where p < alpha."""
    settings = {k: SETTINGS[k] for k in ("n_resamples", "n_permutations", "seed")}
    diffs = paired_differences(a, b)
    groups = [("all", "all", sorted(diffs))]
    for grouping in files.groupings:
        members: dict[str, list[str]] = {}
        for lang, g in files.language_groups(task, grouping).items():
            members.setdefault(g, []).append(lang)
        groups += [(grouping, g, ls) for g, ls in sorted(members.items())]
    groups += [(grouping, g, ls) for grouping, pairs in (extra or {}).items() for g, ls in pairs if ls]
    rows = []
    for grouping, group, langs in groups:
        c = contrast({lang: diffs[lang] for lang in langs}, **settings)
        rows.append({**key, "grouping": grouping, "group": group, **_numbers(c),
                     "verdict": _verdict(c.estimate, c.p, words)})
    return rows + language_rows(diffs, key, words)


def language_rows(diffs: dict, key: dict, words: tuple[str, str]) -> list[dict]:
    """One row per language of per-query differences `diffs` (stats.paired_differences):
    estimate, CI, p Holm-corrected over the languages, MDE and a verdict from `words`."""
    settings = {k: SETTINGS[k] for k in ("n_resamples", "n_permutations", "seed")}
    per = {lang: contrast({lang: d}, **settings) for lang, d in diffs.items()}
    adjusted = holm({lang: c.p for lang, c in per.items()})
    return [{**key, "grouping": "language", "group": lang, **_numbers(c),
             "p_holm": _num(adjusted[lang]), "verdict": _verdict(c.estimate, adjusted[lang], words)}
            for lang, c in per.items()]


def _verdict(estimate: float, p: float, words: tuple[str, str]) -> str:
    if not p < SETTINGS["alpha"]:
        return "no difference detectable"
    return words[0] if estimate > 0 else words[1]


def _clean(row: dict) -> dict:
    return {k: _num(v) if isinstance(v, float) else v for k, v in row.items()}


CORE = "core"  # the headline family (study_config.MethodSpec.family)


def _families(files: StudyFiles, runs: dict, frozen: str, full: str) -> list[tuple[str, list[str]]]:
    """(family, its tuned labels with runs) in config order, core first: each family is
    compared with full (and Holm-corrected) on its own."""
    families = [CORE] + [f for f in dict.fromkeys(files.families.values()) if f != CORE]
    out = []
    for family in families:
        labels = [m for m in files.family_methods(family) if m in runs and m not in (frozen, full)]
        if family == CORE or labels:
            out.append((family, labels))
    return out


def decision_table(study_dir: str | Path) -> list[dict]:
    """One row per (method, task, grouping, group): the answer and its verdict."""
    return decision(study_dir)["answer"]


def _answer_row(method: str, key: dict, group: str, measure: str, c, n_seeds: int) -> dict:
    n = _numbers(c)
    return {"method": method, **key, "group": group, "measure": measure,
            "answer": n.pop("estimate"), **n, "p_holm": _num(c.p_holm), "n_seeds": n_seeds,
            "verdict": c.verdict, "languages": list(c.languages)}


def _numbers(c) -> dict:
    return {"estimate": c.estimate, "ci_low": _num(c.ci[0]), "ci_high": _num(c.ci[1]),
            "p": _num(c.p), "mde": _num(c.mde), "n_queries": c.n_queries,
            "n_languages": len(c.languages)}


def _num(x: float) -> float | None:
    """JSON has no NaN: an undefined number (an MDE from one query) is null."""
    return None if x is None or math.isnan(x) else float(x)


def to_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: " ".join(v) if isinstance(v, list) else ("" if v is None else v)
                         for k, v in row.items()})
    return buf.getvalue()
