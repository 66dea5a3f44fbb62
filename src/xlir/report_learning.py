"""The report's sections on what training learned and what it cost.

- "Learning vs forgetting" (`movement`): did each model move (English dev change, embedding
  drift against the frozen model) and what did it cost in unseen languages;
- "Learning rates and other methods" (`variants_section`), from what report_decision computed
  (decision["selection"], ["sensitivity"] and the answer rows of families other than "core"):
  which learning rate the held-out English dev set would choose for each tuning method, what
  each learning rate does to the unseen languages, and the answer of every other family of
  methods, Holm-corrected within its family.
"""

from __future__ import annotations

from xlir import report_plots
from xlir.report_files import StudyFiles, macro
from xlir.report_page import Page
from xlir.report_sections import CORE, _f, answer_table
from xlir.selection import choice_sentence

TITLE = "Learning rates and other methods"


def variants_section(files: StudyFiles, page: Page, decision: dict) -> None:
    page.heading(TITLE)
    choice, sensitivity = decision.get("selection", []), decision.get("sensitivity", [])
    others = [r for r in decision["answer"] if r.get("family", CORE) != CORE]
    if not choice and not others:
        page.para("The study ran each method with one setting, in one family of comparisons.")
        return
    if choice:
        page.heading("Learning rate, chosen on held-out English dev", level=3)
        applied = any(r.get("applied") for r in choice)
        page.table(["method", "label", "lr", f"{choice[0]['task']} {choice[0]['measure']}",
                    "vs reference [95% CI]" if applied else "vs fixed lr [95% CI]", "p",
                    "dev choice"],
                   [[r["method"], r["label"], "-" if r["lr"] is None else f"{r['lr']:g}",
                     _f(r["score"]), ("chosen here, applied" if r.get("applied")
                                      else "fixed beforehand") if r["reference"] else
                     f"{r['diff']:+.3f} [{_f(r['ci_low'], sign='+')}, {_f(r['ci_high'], sign='+')}]",
                     "" if r["reference"] else _f(r["p"]), "yes" if r["chosen"] else ""]
                    for r in choice],
                   f"Each variant at seed {choice[0]['seed']}, on {choice[0]['task']} alone (held "
                   "out from training, never a test): paired differences from "
                   + ("the reference, the method's own system (its learning rate fixed before "
                      "any evaluation, or where marked the rate this table chose, applied at "
                      "every seed)" if applied else
                      "the learning rate fixed before any evaluation")
                   + ", bootstrap CI, sign-flip p. " + files.pools([choice[0]["task"]]))
        for sentence in choice_sentence(choice):
            page.para(sentence)
    if sensitivity:
        _sensitivity(files, page, sensitivity)
    for family in dict.fromkeys(r["family"] for r in others):
        rows = [r for r in others if r["family"] == family]
        for grouping in dict.fromkeys(r["grouping"] for r in rows):
            page.heading(f"Family '{family}', languages grouped by {grouping}", level=3)
            answer_table(files, page, [r for r in rows if r["grouping"] == grouping])


def _sensitivity(files: StudyFiles, page: Page, rows: list[dict]) -> None:
    """Each learning rate's change against zero-shot per task and group, and the trade-off
    plot: English dev change (x) against unseen-language change (y), one line per method."""
    columns = list(dict.fromkeys((r["task"], r["group"]) for r in rows))
    cells = {(r["label"], r["task"], r["group"]): r for r in rows}
    labels = list(dict.fromkeys(r["label"] for r in rows))
    lr = {r["label"]: r["lr"] for r in rows}
    page.table(["label", "lr"] + [f"{t} {g}" for t, g in columns],
               [[label, "-" if lr[label] is None else f"{lr[label]:g}"] +
                [_cell(cells.get((label, t, g))) for t, g in columns] for label in labels],
               f"delta(m, g) at seed {rows[0]['seed']} against the zero-shot model, languages "
               f"grouped by {rows[0]['grouping']}, [95% CI]. "
               + files.pools(t for t, _ in columns))
    learn = files.config.get("select_on")
    for task in dict.fromkeys(r["task"] for r in rows if r["task"] != learn):
        curves: dict[str, list[tuple[float, float, str]]] = {}
        for label in labels:
            x = cells.get((label, learn, "seen")) or next(
                (r for r in rows if r["label"] == label and r["task"] == learn), None)
            y = cells.get((label, task, "unseen"))
            if x and y:
                method = next(r["method"] for r in rows if r["label"] == label)
                curves.setdefault(method, []).append(
                    (x["estimate"], y["estimate"], "-" if lr[label] is None else f"{lr[label]:g}"))
        if curves:
            page.image(f"lr-trade-off-{task}.png", report_plots.lr_trade_off(
                curves, f"{learn}: change vs zero-shot", f"{task}: change, unseen languages"),
                f"{task}: what each learning rate learns in English (x) and costs in unseen "
                "languages (y), one line per method, points labelled by learning rate")


