"""The report's sections, in the order a reader needs them. Each takes the study's files and the
page being built (the headline and robustness sections also the decision computed once by
report_decision); none computes anything a study did not already write, except significance
tests over stored per-query scores and simple means."""

from __future__ import annotations

import math
from pathlib import PurePath

from xlir import report_plots
from xlir.errors import XlirError
from xlir.report_files import StudyFiles, macro
from xlir.report_page import Page
from xlir.robustness import paired_reference, per_language_tests, seed_average

ALPHA = 0.05


def _f(x: float | None, digits: int = 3, sign: str = "") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:{sign}.{digits}f}"


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def headline(files: StudyFiles, page: Page, decision: dict) -> None:
    page.heading("Headline")
    sampled = [f"{t}: {v['queries']} queries, {v['documents']} documents"
               for t, v in files.tasks.items()]
    full = decision["settings"]["full"]
    page.para("Does parameter-efficient tuning keep the retriever working in languages it never "
              f"saw better than full fine-tuning ({full}) does? Each cell is answer(m, g) = "
              "delta(m, g) - delta(full, g), delta being the change against the zero-shot "
              "model averaged over the languages of group g, on each task's headline measure. "
              "Tasks as evaluated: " + "; ".join(sampled) + ". " + _titles_note(files))
    for reason in decision["missing"]:
        page.para(reason + ".")
    for grouping in files.groupings:
        rows = [r for r in decision["answer"]
                if r["grouping"] == grouping and r.get("family", CORE) == CORE]
        if not rows:
            continue
        page.heading(f"Answer, languages grouped by {grouping}", level=3)
        answer_table(files, page, rows)
        for task in dict.fromkeys(r["task"] for r in rows):
            page.para(answer_sentence([r for r in rows if r["task"] == task]))


CORE = "core"  # the headline family of methods (report_decision.CORE)


def answer_table(files: StudyFiles, page: Page, rows: list[dict]) -> None:
    """Method x (task, group) cells of answer rows: estimate [CI] and the decision."""
    columns = list(dict.fromkeys((r["task"], r["group"]) for r in rows))
    cells = {(r["method"], r["task"], r["group"]): r for r in rows}
    methods = list(dict.fromkeys(r["method"] for r in rows))
    page.table(["method"] + [f"{t} {g}" for t, g in columns],
               [[m] + [_answer_cell(cells.get((m, t, g))) for t, g in columns]
                for m in methods], _answer_note(files, rows))


def _answer_cell(row: dict | None) -> str:
    if row is None:
        return ""
    return f"{row['answer']:+.3f} {_ci(row)} {_word(row)}"


def _ci(row: dict) -> str:
    return f"[{_f(row['ci_low'], sign='+')}, {_f(row['ci_high'], sign='+')}]"


def _word(row: dict) -> str:
    if row["verdict"].startswith("no difference"):
        return f"no difference (±{_f(row['mde'])})"
    return "more robust" if row["verdict"].startswith("more") else "less robust"


def _answer_note(files: StudyFiles, rows: list[dict]) -> str:
    measures = ", ".join(dict.fromkeys(f"{r['task']}: {r['measure']}" for r in rows))
    seeds = ", ".join(dict.fromkeys(f"{r['method']} {r['n_seeds']}" for r in rows))
    return (f"Each cell: answer [95% CI] and the decision. 'more robust' = more robust than full "
            "fine-tuning, 'less robust' = less robust than it (both at Holm-corrected "
            f"p < {ALPHA}, Holm over the methods of the family compared with full in that group); "
            "'no difference (±x)' = no "
            "difference detectable at the minimum detectable effect x (80% power), which is not "
            "'no effect'. CI: bootstrap of queries within languages; p: sign-flip test "
            f"stratified by language. Measures: {measures}. Seeds averaged per query first "
            f"(seeds per method: {seeds}). All numbers: decision.json / decision.csv.")


def answer_sentence(rows: list[dict]) -> str:
    """One sentence stating a task's answer under one grouping, group by group."""
    r0 = rows[0]
    parts = []
    for group in dict.fromkeys(r["group"] for r in rows):
        sub = [r for r in rows if r["group"] == group]
        clauses = [_clause(r) for r in sub]
        n = sub[0]["n_languages"]
        parts.append(f"in the {group} languages ({n} language{'s' * (n != 1)}, "
                     f"{sub[0]['n_queries']} queries) " + ", ".join(clauses))
    return (f"On {r0['task']} ({r0['measure']}, languages grouped by {r0['grouping']}): "
            + "; ".join(parts) + ".")


