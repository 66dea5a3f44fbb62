"""Fertility and leakage on tiny hand-made inputs with exact expected numbers, and on the real
data: TyDi-en train vs AfriQA test (near duplicates), AfriQA train vs test (exact)."""

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


def _judged_task() -> Task:
    """Two languages; d2 is in the pool but judged for no query."""
    corpus = {"d1": {"title": "Kano", "text": "The river runs through the city of Kano."},
              "d2": {"title": "", "text": "Nairobi is the capital of Kenya."},
              "d3": {"title": "", "text": "Completely different text about poetry."}}
    return Task("toy", "test", corpus, {"q1": "Ina Kano?", "q2": "Ta ni o ko iwe naa?"},
                {"q1": {"d1": 1}, "q2": {"d3": 1, "d2": 0}},
                {"q1": "hau_Latn", "q2": "yor_Latn"}, {d: "eng_Latn" for d in corpus})


LEAKY = [
    # question equal after normalising case and punctuation
    {"source": "s1", "query": "ina KANO", "query_lang": "hau_Latn", "doc_id": "x1",
     "title": "", "text": "Some other passage."},
    # the judged passage d1, by id and by text
    {"source": "s1", "query": "q a", "query_lang": "hau_Latn", "doc_id": "d1", "title": "Kano",
     "text": "The river runs through the city of Kano."},
    # d3's text under another id: case and spacing differ, so by text only
    {"source": "s1", "query": "q b", "query_lang": "yor_Latn", "doc_id": "x3", "title": "",
     "text": " completely  DIFFERENT text\nabout poetry."},
    # d2 is in the pool but judged for nothing: kept
    {"source": "s1", "query": "q c", "query_lang": "hau_Latn", "doc_id": "d2", "title": "",
     "text": "Nairobi is the capital of Kenya."},
    # another source, another language: an English pair on the passage a yor query judges
    {"source": "s2", "query": "q d", "query_lang": "eng_Latn", "doc_id": "d3", "title": "",
     "text": "Completely different text about poetry."},
    # no source, no doc id (a user's JSONL pairs): compared by question and text only
    {"query": "q e", "query_lang": "hau_Latn", "title": "", "text": "Kano."},
]


def test_text_key_is_nfkc_casefold_and_whitespace_only():
    assert checks.text_key("  \uff2bano\u00a0CITY\n ") == "kano city"  # fullwidth K, nbsp
    assert checks.text_key("STRASSE") == checks.text_key("straße")
    assert checks.text_key("Kano.") != checks.text_key("Kano")  # punctuation is kept


def test_drop_leaked_exact_counts():
    import copy

    pairs = copy.deepcopy(LEAKY)
    kept, counts = checks.drop_leaked(pairs, _judged_task())
    assert kept == [LEAKY[3], LEAKY[5]] and pairs == LEAKY  # inputs untouched
    zero = {"question": 0, "passage_id": 0, "passage_text": 0}
    assert counts == {
        "s1": {"hau_Latn": {"pairs": 3, "dropped": 2, "question": 1, "passage_id": 1,
                            "passage_text": 1},
               "yor_Latn": {"pairs": 1, "dropped": 1, **zero, "passage_text": 1}},
        "s2": {"eng_Latn": {"pairs": 1, "dropped": 1, "question": 0, "passage_id": 1,
                            "passage_text": 1}},
        "pairs": {"hau_Latn": {"pairs": 1, "dropped": 0, **zero}}}
    # One task, a list of tasks, or labelled tasks: the same answer.
    assert checks.drop_leaked(LEAKY, [_judged_task()]) == (kept, counts)
    assert checks.drop_leaked(LEAKY, {"a": _judged_task(), "b": _judged_task()}) == (kept, counts)
    assert checks.drop_leaked(LEAKY, []) == (LEAKY, {
        "s1": {"hau_Latn": {"pairs": 3, "dropped": 0, **zero},
               "yor_Latn": {"pairs": 1, "dropped": 0, **zero}},
        "s2": {"eng_Latn": {"pairs": 1, "dropped": 0, **zero}},
        "pairs": {"hau_Latn": {"pairs": 1, "dropped": 0, **zero}}})


def test_drop_leaked_compares_every_evaluated_split():
    # The question leaks into a second split only; the passages into neither.
    other = Task("other", "dev", {"e1": {"title": "", "text": "x"}}, {"o1": "q   C"},
                 {"o1": {"e1": 1}}, {"o1": "hau_Latn"}, {"e1": "hau_Latn"})
    kept, counts = checks.drop_leaked([LEAKY[3]], [_judged_task(), other])
    assert kept == [] and counts["s1"]["hau_Latn"]["question"] == 1


def test_leak_counts_per_source_split_language_and_kind():
    sources = {"s1": LEAKY[:4], "s2": LEAKY[4:5]}
    rows = checks.leak_counts(sources, [_judged_task()])
    table = {(r["source"], r["language"], r["kind"]): (r["train_pairs"], r["eval_queries"],
                                                      r["of"]) for r in rows}
    assert {r["split"] for r in rows} == {"toy/test"} and len(rows) == 2 * 2 * 3
    assert table == {
        ("s1", "hau_Latn", "question"): (1, 1, 1), ("s1", "hau_Latn", "passage_id"): (1, 1, 1),
        ("s1", "hau_Latn", "passage_text"): (1, 1, 1),
        ("s1", "yor_Latn", "question"): (0, 0, 1), ("s1", "yor_Latn", "passage_id"): (0, 0, 1),
        ("s1", "yor_Latn", "passage_text"): (1, 1, 1),
        ("s2", "hau_Latn", "question"): (0, 0, 1), ("s2", "hau_Latn", "passage_id"): (0, 0, 1),
        ("s2", "hau_Latn", "passage_text"): (0, 0, 1),
        ("s2", "yor_Latn", "question"): (0, 0, 1), ("s2", "yor_Latn", "passage_id"): (1, 1, 1),
        ("s2", "yor_Latn", "passage_text"): (1, 1, 1)}


