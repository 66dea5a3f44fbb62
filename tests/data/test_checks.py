"""Fertility and leakage on tiny hand-made inputs with exact expected numbers, and the real
TyDi-en train vs AfriQA test leakage check."""

from __future__ import annotations

import numpy as np
import pytest

from xlir.data import checks
from xlir.data.task import Task


@pytest.fixture(scope="module")
def wordpiece_tokenizer():
    """A WordPiece tokenizer that knows 'ka ##no birni ne': 'kano' is 2 pieces, others 1."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "ka": 1, "##no": 2, "birni": 3, "ne": 4}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def test_fertility_exact(wordpiece_tokenizer):
    out = checks.fertility(wordpiece_tokenizer, {"hau_Latn": ["kano birni ne", "xyz kano"],
                                                 "eng_Latn": []})
    # words 3 + 2 = 5; pieces (ka ##no birni ne) 4 + ([UNK] ka ##no) 3 = 7; one unknown piece.
    assert out["hau_Latn"] == {"n_texts": 2, "n_words": 5, "n_pieces": 7,
                               "pieces_per_word": 7 / 5, "unk_rate": 1 / 7}
    assert out["eng_Latn"] == {"n_texts": 0, "n_words": 0, "n_pieces": 0,
                               "pieces_per_word": 0.0, "unk_rate": 0.0}


def test_shingles_and_jaccard_exact():
    assert checks.normalise("  The RIVER, runs!  ") == "the river runs"
    assert len(checks.shingles("abcdef")) == 2 and len(checks.shingles("ab")) == 1
    # {abcde, bcdef} vs {abcde, bcdeg}: 1 shared of 3.
    assert checks.jaccard(checks.shingles("abcdef"), checks.shingles("abcdeg")) == 1 / 3
    assert checks.jaccard(checks.shingles("Abc-Def"), checks.shingles("abc def")) == 1.0
    assert checks.shingles("abcdef").dtype == np.uint64


def _task() -> Task:
    corpus = {"d1": {"title": "Kano", "text": "The river runs through the city of Kano."},
              "d2": {"title": "", "text": "Nairobi is the capital of Kenya and its largest city."},
              "d3": {"title": "Poetry", "text": "Completely different text about poetry."}}
    return Task("toy", "test", corpus, {"q1": "Where is Kano?", "q2": "Who wrote the book?"},
                {"q1": {"d1": 1}, "q2": {"d3": 1}}, {"q1": "eng_Latn", "q2": "eng_Latn"},
                {d: "eng_Latn" for d in corpus})


def test_leakage_exact():
    pairs = [  # identical up to whitespace; near (case, punctuation); unrelated; a repeat
        {"query": "where is KANO", "title": "Kano", "text": " The river  runs through the city "
         "of Kano."},
        {"query": "capital?", "title": "", "text": "nairobi is the capital of kenya, and its "
         "largest city"},
        {"query": "football?", "title": "Football", "text": "Something unrelated: football."},
        {"query": "football?", "title": "Football", "text": "Something unrelated: football."},
    ]
    report = checks.leakage(pairs, _task())
    examples = report.pop("examples")
    assert report == {"train_passages": 3, "task_documents": 3, "identical_passages": 1,
                      "near_identical_passages": 1, "judged_documents_hit": 1,
                      "identical_questions": 1, "shared_titles": 1}
    assert examples["identical_passages"][0]["doc_id"] == "d1"
    assert examples["near_identical_passages"][0] == {
        "train": pairs[1]["text"], "doc_id": "d2", "jaccard": 1.0}
    assert examples["identical_questions"] == [{"query": "where is KANO", "qid": "q1"}]


def test_leakage_threshold_is_respected():
    pairs = [{"query": "x", "title": "", "text": "Nairobi is the capital of Kenya."}]
    # Shorter text: Jaccard with d2 is well under 0.9 but above 0.3.
    assert checks.leakage(pairs, _task())["near_identical_passages"] == 0
    assert checks.leakage(pairs, _task(), threshold=0.3)["near_identical_passages"] == 1


def test_task_texts_groups_by_text_language():
    task = _task()
    task.meta["query_text_lang"] = "fra_Latn"
    texts = checks.task_texts(task, limit=1)
    assert texts == {"queries": {"fra_Latn": ["Where is Kano?"]},
                     "documents": {"eng_Latn": ["The river runs through the city of Kano."]}}


@pytest.mark.real
def test_tydi_en_train_does_not_leak_identical_passages_into_afriqa_test(mirror):
    from xlir.data.tasks import load_pairs
    from xlir.data.tasks import load_task

    report = checks.leakage(load_pairs("tydi-en", "train"), load_task("afriqa", "test"))
    assert report["identical_passages"] == 0  # the data README: no identical passage
    assert report["identical_questions"] == 0
    # The README counts 174 shared titles comparing raw strings; two more match once
    # surrounding whitespace and case are normalised.
    assert report["shared_titles"] == 176
    # Near duplicates exist (edits of the same Wikipedia paragraph): 6, 3 of them gold
    # passages of AfriQA test questions.
    assert report["near_identical_passages"] == 6 and report["judged_documents_hit"] == 3
