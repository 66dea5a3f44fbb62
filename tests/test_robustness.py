"""The study's question (delta, answer, interaction, robustness) on a toy case computed by
hand and against scipy.stats' permutation_test; seed averaging and seed pairing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xlir.errors import XlirError
from xlir.robustness import (answer, by_language, delta, interaction, interaction_verdict,
                             paired_reference, parse_system, per_language_tests, robustness,
                             robustness_to_json, seed_average, seed_spread, verdict)
from xlir.stats import Contrast, contrast, paired_differences


# ---- the study's question ---------------------------------------------------------------------
# Two languages, 3 and 4 queries. Per query: tuned method m, full fine-tuning, frozen.
def _toy(a: list[float], b: list[float]) -> dict[str, dict[str, float]]:
    return {"a": {f"a{i}": v for i, v in enumerate(a)}, "b": {f"b{i}": v for i, v in enumerate(b)}}


TOY_M = _toy([0.5, 1.0, 0.0], [1.0, 0.0, 0.5, 0.0])
TOY_FULL = _toy([0.0, 0.5, 0.0], [0.0, 0.0, 0.5, 0.0])
TOY_FROZEN = _toy([0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0])
Z = 1.959963984540054 + 0.8416212335729143  # z_.975 + z_.80


def test_toy_answer_by_hand():
    # s_m - s_full: a = [.5, .5, 0] (mean 1/3), b = [1, 0, 0, 0] (mean 1/4): macro 7/24.
    c = answer(TOY_M, TOY_FULL)
    assert c.estimate == pytest.approx(7 / 24)
    # Sign flips of c_q = d_q / (L n_l): the non-zero terms are 1/12, 1/12 (a) and 1/8 (b).
    # |±1/12 ±1/12 ±1/8| >= 7/24 only with all signs equal: 2 of the 8 patterns.
    assert c.p == 0.25
    # Var (ddof 1): a 1/12, b 1/4. SE^2 = (1/2)^2 (1/12 / 3 + 1/4 / 4) = 13/576.
    assert c.mde == pytest.approx(Z * math.sqrt(13) / 24)
    assert c.sd_paired == pytest.approx(math.sqrt((2 / 12 + 3 / 4) / 5))  # pooled, 5 dof
    assert c.verdict == "no difference detectable at +-0.421"
    assert (c.n_queries, c.languages, c.null) == (7, ["a", "b"], "sign-flip")


def test_toy_delta_by_hand_and_frozen_cancels():
    # s_m - s_frozen: a = [.5, 1, 0] (mean 1/2), b = [.5, 0, .5, 0] (mean 1/4): macro 3/8.
    dm, dfull = delta(TOY_M, TOY_FROZEN), delta(TOY_FULL, TOY_FROZEN)
    assert dm.estimate == pytest.approx(3 / 8)
    assert dfull.estimate == pytest.approx(1 / 12)  # a: 1/6, b: 0
    assert answer(TOY_M, TOY_FULL).estimate == pytest.approx(dm.estimate - dfull.estimate)
    # Terms (in 48ths) 4, 8 (a: d/6) and 3, 3 (b: d/8): only all-equal signs reach 18/48.
    assert dm.p == 2 / 16


def test_stratified_sign_flip_is_scipy_on_weighted_pairs():
    # Scaling each pair by 1/(L n_l) makes scipy's unstratified flips the stratified test.
    from scipy import stats

    rng = np.random.default_rng(6)
    sizes = {"hau": 5, "yor": 7}
    m = {lang: {f"{lang}{i}": float(v) for i, v in enumerate(rng.uniform(0.2, 1.0, n))}
         for lang, n in sizes.items()}
    f = {lang: {q: float(rng.uniform(0.0, 0.8)) for q in qs} for lang, qs in m.items()}
    w = np.concatenate([np.full(n, 1 / (2 * n)) for n in sizes.values()])
    xm = np.concatenate([[m[lang][q] for q in sorted(m[lang])] for lang in sizes])
    xf = np.concatenate([[f[lang][q] for q in sorted(f[lang])] for lang in sizes])
    ref = stats.permutation_test((w * xm, w * xf), lambda a, b, axis: np.sum(a - b, axis=axis),
                                 permutation_type="samples", vectorized=True,
                                 n_resamples=10**6).pvalue  # 2^12 patterns: exact
    got = answer(m, f)
    assert got.p == pytest.approx(ref, abs=1e-12)
    assert got.estimate == pytest.approx(np.sum(w * (xm - xf)))


def _groups(rng, means: dict[str, float], n: int = 30, sd: float = 0.05):
    frozen = {lang: {f"{lang}{i}": 0.0 for i in range(n)} for lang in means}
    method = {lang: {q: float(means[lang] + rng.normal(0, sd)) for q in qs}
              for lang, qs in frozen.items()}
    return method, frozen


def test_interaction_tests_equal_deltas_not_zero_deltas():
    rng = np.random.default_rng(10)
    unseen, seen = ["u1", "u2"], ["s1", "s2"]
    # Deltas 0.9 (unseen) vs 0.8 (seen): a real interaction of 0.1 on a large common shift.
    method, frozen = _groups(rng, {"u1": 0.9, "u2": 0.9, "s1": 0.8, "s2": 0.8})
    c = interaction(method, frozen, unseen, seen, n_resamples=500)
    assert c.estimate == pytest.approx(0.1, abs=0.03) and c.p < 0.01
    assert c.null == "centred sign-flip" and c.ci[0] > 0
    # The raw flips would test "both deltas are 0": the common 0.85 swamps the null spread.
    d = paired_differences(method, frozen)
    raw = contrast(d, {"u1": 0.5, "u2": 0.5, "s1": -0.5, "s2": -0.5}, n_resamples=50)
    assert raw.p > 0.3
    # Languages as the unit: 6 splits of 4 languages into 2 + 2, the observed one and its
    # mirror are the most extreme: p = 2/6, the smallest this design can give.
    assert c.p_languages == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="disjoint"):
        interaction(method, frozen, unseen, unseen)


def test_interaction_keeps_its_level_under_the_null():
    # Equal deltas (0.5) in both groups: the centred test rejects about 5% of the time.
    rng = np.random.default_rng(11)
    rejections = 0
    for _ in range(200):
        method, frozen = _groups(rng, {"u1": 0.5, "u2": 0.5, "s1": 0.5, "s2": 0.5}, sd=0.2)
        c = interaction(method, frozen, ["u1", "u2"], ["s1", "s2"], n_permutations=499,
                        n_resamples=20, seed=int(rng.integers(1 << 30)))
        rejections += c.p < 0.05
    assert rejections / 200 < 0.1


def test_verdict_wording():
    def c(estimate, p, mde=0.05):
        return Contrast(estimate, (0, 0), p, mde, 0.2, 100, ["hau_Latn"], "sign-flip", p_holm=p)
    assert verdict(c(0.04, 0.01)) == "more robust than full FT"
    assert verdict(c(-0.04, 0.01)) == "less robust"
    assert verdict(c(0.04, 0.2, 0.0312)) == "no difference detectable at +-0.031"


def test_interaction_verdict_wording():
    def c(estimate, p, mde=0.05):
        return Contrast(estimate, (0, 0), p, mde, 0.2, 100, ["hau_Latn"], "centred sign-flip",
                        p_holm=p)
    assert interaction_verdict(c(0.04, 0.01), "unseen", "seen") == "unseen > seen"
    assert interaction_verdict(c(-0.04, 0.01), "low", "high") == "low < high"
    assert interaction_verdict(c(0.04, 0.2, 0.0312), "unseen", "seen") == \
        "no difference detectable at +-0.031"


def test_seeds_are_averaged_per_query():
    s1 = {"hau": {"q1": 0.2, "q2": 0.4}}
    s2 = {"hau": {"q1": 0.4, "q2": 0.8}}
    assert seed_average([s1, s2]) == {"hau": pytest.approx({"q1": 0.3, "q2": 0.6})}
    with pytest.raises(ValueError, match="other queries"):
        seed_average([s1, {"hau": {"q1": 0.1, "q3": 0.2}}])
    assert seed_spread([s1, s2]) is None  # two seeds: no spread reported
    s3 = {"hau": {"q1": 0.0, "q2": 0.0}}
    spread = seed_spread([s1, s2, s3])  # macros .3, .6, 0
    assert spread.macros == pytest.approx([0.3, 0.6, 0.0])
    assert (spread.mean, spread.sd, spread.min, spread.max) == pytest.approx((0.3, 0.3, 0.0, 0.6))
    assert by_language({"q1": 1.0, "q2": 0.5}, {"q1": "hau", "q2": "yor"}) == \
        {"hau": {"q1": 1.0}, "yor": {"q2": 0.5}}


def test_robustness_table():
    rng = np.random.default_rng(12)
    langs = {"hau_Latn": "seen", "swh_Latn": "seen", "yor_Latn": "unseen", "ibo_Latn": "unseen"}
    base = {lang: {f"{lang}{i}": float(rng.uniform()) for i in range(25)} for lang in langs}

    def shifted(shift, noise=0.02):
        return {lang: {q: s + shift[g] + float(rng.normal(0, noise)) for q, s in qs.items()}
                for lang, qs in base.items() for g in [langs[lang]]}
    runs = {"frozen": [base], "full": [shifted({"seen": 0.2, "unseen": -0.2})],
            "lora": [shifted({"seen": 0.1, "unseen": 0.0}) for _ in range(3)],
            "bitfit": [shifted({"seen": 0.2, "unseen": -0.2})]}
    table = robustness(runs, langs, n_resamples=200, n_permutations=2000)
    lora, bitfit = table["answer"]["unseen"]["lora"], table["answer"]["unseen"]["bitfit"]
    assert lora.estimate == pytest.approx(0.2, abs=0.02) and lora.p_holm >= lora.p
    assert lora.verdict == "more robust than full FT"
    assert table["answer"]["seen"]["lora"].verdict == "less robust"
    assert bitfit.verdict.startswith("no difference detectable at +-")
    assert set(table["delta"]["unseen"]) == {"full", "lora", "bitfit"}
    assert table["interaction"]["full"].estimate == pytest.approx(-0.4, abs=0.02)
    # Interactions are Holm-corrected over the methods (full included) and worded.
    inter = table["interaction"]
    assert all(c.p_holm >= c.p for c in inter.values())
    assert inter["full"].verdict == "unseen < seen" and inter["lora"].verdict == "unseen < seen"
    # A grouping without a contrast pair (joshi's classes) has no interaction.
    assert robustness(runs, langs, contrast_groups=None, n_resamples=20,
                      n_permutations=200)["interaction"] == {}
    assert set(table["seeds"]) == {"lora"} and table["seeds"]["lora"].n_seeds == 3
    assert robustness_to_json(table)["answer"]["unseen"]["lora"]["verdict"] == lora.verdict


# ---- seeds paired ----------------------------------------------------------------------------
SYSTEMS = ["bm25", "frozen-s13", "frozen-s42", "full-s13", "full-s42", "lora-s13", "lora-s42",
           "hybrid-full-s13", "hybrid-full-s42", "xqg-lora-s42-a0.01"]


def test_two_seeds_are_paired_by_seed():
    # "The first folder found" would pair lora-s42 with full-s13.
    assert paired_reference("lora-s42", SYSTEMS, "full") == ["full-s42"]
    assert paired_reference("lora-s13", SYSTEMS, "full") == ["full-s13"]
    assert paired_reference("lora-s42", SYSTEMS, "frozen") == ["frozen-s42"]
    assert paired_reference("hybrid-lora-s42", SYSTEMS, "hybrid-full") == ["hybrid-full-s42"]
    assert paired_reference("xqg-lora-s42-a0.01", SYSTEMS, "lora") == ["lora-s42"]
    # A seed-averaged system is tested against the seed average of the reference.
    assert paired_reference("lora", SYSTEMS, "full") == ["full-s13", "full-s42"]
    assert paired_reference("lora-s13", SYSTEMS, "full", seed_averaged=True) == \
        ["full-s13", "full-s42"]
    assert paired_reference("lora-s13", SYSTEMS, "bm25") == ["bm25"]
    with pytest.raises(XlirError, match="seed 7, 'full' only seeds \\[13, 42\\]"):
        paired_reference("lora-s7", SYSTEMS, "full")
    with pytest.raises(XlirError, match="no 'bitfit' system"):
        paired_reference("lora-s13", SYSTEMS, "bitfit")
    assert parse_system("lora-s4-s13") == ("lora-s4", 13)


def test_paired_seeds_change_the_test():
    # Seed 42 of lora equals seed 42 of full; seed 13 of full is worse on every query. Paired
    # by seed there is nothing to find; paired with the first folder there would be.
    rng = np.random.default_rng(13)
    full42 = {"hau": {f"q{i}": float(rng.uniform(0.3, 1)) for i in range(30)}}
    full13 = {"hau": {q: s - 0.2 for q, s in full42["hau"].items()}}
    runs = {"full-s13": full13, "full-s42": full42, "lora-s42": full42}
    ref = seed_average([runs[r] for r in paired_reference("lora-s42", runs, "full")])
    assert answer(runs["lora-s42"], ref).p == 1.0
    assert answer(runs["lora-s42"], runs["full-s13"]).p < 0.001


def test_recorded_method_and_seed_beat_the_name():
    # What the study recorded wins over the name: "xqg-b-s13-a0.1" was built on dense "b" of
    # seed 13 (so it pairs with the dense references), and "x" has seed 42 though its name
    # carries none.
    names = ["zs-s13", "zs-s42", "xqg-b-s13-a0.1", "x"]
    known = {"zs-s13": ("zs", 13), "zs-s42": ("zs", 42), "xqg-b-s13-a0.1": ("b", 13),
             "x": ("b", 42)}
    assert paired_reference("xqg-b-s13-a0.1", names, "zs", known=known) == ["zs-s13"]
    assert paired_reference("x", names, "zs", known=known) == ["zs-s42"]
    assert paired_reference("x", names, "zs") == ["zs-s13", "zs-s42"]  # parsed: no seed


def test_per_language_tests_are_holm_corrected_over_languages():
    rng = np.random.default_rng(14)
    b = {lang: {f"{lang}{i}": float(rng.uniform(0, 0.5)) for i in range(40)} for lang in "xy"}
    a = {"x": {q: s + 0.4 for q, s in b["x"].items()}, "y": dict(b["y"])}
    got = per_language_tests(a, b, n_permutations=999)
    assert got["x"][0] == pytest.approx(0.4) and got["x"][1] == pytest.approx(2 / 1000)
    assert got["y"] == (0.0, 1.0)
