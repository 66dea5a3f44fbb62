"""Learning rates chosen on held-out English dev, and what each would have cost elsewhere.

A study may hold several methods of one tuning method that differ in their training settings
(learning-rate variants: `{name: full, label: full-lr1e-5, train: {lr: 1.0e-5}, seeds: [13],
family: lr}`) and name a task held out from training (`select_on`, e.g. the TyDi English dev
set). For each such tuning method, `lr_choice` compares the variants at the first seed all of
them ran at, on that task alone: the one with the highest macro of its primary measure is the
dev choice, and each variant's difference from the reference (the method labelled as the
tuning method itself, whose learning rate was fixed before any evaluation) comes with a
bootstrap CI, a sign-flip p and the minimum detectable effect, so "dev prefers another
learning rate" is said only when the difference is detectable. Nothing else is chosen: the test
tasks never enter the choice.

`lr_sensitivity` is the other half of the trade-off, for the report and the README: every
variant's change against the zero-shot model at that seed on every task and language group,
so a reader sees whether a learning rate that learns English as well forgets more elsewhere.

Pure functions of a study's files (StudyFiles) and SETTINGS-like keyword arguments.
"""

from __future__ import annotations

from xlir import lr_grid
from xlir.report_files import StudyFiles, macro
from xlir.robustness import delta
from xlir.stats import contrast, paired_differences


def variants(files: StudyFiles) -> dict[str, list[str]]:
    """Tuning method -> its labels (reference first), for methods run with several settings.
    A method with an lr_grid is compared with its own variants alone, keyed by its label (two
    gridded methods of one tuning method, e.g. bottleneck and houlsby, each choose their own)."""
    out, grid = {}, set()
    for label, _ in files.methods:
        spec = files.specs[label]
        if spec.get("lr_grid"):
            mine = [v["label"] for v in lr_grid.variants(spec, files.seeds,
                                                          files.config.get("select_on"))]
            out[label] = [label] + mine
            grid |= {label, *mine}
    for method in dict.fromkeys(name for _, name in files.methods):
        labels = [label for label, name in files.methods if name == method and label not in grid]
        if method != "frozen" and len(labels) > 1:
            reference = files.label_of(method)
            reference = reference if reference in labels else labels[0]
            key = method if method not in out else reference  # a gridded label took the name
            out[key] = [reference] + [label for label in labels if label != reference]
    return out


def _common_seed(files: StudyFiles, labels: list[str], task: str) -> int | None:
    ran = files.metrics.get(task, {})
    return next((s for s in files.seeds if all(f"{label}-s{s}" in ran for label in labels)), None)


def lr_choice(files: StudyFiles, **settings) -> list[dict]:
    """One row per variant of each tuning method run with several settings: its learning
    rate, its score on the `select_on` task at the shared seed, its difference from the
    reference with CI, p and MDE, and whether it is the dev choice. [] without `select_on`."""
    task = files.config.get("select_on")
    if not task or task not in files.metrics:
        return []
    measure = files.primary(task)
    alpha = settings.get("alpha", 0.05)
    kwargs = {k: settings[k] for k in ("n_resamples", "n_permutations", "seed") if k in settings}
    rows = []
    for method, labels in variants(files).items():
        seed = _common_seed(files, labels, task)
        if seed is None:
            continue
        scores = {label: files.scores(task, f"{label}-s{seed}", measure) for label in labels}
        metrics = {label: files.metrics[task][f"{label}-s{seed}"] for label in labels}
        score = {label: macro(metrics[label], measure) for label in labels}
        best = max(labels, key=lambda label: (score[label], label == labels[0]))
        for label in labels:
            c = contrast(paired_differences(scores[label], scores[labels[0]]), alpha=alpha,
                         **kwargs)
            applied = label == labels[0] and files.lr_applied(label)
            rows.append({"method": method, "label": label, "lr": files.lr(label), "seed": seed,
                         **({"applied": True} if applied else {}),  # lr_grid: chosen, applied
                         "task": task, "measure": measure, "score": score[label],
                         "diff": c.estimate, "ci_low": c.ci[0], "ci_high": c.ci[1], "p": c.p,
                         "mde": c.mde, "reference": label == labels[0], "chosen": label == best,
                         "n_queries": c.n_queries})
    return rows


