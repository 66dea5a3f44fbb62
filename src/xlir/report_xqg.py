"""The report's xQG section: what the generated questions add, with the setting chosen on
held-out data.

For each base system that was augmented (e.g. the zero-shot model and the chosen tuned one):
- the alpha sweep on the xQG task: every alpha's macro, its difference from the same system
  without augmentation with a 95% CI (bootstrap over queries within languages), the minimum
  detectable effect, and a sign-flip p Holm-corrected over the alphas;
- the alpha chosen on `xqg.select_on` (xqg/selection.json; alpha 0 = no augmentation) and, per
  language, its gain with a 95% CI and a Holm-corrected p. Without `select_on` the best alpha
  on the xQG task itself is shown and the page says that it is an optimistic, test-chosen one;
- the generated questions' language-ID agreement, duplicates, length and examples.

Pure functions of a study's files (StudyFiles).
"""

from __future__ import annotations

import math

from xlir import report_plots
from xlir.report_files import StudyFiles, macro
from xlir.report_page import Page
from xlir.report_decision import language_rows
from xlir.stats import contrast, holm, paired_differences

ALPHA = 0.05


def _f(x: float | None, digits: int = 3, sign: str = "") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:{sign}.{digits}f}"


def augmented(files: StudyFiles, task: str) -> dict[str, dict[float, str]]:
    """base system -> alpha -> augmented system name, for systems present on `task`."""
    systems = files.metrics.get(task, {})
    out: dict[str, dict[float, str]] = {}
    for name in sorted(systems, key=files.order):
        info = files.systems[name]
        if info.kind == "xqg" and info.base in systems:
            out.setdefault(info.base, {})[info.alpha] = name
    return out


def alpha_sweep(files: StudyFiles, task: str, base: str, by_alpha: dict[float, str],
                measure: str, seed: int = 0) -> list[dict]:
    """One row per alpha: macro, difference from `base` (CI, MDE, p), p Holm over alphas."""
    plain = files.scores(task, base, measure)
    rows = []
    for alpha, name in sorted(by_alpha.items()):
        c = contrast(paired_differences(files.scores(task, name, measure), plain), seed=seed)
        rows.append({"alpha": alpha, "system": name,
                     "macro": macro(files.metrics[task][name], measure),
                     "delta": c.estimate, "ci": c.ci, "mde": c.mde, "p": c.p})
    adjusted = holm({f"{r['alpha']:g}": r["p"] for r in rows})
    for r in rows:
        r["p_holm"] = adjusted[f"{r['alpha']:g}"]
    return rows


def language_gains(files: StudyFiles, task: str, base: str, name: str, measure: str
                   ) -> dict[str, dict]:
    """language -> gain of `name` over `base` per query: mean, 95% CI, p (Holm over
    languages), computed as decision.json's xqg rows are (one computation for the report
    and the README)."""
    diffs = paired_differences(files.scores(task, name, measure), files.scores(task, base, measure))
    return {r["group"]: {"delta": r["estimate"], "ci": (r["ci_low"], r["ci_high"]),
                         "p_holm": r["p_holm"], "queries": r["n_queries"]}
            for r in language_rows(diffs, {}, ("xQG helps", "xQG hurts"))}


def chosen_alpha(files: StudyFiles, task: str, base: str, by_alpha: dict[float, str],
                 measure: str) -> tuple[float, str]:
    """(alpha, where it was chosen): from xqg/selection.json, else the best on `task`."""
    picked = files.xqg_selection.get("systems", {}).get(base)
    if picked is not None:
        return float(picked["alpha"]), files.xqg_selection["select_on"]
    scores = {a: macro(files.metrics[task][n], measure) for a, n in by_alpha.items()}
    return max(scores, key=lambda a: (scores[a], -a)), task


