"""BM25: the tokeniser on non-Latin scripts and a score computed by hand (Lucene formula)."""

from __future__ import annotations

import math
import unicodedata

import pytest

from xlir.bm25 import BM25, tokenize
from xlir.retrieve import bm25_run
from xlir.data.task import Task


def test_tokenize_keeps_marks_inside_words():
    assert tokenize("ብሔራዊ ባንክ!") == ["ብሔራዊ", "ባንክ"]  # Ethiopic syllables are letters
    assert tokenize("কলকাতার রাজধানী") == ["কলকাতার", "রাজধানী"]  # Bengali vowel signs (Mc)
    assert tokenize("తెలుగు భాష.") == ["తెలుగు", "భాష"]  # Telugu vowel signs, virama
    assert tokenize("Ọ̀yọ́, ÌLÚ 2023") == ["ọ̀yọ́", "ìlú", "2023"]  # Yoruba tone marks
    decomposed = unicodedata.normalize("NFD", "Èkó")
    assert tokenize(decomposed) == tokenize("Èkó") == ["èkó"]
    assert tokenize("the war", stopwords=frozenset({"the"})) == ["war"]
    assert tokenize("a b ó ab") == ["ab"] and tokenize("a b", min_len=1) == ["a", "b"]


def test_lucene_score_by_hand():
    corpus = {"a": {"title": "", "text": "river city river"},
              "b": {"title": "", "text": "book"},
              "c": {"title": "", "text": "poet book city"}}
    k1, b = 0.9, 0.4
    hits = BM25(corpus, k1=k1, b=b).search(["river"], k=10)[0]
    # Lucene: idf = ln(1 + (N - df + .5) / (df + .5)); tf term = tf / (tf + k1 (1 - b + b dl/avgdl))
    idf = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    avgdl = (3 + 1 + 3) / 3
    expected = idf * 2 / (2 + k1 * (1 - b + b * 3 / avgdl))
    assert list(hits) == ["a"] and hits["a"] == pytest.approx(expected, rel=1e-5)


def test_bm25_run_per_pool_and_unknown_words():
    corpus = {"d1": {"title": "", "text": "river"}, "d2": {"title": "", "text": "river"}}
    task = Task("t", "test", corpus, {"q1": "river", "q2": "zzz"},
                {"q1": {"d1": 1}, "q2": {"d2": 1}},
                {"q1": "x", "q2": "x"}, {"d1": "x", "d2": "x"},
                {"q1": "p", "q2": "p"}, {"d1": "p", "d2": "other"})
    run = bm25_run(task)
    assert set(run["q1"]) == {"d1"} and run["q2"] == {}


def _title_task() -> Task:
    corpus = {"d1": {"title": "Nairobi", "text": "mji mkuu"},
              "d2": {"title": "", "text": "mji wa pwani"}}
    return Task("t", "test", corpus, {"q1": "nairobi"}, {"q1": {"d1": 1}}, {"q1": "swh_Latn"},
                {"d1": "swh_Latn", "d2": "swh_Latn"})


def test_titles_are_read_by_default_and_text_alone_one_option_away():
    # "{title} {text}" is what the dense encoders read, so comparisons default to it.
    corpus = _title_task().corpus
    assert set(BM25(corpus).search(["nairobi"])[0]) == {"d1"}
    assert BM25(corpus, use_title=False).search(["nairobi"])[0] == {}
    assert set(bm25_run(_title_task())["q1"]) == {"d1"}
    assert bm25_run(_title_task(), use_title=False)["q1"] == {}


def test_a_task_without_titles_gives_bm25_the_text_alone():
    # A study task with `titles: false`: every system, BM25 included, reads the text alone.
    assert bm25_run(_title_task().without_titles())["q1"] == {}