def choice_sentence(rows: list[dict], alpha: float = 0.05) -> list[str]:
    """What the dev set says about each tuning method's learning rate, in words."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        ref = next(r for r in mine if r["reference"])
        best = next(r for r in mine if r["chosen"])
        head = f"{method}: on {ref['task']} (seed {ref['seed']}, {ref['measure']})"
        if ref.get("applied"):  # lr_grid: the reference's rate is the choice, at every seed
            rates = ", ".join(_lr(r) for r in mine if not r["reference"])
            line = (f"{head}, dev chose lr {_lr(ref)} among {rates}, and every seed of "
                    f"{ref['label']} trained with it")
            runner = max((r for r in mine if not r["reference"] and r["lr"] != ref["lr"]),
                         key=lambda r: r["score"], default=None)
            if runner is not None:
                told = ("detectable" if (runner["p"] or 1.0) < alpha
                        else f"no difference detectable at {_pm(runner['mde'])}")
                line += (f"; the next best rate ({_lr(runner)}) scores "
                         f"{_sign(runner['diff'])} [{_sign(runner['ci_low'])}, "
                         f"{_sign(runner['ci_high'])}] against it ({told})")
            out.append(line + ".")
        elif best is ref:
            out.append(f"{head}, dev chooses the learning rate fixed beforehand ({_lr(ref)}).")
        elif best["p"] < alpha:
            out.append(f"{head}, dev prefers lr {_lr(best)} to the one fixed beforehand "
                       f"({_lr(ref)}) by {best['diff']:+.3f} [{best['ci_low']:+.3f}, "
                       f"{best['ci_high']:+.3f}], p = {best['p']:.3g}.")
        else:
            out.append(f"{head}, lr {_lr(best)} scores highest, {best['diff']:+.3f} "
                       f"[{best['ci_low']:+.3f}, {best['ci_high']:+.3f}] above the one fixed "
                       f"beforehand ({_lr(ref)}): no difference detectable at "
                       f"±{best['mde']:.3f}, so the fixed learning rate stands.")
    return out


def _sign(x) -> str:
    """A signed difference; n/a where it could not be computed (NaN, null in JSON)."""
    return "n/a" if x is None or x != x else f"{x:+.3f}"


def _pm(mde) -> str:
    return "±n/a (too few queries)" if mde is None or mde != mde else f"±{mde:.3f}"


def _lr(row: dict) -> str:
    return "default" if row["lr"] is None else f"{row['lr']:g}"


def lr_sensitivity(files: StudyFiles, choice: list[dict], **settings) -> list[dict]:
    """Every variant's change against the zero-shot model at the seed of `choice`, per task
    and group of the first grouping: delta(m, g) with its CI (frozen is the same model at
    every seed)."""
    frozen = files.label_of("frozen")
    if not choice or frozen is None:
        return []
    kwargs = {k: settings[k] for k in ("n_resamples", "n_permutations", "seed", "alpha")
              if k in settings}
    grouping = files.groupings[0]
    rows = []
    for task in files.metrics:
        measure = files.primary(task)
        reference = files.seed_systems(frozen, task)
        if not reference:
            continue
        base = files.scores(task, reference[0], measure)
        groups = files.language_groups(task, grouping)
        members: dict[str, list[str]] = {}
        for lang in base:
            members.setdefault(groups.get(lang, "unknown"), []).append(lang)
        for r in choice:
            system = f"{r['label']}-s{r['seed']}"
            if system not in files.metrics[task]:
                continue
            mine = files.scores(task, system, measure)
            for group, langs in sorted(members.items()):
                c = delta(mine, base, langs, **kwargs)
                rows.append({"method": r["method"], "label": r["label"], "lr": r["lr"],
                             "seed": r["seed"], "task": task, "grouping": grouping,
                             "group": group, "measure": measure, "estimate": c.estimate,
                             "ci_low": c.ci[0], "ci_high": c.ci[1], "mde": c.mde,
                             "n_languages": len(langs)})
    return rows