def xqg(files: StudyFiles, page: Page) -> None:
    page.heading("Query-generation augmentation (xQG)")
    xconf = files.config.get("xqg", {})
    if not xconf.get("enabled"):
        page.para("xQG was not enabled in this study.")
        return
    task = xconf["task"]
    measure = files.primary(task)
    bases = augmented(files, task)
    if bases:
        curves = {base: {0.0: macro(files.metrics[task][base], measure)}
                  | {a: macro(files.metrics[task][n], measure) for a, n in by_alpha.items()}
                  for base, by_alpha in bases.items()}
        page.image("xqg-alpha.png", report_plots.alpha_sweep(curves, measure),
                   f"{task}: alpha sweep (alpha 0 = the same model without augmentation)")
    selection = files.xqg_selection
    if selection:
        page.para(f"Each base system and its alpha were chosen on {selection['select_on']} "
                  f"(held out from {task}); {task} only reports them. Macro {measure} there: "
                  + "; ".join(f"{base}: " + ", ".join(f"a={a} {v:.3f}" for a, v
                                                      in rec["scores"].items())
                              + f" -> alpha {rec['alpha']:g}"
                              for base, rec in selection["systems"].items()) + ".")
    elif bases:
        page.para(f"No xqg.select_on in this study: the alpha below is the best on {task} "
                  "itself, an optimistic choice made on the data it is reported on.")
    for i, (base, by_alpha) in enumerate(bases.items()):
        sweep = alpha_sweep(files, task, base, by_alpha, measure)
        alpha, where = chosen_alpha(files, task, base, by_alpha, measure)
        page.table(["alpha", f"macro {measure}", "delta", "95% CI", "MDE", "p (Holm, alphas)",
                    "chosen"],
                   [[f"{r['alpha']:g}", _f(r["macro"]), _f(r["delta"], sign="+"),
                     f"[{_f(r['ci'][0], sign='+')}, {_f(r['ci'][1], sign='+')}]", _f(r["mde"]),
                     _f(r["p_holm"]), "yes" if r["alpha"] == alpha else ""] for r in sweep],
                   f"{files.sizes(task)} {base} with xQG against {base} without: "
                   f"difference of macro {measure}, 95% bootstrap CI over queries within "
                   f"languages, minimum detectable effect (power 0.8), sign-flip p "
                   f"Holm-corrected over the "
                   f"{len(sweep)} alphas. Chosen: on {where}.")
        if alpha == 0.0:
            page.para(f"{where} chose no augmentation (alpha 0) for {base}.")
            continue
        gains = language_gains(files, task, base, by_alpha[alpha], measure)
        if i == 0:
            page.image("xqg-gain.png", report_plots.per_language_bars(
                {lang: g["delta"] for lang, g in gains.items()}, f"xQG gain in {measure}"),
                f"{task}: gain per language of {base} with xQG (alpha {alpha:g})")
        page.table(["language", "queries", "gain", "95% CI", "p (Holm)", "significant"],
                   [[lang, g["queries"], _f(g["delta"], sign="+"),
                     f"[{_f(g['ci'][0], sign='+')}, {_f(g['ci'][1], sign='+')}]",
                     _f(g["p_holm"]), "yes" if g["p_holm"] < ALPHA else "no"]
                    for lang, g in gains.items()],
                   f"{base} with xQG at alpha {alpha:g} (chosen on {where}) against {base}: "
                   f"paired per query; CI: percentile bootstrap; p: randomisation test, "
                   f"Holm-corrected over the languages, significant when < {ALPHA}.")
    generator(files, page)
    quality(files, page)


def generator(files: StudyFiles, page: Page) -> None:
    """The generator's training: pairs per language, losses, the held-out loss curve."""
    m = files.xqg_generator
    if not m.get("losses"):
        return
    page.heading("Generator training", level=3)
    dev = m.get("dev_pairs_per_language", {})
    page.table(["language", "training pairs", "held-out pairs"],
               [[lang, n, dev.get(lang, 0)] for lang, n in m.get("pairs_per_language", {}).items()])
    losses = m["losses"]
    curve = ", ".join(f"step {step}: {loss:.3f}" for step, loss in m.get("dev_losses", []))
    page.para(f"LoRA on {m.get('config', {}).get('base') or 'the packaged generator'}: "
              f"{m['steps']} steps in {m.get('seconds_this_run', 0):.0f} s; training loss "
              f"{losses[0]:.3f} at the first step, {sum(losses[-10:]) / len(losses[-10:]):.3f} "
              "over the last ten. Held-out loss (passages no training pair shares): "
              + (curve or "none (too few pairs)") + ".")


def quality(files: StudyFiles, page: Page) -> None:
    per_language = files.xqg_quality.get("per_language", {})
    if not per_language:
        return
    page.heading("Generated-query quality", level=3)
    page.table(["language", "queries", "language-ID agreement", "CLD3 agrees", "duplicates",
                "repeated words", "mean length (words)"],
               [[lang, q.get("rows", ""), _f(q.get("langid_agreement")),
                 _f(q.get("cld3_agreement")), _f(q.get("duplicate_rate")),
                 _f(q.get("repetition_rate")), _f(q.get("mean_words"), 1)]
                for lang, q in per_language.items()],
               files.xqg_quality.get("classifier_note", ""))
    rows = [[lang, ex] for lang, q in per_language.items() for ex in q.get("examples", [])[:10]]
    if rows:
        page.table(["language", "generated question (examples)"], rows)