def _clause(r: dict) -> str:
    lo, hi = _f(r["ci_low"], sign="+"), _f(r["ci_high"], sign="+")
    ci = f"{r['answer']:+.3f}, 95% CI {lo} to {hi}"
    if r["verdict"].startswith("more"):
        return f"{r['method']} is more robust than full FT ({ci}, Holm p {_f(r['p_holm'])})"
    if r["verdict"].startswith("less"):
        return f"{r['method']} is less robust than full FT ({ci}, Holm p {_f(r['p_holm'])})"
    return f"{r['method']} shows no difference detectable at ±{_f(r['mde'])} ({ci})"


def _titles_note(files: StudyFiles) -> str:
    with_titles = [t.get("label") or t["name"] for t in files.config.get("tasks", [])
                   if t.get("titles", True)]
    if not with_titles:
        return "Every system reads passages as their text alone (titles: false)."
    return ("Dense systems and BM25 both read passages as '{title} {text}' on tasks that keep "
            f"titles ({', '.join(with_titles)}); `titles: false` on a task gives every system "
            "the text alone.")


def per_language(files: StudyFiles, page: Page) -> None:
    page.heading("Per-language results")
    frozen, full = files.label_of("frozen"), files.label_of("full")
    page.para("Systems as rows, languages as columns, the task's headline measure; the "
              "markers beside each table say which differences are significant.")
    for task, systems in files.metrics.items():
        measure = files.primary(task)
        page.heading(f"{task} ({measure})", level=3)
        langs = sorted({lang for m in systems.values() for lang in m["per_language"]})
        rows = []
        for system in sorted(systems, key=files.order):
            m = systems[system]
            marks = {lang: "" for lang in langs}
            for ref, better, worse in ((frozen, "+", "-"), (full, "*", "~")):
                for lang, (d, p) in _tests(files, task, system, ref, measure).items():
                    if p < ALPHA:
                        marks[lang] += better if d > 0 else worse
            cells = [f"{_f(m['per_language'].get(lang, {}).get(measure))} {marks[lang]}".rstrip()
                     for lang in langs]
            rows.append([system, *cells, _f(macro(m, measure))])
        page.table(["system"] + langs + ["macro"], rows,
                   _marker_note(frozen, full) + " " + files.sizes(task))


def _marker_note(frozen: str | None, full: str | None) -> str:
    return (f"Markers: + significantly better / - significantly worse than the zero-shot model "
            f"({frozen}) of the same seed; * significantly better / ~ significantly worse than "
            f"full fine-tuning ({full}) of the same seed. A hybrid is compared with the hybrid of "
            "that model and seed, an xQG system with the dense models of its seed, BM25 with "
            "their average over seeds. Paired randomisation test per language, Holm-corrected "
            f"over the languages, p < {ALPHA}. No marker: no significant difference, or no such "
            "reference in the study.")


def _tests(files: StudyFiles, task: str, system: str, ref_label: str | None,
           measure: str) -> dict[str, tuple[float, float]]:
    """Per-language (delta, Holm p) of `system` against its paired reference; {} when it has
    none (or is one)."""
    info = files.systems[system]
    if ref_label is None or info.label == ref_label and info.kind in ("dense", "hybrid"):
        return {}
    reference = f"hybrid-{ref_label}" if info.kind == "hybrid" else ref_label
    try:
        refs = paired_reference(system, files.metrics[task], reference, known=files.known())
        ref = seed_average([files.scores(task, r, measure) for r in refs])
        return per_language_tests(files.scores(task, system, measure), ref)
    except (XlirError, ValueError):  # no such reference (or seed) in the study: no marker
        return {}


def robustness(files: StudyFiles, page: Page, decision: dict) -> None:
    page.heading("Robustness by language group")
    page.para("Change of each tuned model against the zero-shot model, averaged over the "
              "languages of each group (delta(m, g)), with 95% bootstrap intervals as whiskers. "
              "A method that keeps retrieval working in unseen languages has a non-negative "
              "unseen bar; the decision table compares each bar with full fine-tuning's.")
    for task in files.metrics:
        for grouping in files.groupings:
            rows = [r for r in decision["delta"] if r["task"] == task and r["grouping"] == grouping
                    and r.get("family", CORE) == CORE]  # the other families: their section
            if not rows:
                continue
            bars: dict[str, dict[str, tuple]] = {}
            for r in rows:
                bars.setdefault(r["method"], {})[r["group"]] = (r["estimate"], r["ci_low"],
                                                                r["ci_high"])
            page.image(f"robustness-{task}-{grouping}.png",
                       report_plots.robustness(bars, rows[0]["measure"], grouping),
                       f"{task}: change vs zero-shot by {grouping} group, 95% CI")
    inter = decision["interaction"]
    if inter:
        page.heading("Interaction: does the change differ between groups?", level=3)
        page.table(["method", "task", "grouping", "contrast", "estimate [95% CI]", "p (Holm)",
                    "p (languages)", "decision"],
                   [[r["method"], r["task"], r["grouping"], r["contrast"],
                     f"{r['estimate']:+.3f} {_ci(r)}",
                     _f(r["p_holm"]), _f(r["p_languages"]), r["verdict"]] for r in inter],
                   "estimate: delta(m, A) - delta(m, B) for the contrast 'A - B'. p (Holm): "
                   "sign flips of per-query differences centred per language (null: equal "
                   "deltas), Holm over the methods; p (languages): group labels permuted over "
                   "languages, shown beside it and not used for the decision. 'A > B': the "
                   "method changed A's languages more (for the better) than B's; 'no "
                   "difference detectable at +-x': x is the minimum detectable effect. "
                   + files.pools(r["task"] for r in inter))
    if decision["seeds"]:
        page.table(["method", "task", "seeds", "mean macro", "sd", "min", "max"],
                   [[r["method"], r["task"], r["n_seeds"], _f(r["mean"]), _f(r["sd"]),
                     _f(r["min"]), _f(r["max"])] for r in decision["seeds"]],
                   "Spread of the macro over seeds (methods with 3 seeds or more; sd with "
                   "ddof 1). " + files.pools(r["task"] for r in decision["seeds"]))


