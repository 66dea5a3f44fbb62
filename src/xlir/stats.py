"""Paired significance tests and confidence intervals for per-query scores, and the study's
answer: is a tuned method more robust than full fine-tuning in a group of languages?

- `randomization_test`: two-sided paired randomisation (sign-flip) test on the mean of the
  per-query differences; p = (1 + #{|perm mean| >= |observed mean|}) / (1 + n_perm), so two
  identical systems get p = 1 and p is never 0.
- `paired_ttest`: scipy's `ttest_rel` (p = 1 when all differences are 0).
- `holm`: Holm-Bonferroni step-down adjustment of a family of p-values (here: the languages,
  or the methods compared with full fine-tuning).
- `bootstrap_ci`: percentile bootstrap of a mean; `macro_bootstrap_ci` resamples queries within
  each language and averages the language means.
- `compare(result_a, result_b)`: per language delta, both p-values, Holm-corrected p of the
  randomisation test, and whether A beats B at `alpha` (corrected p < alpha and delta > 0).
- The question (research-design.md): per method m and language group g,
  delta(m, g) = mean over l in g of mean over queries of (s_m - s_frozen) and
  answer(m, g) = delta(m, g) - delta(full, g) = the same mean of (s_m - s_full).
  `delta`, `answer`, `interaction` and `robustness` give each with a stratified bootstrap CI, a
  stratified sign-flip p, the minimum detectable effect and (for answer) the decision wording;
  scores are `LangScores` = {language: {query id: score}} (`by_language` builds them from a
  metrics.json), a method's seeds averaged per query first (`seed_average`, `seed_spread`).
- `paired_reference`: which reference system(s) a system is tested against (same seed).
All randomness is seeded.

It does NOT compute metrics (evaluate.py) or format tables (the CLI and the report do).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from xlir.errors import XlirError

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


# ---- the study's question: delta, answer, interaction ----------------------------------------
def by_language(scores: dict[str, float], query_lang: dict[str, str]) -> LangScores:
    """metrics.json's `per_query[measure]` and `query_lang` -> {language: {query id: score}}."""
    out: LangScores = {}
    for q, s in scores.items():
        out.setdefault(query_lang[q], {})[q] = float(s)
    return out


def seed_average(runs: list[LangScores]) -> LangScores:
    """Per query, the mean score over a method's seeds; every seed must score the same queries
    in the same languages (else ValueError: the seeds ran on different task samples)."""
    if not runs:
        raise ValueError("no runs to average")
    first = runs[0]
    for i, run in enumerate(runs[1:], start=1):
        if run.keys() != first.keys() or any(run[lang].keys() != first[lang].keys()
                                             for lang in first):
            raise ValueError(f"seed run {i} scores other queries than seed run 0; seeds are "
                             "averaged per query, so they must share the task sample")
    return {lang: {q: float(np.mean([run[lang][q] for run in runs])) for q in qs}
            for lang, qs in first.items()}


@dataclass
class SeedSpread:
    """The macro (mean over languages of the mean over queries) of each seed, summarised."""
    n_seeds: int
    mean: float
    sd: float  # sample sd (ddof 1)
    min: float
    max: float
    macros: list[float]


def seed_spread(runs: list[LangScores], languages: Iterable[str] | None = None
                ) -> SeedSpread | None:
    """The spread of the macro over seeds, or None with fewer than 3 seeds (an sd from two
    values is not worth reporting)."""
    if len(runs) < 3:
        return None
    langs = sorted(languages if languages is not None else runs[0])
    macros = [float(np.mean([np.mean(list(run[lang].values())) for lang in langs]))
              for run in runs]
    return SeedSpread(len(macros), float(np.mean(macros)), float(np.std(macros, ddof=1)),
                      min(macros), max(macros), macros)


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


def delta(method: LangScores, frozen: LangScores, languages: Iterable[str] | None = None,
          **kwargs) -> Contrast:
    """delta(m, g): the macro over `languages` of s_m - s_frozen, tested against 0."""
    return contrast(paired_differences(method, frozen, languages), **kwargs)


