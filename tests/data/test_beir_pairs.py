"""A user's BEIR folder works as a source of training pairs (xlir train / qgen train)."""

import json

import pytest

from xlir.data.tasks import load_pairs
from xlir.errors import XlirError


def _beir(root):
    root.mkdir()
    (root / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "Kano", "text": "Kano birni ne", "lang": "eng_Latn"}) + "\n"
        + json.dumps({"_id": "d2", "title": "", "text": "Ilu Eko", "lang": "eng_Latn"}) + "\n")
    (root / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "ina Kano", "lang": "hau_Latn"}) + "\n"
        + json.dumps({"_id": "q2", "text": "nibo ni Eko", "lang": "yor_Latn"}) + "\n")
    (root / "qrels").mkdir()
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td1\t0\n")
    return root


def test_pairs_from_a_beir_folder_keep_positive_judgments_only(tmp_path):
    folder = str(_beir(tmp_path / "b"))
    pairs = load_pairs(folder, "train")
    assert pairs == [{"qid": "q1", "query": "ina Kano", "query_lang": "hau_Latn", "doc_id": "d1",
                      "title": "Kano", "text": "Kano birni ne", "source": folder}]


def test_missing_split_is_a_clear_error(tmp_path):
    with pytest.raises(XlirError, match="dev"):
        load_pairs(str(_beir(tmp_path / "b")), "dev")
