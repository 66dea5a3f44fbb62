"""Built-in tasks and pairs against the upstream counts (real: reads the mirrored data), and
user bitext files (offline)."""

from __future__ import annotations

from collections import Counter

import pytest

from xlir.data.bitext import load_bitext_task
from xlir.data.tasks import load_pairs, load_task
from xlir.errors import InputError, XlirError

AFRIQA = {  # questions with a gold passage per language, counted from the gold files
    "test": {"bem_Latn": 308, "fon_Latn": 386, "hau_Latn": 300, "ibo_Latn": 409,
             "kin_Latn": 345, "swh_Latn": 295, "twi_Latn": 486, "yor_Latn": 253,
             "zul_Latn": 325},
    "dev": {"bem_Latn": 235, "fon_Latn": 271, "hau_Latn": 222, "ibo_Latn": 307,
            "kin_Latn": 230, "twi_Latn": 348, "zul_Latn": 242},
    "train": {"bem_Latn": 228, "fon_Latn": 282, "hau_Latn": 223, "ibo_Latn": 305,
              "kin_Latn": 214, "twi_Latn": 351, "yor_Latn": 247, "zul_Latn": 242},
}
TYDI_DEV = {"arb_Arab": (921, 842), "ben_Beng": (113, 105), "eng_Latn": (440, 429),
            "fin_Latn": (782, 634), "ind_Latn": (565, 514), "kor_Hang": (276, 228),
            "rus_Cyrl": (812, 778), "swh_Latn": (499, 357), "tel_Telu": (669, 601)}


def _per_lang(task) -> dict[str, int]:
    return dict(sorted(Counter(task.query_lang.values()).items()))


@pytest.mark.real
@pytest.mark.parametrize("split", ["test", "dev", "train"])
def test_afriqa_counts(mirror, split):
    task = load_task("afriqa", split)
    assert _per_lang(task) == AFRIQA[split]
    assert len(task.corpus) == 6151  # one pool of every unique gold passage, all splits
    assert Counter(task.doc_lang.values()) == {"eng_Latn": 5361, "fra_Latn": 790}
    assert all(len(rel) == 1 and set(rel) <= set(task.corpus) for rel in task.qrels.values())
    assert task.primary_measure == "RR@10" and task.pools().keys() == {"all"}


@pytest.mark.real
def test_afriqa_totals_match_the_readme_and_ids_are_stable(mirror):
    test = load_task("afriqa", "test")
    assert len(test.queries) == sum(AFRIQA["test"].values()) == 3107
    assert test.queries["hau-test-0"] == "Awane yanki jahar Anambra take a Nijeriya?"
    doc = test.corpus[next(iter(test.qrels["hau-test-0"]))]
    assert doc["title"] == "Anambra State" and doc["text"].startswith("Anambra State  is a")
    assert next(iter(test.qrels["hau-test-0"])) == next(iter(
        load_task("afriqa", "test", languages=["ha"]).qrels["hau-test-0"]))
    translated = load_task("afriqa-translate", "test", languages=["hau"])
    assert translated.queries["hau-test-0"] == "What region is Anambra State in Nigeria?"
    assert set(translated.query_lang.values()) == {"hau_Latn"}
    assert translated.meta["query_text_lang"] == "eng_Latn"
    assert len(translated.queries) == 300 and translated.qrels["hau-test-0"] == \
        test.qrels["hau-test-0"]


@pytest.mark.real
def test_tydi_mono_pools_per_language(mirror):
    task = load_task("tydi-mono", "dev", languages=list(TYDI_DEV))
    pools = task.pools()
    assert {lang: (len(q), len(d)) for lang, (q, d) in pools.items()} == TYDI_DEV
    assert load_task("tydi-mono", "dev").languages == ["ben_Beng", "swh_Latn", "tel_Telu"]
    as_test = load_task("tydi-mono")  # no public test split: dev is the evaluation set
    assert as_test.split == "test" and as_test.meta["upstream_split"] == "dev"
    assert len(as_test.queries) == 499 + 669 + 113
    assert load_task("tydi-mono", "dev", languages=["sw"]).languages == ["swh_Latn"]
    assert load_task("tydi-mono", "dev", languages="ar,ko").languages == ["arb_Arab", "kor_Hang"]
    assert task.primary_measure == "nDCG@10"
    with pytest.raises(XlirError, match="train split for"):
        load_task("tydi-mono", "train", languages=["ar"])


@pytest.mark.real
def test_amqa(mirror):
    sizes = {s: len(load_task("amqa", s).queries) for s in ("train", "dev", "test")}
    assert sizes == {"train": 1723, "dev": 600, "test": 299}
    assert sum(sizes.values()) == 2622
    task = load_task("amqa", "test")
    assert len(task.corpus) == 375 and task.languages == ["amh_Ethi"]


