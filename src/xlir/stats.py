"""Paired significance tests and confidence intervals for per-query scores.

- `randomization_test`: two-sided paired randomisation (sign-flip) test on the mean of the
  per-query differences; p = (1 + #{|perm mean| >= |observed mean|}) / (1 + n_perm), so two
  identical systems get p = 1 and p is never 0. `sign_flip_p` is the same on weighted terms,
  exact when the sign patterns are few.
- `paired_ttest`: scipy's `ttest_rel` (p = 1 when all differences are 0).
- `holm`: Holm-Bonferroni step-down adjustment of a family of p-values (here: the languages,
  or the methods compared with full fine-tuning).
- `bootstrap_ci`: percentile bootstrap of a mean; `macro_bootstrap_ci` resamples queries within
  each language and averages the language means.
- `compare(result_a, result_b)`: per language delta, both p-values, Holm-corrected p of the
  randomisation test, and whether A beats B at `alpha` (corrected p < alpha and delta > 0).
- `paired_differences` and `contrast`: a weighted sum of per-language mean differences of
  `LangScores` = {language: {query id: score}}, with a bootstrap CI that resamples queries
  within languages, a stratified sign-flip p and the minimum detectable effect.
All randomness is seeded.

It does NOT know the study's question (delta, answer, interaction: xlir.robustness), compute
metrics (evaluate.py) or format tables (the CLI and the report do).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

LangScores = dict[str, dict[str, float]]  # language -> query id -> score


def randomization_test(a, b, n_permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomisation test of mean(a - b) = 0 -> p-value."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)  # (n,)
    if d.size == 0:
        return math.nan
    rng = np.random.default_rng(seed)
    count = _random_flips(d / d.size, abs(d.mean()) - 1e-12, n_permutations, rng)
    return (count + 1) / (n_permutations + 1)


def _random_flips(c: np.ndarray, threshold: float, n: int, rng) -> int:
    """#{random sign vectors e: |e . c| >= threshold} out of n draws."""
    count, done = 0, 0
    while done < n:  # chunks keep memory at (chunk, len(c))
        m = min(1000, n - done)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(m, c.size))  # (m, n_queries)
        count += int(np.sum(np.abs(signs @ c) >= threshold))
        done += m
    return count


