"""Atomic writes: a failure inside the block leaves the old file (or nothing) in place."""

import pytest

from xlir import storage


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "a" / "out.json"
    storage.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with storage.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert storage.read_json(target) == {"v": 1}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_atomic_dir_is_all_or_nothing(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with storage.atomic_dir(target) as tmp:
            (tmp / "weights").write_text("partial")
            raise RuntimeError("killed")
    assert not target.exists()
    with storage.atomic_dir(target) as tmp:
        (tmp / "weights").write_text("complete")
    assert (target / "weights").read_text() == "complete"
    with storage.atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_read_json_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "a": 1,\n  "b": oops\n}')
    with pytest.raises(Exception) as e:
        storage.read_json(bad)
    assert "bad.json" in str(e.value) and "line 3" in str(e.value)


def test_cache_dirs_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("XLIR_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("XLIR_MODEL_CACHE", raising=False)
    assert storage.model_cache() == tmp_path / "h" / "models"
    monkeypatch.setenv("XLIR_MODEL_CACHE", str(tmp_path / "m"))
    assert storage.model_cache() == tmp_path / "m"


def test_exclusive_refuses_a_second_holder_and_is_freed_by_death(tmp_path):
    import subprocess
    import sys

    from xlir.errors import XlirError

    lock = tmp_path / ".lock"
    hold = ("import sys, time; from xlir import storage\n"
            "with storage.exclusive(sys.argv[1], wait=False, what='x'):\n"
            "    print('held', flush=True); time.sleep(60)\n")
    other = subprocess.Popen([sys.executable, "-c", hold, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(XlirError, match="in use by another xlir process"):
            with storage.exclusive(lock, wait=False, what="the folder"):
                pass
    finally:
        other.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
        other.wait()
    with storage.exclusive(lock, wait=False, what="the folder"):
        pass


def test_remove_temporaries_removes_only_what_killed_writers_leave(tmp_path):
    with storage.atomic_path(tmp_path / "a" / "metrics.json") as tmp:  # a real temporary name
        tmp.write_text("{}")
        torn = tmp_path / "a" / ".run.trec.k3j_9x0q.tmp"
        torn.write_text("half")
        real_name = tmp.name
    (tmp_path / "a" / ".shard-00000.npy.ab12cd34.tmp.npy").write_bytes(b"\x93NUMPY")
    (tmp_path / ".report.zz99yy88.tmp").mkdir()
    (tmp_path / ".report.zz99yy88.tmp" / "index.html").write_text("<html")
    (tmp_path / ".report.xlir-old").mkdir()
    keep = [tmp_path / "a" / "metrics.json", tmp_path / ".lock", tmp_path / ".hidden",
            tmp_path / "notes.tmp", tmp_path / ".x.tmp", tmp_path / ".bashrc.old"]
    for path in keep[1:]:
        path.write_text("mine")
    removed = storage.remove_temporaries(tmp_path)
    assert {p.name for p in removed} == {".run.trec.k3j_9x0q.tmp", ".shard-00000.npy.ab12cd34.tmp.npy",
                                         ".report.zz99yy88.tmp", ".report.xlir-old"}
    assert all(p.exists() for p in keep)
    assert not (tmp_path / ".report.xlir-old").exists()
    assert [p.name for p in tmp_path.rglob(".*.tmp*")] == [".x.tmp"]  # not an atomic_* name
    assert storage.is_temporary(real_name)  # the pattern matches what atomic_path makes
