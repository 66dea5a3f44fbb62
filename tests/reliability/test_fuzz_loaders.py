"""Property tests: random bytes, random text and random JSON fed to every loader of a
user-supplied file. Each loader either returns a value of its documented type or raises an
`XlirError` whose message names the file (or the folder it was asked to read); nothing else
escapes (no JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ...) and nothing hangs
(each call runs under a 10 s alarm).

Inputs mix four kinds: raw bytes; lines of text rich in separators (tabs, quotes, braces);
JSON values from `st.recursive`, one per line; and rows with the right keys but values of the
wrong type or missing. Examples are derandomized and no database is written, so CI sees the
same inputs every run. Every raw exception hypothesis once found is pinned as an `@example`.

Hand-written tables of the same faults (with exact messages) are in tests/data/test_readers.py
and, through the CLI, in tests/reliability/test_bad_input.py. This file does not test kills,
full disks or huge files.
"""

from __future__ import annotations

import json
import re
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from xlir.errors import XlirError

# hypothesis caches literals and unicode tables in its home folder even without a database:
# keep that out of the repository
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "xlir-hypothesis")
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# --- strategies ---------------------------------------------------------------------------

SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=8)
# characters that split fields or records, quote, escape, or are not plain ASCII
TRICKY = st.sampled_from(list("\t \"'{}[]:,.\\#-_=\r") + ["\x00", "\ufeff", "é", "ሀ", "\u2028"])
LINE = st.text(alphabet=TRICKY | st.characters(), max_size=30)


def _mostly(good, bad) -> st.SearchStrategy:
    """Good three times in four, so that loaders get past their first check."""
    return st.one_of(good, good, good, bad)


IDS = _mostly(st.sampled_from(["d1", "d2", "q1", "q2", "1"]), st.sampled_from([" ", ""]) | JSON)
TEXT = _mostly(st.sampled_from(["Kano birni ne", "ina Kano?"]), st.text(max_size=10) | JSON)
LANGS = _mostly(st.sampled_from(["hau", "ha", "eng_Latn"]), st.sampled_from(["xx", ""]) | JSON)
DEEP = b"[" * 100_000  # json and yaml both recurse once per level
# "billion laughs": 10**9 list items by reference (under `train`, a free-form mapping of
# StudyConfig); an error message that quoted the whole value would never be built
LAUGHS = ("train:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9))
    + "tasks: [{name: t, options: {x: *l8}}]\nname: *l8\n").encode()


def _lines(strategy) -> st.SearchStrategy[bytes]:
    return st.lists(strategy, max_size=6).map(
        lambda rows: "\n".join(rows).encode("utf-8", "surrogatepass"))  # lone surrogates too


def _jsonl(strategy, min_size: int = 0) -> st.SearchStrategy[bytes]:
    return st.lists(strategy, min_size=min_size, max_size=max(min_size, 4)).map(
        lambda rows: "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in rows)
        .encode("utf-8", "surrogatepass"))


def _rows(required: dict, optional: dict | None = None) -> st.SearchStrategy[dict]:
    """Objects with the right keys (values good or wrong), or with any of them missing and
    a stray key."""
    optional = optional or {}
    return _mostly(st.fixed_dictionaries(required, optional=optional),
                   st.fixed_dictionaries({}, optional={**required, **optional, "extra": JSON}))


def _mix(*near_valid) -> st.SearchStrategy[bytes]:
    """File bytes: raw bytes, text lines, JSON values one a line, or near-valid content."""
    return st.one_of(st.binary(max_size=200), _lines(LINE), _jsonl(JSON), *near_valid)


BEIR_ROW = _rows({"_id": IDS, "text": TEXT}, {"title": JSON | TEXT, "lang": LANGS})
QREL_LINE = st.tuples(IDS.map(str), IDS.map(str),
                      _mostly(st.sampled_from(["1", "0", "-1", " 2 "]), st.text(max_size=3))
                      ).map("\t".join)
TRECRUN_LINE = st.lists(st.sampled_from(["q1", "Q0", "d1", "1", "0.5", "nan", "1e999"])
                        | st.text(max_size=4), max_size=7).map(" ".join)
GENERATED_ROW = _rows({"doc_id": IDS, "question": TEXT},
                      {"passage_id": IDS, "lang": LANGS, "settings": JSON, "sample": JSON})
QA = _rows({"id": IDS, "question": TEXT})
PARAGRAPH = _rows({"context": TEXT, "qas": st.lists(QA, max_size=2) | JSON})
ARTICLE = _rows({"paragraphs": st.lists(PARAGRAPH, max_size=2) | PARAGRAPH | JSON},
                {"title": TEXT})
