"""Paired tests, Holm and bootstrap on hand-made scores, checked against scipy.stats'
permutation_test and bootstrap. The study's question (delta, answer, interaction) is in
test_robustness.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xlir.stats import (bootstrap_ci, compare, contrast, holm, macro_bootstrap_ci,
                        paired_ttest, randomization_test, sign_flip_p)


def test_identical_systems_p_is_one():
    a = [0.1, 0.5, 0.9, 0.3]
    assert randomization_test(a, a, 1000) == 1.0
    assert paired_ttest(a, a) == 1.0


def test_clearly_different_systems():
    rng = np.random.default_rng(0)
    b = rng.uniform(0, 0.5, 60)
    a = b + 0.3 + rng.normal(0, 0.05, 60)
    assert randomization_test(a, b) < 0.01
    assert paired_ttest(a, b) < 0.01


def test_randomization_is_seeded_and_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(size=30), rng.uniform(size=30)
    assert randomization_test(a, b, seed=3) == randomization_test(a, b, seed=3)
    assert randomization_test(a, b, seed=3) == randomization_test(b, a, seed=3)


def test_holm_by_hand():
    # Sorted 0.01, 0.02, 0.04 with m = 3: 3*.01 = .03, max(.03, 2*.02=.04) = .04,
    # max(.04, 1*.04) = .04.
    got = holm({"x": 0.04, "y": 0.01, "z": 0.02})
    assert got == pytest.approx({"y": 0.03, "z": 0.04, "x": 0.04})
    assert holm({"a": 0.6, "b": 0.9}) == pytest.approx({"a": 1.0, "b": 1.0})
    assert math.isnan(holm({"a": math.nan, "b": 0.01})["a"])


def test_bootstrap_contains_mean():
    x = np.random.default_rng(2).uniform(size=200)
    lo, hi = bootstrap_ci(x)
    assert lo < x.mean() < hi and hi - lo < 0.2
    lo, hi = macro_bootstrap_ci({"a": list(x[:100]), "b": list(x[100:] * 0.5)})
    assert lo < (x[:100].mean() + 0.5 * x[100:].mean()) / 2 < hi


class _R:
    def __init__(self, per_query, query_lang):
        self.measures, self.per_query, self.query_lang = ["RR@10"], {"RR@10": per_query}, query_lang


def test_compare_per_language():
    rng = np.random.default_rng(4)
    qs = [f"q{i}" for i in range(80)]
    lang = {q: ("hau" if i < 40 else "yor") for i, q in enumerate(qs)}
    b = {q: float(rng.uniform(0, 0.5)) for q in qs}
    a = {q: b[q] + (0.4 if lang[q] == "hau" else 0.0) for q in qs}
    rows = {r.language: r for r in compare(_R(a, lang), _R(b, lang), n_permutations=2000)}
    assert rows["hau"].a_better and rows["hau"].delta == pytest.approx(0.4)
    assert not rows["yor"].a_better and rows["yor"].p_randomization == 1.0
    assert rows["macro"].delta == pytest.approx(0.2) and rows["macro"].a_better


def test_sign_flip_is_scipy_permutation_test_on_one_language():
    from scipy import stats

    rng = np.random.default_rng(5)
    x, y = rng.uniform(size=10), rng.uniform(size=10)
    ref = stats.permutation_test((x, y), lambda a, b, axis: np.mean(a - b, axis=axis),
                                 permutation_type="samples", vectorized=True,
                                 alternative="two-sided", n_resamples=10**6).pvalue  # exact
    d = {"l": x - y}
    assert sign_flip_p((x - y) / 10, np.mean(x - y)) == pytest.approx(ref, abs=1e-12)
    assert contrast(d).p == pytest.approx(ref, abs=1e-12)


def test_bootstrap_ci_agrees_with_scipy_on_one_language():
    from scipy import stats

    x = np.random.default_rng(7).uniform(size=40)
    ref = stats.bootstrap((x,), np.mean, n_resamples=20000, method="percentile",
                          random_state=np.random.default_rng(8)).confidence_interval
    lo, hi = contrast({"l": x}, n_resamples=20000).ci
    # Monte Carlo error of a 2.5% percentile over 20,000 resamples: ~0.002 here.
    assert lo == pytest.approx(ref.low, abs=0.006) and hi == pytest.approx(ref.high, abs=0.006)


def test_stratified_bootstrap_resamples_within_languages():
    rng = np.random.default_rng(9)
    d = {"a": rng.normal(0.3, 0.2, 80), "b": rng.normal(-0.1, 0.05, 20)}
    c = contrast(d, n_resamples=4000)
    # Resampling within languages: SE^2 = sum (1/2)^2 var_l / n_l (ddof 0, the bootstrap's).
    se = math.sqrt(sum(0.25 * v.var() / v.size for v in d.values()))
    assert c.ci[0] < c.estimate < c.ci[1]
    assert c.ci[1] - c.ci[0] == pytest.approx(2 * 1.96 * se, rel=0.1)