def answer(method: LangScores, full: LangScores, languages: Iterable[str] | None = None,
           alpha: float = 0.05, **kwargs) -> Contrast:
    """answer(m, g) = delta(m, g) - delta(full, g): frozen cancels per query (same queries), so
    it is the macro of s_m - s_full. `verdict` is set from p (Holm-corrected by `robustness`)."""
    c = contrast(paired_differences(method, full, languages), alpha=alpha, **kwargs)
    c.verdict = verdict(c, alpha)
    return c


def verdict(c: Contrast, alpha: float = 0.05) -> str:
    """The decision-table wording for an answer(m, g) contrast."""
    p = c.p if math.isnan(c.p_holm) else c.p_holm
    if p < alpha:
        return "more robust than full FT" if c.estimate > 0 else "less robust"
    return f"no difference detectable at +-{c.mde:.3f}"


def interaction(method: LangScores, frozen: LangScores, group_a: Iterable[str],
                group_b: Iterable[str], **kwargs) -> Contrast:
    """delta(m, A) - delta(m, B), e.g. A = unseen, B = seen languages.

    Null and test. The null is "the two groups' deltas are equal", not "both are 0", so
    flipping the signs of the raw differences (as `delta` does) would test the wrong null: with
    a common non-zero delta it inflates the null spread and the test loses its power. Here each
    language's differences are centred on their own mean before the flips (`contrast` with
    centre): the p-value measures whether the observed contrast is large against the
    query-level sampling noise of the per-language means, with the languages taken as fixed
    (the conclusion is about these languages and their test queries). Assumptions: queries are
    independent within and across languages, and each language's centred differences are
    roughly symmetric (a Rademacher wild bootstrap; valid as the queries per language grow, not
    exact for a handful of queries). `p_languages` also reports the language-level test:
    group labels permuted over languages (exact over all C(L, |A|) splits when they are few),
    which treats languages as exchangeable draws of their group and needs no query-level
    assumption, but cannot go below 1 / C(L, |A|) (2 seen of 9 AfriQA languages: 1/36), so
    it is reported beside the query-level p, not used for the decision. The CI is the
    stratified bootstrap as everywhere."""
    a, b = sorted(set(group_a)), sorted(set(group_b))
    if not a or not b or set(a) & set(b):
        raise ValueError("interaction needs two non-empty, disjoint groups of languages")
    d = paired_differences(method, frozen, a + b)
    weights = {**{lang: 1.0 / len(a) for lang in a}, **{lang: -1.0 / len(b) for lang in b}}
    c = contrast(d, weights, centre=True, **kwargs)
    c.p_languages = _label_permutation_p({lang: float(v.mean()) for lang, v in d.items()}, a,
                                         kwargs.get("n_permutations", 10000),
                                         kwargs.get("seed", 0))
    return c


def _label_permutation_p(means: dict[str, float], group_a: list[str], n_permutations: int,
                         seed: int) -> float:
    """Two-sided p of mean(A) - mean(B) over languages with the A/B labels permuted."""
    langs = sorted(means)
    x = np.array([means[lang] for lang in langs])
    k = len(group_a)

    def stat(idx) -> float:
        mask = np.zeros(len(langs), dtype=bool)
        mask[list(idx)] = True
        return float(x[mask].mean() - x[~mask].mean())

    observed = abs(stat([langs.index(lang) for lang in group_a])) - 1e-12
    if math.comb(len(langs), k) <= n_permutations:
        splits = list(itertools.combinations(range(len(langs)), k))
        return sum(abs(stat(s)) >= observed for s in splits) / len(splits)
    rng = np.random.default_rng(seed)
    count = sum(abs(stat(rng.choice(len(langs), k, replace=False))) >= observed
                for _ in range(n_permutations))
    return (count + 1) / (n_permutations + 1)