def _leaky_beir(folder):
    """A BEIR folder whose train qrels leak into its test qrels: t1 repeats q1's question, t2
    has q1's gold passage d1."""
    import json

    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d, **doc, "lang": "eng"}) + "\n"
        for d, doc in _judged_task().corpus.items()))
    (folder / "queries.jsonl").write_text("".join(
        json.dumps({"_id": q, "text": t, "lang": "hau"}) + "\n"
        for q, t in (("q1", "Ina Kano?"), ("t1", "ina kano"), ("t2", "where"))))
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    (folder / "qrels" / "train.tsv").write_text("t1\td2\t1\nt2\td1\t1\n")
    return folder


def test_leakage_cli_prints_counts_per_source_split_language_and_kind(tmp_path, capsys):
    import json

    from xlir.cli import main

    folder = str(_leaky_beir(tmp_path / "beir"))
    assert main(["data", "leakage", "--train", folder, "--task", folder]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    for kind in ("question", "passage_id", "passage_text"):
        assert [folder, "beir/test", "hau_Latn", kind, "1", "1", "/", "1", "(100.0%)"] in lines
    assert "near duplicates" in out
    assert main(["data", "leakage", "--train", folder, "--task", folder, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["counts"]) == 3 and report["near"][0]["identical_passages"] == 2
    assert main(["data", "leakage", "--task", folder]) == 2
    assert "--train and --task go together" in capsys.readouterr().err


def test_leakage_cli_checks_a_study_config(tmp_path, capsys):
    import json

    from xlir.cli import main

    folder = str(_leaky_beir(tmp_path / "beir"))
    study = tmp_path / "study.yaml"
    study.write_text(f"tasks: [{{name: '{folder}', label: toy}}]\n"
                     f"train: {{train: ['{folder}']}}\n"
                     "methods: [{name: frozen}, {name: lora}]\n")
    assert main(["data", "leakage", "--study", str(study), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert {(r["source"], r["split"]) for r in counts} == {(folder, "toy/test")}
    assert [r["eval_queries"] for r in counts] == [1, 1, 1]  # question, by id, by text
    assert main(["data", "leakage", "--study", str(study), "--task", "afriqa"]) == 2
    assert "drop --task" in capsys.readouterr().err


# AfriQA test questions per language whose gold passage is a same-language train gold passage,
# of the language's test questions (measured from the mirrored files).
SAME_LANGUAGE_SHARED = {"bem_Latn": (19, 308), "fon_Latn": (49, 386), "hau_Latn": (9, 300),
                        "ibo_Latn": (53, 409), "kin_Latn": (19, 345), "swh_Latn": (0, 295),
                        "twi_Latn": (28, 486), "yor_Latn": (0, 253), "zul_Latn": (25, 325)}
# afriqa-native train pairs dropped against AfriQA test (question or passage, any language).
DROPPED = {"bem_Latn": 17, "fon_Latn": 53, "hau_Latn": 20, "ibo_Latn": 62, "kin_Latn": 32,
           "twi_Latn": 43, "yor_Latn": 5, "zul_Latn": 31}


@pytest.mark.real
def test_afriqa_train_gold_passages_are_test_gold_passages(mirror):
    """The fact the exact check exists for: 3-13% of the AfriQA test questions of each
    language that has a train split sharing passages (all but swa, which has no train split,
    and yor) have a gold passage that is a train gold passage of the same language; dropping
    the leaking training pairs removes them all."""
    from xlir.data.tasks import load_pairs, load_task

    pairs = load_pairs("afriqa-native", "train")
    test = load_task("afriqa", "test")
    same = {}
    for lang in test.languages:
        own = [p for p in pairs if p["query_lang"] == lang]
        rows = checks.leak_counts({"native": own}, {"test": test.subset([lang])})
        by_kind = {r["kind"]: r for r in rows}
        assert by_kind["passage_text"]["eval_queries"] == by_kind["passage_id"]["eval_queries"]
        same[lang] = (by_kind["passage_id"]["eval_queries"], by_kind["passage_id"]["of"])
    assert same == SAME_LANGUAGE_SHARED
    shares = [n / of for n, of in same.values() if n]
    assert 0.03 <= min(shares) and max(shares) < 0.13  # hau 9/300, ibo 53/409
    kept, counts = checks.drop_leaked(pairs, test)
    # Any language counts: a passage judged for a hau test question leaks from a yor pair too.
    assert {lang: c["dropped"] for lang, c in counts["afriqa-native"].items()} == DROPPED
    assert len(kept) == len(pairs) - 263
    left = checks.leak_counts({"kept": kept}, [test])
    assert not any(r["eval_queries"] or r["train_pairs"] for r in left)


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