@pytest.mark.real
def test_flores_x2en_and_en2x(mirror):
    x2en = load_task("flores-x2en", "test")
    assert len(x2en.languages) == 204 and len(x2en.queries) == 204 * 204
    assert len(x2en.corpus) == 204 and set(x2en.doc_lang.values()) == {"eng_Latn"}
    assert x2en.qrels["hau_Latn:1523"] == {"eng_Latn:1523": 1}
    assert x2en.primary_measure == "Success@1"
    en2x = load_task("flores-en2x", "test", languages=["hau", "yor_Latn"])
    pools = en2x.pools()
    assert {k: (len(q), len(d)) for k, (q, d) in pools.items()} == \
        {"hau_Latn": (204, 204), "yor_Latn": (204, 204)}
    assert en2x.queries["eng_Latn>hau_Latn:1523"] == en2x.queries["eng_Latn>yor_Latn:1523"]
    assert en2x.qrels["eng_Latn>hau_Latn:1523"] == {"hau_Latn:1523": 1}
    assert en2x.query_lang["eng_Latn>hau_Latn:1523"] == "hau_Latn"
    for split, n in (("train", 701), ("dev", 99)):
        assert len(load_task("flores-bitext", split, ["hau"], direction="x2en").queries) == n


@pytest.mark.real
def test_pairs(mirror):
    sizes = {(n, s): len(load_pairs(n, s)) for n in ("tydi-en", "tydi-ko", "tydi-sw")
             for s in ("train", "dev")}
    assert sizes == {("tydi-en", "train"): 3696, ("tydi-en", "dev"): 440,
                     ("tydi-ko", "train"): 1625, ("tydi-ko", "dev"): 276,
                     ("tydi-sw", "train"): 2755, ("tydi-sw", "dev"): 499}
    en = load_pairs("afriqa-en", "train")
    native = load_pairs("afriqa-native", "dev")
    assert len(en) == 2092 and len(native) == 1855
    assert set(en[0]) == {"qid", "query", "query_lang", "doc_id", "title", "text", "source"}
    assert {p["source"] for p in en} == {"afriqa-en"}
    assert {p["query_lang"] for p in en} == {"eng_Latn"}
    assert Counter(p["query_lang"] for p in native) == AFRIQA["dev"]
    corpus = load_task("afriqa", "test").corpus
    assert all(corpus[p["doc_id"]]["text"] == p["text"] for p in en)


def test_task_errors():
    with pytest.raises(XlirError, match="unknown task 'nope'"):
        load_task("nope")
    with pytest.raises(XlirError, match="takes no option direction"):
        load_task("afriqa", direction="x2en")
    with pytest.raises(XlirError, match="AfriQA has splits"):
        load_task("afriqa", "validation")
    with pytest.raises(XlirError, match="direction 'en2x' contradicts it"):
        load_task("flores-x2en", direction="en2x")
    with pytest.raises(XlirError, match="flores-bitext needs direction"):
        load_task("flores-bitext")
    with pytest.raises(XlirError, match="unknown pair set"):
        load_pairs("tydi-xx")


def test_user_bitext(tmp_path):
    (tmp_path / "hau.txt").write_text("Kano birni ne\nIna ruwa\n")
    (tmp_path / "eng.txt").write_text("Kano is a city\nWhere is water\n")
    task = load_bitext_task(tmp_path / "hau.txt", tmp_path / "eng.txt", "ha", "en")
    assert task.queries == {"hau_Latn>eng_Latn:1": "Kano birni ne",
                            "hau_Latn>eng_Latn:2": "Ina ruwa"}
    assert task.qrels == {"hau_Latn>eng_Latn:1": {"eng_Latn:1": 1},
                          "hau_Latn>eng_Latn:2": {"eng_Latn:2": 1}}
    back = load_bitext_task(tmp_path / "hau.txt", tmp_path / "eng.txt", "ha", "en", "tgt2src")
    assert back.corpus["hau_Latn:2"]["text"] == "Ina ruwa"
    assert set(back.query_lang.values()) == {"hau_Latn"}
    assert back.meta["query_text_lang"] == "eng_Latn"


def _bitext_files(folder, hau="Kano birni ne\nIna ruwa\n", eng="Kano is a city\nWhere is water\n"):
    (folder / "hau.txt").write_text(hau)
    (folder / "eng.txt").write_text(eng)
    return folder / "hau.txt", folder / "eng.txt"


def test_bitext_task_by_name_is_the_library_task(tmp_path):
    # The name the CLI's --task and a study's task list give: the study config works for free.
    hau, eng = _bitext_files(tmp_path)
    name = f"bitext:{hau},{eng},ha,en"
    assert load_task(name) == load_bitext_task(hau, eng, "ha", "en")
    back = load_task(name, "dev", direction="tgt2src")
    assert back == load_bitext_task(hau, eng, "ha", "en", "tgt2src", split="dev")
    assert back.split == "dev" and back.primary_measure == "Success@1"
    assert load_task(f"{name},tgt2src", "dev") == back  # the direction in the name (CLI, study)
    assert load_task(f"{name},src2tgt", direction="tgt2src") == load_task(name)
    assert load_task(f"bitext: {hau} , {eng} , hau , eng", languages=["hau"]).languages == [
        "hau_Latn"]
    with pytest.raises(XlirError, match=r"has no queries in \['yor_Latn'\]"):
        load_task(name, languages=["yo"])
    with pytest.raises(XlirError, match="takes no option language"):
        load_task(name, language="hau")


