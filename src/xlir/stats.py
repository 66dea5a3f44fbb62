"""Paired significance tests and confidence intervals for per-query scores.

- `randomization_test`: two-sided paired randomisation (sign-flip) test on the mean of the
  per-query differences; p = (1 + #{|perm mean| >= |observed mean|}) / (1 + n_perm), so two
  identical systems get p = 1 and p is never 0.
- `paired_ttest`: scipy's `ttest_rel` (p = 1 when all differences are 0).
- `holm`: Holm-Bonferroni step-down adjustment of a family of p-values (here: the languages).
- `bootstrap_ci`: percentile bootstrap of a mean; `macro_bootstrap_ci` resamples queries within
  each language and averages the language means.
- `compare(result_a, result_b)`: per language delta, both p-values, Holm-corrected p of the
  randomisation test, and whether A beats B at `alpha` (corrected p < alpha and delta > 0).
All randomness is seeded.

It does NOT compute metrics (evaluate.py) or format tables (the CLI does).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


def randomization_test(a, b, n_permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomisation test of mean(a - b) = 0 -> p-value."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)  # (n,)
    if d.size == 0:
        return math.nan
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    count, done = 0, 0
    while done < n_permutations:  # chunks keep memory at (chunk, n)
        m = min(1000, n_permutations - done)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(m, d.size))  # (m, n)
        perm = np.abs(signs @ d) / d.size  # (m,)
        count += int(np.sum(perm >= observed - 1e-12))
        done += m
    return (count + 1) / (n_permutations + 1)


def paired_ttest(a, b) -> float:
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size < 2:
        return math.nan
    if np.allclose(d, 0.0):
        return 1.0
    if np.allclose(d, d[0]):  # constant non-zero difference: t is infinite
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (monotone, capped at 1); NaN p-values stay NaN."""
    valid = sorted((p, k) for k, p in pvalues.items() if not math.isnan(p))
    m = len(valid)
    out = {k: math.nan for k in pvalues}
    running = 0.0
    for i, (p, k) in enumerate(valid):
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
    return out


def bootstrap_ci(values, n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values`."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    return (float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)))


def macro_bootstrap_ci(groups: dict[str, list[float]], n_resamples: int = 1000,
                       confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap of the macro mean: resample queries within each group, average group means."""
    rng = np.random.default_rng(seed)
    macro = np.zeros(n_resamples)
    live = [np.asarray(v, dtype=np.float64) for v in groups.values() if len(v)]
    if not live:
        return (math.nan, math.nan)
    for x in live:
        macro += x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    macro /= len(live)
    tail = (1.0 - confidence) / 2 * 100
    return (float(np.percentile(macro, tail)), float(np.percentile(macro, 100 - tail)))


@dataclass
class LanguageComparison:
    language: str
    n: int
    mean_a: float
    mean_b: float
    delta: float
    p_randomization: float
    p_ttest: float
    p_holm: float
    ci_a: tuple[float, float]
    ci_b: tuple[float, float]
    a_better: bool


def compare(result_a, result_b, measure: str | None = None, alpha: float = 0.05,
            n_permutations: int = 10000, n_resamples: int = 1000,
            seed: int = 0) -> list[LanguageComparison]:
    """Per language (and a final "macro" row), A vs B on `measure` (default: the first).
    Both results must score the same queries (the same task)."""
    measure = measure or result_a.measures[0]
    qa, qb = result_a.per_query[measure], result_b.per_query[measure]
    if set(qa) != set(qb):
        raise ValueError("the two results score different query sets; use the same task")
    langs: dict[str, list[str]] = {}
    for q in qa:
        langs.setdefault(result_a.query_lang[q], []).append(q)
    rows, pvals = [], {}
    for lang, qs in sorted(langs.items()):
        a, b = [qa[q] for q in qs], [qb[q] for q in qs]
        p = randomization_test(a, b, n_permutations, seed)
        pvals[lang] = p
        rows.append(LanguageComparison(
            lang, len(qs), float(np.mean(a)), float(np.mean(b)), float(np.mean(a) - np.mean(b)),
            p, paired_ttest(a, b), math.nan, bootstrap_ci(a, n_resamples, seed=seed),
            bootstrap_ci(b, n_resamples, seed=seed), False))
    corrected = holm(pvals)
    for row in rows:
        row.p_holm = corrected[row.language]
        row.a_better = bool(row.delta > 0 and row.p_holm < alpha)
    rows.append(_macro_row(langs, qa, qb, alpha, n_permutations, n_resamples, seed))
    return rows


def _macro_row(langs, qa, qb, alpha, n_permutations, n_resamples, seed) -> LanguageComparison:
    """Macro: the test runs on per-query differences weighted so each language counts equally
    (the mean of weighted differences is exactly the macro delta)."""
    diffs, ga, gb = [], {}, {}
    for lang, qs in langs.items():
        w = sum(len(v) for v in langs.values()) / (len(langs) * len(qs))
        diffs.extend(w * (qa[q] - qb[q]) for q in qs)
        ga[lang], gb[lang] = [qa[q] for q in qs], [qb[q] for q in qs]
    ma = float(np.mean([np.mean(v) for v in ga.values()]))
    mb = float(np.mean([np.mean(v) for v in gb.values()]))
    p = randomization_test(diffs, np.zeros(len(diffs)), n_permutations, seed)
    return LanguageComparison(
        "macro", len(diffs), ma, mb, ma - mb, p, paired_ttest(diffs, np.zeros(len(diffs))), p,
        macro_bootstrap_ci(ga, n_resamples, seed=seed),
        macro_bootstrap_ci(gb, n_resamples, seed=seed), bool(ma > mb and p < alpha))


def comparison_to_json(rows: list[LanguageComparison]) -> list[dict]:
    return [asdict(r) for r in rows]