def params(files: StudyFiles, page: Page) -> None:
    page.heading("Quality vs trainable parameters")
    for task, systems in files.metrics.items():
        measure = files.primary(task)
        points = {s: (files.models.get(s, {}).get("trainable_params", 0),
                      macro(systems[s], measure)) for s in files.dense_systems() if s in systems}
        if points:
            page.image(f"params-{task}.png", report_plots.quality_vs_params(points, measure),
                       f"{task}: macro {measure} vs trainable parameters")


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
    frozen = files.label_of("frozen")
    for task, systems in files.metrics.items():
        base = next(iter(files.seed_systems(frozen, task)), None) if frozen else None
        if base is None:
            continue
        groups = files.language_groups(task, "pretraining")
        points = {lang: (fert[lang]["pieces_per_word"], v[files.primary(task)],
                         groups.get(lang) == "seen")
                  for lang, v in systems[base]["per_language"].items() if lang in fert}
        if len(points) >= 3:
            page.image(f"fertility-{task}.png",
                       report_plots.fertility_scatter(points, files.primary(task)),
                       f"{task}: tokenizer fertility vs zero-shot {files.primary(task)}")


def swap(files: StudyFiles, page: Page, decision: dict) -> None:
    """MAD-X with the language-adapter swap against its twin (report_decision "swap"), and
    what each target language's adapter was trained on."""
    rows = decision.get("swap", [])
    if not rows and not files.lang_adapters:
        return
    page.heading("MAD-X: the language-adapter swap")
    page.table(["system", "language", "sentences", "from", "dropped (evaluated)", "MLM steps",
                "loss, first 10 steps", "loss, last 10 steps", "time (s)"],
               [[system, lang, f"{m.get('texts', 0):,}",
                 ", ".join(f"{k} {v:,}" for k, v in m.get("sources", {}).items()),
                 ", ".join(f"{k} {v:,}" for k, v in m.get("dropped_as_evaluated", {}).items()) or "0",
                 str(m.get("steps", "-")), _f(m.get("loss_first10")), _f(m.get("loss_last10")),
                 _f(m.get("wall_s"), 0)]
                for system, langs in files.lang_adapters.items() for lang, m in langs.items()],
               "Each target language's adapter (xlir.tuning.lang_adapters, masked language "
               "modelling) on all the mirror's monolingual text of the language, less every "
               "sentence an evaluated split holds as a query or passage (xlir.data.monolingual).")
    if not rows:
        return
    ci = lambda r: f"{r['estimate']:+.3f} [{_f(r['ci_low'], 3, '+')}, {_f(r['ci_high'], 3, '+')}]"  # noqa: E731
    page.table(["method", "vs", "task", "languages", "swap - no swap [95% CI]", "p", "MDE",
                "queries", "verdict"],
               [[r["method"], r["twin"], r["task"],
                 r["group"] if r["grouping"] in ("all", "language") else f"{r['grouping']}: {r['group']}",
                 ci(r), _f(r.get("p_holm", r["p"]), 4), _f(r["mde"], 3), str(r["n_queries"]),
                 r["verdict"]] for r in rows],
               "The same task adapter over two language adapters: each text through its own "
               "language's adapter (swap) or through the source language's (no swap), paired per "
               "query on the task's primary measure. CI: bootstrap over queries within languages; "
               "p: sign-flip test stratified by language (per language: Holm over the task's "
               "languages); MDE at 80% power. " + files.pools(r["task"] for r in rows))