def _cell(r: dict | None) -> str:
    if r is None:
        return ""
    return f"{r['estimate']:+.3f} [{_f(r['ci_low'], sign='+')}, {_f(r['ci_high'], sign='+')}]"


def in_domain_task(files: StudyFiles) -> str | None:
    """The task that measures learning: the one whose only language is English (the held-out
    dev split of the training language), if the study has one."""
    return next((t for t, systems in files.metrics.items()
                 if set(next(iter(systems.values()))["per_language"]) == {"eng_Latn"}), None)


def group_change(files: StudyFiles, task: str, system: str, reference: str, group: str,
                 grouping: str = "pretraining") -> float:
    """Mean over the languages of `group` of system's per-language score minus the
    reference's, on the task's primary measure (nan when the group has no language)."""
    measure, systems = files.primary(task), files.metrics[task]
    groups = files.language_groups(task, grouping)
    mine, ref = systems[system]["per_language"], systems[reference]["per_language"]
    diffs = [mine[lang][measure] - ref[lang][measure]
             for lang, g in groups.items() if g == group and lang in mine and lang in ref]
    return sum(diffs) / len(diffs) if diffs else float("nan")


def movement(files: StudyFiles, page: Page) -> None:
    """Did each model move, and did what it learned in English cost it elsewhere?"""
    page.heading("Learning vs forgetting")
    frozen = files.label_of("frozen")
    learn = in_domain_task(files)
    tuned = [s for s in files.dense_systems() if files.systems[s].method != "frozen"]
    if frozen is None or not tuned:
        page.para("No zero-shot (frozen) system and tuned system to compare.")
        return
    ref_of = {s: f"{frozen}-s{files.systems[s].seed}" for s in tuned}
    drift = files.drift.get("systems", {})
    unseen_tasks = [t for t in files.metrics if t != learn and any(
        g == "unseen" for g in files.language_groups(t, "pretraining").values())]
    header = ["system"] + ([f"{learn} change"] if learn else [])
    header += [f"{t} unseen change" for t in unseen_tasks]
    drift_tasks = [t for t in files.metrics if any(t in drift.get(s, {}) for s in tuned)]
    header += [f"{t} query drift" for t in drift_tasks]
    rows = []
    for s in tuned:
        row = [s]
        if learn:
            row.append(_f(_change(files, learn, s, ref_of[s]), sign="+"))
        row += [_f(group_change(files, t, s, ref_of[s], "unseen"), sign="+")
                if s in files.metrics[t] and ref_of[s] in files.metrics[t] else "-"
                for t in unseen_tasks]
        row += [_f(drift.get(s, {}).get(t, {}).get("queries", {}).get("mean"), 4)
                for t in drift_tasks]
        rows.append(row)
    page.table(header, rows,
               "change: macro of the task's headline measure minus the zero-shot model's "
               f"({learn or 'no English dev task'}: the in-domain learning measure); unseen "
               "change: the same, averaged over the languages outside the encoder's "
               "pretraining; query drift: " + files.drift.get("probe", "not measured (the study "
               "folder held no embeddings when its results were exported)") + ".")
    if learn and unseen_tasks:
        for t in unseen_tasks:
            points: dict[str, list[tuple[float, float]]] = {}
            for s in tuned:
                if s in files.metrics[t] and s in files.metrics[learn]:
                    points.setdefault(files.systems[s].label, []).append(
                        (_change(files, learn, s, ref_of[s]),
                         group_change(files, t, s, ref_of[s], "unseen")))
            if points:
                page.image(f"learning-vs-forgetting-{t}.png", report_plots.learning_vs_forgetting(
                    points, f"{learn}: change in macro {files.primary(learn)} vs zero-shot",
                    f"{t}: change in {files.primary(t)}, unseen languages"),
                    f"{t}: unseen-language change against English dev change, one point per seed")


def _change(files: StudyFiles, task: str, system: str, reference: str) -> float:
    systems, measure = files.metrics[task], files.primary(task)
    if system not in systems or reference not in systems:
        return float("nan")
    return macro(systems[system], measure) - macro(systems[reference], measure)
