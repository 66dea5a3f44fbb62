"""The report's sections, in the order a reader needs them. Each takes the study's files and the
page being built; none computes anything a study did not already write, except the
significance tests over stored per-query scores and simple means."""

from __future__ import annotations

import math

from xlir import report_plots
from xlir.report import Page, StudyFiles, macro, seen_unseen_deltas, significance


def _f(x: float, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def headline(files: StudyFiles, page: Page) -> None:
    page.heading("Headline")
    sampled = [f"{t}: {v['queries']} queries, {v['documents']} documents"
               for t, v in files.tasks.items()]
    page.para("Which way of tuning keeps the retriever working in languages it never saw? "
              "Macro averages of each task's headline measure over languages seen and unseen "
              "in the encoder's pretraining. Tasks as evaluated: " + "; ".join(sampled) + ".")
    tasks = list(files.metrics)
    header = ["system"] + [f"{t} {g} ({files.primary(t)})" for t in tasks
                           for g in ("seen", "unseen")]
    systems = sorted({s for t in tasks for s in files.metrics[t]}, key=_system_order)
    rows = []
    for system in systems:
        row = [system]
        for t in tasks:
            m = files.metrics[t].get(system)
            for g in ("seen", "unseen"):
                row.append(_f(m.get("seen_unseen", {}).get(g, {}).get(files.primary(t)))
                           if m else "")
        rows.append(row)
    page.table(header, rows, "seen/unseen: is the language among XLM-R's 100 pretraining "
               "languages (the default encoder's). '-' where a task has no language of a group. "
               + _titles_note(files))


def _titles_note(files: StudyFiles) -> str:
    with_titles = [t.get("label") or t["name"] for t in files.config.get("tasks", [])
                   if t.get("titles", True)]
    if not with_titles:
        return "Every system reads passages as their text alone (titles: false)."
    return ("Dense systems encode passages as '{title} {text}' on tasks that keep titles ("
            f"{', '.join(with_titles)}), while BM25 indexes the text alone: on AfriQA the title alone is worth +.085 "
            "MRR@10 to zero-shot e5-small (BENCHMARKS.md), part of any dense-vs-BM25 gap "
            "there. `titles: false` on a task gives every system the text alone.")


def _system_order(system: str) -> tuple:
    order = ["frozen", "full", "lora", "dora", "ia3", "prefix", "prompt", "bottleneck", "madx",
             "bitfit"]
    kind = 2 if system.startswith("bm25") else 3 if system.startswith("hybrid") else \
        4 if system.startswith("xqg") else 1
    base = system.split("-s")[0].removeprefix("hybrid-").removeprefix("xqg-")
    return (kind, order.index(base) if base in order else len(order), system)


def per_language(files: StudyFiles, page: Page) -> None:
    page.heading("Per-language results")
    page.para("Systems as rows, languages as columns. Markers: + significantly better / "
              "- significantly worse than the zero-shot model (frozen); * better / ~ worse than "
              "full fine-tuning; paired randomisation test, Holm-corrected over languages, 0.05.")
    for task, systems in files.metrics.items():
        measure = files.primary(task)
        page.heading(f"{task} ({measure})", level=3)
        ref0 = next((m for s, m in systems.items() if s.startswith("frozen-")), None)
        ref1 = next((m for s, m in systems.items() if s.startswith("full-")), None)
        langs = sorted({lang for m in systems.values() for lang in m["per_language"]})
        rows = []
        for system in sorted(systems, key=_system_order):
            m = systems[system]
            marks = {lang: "" for lang in langs}
            for ref, better, worse in ((ref0, "+", "-"), (ref1, "*", "~")):
                if ref is None or ref is m or measure not in m.get("per_query", {}):
                    continue
                for lang, res in significance(m, ref, measure).items():
                    if res["significant"]:
                        marks[lang] += better if res["delta"] > 0 else worse
            rows.append([system] + [f"{_f(m['per_language'].get(lang, {}).get(measure))} {marks[lang]}"
                                    .rstrip() for lang in langs] + [_f(macro(m, measure))])
        page.table(["system"] + langs + ["macro"], rows)


def robustness(files: StudyFiles, page: Page) -> None:
    page.heading("Robustness: seen vs unseen languages")
    page.para("Change of each tuned model against the zero-shot model, averaged over the "
              "languages seen in pretraining and over those unseen. A method that keeps "
              "retrieval working in unseen languages has a non-negative unseen bar.")
    for task, deltas in seen_unseen_deltas(files).items():
        if deltas:
            page.image(f"robustness-{task}.png", report_plots.robustness(deltas, files.primary(task)),
                       f"{task}: change vs zero-shot, seen vs unseen languages")


def params(files: StudyFiles, page: Page) -> None:
    page.heading("Quality vs trainable parameters")
    for task, systems in files.metrics.items():
        measure = files.primary(task)
        points = {}
        for system in files.dense_systems():
            if system in systems:
                trainable = files.models.get(system, {}).get("trainable_params", 0)
                points[system] = (trainable, macro(systems[system], measure))
        if points:
            page.image(f"params-{task}.png", report_plots.quality_vs_params(points, measure),
                       f"{task}: macro {measure} vs trainable parameters")


def xqg(files: StudyFiles, page: Page) -> None:
    page.heading("Query-generation augmentation (xQG)")
    xconf = files.config.get("xqg", {})
    if not xconf.get("enabled"):
        page.para("xQG was not enabled in this study.")
        return
    task = xconf["task"]
    systems = files.metrics.get(task, {})
    measure = files.primary(task)
    curves: dict[str, dict[float, float]] = {}
    for name, m in systems.items():
        if name.startswith("xqg-"):
            base, alpha = name.removeprefix("xqg-").rsplit("-a", 1)
            curves.setdefault(base, {})[float(alpha)] = macro(m, measure)
            if base in systems:
                curves[base][0.0] = macro(systems[base], measure)
    if curves:
        page.image("xqg-alpha.png", report_plots.alpha_sweep(curves, measure),
                   f"{task}: alpha sweep (alpha 0 = the same model without augmentation)")
        base = next(iter(curves))
        best_alpha = max((a for a in curves[base] if a > 0), key=lambda a: curves[base][a])
        with_aug = systems[f"xqg-{base}-a{best_alpha:g}"]
        gains = {lang: with_aug["per_language"][lang][measure] - v[measure]
                 for lang, v in systems[base]["per_language"].items()
                 if lang in with_aug["per_language"]}
        page.image("xqg-gain.png", report_plots.per_language_bars(gains, f"xQG gain in {measure}"),
                   f"{task}: gain per language of {base} with xQG (alpha {best_alpha:g})")
        sig = significance(with_aug, systems[base], measure)
        page.table(["language", "without", "with xQG", "delta", "p (Holm)", "significant"],
                   [[lang, _f(systems[base]["per_language"][lang][measure]),
                     _f(with_aug["per_language"][lang][measure]), _f(r["delta"]),
                     _f(r["p_holm"]), "yes" if r["significant"] else "no"]
                    for lang, r in sig.items()])
    quality = files.xqg_quality.get("per_language", {})
    if quality:
        page.heading("Generated-query quality", level=3)
        page.table(["language", "queries", "language-ID agreement", "duplicates",
                    "mean length (words)"],
                   [[lang, q.get("rows", ""), _f(q.get("langid_agreement")),
                     _f(q.get("duplicate_rate")), _f(q.get("mean_words"), 1)]
                    for lang, q in quality.items()],
                   files.xqg_quality.get("classifier_note", ""))
        rows = [[lang, ex] for lang, q in quality.items() for ex in q.get("examples", [])[:3]]
        if rows:
            page.table(["language", "generated question (examples)"], rows)


def fertility(files: StudyFiles, page: Page) -> None:
    page.heading("Tokenizer fertility")
    page.para("Pieces per word of the encoder's tokenizer on each language's queries, against "
              "the zero-shot model's quality: languages the tokenizer shreds tend to fail.")
    fert = files.fertility
    if not fert:
        page.para("No fertility measurements in this study.")
        return
    rows = [[lang, _f(v.get("pieces_per_word"), 2), _f(v.get("unk_rate"), 4), v.get("n_words", "")]
            for lang, v in sorted(fert.items())]
    page.table(["language", "pieces per word", "unknown-piece rate", "words"], rows)
    for task, systems in files.metrics.items():
        base = next((m for s, m in systems.items() if s.startswith("frozen-")), None)
        if base is None:
            continue
        seen = base.get("seen", {})
        points = {lang: (fert[lang]["pieces_per_word"], v[files.primary(task)],
                         bool(seen.get(lang, False)))
                  for lang, v in base["per_language"].items() if lang in fert}
        if len(points) >= 3:
            page.image(f"fertility-{task}.png",
                       report_plots.fertility_scatter(points, files.primary(task)),
                       f"{task}: tokenizer fertility vs zero-shot {files.primary(task)}")


def costs(files: StudyFiles, page: Page) -> None:
    page.heading("Costs")
    rows = []
    for system in files.dense_systems():
        m = files.models.get(system, {})
        retrieve = sum(t.get(system, {}).get("retrieve_s", 0) for t in files.metrics.values())
        rows.append([system, f"{m.get('trainable_parameters', 0):,}",
                     f"{m.get('total_parameters', 0):,}" if m else "-",
                     _f(m.get("saved_bytes", 0) / 1e6, 2) if m else "-",
                     _f(m.get("wall_time_s"), 0) if m else "0", _f(m.get("peak_rss_mb"), 0) if m else "-",
                     _f(retrieve, 0)])
    page.table(["system", "trainable params", "total params", "saved size (MB)", "train time (s)",
                "peak RSS (MB)", "encode + search time, all tasks (s)"], rows,
               "frozen saves nothing: it is the packaged encoder. Times on the machine below.")
    if files.study:
        page.para(f"Study wall time, summed over every invocation (a resumed study adds only "
                  f"what it ran): {files.study.get('wall_s_total', '?')} s. Peak RSS is the "
                  "training process's peak; in a study it includes the stages run before it.")


def environment(files: StudyFiles, page: Page) -> None:
    page.heading("Environment")
    env = files.environment
    page.table(["package", "version"], [[k, v] for k, v in env.get("packages", {}).items()])
    page.table(["machine", "value"], [[k, str(v)] for k, v in env.get("machine", {}).items()])
    models = env.get("models", {})
    page.table(["model", "source and checksum"],
               [[k, ", ".join(f"{a}={b}" for a, b in v.items())] for k, v in models.items()])
    data = env.get("data", {})
    page.table(["dataset", "pinned source"],
               [[k, ", ".join(f"{a}={b}" for a, b in v.items())] for k, v in data.items()])
    page.para(f"Seeds: {env.get('seeds', {})}. Resolved study config: config.resolved.json.")
