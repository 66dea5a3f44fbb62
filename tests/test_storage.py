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