def robustness(runs: dict[str, list[LangScores]], groups: dict[str, str], full: str = "full",
               frozen: str = "frozen", contrast_groups: tuple[str, str] = ("unseen", "seen"),
               alpha: float = 0.05, **kwargs) -> dict:
    """The decision table of one task and one grouping. `runs`: method -> its seeds' scores
    (averaged per query first); `groups`: language -> group label (a metrics.json's
    `language_groups[grouping]`; a language missing from it is "unknown"). Returns
    {"delta": {group: {method: Contrast}}} (full included), {"answer": {group: {method:
    Contrast}}} with p_holm over the methods compared with full in that group and the verdict,
    {"interaction": {method: Contrast}} (delta(A) - delta(B) for `contrast_groups` when both
    groups are present), {"seeds": {method: SeedSpread}} (methods with >= 3 seeds)."""
    mean = {m: seed_average(r) for m, r in runs.items()}
    members: dict[str, list[str]] = {}
    for lang in mean[frozen]:
        members.setdefault(groups.get(lang, "unknown"), []).append(lang)
    tuned = [m for m in runs if m not in (full, frozen)]
    out: dict = {"delta": {}, "answer": {}, "interaction": {}, "seeds": {}}
    for g, langs in sorted(members.items()):
        out["delta"][g] = {m: delta(mean[m], mean[frozen], langs, alpha=alpha, **kwargs)
                           for m in [full, *tuned]}
        rows = {m: answer(mean[m], mean[full], langs, alpha=alpha, **kwargs) for m in tuned}
        for m, p in holm({m: c.p for m, c in rows.items()}).items():
            rows[m].p_holm = p
            rows[m].verdict = verdict(rows[m], alpha)
        out["answer"][g] = rows
    ga, gb = contrast_groups
    if ga in members and gb in members:
        out["interaction"] = {m: interaction(mean[m], mean[frozen], members[ga], members[gb],
                                             alpha=alpha, **kwargs) for m in [full, *tuned]}
    out["seeds"] = {m: spread for m, r in runs.items() if (spread := seed_spread(r))}
    return out


def robustness_to_json(table: dict) -> dict:
    return {part: {k: (asdict(v) if not isinstance(v, dict) else
                       {m: asdict(c) for m, c in v.items()}) for k, v in rows.items()}
            for part, rows in table.items()}


# ---- which reference a system is tested against ----------------------------------------------
_SYSTEM = re.compile(r"(?P<method>.+)-s(?P<seed>\d+)(?P<rest>-a[^-]+)?")


def parse_system(name: str) -> tuple[str, int | None]:
    """"lora-s13" -> ("lora", 13); "hybrid-lora-s13" -> ("hybrid-lora", 13);
    "xqg-lora-s13-a0.01" -> ("xqg-lora", 13); "bm25" -> ("bm25", None)."""
    m = _SYSTEM.fullmatch(name)
    return (m["method"], int(m["seed"])) if m else (name, None)


def paired_reference(system: str, candidates: Iterable[str], reference: str,
                     seed_averaged: bool = False) -> list[str]:
    """The reference systems (among `candidates`, e.g. a task's system names) that `system` is
    tested against: `reference` ("frozen", "full", "hybrid-full", ...) of the same seed; every
    seed of it (sorted, to be averaged per query with `seed_average`) when `system` has no
    seed or is itself `seed_averaged`; the reference itself when it has no seeds (bm25).
    A seeded system whose seed the reference lacks is an XlirError: never another seed."""
    seeds = sorted((s, c) for c in candidates
                   for method, s in [parse_system(c)] if method == reference and s is not None)
    _, seed = parse_system(system)
    if not seeds:
        if reference in set(candidates):
            return [reference]
        raise XlirError(f"no '{reference}' system to compare '{system}' with")
    if seed is None or seed_averaged:
        return [c for _, c in seeds]
    same = [c for s, c in seeds if s == seed]
    if not same:
        raise XlirError(f"'{system}' has seed {seed}, '{reference}' only seeds "
                        f"{[s for s, _ in seeds]}: a test pairs runs of the same seed")
    return same