SQUAD_DOC = _rows({"data": st.lists(ARTICLE, max_size=2) | JSON}).map(
    lambda v: json.dumps(v).encode())
AFRIQA_ROW = _rows({"id": IDS, "context": TEXT, "question_lang": TEXT},
                   {"question_translated": TEXT, "title": TEXT})
SIB_LINE = st.tuples(IDS.map(str), st.text(max_size=4), LINE).map("\t".join)
CONFIG_KEYS = st.sampled_from(["name", "out", "tasks", "methods", "seeds", "k", "xqg", "train",
                               "method", "method_options", "epochs", "lr", "loss", "dev", 1])
CONFIG = st.dictionaries(CONFIG_KEYS, JSON | st.lists(st.dictionaries(
    st.sampled_from(["name", "label", "options", "split", "languages"]), JSON), max_size=2),
    max_size=4)
CONFIG_FILE = st.one_of(st.binary(max_size=200), _lines(LINE), JSON.map(json.dumps).map(str.encode),
                        CONFIG.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode()))


# --- the property --------------------------------------------------------------------------


@contextmanager
def _alarm(seconds: int = 10):
    def hung(*_):
        raise TimeoutError(f"loader still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check(load, names: Path, returns):
    """`load()` returns a `returns` or raises an XlirError whose message contains `names`."""
    with _alarm():
        try:
            value = load()
        except XlirError as e:
            assert str(names) in str(e), f"message does not name {names}: {e}"
            # --hypothesis-show-statistics then shows how deep the inputs got
            event(f"{type(e).__name__}: {str(e).rsplit(': ', 1)[-1][:25]}")
            return None
    assert isinstance(value, returns), f"returned {type(value).__name__}"
    event("returned")
    return value


@contextmanager
def _files(**contents: bytes):
    """A temporary folder holding `contents` (relative name -> bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, data in contents.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        yield root


# --- data/readers.py ------------------------------------------------------------------------


@FUZZ
@given(_mix())
@example(DEEP)
def test_readers_line_json_and_tsv(data):
    from xlir.data import readers

    with _files(f=data) as root:
        path = root / "f"
        check(lambda: list(readers.read_lines(path)), path, list)
        check(lambda: readers.read_json(path), path, object)
        rows = check(lambda: list(readers.read_jsonl(path)), path, list)
        assert all(isinstance(r, dict) for _, r in rows or [])
        check(lambda: list(readers.read_tsv(path, 3, header="query-id")), path, list)


# --- data/beir.py and BEIR folders through data/tasks.py ----------------------------------


BEIR = {"corpus.jsonl": ['{"_id": "d1", "text": "Kano birni ne", "lang": "hau"}',
                         '{"_id": "d2", "title": "Kenya", "text": "Nairobi", "lang": "swa"}'],
        "queries.jsonl": ['{"_id": "q1", "text": "ina Kano?", "lang": "ha"}',
                          '{"_id": "q2", "text": "Nairobi?", "lang": "sw"}'],
        "qrels/test.tsv": ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q2\td2\t0"]}


def _spliced(lines: list[str], new) -> st.SearchStrategy[bytes]:
    """`lines` with a line from `new` inserted, or (one time in four) replacing one."""
    return st.tuples(st.integers(0, len(lines)), _mostly(st.just(0), st.just(1)), new).map(
        lambda t: "\n".join(lines[:t[0]] + [t[2]] + lines[t[0] + t[1]:]).encode(
            "utf-8", "surrogatepass"))


# some edits leave the folder valid (an extra item, a blank line, one more judgment)
ROW_LINE = st.one_of(st.sampled_from(["", " ", '{"_id": "x3", "text": "3", "lang": "yo"}']),
                     BEIR_ROW.map(lambda v: json.dumps(v, ensure_ascii=False)), LINE)
QREL_EDIT = st.sampled_from(["", "q1\td2\t0", "q2\td1\t2"]) | QREL_LINE | LINE
BEIR_EDITS = {"corpus.jsonl": _mostly(_spliced(BEIR["corpus.jsonl"], ROW_LINE), _mix()),
              "queries.jsonl": _mostly(_spliced(BEIR["queries.jsonl"], ROW_LINE), _mix()),
              "qrels/test.tsv": _mostly(_spliced(BEIR["qrels/test.tsv"], QREL_EDIT), _mix())}


def test_the_unbroken_beir_folder_loads():
    from xlir.data.tasks import load_pairs, load_task

    files = {name: "\n".join(lines).encode() for name, lines in BEIR.items()}
    with _files(**files) as folder:
        task = load_task(str(folder), "test")
        assert task.qrels == {"q1": {"d1": 1}, "q2": {"d2": 0}}
        assert task.query_lang == {"q1": "hau_Latn", "q2": "swh_Latn"}
        assert [p["doc_id"] for p in load_pairs(str(folder), "test")] == ["d1"]


@FUZZ
@given(st.sampled_from(sorted(BEIR_EDITS)).flatmap(
    lambda name: st.tuples(st.just(name), BEIR_EDITS[name])), st.sampled_from([None, "hau"]))
def test_beir_folder_with_one_file_broken(edit, language):
    from xlir.data.beir import beir_task
    from xlir.data.task import Task
    from xlir.data.tasks import load_pairs, load_task

    files = {name: "\n".join(lines).encode() for name, lines in BEIR.items()}
    with _files(**{**files, edit[0]: edit[1]}) as folder:
        check(lambda: beir_task(folder, "test", language), folder, Task)
        check(lambda: load_task(str(folder), "test"), folder, Task)
        check(lambda: load_pairs(str(folder), "test"), folder, list)


@FUZZ
@given(_mix(_jsonl(BEIR_ROW, 1)), _mix(_jsonl(BEIR_ROW, 1)), _mix(_lines(QREL_LINE)))
def test_beir_folder_of_random_files(corpus, queries, qrels):
    from xlir.data.tasks import load_task

    with _files(**{"corpus.jsonl": corpus, "queries.jsonl": queries,
                   "qrels/test.tsv": qrels}) as folder:
        check(lambda: load_task(str(folder), "test", language="hau"), folder, object)


@FUZZ
@given(_mix(_lines(QREL_LINE)))
def test_beir_qrels(data):
    from xlir.data.beir import read_qrels

    with _files(f=data) as root:
        known = {"q1": "a", "q2": "b", "1": "c"}, {"d1": {}, "d2": {}, "1": {}}
        check(lambda: read_qrels(root / "f", *known), root / "f", dict)


# --- built-in dataset formats (data/tasks.py, data/bitext.py) -----------------------------


@FUZZ
@given(_mix(SQUAD_DOC))
@example(b"null")
@example(b"{}")
@example(b'{"data": [null]}')
@example(b'{"data": [{}]}')
def test_squad_items(data):
    from xlir.data.tasks import squad_items

    with _files(f=data) as root:
        check(lambda: squad_items(root / "f"), root / "f", list)


@FUZZ
@given(_mix(_jsonl(AFRIQA_ROW)))
@example(b'{"context": "c", "question_lang": "q"}')  # was KeyError 'id'
@example(b'{"id": 1, "context": "c", "question_lang": "q", "title": 1}')  # was AttributeError
def test_afriqa_rows(data):
    from xlir.data.tasks import afriqa_file_rows

    with _files(f=data) as root:
        check(lambda: afriqa_file_rows(root / "f", "hau-test", "hau_Latn", "en"), root / "f",
              list)


@FUZZ
@given(_mix(_lines(SIB_LINE)))
def test_sib200_sentences(data):
    from xlir.data.bitext import flores_sentences

    with _files(**{"data/annotated/hau_Latn/test.tsv": data}) as root:
        check(lambda: flores_sentences("hau", "test", root), root, dict)


@FUZZ
@given(_mix(), _mix())
def test_bitext_files(src, tgt):
    from xlir.data.bitext import load_bitext_task
    from xlir.data.task import Task

    with _files(src=src, tgt=tgt) as root:
        check(lambda: load_bitext_task(root / "src", root / "tgt", "hau", "eng"), root, Task)


# --- runs, generated queries, JSON artifacts ----------------------------------------------


@FUZZ
@given(_mix(_lines(TRECRUN_LINE)))
@example(b"\x80")
def test_trec_run(data):
    from xlir.retrieve import read_trec_run

    with _files(f=data) as root:
        run = check(lambda: read_trec_run(root / "f"), root / "f", dict)
        assert all(isinstance(s, float) for docs in (run or {}).values() for s in docs.values())


@FUZZ
@given(_mix(_jsonl(GENERATED_ROW)))
def test_generated_queries(data):
    from xlir.qgen import read_generated

    with _files(f=data) as root:
        check(lambda: read_generated(root / "f"), root / "f", list)
        check(lambda: read_generated(root / "f", {"d1": {}, "1": {}}), root / "f", list)


@FUZZ
@given(_mix(JSON.map(json.dumps).map(str.encode)))
@example(DEEP)
def test_storage_read_json(data):
    from xlir.storage import read_json

    with _files(f=data) as root:
        check(lambda: read_json(root / "f"), root / "f", object)


# --- configs ------------------------------------------------------------------------------


@FUZZ
@given(CONFIG_FILE)
@example(b"\x80")
@example(DEEP)
@example(b"$:\n0:")
@example(b"tasks: &a [*a]\ntrain: &b [*b]\nmethod_options: &c {x: *c}\n")  # cyclic aliases
@example(LAUGHS)
@example(LAUGHS.replace(b"name: *l8", b"k: 2"))  # under free-form keys only: refused too
def test_config_files(data):
    from xlir.config import load_config, load_yaml
    from xlir.study import StudyConfig
    from xlir.train import TrainConfig

    with _files(**{"c.yaml": data}) as root:
        path = root / "c.yaml"
        check(lambda: load_yaml(path), path, dict)
        check(lambda: load_config(StudyConfig, path), path, StudyConfig)
        check(lambda: load_config(TrainConfig, path), path, TrainConfig)


# --- every loader on a folder where a file was expected -----------------------------------


@pytest.mark.parametrize("loader", [
    "xlir.data.readers:read_json", "xlir.data.tasks:squad_items", "xlir.retrieve:read_trec_run",
    "xlir.qgen:read_generated", "xlir.storage:read_json", "xlir.config:load_yaml"])
def test_a_folder_instead_of_a_file(tmp_path, loader):
    import importlib

    module, name = loader.split(":")
    with pytest.raises(XlirError, match=re.escape(str(tmp_path))):
        getattr(importlib.import_module(module), name)(tmp_path)


# --- the files xlir writes and reads back (manifests, metrics, study configs), and the
# packaged models' binary files: the same property.


def _tuned_manifest(root: Path):
    from xlir.tuning import MANIFEST, read_manifest

    (root / "f").rename(root / MANIFEST)
    return read_manifest(root)


def _qgen_corpus(root: Path):
    from xlir.qgen import read_corpus

    (root / "f").rename(root / "corpus.jsonl")
    return read_corpus(str(root))


def _pairs_jsonl(root: Path):
    from xlir.qgen_train import read_pairs_jsonl

    pairs = read_pairs_jsonl(root / "f")
    assert all(isinstance(p, dict) for p in pairs), "a pair that is not an object"
    return pairs


def _model_source(root: Path):
    from xlir.models import MANIFEST, model_manifest

    (root / "f").rename(root / MANIFEST)
    return model_manifest(root)


def _report_files(root: Path):
    from xlir.report import StudyFiles

    (root / "f").rename(root / "config.resolved.json")
    return StudyFiles(root)


@FUZZ
@given(data=_mix(JSON.map(json.dumps).map(str.encode)))
@example(data=b"[]")  # was AttributeError (read_manifest, read_corpus) or a list returned
@example(data=b"{")  # was JSONDecodeError (read_pairs_jsonl, StudyFiles)
@example(data=b"\x80")  # was UnicodeDecodeError (read_corpus)
@pytest.mark.parametrize("load, returns", [
    pytest.param(_tuned_manifest, dict),
    pytest.param(_qgen_corpus, dict),
    pytest.param(_pairs_jsonl, list),
    pytest.param(_model_source, dict),
    pytest.param(_report_files, object),
])
def test_other_json_artifacts(load, returns, data):
    with _files(f=data) as root:
        check(lambda: load(root), root, returns)


def _gguf(root: Path):
    from xlir.gguf_tokenizer import read_gguf_metadata

    return read_gguf_metadata(root / "f")


def _e5_bin(root: Path):
    from xlir.models import read_e5_bin

    return read_e5_bin(root / "f")


@FUZZ
@given(data=st.binary(max_size=120), with_magic=st.booleans())
@example(data=b"", with_magic=True)  # was struct.error (both readers)
@example(data=(3).to_bytes(4, "little") + bytes(8) + (1).to_bytes(8, "little")
         + (2**62).to_bytes(8, "little"), with_magic=True)  # a 2**62-byte key: was MemoryError
@pytest.mark.parametrize("magic, load, returns", [
    pytest.param(b"GGUF", _gguf, dict),
    pytest.param(b"E5S1", _e5_bin, tuple),
])
def test_packaged_model_files(magic, load, returns, data, with_magic):
    """The packaged models' binary files (read by `models.prepare_*`), truncated or corrupt."""
    with _files(f=magic + data if with_magic else data) as root:
        check(lambda: load(root), root, returns)
