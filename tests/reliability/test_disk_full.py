"""Disk full while writing (simulated ENOSPC): the error names the target file (never the hidden
temp name), the `xlir` command prints one line and exits 2, earlier results keep their bytes,
no temporary or partial file is left, and a rerun once space is freed finishes the job.

The fault is injected at the lowest writer xlir goes through: `numpy.lib.format.write_array`
for embedding shards, `Path.write_text` for JSON, `faiss.write_index` for the index (faiss
reports a failed fwrite as RuntimeError "... (No space left on device)"). Each fault writes
half its bytes first, as a device filling up mid-file does, and a failed write names no file.
Spawned encoding workers (`--workers 2`) get the fault from a `sitecustomize` module on
PYTHONPATH, since a monkeypatch in the parent does not reach them.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from counting_encoder import Counting

from xlir import storage
from xlir.cli import main, storage_error
from xlir.encode import encode_corpus
from xlir.encoder import load_encoder

HINT = ("(free space there, or point XLIR_HOME / --out elsewhere; rerun the same command to "
        "resume: finished parts are kept)")
CORPUS = {f"d{i}": {"title": "", "text": t} for i, t in enumerate(
    ["the river runs through the city", "the book was written by a poet", "the war ended",
     "Kano birni ne a Najeriya", "Nairobi ni mji mkuu wa Kenya"])}  # shard size 2: 3 shards

# Every .npy write fails half-way with ENOSPC, in the process that runs this code.
FAULT = """
import errno, io, os
import numpy.lib.format as fmt
real = fmt.write_array
def write_array(fp, array, *args, **kwargs):
    buf = io.BytesIO()
    real(buf, array, *args, **kwargs)
    fp.write(buf.getvalue()[: len(buf.getvalue()) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
fmt.write_array = write_array
"""
# Runs `xlir ARGS` under FAULT.
LAUNCHER = FAULT + """
import sys
from xlir.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def encoder(tiny_st_encoder_dir):
    return load_encoder(tiny_st_encoder_dir)


def fill_disk_at_npy_write(monkeypatch, k: int) -> None:
    """The k-th .npy write (0-based) writes half its bytes, then fails with ENOSPC."""
    real, calls = np.lib.format.write_array, []

    def write_array(fp, array, *args, **kwargs):
        calls.append(fp)
        if len(calls) - 1 != k:
            return real(fp, array, *args, **kwargs)
        buf = io.BytesIO()
        real(buf, array, *args, **kwargs)
        fp.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np.lib.format, "write_array", write_array)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def hidden(root: Path) -> list[str]:
    """Temporary names (atomic_path / atomic_dir leftovers) anywhere under root."""
    return [str(p) for p in root.rglob(".*")]


@pytest.mark.parametrize("k", [0, 2])
def test_encode_disk_full_at_shard_k_keeps_earlier_shards_and_resumes(encoder, tmp_path,
                                                                       monkeypatch, k):
    _, expected = encode_corpus(encoder, CORPUS, tmp_path / "clean", shard_size=2,
                                show_progress=False)
    clean = next((tmp_path / "clean").glob("passages-*"))
    fill_disk_at_npy_write(monkeypatch, k)
    with pytest.raises(OSError) as e:
        encode_corpus(encoder, CORPUS, tmp_path / "cache", shard_size=2, show_progress=False)
    folder = tmp_path / "cache" / clean.name
    assert e.value.errno == errno.ENOSPC
    assert e.value.filename == str(folder / f"shard-{k:05d}.npy")
    done = [f"shard-{i:05d}.{ext}" for i in range(k) for ext in ("ids.json", "npy")]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json", *done, f"shard-{k:05d}.ids.json"])  # no partial .npy, no temp
    for name in done:
        assert (folder / name).read_bytes() == (clean / name).read_bytes()
    before = {n: (folder / n).stat().st_mtime_ns for n in done}

    monkeypatch.undo()  # space is freed
    counting = Counting(encoder)
    ids, again = encode_corpus(counting, CORPUS, tmp_path / "cache", shard_size=2,
                               show_progress=False)
    assert counting.count == len(CORPUS) - 2 * k  # only the missing shards
    assert ids == list(CORPUS)
    np.testing.assert_array_equal(again, expected)
    assert {n: (folder / n).stat().st_mtime_ns for n in done} == before  # not rewritten
    assert snapshot(folder) == snapshot(clean)


def test_write_json_disk_full_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    storage.write_json(target, {"v": 1})
    old = target.read_bytes()
    real = Path.write_text

    def write_text(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", write_text)
    for path in (target, tmp_path / "new.json"):
        with pytest.raises(OSError) as e:
            storage.write_json(path, {"v": 2, "pad": "x" * 1000})
        assert (e.value.errno, e.value.filename) == (errno.ENOSPC, str(path))
        assert isinstance(e.value.__cause__, OSError)  # the original error is kept
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_dir_disk_full_names_file_in_target_and_keeps_old_folder(tmp_path):
    target = tmp_path / "index"
    with storage.atomic_dir(target) as tmp:
        (tmp / "doc_ids.json").write_text("old")
    with pytest.raises(OSError) as e:
        with storage.atomic_dir(target) as tmp:
            (tmp / "doc_ids.json").write_text("new, half")
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(tmp / "doc_ids.json"))
    assert (e.value.errno, e.value.filename) == (errno.EDQUOT, str(target / "doc_ids.json"))
    assert (target / "doc_ids.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_other_errors_pass_through_unchanged(tmp_path):
    eio = OSError(errno.EIO, os.strerror(errno.EIO))
    with pytest.raises(OSError) as e:
        with storage.atomic_path(tmp_path / "a.json") as tmp:
            tmp.write_text("x")
            raise eio
    assert e.value is eio and list(tmp_path.iterdir()) == []


def test_storage_error_lines():
    assert storage_error(OSError(errno.ENOSPC, "x", "/d/f.npy")) == \
        f"no space left on device writing /d/f.npy {HINT}"
    assert storage_error(OSError(errno.EDQUOT, "x")).startswith("disk quota exceeded (free")
    assert storage_error(OSError(errno.EROFS, "x", "/d")).startswith(
        "read-only file system writing /d (point XLIR_HOME / --out elsewhere;")
    assert storage_error(OSError(errno.EACCES, "x", "/d")) is None
    assert storage_error(FileNotFoundError(errno.ENOENT, "x", "/d")) is None


def _beir(root: Path) -> Path:
    root.mkdir()
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d, "title": "", "text": v["text"], "lang": "eng"}) + "\n"
        for d, v in CORPUS.items()))
    qs = {"q1": "where is the river", "q2": "who wrote the book"}
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": q, "text": t, "lang": "hau"}) + "\n" for q, t in qs.items()))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("q1\td0\t1\nq2\td1\t1\n")
    return root