def costs(files: StudyFiles, page: Page) -> None:
    page.heading("Costs")
    rows = []
    for system in files.dense_systems():
        m = files.models.get(system)  # xlir-model.json (tuning.save_tuned); frozen has none
        retrieve = sum(t.get(system, {}).get("retrieve_s", 0) for t in files.metrics.values())
        adapters = files.lang_adapters.get(system, {})
        if m is None and adapters:  # a MAD-X swap system: its twin's task adapter
            rows.append([system, f"{len(adapters)} language adapters", "-", "-",
                         _f(sum(a.get("wall_s", 0) for a in adapters.values()), 0), "-",
                         _f(retrieve, 0)])
            continue
        if m is None:
            rows.append([system, "0 (not trained)" if files.systems[system].method == "frozen"
                         else "-", "-", "-", "-", "-", _f(retrieve, 0)])
            continue
        size = m.get("saved_bytes")  # a key the manifest lacks is "-", never a 0
        trained = (f"0 (linked: {PurePath(m['linked_from']).parent.name}'s training)"  # lr_grid
                   if m.get("linked_from") else _f(m.get("wall_time_s"), 0))
        rows.append([system, _count(m.get("trainable_params")), _count(m.get("total_params")),
                     _f(None if size is None else size / 1e6, 2), trained,
                     _f(m.get("peak_rss_mb"), 0), _f(retrieve, 0)])
    page.table(["system", "trainable params", "total params", "saved size (MB)", "train time (s)",
                "peak RSS (MB)", "encode + search, all tasks (s)"], rows,
               "From each model's xlir-model.json. frozen saves nothing: it is the packaged "
               "encoder. '-': no manifest (not trained, or the study has not reached it). "
               "'linked': an lr_grid method at its variants' seed is the chosen variant's model, "
               "trained once. Times on the machine below.")
    gen, languages = files.xqg_generation, files.config.get("xqg", {}).get("languages", [])
    if "seconds_now" in gen and gen.get("passages") and languages:
        per_1000 = gen["seconds_now"] / gen["passages"] / len(languages) * 1000
        page.para(f"xQG generation: {gen['rows_written_now']:,} questions for "
                  f"{gen['passages']:,} passages in {len(languages)} languages in "
                  f"{gen['seconds_now']:.0f} s ({gen['queries_per_s_now']:.2f} questions/s), "
                  f"{per_1000:.0f} s per 1,000 passages per language (the run that finished the "
                  "file; a resumed run counts only what it wrote).")
    if files.study:
        page.para(f"Study wall time, summed over every invocation (a resumed study adds only "
                  f"what it ran): {files.study.get('wall_s_total', '?')} s. Peak RSS is the "
                  "training process's peak; in a study it includes the stages run before it.")


def leakage(files: StudyFiles, page: Page) -> None:
    """What the trained systems' overlap check dropped (xlir-model.json: leakage, dev_leakage)."""
    groups: dict[tuple, list[str]] = {}
    for system, m in sorted(files.models.items()):
        for kind in ("leakage", "dev_leakage"):
            for source, langs in (m.get(kind) or {}).items():
                for lang, c in langs.items():
                    counts = tuple(c.get(k, 0) for k in ("pairs", "dropped", "question",
                                                         "passage_id", "passage_text"))
                    groups.setdefault((kind, source, lang, counts), []).append(system)
    if not groups:
        return
    page.heading("Leakage")
    rows = [["train" if kind == "leakage" else "dev (checkpoint choice)", source, lang,
             *(f"{n:,}" for n in counts),
             f"all {len(systems)} trained" if len(systems) == len(files.models) and len(systems) > 1
             else ", ".join(systems)]
            for (kind, source, lang, counts), systems in groups.items()]
    page.table(["pairs for", "source", "language", "pairs", "dropped", "by question",
                "by passage id", "by passage text", "systems"], rows,
               "A training or dev pair is dropped, before sampling, when an evaluated split "
               "judges its question or its gold passage (by the passage's id or its normalised "
               "text; xlir.data.checks.drop_leaked); a pair can match on several. From each "
               "model's xlir-model.json.")


def environment(files: StudyFiles, page: Page) -> None:
    page.heading("Environment")
    env = files.environment
    page.table(["package", "version"], [[k, v] for k, v in env.get("packages", {}).items()])
    page.table(["machine", "value"], [[k, str(v)] for k, v in env.get("machine", {}).items()])
    models = env.get("models", {})
    page.table(["model", "source and checksum"],
               [[k, ", ".join(f"{a}={b}" for a, b in v.items())] for k, v in models.items()])
    data = env.get("data", {})
    page.table(["dataset", "licence", "pinned source"],
               [[k, v.get("licence", "-"), ", ".join(f"{a}={b}" for a, b in v.items()
                                                      if a in ("repo", "commit"))]
                for k, v in data.items()],
               "Licence as declared in xlir.data.registry; the source is the upstream "
               "repository at the pinned commit.")
    page.para(f"Seeds: {env.get('seeds', {})}. Resolved study config: config.resolved.json.")
