"""Strict readers: every kind of bad input is one InputError naming the file, the line and
the field. Table-driven: each case breaks one file of an otherwise valid BEIR folder."""

from __future__ import annotations

import json

import pytest

from xlir.data import readers
from xlir.data.beir import beir_task
from xlir.errors import InputError

CORPUS = [{"_id": "d1", "title": "Kano", "text": "Kano birni ne", "lang": "hau"},
          {"_id": "d2", "text": "Nairobi ni mji mkuu wa Kenya"}]
QUERIES = [{"_id": "q1", "text": "ina Kano?", "lang": "ha"}, {"_id": "q2", "text": "Nairobi?"}]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n"


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _folder(tmp_path, **override) -> object:
    files = {"corpus.jsonl": _jsonl(CORPUS), "queries.jsonl": _jsonl(QUERIES),
             "qrels/test.tsv": QRELS.encode()}
    files.update(override)
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    return tmp_path


def test_valid_folder_reads_exactly(tmp_path):
    task = beir_task(_folder(tmp_path), "test", language="swa")
    assert task.corpus == {"d1": {"title": "Kano", "text": "Kano birni ne"},
                           "d2": {"title": "", "text": "Nairobi ni mji mkuu wa Kenya"}}
    assert task.queries == {"q1": "ina Kano?", "q2": "Nairobi?"}
    assert task.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    assert task.query_lang == {"q1": "hau_Latn", "q2": "swh_Latn"}
    assert task.doc_lang == {"d1": "hau_Latn", "d2": "swh_Latn"}


def test_qrels_without_header_and_unjudged_queries(tmp_path):
    qrels = b"q1\td1\t2\n"
    task = beir_task(_folder(tmp_path, **{"qrels/test.tsv": qrels}), "test", language="sw")
    assert task.queries == {"q1": "ina Kano?"} and task.qrels == {"q1": {"d1": 2}}


C, Q, R = "corpus.jsonl", "queries.jsonl", "qrels/test.tsv"
CASES = [
    # (id, file, bytes, expected file, line, field, message regex)
    ("malformed-json", C, b'{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": \n', C, 2, None,
     "invalid JSON"),
    ("not-an-object", C, b'["d1", "a"]\n', C, 1, None, "expected a JSON object, got list"),
    ("missing-id", C, b'{"text": "a"}\n', C, 1, "_id", "missing field"),
    ("missing-text", Q, b'{"_id": "q1"}\n', Q, 1, "text", "missing field"),
    ("empty-text", C, b'{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "  "}\n', C, 2,
     "text", "empty text"),
    ("text-not-string", C, b'{"_id": "d1", "text": 5}\n', C, 1, "text", "expected a string"),
    ("duplicate-doc-id", C, b'{"_id": "d1", "text": "a"}\n\n{"_id": "d1", "text": "b"}\n', C, 3,
     "_id", "duplicate id 'd1'"),
    ("duplicate-query-id", Q, b'{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n', Q, 2,
     "_id", "duplicate id 'q1'"),
    ("undecodable-bytes", C, b'{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "\xff"}\n', C,
     2, None, "not UTF-8"),
    ("unknown-language", Q, b'{"_id": "q1", "text": "a", "lang": "qqq"}\n', Q, 1, "lang",
     "unknown language code 'qqq'"),
    ("qrels-unknown-query", R, b"q1\td1\t1\nq9\td1\t1\n", R, 2, "query-id",
     "unknown query id 'q9'"),
    ("qrels-unknown-doc", R, b"q1\td7\t1\n", R, 1, "corpus-id", "unknown document id 'd7'"),
    ("qrels-bad-score", R, b"q1\td1\thigh\n", R, 1, "score", "not an integer"),
    ("qrels-columns", R, b"q1 d1 1\n", R, 1, None, "expected 3 tab-separated fields, got 1"),
    ("qrels-duplicate", R, b"q1\td1\t1\nq1\td1\t0\n", R, 2, None, "duplicate judgment"),
    ("qrels-empty", R, b"query-id\tcorpus-id\tscore\n", R, None, None, "no judgments"),
    ("corpus-empty", C, b"\n", C, None, None, "no items"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_file_line_and_field(tmp_path, case):
    _, name, data, where, line, field, message = case
    folder = _folder(tmp_path, **{name: data})
    with pytest.raises(InputError, match=message) as e:
        beir_task(folder, "test", language="hau")
    assert (str(e.value.path), e.value.line, e.value.field) == (str(folder / where), line, field)


def test_missing_language_without_default(tmp_path):
    with pytest.raises(InputError, match="no language") as e:
        beir_task(_folder(tmp_path), "test")
    assert (e.value.line, e.value.field) == (2, "lang")


def test_missing_file(tmp_path):
    folder = _folder(tmp_path)
    (folder / Q).unlink()
    with pytest.raises(InputError, match="file not found"):
        beir_task(folder, "test", language="hau")


@pytest.mark.parametrize("split", ["../test", "..", "a/b", "/etc/passwd", ""])
def test_split_names_cannot_leave_the_folder(tmp_path, split):
    with pytest.raises(InputError, match="cannot be used as a file name"):
        beir_task(_folder(tmp_path), split, language="hau")


@pytest.mark.parametrize("relative", ["../x", "a/../../x", "/abs/path"])
def test_safe_join_refuses_escapes(tmp_path, relative):
    with pytest.raises(InputError, match="would leave the folder"):
        readers.safe_join(tmp_path, relative)


def test_safe_join_and_name_accept_plain_names(tmp_path):
    assert readers.safe_join(tmp_path, "qrels/dev.tsv") == tmp_path / "qrels" / "dev.tsv"
    assert readers.safe_name("dev..v2") == "dev..v2"


@pytest.mark.parametrize("data, line, message", [
    (b'{\n  "a": 1,\n  "b": \n}\n', 4, "invalid JSON"),
    (b'{"a": "\xc3"}', 1, "not UTF-8"),
    (b'\xef\xbb\xbf{\n"a": 1,\n"b": "\xff"}', 3, r"not UTF-8 \(invalid start byte at byte 19\)"),
])
def test_read_json_reports_the_line(tmp_path, data, line, message):
    path = tmp_path / "x.json"
    path.write_bytes(data)
    with pytest.raises(InputError, match=message) as e:
        readers.read_json(path)
    assert e.value.line == line


def test_one_json_reader_for_data_and_the_projects_own_files(tmp_path):
    """readers.read_json is storage.read_json: a byte-order mark (Windows editors) is dropped."""
    from xlir import storage

    assert readers.read_json is storage.read_json
    path = tmp_path / "x.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": [1, 2]}\n')
    assert storage.read_json(path) == {"a": [1, 2]}


def test_read_lines_strips_bom_and_crlf(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\n")
    assert list(readers.read_lines(path)) == [(1, "one"), (2, "two")]


def test_read_tsv_skips_header_and_keeps_quotes(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_bytes(b'index_id\tcategory\ttext\n7\tsports\tHe said "yes"\n')
    assert list(readers.read_tsv(path, 3, header="index_id")) == [(2, ["7", "sports",
                                                                      'He said "yes"'])]
