"""The study's question (research-design.md): is a tuned method more robust than full
fine-tuning in a group of languages? Per method m and language group g:

    delta(m, g)  = mean over languages l in g of mean over l's queries of (s_m - s_frozen)
    answer(m, g) = delta(m, g) - delta(full, g) = the same mean of (s_m - s_full)

- `delta`, `answer` and `interaction` (delta(m, A) - delta(m, B), e.g. unseen - seen) each
  give a `Contrast`: the estimate with a bootstrap CI (queries resampled within languages), a
  sign-flip p stratified by language and the minimum detectable effect; `verdict` words an
  answer for the decision table.
- `robustness`: every delta, answer (Holm over the methods compared with full) and
  interaction of one task under one grouping of its languages; `CONTRASTS` names the pair of
  groups each grouping's interaction contrasts.
- Scores are `LangScores` = {language: {query id: score}}: `by_language` builds them from a
  metrics.json, `seed_average` averages a method's seeds per query first, `seed_spread`
  summarises the seeds' macros.
- `paired_reference`: which reference system(s) a system is tested against (the same seed,
  or every seed to be averaged); `per_language_tests`: a paired test per language, Holm over
  the languages (the report's markers).

It does NOT read study folders (xlir.report_decision does) or format anything; the generic
tests it builds on are in xlir.stats.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

from xlir.errors import XlirError
from xlir.stats import (Contrast, LangScores, contrast, holm, paired_differences,
                        randomization_test)

# grouping (xlir.data.languages.GROUPINGS) -> (A, B) of its interaction delta(A) - delta(B):
# the group the question is about first. "joshi" has six classes and no single pair.
CONTRASTS: dict[str, tuple[str, str]] = {"pretraining": ("unseen", "seen"),
                                         "retrieval": ("unsupervised", "supervised"),
                                         "resource": ("low", "high")}


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
               frozen: str = "frozen",
               contrast_groups: tuple[str, str] | None = ("unseen", "seen"),
               alpha: float = 0.05, **kwargs) -> dict:
    """The decision table of one task and one grouping. `runs`: method -> its seeds' scores
    (averaged per query first); `groups`: language -> group label (a metrics.json's
    `language_groups[grouping]`; a language missing from it is "unknown"). Returns
    {"delta": {group: {method: Contrast}}} (full included), {"answer": {group: {method:
    Contrast}}} with p_holm over the methods compared with full in that group and the verdict,
    {"interaction": {method: Contrast}} (delta(A) - delta(B) for `contrast_groups` when both
    groups are present; p_holm over the methods, full included), {"seeds": {method:
    SeedSpread}} (methods with >= 3 seeds)."""
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
    ga, gb = contrast_groups or (None, None)
    if ga in members and gb in members:
        rows = {m: interaction(mean[m], mean[frozen], members[ga], members[gb], alpha=alpha,
                               **kwargs) for m in [full, *tuned]}
        for m, p in holm({m: c.p for m, c in rows.items()}).items():
            rows[m].p_holm = p
            rows[m].verdict = interaction_verdict(rows[m], ga, gb, alpha)
        out["interaction"] = rows
    out["seeds"] = {m: spread for m, r in runs.items() if (spread := seed_spread(r))}
    return out


def interaction_verdict(c: Contrast, group_a: str, group_b: str, alpha: float = 0.05) -> str:
    """"unseen > seen": the method changed the unseen languages more (for the better) than the
    seen ones, at Holm-corrected p < alpha; else no difference detectable at +-MDE."""
    p = c.p if math.isnan(c.p_holm) else c.p_holm
    if p < alpha:
        return f"{group_a} > {group_b}" if c.estimate > 0 else f"{group_a} < {group_b}"
    return f"no difference detectable at +-{c.mde:.3f}"


def robustness_to_json(table: dict) -> dict:
    return {part: {k: (asdict(v) if not isinstance(v, dict) else
                       {m: asdict(c) for m, c in v.items()}) for k, v in rows.items()}
            for part, rows in table.items()}


def per_language_tests(a: LangScores, b: LangScores, n_permutations: int = 2000,
                       seed: int = 0) -> dict[str, tuple[float, float]]:
    """{language: (mean of a - b, p)}: a paired randomisation test per language, p
    Holm-corrected over the languages (both must score the same queries)."""
    diffs = paired_differences(a, b)
    p = holm({lang: randomization_test(d, np.zeros_like(d), n_permutations, seed)
              for lang, d in diffs.items()})
    return {lang: (float(d.mean()), p[lang]) for lang, d in diffs.items()}


# ---- which reference a system is tested against ----------------------------------------------
_SYSTEM = re.compile(r"(?P<method>.+)-s(?P<seed>\d+)(?P<rest>-a[^-]+)?")


def parse_system(name: str) -> tuple[str, int | None]:
    """"lora-s13" -> ("lora", 13); "hybrid-lora-s13" -> ("hybrid-lora", 13);
    "xqg-lora-s13-a0.01" -> ("xqg-lora", 13); "bm25" -> ("bm25", None). Only for names
    whose method and seed were not recorded: a label may itself end in "-s<digits>"."""
    m = _SYSTEM.fullmatch(name)
    return (m["method"], int(m["seed"])) if m else (name, None)


def paired_reference(system: str, candidates: Iterable[str], reference: str,
                     seed_averaged: bool = False,
                     known: Mapping[str, tuple[str, int | None]] | None = None) -> list[str]:
    """The reference systems (among `candidates`, e.g. a task's system names) that `system` is
    tested against: `reference` ("frozen", "full", "hybrid-full", ...) of the same seed; every
    seed of it (sorted, to be averaged per query with `seed_average`) when `system` has no
    seed or is itself `seed_averaged`; the reference itself when it has no seeds (bm25).
    A seeded system whose seed the reference lacks is an XlirError: never another seed.
    `known`: (method, seed) of systems as the study recorded them (the report reads them from
    config.resolved.json); a name not in it is parsed with `parse_system`."""
    known = known or {}

    def method_seed(name: str) -> tuple[str, int | None]:
        return known[name] if name in known else parse_system(name)

    candidates = list(candidates)
    seeds = sorted((s, c) for c in candidates
                   for method, s in [method_seed(c)] if method == reference and s is not None)
    _, seed = method_seed(system)
    if not seeds:
        if reference in candidates:
            return [reference]
        raise XlirError(f"no '{reference}' system to compare '{system}' with")
    if seed is None or seed_averaged:
        return [c for _, c in seeds]
    same = [c for s, c in seeds if s == seed]
    if not same:
        raise XlirError(f"'{system}' has seed {seed}, '{reference}' only seeds "
                        f"{[s for s, _ in seeds]}: a test pairs runs of the same seed")
    return same