@pytest.fixture
def indexed(tmp_path, tiny_st_encoder_dir, monkeypatch):
    """An earlier, finished `xlir index` run in tmp_path: returns its argv up to --cache."""
    monkeypatch.setenv("XLIR_HOME", str(tmp_path / "home"))
    argv = ["index", "--model", str(tiny_st_encoder_dir), "--task", str(_beir(tmp_path / "beir")),
            "--out", str(tmp_path / "idx"), "--cache"]
    assert main([*argv, str(tmp_path / "cache")]) == 0
    return argv


def test_cli_disk_full_while_encoding_is_one_line_and_resumes(tmp_path, indexed):
    earlier = snapshot(tmp_path)
    env = dict(os.environ, XLIR_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, *indexed, str(tmp_path / "cache2")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr
    folder = next((tmp_path / "cache2").glob("passages-*"))
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (f"xlir index: error: no space left on device writing "
                    f"{folder / 'shard-00000.npy'} {HINT}")
    assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1
    now = snapshot(tmp_path)
    assert {k: v for k, v in now.items() if k in earlier} == earlier
    assert sorted(set(now) - set(earlier)) == [
        f"cache2/{folder.name}/manifest.json", f"cache2/{folder.name}/shard-00000.ids.json"]
    assert hidden(tmp_path) == []
    assert main([*indexed, str(tmp_path / "cache2")]) == 0  # space freed: the rerun finishes
    assert (folder / "shard-00000.npy").read_bytes() == \
        next((tmp_path / "cache").glob("passages-*/shard-00000.npy")).read_bytes()


def test_cli_disk_full_while_saving_index_keeps_old_index(tmp_path, indexed, capsys,
                                                          monkeypatch):
    import faiss

    def write_index(index, fname):  # what faiss raises when fwrite comes up short
        Path(fname).write_bytes(b"\0" * 4051)
        raise RuntimeError("Error in void faiss::write_index(const Index*, IOWriter*, int) at "
                           "/project/faiss/impl/index_write.cpp:499: Error: 'ret == (size * 4)'"
                           f" failed: write error in {fname}: 4051 != 128000 (No space left on "
                           "device)")

    earlier = snapshot(tmp_path)
    capsys.readouterr()
    monkeypatch.setattr(faiss, "write_index", write_index)
    assert main([*indexed, str(tmp_path / "cache"), "--kind", "hnsw"]) == 2
    err = capsys.readouterr().err
    assert err == f"xlir index: error: no space left on device writing {tmp_path / 'idx'} {HINT}\n"
    assert snapshot(tmp_path) == earlier and hidden(tmp_path) == []


def test_cli_disk_full_in_an_encoding_worker_is_one_line(tmp_path, indexed):
    fault = tmp_path / "fault"
    fault.mkdir()
    # sitecustomize is loaded by every Python process started with this folder on
    # PYTHONPATH, spawned encoding workers included (a monkeypatch in the parent is not).
    (fault / "sitecustomize.py").write_text(FAULT)
    earlier = snapshot(tmp_path)
    env = dict(os.environ, XLIR_HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(fault), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "xlir", *indexed, str(tmp_path / "cache2"),
                           "--workers", "2"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr[-3000:]
    folder = next((tmp_path / "cache2").glob("passages-*"))
    last = proc.stderr.strip().splitlines()[-1]  # the worker's own traceback may come before
    assert last == (f"xlir index: error: no space left on device writing "
                    f"{folder / 'shard-00000.npy'} {HINT}")
    now = snapshot(tmp_path)
    assert {k: v for k, v in now.items() if k in earlier} == earlier
    assert not list(folder.glob("*.npy")) and hidden(tmp_path) == []