@pytest.mark.parametrize("hau, eng, where, message", [
    # the longer file is named, at its first line the other file lacks
    ("a\nb\n", "a\n", "hau.txt, line 2",
     "eng.txt ends at line 1, this file has 2 lines: not line-aligned"),
    ("a\n", "a\nb\nc\n", "eng.txt, line 2",
     "hau.txt ends at line 1, this file has 3 lines: not line-aligned"),
    ("a\n\nb\n", "a\nb\nc\n", "hau.txt, line 2", "empty text"),
    ("a\n", "", "eng.txt", "empty file"),
    ("a\n", b"\xff\n", "eng.txt, line 1", "not UTF-8"),
])
def test_user_bitext_errors(tmp_path, hau, eng, where, message):
    (tmp_path / "hau.txt").write_text(hau)
    getattr(tmp_path / "eng.txt", "write_bytes" if isinstance(eng, bytes) else "write_text")(eng)
    for load in (lambda: load_bitext_task(tmp_path / "hau.txt", tmp_path / "eng.txt", "ha", "en"),
                 lambda: load_task(f"bitext:{tmp_path / 'hau.txt'},{tmp_path / 'eng.txt'},ha,en")):
        with pytest.raises(InputError, match=message) as e:
            load()
        assert where in str(e.value) and "\n" not in str(e.value)


def test_bitext_name_errors(tmp_path):
    hau, eng = _bitext_files(tmp_path)
    with pytest.raises(InputError, match="nope.txt: file not found"):
        load_task(f"bitext:{tmp_path / 'nope.txt'},{eng},hau,eng")
    with pytest.raises(XlirError, match="SRC_LANG: unknown language code 'xx'"):
        load_task(f"bitext:{hau},{eng},xx,eng")
    with pytest.raises(XlirError, match="TGT_LANG: unknown language code 'english'"):
        load_task(f"bitext:{hau},{eng},hau,english")
    with pytest.raises(XlirError, match="DIRECTION: expected src2tgt or tgt2src, got 'both'"):
        load_task(f"bitext:{hau},{eng},hau,eng,both")
    for bad in (f"bitext:{hau},{eng},hau", f"bitext:{hau},,hau,eng", "bitext:",
                f"bitext:{hau},{eng},hau,eng,tgt2src,x"):
        with pytest.raises(XlirError, match="expected bitext:SRC.txt,TGT.txt,SRC_LANG,TGT_LANG"):
            load_task(bad)


# --- monolingual text (MAD-X language adapters) --------------------------------------------


def test_conll_sentences_join_tokens_and_name_a_bad_line(tmp_path):
    from xlir.data.monolingual import conll_sentences
    from xlir.errors import InputError

    path = tmp_path / "train.txt"
    path.write_text("Kano B-LOC\nbirni O\n\n\nIna O\nkwana O\n", encoding="utf-8")
    assert conll_sentences(path) == ["Kano birni", "Ina kwana"]
    # An empty token with its tag (" O", as MasakhaNER 2.0 xho train.txt has) adds nothing.
    path.write_text("Ndiyekeni O\n, O\n O\nuNdila B-PER\n", encoding="utf-8")
    assert conll_sentences(path) == ["Ndiyekeni , uNdila"]
    path.write_text("Kano B-LOC\nO\n", encoding="utf-8")  # a tag alone at the line start
    with pytest.raises(InputError, match=r"line 2.*got 1 columns"):
        conll_sentences(path)
    path.write_text("Kano B-LOC\nbirni ne O\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"train\.txt.*line 2.*token.*expected 'token TAG', got 3"):
        conll_sentences(path)


@pytest.mark.real
def test_monolingual_text_reads_every_source_and_drops_what_is_evaluated(shared_dir):
    from xlir.data.monolingual import evaluated_texts, monolingual_texts
    from xlir.data.tasks import load_task

    texts, dropped = monolingual_texts("hau")
    assert {s: len(v) for s, v in texts.items()} == {"sib200": 1004, "masakhaner": 6485,
                                                      "afriqa": 743}
    assert dropped == {}
    assert texts["masakhaner"][0].count(" ") > 3  # tokens joined into a sentence
    tasks = [load_task("flores-x2en", "test", languages=["hau_Latn"]), load_task("afriqa", "test")]
    texts, dropped = monolingual_texts("hau", evaluated_texts(tasks))
    assert dropped["sib200"] == 204  # the FLORES test rows are x->en queries
    hausa_test = {q for q, lang in tasks[1].query_lang.items() if lang == "hau_Latn"}
    assert 0 < dropped["afriqa"] <= len(hausa_test)
    assert len(texts["sib200"]) == 800 and len(texts["afriqa"]) == 743 - dropped["afriqa"]