def sign_flip_p(c, observed: float, n_permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided p of `observed` against T* = sum_i e_i c_i, e_i = +-1 independently. Exact
    (p = #{|T*| >= |observed|} / 2^k over the k non-zero c_i) when 2^k <= n_permutations, else
    Monte Carlo with p = (1 + count) / (1 + n_permutations)."""
    c = np.asarray(c, dtype=np.float64)
    c = c[c != 0.0]  # a zero term is the same under both signs
    threshold = abs(observed) - 1e-12 * max(1.0, abs(observed))
    if 2 ** c.size <= n_permutations:
        signs = np.array(list(itertools.product([1.0, -1.0], repeat=c.size)))  # (2^k, k)
        return float(np.mean(np.abs(signs @ c) >= threshold)) if c.size else 1.0
    rng = np.random.default_rng(seed)
    return (_random_flips(c, threshold, n_permutations, rng) + 1) / (n_permutations + 1)


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
    return _percentiles(means, confidence)


def macro_bootstrap_ci(groups: dict[str, list[float]], n_resamples: int = 1000,
                       confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap of the macro mean: resample queries within each group, average group means."""
    live = [np.asarray(v, dtype=np.float64) for v in groups.values() if len(v)]
    if not live:
        return (math.nan, math.nan)
    stats = _stratified_bootstrap(live, [1.0 / len(live)] * len(live), n_resamples,
                                  np.random.default_rng(seed))
    return _percentiles(stats, confidence)


def _stratified_bootstrap(groups: list[np.ndarray], weights: list[float], n_resamples: int,
                          rng) -> np.ndarray:
    """(n_resamples,) draws of sum_g w_g * mean(resample of group g): queries are resampled
    with replacement within their group (language), never across."""
    out = np.zeros(n_resamples)
    for x, w in zip(groups, weights):
        out += w * x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    return out


def _percentiles(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2 * 100
    return (float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail)))


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



# ---- stratified contrasts of paired per-query scores ------------------------------------
def paired_differences(a: LangScores, b: LangScores, languages: Iterable[str] | None = None
                       ) -> dict[str, np.ndarray]:
    """Per language, a - b per query (queries in id order); both must score the same queries."""
    out = {}
    for lang in sorted(languages if languages is not None else a):
        qa, qb = a.get(lang, {}), b.get(lang, {})
        if qa.keys() != qb.keys() or not qa:
            raise ValueError(f"{lang}: the two systems score different (or no) queries; "
                             "compare runs of the same task")
        qs = sorted(qa)
        out[lang] = np.array([qa[q] - qb[q] for q in qs], dtype=np.float64)
    return out


@dataclass
class Contrast:
    """sum over languages l of w_l * (mean over l's queries of a paired difference)."""
    estimate: float
    ci: tuple[float, float]
    p: float
    mde: float        # (z_{1-alpha/2} + z_power) * SE; 2.80 * SE at alpha .05, power .8
    sd_paired: float  # pooled within-language sd of the per-query differences
    n_queries: int
    languages: list[str]
    null: str         # "sign-flip" or "centred sign-flip" (see `contrast`)
    p_holm: float = math.nan
    p_languages: float = math.nan  # interaction only: languages as the unit (see `interaction`)
    verdict: str = ""


def contrast(diffs: dict[str, np.ndarray], weights: dict[str, float] | None = None, *,
             centre: bool = False, n_resamples: int = 2000, n_permutations: int = 10000,
             seed: int = 0, confidence: float = 0.95, alpha: float = 0.05,
             power: float = 0.8) -> Contrast:
    """The contrast of per-language mean differences (default weights 1/L: the macro).

    CI: percentile bootstrap, queries resampled within each language. p: T = sum_q c_q with
    c_q = w_l d_q / n_l, against sign flips of each c_q (stratified by language by
    construction: a query keeps its language's weight). That tests "every language's
    differences are symmetric about 0". With `centre`, each language's differences are first
    centred on their mean (and scaled by sqrt(n_l / (n_l - 1))), so the flips give the
    sampling spread of T around the languages' true means whatever those are: a Rademacher
    wild bootstrap test of "the contrast is 0" (see `interaction`).
    MDE = (z_{1-alpha/2} + z_power) * sqrt(sum_l w_l^2 s_l^2 / n_l), s_l the sd of language
    l's differences: for one language, (1.96 + 0.84) * sd / sqrt(n)."""
    langs = sorted(diffs)
    w = weights or {lang: 1.0 / len(langs) for lang in langs}
    ds = [diffs[lang] for lang in langs]
    estimate = float(sum(w[lang] * d.mean() for lang, d in zip(langs, ds)))
    if centre:
        terms = [w[lang] * (d - d.mean()) * math.sqrt(d.size / max(d.size - 1, 1)) / d.size
                 for lang, d in zip(langs, ds)]
    else:
        terms = [w[lang] * d / d.size for lang, d in zip(langs, ds)]
    p = sign_flip_p(np.concatenate(terms), estimate, n_permutations, seed)
    boot = _stratified_bootstrap(ds, [w[lang] for lang in langs], n_resamples,
                                 np.random.default_rng(seed))
    var = [float(d.var(ddof=1)) if d.size > 1 else math.nan for d in ds]
    se = math.sqrt(sum(w[lang] ** 2 * v / d.size for lang, v, d in zip(langs, var, ds)))
    from scipy.stats import norm

    z = float(norm.ppf(1 - alpha / 2) + norm.ppf(power))
    dof = sum(d.size - 1 for d in ds)
    sd = math.sqrt(sum((d.size - 1) * v for v, d in zip(var, ds)) / dof) if dof else math.nan
    return Contrast(estimate, _percentiles(boot, confidence), p, z * se, sd,
                    sum(d.size for d in ds), langs, "centred sign-flip" if centre else "sign-flip")
