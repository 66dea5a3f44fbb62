"""Bad input through the real `xlir` command: each case breaks one thing in tmp_path, runs the
CLI in a subprocess and checks what a user sees. For every case:

- exit code 2 (xlir's user-error code), no traceback;
- exactly one `xlir CMD: error: ...` line, and it is the last line of stderr; cases marked
  `quiet` fail before any logging, so that line is all of stderr. The others (fetch, index)
  may print INFO log records and progress bars first: those are allowed, nothing else is;
- the message names the file (and the line / field where the fault is line- or field-specific);
- earlier results in the working folder keep their bytes, and no file is added there.

Library-level tables of the same faults are in tests/data/test_readers.py; this file checks
that they survive the trip through the CLI. It does not test kills or disk-full (see
RELIABILITY.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from xlir.storage import model_cache

AMQA = "github/semantic-systems/amharic-qa/68d06ea20ba0dedfdb99385d44fbdc54b83ad96a"
AMQA_FETCHED = ["LICENSE", "dev_data.json", "test_data.json", "train_data.json"]

CORPUS = [{"_id": "d1", "text": "Kano birni ne", "lang": "hau"},
          {"_id": "d2", "text": "Nairobi ni mji mkuu wa Kenya", "lang": "hau"}]
QUERIES = [{"_id": "q1", "text": "ina Kano?", "lang": "ha"},
           {"_id": "q2", "text": "Nairobi?", "lang": "hau"}]
QRELS = b"query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n"
EARLIER = b"q1 Q0 d1 1 0.9 earlier-run\n"  # an earlier result that must survive


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _beir(work: Path, **override: bytes) -> Path:
    """A valid BEIR folder in work/beir, with one file replaced by `override`."""
    folder = work / "beir"
    files = {"corpus.jsonl": _jsonl(CORPUS), "queries.jsonl": _jsonl(QUERIES),
             "qrels/test.tsv": QRELS}
    files.update(override)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


@dataclass
class Case:
    id: str
    make: object                      # (work, tmp) -> (argv, extra env)
    expect: list[str]                 # substrings the error line must contain ({work} expands)
    quiet: bool = True                # stderr is exactly the error line
    marks: list = field(default_factory=list)


LANG = ("--option", "language=hau")  # the default for rows without "lang"


def _show(name: str, data: bytes, *extra: str):
    def make(work, tmp):
        folder = _beir(work, **{name: data})
        return ["data", "show", str(folder), "--split", "test", *LANG, *extra], {}
    return make


def _argv(*argv: str, files: dict[str, bytes] | None = None):
    def make(work, tmp):
        for name, data in (files or {}).items():
            (work / name).write_bytes(data)
        return [a.format(work=work) for a in argv], {}
    return make


def _missing_tokenizer(work, tmp):
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32)
    BertModel(config).save_pretrained(work / "bert")
    return ["models", "check", str(work / "bert")], {}


def _bad_mirror(work, tmp):
    if not os.environ.get("XLIR_DATA_MIRROR"):
        pytest.skip("no data mirror (../shared/data/mirror)")
    mirror, cache = tmp / "mirror", tmp / "data-cache"
    source = Path(os.environ["XLIR_DATA_MIRROR"]) / AMQA
    (mirror / AMQA).mkdir(parents=True)
    for name in AMQA_FETCHED:
        shutil.copyfile(source / name, mirror / AMQA / name)
    broken = bytearray((mirror / AMQA / "test_data.json").read_bytes())
    broken[100] ^= 0xFF
    (mirror / AMQA / "test_data.json").write_bytes(bytes(broken))
    cache.mkdir()
    return ["data", "fetch", "amqa"], {"XLIR_DATA_MIRROR": str(mirror),
                                       "XLIR_DATA_CACHE": str(cache)}


def _augment_unknown_doc(work, tmp):
    from xlir.models import prepare_encoder

    prepare_encoder()  # idempotent: a no-op once `xlir models prepare` has run
    folder = _beir(work)
    (work / "generated.jsonl").write_bytes(
        _jsonl([{"doc_id": "d1", "lang": "hau", "question": "ina Kano?"},
                {"doc_id": "d9", "lang": "hau", "question": "ina?"}]))
    return ["index", "--model", "default", "--task", str(folder), "--augment",
            str(work / "generated.jsonl"), "--alpha", "0.1", "--out", str(work / "index")], \
        {"XLIR_MODEL_CACHE": str(model_cache())}  # the prepared model; embeddings stay in tmp


C, Q, R = "corpus.jsonl", "queries.jsonl", "qrels/test.tsv"
CASES = [
    Case("corrupt-jsonl-line", _show(C, b'{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": \n'),
         ["beir/corpus.jsonl", "line 2", "invalid JSON"]),
    Case("non-utf8-queries",
         _show(Q, b'{"_id": "q1", "text": "a"}\n{"_id": "q2", "text": "\xff"}\n'),
         ["beir/queries.jsonl", "line 2", "not UTF-8"]),
    Case("empty-corpus", _show(C, b""), ["beir/corpus.jsonl", "no items"]),
    Case("empty-query-text", _show(Q, b'{"_id": "q1", "text": "a"}\n{"_id": "q2", "text": " "}\n'),
         ["beir/queries.jsonl", "line 2", "field 'text'", "empty text"]),
    Case("duplicate-doc-id", _show(C, b'{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n'),
         ["beir/corpus.jsonl", "line 2", "field '_id'", "duplicate id 'd1'"]),
    Case("qrels-unknown-query", _show(R, b"q1\td1\t1\nq9\td2\t1\n"),
         ["beir/qrels/test.tsv", "line 2", "field 'query-id'", "unknown query id 'q9'"]),
    Case("qrels-unknown-doc", _show(R, b"query-id\tcorpus-id\tscore\nq1\td7\t1\n"),
         ["beir/qrels/test.tsv", "line 2", "field 'corpus-id'", "unknown document id 'd7'"]),
    Case("unknown-language-code", _show(C, _jsonl([CORPUS[0], {**CORPUS[1], "lang": "qqq"}])),
         ["beir/corpus.jsonl", "line 2", "field 'lang'", "unknown language code 'qqq'"]),
    Case("qrels-wrong-columns", _show(R, b"q1\td1\t1\nq2\td2\n"),
         ["beir/qrels/test.tsv", "line 2", "expected 3 tab-separated fields, got 2"]),
    Case("qrels-score-not-int", _show(R, b"q1\td1\thigh\n"),
         ["beir/qrels/test.tsv", "line 1", "field 'score'", "not an integer"]),
    Case("jsonl-list-not-object", _show(C, b'{"_id": "d1", "text": "a"}\n["d2", "b"]\n'),
         ["beir/corpus.jsonl", "line 2", "expected a JSON object, got list"]),
    Case("corpus-missing-text", _show(C, b'{"_id": "d1", "title": "Kano"}\n'),
         ["beir/corpus.jsonl", "line 1", "field 'text'", "missing field"]),
    Case("split-leaves-folder", _show(R, QRELS, "--split", "../../etc/passwd"),
         ["beir", "field 'split'", "cannot be used as a file name"]),
    Case("hub-id-without-network", _argv("models", "check", "someorg/somemodel"),
         ["someorg/somemodel", "no network"]),
    Case("train-unknown-method", _argv("train", "method=nosuch", "--out", "{work}/run"),
         ["unknown tuning method 'nosuch'"]),
    Case("train-negative-lr", _argv("train", "lr=-1", "--out", "{work}/run"),
         ["lr must be > 0, got -1.0"]),
    Case("train-unknown-key", _argv("train", "nosuchkey=3", "--out", "{work}/run"),
         ["TrainConfig", "unknown key(s) ['nosuchkey']"]),
    Case("train-config-not-found", _argv("train", "--config", "{work}/nothere.yaml",
                                         "--out", "{work}/run"),
         ["{work}/nothere.yaml", "config file not found"]),
    Case("study-alpha-out-of-range",
         _argv("study", "configs/quick.yaml", "xqg.alphas=[1.5]", "--out", "{work}/study",
               "--no-report"),
         ["xqg.alphas", "1.5 is outside [0, 1]"]),
    Case("study-unknown-key-override",
         _argv("study", "configs/quick.yaml", "nosuchkey=1", "--out", "{work}/study",
               "--no-report"),
         ["StudyConfig", "unknown key(s) ['nosuchkey']"]),
    Case("study-yaml-not-a-mapping",
         _argv("study", "{work}/study.yaml", "--out", "{work}/study", "--no-report",
               files={"study.yaml": b"- frozen\n- lora\n"}),
         ["{work}/study.yaml", "top level must be a mapping, got list"]),
    Case("report-not-a-study", _argv("report", "{work}"),
         ["{work}", "not a study directory"]),
    Case("model-folder-without-tokenizer", _missing_tokenizer,
         ["{work}/bert", "no tokenizer in this model folder"]),
    Case("study-yaml-syntax-error",
         _argv("study", "{work}/study.yaml", "--out", "{work}/study", "--no-report",
               files={"study.yaml": b"name: x\nmethods: [frozen\n"}),
         ["{work}/study.yaml", "invalid YAML at line 3"]),
    Case("train-yaml-unknown-key-in-file",
         _argv("train", "--config", "{work}/train.yaml", "--out", "{work}/run",
               files={"train.yaml": b"method: lora\nlearning_rate: 0.1\n"}),
         ["{work}/train.yaml", "unknown key(s) ['learning_rate']"]),
    Case("index-alpha-out-of-range",
         _argv("index", "--task", "{work}/beir", "--augment", "{work}/q.jsonl", "--alpha", "1.5",
               "--out", "{work}/index", files={"q.jsonl": b""}),
         ["--alpha must be in [0, 1], got 1.5"]),
    Case("index-alpha-without-augment",
         _argv("index", "--task", "{work}/beir", "--alpha", "0.1", "--out", "{work}/index"),
         ["--alpha only applies with --augment"]),
    Case("mirror-wrong-checksum", _bad_mirror, ["test_data.json", "checksum mismatch",
                                                "nothing was written"],
         quiet=False, marks=[pytest.mark.real]),
    Case("augment-unknown-doc-id", _augment_unknown_doc,
         ["{work}/generated.jsonl", "line 2", "field 'doc_id'", "doc id 'd9'"],
         quiet=False, marks=[pytest.mark.real]),
]

# Lines other programs may put on stderr before xlir's error: log records (and the message
# lines a library logs under them) and tqdm progress bars.
_LOG = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING) |^ModuleNotFoundError\(")
_PROGRESS = re.compile(r"\d+%\|")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(argv: list[str], env_extra: dict, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLIR_HOME": str(home), "PYTHONWARNINGS": "ignore"}
    env.pop("XLIR_MODEL_CACHE", None)  # under XLIR_HOME unless a case needs the real model
    env.update(env_extra)
    repo = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-m", "xlir", *argv], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)


def _error_line(stderr: str, quiet: bool) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in re.split(r"[\r\n]+", stderr) if ln.strip()]
    if quiet:
        assert len(lines) == 1, stderr
    errors = [ln for ln in lines if re.match(r"^xlir [a-z]+: error: ", ln)]
    assert len(errors) == 1 and errors[0] == lines[-1], stderr
    others = [ln for ln in lines[:-1] if not (_LOG.match(ln) or _PROGRESS.search(ln))]
    assert not others, stderr
    return errors[0]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_is_one_line_exit_2(tmp_path, case):
    work = tmp_path / "work"
    work.mkdir()
    (work / "earlier.trec").write_bytes(EARLIER)
    argv, env_extra = case.make(work, tmp_path)
    before = _snapshot(work)

    result = _run(argv, env_extra, tmp_path / "home")

    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    line = _error_line(result.stderr, case.quiet)
    for expected in case.expect:
        assert expected.format(work=work) in line, line
    assert _snapshot(work) == before  # earlier results keep their bytes; nothing added
    if case.id == "mirror-wrong-checksum":
        cached = tmp_path / "data-cache" / AMQA
        names = sorted(p.name for p in cached.iterdir()) if cached.is_dir() else []
        assert "test_data.json" not in names and not [n for n in names if n.startswith(".")]
        for name in names:  # what was written is complete and verified
            assert (cached / name).read_bytes() == (
                Path(os.environ["XLIR_DATA_MIRROR"]) / AMQA / name).read_bytes()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupted_checkpoint_is_one_line_and_keeps_the_run(tmp_path, tiny_st_encoder_dir, damage):
    """A checkpoint damaged after it was written (not torn by a kill: those are removed and
    training resumes from the one before, see test_kill_resume.py) stops `xlir train` with
    one line naming the file and saying what to do; the run folder is left as it was."""
    from tiny_study import make_beir

    from xlir.train import TRAINABLE_FILE

    beir = make_beir(tmp_path / "beir")
    work = tmp_path / "work"
    argv = ["train", f"model={tiny_st_encoder_dir}", "method=lora", f"train=[{beir}]",
            "max_pairs=4", "batch_size=2", "epochs=1", "eval_steps=1", "hard_negatives=0",
            "query_max_length=16", "passage_max_length=32", "keep_checkpoints=true",
            "load_best=false", "--out", str(work)]
    assert _run(argv, {}, tmp_path / "home").returncode == 0
    for name in ("xlir-model.json", "adapter"):  # as if killed before the final save
        path = work / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    weights = work / "checkpoints" / "checkpoint-2" / TRAINABLE_FILE
    data = weights.read_bytes()
    weights.write_bytes(b"\x07" * len(data) if damage == "garbage" else data[: len(data) // 2])
    before = _snapshot(work)

    result = _run(argv, {}, tmp_path / "home")

    assert result.returncode == 2, result.stderr[-2000:]
    line = _error_line(result.stderr, quiet=False)
    assert f"{weights}: corrupt checkpoint file" in line, line
    assert f"delete {weights.parent} to resume from the checkpoint before it" in line
    assert _snapshot(work) == before
