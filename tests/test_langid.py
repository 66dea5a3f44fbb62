"""Language identification: the char n-gram classifier on hand-made sentences, its open-format
save/load, the quality summary, and (real) its accuracy on SIB-200 test sentences."""

from __future__ import annotations

import numpy as np
import pytest

from xlir import langid

TRAIN = {
    "hau_Latn": ["Kano birni ne a arewacin Najeriya", "Wane ne shugaban kasar Najeriya",
                 "Yaushe aka kafa jihar Kano", "Ina ne babban birnin tarayya"],
    "swh_Latn": ["Nairobi ni mji mkuu wa Kenya", "Nani ni rais wa kwanza wa Tanzania",
                 "Mto mrefu zaidi barani Afrika ni upi", "Lini Kenya ilipata uhuru"],
    "eng_Latn": ["the river runs through the city", "who wrote the book about the war",
                 "when did the war end in the north", "where is the capital of the country"],
}


@pytest.fixture(scope="module")
def clf():
    return langid.train_classifier(TRAIN, min_df=1)


def test_classifier_on_short_sentences(clf):
    assert clf.languages == ["eng_Latn", "hau_Latn", "swh_Latn"]
    assert clf.predict(["Wane ne sarkin Kano", "Nani ni mwandishi wa kitabu",
                        "who is the president of the country"]) == [
        "hau_Latn", "swh_Latn", "eng_Latn"]
    assert clf.predict([]) == []


def test_save_load_roundtrip_without_pickle(clf, tmp_path):
    clf.save(tmp_path / "clf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.json", "clf.npz"]
    back = langid.CharNgramClassifier.load(tmp_path / "clf")
    texts = ["Ina Kano take", "the city"]
    assert back.languages == clf.languages and back.vocabulary == clf.vocabulary
    np.testing.assert_allclose(back.scores(texts), clf.scores(texts), rtol=1e-6)


def test_query_quality(clf):
    rows = [{"doc_id": "d1", "lang": "hau_Latn", "question": "Wane ne shugaban Kano"},
            {"doc_id": "d1", "lang": "hau_Latn", "question": "wane ne shugaban kano "},
            {"doc_id": "d2", "lang": "hau_Latn", "question": "who wrote the book"},
            {"doc_id": "d2", "lang": "hau_Latn", "question": ""},
            {"doc_id": "d1", "lang": "fon_Latn", "question": "Ye ɖo"}]
    q = langid.query_quality(rows, clf, examples=2)
    hau = q["hau_Latn"]
    assert hau["rows"] == 4
    assert hau["duplicate_rate"] == 0.5  # one repeat (case/space ignored) + one empty
    assert hau["mean_words"] == 3.0 and hau["median_words"] == 4.0  # lengths 4, 4, 4, 0
    assert hau["examples"] == ["Wane ne shugaban Kano", "wane ne shugaban kano "]
    assert hau["langid_agreement"] == 0.5  # the English row (and the empty one) disagree
    assert q["fon_Latn"]["langid_agreement"] is None  # not a language the classifier knows
    assert hau["repetition_rate"] == 0.0
    if langid.cld3_language("test") is not None:  # CLD3's opinion, where it knows hau
        assert hau["cld3_agreement"] == pytest.approx(
            sum(langid.cld3_language(r["question"]) == "hau" for r in rows[:4]) / 4)
    assert q["fon_Latn"]["cld3_agreement"] is None  # CLD3 has no Fon
    loop = langid.query_quality([{"doc_id": "d", "lang": "hau_Latn", "question": q} for q in (
        "bese bese bese", "ryugu muri ryugu muri", "wane ne wane")], clf)
    assert loop["hau_Latn"]["repetition_rate"] == pytest.approx(2 / 3)


def test_cld3_second_opinion():
    pytest.importorskip("gcld3")
    assert langid.cld3_language("Wanene shugaban kasar Najeriya?") == "hau"
    assert langid.cld3_language("Who is the president of the country?") == "eng"


@pytest.mark.real
def test_sib_classifier_accuracy(tmp_path, monkeypatch):
    """Trained on SIB-200 train (4 languages here, to keep it fast), tested on SIB-200 test."""
    monkeypatch.setenv("XLIR_MODEL_CACHE", str(tmp_path))
    langs = ["hau_Latn", "yor_Latn", "twi_Latn", "fon_Latn"]
    clf = langid.default_classifier(langs)
    assert list((tmp_path / "langid").glob("*.npz"))
    full = langid.sib_accuracy(clf)
    short = langid.sib_accuracy(clf, words=6)
    assert min(full.values()) >= 0.98 and min(short.values()) >= 0.95
